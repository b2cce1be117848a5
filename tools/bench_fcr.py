"""Phase-1 training speed of FCRAlphaGAN: seconds per iteration and GFLOP/s.

    python -m tfgan3d.tools.bench_fcr [--preset paper|standard|quick|tiny] [--batch 20] [--iters 2]
                                      [--warmup 1] [--eg-steps 2] [--jit] [--threads N]
                                      [--mixed-precision]

Builds the model at the preset's sizes, trains on one random one-hot batch (about 92% empty
voxels) through the compiled Keras train function and prints one JSON line. The GFLOP figures
are analytic: 2 x the multiply-accumulates of every convolution, transposed convolution and
dense layer that the schedule runs, forward and backward (a weight gradient and an input
gradient each cost one forward of the layer; the first layer of a network whose input is data
or noise needs no input gradient). Compare with shared/bench/fcr_original_schedule.py run
beside it on the same machine. XLA (`--jit`) makes these 3D convolutions tens of times slower
on CPU: it is off unless asked for. On CPU, TF_ENABLE_ONEDNN_OPTS=1 in the environment makes
the strided Conv3D gradients of the small presets tens of times faster; the JSON line records
its value. `--mixed-precision` runs under Keras' mixed_bfloat16 policy on CPU (mixed_float16
with loss scaling on a GPU), as `--mixed-precision` training does; the JSON line says which.
"""
import argparse
import json
import os
import statistics
import sys
import time

from tfgan3d import cli
from tfgan3d.config import PRESETS  # stdlib only: TensorFlow loads after the flags


def network_gflops(network):
    """(forward GFLOP per sample, GFLOP of its first layer) of a network's conv / dense layers."""
    from tfgan3d.networks.voxel import forward_macs
    macs = forward_macs(network)
    return 2e-9 * sum(macs.values()), 2e-9 * next(iter(macs.values()))


def phase1_gflop_per_sample(model, schedule="ours"):
    """Analytic GFLOP per sample of one phase-1 iteration.

    schedule "ours": what `FCRAlphaGAN._phase1_step` runs (model.eg_steps shared-forward
    pairs, then the D and C steps from the last pair's forward). "original": the original's
    four kinds of session.run, each recomputing its forward graph, as
    shared/bench/fcr_original_schedule.py ports them (the code-D run also evaluates every loss).
    """
    e, e1 = network_gflops(model.encoder)
    g, g1 = network_gflops(model.generator)
    d, d1 = network_gflops(model.discriminator)
    c, c1 = (network_gflops(model.code_discriminator) if model.code_discriminator is not None
             else (0.0, 0.0))
    # backward passes: E's loss reaches E through G(z_hat) (input gradients of G) and C;
    # G's loss reaches G through D twice; D and C get weight and input gradients.
    e_back = 2 * e - e1 + g + c
    g_back = 2 * (2 * g - g1) + 2 * d
    d_back = 3 * (2 * d - d1)
    c_back = 2 * (2 * c - c1)
    if schedule == "ours":
        # C runs on z and E(x) together in every pair (2 codes per sample, forward and the
        # encoder's input gradient); its own step reuses the last pair's call.
        pair = e + 2 * g + 2 * d + 2 * c + e_back + c + g_back
        return model.eg_steps * pair + d + d_back + c_back
    if schedule == "original":
        enc = e + g + c + e_back
        gen = e + 2 * g + 2 * d + g_back
        disc = e + 2 * g + 3 * d + d_back
        code = e + 2 * g + 3 * d + 2 * c + c_back
        return 2 * (enc + gen) + disc + code
    raise ValueError(f"schedule must be 'ours' or 'original'; got {schedule!r}")


