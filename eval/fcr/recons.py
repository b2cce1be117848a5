"""`fcr recons RUN`: the original's evaluate_recons plus the trivial baseline.

Outputs: real.npy (N, X, H, Z) labels; recons.npy, recons_refine.npy (argmax of G(E(x)) and
R(G(E(x)))); generate.npy, generate_refine.npy (G(z), R(G(z)), z = sample_z.npy,
seeded prior draws); decode_z.npy (the codes E(x)); all labels uint8.
IoU.csv, AP.csv, IoU_refine.csv, AP_refine.csv: one row per class (0 = empty
included), "all" (channels 1..C-1 pooled per scene, as the original), then the
extra rows "mean_class" (mIoU / mAP) and "occupancy" (eval/voxel_metrics.py:
correct IoU, AP over the scenes holding the class). --legacy-metrics ADDS IoU_legacy.csv,
AP_legacy.csv, IoU_refine_legacy.csv, AP_refine_legacy.csv with the original's formulas (the
correct files are always written). per_scene.csv, metrics.json, IoU.png, AP.png.
Trivial baseline: at every voxel position the most frequent class of the training
split there (ties: lowest class id), scored with the training class frequencies
as probabilities (--baseline-scenes N: from the first N training scenes only):
baseline.npy, baseline_iou_all / baseline_map in metrics.json, a bar per class.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from tfgan3d.eval import figures, tables
from tfgan3d.eval.fcr.common import (Clock, add_baseline_arguments, add_program, decode_batches,
                                     encode_scenes, load_run, load_test_scenes, positive,
                                     prior_codes)
from tfgan3d.eval.fcr.scores import score_baseline, score_reconstructions, train_baseline
from tfgan3d.eval.voxel_metrics import ALL, metrics_table
from tfgan3d.io import save_npy


def evaluate_recons(run_dir, *, data=None, n=200, out=None, legacy=False, batch_size=8,
                    checkpoint=None, baseline=True, baseline_scenes=None,
                    precise_bn_batches=0) -> dict:
    """The original's evaluate_recons plus the trivial baseline; returns metrics.json's dict.

    `precise_bn_batches` K > 0 first recomputes E's and G's batch-norm statistics over K
    training batches of the run's data (`trainers.fcr_alphagan.fcr_precise_bn`, what training
    stores at the end of phase 1 since --precise-bn-batches), in memory: for a checkpoint
    written with moving averages, or to compare the two."""
    positive("n", n)
    positive("batch_size", batch_size)
    positive("precise_bn_batches", precise_bn_batches, minimum=0)
    clock = Clock("recons")
    loaded = load_run(run_dir, checkpoint)
    config, model = loaded.config, loaded.model
    if precise_bn_batches:
        from tfgan3d.trainers.fcr_alphagan import fcr_precise_bn
        fcr_precise_bn(model, dataclasses.replace(config, precise_bn_batches=precise_bn_batches))
        clock.log(f"batch-norm statistics of E and G recomputed over {precise_bn_batches} "
                  f"training batches")
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
               "n_scenes": len(real), "grid": list(config.grid), "legacy_metrics": legacy,
               "precise_bn_batches": precise_bn_batches}
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


def add_parser(sub):
    p = add_program(sub, "recons", "reconstructions, generations, IoU / AP, trivial baseline",
                    evaluate_recons, n=200)
    p.add_argument("--legacy-metrics", dest="legacy", action="store_true",
                   help="also write the original's metric formulas (*_legacy.csv)")
    p.add_argument("--precise-bn-batches", type=int, default=0, metavar="K",
                   help="recompute E's and G's batch-norm statistics over K training batches "
                        "before scoring (default 0: the checkpoint's)")
    add_baseline_arguments(p)
    return p
