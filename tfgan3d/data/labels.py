"""Label images -> class ids of the evaluated classes: the lookup of a domain's labels (RGB
class colours through its colour table, or 8-bit ids), decoded in numpy (validation) and in the
graph (tf.data). 255 is ignored everywhere.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf
from PIL import Image

from tfgan3d.data.classes import IGNORE_LABEL, ClassMap, base_name
from tfgan3d.data.images import DataError, decode_labels_tf, decode_rgb_tf

if TYPE_CHECKING:
    from tfgan3d.data.domain_files import DomainFiles


@dataclasses.dataclass(frozen=True)
class LabelLookup:
    """Raw label value -> class id. Colour: sorted keys r*65536+g*256+b with their ids; ids: a
    256-entry table. A class id of -1 marks a value that must not occur; 255 is ignored."""
    kind: str
    keys: np.ndarray
    values: np.ndarray
    describe: str

    @staticmethod
    def colour_key(rgb):
        rgb = np.asarray(rgb, np.int64)
        return rgb[..., 0] * 65536 + rgb[..., 1] * 256 + rgb[..., 2]


def label_lookup(files: DomainFiles, classes, class_map: ClassMap | None = None):
    """The LabelLookup of a domain's labels onto `classes` (None when it has no labels)."""
    if files.label_kind is None:
        return None

    def target(name):
        if class_map is not None:
            return class_map.target(name)
        return classes.index(base_name(name)) if base_name(name) in classes else IGNORE_LABEL

    if files.label_kind == "colour":
        keys = LabelLookup.colour_key(np.array(files.colours))
        values = np.array([target(n) for n in files.source_classes], np.int32)
        order = np.argsort(keys, kind="stable")
        return LabelLookup("colour", keys[order].astype(np.int32), values[order],
                           f"the colour table {files.colour_table}")
    table = np.full(256, -1, np.int32)
    table[IGNORE_LABEL] = IGNORE_LABEL
    if files.source_classes is not None:
        for i, name in enumerate(files.source_classes[:IGNORE_LABEL]):
            table[i] = target(name)
        describe = f"ids 0..{len(files.source_classes) - 1} of dataset.json \"classes\""
    elif class_map is not None:
        table[:IGNORE_LABEL] = [class_map.target(str(i)) for i in range(IGNORE_LABEL)]
        describe = "ids 0..254"
    else:
        table[:len(classes)] = np.arange(len(classes))
        describe = f"class ids 0..{len(classes) - 1} (or {IGNORE_LABEL})"
    return LabelLookup("ids", np.arange(256, dtype=np.int32), table, describe)


def read_labels(path, lookup: LabelLookup) -> np.ndarray:
    """A label image as class ids uint8 (H, W), 255 ignored.

    Raises:
        DataError: an unreadable file, or a colour (an id) that the lookup does not know; the
            message names the file and the colour.
    """
    try:
        with Image.open(path) as image:
            if lookup.kind == "ids" and image.mode != "L":
                raise DataError(f"{path}: expected an 8-bit grey PNG of class ids, found PNG "
                                f"mode {image.mode!r}" + (" (a palette image: its colours "
                                                          "would be decoded, not its indices)"
                                                          if image.mode == "P" else ""))
            raw = np.asarray(image.convert("RGB") if lookup.kind == "colour" else image)
    except (OSError, SyntaxError) as e:
        raise DataError(f"{path}: expected a decodable label PNG, found corrupt data") from e
    if lookup.kind == "colour":
        keys = LabelLookup.colour_key(raw)
        index = np.clip(np.searchsorted(lookup.keys, keys), 0, len(lookup.keys) - 1)
        known = lookup.keys[index] == keys
        if not known.all():
            y, x = np.argwhere(~known)[0]
            colour = tuple(int(v) for v in raw[y, x])
            n_unknown = len(np.unique(keys[~known]))
            raise DataError(f"{path}: label colour {colour} at pixel (row {y}, column {x}) is "
                            f"not in {lookup.describe} ({n_unknown} unknown colour(s) in this "
                            f"file)")
        return lookup.values[index].astype(np.uint8)
    ids = lookup.values[raw]
    if (ids < 0).any():
        bad = sorted(set(np.unique(raw[ids < 0]).tolist()))
        raise DataError(f"{path}: label id(s) {bad[:10]} are not among {lookup.describe}")
    return ids.astype(np.uint8)


def labels_tf(data, path, lookup):
    """Encoded label bytes -> int32 [H, W] class ids, asserting every value is known."""
    if lookup.kind == "colour":
        raw = tf.cast(decode_rgb_tf(data), tf.int32)
        flat = tf.reshape(raw[..., 0] * 65536 + raw[..., 1] * 256 + raw[..., 2], [-1])
        keys = tf.constant(lookup.keys)
        index = tf.minimum(tf.searchsorted(keys, flat), len(lookup.keys) - 1)
        known = tf.equal(tf.gather(keys, index), flat)
        ids = tf.where(known, tf.gather(tf.constant(lookup.values), index), -1)
        ids = tf.reshape(ids, tf.shape(raw)[:2])
    else:
        ids = tf.gather(tf.constant(lookup.values), tf.cast(decode_labels_tf(data), tf.int32))
    check = tf.debugging.Assert(tf.reduce_all(ids >= 0),
                                ["unknown label value (colour or id) in", path])
    with tf.control_dependencies([check]):
        return tf.identity(ids)
