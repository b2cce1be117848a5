"""What the fcr evaluation programs share: errors and progress lines, a run's config, model
and test scenes, batched encoding / decoding, and the command-line arguments they have in
common."""
from __future__ import annotations

import argparse
import dataclasses
import re
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from tfgan3d import config as config_lib
from tfgan3d.data import builtin, voxel_files
from tfgan3d import registry

MODE = "fcr_alphagan"


def _mode():
    return registry.get_mode(MODE)


class FCREvalError(ValueError):
    """A run, option or data set that this evaluation cannot use; the message says why."""


class Clock:
    """Progress lines "[fcr MODE  12.3 s] message" on stdout."""

    def __init__(self, mode):
        self.mode, self.t0 = mode, time.time()

    @property
    def seconds(self):
        return round(time.time() - self.t0, 2)

    def log(self, message):
        print(f"[fcr {self.mode} {time.time() - self.t0:7.1f} s] {message}", flush=True)


def positive(name, value, minimum=1):
    """`value`, or FCREvalError naming the option --name when it is below `minimum`."""
    if value is None or value < minimum:
        raise FCREvalError(f"--{name.replace('_', '-')}: expected >= {minimum}, got {value}")
    return value


# ----------------------------------------------------------------------------- runs and data

@dataclasses.dataclass
class Loaded:
    """A run's config and model with the weights of one checkpoint."""
    run: Path
    config: config_lib.TrainConfig
    model: object
    checkpoint: str
    step: int


def step_of(checkpoint):
    """The step N of a checkpoint prefix ".../ckpt-N", or None."""
    match = re.search(r"-(\d+)$", str(checkpoint))
    return int(match.group(1)) if match else None


def run_config(run_dir) -> config_lib.TrainConfig:
    """The resolved config of an fcr_alphagan run folder (raises FCREvalError for other modes)."""
    values = config_lib.load_config_json(run_dir)
    mode = values.pop("mode", None)
    if mode != MODE:
        raise FCREvalError(f"{run_dir}: a {mode!r} run; this evaluation needs an {MODE} run")
    return config_lib.resolve_config(_mode().config, MODE, values)


def load_run(run_dir, checkpoint=None) -> Loaded:
    """Config and model of an fcr_alphagan run, weights from `checkpoint` (default: newest)."""
    from tfgan3d.export import load_trained

    run_config(run_dir)                      # refuses other modes before building anything
    path = checkpoint or tf.train.latest_checkpoint(str(Path(run_dir) / "checkpoints"))
    config, model, _ = load_trained(run_dir, path)
    return Loaded(Path(run_dir), config, model, str(path), step_of(path))


def kept_checkpoints(run_dir) -> list[str]:
    """Prefixes of the checkpoints kept in RUN/checkpoints, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    state = tf.train.get_checkpoint_state(str(folder))
    paths = [p for p in (state.all_model_checkpoint_paths if state else [])
             if Path(f"{p}.index").is_file()]
    if not paths:
        raise FCREvalError(f"{folder}: no checkpoint kept (expected a 'checkpoint' file "
                           f"naming ckpt-N.index files)")
    return sorted(paths, key=lambda p: (step_of(p) or 0, p))


def load_test_scenes(config, source=None, n=200):
    """(labels uint8 (N, X, H, Z), names) of the first n test scenes of `source` (default: the
    run's data); from Scenevox folders n scenes drawn with the run's seed, as the original."""
    root = builtin.voxel_root(config, source)
    scenes, names = [], []
    for name, scene in voxel_files.iter_voxel_source(root, "test", grid=tuple(config.grid),
                                                     test_limit=n, seed=config.seed):
        scenes.append(scene)
        names.append(name)
        if len(scenes) == n:
            break
    if not scenes:
        raise FCREvalError(f"{root}: no test scenes")
    return np.stack(scenes).astype(np.uint8), names


# ----------------------------------------------------------------------------- inference

def batches(n, batch_size):
    """Slices of consecutive rows, `batch_size` at a time (the last may be shorter)."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def padded(array, batch_size):
    """`array` padded to `batch_size` rows by repeating its last row: every network call sees
    one batch shape, so a scene decodes to the same bits whatever batch it is in."""
    if len(array) == batch_size:
        return array
    return np.concatenate([array, np.repeat(array[-1:], batch_size - len(array), 0)])


def encode_scenes(model, scenes, batch_size=8):
    """The codes E(x) (float32, (N, *latent_shape)) of label scenes."""
    num_classes = model.spec.num_classes
    codes = []
    for sl in batches(len(scenes), batch_size):
        x = tf.one_hot(padded(scenes[sl], batch_size).astype(np.int32), num_classes)
        codes.append(np.asarray(model.encode(x))[: sl.stop - sl.start])
    return np.concatenate(codes).astype(np.float32)


def decode_batches(model, codes, batch_size=8, clock=None):
    """Yields (slice, G(z) probabilities, R(G(z)) probabilities) per batch of codes."""
    n = len(codes)
    for sl in batches(n, batch_size):
        z = padded(np.asarray(codes[sl], np.float32), batch_size)
        probs = model.decode(z)
        refined = model.refine(probs)
        k = sl.stop - sl.start
        if clock is not None and n > batch_size:
            clock.log(f"decoded {sl.stop}/{n}")
        yield sl, np.asarray(probs)[:k], np.asarray(refined)[:k]


def decode_labels(model, codes, batch_size=8, refine=True):
    """argmax labels (uint8) of R(G(z)) (or of G(z) when not `refine`) for codes z."""
    out = np.empty((len(codes), *model.spec.grid), np.uint8)
    for sl, probs, refined in decode_batches(model, codes, batch_size):
        out[sl] = np.argmax(refined if refine else probs, -1)
    return out


def prior_codes(config, model, n):
    """n seeded prior draws z ~ N(0, I) of the model's latent shape."""
    rng = np.random.default_rng([config.seed, 11])
    return rng.standard_normal((n, *model.latent_shape)).astype(np.float32)


# ----------------------------------------------------------------------------- command line

def size_argument(text):
    """argparse type of WIDTHxHEIGHT."""
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 240x180, got {text!r}")
    return int(match.group(1)), int(match.group(2))


def add_baseline_arguments(parser):
    """--no-baseline and --baseline-scenes (the programs that score the trivial baseline)."""
    parser.add_argument("--no-baseline", dest="baseline", action="store_false",
                        help="leave out the trivial baseline")
    parser.add_argument("--baseline-scenes", type=int, metavar="N",
                        help="read only the first N training scenes for the trivial baseline "
                             "(default: the whole training split)")


def add_program(sub, name, help, program, *, n=None, checkpoint=True, runs=False):
    """The sub-command `name` with the arguments every run-reading program takes: RUN (or
    RUN...), --data, --out, --batch-size, and --n / --checkpoint where asked. `program` is
    called with the run folder(s) first and the other arguments as keywords."""
    p = sub.add_parser(name, help=help)
    if runs:
        p.add_argument("runs", nargs="+", metavar="RUN", help="fcr_alphagan run folders")
    else:
        p.add_argument("run", help="fcr_alphagan run folder")
    p.add_argument("--data", help="voxel data set (default: the run's data)")
    p.add_argument("--out", help=f"output folder (default {'RUN_A' if runs else 'RUN'}"
                                 f"/eval-{name})")
    p.add_argument("--batch-size", type=int, default=8)
    if n is not None:
        p.add_argument("--n", type=int, default=n, help="test scenes")
    if checkpoint:
        p.add_argument("--checkpoint", help="checkpoint prefix (default: the newest)")
    p.set_defaults(program=program, target="runs" if runs else "run")
    return p
