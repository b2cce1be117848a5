"""The one error path of the command-line programs (train, eval, export, render, tools).

A user error (a bad flag value, file, shape or label; a run that cannot resume) prints one
line, `error: ...`, to stderr and exits with status 1; so do malformed and unknown flags, through
`ArgumentParser` (argparse's own error prints its usage block and exits 2). `--debug` shows the
traceback instead. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import difflib
import re
import sys

DEBUG_FLAG = "--debug"


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser whose usage errors (a malformed value, an unknown or missing flag, an
    invalid choice) print one line, `error: ...`, and exit 1, as every other user error does.
    An unknown flag is followed by the closest valid ones. `--help` is unchanged; subcommand
    parsers (`add_subparsers`) are of this class too."""

    def error(self, message):
        self.exit(1, f"error: {self.one_line_error(message)}\n")

    def one_line_error(self, message: str) -> str:
        text = "; ".join(line.strip() for line in str(message).splitlines() if line.strip())
        unknown = re.match(r"unrecognized arguments[^:]*: (.*)", text)
        if unknown and "valid options" not in text:
            flags = [a.split("=")[0] for a in unknown.group(1).split() if a.startswith("-")]
            close = list(dict.fromkeys(m for f in flags for m in difflib.get_close_matches(
                f, self.option_names(), n=2, cutoff=0.75)))
            if close:
                text += f"; did you mean {' or '.join(close)}?"
            text += f"; valid options: {' '.join(self.option_names())}"
        return text

    def option_names(self) -> list[str]:
        """The long options this parser and its subcommands take (`--help` left out), sorted."""
        names = set()
        for action in self._actions:
            names.update(o for o in action.option_strings if o.startswith("--"))
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    names.update(o for a in sub._actions for o in a.option_strings
                                 if o.startswith("--"))
        return sorted(names - {"--help"})


def pop_debug(argv: list[str]) -> tuple[list[str], bool]:
    """(argv without --debug, whether it was given)."""
    return [a for a in argv if a != DEBUG_FLAG], DEBUG_FLAG in argv


def is_user_error(err: BaseException) -> bool:
    """Errors that describe the input, not the program: ValueError (ConfigError, DataError
    and the readers' checks), the runner's RunError (NaN stops included), missing or unwritable files, and TensorFlow's errors
    about the data it was given (a corrupt file met by the input pipeline)."""
    if isinstance(err, (ValueError, FileNotFoundError, FileExistsError, NotADirectoryError,
                        IsADirectoryError, PermissionError)):
        return True
    runner = sys.modules.get("tfgan3d.trainers.runner")
    if runner is not None and isinstance(err, runner.RunError):
        return True              # a run that cannot start or had to stop (a RuntimeError)
    tf = sys.modules.get("tensorflow")
    if tf is not None:
        return isinstance(err, (tf.errors.InvalidArgumentError, tf.errors.NotFoundError,
                                tf.errors.DataLossError, tf.errors.FailedPreconditionError))
    return False


# TensorFlow's graph context around an op's message: {{function_node ...}}, [[{{node ...}}]],
# [Op:...] and a trailing "name: ".
_GRAPH_CONTEXT = re.compile(r"\{\{function_node [^}]*\}\}|\[\[[^\]]*\]\]|\[Op:[^\]]*\]|"
                            r"\s*name:\s*$")


def _without_graph_context(line: str) -> str:
    text = _GRAPH_CONTEXT.sub(" ", line)
    text = re.sub(r"^\s*assertion failed:\s*", "", text)
    return re.sub(r"\s+", " ", text).strip() or line.strip()


def one_line(err: BaseException) -> str:
    """The error's message on one line (for TensorFlow's, the first line: graph context
    follows it)."""
    message = getattr(err, "message", None) or str(err) or type(err).__name__
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(err, tf.errors.OpError):
        # "Graph execution error:" heads it; the failed check's own words follow.
        said = [l for l in lines if "assertion failed" in l or "expected" in l]
        text = _without_graph_context((said or lines or [type(err).__name__])[0])[:400]
    else:       # our messages: a list of problems joined on the one line
        text = " ".join(lines) if lines else type(err).__name__
    if isinstance(err, OSError) and getattr(err, "filename", None) and \
            str(err.filename) not in text:
        text = f"{err.filename}: {text}"
    return text


def run(main, argv: list[str] | None = None) -> int:
    """Calls `main(argv)` (argv without --debug) and turns user errors into one line and
    exit status 1. Returns main's status (0 for None)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    argv, debug = pop_debug(argv)
    try:
        status = main(argv)
    except SystemExit:
        raise
    except BaseException as err:          # noqa: BLE001 - sorted below
        if debug or not is_user_error(err):
            raise
        print(f"error: {one_line(err)}", file=sys.stderr, flush=True)
        return 1
    return status if isinstance(status, int) else 0
