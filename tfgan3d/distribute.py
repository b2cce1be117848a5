"""tf.distribute strategy from the --strategy flag or TF_CONFIG.

  one           one device: the first GPU, else the CPU
  mirrored      MirroredStrategy over all visible GPUs (over the logical CPUs when there is
                no GPU and the CPU was split with `split_cpu`)
  multi-worker  MultiWorkerMirroredStrategy; the cluster comes from the TF_CONFIG variable
  auto          multi-worker when TF_CONFIG names a cluster, mirrored with several GPUs,
                else one device

Several workers (MultiWorkerMirroredStrategy). Every worker runs the same command with its own
TF_CONFIG task; worker 0 (or the "chief" task) is the chief. The chief alone writes the run
folder (config, CSV, TensorBoard, samples, checkpoints); another worker saves its checkpoints
(every worker must take part in a save) to a temporary folder of its own, removed when it
ends, and on --resume restores from the chief's newest whole checkpoint, so the run folder
must be on a file system every worker sees to resume. Input: Keras hands the dataset to the
strategy, whose auto-sharding gives each worker its own files when the source is files
(TFRecords) and otherwise its own slices of each global batch; for the latter every worker
builds the same stream, which is why a multi-worker run makes its data deterministic (see
trainers/runner.py). A worker that dies leaves the others waiting in a collective: each
collective gives up after --worker-timeout seconds, and TensorFlow's health check of the
peers (every 30 s) aborts them sooner; the run then stops with an error naming the newest
checkpoint, and the cluster is relaunched with --resume.
"""
import json
import os
import signal
import sys
import threading

import tensorflow as tf

STRATEGIES = ("auto", "one", "mirrored", "multi-worker")
_CREATED: dict = {}


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


