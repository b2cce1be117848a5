"""MultiWorkerMirroredStrategy across two local processes, from TF_CONFIG, as on two machines
(the model level; every mode's training runs on two workers in test_distributed_modes.py)."""
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
