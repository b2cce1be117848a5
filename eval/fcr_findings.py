"""Seed 002's findings on tfgan3d's voxel scenes, over seeds (tfgan3d.eval.protocol).

    python -m tfgan3d.eval.fcr_findings OUT [--seeds 0 1 2] [--reuse] [--preset quick]
        [--phase1-steps N] [--phase2-steps N] [--n 50] [--arms alphagan vae vae1d]

Arms, each trained per seed on the same built-in data set (the seed decides the data, the
initialisation and the input order) with the same phase-1 budget:
  alphagan  fully convolutional alphaGAN, then phase 2 (the refiner) for --phase2-steps
  vae       fully convolutional VAE (KL term, no code discriminator)
  vae1d     the same VAE with a 1-D latent of as many values (1200 at `paper`)
The baselines are not refined (the refiner is the identity until phase 2 trains it), so their
"_refine" columns equal the unrefined ones. Every arm is scored on the first --n test scenes by
`fcr.recons.evaluate_recons` (correct metrics; the trivial per-position baseline by the same
code). The alphagan arm also scores its generator three ways (`bn_*` metrics): with the moving
statistics of the reconstruction path (what evaluation uses), with each test batch's own
statistics (the original), and after re-estimating the statistics on E(x) of training scenes.

Claims (per seed): the fully convolutional latent beats the 1-D latent (vae > vae1d on IoU all
and AP all); alphaGAN beats the fully convolutional VAE (same two metrics); the refiner does
not lower IoU all; alphagan beats the trivial baseline on IoU all, AP all and mAP, and
reconstructs floor, wall and at least three of the furniture classes 5..11 (unrefined, and
refined: the refiner's output is the seed's final reconstruction). A class counts as
reconstructed when its IoU is at least RECONSTRUCTED_IOU (0.05) and above the trivial
baseline's: above the baseline alone counted IoU 0.0008 over a baseline of 0 (a few scattered
voxels at quick) as a reconstructed class.
Outputs: OUT/summary.md (mean +- std, per seed, verdicts), OUT/per_class.md, protocol.json.
"""
from __future__ import annotations

import csv
from pathlib import Path

import keras
import numpy as np

from tfgan3d import cli
from tfgan3d import config as config_lib
from tfgan3d.eval import protocol, tables
from tfgan3d.eval.report_modes import RECONSTRUCTED_IOU, reconstructed
from tfgan3d.io import write_json
from tfgan3d.eval.fcr.common import (batches, encode_scenes, load_run, load_test_scenes,
                                     padded)
from tfgan3d.eval.fcr.recons import evaluate_recons
from tfgan3d.eval.fcr.scores import SceneScores, ordered_train_split
from tfgan3d.eval.palette import class_names
from tfgan3d.eval.voxel_metrics import ALL

ARMS = ("alphagan", "vae", "vae1d")
FURNITURE = tuple(range(5, 12))          # chair .. objects
METRICS = ("iou_all", "ap_all", "map", "iou_all_refine", "ap_all_refine", "map_refine",
           "baseline_iou_all", "baseline_ap_all", "baseline_map")


