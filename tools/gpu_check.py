"""GPU readiness check: `python -m tfgan3d.tools.gpu_check [--steps 30] [--modes ...]`.

With a GPU, trains each mode's quick preset (`--preset`) for `--warmup` + `--steps` steps in
float32 and with --mixed-precision (float16 and loss scaling), and prints per mode and
precision: the median time of the timed steps, examples/s, the FLOPs of one training step,
the achieved FLOP/s and its fraction of the card's peak. Without a GPU it says so and runs a
CPU sanity pass instead (each mode's tiny preset, a few steps, float32 and mixed, which is
bfloat16 on a CPU), then exits 0; `--allow-cpu` times the chosen preset on the CPU as if it
were the device.

FLOPs per step: the floating-point operations of the graph of one `train_step` of the
mode's model (traced on one real batch), summed from TensorFlow's registered FLOP statistics
(those tf.profiler reads: convolutions, matmuls, element-wise ops), plus the convolution
gradients, which TensorFlow leaves uncounted and this tool registers (each costs what its
forward convolution does). Both
branches of an in-graph switch are counted, so a mode that switches players inside the
graph is overcounted. Peak: the card's dense tensor-core rate for float16 (mixed) and its float32
(TF32 tensor-core where TensorFlow uses it) rate for float32, from the table PEAKS by name;
an unknown card prints no fraction.

Step time: from each run's losses.csv (logged every step): (time at the last step - time
at the last warm-up step) / steps, so graph tracing and XLA compilation are excluded.
Prints a Markdown table and, with --json FILE, writes the rows.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

MODES = ("pix2pix", "simgan", "sim2real", "fcr_alphagan")
# Dense peak TFLOP/s: (float16 tensor cores, float32 as TensorFlow runs it (TF32 on Ampere+)).
PEAKS = {
    "H200": (989.0, 494.0), "H100 SXM": (989.0, 494.0), "H100 PCIe": (756.0, 378.0),
    "H100": (989.0, 494.0), "A100": (312.0, 156.0), "L40S": (362.0, 183.0),
    "L4": (121.0, 60.0), "A10": (125.0, 62.5), "V100": (125.0, 15.7), "T4": (65.0, 8.1),
    "RTX 4090": (165.0, 82.6), "RTX 3090": (71.0, 35.6),
}
# Per mode: the flags that keep the timed steps in one phase (its first).
ONE_PHASE = {"sim2real": lambda n: {"stage1_steps": n, "stage2_steps": 1},
             "fcr_alphagan": lambda n: {"phase2_start": n + 1},
             "simgan": lambda n: {"pretrain_r_steps": 0, "pretrain_d_steps": 0}}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m tfgan3d.tools.gpu_check",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--preset", default="quick", help="preset timed (default quick)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--allow-cpu", action="store_true",
                        help="time the preset on the CPU when there is no GPU")
    parser.add_argument("--jit", action="store_true", help="XLA-compiled train steps")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--run-dir", help="where the runs go (default: a temporary folder)")
    return parser


def peak_of(name: str):
    """(float16, float32) peak TFLOP/s of a card named `name`, or None."""
    for key in sorted(PEAKS, key=len, reverse=True):
        if key.lower() in name.lower():
            return PEAKS[key]
    return None


def _register_conv_gradients() -> None:
    """FLOP statistics for the convolution gradients, which TensorFlow registers only for the
    forward Conv2D / Conv3D: each costs what its forward convolution does, 2 x (elements of
    the output gradient) x (filter volume x input channels). Conv3DBackpropInputV2 is also
    Keras' forward Conv3DTranspose."""
    import numpy as np
    from tensorflow.python.framework import graph_util, ops

    def flops(graph, node, filter_input):
        grad = graph_util.tensor_shape_from_node_def_name(graph, node.input[2])
        kernel = graph_util.tensor_shape_from_node_def_name(
            graph, node.input[1] if filter_input else node.name)
        grad.assert_is_fully_defined()
        kernel.assert_is_fully_defined()
        per_output = int(np.prod(kernel.as_list()[:-1], dtype=np.int64))
        return ops.OpStats("flops", 2 * int(np.prod(grad.as_list(), dtype=np.int64))
                           * per_output)

    for op, filter_input in (("Conv2DBackpropInput", True), ("Conv2DBackpropFilter", False),
                             ("Conv3DBackpropInputV2", True),
                             ("Conv3DBackpropFilterV2", False)):
        try:
            ops.RegisterStatistics(op, "flops")(
                lambda graph, node, f=filter_input: flops(graph, node, f))
        except KeyError:                  # registered already (a second call)
            pass


