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


def test_content_probe_reads_codes_that_carry_depth_and_not_codes_that_do_not():
    """A worked probe: depth (16 x 16 cells of 2 x 2 pixels) is a linear function of a 4-value
    code. Read on test codes from the same map the probe is near exact; read on codes of the
    wrong images it is worse than the prior; the prior row is the mean training map's abs_rel,
    checked by hand."""
    from tfgan3d.eval import latent_alignment as la
    rng = np.random.default_rng(0)
    basis = rng.uniform(0.5, 1.5, (4, 16, 16))

    def depth_of(codes):
        cells = 5.0 + np.tensordot(codes, basis, axes=1)          # (N, 16, 16), 2..8 m
        return np.repeat(np.repeat(cells, 2, axis=1), 2, axis=2)  # (N, 32, 32) pixels
    train, test = rng.uniform(-1, 1, (40, 4)), rng.uniform(-1, 1, (6, 4))
    d_train, d_test = depth_of(train), depth_of(test)
    valid_train, valid_test = np.ones_like(d_train, bool), np.ones_like(d_test, bool)
    got = la.content_probe(train, d_train, valid_train,
                           {"aligned": test, "wrong": test[::-1].copy()}, d_test, valid_test)
    assert got["abs_rel_aligned"] < 0.01
    mean_map = d_train.reshape(40, 16, 2, 16, 2).mean((2, 4)).mean(0)
    cells = d_test.reshape(6, 16, 2, 16, 2).mean((2, 4))
    prior = np.mean([np.mean(np.abs(mean_map - c) / c) for c in cells])
    assert got["abs_rel_prior"] == pytest.approx(prior, rel=1e-6)
    assert got["abs_rel_wrong"] > got["abs_rel_prior"] > got["abs_rel_aligned"]
    assert (got["train"], got["test"], got["size"]) == (40, 6, 16)
    # invalid pixels carry no error: a test map whose bad pixels are masked scores as before
    broken, mask = d_test.copy(), valid_test.copy()
    broken[:, :2], mask[:, :2] = 100.0, False
    again = la.content_probe(train, d_train, valid_train, {"aligned": test}, broken, mask)
    assert again["abs_rel_aligned"] < 0.01