def get_strategy(name: str = "auto", timeout: float | None = None) -> tf.distribute.Strategy:
    """Returns the strategy for `name` (one of STRATEGIES). `timeout`: seconds after which a
    collective of a multi-worker strategy raises DeadlineExceededError (None or 0: never)."""
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
        # One per process: TensorFlow sets up the cluster's collectives once, so later runs
        # in the same process (tests, notebooks) share it.
        if "multi-worker" not in _CREATED:
            options = tf.distribute.experimental.CommunicationOptions(
                timeout_seconds=float(timeout) if timeout else None)
            _CREATED["multi-worker"] = tf.distribute.MultiWorkerMirroredStrategy(
                communication_options=options)
        return _CREATED["multi-worker"]
    gpus = tf.config.list_logical_devices("GPU")
    cpus = tf.config.list_logical_devices("CPU")
    if name == "auto":
        name = "mirrored" if len(gpus) > 1 else "one"
    if name == "one":
        return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else cpus[0].name)
    devices = tuple(d.name for d in gpus) if gpus else tuple(d.name for d in cpus)
    # One per device set and process: a second MirroredStrategy numbers its collectives from
    # the same keys as the first, and a later run in the same process (tests, notebooks)
    # then fails with "Shape mismatch in the collective instance".
    if devices not in _CREATED:
        _CREATED[devices] = tf.distribute.MirroredStrategy(list(devices))
    return _CREATED[devices]


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True on the worker that writes checkpoints, logs and samples (task 0, or no cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    return resolver.task_type in (None, "chief") or (
        resolver.task_type == "worker" and resolver.task_id == 0
        and "chief" not in resolver.cluster_spec().as_dict())


def worker(strategy: tf.distribute.Strategy) -> tuple[int, int]:
    """(index of this worker, number of workers): (0, 1) without a cluster. Workers are
    counted in the cluster's order: the chief task first, then the workers."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return 0, 1
    spec = resolver.cluster_spec().as_dict()
    chiefs = len(spec.get("chief", []))
    index = resolver.task_id if resolver.task_type == "chief" else chiefs + resolver.task_id
    return index, chiefs + len(spec.get("worker", []))


def describe(strategy: tf.distribute.Strategy) -> str:
    """One line for the log: which worker this is and what it writes."""
    index, count = worker(strategy)
    replicas = strategy.num_replicas_in_sync
    if count == 1:
        return f"{type(strategy).__name__}: 1 process, {replicas} replica(s)"
    resolver = strategy.cluster_resolver
    task = f"{resolver.task_type}:{resolver.task_id}"
    role = ("the chief: writes the run folder" if is_chief(strategy) else
            "not the chief: writes only to a temporary folder, removed at the end")
    return f"worker {index} of {count} (TF_CONFIG task {task}), {replicas} replicas in all; {role}"


def shard_for_workers(strategy: tf.distribute.Strategy, dataset: tf.data.Dataset):
    """The distributed form of `dataset` (a stream of global batches) for a multi-worker
    strategy: each worker keeps its own share of every global batch.

    By element (the default): every worker builds the same stream (a multi-worker run is
    deterministic) and worker w of W keeps examples [w * B/W, (w+1) * B/W) of each global
    batch of B, split further among its own replicas; so the workers never train on the same
    examples of one global batch, and together they see the batch one process would. Done
    here rather than by TensorFlow's auto-sharding, which cannot rewrite every source (a
    Python generator's) and then gives every worker the same examples.
    By file: a dataset whose options set auto_shard_policy FILE (a mode reading many files)
    goes to TensorFlow's auto-sharding, which gives each worker its own files.
    """
    policy = dataset.options().experimental_distribute.auto_shard_policy
    if policy == tf.data.experimental.AutoShardPolicy.FILE:
        return strategy.experimental_distribute_dataset(dataset)
    static = [s for s in tf.nest.flatten(tf.nest.map_structure(
        lambda spec: spec.shape[0] if spec.shape.rank else None, dataset.element_spec))]
    known = {int(s) for s in static if s is not None}
    replicas = strategy.num_replicas_in_sync
    if any(n % replicas for n in known):
        raise ValueError(f"the global batch of {sorted(known)[0]} examples does not split "
                         f"evenly across the {replicas} replicas of the cluster: give a "
                         f"--batch-size that is a multiple of {replicas}")

    def per_worker(context: tf.distribute.InputContext) -> tf.data.Dataset:
        index, count = context.input_pipeline_id, context.num_input_pipelines
        local = context.num_replicas_in_sync // count

        def share(batch):
            def cut(x):
                size = tf.shape(x)[0]
                tf.debugging.assert_equal(
                    size % replicas, 0, message=f"the global batch does not split evenly "
                    f"across the {replicas} replicas: give a --batch-size that is a multiple "
                    f"of {replicas}")
                n = size // count
                return x[index * n:(index + 1) * n]
            return tf.nest.map_structure(cut, batch)

        def split(batch):        # the worker's share -> one batch per local replica
            return tf.data.Dataset.from_tensor_slices(tf.nest.map_structure(
                lambda x: tf.reshape(x, tf.concat([[local, -1], tf.shape(x)[1:]], 0)), batch))

        mine = dataset.map(share)
        return mine.flat_map(split) if local > 1 else mine

    return strategy.distribute_datasets_from_function(per_worker)


class TerminationNotice:
    """Watches for SIGTERM, the notice a scheduler (Kubernetes, Slurm, a cloud's preemption)
    sends before it kills a process, so that training can save a checkpoint first.

    `received()` is asked once per step by every worker: with several workers their flags are
    summed across the cluster (one scalar all-reduce per step), so that all of them see the
    notice at the same step, save that step's checkpoint together and stop; one worker saving
    alone would leave the others waiting in the save's collectives. TensorFlow's own
    PreemptionCheckpointHandler follows the same protocol, but saves through a checkpoint
    manager of its own and restores when it is created, around the run's checkpoint checks
    and numbering (trainers/runner.py), so the run's monitor does it instead.
    """

    def __init__(self, strategy: tf.distribute.Strategy):
        self.strategy = strategy
        self.flag = False
        self.previous = None
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGTERM, self._note)

    def _note(self, signum, frame):
        self.flag = True
        print("termination notice (SIGTERM): saving a checkpoint after this step",
              file=sys.stderr, flush=True)

    def received(self) -> bool:
        if worker(self.strategy)[1] == 1:
            return self.flag
        flag = 1.0 if self.flag else 0.0
        mine = self.strategy.experimental_distribute_values_from_function(
            lambda context: tf.constant(flag))
        return float(self.strategy.reduce("SUM", mine, axis=None)) > 0

    def close(self) -> None:
        """Puts back the SIGTERM handler that was there before."""
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)
            self.previous = None
