"""`fcr checkpoints RUN`: the metrics over the checkpoints a run kept.

Outputs: checkpoints.csv / .json (IoU "all", AP "all" and mAP before and after the refiner for every
checkpoint kept in RUN/checkpoints) and checkpoints.png. Before phase 2 the
refiner is untrained, so its columns only mean something for phase-2 checkpoints.
"""
from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from tfgan3d.eval import figures, tables
from tfgan3d.eval.fcr.common import (Clock, add_program, encode_scenes, kept_checkpoints,
                                     load_run, load_test_scenes, positive, step_of)
from tfgan3d.eval.fcr.scores import score_reconstructions


def evaluate_checkpoints(run_dir, *, data=None, n=50, out=None, batch_size=8) -> list[dict]:
    """IoU "all" and mAP before and after the refiner for every kept checkpoint."""
    positive("n", n)
    positive("batch_size", batch_size)
    clock = Clock("checkpoints")
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
        step = step_of(path)
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


def add_parser(sub):
    return add_program(sub, "checkpoints", "IoU all / mAP of every kept checkpoint",
                       evaluate_checkpoints, n=50, checkpoint=False)
