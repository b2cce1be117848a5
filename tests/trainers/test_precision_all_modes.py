"""--mixed-precision and --jit in every mode, on the GPU path: TensorFlow is made to list a
GPU (as test_options_run does for pix2pix), so each run takes float16 with dynamic loss
scaling (and, with TFGAN3D_JIT_TEST=1, XLA-compiled train steps), here on the CPU. Each mode
trains a few steps across its phase or stage switch; its losses stay finite, its networks
compute in float16 with float32 weights, and every optimizer is a LossScaleOptimizer."""
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from run_helpers import read_rows

from tfgan3d.trainers import runner

# XLA compilation of every mode's float16 steps takes minutes on 2 CPU cores (measured on 2
# busy cores: pix2pix 6 min, simgan 3.5, fcr_alphagan 13, sim2real 14), too long for the
# default suite: it runs float16 with loss scaling, and TFGAN3D_JIT_TEST=1 adds --jit.
JIT = os.environ.get("TFGAN3D_JIT_TEST") == "1"
COMMON = {"preset": "tiny", "mixed_precision": True, "jit": JIT, "strategy": "one",
          "log_every": 1, "checkpoint_every": 100, "sample_every": 100}
# A few steps of each mode, across its switch (simgan: pretraining into K_g / K_d cycles).
MODES = {
    "pix2pix": {"steps": 3, "max_invalid_fraction": None},
    "simgan": {"steps": 8, "pretrain_r_steps": 2, "pretrain_d_steps": 2},
    "sim2real": {"stage1_steps": 2, "stage2_steps": 2},
    "fcr_alphagan": {"steps": 4, "phase2_start": 3},
}


@pytest.fixture
def gpu_listed(monkeypatch):
    listed = tf.config.list_physical_devices

    def with_gpu(kind=None):
        if kind == "GPU":
            return [tf.config.PhysicalDevice("/physical_device:GPU:0", "GPU")]
        return listed(kind)

    monkeypatch.setattr(tf.config, "list_physical_devices", with_gpu)
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize("mode", sorted(MODES))
def test_float16_loss_scaling_and_xla_in_every_mode(mode, tmp_path, gpu_listed, captured):
    run = runner.run_mode(mode, {**COMMON, **MODES[mode], "run_dir": str(tmp_path)})
    assert captured, "the mode never called runner.fit"
    for model, optimizers in captured:
        assert model.jit_compile is JIT
        networks = [layer for layer in model.layers if isinstance(layer, keras.Model)]
        assert networks and all(n.compute_dtype == "float16" for n in networks), \
            [(n.name, n.compute_dtype) for n in networks]
        assert all(v.dtype == "float32" for n in networks for v in n.trainable_variables)
        for name, opt in optimizers.items():
            assert isinstance(opt, keras.optimizers.LossScaleOptimizer), (mode, name)
    rows = read_rows(run.path)
    losses = [k for k in rows[-1] if k.endswith("loss") and rows[-1][k] != ""]
    assert rows and losses
    assert all(np.isfinite(float(r[k])) for r in rows for k in losses if r[k] != ""), rows
    # Loss scaling took part: each optimizer of the last phase applied steps or skipped
    # them for a float16 overflow (each skip halves the scale from 2**15). simgan at tiny
    # skips its first refiner steps: its self-regularisation loss (about 800) times 2**15
    # overflows float16 until the scale has fallen.
    model, optimizers = captured[-1]
    used = {}
    for name, opt in optimizers.items():
        skipped = int(round(np.log2(opt.initial_scale / float(opt.dynamic_scale.numpy()))))
        used[name] = (int(opt.inner_optimizer.iterations.numpy()), skipped)
    assert any(a + s for a, s in used.values()), used
    print(mode, "applied, skipped per optimizer:", used)
