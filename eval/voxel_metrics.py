"""Voxel-scene metrics of 3D FCR-alphaGAN: per-class IoU and average precision.

Rows as the original's IoU.csv / AP.csv (shared/reference/fcr_alphagan.md): one per class,
class 0 (empty) included, then "all", which pools the non-empty channels 1..C-1 of each
scene. Every row is computed per scene, then averaged over the scenes where it is defined.

Correct definitions (the default): the original's two defects fixed, every row kept.
    IoU_c     = |pred == c and gt == c| / |pred == c or gt == c|, averaged over the scenes
                whose union is not empty (NaN when no scene has class c in gt or prediction).
    IoU_all   = sum_{c=1..C-1} |A_c and B_c| / sum_{c=1..C-1} |A_c or B_c| per scene (A_c, B_c:
                gt and prediction one-hot of class c), averaged over the scenes where the
                denominator > 0. A voxel of gt wall predicted chair is in two unions.
    AP_c      = sklearn `average_precision_score(gt == c, probs[..., c])` over the scene's
                voxels, averaged over the scenes whose ground truth contains class c.
    AP_all    = per scene one AP of channels 1..C-1 flattened together (a micro AP: every
                (voxel, class) pair is one ranked item), averaged over the scenes with a
                non-empty ground-truth voxel.
Extra rows, not in the original, under names of their own:
    mean_class = the mean of rows 1..C-1 that have a value (IoU: mIoU; AP: the mean of
                per-class APs, which is what "all" of AP meant here before this definition).
    occupancy  = empty vs non-empty only: IoU of (gt != 0) and (pred != 0); AP of gt != 0
                scored by 1 - probs[..., 0]; per scene, averaged as above.

`legacy=True` reproduces the original's `evaluate.py` (read from the public repository),
rows 0..C-1 and "all" only:
    IoU_c     = |A and B| / (|A| + |B|) per scene, so a perfect prediction scores 0.5;
                averaged over the scenes where |A| + |B| > 0.
    IoU_all   = sum_{c>=1} |A_c and B_c| / sum_{c>=1} (|A_c| + |B_c|), averaged likewise.
    AP_c      = the sum of per-scene AP over the scenes that contain class c, divided by the
                number of ALL scenes: scenes without the class count as 0.
    AP_all    = the micro AP above summed over the scenes with a non-empty ground-truth
                voxel, divided by the number of all scenes.
The original rounded every value to 3 decimals when writing the CSV; not reproduced here
(round when printing).
"""
import numpy as np
from sklearn.metrics import average_precision_score

from tfgan3d.eval.palette import NUM_CLASSES, class_names

ALL = "all"
MEAN_CLASS = "mean_class"
OCCUPANCY = "occupancy"
EXTRA_ROWS = (MEAN_CLASS, OCCUPANCY)


def _check_num_classes(num_classes):
    if int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2 (class 0 is empty), "
                         f"got {num_classes!r}")
    return int(num_classes)


def _label_batch(labels, name, num_classes):
    """Validates class labels and returns them as an integer array of shape (N, X, H, Z).

    Float arrays are accepted when every value is a whole number (the original saved its ground
    truth as float32).
    """
    labels = np.asarray(labels)
    if labels.ndim == 3:
        labels = labels[None]
    if labels.ndim != 4:
        raise ValueError(f"{name} must have shape (N, X, H, Z) or (X, H, Z), got shape "
                         f"{labels.shape}")
    if labels.size == 0:
        raise ValueError(f"{name} is empty (shape {labels.shape})")
    if labels.dtype.kind == "f":
        if not np.all(np.isfinite(labels)) or not np.array_equal(labels, np.rint(labels)):
            raise ValueError(f"{name} must hold integer class labels, got non-integral "
                             f"{labels.dtype} values (pass probabilities to voxel_ap instead)")
    elif labels.dtype.kind not in "iu":
        raise ValueError(f"{name} must hold integer class labels, got dtype {labels.dtype}")
    low, high = labels.min(), labels.max()
    if low < 0 or high >= num_classes:
        raise ValueError(f"{name} holds labels in [{low:g}, {high:g}], expected "
                         f"0..{num_classes - 1} for num_classes={num_classes}")
    return labels.astype(np.int64 if num_classes > 255 else np.uint8, copy=False)


