"""Evaluate a 3D FCR-alphaGAN run: the original's three evaluation modes (reconstruction,
interpolation, latent noise) in Python 3, metrics over checkpoints, the latent-space map and
the comparison with the baselines (`--variant vae`, `--variant latent1d`).

    python -m tfgan3d.eval.fcr_eval recons RUN [--n 200] [--legacy-metrics]
        [--no-baseline] [--baseline-scenes N]
    python -m tfgan3d.eval.fcr_eval checkpoints RUN [--n 50]
    python -m tfgan3d.eval.fcr_eval interpolate RUN [--pairs 3] [--steps 30] [--no-gif]
    python -m tfgan3d.eval.fcr_eval noise RUN [--scenes 2] [--draws 9] [--sigma 1.0]
    python -m tfgan3d.eval.fcr_eval latent RUN [--n 200]
    python -m tfgan3d.eval.fcr_eval compare RUN_A RUN_B [RUN_C ...] [--n 200]
        [--no-baseline] [--baseline-scenes N]
    python -m tfgan3d.eval.fcr_eval renders RUN/eval-recons [--indices 0 1 2 3] [--out PNG]
  every mode but renders also takes [--data SOURCE] [--out DIR] [--batch-size 8]; all but
  checkpoints, compare and renders take [--checkpoint PREFIX] (default: the newest). Also `tfgan3d-eval fcr MODE ...`.

Test scenes: the first n of the test split of the run's data (or --data); from a Scenevox
folder, n scenes drawn with the run's seed from the scenes after the first 95%, as the
original drew its 200. Outputs go to OUT (default RUN/eval-<mode>/), every file atomically:

recons       real.npy (N, X, H, Z) labels; recons.npy, recons_refine.npy (argmax of G(E(x)) and
             R(G(E(x)))); generate.npy, generate_refine.npy (G(z), R(G(z)), z = sample_z.npy,
             seeded prior draws); decode_z.npy (the codes E(x)); all labels uint8.
             IoU.csv, AP.csv, IoU_refine.csv, AP_refine.csv: one row per class (0 = empty
             included), "all" (channels 1..C-1 pooled per scene, as the original), then the
             extra rows "mean_class" (mIoU / mAP) and "occupancy" (eval/voxel_metrics.py:
             correct IoU, AP over the scenes holding the class). --legacy-metrics ADDS IoU_legacy.csv, AP_legacy.csv,
             IoU_refine_legacy.csv, AP_refine_legacy.csv with the original's formulas (the
             correct files are always written). per_scene.csv, metrics.json, IoU.png, AP.png.
             Trivial baseline: at every voxel position the most frequent class of the training
             split there (ties: lowest class id), scored with the training class frequencies
             as probabilities (--baseline-scenes N: from the first N training scenes only):
             baseline.npy, baseline_iou_all / baseline_map in metrics.json, a bar per class.
checkpoints  checkpoints.csv / .json (IoU "all", AP "all" and mAP before and after the refiner for every
             checkpoint kept in RUN/checkpoints) and checkpoints.png. Before phase 2 the
             refiner is untrained, so its columns only mean something for phase-2 checkpoints.
interpolate  pairs (0, 1), (1, 2), ... of test scenes: interpolation<l>-<r>.npy (steps, X, H,
             Z) refined labels, interpolation_z<l>-<r>.npy (steps, *latent): step 0 is E(x_l),
             the last E(x_r); interpolation<l>-<r>.gif (VTK renders, or top-down projections
             where off-screen GL is missing: interpolate.json says which).
noise        for each scene s and latent position (x, y, z): N(0, sigma^2) noise added to the
             latent channels there, `draws` times, decoded and refined:
             noise<s>_<x>_<y>_<z>.npy (draws, X, H, Z) labels (the original's noise*.npy per
             position) and noise<s>_base.npy (the noise-free decode); noise_change.csv (one
             row per scene and position: fraction of voxels whose class differs from the
             noise-free decode, mean over draws), noise_heatmap.png (mean over scenes, one
             panel per latent height). latent1d runs have no spatial latent: skipped, with
             the reason in noise.json.
latent       latent_coords.npy (N, 2): SVD of the flattened codes to 2-D; latent.csv (plus the
             scenes' centroids of non-empty voxels and their 1-D SVD embedding, the colour);
             latent_map.png.
renders      renders.png: real | reconstruction | refined, one row per test scene, from a
             recons output folder (VTK, or top-down projections without off-screen GL).
compare      comparison.csv / .md / .json: IoU "all", AP "all" and mAP before and after the refiner of
             every run and the trivial baseline on the same test scenes; the runs must share
             grid, classes and data.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfgan3d import config as config_lib
from tfgan3d.data import voxel_files
from tfgan3d.data.images import DataError
from tfgan3d.eval import fcr_plots, figures, tables
from tfgan3d.eval.pix2pix_eval import save_npy
from tfgan3d.eval.voxel_metrics import (ALL, MEAN_CLASS, metrics_table, voxel_ap, voxel_iou,
                                        with_mean_class)
from tfgan3d.trainers import fcr_alphagan as trainer

MODE = "fcr_alphagan"


class FCREvalError(ValueError):
    """A run, option or data set that this evaluation cannot use; the message says why."""


class _Clock:
    """Progress lines "[fcr MODE  12.3 s] message" on stdout."""

    def __init__(self, mode):
        self.mode, self.t0 = mode, time.time()

    @property
    def seconds(self):
        return round(time.time() - self.t0, 2)

    def log(self, message):
        print(f"[fcr {self.mode} {time.time() - self.t0:7.1f} s] {message}", flush=True)


def _positive(name, value, minimum=1):
    if value is None or value < minimum:
        raise FCREvalError(f"--{name.replace('_', '-')}: expected >= {minimum}, got {value}")
    return value


# ----------------------------------------------------------------------------- runs and data

@dataclasses.dataclass
class Loaded:
    """A run's config and model with the weights of one checkpoint."""
    run: Path
    config: trainer.FCRConfig
    model: object
    checkpoint: str
    step: int


