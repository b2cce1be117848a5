"""Voxel scene files and the tf.data pipeline of the fcr_alphagan mode.

Layouts read (`list_voxel_files` tells them apart):

    ROOT/Scenevox/<sceneId>/<modelId>.npy   the seed's layout, one int array (X, H, Z) per file;
                                            ROOT may be the Scenevox folder itself. Splits as
                                            in the original: train = the first 95% of the
                                            sorted (sceneId, modelId) list, test = the rest
                                            (`test_limit=200` draws the original's 200).
    ROOT/[train|test/]shard-00000-of-00010.npz        arrays "voxels" (n, X, H, Z) uint8, "names"
    ROOT/[train|test/]shard-00000-of-00010.tfrecord   features "voxels" (raw uint8 bytes),
                                                      "shape" (3 int64), "name" (bytes)
                                            with a manifest.json (grid, n, split, classes).

Every reader checks the grid and the labels (0..11) and raises `DataError` naming the file,
the value found and where. `make_voxel_dataset` checks files in Python before training
(`validate`) and again in the graph, cheaply, for what it did not read beforehand.
"""
import json
import os
from pathlib import Path
import shutil
import uuid
import zipfile

import numpy as np
import tensorflow as tf

from tfgan3d.data.images import DataError
from tfgan3d.data.voxels import (GRID, NUM_CLASSES, SIMULATOR_VERSION, VOXEL_CLASSES,
                                 downsample_labels, iter_scenes)

FORMATS = ("npz", "tfrecord", "scenevox")
SCENEVOX = "Scenevox"
TRAIN_FRACTION_PERCENT = 95
SHARD_EXTENSIONS = (".npz", ".tfrecord", ".tfrecord.gz")
AUTO_VALIDATE_LIMIT = 20000  # validate="auto" reads every scene up to this many, else the first
_DECODE_RAW = {np.dtype(t): getattr(tf, t) for t in ("uint8", "int8", "uint16", "int16",
                                                     "int32", "int64")}
_TF_FEATURES = {"voxels": tf.io.FixedLenFeature([], tf.string),
                "shape": tf.io.FixedLenFeature([3], tf.int64),
                "name": tf.io.FixedLenFeature([], tf.string, default_value="")}


def split_counts(n):
    """(n_train, n_test) of n scenes: train is the first 95%, each has a scene when n >= 2."""
    n_train = n * TRAIN_FRACTION_PERCENT // 100
    if n >= 2:
        n_train = min(max(n_train, 1), n - 1)
    return (n, 0) if n == 1 else (n_train, n - n_train)


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


def _shards_in(folder):
    return sorted(str(p) for p in Path(folder).iterdir()
                  if p.is_file() and p.name.endswith(SHARD_EXTENSIONS))


def _scenevox_root(root):
    if (root / SCENEVOX).is_dir():
        return root / SCENEVOX
    if root.name == SCENEVOX or any(p.is_dir() and any(p.glob("*.npy")) for p in
                                    _first(root.iterdir(), 8)):
        return root
    return None


def _first(iterable, n):
    return [x for _, x in zip(range(n), iterable)]


def list_scenevox(root):
    """Sorted (sceneId, modelId, path) of ROOT/[Scenevox/]<sceneId>/<modelId>.npy."""
    base = _scenevox_root(Path(root)) or Path(root)
    entries = []
    for scene in os.scandir(base):
        if scene.is_dir():
            entries += [(scene.name, f.name[:-4], f.path) for f in os.scandir(scene.path)
                        if f.is_file() and f.name.endswith(".npy")]
    return sorted(entries)


