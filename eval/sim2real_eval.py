"""Evaluate a sim2real run on real(-like) test images beside two supervised bounds (seed 001,
section 4, Table 1).

    python -m tfgan3d.eval.sim2real_eval RUN [--data builtin:rooms-real] [--resolution 256]
        [--baseline-steps N] [--out DIR] [--max-depth M] [--median-scaling] [--grid-rows 6]

The run's model predicts depth and segmentation from real test images. Beside it, on the same
data and budget: sim-only with the twin VAE's own networks (E_S -> z -> D_depth, D_seg of the
run's config, freshly initialised, trained on sim labels only with the twin VAE's stage-2
optimiser settings: the like-for-like lower bound), and two U-Nets of one size trained with
the same losses, image size and batch size: on simulation only (the lower bound: what
supervision without adaptation gives) and on the real set's own train split with its sensor
depth and labels (the upper bound). The prior, the per-pixel mean depth
and majority class of the simulation's training set, ignores the image: a model that does not
beat it has learned nothing, and the budget check (reported before the verdict) says so, as it
says when the upper bound does not beat sim-only. The same models are also scored on the
simulation's own test split (the twin VAE through its sim path E_S -> z -> D_depth, D_seg, the
one stage 2 supervises): there the question is only whether each model beats the prior at all,
i.e. whether the budget let the decoders learn the task where they have labels. Everything is
scored at one
resolution (the seed resized predictions and ground truth to 256x256): predictions are resized
bilinearly (segmentation logits before the argmax), ground truth by nearest neighbour.

Writes to OUT (default RUN/eval-sim2real-<data>/):
  metrics.json                   every model's metrics, per-class IoU, the verdict ("rows":
                                 the real test set); "sim_test": the same models on the sim
                                 test split ({"data", "split", "rows", "prior_check"})
  comparison.csv, comparison.md  every model beside the seed's Table 1, and the verdict;
                                 comparison.md then the sim test split's table (labelled)
  pred_depth.npy, pred_labels.npy, gt_depth.npy, gt_valid.npy, gt_labels.npy   (the run's model)
  grid.png                       real image | depth | segmentation | ground truth depth | labels
  grid_sim.png                   the same for sim test images (the twin VAE's sim path)
  translations.png               sim | sim -> real and real | real -> sim (modes that translate)
metrics.json's "latent" (a twin VAE, when the sim data has a test split): where E_S puts the
sim test images and E_R the real ones in the shared latent space (eval/latent_alignment.py).
Metric definitions: eval/depth_metrics.py and eval/seg_metrics.py (the pix2pix code).
"""
from __future__ import annotations

import math
import re
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfgan3d import cli
from tfgan3d.data import sim2real_data
from tfgan3d.data.classes import segmentation_palette
from tfgan3d.eval import depth_metrics, figures, latent_alignment, seg_metrics, tables
from tfgan3d.io import save_npy, to_uint8
from tfgan3d.models.baselines import train_sim_only_twin, train_supervised_baseline

# Table 1 of the seed (section 4.2 numbers, section 4.3 discussion), as printed: KITTI test
# images at 256x256; the supervised rows are other authors' models trained on real data.
SEED_TABLE1 = {
    "Depth": {"columns": ("Abs. Rel.", "Sq. Rel.", "RMSE", "log RMSE"),
              "rows": {"Jaipuria, et al.": (0.148, 0.806, 4.05, 0.329),
                       "Ours": (0.752, 20.7, 16.1, 0.580)}},
    "Semantic Segmentation": {"columns": ("mIOU", "Accuracy"),
                              "rows": {"Zhou et al.": (0.128, "86.2%"),
                                       "Ours": (0.0630, "54.9%")}},
}
SEED_SOURCE = "seed 001 (Sim2Real), section 4, Table 1"
_SEED_KEYS = {"Abs. Rel.": "abs_rel", "Sq. Rel.": "sq_rel", "RMSE": "rmse",
              "log RMSE": "rmse_log", "mIOU": "miou", "Accuracy": "pixel_accuracy"}
ROLES = {"sim2real": "this model", "sim-only-twin": "lower bound, the twin VAE's own networks",
         "sim-only": "lower bound", "real-supervised": "upper bound", "prior": "no image",
         "sim2real-via-E_S": "diagnostic: the twin VAE reading the real images through E_S "
                             "instead of E_R"}
# Rows that describe the model rather than compete: left out of the budget check.
DIAGNOSTIC_ROLES = ("sim2real-via-E_S",)
# Table 1's "Ours" abs_rel as a multiple of its supervised row's (0.752 / 0.148).
SEED_ABS_REL_MULTIPLE = 0.752 / 0.148
# Metric -> True when lower is better (Table 1: depth errors lower, segmentation higher).
COMPARED = {"abs_rel": True, "sq_rel": True, "rmse": True, "rmse_log": True, "miou": False,
            "pixel_accuracy": False}
COLUMNS = ("source", "model", "role", "abs_rel", "sq_rel", "rmse", "rmse_log", "delta1",
           "miou", "pixel_accuracy", "abs_rel_x_sup", "depth_std")
QUESTION = "Does the twin VAE beat the sim-only baseline on real-like data?"
QUESTION_TWIN = ("Does the twin VAE beat sim-only with the same networks (E_S, D_depth, D_seg, "
                 "no adaptation) on real-like data?")


