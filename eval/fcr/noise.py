"""`fcr noise RUN`: the original's evaluate_noise and the heat map of changed voxels.

Outputs: for each scene s and latent position (x, y, z): N(0, sigma^2) noise added to the
latent channels there, `draws` times, decoded and refined:
noise<s>_<x>_<y>_<z>.npy (draws, X, H, Z) labels (the original's noise*.npy per
position) and noise<s>_base.npy (the noise-free decode); noise_change.csv (one
row per scene and position: fraction of voxels whose class differs from the
noise-free decode, mean over draws), noise_heatmap.png (mean over scenes, one
panel per latent height). latent1d runs have no spatial latent: skipped, with
the reason in noise.json.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tfgan3d.eval import fcr_plots, tables
from tfgan3d.eval.fcr.common import (Clock, FCREvalError, add_program, decode_labels,
                                     encode_scenes, load_run, load_test_scenes, positive)
from tfgan3d.io import save_npy


def evaluate_noise(run_dir, *, data=None, scenes=2, draws=9, sigma=1.0, out=None,
                   batch_size=8, checkpoint=None) -> dict:
    """The original's evaluate_noise and the README's heat map of changed voxels."""
    positive("scenes", scenes)
    positive("draws", draws)
    positive("batch_size", batch_size)
    if not sigma >= 0:
        raise FCREvalError(f"--sigma: expected >= 0, got {sigma}")
    clock = Clock("noise")
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


def add_parser(sub):
    p = add_program(sub, "noise", "noise at each latent position and the heat map of changes",
                    evaluate_noise)
    p.add_argument("--scenes", type=int, default=2)
    p.add_argument("--draws", type=int, default=9)
    p.add_argument("--sigma", type=float, default=1.0, help="noise standard deviation")
    return p
