"""tools/ray_launch: a local Ray cluster of two workers trains pix2pix (tiny) with TF_CONFIG
set by Ray Train's TensorflowTrainer. Skipped when ray is not installed (an optional extra:
requirements-ray.txt, which `make test` installs)."""
import json
import os
import subprocess
import sys

import pytest

from tfgan3d.tools import ray_launch


def ray_or_skip():
    pytest.importorskip("ray", reason="ray is not installed (pip install -r "
                                      "requirements-ray.txt); the Ray launcher is optional")


def test_paths_are_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["--mode", "pix2pix", "--run-dir", "runs", "--data=builtin:scenes-real",
            "--resume", "latest", "--real-data", "data/real"]
    assert ray_launch.absolute_paths(argv) == [
        "--mode", "pix2pix", "--run-dir", str(tmp_path / "runs"), "--data=builtin:scenes-real",
        "--resume", "latest", "--real-data", str(tmp_path / "data" / "real")]


def test_two_ray_workers_train_one_run(tmp_path):
    ray_or_skip()
    out = subprocess.run(
        [sys.executable, "-m", "tfgan3d.tools.ray_launch", "--workers", "2",
         "--storage", str(tmp_path / "ray"), "--", "--mode", "pix2pix", "--preset", "tiny",
         "--steps", "2", "--log-every", "1", "--run-dir", str(tmp_path / "runs"),
         "--max-invalid-fraction", "1"],
        capture_output=True, text=True, timeout=1800, cwd=tmp_path,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "RAY_DEDUP_LOGS": "0"})
    log = out.stdout + out.stderr
    assert out.returncode == 0, log[-3000:]
    assert "ray_launch: every worker finished" in log
    # Ray set TF_CONFIG: both tasks of one two-worker cluster ran.
    assert "task_id = 0, num_workers = 2" in log and "task_id = 1, num_workers = 2" in log
    runs = [p for p in (tmp_path / "runs").iterdir() if not p.name.startswith(".")]
    assert len(runs) == 1, runs                       # the chief alone writes the run folder
    config = json.loads((runs[0] / "config.json").read_text())
    assert config["strategy"] == "multi-worker"
    rows = (runs[0] / "losses.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["1", "2"]
