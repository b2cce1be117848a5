"""Voxel scene files in their three formats: checks, readers and writers.

    Scenevox   ROOT/Scenevox/<sceneId>/<modelId>.npy, one int array (X, H, Z) per file (the
               seed's layout)
    npz        shard-00000-of-00010.npz, arrays "voxels" (n, X, H, Z) uint8 and "names"
    tfrecord   shard-00000-of-00010.tfrecord[.gz], features "voxels" (raw uint8 bytes), "shape"
               (3 int64), "name" (bytes)
    A shard folder also holds manifest.json (format, grid, n, split, classes, shards, counts).

Every reader checks the grid and the labels (0..11) and raises `DataError` naming the file,
the value found and where. Every writer builds the data set in a temporary folder next to the
target and renames it when complete (`temp_folder_next_to`, `commit_folder`); its files are
written through `tfgan3d.io`. Discovery of the files of a split and the tf.data pipeline are in
`tfgan3d.data.voxel_files`.
"""
import io
import json
import os
from pathlib import Path
import shutil
import uuid
import zipfile

import numpy as np
import tensorflow as tf

from tfgan3d.data.errors import DataError
from tfgan3d.data.voxels import GRID, NUM_CLASSES, SIMULATOR_VERSION, VOXEL_CLASSES, iter_scenes
from tfgan3d.io import atomic_write, save_npy, write_json

FORMATS = ("npz", "tfrecord", "scenevox")
SCENEVOX = "Scenevox"
SHARD_EXTENSIONS = (".npz", ".tfrecord", ".tfrecord.gz")
TF_FEATURES = {"voxels": tf.io.FixedLenFeature([], tf.string),
               "shape": tf.io.FixedLenFeature([3], tf.int64),
               "name": tf.io.FixedLenFeature([], tf.string, default_value="")}


# ---- checks and readers -------------------------------------------------------------------------

def check_scenes(voxels, where, grid=None, batched=False):
    """Check integer labels 0..11 and the grid; returns the array as uint8.

    Args:
        voxels: array (X, H, Z), or (N, X, H, Z) when `batched`.
        where: file or source name for the messages.
        grid: expected (X, H, Z), or None for any 3-D grid.
        batched: whether the first axis counts scenes.

    Raises:
        DataError: non-integer dtype, wrong rank or grid, a label outside 0..11 (the message gives
            the value and a voxel index holding it).
    """
    voxels = np.asarray(voxels)
    rank = 4 if batched else 3
    if voxels.dtype.kind not in "iub":
        raise DataError(f"{where}: expected integer class labels, found dtype {voxels.dtype}")
    if voxels.ndim != rank or (grid is not None and tuple(voxels.shape[-3:]) != tuple(grid)):
        expected = f"grid {tuple(grid)} (x, height, z)" if grid is not None else "a 3-D grid"
        raise DataError(f"{where}: expected {'scenes of ' if batched else ''}{expected}, "
                        f"found shape {voxels.shape}")
    if voxels.size and (voxels.min() < 0 or voxels.max() >= NUM_CLASSES):
        index = tuple(int(i) for i in np.argwhere((voxels < 0) | (voxels >= NUM_CLASSES))[0])
        place = f"scene {index[0]}, voxel {index[1:]}" if batched else f"voxel {index}"
        raise DataError(f"{where}: label {voxels[index]} outside 0..{NUM_CLASSES - 1} at "
                        f"{place} (classes: {', '.join(VOXEL_CLASSES)})")
    return voxels.astype(np.uint8, copy=False)

def read_manifest(folder):
    """The manifest.json of a shard folder as a dict, or None when there is none."""
    path = Path(folder) / "manifest.json"
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read the manifest ({e})") from e

def tfrecord_compression(path):
    """TFRecord compression of a shard file: "GZIP" for .gz, else none."""
    return "GZIP" if str(path).endswith(".gz") else ""


def load_shard(path, grid=None):
    """(voxels (n, X, H, Z) uint8, names list) of one .npz or .tfrecord shard, checked."""
    path = str(path)
    try:
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as f:
                if "voxels" not in f.files:
                    raise DataError(f"{path}: expected an array 'voxels', found {f.files}")
                voxels = f["voxels"]
                names = [str(n) for n in f["names"]] if "names" in f.files else []
        else:
            records = tf.data.TFRecordDataset(path, tfrecord_compression(path))
            scenes, names = [], []
            for record in records:
                ex = tf.io.parse_single_example(record, TF_FEATURES)
                shape = tuple(int(s) for s in ex["shape"].numpy())
                data = np.frombuffer(ex["voxels"].numpy(), np.uint8)
                if data.size != np.prod(shape):
                    raise DataError(f"{path}: record {len(scenes)} holds {data.size} voxels, "
                                    f"its shape says {shape}")
                scenes.append(data.reshape(shape))
                names.append(ex["name"].numpy().decode())
            if len({s.shape for s in scenes}) > 1:
                raise DataError(f"{path}: records of different shapes "
                                f"{sorted({s.shape for s in scenes})}")
            voxels = np.stack(scenes) if scenes else np.zeros((0, *(grid or GRID)), np.uint8)
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, tf.errors.OpError) as e:
        raise DataError(f"{path}: cannot read the voxel shard ({type(e).__name__}: "
                        f"{str(e).splitlines()[0] if str(e) else ''})") from e
    voxels = check_scenes(voxels, path, grid, batched=True)
    if names and len(names) != len(voxels):
        raise DataError(f"{path}: {len(voxels)} scenes but {len(names)} names")
    return voxels, names or [f"{Path(path).name}#{i}" for i in range(len(voxels))]


