"""Depth metrics as defined by monodepth2's `compute_errors` (the de-facto standard).

Over the valid pixels of one image, with thresh = max(gt / pred, pred / gt):

    abs_rel  = mean(|gt - pred| / gt)             sq_rel   = mean((gt - pred)^2 / gt)
    rmse     = sqrt(mean((gt - pred)^2))          rmse_log = sqrt(mean((log gt - log pred)^2))
    delta_k  = mean(thresh < 1.25^k), k = 1, 2, 3 (strict <)

A set is scored per image and then averaged over images (not over the pooled pixels). Valid
pixels have min_depth < gt (< max_depth when given); monocular (scale-ambiguous) predictions
are first multiplied by median(gt) / median(pred) per image; predictions are then clamped to
[min_depth, max_depth]. KITTI practice: min_depth=1e-3, max_depth=80 m.
"""
import numpy as np

DEPTH_METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "delta1", "delta2", "delta3")


def depth_errors(gt, pred):
    """The seven depth metrics over a set of pixels already known to be valid.

    Args:
        gt: ground-truth depths, any shape (usually 1-D), all > 0.
        pred: predicted depths, same shape, all > 0.
    Returns:
        dict metric name -> float, keys in `DEPTH_METRICS` order.
    Raises:
        ValueError: shapes differ, no pixels, or a depth is not positive.
    """
    gt = np.asarray(gt, dtype=np.float64)
    pred = np.asarray(pred, dtype=np.float64)
    if gt.shape != pred.shape:
        raise ValueError(f"depth_errors: gt shape {gt.shape} and pred shape {pred.shape} differ")
    if gt.size == 0:
        raise ValueError("depth_errors: no pixels to score (empty arrays)")
    gt, pred = gt.ravel(), pred.ravel()
    if np.any(gt <= 0) or np.any(pred <= 0):
        raise ValueError(f"depth_errors needs positive depths; found min gt {gt.min():g} and "
                         f"min pred {pred.min():g} (mask out invalid gt, clamp pred)")
    thresh = np.maximum(gt / pred, pred / gt)
    diff = gt - pred
    return {
        "abs_rel": float(np.mean(np.abs(diff) / gt)),
        "sq_rel": float(np.mean(diff ** 2 / gt)),
        "rmse": float(np.sqrt(np.mean(diff ** 2))),
        "rmse_log": float(np.sqrt(np.mean((np.log(gt) - np.log(pred)) ** 2))),
        "delta1": float(np.mean(thresh < 1.25)),
        "delta2": float(np.mean(thresh < 1.25 ** 2)),
        "delta3": float(np.mean(thresh < 1.25 ** 3)),
    }


def _as_batch(array, name):
    """(H, W) -> (1, H, W); (N, H, W, 1) -> (N, H, W); (N, H, W) unchanged."""
    array = np.asarray(array)
    if array.ndim == 2:
        return array[None]
    if array.ndim == 4 and array.shape[-1] == 1:
        return array[..., 0]
    if array.ndim == 3:
        return array
    raise ValueError(f"{name} must be shaped (H, W), (N, H, W) or (N, H, W, 1); "
                     f"got {array.shape}")