# ---- metrics ------------------------------------------------------------------------------------

def _size_hw(size):
    return (int(size), int(size)) if np.isscalar(size) else (int(size[0]), int(size[1]))


def _maps(array, ndim):
    """(H, W[, C]) -> (1, H, W[, C]); (N, H, W, 1) depth -> (N, H, W)."""
    array = np.asarray(array)
    return array[None] if array.ndim == ndim - 1 else array


def resize_maps(array, size, method):
    """(N, H, W) or (N, H, W, C) numpy -> the same at `size` (method "bilinear" or "nearest")."""
    array = np.asarray(array)
    if tuple(array.shape[1:3]) == tuple(size):
        return array
    squeeze = array.ndim == 3
    x = tf.convert_to_tensor(array[..., None] if squeeze else array, tf.float32)
    x = tf.image.resize(x, size, method=method, antialias=method == "bilinear").numpy()
    x = x[..., 0] if squeeze else x
    return np.round(x).astype(array.dtype) if method == "nearest" else x


def evaluate_predictions(pred_depth, gt_depth, gt_valid, pred_labels, gt_labels, num_classes,
                         *, min_depth=1e-3, max_depth=None, median_scaling=False,
                         resolution=None, ignore_index=sim2real_data.IGNORE_LABEL) -> dict:
    """Depth and segmentation scores of one model over a test set, at one resolution.

    Args:
        pred_depth, gt_depth: metres, (N, H, W), (N, H, W, 1) or one (H, W); None skips depth.
        gt_valid: mask of gt_depth (None: gt > min_depth).
        pred_labels: class ids (N, H, W) or logits (N, H, W, C); gt_labels: ids (N, H, W),
            `ignore_index` unlabelled. None skips segmentation.
        num_classes: C.
        min_depth, max_depth, median_scaling: as `depth_metrics.evaluate_depth`.
        resolution: int or (h, w) to score at; None: the ground truth's. Predictions are
            resized bilinearly (logits before the argmax), ground truth by nearest neighbour.
    Returns:
        dict: the `evaluate_depth` summary (abs_rel, sq_rel, rmse, rmse_log, delta1-3,
        n_images, n_skipped) and the `segmentation_scores` (miou over the classes present,
        pixel_accuracy, iou_per_class, classes_present) with "confusion_matrix".
    """
    out = {}
    if pred_depth is not None and gt_depth is not None:
        gt = _maps(gt_depth, 3)
        gt = gt[..., 0] if gt.ndim == 4 else gt
        size = _size_hw(resolution) if resolution is not None else gt.shape[1:3]
        valid = None
        if gt_valid is not None:
            valid = _maps(gt_valid, 3)
            valid = resize_maps((valid[..., 0] if valid.ndim == 4 else valid).astype(np.uint8),
                                size, "nearest") > 0
        pred = _maps(pred_depth, 3)
        pred = pred[..., 0] if pred.ndim == 4 else pred
        out.update(depth_metrics.evaluate_depth(
            resize_maps(gt, size, "nearest"), resize_maps(pred, size, "bilinear"), valid,
            min_depth=min_depth, max_depth=max_depth, median_scaling=median_scaling))
    if pred_labels is not None and gt_labels is not None:
        gt = _maps(gt_labels, 3).astype(np.int64)
        size = _size_hw(resolution) if resolution is not None else gt.shape[1:3]
        pred = np.asarray(pred_labels)
        if pred.ndim == np.ndim(gt_labels) + 1:  # logits: resized before the argmax
            pred = np.argmax(resize_maps(_maps(pred, 4), size, "bilinear"), axis=-1)
        else:
            pred = resize_maps(_maps(pred, 3).astype(np.int64), size, "nearest")
        conf = seg_metrics.confusion_matrix(resize_maps(gt, size, "nearest"), pred, num_classes,
                                            ignore_index=ignore_index)
        out.update(seg_metrics.segmentation_scores(conf))
        out["confusion_matrix"] = conf
    return out


def predict_set(predict_fn, dataset, resolution):
    """Runs predict_fn (image [-1, 1] -> (depth metres, logits)) over an evaluation dataset.

    Returns:
        dict of numpy arrays at `resolution`: rgb uint8, pred_depth (N, h, w), pred_labels,
        gt_depth, gt_valid (bool), gt_labels; and names.
    """
    size = _size_hw(resolution)
    parts = {k: [] for k in ("rgb", "pred_depth", "pred_labels", "gt_depth", "gt_valid",
                             "gt_labels", "names")}
    for batch in dataset:
        depth, logits = predict_fn(batch["image"])
        depth = tf.image.resize(tf.cast(depth, tf.float32), size, antialias=True)
        logits = tf.image.resize(tf.cast(logits, tf.float32), size, antialias=True)
        rgb = tf.image.resize((batch["image"] + 1.0) * 127.5, size, antialias=True)
        parts["rgb"].append(np.clip(np.round(rgb.numpy()), 0, 255).astype(np.uint8))
        parts["pred_depth"].append(depth.numpy()[..., 0])
        parts["pred_labels"].append(tf.argmax(logits, -1, output_type=tf.int32).numpy()
                                    .astype(np.uint8))
        parts["gt_depth"].append(resize_maps(batch["depth"].numpy()[..., 0], size, "nearest"))
        parts["gt_valid"].append(resize_maps(batch["depth_valid"].numpy()[..., 0], size,
                                             "nearest") > 0.5)
        parts["gt_labels"].append(resize_maps(batch["labels"].numpy().astype(np.uint8), size,
                                              "nearest"))
        parts["names"].append(batch["name"].numpy().astype(str))
    if not parts["rgb"]:
        raise ValueError("predict_set: the dataset is empty")
    return {k: np.concatenate(v) for k, v in parts.items()}


