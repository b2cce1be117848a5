"""Sharded TFRecord sets: image data that every mode streams from disk and never loads whole.

A shard folder holds

    shard-00000-of-00008.tfrecord   one tf.train.Example per example (features by kind below)
    manifest.json                   {"format": "tfgan3d-shards", "kind", "split", "n",
                                     "shards": [file names], "counts": [per shard], "meta": {}}

and a shard set is one such folder or a ROOT with train/ and test/ shard folders (simgan's:
synthetic/, real/, test/). Kinds:

    pairs    pix2pix and sim2real: "input" the RGB file's bytes (or pix2pix's A|B image),
             "depth" and "labels" the depth / label file's bytes ("" when absent), "name", and
             "invalid_fraction" of the depth map rounded to 1e-4 (pix2pix's
             --max-invalid-fraction filters on it in the stream; meta "invalid_counts" holds
             how many records have each value, so the kept count is known without a pass).
             The bytes are the original files', decoded by the folder readers' own functions;
             meta "dataset_json" carries the source's dataset.json, "layout" folders|aligned,
             and a sim2real domain's label kind, colour table and classes.
    refine   simgan: "image" a 16-bit grey (or 8-bit RGB) PNG, "label" float values, "name";
             meta "label_names", "label_shape", "image_size", "channels".

fcr_alphagan's voxel shards (`tfgan3d.data.voxel_formats`) are TFRecords of their own manifest;
`shard_files` and `record_stream` serve them too.

Streaming: `record_stream` reads the shards of this worker (`shard_files`), in a reshuffled
order each pass, several at once (`interleave`); memory holds a bounded shuffle buffer of
encoded records and the batches in flight, whatever the set's size. Writers
(`ShardWriter`, `write_pair_shards`, `write_refine_shards`) build the set in a temporary folder
beside the target and rename it when complete.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfgan3d.data.errors import DataError

FORMAT = "tfgan3d-shards"
MANIFEST = "manifest.json"
KINDS = ("pairs", "refine")
QUANTUM = 1e-4                  # invalid_fraction is stored rounded to this
SHUFFLE_BUFFER = 256            # encoded records held for shuffling (bounded memory)
CYCLE_LENGTH = 4                # shards read at once

PAIR_FEATURES = {
    "input": tf.io.FixedLenFeature([], tf.string),
    "depth": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "labels": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "name": tf.io.FixedLenFeature([], tf.string, default_value=""),
    "invalid_fraction": tf.io.FixedLenFeature([], tf.float32, default_value=0.0),
}


# ---- manifests and discovery --------------------------------------------------------------------

def read_manifest(folder) -> dict | None:
    """The manifest of a tfgan3d shard folder, or None when `folder` is not one.

    Raises:
        DataError: a manifest.json of this format that is unreadable or names missing shards.
    """
    path = Path(folder) / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: expected a JSON manifest, found unreadable JSON ({e})") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return None                     # another format (voxel shards have their own)
    for key in ("kind", "n", "shards", "counts"):
        if key not in manifest:
            raise DataError(f"{path}: expected a {FORMAT} manifest with {key!r}, found "
                            f"keys {sorted(manifest)}")
    if manifest["kind"] not in KINDS:
        raise DataError(f"{path}: expected kind one of {KINDS}, found {manifest['kind']!r}")
    missing = [s for s in manifest["shards"] if not (Path(folder) / s).is_file()]
    if missing:
        raise DataError(f"{path}: names {len(missing)} shard(s) that are not in {folder}: "
                        f"{', '.join(missing[:3])}")
    return manifest


def is_shard_folder(folder) -> bool:
    """True when `folder` holds a tfgan3d shard manifest."""
    return Path(folder).is_dir() and read_manifest(folder) is not None


def shard_folder(root, split) -> Path | None:
    """ROOT/SPLIT or ROOT itself when that is a shard folder (ROOT's manifest must name this
    split or none); None when neither is.

    Raises:
        DataError: ROOT is a shard folder of another split.
    """
    root = Path(root)
    if split and is_shard_folder(root / split):
        return root / split
    manifest = read_manifest(root) if root.is_dir() else None
    if manifest is None:
        return None
    if split and manifest.get("split") not in (None, split, "all"):
        raise DataError(f"{root}: holds the {manifest['split']!r} split ({MANIFEST}), "
                        f"not {split!r}")
    return root


def shard_paths(folder) -> list[str]:
    """The shard files of a shard folder, in the manifest's order."""
    manifest = read_manifest(folder)
    if manifest is None:
        raise DataError(f"{folder}: expected a shard folder with {MANIFEST}, found none")
    return [str(Path(folder) / s) for s in manifest["shards"]]


