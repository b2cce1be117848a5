"""Run configuration: one dataclass per mode, presets, and the command-line mapping.

Every field of a mode's config is a command-line option (`lambda_l1` -> `--lambda-l1`). The
resolved config is a plain JSON-serialisable dataclass, written to `<run_dir>/config.json`.
Precedence: dataclass defaults < preset < a resumed run's config.json < explicit flags; a
given --epochs drops the preset's --steps (and --steps a resumed run's --epochs).
"""
from __future__ import annotations

import argparse
import dataclasses
import functools
import inspect
import io
import json
import math
import re
import tokenize
import typing
from pathlib import Path

PRESETS = ("paper", "standard", "quick", "tiny")   # every preset name, largest first
REQUIRED_PRESETS = ("paper", "quick", "tiny")        # every mode has these; "standard" where
                                                     # a finding needs more than quick's budget
STRATEGIES = ("auto", "one", "mirrored", "multi-worker")
LR_SCHEDULES = ("constant", "linear", "piecewise")


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names the field and the value."""


@dataclasses.dataclass
class TrainConfig:
    """Options shared by every mode."""

    mode: str = ""
    preset: str = "quick"             # paper (the seed's sizes) | standard (about an hour per
                                      # model on 2 CPU cores; some modes) | quick (minutes) | tiny (tests)
    data: str | None = None           # None: the mode's built-in simulated data set
    run_dir: str = "runs"             # parent folder of the numbered run folders
    run_name: str | None = None       # optional suffix of the run folder's name
    steps: int | None = None          # training iterations (one train_step each)
    epochs: float | None = None       # or passes over the training set
    batch_size: int = 1               # global batch, split over the replicas
    resume: str | None = None         # "latest" (newest run of this mode) or a run folder
    seed: int = 0                     # seeds the data, the initial weights and the random streams
    strategy: str = "auto"            # auto | one | mirrored (GPUs) | multi-worker (TF_CONFIG)
    worker_timeout: float = 600.0     # multi-worker: seconds to wait for the others (0: forever)
    jit: bool = False                 # XLA for the train step
    mixed_precision: bool = False     # float16 on GPUs (loss scaling), bfloat16 on CPUs
    sync_bn: bool = False             # batch-norm statistics over the global batch (all replicas)
    dry_run: bool = False             # print the resolved config and stop
    deterministic: bool = False       # deterministic input pipeline and ops
    checkpoint_every: int = 500       # iterations between checkpoints
    keep_checkpoints: int = 3         # newest checkpoints kept (older ones are deleted)
    log_every: int = 50               # iterations between CSV / TensorBoard rows
    sample_every: int = 500           # iterations between sample outputs
    lr_schedule: str = "constant"     # constant | linear | piecewise
    lr_decay_start: float = 0.5       # linear: fraction of the run kept at the base rate
    lr_boundaries: tuple[int, ...] = ()   # piecewise: iteration boundaries
    lr_factors: tuple[float, ...] = ()    # piecewise: factor of the base rate per piece
    cache_dir: str | None = None      # built-in data sets; default $TFGAN3D_CACHE or ~/.cache/tfgan3d

    # Per-preset overrides; subclasses extend these dicts.
    PRESET_VALUES: typing.ClassVar[dict[str, dict]] = {"paper": {}, "quick": {}, "tiny": {}}

    def validate(self) -> None:
        """Raises ConfigError for values out of range."""
        _check_preset(type(self), self.preset)
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"--strategy: expected one of {', '.join(STRATEGIES)}, "
                              f"got {self.strategy!r}")
        if not self.worker_timeout >= 0:
            raise ConfigError(f"--worker-timeout: expected seconds >= 0 (0: wait forever), "
                              f"got {self.worker_timeout}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(f"--lr-schedule: expected one of {', '.join(LR_SCHEDULES)}, "
                              f"got {self.lr_schedule!r}")
        if self.steps is not None and self.epochs is not None:
            raise ConfigError(f"give --steps or --epochs, not both (got steps={self.steps}, "
                              f"epochs={self.epochs})")
        for name in ("batch_size", "checkpoint_every", "log_every", "sample_every",
                     "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ConfigError(f"--{name.replace('_', '-')}: expected >= 1, "
                                  f"got {getattr(self, name)}")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"--steps: expected >= 1, got {self.steps}")
        if self.epochs is not None and self.epochs <= 0:
            raise ConfigError(f"--epochs: expected > 0, got {self.epochs}")
        if not 0.0 <= self.lr_decay_start <= 1.0:
            raise ConfigError(f"--lr-decay-start: expected a fraction in [0, 1], "
                              f"got {self.lr_decay_start}")
        if self.lr_schedule == "piecewise" and len(self.lr_factors) != len(self.lr_boundaries) + 1:
            raise ConfigError(f"--lr-factors needs one more value than --lr-boundaries "
                              f"(got {len(self.lr_factors)} factors, "
                              f"{len(self.lr_boundaries)} boundaries)")
        bounds = list(self.lr_boundaries)
        if bounds and (bounds[0] < 1 or any(b >= c for b, c in zip(bounds, bounds[1:]))):
            raise ConfigError(f"--lr-boundaries: expected increasing iterations >= 1, "
                              f"got {' '.join(map(str, bounds))}")
        if any(not math.isfinite(f) or f < 0 for f in self.lr_factors):
            raise ConfigError(f"--lr-factors: expected finite values >= 0, "
                              f"got {' '.join(map(str, self.lr_factors))}")
        check_ranges(self)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


# Value ranges of the mode fields that share a name across modes (checked when present).
_POSITIVE = ("lr", "max_depth", "width_mult", "depth_scale", "sim_depth_scale",
             "real_depth_scale", "mmd_sigma")
_NON_NEGATIVE = ("lambda_l1", "lambda_reg", "lambda_kl", "lambda_rec", "lambda_mmd",
                 "lambda_cycle", "lambda_rec2", "lambda_depth", "lambda_seg", "kl_weight",
                 "momentum", "max_invalid_fraction")
_FRACTION = ("beta1", "beta2", "momentum")            # in [0, 1)
_AT_LEAST_ONE = ("ngf", "ndf", "n_down", "d_layers", "levels", "pack_d", "latent_channels",
                 "refiner_channels", "refiner_filters", "eg_steps", "n_samples", "n_fixed",
                 "crop_size", "load_size", "sim_size", "image_size", "n_train", "num_classes",
                 "widths", "grid", "kernel", "code_d_units", "phase2_batch_size")
_AT_LEAST_ZERO = ("res_blocks", "refiner_blocks", "n_test")


def check_ranges(config) -> None:
    """Raises ConfigError for a shared-name field out of its range (learning rates > 0, betas
    in [0, 1), widths and depths >= 1, loss weights >= 0, every float finite)."""
    def bad(name, expected, value):
        shown = " ".join(map(str, value)) if isinstance(value, tuple) else value
        raise ConfigError(f"--{name.replace('_', '-')}: expected {expected}, got {shown}")

    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        values = value if isinstance(value, tuple) else (value,)
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            bad(f.name, "a finite number", value)
    for name in _POSITIVE:
        value = getattr(config, name, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
            bad(name, "> 0", value)
    for name in _NON_NEGATIVE:
        value = getattr(config, name, None)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            bad(name, ">= 0", value)
    for name in _FRACTION:
        value = getattr(config, name, None)
        if isinstance(value, (int, float)) and not 0 <= value < 1:
            bad(name, "a value in [0, 1)", value)
    for names, low in ((_AT_LEAST_ONE, 1), (_AT_LEAST_ZERO, 0)):
        for name in names:
            value = getattr(config, name, None)
            values = value if isinstance(value, tuple) else (value,)
            if any(isinstance(v, (int, float)) and not isinstance(v, bool) and v < low
                   for v in values):
                bad(name, f">= {low}", value)


def field_types(cls) -> dict[str, typing.Any]:
    """Field name -> resolved type annotation of a config dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _scalar_type(tp):
    """(python type, is_tuple) of a field annotation such as `int | None` or `tuple[int, ...]`."""
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    origin = typing.get_origin(tp)
    if origin is tuple:
        return args[0], True
    if args and origin is not tuple:          # Optional[X] / X | None
        inner = args[0]
        if typing.get_origin(inner) is tuple:
            return typing.get_args(inner)[0], True
        return inner, False
    return tp, False


