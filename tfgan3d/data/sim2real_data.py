"""Sim2real data (seed 001, section 4.1): labelled simulation and unlabelled real images as two
tf.data streams, and labelled real images for evaluation and for the supervised bounds.

Sources (config.sim_data, config.real_data, or the `source` of make_eval_dataset):

    builtin:rooms-sim        simulation (the default): the scene simulator's "rooms-sim" domain,
                             Regime-R rooms rendered flat with exact depth
    builtin:rooms-real       real (the default): "rooms-real", the same content distribution
                             with textures, mixed lights, camera defects and sensor depth
    builtin:scenes-virtual, builtin:scenes-real   pix2pix's regimes V and R (content differs)
    a folder                 one of the layouts below

Built-in sets come from `tfgan3d.data.builtin.resolve_data_source` (tfgan3d folders layout), so
pix2pix and sim2real share one cache. Training reads only the RGB of the real set; its depth
and labels are read by `make_eval_dataset` and, for the upper-bound baseline only, by
`make_labelled_dataset`.

Folder layouts: `tfgan3d.data.domain_files` (VKITTI-like or tfgan3d folders for the
simulation, KITTI-like for the real images; a root without split folders is split 90-10).

Depth units: config sim_depth_scale / real_depth_scale (metres per unit), else dataset.json
"depth_scale", else 0.01 (simulation, cm) and 1/256 (real). Depth files may also be 8-bit grey
or .npy, as in `tfgan3d.data.images`.

Classes: config.class_map is a JSON or CSV file or "kitti12" (formats:
`tfgan3d.data.classes`). Without a map the classes are the simulation's own; real labels are
matched to them by name, or taken as ids.

Config fields read (any object with attributes, or a dict; missing or None -> the default of
`DataOptions`): sim_data, real_data, image_size (int or (h, w)), load_size (random crop from
it; default image_size), batch_size, seed, num_classes (None: from the classes), class_map,
n_train, n_test, sim_size (built-in render size; default image_size), max_depth,
deterministic, cache_dir, flip, sim_depth_scale, real_depth_scale, data_check ("all" decodes
every file once before training, "first", "headers").
"""
from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfgan3d.data import builtin, paired, shards
from tfgan3d.data.classes import IGNORE_LABEL, load_class_map
from tfgan3d.data.domain_files import (DATA_CHECKS, DomainFiles, derive_classes,
                                       discover_domain, validate_domain)
from tfgan3d.data.images import DataError, decode_depth_tf, decode_rgb_tf
from tfgan3d.data.labels import LabelLookup, label_lookup, labels_tf
from tfgan3d.data.paired import size_hw

# discover_domain and validate_domain are used here and by tests/test_validation.py through
# this module; DataError and IGNORE_LABEL by eval/sim2real_eval.py.
__all__ = ["DataError", "IGNORE_LABEL", "DataOptions", "data_options", "data_root",
           "discover_domain", "validate_domain", "resolve_classes", "make_sim2real_datasets",
           "make_labelled_dataset", "make_eval_dataset"]


# ---- options ------------------------------------------------------------------------------------

@dataclasses.dataclass
class DataOptions:
    """The config fields this module reads, with their defaults."""
    sim_data: str = "builtin:rooms-sim"
    real_data: str = "builtin:rooms-real"
    image_size: object = 256
    load_size: object = None
    batch_size: int = 1
    seed: int = 0
    num_classes: int | None = None
    class_map: object = None
    n_train: int = 1500
    n_test: int = 150
    sim_size: object = None
    max_depth: float = 10.0
    deterministic: bool = False
    cache_dir: str | None = None
    flip: bool = True
    sim_depth_scale: float | None = None
    real_depth_scale: float | None = None
    data_check: str = "all"

    def __post_init__(self):
        self.image_size = size_hw(self.image_size, "image_size")
        self.load_size = size_hw(self.load_size or self.image_size, "load_size")
        if self.load_size[0] < self.image_size[0] or self.load_size[1] < self.image_size[1]:
            raise ValueError(f"load_size {self.load_size} must be at least image_size "
                             f"{self.image_size}")
        if self.data_check not in DATA_CHECKS:
            raise ValueError(f"data_check must be one of {DATA_CHECKS}, got {self.data_check!r}")