def _mean_where(values, valid):
    """Mean of values[valid], NaN when nothing is valid."""
    return float(np.mean(values[valid])) if np.any(valid) else float("nan")


def _confusions(gt, pred, num_classes):
    """Per-scene confusion matrices (N, C, C): [n, g, p] = voxels of scene n with gt g, pred p."""
    n = gt.shape[0]
    conf = np.empty((n, num_classes, num_classes), np.int64)
    for i in range(n):
        pair = gt[i].ravel().astype(np.int64) * num_classes + pred[i].ravel()
        conf[i] = np.bincount(pair, minlength=num_classes ** 2).reshape(num_classes, num_classes)
    return conf


def with_mean_class(result, num_classes):
    """`result` (rows 0..C-1, "all", ...) with the "mean_class" row: the mean of rows
    1..C-1 that are not NaN (NaN if none)."""
    names = class_names(num_classes)
    values = [result[names[c]] for c in range(1, num_classes)]
    values = [v for v in values if not np.isnan(v)]
    out = dict(result)
    out[MEAN_CLASS] = float(np.mean(values)) if values else float("nan")
    return out


def row_order(num_classes, legacy=False):
    """The row names of `voxel_iou` / `voxel_ap`, in order."""
    return (*class_names(num_classes), ALL, *(() if legacy else EXTRA_ROWS))


def voxel_iou(gt_labels, pred_labels, num_classes=NUM_CLASSES, legacy=False):
    """Per-class and pooled IoU of predicted voxel labels (definitions in the module docstring).

    Args:
        gt_labels: ground-truth class labels, shape (N, X, H, Z) or (X, H, Z), values
            0..num_classes-1 (integer, or float holding whole numbers).
        pred_labels: predicted labels (e.g. argmax of the generator's softmax), same shape.
        num_classes: number of classes C including empty (0).
        legacy: reproduce the original's intersection / (|A| + |B|).
    Returns:
        dict: class name -> float for classes 0..C-1, then "all", then (not legacy)
        "mean_class" and "occupancy". NaN where no scene counts.
    Raises:
        ValueError: on a shape mismatch, non-integral labels or labels outside 0..C-1.
    """
    num_classes = _check_num_classes(num_classes)
    gt = _label_batch(gt_labels, "gt_labels", num_classes)
    pred = _label_batch(pred_labels, "pred_labels", num_classes)
    if gt.shape != pred.shape:
        raise ValueError(f"gt_labels and pred_labels must have the same shape, got "
                         f"{gt.shape} and {pred.shape}")
    voxels = np.prod(gt.shape[1:])
    conf = _confusions(gt, pred, num_classes)
    inter = conf.diagonal(axis1=1, axis2=2)  # (N, C)
    gt_count, pred_count = conf.sum(axis=2), conf.sum(axis=1)
    denom = gt_count + pred_count if legacy else gt_count + pred_count - inter

    names = class_names(num_classes)
    result = {}
    for c in range(num_classes):
        valid = denom[:, c] > 0
        result[names[c]] = _mean_where(inter[:, c] / np.maximum(denom[:, c], 1), valid)
    inter_all, denom_all = inter[:, 1:].sum(axis=1), denom[:, 1:].sum(axis=1)
    result[ALL] = _mean_where(inter_all / np.maximum(denom_all, 1), denom_all > 0)
    if legacy:
        return result
    both = voxels - gt_count[:, 0] - pred_count[:, 0] + conf[:, 0, 0]   # gt and pred non-empty
    either = voxels - conf[:, 0, 0]                                     # gt or pred non-empty
    result = with_mean_class(result, num_classes)
    result[OCCUPANCY] = _mean_where(both / np.maximum(either, 1), either > 0)
    return result


