"""Mode name -> trainer module: an explicit table; an unknown name lists the valid ones.

A trainer module (in `trainers/`, installed as `tfgan3d.trainers`) defines:
  CONFIG       the mode's config dataclass (a subclass of config.TrainConfig)
  DESCRIPTION  one line for --help
  train(config, run) -> dict of final metrics
Modules are imported on first use so that `--help` and `--dry-run` stay fast.
"""
import importlib

MODES = {
    "fcr_alphagan": "tfgan3d.trainers.fcr_alphagan",
    "pix2pix": "tfgan3d.trainers.pix2pix",
    "sim2real": "tfgan3d.trainers.sim2real",
    "simgan": "tfgan3d.trainers.simgan",
}


class UnknownModeError(ValueError):
    pass


def mode_names() -> list[str]:
    return sorted(MODES)


def get_mode(name: str):
    """Returns the trainer module of `name`."""
    if name not in MODES:
        raise UnknownModeError(f"unknown mode {name!r}; valid modes: {', '.join(mode_names())}")
    return importlib.import_module(MODES[name])
