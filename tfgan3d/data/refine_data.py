"""Sources of the simgan mode: labeled synthetic images and unlabeled real images (SimGAN).

Sources, for `make_refine_datasets(source_synthetic, source_real)` and `labeled_test_set`:

    builtin:eyes   grey 35 x 55 eyes of `tfgan3d.data.eyes`: synthetic-train (labels: gaze x,
                   y, z and pupil x, y in pixels) vs real-train (its labels are never read);
                   the labeled test set is real-test.
    builtin:depth  the hand experiment's analogue with the scene simulator: clean depth maps of
                   the "virtual" domain vs the Kinect-like sensor_depth (holes, noisy edges) of
                   the "real-like" domain, 1 channel, d -> 2 d / MAX_DEPTH - 1 with invalid
                   (0) -> -1; 64 x 64 unless `image_size` says otherwise (224 x 224 in the
                   paper). No labels in training; the test set's labels are the exact depth
                   maps of its real-like scenes, in the same scale.
    SHARDS         a refine shard set (`python -m tfgan3d.tools.make_dataset --domain eyes
                   --layout shards`, `tfgan3d.data.shards`): ROOT/synthetic, ROOT/real and
                   ROOT/test shard folders (or one of them), streamed from disk in training.
    FOLDER         synthetic: FOLDER/labels.csv with a header, a `file` column (relative to
                   FOLDER) and label columns (e.g. gaze_x,gaze_y,gaze_z); real: a folder of
                   images, no labels. PNG (8 or 16 bit, scaled by 255 or 65535) or JPEG, grey or
                   colour; every image of a folder has one size.

Every image comes out float32 in [-1, 1], [H, W, C] with C = 1 (grey=True; colour is converted
by luminance) or 3. Built-in sets are generated in memory and cached as .npz files under
$TFGAN3D_CACHE (default ~/.cache/tfgan3d). Folders are validated before any training: every
problem raises `DataError` naming the CSV, row, file or folder.
"""
import csv
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfgan3d.data import eyes as eye_sim
from tfgan3d.data import builtin, shards
from tfgan3d.data.images import IMAGE_EXTENSIONS, DataError, probe_image
from tfgan3d.data.folders import list_images

__all__ = ["DataError", "make_refine_datasets", "labeled_test_set", "read_labeled_folder",
           "check_image_files", "builtin_arrays", "render_builtin", "depth_to_unit"]

LABELS_CSV = "labels.csv"
_DEFAULT_SIZE = {"eyes": (eye_sim.EYE_HEIGHT, eye_sim.EYE_WIDTH), "depth": (64, 64)}
_DEFAULT_COUNT = {("eyes", "synthetic"): 20000, ("eyes", "real"): 20000, ("eyes", "test"): 2000,
                  ("depth", "synthetic"): 2000, ("depth", "real"): 2000, ("depth", "test"): 200}
_DEPTH_START = {"synthetic": 0, "real": 500_000_000, "test": 1_000_000_000}
_EYE_SPLIT = {"synthetic": "synthetic-train", "real": "real-train", "test": "real-test"}
_DECODE_CHECKS = 2000  # files fully decoded by the validation (all headers are read)


def depth_to_unit(depth, max_depth=None):
    """Depth in metres -> [-1, 1] by 2 d / max_depth - 1; invalid (0) -> -1, clipped above."""
    from tfgan3d.data.scenes import MAX_DEPTH
    max_depth = MAX_DEPTH if max_depth is None else max_depth
    depth = np.asarray(depth, np.float32)
    unit = np.clip(2.0 * depth / max_depth - 1.0, -1.0, 1.0)
    return np.where(depth > 0, unit, -1.0).astype(np.float32)


# --- built-in sets ---------------------------------------------------------------------------

def _resize(images, size):
    """Bilinear (antialiased) resize of (N, H, W, C) float arrays, in chunks."""
    if tuple(images.shape[1:3]) == tuple(size):
        return images
    chunks = [tf.image.resize(images[i:i + 1024], size, antialias=True).numpy()
              for i in range(0, len(images), 1024)]
    return np.concatenate(chunks) if chunks else np.zeros((0, *size, images.shape[-1]),
                                                          np.float32)


