"""MultiWorkerMirroredStrategy across two local processes, from TF_CONFIG, as on two machines."""
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

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


WORKER = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    from tfgan3d import distribute
    strategy = distribute.get_strategy("multi-worker")   # before TensorFlow starts
    import keras, tensorflow as tf
    sys.path.insert(0, sys.argv[1])
    from test_pix2pix_model import make_model, toy_batch
    batch = toy_batch(4)
    with strategy.scope():
        model = make_model(norm="instance", dropout=0.0, opt=lambda: keras.optimizers.SGD(0.1))

    def half(context):                  # worker i reads examples 2i, 2i + 1 of the batch
        i = context.input_pipeline_id
        return tf.data.Dataset.from_tensors({k: v[2 * i:2 * i + 2]
                                             for k, v in batch.items()}).repeat()

    model.fit(strategy.distribute_datasets_from_function(half), epochs=1, steps_per_epoch=2,
              verbose=0)
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    np.savez(os.path.join(sys.argv[2], f"worker{index}.npz"),
             *[v.numpy() for v in model.trainable_variables])
""")


def test_two_workers_step_as_one_process_on_the_global_batch(tmp_path):
    """Two SGD steps of two workers, each on its half of a batch of 4, equal two steps of one
    process on the whole batch (pix2pix with instance norm: every loss is a mean over
    examples, so the averaged gradients are the global batch's)."""
    import keras

    models = str(Path(__file__).parents[1] / "models")
    cluster = {"worker": [f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"]}
    procs = []
    for index in range(2):
        env = {**os.environ, "TF_CONFIG": json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}})}
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER, models, str(tmp_path)],
                                      env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True))
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:]

    sys.path.insert(0, models)
    from test_pix2pix_model import make_model, toy_batch
    single = make_model(norm="instance", dropout=0.0, opt=lambda: keras.optimizers.SGD(0.1))
    start = [v.numpy().copy() for v in single.trainable_variables]
    batch = toy_batch(4)
    for _ in range(2):
        single.train_on_batch(batch)
    expected = [v.numpy() for v in single.trainable_variables]
    move = max(float(np.max(np.abs(e - s))) for e, s in zip(expected, start))
    assert move > 1e-3
    for index in range(2):
        with np.load(tmp_path / f"worker{index}.npz") as saved:
            got = [saved[f"arr_{i}"] for i in range(len(saved.files))]
        assert len(got) == len(expected)
        diff = max(float(np.max(np.abs(g - e))) for g, e in zip(got, expected))
        assert diff < 1e-3 * move, (index, diff, move)
