"""One step on 2 logical CPUs under MirroredStrategy equals single-device steps, for the modes
whose losses depend on the batch (pix2pix's check, whose losses are per-example means with
instance norm, is in tests/models/test_pix2pix_model.py; the two-worker check is in
test_multi_worker.py).

The global value (device_steps.py's docstring): each replica computes the batch-dependent
terms (Sim2Real's MMD, FCR's occupancy class weights, batch-norm statistics) over its own half
of the global batch, and the replicas' gradients are averaged. With SGD the mirrored update
equals the mean of two single-device updates, one per half, within 1e-3 of the update's size;
it differs from one single-device step on the whole batch, which shows the halves matter.
"""
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("device_steps.py")


@pytest.fixture(scope="module")
def cases():
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [l.split(maxsplit=2) for l in out.stdout.splitlines()
             if l.startswith(("CASE", "SIMGAN"))]
    found = {}
    for line in lines:
        if line[0] == "CASE":
            name, worst, scale, full_gap = line[1], *map(float, line[2].split())
            found[name] = (worst, scale, full_gap)
        else:
            found["simgan"] = " ".join(line[1:])
    return found


def check(case):
    worst, scale, full_gap = case
    assert scale > 1e-4                       # the step moved the weights
    assert worst <= 1e-3 * scale, case        # mirrored == mean of the per-half updates
    assert full_gap > 10 * worst, case        # ... which is not the full-batch update


@pytest.mark.parametrize("stage", [1, 2])
def test_sim2real_mirrored_step_is_the_mean_of_per_replica_steps(cases, stage):
    check(cases[f"sim2real-stage{stage}"])


@pytest.mark.parametrize("phase", [1, 2])
def test_fcr_mirrored_step_is_the_mean_of_per_replica_steps(cases, phase):
    check(cases[f"fcr-phase{phase}"])


def test_simgan_refuses_several_replicas_with_the_flag_to_use(cases):
    assert cases["simgan"].startswith("refused") and "--strategy one" in cases["simgan"]
