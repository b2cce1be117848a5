"""Training machinery shared by every mode: run folders, checkpoints, logs, the fit loop.

A run folder `<run_dir>/<NNNNN>-<mode>-<preset>[-name]/` holds
  config.json         the complete resolved config
  checkpoints/        tf.train.Checkpoint files (weights, optimizer states, iteration counter)
  losses.csv          one row per `log_every` iterations: step, wall time, learning rate, losses
  tensorboard/        scalars and image summaries
  samples/            sample outputs written by the mode (PNG, .npy)
Run folders are numbered and never overwritten; `--resume` reopens one.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfgan3d import config as config_lib
from tfgan3d import distribute
from tfgan3d import io as tfgan3d_io
from tfgan3d import registry


class RunError(RuntimeError):
    """A run that cannot start or had to stop; the message says why."""


class WorkerLostError(RunError):
    """A worker of a multi-worker run stopped answering (killed, preempted, unreachable)."""

    def __init__(self, run: "Run", err: Exception):
        from tfgan3d import cli
        first = cli.one_line(err)[:200]
        newest = newest_good_checkpoint(run.checkpoint_dir, warn=False) if run.chief else None
        where = (f"the newest whole checkpoint is {newest}" if newest else
                 "no checkpoint was saved yet" if run.chief else
                 "the chief's run folder holds the newest checkpoint")
        super().__init__(
            f"worker {distribute.worker(run.strategy)[0]} stopped at step "
            f"{int(run.step.numpy())}: another worker of the cluster stopped answering "
            f"({type(err).__name__}: {first}); {where}; relaunch every worker with the same "
            f"command and --resume latest (or the run folder) to continue from it")


class NonFiniteLossError(RunError):
    """A loss, or a weight (batch-norm statistics included), became NaN or Inf."""


# ----------------------------------------------------------------------------- run folders

@dataclasses.dataclass
class Run:
    """A run folder and the objects every mode needs while training."""

    path: Path
    config: config_lib.TrainConfig
    strategy: tf.distribute.Strategy
    resumed: bool = False
    chief: bool = True
    # The iteration counter and checkpoint of the run, shared by the phases of a mode.
    step: tf.Variable | None = None
    checkpoint: tf.train.Checkpoint | None = None
    started: float = dataclasses.field(default_factory=time.time)
    # A resumed run's overrides {field: (config.json value, new value)}, saved once restored.
    overrides: dict = dataclasses.field(default_factory=dict)

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    @property
    def samples_dir(self) -> Path:
        return self.path / "samples"

    @property
    def tensorboard_dir(self) -> Path:
        return self.path / "tensorboard"


_RUN_RE = re.compile(r"^(\d{5})-")


def _new_run_folder(config: config_lib.TrainConfig) -> Path:
    parent = Path(config.run_dir)
    try:
        parent.mkdir(parents=True, exist_ok=True)
        if not os.access(parent, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied", str(parent))
    except OSError as e:         # a file in the way, no permission, a read-only disk
        found = ("a file" if parent.is_file() else "a folder it cannot write to"
                 if parent.is_dir() else "a path it cannot make")
        raise RunError(f"--run-dir {parent}: expected a folder where run folders can be "
                       f"made, found {found} ({e.strerror or e}"
                       f"{': ' + str(e.filename) if e.filename else ''})") from None
    suffix = f"{config.mode}-{config.preset}" + (f"-{config.run_name}" if config.run_name else "")
    while True:
        numbers = [int(m.group(1)) for p in parent.iterdir() if (m := _RUN_RE.match(p.name))]
        path = parent / f"{max(numbers, default=0) + 1:05d}-{suffix}"
        try:
            path.mkdir()            # fails if a concurrent run took the number: try the next
            return path
        except FileExistsError:
            continue


def has_started(path: Path) -> bool:
    """Whether a run folder holds trained work (a checkpoint or logged rows), as opposed to a
    start that failed before its first iteration."""
    ckpts = Path(path) / "checkpoints"
    return bool(list(ckpts.glob("ckpt-*.index")) or list(ckpts.glob("ckpt-*.data-*"))) or \
        (Path(path) / "losses.csv").is_file()


def find_run(run_dir: str | Path, mode: str, which: str) -> Path:
    """The run folder named by --resume: 'latest' (newest run of `mode` that trained at least
    one logged iteration; folders of failed starts are passed over) or a path."""
    if which != "latest":
        path = Path(which)
        if not (path / "config.json").is_file():
            raise RunError(f"--resume {which}: expected a run folder, found no config.json in it")
        return path
    parent = Path(run_dir)
    runs = sorted(p for p in parent.glob(f"*-{mode}-*") if _RUN_RE.match(p.name)
                  and (p / "config.json").is_file()) if parent.is_dir() else []
    started = [p for p in runs if has_started(p)]
    if not started:
        raise RunError(f"--resume latest: expected a {mode} run with a checkpoint or logged "
                       f"rows under {parent}, found "
                       f"{'none' if not runs else f'{len(runs)} that never started'}")
    return started[-1]


def write_atomic(path: Path, data: bytes | str) -> None:
    """Writes `data` to a temporary name beside `path`, then renames it over `path`."""
    tfgan3d_io.atomic_write(path, data)


def write_sample_grid(run: Run, step: int, grid, title: str, suffix: str = "") -> None:
    """A uint8 (H, W, C) sample grid: samples/step_STEP[_SUFFIX].png, written atomically, and
    the same image in TensorBoard under `title` (inside the run's summary writer)."""
    name = f"step_{step:07d}{'_' + suffix if suffix else ''}.png"
    write_atomic(run.samples_dir / name, tf.io.encode_png(grid).numpy())
    tf.summary.image(title, grid[None], max_outputs=1)


def write_json_atomic(path: Path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _changed_options(base: dict | None, config) -> dict:
    """{field: (value in the run's config.json, value now)} for a resumed run's overrides."""
    if base is None:
        return {}
    now = config.to_dict()
    return {k: (base[k], now[k]) for k in now
            if k in base and k not in ("resume", "dry_run") and
            json.dumps(base[k]) != json.dumps(now[k])}


def run_mode(mode: str, options: dict):
    """Resolves the config of `mode` from command-line `options` and trains it.

    Returns the Run (None for --dry-run). Also the entry point that tests call.

    A new run's folder is removed again when the start fails before anything was trained
    (bad data found while the mode prepares it), so failed starts leave no folder behind. A
    resumed run's config.json is rewritten (with any overrides) only after its checkpoint
    restored (see `restore`).
    """
    mode_def = registry.get_mode(mode)
    base = None
    run_path = None
    if options.get("resume"):
        run_path = find_run(options.get("run_dir", "runs"), mode, options["resume"])
        base = config_lib.load_config_json(run_path)
        if base.get("mode") != mode:
            raise RunError(f"--resume {run_path}: that run is mode {base.get('mode')!r}, "
                           f"not {mode!r}")
        base = {k: v for k, v in base.items() if k not in ("resume", "dry_run")}
    config = config_lib.resolve_config(mode_def.config, mode, options, base)
    print(config.to_json(), flush=True)
    if config.dry_run:
        return None
    if config.mixed_precision:
        gpus = tf.config.list_physical_devices("GPU")
        keras.mixed_precision.set_global_policy("mixed_float16" if gpus else "mixed_bfloat16")
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = distribute.get_strategy(config.strategy, timeout=config.worker_timeout)
    chief = distribute.is_chief(strategy)
    print(distribute.describe(strategy), flush=True)
    if distribute.worker(strategy)[1] > 1 and not config.deterministic:
        # Each worker keeps its share of every global batch of a stream that all of them
        # build: the streams must be alike (seeded shuffles, ordered parallel reads).
        config.deterministic = True
        tf.config.experimental.enable_op_determinism()
        print("several workers: --deterministic on (each worker keeps its share of one "
              "stream that every worker builds alike)", flush=True)
    created = run_path is None and chief
    scratch = None
    if not chief:
        # Another worker writes nowhere a user looks: its own temporary folder, removed at
        # the end; resuming, it restores from the chief's newest whole checkpoint.
        index = distribute.worker(strategy)[0]
        scratch = Path(tempfile.mkdtemp(prefix=f"tfgan3d-worker{index}-"))
        if run_path is not None:
            _copy_newest_checkpoint(run_path / "checkpoints", scratch / "checkpoints")
        run_path = scratch
    elif run_path is None:
        run_path = _new_run_folder(config)
    run_path.mkdir(parents=True, exist_ok=True)
    run = Run(path=run_path, config=config, strategy=strategy, resumed=base is not None,
              chief=chief, overrides=_changed_options(base, config))
    if chief and not run.resumed:
        write_json_atomic(run.path / "config.json", config.to_dict())
    print(f"run folder: {run.path}  (replicas: {strategy.num_replicas_in_sync})", flush=True)
    try:
        mode_def.train(config, run)
    except BaseException:
        if created and not has_started(run.path):
            shutil.rmtree(run.path, ignore_errors=True)
            print(f"removed {run.path}: the run failed before its first iteration", flush=True)
        raise
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return run


def _copy_newest_checkpoint(source: Path, target: Path) -> None:
    """Copies the files of the newest whole checkpoint in `source` (the chief's) into
    `target`, where a worker other than the chief restores it from."""
    target.mkdir(parents=True, exist_ok=True)
    if not source.is_dir():
        return
    prefix = newest_good_checkpoint(source, warn=False)
    if prefix is not None:
        for path in Path(prefix).parent.glob(Path(prefix).name + ".*"):
            shutil.copy2(path, target / path.name)


# ----------------------------------------------------------------------------- learning rates

def current_lr(optimizer) -> float:
    lr = optimizer.learning_rate
    return float(lr.numpy() if hasattr(lr, "numpy") else lr)


# ----------------------------------------------------------------------------- the fit loop

def check_batch_size(batch_size: int, examples: int | None, flag: str = "--batch-size") -> None:
    """Raises RunError when a batch is larger than the `examples` of the training set (each
    batch would repeat examples): every mode refuses it in these words."""
    if examples and batch_size > examples:
        raise RunError(f"{flag} {batch_size}: expected at most the {examples} "
                       f"training examples of the data set, found more")


def total_steps(config: config_lib.TrainConfig, examples: int | None, default: int) -> int:
    """Training iterations from --steps, or --epochs over `examples` training examples.

    Raises:
        RunError: --batch-size larger than the `examples` of the training set.
    """
    check_batch_size(config.batch_size, examples)
    if config.steps is not None:
        return config.steps
    if config.epochs is not None:
        if not examples:
            raise RunError("--epochs needs a data set of known size; give --steps instead")
        return max(1, math.ceil(config.epochs * examples / config.batch_size))
    return default


class RunMonitor(keras.callbacks.Callback):
    """Counts iterations; stops on NaN/Inf; checkpoints, logs and samples at their intervals.

    It only observes the model and writes under the run folder. Order at each iteration:
    the finiteness check comes first, so a checkpoint never holds weights updated by a step
    whose loss was not finite.
    """

    def __init__(self, run: Run, checkpoint: tf.train.Checkpoint, step: tf.Variable,
                 total: int, optimizers: dict, sample_fn=None, phase_end=None):
        super().__init__()
        cfg = run.config
        self.run, self.step, self.total = run, step, total
        self.optimizers = optimizers
        self.sample_fn = sample_fn
        self.phase_end = phase_end
        self.manager = tf.train.CheckpointManager(
            checkpoint, str(run.checkpoint_dir), max_to_keep=cfg.keep_checkpoints,
            step_counter=step)
        self.every = {"checkpoint": cfg.checkpoint_every, "log": cfg.log_every,
                      "sample": cfg.sample_every}
        self.saved: set[int] = set()
        self.notice = None                  # the SIGTERM watch while keras fit runs
        self.terminated_at = None
        self.csv_path = run.path / "losses.csv"
        self.writer = tf.summary.create_file_writer(str(run.tensorboard_dir)) if run.chief \
            else tf.summary.create_noop_writer()
        self.columns = None

    def _row(self, logs: dict) -> dict:
        row = {"step": int(self.step.numpy()), "time_s": round(time.time() - self.run.started, 3)}
        row.update({f"lr_{k}": f"{current_lr(o):.6g}" for k, o in self.optimizers.items()})
        row.update({k: f"{float(v):.6g}" for k, v in sorted(logs.items())})
        return row

    def _append_csv(self, row: dict) -> None:
        """Appends a row; a phase that logs new columns widens the file's header."""
        if not self.run.chief:
            return
        if self.columns is None:
            old = self.csv_path.read_text().splitlines() if self.csv_path.exists() else []
            header = old[0].split(",") if old else []
            self.columns = header + [c for c in row if c not in header]
            if self.columns != header:
                pad = "," * (len(self.columns) - len(header))
                write_atomic(self.csv_path, "\n".join(
                    [",".join(self.columns)] + [line + pad for line in old[1:]]) + "\n")
        with self.csv_path.open("a") as f:
            f.write(",".join(str(row.get(c, "")) for c in self.columns) + "\n")

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        step = int(self.step.assign_add(1).numpy())
        for name, value in logs.items():
            if not np.all(np.isfinite(np.asarray(value, dtype=np.float64))):
                last = self.manager.latest_checkpoint or "none yet"
                raise NonFiniteLossError(
                    f"loss {name!r} is {float(value)} at step {step}; stopping. The last good "
                    f"checkpoint ({last}) is kept; resume from it with a lower learning rate "
                    f"or --mixed-precision off.")
        if step % self.every["log"] == 0 or step == self.total:
            row = self._row(logs)
            self._append_csv(row)
            with self.writer.as_default(step=step):
                for k, v in row.items():
                    if k not in ("step", "time_s"):
                        tf.summary.scalar(k, float(v))
            self.writer.flush()
        if step == self.total and self.phase_end is not None:
            self.phase_end()        # e.g. precise batch norm, stored by the save below
        if step % self.every["checkpoint"] == 0 or step == self.total:
            self.save()
        if self.sample_fn is not None and self.run.chief and (
                step % self.every["sample"] == 0 or step == self.total):
            with self.writer.as_default(step=step):
                self.sample_fn(step)
            self.writer.flush()
        if self.notice is not None and self.notice.received():
            self.save()                     # every worker at the same step (see distribute)
            self.terminated_at = step
            self.model.stop_training = True
        if step >= self.total:
            self.model.stop_training = True

    def on_train_begin(self, logs=None):
        self.notice = distribute.TerminationNotice(self.run.strategy)

    def on_train_end(self, logs=None):
        if self.notice is not None:
            self.notice.close()

    def non_finite(self) -> list[str]:
        """Names of the model's and optimizers' float variables (trainable or not: batch-norm
        moving statistics, history buffers) that hold NaN or Inf."""
        variables = list(self.model.variables)
        for opt in self.optimizers.values():
            variables += list(getattr(opt, "variables", []))
        bad = []
        for v in variables:
            if tf.as_dtype(v.dtype).is_floating and \
                    not bool(tf.reduce_all(tf.math.is_finite(tf.convert_to_tensor(v)))):
                bad.append(getattr(v, "path", None) or v.name)
        return bad

    def save(self) -> None:
        """Saves a checkpoint at the current step, once every weight is checked to be finite;
        a non-finite weight stops the run and the last good checkpoint stays the newest."""
        step = int(self.step.numpy())
        # Skipped only for a checkpoint of this step that is on disk and whole (saved at the
        # step's interval just before the run's closing save, or the restored one of a run
        # with nothing left to do), never on the word of the `checkpoint` state file.
        prefix = self.run.checkpoint_dir / f"ckpt-{step}"
        if step in self.saved or (Path(f"{prefix}.index").exists()
                                  and verify_checkpoint(prefix) is None):
            return
        if step in checkpoint_numbers(self.run.checkpoint_dir):
            moved = set_aside(self.run.checkpoint_dir, step)
            print(f"moved the damaged checkpoint ckpt-{step} to {moved}", flush=True)
        bad = self.non_finite()
        if bad:
            last = self.manager.latest_checkpoint or "none yet"
            raise NonFiniteLossError(
                f"weights are NaN or Inf at step {step} ({len(bad)} tensors, e.g. "
                f"{', '.join(bad[:3])}); stopping without saving. The last good checkpoint "
                f"({last}) is kept; resume from it with a lower learning rate.")
        self.manager.save(checkpoint_number=step)
        self.saved.add(step)


def truncate_csv(path: Path, step: int) -> None:
    """Drops log rows past `step`: iterations after the last checkpoint that a resume redoes."""
    if not path.exists():
        return
    lines = path.read_text().splitlines()
    kept = lines[:1] + [l for l in lines[1:] if l and int(l.split(",", 1)[0]) <= step]
    write_atomic(path, "\n".join(kept) + "\n")


def truncate_tensorboard(folder: Path, step: int) -> None:
    """Drops TensorBoard events past `step` from every event file in `folder` (each file
    rewritten to a temporary name and renamed), so that the steps a resume redoes appear once.
    A record torn by a kill ends its file."""
    from tensorflow.core.util import event_pb2
    for path in sorted(Path(folder).glob("events.out.tfevents.*")):
        kept, dropped = [], 0
        try:
            for record in tf.data.TFRecordDataset(str(path)):
                event = event_pb2.Event.FromString(record.numpy())
                if event.step > step and not event.HasField("file_version"):
                    dropped += 1
                else:
                    kept.append(record.numpy())
        except tf.errors.DataLossError:
            dropped += 1
        if not dropped:
            continue
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for record in kept:
                writer.write(record)
        os.replace(tmp, path)


_CKPT_RE = re.compile(r"^ckpt-(\d+)(?:\.index|\.data-\d+-of-\d+)$")


def checkpoint_numbers(folder: Path) -> list[int]:
    """Numbers of the checkpoints in `folder` (index or data files present), newest first.
    Read from the files, not from the `checkpoint` state file, which a kill can lose."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted({int(m.group(1)) for p in folder.iterdir() if (m := _CKPT_RE.match(p.name))},
                  reverse=True)


def verify_checkpoint(prefix: str | Path) -> str | None:
    """None when checkpoint `prefix` is whole (index present, every tensor readable, each
    checksum right, every float value finite); else why not, in a few words."""
    prefix = str(prefix)
    if not Path(prefix + ".index").is_file():
        return "its .index file is missing"
    if not list(Path(prefix).parent.glob(Path(prefix).name + ".data-*")):
        return "its data file is missing"
    try:
        reader = tf.train.load_checkpoint(prefix)
        for key, dtype in reader.get_variable_to_dtype_map().items():
            value = reader.get_tensor(key)
            if dtype.is_floating and not np.all(np.isfinite(np.asarray(value, np.float64))):
                return f"{key.split('/.ATTRIBUTES')[0]} holds NaN or Inf"
    except Exception as err:        # noqa: BLE001 - any failure to read means damaged
        return f"unreadable ({str(err).splitlines()[0][:160]})"
    return None


def newest_good_checkpoint(folder: Path, warn=True, passed_over: list | None = None) -> str | None:
    """The prefix of the newest checkpoint in `folder` that `verify_checkpoint` accepts (a
    warning names each newer one passed over, and their numbers are appended to
    `passed_over` when given), or None when there is none.

    Raises:
        RunError: the folder has checkpoints but none of them can be read.
    """
    numbers = checkpoint_numbers(folder)
    skipped = []
    for n in numbers:
        prefix = str(Path(folder) / f"ckpt-{n}")
        why = verify_checkpoint(prefix)
        if why is None:
            return prefix
        skipped.append(f"ckpt-{n}: {why}")
        if passed_over is not None:
            passed_over.append(n)
        if warn:
            print(f"warning: skipping checkpoint {prefix}: {why}", file=sys.stderr, flush=True)
    if numbers:
        raise RunError(f"{folder}: expected a readable checkpoint, found none of "
                       f"{len(numbers)} ({'; '.join(skipped)}); nothing was changed")
    return None


def set_aside(folder: Path, number: int) -> Path | None:
    """Moves the files of checkpoint `ckpt-<number>` (index, data shards) into a new folder
    `ckpt-<number>.damaged/` (`.damaged-2/`, ... when that exists), so that a save at the same
    step cannot overwrite them and nothing is deleted. Returns the folder, or None when the
    checkpoint has no files left."""
    folder = Path(folder)
    files = [p for p in folder.iterdir()
             if (m := _CKPT_RE.match(p.name)) and int(m.group(1)) == number]
    if not files:
        return None
    target, k = folder / f"ckpt-{number}.damaged", 1
    while target.exists():
        k += 1
        target = folder / f"ckpt-{number}.damaged-{k}"
    tmp = folder / f".{target.name}.tmp-{os.getpid()}"
    tmp.mkdir()
    for path in files:
        os.replace(path, tmp / path.name)
    os.replace(tmp, target)
    return target


def write_checkpoint_state(folder: Path) -> None:
    """Rewrites the `checkpoint` state file from the checkpoints on disk (newest last), so
    that it never names a checkpoint that was set aside or lost."""
    numbers = sorted(checkpoint_numbers(folder))
    if not numbers:
        (Path(folder) / "checkpoint").unlink(missing_ok=True)
        return
    paths = [str(Path(folder) / f"ckpt-{n}") for n in numbers]
    tf.compat.v1.train.update_checkpoint_state(
        str(folder), paths[-1], all_model_checkpoint_paths=paths,
        all_model_checkpoint_timestamps=[Path(p + ".index").stat().st_mtime
                                         if Path(p + ".index").exists() else time.time()
                                         for p in paths])


def clean_temp_checkpoints(folder: Path) -> None:
    """Removes `ckpt-N_temp/` folders that a kill during a save left behind."""
    for path in Path(folder).glob("*_temp"):
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            print(f"removed {path}: an unfinished checkpoint save", flush=True)


def _last_time(csv_path: Path, step: int) -> float:
    """time_s of the last logged row at or before `step` (0 without one)."""
    if not csv_path.exists():
        return 0.0
    lines = csv_path.read_text().splitlines()
    if not lines or "time_s" not in lines[0].split(","):
        return 0.0
    col = lines[0].split(",").index("time_s")
    times = [float(l.split(",")[col]) for l in lines[1:]
             if l and int(l.split(",", 1)[0]) <= step and l.split(",")[col]]
    return times[-1] if times else 0.0


def restore(run: Run, model: keras.Model, optimizers: dict, extra_state: dict | None = None) -> int:
    """Creates the run's checkpoint (model networks, every optimizer, the iteration counter,
    any extra trackable state such as a history buffer) and, for a resumed run, restores the
    newest checkpoint that is whole and holds finite values, passing over (with a warning)
    newer ones that are damaged. Returns the iteration to continue from. Idempotent: a mode
    with several phases calls it first to learn where a resumed run stands.

    Only once a checkpoint restored does a resumed run change its folder: config.json with
    the overrides, losses.csv and TensorBoard cut back to the restored step, unfinished saves
    removed.

    Raises:
        RunError: the run has checkpoints but none restores (nothing is changed then), or an
            override changed the networks' shapes.
    """
    if run.checkpoint is not None:
        return int(run.step.numpy())
    run.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="iteration")
    parts = dict(step=run.step, model=model, **{f"opt_{k}": o for k, o in optimizers.items()},
                 **(extra_state or {}))
    # The random streams of the networks (dropout, sampling): Keras' seed generators are not
    # tracked by their layers, so they are saved here, for an exact resume.
    rng = [v for v in model.variables if "seed_generator_state" in getattr(v, "path", v.name)]
    run.checkpoint = tf.train.Checkpoint(**parts, **({"rng": rng} if rng else {}))
    if not run.resumed:
        return 0
    passed_over: list[int] = []
    latest = newest_good_checkpoint(run.checkpoint_dir, passed_over=passed_over)
    if latest is not None:
        reader = tf.train.load_checkpoint(latest)
        has_rng = any(k.startswith("rng/") for k in reader.get_variable_to_shape_map())
        # A checkpoint written before the random streams were saved restores without them.
        source = run.checkpoint if has_rng or not rng else tf.train.Checkpoint(**parts)
        try:
            source.restore(latest).assert_existing_objects_matched()
        except (ValueError, AssertionError, tf.errors.OpError) as err:
            changed = ", ".join(f"--{k.replace('_', '-')} {new} (was {old})"
                                for k, (old, new) in run.overrides.items())
            first = str(err).splitlines()[0][:240]
            raise RunError(
                f"{latest}: the checkpoint does not fit the networks built from this config "
                f"({first})" + (f"; the overrides {changed} cannot change a trained run's "
                                f"networks: start a new run" if changed else "") +
                "; nothing was changed") from None
        print(f"resumed from {latest} at step {int(run.step.numpy())}", flush=True)
    start = int(run.step.numpy())
    if run.chief:
        if run.overrides or not (run.path / "config.json").exists():
            write_json_atomic(run.path / "config.json", run.config.to_dict())
        clean_temp_checkpoints(run.checkpoint_dir)
        # The damaged checkpoints passed over are kept, out of the way of the saves that will
        # redo their steps, and the state file names what restored (a stale one naming the
        # damaged newest made the saver skip that step: its training was never saved).
        for n in passed_over:
            moved = set_aside(run.checkpoint_dir, n)
            if moved is not None:
                print(f"moved the damaged checkpoint ckpt-{n} to {moved}", flush=True)
        if passed_over or latest is not None:
            write_checkpoint_state(run.checkpoint_dir)
        truncate_csv(run.path / "losses.csv", start)
        truncate_tensorboard(run.tensorboard_dir, start)
        run.started = time.time() - _last_time(run.path / "losses.csv", start)
    return start


def fit(model: keras.Model, dataset: tf.data.Dataset, run: Run, *, total: int,
        optimizers: dict, sample_fn=None, extra_state: dict | None = None,
        begin: int = 0, phase_end=None) -> dict:
    """Trains `model` with keras fit up to iteration `total` (counted over the whole run).

    The first call restores a resumed run (see `restore`); a mode with phases calls fit once
    per phase with that phase's end as `total` and its first iteration as `begin` (where
    `dataset` starts). `dataset` must repeat indefinitely; with --deterministic it must be a
    function of its position, and a resumed run skips the batches before its step. Keras
    epochs are blocks of `log_every` iterations, so the progress bar and the loss trackers
    restart with each CSV row. `phase_end()`, when given, runs after the last iteration,
    before its checkpoint is saved (precise batch norm). Returns the last logs.
    """
    cfg = run.config
    if getattr(cfg, "sync_bn", False) and not getattr(model, "_sync_bn_done", False):
        from tfgan3d.layers.normalization import synchronize_batch_norm
        changed = synchronize_batch_norm(model)
        model._sync_bn_done = True
        print(f"--sync-bn: {changed} batch-norm layers take their statistics over the global "
              f"batch of {run.strategy.num_replicas_in_sync} replica(s)" if changed else
              "note: --sync-bn has no effect: the networks have no batch norm", flush=True)
    start = restore(run, model, optimizers, extra_state)
    truncate_csv(run.path / "losses.csv", start)
    if start >= total:
        print(f"nothing to do: the run is at step {start} of {total}", flush=True)
        return {}
    if cfg.deterministic and start > begin:
        # The stream is a function of its position (seeded shuffle and augmentation): a
        # resumed run replays it up to where the checkpoint stood, so that it sees the
        # batches an uninterrupted run would.
        dataset = dataset.skip(start - begin)
    monitor = RunMonitor(run, run.checkpoint, run.step, total, optimizers, sample_fn,
                         phase_end)
    if distribute.worker(run.strategy)[1] > 1:
        dataset = distribute.shard_for_workers(run.strategy, dataset)
    block = cfg.log_every
    epochs = math.ceil((total - start) / block)
    verbose = 1 if sys.stdout.isatty() else 2
    try:
        history = model.fit(dataset, epochs=epochs, steps_per_epoch=block,
                            callbacks=[monitor], verbose=verbose, shuffle=False)
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
            tf.errors.CancelledError) as err:
        if distribute.worker(run.strategy)[1] == 1:
            raise
        raise WorkerLostError(run, err) from None
    finally:
        if monitor.notice is not None:      # SIGTERM's own handler back, whatever happened
            monitor.notice.close()
    monitor.save()
    if monitor.terminated_at is not None:
        where = (f"saved {run.checkpoint_dir / f'ckpt-{monitor.terminated_at}'}" if run.chief
                 else "the chief saved its checkpoint")
        raise RunError(f"stopped at step {monitor.terminated_at} on a termination notice "
                       f"(SIGTERM); {where}; relaunch with --resume latest (or the run "
                       f"folder) to continue from it")
    return {k: v[-1] for k, v in history.history.items()}
