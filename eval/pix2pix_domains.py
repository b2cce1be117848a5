"""The seed's experiment as one command: train on virtual and on real-like scenes, test each
model on both, and write the 2x2 table, over several seeds.

    python -m tfgan3d.eval domains --preset quick|standard --out runs/pix2pix-domains
        [--seeds 0 1 2] [--steps N] [--virtual SOURCE] [--real SOURCE] [--reuse] [--no-mask-d]

Experiments #1-#4 of seed 000: train V / test V, train R / test R, train V / test R,
train R / test V. Each seed draws its own built-in data (training and test sets), network
initialisation and input order; the two training domains of one seed share the preset, its
budget and every other option. Writes to OUT:
  seed-S/train-DOMAIN/run/          the training run of that seed and domain
  seed-S/train-DOMAIN/cells/<train>-on-<test>/  predictions, metrics and grid (pix2pix_eval)
  seed-S/train-DOMAIN/result.json   the arm's metrics on both test sets (reused by --reuse; an
                                    arm without it resumes its run's newest checkpoint)
  domains.csv, domains.md           the 2x2 table, mean +- std over seeds (rows: training
                                    domain, columns: test domain), the per-seed tables, verdicts
  domains.json                      all metrics; per test set whether in-domain beats
                                    cross-domain on abs_rel and delta1, in how many seeds
  per_seed.csv, summary.csv, summary.md, protocol.json   the protocol's own files
Each SOURCE is a data folder or a built-in set (defaults: builtin:scenes-virtual and
builtin:scenes-real). The verdict is computed from the measurements, never assumed: the
finding holds on a test set when in-domain is better on both metrics in every seed.
"""
from __future__ import annotations

from pathlib import Path

from tfgan3d import cli
from tfgan3d import config as config_lib
from tfgan3d.eval import pix2pix_eval, protocol, tables

METRICS = ("abs_rel", "sq_rel", "rmse", "rmse_log", "delta1", "delta2", "delta3")
LOWER_IS_BETTER = ("abs_rel", "sq_rel", "rmse", "rmse_log")


def _key(metric: str, test_name: str) -> str:
    return f"{metric} on {test_name}"


def _arm(train_name, sources, preset, extra, median_scaling):
    """The protocol arm 'train on `train_name`': one training run, tested on every domain."""
    def run(seed, arm_dir):
        from tfgan3d.trainers import runner

        started = [p for p in sorted(arm_dir.glob("*-pix2pix-*-run"))
                   if (p / "checkpoints" / "checkpoint").exists()]
        if started:  # an interrupted arm: resume its run at the newest checkpoint
            print(f"seed {seed} train {train_name}: resuming {started[-1]}", flush=True)
            options = {"resume": str(started[-1]), "run_dir": str(arm_dir)}
        else:
            options = {"preset": preset, "data": sources[train_name], "run_dir": str(arm_dir),
                       "run_name": "run", **extra, "seed": seed}
        run_dir = runner.run_mode("pix2pix", options).path
        metrics = {"run": str(run_dir)}
        for test_name, src in sources.items():
            summary = pix2pix_eval.evaluate_run(
                run_dir, data=src, out=arm_dir / "cells" / f"{train_name}-on-{test_name}",
                median_scaling=median_scaling)
            metrics.update({_key(m, test_name): summary[m] for m in METRICS})
            print(f"seed {seed} train {train_name:9s} test {test_name:9s} "
                  f"abs_rel {summary['abs_rel']:.4f} rmse {summary['rmse']:.4f} "
                  f"delta1 {summary['delta1']:.4f}", flush=True)
        return metrics
    return run


def _claims(sources):
    claims = []
    for test_name in sources:
        other = [t for t in sources if t != test_name][0]
        inside, cross = f"train-{test_name}", f"train-{other}"

        def holds(r, inside=inside, cross=cross, test_name=test_name):
            a, b = r[inside], r[cross]
            return (a[_key("abs_rel", test_name)] < b[_key("abs_rel", test_name)]
                    and a[_key("delta1", test_name)] > b[_key("delta1", test_name)])
        claims.append(protocol.Claim(
            f"test {test_name}: in-domain beats cross-domain on abs_rel and delta1", holds))
    return claims