def data_options(config=None, **overrides) -> DataOptions:
    """DataOptions from a config object or dict; None values keep the defaults."""
    values = {}
    for field in dataclasses.fields(DataOptions):
        value = (config.get(field.name) if isinstance(config, dict)
                 else getattr(config, field.name, None))
        if overrides.get(field.name) is not None:
            value = overrides[field.name]
        if value is not None:
            values[field.name] = value
    return DataOptions(**values)


def data_root(opts: DataOptions, source: str) -> Path:
    """The folder of a source, generating a built-in set on first use."""
    return builtin.resolve_data_source(source, n_train=opts.n_train, n_test=opts.n_test,
                                       size=opts.sim_size or opts.image_size, seed=opts.seed,
                                       cache_dir=opts.cache_dir)


# ---- tf.data pipelines --------------------------------------------------------------------------

def _load(element, files, lookup, size, maps_size, with_depth, with_labels):
    """File paths -> {"rgb": float 0..255 [h, w, 3], "maps": [h', w', k]} with maps = depth
    metres, valid, labels (as present); a missing map ("") is invalid depth / ignored labels."""
    # Shard records hold the files' bytes; folders their paths.
    read = (lambda data: data) if files.layout == "shards" else tf.io.read_file
    rgb = decode_rgb_tf(read(element["rgb"]))
    hw = tf.shape(rgb)[:2]
    maps = []
    if with_depth:
        path = element["depth"]
        depth, valid = tf.cond(
            tf.strings.length(path) > 0,
            lambda: decode_depth_tf(read(path), files.spec),
            lambda: (tf.zeros(hw), tf.zeros(hw, tf.bool)))
        maps += [depth, tf.cast(valid, tf.float32)]
    if with_labels:
        path = element["labels"]
        labels = tf.cond(tf.strings.length(path) > 0,
                         lambda: labels_tf(read(path), element["name"], lookup),
                         lambda: tf.fill(hw, IGNORE_LABEL))
        maps.append(tf.cast(labels, tf.float32))
    rgb = tf.image.resize(tf.cast(rgb, tf.float32), size, method="bilinear", antialias=True)
    sample = {"rgb": rgb}
    if maps:  # nearest: invalid zeros and label ids never blend
        sample["maps"] = tf.image.resize(tf.stack(maps, axis=-1), maps_size, method="nearest")
    return sample


def _outputs(sample, size, maps_size, with_depth, with_labels, clip_depth):
    rgb = sample["rgb"]
    rgb.set_shape([size[0], size[1], 3])
    out = {"image": tf.clip_by_value(rgb / 127.5 - 1.0, -1.0, 1.0)}
    if "maps" in sample:
        maps = sample["maps"]
        maps.set_shape([maps_size[0], maps_size[1], None])
        if with_depth:
            depth = maps[..., 0:1]
            out["depth"] = tf.minimum(depth, clip_depth) if clip_depth else depth
            out["depth_valid"] = maps[..., 1:2]
        if with_labels:
            out["labels"] = tf.cast(tf.round(maps[..., -1]), tf.int32)
    return out


