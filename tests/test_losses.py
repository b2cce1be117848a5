import math

import numpy as np
import pytest

from tfgan3d import losses


def bce(logit, label):
    p = 1 / (1 + math.exp(-logit))
    return -(label * math.log(p) + (1 - label) * math.log(1 - p))


def test_gan_losses_against_hand_values():
    real = np.array([[2.0, -1.0]], "float32")
    fake = np.array([[0.5, -3.0]], "float32")
    expected_d = (bce(2, 1) + bce(-1, 1)) / 2 + (bce(0.5, 0) + bce(-3, 0)) / 2
    assert float(losses.gan_discriminator_loss(real, fake)) == pytest.approx(expected_d, rel=1e-6)
    expected_g = (bce(0.5, 1) + bce(-3, 1)) / 2
    assert float(losses.gan_generator_loss(fake)) == pytest.approx(expected_g, rel=1e-6)


def test_gan_losses_any_rank_and_stable():
    logits = np.full((2, 3, 4, 5, 1), 80.0, "float32")   # 3D patch map, saturated logits
    assert float(losses.gan_generator_loss(logits)) == pytest.approx(0.0, abs=1e-6)
    assert float(losses.gan_generator_loss(-logits)) == pytest.approx(80.0, rel=1e-5)


def test_masked_l1_ignores_invalid_pixels():
    target = np.array([[1.0, 2.0, 3.0, 4.0]], "float32")
    pred = np.array([[1.5, 2.0, 100.0, 3.0]], "float32")
    mask = np.array([[1, 1, 0, 1]], "float32")
    assert float(losses.masked_l1_loss(target, pred, mask)) == pytest.approx((0.5 + 0 + 1) / 3)
    assert float(losses.masked_l1_loss(target, pred)) == pytest.approx((0.5 + 97 + 1) / 4)
    # An all-invalid batch contributes nothing rather than NaN.
    assert float(losses.masked_l1_loss(target, pred, np.zeros_like(mask))) == 0.0


def test_unbiased_mmd_worked_example():
    # x = {0, 2}, y = {1, 3}, sigma 1: k(0, 2) = k(1, 3) = e^-2; across, three pairs at
    # distance 1 (e^-0.5) and one at 3 (e^-4.5).
    expected = 2 * math.exp(-2) - 2 * (3 * math.exp(-0.5) + math.exp(-4.5)) / 4
    value = losses.mmd_rbf_unbiased(np.array([[0.0], [2.0]]), np.array([[1.0], [3.0]]), 1.0)
    assert float(value) == pytest.approx(expected, rel=1e-5)