def _busy_seconds():
    """(CPU seconds the whole machine has been busy, CPU seconds of this process) so far."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    own = os.times()
    return ((user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK"),
            own.user + own.system)


def _parse(argv):
    p = cli.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", choices=PRESETS, default="paper")
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--iters", type=int, default=2, help="timed iterations (median reported)")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations (the first traces)")
    p.add_argument("--eg-steps", type=int, default=2,
                   help="(encoder, generator) step pairs per iteration (paper: 2)")
    p.add_argument("--jit", action="store_true", help="compile the train step with XLA")
    p.add_argument("--threads", type=int, default=0,
                   help="intra-op threads (default: TensorFlow's choice)")
    p.add_argument("--mixed-precision", action="store_true",
                   help="bfloat16 compute on CPU (float16 + loss scaling on a GPU)")
    return p.parse_args(argv)


def main(argv=None):
    args = _parse(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np
    import tensorflow as tf

    from tfgan3d import optimizers
    from tfgan3d.models.fcr_alphagan import FCRAlphaGAN
    from tfgan3d.networks.voxel import VOXEL_PRESETS, build_fcr_networks

    if args.threads:
        tf.config.threading.set_intra_op_parallelism_threads(args.threads)
        tf.config.threading.set_inter_op_parallelism_threads(1 if args.threads <= 2 else 2)
    gpus = tf.config.list_physical_devices("GPU")
    policy = ("mixed_float16" if gpus else "mixed_bfloat16") if args.mixed_precision else "float32"
    keras.mixed_precision.set_global_policy(policy)
    model = FCRAlphaGAN(build_fcr_networks(VOXEL_PRESETS[args.preset], seed=0),
                        eg_steps=args.eg_steps, seed=0)
    precision = argparse.Namespace(mixed_precision=args.mixed_precision)
    adam = lambda: optimizers.for_precision(  # noqa: E731  (as the trainer builds them)
        optimizers.Adam(1e-4, beta_1=0.5, beta_2=0.9), precision)
    model.compile(e_optimizer=adam(), g_optimizer=adam(), d_optimizer=adam(),
                  c_optimizer=adam(), r_optimizer=adam(), jit_compile=args.jit)

    rng = np.random.default_rng(0)
    grid = model.spec.grid
    labels = np.where(rng.random((args.batch, *grid)) < 0.92, 0,
                      rng.integers(1, model.spec.num_classes, (args.batch, *grid)))
    real = tf.one_hot(labels, model.spec.num_classes)
    iterator = iter(tf.data.Dataset.from_tensors(real).repeat())
    model.make_train_function()
    train_function = model.train_function

    def log(message):
        print(message, file=sys.stderr, flush=True)

    times, others = [], 0.0
    for i in range(args.warmup + args.iters):
        busy0, own0 = _busy_seconds()
        start = time.perf_counter()
        logs = train_function(iterator)
        float(logs["recons_loss"])                       # wait for the step to finish
        seconds = time.perf_counter() - start
        log(f"  {'warm-up' if i < args.warmup else 'iter'} {i + 1}: {seconds:.3f} s")
        if i >= args.warmup:
            times.append(seconds)
            busy1, own1 = _busy_seconds()
            others += max(0.0, (busy1 - busy0) - (own1 - own0))

    gflop = phase1_gflop_per_sample(model)
    median = statistics.median(times) if times else float("nan")
    result = {
        "script": "bench_fcr", "preset": args.preset, "batch": args.batch,
        "eg_steps": args.eg_steps, "jit": args.jit, "policy": policy, "tf": tf.__version__,
        "keras": keras.__version__,
        "threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                    "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
                    "cpus": os.cpu_count(),
                    "TF_ENABLE_ONEDNN_OPTS": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "unset")},
        "params": {name: int(net.count_params()) for name, net in (
            ("encoder", model.encoder), ("generator", model.generator),
            ("discriminator", model.discriminator),
            ("code_discriminator", model.code_discriminator), ("refiner", model.refiner))},
        "s_per_iter": round(median, 3), "s_per_sample": round(median / args.batch, 4),
        "iters": len(times), "min_s": round(min(times), 3) if times else None,
        "gflop_per_sample": float(f"{gflop:.4g}"),
        "gflop_per_sample_original_schedule":
            float(f"{phase1_gflop_per_sample(model, 'original'):.4g}"),
        "gflops_achieved": float(f"{gflop * args.batch / median:.4g}"),
        # cores that other processes kept busy during the timed iterations (discard > ~0.1)
        "other_procs_cores": round(others / sum(times), 2) if times else None,
    }
    print(json.dumps(result), flush=True)
    return result


if __name__ == "__main__":
    main()
