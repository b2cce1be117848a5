"""The one error path of the command-line programs (train, eval, export, render, tools).

A user error (a bad flag value, file, shape or label; a run that cannot resume) prints one
line, `error: ...`, to stderr and exits with status 1 (argparse's own usage errors exit 2).
`--debug` shows the traceback instead. Anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import sys

DEBUG_FLAG = "--debug"


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


def one_line(err: BaseException) -> str:
    """The error's message on one line (for TensorFlow's, the first line: graph context
    follows it)."""
    message = getattr(err, "message", None) or str(err) or type(err).__name__
    lines = [line.strip() for line in str(message).splitlines() if line.strip()]
    tf = sys.modules.get("tensorflow")
    if tf is not None and isinstance(err, tf.errors.OpError):
        # "Graph execution error:" heads it; the failed check's own words follow.
        said = [l for l in lines if "assertion failed" in l or "expected" in l]
        text = (said or lines or [type(err).__name__])[0][:400]
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