def score_set(arrays, info, num_classes, **kwargs) -> dict:
    """evaluate_predictions over a predict_set result, on what the test set has."""
    return evaluate_predictions(
        arrays["pred_depth"] if info["has_depth"] else None, arrays["gt_depth"],
        arrays["gt_valid"], arrays["pred_labels"] if info["has_labels"] else None,
        arrays["gt_labels"], num_classes, **kwargs)


# ---- the prior: what the sim training set says without looking at the image -------------------

def fit_prior(dataset, num_classes, ignore_index=sim2real_data.IGNORE_LABEL):
    """Per-pixel mean valid depth and per-pixel majority class of a labelled set.

    Args:
        dataset: finite batches of {"depth", "depth_valid", "labels"} of one spatial size.
        num_classes: C; labels equal to `ignore_index` are not counted.
    Returns:
        predict_fn(image) -> (depth [B, h, w, 1] metres, one-hot logits [B, h, w, C]): the same
        maps for every image, resized to its size. A pixel never valid (or never labelled)
        takes the set's overall mean depth (most frequent class).
    """
    depth_sum = depth_count = class_count = None
    for batch in dataset:
        depth = batch["depth"].numpy()[..., 0].astype(np.float64)
        valid = batch["depth_valid"].numpy()[..., 0] > 0.5
        labels = batch["labels"].numpy().astype(np.int64)
        if depth_sum is None:
            depth_sum, depth_count = np.zeros(depth.shape[1:]), np.zeros(depth.shape[1:])
            class_count = np.zeros(labels.shape[1:] + (num_classes,))
        depth_sum += np.where(valid, depth, 0.0).sum(0)
        depth_count += valid.sum(0)
        known = (labels != ignore_index) & (labels >= 0) & (labels < num_classes)
        one_hot = np.eye(num_classes)[np.where(known, labels, 0)] * known[..., None]
        class_count += one_hot.sum(0)
    if depth_sum is None:
        raise ValueError("fit_prior: the dataset is empty")
    overall = depth_sum.sum() / max(depth_count.sum(), 1.0)
    mean_depth = np.where(depth_count > 0, depth_sum / np.maximum(depth_count, 1.0), overall)
    majority = np.where(class_count.sum(-1) > 0, class_count.argmax(-1),
                        class_count.sum((0, 1)).argmax())
    depth_map = tf.constant(mean_depth[..., None], tf.float32)
    logits_map = tf.one_hot(tf.constant(majority, tf.int32), num_classes)

    def predict_fn(image):
        shape = tf.shape(image)
        size = shape[1:3]
        depth = tf.image.resize(depth_map[None], size, method="nearest")
        logits = tf.image.resize(logits_map[None], size, method="nearest")
        reps = tf.stack([shape[0], 1, 1, 1])
        return tf.tile(depth, reps), tf.tile(logits, reps)
    return predict_fn


# ---- comparison ---------------------------------------------------------------------------------

def _seed_rows():
    """Table 1 as rows of COLUMNS (accuracy as a fraction); "Ours" merges both halves."""
    rows = {}
    for part in SEED_TABLE1.values():
        for model, values in part["rows"].items():
            row = rows.setdefault(model, {"source": "seed Table 1", "model": model,
                                          "role": "sim2real" if model == "Ours"
                                          else "real-supervised"})
            for column, value in zip(part["columns"], values):
                row[_SEED_KEYS[column]] = (float(value.rstrip("%")) / 100.0
                                           if isinstance(value, str) else value)
    add_multiples(list(rows.values()))
    return list(rows.values())


def add_multiples(rows) -> None:
    """abs_rel_x_sup: each row's abs_rel over the real-supervised row's (in place; absent
    without that row). The seed's Table 1 gives its method 5.1x its supervised model."""
    sup = next((r for r in rows if r.get("role") == "real-supervised"
                and _finite(r, "abs_rel") and r["abs_rel"] > 0), None)
    for row in rows:
        if sup is not None and _finite(row, "abs_rel"):
            row["abs_rel_x_sup"] = row["abs_rel"] / sup["abs_rel"]


def depth_spread(arrays) -> float:
    """Std of the predicted depth across the test images, mean over pixels (metres): near 0
    for a model that gives every image one depth map (image-blind, like the prior)."""
    return float(np.asarray(arrays["pred_depth"], np.float64).std(0).mean())


def _finite(row, key):
    value = row.get(key)
    return isinstance(value, (int, float)) and math.isfinite(value)