def _last_losses(run_path) -> dict:
    """The last phase-1 row of losses.csv: code statistics and the players' losses."""
    with open(Path(run_path) / "losses.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("recons_loss")]
    keep = ("recons_loss", "c_loss", "kl_loss", "d_loss", "code_mean", "code_std")
    return {f"train_{k}": float(rows[-1][k]) for k in keep if rows and rows[-1].get(k)}


def _bn_scores(loaded, real, n_calib=96, batch_size=8) -> dict:
    """IoU all / AP all of G(E(x)) with the generator's three batch-norm choices."""
    model, config = loaded.model, loaded.config
    codes = encode_scenes(model, real, batch_size)

    def score(decode):
        scores = SceneScores(config.num_classes)
        for sl in batches(len(codes), batch_size):
            z = padded(codes[sl], batch_size)
            probs = np.asarray(decode(z))[: sl.stop - sl.start]
            scores.add(real[sl], np.argmax(probs, -1), probs)
        return scores.summary()

    out = {f"bn_moving_{k}": v for k, v in score(model.decode).items()}
    saved = [v.numpy() for v in model.generator.non_trainable_variables]
    # each test batch's own statistics (training=True moves the averages: restored below)
    out.update({f"bn_batch_{k}": v for k, v in
                score(lambda z: model.generator(z, training=True)).items()})
    # re-estimated: one pass over E(x) of n_calib training scenes with momentum 0
    train = next(iter(ordered_train_split(config, n_calib)))
    calib = encode_scenes(model, train.numpy(), batch_size)
    norms = [layer for layer in model.generator.layers
             if isinstance(layer, keras.layers.BatchNormalization)]
    for v, value in zip(model.generator.non_trainable_variables, saved):
        v.assign(value)
    momentum = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    model.generator(calib, training=True)
    for layer, m in zip(norms, momentum):
        layer.momentum = m
    out.update({f"bn_recalibrated_{k}": v for k, v in score(model.decode).items()})
    for v, value in zip(model.generator.non_trainable_variables, saved):
        v.assign(value)
    return out


def run_arm(seed, arm_dir, *, variant, preset, phase1_steps, phase2_steps, n, extra=None):
    """Trains one arm and scores it; returns its flat {metric: value}."""
    from tfgan3d.trainers import runner

    phase2 = phase2_steps if variant == "alphagan" else 0
    options = {"preset": preset, "variant": variant, "seed": seed, "run_dir": str(arm_dir),
               "run_name": variant, "phase2_start": phase1_steps + 1,
               "steps": phase1_steps + phase2, "render_samples": False,
               "sample_every": 10 ** 9, **(extra or {})}
    run = runner.run_mode("fcr_alphagan", options)
    metrics = evaluate_recons(run.path, n=n, out=Path(arm_dir) / "eval-recons")
    names = [k for k in metrics["iou"] if k not in (ALL, "mean_class", "occupancy")]
    result = {k: metrics[k] for k in METRICS}
    for key in ("iou", "iou_refine", "ap"):
        result.update({f"{key}_{c}": metrics[key][c] for c in names})
    result.update({f"baseline_iou_{c}": metrics["baseline"]["iou"][c] for c in names})
    result.update(_last_losses(run.path))
    result["run"] = str(run.path)
    if variant == "alphagan":
        loaded = load_run(run.path)
        real, _ = load_test_scenes(loaded.config, None, n)
        result.update(_bn_scores(loaded, real))
    return result


def claims(num_classes=12):
    """[(Claim, arms it needs)] of the seed's findings."""
    names = class_names(num_classes)

    def beats(a, b):
        return lambda r: (r[a]["iou_all"] > r[b]["iou_all"] and r[a]["ap_all"] > r[b]["ap_all"])

    def per_class(key):
        def holds(r):
            a = r["alphagan"]
            above = [c for c in range(num_classes)
                     if reconstructed(a[f"{key}_{names[c]}"], a[f"baseline_iou_{names[c]}"])]
            return 2 in above and 3 in above and sum(c in FURNITURE for c in above) >= 3
        return holds

    return [
        (protocol.Claim("fully convolutional latent beats the 1-D latent (vae > vae1d on IoU "
                        "all and AP all)", beats("vae", "vae1d")), ("vae", "vae1d")),
        (protocol.Claim("alphaGAN beats the fully convolutional VAE (IoU all and AP all)",
                        beats("alphagan", "vae")), ("alphagan", "vae")),
        (protocol.Claim("the refiner does not lower IoU all (alphagan refined >= unrefined)",
                        lambda r: r["alphagan"]["iou_all_refine"] >= r["alphagan"]["iou_all"]),
         ("alphagan",)),
        (protocol.Claim("alphagan beats the trivial baseline on IoU all, AP all and mAP",
                        lambda r: all(r["alphagan"][k] > r["alphagan"][f"baseline_{k}"]
                                      for k in ("iou_all", "ap_all", "map"))), ("alphagan",)),
        (protocol.Claim(f"alphagan reconstructs floor, wall and >= 3 furniture classes (per-class "
                        f"IoU >= {RECONSTRUCTED_IOU:g} and above the trivial baseline's)",
                        per_class("iou")), ("alphagan",)),
        # the model's final output is the refined scene (encoder, generator, refiner)
        (protocol.Claim("the same for alphagan refined (the refiner's output, the seed's final "
                        "reconstruction)", per_class("iou_refine")), ("alphagan",)),
    ]


def per_class_stats(results, arms, num_classes=12) -> dict:
    """Per-class IoU over seeds: {"seeds", "columns", "rows": [{"class", column: {mean, std}}]}
    for every arm, alphagan refined and the trivial baseline (written as per_class.json, which
    the report page reads)."""
    names = class_names(num_classes)

    def stats(values):
        mean, std = protocol.mean_std(values)
        return {"mean": mean, "std": std}

    columns = [*arms, "alphagan refined", "trivial baseline"]
    rows = []
    for c in names:
        row = {"class": c}
        for arm in arms:
            row[arm] = stats([results[s][arm].get(f"iou_{c}") for s in results
                              if arm in results[s]])
        row["alphagan refined"] = stats([results[s]["alphagan"].get(f"iou_refine_{c}")
                                         for s in results if "alphagan" in results[s]])
        row["trivial baseline"] = stats([results[s][arms[0]].get(f"baseline_iou_{c}")
                                         for s in results if arms[0] in results[s]])
        rows.append(row)
    return {"seeds": len(results), "columns": columns, "rows": rows,
            "reconstructed_iou": RECONSTRUCTED_IOU}


def per_class_table(results, arms, num_classes=12) -> str:
    """Markdown: per-class IoU mean +- std over seeds for every arm and the baseline."""
    table = per_class_stats(results, arms, num_classes)
    rows = [{"class": r["class"], **{c: protocol.format_mean_std(r[c]["mean"], r[c]["std"],
                                                                 ".3f")
                                     for c in table["columns"]}} for r in table["rows"]]
    return tables.markdown_table(rows, ["class", *table["columns"]],
                                 title=f"Per-class IoU (mean +- std over "
                                       f"{protocol.seeds_phrase(table['seeds'])})")


def preset_budget(preset) -> tuple[int, int]:
    """(phase-1, phase-2) iterations of an fcr_alphagan preset."""
    from tfgan3d.trainers.fcr_alphagan import FCRConfig

    config = config_lib.resolve_config(FCRConfig, "fcr_alphagan", {"preset": preset})
    return config.phase2_start - 1, config.steps - config.phase2_start + 1


def main(argv=None):
    parser = cli.ArgumentParser(prog="python -m tfgan3d.eval.fcr_findings",
                                description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="output folder")
    protocol.add_arguments(parser)
    parser.add_argument("--preset", default="quick", choices=config_lib.PRESETS)
    parser.add_argument("--phase1-steps", type=int, default=None,
                        help="phase-1 iterations of every arm (default: the preset's, "
                             "phase2_start - 1)")
    parser.add_argument("--phase2-steps", type=int, default=None,
                        help="refiner iterations of the alphagan arm (default: the preset's)")
    parser.add_argument("--n", type=int, default=50, help="test scenes")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    args = parser.parse_args(argv)
    if "alphagan" not in args.arms:
        parser.error("--arms: the claims need the alphagan arm")
    phase1, phase2 = preset_budget(args.preset)
    args.phase1_steps = phase1 if args.phase1_steps is None else args.phase1_steps
    args.phase2_steps = phase2 if args.phase2_steps is None else args.phase2_steps
    exp = protocol.Experiment(args.out, args.seeds, args.reuse)
    for seed in exp.seeds:
        for arm in args.arms:
            exp.run(seed, arm, lambda s, d, arm=arm: run_arm(
                s, d, variant=arm, preset=args.preset, phase1_steps=args.phase1_steps,
                phase2_steps=args.phase2_steps, n=args.n))
    present = [c for c, needs in claims() if all(a in args.arms for a in needs)]
    notes = (f"Preset {args.preset}, {args.phase1_steps} phase-1 iterations for every arm, "
             f"{args.phase2_steps} phase-2 (refiner) iterations for alphagan only; {args.n} "
             f"test scenes per seed; AP all = the original's pooled (micro) AP of channels "
             f"1..11, mAP = mean of the per-class APs of classes 1..11. A class counts as "
             f"reconstructed when its IoU is >= {RECONSTRUCTED_IOU:g} and above the trivial "
             f"baseline's (the per-class claims).")
    metrics = [*METRICS] + (["bn_moving_iou_all", "bn_batch_iou_all", "bn_recalibrated_iou_all",
                             "bn_moving_ap_all", "bn_batch_ap_all", "bn_recalibrated_ap_all",
                             "train_c_loss", "train_code_std"])
    # the command that reproduces this folder, for the report page (its default is quick's)
    command = (f"python -m tfgan3d.eval.fcr_findings {args.out} --preset {args.preset} --seeds "
               f"{' '.join(map(str, exp.seeds))} --arms {' '.join(args.arms)} --phase1-steps "
               f"{args.phase1_steps} --phase2-steps {args.phase2_steps} --n {args.n}")
    summary = exp.write(title="FCR-alphaGAN findings (seed 002)", claims=present,
                        metrics=metrics, notes=notes, extra={"command": command})
    tables.atomic_write(Path(args.out) / "per_class.md",
                        per_class_table(exp.results, args.arms))
    write_json(per_class_stats(exp.results, args.arms), Path(args.out) / "per_class.json")
    print((Path(args.out) / "summary.md").read_text())
    print((Path(args.out) / "per_class.md").read_text())
    return summary


if __name__ == "__main__":
    main()
