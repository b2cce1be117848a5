"""Do two runs agree? `python -m tfgan3d.tools.compare_runs RUN_A RUN_B [--rtol 1e-6]`.

Compares what two run folders wrote: every losses.csv column but the wall-clock ones, row by
row (the largest relative difference per column), and the tensors of their newest
checkpoints (how many are identical, and the largest relative difference). For checking that a
refactor changed no outputs, that `--deterministic` runs repeat, or that a killed and resumed
run ends where an uninterrupted one does. Exit status 0 when everything agrees within --rtol,
1 otherwise.
"""
from __future__ import annotations

import csv
import sys
from pathlib import Path

import numpy as np

from tfgan3d import cli

CLOCK_COLUMNS = ("time_s", "seconds", "wall_s")


def read_losses(run: Path) -> list[dict]:
    path = Path(run) / "losses.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: expected the run's losses.csv, found none")
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def relative(a: float, b: float) -> float:
    if a == b or (np.isnan(a) and np.isnan(b)):
        return 0.0
    return abs(a - b) / max(abs(a), abs(b), 1e-12)


def compare_losses(a: list[dict], b: list[dict]) -> dict:
    """{"rows": (n_a, n_b), "columns": {name: largest relative difference},
    "only_in": sorted columns in one file only}."""
    cols_a = list(a[0]) if a else []
    cols_b = list(b[0]) if b else []
    shared = [c for c in cols_a if c in cols_b and c not in CLOCK_COLUMNS]
    worst = {c: 0.0 for c in shared}
    for ra, rb in zip(a, b):
        for c in shared:
            try:
                x, y = float(ra[c]), float(rb[c])
            except (TypeError, ValueError):
                worst[c] = max(worst[c], 0.0 if ra[c] == rb[c] else 1.0)
                continue
            worst[c] = max(worst[c], relative(x, y))
    return {"rows": (len(a), len(b)), "columns": worst,
            "only_in": sorted(set(cols_a) ^ set(cols_b))}


def checkpoint_tensors(run: Path) -> dict[str, np.ndarray]:
    import tensorflow as tf

    folder = Path(run) / "checkpoints"
    path = tf.train.latest_checkpoint(str(folder))
    if path is None:
        raise FileNotFoundError(f"{folder}: expected a checkpoint, found none")
    reader = tf.train.load_checkpoint(path)
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if k != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def compare_tensors(a: dict, b: dict) -> dict:
    shared = sorted(set(a) & set(b))
    identical = [k for k in shared if a[k].shape == b[k].shape and np.array_equal(a[k], b[k])]
    worst = 0.0
    for k in shared:
        if a[k].shape != b[k].shape:
            worst = float("inf")
        elif a[k].dtype.kind in "fc" and a[k].size:
            x, y = a[k].astype(np.float64), b[k].astype(np.float64)
            scale = max(np.max(np.abs(x)), np.max(np.abs(y)), 1e-12)
            worst = max(worst, float(np.max(np.abs(x - y)) / scale))
        elif not np.array_equal(a[k], b[k]):
            worst = max(worst, 1.0)
    return {"shared": len(shared), "identical": len(identical), "worst": worst,
            "only_in": sorted(set(a) ^ set(b))}


def compare_runs(run_a, run_b, rtol: float = 1e-6, tensors: bool = True) -> tuple[bool, list[str]]:
    """(agree, report lines)."""
    lines, agree = [], True
    losses = compare_losses(read_losses(run_a), read_losses(run_b))
    if losses["rows"][0] != losses["rows"][1] or losses["only_in"]:
        agree = False
    lines.append(f"losses.csv rows {losses['rows'][0]} vs {losses['rows'][1]}"
                 + (f"; columns in one only: {', '.join(losses['only_in'])}"
                    if losses["only_in"] else ""))
    for col, worst in losses["columns"].items():
        ok = worst <= rtol
        agree &= ok
        lines.append(f"  {col:28s} max rel diff {worst:.3g}{'' if ok else '  DIFFERS'}")
    if tensors:
        t = compare_tensors(checkpoint_tensors(run_a), checkpoint_tensors(run_b))
        ok = t["worst"] <= rtol and not t["only_in"]
        agree &= ok
        lines.append(f"newest checkpoints: {t['identical']} of {t['shared']} tensors identical, "
                     f"max rel diff {t['worst']:.3g}"
                     + (f"; {len(t['only_in'])} in one only" if t["only_in"] else "")
                     + ("" if ok else "  DIFFERS"))
    lines.append("agree" if agree else f"differ (rtol {rtol:g})")
    return agree, lines


def main(argv=None) -> int:
    parser = cli.ArgumentParser(prog="python -m tfgan3d.tools.compare_runs",
                                description=__doc__.split("\n")[0])
    parser.add_argument("run_a")
    parser.add_argument("run_b")
    parser.add_argument("--rtol", type=float, default=1e-6,
                        help="largest relative difference that counts as agreement")
    parser.add_argument("--no-tensors", action="store_true",
                        help="compare losses.csv only (no TensorFlow import)")
    args = parser.parse_args(argv)
    agree, lines = compare_runs(args.run_a, args.run_b, args.rtol, not args.no_tensors)
    print("\n".join(lines))
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(cli.run(main))
