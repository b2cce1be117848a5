"""Scores of fcr reconstructions: IoU and AP accumulated scene by scene, and the trivial
baseline (at every voxel position the most frequent class of the training split there)."""
from __future__ import annotations

import numpy as np

from tfgan3d.data.images import DataError
from tfgan3d.eval.fcr.common import FCREvalError, decode_batches
from tfgan3d.eval.voxel_metrics import ALL, MEAN_CLASS, voxel_ap, voxel_iou, with_mean_class
from tfgan3d import registry


def _mean(values, skip_nan):
    values = np.asarray(values, np.float64)
    if skip_nan:
        values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else float("nan")


class SceneScores:
    """IoU and AP accumulated scene by scene, equal to `voxel_iou` / `voxel_ap` on all scenes
    at once (both average per-scene values), so probabilities need not be kept in memory.

    Args:
        num_classes: classes including empty.
        legacy: the original's formulas (see eval/voxel_metrics.py).
    """

    def __init__(self, num_classes=12, legacy=False):
        self.num_classes, self.legacy = num_classes, legacy
        self.scene_iou, self.scene_ap = [], []

    def add(self, gt, pred, probs):
        """Adds scenes: gt, pred labels (N, X, H, Z) and probs (N, X, H, Z, C)."""
        for i in range(len(gt)):
            self.scene_iou.append(voxel_iou(gt[i], pred[i], self.num_classes, self.legacy))
            self.scene_ap.append(voxel_ap(gt[i], probs[i], self.num_classes, self.legacy))

    def iou(self) -> dict:
        # Single-scene values are NaN where the scene does not count: averaging the rest is
        # voxel_iou's average over the scenes where the row is defined.
        return self._average(self.scene_iou)

    def ap(self) -> dict:
        # Correct AP: NaN for the scenes lacking the class, as IoU. Legacy AP: a scene lacking
        # the class scores 0 (never NaN), so the mean is the original's sum / N.
        return self._average(self.scene_ap)

    def _average(self, scenes):
        result = {k: _mean([s[k] for s in scenes], True) for k in scenes[0]}
        if self.legacy:
            return result
        # mean_class is the mean of the averaged class rows, as in voxel_iou / voxel_ap
        return with_mean_class(result, self.num_classes)

    def summary(self, suffix="") -> dict:
        """{"iou_all", "ap_all" (the pooled rows), "map" (mean of the per-class APs of
        classes 1..C-1)}, each name with `suffix`, of the scenes so far."""
        ap = self.ap()
        return {f"iou_all{suffix}": self.iou()[ALL], f"ap_all{suffix}": ap[ALL],
                f"map{suffix}": ap.get(MEAN_CLASS, float("nan"))}


def score_reconstructions(model, real, codes, batch_size=8, legacy=False, clock=None):
    """Decodes the codes of `real`, before and after the refiner, and scores them.

    Returns:
        (labels, scores): labels {"recons", "recons_refine"} uint8 arrays; scores
        {"recons", "recons_refine"} SceneScores (and "<name>_legacy" when `legacy`).
    """
    num_classes = model.spec.num_classes
    labels = {k: np.empty(real.shape, np.uint8) for k in ("recons", "recons_refine")}
    scores = {k: SceneScores(num_classes) for k in labels}
    if legacy:
        scores.update({f"{k}_legacy": SceneScores(num_classes, legacy=True) for k in labels})
    for sl, probs, refined in decode_batches(model, codes, batch_size, clock):
        for key, p in (("recons", probs), ("recons_refine", refined)):
            labels[key][sl] = np.argmax(p, -1)
            for name in (key, f"{key}_legacy") if legacy else (key,):
                scores[name].add(real[sl], labels[key][sl], p)
    return labels, scores


# ----------------------------------------------------------------------------- trivial baseline

def position_class_counts(batches, num_classes=12):
    """Per voxel position, how many scenes hold each class: int64 (X, H, Z, C).

    Args:
        batches: an iterable of label arrays (B, X, H, Z) (or single scenes (X, H, Z)).
    """
    counts = None
    for batch in batches:
        batch = np.asarray(batch)
        batch = batch[None] if batch.ndim == 3 else batch
        if counts is None:
            grid = batch.shape[1:]
            counts = np.zeros(np.prod(grid) * num_classes, np.int64)
            offsets = np.arange(np.prod(grid), dtype=np.int64) * num_classes
        elif batch.shape[1:] != grid:
            raise FCREvalError(f"training scenes of grid {batch.shape[1:]} after {grid}")
        index = batch.reshape(len(batch), -1).astype(np.int64) + offsets
        counts += np.bincount(index.ravel(), minlength=counts.size)
    if counts is None:
        raise FCREvalError("no training scenes for the trivial baseline")
    return counts.reshape(*grid, num_classes)


def majority_baseline(counts):
    """(labels uint8 (X, H, Z), frequencies float32 (X, H, Z, C)) of position class counts:
    the most frequent class at each position (ties: the lowest class id) and the fraction of
    training scenes holding each class there."""
    counts = np.asarray(counts)
    freq = counts / np.maximum(counts.sum(-1, keepdims=True), 1)
    return np.argmax(counts, -1).astype(np.uint8), freq.astype(np.float32)


def ordered_train_split(config, batch_size, source=None):
    """The training split of `source` (default the run's data) in file order, once."""
    import dataclasses

    config = dataclasses.replace(config, batch_size=batch_size)
    return registry.get_mode("fcr_alphagan").data(config, "train", source=source,
                                                  training=False)["scenes"]


def train_baseline(config, source=None, batch_size=8, limit=None):
    """The trivial baseline of the training split of `source` (default: the run's data),
    streamed; `limit` caps the training scenes read. Returns (labels, frequencies, number of
    training scenes, source used); a source without a training split falls back to the run's
    own data."""
    if limit is not None and limit < 1:
        raise FCREvalError(f"--baseline-scenes: expected >= 1, got {limit}")
    try:
        dataset = ordered_train_split(config, batch_size, source)
        used = source or config.data
    except DataError as err:
        if source is None:
            raise
        print(f"[fcr] {source} has no training split ({err}); the trivial baseline uses the "
              f"run's data {config.data}", flush=True)
        dataset = ordered_train_split(config, batch_size)
        used = config.data
    seen = [0]

    def numpy_batches():
        for batch in dataset:
            batch = batch.numpy()[: None if limit is None else limit - seen[0]]
            seen[0] += len(batch)
            yield batch
            if limit is not None and seen[0] >= limit:
                return

    labels, freq = majority_baseline(position_class_counts(numpy_batches(),
                                                           config.num_classes))
    return labels, freq, seen[0], used


def score_baseline(labels, freq, real, num_classes=12, legacy=False):
    """SceneScores of the baseline scene (and frequencies as probabilities) on `real`."""
    scores = SceneScores(num_classes, legacy)
    for i in range(len(real)):
        scores.add(real[i:i + 1], labels[None], freq[None])
    return scores
