"""Evaluate a pix2pix depth run on a test set.

    python -m tfgan3d.eval.pix2pix_eval RUN [--data SOURCE] [--split test] [--out DIR]
        [--median-scaling] [--min-depth 1e-3] [--max-depth M] [--grid-rows 6]

Writes to OUT (default RUN/eval-<data name>/):
  pred_depth.npy, gt_depth.npy, valid.npy   (N, H, W) float32 metres / bool, test-set order
  metrics.json, metrics.csv                 mean over images (definitions: eval/depth_metrics.py)
  per_image.csv                             one row per test image
  grid.png                                  input | prediction | ground truth, like the seed's figures
Depth is compared at the generator's resolution (the run's crop size), over valid
ground-truth pixels only.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from tfgan3d import cli
from tfgan3d.eval import depth_metrics, figures, tables
from tfgan3d.io import save_npy, to_uint8


def predict_set(model, config, mode, source: str, split: str, batch_size: int = 8):
    """(rgb uint8, pred metres, gt metres, valid bool) arrays over a test split, in order."""
    import dataclasses

    config = dataclasses.replace(config, batch_size=batch_size)
    dataset = mode.data(config, split, source=source, training=False)["pairs"]
    rgb, pred, gt, valid = [], [], [], []
    for batch in dataset:
        pred.append(mode.predict(model, batch["real_a"], config)["depth"].numpy()[..., 0])
        rgb.append(to_uint8(batch["real_a"].numpy()))
        gt.append(batch["depth"].numpy()[..., 0])
        valid.append(batch["valid_b"].numpy()[..., 0] > 0.5)
    return tuple(np.concatenate(x) for x in (rgb, pred, gt, valid))


def evaluate_arrays(rgb, pred, gt, valid, out: Path, *, min_depth=1e-3, max_depth=None,
                    median_scaling=False, grid_rows=6, title="") -> dict:
    """Metrics, .npy outputs and the grid of one prediction set; returns the summary."""
    out.mkdir(parents=True, exist_ok=True)
    save_npy(out / "pred_depth.npy", pred.astype(np.float32))
    save_npy(out / "gt_depth.npy", gt.astype(np.float32))
    save_npy(out / "valid.npy", valid)
    per_image = depth_metrics.evaluate_depth(gt, pred, valid, min_depth=min_depth,
                                             max_depth=max_depth, median_scaling=median_scaling,
                                             per_image=True)
    summary = depth_metrics.summarise_depth(per_image)
    tables.write_json(summary, out / "metrics.json")
    tables.write_csv([summary], out / "metrics.csv")
    tables.write_csv([{"index": i, **row} for i, row in enumerate(per_image)],
                     out / "per_image.csv")
    k = min(grid_rows, len(rgb))
    rows = [[rgb[i], pred[i], np.where(valid[i], gt[i], 0.0)] for i in range(k)]
    figures.save_image_grid(rows, out / "grid.png",
                            col_titles=["input", "prediction", "ground truth"],
                            titles=[f"#{i}" for i in range(k)], scale=2.0 if
                            rgb.shape[1] < 128 else 1.0)
    return summary


def evaluate_run(run_dir, *, data: str | None = None, split: str = "test", out=None,
                 min_depth=1e-3, max_depth=None, median_scaling=False, grid_rows=6,
                 checkpoint=None) -> dict:
    """Evaluates the run's newest checkpoint on `data` (default: the run's test data)."""
    from tfgan3d.export import load_trained

    config, model, mode = load_trained(run_dir, checkpoint)
    source = data or config.test_data or config.data
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", source.replace("builtin:", ""))
    out = Path(out) if out else Path(run_dir) / f"eval-{name}"
    t0 = time.time()
    arrays = predict_set(model, config, mode, source, split)
    summary = evaluate_arrays(*arrays, out, min_depth=min_depth, max_depth=max_depth,
                              median_scaling=median_scaling, grid_rows=grid_rows)
    summary.update({"run": str(run_dir), "data": source, "split": split,
                    "seconds": round(time.time() - t0, 2)})
    tables.write_json(summary, out / "metrics.json")
    return summary


def main(argv=None):
    parser = cli.ArgumentParser(prog="tfgan3d-eval pix2pix",
                                description=__doc__.split("\n")[0])
    parser.add_argument("run", help="run folder")
    parser.add_argument("--data", help="test data (default: the run's test data)")
    parser.add_argument("--split", default="test")
    parser.add_argument("--out", help="output folder (default RUN/eval-DATA)")
    parser.add_argument("--median-scaling", action="store_true",
                        help="scale each prediction by median(gt)/median(pred)")
    parser.add_argument("--min-depth", type=float, default=1e-3)
    parser.add_argument("--max-depth", type=float, default=None,
                        help="cap: ground truth beyond it is ignored, predictions clamped")
    parser.add_argument("--grid-rows", type=int, default=6)
    parser.add_argument("--checkpoint", help="checkpoint prefix (default: newest)")
    args = parser.parse_args(argv)
    summary = evaluate_run(args.run, data=args.data, split=args.split, out=args.out,
                           min_depth=args.min_depth, max_depth=args.max_depth,
                           median_scaling=args.median_scaling, grid_rows=args.grid_rows,
                           checkpoint=args.checkpoint)
    print(tables.markdown_table([{k: summary[k] for k in depth_metrics.DEPTH_METRICS}]))
    return summary


if __name__ == "__main__":
    main()
