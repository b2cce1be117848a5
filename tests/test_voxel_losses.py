import math

import numpy as np
import pytest
import tensorflow as tf

from tfgan3d.losses import (alphagan_discriminator_loss, alphagan_generator_loss,
                            code_discriminator_loss, code_encoder_loss, kl_divergence_log_sigma,
                            occupancy_class_weights, voxel_reconstruction_loss)

# One scene of 2 voxels and 3 classes: voxel 0 is class 0, voxel 1 is class 1.
Y = np.array([[[1, 0, 0], [0, 1, 0]]], "float32")              # (B=1, V=2, C=3)
P = np.array([[[0.7, 0.2, 0.1], [0.4, 0.5, 0.1]]], "float32")
EPS = 1e-6


def hand_loss(gamma):
    # occupancy m = (1/2, 1/2, 0): 1/(m+1) = (2/3, 2/3, 1), sum 7/3 -> w = (2/7, 2/7, 3/7)
    w = (2 / 7, 2 / 7, 3 / 7)
    pos = lambda p: -gamma * math.log(p + EPS)                  # noqa: E731  y = 1
    neg = lambda p: -(1 - gamma) * math.log(1 - p + EPS)        # noqa: E731  y = 0
    class0 = pos(0.7) + neg(0.4)
    class1 = neg(0.2) + pos(0.5)
    class2 = neg(0.1) + neg(0.1)
    return w[0] * class0 + w[1] * class1 + w[2] * class2


def test_occupancy_class_weights_by_hand():
    w = occupancy_class_weights(Y).numpy()
    np.testing.assert_allclose(w, [2 / 7, 2 / 7, 3 / 7], rtol=1e-6)
    # rarer class, larger weight; the batch (not each scene) sets the occupancy
    two = np.concatenate([Y, np.array([[[1, 0, 0], [1, 0, 0]]], "float32")])
    # m = (3/4, 1/4, 0): 1/(m+1) = (4/7, 4/5, 1)
    inv = np.array([4 / 7, 4 / 5, 1.0])
    np.testing.assert_allclose(occupancy_class_weights(two).numpy(), inv / inv.sum(), rtol=1e-6)


@pytest.mark.parametrize("gamma", [0.97, 0.5])
def test_reconstruction_loss_by_hand(gamma):
    assert hand_loss(0.97) == pytest.approx(0.29995, abs=1e-4)
    got = float(voxel_reconstruction_loss(Y, P, gamma))
    assert got == pytest.approx(hand_loss(gamma), rel=1e-5)
    # the same two voxels laid out as a 3D grid (B, 2, 1, 1, C)
    got_3d = float(voxel_reconstruction_loss(Y.reshape(1, 2, 1, 1, 3), P.reshape(1, 2, 1, 1, 3),
                                             gamma))
    assert got_3d == pytest.approx(got, rel=1e-6)


def test_reconstruction_loss_sums_voxels_and_averages_scenes():
    base = float(voxel_reconstruction_loss(Y, P))
    # twice the voxels (same occupancy, so same weights): twice the loss
    assert float(voxel_reconstruction_loss(np.tile(Y, (1, 2, 1)), np.tile(P, (1, 2, 1)))) == \
        pytest.approx(2 * base, rel=1e-6)
    # twice the scenes: the same loss
    assert float(voxel_reconstruction_loss(np.tile(Y, (2, 1, 1)), np.tile(P, (2, 1, 1)))) == \
        pytest.approx(base, rel=1e-6)


def test_reconstruction_loss_gradient_and_shape_check():
    p = tf.Variable(P)
    with tf.GradientTape() as tape:
        loss = voxel_reconstruction_loss(tf.constant(Y), p)
    grad = tape.gradient(loss, p).numpy()
    # d/dp of w_c * -0.97 log(p) at the true class of voxel 0: -w_0 * 0.97 / (0.7 + eps)
    assert grad[0, 0, 0] == pytest.approx(-(2 / 7) * 0.97 / (0.7 + EPS), rel=1e-5)
    with pytest.raises(ValueError, match="same shape"):
        voxel_reconstruction_loss(Y, P[:, :1])