# ---- workers ------------------------------------------------------------------------------------

def shard_files(files, num_workers: int = 1, worker_index: int = 0) -> list:
    """The files worker `worker_index` of `num_workers` reads: every num_workers-th, starting
    at its index, so that workers read disjoint files and together all of them.

    Raises:
        ValueError: fewer files than workers (a worker would read nothing), or an index
            outside 0..num_workers-1.
    """
    files = list(files)
    if num_workers < 1 or not 0 <= worker_index < num_workers:
        raise ValueError(f"worker {worker_index} of {num_workers}: expected 0 <= index < "
                         f"workers and workers >= 1")
    if len(files) < num_workers:
        raise ValueError(f"{num_workers} workers need at least {num_workers} shard files to "
                         f"read disjoint data, found {len(files)}"
                         + (f" ({files[0]}, ...)" if files else "")
                         + "; write the set with a smaller --shard-size")
    return files[worker_index::num_workers]


def worker_files(files, worker: tuple[int, int] | None = None):
    """(files this worker reads, None) when there are at least as many files as workers
    (`shard_files`); else (all files, (num_workers, index)): each worker then keeps its own
    elements of them (`Dataset.shard`), still disjoint. `worker` defaults to
    `current_worker()` (TF_CONFIG)."""
    num_workers, index = worker or current_worker()
    if num_workers > 1 and len(files) < num_workers:
        return list(files), (num_workers, index)
    return shard_files(files, num_workers, index), None


def current_worker() -> tuple[int, int]:
    """(number of training workers, this worker's index) from TF_CONFIG (chief first, then
    the workers); (1, 0) without a cluster."""
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return 1, 0
    try:
        config = json.loads(raw)
    except json.JSONDecodeError:
        return 1, 0         # distribute.get_strategy reports a bad TF_CONFIG
    cluster, task = config.get("cluster", {}), config.get("task", {})
    chiefs, workers = len(cluster.get("chief", [])), len(cluster.get("worker", []))
    kind, index = task.get("type"), int(task.get("index", 0))
    if chiefs + workers <= 1 or kind not in ("chief", "worker"):
        return 1, 0
    return chiefs + workers, index if kind == "chief" else chiefs + index


def record_stream(files, *, shuffle: bool, seed=None, repeat: bool = False,
                  compression: str = "", worker: tuple[int, int] | None = None,
                  cycle_length: int = CYCLE_LENGTH) -> tf.data.Dataset:
    """Serialized records of this worker's shards, streamed.

    Args:
        files: shard paths (TFRecord).
        shuffle: reshuffle the shard order each pass and read `cycle_length` shards at once,
            one record from each in turn; False reads them in order, one after the other.
        seed: shuffle seed (None: fresh each run).
        repeat: endless.
        worker: (num_workers, index) or None (read every shard). With several workers each
            reads its own shards (`shard_files`; with fewer shards than workers, its own
            records of them) and TensorFlow's auto-sharding is turned off.
            `current_worker()` gives this worker's from TF_CONFIG.
    """
    num_workers, index = worker or (1, 0)
    files, by_element = worker_files(files, (num_workers, index))
    ds = tf.data.Dataset.from_tensor_slices(files)
    if shuffle:
        ds = ds.shuffle(len(files), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    ds = ds.interleave(lambda f: tf.data.TFRecordDataset(f, compression),
                       cycle_length=min(cycle_length, len(files)) if shuffle else 1,
                       block_length=1, num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=True)
    if by_element:                      # fewer shards than workers: every k-th record
        ds = ds.shard(*by_element)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.OFF if num_workers > 1
        else tf.data.experimental.AutoShardPolicy.AUTO)
    return ds.with_options(options)


