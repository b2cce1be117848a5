"""fcr_alphagan's precise batch norm (--precise-bn-batches): at the end of phase 1 the checkpoint
holds E's and G's statistics recomputed over that many training batches, the weights are those
of a run without it, and a run that resumes before the phase end saves the same tensors as an
uninterrupted one (--deterministic)."""
import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tfgan3d import export, precise_bn
from tfgan3d.trainers import fcr_alphagan as trainer
from tfgan3d.trainers import runner

# phase 1 is iterations 1..8 (its end recomputes the statistics), phase 2 is 9..10
OPTS = {"preset": "tiny", "widths": [4, 8, 8], "eg_steps": 1, "steps": 10, "phase2_start": 9,
        "checkpoint_every": 2, "log_every": 2, "sample_every": 100, "keep_checkpoints": 10,
        "deterministic": True, "precise_bn_batches": 3}


def tensors(prefix):
    reader = tf.train.load_checkpoint(str(prefix))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "OBJECT_GRAPH" not in k and not k.startswith("save_counter")}


def moving(model):
    return {f"{net.name}/{layer.name}": (layer.moving_mean.numpy(),
                                         layer.moving_variance.numpy())
            for net in (model.encoder, model.generator)
            for layer in precise_bn.batch_norm_layers([net])}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    on = runner.run_mode("fcr_alphagan", {**OPTS, "run_dir": str(root / "on")}).path
    off = runner.run_mode("fcr_alphagan", {**OPTS, "run_dir": str(root / "off"),
                                           "steps": 8, "precise_bn_batches": 0}).path
    return on, off


def test_phase_one_ends_with_the_precise_statistics_and_unchanged_weights(runs):
    on, off = runs
    assert json.loads((on / "config.json").read_text())["precise_bn_batches"] == 3
    assert json.loads((off / "config.json").read_text())["precise_bn_batches"] == 0
    config, model, _ = export.load_trained(on, str(on / "checkpoints" / "ckpt-8"))
    stored = moving(model)
    assert len(stored) == len(precise_bn.batch_norm_layers([model.encoder, model.generator]))
    # recomputing from the checkpoint's weights gives what it stores (E first, G on E(x))
    trainer.fcr_precise_bn(model, config)
    again = moving(model)
    for name, (mean, var) in stored.items():
        np.testing.assert_allclose(mean, again[name][0], rtol=1e-5, atol=1e-6, err_msg=name)
        np.testing.assert_allclose(var, again[name][1], rtol=1e-5, atol=1e-6, err_msg=name)
    # the same training without it: every weight equal, the moving statistics not
    with_pbn, without = tensors(on / "checkpoints" / "ckpt-8"), tensors(off / "checkpoints" /
                                                                        "ckpt-8")
    assert with_pbn.keys() == without.keys()
    stats = [k for k in with_pbn if "moving_" in k and ("encoder" in k or "generator" in k)]
    assert stats
    assert all(np.array_equal(with_pbn[k], without[k]) for k in with_pbn if k not in stats
               and "moving_" not in k and "/m/" not in k)
    assert all(not np.allclose(with_pbn[k], without[k]) for k in stats)


def test_a_run_resumed_before_the_phase_end_saves_the_same_tensors(runs, tmp_path):
    on, _ = runs
    copy = tmp_path / on.name
    shutil.copytree(on, copy)
    for path in (copy / "checkpoints").iterdir():      # as if killed after ckpt-6
        if path.name.startswith(("ckpt-8", "ckpt-10", "checkpoint")):
            path.unlink()
    runner.run_mode("fcr_alphagan", {"resume": str(copy), "run_dir": str(tmp_path)})
    for step in (8, 10):
        a, b = tensors(on / "checkpoints" / f"ckpt-{step}"), tensors(copy / "checkpoints" /
                                                                     f"ckpt-{step}")
        assert a.keys() == b.keys()
        different = [k for k in a if not np.array_equal(a[k], b[k])]
        assert not different, (step, different[:5])
