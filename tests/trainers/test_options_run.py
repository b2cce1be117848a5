"""Options a user can set, each run once on the tiny pix2pix preset: --epochs (the step count
it gives), each learning-rate schedule (the rate logged at chosen steps), --inference paper,
--mixed-precision (bfloat16 on a CPU; float16 with loss scaling where a GPU is found)."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from run_helpers import read_rows

from tfgan3d.trainers import pix2pix, runner

LR = 1e-3
# The quality filter is off, so the training set is the built-in data's n_train = 12 pairs.
TINY = {"preset": "tiny", "lr": LR, "log_every": 1, "checkpoint_every": 100,
        "sample_every": 100, "max_invalid_fraction": None}


@pytest.fixture
def float32_after():
    yield
    keras.mixed_precision.set_global_policy("float32")


def logged(rows, column):
    return {int(r["step"]): float(r[column]) for r in rows}


def test_epochs_linear_schedule_and_mixed_precision_on_a_cpu(tmp_path, captured,
                                                             float32_after):
    # --epochs 1 over 12 pairs at batch 2 is 6 iterations, replacing the preset's 20 steps;
    # the linear decay keeps LR for the first half (3 iterations), then falls to 0 at 6.
    # --mixed-precision on a CPU computes in bfloat16 (float32's range: no loss scaling).
    run = runner.run_mode("pix2pix", {**TINY, "run_dir": str(tmp_path), "epochs": 1.0,
                                      "lr_schedule": "linear", "lr_decay_start": 0.5,
                                      "mixed_precision": True})
    model, optimizers = captured[0]
    assert model.generator.compute_dtype == "bfloat16"
    assert all(v.dtype == "float32" for v in model.generator.trainable_variables)
    assert not isinstance(optimizers["g"], keras.optimizers.LossScaleOptimizer)
    rows = read_rows(run.path)
    assert all(np.isfinite(float(r[k])) for r in rows for k in ("g_loss", "d_loss"))
    assert [int(r["step"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert int(tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run.checkpoint_dir)))
               .get_tensor("step/.ATTRIBUTES/VARIABLE_VALUE")) == 6
    # The logged rate is the one of the next update: schedule(iterations done).
    for column in ("lr_g", "lr_d"):
        lrs = logged(rows, column)
        expected = {s: LR * min(1.0, max(0.0, 1 - (s - 3) / 3)) for s in lrs}
        for s in lrs:
            assert lrs[s] == pytest.approx(expected[s], rel=1e-4, abs=1e-12), (column, s, lrs)


def test_piecewise_schedule_and_paper_inference(tmp_path, captured):
    run = runner.run_mode("pix2pix", {**TINY, "run_dir": str(tmp_path), "steps": 6,
                                      "lr_schedule": "piecewise", "lr_boundaries": [2, 4],
                                      "lr_factors": [1.0, 0.5, 0.1], "inference": "paper"})
    lrs = logged(read_rows(run.path), "lr_g")
    # PiecewiseConstantDecay: iteration <= 2 -> LR, <= 4 -> LR / 2, after -> LR / 10
    expected = {1: LR, 2: LR, 3: LR / 2, 4: LR / 2, 5: LR / 10, 6: LR / 10}
    assert lrs.keys() == expected.keys()
    for s in lrs:
        assert lrs[s] == pytest.approx(expected[s], rel=1e-4), (s, lrs)
    # --inference paper: the generator predicts as in training (dropout on), so two
    # predictions of one image differ; the default (eval) gives one answer.
    model, _ = captured[0]
    config = run.config
    rgb = tf.random.stateless_uniform((1, 32, 32, 3), seed=(1, 2), minval=-1, maxval=1)
    first, second = (pix2pix.predict_depth(model, rgb, config).numpy() for _ in range(2))
    assert np.max(np.abs(first - second)) > 1e-4
    eval_config = runner.config_lib.resolve_config(
        pix2pix.CONFIG, "pix2pix", {**config.to_dict(), "inference": "eval"})
    np.testing.assert_array_equal(pix2pix.predict_depth(model, rgb, eval_config),
                                  pix2pix.predict_depth(model, rgb, eval_config))


def test_mixed_precision_with_a_gpu_uses_float16_and_loss_scaling(tmp_path, captured,
                                                                  float32_after, monkeypatch):
    """Where TensorFlow lists a GPU the run takes float16 with dynamic loss scaling. Here the
    GPU is only reported (the strategy still places everything on the CPU), which is enough
    to run the float16 path with its loss scale for a few steps."""
    listed = tf.config.list_physical_devices

    def with_gpu(kind=None):
        if kind == "GPU":
            return [tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")]
        return listed(kind)

    monkeypatch.setattr(tf.config, "list_physical_devices", with_gpu)
    run = runner.run_mode("pix2pix", {**TINY, "run_dir": str(tmp_path), "steps": 8,
                                      "mixed_precision": True, "strategy": "one"})
    model, optimizers = captured[0]
    assert model.generator.compute_dtype == "float16"
    for name, opt in optimizers.items():
        assert isinstance(opt, keras.optimizers.LossScaleOptimizer), name
        # Dynamic scaling: a step whose float16 gradients overflow is skipped and halves the
        # scale (from 2**15); the others are applied. Both players applied some steps.
        scale = float(opt.dynamic_scale.numpy())
        skipped = int(round(np.log2(opt.initial_scale / scale)))
        applied = int(opt.inner_optimizer.iterations.numpy())
        assert scale > 1.0 and applied + skipped == 8 and applied >= 1, (name, scale, applied)
    rows = read_rows(run.path)
    assert len(rows) == 8 and all(np.isfinite(float(r[k])) for r in rows
                                  for k in ("g_loss", "d_loss", "g_l1_loss"))
