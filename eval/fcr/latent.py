"""`fcr latent RUN`: the latent-space map, an SVD of the codes coloured by scene centroids.

Outputs: latent_coords.npy (N, 2): SVD of the flattened codes to 2-D; latent.csv (plus the
scenes' centroids of non-empty voxels and their 1-D SVD embedding, the colour);
latent_map.png.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tfgan3d.eval import fcr_plots, tables
from tfgan3d.eval.fcr.common import (Clock, add_program, encode_scenes, load_run,
                                     load_test_scenes, positive)
from tfgan3d.io import save_npy


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
    positive("n", n)
    positive("batch_size", batch_size)
    clock = Clock("latent")
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


def add_parser(sub):
    return add_program(sub, "latent", "SVD map of the codes coloured by scene centroids",
                       evaluate_latent, n=200)
