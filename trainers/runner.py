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
import sys
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from tfgan3d import config as config_lib
from tfgan3d import distribute
from tfgan3d import registry


class RunError(RuntimeError):
    """A run that cannot start or had to stop; the message says why."""


class NonFiniteLossError(RunError):
    pass


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
    parent.mkdir(parents=True, exist_ok=True)
    suffix = f"{config.mode}-{config.preset}" + (f"-{config.run_name}" if config.run_name else "")
    while True:
        numbers = [int(m.group(1)) for p in parent.iterdir() if (m := _RUN_RE.match(p.name))]
        path = parent / f"{max(numbers, default=0) + 1:05d}-{suffix}"
        try:
            path.mkdir()            # fails if a concurrent run took the number: try the next
            return path
        except FileExistsError:
            continue


def find_run(run_dir: str | Path, mode: str, which: str) -> Path:
    """The run folder named by --resume: 'latest' (newest run of `mode`) or a path."""
    if which != "latest":
        path = Path(which)
        if not (path / "config.json").is_file():
            raise RunError(f"--resume {which}: not a run folder (no config.json in it)")
        return path
    parent = Path(run_dir)
    runs = sorted(p for p in parent.glob(f"*-{mode}-*") if _RUN_RE.match(p.name)
                  and (p / "config.json").is_file()) if parent.is_dir() else []
    if not runs:
        raise RunError(f"--resume latest: no {mode} run under {parent}")
    return runs[-1]


