"""The seed's experiment as one command: train on virtual and on real-like scenes, test each
model on both, and write the 2x2 table.

    python -m tfgan3d.eval.pix2pix_domains --preset quick --out runs/pix2pix-domains
        [--steps N] [--virtual SOURCE] [--real SOURCE] [--reuse]

Experiments #1-#4 of seed 000: train V / test V, train R / test R, train V / test R,
train R / test V. Writes to OUT:
  runs/                          the two training runs
  cells/<train>-on-<test>/       each cell's predictions, metrics and grid (pix2pix_eval)
  domains.csv, domains.md        the 2x2 table (rows: training domain, columns: test domain)
  domains.json                   all metrics, and whether each in-domain cell beats the
                                 cross-domain cell of the same test set
Each SOURCE is a data folder or a built-in set (defaults: builtin:scenes-virtual and
builtin:scenes-real). The verdict is computed from the measurements, never assumed.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from tfgan3d.eval import pix2pix_eval, tables

METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "delta1", "delta2", "delta3")


def _train(name: str, source: str, out: Path, preset: str, extra: dict, reuse: bool) -> Path:
    from tfgan3d.trainers import runner

    runs = out / "runs"
    if reuse:
        done = sorted(runs.glob(f"*-pix2pix-{preset}-train-{name}"))
        if done and (done[-1] / "checkpoints" / "checkpoint").exists():
            print(f"reusing {done[-1]}", flush=True)
            return done[-1]
    options = {"preset": preset, "data": source, "run_dir": str(runs),
               "run_name": f"train-{name}", **extra}
    return runner.run_mode("pix2pix", options).path


def run_experiment(out, *, preset="quick", sources=None, extra=None, reuse=False,
                   median_scaling=False) -> dict:
    """Trains one model per domain, evaluates each on every domain; returns the table."""
    out = Path(out)
    sources = sources or {"virtual": "builtin:scenes-virtual", "real-like": "builtin:scenes-real"}
    trained = {name: _train(name, src, out, preset, extra or {}, reuse)
               for name, src in sources.items()}
    cells = {}
    for train_name, run_dir in trained.items():
        for test_name, src in sources.items():
            summary = pix2pix_eval.evaluate_run(
                run_dir, data=src, out=out / "cells" / f"{train_name}-on-{test_name}",
                median_scaling=median_scaling)
            cells[(train_name, test_name)] = summary
            print(f"train {train_name:9s} test {test_name:9s} abs_rel {summary['abs_rel']:.4f} "
                  f"rmse {summary['rmse']:.4f} delta1 {summary['delta1']:.4f}", flush=True)
    rows = []
    for metric in METRICS:
        for train_name in sources:
            row = {"metric": metric, "train": train_name}
            row.update({f"test {t}": cells[(train_name, t)][metric] for t in sources})
            rows.append(row)
    tables.write_csv(rows, out / "domains.csv")
    verdict = {}
    for test_name in sources:
        other = [t for t in sources if t != test_name][0]
        inside, cross = cells[(test_name, test_name)], cells[(other, test_name)]
        verdict[f"test {test_name}"] = {
            "in_domain_abs_rel": inside["abs_rel"], "cross_domain_abs_rel": cross["abs_rel"],
            "in_domain_delta1": inside["delta1"], "cross_domain_delta1": cross["delta1"],
            "in_domain_better": bool(inside["abs_rel"] < cross["abs_rel"]
                                     and inside["delta1"] > cross["delta1"]),
        }
    md = tables.markdown_table(rows, title=f"pix2pix depth, 2x2 train/test domains ({preset})")
    md += "\n\nLower is better for abs_rel, sq_rel, rmse, rmse_log; higher for delta1-3.\n"
    for test_name, v in verdict.items():
        md += (f"\n- {test_name}: in-domain abs_rel {v['in_domain_abs_rel']:.4f} vs cross-domain "
               f"{v['cross_domain_abs_rel']:.4f}; delta1 {v['in_domain_delta1']:.4f} vs "
               f"{v['cross_domain_delta1']:.4f} -> in-domain better: {v['in_domain_better']}")
    tables.atomic_write(out / "domains.md", md + "\n")
    result = {"preset": preset, "sources": sources,
              "runs": {k: str(v) for k, v in trained.items()},
              "cells": {f"{a}-on-{b}": v for (a, b), v in cells.items()}, "verdict": verdict}
    tables.write_json(result, out / "domains.json")
    print(md, flush=True)
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tfgan3d-eval domains",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/pix2pix-domains")
    parser.add_argument("--preset", default="quick", choices=("paper", "quick", "tiny"))
    parser.add_argument("--virtual", default="builtin:scenes-virtual")
    parser.add_argument("--real", default="builtin:scenes-real")
    parser.add_argument("--steps", type=int, help="training iterations per model")
    parser.add_argument("--seed", type=int, help="seed of training and built-in data")
    parser.add_argument("--reuse", action="store_true",
                        help="reuse finished training runs found under OUT/runs")
    parser.add_argument("--median-scaling", action="store_true")
    args = parser.parse_args(argv)
    extra = {k: v for k, v in (("steps", args.steps), ("seed", args.seed)) if v is not None}
    return run_experiment(args.out, preset=args.preset, extra=extra, reuse=args.reuse,
                          sources={"virtual": args.virtual, "real-like": args.real},
                          median_scaling=args.median_scaling)


if __name__ == "__main__":
    main()
