"""SimGAN's finding on the built-in eyes over seeds (Shrivastava et al. 2017, Table 2 and the
ablations of section 3.3), through the multi-seed protocol (tfgan3d.eval.protocol).

    python -m tfgan3d.eval simgan finding [--out runs/simgan-finding] [--seeds 0 1 2]
        [--reuse] [--preset quick|tiny] [--arms synthetic refined no_history global]
        [--steps N]

Arms, each once per seed S (the seed of the eyes, the initialisation and the input order):
  synthetic    gaze estimator trained on S's synthetic-train eyes
  refined      a simgan run of the preset (seed S), its refiner applied to the same eyes,
               the estimator trained on the refined eyes with the synthetic labels
  no_history   the same without the history buffer (ablation, section 2.3)
  global       the same with a global instead of the local adversarial loss (section 2.2)
Every refiner arm trains for the same number of steps (the preset's), every estimator with the
same setting and seed; all are tested on S's real-test split (1000 real-like eyes). Metrics:
mean_error (deg), within_7 (%), real_vs_x (held-out accuracy of a real-vs-X classifier; 0.5 =
indistinguishable), pupil_shift and pupil_shift_median (px, synthetic -> refined, by
tfgan3d.data.eyes.pupil_centre), train_seconds (the simgan run, start-up included).

The estimator is the CPU setting of eval/eye_gap.py (the paper's layers at half the conv
widths, 400 steps of batch 64), fixed before any arm was measured. Arms run in the order given
by --arms, all seeds of one arm before the next, so that an experiment cut short has the main
comparison on every seed first.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tfgan3d import cli
from tfgan3d.eval import eye_gap, gaze, protocol

ARMS = {"synthetic": None, "refined": {}, "no_history": {"use_history": False},
        "global": {"adversarial": "global"}}
PRESETS = {
    "quick": dict(simgan_preset="quick", n_train=4000, n_test=1000, n_real=1000,
                  estimator_steps=400, batch_size=64, realism_steps=300,
                  conv_widths=eye_gap.CPU_CONV_WIDTHS, fc_widths=eye_gap.CPU_FC_WIDTHS),
    "tiny": dict(simgan_preset="tiny", n_train=32, n_test=16, n_real=16, estimator_steps=2,
                 batch_size=8, realism_steps=2, conv_widths=(4, 4, 4, 4, 4), fc_widths=(8,)),
}
METRICS = ("mean_error", "within_7", "real_vs_x", "pupil_shift", "pupil_shift_median",
           "train_seconds")


def _data(seed, n_train, n_test, n_real):
    from tfgan3d.data import eyes
    syn = eyes.render_split("synthetic-train", n_train, seed=seed)
    test = eyes.render_split("real-test", n_test, seed=seed)
    real = eyes.render_split("real-train", n_real, seed=seed)["image"]
    return (2 * syn["image"] - 1, syn["gaze"], 2 * test["image"] - 1, test["gaze"],
            2 * real - 1)


def train_refiner(seed, arm_dir, overrides, simgan_preset, steps=None):
    """A simgan run of the preset under arm_dir/run; returns (refiner, seconds)."""
    from tfgan3d.export import load_trained
    from tfgan3d.trainers import runner
    options = {"preset": simgan_preset, "seed": seed, "run_dir": str(Path(arm_dir) / "run"),
               **overrides}
    if steps is not None:
        options["steps"] = steps
    t0 = time.time()
    run = runner.run_mode("simgan", options)
    seconds = time.time() - t0
    _, model, _ = load_trained(run.path)
    return model.refiner, seconds


def run_arm(seed, arm_dir, arm, settings, steps=None) -> dict:
    """One arm of one seed: (train a refiner,) train and test the estimator; its metrics."""
    from tfgan3d.eval.simgan_eval import refine_images, save_refined_grid
    s = settings
    synthetic, syn_gaze, test_images, test_gaze, real = _data(seed, s["n_train"], s["n_test"],
                                                              s["n_real"])
    images, metrics = synthetic, {"train_seconds": 0.0}
    if ARMS[arm] is not None:
        refiner, seconds = train_refiner(seed, arm_dir, ARMS[arm], s["simgan_preset"], steps)
        images = refine_images(refiner, synthetic)
        metrics["train_seconds"] = round(seconds, 1)
        shift = gaze.pupil_shift(synthetic, images)
        metrics["pupil_shift"], metrics["pupil_shift_median"] = shift["mean_px"], shift["median_px"]
        save_refined_grid(synthetic, images, real, Path(arm_dir) / "refined_grid.png")
    model = gaze.train_estimator(images, syn_gaze, steps=s["estimator_steps"],
                                 batch_size=s["batch_size"], seed=seed,
                                 conv_widths=tuple(s["conv_widths"]),
                                 fc_widths=tuple(s["fc_widths"]))
    errors = gaze.angular_error_deg(gaze.predict_gaze(model, test_images), test_gaze)
    metrics.update(mean_error=float(errors.mean()), within_7=gaze.within(errors, 7.0))
    metrics["real_vs_x"] = gaze.realism_accuracy(real, images, steps=s["realism_steps"],
                                                 seed=seed)["accuracy"]
    return metrics


def claims(arms):
    """The finding's claims, for the arms that ran."""
    out = [protocol.Claim("refined beats synthetic on % within 7 deg",
                          lambda r: r["refined"]["within_7"] > r["synthetic"]["within_7"]),
           protocol.Claim("refined beats synthetic on mean error",
                          lambda r: r["refined"]["mean_error"] < r["synthetic"]["mean_error"]),
           protocol.Claim("real-vs-refined classifier does worse than real-vs-synthetic",
                          lambda r: r["refined"]["real_vs_x"] < r["synthetic"]["real_vs_x"]),
           protocol.Claim("pupil shift within 1.5 px",
                          lambda r: r["refined"]["pupil_shift"] <= 1.5)]
    for arm, text in (("no_history", "the history buffer"), ("global", "the local loss")):
        if arm in arms:
            out.append(protocol.Claim(
                f"{text} helps (refined beats {arm} on mean error)",
                lambda r, a=arm: r["refined"]["mean_error"] < r[a]["mean_error"]))
    return out


