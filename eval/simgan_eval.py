"""Evaluate a SimGAN run as the paper's section 3.1 does (Shrivastava et al. 2017).

    python -m tfgan3d.eval simgan finding ...   (the finding over seeds: eval/simgan_finding.py)
    python -m tfgan3d.eval.simgan_eval RUN [--n-train 4000] [--n-test 1000]
        [--estimator-steps 500] [--batch-size 128] [--d 7] [--realism-steps 300]
        [--fc-widths 1000 100] [--conv-widths 32 32 64 80 192] [--test-data FOLDER]
        [--out DIR] [--checkpoint PREFIX] [--seed 0]

Steps:
  1. refine N labeled synthetic training images with the run's refiner (training=False);
  2. downstream gaze estimation (Table 2, Figure 7): one estimator trained on the synthetic
     images, one on their refined versions (same labels, architecture, steps and seed), both
     tested on labeled real(-like) eyes;
  3. label preservation: pupil-centre shift synthetic -> refined, beside the paper's
     1.1 +- 0.8 px (eye width 55);
  4. automated visual Turing test: held-out accuracy of a real-vs-refined classifier, and of a
     real-vs-synthetic one as the reference (refinement should bring it towards 0.5), on
     max(n_test, 8) unlabeled real(-like) training images (the run's --real-data or --data)
     against as many refined / synthetic ones, half of each for training.

Writes to OUT (default RUN/eval-simgan/): gaze_table.csv / .md, gaze_cumulative.png,
gaze_results.json (eval/gaze.py), refined_grid.png (synthetic | refined | real),
samples_over_steps.png (the run's samples/step_*.png side by side, when there are any),
summary.json and summary.md.

CPU default: the estimator's FC layers are (1000, 100) instead of the paper's (9600, 1000),
which is slow on CPU; `--fc-widths 9600 1000` gives the paper's. Test data: builtin:eyes runs
use the real-test split; folder runs need --test-data FOLDER (labels.csv with gaze_x, gaze_y,
gaze_z columns), and their synthetic labels.csv must have the same columns.
"""
from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np

from tfgan3d import cli
from tfgan3d.eval import figures, gaze, tables
from tfgan3d.io import to_uint8

CPU_FC_WIDTHS = (1000, 100)   # the paper's (9600, 1000) is slow on CPU
GAZE_COLUMNS = ("gaze_x", "gaze_y", "gaze_z")
PAPER_PUPIL_SHIFT_PX = (1.1, 0.8)   # mean, std at eye width 55


def refine_images(refiner, images, batch_size=256) -> np.ndarray:
    """float32 refined images, `refiner(batch, training=False)` over `images` in batches."""
    images = np.asarray(images, np.float32)
    if not len(images):
        return images.copy()
    return np.concatenate([np.asarray(refiner(images[i:i + batch_size], training=False),
                                      np.float32)
                           for i in range(0, len(images), batch_size)])


def to_rgb_uint8(images) -> np.ndarray:
    """[-1, 1] images (N, H, W, C) -> uint8 RGB (N, H, W, 3) for the grids."""
    images = np.asarray(images, np.float32)
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    return to_uint8(images)


def save_refined_grid(synthetic, refined, real, path, rows=8) -> Path:
    """synthetic | refined | real, one example per row (real rows are unrelated samples)."""
    k = min(rows, len(synthetic), len(refined))
    syn, ref = to_rgb_uint8(synthetic[:k]), to_rgb_uint8(refined[:k])
    rea = to_rgb_uint8(real[:k]) if len(real) else np.zeros((0,) + syn.shape[1:], np.uint8)
    grid = [[syn[i], ref[i]] + ([rea[i]] if i < len(rea) else []) for i in range(k)]
    return figures.save_image_grid(grid, path, col_titles=["synthetic", "refined", "real"],
                                   scale=3.0 if syn.shape[2] < 128 else 1.0)