# ---- writing ------------------------------------------------------------------------------------

def _feature(value):
    if isinstance(value, (bytes, str)):
        value = value.encode() if isinstance(value, str) else value
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
    array = np.asarray(value)
    if array.dtype.kind in "iub":
        return tf.train.Feature(int64_list=tf.train.Int64List(value=array.ravel().tolist()))
    return tf.train.Feature(float_list=tf.train.FloatList(value=array.ravel().tolist()))


class ShardWriter:
    """Writes examples into shards of `shard_size` in a temporary folder beside `out`; `close`
    writes the manifest and renames the folder to `out` (nothing appears at `out` on failure).

    Use as a context manager: `with ShardWriter(out, "pairs", 500) as w: w.write({...})`,
    then `w.meta.update(...)` before the block ends.
    """

    def __init__(self, out, kind: str, shard_size: int, *, split=None, overwrite=False):
        from tfgan3d.data.voxel_formats import check_target, temp_folder_next_to
        if kind not in KINDS:
            raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
        if shard_size < 1:
            raise ValueError(f"--shard-size: expected >= 1, got {shard_size}")
        check_target(out, overwrite)
        self.kind, self.shard_size, self.split, self.overwrite = kind, shard_size, split, overwrite
        self.target, self.tmp = temp_folder_next_to(out)
        self.counts, self.meta, self._writer = [], {}, None

    def write(self, features: dict) -> None:
        if self._writer is None or self.counts[-1] >= self.shard_size:
            if self._writer is not None:
                self._writer.close()
            self._writer = tf.io.TFRecordWriter(str(self.tmp / f"part-{len(self.counts):05d}"))
            self.counts.append(0)
        example = tf.train.Example(features=tf.train.Features(
            feature={k: _feature(v) for k, v in features.items()}))
        self._writer.write(example.SerializeToString())
        self.counts[-1] += 1

    def close(self) -> str:
        from tfgan3d.data.voxel_formats import commit_folder
        from tfgan3d.io import write_json
        if self._writer is not None:
            self._writer.close()
        if not self.counts:
            shutil.rmtree(self.tmp, ignore_errors=True)
            raise DataError(f"{self.target}: no examples to write")
        total = len(self.counts)
        names = [f"shard-{k:05d}-of-{total:05d}.tfrecord" for k in range(total)]
        for k, name in enumerate(names):
            os.replace(self.tmp / f"part-{k:05d}", self.tmp / name)
        write_json({"format": FORMAT, "kind": self.kind, "split": self.split,
                    "n": sum(self.counts), "shards": names, "counts": self.counts,
                    "meta": self.meta}, self.tmp / MANIFEST)
        return commit_folder(self.tmp, self.target, self.overwrite)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        if kind is not None:
            if self._writer is not None:
                self._writer.close()
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        self.path = self.close()
        return False


def _commit_splits(out, overwrite, write_split, splits):
    """Writes each split with `write_split(split, folder)` into one temporary ROOT, renamed to
    `out` when every split is done."""
    from tfgan3d.data.voxel_formats import check_target, commit_folder, temp_folder_next_to
    check_target(out, overwrite)
    target, tmp = temp_folder_next_to(out)
    try:
        for split in splits:
            write_split(split, tmp / split)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return commit_folder(tmp, target, overwrite)


def _read(path) -> bytes:
    return Path(path).read_bytes() if path else b""


