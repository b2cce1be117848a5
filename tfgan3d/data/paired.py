"""Paired RGB / depth data: discovery and validation on the Python side, then the pix2pix
tf.data pipeline.

On-disk layouts of one split folder (ROOT, or ROOT/train and ROOT/test):

    folders   ROOT/rgb/NAME.png|jpg, ROOT/depth/NAME.png|jpg|npy, optional ROOT/labels/NAME.png,
              matched by the file stem NAME
    aligned   ROOT/NAME.png|jpg of width 2W: left half A = RGB, right half B = grey depth

ROOT/dataset.json (and a split folder's own dataset.json, which wins) may hold "layout",
"depth_encoding", "depth_scale", "grey_convention", "max_depth" and "classes": defaults that
explicit arguments override.

Workflow: `discover_pairs` -> `validate_pairs` (decodes before training, raises `DataError`
naming the file) -> `make_pix2pix_dataset`.
"""
import dataclasses
import os
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfgan3d.data.images import (DEPTH_EXTENSIONS, IMAGE_EXTENSIONS, DataError, DepthSpec,
                                 check_depth_dtype, check_grey, decode_depth_tf,
                                 decode_labels_tf, decode_rgb_tf, probe_image, read_depth,
                                 read_rgb, split_aligned_tf)
from tfgan3d.data.depth_range import DepthRange
from tfgan3d.data.folders import (LAYOUTS, index_by_stem, list_images, listing,
                                  load_dataset_json, spec_defaults, split_folder)

__all__ = ["DataError", "DepthSpec", "PairedFiles", "discover_pairs", "validate_pairs",
           "make_pix2pix_dataset", "make_rgb_dataset", "size_hw", "augment"]


@dataclasses.dataclass
class PairedFiles:
    """The files of one split, matched and ordered by name.

    Attributes:
        layout: "folders" or "aligned".
        inputs: RGB paths (folders) or A|B image paths (aligned).
        depths: depth paths, or None for the aligned layout.
        labels: class-id PNG paths, or None.
        spec: DepthSpec with every field resolved (arguments, then dataset.json, then defaults).
        names: file stems, one per pair.
        root: the split folder the files came from.
        classes: "classes" from dataset.json, if any.
    """
    layout: str
    inputs: list
    depths: list | None
    labels: list | None
    spec: DepthSpec
    names: list
    root: str = ""
    classes: object = None

    def __len__(self):
        return len(self.inputs)


# ---- discovery ----------------------------------------------------------------------------------