def verdict(rows, data="real-like data", lower_role="sim-only") -> str:
    """The answer to QUESTION (lower_role "sim-only-twin": QUESTION_TWIN) computed from the rows
    (roles "sim2real" and `lower_role`), with the share of the gap to the "real-supervised"
    upper bound that the model closes."""
    by_role = {row.get("role"): row for row in rows}
    ours, lower, upper = (by_role.get(r) for r in ("sim2real", lower_role, "real-supervised"))
    question = (QUESTION_TWIN if lower_role == "sim-only-twin" else QUESTION).replace(
        "real-like data", data)
    if ours is None or lower is None:
        return f"{question} Cannot tell: the table lacks a sim2real or a sim-only row."
    better, compared = [], []
    for key, lower_is_better in COMPARED.items():
        if _finite(ours, key) and _finite(lower, key):
            compared.append(key)
            if (ours[key] < lower[key]) if lower_is_better else (ours[key] > lower[key]):
                better.append(key)
    if not compared:
        return f"{question} Cannot tell: no metric is present in both rows."
    answer = ("Yes" if len(better) == len(compared) else "No" if not better else "Partly")
    detail = "; ".join(f"{k} {ours[k]:.4g} vs {lower[k]:.4g}" for k in compared)
    text = (f"{question} {answer}: better on {len(better)} of {len(compared)} metrics "
            f"(twin VAE vs {lower_role}: {detail}).")
    if upper is not None:
        closed, inverted = [], []
        for key in ("abs_rel", "miou"):
            if not all(_finite(r, key) for r in (ours, lower, upper)):
                continue
            gap = (lower[key] - upper[key]) if COMPARED[key] else (upper[key] - lower[key])
            if gap > 0:
                gained = (lower[key] - ours[key]) if COMPARED[key] else (ours[key] - lower[key])
                closed.append(f"{100 * gained / gap:.0f}% of the {key} gap")
            else:
                inverted.append(key)
        if closed:
            text += (f" Between the {lower_role} lower bound and the real-supervised upper "
                     f"bound it closes {' and '.join(closed)}.")
        if inverted:
            text += (f" The real-supervised upper bound does not beat the {lower_role} baseline on "
                     f"{' and '.join(inverted)}: too few baseline steps or test images?")
    return text


def budget_check(rows) -> str:
    """Whether the table can say anything, computed from the rows: does the real-supervised
    upper bound beat the sim-only baseline, and does every model beat the image-blind prior,
    on abs_rel and mIoU? If not, the budget (steps, images) is too small for the question."""
    by_role = {row.get("role"): row for row in rows}
    lower, upper, prior = (by_role.get(r) for r in ("sim-only", "real-supervised", "prior"))
    problems, checked = [], []

    def beats(a, b, key):
        return (a[key] < b[key]) if COMPARED[key] else (a[key] > b[key])

    for key in ("abs_rel", "miou"):
        if upper is not None and lower is not None and _finite(upper, key) and \
                _finite(lower, key):
            checked.append(f"upper bound vs sim-only on {key}")
            if not beats(upper, lower, key):
                problems.append(f"the real-supervised upper bound does not beat sim-only on "
                                f"{key} ({upper[key]:.4g} vs {lower[key]:.4g})")
        if prior is None or not _finite(prior, key):
            continue
        for row in rows:
            if row is prior or not _finite(row, key) or row.get("role") in DIAGNOSTIC_ROLES:
                continue
            checked.append(f"{row.get('role')} vs prior on {key}")
            if not beats(row, prior, key):
                problems.append(f"{row.get('role')} does not beat the prior on {key} "
                                f"({row[key]:.4g} vs {prior[key]:.4g})")
    if not checked:
        return "Budget check: cannot tell (no prior, sim-only or upper-bound rows to compare)."
    if problems:
        return ("Budget check: FAILS, so the budget is too small for the comparison to say "
                "anything: " + "; ".join(problems) + ".")
    return (f"Budget check: passes ({len(checked)} comparisons: the upper bound beats sim-only "
            "and every model beats the prior on abs_rel and mIoU).")


def prior_check(rows, data="the sim test set") -> str:
    """Which models beat the image-blind prior on abs_rel and mIoU (both), computed from the
    rows (the sim test split's: where every model but the real-supervised one had labels, a
    model that does not beat the prior has not learned the task in its budget)."""
    by_role = {row.get("role"): row for row in rows}
    prior = by_role.get("prior")
    keys = ("abs_rel", "miou")
    if prior is None or not all(_finite(prior, k) for k in keys):
        return f"Prior check on {data}: cannot tell (no prior row)."
    parts = []
    for row in rows:
        if row is prior or not all(_finite(row, k) for k in keys):
            continue
        beats = [(row[k] < prior[k]) if COMPARED[k] else (row[k] > prior[k]) for k in keys]
        parts.append(f"{row.get('role')} {'yes' if all(beats) else 'no'} ("
                     + ", ".join(f"{k} {row[k]:.4g} vs {prior[k]:.4g}" for k in keys) + ")")
    if not parts:
        return f"Prior check on {data}: cannot tell (no model row)."
    return (f"Prior check on {data}, does the model beat the image-blind prior on abs_rel and "
            f"mIoU? " + "; ".join(parts) + ".")


