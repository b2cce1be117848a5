"""Speed benchmarks (never timed tests): `python -m tfgan3d.tools.bench pix2pix|conv [options]`.

pix2pix: times the training step at the `paper` preset (U-Net 256, 70x70 PatchGAN, batch 1,
256x256, depth target) as the median over --iters steps after --warmup steps, with the
achieved GFLOP/s from an analytic count of the convolutions, then the input pipeline alone
(examples/s on the built-in data at the paper's 286 -> 256 augmentation). With --torch it also
runs the PyTorch pix2pix measuring stick (../shared/bench/p2p_torch.py) in the same session,
so the two times can be compared on one machine; --rounds R alternates the two R times and
reports the median of the per-round ratios. conv: per-layer times of the same networks'
convolutions with Keras' layers and with tfgan3d.layers.conv. Prints one JSON line.

The process takes pix2pix's speed settings (`tfgan3d.prefer_onednn_for("pix2pix")`), as
`python -m tfgan3d.train --mode pix2pix` does.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from tfgan3d import cli
from tfgan3d import config as config_lib   # stdlib only: TensorFlow loads after the flags


def conv_macs(model) -> int:
    """Multiply-accumulates of one forward pass through the Conv2D / Conv2DTranspose layers
    of a functional model, from the shapes of its layers."""
    import keras

    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2DTranspose):
            _, h, w, cin = layer.input.shape
            kh, kw = layer.kernel_size
            total += h * w * kh * kw * cin * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, cout = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * kh * kw * layer.input.shape[-1] * cout
    return int(total)


def pix2pix_step_flops(config, target_channels: int = 1) -> float:
    """FLOPs of one alternating pix2pix iteration (2 FLOPs per MAC).

    G forward F_G; D step: D forward on the real and the fake pair (2 F_D) and their backward
    (weights and activations, 2 x 2 F_D); G step: D forward on the fake pair (F_D), backward
    through D to its input (F_D), G backward (2 F_G). Total 3 F_G + 8 F_D.
    """
    g, d = _networks(config, target_channels, size=(config.crop_size, config.crop_size))
    return 2.0 * (3 * conv_macs(g) + 8 * conv_macs(d))


def _networks(config, target_channels, size=(None, None)):
    from tfgan3d.networks.pix2pix import build_patchgan_discriminator, build_unet_generator

    g = build_unet_generator(3, target_channels, size=size, n_down=config.n_down,
                             ngf=config.ngf, norm=config.norm,
                             bottleneck_norm=config.bottleneck_norm)
    d = build_patchgan_discriminator(3, target_channels, size=(config.crop_size,) * 2,
                                     ndf=config.ndf, n_layers=config.d_layers, norm=config.norm)
    return g, d


def make_step(config, target_channels: int = 1):
    """A compiled pix2pix train function on a fixed in-memory batch: returns run() -> seconds."""
    import tensorflow as tf

    from tfgan3d.models.pix2pix import Pix2Pix
    from tfgan3d.trainers import pix2pix

    model = Pix2Pix(*_networks(config, target_channels), lambda_l1=config.lambda_l1,
                    d_update=config.d_update)
    opts = pix2pix.make_optimizers(config, 1000)
    model.compile(g_optimizer=opts["g"], d_optimizer=opts["d"], jit_compile=config.jit)
    rng = np.random.default_rng(0)
    b, s = config.batch_size, config.crop_size
    batch = {"real_a": rng.uniform(-1, 1, (b, s, s, 3)).astype("float32"),
             "real_b": rng.uniform(-1, 1, (b, s, s, target_channels)).astype("float32"),
             "valid_b": np.ones((b, s, s, target_channels), "float32")}
    batch = {k: tf.constant(v) for k, v in batch.items()}
    model.make_train_function()

    def run() -> float:
        t0 = time.perf_counter()
        logs = model.train_function(iter([batch]))
        float(logs["g_loss"])         # wait for the step to finish
        return time.perf_counter() - t0
    return run


def bench_pix2pix_step(config, warmup: int, iters: int, target_channels: int = 1,
                       rounds: int = 1, torch: bool = False) -> dict:
    """Median seconds of one training iteration after `warmup` iterations.

    With `torch`, each of `rounds` rounds times `iters` of our iterations and then a run of the
    PyTorch stick, so that both see the same machine; the ratio is the median of the rounds'
    ratios, which a neighbour's load in one round cannot move much.
    """
    import keras

    run = make_step(config, target_channels)
    for _ in range(warmup):
        run()
    times, ratios, torch_runs = [], [], []
    for _ in range(rounds):
        ours = [run() for _ in range(iters)]
        times += ours
        if torch:
            t = run_torch_stick(warmup, iters)["torch"]
            torch_runs.append(t)
            if isinstance(t, dict) and "s_per_iter" in t:
                ratios.append(statistics.median(ours) / t["s_per_iter"])
    keras.backend.clear_session()
    median = statistics.median(times)
    flops = pix2pix_step_flops(config, target_channels)
    result = {"step_s_median": median, "step_s_all": [round(t, 4) for t in times],
              "gflop_per_step": flops / 1e9, "gflops_achieved": flops / 1e9 / median}
    if torch:
        result["torch"] = torch_runs[-1] if len(torch_runs) == 1 else torch_runs
        if ratios:
            result["ours_over_torch_rounds"] = [round(r, 3) for r in ratios]
            result["ours_over_torch"] = statistics.median(ratios)
    return result


def bench_pix2pix_pipeline(config, batches: int) -> dict:
    from tfgan3d import registry

    # The training stream exactly as `tfgan3d.train --mode pix2pix` feeds it.
    ds = registry.get_mode("pix2pix").data(config)["pairs"]
    it = iter(ds)
    for _ in range(5):
        next(it)
    t0 = time.perf_counter()
    for _ in range(batches):
        next(it)
    dt = time.perf_counter() - t0
    return {"pipeline_examples_per_s": batches * config.batch_size / dt}


def bench_conv_layers(config, iters: int) -> list[dict]:
    """Per-layer milliseconds of the pix2pix paper networks' convolutions, forward and forward +
    backward (input and kernel gradients), with Keras' layers and with tfgan3d's
    (tfgan3d.layers.conv), on one 256x256 example: the timings behind that module's choice."""
    import keras
    import tensorflow as tf

    from tfgan3d.layers import conv

    def timed(fn):
        for _ in range(2):
            fn()
        t0 = time.perf_counter()
        for _ in range(iters):
            out = fn()
        [float(tf.reduce_sum(o)) for o in out]
        return (time.perf_counter() - t0) / iters * 1e3

    rows = []
    rng = np.random.default_rng(0)
    for net in _networks(config, 1, size=(config.crop_size, config.crop_size)):
        for layer in net.layers:
            if not isinstance(layer, keras.layers.Conv2D | keras.layers.Conv2DTranspose):
                continue
            shape = (1, *layer.input.shape[1:])
            x = tf.constant(rng.normal(size=shape).astype("float32"))
            base = (keras.layers.Conv2DTranspose
                    if isinstance(layer, keras.layers.Conv2DTranspose) else keras.layers.Conv2D)
            ours = (conv.Conv2DTranspose if base is keras.layers.Conv2DTranspose
                    else conv.Conv2D)
            row = {"layer": f"{net.name}/{layer.name}", "input": list(shape[1:]),
                   "filters": layer.filters}
            for label, cls in (("keras", base), ("tfgan3d", ours)):
                twin = cls.from_config(layer.get_config())
                twin.build(shape)
                twin.set_weights(layer.get_weights())
                dy = tf.constant(rng.normal(size=twin(x).shape).astype("float32"))

                def both(twin=twin, dy=dy):
                    with tf.GradientTape() as tape:
                        tape.watch(x)
                        y = twin(x)
                    return tape.gradient(y, [x, twin.kernel], output_gradients=dy)
                row[f"{label}_fwd_ms"] = round(timed(tf.function(lambda t=twin: [t(x)])), 2)
                row[f"{label}_fwd_bwd_ms"] = round(timed(tf.function(both)), 2)
            rows.append(row)
            print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def run_torch_stick(warmup: int, iters: int) -> dict:
    bench = Path(os.environ.get("TFGAN3D_SHARED", Path(__file__).resolve().parents[2] / "shared"))
    bench = bench / "bench"
    python = Path(os.environ.get("BENCH_VENV", Path.home() / ".cache/tfgan3d-bench-venv"))
    python = python / "bin" / "python"
    script = bench / "p2p_torch.py"
    if not (script.exists() and python.exists()):
        return {"torch": f"not run: need {script} and {python} (bash {bench}/setup.sh)"}
    out = subprocess.run([str(python), str(script), "--warmup", str(warmup), "--iters",
                          str(iters)], capture_output=True, text=True, cwd=bench)
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    return {"torch": json.loads(lines[-1]) if lines else out.stderr[-500:]}