def write_pair_shards(src, out, *, shard_size=500, overwrite=False, role=None) -> str:
    """Converts an RGB-D data set folder (pix2pix's folders or aligned layout, or a sim2real
    domain with `role` "sim" / "real") to a shard set: ROOT/train and ROOT/test when the
    source has those splits, else ROOT itself. The file bytes are copied, not re-encoded."""
    from tfgan3d.data import folders, paired
    src = Path(src).expanduser()
    present = [s for s in folders.SPLITS if (src / s).is_dir()]

    def write_split(split, folder, replace=False):
        meta_json = (folders.load_dataset_json(src, src / split) if split
                     else folders.load_dataset_json(src))
        if role is None:
            files = paired.discover_pairs(src, split=split)
            paired.validate_pairs(files)
            rows = [(files.names[i], files.inputs[i],
                     files.depths[i] if files.depths else "",
                     files.labels[i] if files.labels else "") for i in range(len(files))]
            extra = {"layout": files.layout}
        else:
            from tfgan3d.data.domain_files import discover_domain
            files = discover_domain(src, split or "train", role)
            rows = [(files.names[i], files.rgb[i], files.depth[i] if files.depth else "",
                     files.labels[i] if files.labels else "") for i in range(len(files))]
            extra = {"layout": "folders", "role": role, "label_kind": files.label_kind,
                     "source_classes": files.source_classes, "colours": files.colours,
                     "colour_table": files.colour_table}
        counts = {}
        with ShardWriter(folder, "pairs", shard_size, split=split,
                         overwrite=replace) as writer:
            for name, rgb, depth, labels in rows:
                fraction = _invalid_fraction(files, rgb, depth)
                counts[f"{fraction:.4f}"] = counts.get(f"{fraction:.4f}", 0) + 1
                writer.write({"input": _read(rgb), "depth": _read(depth),
                              "labels": _read(labels), "name": name,
                              "invalid_fraction": np.float32(fraction)})
            writer.meta.update(dataset_json=meta_json, invalid_counts=counts,
                               has_depth=any(r[2] for r in rows),
                               has_labels=any(r[3] for r in rows), **extra)

    if not present:                     # one split, written straight to `out`
        write_split(None, Path(out).expanduser(), overwrite)
        return str(Path(out).expanduser())
    return _commit_splits(out, overwrite, write_split, present)


def _invalid_fraction(files, rgb_path, depth_path) -> float:
    """Invalid-depth fraction of one pair, rounded to QUANTUM (0 without depth)."""
    from tfgan3d.data import images
    if getattr(files, "layout", None) == "aligned":
        _, _, valid = images.split_aligned_tf(tf.io.read_file(str(rgb_path)), files.spec)
        valid = valid.numpy()
    elif depth_path:
        _, valid = images.read_depth(depth_path, files.spec)
    else:
        return 0.0
    return round(float(1.0 - np.mean(valid)) / QUANTUM) * QUANTUM


def encode_refine_image(image) -> bytes:
    """float [H, W, C] in [-1, 1] -> PNG bytes: 16-bit grey for C = 1, 8-bit RGB for C = 3
    (read back by refine_data's decoder, which scales 16 bit by 65535)."""
    from PIL import Image
    import io
    image = np.asarray(image, np.float32)
    unit = np.clip((image + 1.0) / 2.0, 0.0, 1.0)
    if image.shape[-1] == 1:
        pil = Image.fromarray(np.round(unit[..., 0] * 65535).astype(np.uint16))
    else:
        pil = Image.fromarray(np.round(unit * 255).astype(np.uint8))
    buffer = io.BytesIO()
    pil.save(buffer, format="PNG")
    return buffer.getvalue()


