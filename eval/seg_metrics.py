"""Semantic segmentation metrics from a confusion matrix accumulated over a whole set.

    pixel accuracy = correct labelled pixels / labelled pixels (ignore label excluded)
    IoU_c          = TP_c / (TP_c + FP_c + FN_c)
    mIoU           = mean of IoU_c over the classes present in ground truth or prediction

The confusion matrix is summed over the whole test set before any ratio is taken; to score a
set batch by batch, add up the batches' `confusion_matrix` results.
"""
import numpy as np


def _labels(array, name):
    """Integer labels as int64; float arrays must hold whole numbers."""
    array = np.asarray(array)
    if array.dtype == bool or np.issubdtype(array.dtype, np.integer):
        return array.astype(np.int64)
    if np.issubdtype(array.dtype, np.floating):
        bad = array[array != np.round(array)]  # also catches NaN
        if bad.size:
            raise ValueError(f"{name} labels must be whole numbers; found {bad.flat[0]!r}")
        return array.astype(np.int64)
    raise ValueError(f"{name} labels must be integers; got dtype {array.dtype}")


def confusion_matrix(gt, pred, num_classes, ignore_index=255):
    """Counts (ground truth, prediction) label pairs over every labelled pixel.

    Args:
        gt: ground-truth class labels, any shape, values in [0, num_classes) or `ignore_index`.
        pred: predicted class labels (argmax of the scores), same shape as `gt`.
        num_classes: number of classes C.
        ignore_index: label of unlabelled pixels, excluded from every count; None for none.
    Returns:
        int64 array (C, C); entry [i, j] counts pixels of true class i predicted as class j.
    Raises:
        ValueError: shapes differ, or a label outside [0, C) other than `ignore_index` (the
            message names the value).
    """
    gt_shape, pred_shape = np.shape(gt), np.shape(pred)
    if gt_shape != pred_shape:
        hint = ""
        if len(pred_shape) == len(gt_shape) + 1 and pred_shape[-1] == num_classes:
            hint = " (pred looks like per-class scores: pass its argmax over the last axis)"
        raise ValueError(f"gt shape {gt_shape} and pred shape {pred_shape} differ{hint}")
    if int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer; got {num_classes!r}")
    num_classes = int(num_classes)
    gt = _labels(gt, "gt").ravel()
    pred = _labels(pred, "pred").ravel()
    if ignore_index is not None:
        keep = gt != ignore_index
        gt, pred = gt[keep], pred[keep]
    for name, labels in (("gt", gt), ("pred", pred)):
        bad = labels[(labels < 0) | (labels >= num_classes)]
        if bad.size:
            allowed = f"[0, {num_classes})"
            if ignore_index is not None and name == "gt":
                allowed += f" or the ignore label {ignore_index}"
            elif ignore_index is not None:
                allowed += " where gt is labelled"
            raise ValueError(f"{name} holds label {int(bad[0])}; expected values in {allowed}")
    counts = np.bincount(gt * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes).astype(np.int64)


def segmentation_scores(conf):
    """Pixel accuracy, per-class IoU and mIoU from a (set-wide) confusion matrix.

    Args:
        conf: (C, C) counts, rows ground truth, columns prediction.
    Returns:
        dict with
            "pixel_accuracy": float, trace / total;
            "miou": float, mean IoU over the present classes;
            "iou_per_class": float64 array (C,), NaN for classes absent from gt and pred;
            "classes_present": list of the class indices present in gt or pred.
    Raises:
        ValueError: `conf` is not square, has negative entries, or counts no pixel.
    """
    conf = np.asarray(conf)
    if conf.ndim != 2 or conf.shape[0] != conf.shape[1]:
        raise ValueError(f"confusion matrix must be square (C, C); got shape {conf.shape}")
    if np.any(conf < 0):
        raise ValueError("confusion matrix has negative counts")
    conf = conf.astype(np.float64)
    total = conf.sum()
    if total == 0:
        raise ValueError("confusion matrix counts no labelled pixel")
    tp = np.diag(conf)
    fp = conf.sum(axis=0) - tp  # predicted as c, labelled otherwise
    fn = conf.sum(axis=1) - tp  # labelled c, predicted otherwise
    union = tp + fp + fn
    present = union > 0
    iou = np.full(conf.shape[0], np.nan)
    iou[present] = tp[present] / union[present]
    return {
        "pixel_accuracy": float(tp.sum() / total),
        "miou": float(iou[present].mean()),
        "iou_per_class": iou,
        "classes_present": [int(c) for c in np.flatnonzero(present)],
    }
