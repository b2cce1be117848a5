"""`tfgan3d-eval sim2real_curve RUN`: a sim2real run's twin VAE scored at each of its stage-2
checkpoints on the sim and the real-like test sets, beside the image-blind prior.

The question a single score cannot answer: does what the depth and segmentation decoders learn
on sim codes carry over to real images through the shared latent? Where it does, both test
sets' errors fall together as stage 2 goes on; where it does not, the sim error falls while the
real-like one stays at the prior's or rises. Stage-1 checkpoints are left out (the auxiliary
decoders are untrained there). Keep the checkpoints when training (`--keep-checkpoints N`);
each is scored by `eval sim2real` with `--baseline-steps 0` into OUT/step-NNNNNNN/ (steps
already scored at the same resolution are read back, so an interrupted curve resumes), and OUT gets curve.csv,
curve.json, curve_abs_rel.png and curve_miou.png. Beside the scores, where each checkpoint's
encoders put the two test sets in the shared latent space (eval/latent_alignment.py: posterior
sigma, spread of the codes across images, MMD of sim and real codes): latent.csv and
curve_latent.png. Steps scored before `eval sim2real` reported it get it computed on its own
(OUT/step-NNNNNNN/latent.json).

  python -m tfgan3d.eval sim2real_curve RUN [--out DIR] [--resolution 256] [--every N]
"""
from __future__ import annotations

import json
from pathlib import Path

from tfgan3d import cli
from tfgan3d import config as config_lib
from tfgan3d.eval import figures, latent_alignment, tables

METRICS = ("abs_rel", "rmse", "delta1", "miou", "pixel_accuracy")
TESTS = ("sim", "real")          # the sim test split, the real-like (the run's real data) one
CHARTS = ("abs_rel", "miou")
NAMES = {"sim": "sim test", "real": "real-like test"}


def stage2_checkpoints(run_dir, every: int | None = None) -> list[tuple[int, str]]:
    """(stage-2 step, prefix) of the run's whole checkpoints after stage 1, oldest first;
    `every`: only stage-2 steps that are multiples of it (the last one always)."""
    from tfgan3d.trainers import runner
    run_dir = Path(run_dir)
    values = config_lib.load_config_json(run_dir)
    if values.get("mode") != "sim2real":
        raise ValueError(f"{run_dir / 'config.json'}: expected a sim2real run, found mode "
                         f"{values.get('mode')!r}")
    stage1 = int(values.get("stage1_steps", 0))
    folder = run_dir / "checkpoints"
    found = [(n - stage1, str(folder / f"ckpt-{n}"))
             for n in sorted(runner.checkpoint_numbers(folder)) if n > stage1]
    found = [(s, p) for s, p in found if runner.verify_checkpoint(p) is None]
    if every:
        found = [(s, p) for i, (s, p) in enumerate(found)
                 if s % every == 0 or i == len(found) - 1]
    if not found:
        raise FileNotFoundError(f"{folder}: expected checkpoints after stage 1 (step > "
                                f"{stage1}), found none; train with --keep-checkpoints N to "
                                f"keep more than the newest few")
    return found


def _rows_of(metrics: dict) -> dict:
    """{(test, role): row} of an `eval sim2real` metrics.json."""
    out = {("real", r["role"]): r for r in metrics["rows"]}
    out.update({("sim", r["role"]): r for r in metrics.get("sim_test", {}).get("rows", [])})
    return out