def list_voxel_files(root, split="train", *, test_limit=None, seed=0):
    """The files of one split ("train", "test" or "all") of a voxel data set.

    Scenevox: the .npy files (train = first 95% of the sorted list; test = the rest, or
    `test_limit` of them drawn with `seed`, kept in sorted order). Shards: the shard files of
    ROOT/<split>/ or of ROOT itself (its manifest must not name another split).

    Raises:
        DataError: a missing folder, no voxel files, or shards of another split.
    """
    root = Path(root).expanduser()
    if split not in ("train", "test", "all"):
        raise ValueError(f"split must be 'train', 'test' or 'all', got {split!r}")
    if root.is_file():
        return [str(root)]
    if not root.is_dir():
        raise DataError(f"{root}: expected a voxel data set folder, found nothing")
    files = []
    if _scenevox_root(root) is not None:
        files = [path for _, _, path in list_scenevox(root)]
        n_train, _ = split_counts(len(files))
        files = {"train": files[:n_train], "test": files[n_train:], "all": files}[split]
        if test_limit is not None and split == "test" and len(files) > test_limit:
            pick = np.random.default_rng(seed).choice(len(files), test_limit, replace=False)
            files = [files[i] for i in sorted(pick)]
    if not files:
        splits = ("train", "test") if split == "all" else (split,)
        files = [f for s in splits if (root / s).is_dir() for f in _shards_in(root / s)]
    if not files:
        files = _shards_in(root)
        manifest = read_manifest(root) or {}
        if files and split != "all" and manifest.get("split") not in (None, split, "all"):
            raise DataError(f"{root}: holds the {manifest['split']!r} split (manifest.json), "
                            f"not {split!r}")
    if not files:
        raise DataError(f"{root}: no voxel files for split {split!r} (expected "
                        f"{SCENEVOX}/<sceneId>/<modelId>.npy, [{split}/]shard-*.npz or "
                        f"[{split}/]*.tfrecord)")
    return files


def count_scenes(root, split="train"):
    """Scenes in one split of a voxel data set (a shard manifest's count, else one per .npy
    file), or None when the shards carry no count."""
    files = list_voxel_files(root, split)
    manifest = read_manifest(Path(files[0]).parent)
    if manifest and "n" in manifest:
        return int(manifest["n"])
    if all(str(f).endswith(".npy") for f in files):
        return len(files)
    return None


def _tfrecord_compression(path):
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
            records = tf.data.TFRecordDataset(path, _tfrecord_compression(path))
            scenes, names = [], []
            for record in records:
                ex = tf.io.parse_single_example(record, _TF_FEATURES)
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


def iter_voxel_source(source, split="train", *, grid=None, test_limit=None, seed=0):
    """Yield (name, scene) of a split: names are "<sceneId>/<modelId>" for Scenevox files."""
    for path in list_voxel_files(source, split, test_limit=test_limit, seed=seed):
        if path.endswith(".npy"):
            p = Path(path)
            yield f"{p.parent.name}/{p.stem}", load_voxel_file(path, grid)
        else:
            voxels, names = load_shard(path, grid)
            yield from zip(names, voxels)


