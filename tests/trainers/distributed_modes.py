"""Trains every mode for a few steps across its phase / stage switches, as one of two workers
of a cluster (TF_CONFIG set by test_distributed_modes) or as one process over 2 logical CPUs
(`mirrored`), the reference the workers must equal at the same global batch.

  python distributed_modes.py RUN_DIR worker|mirrored [MODE ...]

Prints RUN <mode> <run folder> per mode, and (workers) SHARD <worker> <ids> for the examples
each worker keeps of three global batches of a Python generator's stream.
"""
import json
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
from tfgan3d import distribute  # noqa: E402

# A few steps of each mode: a stage / phase switch inside, a checkpoint at each phase's end.
MODES = {
    "pix2pix": dict(steps=4),
    # R, R (pretrain R), D (pretrain D), then R, R, D: a K_g = 2 / K_d = 1 cycle
    "simgan": dict(steps=6, pretrain_r_steps=2, pretrain_d_steps=1, k_g=2, k_d=1),
    "fcr_alphagan": dict(steps=4, phase2_start=3),
    # batch 4: two codes per replica for the unbiased MMD of the default recipe
    "sim2real": dict(stage1_steps=2, stage2_steps=2, batch_size=4),
}


def main():
    run_dir, role, *modes = sys.argv[1:]
    if role == "mirrored":
        distribute.split_cpu(2)
        strategy_name = "mirrored"
    else:
        strategy_name = "multi-worker"
        strategy = distribute.get_strategy(strategy_name, timeout=300)   # before TF starts
        shard_check(strategy)
    from tfgan3d.trainers import runner
    for mode in modes or MODES:
        options = dict(preset="tiny", run_dir=run_dir, strategy=strategy_name,
                       deterministic=True, checkpoint_every=2, log_every=2, sample_every=2,
                       **MODES[mode])
        run = runner.run_mode(mode, options)
        print("RUN", mode, run.path, flush=True)


def shard_check(strategy):
    """The examples worker w keeps of global batches of 4 drawn from a generator (a source
    TensorFlow's auto-sharding cannot split)."""
    import tensorflow as tf
    dataset = tf.data.Dataset.from_generator(
        lambda: iter(range(1000)), output_signature=tf.TensorSpec([], tf.int64)).batch(4)
    kept = []
    iterator = iter(distribute.shard_for_workers(strategy, dataset))
    for _ in range(3):
        local = strategy.experimental_local_results(next(iterator))
        kept += [int(v) for t in local for v in t.numpy()]
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    print("SHARD", index, " ".join(map(str, kept)), flush=True)


if __name__ == "__main__":
    main()