def _table_rows(cell_value, sources):
    """Rows metric x training domain, one column per test domain."""
    return [{"metric": metric, "train": train_name,
             **{f"test {t}": cell_value(train_name, t, metric) for t in sources}}
            for metric in METRICS for train_name in sources]


def run_experiment(out, *, preset="quick", sources=None, extra=None, reuse=False,
                   median_scaling=False, seeds=(0,)) -> dict:
    """Trains one model per domain and seed, evaluates each on every domain; returns the
    table (per seed, mean +- std) and the verdicts."""
    out = Path(out)
    sources = sources or {"virtual": "builtin:scenes-virtual", "real-like": "builtin:scenes-real"}
    extra = dict(extra or {})
    exp = protocol.Experiment(out, seeds=seeds, reuse=reuse)
    for seed in exp.seeds:
        for train_name in sources:
            exp.run(seed, f"train-{train_name}",
                    _arm(train_name, sources, preset, extra, median_scaling))
    metric_keys = [_key(m, t) for t in sources for m in METRICS]
    summary = exp.write(title=f"pix2pix 2x2 domains ({preset})", claims=_claims(sources),
                        metrics=metric_keys,
                        notes="Arms of one seed share its data, preset and budget.")
    stats = summary["arms"]

    def mean_std(train_name, t, metric):
        s = stats[f"train-{train_name}"][_key(metric, t)]
        return protocol.format_mean_std(s["mean"], s["std"])

    rows = _table_rows(mean_std, sources)
    tables.write_csv(rows, out / "domains.csv")
    n = len(exp.seeds)
    md = tables.markdown_table(rows, title=f"pix2pix depth, 2x2 train/test domains ({preset}), "
                                           f"mean +- std over {n} seed{'s' * (n > 1)}")
    md += "\nLower is better for abs_rel, sq_rel, rmse, rmse_log; higher for delta1-3.\n"
    per_seed = {}
    for seed in exp.seeds:
        r = exp.results[seed]
        cells = {f"{a}-on-{t}": {m: r[f"train-{a}"][_key(m, t)] for m in METRICS}
                 for a in sources for t in sources}
        per_seed[seed] = {"runs": {a: r[f"train-{a}"]["run"] for a in sources}, "cells": cells}
        md += "\n" + tables.markdown_table(
            _table_rows(lambda a, t, m: cells[f"{a}-on-{t}"][m], sources),
            title=f"seed {seed}")
    verdict = {}
    for test_name, v in zip(sources, summary["verdicts"]):
        verdict[f"test {test_name}"] = {**v, "in_domain_better": v["holds"]}
    md += "\n### verdicts\n\n" + "".join(f"- {protocol.verdict_line(v)}\n"
                                          for v in summary["verdicts"])
    tables.atomic_write(out / "domains.md", md)
    result = {"preset": preset, "sources": sources, "seeds": list(exp.seeds),
              "per_seed": per_seed, "mean_std": stats, "verdict": verdict}
    tables.write_json(result, out / "domains.json")
    print(md, flush=True)
    return result


def main(argv=None):
    parser = cli.ArgumentParser(prog="tfgan3d-eval domains",
                                description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/pix2pix-domains")
    parser.add_argument("--preset", default="quick", choices=config_lib.PRESETS)
    parser.add_argument("--virtual", default="builtin:scenes-virtual")
    parser.add_argument("--real", default="builtin:scenes-real")
    parser.add_argument("--steps", type=int, help="training iterations per model")
    protocol.add_arguments(parser)
    parser.add_argument("--mask-d", dest="mask_d", action="store_true", default=None,
                        help="D sees G's depth masked as the target (pix2pix --mask-d, the "
                             "default)")
    parser.add_argument("--no-mask-d", dest="mask_d", action="store_false")
    parser.add_argument("--median-scaling", action="store_true")
    args = parser.parse_args(argv)
    extra = {k: v for k, v in (("steps", args.steps), ("mask_d", args.mask_d)) if v is not None}
    run_experiment(args.out, preset=args.preset, extra=extra, reuse=args.reuse,
                   sources={"virtual": args.virtual, "real-like": args.real},
                   median_scaling=args.median_scaling, seeds=args.seeds)
    return 0


if __name__ == "__main__":
    main()