def test_kl_divergence_by_hand():
    zeros = np.zeros((2, 3, 1, 2, 4), "float32")
    assert float(kl_divergence_log_sigma(zeros, zeros)) == pytest.approx(0.0, abs=1e-7)
    mu = np.zeros((2, 3), "float32")
    mu[:, 0] = 1.0                                               # 0.5 * mu^2 = 0.5 per scene
    log_sigma = np.zeros((2, 3), "float32")
    log_sigma[:, 1] = math.log(2.0)                              # 0.5 * (4 - 1 - 2 log 2)
    expected = 0.5 + 0.5 * (4.0 - 1.0 - 2.0 * math.log(2.0))
    assert float(kl_divergence_log_sigma(mu, log_sigma)) == pytest.approx(expected, rel=1e-6)


def test_code_gan_losses_are_bce_not_the_swapped_original():
    logits = np.array([[-2.0], [0.0], [2.0], [4.0]], "float32")
    ours = np.array([float(code_encoder_loss(l[None])) for l in logits])
    np.testing.assert_allclose(ours, np.log1p(np.exp(-logits[:, 0])), rtol=1e-6)
    # the original: sigmoid_cross_entropy_with_logits(labels=logits, logits=ones)
    swapped = tf.nn.sigmoid_cross_entropy_with_logits(labels=logits, logits=tf.ones_like(logits))
    swapped = swapped.numpy()[:, 0]
    np.testing.assert_allclose(swapped, 1.0 - logits[:, 0] + math.log1p(math.exp(-1.0)),
                               rtol=1e-6)
    # equally spaced logits: the swapped form has zero second differences (linear, unbounded
    # below), the BCE positive ones (convex, bounded below by 0)
    np.testing.assert_allclose(np.diff(swapped, 2), 0.0, atol=1e-6)
    assert np.all(np.diff(ours, 2) > 1e-2)
    # discriminator side: -log sigmoid(2) for z real, -log(1 - sigmoid(-1)) for E(x) fake
    got = float(code_discriminator_loss(np.array([[2.0]]), np.array([[-1.0]])))
    assert got == pytest.approx(math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-1.0)), rel=1e-6)


def test_alphagan_gan_losses_by_hand():
    real, sample, rec = np.array([[1.0]]), np.array([[0.0]]), np.array([[2.0]])
    # -log sigmoid(1) - log(1 - sigmoid(0)) - log(1 - sigmoid(2))
    expected_d = math.log1p(math.exp(-1.0)) + math.log(2.0) + math.log1p(math.exp(2.0))
    assert float(alphagan_discriminator_loss(real, sample, rec)) == pytest.approx(expected_d,
                                                                                 rel=1e-6)
    expected_g = math.log(2.0) + math.log1p(math.exp(-2.0))
    assert float(alphagan_generator_loss(sample, rec)) == pytest.approx(expected_g, rel=1e-6)


def test_legacy_losses_are_the_originals_swapped_cross_entropy():
    """The original's tf.nn.sigmoid_cross_entropy_with_logits(labels=logits, logits=ones / zeros),
    computed by TensorFlow itself, against the legacy family."""
    import tensorflow as tf

    from tfgan3d.losses import GAN_LOSSES

    def swapped(logits, target):
        logits = tf.constant(logits, tf.float32)
        const = tf.fill(tf.shape(logits), float(target))
        return float(tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=logits,
                                                                            logits=const)))

    real, sample, rec = [[1.5, -0.5]], [[0.3, 2.0]], [[-1.0, 4.0]]
    legacy = GAN_LOSSES["legacy"]
    expected_d = swapped(real, 1) + swapped(sample, 0) + swapped(rec, 0)
    assert float(legacy["discriminator"](np.array(real), np.array(sample), np.array(rec))) == \
        pytest.approx(expected_d, abs=1e-6)
    # the fake terms are the constant log 2: only the real logit moves D's loss
    assert expected_d == pytest.approx(1 - 0.5 + math.log1p(math.exp(-1)) + 2 * math.log(2))
    assert float(legacy["generator"](np.array(sample), np.array(rec))) == pytest.approx(
        swapped(sample, 1) + swapped(rec, 1), abs=1e-6)
    assert float(legacy["code_discriminator"](np.array(real), np.array(rec))) == pytest.approx(
        swapped(real, 1) + swapped(rec, 0), abs=1e-6)
    assert float(legacy["code_encoder"](np.array(rec))) == pytest.approx(swapped(rec, 1),
                                                                          abs=1e-6)
    # the intended family is the ordinary cross-entropy
    assert float(GAN_LOSSES["bce"]["code_encoder"](np.array([[0.0]]))) == pytest.approx(
        math.log(2.0))