def write_atomic(path: Path, data: bytes | str) -> None:
    """Writes `data` to a temporary name beside `path`, then renames it over `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


def write_sample_grid(run: Run, step: int, grid, title: str, suffix: str = "") -> None:
    """A uint8 (H, W, C) sample grid: samples/step_STEP[_SUFFIX].png, written atomically, and
    the same image in TensorBoard under `title` (inside the run's summary writer)."""
    name = f"step_{step:07d}{'_' + suffix if suffix else ''}.png"
    write_atomic(run.samples_dir / name, tf.io.encode_png(grid).numpy())
    tf.summary.image(title, grid[None], max_outputs=1)


def write_json_atomic(path: Path, obj) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def run_mode(mode: str, options: dict):
    """Resolves the config of `mode` from command-line `options` and trains it.

    Returns the Run (None for --dry-run). Also the entry point that tests call.
    """
    module = registry.get_mode(mode)
    base = None
    run_path = None
    if options.get("resume"):
        run_path = find_run(options.get("run_dir", "runs"), mode, options["resume"])
        base = config_lib.load_config_json(run_path)
        if base.get("mode") != mode:
            raise RunError(f"--resume {run_path}: that run is mode {base.get('mode')!r}, "
                           f"not {mode!r}")
        base = {k: v for k, v in base.items() if k not in ("resume", "dry_run")}
    config = config_lib.resolve_config(module.CONFIG, mode, options, base)
    print(config.to_json(), flush=True)
    if config.dry_run:
        return None
    if config.mixed_precision:
        gpus = tf.config.list_physical_devices("GPU")
        keras.mixed_precision.set_global_policy("mixed_float16" if gpus else "mixed_bfloat16")
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    strategy = distribute.get_strategy(config.strategy)
    chief = distribute.is_chief(strategy)
    if run_path is None:
        run_path = _new_run_folder(config) if chief else Path(config.run_dir) / ".worker-tmp"
    run_path.mkdir(parents=True, exist_ok=True)
    run = Run(path=run_path, config=config, strategy=strategy, resumed=base is not None,
              chief=chief)
    if chief:
        write_json_atomic(run.path / "config.json", config.to_dict())
    print(f"run folder: {run.path}  (replicas: {strategy.num_replicas_in_sync})", flush=True)
    module.train(config, run)
    return run


# ----------------------------------------------------------------------------- schedules

@keras.saving.register_keras_serializable("tfgan3d")
class LinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Constant `initial` until `decay_start`, then linear to zero at `decay_end` (pix2pix's
    `niter` + `niter_decay` epochs, counted here in optimizer steps)."""

    def __init__(self, initial: float, decay_start: int, decay_end: int):
        if decay_end <= decay_start:
            raise ValueError(f"LinearDecay: decay_end ({decay_end}) must exceed decay_start "
                             f"({decay_start})")
        self.initial, self.decay_start, self.decay_end = initial, decay_start, decay_end

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        frac = (step - self.decay_start) / float(self.decay_end - self.decay_start)
        return self.initial * tf.clip_by_value(1.0 - frac, 0.0, 1.0)

    def get_config(self):
        return {"initial": self.initial, "decay_start": self.decay_start,
                "decay_end": self.decay_end}


def learning_rate(config: config_lib.TrainConfig, base_lr: float, total_steps: int,
                  steps_per_iteration: int = 1):
    """The learning rate (a float or a schedule) of one optimizer.

    Schedules are functions of the optimizer's own iteration counter, which checkpoints
    restore, so a resumed run continues on the same curve. `steps_per_iteration` converts
    training iterations to optimizer steps for optimizers stepped several times per iteration.
    """
    k = steps_per_iteration
    if config.lr_schedule == "constant":
        return base_lr
    if config.lr_schedule == "linear":
        start = int(round(config.lr_decay_start * total_steps)) * k
        return LinearDecay(base_lr, start, max(total_steps * k, start + 1))
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        [b * k for b in config.lr_boundaries], [base_lr * f for f in config.lr_factors])


def current_lr(optimizer) -> float:
    lr = optimizer.learning_rate
    return float(lr.numpy() if hasattr(lr, "numpy") else lr)


# ----------------------------------------------------------------------------- the fit loop

def total_steps(config: config_lib.TrainConfig, examples: int | None, default: int) -> int:
    """Training iterations from --steps, or --epochs over `examples` training examples."""
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
                 total: int, optimizers: dict, sample_fn=None):
        super().__init__()
        cfg = run.config
        self.run, self.step, self.total = run, step, total
        self.optimizers = optimizers
        self.sample_fn = sample_fn
        self.manager = tf.train.CheckpointManager(
            checkpoint, str(run.checkpoint_dir), max_to_keep=cfg.keep_checkpoints,
            step_counter=step)
        self.every = {"checkpoint": cfg.checkpoint_every, "log": cfg.log_every,
                      "sample": cfg.sample_every}
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
        if step % self.every["checkpoint"] == 0 or step == self.total:
            self.save()
        if self.sample_fn is not None and self.run.chief and (
                step % self.every["sample"] == 0 or step == self.total):
            with self.writer.as_default(step=step):
                self.sample_fn(step)
            self.writer.flush()
        if step >= self.total:
            self.model.stop_training = True

    def save(self) -> None:
        step = int(self.step.numpy())
        if self.manager.latest_checkpoint and self.manager.latest_checkpoint.endswith(f"-{step}"):
            return
        self.manager.save(checkpoint_number=step)


def truncate_csv(path: Path, step: int) -> None:
    """Drops log rows past `step`: iterations after the last checkpoint that a resume redoes."""
    if not path.exists():
        return
    lines = path.read_text().splitlines()
    kept = lines[:1] + [l for l in lines[1:] if l and int(l.split(",", 1)[0]) <= step]
    write_atomic(path, "\n".join(kept) + "\n")


def restore(run: Run, model: keras.Model, optimizers: dict, extra_state: dict | None = None) -> int:
    """Creates the run's checkpoint (model networks, every optimizer, the iteration counter,
    any extra trackable state such as a history buffer) and, for a resumed run, restores the
    newest checkpoint. Returns the iteration to continue from. Idempotent: a mode with several
    phases calls it first to learn where a resumed run stands."""
    if run.checkpoint is not None:
        return int(run.step.numpy())
    run.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="iteration")
    run.checkpoint = tf.train.Checkpoint(
        step=run.step, model=model, **{f"opt_{k}": o for k, o in optimizers.items()},
        **(extra_state or {}))
    latest = tf.train.latest_checkpoint(str(run.checkpoint_dir)) if run.resumed else None
    if latest is not None:
        run.checkpoint.restore(latest).assert_existing_objects_matched()
        print(f"resumed from {latest} at step {int(run.step.numpy())}", flush=True)
    return int(run.step.numpy())


def fit(model: keras.Model, dataset: tf.data.Dataset, run: Run, *, total: int,
        optimizers: dict, sample_fn=None, extra_state: dict | None = None) -> dict:
    """Trains `model` with keras fit up to iteration `total` (counted over the whole run).

    The first call restores a resumed run (see `restore`); a mode with phases calls fit once
    per phase with that phase's end as `total`. `dataset` must repeat indefinitely. Keras epochs are blocks of `log_every` iterations, so
    the progress bar and the loss trackers restart with each CSV row. Returns the last logs.
    """
    cfg = run.config
    start = restore(run, model, optimizers, extra_state)
    truncate_csv(run.path / "losses.csv", start)
    if start >= total:
        print(f"nothing to do: the run is at step {start} of {total}", flush=True)
        return {}
    monitor = RunMonitor(run, run.checkpoint, run.step, total, optimizers, sample_fn)
    block = cfg.log_every
    epochs = math.ceil((total - start) / block)
    verbose = 1 if sys.stdout.isatty() else 2
    history = model.fit(dataset, epochs=epochs, steps_per_epoch=block, callbacks=[monitor],
                        verbose=verbose, shuffle=False)
    monitor.save()
    return {k: v[-1] for k, v in history.history.items()}