def _step_of(checkpoint):
    match = re.search(r"-(\d+)$", str(checkpoint))
    return int(match.group(1)) if match else None


def run_config(run_dir) -> trainer.FCRConfig:
    """The resolved config of an fcr_alphagan run folder (raises FCREvalError for other modes)."""
    values = config_lib.load_config_json(run_dir)
    mode = values.pop("mode", None)
    if mode != MODE:
        raise FCREvalError(f"{run_dir}: a {mode!r} run; this evaluation needs an {MODE} run")
    return config_lib.resolve_config(trainer.CONFIG, MODE, values)


def load_run(run_dir, checkpoint=None) -> Loaded:
    """Config and model of an fcr_alphagan run, weights from `checkpoint` (default: newest)."""
    from tfgan3d.export import load_trained

    run_config(run_dir)                      # refuses other modes before building anything
    path = checkpoint or tf.train.latest_checkpoint(str(Path(run_dir) / "checkpoints"))
    config, model, _ = load_trained(run_dir, path)
    return Loaded(Path(run_dir), config, model, str(path), _step_of(path))


def kept_checkpoints(run_dir) -> list[str]:
    """Prefixes of the checkpoints kept in RUN/checkpoints, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    state = tf.train.get_checkpoint_state(str(folder))
    paths = [p for p in (state.all_model_checkpoint_paths if state else [])
             if Path(f"{p}.index").is_file()]
    if not paths:
        raise FCREvalError(f"{folder}: no checkpoint kept (expected a 'checkpoint' file "
                           f"naming ckpt-N.index files)")
    return sorted(paths, key=lambda p: (_step_of(p) or 0, p))


def load_test_scenes(config, source=None, n=200):
    """(labels uint8 (N, X, H, Z), names) of the first n test scenes of `source` (default: the
    run's data); from Scenevox folders n scenes drawn with the run's seed, as the original."""
    root = trainer.data_root(config, source)
    scenes, names = [], []
    for name, scene in voxel_files.iter_voxel_source(root, "test", grid=tuple(config.grid),
                                                     test_limit=n, seed=config.seed):
        scenes.append(scene)
        names.append(name)
        if len(scenes) == n:
            break
    if not scenes:
        raise FCREvalError(f"{root}: no test scenes")
    return np.stack(scenes).astype(np.uint8), names


# ----------------------------------------------------------------------------- inference

def _batches(n, batch_size):
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def _padded(array, batch_size):
    """`array` padded to `batch_size` rows by repeating its last row: every network call sees
    one batch shape, so a scene decodes to the same bits whatever batch it is in."""
    if len(array) == batch_size:
        return array
    return np.concatenate([array, np.repeat(array[-1:], batch_size - len(array), 0)])


def encode_scenes(model, scenes, batch_size=8):
    """The codes E(x) (float32, (N, *latent_shape)) of label scenes."""
    num_classes = model.spec.num_classes
    codes = []
    for sl in _batches(len(scenes), batch_size):
        x = tf.one_hot(_padded(scenes[sl], batch_size).astype(np.int32), num_classes)
        codes.append(np.asarray(model.encode(x))[: sl.stop - sl.start])
    return np.concatenate(codes).astype(np.float32)


def decode_batches(model, codes, batch_size=8, clock=None):
    """Yields (slice, G(z) probabilities, R(G(z)) probabilities) per batch of codes."""
    n = len(codes)
    for sl in _batches(n, batch_size):
        z = _padded(np.asarray(codes[sl], np.float32), batch_size)
        probs = model.decode(z)
        refined = model.refine(probs)
        k = sl.stop - sl.start
        if clock is not None and n > batch_size:
            clock.log(f"decoded {sl.stop}/{n}")
        yield sl, np.asarray(probs)[:k], np.asarray(refined)[:k]


def decode_labels(model, codes, batch_size=8, refine=True):
    """argmax labels (uint8) of R(G(z)) (or of G(z) when not `refine`) for codes z."""
    out = np.empty((len(codes), *model.spec.grid), np.uint8)
    for sl, probs, refined in decode_batches(model, codes, batch_size):
        out[sl] = np.argmax(refined if refine else probs, -1)
    return out


def prior_codes(config, model, n):
    """n seeded prior draws z ~ N(0, I) of the model's latent shape."""
    rng = np.random.default_rng([config.seed, 11])
    return rng.standard_normal((n, *model.latent_shape)).astype(np.float32)


# ----------------------------------------------------------------------------- metrics

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


def train_baseline(config, source=None, batch_size=8, limit=None):
    """The trivial baseline of the training split of `source` (default: the run's data),
    streamed; `limit` caps the training scenes read. Returns (labels, frequencies, number of
    training scenes, source used); a source without a training split falls back to the run's
    own data."""
    if limit is not None and limit < 1:
        raise FCREvalError(f"--baseline-scenes: expected >= 1, got {limit}")
    try:
        dataset = trainer.make_dataset(config, batch_size, "train", training=False,
                                       source=source)
        used = source or config.data
    except DataError as err:
        if source is None:
            raise
        print(f"[fcr] {source} has no training split ({err}); the trivial baseline uses the "
              f"run's data {config.data}", flush=True)
        dataset = trainer.make_dataset(config, batch_size, "train", training=False)
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


# ----------------------------------------------------------------------------- recons

def evaluate_recons(run_dir, *, data=None, n=200, out=None, legacy=False, batch_size=8,
                    checkpoint=None, baseline=True, baseline_scenes=None) -> dict:
    """The original's evaluate_recons plus the trivial baseline; returns metrics.json's dict."""
    _positive("n", n)
    _positive("batch_size", batch_size)
    clock = _Clock("recons")
    loaded = load_run(run_dir, checkpoint)
    config, model = loaded.config, loaded.model
    out = Path(out) if out else loaded.run / "eval-recons"
    real, names = load_test_scenes(config, data, n)
    clock.log(f"{len(real)} test scenes, checkpoint {loaded.checkpoint}")
    codes = encode_scenes(model, real, batch_size)
    labels, scores = score_reconstructions(model, real, codes, batch_size, legacy, clock)
    clock.log("reconstructions scored")
    sample_z = prior_codes(config, model, len(real))
    generate = {"generate": np.empty(real.shape, np.uint8),
                "generate_refine": np.empty(real.shape, np.uint8)}
    for sl, probs, refined in decode_batches(model, sample_z, batch_size):
        generate["generate"][sl] = np.argmax(probs, -1)
        generate["generate_refine"][sl] = np.argmax(refined, -1)
    arrays = {"real": real, **labels, **generate, "decode_z": codes, "sample_z": sample_z}
    for name, array in arrays.items():
        save_npy(out / f"{name}.npy", array)
    clock.log(f"wrote {', '.join(f'{k}.npy' for k in arrays)}")

    metrics = {"run": str(loaded.run), "checkpoint": loaded.checkpoint, "step": loaded.step,
               "variant": config.variant, "data": data or config.data,
               "n_scenes": len(real), "grid": list(config.grid), "legacy_metrics": legacy}
    for key, suffix in (("recons", ""), ("recons_refine", "_refine")):
        iou, ap = scores[key].iou(), scores[key].ap()
        tables.write_csv(metrics_table(iou=iou), out / f"IoU{suffix}.csv")
        tables.write_csv(metrics_table(ap=ap), out / f"AP{suffix}.csv")
        metrics.update({f"iou{suffix}": iou, f"ap{suffix}": ap,
                        **scores[key].summary(suffix)})
        if legacy:
            iou_l, ap_l = scores[f"{key}_legacy"].iou(), scores[f"{key}_legacy"].ap()
            tables.write_csv(metrics_table(iou=iou_l), out / f"IoU{suffix}_legacy.csv")
            tables.write_csv(metrics_table(ap=ap_l), out / f"AP{suffix}_legacy.csv")
            metrics.setdefault("legacy", {}).update({f"iou{suffix}": iou_l, f"ap{suffix}": ap_l})
    series_iou = {"recons": metrics["iou"], "recons + refiner": metrics["iou_refine"]}
    series_ap = {"recons": metrics["ap"], "recons + refiner": metrics["ap_refine"]}
    if baseline:
        base_labels, freq, n_train, used = train_baseline(config, data, batch_size,
                                                          baseline_scenes)
        base = score_baseline(base_labels, freq, real, config.num_classes)
        save_npy(out / "baseline.npy", base_labels)
        metrics["baseline"] = {"definition": "per voxel position the most frequent training "
                               "class (ties: lowest id); AP scores the training class "
                               "frequencies", "data": used, "n_train_scenes": n_train,
                               "iou": base.iou(), "ap": base.ap()}
        metrics.update({f"baseline_{k}": v for k, v in base.summary().items()})
        metrics["iou_all_minus_baseline"] = metrics["iou_all"] - base.iou()[ALL]
        series_iou["trivial baseline"] = base.iou()
        series_ap["trivial baseline"] = base.ap()
        clock.log(f"trivial baseline from {n_train} training scenes")
    per_scene = [{"index": i, "name": names[i],
                  "iou_all": scores["recons"].scene_iou[i][ALL],
                  "ap_all": scores["recons"].scene_ap[i][ALL],
                  "iou_all_refine": scores["recons_refine"].scene_iou[i][ALL],
                  "ap_all_refine": scores["recons_refine"].scene_ap[i][ALL]}
                 for i in range(len(real))]
    tables.write_csv(per_scene, out / "per_scene.csv")
    title = f"{loaded.run.name} step {loaded.step}, {len(real)} test scenes"
    figures.save_bar_chart(series_iou, out / "IoU.png", f"IoU per class: {title}", "IoU")
    figures.save_bar_chart(series_ap, out / "AP.png", f"AP per class: {title}", "AP")
    metrics["seconds"] = clock.seconds
    tables.write_json(metrics, out / "metrics.json")
    line = (f"IoU all {metrics['iou_all']:.4f} -> {metrics['iou_all_refine']:.4f} refined, "
            f"AP all {metrics['ap_all']:.4f} -> {metrics['ap_all_refine']:.4f}, "
            f"mAP {metrics['map']:.4f} -> {metrics['map_refine']:.4f}")
    if baseline:
        line += (f"; trivial baseline IoU all {metrics['baseline_iou_all']:.4f}, "
                 f"AP all {metrics['baseline_ap_all']:.4f}, mAP {metrics['baseline_map']:.4f}")
    clock.log(f"{line}; outputs in {out}")
    return metrics


# ----------------------------------------------------------------------------- checkpoints

def evaluate_checkpoints(run_dir, *, data=None, n=50, out=None, batch_size=8) -> list[dict]:
    """IoU "all" and mAP before and after the refiner for every kept checkpoint."""
    _positive("n", n)
    _positive("batch_size", batch_size)
    clock = _Clock("checkpoints")
    paths = kept_checkpoints(run_dir)
    loaded = load_run(run_dir, paths[0])
    config, model = loaded.config, loaded.model
    out = Path(out) if out else loaded.run / "eval-checkpoints"
    real, _ = load_test_scenes(config, data, n)
    rows = []
    for path in paths:
        tf.train.Checkpoint(model=model).restore(path).expect_partial()
        codes = encode_scenes(model, real, batch_size)
        _, scores = score_reconstructions(model, real, codes, batch_size)
        step = _step_of(path)
        rows.append({"step": step, "checkpoint": Path(path).name,
                     "phase": 1 if step is not None and step < config.phase2_start else 2,
                     **scores["recons"].summary(), **scores["recons_refine"].summary("_refine")})
        clock.log(f"{Path(path).name}: IoU all {rows[-1]['iou_all']:.4f}, "
                  f"mAP {rows[-1]['map']:.4f}")
    tables.write_csv(rows, out / "checkpoints.csv")
    tables.write_json({"run": str(loaded.run), "n_scenes": len(real), "data": data or config.data,
                       "phase2_start": config.phase2_start, "checkpoints": rows,
                       "seconds": clock.seconds}, out / "checkpoints.json")
    steps = [r["step"] for r in rows]
    series = {k: [r[k] for r in rows] for k in ("iou_all", "ap_all", "map", "iou_all_refine",
                                                "ap_all_refine", "map_refine")}
    figures.save_line_chart(steps, series, out / "checkpoints.png",
                            f"{loaded.run.name}: {len(real)} test scenes (refiner trains from "
                            f"step {config.phase2_start})", "iteration", "score")
    clock.log(f"{len(rows)} checkpoints; outputs in {out}")
    return rows


# ----------------------------------------------------------------------------- interpolate

def interpolate_codes(z_l, z_r, steps):
    """`steps` codes from z_l to z_r on a straight line; the first is z_l, the last z_r."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32).reshape(-1, *([1] * np.ndim(z_l)))
    return ((1.0 - t) * z_l[None] + t * z_r[None]).astype(np.float32)


def evaluate_interpolate(run_dir, *, data=None, pairs=3, steps=30, out=None, batch_size=8,
                         checkpoint=None, gif=True, gif_size=(240, 180)) -> dict:
    """The original's evaluate_interpolate for pairs (0, 1), (1, 2), ... of test scenes."""
    _positive("pairs", pairs)
    _positive("steps", steps, 2)
    _positive("batch_size", batch_size)
    clock = _Clock("interpolate")
    loaded = load_run(run_dir, checkpoint)
    model = loaded.model
    out = Path(out) if out else loaded.run / "eval-interpolate"
    real, names = load_test_scenes(loaded.config, data, pairs + 1)
    if len(real) < 2:
        raise FCREvalError(f"interpolation needs 2 test scenes; the data has {len(real)}")
    codes = encode_scenes(model, real, batch_size)
    summary = {"run": str(loaded.run), "checkpoint": loaded.checkpoint, "steps": steps,
               "pairs": []}
    for k in range(pairs):
        left, right = k % len(real), (k + 1) % len(real)
        z = interpolate_codes(codes[left], codes[right], steps)
        labels = decode_labels(model, z, batch_size)
        stem = f"interpolation{left}-{right}"
        save_npy(out / f"{stem}.npy", labels)
        save_npy(out / f"interpolation_z{left}-{right}.npy", z)
        entry = {"left": left, "right": right, "left_name": names[left],
                 "right_name": names[right], "labels": f"{stem}.npy"}
        if gif:
            frames, source, note = fcr_plots.scene_frames(labels, gif_size)
            captions = [f"{left}->{right}  {i + 1}/{steps}" for i in range(steps)]
            fcr_plots.save_gif(frames, out / f"{stem}.gif", captions)
            entry.update(gif=f"{stem}.gif", gif_frames=source)
            if note:
                entry["gif_note"] = f"VTK could not render ({note}); top-down projections"
                clock.log(f"{stem}.gif from top-down projections: {note}")
        summary["pairs"].append(entry)
        clock.log(f"{stem}: {steps} steps")
    summary["seconds"] = clock.seconds
    tables.write_json(summary, out / "interpolate.json")
    clock.log(f"outputs in {out}")
    return summary


# ----------------------------------------------------------------------------- noise

def evaluate_noise(run_dir, *, data=None, scenes=2, draws=9, sigma=1.0, out=None,
                   batch_size=8, checkpoint=None) -> dict:
    """The original's evaluate_noise and the README's heat map of changed voxels."""
    _positive("scenes", scenes)
    _positive("draws", draws)
    _positive("batch_size", batch_size)
    if not sigma >= 0:
        raise FCREvalError(f"--sigma: expected >= 0, got {sigma}")
    clock = _Clock("noise")
    loaded = load_run(run_dir, checkpoint)
    config, model = loaded.config, loaded.model
    out = Path(out) if out else loaded.run / "eval-noise"
    summary = {"run": str(loaded.run), "checkpoint": loaded.checkpoint, "variant":
               config.variant, "draws": draws, "sigma": sigma}
    if model.spec.latent1d:
        summary["skipped"] = ("the latent1d variant has a flat 1-D code with no spatial "
                              "positions, so there is no per-position noise study")
        tables.write_json(summary, out / "noise.json")
        clock.log(f"skipped: {summary['skipped']}")
        return summary
    real, names = load_test_scenes(config, data, scenes)
    codes = encode_scenes(model, real, batch_size)
    grid = tuple(model.spec.latent_grid)
    positions = list(np.ndindex(*grid))
    rng = np.random.default_rng([config.seed, 13])
    change = np.zeros((len(real), *grid))
    rows = []
    for s in range(len(real)):
        base = decode_labels(model, codes[s:s + 1], batch_size)[0]
        save_npy(out / f"noise{s}_base.npy", base)
        z = np.repeat(codes[s:s + 1], len(positions) * draws, axis=0)
        for p, (x, y, w) in enumerate(positions):
            z[p * draws:(p + 1) * draws, x, y, w, :] += sigma * rng.standard_normal(
                (draws, z.shape[-1])).astype(np.float32)
        labels = decode_labels(model, z, batch_size)
        for p, (x, y, w) in enumerate(positions):
            noisy = labels[p * draws:(p + 1) * draws]
            name = f"noise{s}_{x}_{y}_{w}.npy"
            save_npy(out / name, noisy)
            change[s, x, y, w] = float(np.mean(noisy != base[None]))
            rows.append({"scene": s, "name": names[s], "x": x, "y": y, "z": w,
                         "changed_fraction": change[s, x, y, w], "file": name})
        clock.log(f"scene {s}: {len(positions)} positions x {draws} draws")
    tables.write_csv(rows, out / "noise_change.csv")
    mean_change = change.mean(0)
    fcr_plots.save_noise_heatmap(mean_change, out / "noise_heatmap.png",
                                 f"{loaded.run.name}: voxels changed by noise N(0, {sigma:g}^2)"
                                 f"\nat one latent position ({len(real)} scenes, {draws} draws)")
    summary.update(latent_grid=list(grid), n_scenes=len(real), mean_change=mean_change,
                   seconds=clock.seconds)
    tables.write_json(summary, out / "noise.json")
    clock.log(f"outputs in {out}")
    return summary


# ----------------------------------------------------------------------------- latent

def svd_embedding(x, k):
    """The first k principal-component scores of the rows of x (centred), (N, k); signs fixed
    so that each component's largest loading is positive; missing components are zero."""
    x = np.asarray(x, np.float64)
    x = x - x.mean(0, keepdims=True)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    scores = np.zeros((len(x), k))
    m = min(k, len(s))
    for j in range(m):
        sign = np.sign(vt[j, np.argmax(np.abs(vt[j]))]) or 1.0
        scores[:, j] = sign * u[:, j] * s[j]
    return scores


def scene_centroids(scenes):
    """(N, 3) mean (x, height, z) index of each scene's non-empty voxels; NaN for empty scenes."""
    out = np.full((len(scenes), 3), np.nan)
    for i, scene in enumerate(scenes):
        occupied = np.argwhere(scene > 0)
        if len(occupied):
            out[i] = occupied.mean(0)
    return out


def evaluate_latent(run_dir, *, data=None, n=200, out=None, batch_size=8,
                    checkpoint=None) -> dict:
    """The README's latent-space study: SVD of the codes to 2-D, coloured by a 1-D SVD
    embedding of the scenes' centroids."""
    _positive("n", n)
    _positive("batch_size", batch_size)
    clock = _Clock("latent")
    loaded = load_run(run_dir, checkpoint)
    out = Path(out) if out else loaded.run / "eval-latent"
    real, names = load_test_scenes(loaded.config, data, n)
    codes = encode_scenes(loaded.model, real, batch_size).reshape(len(real), -1)
    coords = svd_embedding(codes, 2)
    centroids = scene_centroids(real)
    colour = np.full(len(real), np.nan)
    known = np.isfinite(centroids).all(1)
    if known.any():
        colour[known] = svd_embedding(centroids[known], 1)[:, 0]
    save_npy(out / "latent_coords.npy", coords.astype(np.float32))
    rows = [{"index": i, "name": names[i], "svd_1": coords[i, 0], "svd_2": coords[i, 1],
             "centroid_x": centroids[i, 0], "centroid_height": centroids[i, 1],
             "centroid_z": centroids[i, 2], "centroid_embedding": colour[i]}
            for i in range(len(real))]
    tables.write_csv(rows, out / "latent.csv")
    fcr_plots.save_latent_map(coords, colour, out / "latent_map.png",
                              f"{loaded.run.name} ({loaded.config.variant}): SVD of "
                              f"{len(real)} codes")
    summary = {"run": str(loaded.run), "checkpoint": loaded.checkpoint, "n_scenes": len(real),
               "code_size": int(codes.shape[1]), "seconds": clock.seconds}
    tables.write_json(summary, out / "latent.json")
    clock.log(f"{len(real)} codes of {codes.shape[1]} values; outputs in {out}")
    return summary


# ----------------------------------------------------------------------------- renders

def evaluate_renders(folder, *, indices=(0, 1, 2, 3), out=None, size=(320, 240)) -> dict:
    """real | reconstruction | refined renders of scenes of an `recons` output folder."""
    folder = Path(folder)
    names = {"real": "real", "reconstruction": "recons", "refined": "recons_refine"}
    missing = [f"{v}.npy" for v in names.values() if not (folder / f"{v}.npy").is_file()]
    if missing:
        raise FCREvalError(f"{folder}: missing {', '.join(missing)} (run the recons mode "
                           f"first)")
    columns = {k: np.load(folder / f"{v}.npy") for k, v in names.items()}
    n = len(columns["real"])
    indices = [i for i in indices if i < n] or [0]
    out = Path(out) if out else folder / "renders.png"
    _, source, note = fcr_plots.save_scene_grid(columns, out, indices, size)
    summary = {"folder": str(folder), "indices": indices, "png": str(out), "source": source,
               **({"note": note} if note else {})}
    print(f"[fcr renders] {out} ({source}{': ' + note if note else ''})", flush=True)
    return summary


# ----------------------------------------------------------------------------- compare

def _data_key(config):
    """What decides a run's data set: the built-in set's settings, or the resolved folder."""
    if str(config.data).startswith("builtin:"):
        return (config.data, f"n_train={config.n_train}", f"n_test={config.n_test}",
                f"seed={config.seed}")
    return os.path.realpath(os.path.expanduser(str(config.data)))


def check_comparable(run_dirs):
    """The configs of runs that share grid, classes and data; FCREvalError otherwise."""
    if len(run_dirs) < 2:
        raise FCREvalError(f"compare needs at least 2 runs, got {len(run_dirs)}")
    configs = [run_config(r) for r in run_dirs]
    first = configs[0]
    for run, config in zip(run_dirs[1:], configs[1:]):
        for field in ("grid", "num_classes"):
            if tuple(np.atleast_1d(getattr(config, field))) != \
                    tuple(np.atleast_1d(getattr(first, field))):
                raise FCREvalError(
                    f"{run}: {field} {getattr(config, field)} differs from "
                    f"{getattr(first, field)} of {run_dirs[0]}; compared runs must score the "
                    f"same test scenes")
        if _data_key(config) != _data_key(first):
            raise FCREvalError(
                f"{run}: trained on data {_data_key(config)}, {run_dirs[0]} on "
                f"{_data_key(first)}; compared runs must share their data (the built-in set "
                f"depends on --n-train, --n-test and --seed)")
    return configs


def compare_runs(run_dirs, *, data=None, n=200, out=None, batch_size=8,
                 baseline=True, baseline_scenes=None) -> list[dict]:
    """The comparison table: every run and the trivial baseline on the same test scenes."""
    _positive("n", n)
    _positive("batch_size", batch_size)
    clock = _Clock("compare")
    configs = check_comparable(run_dirs)
    out = Path(out) if out else Path(run_dirs[0]) / "eval-compare"
    real, _ = load_test_scenes(configs[0], data, n)
    rows = []
    for run in run_dirs:
        loaded = load_run(run)
        codes = encode_scenes(loaded.model, real, batch_size)
        _, scores = score_reconstructions(loaded.model, real, codes, batch_size)
        rows.append({"model": loaded.run.name, "variant": loaded.config.variant,
                     "step": loaded.step, **scores["recons"].summary(),
                     **scores["recons_refine"].summary("_refine")})
        clock.log(f"{loaded.run.name} ({loaded.config.variant}): IoU all "
                  f"{rows[-1]['iou_all']:.4f}, mAP {rows[-1]['map']:.4f}")
    if baseline:
        labels, freq, n_train, _ = train_baseline(configs[0], data, batch_size,
                                                  baseline_scenes)
        rows.append({"model": f"trivial baseline ({n_train} training scenes)",
                     "variant": "per-position majority",
                     **score_baseline(labels, freq, real, configs[0].num_classes).summary()})
    columns = ["model", "variant", "step", "iou_all", "ap_all", "map", "iou_all_refine",
               "ap_all_refine", "map_refine"]
    tables.write_csv(rows, out / "comparison.csv", columns)
    tables.write_markdown_table(rows, out / "comparison.md", columns, title=(
        f"Reconstruction of {len(real)} test scenes (IoU all / AP all / mAP, before and "
        f"after the refiner)"))
    tables.write_json({"runs": [str(r) for r in run_dirs], "n_scenes": len(real),
                       "data": data or configs[0].data, "rows": rows,
                       "seconds": clock.seconds}, out / "comparison.json")
    print(tables.markdown_table(rows, columns), flush=True)
    clock.log(f"outputs in {out}")
    return rows


# ----------------------------------------------------------------------------- command line

def _size(text):
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 240x180, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def _baseline_options(parser):
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="leave out the trivial baseline")
    parser.add_argument("--baseline-scenes", type=int, metavar="N",
                        help="read only the first N training scenes for the trivial baseline "
                             "(default: the whole training split)")


