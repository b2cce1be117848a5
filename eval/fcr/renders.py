"""`fcr renders RUN/eval-recons`: real | reconstruction | refined renders of a recons folder.

Outputs: renders.png: real | reconstruction | refined, one row per test scene, from a
recons output folder (VTK, or top-down projections without off-screen GL).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tfgan3d.eval import fcr_plots
from tfgan3d.eval.fcr.common import FCREvalError, size_argument


def evaluate_renders(folder, *, indices=(0, 1, 2, 3), out=None, size=(320, 240)) -> dict:
    """real | reconstruction | refined renders of scenes of an `recons` output folder."""
    folder = Path(folder)
    names = {"real": "real", "reconstruction": "recons", "refined": "recons_refine"}
    missing = [f"{v}.npy" for v in names.values() if not (folder / f"{v}.npy").is_file()]
    if missing:
        raise FCREvalError(f"{folder}: missing {', '.join(missing)} (run the recons mode "
                           f"first)")
    columns = {k: np.load(folder / f"{v}.npy") for k, v in names.items()}
    n = len(columns["real"])
    indices = [i for i in indices if i < n] or [0]
    out = Path(out) if out else folder / "renders.png"
    _, source, note = fcr_plots.save_scene_grid(columns, out, indices, size)
    summary = {"folder": str(folder), "indices": indices, "png": str(out), "source": source,
               **({"note": note} if note else {})}
    print(f"[fcr renders] {out} ({source}{': ' + note if note else ''})", flush=True)
    return summary


def add_parser(sub):
    p = sub.add_parser("renders", help="real | reconstruction | refined renders of a recons "
                                       "output folder")
    p.add_argument("folder", help="output folder of the recons mode (RUN/eval-recons)")
    p.add_argument("--indices", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--out", help="PNG (default FOLDER/renders.png)")
    p.add_argument("--size", type=size_argument, default=(320, 240), metavar="WxH")
    p.set_defaults(program=evaluate_renders, target="folder")
    return p
