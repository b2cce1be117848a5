"""pix2pix's masked discriminator input: D never sees (or rewards) G's invalid-pixel values."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan3d.models.pix2pix import Pix2Pix
from tfgan3d.networks.pix2pix import build_patchgan_discriminator, build_unet_generator


def _model(mask_d):
    keras.utils.set_random_seed(3)
    g = build_unet_generator(3, 1, size=(None, None), n_down=5, ngf=8, bottleneck_norm=False)
    d = build_patchgan_discriminator(3, 1, size=(32, 32), ndf=8)
    return Pix2Pix(g, d, mask_d=mask_d)


def _batch():
    rng = np.random.default_rng(0)
    real_b = rng.uniform(-1, 1, (2, 32, 32, 1)).astype("float32")
    valid = np.ones_like(real_b)
    valid[:, 8:20, 4:24] = 0
    real_b = np.where(valid > 0, real_b, -1.0).astype("float32")  # the loader's invalid value
    return {"real_a": tf.constant(rng.uniform(-1, 1, (2, 32, 32, 3)), tf.float32),
            "real_b": real_b, "valid_b": valid}


def _d_gradient_wrt_fake(model, batch):
    fake_b = tf.Variable(tf.random.uniform((2, 32, 32, 1), -1, 1, seed=1))
    with tf.GradientTape() as tape:
        seen = model.seen_by_d(fake_b, batch["real_b"], batch["valid_b"])
        logits = model.discriminator([batch["real_a"], seen], training=True)
        loss = tf.reduce_sum(logits)
    return seen.numpy(), tape.gradient(loss, fake_b).numpy()


def test_masked_d_input_holds_the_targets_values_and_passes_no_gradient_at_holes():
    batch = _batch()
    invalid = batch["valid_b"] == 0
    seen, grad = _d_gradient_wrt_fake(_model(mask_d=True), batch)
    np.testing.assert_array_equal(seen[invalid], batch["real_b"][invalid])
    assert np.all(grad[invalid] == 0.0)
    assert np.abs(grad[~invalid]).mean() > 0  # valid pixels still get D's gradient


def test_unmasked_d_sees_and_differentiates_every_pixel():
    batch = _batch()
    invalid = batch["valid_b"] == 0
    seen, grad = _d_gradient_wrt_fake(_model(mask_d=False), batch)
    assert not np.allclose(seen[invalid], batch["real_b"][invalid])
    assert np.abs(grad[invalid]).mean() > 0


def test_d_logits_ignore_g_output_at_holes():
    model = _model(mask_d=True)
    batch = _batch()
    fake = model.generator(batch["real_a"], training=False)
    poke = tf.where(batch["valid_b"] > 0, fake, fake + 0.7)
    d = model.discriminator
    a = d([batch["real_a"], model.seen_by_d(fake, batch["real_b"], batch["valid_b"])])
    b = d([batch["real_a"], model.seen_by_d(poke, batch["real_b"], batch["valid_b"])])
    np.testing.assert_array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("d_update", ["alternating", "simultaneous"])
def test_train_step_shows_d_what_seen_by_d_returns(d_update, monkeypatch):
    """With lambda_l1 = 0 G learns only through D's view of fake_b. If that view is replaced by
    the target itself (no path from G to D), one step leaves G unchanged; with the real
    seen_by_d, G moves. So train_step feeds D through seen_by_d in both D-update modes."""
    batch = {k: np.asarray(v) for k, v in _batch().items()}

    def g_change(cut):
        model = _model(mask_d=True)
        model.lambda_l1, model.d_update = 0.0, d_update
        if cut:
            monkeypatch.setattr(model, "seen_by_d", lambda fake_b, real_b, valid_b: real_b)
        model.compile(g_optimizer=keras.optimizers.Adam(1e-3),
                      d_optimizer=keras.optimizers.Adam(1e-3))
        before = [w.numpy().copy() for w in model.generator.trainable_weights]
        model.train_on_batch(batch)
        return max(np.abs(w.numpy() - b).max()
                   for w, b in zip(model.generator.trainable_weights, before))

    assert g_change(cut=True) == 0.0
    assert g_change(cut=False) > 1e-5


def test_masked_d_needs_the_validity_mask():
    model = _model(mask_d=True)
    with pytest.raises(ValueError, match="valid_b"):
        model.seen_by_d(tf.zeros((1, 32, 32, 1)), tf.zeros((1, 32, 32, 1)), None)


@pytest.mark.parametrize("mask_d", [True, False])
def test_the_trainer_builds_the_model_with_the_configs_mask_d(mask_d):
    """The run's model is built by the trainer from its config: --mask-d reaches it (every
    other test here builds Pix2Pix directly)."""
    from tfgan3d import config as config_lib
    from tfgan3d.trainers import pix2pix as trainer

    config = config_lib.resolve_config(trainer.Pix2PixConfig, "pix2pix",
                                       {"preset": "tiny", "mask_d": mask_d})
    assert config.mask_d is mask_d
    model = trainer.MODE.build_model(config)
    assert model.mask_d is mask_d
    # and it acts on it: D is shown the target's values at the holes only with mask-d
    batch = _batch()
    seen, _ = _d_gradient_wrt_fake(model, batch)
    holes = batch["valid_b"] == 0
    assert np.array_equal(seen[holes], batch["real_b"][holes]) is mask_d