def _make_dataset(files, lookup, *, size, load_size=None, maps_size=None, batch_size,
                  training, with_depth, with_labels, seed=0, deterministic=False, flip=True,
                  repeat=None, clip_depth=None, with_names=False):
    """The shared pipeline: shuffled, repeating, random crop (load_size -> size) and flip when
    training; in file order otherwise."""
    load_size = load_size if training and load_size else size
    maps_size = size if training else (maps_size or size)
    slices = {} if files.layout == "shards" else {"rgb": files.rgb, "name": files.names}
    if with_depth and slices:
        slices["depth"] = files.depth if files.depth is not None else [""] * len(files)
    if with_labels and slices:
        slices["labels"] = files.labels if files.labels is not None else [""] * len(files)
    if with_labels and lookup is None:
        lookup = LabelLookup("ids", np.arange(256, dtype=np.int32),
                             np.full(256, IGNORE_LABEL, np.int32), "no labels")
    repeat = training if repeat is None else repeat
    load_maps = load_size if training else maps_size

    def load_fn(element):
        sample = _load(element, files, lookup, load_size, load_maps, with_depth, with_labels)
        sample["name"] = element["name"]
        return sample

    stream_seed = seed if deterministic else None
    if files.layout == "shards":            # streamed from TFRecord shards, never loaded whole
        ds = shards.domain_records(files, training=training, seed=stream_seed, repeat=repeat)
    else:
        ds = tf.data.Dataset.from_tensor_slices(slices)
        if training:
            ds = ds.shuffle(len(files), seed=stream_seed,
                            reshuffle_each_iteration=repeat or not deterministic)
        if repeat:
            ds = ds.repeat()
    ds = ds.map(load_fn, num_parallel_calls=tf.data.AUTOTUNE)
    if training and (flip or load_size != size):
        def augment(index, sample):  # one crop window and one flip for the image and maps
            maps = sample.get("maps", sample["rgb"][..., :0])
            out = paired.augment(index, {"rgb": sample["rgb"], "maps": maps}, size, flip,
                                  stream_seed)
            if "maps" not in sample:
                del out["maps"]
            out["name"] = sample["name"]
            return out
        ds = ds.enumerate().map(augment, num_parallel_calls=tf.data.AUTOTUNE)

    def finish(sample):
        out = _outputs(sample, size, maps_size, with_depth, with_labels, clip_depth)
        if with_names:
            out["name"] = sample["name"]
        return out

    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = bool(deterministic or not training)
    return ds.with_options(options)


def resolve_classes(opts: DataOptions, sim_files: DomainFiles | None = None):
    """(classes, class_map): the map's classes, else the simulation's own; checks num_classes.

    Raises:
        DataError: num_classes disagrees with the classes found.
    """
    class_map = load_class_map(opts.class_map)
    if class_map is not None:
        classes = class_map.classes
    else:
        if sim_files is None:
            sim_files = discover_domain(data_root(opts, opts.sim_data), "train", "sim",
                                        depth_scale=opts.sim_depth_scale)
        classes = derive_classes(sim_files, opts.num_classes)
    if opts.num_classes and opts.num_classes != len(classes):
        raise DataError(f"--num-classes {opts.num_classes}: expected the {len(classes)} "
                        f"classes the {'--class-map' if class_map else 'simulation data'} "
                        f"defines {list(classes)}; give --num-classes {len(classes)} (or leave "
                        f"it out) or another --class-map")
    return tuple(classes), class_map


def make_sim2real_datasets(config):
    """Training streams of the sim2real mode.

    Args:
        config: the mode's config (fields: module docstring).
    Returns:
        (sim_ds, real_ds, info): repeating, shuffled batches of
          sim_ds  {"image" float32 [B, H, W, 3] in [-1, 1], "depth" float32 [B, H, W, 1] metres
                  clipped to max_depth (0 where invalid), "depth_valid" float32 [B, H, W, 1],
                  "labels" int32 [B, H, W] (255 = ignore)}
          real_ds {"image"} only: real depth and labels are never read for training.
          info    {"num_classes", "class_names", "image_size", "n_sim", "n_real", "sim_root",
                  "real_root", "ignore_label", "max_depth"}
    Raises:
        DataError: a bad file, folder, class map or colour (validated before training).
    """
    opts = data_options(config)
    sim_root, real_root = data_root(opts, opts.sim_data), data_root(opts, opts.real_data)
    sim_files = discover_domain(sim_root, "train", "sim", depth_scale=opts.sim_depth_scale)
    real_files = discover_domain(real_root, "train", "real", depth_scale=opts.real_depth_scale)
    classes, class_map = resolve_classes(opts, sim_files)
    lookup = label_lookup(sim_files, classes, class_map)
    # Simulated depth is a training target, clipped to max_depth: a wrong unit is refused.
    validate_domain(sim_files, lookup, opts.data_check, max_depth=opts.max_depth,
                    depth_flags=("--max-depth", "--sim-depth-scale"))
    validate_domain(real_files, None, opts.data_check, maps=())
    common = dict(size=opts.image_size, load_size=opts.load_size, batch_size=opts.batch_size,
                  training=True, deterministic=opts.deterministic, flip=opts.flip)
    sim_ds = _make_dataset(sim_files, lookup, with_depth=True, with_labels=True,
                           seed=opts.seed, clip_depth=opts.max_depth, **common)
    real_ds = _make_dataset(real_files, None, with_depth=False, with_labels=False,
                            seed=opts.seed + 1, **common)
    info = {"num_classes": len(classes), "class_names": list(classes),
            "image_size": opts.image_size, "n_sim": len(sim_files), "n_real": len(real_files),
            "sim_root": str(sim_root), "real_root": str(real_root),
            "ignore_label": IGNORE_LABEL, "max_depth": opts.max_depth}
    return sim_ds, real_ds, info