def render_builtin(name, role, n, size, seed, offset=0):
    """(images, labels) of `n` examples of a built-in set's role, rendered now (no cache),
    starting at example `offset` (a set rendered in chunks equals one rendered whole)."""
    if name == "eyes":
        images, labels = [], []
        for start in range(0, n, 1000):
            part = eye_sim.render_split(_EYE_SPLIT[role], min(1000, n - start), seed=seed,
                                        offset=offset + start)
            images.append(2.0 * part["image"] - 1.0)
            if role != "real":  # the real-train split has no labels to read
                labels.append(np.concatenate([part["gaze"], part["pupil"]], axis=1))
        images = np.concatenate(images) if images else np.zeros((0, *_DEFAULT_SIZE[name], 1))
        labels = np.concatenate(labels) if labels else np.zeros((len(images), 5))
        if tuple(size) != _DEFAULT_SIZE[name]:
            images = _resize(images, size)
            scale = np.array([size[1] / eye_sim.EYE_WIDTH, size[0] / eye_sim.EYE_HEIGHT])
            labels[:, 3:] = (labels[:, 3:] + 0.5) * scale - 0.5  # pupil in the new pixels
        if role == "real":
            labels = np.zeros((len(images), 0))
        return images.astype(np.float32), labels.astype(np.float32)
    from tfgan3d.data.scenes import render_scene
    domain = "virtual" if role == "synthetic" else "real-like"
    images = np.zeros((n, *size, 1), np.float32)
    labels = np.zeros((n, *size, 1) if role == "test" else (n, 0), np.float32)
    for i in range(n):
        scene = render_scene(_DEPTH_START[role] + offset + i, domain, size[0], size[1], seed)
        images[i, ..., 0] = depth_to_unit(scene["depth" if role == "synthetic" else
                                                "sensor_depth"])
        if role == "test":
            labels[i, ..., 0] = depth_to_unit(scene["depth"])
    return images, labels


def builtin_arrays(source, role, n=None, *, image_size=None, seed=0, cache_dir=None):
    """Images and labels of a built-in set, generated once and cached as .npz.

    Args:
        source: "builtin:eyes" or "builtin:depth".
        role: "synthetic" (labeled training), "real" (unlabeled training) or "test" (the
            labeled real-like test split).
        n: number of examples; default 20000 / 20000 / 2000 eyes, 2000 / 2000 / 200 depth maps.
        image_size: (height, width); default (35, 55) eyes, (64, 64) depth.
        seed: simulator seed.
        cache_dir: folder of the .npz cache; None: $TFGAN3D_CACHE or ~/.cache/tfgan3d; False:
            no cache.
    Returns:
        (images float32 (n, H, W, 1) in [-1, 1], labels float32): (n, 5) gaze and pupil for
        eyes, (n, 0) for "real" and depth training, (n, H, W, 1) exact depth for the depth test.
    """
    name = builtin.builtin_name(source, "refine")
    if role not in _EYE_SPLIT:
        raise ValueError(f"role must be one of {tuple(_EYE_SPLIT)}, got {role!r}")
    n = _DEFAULT_COUNT[name, role] if n is None else int(n)
    size = tuple(int(s) for s in (image_size or _DEFAULT_SIZE[name]))
    return builtin.cached_arrays(source, role, n, size, seed, cache_dir)


# --- folders ---------------------------------------------------------------------------------