def compare(rows, out_dir, *, data="real-like data", budget_note="", sim_rows=None,
            sim_data=None, probe=None, latent_stages=None) -> dict:
    """Writes the comparison table beside the seed's Table 1, with the computed verdict.

    Args:
        rows: dicts with "model", "role" (a key of ROLES) and metric values (COLUMNS).
        out_dir: folder for comparison.csv, comparison.md and comparison.json.
        budget_note: a sentence on the data and budget the rows share (printed under the table).
        sim_rows, sim_data: the same models scored on the sim test split (None: no such
            section), written after the seed's table with their prior check.
    Returns:
        {"rows": the table rows (ours, then the seed's), "verdict": str, "budget_check": str,
         "prior_check": str or None (the sim rows'), "paths": [...]}
    """
    out_dir = Path(out_dir)
    ours = [{"source": "this run", **{k: row.get(k) for k in COLUMNS if k != "source"}}
            for row in rows]
    table = ours + _seed_rows()
    answer, check = verdict(rows, data), budget_check(rows)
    if any(row.get("role") == "sim-only-twin" for row in rows):
        answer = verdict(rows, data, "sim-only-twin") + " " + answer
    paths = [tables.write_csv(table, out_dir / "comparison.csv", columns=COLUMNS)]
    seed_md = "\n".join(
        tables.markdown_table([{"Network": m, **dict(zip(part["columns"], values))}
                               for m, values in part["rows"].items()], floatfmt=".4g",
                              title=f"{name} (seed, as printed)")
        for name, part in SEED_TABLE1.items())
    text = (f"# Sim2real: twin VAE vs supervised bounds on {data}\n\n"
            + tables.markdown_table(table, COLUMNS, floatfmt=".4g")
            + "\nDepth errors: lower is better; mIoU and pixel accuracy: higher is better. "
              "Roles: " + ", ".join(f"{k} = {v}" for k, v in ROLES.items()) + ".\n"
            + f"Seed rows: {SEED_SOURCE} (KITTI test images, 256x256; Jaipuria et al. and "
              "Zhou et al. are supervised on other real data sets, so they are upper bounds "
              "only loosely).\n"
            + (f"{budget_note}\n" if budget_note else "") + "\n"
            + f"abs_rel_x_sup: abs_rel as a multiple of the real-supervised row's (the "
              f"seed's method: {SEED_ABS_REL_MULTIPLE:.1f}x its supervised model); depth_std: "
              "std of the predicted depth across the test images, mean over pixels (metres; "
              "0 for an image-blind model).\n"
            + (f"Content alignment, {latent_alignment.describe_probe(probe)}.\n"
               if probe else "")
            + "".join(f"Latent at the end of {stage}: {latent_alignment.describe(stats)}.\n"
                      for stage, stats in (latent_stages or {}).items() if stats)
            + "\n" + f"**{check}**\n\n**{answer}**\n\n" + seed_md)
    sim_check = None
    if sim_rows is not None:
        sim_check = prior_check(sim_rows, f"the sim test set ({sim_data})")
        text += (f"\n# The same models on the sim test set ({sim_data})\n\n"
                 "Not the seed's question: where the models had labels (all but the "
                 "real-supervised U-Net), does each beat the image-blind prior? The twin VAE "
                 "is scored through its sim path E_S -> z -> D_depth, D_seg.\n\n"
                 + tables.markdown_table(sim_rows, [c for c in COLUMNS if c != "source"],
                                         floatfmt=".4g")
                 + f"\n**{sim_check}**\n")
    paths.append(tables.atomic_write(out_dir / "comparison.md", text))
    paths.append(tables.write_json({"rows": table, "budget_check": check, "verdict": answer,
                                    "seed_table1": SEED_TABLE1,
                                    **({"sim_test": {"data": sim_data, "rows": sim_rows,
                                                     "prior_check": sim_check}}
                                       if sim_rows is not None else {})},
                                   out_dir / "comparison.json"))
    return {"rows": table, "verdict": answer, "budget_check": check, "prior_check": sim_check,
            "paths": paths}


# ---- figures ------------------------------------------------------------------------------------

def colour_labels(labels, colours) -> np.ndarray:
    """Class ids (H, W) -> uint8 RGB; ids outside the palette (ignored) are black."""
    labels = np.asarray(labels).astype(np.int64)
    known = (labels >= 0) & (labels < len(colours))
    return np.where(known[..., None], colours[np.where(known, labels, 0)], 0).astype(np.uint8)


def save_grid(arrays, path, num_classes, rows=6, image_title="real image"):
    """real image (`image_title`) | depth | segmentation | ground truth depth | labels."""
    colours = segmentation_palette(num_classes)  # the training samples' colours too
    k = min(rows, len(arrays["rgb"]))
    grid = [[arrays["rgb"][i], arrays["pred_depth"][i],
             colour_labels(arrays["pred_labels"][i], colours),
             np.where(arrays["gt_valid"][i], arrays["gt_depth"][i], 0.0),
             colour_labels(arrays["gt_labels"][i], colours)] for i in range(k)]
    return figures.save_image_grid(
        grid, path, col_titles=[image_title, "depth", "segmentation", "gt depth", "gt labels"],
        titles=[str(n) for n in arrays["names"][:k]], scale=_scale(arrays["rgb"]))