_FIELD_RE = re.compile(r"^(\s*)([a-z_][a-z0-9_]*)\s*:")


@functools.cache
def _class_field_comments(cls) -> dict[str, str]:
    """{field: its comments} from the source of `cls` alone: a trailing `# ...` on the field's
    line, comment-only lines indented further that follow it (a continuation), and comment
    lines just above it at its indentation (a lead-in, which comes first)."""
    try:
        source = inspect.getsource(cls)
    except (OSError, TypeError):
        return {}
    comments = {}                         # line number -> comment text
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            comments[tok.start[0]] = (tok.start[1], tok.string.lstrip("#").strip())
    lines = source.splitlines()
    docs, pending, last, last_col, last_indent = {}, [], None, None, 0
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped.startswith("#"):
            col, text = comments.get(number, (0, ""))
            if last is not None and last_col is not None and col > last_indent:
                docs[last].append(text)       # continuation of the field above
            else:
                pending.append(text)
                last = None
            continue
        match = _FIELD_RE.match(line)
        if match and not stripped.startswith(("def ", "class ")) and "ClassVar" not in line:
            name = match.group(2)
            trailing = comments.get(number)
            docs[name] = pending + ([trailing[1]] if trailing else [])
            pending, last, last_indent = [], name, len(match.group(1))
            last_col = trailing[0] if trailing else None
        else:
            pending, last = [], None
    return {name: " ".join(t for t in texts if t) for name, texts in docs.items()}