def load_voxel_file(path, grid=None):
    """A checked uint8 label array: (X, H, Z) from a .npy file, (n, X, H, Z) from a shard.

    Raises:
        DataError: unreadable or corrupt file, wrong grid, labels outside 0..11.
    """
    path = str(path)
    if path.endswith(SHARD_EXTENSIONS):
        return load_shard(path, grid)[0]
    try:
        voxels = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path}: cannot read the voxel file ({type(e).__name__}: {e})") from e
    return check_scenes(voxels, path, grid)

def npy_header(path):
    """(header bytes, dtype, shape, fortran order) of a .npy file, without reading its data."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read(f)
            return f.tell(), dtype, shape, fortran
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path}: cannot read the voxel file ({type(e).__name__}: {e})") from e


# ---- writers: each writes into a temporary folder next to the target and renames it at the end

def temp_folder_next_to(target):
    """(target Path, a new empty hidden folder beside it) to write a data set into."""
    target = Path(target).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return target, tmp


def commit_folder(tmp, target, overwrite):
    """Renames the finished folder `tmp` to `target` (replacing it when `overwrite`); returns
    the target as a string. FileExistsError (and `tmp` removed) when it exists otherwise."""
    if target.exists():
        if not overwrite:
            shutil.rmtree(tmp, ignore_errors=True)
            raise FileExistsError(f"{target} exists; pass overwrite=True (--overwrite) to "
                                  f"replace it")
        old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)
    return str(target)


def check_target(target, overwrite):
    """FileExistsError when `target` exists and not `overwrite`: checked before any work."""
    if Path(target).expanduser().exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True (--overwrite) to replace it")


def _write_part(folder, k, scenes, names, fmt, compression):
    path = folder / f"part-{k:05d}"
    if fmt == "npz":
        buffer = io.BytesIO()
        np.savez_compressed(buffer, voxels=np.stack(scenes), names=np.array(names, dtype=str))
        return atomic_write(path.with_suffix(".npz"), buffer.getvalue())
    suffix = ".tfrecord.gz" if compression else ".tfrecord"
    out = folder / (path.name + suffix)
    with tf.io.TFRecordWriter(str(out), tf.io.TFRecordOptions(compression or "")) as writer:
        for scene, name in zip(scenes, names):
            feature = {
                "voxels": tf.train.Feature(bytes_list=tf.train.BytesList(
                    value=[scene.tobytes()])),
                "shape": tf.train.Feature(int64_list=tf.train.Int64List(value=scene.shape)),
                "name": tf.train.Feature(bytes_list=tf.train.BytesList(value=[name.encode()]))}
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature))
                         .SerializeToString())
    return out


def _named(scenes, names):
    """(name, scene) pairs; names default to "scene000000/room0", ..."""
    names = None if names is None else iter(names)
    n = 0
    for n, scene in enumerate(scenes, 1):
        name = f"scene{n - 1:06d}/room0" if names is None else next(names, None)
        if name is None:
            raise DataError(f"more scenes than names ({n - 1} names)")
        yield str(name), scene
    if names is not None and next(names, None) is not None:
        raise DataError(f"more names than scenes ({n} scenes)")


def write_shards(scenes, names, out_dir, shard_size=1000, format="npz", *, split=None,
                 meta=None, compression=None, overwrite=False):
    """Write scenes as shard-KKKKK-of-NNNNN.{npz,tfrecord} plus manifest.json, atomically.

    Args:
        scenes: array (N, X, H, Z) or an iterable of (X, H, Z) label arrays (streamed).
        names: one name per scene, or None for "scene000000/room0", ...
        out_dir: the shard folder to create.
        shard_size: scenes per shard.
        format: "npz" (compressed) or "tfrecord".
        split: recorded in the manifest ("train", "test", ...).
        meta: extra JSON-serialisable manifest entries.
        compression: "GZIP" writes .tfrecord.gz shards.
        overwrite: replace an existing out_dir.

    Returns:
        out_dir as a string.

    Raises:
        DataError: a bad scene (named by its position), scenes of different grids, a name count
            that differs from the scene count, or no scenes.
        FileExistsError: out_dir exists and not `overwrite`.
    """
    return write_named_shards(_named(scenes, names), out_dir, shard_size, format, split=split,
                         meta=meta, compression=compression, overwrite=overwrite)


def write_named_shards(named, out_dir, shard_size=1000, format="npz", *, split=None,
                       meta=None, compression=None, overwrite=False):
    """`write_shards` of an iterable of (name, scene) pairs."""
    if format not in ("npz", "tfrecord"):
        raise ValueError(f"shard format must be 'npz' or 'tfrecord', got {format!r}")
    check_target(out_dir, overwrite)
    target, tmp = temp_folder_next_to(out_dir)
    try:
        parts, counts, buffer, buffer_names, grid, n = [], [], [], [], None, 0
        for i, (name, scene) in enumerate(named):
            scene = check_scenes(scene, f"scene {i} ({name})", grid)
            grid = grid or scene.shape
            buffer.append(scene)
            buffer_names.append(name)
            n += 1
            if len(buffer) == shard_size:
                parts.append(_write_part(tmp, len(parts), buffer, buffer_names, format,
                                         compression))
                counts.append(len(buffer))
                buffer, buffer_names = [], []
        if buffer:
            parts.append(_write_part(tmp, len(parts), buffer, buffer_names, format, compression))
            counts.append(len(buffer))
        if n == 0:
            raise DataError(f"{target}: no scenes to write")
        shards = []
        for k, part in enumerate(parts):
            final = f"shard-{k:05d}-of-{len(parts):05d}" + part.name[len(f"part-{k:05d}"):]
            os.replace(part, tmp / final)
            shards.append(final)
        manifest = {"format": format, "grid": list(grid), "n": n, "split": split,
                    "classes": list(VOXEL_CLASSES), "shards": shards, "counts": counts,
                    **(meta or {})}
        write_json(manifest, tmp / "manifest.json", indent=2)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return commit_folder(tmp, target, overwrite)


def _scene_and_model(name, i):
    parts = str(name).replace("\\", "/").split("/")
    if len(parts) == 2 and all(p and p not in (".", "..") for p in parts):
        return parts
    return f"scene{i:06d}", "room0"


def write_scenevox(scenes, out_dir, names=None, *, overwrite=False):
    """Write scenes as OUT_DIR/Scenevox/<sceneId>/<modelId>.npy (uint8), atomically.

    Names "<sceneId>/<modelId>" are kept; others become f"scene{i:06d}" / "room0". The layout
    has no split: readers take the first 95% of the sorted list as train.
    """
    return write_named_scenevox(_named(scenes, names), out_dir, overwrite)


def write_named_scenevox(named, out_dir, overwrite=False):
    """`write_scenevox` of an iterable of (name, scene) pairs."""
    check_target(out_dir, overwrite)
    target, tmp = temp_folder_next_to(out_dir)
    try:
        n = 0
        for i, (name, scene) in enumerate(named):
            scene = check_scenes(scene, f"scene {i} ({name})")
            scene_id, model_id = _scene_and_model(name, i)
            folder = tmp / SCENEVOX / scene_id
            save_npy(folder / f"{model_id}.npy", scene)
            n += 1
        if n == 0:
            raise DataError(f"{target}: no scenes to write")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return commit_folder(tmp, target, overwrite)


def write_builtin_voxels(out_dir, n_train, n_test, *, format="npz", grid=GRID, seed=0,
                         workers=1, shard_size=1000, overwrite=False):
    """Write simulated scenes 0 .. n_train+n_test-1 of `seed`: OUT_DIR/train and OUT_DIR/test
    shard folders, or for "scenevox" all of them in OUT_DIR/Scenevox (whose 95/5 split by sorted
    name gives back these splits when n_test is 5%). Names are "scene000000/room0", ...
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    grid = tuple(int(g) for g in grid)

    def named(start, n):
        return zip((f"scene{i:06d}/room0" for i in range(start, start + n)),
                   iter_scenes(n, seed, grid, start, workers))

    if format == "scenevox":
        return write_named_scenevox(named(0, n_train + n_test), out_dir, overwrite)
    check_target(out_dir, overwrite)
    target, tmp = temp_folder_next_to(out_dir)
    try:
        for split, start, n in (("train", 0, n_train), ("test", n_train, n_test)):
            if n > 0:
                meta = {"generator": "tfgan3d.data.voxels", "seed": seed, "start": start,
                        "simulator_version": SIMULATOR_VERSION}
                write_named_shards(named(start, n), tmp / split, shard_size, format, split=split,
                              meta=meta)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return commit_folder(tmp, target, overwrite)
