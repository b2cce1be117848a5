"""`fcr interpolate RUN`: the original's evaluate_interpolate between test scenes.

Outputs: pairs (0, 1), (1, 2), ... of test scenes: interpolation<l>-<r>.npy (steps, X, H,
Z) refined labels, interpolation_z<l>-<r>.npy (steps, *latent): step 0 is E(x_l),
the last E(x_r); interpolation<l>-<r>.gif (VTK renders, or top-down projections
where off-screen GL is missing: interpolate.json says which).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tfgan3d.eval import fcr_plots, tables
from tfgan3d.eval.fcr.common import (Clock, FCREvalError, add_program, decode_labels,
                                     encode_scenes, load_run, load_test_scenes, positive,
                                     size_argument)
from tfgan3d.io import save_npy


def interpolate_codes(z_l, z_r, steps):
    """`steps` codes from z_l to z_r on a straight line; the first is z_l, the last z_r."""
    t = np.linspace(0.0, 1.0, steps, dtype=np.float32).reshape(-1, *([1] * np.ndim(z_l)))
    return ((1.0 - t) * z_l[None] + t * z_r[None]).astype(np.float32)


def evaluate_interpolate(run_dir, *, data=None, pairs=3, steps=30, out=None, batch_size=8,
                         checkpoint=None, gif=True, gif_size=(240, 180)) -> dict:
    """The original's evaluate_interpolate for pairs (0, 1), (1, 2), ... of test scenes."""
    positive("pairs", pairs)
    positive("steps", steps, 2)
    positive("batch_size", batch_size)
    clock = Clock("interpolate")
    loaded = load_run(run_dir, checkpoint)
    model = loaded.model
    out = Path(out) if out else loaded.run / "eval-interpolate"
    real, names = load_test_scenes(loaded.config, data, pairs + 1)
    if len(real) < 2:
        raise FCREvalError(f"interpolation needs 2 test scenes; the data has {len(real)}")
    codes = encode_scenes(model, real, batch_size)
    summary = {"run": str(loaded.run), "checkpoint": loaded.checkpoint, "steps": steps,
               "pairs": []}
    for k in range(pairs):
        left, right = k % len(real), (k + 1) % len(real)
        z = interpolate_codes(codes[left], codes[right], steps)
        labels = decode_labels(model, z, batch_size)
        stem = f"interpolation{left}-{right}"
        save_npy(out / f"{stem}.npy", labels)
        save_npy(out / f"interpolation_z{left}-{right}.npy", z)
        entry = {"left": left, "right": right, "left_name": names[left],
                 "right_name": names[right], "labels": f"{stem}.npy"}
        if gif:
            frames, source, note = fcr_plots.scene_frames(labels, gif_size)
            captions = [f"{left}->{right}  {i + 1}/{steps}" for i in range(steps)]
            fcr_plots.save_gif(frames, out / f"{stem}.gif", captions)
            entry.update(gif=f"{stem}.gif", gif_frames=source)
            if note:
                entry["gif_note"] = f"VTK could not render ({note}); top-down projections"
                clock.log(f"{stem}.gif from top-down projections: {note}")
        summary["pairs"].append(entry)
        clock.log(f"{stem}: {steps} steps")
    summary["seconds"] = clock.seconds
    tables.write_json(summary, out / "interpolate.json")
    clock.log(f"outputs in {out}")
    return summary


def add_parser(sub):
    p = add_program(sub, "interpolate", "latent interpolation between test scenes",
                    evaluate_interpolate)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--gif-size", type=size_argument, default=(240, 180), metavar="WxH")
    p.add_argument("--no-gif", dest="gif", action="store_false")
    return p
