"""Voxel data sets: the files of a split, the tf.data pipeline of the fcr_alphagan mode, and
conversion between layouts.

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

Every reader (`tfgan3d.data.voxel_formats`, which also writes the formats) checks the grid and
the labels (0..11) and raises `DataError` naming the file, the value found and where.
`make_voxel_dataset` checks files in Python before training (`validate`) and again in the
graph, cheaply, for what it did not read beforehand. The built-in set (`builtin:voxels`) is
resolved and cached by `tfgan3d.data.builtin.resolve_voxel_source`.
"""
import os
from pathlib import Path
import shutil
import sys

import numpy as np
import tensorflow as tf

from tfgan3d.data import shards as shard_sets
from tfgan3d.data.errors import DataError
from tfgan3d.data.voxel_formats import (FORMATS, SCENEVOX, SHARD_EXTENSIONS, TF_FEATURES,
                                        check_scenes, check_target, commit_folder, load_shard,
                                        load_voxel_file, npy_header, read_manifest,
                                        temp_folder_next_to, tfrecord_compression,
                                        write_named_scenevox, write_named_shards)
from tfgan3d.data.voxel_formats import write_shards  # noqa: F401  (tests/eval use it from here)
from tfgan3d.data.voxels import NUM_CLASSES, downsample_labels

TRAIN_FRACTION_PERCENT = 95
AUTO_VALIDATE_LIMIT = 20000  # validate="auto" reads every scene up to this many, else the first
_DECODE_RAW = {np.dtype(t): getattr(tf, t) for t in ("uint8", "int8", "uint16", "int16",
                                                     "int32", "int64")}


def split_counts(n):
    """(n_train, n_test) of n scenes: train is the first 95%, each has a scene when n >= 2."""
    n_train = n * TRAIN_FRACTION_PERCENT // 100
    if n >= 2:
        n_train = min(max(n_train, 1), n - 1)
    return (n, 0) if n == 1 else (n_train, n - n_train)


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


def iter_voxel_source(source, split="train", *, grid=None, test_limit=None, seed=0):
    """Yield (name, scene) of a split: names are "<sceneId>/<modelId>" for Scenevox files."""
    for path in list_voxel_files(source, split, test_limit=test_limit, seed=seed):
        if path.endswith(".npy"):
            p = Path(path)
            yield f"{p.parent.name}/{p.stem}", load_voxel_file(path, grid)
        else:
            voxels, names = load_shard(path, grid)
            yield from zip(names, voxels)


def _label_check_tf(scene, where):
    """Scene as uint8 after an in-graph check of its labels; `where` is a string tensor."""
    ok = tf.logical_and(tf.reduce_min(scene) >= 0, tf.reduce_max(scene) < NUM_CLASSES)
    check = tf.debugging.Assert(ok, ["voxel file", where, "has labels outside 0..11: min",
                                     tf.reduce_min(scene), "max", tf.reduce_max(scene)])
    with tf.control_dependencies([check]):
        return tf.cast(scene, tf.uint8)


def _npy_dataset(files, grid, validate):
    headers = [npy_header(p) for p in (files if validate is True else files[:1])]
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
        ex = tf.io.parse_single_example(record, TF_FEATURES)
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
        return tuple(npy_header(first)[2])
    return tuple(load_shard(first)[0].shape[1:])


def _check_read(files, grid, num_classes):
    """Reads `files` (every scene is checked by `load_voxel_file`); with `num_classes`, a label
    >= num_classes raises DataError naming the file (and the scene of a shard). Returns the
    occupied (label > 0) voxels counted."""
    occupied = 0
    for path in files:
        scenes = load_voxel_file(path, grid)
        occupied += int(np.count_nonzero(scenes))
        if num_classes is not None and scenes.size and int(scenes.max()) >= num_classes:
            top = int(scenes.max())
            scene = (f" (scene {int(np.argmax(scenes.reshape(len(scenes), -1).max(1)))})"
                     if scenes.ndim == 4 else "")
            raise DataError(f"{path}{scene}: expected labels 0..{num_classes - 1} "
                            f"(--num-classes {num_classes}), found label {top}; give "
                            f"--num-classes {NUM_CLASSES} for the data's classes")
    return occupied