def field_help(cls) -> dict[str, str]:
    """{field: help text} of a config dataclass, from its fields' source comments (a field
    documented in a subclass overrides the base class's text)."""
    out: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            out.update({k: v for k, v in _class_field_comments(klass).items() if v})
    return {f.name: out.get(f.name, "") for f in dataclasses.fields(cls)}


def _help(text: str, cls, field: dataclasses.Field) -> str:
    """The field's comment, then its default and each preset's value, escaped for argparse."""
    def shown(value):
        return " ".join(map(str, value)) if isinstance(value, tuple) else value

    default = None if field.default is dataclasses.MISSING else field.default
    extra = f"default {shown(default)}" if default not in (None, "", ()) else "default none"
    presets = [f"{p}: {shown(v[field.name])}" for p, v in cls.PRESET_VALUES.items()
               if field.name in v]
    if presets:
        extra += "; " + ", ".join(presets)
    return (f"{text} ({extra})" if text else f"({extra})").replace("%", "%%")


def add_config_arguments(parser: argparse.ArgumentParser, cls) -> None:
    """One option per field, its help text from the field's comments (see `field_help`) with
    the default and the presets' values; defaults are suppressed so that only given flags are
    returned."""
    helps = field_help(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name, tp in field_types(cls).items():
        if name == "mode":
            continue
        flag = "--" + name.replace("_", "-")
        base, is_tuple = _scalar_type(tp)
        text = _help(helps[name], cls, fields[name])
        if name == "resume":     # `--resume` alone means the newest run of the mode
            parser.add_argument(flag, nargs="?", const="latest", default=argparse.SUPPRESS,
                                metavar="latest|RUN_DIR", help=text)
        elif base is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction,
                                default=argparse.SUPPRESS, help=text)
        elif is_tuple:
            parser.add_argument(flag, type=base, nargs="*", default=argparse.SUPPRESS,
                                metavar=name.upper(), help=text)
        else:
            parser.add_argument(flag, type=base, default=argparse.SUPPRESS,
                                metavar=name.upper(), help=text)


def presets_of(cls) -> tuple[str, ...]:
    """The presets a config class defines, in PRESETS order."""
    return tuple(p for p in PRESETS if p in cls.PRESET_VALUES)


def _check_preset(cls, preset) -> None:
    # A preset a class does not define would silently mean the dataclass defaults (the paper's
    # sizes), so it is refused, naming the ones it has.
    if preset not in presets_of(cls):
        raise ConfigError(f"--preset: expected one of {', '.join(presets_of(cls))}, "
                          f"got {preset!r}")


def resolve_config(cls, mode: str, overrides: dict, base: dict | None = None):
    """Builds a config: defaults < preset < `base` (a resumed run's config) < `overrides`."""
    preset = overrides.get("preset") or (base or {}).get("preset") or cls.preset
    _check_preset(cls, preset)
    values = dict(cls.PRESET_VALUES[preset])
    values.update(base or {})
    # --epochs replaces the preset's (or the resumed run's) --steps, and the other way round.
    for given, other in (("epochs", "steps"), ("steps", "epochs")):
        if overrides.get(given) is not None and overrides.get(other) is None:
            values[other] = None
    values.update(overrides)
    values["mode"] = mode
    values["preset"] = preset
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown config fields {unknown} for mode {mode!r}; "
                          f"valid: {', '.join(sorted(names))}")
    types = field_types(cls)
    for name, value in values.items():
        base_type, is_tuple = _scalar_type(types[name])
        if is_tuple and value is not None:
            values[name] = tuple(base_type(v) for v in value)
    config = cls(**values)
    config.validate()
    return config


def load_config_json(run_dir: str | Path) -> dict:
    path = Path(run_dir) / "config.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no config.json; is {run_dir} a tfgan3d run folder?") from None
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: not valid JSON ({err})") from None