def save_samples_over_steps(samples_dir, path, max_steps=8) -> list[int] | None:
    """The run's samples/step_*.png (synthetic | refined | real grids) side by side, at most
    `max_steps` evenly spaced steps; returns the steps shown, None when there are none."""
    import tensorflow as tf

    files = sorted(Path(samples_dir).glob("step_*.png")) if Path(samples_dir).is_dir() else []
    if not files:
        return None
    pick = np.unique(np.linspace(0, len(files) - 1, min(max_steps, len(files))).round()
                     .astype(int))
    files = [files[i] for i in pick]
    steps = [int(re.sub(r"\D", "", f.stem)) for f in files]
    images = [tf.io.decode_png(tf.io.read_file(str(f)), channels=3).numpy() for f in files]
    figures.save_image_grid([images], path, col_titles=[f"step {s}" for s in steps],
                            scale=2.0 if images[0].shape[1] < 300 else 1.0)
    return steps


def verdict(rows) -> dict:
    """Mean errors of the synthetic- and refined-trained estimators and the comparison."""
    by_name = {row["training_data"]: row for row in rows}
    syn, ref = (float(by_name[k]["mean_error_deg"]) for k in ("synthetic", "refined"))
    return {"refined_beats_synthetic": bool(ref < syn), "mean_error_refined_deg": ref,
            "mean_error_synthetic_deg": syn,
            "line": f"refined-trained estimator beats synthetic-trained: {ref < syn} "
                    f"(mean error {ref:.2f} vs {syn:.2f} deg)"}