def discover_pairs(root, split="train", layout="auto", spec=None, *, strict=True):
    """Finds and matches the files of one split.

    Args:
        root: data set folder (may hold train/ and test/ and dataset.json).
        split: subfolder to read; when ROOT has no split folders, ROOT itself. None: ROOT.
        layout: "folders", "aligned", or "auto" (dataset.json, else what the folder holds).
        spec: DepthSpec; its None fields come from dataset.json, then the defaults.
        strict: when a name lacks its rgb/depth/labels partner, raise (True) or drop the name
            with a warning (False).
    Returns:
        PairedFiles.
    Raises:
        DataError: missing or empty folders, names without partners (strict), bad dataset.json.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: expected a data set folder, found "
                        f"{'a file' if root.exists() else 'nothing'}")
    from tfgan3d.data import shards        # a shard set: streamed records (data/shards.py)
    sharded = shards.shard_folder(root, split)
    if sharded is not None:
        return shards.discover_pair_shards(sharded, spec)
    folder = split_folder(root, split)
    meta = load_dataset_json(root, folder) if folder != root else load_dataset_json(root)
    spec = (spec or DepthSpec()).resolve(spec_defaults(meta))
    if layout == "auto":
        layout = meta.get("layout") or _detect_layout(folder)
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be 'auto' or one of {LAYOUTS}, got {layout!r}")

    if layout == "aligned":
        if spec.encoding not in ("auto", "grey8"):
            raise DataError(f"{folder}: aligned A|B images hold 8-bit grey depth, found depth "
                            f"encoding {spec.encoding!r} requested")
        inputs = list_images(folder)
        return PairedFiles("aligned", [str(p) for p in inputs], None, None, spec,
                           [p.stem for p in inputs], str(folder), meta.get("classes"))

    rgb = index_by_stem(folder / "rgb", IMAGE_EXTENSIONS)
    depth = index_by_stem(folder / "depth", DEPTH_EXTENSIONS)
    labels = (index_by_stem(folder / "labels", (".png",))
              if (folder / "labels").is_dir() else None)
    problems = []
    for kind, have, partner in (("depth", rgb, depth), ("rgb", depth, rgb)):
        missing = set(have) - set(partner)
        if missing:
            problems.append(f"{len(missing)} name(s) without a {kind} file in "
                            f"{folder / kind}: {listing(missing)}")
    names = sorted(set(rgb) & set(depth))
    if labels is not None:
        missing = set(names) - set(labels)
        if missing:
            problems.append(f"{len(missing)} name(s) without a labels file in "
                            f"{folder / 'labels'}: {listing(missing)}")
        names = [n for n in names if n in labels]
    if problems and strict:
        raise DataError(f"{folder}: expected an rgb, depth (and labels) file for every name, "
                        f"found unpaired files (add their partners or remove them):\n  "
                        + "\n  ".join(problems))
    if problems:
        warnings.warn(f"{folder}: dropping unpaired files:\n  " + "\n  ".join(problems),
                      stacklevel=2)
    if not names:
        raise DataError(f"{folder}: expected rgb/depth pairs with matching names, found none")
    return PairedFiles("folders", [str(rgb[n]) for n in names], [str(depth[n]) for n in names],
                       [str(labels[n]) for n in names] if labels is not None else None,
                       spec, names, str(folder), meta.get("classes"))


def _detect_layout(folder):
    if (folder / "rgb").is_dir() or (folder / "depth").is_dir():
        return "folders"
    if any(p.suffix.lower() in IMAGE_EXTENSIONS for p in folder.iterdir() if p.is_file()):
        return "aligned"
    raise DataError(f"{folder}: expected rgb/ and depth/ folders or A|B images, found "
                    f"{'an empty folder' if not any(folder.iterdir()) else 'neither'}")


# ---- validation ---------------------------------------------------------------------------------

def validate_pairs(files, check="all", *, max_errors=5):
    """Checks the files before training; collects every problem and raises once.

    Args:
        files: PairedFiles.
        check: "all" decodes every file; "headers" reads only headers (sizes, dtypes, widths);
            "first" reads every header and decodes the first pair.
        max_errors: problems quoted in the message (all are counted).
    Returns:
        `files`, so that calls chain.
    Raises:
        DataError: corrupt or unreadable files, odd A|B widths, rgb/depth/labels of different
            sizes, depth dtypes that disagree with the spec, more than half of the decoded
            valid depth beyond spec.max_depth (a wrong unit; more than 5 % warns: see
            `tfgan3d.data.depth_range`). Each problem names its file.
    """
    if check not in ("all", "headers", "first"):
        raise ValueError(f"check must be 'all', 'headers' or 'first', got {check!r}")
    if files.layout == "shards":            # the stream checks each record as it reads it
        from tfgan3d.data import shards
        return shards.validate_pair_shards(files)
    errors = []
    depth_range = DepthRange(float(files.spec.max_depth))
    for i in range(len(files)):
        decode = check == "all" or (check == "first" and i == 0)
        try:
            if files.layout == "aligned":
                _check_aligned(files.inputs[i], files.spec, decode)
            else:
                _check_folder_pair(files, i, decode, depth_range)
        except DataError as e:
            errors.append(str(e))
    if len(errors) == 1:
        raise DataError(errors[0])
    if errors:
        listed = "\n  ".join(errors[:max_errors])
        more = f"\n  ... and {len(errors) - max_errors} more" if len(errors) > max_errors else ""
        raise DataError(f"{len(errors)} of {len(files)} pairs in {files.root} failed "
                        f"validation:\n  {listed}{more}")
    depth_range.check(files.root)
    return files


def _check_aligned(path, spec, decode):
    info = probe_image(path)
    if info.format == "npy" or info.dtype != "uint8":
        raise DataError(f"{path}: expected an 8-bit A|B image, found "
                        f"{'a .npy array' if info.format == 'npy' else info.dtype}")
    if info.width % 2:
        raise DataError(f"{path}: expected an A|B image of even width 2W, found width "
                        f"{info.width}")
    if decode:
        image = read_rgb(path)
        check_grey(path, image[:, info.width // 2:], what="depth half B")


def _check_folder_pair(files, i, decode, depth_range=None):
    rgb_path, depth_path = files.inputs[i], files.depths[i]
    rgb_info, depth_info = probe_image(rgb_path), probe_image(depth_path)
    if rgb_info.format == "npy":
        raise DataError(f"{rgb_path}: expected an RGB image (png/jpg), found a .npy array")
    check_depth_dtype(depth_path, depth_info, files.spec.encoding)
    sizes = [(rgb_path, rgb_info), (depth_path, depth_info)]
    if files.labels is not None:
        label_info = probe_image(files.labels[i])
        if label_info.format != "png" or label_info.dtype != "uint8":
            raise DataError(f"{files.labels[i]}: expected an 8-bit PNG of class ids, found "
                            f"{label_info.dtype} {label_info.format}")
        sizes.append((files.labels[i], label_info))
    for path, info in sizes[1:]:
        if (info.height, info.width) != (rgb_info.height, rgb_info.width):
            raise DataError(f"{path}: expected the size of {rgb_path} "
                            f"({rgb_info.height}x{rgb_info.width}), found "
                            f"{info.height}x{info.width}")
    if decode:
        read_rgb(rgb_path)
        depth, valid = read_depth(depth_path, files.spec)
        if not valid.any():
            raise DataError(f"{depth_path}: expected some valid depth, found none (every "
                            f"pixel 0, NaN or Inf)")
        if depth_range is not None:
            depth_range.add(depth_path, depth, valid)
        if files.labels is not None:
            try:
                labels = decode_labels_tf(tf.io.read_file(files.labels[i])).numpy()
            except tf.errors.OpError as e:
                raise DataError(f"{files.labels[i]}: expected a decodable labels PNG, found "
                                f"corrupt data") from e
            n = len(files.classes) if files.classes else None
            top = int(labels[labels != 255].max(initial=0))
            if n is not None and top >= n:
                raise DataError(f"{files.labels[i]}: expected class ids 0..{n - 1} (the "
                                f"{n} classes of dataset.json) or 255, found {top}")


# ---- tf.data pipelines --------------------------------------------------------------------------

def size_hw(size, name):
    """(height, width) of an int or a pair; ValueError naming `name` otherwise."""
    if isinstance(size, (int, np.integer)):
        size = (size, size)
    if (len(size) != 2 or not all(isinstance(s, (int, np.integer)) and s > 0 for s in size)):
        raise ValueError(f"{name} must be a positive int or (height, width), got {size!r}")
    return int(size[0]), int(size[1])


def _load_sample(element, files, size, with_labels):
    """One element of file paths -> float32 maps resized to `size`:
    rgb [h, w, 3] in 0..255 and `maps` [h, w, 2 or 3] = depth metres, valid, (labels)."""
    if files.layout == "aligned":
        rgb, depth, valid = split_aligned_tf(tf.io.read_file(element["input"]), files.spec)
    else:
        rgb = decode_rgb_tf(tf.io.read_file(element["input"]))
        depth, valid = decode_depth_tf(tf.io.read_file(element["depth"]), files.spec)
    maps = [depth, tf.cast(valid, tf.float32)]
    if with_labels:
        maps.append(tf.cast(decode_labels_tf(tf.io.read_file(element["labels"])), tf.float32))
    rgb = tf.image.resize(tf.cast(rgb, tf.float32), size, method="bilinear", antialias=True)
    # Nearest for depth, mask and labels: invalid zeros never blend into valid depth.
    maps = tf.image.resize(tf.stack(maps, axis=-1), size, method="nearest")
    return {"rgb": rgb, "maps": maps}


def augment(index, sample, crop, flip, seed):
    """pix2pix jitter: one random crop window and one flip for rgb, depth, mask and labels.

    Args:
        index: position in the stream (int64 scalar): with `seed`, the stateless seed of this
            sample's crop and flip.
        sample: {"rgb" [h, w, 3], "maps" [h, w, k]} (k may be 0).
        crop: (height, width) of the window.
        flip: also flip left-right, half of the time.
        seed: None draws fresh random seeds.
    Returns:
        {"rgb" [crop, 3], "maps" [crop, k]}.
    """
    if seed is None:
        pair_seed = tf.random.uniform([2], maxval=tf.int64.max, dtype=tf.int64)
    else:
        pair_seed = tf.stack([tf.constant(seed, tf.int64), tf.cast(index, tf.int64)])
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(pair_seed, 2))
    stacked = tf.concat([sample["rgb"], sample["maps"]], axis=-1)
    channels = stacked.shape[-1]
    stacked = tf.image.stateless_random_crop(stacked, [crop[0], crop[1], channels], crop_seed)
    if flip:
        stacked = tf.image.stateless_random_flip_left_right(stacked, flip_seed)
    return {"rgb": stacked[..., :3], "maps": stacked[..., 3:]}


def _to_model_inputs(sample, size, max_depth):
    rgb, maps = sample["rgb"], sample["maps"]
    rgb.set_shape([size[0], size[1], 3])
    maps.set_shape([size[0], size[1], None])
    depth = maps[..., 0:1]
    out = {"real_a": tf.clip_by_value(rgb / 127.5 - 1.0, -1.0, 1.0),
           "real_b": tf.clip_by_value(2.0 * depth / max_depth - 1.0, -1.0, 1.0),
           "valid_b": maps[..., 1:2],
           "depth": depth}
    if maps.shape[-1] == 3:
        out["labels"] = tf.cast(tf.round(maps[..., 2]), tf.int32)
    return out


def make_pix2pix_dataset(files, *, load_size=286, crop_size=256, batch_size=1, training=True,
                         flip=True, shuffle=True, deterministic=False, seed=0, max_depth=None,
                         repeat=False, num_parallel_calls=tf.data.AUTOTUNE, cache=False,
                         labels=False, drop_remainder=False):
    """The pix2pix input pipeline over validated PairedFiles.

    Training: resize to `load_size` (RGB bilinear, depth/mask/labels nearest), random crop to
    `crop_size` with one window for all maps, random horizontal flip of all together, shuffled.
    Not training: resize to `crop_size`, in file order.

    Args:
        files: PairedFiles (run `validate_pairs` first: the graph does not re-check files).
        load_size, crop_size: int or (height, width).
        deterministic: shuffle with `seed` and crop/flip with stateless ops seeded by
            (seed, position in the stream), in order. Each pass over a non-repeating data set
            is then identical; with `repeat=True` epochs differ but every run gives the same
            stream.
        max_depth: metres mapped to +1 in `real_b`; None: `files.spec.max_depth`.
        cache: True caches decoded, resized samples in memory, a string caches them in that
            file; shuffling then happens after the cache with a buffer of up to 1024.
        labels: add "labels" int32 [B, h, w] (needs a labels/ folder).
    Returns:
        tf.data.Dataset of dicts: "real_a" [B, h, w, 3] in [-1, 1], "real_b" [B, h, w, 1] =
        clip(2 d / max_depth - 1), "valid_b" [B, h, w, 1] 1 where depth is valid, "depth"
        [B, h, w, 1] metres (0 where invalid), and "labels" when asked.
    """
    if len(files) == 0:
        raise DataError(f"{files.root}: no pairs to build a data set from")
    if files.layout == "shards":            # streamed from TFRecord shards, never loaded whole
        from tfgan3d.data import shards
        return shards.make_pix2pix_dataset(
            files, load_size=load_size, crop_size=crop_size, batch_size=batch_size,
            training=training, flip=flip, shuffle=shuffle, deterministic=deterministic,
            seed=seed, max_depth=max_depth, repeat=repeat,
            num_parallel_calls=num_parallel_calls, labels=labels,
            drop_remainder=drop_remainder)
    if labels and files.labels is None:
        raise DataError(f"{files.root}: labels asked for, found no labels/ folder")
    crop = size_hw(crop_size, "crop_size")
    load = size_hw(load_size, "load_size") if training else crop
    if load[0] < crop[0] or load[1] < crop[1]:
        raise ValueError(f"load_size {load} must be at least crop_size {crop}")
    max_depth = float(max_depth or files.spec.max_depth)
    slices = {"input": files.inputs}
    if files.depths is not None:
        slices["depth"] = files.depths
    if labels:
        slices["labels"] = files.labels

    def load_fn(element):
        return _load_sample(element, files, load, labels)

    ds = tf.data.Dataset.from_tensor_slices(slices)
    if training:
        stream_seed = seed if deterministic else None
        reshuffle = repeat or not deterministic
        if cache:
            ds = ds.map(load_fn, num_parallel_calls=num_parallel_calls)
            ds = ds.cache(cache if isinstance(cache, str) else "")
        if shuffle:
            buffer = min(len(files), 1024) if cache else len(files)
            ds = ds.shuffle(buffer, seed=stream_seed, reshuffle_each_iteration=reshuffle)
        if repeat:
            ds = ds.repeat()
        if not cache:
            ds = ds.map(load_fn, num_parallel_calls=num_parallel_calls)
        ds = ds.enumerate().map(lambda i, s: augment(i, s, crop, flip, stream_seed),
                                num_parallel_calls=num_parallel_calls)
    else:
        ds = ds.map(load_fn, num_parallel_calls=num_parallel_calls)
        if cache:
            ds = ds.cache(cache if isinstance(cache, str) else "")
        if repeat:
            ds = ds.repeat()
    ds = ds.map(lambda s: _to_model_inputs(s, crop, max_depth),
                num_parallel_calls=num_parallel_calls)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = bool(deterministic or not training)
    return ds.with_options(options)


def make_rgb_dataset(paths, size, batch_size=1, *, num_parallel_calls=tf.data.AUTOTUNE):
    """RGB images for inference, in order, with their names and original sizes.

    Args:
        paths: a folder of png/jpg images, or a list of image paths.
        size: int or (height, width) the images are resized to (bilinear).
    Returns:
        tf.data.Dataset of dicts: "real_a" float32 [B, h, w, 3] in [-1, 1], "name" string [B]
        (file stems), "size" int32 [B, 2] (original height, width).
    Raises:
        DataError: an empty folder or a file that is not an image (headers are checked).
    """
    size = size_hw(size, "size")
    if isinstance(paths, (str, os.PathLike)) and Path(paths).is_dir():
        paths = list_images(paths)
    paths = [str(p) for p in paths]
    if not paths:
        raise DataError("expected at least one RGB image path, found none")
    for path in paths:
        if probe_image(path).format == "npy":
            raise DataError(f"{path}: expected an RGB image (png/jpg), found a .npy array")

    def load_fn(path, name):
        rgb = decode_rgb_tf(tf.io.read_file(path))
        original = tf.shape(rgb)[:2]
        rgb = tf.image.resize(tf.cast(rgb, tf.float32), size, method="bilinear", antialias=True)
        rgb.set_shape([size[0], size[1], 3])
        return {"real_a": tf.clip_by_value(rgb / 127.5 - 1.0, -1.0, 1.0), "name": name,
                "size": tf.cast(original, tf.int32)}

    names = [Path(p).stem for p in paths]
    ds = tf.data.Dataset.from_tensor_slices((paths, names))
    ds = ds.map(load_fn, num_parallel_calls=num_parallel_calls, deterministic=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