def main(argv=None):
    parser = cli.ArgumentParser(prog="tfgan3d-bench", description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=["pix2pix", "conv"],
                        help="pix2pix: the training step and input pipeline; conv: per-layer "
                             "Keras vs tfgan3d convolutions of the pix2pix networks")
    parser.add_argument("--preset", default="paper", choices=config_lib.PRESETS)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--pipeline-batches", type=int, default=100)
    parser.add_argument("--n-train", type=int, default=200,
                        help="built-in scenes for the pipeline benchmark")
    parser.add_argument("--torch", action="store_true", help="also run the PyTorch stick")
    parser.add_argument("--rounds", type=int, default=1,
                        help="with --torch: alternate ours and the stick this many times")
    parser.add_argument("--jit", action="store_true")
    parser.add_argument("--target-channels", type=int, default=1,
                        help="1: the depth variant; 3: the PyTorch stick's RGB target")
    parser.add_argument("--d-update", default="alternating",
                        choices=("alternating", "simultaneous"))
    args = parser.parse_args(argv)
    import tfgan3d
    tfgan3d.prefer_onednn_for("pix2pix")     # as `tfgan3d.train --mode pix2pix` does

    from tfgan3d import registry

    config = config_lib.resolve_config(registry.get_mode("pix2pix").config, "pix2pix", {
        "preset": args.preset, "jit": args.jit, "d_update": args.d_update,
        "n_train": args.n_train, "n_test": 10})
    if args.what == "conv":
        rows = bench_conv_layers(config, args.iters)
        total = {k: round(sum(r[k] for r in rows), 1) for k in rows[0] if k.endswith("_ms")}
        result = {"what": "conv", "preset": args.preset, "layers": rows, "total_ms": total}
        print(json.dumps(result), flush=True)
        return result
    result = {"what": "pix2pix", "preset": args.preset, "batch": config.batch_size,
              "size": config.crop_size, "d_update": config.d_update, "jit": config.jit,
              "target_channels": args.target_channels}
    result.update(bench_pix2pix_step(config, args.warmup, args.iters, args.target_channels,
                                     rounds=args.rounds, torch=args.torch))
    result.update(bench_pix2pix_pipeline(config, args.pipeline_batches))
    result["train_examples_per_s"] = config.batch_size / result["step_s_median"]
    result["pipeline_over_training"] = (result["pipeline_examples_per_s"]
                                        / result["train_examples_per_s"])
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