def write_refine_shards(out, parts: dict, *, shard_size=2000, overwrite=False,
                        label_names=()) -> str:
    """Writes simgan's roles as ROOT/<role> shard folders.

    Args:
        parts: {role: iterable of (images [n, H, W, C] float in [-1, 1], labels [n, ...])
            chunks}, roles "synthetic", "real", "test".
    """
    def write_split(role, folder):
        with ShardWriter(folder, "refine", shard_size, split=role) as writer:
            shape = size = None
            for images, labels in parts[role]:
                for image, label in zip(images, labels):
                    writer.write({"image": encode_refine_image(image),
                                  "label": np.asarray(label, np.float32),
                                  "name": f"{role}-{sum(writer.counts):08d}"})
                    shape, size = np.shape(label), image.shape
            writer.meta.update(label_shape=list(shape or ()), image_size=list(size[:2]),
                               channels=int(size[2]),
                               label_names=list(label_names) if role != "real" else [])
    return _commit_splits(out, overwrite, write_split, list(parts))


# ---- reading ------------------------------------------------------------------------------------

@dataclasses.dataclass
class PairShards:
    """A pairs shard folder as the pix2pix pipeline sees it (in place of PairedFiles).

    `len()` is the number of pairs the stream yields: those with an invalid fraction at most
    `max_invalid_fraction` (all when None).
    """
    root: str
    shards: list
    manifest: dict
    spec: object
    classes: object = None
    max_invalid_fraction: float | None = None
    layout: str = "shards"
    names: list | None = None

    @property
    def stored_layout(self) -> str:
        return self.manifest["meta"].get("layout", "folders")

    @property
    def labels(self):
        """True when the records carry labels (as PairedFiles.labels is not None), else None."""
        return True if self.manifest["meta"].get("has_labels") else None

    def __len__(self):
        counts = self.manifest["meta"].get("invalid_counts")
        if self.max_invalid_fraction is None or not counts:
            return int(self.manifest["n"])
        return sum(c for f, c in counts.items() if float(f) <= self.max_invalid_fraction)


def discover_pair_shards(folder, spec) -> PairShards:
    """PairShards of a pairs shard folder; `spec`'s None fields come from the stored
    dataset.json, then the defaults."""
    from tfgan3d.data import folders
    manifest = read_manifest(folder)
    if manifest["kind"] != "pairs":
        raise DataError(f"{folder}: expected RGB-D pair shards, found {manifest['kind']!r} "
                        f"shards")
    meta_json = manifest["meta"].get("dataset_json", {})
    from tfgan3d.data.images import DepthSpec
    spec = (spec or DepthSpec()).resolve(folders.spec_defaults(meta_json))
    return PairShards(str(folder), shard_paths(folder), manifest, spec,
                      meta_json.get("classes"))


def validate_pair_shards(files: PairShards) -> PairShards:
    """Decodes the first record (the stream checks the rest as it reads them).

    Raises:
        DataError: the first shard is unreadable or its first record does not decode.
    """
    try:
        record = next(iter(tf.data.TFRecordDataset(files.shards[:1])))
        element = tf.io.parse_single_example(record, PAIR_FEATURES)
        load_pair(element, files, (8, 8), bool(files.labels))
    except (tf.errors.OpError, StopIteration) as e:
        message = getattr(e, "message", str(e)).splitlines()[0] if str(e) else "no records"
        raise DataError(f"{files.shards[0]}: expected readable RGB-D pair records, found "
                        f"{message}") from e
    return files


def filter_pair_shards(files: PairShards, max_invalid_fraction):
    """(PairShards that yield only pairs at most `max_invalid_fraction` invalid, [(None,
    fraction)] per dropped pair), counted from the manifest; the stream filters."""
    if max_invalid_fraction is None or max_invalid_fraction >= 1.0:
        return files, []
    counts = files.manifest["meta"].get("invalid_counts") or {}
    dropped = [(None, float(f)) for f, c in counts.items()
               if float(f) > max_invalid_fraction for _ in range(c)]
    kept = dataclasses.replace(files, max_invalid_fraction=float(max_invalid_fraction))
    if len(kept) == 0:
        best = min(float(f) for f in counts)
        raise DataError(f"{files.root}: --max-invalid-fraction {max_invalid_fraction} drops "
                        f"every training pair (the best has {best:.3f} invalid)")
    return kept, dropped