def _scale(images):
    """Screen pixels per image pixel: small images drawn at least 96 pixels wide."""
    return float(min(4, max(1, 96 // np.shape(images)[2])))


def save_translations(model, sim_images, real_images, path):
    """sim | sim -> real and real | real -> sim, through the twin VAE's `translate`."""
    to_real = model.translate(sim_images, "real")
    to_sim = model.translate(real_images, "sim")
    rows = [[s, t] for s, t in zip(to_uint8(sim_images), to_uint8(to_real))]
    rows += [[r, t] for r, t in zip(to_uint8(real_images), to_uint8(to_sim))]
    titles = ["sim"] * len(sim_images) + ["real"] * len(real_images)
    return figures.save_image_grid(rows, path, titles=titles,
                                   col_titles=["input", "translated"],
                                   scale=_scale(sim_images))


# ---- program ------------------------------------------------------------------------------------

def train_twin_sim_only(config, train_ds, steps):
    """Sim-only with the twin VAE's networks for `config` (E_S, D_depth, D_seg, freshly built
    with its seed), its loss weights, and its stage-2 optimiser (Adam lr, betas, schedule and
    precision of `make_optimizers`, the schedule spanning `steps`). Returns (predict, history)."""
    import dataclasses

    import keras

    from tfgan3d.networks.sim2real import build_sim2real_networks
    from tfgan3d.trainers import sim2real as trainer

    keras.utils.set_random_seed(config.seed)
    networks = build_sim2real_networks(trainer.net_spec(config))
    optimizer = trainer.make_optimizers(dataclasses.replace(config, stage2_steps=steps))["stage2"]
    return train_sim_only_twin(train_ds, networks, optimizer, steps=steps,
                               max_depth=config.max_depth, lambda_kl=config.lambda_kl,
                               lambda_depth=config.lambda_depth, lambda_seg=config.lambda_seg,
                               kl_per_unit=config.kl_per_unit, seed=config.seed)


def sim_path(model, mode, config):
    """(predict_fn, how) for sim images: a twin VAE's sim path E_S -> z -> D_depth, D_seg (z
    as at inference: the mean unless --inference sample), the path stage 2 supervises; a
    model without a sim encoder: the mode's own predict."""
    parts = ("encoder_sim", "code", "depth_decoder", "seg_decoder", "depth_metres")
    if all(hasattr(model, name) for name in parts):
        def predict(image):
            z = model.code(model.encoder_sim, image)
            return (model.depth_metres(model.depth_decoder(z, training=False)),
                    model.seg_decoder(z, training=False))
        return predict, "E_S -> D_depth, D_seg"

    def predict_real(image):
        out = mode.predict(model, image, config)
        return out["depth"], out["seg_logits"]
    return predict_real, "its real-domain path"


def _row(model, role, scores, **extra):
    keep = {k: v for k, v in scores.items() if k not in ("confusion_matrix",)}
    return {"model": model, "role": role, **keep, **extra}


def evaluate_run(run_dir, *, data=None, split="test", resolution=256, baseline_steps=None,
                 baseline_ngf=32, out=None, min_depth=1e-3, max_depth=None,
                 median_scaling=False, grid_rows=6, batch_size=8, checkpoint=None) -> dict:
    """Evaluates a sim2real run and its two supervised bounds; writes OUT (module docstring).

    baseline_steps None: the run's stage-2 steps (its supervised stage), else its steps, else
    1000; 0 skips the baselines.
    Returns:
        {"rows": [...] (the real test set), "budget_check": str, "verdict": str,
         "sim_test": {"data", "split", "rows", "prior_check"} (when the sim data has a test
         split), "notes": [...], "out": Path}
    """
    from tfgan3d.export import load_trained

    t0 = time.time()
    config, model, mode = load_trained(run_dir, checkpoint)
    opts = sim2real_data.data_options(config)
    source = data or opts.real_data
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", source.replace("builtin:", ""))
    out = Path(out) if out else Path(run_dir) / f"eval-sim2real-{name}"
    eval_ds, info = sim2real_data.make_eval_dataset(source, split, config=config,
                                                    gt_size=resolution, batch_size=batch_size)
    num_classes = info["num_classes"]
    kwargs = dict(min_depth=min_depth, max_depth=max_depth or opts.max_depth,
                  median_scaling=median_scaling)

    def predict(image):
        out = mode.predict(model, image, config)
        return out["depth"], out["seg_logits"]

    arrays = predict_set(predict, eval_ds, resolution)
    rows = [_row(f"sim2real twin VAE ({Path(run_dir).name})", "sim2real",
                 score_set(arrays, info, num_classes, **kwargs),
                 depth_std=depth_spread(arrays))]
    notes, histories, sim_rows, latent, probe = [], {}, None, None, None
    latent_stages, diagnostic_rows = {}, []
    try:  # the sim test split: the same models, where they had labels
        sim_eval_ds, sim_info = sim2real_data.make_eval_dataset(
            opts.sim_data, split, config=config, role="sim", gt_size=resolution,
            batch_size=batch_size)
    except sim2real_data.DataError as err:
        notes.append(f"sim test set skipped: {err}")
    else:
        sim_predict, how = sim_path(model, mode, config)
        sim_arrays = predict_set(sim_predict, sim_eval_ds, resolution)
        sim_rows = [_row(f"sim2real twin VAE ({Path(run_dir).name}), {how}", "sim2real",
                         score_set(sim_arrays, sim_info, num_classes, **kwargs))]
        save_grid(sim_arrays, out / "grid_sim.png", num_classes, grid_rows, "sim image")
        latent = latent_alignment.latent_alignment(model, sim_eval_ds, eval_ds)
        if how.startswith("E_S"):    # a twin VAE: its real images read through E_S too
            es_arrays = predict_set(sim_predict, eval_ds, resolution)
            diagnostic_rows.append(_row(f"the same twin VAE, real images through {how}",
                                        "sim2real-via-E_S",
                                        score_set(es_arrays, info, num_classes, **kwargs),
                                        depth_std=depth_spread(es_arrays)))
            sim_rows[0]["depth_std"] = depth_spread(sim_arrays)
            probe = _content_probe(model, opts, config, eval_ds, notes)
            latent_stages = _latent_by_stage(run_dir, config, latent, notes)

    def add_row(label, role, predict_fn, **extra):
        """Scores a baseline on the real test set and, when there is one, the sim test set."""
        got = predict_set(predict_fn, eval_ds, resolution)
        rows.append(_row(label, role, score_set(got, info, num_classes, **kwargs), **extra,
                         depth_std=depth_spread(got)))
        if sim_rows is not None:
            got = predict_set(predict_fn, sim_eval_ds, resolution)
            sim_rows.append(_row(label, role, score_set(got, sim_info, num_classes, **kwargs),
                                 **extra, depth_std=depth_spread(got)))

    for key in ("pred_depth", "pred_labels", "gt_depth", "gt_valid", "gt_labels"):
        save_npy(out / f"{key}.npy", arrays[key])
    save_grid(arrays, out / "grid.png", num_classes, grid_rows)
    if hasattr(model, "translate"):
        try:
            sim_ds, _ = sim2real_data.make_eval_dataset(opts.sim_data, split, config=config,
                                                        role="sim", batch_size=min(grid_rows, 4))
        except sim2real_data.DataError as err:
            notes.append(f"translations skipped: {err}")
        else:
            real_images = next(iter(eval_ds))["image"][:min(grid_rows, 4)]
            save_translations(model, next(iter(sim_ds))["image"], real_images,
                              out / "translations.png")

    steps = baseline_steps
    if steps is None:  # as long as the model's supervised stage
        steps = getattr(config, "stage2_steps", None) or getattr(config, "steps", None) or 1000
    if steps > 0:
        try:
            train_ds, _ = sim2real_data.make_labelled_dataset(
                opts.sim_data, "train", config=config, role="sim", training=True,
                require_labels=True)
        except sim2real_data.DataError as err:
            notes.append(f"sim-only-twin baseline skipped: {err}")
        else:
            predict_fn, histories["sim-only-twin"] = train_twin_sim_only(config, train_ds, steps)
            add_row(f"sim-only, the twin VAE's E_S + D_depth + D_seg, {opts.sim_data}",
                    "sim-only-twin", predict_fn, steps=steps)
        bounds = (("sim-only", f"supervised U-Net, {opts.sim_data} only", opts.sim_data, "sim"),
                  ("real-supervised", f"supervised U-Net, {source} train labels", source,
                   "real"))
        for role, label, train_source, domain in bounds:
            try:
                train_ds, _ = sim2real_data.make_labelled_dataset(
                    train_source, "train", config=config, role=domain, training=True,
                    require_labels=True)
            except sim2real_data.DataError as err:
                notes.append(f"{role} baseline skipped: {err}")
                continue
            predict_fn, histories[role] = train_supervised_baseline(
                train_ds, steps=steps, num_classes=num_classes, max_depth=opts.max_depth,
                ngf=baseline_ngf, seed=opts.seed, name=role.replace("-", "_"))
            add_row(label, role, predict_fn, steps=steps)
    try:  # the image-blind prior of the simulation's training set
        prior_ds, _ = sim2real_data.make_labelled_dataset(
            opts.sim_data, "train", config=config, role="sim", training=False,
            gt_size=resolution, batch_size=batch_size, require_labels=True)
    except sim2real_data.DataError as err:
        notes.append(f"prior skipped: {err}")
    else:
        add_row(f"per-pixel prior of {opts.sim_data} train (no image)", "prior",
                fit_prior(prior_ds, num_classes))

    stages = [getattr(config, k, None) for k in ("stage1_steps", "stage2_steps")]
    budget_note = (f"Shared by every trained row: the sim training set {opts.sim_data} (the "
                   f"upper bound: {source}'s train split), image size "
                   f"{getattr(config, 'image_size', '?')}, batch {config.batch_size}, and "
                   f"{steps} supervised steps each"
                   + (f" (the twin VAE: {stages[0]} unlabelled stage-1 steps, then {stages[1]} "
                      f"stage-2 steps)" if None not in stages else "")
                   + "; scored on the same test images." if steps > 0 else
                   "No baselines trained (--baseline-steps 0).")
    rows += diagnostic_rows                 # after the comparison's own rows
    add_multiples(rows)
    if sim_rows is not None:
        add_multiples(sim_rows)
    result = compare(rows, out, data=source, budget_note=budget_note, sim_rows=sim_rows,
                     sim_data=opts.sim_data, probe=probe, latent_stages=latent_stages)
    sim_test = ({"sim_test": {"data": opts.sim_data, "split": split, "rows": sim_rows,
                              "prior_check": result["prior_check"]}}
                if sim_rows is not None else {})
    tables.write_json({"run": str(run_dir), "data": source, "split": split,
                       "resolution": _size_hw(resolution), "classes": info["class_names"],
                       "rows": rows, "budget_check": result["budget_check"],
                       "verdict": result["verdict"], **sim_test,
                       **({"latent": latent} if latent else {}),
                       **({"latent_by_stage": latent_stages} if latent_stages else {}),
                       **({"content_probe": probe} if probe else {}), "notes": notes,
                       "baseline_history": histories, "seconds": round(time.time() - t0, 2)},
                      out / "metrics.json")
    return {"rows": rows, "budget_check": result["budget_check"], "verdict": result["verdict"],
            **sim_test, **({"latent": latent} if latent else {}),
            **({"latent_by_stage": latent_stages} if latent_stages else {}),
            **({"content_probe": probe} if probe else {}), "notes": notes, "out": out}


def _content_probe(model, opts, config, eval_ds, notes):
    """latent_alignment.model_content_probe on the sim training images (first 512) and this
    real test set; None (and a note) when the sim data has no depth to fit it on."""
    size = latent_alignment.PROBE_SIZE * max(1, int(config.image_size)
                                             // latent_alignment.PROBE_SIZE)
    try:
        train_ds, _ = sim2real_data.make_labelled_dataset(
            opts.sim_data, "train", config=config, role="sim", training=False, gt_size=size,
            batch_size=16)
    except sim2real_data.DataError as err:
        notes.append(f"content probe skipped: {err}")
        return None
    return latent_alignment.model_content_probe(model, train_ds.take(32), eval_ds,
                                                max_depth=opts.max_depth)


def stage1_checkpoint_of(run_dir, config):
    """The end-of-stage-1 checkpoint prefix of a run (its own, or its --stage2-from
    source's), or None."""
    source = getattr(config, "stage2_from", None)
    for folder in [Path(run_dir)] + ([Path(source)] if source else []):
        prefix = folder / "checkpoints" / "stage1" / "ckpt"
        if Path(f"{prefix}.index").exists():
            return prefix
    return None


def _latent_by_stage(run_dir, config, latent_end, notes):
    """{"stage1": latent statistics at the end of stage 1, "stage2": at the end} (the
    end-of-stage-1 checkpoint's; {} without one)."""
    prefix = stage1_checkpoint_of(run_dir, config)
    if prefix is None or not getattr(config, "stage2_steps", 0):
        return {}
    try:
        first = latent_alignment.run_latent_alignment(run_dir, checkpoint=str(prefix))
    except Exception as err:          # a diagnostic: the evaluation goes on without it
        notes.append(f"stage-1 latent statistics skipped: {type(err).__name__}: {err}")
        return {}
    return {"stage1": first, "stage2": latent_end} if first else {}


def main(argv=None):
    parser = cli.ArgumentParser(prog="tfgan3d-eval sim2real",
                                description=__doc__.split("\n")[0])
    parser.add_argument("run", help="run folder of a sim2real training")
    parser.add_argument("--data", help="real test data (default: the run's real data)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--resolution", type=int, default=256,
                        help="side of the square all maps are scored at (the seed: 256)")
    parser.add_argument("--baseline-steps", type=int,
                        help="training steps of each supervised bound (default: the run's "
                             "stage-2 steps; 0 skips them)")
    parser.add_argument("--baseline-ngf", type=int, default=32)
    parser.add_argument("--out", help="output folder (default RUN/eval-sim2real-DATA)")
    parser.add_argument("--min-depth", type=float, default=1e-3)
    parser.add_argument("--max-depth", type=float,
                        help="ground truth at or beyond it is ignored, predictions clamped "
                             "(default: the run's max_depth)")
    parser.add_argument("--median-scaling", action="store_true")
    parser.add_argument("--grid-rows", type=int, default=6)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--checkpoint", help="checkpoint prefix (default: newest)")
    args = parser.parse_args(argv)
    result = evaluate_run(args.run, data=args.data, split=args.split,
                          resolution=args.resolution, baseline_steps=args.baseline_steps,
                          baseline_ngf=args.baseline_ngf, out=args.out,
                          min_depth=args.min_depth, max_depth=args.max_depth,
                          median_scaling=args.median_scaling, grid_rows=args.grid_rows,
                          batch_size=args.batch_size, checkpoint=args.checkpoint)
    print(tables.markdown_table(result["rows"], [c for c in COLUMNS if c != "source"],
                                floatfmt=".4g"))
    print(result["verdict"])
    if "sim_test" in result:
        print(result["sim_test"]["prior_check"])
    if "latent" in result:
        print(latent_alignment.describe(result["latent"]))
    if "content_probe" in result:
        print(latent_alignment.describe_probe(result["content_probe"]))
    for note in result["notes"]:
        print(note)
    return result


if __name__ == "__main__":
    main()
