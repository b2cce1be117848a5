"""Scaffolding shared by the mode run tests: the rows of a run's losses.csv, a training run
killed with SIGKILL, and a script that loads an export in a fresh interpreter where tfgan3d
cannot be imported."""
import csv
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from tfgan3d.trainers import runner

_TRAIN = "import sys\nfrom tfgan3d import train\ntrain.main(sys.argv[1:])\n"

# Prepended to a serving script: any import of tfgan3d fails, as on a TF Serving host.
WITHOUT_TFGAN3D = textwrap.dedent("""
    import sys, importlib.abc
    class NoTfgan3d(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "tfgan3d":
                raise ImportError("tfgan3d must not be needed to serve the model")
    sys.meta_path.insert(0, NoTfgan3d())
    import numpy as np, tensorflow as tf
""")


def read_rows(run: Path) -> list[dict]:
    """The rows of RUN/losses.csv as dicts of strings."""
    with open(run / "losses.csv") as f:
        return list(csv.DictReader(f))


def serving_script(body: str) -> str:
    """WITHOUT_TFGAN3D followed by `body` (numpy as np and tensorflow as tf imported)."""
    return WITHOUT_TFGAN3D + textwrap.dedent(body)


def kill_after_checkpoint(args: list[str], ckpts: Path, step: int, timeout: float = 240) -> int:
    """Run `python -m tfgan3d.train ARGS` in a subprocess, SIGKILL it as soon as checkpoint
    `step` in `ckpts` is whole, and return the step of the newest whole checkpoint left behind.

    Both are read from the checkpoint files, as the runner's resume reads them: TensorFlow's
    `checkpoint` state file is written after the files and can still name an older step when
    the kill lands (`newest_checkpoint` gives that prefix)."""
    proc = subprocess.Popen([sys.executable, "-c", _TRAIN, *args],
                            env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while time.time() < deadline and not _whole(ckpts / f"ckpt-{step}"):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _whole(ckpts / f"ckpt-{step}"), f"the run never reached step {step}"
    return int(newest_checkpoint(ckpts).rsplit("-", 1)[1])


def _whole(prefix: Path) -> bool:
    return runner.verify_checkpoint(prefix) is None       # None: index there, every tensor read


def newest_checkpoint(ckpts: Path) -> str:
    """The prefix of the newest whole checkpoint in `ckpts`, found as the runner's resume finds
    it (from the files, not from the state file)."""
    return runner.newest_good_checkpoint(ckpts, warn=False)