def _scene_dataset(source, split, grid, validate, test_limit, seed, shuffle, deterministic,
                   num_classes=None, worker=None):
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
        occupied = _check_read(files if validate is True else files[:1], grid, num_classes)
        if validate is True and not occupied:
            print(f"warning: {source}: every scene of split {split!r} ({len(files)} files) is "
                  f"empty (label 0 everywhere): the data set holds no occupied voxel",
                  file=sys.stderr, flush=True)
    parallel = dict(num_parallel_calls=tf.data.AUTOTUNE, deterministic=deterministic)
    # worker (n, i): worker i of n reads its own files, or with fewer files than workers its
    # own scenes of them (data/shards.py).
    files, by_element = shard_sets.worker_files(files, worker) if worker else (files, None)
    if by_element:
        def per_worker(ds):
            return ds.shard(*by_element)
    else:
        def per_worker(ds):
            return ds
    if files[0].endswith(".npy"):
        paths, decode = _npy_dataset(files, grid, validate)
    else:
        paths = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        paths = paths.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    if files[0].endswith(".npy"):
        return per_worker(paths.map(decode, **parallel)), grid
    if files[0].endswith(".npz"):
        def read(path):
            return load_shard(path.decode(), grid)[0]

        def load(path):
            return tf.ensure_shape(tf.numpy_function(read, [path], tf.uint8, stateful=False),
                                   (None, *grid))
        # Whole shards are read at once: two in flight bounds the memory.
        shards = paths.map(load, num_parallel_calls=2, deterministic=deterministic)
        return per_worker(shards.unbatch()), grid
    records = paths.interleave(
        lambda p: tf.data.TFRecordDataset(p, tfrecord_compression(files[0])),
        cycle_length=min(len(files), 4) if shuffle else 1, **parallel)
    return per_worker(records.map(_tfrecord_decode(grid), **parallel)), grid


def _flip(scene, bits):
    """Mirror a scene (X, H, Z) along x when bit 0 is set, along z when bit 1 is."""
    bits = tf.math.floormod(bits, 4)
    scene = tf.cond(bits % 2 == 1, lambda: tf.reverse(scene, [0]), lambda: scene)
    return tf.cond(bits // 2 == 1, lambda: tf.reverse(scene, [2]), lambda: scene)


def make_voxel_dataset(source, *, split="train", batch_size=20, grid=None, shuffle=True,
                       flip=True, repeat=False, seed=0, deterministic=False, cache=False,
                       validate="auto", test_limit=None, shuffle_buffer=512,
                       drop_remainder=False, one_hot=True, num_classes=None, worker=None):
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
        num_classes: the model's class count when below the data's 12: the files read by
            `validate` are checked for labels 0..num_classes-1 (DataError naming the file),
            the rest in the graph, batch by batch.
        worker: (num_workers, index) of a cluster: this worker reads only its own shard
            files (`tfgan3d.data.shards.worker_files`) and TensorFlow's auto-sharding is off;
            None reads them all (`shards.current_worker()` gives this from TF_CONFIG).

    Returns:
        tf.data.Dataset of float32 [B, X, H, Z, 12], one-hot over VOXEL_CLASSES (or uint8
        [B, X, H, Z] labels when not `one_hot`).

    Raises:
        DataError: no files, unreadable or corrupt files, wrong grid, labels outside 0..11
            or beyond num_classes (in-graph checks raise tf.errors.InvalidArgumentError
            naming the file instead). When every scene was read and none holds an occupied
            voxel, one `warning:` line goes to stderr.
    """
    if validate not in (True, False, "first", "auto"):
        raise ValueError(f"validate must be True, False, 'first' or 'auto', got {validate!r}")
    scenes, grid = _scene_dataset(source, split, grid, validate, test_limit, seed, shuffle,
                                  deterministic,
                                  num_classes if num_classes and num_classes < NUM_CLASSES
                                  else None,
                                  worker=worker)
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
    if worker and worker[0] > 1:                      # already sharded per worker
        options.experimental_distribute.auto_shard_policy = \
            tf.data.experimental.AutoShardPolicy.OFF
    return batches.with_options(options).prefetch(tf.data.AUTOTUNE)


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
    check_target(dst, overwrite)
    splits = _splits_of(src)

    def named(*splits):
        for split in splits:
            for name, scene in iter_voxel_source(src, split):
                yield name, scene if grid is None else downsample_labels(scene, grid)

    if format == "scenevox":
        return write_named_scenevox(named(*splits), dst, overwrite)
    options = dict(compression=compression, overwrite=overwrite)
    if len(splits) == 1:
        return write_named_shards(named(*splits), dst, shard_size, format, split=splits[0],
                                  **options)
    target, tmp = temp_folder_next_to(dst)
    try:
        for split in splits:
            write_named_shards(named(split), tmp / split, shard_size, format, split=split,
                          compression=compression)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return commit_folder(tmp, target, overwrite)
