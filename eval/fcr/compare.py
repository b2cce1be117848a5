"""`fcr compare RUN_A RUN_B [RUN_C ...]`: the comparison table of runs and the trivial baseline.

Outputs: comparison.csv / .md / .json: IoU "all", AP "all" and mAP before and after the refiner of
every run and the trivial baseline on the same test scenes; the runs must share
grid, classes and data.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from tfgan3d.eval import tables
from tfgan3d.eval.fcr.common import (Clock, FCREvalError, add_baseline_arguments, add_program,
                                     encode_scenes, load_run, load_test_scenes, positive,
                                     run_config)
from tfgan3d.eval.fcr.scores import score_baseline, score_reconstructions, train_baseline


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
    positive("n", n)
    positive("batch_size", batch_size)
    clock = Clock("compare")
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


def add_parser(sub):
    p = add_program(sub, "compare", "comparison table of runs and the trivial baseline",
                    compare_runs, n=200, checkpoint=False, runs=True)
    add_baseline_arguments(p)
    return p