def _npy_header(path):
    """(header bytes, dtype, shape, fortran order) of a .npy file."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read(f)
            return f.tell(), dtype, shape, fortran
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path}: cannot read the voxel file ({type(e).__name__}: {e})") from e


def _label_check_tf(scene, where):
    """Scene as uint8 after an in-graph check of its labels; `where` is a string tensor."""
    ok = tf.logical_and(tf.reduce_min(scene) >= 0, tf.reduce_max(scene) < NUM_CLASSES)
    check = tf.debugging.Assert(ok, ["voxel file", where, "has labels outside 0..11: min",
                                     tf.reduce_min(scene), "max", tf.reduce_max(scene)])
    with tf.control_dependencies([check]):
        return tf.cast(scene, tf.uint8)


def _npy_dataset(files, grid, validate):
    headers = [_npy_header(p) for p in (files if validate is True else files[:1])]
    offset, dtype, shape, fortran = headers[0]
    if tuple(shape) != tuple(grid):
        raise DataError(f"{files[0]}: expected grid {tuple(grid)} (x, height, z), found shape "
                        f"{tuple(shape)}")
    in_graph = (not fortran and dtype in _DECODE_RAW and len(set(map(str, headers))) == 1)
    paths = tf.data.Dataset.from_tensor_slices(files)
    if not in_graph:  # mixed or unusual .npy headers: numpy reads them
        def read(path):
            return load_voxel_file(path.decode(), grid)

        def decode(path):
            scene = tf.numpy_function(read, [path], tf.uint8, stateful=False)
            return tf.ensure_shape(scene, grid)
        return paths, decode
    nbytes = int(np.prod(grid)) * dtype.itemsize

    def decode(path):
        raw = tf.io.read_file(path)
        size_ok = tf.debugging.Assert(
            tf.equal(tf.strings.length(raw), offset + nbytes),
            ["voxel file", path, "differs in size from", files[0], "(expected grid",
             str(tuple(grid)), "dtype", str(dtype), "); bytes:", tf.strings.length(raw)])
        with tf.control_dependencies([size_ok]):
            data = tf.io.decode_raw(tf.strings.substr(raw, offset, nbytes), _DECODE_RAW[dtype],
                                    little_endian=dtype.byteorder != ">")
        return _label_check_tf(tf.reshape(data, grid), path)
    return paths, decode


def _tfrecord_decode(grid):
    def decode(record):
        ex = tf.io.parse_single_example(record, _TF_FEATURES)
        shape_ok = tf.debugging.Assert(
            tf.reduce_all(tf.equal(ex["shape"], tf.constant(grid, tf.int64))),
            ["voxel record", ex["name"], "has shape", ex["shape"], "expected", str(tuple(grid))])
        with tf.control_dependencies([shape_ok]):
            scene = tf.reshape(tf.io.decode_raw(ex["voxels"], tf.uint8), grid)
        return _label_check_tf(scene, ex["name"])
    return decode


def _grid_of(files):
    first = files[0]
    manifest = read_manifest(Path(first).parent) or {}
    if "grid" in manifest:
        return tuple(int(g) for g in manifest["grid"])
    if first.endswith(".npy"):
        return tuple(_npy_header(first)[2])
    return tuple(load_shard(first)[0].shape[1:])


def _scene_dataset(source, split, grid, validate, test_limit, seed, shuffle, deterministic):
    """(tf.data.Dataset of uint8 scenes (X, H, Z), grid)."""
    if isinstance(source, np.ndarray):
        scenes = check_scenes(source[None] if source.ndim == 3 else source, "voxel array",
                              grid, batched=True)
        return tf.data.Dataset.from_tensor_slices(scenes), tuple(scenes.shape[1:])
    files = list_voxel_files(source, split, test_limit=test_limit, seed=seed)
    found = _grid_of(files)
    if grid is not None and tuple(grid) != found:
        raise DataError(f"{files[0]}: expected grid {tuple(grid)} (x, height, z), found "
                        f"{found}; convert with `python -m tfgan3d.tools.voxel_data convert "
                        f"SRC DST --grid {'x'.join(map(str, grid))}`")
    grid = found
    if validate == "auto":
        manifest = read_manifest(Path(files[0]).parent) or {}
        n = manifest.get("n", len(files) if files[0].endswith(".npy") else len(files) * 1000)
        validate = True if n <= AUTO_VALIDATE_LIMIT else "first"
    if validate in (True, "first"):
        for path in files if validate is True else files[:1]:
            load_voxel_file(path, grid)
    parallel = dict(num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if files[0].endswith(".npy"):
        paths, decode = _npy_dataset(files, grid, validate)
    else:
        paths = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        paths = paths.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    if files[0].endswith(".npy"):
        return paths.map(decode, **parallel), grid
    if files[0].endswith(".npz"):
        def read(path):
            return load_shard(path.decode(), grid)[0]

        def load(path):
            return tf.ensure_shape(tf.numpy_function(read, [path], tf.uint8, stateful=False),
                                   (None, *grid))
        # Whole shards are read at once: two in flight bounds the memory.
        shards = paths.map(load, num_parallel_calls=2, deterministic=deterministic)
        return shards.unbatch(), grid
    records = paths.interleave(
        lambda p: tf.data.TFRecordDataset(p, _tfrecord_compression(files[0])),
        cycle_length=min(len(files), 4) if shuffle else 1, **parallel)
    return records.map(_tfrecord_decode(grid), **parallel), grid


def _flip(scene, bits):
    """Mirror a scene (X, H, Z) along x when bit 0 is set, along z when bit 1 is."""
    bits = tf.math.floormod(bits, 4)
    scene = tf.cond(bits % 2 == 1, lambda: tf.reverse(scene, [0]), lambda: scene)
    return tf.cond(bits // 2 == 1, lambda: tf.reverse(scene, [2]), lambda: scene)


def make_voxel_dataset(source, *, split="train", batch_size=20, grid=None, shuffle=True,
                       flip=True, repeat=False, seed=0, deterministic=False, cache=False,
                       validate="auto", test_limit=None, shuffle_buffer=512,
                       drop_remainder=False, one_hot=True, num_classes=None):
    """Batches of one-hot voxel scenes for training or evaluation.

    Args:
        source: a data set folder or file (layouts in the module docstring) or an integer array
            (N, X, H, Z) / (X, H, Z) of labels.
        split: "train", "test" or "all" (ignored for arrays).
        batch_size: scenes per batch.
        grid: expected (X, H, Z); None takes the data's. A mismatch raises before training.
        shuffle: shuffle files and scenes (buffer `shuffle_buffer`), reshuffled every epoch.
        flip: mirror each scene along x (axis 0) and z (axis 2), each with probability 1/2.
        repeat: True repeats forever, an int that many times, False once.
        seed: seeds shuffling, flips and the Scenevox `test_limit` draw.
        deterministic: keep the element order of parallel maps.
        cache: cache the decoded uint8 scenes in memory (True) or in files at this path prefix.
        validate: True reads every file in Python first; "first" reads the first and leaves the
            rest to in-graph checks; False only the in-graph checks; "auto" is True up to
            AUTO_VALIDATE_LIMIT scenes.
        test_limit: Scenevox only: draw this many test scenes (the original used 200).
        drop_remainder: drop a last, smaller batch.
        one_hot: True yields float32 one-hot batches; False yields the uint8 labels [B, X, H, Z]
            (12x less to move: at 80x48x80 a one-hot batch of 20 is 295 MB, and the CPU makes
            about two a second; one-hot them on the accelerator with `tf.one_hot` instead).
        num_classes: the model's class count when below the data's 12: every batch is
            checked in the graph to hold labels 0..num_classes-1 only.

    Returns:
        tf.data.Dataset of float32 [B, X, H, Z, 12], one-hot over VOXEL_CLASSES (or uint8
        [B, X, H, Z] labels when not `one_hot`).

    Raises:
        DataError: no files, unreadable or corrupt files, wrong grid, labels outside 0..11
            (in-graph checks raise tf.errors.InvalidArgumentError naming the file instead).
    """
    if validate not in (True, False, "first", "auto"):
        raise ValueError(f"validate must be True, False, 'first' or 'auto', got {validate!r}")
    scenes, grid = _scene_dataset(source, split, grid, validate, test_limit, seed, shuffle,
                                  deterministic)
    if cache:
        scenes = scenes.cache("" if cache is True else str(cache))
    if shuffle:
        scenes = scenes.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        scenes = scenes.repeat(None if repeat is True else int(repeat))
    parallel = dict(num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    if flip:
        bits = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True)
        scenes = tf.data.Dataset.zip((scenes, bits)).map(_flip, **parallel)
    batches = scenes.batch(batch_size, drop_remainder=drop_remainder)
    if num_classes is not None and num_classes < NUM_CLASSES:
        def within(b):
            top = tf.reduce_max(tf.cast(b, tf.int32))
            check = tf.debugging.Assert(top < num_classes, [
                f"{source}: expected labels 0..{num_classes - 1} (--num-classes "
                f"{num_classes}), found label", top])
            with tf.control_dependencies([check]):
                return tf.identity(b)
        batches = batches.map(within, **parallel)
    if one_hot:
        batches = batches.map(lambda b: tf.one_hot(tf.cast(b, tf.int32), NUM_CLASSES,
                                                   dtype=tf.float32), **parallel)
    options = tf.data.Options()
    options.deterministic = deterministic
    return batches.with_options(options).prefetch(tf.data.AUTOTUNE)


# Writers. Each writes into a temporary folder next to the target and renames it at the end.

def _temp_next_to(target):
    target = Path(target).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    return target, tmp


def _commit(tmp, target, overwrite):
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


def _check_target(target, overwrite):
    if Path(target).expanduser().exists() and not overwrite:
        raise FileExistsError(f"{target} exists; pass overwrite=True (--overwrite) to replace it")


def _write_part(folder, k, scenes, names, fmt, compression):
    path = folder / f"part-{k:05d}"
    if fmt == "npz":
        np.savez_compressed(path.with_suffix(".npz"), voxels=np.stack(scenes),
                            names=np.array(names, dtype=str))
        return path.with_suffix(".npz")
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
    return _write_shards(_named(scenes, names), out_dir, shard_size, format, split=split,
                         meta=meta, compression=compression, overwrite=overwrite)


def _write_shards(named, out_dir, shard_size=1000, format="npz", *, split=None, meta=None,
                  compression=None, overwrite=False):
    if format not in ("npz", "tfrecord"):
        raise ValueError(f"shard format must be 'npz' or 'tfrecord', got {format!r}")
    _check_target(out_dir, overwrite)
    target, tmp = _temp_next_to(out_dir)
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
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _commit(tmp, target, overwrite)


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
    return _write_scenevox(_named(scenes, names), out_dir, overwrite)


def _write_scenevox(named, out_dir, overwrite=False):
    _check_target(out_dir, overwrite)
    target, tmp = _temp_next_to(out_dir)
    try:
        n = 0
        for i, (name, scene) in enumerate(named):
            scene = check_scenes(scene, f"scene {i} ({name})")
            scene_id, model_id = _scene_and_model(name, i)
            folder = tmp / SCENEVOX / scene_id
            folder.mkdir(parents=True, exist_ok=True)
            np.save(folder / f"{model_id}.npy", scene)
            n += 1
        if n == 0:
            raise DataError(f"{target}: no scenes to write")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _commit(tmp, target, overwrite)


def _splits_of(src):
    root = Path(src).expanduser()
    if not root.is_dir():
        return ["all"]
    if _scenevox_root(root) is not None and list_scenevox(root):
        return ["train", "test"] if len(list_scenevox(root)) >= 2 else ["all"]
    nested = [s for s in ("train", "test") if (root / s).is_dir() and _shards_in(root / s)]
    return nested or [(read_manifest(root) or {}).get("split") or "all"]


def convert(src, dst, format, *, grid=None, shard_size=1000, compression=None,
            overwrite=False):
    """Convert a voxel data set to another layout ("npz", "tfrecord", "scenevox").

    Train and test splits become DST/train and DST/test shard folders (a single-split source
    becomes DST itself); for "scenevox" all scenes go to DST/Scenevox. `grid` reduces the scenes
    with the simulator's class-aware `downsample_labels`.
    """
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {format!r}")
    _check_target(dst, overwrite)
    splits = _splits_of(src)

    def named(*splits):
        for split in splits:
            for name, scene in iter_voxel_source(src, split):
                yield name, scene if grid is None else downsample_labels(scene, grid)

    if format == "scenevox":
        return _write_scenevox(named(*splits), dst, overwrite)
    options = dict(compression=compression, overwrite=overwrite)
    if len(splits) == 1:
        return _write_shards(named(*splits), dst, shard_size, format, split=splits[0], **options)
    target, tmp = _temp_next_to(dst)
    try:
        for split in splits:
            _write_shards(named(split), tmp / split, shard_size, format, split=split,
                          compression=compression)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _commit(tmp, target, overwrite)


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
        return _write_scenevox(named(0, n_train + n_test), out_dir, overwrite)
    _check_target(out_dir, overwrite)
    target, tmp = _temp_next_to(out_dir)
    try:
        for split, start, n in (("train", 0, n_train), ("test", n_train, n_test)):
            if n > 0:
                meta = {"generator": "tfgan3d.data.voxels", "seed": seed, "start": start,
                        "simulator_version": SIMULATOR_VERSION}
                _write_shards(named(start, n), tmp / split, shard_size, format, split=split,
                              meta=meta)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return _commit(tmp, target, overwrite)