def _parser():
    parser = argparse.ArgumentParser(prog="tfgan3d-eval fcr",
                                     description=" ".join(__doc__.split("\n\n")[0].split()),
                                     epilog="Outputs: see the module docstring of "
                                            "eval/fcr_eval.py.")
    sub = parser.add_subparsers(dest="mode", required=True, metavar="MODE")

    def mode(name, help, n=None, checkpoint=True, runs=False):
        p = sub.add_parser(name, help=help)
        if runs:
            p.add_argument("runs", nargs="+", metavar="RUN", help="fcr_alphagan run folders")
        else:
            p.add_argument("run", help="fcr_alphagan run folder")
        p.add_argument("--data", help="voxel data set (default: the run's data)")
        p.add_argument("--out", help=f"output folder (default {'RUN_A' if runs else 'RUN'}"
                                     f"/eval-{name})")
        p.add_argument("--batch-size", type=int, default=8)
        if n is not None:
            p.add_argument("--n", type=int, default=n, help="test scenes")
        if checkpoint:
            p.add_argument("--checkpoint", help="checkpoint prefix (default: the newest)")
        return p

    p = mode("recons", "reconstructions, generations, IoU / AP, trivial baseline", n=200)
    p.add_argument("--legacy-metrics", dest="legacy", action="store_true",
                   help="also write the original's metric formulas (*_legacy.csv)")
    _baseline_options(p)
    mode("checkpoints", "IoU all / mAP of every kept checkpoint", n=50, checkpoint=False)
    p = mode("interpolate", "latent interpolation between test scenes")
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--gif-size", type=_size, default=(240, 180), metavar="WxH")
    p.add_argument("--no-gif", dest="gif", action="store_false")
    p = mode("noise", "noise at each latent position and the heat map of changes")
    p.add_argument("--scenes", type=int, default=2)
    p.add_argument("--draws", type=int, default=9)
    p.add_argument("--sigma", type=float, default=1.0, help="noise standard deviation")
    mode("latent", "SVD map of the codes coloured by scene centroids", n=200)
    p = sub.add_parser("renders", help="real | reconstruction | refined renders of a recons "
                                       "output folder")
    p.add_argument("folder", help="output folder of the recons mode (RUN/eval-recons)")
    p.add_argument("--indices", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--out", help="PNG (default FOLDER/renders.png)")
    p.add_argument("--size", type=_size, default=(320, 240), metavar="WxH")
    p = mode("compare", "comparison table of runs and the trivial baseline", n=200,
             checkpoint=False, runs=True)
    _baseline_options(p)
    return parser


def main(argv=None):
    args = vars(_parser().parse_args(argv))
    mode = args.pop("mode")
    functions = {"recons": evaluate_recons, "checkpoints": evaluate_checkpoints,
                 "interpolate": evaluate_interpolate, "noise": evaluate_noise,
                 "latent": evaluate_latent}
    try:
        if mode == "compare":
            return compare_runs(args.pop("runs"), **args)
        if mode == "renders":
            return evaluate_renders(args.pop("folder"), **args)
        return functions[mode](args.pop("run"), **args)
    except (FCREvalError, config_lib.ConfigError, DataError, FileNotFoundError) as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