def voxel_ap(gt_labels, probs, num_classes=NUM_CLASSES, legacy=False):
    """Per-class and pooled average precision of class probabilities (module docstring).

    Args:
        gt_labels: ground-truth class labels, shape (N, X, H, Z) or (X, H, Z).
        probs: class probabilities or scores (the generator's softmax), shape
            gt_labels.shape + (num_classes,).
        num_classes: number of classes C including empty (0).
        legacy: reproduce the original's averaging over all scenes.
    Returns:
        dict: class name -> float for classes 0..C-1, then "all", then (not legacy)
        "mean_class" and "occupancy".
    Raises:
        ValueError: on a shape mismatch, bad labels or non-finite probabilities.
    """
    num_classes = _check_num_classes(num_classes)
    gt = _label_batch(gt_labels, "gt_labels", num_classes)
    probs = np.asarray(probs)
    if probs.ndim == 4:
        probs = probs[None]
    if probs.shape != gt.shape + (num_classes,):
        raise ValueError(f"probs must have shape {gt.shape + (num_classes,)} (labels' shape plus "
                         f"num_classes={num_classes} channels), got {probs.shape}")
    if probs.dtype.kind not in "fiu":
        raise ValueError(f"probs must be numeric, got dtype {probs.dtype}")
    n = gt.shape[0]

    def average(scores):
        """Legacy: the sum over the scenes that count / all scenes; else their mean."""
        if legacy:
            return float(np.sum(scores)) / n
        return float(np.mean(scores)) if scores else float("nan")

    names = class_names(num_classes)
    result = {}
    for c in range(num_classes):
        scores = [_ap(gt[i] == c, probs[i, ..., c]) for i in range(n) if np.any(gt[i] == c)]
        result[names[c]] = average(scores)
    pooled = []
    for i in range(n):
        y_true = gt[i][..., None] == np.arange(1, num_classes)   # one-hot of channels 1..C-1
        if y_true.any():
            pooled.append(_ap(y_true, probs[i, ..., 1:]))
    result[ALL] = average(pooled)
    if legacy:
        return result
    result = with_mean_class(result, num_classes)
    occupied = [_ap(gt[i] != 0, 1.0 - probs[i, ..., 0]) for i in range(n) if np.any(gt[i] != 0)]
    result[OCCUPANCY] = average(occupied)
    return result


def _ap(y_true, scores):
    scores = np.asarray(scores).ravel()
    if not np.all(np.isfinite(scores)):
        raise ValueError("probs holds NaN or infinite values")
    return float(average_precision_score(np.ravel(y_true), scores))


def metrics_table(iou=None, ap=None):
    """Rows of a metrics table as IoU.csv / AP.csv: one per class (0 first), "all", then the
    extra rows ("mean_class", "occupancy") where present.

    Args:
        iou: dict returned by `voxel_iou`, or None to leave the column out.
        ap: dict returned by `voxel_ap`, or None to leave the column out.
    Returns:
        list of dicts with keys "class_id" (None for "all" and the extra rows), "class", then
        "iou" and/or "ap"; ready for `csv.DictWriter`.
    Raises:
        ValueError: if both are None or their row names differ.
    """
    columns = {k: v for k, v in (("iou", iou), ("ap", ap)) if v is not None}
    if not columns:
        raise ValueError("metrics_table needs at least one of iou and ap")
    keys = [list(v) for v in columns.values()]
    if len(keys) == 2 and set(keys[0]) != set(keys[1]):
        differing = sorted(set(keys[0]) ^ set(keys[1]))
        raise ValueError(f"iou and ap name different rows: {differing}")
    summaries = (ALL, *EXTRA_ROWS)
    classes = [k for k in keys[0] if k not in summaries]
    rows = [{"class_id": class_id, "class": name,
             **{col: values[name] for col, values in columns.items()}}
            for class_id, name in enumerate(classes)]
    for name in summaries:
        if name in keys[0]:
            rows.append({"class_id": None, "class": name,
                         **{col: values[name] for col, values in columns.items()}})
    return rows
