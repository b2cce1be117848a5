"""Training-data quality: drop training pairs whose depth map is mostly invalid.

Seed 000 excluded faulty depth maps from its real training set by hand and kept them in the
test set. `filter_pairs` does the same by a rule: a training pair whose depth map has more than
`max_invalid_fraction` invalid pixels (holes, range limits, blobs) is dropped. Test sets are
never filtered; the trainers call this for the training split only.

On the built-in real-like scenes (300 at 64x64, seed 0) a third of the depth maps carry the
large invalid blob of the seed's Figure 3; pix2pix's default threshold 0.2 drops 88 % of those
and 4 % of the others (31 % of all pairs).
"""
from __future__ import annotations

import dataclasses
import fractions
import os

import numpy as np
import tensorflow as tf

from tfgan3d.data import images
from tfgan3d.data.images import DataError


def invalid_pixels(files, i: int) -> tuple[int, int]:
    """(invalid depth pixels, all pixels) of pair `i` of a PairedFiles (folders or aligned)."""
    if files.layout == "aligned":
        path = files.inputs[i]
        data = tf.io.read_file(os.fspath(path))
        _, _, valid = images.split_aligned_tf(data, files.spec)
        valid = valid.numpy()
    else:
        _, valid = images.read_depth(files.depths[i], files.spec)
    valid = np.asarray(valid, bool)
    return int(valid.size - np.count_nonzero(valid)), int(valid.size)


def invalid_fraction(files, i: int) -> float:
    """Fraction of invalid depth pixels of pair `i` (invalid / all, from the pixel counts)."""
    invalid, total = invalid_pixels(files, i)
    return invalid / total


def within(invalid: int, total: int, max_invalid_fraction: float) -> bool:
    """Whether `invalid` of `total` pixels is at most `max_invalid_fraction`, compared exactly
    (as fractions of the counts and of the threshold as written): 24 of 80 is at most 0.3,
    where 1 - mean(valid) would read 0.30000000000000004 and be dropped."""
    threshold = fractions.Fraction(repr(float(max_invalid_fraction)))
    return fractions.Fraction(invalid, total) <= threshold


def filter_pairs(files, max_invalid_fraction: float | None):
    """The pairs of `files` whose invalid fraction is at most `max_invalid_fraction`.

    Args:
        files: PairedFiles of a training split.
        max_invalid_fraction: in [0, 1]; None or 1 keeps every pair.
    Returns:
        (kept PairedFiles, list of (name, invalid fraction) of the dropped pairs).
    Raises:
        ValueError: `max_invalid_fraction` outside [0, 1].
        DataError: every pair would be dropped (names the threshold and the best pair).
    """
    if max_invalid_fraction is None or max_invalid_fraction >= 1.0:
        return files, []
    if files.layout == "shards":            # counted from the manifest, filtered in the stream
        from tfgan3d.data import shards
        return shards.filter_pair_shards(files, max_invalid_fraction)
    if not 0.0 <= max_invalid_fraction <= 1.0:
        raise ValueError(f"max_invalid_fraction: expected a value in [0, 1], got "
                         f"{max_invalid_fraction}")
    counts = [invalid_pixels(files, i) for i in range(len(files))]
    shares = [invalid / total for invalid, total in counts]
    keep = [i for i, (invalid, total) in enumerate(counts)
            if within(invalid, total, max_invalid_fraction)]
    if not keep:
        best = int(np.argmin(shares))
        raise DataError(f"{files.root}: --max-invalid-fraction {max_invalid_fraction} drops "
                        f"every training pair (the best, {files.names[best]}, has "
                        f"{shares[best]:.3f} invalid)")

    def pick(values):
        return None if values is None else [values[i] for i in keep]

    kept = dataclasses.replace(files, inputs=pick(files.inputs), depths=pick(files.depths),
                               labels=pick(files.labels), names=pick(files.names))
    kept_set = set(keep)
    dropped = [(files.names[i], shares[i]) for i in range(len(files)) if i not in kept_set]
    return kept, dropped