def step_flops(model, dataset) -> float | None:
    """FLOPs of one train_step graph on one batch of `dataset`: the sum over the graph's ops
    of TensorFlow's registered FLOP statistics (those tf.profiler reads), the convolution
    gradients included (`_register_conv_gradients`)."""
    import tensorflow as tf
    from tensorflow.python.framework import ops
    _register_conv_gradients()
    try:
        batch = next(iter(dataset))
        graph = tf.function(model.train_step).get_concrete_function(batch).graph
    except Exception as err:               # noqa: BLE001 - a count is optional
        print(f"note: no FLOP count ({type(err).__name__}: {str(err)[:120]})", flush=True)
        return None
    total = 0
    for op in graph.get_operations():
        try:
            value = ops.get_stats_for_node_def(graph, op.node_def, "flops").value
        except (ValueError, TypeError, KeyError):  # no statistic, or shapes not static
            continue
        total += value or 0
    return float(total) or None


def time_mode(mode: str, preset: str, steps: int, warmup: int, mixed: bool, jit: bool,
              run_dir: str) -> dict:
    """Trains `mode` and returns its row: step time, examples/s, FLOPs per step."""
    import keras
    from tfgan3d.trainers import runner
    seen = {}
    fit = runner.fit

    def spy(model, dataset, run, **kwargs):
        seen.setdefault("model", (model, dataset))
        return fit(model, dataset, run, **kwargs)

    total = warmup + steps
    options = {"preset": preset, "steps": total, "run_dir": run_dir, "log_every": 1,
               "checkpoint_every": 10 * total, "sample_every": 10 * total,
               "mixed_precision": mixed, "jit": jit, **ONE_PHASE.get(mode, lambda n: {})(total)}
    if mode == "sim2real":
        options.pop("steps")
    runner.fit = spy
    try:
        run = runner.run_mode(mode, options)
    finally:
        runner.fit = fit
    rows = [line.split(",") for line in (run.path / "losses.csv").read_text().splitlines()]
    header, rows = rows[0], rows[1:]
    times = {int(r[0]): float(r[header.index("time_s")]) for r in rows}
    last = max(t for t in times if t <= total)
    step_time = (times[last] - times[warmup]) / (last - warmup)
    model, dataset = seen["model"]
    flops = step_flops(model, dataset)
    batch = run.config.batch_size
    keras.mixed_precision.set_global_policy("float32")
    return {"mode": mode, "precision": "mixed" if mixed else "float32", "batch": batch,
            "step_ms": 1000 * step_time, "examples_per_s": batch / step_time,
            "gflop_per_step": flops / 1e9 if flops else None,
            "tflop_per_s": flops / step_time / 1e12 if flops else None}


def table(rows: list[dict], device: str, peak) -> str:
    lines = [f"device: {device}", "",
             "| mode | precision | batch | step (ms) | examples/s | GFLOP/step | TFLOP/s | "
             "of peak |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        tf_s = r["tflop_per_s"]
        of_peak = (f"{100 * tf_s / peak[0 if r['precision'] == 'mixed' else 1]:.1f}%"
                   if peak and tf_s else "")
        lines.append(f"| {r['mode']} | {r['precision']} | {r['batch']} | {r['step_ms']:.1f} | "
                     f"{r['examples_per_s']:.1f} | "
                     f"{r['gflop_per_step']:.2f} | {tf_s:.3f} | {of_peak} |" if tf_s else
                     f"| {r['mode']} | {r['precision']} | {r['batch']} | {r['step_ms']:.1f} | "
                     f"{r['examples_per_s']:.1f} | | | |")
    return "\n".join(lines)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    if args.steps < 1 or args.warmup < 1:
        print(f"error: --steps and --warmup: expected >= 1, got {args.steps} and "
              f"{args.warmup}", file=sys.stderr)
        return 1
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    preset, steps, warmup = args.preset, args.steps, args.warmup
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        device = f"{details.get('device_name', 'GPU')} x{len(gpus)}"
    elif args.allow_cpu:
        device = "CPU (--allow-cpu)"
    else:
        device = "CPU sanity pass (tiny presets, 2 timed steps)"
        print("no GPU found: TensorFlow lists none (the CUDA build and a driver are needed: "
              "pip install 'tensorflow[and-cuda]~=2.21.0'); running a CPU sanity pass",
              flush=True)
        preset, steps, warmup = "tiny", 2, 1
    peak = peak_of(device) if gpus else None
    run_dir = args.run_dir or tempfile.mkdtemp(prefix="tfgan3d-gpu-check-")
    rows = []
    for mode in args.modes:
        for mixed in (False, True):
            rows.append(time_mode(mode, preset, steps, warmup, mixed, args.jit,
                                  str(Path(run_dir) / mode)))
    print(table(rows, device, peak), flush=True)
    if args.json:
        from tfgan3d.io import write_json
        write_json({"device": device, "peak_tflops": peak, "rows": rows}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