def evaluate_depth(gt, pred, valid=None, *, min_depth=1e-3, max_depth=None,
                   median_scaling=False, per_image=False):
    """Scores a batch of predicted depth maps against ground truth, image by image.

    Args:
        gt: ground-truth depth, shaped (N, H, W), (N, H, W, 1) or a single (H, W).
        pred: predicted depth, same shape as `gt` (in the same units, before any scaling).
        valid: optional boolean mask, same shape; False marks pixels without ground truth.
        min_depth: pixels with gt <= min_depth are invalid; predictions are clamped up to it.
            Must be > 0.
        max_depth: if given, pixels with gt >= max_depth are invalid and predictions are
            clamped down to it.
        median_scaling: multiply each prediction by median(gt) / median(pred) over its valid
            pixels before clamping (for scale-ambiguous monocular predictions).
        per_image: return the per-image dicts instead of the summary.
    Returns:
        Summary dict (`per_image=False`): the mean of each metric in `DEPTH_METRICS` over the
        images with at least one valid pixel, "n_images" (how many were scored), "n_skipped"
        (how many had no valid pixel) and, with median scaling, "median_scale_mean" and
        "median_scale_std" (population std) of the per-image scale factors.
        List (`per_image=True`): one dict per input image, in order, with the metrics,
        "n_pixels" and, with median scaling, "median_scale"; an image without valid pixels has
        NaN metrics and n_pixels 0.
    Raises:
        ValueError: shapes disagree (both are named), bad depth range, a median prediction
            that is not positive under median scaling, or (summary only) no image has a valid
            pixel.
    """
    if not min_depth > 0:
        raise ValueError(f"min_depth must be > 0 (predictions are clamped to it before a log); "
                         f"got {min_depth}")
    if max_depth is not None and not max_depth > min_depth:
        raise ValueError(f"max_depth must exceed min_depth; got max_depth {max_depth}, "
                         f"min_depth {min_depth}")
    gt_b = _as_batch(gt, "gt").astype(np.float64)
    pred_b = _as_batch(pred, "pred").astype(np.float64)
    if gt_b.shape != pred_b.shape:
        raise ValueError(f"gt shape {np.shape(gt)} and pred shape {np.shape(pred)} disagree")
    mask = gt_b > min_depth  # NaN ground truth is invalid too
    if valid is not None:
        valid_b = _as_batch(valid, "valid")
        if valid_b.shape != gt_b.shape:
            raise ValueError(f"valid shape {np.shape(valid)} and gt shape {np.shape(gt)} "
                             f"disagree")
        mask &= valid_b.astype(bool)
    if max_depth is not None:
        mask &= gt_b < max_depth

    results = []
    for i in range(gt_b.shape[0]):
        gt_i, pred_i = gt_b[i][mask[i]], pred_b[i][mask[i]]
        if gt_i.size == 0:
            entry = {name: float("nan") for name in DEPTH_METRICS}
            entry["n_pixels"] = 0
            if median_scaling:
                entry["median_scale"] = float("nan")
            results.append(entry)
            continue
        scale = None
        if median_scaling:
            median_pred = np.median(pred_i)
            if not median_pred > 0:
                raise ValueError(f"image {i}: median prediction over its valid pixels is "
                                 f"{median_pred:g}; median scaling needs a positive median")
            scale = float(np.median(gt_i) / median_pred)
            pred_i = pred_i * scale
        pred_i = np.clip(pred_i, min_depth, max_depth)
        entry = depth_errors(gt_i, pred_i)
        entry["n_pixels"] = int(gt_i.size)
        if median_scaling:
            entry["median_scale"] = scale
        results.append(entry)
    return results if per_image else summarise_depth(results)


def summarise_depth(per_image):
    """Averages per-image results (as returned by `evaluate_depth(..., per_image=True)`).

    Images with n_pixels 0 are skipped and counted in "n_skipped".

    Returns:
        The summary dict described in `evaluate_depth`.
    Raises:
        ValueError: no image has a valid pixel.
    """
    scored = [entry for entry in per_image if entry["n_pixels"] > 0]
    if not scored:
        raise ValueError(f"none of the {len(per_image)} images has a valid pixel; check the "
                         f"depth units against min_depth / max_depth and the valid mask")
    summary = {name: float(np.mean([entry[name] for entry in scored])) for name in DEPTH_METRICS}
    summary["n_images"] = len(scored)
    summary["n_skipped"] = len(per_image) - len(scored)
    if "median_scale" in scored[0]:
        scales = np.array([entry["median_scale"] for entry in scored])
        summary["median_scale_mean"] = float(scales.mean())
        summary["median_scale_std"] = float(scales.std())
    return summary
