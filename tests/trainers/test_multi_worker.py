"""MultiWorkerMirroredStrategy across two local processes, from TF_CONFIG, as on two machines."""
import json
import os
import socket
import subprocess
import sys

import numpy as np
import tensorflow as tf
from run_helpers import read_rows


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_workers_train_pix2pix_in_step(tmp_path):
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    args = ["--mode", "pix2pix", "--preset", "tiny", "--steps", "10", "--checkpoint-every", "5",
            "--log-every", "5", "--sample-every", "10", "--run-dir", str(tmp_path),
            "--strategy", "multi-worker"]
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen([sys.executable, "-m", "tfgan3d.train", *args], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True))
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]
    assert all("(replicas: 2)" in out for out in outputs)

    # Worker 0 is the chief: the numbered run folder, its CSV and samples are its alone.
    run = tmp_path / "00001-pix2pix-tiny"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".worker-tmp", run.name]
    assert [int(r["step"]) for r in read_rows(run)] == [5, 10]
    assert (run / "samples" / "step_0000010.png").exists()

    # Synchronous training: both workers end with the same weights and optimizer slots after
    # 10 steps. Batch norm's moving statistics are each worker's own (unsynchronised batch norm,
    # as PyTorch's DDP default); the chief's are the ones exported.
    readers = [tf.train.load_checkpoint(tf.train.latest_checkpoint(str(d / "checkpoints")))
               for d in (run, tmp_path / ".worker-tmp")]
    assert readers[0].get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE") == 10
    names = [k for k in readers[0].get_variable_to_shape_map()
             if k != "_CHECKPOINTABLE_OBJECT_GRAPH" and "moving_" not in k]
    weights = [k for k in names if k.startswith("opt_g/_trainable_variables/")]
    assert len(weights) > 10
    for name in names:
        np.testing.assert_allclose(readers[0].get_tensor(name), readers[1].get_tensor(name),
                                   atol=1e-6, err_msg=name)
