"""eval/latent_alignment.py: each statistic on codes built to have it, and the encoders of a
tiny twin VAE (its MMD is the training loss's estimator, tested in tests/test_losses.py)."""
import math

import numpy as np
import pytest
import tensorflow as tf

from tfgan3d import config as config_lib
from tfgan3d import registry
from tfgan3d.eval import latent_alignment as la


def test_median_distance():
    assert la.median_distance([[0.0], [1.0], [3.0]]) == pytest.approx(2.0)   # 1, 3, 2


def test_statistics_of_codes_built_to_have_them():
    rng = np.random.default_rng(1)
    mean_sim = rng.normal(0.0, 0.3, size=(40, 2, 2, 5))
    log_var_sim = np.full_like(mean_sim, math.log(0.25))            # sigma 0.5
    collapsed = np.tile(rng.normal(0.0, 0.3, size=(1, 2, 2, 5)) + 1.0, (30, 1, 1, 1))
    log_var_real = np.full_like(collapsed, math.log(0.01))          # sigma 0.1
    stats = la.alignment_stats(mean_sim, log_var_sim, collapsed, log_var_real)
    assert stats["sigma_sim"] == pytest.approx(0.5) and stats["sigma_real"] == pytest.approx(0.1)
    assert stats["spread_sim"] == pytest.approx(mean_sim.reshape(40, -1).std(0).mean())
    assert stats["spread_real"] == pytest.approx(0.0, abs=1e-12)    # one code for every image
    assert stats["centroid_distance"] == pytest.approx(np.linalg.norm(
        mean_sim.reshape(40, -1).mean(0) - collapsed[0].reshape(-1)))
    assert (stats["code_size"], stats["images_sim"], stats["images_real"]) == (20, 40, 30)
    assert stats["mmd"] > 0.5 and abs(stats["mmd_within_sim"]) < 0.1
    # Real codes from the sim codes' own distribution: the MMD falls to the within-sim level.
    same = rng.normal(0.0, 0.3, size=(30, 2, 2, 5))
    aligned = la.alignment_stats(mean_sim, log_var_sim, same, log_var_sim[:30])
    assert abs(aligned["mmd"]) < 0.1 and aligned["mmd"] < stats["mmd"] / 5


def test_codes_of_other_sizes_are_refused():
    with pytest.raises(ValueError, match=r"codes differ in size \(4 sim, 6 real"):
        la.alignment_stats(np.zeros((4, 4)), np.zeros((4, 4)), np.zeros((4, 6)),
                           np.zeros((4, 6)))


def test_the_encoders_of_a_tiny_twin_vae():
    mode = registry.get_mode("sim2real")
    config = config_lib.resolve_config(mode.config, "sim2real", {"preset": "tiny", "num_classes": 6})
    model = mode.build_model(config)
    rng = np.random.default_rng(2)
    size = config.image_size

    def images(n, batch):
        x = rng.uniform(-1, 1, size=(n, size, size, 3)).astype("float32")
        return tf.data.Dataset.from_tensor_slices({"image": x}).batch(batch), x

    sim_ds, xs = images(7, 3)
    real_ds, xr = images(9, 4)
    stats = la.latent_alignment(model, sim_ds, real_ds, limit=6)
    assert (stats["images_sim"], stats["images_real"]) == (6, 6)   # limit, across batches
    mean_s, log_var_s = model.encoder_sim(xs[:6], training=False)
    mean_r, log_var_r = model.encoder_real(xr[:6], training=False)
    assert stats == pytest.approx(la.alignment_stats(mean_s, log_var_s, mean_r, log_var_r))
    assert stats["code_size"] == int(np.prod(mean_s.shape[1:]))
    assert la.latent_alignment(object(), sim_ds, real_ds) is None  # no encoders: nothing
