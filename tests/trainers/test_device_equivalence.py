"""One step on 2 logical CPUs under MirroredStrategy equals single-device steps, for the modes
whose losses depend on the batch, and for SimGAN, whose schedule is picked on the host
(pix2pix's check, whose losses are per-example means with
instance norm, is in tests/models/test_pix2pix_model.py; the two-worker check is in
test_multi_worker.py).

The global value (device_steps.py's docstring): each replica computes the batch-dependent
terms (Sim2Real's MMD, FCR's occupancy class weights, batch-norm statistics) over its own half
of the global batch, and the replicas' gradients are averaged. With SGD the mirrored update
equals the mean of two single-device updates, one per half, within 1e-3 of the update's size;
it differs from one single-device step on the whole batch, which shows the halves matter.

SimGAN's losses are per-example means and its history buffer is gathered across the replicas
(tfgan3d/models/simgan.py), so 2 replicas must equal one device on the global batch of 4,
through pretrain R, pretrain D and two K_g / K_d cycles, within 1e-3 of the weights' move
(float sums in another order; measured 2e-5), the buffer within 1e-3 of its values. A buffer
kept per replica (each mixing and storing its own half) would store and draw other images.
"""
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).with_name("device_steps.py")


@pytest.fixture(scope="module")
def cases():
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                         timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = [l.split(maxsplit=2) for l in out.stdout.splitlines()
             if l.startswith(("CASE", "SIMGAN"))]
    found = {}
    for line in lines:
        if line[0] == "CASE":
            name, worst, scale, full_gap = line[1], *map(float, line[2].split())
            found[name] = (worst, scale, full_gap)
        else:
            found[f"{line[0]} {line[1]}"] = [float(v) for v in line[2].split()]
    print("\n".join(" ".join(map(str, l)) for l in lines))
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


@pytest.mark.parametrize("segment, counts", [("pretrain", (7, 4, 3)), ("cycles", (13, 8, 5))])
def test_simgan_on_two_replicas_steps_as_one_device_on_the_global_batch(cases, segment, counts):
    worst, move, buffer_gap, buffer_scale, *counters = cases[f"SIMGAN {segment}"]
    # (iteration, refiner updates, discriminator updates), the same on one device and two
    assert counters == [counts[0]] * 2 + [counts[1]] * 2 + [counts[2]] * 2
    assert move > 1e-2
    assert worst <= 1e-3 * move, (segment, worst, move)
    assert buffer_scale > 0.1 and buffer_gap <= 1e-3 * buffer_scale, (segment, buffer_gap)


@pytest.mark.parametrize("into", ["mirrored", "one"])
def test_simgan_mirrored_checkpoint_resumes_under_either_strategy(cases, into):
    worst, move, calls = cases[f"SIMGAN-RESUME {into}"]
    assert calls == 5                      # the buffer's draws continued from the checkpoint
    # The same strategy resumes bit-identically; another one within float reordering.
    assert worst == 0.0 if into == "mirrored" else worst <= 1e-3 * move, (into, worst, move)
