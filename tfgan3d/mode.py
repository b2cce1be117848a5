"""The mode contract: what one seed system provides to the rest of tfgan3d.

A mode is one seed document's system (pix2pix, simgan, sim2real, fcr_alphagan). Its recipe
lives in `trainers/<mode>.py` (installed as `tfgan3d.trainers.<mode>`), which ends with

    MODE = Mode(name=..., description=..., config=..., data=..., build_model=..., train=...,
                predict=..., export_parts=..., serving=..., eval_programs=..., figures=...)

Everything outside the trainer (training CLI, export, evaluation programs, tools, the report)
reaches a mode only through this object, obtained with `tfgan3d.registry.get_mode(name)`; no
caller uses a trainer's other names. The registry lists each mode's name and one-line
description without importing it, so `--help` stays fast and TensorFlow-free.

Adding a mode takes these files:
  1. `tfgan3d/networks/<mode>.py`: the Keras networks (functional models, built from sizes).
  2. `tfgan3d/models/<mode>.py`: the scheme, a keras.Model subclass that takes its networks in
     `__init__`, compiles with `optimizer=None` and its own optimizers, and whose train_step
     reads like the paper (shared step helpers in `tfgan3d/models/steps.py`, losses in
     `tfgan3d/losses.py`).
  3. `tfgan3d/data/...`: the input pipeline (tf.data) and, for a fresh machine, a built-in
     simulator registered in `tfgan3d/data/builtin.py`.
  4. `trainers/<mode>.py`: the config dataclass (a `config.TrainConfig` subclass with
     `PRESET_VALUES` for paper / quick / tiny; a trailing `# comment` on each field is its
     `--help` text), the recipe, and `MODE = Mode(...)` at the end.
  5. `tfgan3d/registry.py`: one row, name -> (module, description).
  6. `eval/<program>.py` and its row in `eval/__main__.py`, named in `eval_programs`.
  7. Tests: `tests/test_mode_contract.py` checks the new mode against this contract on its own.
"""
from __future__ import annotations

import dataclasses
import typing
from pathlib import Path


class ContractError(TypeError):
    """A mode object that lacks a part of the contract, or has one of the wrong kind."""


@dataclasses.dataclass(frozen=True)
class Mode:
    """One mode's parts. Every field is required; see the module docstring for how to add one.

    Functions (the `config` argument is always an instance of `config`):
      data(config, split="train", *, source=None, training=True) -> {name: tf.data.Dataset}
          training=True: the training input pipelines exactly as `train` feeds them (global
          batches, shuffled, augmented, endless). training=False: `split` of `source`
          (default: the config's data) in file order, once, without augmentation, for
          evaluation. A mode without such a split raises ValueError saying where its
          evaluation data comes from.
      build_model(config) -> keras.Model
          the scheme with freshly initialised networks; call it under a strategy's scope.
          A checkpoint written by `train` restores into it (`tf.train.Checkpoint(model=...)`).
      train(config, run) -> dict
          trains in the prepared `trainers.runner.Run` and returns the final metrics.
      predict(model, inputs, config) -> {name: tensor}
          the mode's inference on a batch, in the units users see (metres, class ids, ...).
      export_parts(model) -> {name: keras.Model}
          the networks a SavedModel tracks (the training wrapper is scaffolding).
      serving(model, config) -> {suffix: {endpoint: (fn, input_signature)}}
          the SavedModels to export: suffix "" is one model named after the mode; several
          suffixes (fcr_alphagan's generator, encoder, autoencoder) are exported together as
          <name>_<suffix>. Every fn checks its inputs in the graph (`tfgan3d.serving`).
      figures(run_dir) -> [(caption, path)]
          the pictures of a run folder a report shows (newest sample grids first).
    Data:
      name, description   as in the registry (the registry's row must agree).
      config              the mode's `config.TrainConfig` subclass.
      eval_programs       `python -m tfgan3d.eval PROGRAM` programs that evaluate this mode.
    """

    name: str
    description: str
    config: type
    data: typing.Callable
    build_model: typing.Callable
    train: typing.Callable
    predict: typing.Callable
    export_parts: typing.Callable
    serving: typing.Callable
    figures: typing.Callable
    eval_programs: tuple[str, ...]

    def __post_init__(self):
        check(self)


CALLABLES = ("data", "build_model", "train", "predict", "export_parts", "serving", "figures")


def check(mode) -> None:
    """Raises ContractError naming the first part `mode` lacks or has of the wrong kind."""
    from tfgan3d import config as config_lib
    if not isinstance(mode, Mode):
        raise ContractError(f"expected a tfgan3d.mode.Mode, got {type(mode).__name__}")
    for field in ("name", "description"):
        value = getattr(mode, field)
        if not isinstance(value, str) or not value.strip():
            raise ContractError(f"mode {mode.name!r}: {field} must be a non-empty string, "
                                f"got {value!r}")
    if not (isinstance(mode.config, type) and issubclass(mode.config, config_lib.TrainConfig)):
        raise ContractError(f"mode {mode.name!r}: config must be a TrainConfig subclass, "
                            f"got {mode.config!r}")
    for preset in config_lib.REQUIRED_PRESETS:
        if preset not in mode.config.PRESET_VALUES:
            raise ContractError(f"mode {mode.name!r}: config has no {preset!r} preset")
    unknown = sorted(set(mode.config.PRESET_VALUES) - set(config_lib.PRESETS))
    if unknown:
        raise ContractError(f"mode {mode.name!r}: unknown presets {unknown}; expected names "
                            f"from {', '.join(config_lib.PRESETS)}")
    for field in CALLABLES:
        if not callable(getattr(mode, field)):
            raise ContractError(f"mode {mode.name!r}: {field} must be callable, "
                                f"got {getattr(mode, field)!r}")
    if (not isinstance(mode.eval_programs, tuple) or not mode.eval_programs
            or not all(isinstance(p, str) for p in mode.eval_programs)):
        raise ContractError(f"mode {mode.name!r}: eval_programs must be a non-empty tuple of "
                            f"program names, got {mode.eval_programs!r}")


def sample_figures(run_dir, captions: dict[str, str]) -> list[tuple[str, Path]]:
    """The newest sample grid of each kind in RUN/samples/ (step_NNNNNNN[_KIND].png), newest
    step first, captioned from `captions` {kind: caption} ("" is the unsuffixed kind)."""
    samples = Path(run_dir) / "samples"
    newest: dict[str, Path] = {}
    for path in sorted(samples.glob("step_*.png")):
        stem = path.stem[len("step_"):]
        step, _, kind = stem.partition("_")
        if step.isdigit():
            newest[kind] = path            # sorted by name = by zero-padded step
    return [(f"{captions.get(kind, kind or 'samples')} ({path.stem})", path)
            for kind, path in sorted(newest.items())]