def _read_json(path):
    """A JSON file an earlier call wrote (metrics.json, latent.json; None: absent or unreadable)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _latent_of(metrics, step_dir, run_dir, prefix, align):
    """The step's latent statistics: from its metrics.json, else its latent.json, else
    computed (`align(run_dir, prefix)`) and written to latent.json; None: not a twin VAE."""
    if metrics.get("latent"):
        return metrics["latent"]
    saved = _read_json(step_dir / "latent.json")
    if saved is None:
        saved = {"latent": align(run_dir, prefix)}
        tables.write_json(saved, step_dir / "latent.json")
    return saved["latent"]


def run_curve(run_dir, out=None, *, resolution=256, every=None, evaluate=None,
              align=None) -> dict:
    """Scores each stage-2 checkpoint (module docstring); returns the curve as written to
    curve.json: {"run", "points": [{"step", "test", "arm", metrics...}], "prior": {...},
    "latent": [{"step", latent_alignment.FIELDS...}]}."""
    if evaluate is None:
        from tfgan3d.eval.sim2real_eval import evaluate_run as evaluate
    align = align or latent_alignment.run_latent_alignment
    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir / "eval-sim2real-curve"
    points, prior, latent = [], {}, []
    for step, prefix in stage2_checkpoints(run_dir, every):
        path = out / f"step-{step:07d}" / "metrics.json"
        metrics = _read_json(path)
        if metrics is None or list(metrics.get("resolution") or ()) != [resolution, resolution]:
            evaluate(run_dir, checkpoint=prefix, baseline_steps=0, out=path.parent,
                     resolution=resolution)       # absent, or scored at another size
            metrics = json.loads(path.read_text())
        rows = _rows_of(metrics)
        codes = _latent_of(metrics, path.parent, run_dir, prefix, align)
        if codes:
            latent.append({"step": step, **codes})
        mine = [{"step": step, "test": test, "arm": "twin_vae",
                 **{m: rows[test, "sim2real"].get(m) for m in METRICS}}
                for test in TESTS if (test, "sim2real") in rows]
        points += mine
        for test in TESTS:   # the prior is the same at every step (the sim training set's)
            if (test, "prior") in rows:
                prior[test] = {m: rows[test, "prior"].get(m) for m in METRICS}
        print(f"stage-2 step {step}: " + ", ".join(
            f"{p['test']} abs_rel {p['abs_rel']:.4f} miou {p['miou']:.4f}" for p in mine)
            + (f"; {latent_alignment.describe(codes)}" if codes else ""), flush=True)
    curve = {"run": str(run_dir), "resolution": resolution, "points": points, "prior": prior,
             "latent": latent}
    tables.write_json(curve, out / "curve.json")
    tables.write_csv(points + [{"step": "prior", "test": t, "arm": "prior", **v}
                               for t, v in prior.items()],
                     out / "curve.csv", ["step", "test", "arm", *METRICS])
    for metric in CHARTS:
        save_chart(points, prior, metric, out / f"curve_{metric}.png",
                   f"{run_dir.name}: {metric} over stage 2")
    if latent:
        tables.write_csv(latent, out / "latent.csv", ["step", *latent_alignment.FIELDS])
        save_latent_chart(latent, out / "curve_latent.png",
                          f"{run_dir.name}: the shared latent over stage 2")
    return curve


def save_latent_chart(latent, path, title):
    """Two panels over the stage-2 steps: the posterior sigma and the spread of the codes of
    each test set (E_S on sim, E_R on real-like), and the MMD^2 of sim vs real codes beside
    that of two halves of the sim codes."""
    from matplotlib.figure import Figure
    steps = [r["step"] for r in latent]
    fig = Figure(figsize=(9.6, 4.0))
    left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for test, colour in zip(TESTS, ("tab:blue", "tab:green")):
        who = "E_S, sim test" if test == "sim" else "E_R, real-like test"
        left.plot(steps, [r[f"sigma_{test}"] for r in latent], marker="o", markersize=3,
                  color=colour, label=f"posterior sigma, {who}")
        left.plot(steps, [r[f"spread_{test}"] for r in latent], marker="s", markersize=3,
                  color=colour, linestyle=":", label=f"spread across images, {who}")
    right.plot(steps, [r["mmd"] for r in latent], marker="o", markersize=3, color="tab:red",
               label="MMD^2, sim vs real-like codes")
    within = [(r["step"], r["mmd_within_sim"]) for r in latent if r["mmd_within_sim"] is not None]
    if within:
        right.plot(*zip(*within), marker="o", markersize=3, color="grey", linestyle="--",
                   label="MMD^2, two halves of the sim codes")
    for ax, ylabel in ((left, "code statistic"), (right, "unbiased MMD^2 (median width)")):
        ax.set_xlabel("stage-2 step")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return figures.save_figure(fig, path)


def save_chart(points, prior, metric, path, title):
    """One metric over the stage-2 steps: a solid line per test set (twin VAE), the prior of
    the same test set dashed in the same colour."""
    from matplotlib.figure import Figure
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    for test, colour in zip(TESTS, ("tab:blue", "tab:green")):
        mine = sorted((p["step"], p[metric]) for p in points if p["test"] == test)
        if mine:
            ax.plot(*zip(*mine), marker="o", markersize=3, color=colour,
                    label=f"twin VAE, {NAMES[test]}")
        if test in prior and prior[test].get(metric) is not None:
            ax.axhline(prior[test][metric], color=colour, linestyle="--",
                       label=f"prior, {NAMES[test]}")
    ax.set_xlabel("stage-2 step")
    ax.set_ylabel(metric)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return figures.save_figure(fig, path)


def main(argv=None):
    parser = cli.ArgumentParser(prog="tfgan3d-eval sim2real_curve",
                                description=__doc__.split("\n")[0])
    parser.add_argument("run", help="run folder of a sim2real training")
    parser.add_argument("--out", help="output folder (default RUN/eval-sim2real-curve)")
    parser.add_argument("--resolution", type=int, default=256,
                        help="scoring resolution (eval sim2real's default 256)")
    parser.add_argument("--every", type=int,
                        help="only stage-2 steps that are multiples of N (and the last)")
    args = parser.parse_args(argv)
    if args.every is not None and args.every < 1:
        parser.error(f"--every: expected >= 1, got {args.every}")
    run_curve(args.run, args.out, resolution=args.resolution, every=args.every)
    return 0
