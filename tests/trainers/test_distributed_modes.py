"""Every mode on a two-worker cluster of local processes (TF_CONFIG on 127.0.0.1) against one
process over 2 logical CPUs at the same global batch, and a cluster that loses a worker.

One subprocess per role trains all four modes in turn (distributed_modes.py), across simgan's
pretrain -> adversarial switch and a K_g / K_d cycle, sim2real's stage switch and fcr's phase
switch. Both setups run 2 replicas that take the same halves of the same (deterministic)
global batches, so their weights after the last step must agree within float reordering;
any overlap or swap of the workers' examples would move them apart.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from run_helpers import read_rows

from tfgan3d.trainers import runner

HERE = Path(__file__).parent
SCRIPT = HERE / "distributed_modes.py"
MODES = ("pix2pix", "simgan", "fcr_alphagan", "sim2real")
LAST_STEP = {"pix2pix": 4, "simgan": 6, "sim2real": 4, "fcr_alphagan": 4}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cluster_env(index, ports, tmp):
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    return {**os.environ, "PYTHONUNBUFFERED": "1", "TMPDIR": str(tmp),
            "TF_CONFIG": json.dumps({"cluster": cluster,
                                     "task": {"type": "worker", "index": index}})}


def start_cluster(args, tmp_path, name):
    ports = [free_port(), free_port()]
    procs = []
    for index in range(2):
        tmp = tmp_path / f"{name}-tmp{index}"
        tmp.mkdir()
        procs.append(subprocess.Popen(args, env=cluster_env(index, ports, tmp),
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    return procs


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("distributed")
    started = time.time()
    workers = start_cluster([sys.executable, str(SCRIPT), str(tmp_path / "cluster"), "worker"],
                            tmp_path, "cluster")
    mirrored = subprocess.Popen([sys.executable, str(SCRIPT), str(tmp_path / "one"),
                                 "mirrored"], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
    try:
        outputs = [p.communicate(timeout=1800)[0] for p in (*workers, mirrored)]
    finally:
        for p in (*workers, mirrored):      # none left running when the wait gave up
            if p.poll() is None:
                p.kill()
    print(f"four modes on two workers and on one process: {time.time() - started:.0f} s")
    # Each test checks the modes it needs: a mode that fails stops its process (and the
    # cluster), the modes before it stand.
    return tmp_path, outputs, [p.returncode for p in (*workers, mirrored)]


def worker_folders(tmp):
    """The workers' temporary folders left in `tmp` (TensorFlow's autograph files aside)."""
    return sorted(p.name for p in tmp.glob("tfgan3d-worker*"))


def runs_of(output):
    return {l.split()[1]: Path(l.split()[2]) for l in output.splitlines() if l.startswith("RUN ")}


def test_the_chief_alone_writes_and_the_other_worker_cleans_up(trained):
    tmp_path, outputs, codes = trained
    assert codes == [0, 0, 0], [out[-3000:] for out in outputs]
    chief, other = runs_of(outputs[0]), runs_of(outputs[1])
    assert sorted(p.name for p in (tmp_path / "cluster").iterdir()) == sorted(
        p.name for p in chief.values())
    for mode, run in chief.items():
        assert run.parent == tmp_path / "cluster"
        assert int(read_rows(run)[-1]["step"]) == LAST_STEP[mode], mode
        assert (run / "checkpoints").is_dir() and (run / "tensorboard").is_dir()
        assert list((run / "samples").iterdir()), mode
        # the other worker trained in a temporary folder of its own, gone now
        assert other[mode].name.startswith("tfgan3d-worker1-")
        assert other[mode].parent == tmp_path / "cluster-tmp1"
    assert worker_folders(tmp_path / "cluster-tmp1") == []
    # the log says which worker is which
    assert "worker 0 of 2 (TF_CONFIG task worker:0)" in outputs[0] and "the chief" in outputs[0]
    assert "worker 1 of 2 (TF_CONFIG task worker:1)" in outputs[1] and "not the chief" in \
        outputs[1]


def test_workers_keep_disjoint_shares_of_each_global_batch(trained):
    _, outputs, _ = trained
    kept = [[int(v) for v in l.split()[2:]] for out in outputs[:2] for l in out.splitlines()
            if l.startswith("SHARD ")]
    # global batches [0..3], [4..7], [8..11]: worker 0 keeps the first half of each
    assert kept == [[0, 1, 4, 5, 8, 9], [2, 3, 6, 7, 10, 11]]


@pytest.mark.parametrize("mode", MODES)
def test_two_workers_equal_one_process_on_two_replicas(trained, mode):
    tmp_path, outputs, _ = trained
    for out in outputs:
        assert f"RUN {mode} " in out, out[-3000:]
    chief, one = runs_of(outputs[0])[mode], runs_of(outputs[2])[mode]
    readers = [tf.train.load_checkpoint(str(r / "checkpoints" / f"ckpt-{LAST_STEP[mode]}"))
               for r in (chief, one)]
    earlier = tf.train.load_checkpoint(str(chief / "checkpoints" / "ckpt-2"))
    assert readers[0].get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == LAST_STEP[mode]
    names = [k for k, d in readers[0].get_variable_to_dtype_map().items()
             if d.is_floating and k != "_CHECKPOINTABLE_OBJECT_GRAPH"]
    assert len(names) > 10
    worst = max(float(np.max(np.abs(readers[0].get_tensor(k) - readers[1].get_tensor(k)),
                             initial=0)) for k in names)
    # how far the steps after step 2 moved the weights (and optimizer slots)
    move = max(float(np.max(np.abs(readers[0].get_tensor(k) - earlier.get_tensor(k)),
                            initial=0)) for k in names)
    print(f"{mode}: max |two workers - one process| = {worst:.3g}, move since step 2 "
          f"{move:.3g}")
    assert move > 1e-5, (mode, move)
    assert worst <= 1e-3 * move, (mode, worst, move)
    # the logged losses agree too (the workers' metrics are reduced across the cluster)
    rows = [read_rows(r) for r in (chief, one)]
    assert [r["step"] for r in rows[0]] == [r["step"] for r in rows[1]]
    for a, b in zip(*rows):
        for key in set(a) - {"time_s"}:
            if a[key] or b[key]:
                assert float(a[key]) == pytest.approx(float(b[key]), rel=1e-3, abs=1e-5), \
                    (mode, a["step"], key)


def test_sigterm_saves_sigkill_stops_the_cluster_and_resume_continues(tmp_path):
    """A simgan cluster of two workers, three launches:
    1. SIGTERM to worker 1 after checkpoint 4 (a scheduler's notice): both workers save the
       step they are at and stop, with an error that says so;
    2. resumed, SIGKILL of worker 1 after the next checkpoint: worker 0 must stop within a
       bounded time with an error naming the newest checkpoint;
    3. resumed again, the cluster runs to its end: the history buffer and the counters carry
       across both stops, the CSV is continuous, one run folder holds it all."""
    from tfgan3d.models.simgan import count_updates

    run_dir = tmp_path / "runs"
    run = run_dir / "00001-simgan-tiny"
    ckpts = run / "checkpoints"
    train = [sys.executable, "-m", "tfgan3d.train", "--mode", "simgan", "--preset", "tiny",
             "--run-dir", str(run_dir), "--strategy", "multi-worker", "--checkpoint-every",
             "4", "--log-every", "4", "--sample-every", "1000", "--worker-timeout", "120",
             "--steps", "400"]

    def launch(name, extra, wait_for, sig):
        procs = start_cluster([*train, *extra], tmp_path, name)
        deadline = time.time() + 600
        while time.time() < deadline and runner.verify_checkpoint(
                ckpts / f"ckpt-{wait_for}") is not None:
            assert procs[0].poll() is None and procs[1].poll() is None
            time.sleep(0.2)
        procs[1].send_signal(sig)
        sent = time.time()
        out = procs[0].communicate(timeout=300)[0]
        waited = time.time() - sent
        other = procs[1].communicate(timeout=300)[0]
        assert procs[0].returncode == 1, out[-3000:]
        error = [l for l in out.splitlines() if l.startswith("error: ")]
        assert error, out[-3000:]
        for index in range(2):               # the workers' temporary folders
            left = worker_folders(tmp_path / f"{name}-tmp{index}")
            assert left == [] or sig == signal.SIGKILL and index == 1, left
        return error[-1], waited, other, procs[1].returncode

    # 1. termination notice
    error, waited, other, code = launch("term", [], 4, signal.SIGTERM)
    stopped = int(error.split("stopped at step ")[1].split()[0])
    print(f"SIGTERM: both workers stopped at step {stopped}, {waited:.0f} s after the notice")
    assert "termination notice (SIGTERM)" in error and f"ckpt-{stopped}" in error
    assert code == 1 and f"stopped at step {stopped} on a termination notice" in other
    assert runner.verify_checkpoint(ckpts / f"ckpt-{stopped}") is None
    assert int(read_rows(run)[-1]["step"]) <= stopped

    # 2. a worker killed
    target = (stopped // 4 + 1) * 4
    error, waited, _, _ = launch("kill", ["--resume", "latest"], target, signal.SIGKILL)
    print(f"SIGKILL: worker 0 stopped {waited:.0f} s after worker 1 was killed: {error}")
    assert "another worker of the cluster stopped answering" in error
    assert "--resume" in error and "ckpt-" in error
    assert waited < 200
    newest = int(runner.newest_good_checkpoint(ckpts, warn=False).rsplit("-", 1)[1])
    assert newest >= target

    # 3. relaunched to the end
    end = newest + 6
    procs = start_cluster([*train, "--resume", "latest", "--steps", str(end)], tmp_path,
                          "again")
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    for p, o in zip(procs, outputs):
        assert p.returncode == 0, o[-3000:]
    assert f"resumed from {ckpts / f'ckpt-{newest}'} at step {newest}" in outputs[0]
    assert sorted(p.name for p in run_dir.iterdir()) == [run.name]
    steps = [int(r["step"]) for r in read_rows(run)]
    assert steps == sorted(set(steps)) and steps[-1] == end
    assert set(range(4, end + 1, 4)) <= set(steps)
    reader = tf.train.load_checkpoint(str(ckpts / f"ckpt-{end}"))

    def value(part):
        (key,) = [k for k in reader.get_variable_to_shape_map() if part in k
                  and not k.startswith("_CHECKPOINTABLE") and "OPTIMIZER_SLOT" not in k]
        return reader.get_tensor(key)

    r_updates, d_updates = count_updates(end, pretrain_r_steps=8, pretrain_d_steps=4, k_g=2,
                                         k_d=1)
    assert value("step/.ATTRIBUTES") == value("model/iteration") == end
    assert value("opt_r/_iterations") == r_updates and value("opt_d/_iterations") == d_updates
    assert value("buffer/calls") == d_updates
    assert value("buffer/filled") == min(2 * d_updates, 16)
    for index in range(2):
        assert worker_folders(tmp_path / f"again-tmp{index}") == []


def test_sigterm_saves_a_single_process_run_and_resume_continues(tmp_path):
    """A termination notice to one process: it saves the step it is at, stops with an error
    saying so, and --resume continues from that checkpoint."""
    run = tmp_path / "00001-simgan-tiny"
    train = [sys.executable, "-m", "tfgan3d.train", "--mode", "simgan", "--preset", "tiny",
             "--run-dir", str(tmp_path), "--checkpoint-every", "4", "--log-every", "4",
             "--sample-every", "1000", "--steps", "400"]
    proc = subprocess.Popen(train, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.time() + 600
    while time.time() < deadline and runner.verify_checkpoint(
            run / "checkpoints" / "ckpt-4") is not None:
        assert proc.poll() is None
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=300)[0]
    assert proc.returncode == 1, out[-3000:]
    error = [l for l in out.splitlines() if l.startswith("error: ")][-1]
    stopped = int(error.split("stopped at step ")[1].split()[0])
    assert stopped >= 4 and f"ckpt-{stopped}" in error
    assert runner.newest_good_checkpoint(run / "checkpoints", warn=False).endswith(
        f"ckpt-{stopped}")
    out = subprocess.run([*train, "--resume", "latest", "--steps", str(stopped + 2)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert f"at step {stopped}" in out.stdout
    assert int(read_rows(run)[-1]["step"]) == stopped + 2