def read_labeled_folder(folder, label_columns=None, csv_name=LABELS_CSV):
    """Reads and checks FOLDER/labels.csv.

    Args:
        folder: the synthetic image folder.
        label_columns: the label columns to use, in order; default every column but `file`.
        csv_name: the CSV's name inside the folder.
    Returns:
        (paths list of Path, labels float32 (n, k), label names tuple).
    Raises:
        DataError: a missing folder or CSV, a header without `file` or without a requested
            label column, a row with the wrong number of values, a non-numeric label, a file
            that does not exist, or a CSV without rows; names the CSV, the row and the file.
    """
    folder = Path(folder).expanduser()
    csv_path = folder / csv_name
    if not folder.is_dir():
        raise DataError(f"{folder}: expected a folder of synthetic images with {csv_name}, "
                        f"found no folder")
    if not csv_path.is_file():
        raise DataError(f"{csv_path}: expected a labels CSV (header: file,<label columns>), "
                        f"found no file")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{csv_path}: expected a readable CSV, found {e}") from e
    rows = [(line, row) for line, row in enumerate(rows, start=1) if any(c.strip() for c in row)]
    if not rows:
        raise DataError(f"{csv_path}: expected a header line (file,<label columns>), found an "
                        f"empty file")
    header = [c.strip() for c in rows[0][1]]
    if "file" not in header:
        raise DataError(f"{csv_path}: expected a `file` column in the header, found "
                        f"{','.join(header)}")
    names = [c for c in header if c != "file"] if label_columns is None else list(label_columns)
    missing = [c for c in names if c not in header]
    if missing:
        raise DataError(f"{csv_path}: label columns {missing} are not in the header "
                        f"{','.join(header)}")
    if not names:
        raise DataError(f"{csv_path}: expected at least one label column after `file`, found "
                        f"none")
    file_col, label_cols = header.index("file"), [header.index(c) for c in names]
    paths, labels = [], []
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise DataError(f"{csv_path}: row {line} has {len(row) - 1} label values, expected "
                            f"{len(header) - 1} from the header {','.join(header)}")
        path = folder / row[file_col].strip()
        if not path.is_file():
            raise DataError(f"{csv_path}: row {line} names {row[file_col].strip()!r}, found no "
                            f"such file in {folder}")
        try:
            labels.append([float(row[c]) for c in label_cols])
        except ValueError as e:
            raise DataError(f"{csv_path}: row {line} ({row[file_col].strip()}): expected "
                            f"numeric labels in {','.join(names)}, found {e}") from e
        bad = [n for n, v in zip(names, labels[-1]) if not np.isfinite(v)]
        if bad:
            raise DataError(f"{csv_path}: row {line} ({row[file_col].strip()}): expected finite "
                            f"labels, found {', '.join(f'{n}={row[c].strip()}' for n, c in zip(names, label_cols) if n in bad)}")
        paths.append(path)
    if not paths:
        raise DataError(f"{csv_path}: expected one row per image after the header, found none")
    return paths, np.asarray(labels, np.float32), tuple(names)


def check_image_files(paths, where, seed=0, decode_checks=_DECODE_CHECKS):
    """Checks that images can be read and share one size.

    Every header is read; `decode_checks` files (all of them when fewer; a seeded sample
    otherwise) are fully decoded.

    Returns:
        (height, width) of the images.
    Raises:
        DataError: an unreadable or corrupt image (named), or images of two sizes (one of each
            named); `where` (a folder or CSV) starts the message.
    """
    sizes = {}
    for path in paths:
        info = probe_image(path)
        if info.format == "npy":
            raise DataError(f"{path}: expected a PNG or JPEG image in {where}, found a .npy "
                            f"array")
        sizes.setdefault((info.height, info.width), path)
        if len(sizes) > 1:
            (size_a, path_a), (size_b, path_b) = sizes.items()
            raise DataError(f"{where}: expected images of one size, found {path_a} of "
                            f"{size_a[0]}x{size_a[1]} and {path_b} of {size_b[0]}x{size_b[1]} "
                            f"(height x width)")
    order = np.random.default_rng(seed).permutation(len(paths))[:decode_checks]
    for i in sorted(order):
        try:
            tf.io.decode_image(tf.io.read_file(str(paths[i])), expand_animations=False)
        except tf.errors.OpError as e:
            raise DataError(f"{paths[i]}: expected a decodable image in {where}, found corrupt "
                            f"data ({e.message.splitlines()[0]})") from e
    return next(iter(sizes))


def _decode(path, channels, native, size, *, encoded=False):
    """Image file (or its bytes, `encoded`) -> float32 [H, W, C] in [-1, 1]; `native` is the
    size found by validation."""
    data = path if encoded else tf.io.read_file(path)
    image = tf.io.decode_image(data, channels=channels, dtype=tf.float32,
                               expand_animations=False)  # 8 bit / 255, 16 bit / 65535
    image = tf.ensure_shape(image, [*native, channels])
    if tuple(native) != tuple(size):
        image = tf.image.resize(image, size, antialias=True)
    return image * 2.0 - 1.0


def _load_folder_images(paths, channels, native, size):
    return np.stack([_decode(str(p), channels, native, size).numpy()
                     for p in paths]).astype(np.float32)


# --- public entry points ---------------------------------------------------------------------

def _resolve(source, role, *, n, image_size, seed, label_columns, cache_dir):
    """{"arrays": (images, labels)} for a built-in set, {"paths", "labels"} for a folder."""
    if builtin.is_builtin(source):
        images, labels = builtin_arrays(source, role, n, image_size=image_size, seed=seed,
                                        cache_dir=cache_dir)
        names = (eye_sim.EYE_LABEL_NAMES if builtin.builtin_name(source, "refine") == "eyes"
                 else ())
        return {"images": images, "labels": labels, "size": images.shape[1:3],
                "names": names if labels.ndim == 2 and labels.shape[1] else (),
                "where": source}
    folder = Path(source).expanduser()
    sharded = shards.shard_folder(folder, role) if folder.is_dir() else None
    if sharded is not None:
        return _shard_part(sharded, role, n)
    if role == "real":
        paths, labels, names = list_images(folder, IMAGE_EXTENSIONS), None, ()
        where = folder
    else:
        paths, labels, names = read_labeled_folder(folder, label_columns)
        where = folder / LABELS_CSV
    if n is not None:
        paths = paths[:n]
        labels = None if labels is None else labels[:n]
    size = check_image_files(paths, where, seed)
    if labels is None:
        labels = np.zeros((len(paths), 0), np.float32)
    return {"paths": [str(p) for p in paths], "labels": labels, "size": size, "names": names,
            "where": where}


