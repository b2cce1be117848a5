"""pix2pix --precise-bn-batches: the last checkpoint holds G's recomputed batch-norm statistics
and otherwise the same weights as a run without it."""
import json

import numpy as np
import tensorflow as tf

from tfgan3d.trainers import runner

OPTS = {"preset": "tiny", "steps": 3, "checkpoint_every": 3, "log_every": 3,
        "sample_every": 100, "deterministic": True}


def tensors(run):
    prefix = tf.train.latest_checkpoint(str(run / "checkpoints"))
    assert prefix.endswith("ckpt-3")
    reader = tf.train.load_checkpoint(prefix)
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "OBJECT_GRAPH" not in k and not k.startswith("save_counter")}


def test_precise_bn_changes_only_the_generators_moving_statistics(tmp_path):
    on = runner.run_mode("pix2pix", {**OPTS, "run_dir": str(tmp_path / "on"),
                                     "precise_bn_batches": 2}).path
    off = runner.run_mode("pix2pix", {**OPTS, "run_dir": str(tmp_path / "off")}).path
    assert json.loads((on / "config.json").read_text())["precise_bn_batches"] == 2
    assert json.loads((off / "config.json").read_text())["precise_bn_batches"] == 0
    a, b = tensors(on), tensors(off)
    assert a.keys() == b.keys()
    differ = {k for k in a if not np.array_equal(a[k], b[k])}
    moving = {k for k in a if "moving_" in k and "generator" in k}
    assert moving and differ == moving, sorted(differ ^ moving)[:5]
