"""The command line of the fcr evaluation: one sub-command per module of eval/fcr/."""
from __future__ import annotations

import sys

from tfgan3d import cli
from tfgan3d import config as config_lib
from tfgan3d.data.images import DataError
from tfgan3d.eval import fcr
from tfgan3d.eval.fcr import (checkpoints, compare, interpolate, latent, noise, recons,
                              renders)
from tfgan3d.eval.fcr.common import FCREvalError

# In this order in --help.
PROGRAMS = (recons, checkpoints, interpolate, noise, latent, renders, compare)


def _parser():
    parser = cli.ArgumentParser(prog="tfgan3d-eval fcr",
                                description=" ".join(fcr.__doc__.split("\n\n")[0].split()),
                                epilog="Outputs: see the module docstrings of eval/fcr/.")
    sub = parser.add_subparsers(dest="mode", required=True, metavar="MODE")
    for program in PROGRAMS:
        program.add_parser(sub)
    return parser


def main(argv=None):
    args = vars(_parser().parse_args(argv))
    args.pop("mode")
    program, target = args.pop("program"), args.pop("target")
    try:
        return program(args.pop(target), **args)
    except (FCREvalError, config_lib.ConfigError, DataError, FileNotFoundError) as err:
        sys.exit(f"error: {err}")


if __name__ == "__main__":
    main()
