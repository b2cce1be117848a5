"""The learning-rate switch every mode uses (tfgan3d.optimizers.learning_rate)."""
import numpy as np
import pytest

from tfgan3d import config as config_lib
from tfgan3d import optimizers


def test_linear_decay_matches_pix2pix_rule():
    sched = optimizers.LinearDecay(2e-4, decay_start=100, decay_end=200)
    values = [float(sched(s)) for s in (0, 100, 150, 199, 200, 500)]
    np.testing.assert_allclose(values, [2e-4, 2e-4, 1e-4, 2e-6, 0.0, 0.0], rtol=1e-5, atol=1e-12)
    restored = optimizers.LinearDecay.from_config(sched.get_config())
    assert float(restored(150)) == pytest.approx(1e-4)


def test_learning_rate_kinds():
    base = config_lib.TrainConfig(mode="x", lr_schedule="piecewise", lr_boundaries=(10, 20),
                                  lr_factors=(1.0, 0.5, 0.1))
    sched = optimizers.learning_rate(base, 1.0, 100, updates=2)
    # Boundaries are iterations; the optimizer steps twice per iteration.
    assert [float(sched(s)) for s in (0, 19, 21, 39, 41)] == pytest.approx(
        [1.0, 1.0, 0.5, 0.5, 0.1])
    linear = config_lib.TrainConfig(mode="x", lr_schedule="linear", lr_decay_start=0.5)
    sched = optimizers.learning_rate(linear, 1.0, 100)
    assert float(sched(50)) == pytest.approx(1.0) and float(sched(75)) == pytest.approx(0.5)
    assert optimizers.learning_rate(config_lib.TrainConfig(mode="x"), 3e-4, 100) == 3e-4
    with pytest.raises(config_lib.ConfigError, match="one more value"):
        config_lib.TrainConfig(mode="x", lr_schedule="piecewise", lr_boundaries=(10,),
                               lr_factors=(1.0,)).validate()


def test_learning_rate_counts_a_players_own_updates():
    """A player updated on its own schedule (SimGAN's D: every other iteration after 4 of
    pre-training) gets its iterations converted by the function given."""
    def d_updates(t):
        return max(0, t - 4) // 2
    linear = config_lib.TrainConfig(mode="x", lr_schedule="linear", lr_decay_start=0.5)
    sched = optimizers.learning_rate(linear, 1.0, 104, updates=d_updates)
    # decay from update (52 - 4) // 2 = 24 to (104 - 4) // 2 = 50
    assert sched.decay_start == 24 and sched.decay_end == 50
    piece = config_lib.TrainConfig(mode="x", lr_schedule="piecewise", lr_boundaries=(44,),
                                   lr_factors=(1.0, 0.1))
    sched = optimizers.learning_rate(piece, 1.0, 104, updates=d_updates)
    assert [float(sched(s)) for s in (20, 21)] == pytest.approx([1.0, 0.1])
