"""`python -m tfgan3d.train --mode MODE [options]`: parse -> config -> trainer.

`--mode` is read first; the mode then contributes its own options (`--mode pix2pix --help`
lists them). Without `--data` every mode trains on its built-in simulated data set.
"""
from __future__ import annotations

import argparse
import sys

import tfgan3d
from tfgan3d import cli
from tfgan3d import config as config_lib
from tfgan3d import registry

USAGE = "python -m tfgan3d.train --mode MODE [--preset paper|standard|quick|tiny] [options]"


def _mode_parser(mode: str, config_class) -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(
        prog="python -m tfgan3d.train", allow_abbrev=False,
        description=f"Train the {mode} mode: {registry.describe(mode)}",
        epilog="Flags left out take the preset's value (config.json of a run lists them all).")
    parser.add_argument("--mode", required=True, choices=registry.mode_names())
    parser.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help="show the traceback of an error (default: one `error:` line)")
    config_lib.add_config_arguments(parser, config_class)
    return parser


def _top_help() -> str:
    lines = [f"usage: {USAGE}", "", "modes:"]
    for name in registry.mode_names():
        lines.append(f"  {name:14s} {registry.describe(name)}")
    lines += ["", "`python -m tfgan3d.train --mode MODE --help` lists the options of a mode."]
    return "\n".join(lines)


def parse_args(argv: list[str]) -> tuple[str, dict]:
    """Returns (mode, explicitly given options). Exits with a message on bad input."""
    pre = cli.ArgumentParser(add_help=False, allow_abbrev=False)
    pre.add_argument("--mode")
    pre.add_argument("-h", "--help", action="store_true")
    known, _ = pre.parse_known_args(argv)
    if known.mode is None:
        if known.help:
            print(_top_help())
            sys.exit(0)
        sys.exit(f"error: --mode is required; valid modes: "
                 f"{', '.join(registry.mode_names())} (usage: {USAGE})")
    if known.mode in registry.MODES:
        tfgan3d.prefer_onednn_for(known.mode)     # before the trainer imports TensorFlow
    try:
        mode = registry.get_mode(known.mode)
    except registry.UnknownModeError as err:
        sys.exit(f"error: {err}")
    parser = _mode_parser(known.mode, mode.config)
    args, unknown = parser.parse_known_args(argv)
    if unknown:      # the one line names the closest and every valid option
        parser.error(f"unrecognized arguments for mode {known.mode}: {' '.join(unknown)}")
    options = vars(args)
    options.pop("mode")
    options.pop("debug", None)
    return known.mode, options


def main(argv: list[str] | None = None):
    """Trains; returns the Run. A user error (see `tfgan3d.cli`) exits with one `error:` line
    and status 1, its traceback only with --debug."""
    argv = sys.argv[1:] if argv is None else list(argv)
    debug = cli.DEBUG_FLAG in argv
    mode, options = parse_args(argv)
    from tfgan3d.trainers import runner  # TensorFlow is imported from here on

    try:
        return runner.run_mode(mode, options)
    except Exception as err:               # noqa: BLE001 - cli.is_user_error sorts them
        if debug or not cli.is_user_error(err):
            raise
        sys.exit(f"error: {cli.one_line(err)}")


if __name__ == "__main__":
    main()