def run_finding(out, *, seeds=protocol.DEFAULT_SEEDS, reuse=False, preset="quick",
                arms=tuple(ARMS), steps=None, only_finished=False) -> dict:
    """Runs the arms over the seeds (or with `only_finished`, reads back the finished ones and
    runs nothing: the summary of an experiment cut short); returns the protocol summary."""
    settings = PRESETS[preset]
    exp = protocol.Experiment(out, seeds=seeds, reuse=reuse or only_finished)
    for arm in arms:
        for seed in exp.seeds:
            if only_finished and not (exp.arm_dir(seed, arm) / protocol.RESULT).exists():
                continue
            t0 = time.time()
            exp.run(seed, arm, lambda s, d, a=arm: run_arm(s, d, a, settings, steps))
            print(f"seed {seed} {arm}: {exp.results[seed][arm]} ({time.time() - t0:.0f} s)",
                  flush=True)
            exp.write(title="SimGAN on the built-in eyes", claims=claims(arms),
                      metrics=METRICS, notes=_notes(settings, steps))
    return exp.write(title="SimGAN on the built-in eyes", claims=claims(arms), metrics=METRICS,
                     notes=_notes(settings, steps))


def _notes(s, steps):
    return (f"simgan preset {s['simgan_preset']!r}{f', {steps} steps' if steps else ''}; "
            f"estimator: {s['n_train']} training eyes, {s['estimator_steps']} steps of batch "
            f"{s['batch_size']}, conv {list(s['conv_widths'])}, FC {list(s['fc_widths'])}; "
            f"test: {s['n_test']} real-test eyes; real_vs_x on {s['n_real']} real-train eyes "
            f"vs as many training images, {s['realism_steps']} steps.")


def main(argv=None):
    parser = cli.ArgumentParser(prog="tfgan3d-eval simgan finding",
                                description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="runs/simgan-finding")
    parser.add_argument("--preset", choices=sorted(PRESETS), default="quick")
    parser.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS))
    parser.add_argument("--steps", type=int, help="simgan steps (default: the preset's)")
    parser.add_argument("--only-finished", action="store_true",
                        help="summarise the arms already finished under OUT, run nothing")
    protocol.add_arguments(parser)
    args = parser.parse_args(argv)
    summary = run_finding(args.out, seeds=args.seeds, reuse=args.reuse, preset=args.preset,
                          arms=tuple(args.arms), steps=args.steps,
                          only_finished=args.only_finished)
    print((Path(args.out) / "summary.md").read_text())
    return summary


if __name__ == "__main__":
    main()
