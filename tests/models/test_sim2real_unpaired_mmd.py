"""The unbiased MMD (worked examples; zero mean on two samples of one distribution where the
paper's V-statistic is not) and the sim2real option `mmd_pairing="unpaired"` that uses it."""
import math

import numpy as np
import pytest

from tfgan3d import losses
from tests.models.test_sim2real_model import make_model, reach, tensors, toy_batch


def test_unbiased_mmd_worked_examples():
    # x = {0, 1}, y = {3, 4}, sigma = 1, k(a, b) = exp(-(a - b)^2 / 2):
    #   off-diagonal means: k(0, 1) = e^-1/2 for x, k(3, 4) = e^-1/2 for y
    #   E k(x, y) over the 4 pairs = (k(0,3) + k(0,4) + k(1,3) + k(1,4)) / 4
    #                              = (e^-4.5 + e^-8 + e^-2 + e^-4.5) / 4
    #   MMD_u^2 = 2 e^-1/2 - (2 e^-4.5 + e^-8 + e^-2) / 2 = 1.134141
    x, y = np.array([[0.0], [1.0]]), np.array([[3.0], [4.0]])
    expected = 2 * math.exp(-0.5) - (2 * math.exp(-4.5) + math.exp(-8) + math.exp(-2)) / 2
    assert float(losses.mmd_rbf_unbiased(x, y, sigma=1.0)) == pytest.approx(expected, rel=1e-5)
    # x = {0, 1}, y = {0, 2}: e^-1/2 + e^-2 - (1 + e^-2 + 2 e^-1/2) / 2 = (e^-2 - 1) / 2 < 0
    # (the biased mmd_rbf of the same pair is (1 - e^-1/2) / 2 > 0)
    y = np.array([[0.0], [2.0]])
    assert float(losses.mmd_rbf_unbiased(x, y, sigma=1.0)) == pytest.approx(
        (math.exp(-2) - 1) / 2, rel=1e-5)
    # default width sqrt(D), images flatten: D = 4, |a - b|^2 = 4 between the two values
    a = np.stack([np.zeros((2, 2, 1)), np.ones((2, 2, 1))])
    k = math.exp(-4 / 8)
    assert float(losses.mmd_rbf_unbiased(a, a)) == pytest.approx(2 * k - (2 + 2 * k) / 2,
                                                                 rel=1e-5)


def test_unbiased_mmd_averages_zero_on_one_distribution_the_biased_one_does_not():
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(120, 2, 4, 8)).astype("float32")   # 120 pairs of batches of 4
    u = [float(losses.mmd_rbf_unbiased(d[0], d[1])) for d in draws]
    v = [float(losses.mmd_rbf(d[0], d[1])) for d in draws]
    se = np.std(u) / math.sqrt(len(u))
    assert abs(np.mean(u)) < 3 * se
    assert np.mean(v) > 0.2          # about (1 - E k) / 2 at batch 4, E k = e^-1: 0.32


def test_unpaired_option_adds_the_code_mmd_to_both_stages_and_reaches_both_encoders():
    batch = tensors(toy_batch(2))
    sim, real = batch["sim"], batch["real"]
    paper = make_model()
    assert "mmd_unpaired_loss" not in [m.name for m in paper.metrics]   # losses.csv unchanged
    model = make_model(mmd_pairing="unpaired")      # the same weights and random stream
    # the total is the paper's plus lambda_mmd (1) times the new term (the same draws)
    total_paper, _ = paper.stage1_losses(sim["image"], real["image"])
    total, terms = model.stage1_losses(sim["image"], real["image"])
    assert float(total) == pytest.approx(float(total_paper)
                                         + float(terms["mmd_unpaired_loss"]), rel=1e-4)
    for stage in (1, 2):
        got = reach(model, stage, batch)
        assert got["mmd_unpaired_loss"] == {"E_S", "E_R"}
        assert "mmd_unpaired_loss" in [m.name for m in model.metrics]
    with pytest.raises(ValueError, match="mmd_pairing"):
        make_model(mmd_pairing="paired")
