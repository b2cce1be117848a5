"""Mode name -> the mode's recipe module and one-line description: an explicit table.

`get_mode(name)` imports the recipe (`trainers/<mode>.py`, installed as `tfgan3d.trainers`)
on first use and returns its `MODE`, a `tfgan3d.mode.Mode` (the contract every caller goes
through). The descriptions are here, not only in the recipes, so that listing the modes
(`--help`, an unknown --mode) imports no recipe and no TensorFlow.
"""
from __future__ import annotations

import importlib
import typing

if typing.TYPE_CHECKING:
    from tfgan3d.mode import Mode


class Entry(typing.NamedTuple):
    module: str
    description: str


MODES = {
    "fcr_alphagan": Entry("tfgan3d.trainers.fcr_alphagan",
                          "3D fully convolutional refined alpha-GAN on voxel scenes (seed 002)"),
    "pix2pix": Entry("tfgan3d.trainers.pix2pix",
                     "conditional GAN for monocular depth, RGB -> depth (seed 000)"),
    "sim2real": Entry("tfgan3d.trainers.sim2real",
                      "twin VAE with a shared latent space: sim -> real depth and segmentation "
                      "(seed 001)"),
    "simgan": Entry("tfgan3d.trainers.simgan",
                    "SimGAN: refine synthetic eyes / depth maps with unlabeled real images "
                    "(seed 003)"),
}


class UnknownModeError(ValueError):
    pass


def mode_names() -> list[str]:
    return sorted(MODES)


def describe(name: str) -> str:
    """The mode's one-line description, without importing it."""
    return _entry(name).description


def _entry(name: str) -> Entry:
    if name not in MODES:
        raise UnknownModeError(f"unknown mode {name!r}; valid modes: {', '.join(mode_names())}")
    return MODES[name]


def get_mode(name: str) -> "Mode":
    """The `Mode` of `name` (imports its recipe, and with it TensorFlow). Raises
    UnknownModeError for a name not in the table, ContractError for a recipe whose MODE is
    missing or disagrees with its row here."""
    from tfgan3d import mode as mode_lib
    entry = _entry(name)
    module = importlib.import_module(entry.module)
    mode = getattr(module, "MODE", None)
    if mode is None:
        raise mode_lib.ContractError(f"{entry.module} defines no MODE (a tfgan3d.mode.Mode)")
    mode_lib.check(mode)
    if mode.name != name or mode.description != entry.description:
        raise mode_lib.ContractError(
            f"{entry.module}.MODE says ({mode.name!r}, {mode.description!r}); the registry "
            f"says ({name!r}, {entry.description!r})")
    return mode
