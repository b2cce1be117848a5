"""Tiny trained runs and their serving export, made once per test session and shared by the
test modules that only read them (test_predict, test_export_serving, test_serving_checks).

Under pytest-xdist each worker is its own process with its own session fixtures, so the runs
live in the folder above the workers' base temporary folders, and a file lock per item lets
the first worker that needs one make it while the other waits for it instead of training the
same run again. Every item is made under a temporary name and renamed when whole, so a worker
that died half way leaves nothing another would take for finished.

Readers must not write into these folders: predict and export write where --out says.
"""
from __future__ import annotations

import fcntl
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

MODES = ("pix2pix", "simgan", "sim2real", "fcr_alphagan")
# Two training steps each, with a checkpoint at the end; simgan's two steps are one
# pretraining step of each player, fcr's second step is phase 2's first.
OPTIONS = {
    "pix2pix": dict(steps=2, checkpoint_every=2),
    "simgan": dict(steps=2, checkpoint_every=2, pretrain_r_steps=1, pretrain_d_steps=1),
    "sim2real": dict(steps=2, checkpoint_every=1),
    "fcr_alphagan": dict(steps=2, phase2_start=2, checkpoint_every=2),
}
WARMUP = 2          # warm-up records per signature in the shared export


def shared_root(tmp_path_factory) -> Path:
    """The folder every xdist worker of this session sees (the base temporary folder when
    the session runs in one process)."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared-tiny"
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextmanager
def _locked(path: Path):
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _made_once(root: Path, name: str, make) -> Path:
    """root/name, made by make(staging folder) the first time any worker asks for it."""
    final = root / name
    with _locked(root / f"{name}.lock"):
        if not final.exists():
            staging = root / f"{name}.partial"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            make(staging)
            os.replace(staging, final)
    return final


def _has_serving_api() -> bool:
    try:
        import tensorflow_serving.apis.prediction_log_pb2  # noqa: F401
    except ImportError:
        return False
    return True


class SharedTiny:
    def __init__(self, root: Path):
        self.root = root

    def run(self, mode: str) -> Path:
        """The run folder of `mode`'s tiny preset trained with OPTIONS[mode]."""
        from tfgan3d.trainers import runner

        def make(staging):
            runner.run_mode(mode, {"preset": "tiny", "run_dir": str(staging),
                                   "sample_every": 1000, **OPTIONS[mode]})

        runs = _made_once(self.root, f"run-{mode}", make)
        (folder,) = [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")]
        return folder

    def mode_export(self, mode: str) -> Path:
        """A folder with `mode`'s run exported alone (`tfgan3d-export RUN --out DIR --warmup
        2`, without --warmup when tensorflow-serving-api is missing): DIR/<model>/1 for each of
        its models. The run is made first, outside this item's lock, so that a worker waiting
        for a run never holds an export's lock."""
        from tfgan3d import export
        run = self.run(mode)

        # Warm-up records are tensorflow_serving protos: without that package (an optional
        # install) the export has none, and test_export_serving, which checks them, skips.
        warmup = ["--warmup", str(WARMUP)] if _has_serving_api() else []

        def make(staging):
            assert export.main([str(run), "--out", str(staging), *warmup]) == 0

        return _made_once(self.root, f"export-{mode}", make)

    def export(self) -> Path:
        """One serving folder with every mode's models (copies of `mode_export`'s) and the
        models.config that serves them together, as `tfgan3d-export` writes it when every
        run is exported into one --out."""
        from tfgan3d import export
        parts = {mode: self.mode_export(mode) for mode in MODES}

        def make(staging):
            for folder in parts.values():
                for model in export.served_models(folder):
                    shutil.copytree(folder / model, staging / model)
            export.write_models_config(staging, base_path=str(self.root / "export"))

        return _made_once(self.root, "export", make)

    def model(self, name: str) -> Path:
        """The exported SavedModel of `name` (a mode, or fcr_alphagan_<part>)."""
        mode = name if name in MODES else name.rsplit("_", 1)[0]
        return self.mode_export(mode) / name / "1"
