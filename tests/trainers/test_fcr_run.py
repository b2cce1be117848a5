"""The fcr_alphagan mode end to end on the tiny preset: phases and resume across the switch
(its export is served in tests/test_export_serving.py)."""
import numpy as np
import pytest
import tensorflow as tf
from run_helpers import read_rows

from tfgan3d import export
from tfgan3d.trainers import runner


def weights(run, ckpt_prefix, network):
    _, model, _ = export.load_trained(run, ckpt_prefix)
    return getattr(model, network).get_weights()


@pytest.fixture(scope="module")
def resumed_run(tmp_path_factory):
    """Phase 1 only (iterations 1-8), then a resume that crosses into phase 2 (9-12)."""
    run_dir = tmp_path_factory.mktemp("fcr")
    first = runner.run_mode("fcr_alphagan", {"preset": "tiny", "run_dir": str(run_dir),
                                             "steps": 8})
    phase1_ckpt = tf.train.latest_checkpoint(str(first.path / "checkpoints"))
    second = runner.run_mode("fcr_alphagan", {"resume": "latest", "run_dir": str(run_dir),
                                              "steps": 12})
    assert second.path == first.path
    return first.path, phase1_ckpt


def test_resume_crosses_the_phase_switch(resumed_run):
    path, phase1_ckpt = resumed_run
    log = read_rows(path)
    assert [int(r["step"]) for r in log] == [2, 4, 6, 8, 10, 12]
    assert all(r["recons_loss"] and not r["r_loss"] for r in log[:4])      # phase 1
    assert all(r["r_loss"] and not r["recons_loss"] for r in log[4:])      # phase 2
    final = tf.train.latest_checkpoint(str(path / "checkpoints"))
    assert final.endswith("ckpt-12")
    # Phase 2 trains the refiner and D; the encoder and generator stay frozen.
    for net, should_move in (("encoder", False), ("generator", False), ("refiner", True),
                             ("discriminator", True)):
        before, after = weights(path, phase1_ckpt, net), weights(path, final, net)
        assert len(before) == len(after) > 0
        moved = any(not np.array_equal(a, b) for a, b in zip(before, after))
        assert moved == should_move, net


def test_fixed_z_samples_are_written(resumed_run):
    path, _ = resumed_run
    names = sorted(p.name for p in (path / "samples").glob("*.npy"))
    assert "fixed_z.npy" in names and "generate_0000012.npy" in names
    assert "generate_refine_0000012.npy" in names                # refined in phase 2 only
    assert "generate_refine_0000008.npy" not in names
    labels = np.load(path / "samples" / "generate_0000012.npy")
    assert labels.shape == (2, 16, 16, 16) and labels.max() < 12


def test_float16_runs_get_loss_scaling(monkeypatch):
    """--mixed-precision goes through the same optimizer wrapper as the other modes: on a GPU
    (faked here) every player's Adam gets dynamic loss scaling; on a CPU (bfloat16) none."""
    import keras

    from tfgan3d.trainers import fcr_alphagan as trainer

    config = trainer.FCRConfig(mixed_precision=True)
    assert not any(isinstance(o, keras.optimizers.LossScaleOptimizer)
                   for o in trainer.make_optimizers(config, 10).values())
    monkeypatch.setattr(tf.config, "list_physical_devices",
                        lambda kind=None: ["/physical_device:GPU:0"] if kind == "GPU" else [])
    opts = trainer.make_optimizers(config, 10)
    assert set(opts) == {"e", "g", "d", "c", "r"}
    assert all(isinstance(o, keras.optimizers.LossScaleOptimizer) for o in opts.values())