def _shard_part(folder, role, n):
    """{"shards", ...} of a refine shard folder: read as a stream by `_dataset`."""
    manifest = shards.read_manifest(folder)
    if manifest["kind"] != "refine":
        raise DataError(f"{folder}: expected simgan image shards (kind 'refine'), found "
                        f"{manifest['kind']!r} shards")
    meta = manifest["meta"]
    count = int(manifest["n"]) if n is None else min(int(n), int(manifest["n"]))
    label_shape = tuple(meta.get("label_shape", ())) if role != "real" else (0,)
    return {"shards": shards.shard_paths(folder), "count": count, "limited": n is not None,
            "size": tuple(meta["image_size"]), "label_shape": label_shape,
            "names": tuple(meta.get("label_names", ())) if role != "real" else (),
            "where": folder}


def _shard_dataset(part, key_label, *, size, channels, seed, shuffle_buffer):
    """Endless, shuffled {"image", "label"} of a refine shard folder, streamed: shards in a
    reshuffled order, read several at once, a bounded buffer of encoded records."""
    features = {"image": tf.io.FixedLenFeature([], tf.string)}
    if key_label:
        features["label"] = tf.io.FixedLenFeature(part["label_shape"], tf.float32)
    limited = part["limited"]
    ds = shards.record_stream(part["shards"], shuffle=not limited, seed=seed,
                              repeat=not limited)
    ds = ds.map(lambda r: tf.io.parse_single_example(r, features),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if limited:                       # the first `count` records, in file order, repeated
        ds = ds.take(part["count"]).repeat()
    ds = ds.shuffle(min(part["count"], shuffle_buffer, 4 * shards.SHUFFLE_BUFFER), seed=seed,
                    reshuffle_each_iteration=True)
    return ds.map(lambda item: {**item, "image": _decode(item["image"], channels, part["size"],
                                                         size, encoded=True)},
                  num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _count(part) -> int:
    return part["count"] if "count" in part else len(part["labels"])


def _label_shape(part) -> tuple:
    return part["label_shape"] if "label_shape" in part else tuple(part["labels"].shape[1:])


def _dataset(part, key_label, *, batch_size, size, channels, seed, shuffle_buffer):
    n = _count(part)
    if "shards" in part:
        ds = _shard_dataset(part, key_label, size=size, channels=channels, seed=seed,
                            shuffle_buffer=shuffle_buffer)
        return ds.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    if "images" in part:
        images = _resize(part["images"], size)
        if channels == 3 and images.shape[-1] == 1:
            images = np.repeat(images, 3, axis=-1)
        ds = tf.data.Dataset.from_tensor_slices(
            {"image": images, "label": part["labels"]} if key_label else {"image": images})
        ds = ds.shuffle(min(n, shuffle_buffer), seed=seed, reshuffle_each_iteration=True)
    else:
        items = {"image": part["paths"], "label": part["labels"]} if key_label else {
            "image": part["paths"]}
        ds = tf.data.Dataset.from_tensor_slices(items)
        ds = ds.shuffle(min(n, max(shuffle_buffer, 100_000)), seed=seed,
                        reshuffle_each_iteration=True)
        ds = ds.map(lambda item: {**item, "image": _decode(item["image"], channels,
                                                           part["size"], size)},
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return ds.repeat().batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)


def make_refine_datasets(source_synthetic, source_real=None, *, batch_size, image_size=None,
                         seed=0, n_synthetic=None, n_real=None, grey=True, label_columns=None,
                         cache_dir=None, shuffle_buffer=10000):
    """The two endless, shuffled training streams of the simgan mode.

    Args:
        source_synthetic: "builtin:eyes", "builtin:depth" or a folder with labels.csv.
        source_real: "builtin:eyes", "builtin:depth" or a folder of images; None: the built-in
            set named by `source_synthetic` (its unlabeled real-like split).
        batch_size: images per batch (incomplete batches are dropped).
        image_size: (height, width) of the output; default the sources' own size (which must
            then agree).
        seed: simulator seed of built-in sets and shuffle seed.
        n_synthetic, n_real: examples to use (the first ones of a folder, in file order);
            built-in defaults 20000 eyes or 2000 depth maps; folders default to all.
        grey: 1-channel output (colour converted by luminance); else 3 channels (grey
            repeated). Depth maps always have 1 channel.
        label_columns: the synthetic CSV's label columns; default all but `file`.
        cache_dir: built-in cache folder (see `builtin_arrays`).
        shuffle_buffer: shuffle buffer of in-memory sets (folders shuffle file names).
    Returns:
        (synthetic_ds yielding {"image": [B, H, W, C], "label": [B, K]}, real_ds yielding
        {"image": [B, H, W, C]}, info dict: image_shape, label_names, n_synthetic, n_real,
        sources, value_range).
    Raises:
        DataError: a bad folder, CSV or image (see `read_labeled_folder`, `check_image_files`),
            an unknown built-in name, or sources of different sizes without `image_size`.
    """
    if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if source_real is None:
        if not builtin.is_builtin(source_synthetic) and not (
                Path(source_synthetic).expanduser().is_dir() and
                shards.shard_folder(Path(source_synthetic).expanduser(), "real") is not None):
            raise DataError(f"--real-data: expected a folder of real images when --data is a "
                            f"folder ({source_synthetic}), found none given")
        source_real = source_synthetic
    common = {"image_size": image_size, "seed": seed, "label_columns": label_columns,
              "cache_dir": cache_dir}
    synthetic = _resolve(source_synthetic, "synthetic", n=n_synthetic, **common)
    real = _resolve(source_real, "real", n=n_real, **common)
    size = tuple(image_size) if image_size else tuple(synthetic["size"])
    if not image_size and tuple(real["size"]) != size:
        raise DataError(f"the synthetic images ({synthetic['where']}) are {size[0]}x{size[1]} "
                        f"but the real images ({real['where']}) are "
                        f"{real['size'][0]}x{real['size'][1]}; give --image-size HEIGHT WIDTH to "
                        f"resize both")
    depth = "builtin:depth" in (source_synthetic, source_real)
    channels = 1 if grey or depth else 3
    options = {"batch_size": batch_size, "size": size, "channels": channels,
               "shuffle_buffer": shuffle_buffer}
    synthetic_ds = _dataset(synthetic, True, seed=seed, **options)
    real_ds = _dataset(real, False, seed=seed + 1, **options)
    info = {"image_shape": (*size, channels), "label_names": tuple(synthetic["names"]),
            "label_shape": _label_shape(synthetic),
            "n_synthetic": _count(synthetic), "n_real": _count(real),
            "source_synthetic": str(source_synthetic), "source_real": str(source_real),
            "value_range": (-1.0, 1.0)}
    return synthetic_ds, real_ds, info


def labeled_test_set(source, *, n=None, image_size=None, seed=0, grey=True, label_columns=None,
                     cache_dir=None):
    """The labeled real test images: built-in real-like test splits or a folder + labels.csv.

    Returns:
        (images float32 (n, H, W, C) in [-1, 1], labels float32): (n, 5) gaze x, y, z and
        pupil x, y for builtin:eyes, the exact depth (n, H, W, 1) for builtin:depth, (n, K)
        CSV labels for a folder.
    Raises:
        DataError: as `read_labeled_folder` and `check_image_files`.
    """
    part = _resolve(source, "test", n=n, image_size=image_size, seed=seed,
                    label_columns=label_columns, cache_dir=cache_dir)
    size = tuple(image_size) if image_size else tuple(part["size"])
    if "images" in part:
        images = _resize(part["images"], size)
        if not grey and source != "builtin:depth":
            images = np.repeat(images, 3, axis=-1)
        return images, part["labels"]
    if "shards" in part:               # a test set is read whole, as a folder's is
        part = dict(part, limited=True)
        ds = _shard_dataset(part, True, size=size, channels=1 if grey else 3, seed=seed,
                            shuffle_buffer=1).take(part["count"]).batch(1024)
        batches = [(b["image"].numpy(), b["label"].numpy()) for b in ds]
        return (np.concatenate([b[0] for b in batches]).astype(np.float32),
                np.concatenate([b[1] for b in batches]).astype(np.float32))
    return _load_folder_images(part["paths"], 1 if grey else 3, part["size"], size), \
        part["labels"]