def load_pair(element, files, size, with_labels):
    """A parsed pair record -> {"rgb" float 0..255 [size, 3], "maps" [size, 2 or 3]} as the
    folder pipeline's loader, from the stored bytes."""
    from tfgan3d.data.images import (decode_depth_tf, decode_labels_tf, decode_rgb_tf,
                                     split_aligned_tf)
    if files.stored_layout == "aligned":
        rgb, depth, valid = split_aligned_tf(element["input"], files.spec)
    else:
        rgb = decode_rgb_tf(element["input"])
        depth, valid = decode_depth_tf(element["depth"], files.spec)
    maps = [depth, tf.cast(valid, tf.float32)]
    if with_labels:
        maps.append(tf.cast(decode_labels_tf(element["labels"]), tf.float32))
    rgb = tf.image.resize(tf.cast(rgb, tf.float32), size, method="bilinear", antialias=True)
    maps = tf.image.resize(tf.stack(maps, axis=-1), size, method="nearest")
    return {"rgb": rgb, "maps": maps}


def pair_records(files: PairShards, *, training: bool, seed=None, repeat=False,
                 worker=None, shuffle_buffer=SHUFFLE_BUFFER) -> tf.data.Dataset:
    """Parsed pair records of this worker's shards: shuffled (shards and a bounded buffer of
    records) and filtered by `files.max_invalid_fraction` when training; in order otherwise."""
    ds = record_stream(files.shards, shuffle=training, seed=seed, repeat=repeat,
                       worker=worker if training else (1, 0))
    ds = ds.map(lambda r: tf.io.parse_single_example(r, PAIR_FEATURES),
                num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if files.max_invalid_fraction is not None:
        limit = tf.constant(files.max_invalid_fraction + QUANTUM / 2, tf.float32)
        ds = ds.filter(lambda e: e["invalid_fraction"] <= limit)
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return ds


def make_pix2pix_dataset(files: PairShards, *, load_size=286, crop_size=256, batch_size=1,
                         training=True, flip=True, shuffle=True, deterministic=False, seed=0,
                         max_depth=None, repeat=False, num_parallel_calls=tf.data.AUTOTUNE,
                         labels=False, drop_remainder=False, worker=None, **_ignored):
    """`paired.make_pix2pix_dataset` over pair shards, streamed (same arguments and outputs;
    `cache` is ignored: a set that fits the cache fits a folder). `worker` as in
    `record_stream`."""
    from tfgan3d.data import paired
    if labels and files.labels is None:
        raise DataError(f"{files.root}: labels asked for, found no labels in the shards")
    crop = paired.size_hw(crop_size, "crop_size")
    load = paired.size_hw(load_size, "load_size") if training else crop
    if load[0] < crop[0] or load[1] < crop[1]:
        raise ValueError(f"load_size {load} must be at least crop_size {crop}")
    max_depth = float(max_depth or files.spec.max_depth)
    stream_seed = seed if deterministic else None
    ds = pair_records(files, training=training and shuffle, seed=stream_seed,
                      repeat=repeat, worker=worker)
    ds = ds.map(lambda e: load_pair(e, files, load, labels),
                num_parallel_calls=num_parallel_calls)
    if training:
        ds = ds.enumerate().map(lambda i, s: paired.augment(i, s, crop, flip, stream_seed),
                                num_parallel_calls=num_parallel_calls)
    ds = ds.map(lambda s: paired._to_model_inputs(s, crop, max_depth),
                num_parallel_calls=num_parallel_calls)
    ds = ds.batch(batch_size, drop_remainder=drop_remainder).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = bool(deterministic or not training)
    return ds.with_options(options)


# ---- sim2real domains ---------------------------------------------------------------------------

@dataclasses.dataclass
class DomainShards:
    """A pairs shard folder as a sim2real domain (in place of domain_files.DomainFiles)."""
    root: str
    shards: list
    manifest: dict
    spec: object
    label_kind: str | None
    source_classes: tuple | None
    colours: tuple | None
    colour_table: str | None
    layout: str = "shards"
    names: list | None = None

    @property
    def depth(self):
        return True if self.manifest["meta"].get("has_depth") else None

    @property
    def labels(self):
        return True if self.manifest["meta"].get("has_labels") else None

    def has_depth(self):
        return self.depth is not None

    def has_labels(self):
        return self.labels is not None

    def __len__(self):
        return int(self.manifest["n"])


def discover_domain_shards(folder, role, depth_scale=None) -> DomainShards:
    """DomainShards of a pairs shard folder read as a sim2real domain of `role`: depth units
    from `depth_scale`, else the stored dataset.json, else the role's default."""
    from tfgan3d.data import folders
    from tfgan3d.data.domain_files import DEFAULT_DEPTH_SCALE
    from tfgan3d.data.images import DepthSpec
    manifest = read_manifest(folder)
    if manifest["kind"] != "pairs":
        raise DataError(f"{folder}: expected RGB-D shards, found {manifest['kind']!r} shards")
    meta = manifest["meta"]
    if meta.get("layout") == "aligned":
        raise DataError(f"{folder}: holds pix2pix A|B images; sim2real reads rgb, depth and "
                        f"label files (convert a folders-layout set)")
    meta_json = meta.get("dataset_json", {})
    defaults = {"depth_scale": DEFAULT_DEPTH_SCALE[role], **folders.spec_defaults(meta_json)}
    spec = DepthSpec(depth_scale=depth_scale).resolve(defaults)
    kind = meta.get("label_kind") or ("ids" if meta.get("has_labels") else None)
    classes = meta.get("source_classes") or meta_json.get("classes")
    if role == "sim" and not (meta.get("has_depth") and meta.get("has_labels")):
        raise DataError(f"{folder}: simulation shards need depth and labels in every record, "
                        f"found depth {bool(meta.get('has_depth'))}, labels "
                        f"{bool(meta.get('has_labels'))}")
    colours = tuple(tuple(c) for c in meta["colours"]) if meta.get("colours") else None
    return DomainShards(str(folder), shard_paths(folder), manifest, spec, kind,
                        tuple(classes) if classes else None, colours,
                        meta.get("colour_table"))


def domain_records(files: DomainShards, *, training: bool, seed=None, repeat=False,
                   worker=None, shuffle_buffer=SHUFFLE_BUFFER) -> tf.data.Dataset:
    """{"rgb", "depth", "labels" (encoded bytes, "" when absent), "name"} of this worker's
    shards: shuffled when training, in order otherwise."""
    ds = record_stream(files.shards, shuffle=training, seed=seed, repeat=repeat,
                       worker=worker if training else (1, 0))

    def parse(record):
        e = tf.io.parse_single_example(record, PAIR_FEATURES)
        return {"rgb": e["input"], "depth": e["depth"], "labels": e["labels"],
                "name": e["name"]}
    ds = ds.map(parse, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return ds


def validate_domain_shards(files: DomainShards, lookup) -> DomainShards:
    """Decodes the first record (rgb, depth, labels through `lookup`).

    Raises:
        DataError: the first record does not decode, or its labels fall outside the lookup.
    """
    from tfgan3d.data.images import decode_depth_tf, decode_rgb_tf
    from tfgan3d.data.labels import labels_tf
    try:
        element = next(iter(domain_records(files, training=False)))
        decode_rgb_tf(element["rgb"])
        if len(element["depth"].numpy()):
            decode_depth_tf(element["depth"], files.spec)
        if lookup is not None and len(element["labels"].numpy()):
            labels_tf(element["labels"], element["name"], lookup)
    except (tf.errors.OpError, StopIteration) as e:
        message = getattr(e, "message", str(e)).splitlines()[0] if str(e) else "no records"
        raise DataError(f"{files.shards[0]}: expected readable RGB-D records, found "
                        f"{message}") from e
    return files
