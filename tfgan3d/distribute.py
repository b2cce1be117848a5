"""tf.distribute strategy from the --strategy flag or TF_CONFIG.

  one           one device: the first GPU, else the CPU
  mirrored      MirroredStrategy over all visible GPUs (over the logical CPUs when there is
                no GPU and the CPU was split with `split_cpu`)
  multi-worker  MultiWorkerMirroredStrategy; the cluster comes from the TF_CONFIG variable
  auto          multi-worker when TF_CONFIG names a cluster, mirrored with several GPUs,
                else one device
"""
import json
import os

import tensorflow as tf

STRATEGIES = ("auto", "one", "mirrored", "multi-worker")


def split_cpu(n: int) -> None:
    """Splits the physical CPU into `n` logical devices; call before TensorFlow runs any op.

    Used to exercise MirroredStrategy on a machine without GPUs (tests, CI).
    """
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(n)])


def _tf_config_cluster() -> dict:
    raw = os.environ.get("TF_CONFIG", "")
    if not raw:
        return {}
    try:
        return json.loads(raw).get("cluster", {})
    except json.JSONDecodeError as err:
        raise ValueError(f"TF_CONFIG is not valid JSON ({err}): {raw[:200]!r}") from None


def get_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """Returns the strategy for `name` (one of STRATEGIES)."""
    if name not in STRATEGIES:
        raise ValueError(f"--strategy: expected one of {', '.join(STRATEGIES)}, got {name!r}")
    cluster = _tf_config_cluster()
    if name == "auto" and sum(len(v) for v in cluster.values()) > 1:
        name = "multi-worker"
    if name == "multi-worker":
        # Created before anything lists the logical devices: that starts TensorFlow's
        # context, after which the collective ops of a cluster can no longer be configured.
        if not cluster:
            raise ValueError("--strategy multi-worker needs the TF_CONFIG environment variable "
                             "with a 'cluster' and a 'task' (see README, 'Several machines')")
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "one"
    if name == "one":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else cpus[0].name)
    devices = [d.name for d in gpus] if gpus else [d.name for d in cpus]
    return tf.distribute.MirroredStrategy(devices)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes checkpoints, logs and samples (task 0, or no cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    return resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())