def evaluate_refiner(refiner, synthetic, synthetic_gaze, test_images, test_gaze, real, out, *,
                     steps, realism_steps, d=7, batch_size=128, seed=0, lr=1e-3,
                     conv_widths=gaze.PAPER_CONV_WIDTHS, fc_widths=CPU_FC_WIDTHS,
                     jit_compile="auto", grid_rows=8) -> dict:
    """Steps 1-4 of the module docstring on arrays; writes every output but samples_over_steps.

    Args:
        refiner: callable(images, training=False) -> refined images, [-1, 1] float32.
        synthetic, synthetic_gaze: (N, H, W, C) labeled synthetic images and (N, 3) gaze.
        test_images, test_gaze: the labeled real(-like) test set.
        real: unlabeled real(-like) images for the visual Turing test and the grid.
        out: output folder.
        steps, batch_size, seed, lr, d, conv_widths, fc_widths, jit_compile: the gaze
            estimators' (`gaze.evaluate_downstream`).
        realism_steps: training steps of each real-vs-X classifier.
    Returns:
        The summary dict (also written as summary.json / summary.md).
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    synthetic = np.asarray(synthetic, np.float32)
    synthetic_gaze = np.asarray(synthetic_gaze, np.float32)[:, :3]
    t0 = time.time()
    refined = refine_images(refiner, synthetic)
    rows = gaze.evaluate_downstream(
        {"synthetic": (synthetic, synthetic_gaze), "refined": (refined, synthetic_gaze)},
        test_images, np.asarray(test_gaze, np.float32)[:, :3], out, steps=steps, d=d,
        batch_size=batch_size, seed=seed, lr=lr, conv_widths=tuple(conv_widths),
        fc_widths=tuple(fc_widths), jit_compile=jit_compile)
    shift = gaze.pupil_shift(synthetic, refined)
    realism_refined = gaze.realism_accuracy(real, refined, steps=realism_steps, seed=seed,
                                            jit_compile=jit_compile)
    realism_synthetic = gaze.realism_accuracy(real, synthetic, steps=realism_steps, seed=seed,
                                              jit_compile=jit_compile)
    save_refined_grid(synthetic, refined, real, out / "refined_grid.png", rows=grid_rows)
    summary = {
        "gaze": {"rows": rows, "d_deg": float(d), "n_train": len(synthetic),
                 "n_test": len(test_images), "steps": int(steps), "batch_size": int(batch_size),
                 "seed": int(seed), "conv_widths": list(conv_widths),
                 "fc_widths": list(fc_widths),
                 "paper_fc_widths": tuple(fc_widths) == gaze.PAPER_FC_WIDTHS},
        "verdict": verdict(rows),
        "pupil_shift": {"mean_px": shift["mean_px"], "std_px": shift["std_px"], "n": shift["n"],
                        "image_width": int(synthetic.shape[2]),
                        "paper_mean_px": PAPER_PUPIL_SHIFT_PX[0],
                        "paper_std_px": PAPER_PUPIL_SHIFT_PX[1]},
        "realism": {"real_vs_refined": realism_refined, "real_vs_synthetic": realism_synthetic,
                    "steps": int(realism_steps),
                    "refinement_lowers_accuracy": bool(realism_refined["accuracy"]
                                                       < realism_synthetic["accuracy"])},
        "seconds": round(time.time() - t0, 2),
    }
    write_summary(summary, out)
    return summary


def summary_markdown(summary) -> str:
    g, s, r, v = summary["gaze"], summary["pupil_shift"], summary["realism"], summary["verdict"]
    fc = "the paper's" if g["paper_fc_widths"] else \
        f"CPU setting, not the paper's {list(gaze.PAPER_FC_WIDTHS)}"
    lines = [f"# SimGAN evaluation{' of ' + summary['run'] if 'run' in summary else ''}", "",
             tables.markdown_table(
                 g["rows"], columns=gaze.GAZE_TABLE_COLUMNS, floatfmt=".2f",
                 title=f"Gaze estimation on {g['n_test']} real test eyes (Table 2; "
                       f"% within {g['d_deg']:g} degrees)"),
             "",
             f"Estimators: {g['steps']} steps of batch {g['batch_size']}, seed {g['seed']}, "
             f"conv {g['conv_widths']}, FC {g['fc_widths']} ({fc}).", "",
             v["line"], "",
             f"Pupil-centre shift synthetic -> refined: {s['mean_px']:.2f} +- {s['std_px']:.2f} "
             f"px over {s['n']} images at width {s['image_width']} (paper: "
             f"{s['paper_mean_px']} +- {s['paper_std_px']} px at width 55).", "",
             f"Visual Turing test (held-out accuracy, 0.5 = indistinguishable, "
             f"{r['steps']} steps): real vs refined {r['real_vs_refined']['accuracy']:.3f}, "
             f"real vs synthetic {r['real_vs_synthetic']['accuracy']:.3f} (reference; "
             f"{r['real_vs_refined']['n_test']} test images per class).", ""]
    return "\n".join(lines)


def write_summary(summary, out) -> None:
    tables.write_json(summary, Path(out) / "summary.json")
    tables.atomic_write(Path(out) / "summary.md", summary_markdown(summary).encode())


def load_run_data(config, *, n_train, n_test, test_data=None):
    """(synthetic, synthetic gaze, test images, test gaze, real) arrays for a simgan run's
    config, at its image size and channels."""
    from tfgan3d.data import refine_data

    size = tuple(config.image_size)
    channels = 1 if config.grey else 3
    real_source = config.real_data or config.data
    if config.data.startswith("builtin:"):
        if config.data != "builtin:eyes":
            raise ValueError(f"{config.data} has no gaze labels; the gaze evaluation needs "
                             f"builtin:eyes or a folder with {', '.join(GAZE_COLUMNS)}")
        synthetic, labels = refine_data.builtin_arrays(
            config.data, "synthetic", n_train, image_size=size, seed=config.seed,
            cache_dir=config.cache_dir)
    else:
        synthetic, labels = refine_data.labeled_test_set(
            config.data, n=n_train, image_size=size, grey=config.grey,
            label_columns=GAZE_COLUMNS, cache_dir=config.cache_dir)
    test_source = test_data or (config.data if config.data.startswith("builtin:") else None)
    if test_source is None:
        raise ValueError("a folder run needs --test-data FOLDER (labels.csv with "
                         f"{', '.join(GAZE_COLUMNS)})")
    test_images, test_labels = refine_data.labeled_test_set(
        test_source, n=n_test, image_size=size, seed=config.seed, grey=config.grey,
        label_columns=None if test_source.startswith("builtin:") else GAZE_COLUMNS,
        cache_dir=config.cache_dir)
    n_real = max(n_test, 8)
    if real_source.startswith("builtin:"):
        real, _ = refine_data.builtin_arrays(real_source, "real", n_real, image_size=size,
                                             seed=config.seed, cache_dir=config.cache_dir)
    else:  # a folder of unlabeled images, decoded as the trainer does
        part = refine_data._resolve(real_source, "real", n=n_real, image_size=size,
                                    seed=config.seed, label_columns=None,
                                    cache_dir=config.cache_dir)
        real = refine_data._load_folder_images(part["paths"], channels, part["size"], size)
    return synthetic, labels[:, :3], test_images, test_labels[:, :3], real


def evaluate_run(run_dir, *, n_train=4000, n_test=1000, estimator_steps=500, batch_size=128,
                 d=7, realism_steps=300, fc_widths=CPU_FC_WIDTHS,
                 conv_widths=gaze.PAPER_CONV_WIDTHS, test_data=None, out=None,
                 checkpoint=None, seed=0, jit_compile="auto") -> dict:
    """Loads the run's refiner and data, runs `evaluate_refiner`, adds the samples-over-steps
    grid; returns the summary."""
    from tfgan3d.export import load_trained

    config, model, _ = load_trained(run_dir, checkpoint)
    out = Path(out) if out else Path(run_dir) / "eval-simgan"
    synthetic, syn_gaze, test_images, test_gaze, real = load_run_data(
        config, n_train=n_train, n_test=n_test, test_data=test_data)
    summary = evaluate_refiner(model.refiner, synthetic, syn_gaze, test_images, test_gaze,
                               real, out, steps=estimator_steps, realism_steps=realism_steps,
                               d=d, batch_size=batch_size, seed=seed, conv_widths=conv_widths,
                               fc_widths=fc_widths, jit_compile=jit_compile)
    steps = save_samples_over_steps(Path(run_dir) / "samples", out / "samples_over_steps.png")
    summary.update({"run": str(run_dir), "data": config.data,
                    "test_data": test_data or config.data, "sample_steps": steps})
    write_summary(summary, out)
    return summary


def main(argv=None):
    import sys
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["finding"]:   # the multi-seed experiment (eval/simgan_finding.py)
        from tfgan3d.eval import simgan_finding
        return simgan_finding.main(argv[1:])
    parser = cli.ArgumentParser(prog="tfgan3d-eval simgan",
                                description=__doc__.split("\n")[0])
    parser.add_argument("run", help="simgan run folder")
    parser.add_argument("--n-train", type=int, default=4000,
                        help="synthetic training images, refined for the second estimator")
    parser.add_argument("--n-test", type=int, default=1000, help="labeled real test images")
    parser.add_argument("--estimator-steps", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=128, help="estimator batch (paper 512)")
    parser.add_argument("--d", type=float, default=7.0, help="'within d degrees' threshold")
    parser.add_argument("--realism-steps", type=int, default=300)
    parser.add_argument("--fc-widths", type=int, nargs="+", default=list(CPU_FC_WIDTHS),
                        help="estimator FC widths (default: a CPU setting; the paper's is "
                             "9600 1000)")
    parser.add_argument("--conv-widths", type=int, nargs="+",
                        default=list(gaze.PAPER_CONV_WIDTHS))
    parser.add_argument("--test-data", help="labeled real test folder (default: the run's "
                                            "built-in real-test split)")
    parser.add_argument("--out", help="output folder (default RUN/eval-simgan)")
    parser.add_argument("--checkpoint", help="checkpoint prefix (default: newest)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    summary = evaluate_run(args.run, n_train=args.n_train, n_test=args.n_test,
                           estimator_steps=args.estimator_steps, batch_size=args.batch_size,
                           d=args.d, realism_steps=args.realism_steps,
                           fc_widths=tuple(args.fc_widths), conv_widths=tuple(args.conv_widths),
                           test_data=args.test_data, out=args.out, checkpoint=args.checkpoint,
                           seed=args.seed)
    print(summary_markdown(summary))
    return summary


if __name__ == "__main__":
    main()