def make_labelled_dataset(source, split="train", *, config=None, role="real", training=True,
                          image_size=None, gt_size=None, batch_size=None, repeat=None,
                          with_names=False, require_labels=False):
    """Images with their depth and labels, mapped onto the evaluated classes.

    For the supervised bounds (training=True: shuffled, repeating, flipped; the real-like
    upper bound reads the real train split this way) and for evaluation (training=False).
    Images without any ground truth are left out; an image without depth has depth_valid 0,
    one without labels is all 255.

    Args:
        source: "builtin:NAME" or a folder; role: "sim" or "real" (its layout and depth units).
        config: the run's config (classes, class map, sizes, built-in settings); may be None.
        image_size: size of "image" (default config image_size); gt_size: size of the ground
            truth maps when not training (default image_size): the evaluation resolution.
    Returns:
        (dataset, info): batches of {"image", "depth", "depth_valid", "labels"} (depth in
        metres, not clipped) and "name" when asked; info {"num_classes", "class_names",
        "count", "has_depth", "has_labels", "root", "image_size", "gt_size"}.
    Raises:
        DataError: no ground truth (or no labels with require_labels), bad files or colours.
    """
    opts = data_options(config, image_size=image_size, batch_size=batch_size)
    root = data_root(opts, source)
    scale = opts.sim_depth_scale if role == "sim" else opts.real_depth_scale
    files = discover_domain(root, split, role, depth_scale=scale)
    classes, class_map = resolve_classes(
        opts, files if role == "sim" and opts.sim_data == source else None)
    lookup = label_lookup(files, classes, class_map)
    if require_labels and not files.has_labels():
        raise DataError(f"{files.root}: expected class labels (labels/ or classgt/), found none")
    # Shards keep every record (one without ground truth scores nothing).
    keep = list(range(len(files))) if files.layout == "shards" else [
        i for i in range(len(files))
        if (files.depth and files.depth[i]) or (files.labels and files.labels[i])]
    if 0 < len(keep) < len(files):
        warnings.warn(f"{files.root}: {len(files) - len(keep)} of {len(files)} images have "
                      f"no depth and no labels; left out", stacklevel=2)
    if not keep:
        raise DataError(f"{files.root}: expected ground truth (depth/ or labels/ or classgt/) "
                        f"for at least one image, found none")
    if files.layout != "shards":
        files = dataclasses.replace(
            files, names=[files.names[i] for i in keep], rgb=[files.rgb[i] for i in keep],
            depth=[files.depth[i] for i in keep] if files.depth is not None else None,
            labels=[files.labels[i] for i in keep] if files.labels is not None else None)
    validate_domain(files, lookup, opts.data_check)
    gt = size_hw(gt_size, "gt_size") if gt_size is not None else opts.image_size
    ds = _make_dataset(files, lookup, size=opts.image_size, maps_size=gt,
                       batch_size=opts.batch_size, training=training, with_depth=True,
                       with_labels=True, seed=opts.seed, deterministic=opts.deterministic,
                       flip=opts.flip, repeat=repeat, with_names=with_names)
    info = {"num_classes": len(classes), "class_names": list(classes), "count": len(files),
            "has_depth": files.has_depth(), "has_labels": files.has_labels(),
            "root": files.root, "image_size": opts.image_size,
            "gt_size": opts.image_size if training else gt}
    return ds, info


def make_eval_dataset(source, split="test", *, config=None, image_size=None, gt_size=None,
                      batch_size=8, role="real"):
    """Real (or any) test images with their depth and labels, in file order, not repeated.

    Returns `make_labelled_dataset(..., training=False, with_names=True)`: (dataset, info);
    each batch holds "image" at image_size and "depth", "depth_valid", "labels" at gt_size,
    and "name".
    """
    return make_labelled_dataset(source, split, config=config, role=role, training=False,
                                 image_size=image_size, gt_size=gt_size, batch_size=batch_size,
                                 repeat=False, with_names=True)
