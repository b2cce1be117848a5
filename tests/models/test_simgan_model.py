"""SimGAN losses, history buffer and model (random tensors and a toy smooth-vs-noisy task)."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan3d import losses
from tfgan3d.models.simgan import HistoryBuffer, SimGAN, count_updates
from tfgan3d.networks.simgan import build_discriminator, build_refiner

LN3 = math.log(3.0)


# ----------------------------------------------------------------------------- losses

def test_local_losses_sum_the_patches_and_average_the_batch():
    # One real image with 1x2x2 patches; (a, b) = (real, refined) logits per patch.
    real = np.array([[[[0, 0], [LN3, 0]], [[0, LN3], [1, 1]]]], "float32")
    # -log p(real) per patch = log(1 + e^(b - a)): log 2, log 4/3, log 4, log 2
    expected_real = math.log(2) + math.log(4 / 3) + math.log(4) + math.log(2)
    # Two refined images of 1x1x2 patches; -log p(refined) = log(1 + e^(a - b)).
    refined = np.array([[[[0, 0], [0, 0]]], [[[LN3, 0], [0, LN3]]]], "float32")
    expected_refined = (2 * math.log(2) + math.log(4) + math.log(4 / 3)) / 2
    d_loss = float(losses.local_adversarial_discriminator_loss(real, refined))
    assert d_loss == pytest.approx(expected_real + expected_refined, rel=1e-5)
    # The refiner wants its patches called real: log(1 + e^(b - a)).
    r_loss = float(losses.local_adversarial_refiner_loss(refined))
    assert r_loss == pytest.approx((2 * math.log(2) + math.log(4 / 3) + math.log(4)) / 2,
                                   rel=1e-5)
    assert float(losses.local_adversarial_refiner_loss(real)) == pytest.approx(expected_real,
                                                                                rel=1e-5)


def test_global_losses_take_one_pair_per_image():
    real = np.array([[LN3, 0], [0, 0]], "float32")
    refined = np.array([[0, LN3]], "float32")
    expected = (math.log(4 / 3) + math.log(2)) / 2 + math.log(4 / 3)
    assert float(losses.global_adversarial_discriminator_loss(real, refined)) == \
        pytest.approx(expected, rel=1e-5)
    assert float(losses.global_adversarial_refiner_loss(refined)) == pytest.approx(
        math.log(4), rel=1e-5)
    with pytest.raises(ValueError, match=r"shape \(B, 2\), got shape \(1, 2, 2, 2\)"):
        losses.global_adversarial_refiner_loss(np.zeros((1, 2, 2, 2), "float32"))
    with pytest.raises(ValueError, match="2 class logits"):
        losses.local_adversarial_refiner_loss(np.zeros((1, 2, 2, 3), "float32"))


# A 1 x 2 x 3 image with two channels.
X = np.stack([[[1, 2, 4], [0, 3, 3]], [[3, 2, 0], [2, 1, 1]]], axis=-1)[None].astype("float32")


def test_self_regularization_feature_maps():
    (identity,) = losses.self_regularization_features(X, "identity")
    np.testing.assert_array_equal(identity, X)
    (mean,) = losses.self_regularization_features(X, "mean")
    np.testing.assert_array_equal(np.asarray(mean)[0, ..., 0], [[2, 2, 2], [1, 2, 2]])
    dy, dx = losses.self_regularization_features(X, "gradient")
    np.testing.assert_array_equal(np.asarray(dy)[0, ..., 0], [[-1, 1, -1]])
    np.testing.assert_array_equal(np.asarray(dy)[0, ..., 1], [[-1, -1, 1]])
    np.testing.assert_array_equal(np.asarray(dx)[0, ..., 0], [[1, 2], [3, 0]])
    np.testing.assert_array_equal(np.asarray(dx)[0, ..., 1], [[-1, -2], [-1, 0]])
    with pytest.raises(ValueError, match="'vgg'"):
        losses.self_regularization_features(X, "vgg")


def test_self_regularization_loss_is_the_l1_norm_per_image_averaged():
    # refined - synthetic is X for the first image and -X for the second (features are linear
    # in the image, so their differences are +-psi(X)). Per image: identity |1+2+4+0+3+3| +
    # |3+2+0+2+1+1| = 22; mean: 2+2+2+1+2+2 = 11; gradient: |dy| 3 + 3, |dx| 6 + 4 = 16; the
    # same for both images, so the average over images is that. An L1 of the batch's mean
    # difference would read 0, a sum over the batch twice the value.
    refined = np.concatenate([2 * X, np.zeros_like(X)])
    synthetic = np.concatenate([X, X])
    for feature, value in (("identity", 22), ("mean", 11), ("gradient", 16)):
        assert float(losses.self_regularization_loss(refined, synthetic, feature)) == \
            pytest.approx(value), feature
    # one unchanged image halves it: an average over images, not a sum
    assert float(losses.self_regularization_loss(np.concatenate([2 * X, X]), synthetic)) == \
        pytest.approx(11)


# ----------------------------------------------------------------------------- history buffer

def constants(*values):
    return np.array(values, "float32").reshape(-1, 1, 1, 1)


def values_of(images):
    return sorted(np.asarray(images).reshape(-1).tolist())


def test_buffer_fills_then_mixes_half_and_replaces_half():
    buffer = HistoryBuffer(6, (1, 1, 1), seed=3)
    # Fill: the first batch meets an empty buffer, so D sees the 4 current images.
    mixed = buffer.mix(constants(10, 11, 12, 13))
    assert values_of(mixed) == [10, 11, 12, 13]
    assert int(buffer.filled.numpy()) == 2
    assert values_of(buffer.images[:2]) == [10, 11]
    # Then 2 current images + 2 distinct past ones; new images are appended while filling.
    mixed = np.asarray(buffer.mix(constants(20, 21, 22, 23))).reshape(-1)
    assert mixed[:2].tolist() == [20, 21] and sorted(mixed[2:].tolist()) == [10, 11]
    mixed = np.asarray(buffer.mix(constants(30, 31, 32, 33))).reshape(-1)
    assert mixed[:2].tolist() == [30, 31] and len(set(mixed[2:]) & {10, 11, 20, 21}) == 2
    assert values_of(buffer.images) == [10, 11, 20, 21, 30, 31]
    assert int(buffer.filled.numpy()) == 6
    # Full: each batch draws 2 distinct stored images and replaces exactly 2 random entries.
    replaced = set()
    for step in range(8):
        before = np.asarray(buffer.images).reshape(-1).copy()
        new = constants(100 + 4 * step, 101 + 4 * step, 102 + 4 * step, 103 + 4 * step)
        mixed = np.asarray(buffer.mix(new)).reshape(-1)
        after = np.asarray(buffer.images).reshape(-1)
        assert mixed[:2].tolist() == [100 + 4 * step, 101 + 4 * step]
        past = mixed[2:].tolist()
        assert len(set(past)) == 2 and set(past) <= set(before.tolist())
        changed = np.flatnonzero(after != before)
        assert len(changed) == 2
        assert sorted(after[changed].tolist()) == [100 + 4 * step, 101 + 4 * step]
        replaced |= set(changed.tolist())
    assert len(replaced) > 2                     # random slots, not always the same ones
    assert int(buffer.filled.numpy()) == 6 and int(buffer.calls.numpy()) == 11


def test_buffer_that_fills_partway_appends_then_replaces():
    buffer = HistoryBuffer(5, (1, 1, 1), seed=0)
    buffer.mix(constants(1, 2, 3, 4))
    buffer.mix(constants(5, 6, 7, 8))
    before = np.asarray(buffer.images).reshape(-1).copy()        # [1, 2, 5, 6, 0]
    buffer.mix(constants(9, 10, 11, 12))
    after = np.asarray(buffer.images).reshape(-1)
    assert after[4] == 9                                          # the last free slot
    changed = np.flatnonzero(after[:4] != before[:4])
    assert len(changed) == 1 and after[changed[0]] == 10          # one random old entry
    assert int(buffer.filled.numpy()) == 5


def test_buffer_draws_are_deterministic_and_checkpointed(tmp_path):
    def run(buffer, start, n):
        return [np.asarray(buffer.mix(constants(*range(10 * i, 10 * i + 4))))
                for i in range(start, start + n)]

    a = HistoryBuffer(8, (1, 1, 1), seed=5)
    run(a, 0, 6)
    path = tf.train.Checkpoint(buffer=a).save(str(tmp_path / "ckpt"))
    expected = run(a, 6, 5)

    b = HistoryBuffer(8, (1, 1, 1), seed=5)
    tf.train.Checkpoint(buffer=b).restore(path).assert_consumed()
    assert int(b.filled.numpy()) == 8 and int(b.calls.numpy()) == 6
    got = run(b, 6, 5)
    for e, g in zip(expected, got):
        np.testing.assert_array_equal(e, g)
    other = HistoryBuffer(8, (1, 1, 1), seed=6)
    tf.train.Checkpoint(buffer=other).restore(path)
    assert any(not np.array_equal(e, g) for e, g in zip(expected, run(other, 6, 5)))


# ----------------------------------------------------------------------------- the model

def toy_batch(n=8, seed=0):
    """Smooth synthetic images; 'real' ones are other smooth images with sensor noise."""
    rng = np.random.default_rng(seed)

    def smooth(k):
        low = rng.uniform(-0.6, 0.6, (k, 5, 7, 1)).astype("float32")
        return np.asarray(tf.image.resize(low, (35, 55), "bilinear"))

    real = np.clip(smooth(n) + rng.normal(0, 0.3, (n, 35, 55, 1)), -1, 1).astype("float32")
    return {"synthetic": smooth(n), "real": real}


def make_model(lr=1e-3, **kwargs):
    keras.utils.set_random_seed(1)
    options = dict(lambda_reg=0.1, history_size=32, pretrain_r_steps=4, pretrain_d_steps=3,
                   k_g=2, k_d=1)
    options.update(kwargs)
    head = options.get("adversarial", "local")
    model = SimGAN(build_refiner(1, filters=16, blocks=1),
                   build_discriminator((35, 55, 1), head=head), **options)
    model.compile(keras.optimizers.Adam(lr), keras.optimizers.Adam(lr))
    return model


def fit(model, batches, steps):
    if isinstance(batches, list):        # cycle through the batches
        stacked = {k: np.stack([b[k] for b in batches]) for k in batches[0]}
        ds = tf.data.Dataset.from_tensor_slices(stacked).repeat()
    else:
        ds = tf.data.Dataset.from_tensors(batches).repeat()
    return model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0).history


def test_schedule_pretrains_r_then_d_then_cycles():
    model = make_model()
    steps = [model.phase_of(t) for t in range(13)]
    assert [int(p) for p, _ in steps] == [0] * 4 + [1] * 3 + [2] * 6
    # R steps while pretraining R, D steps while pretraining D, then cycles of K_g = 2 R
    # steps and K_d = 1 D step.
    assert [bool(r) for _, r in steps] == [True] * 4 + [False] * 3 + [True, True, False] * 2
    assert count_updates(13, pretrain_r_steps=4, pretrain_d_steps=3, k_g=2, k_d=1) == (8, 5)
    assert count_updates(2, pretrain_r_steps=4, pretrain_d_steps=3, k_g=2, k_d=1) == (2, 0)


def test_refiner_stays_close_after_pretraining_and_d_learns_once_adversarial():
    model = make_model(lr=3e-3, pretrain_r_steps=40, pretrain_d_steps=30, k_g=1, k_d=1)
    batches = [toy_batch(8, seed=s) for s in range(4)]
    held_out = toy_batch(8, seed=99)
    x = held_out["synthetic"]

    def d_accuracy():
        real = np.asarray(model.discriminator(held_out["real"]))
        refined = np.asarray(model.discriminator(model.refiner(x)))
        return ((real[..., 0] > real[..., 1]).mean()
                + (refined[..., 1] > refined[..., 0]).mean()) / 2

    first = fit(model, batches, 1)["r_reg_loss"][0]
    logs = fit(model, batches, 39)
    assert logs["phase"][-1] == 0 and logs["d_loss"][-1] == 0     # D has not stepped
    # After pretraining on l_reg only, R(x) is close to x.
    assert float(losses.self_regularization_loss(model.refiner(x), x)) < 0.1 * first
    assert np.mean(np.abs(np.asarray(model.refiner(x)) - x)) < 0.05
    before = d_accuracy()
    logs = fit(model, batches, 30)               # D pretraining
    after = d_accuracy()
    assert logs["phase"][-1] == 1
    assert after > 0.85 and after - before > 0.25, (before, after)
    logs = fit(model, batches, 10)               # alternating R and D steps
    assert logs["phase"][-1] == 2 and logs["r_adv_loss"][-1] > 0
    assert logs["d_acc_real"][-1] > 0.6 and logs["d_acc_refined"][-1] > 0.6


def test_one_fit_runs_every_phase_and_a_checkpoint_restores_the_buffer(tmp_path):
    model = make_model()
    logs = fit(model, toy_batch(4), 13)
    # Each optimizer stepped on its turns only (counts as in the schedule test).
    assert int(model.iteration.numpy()) == 13
    assert int(model.r_optimizer.iterations.numpy()) == 8
    assert int(model.d_optimizer.iterations.numpy()) == 5
    assert int(model.buffer.calls.numpy()) == 5 and int(model.buffer.filled.numpy()) == 10
    assert logs["phase"][-1] == 2.0
    assert all(np.isfinite(v[-1]) for v in logs.values())
    # As runner.restore saves it: the model (networks, counter) and the buffer.
    path = tf.train.Checkpoint(model=model, buffer=model.buffer).save(str(tmp_path / "c"))
    fresh = make_model()
    tf.train.Checkpoint(model=fresh, buffer=fresh.buffer).restore(path).assert_consumed()
    np.testing.assert_array_equal(fresh.buffer.images.numpy(), model.buffer.images.numpy())
    assert np.abs(model.buffer.images.numpy()[:10]).sum() > 0
    for name in ("filled", "calls"):
        assert int(getattr(fresh.buffer, name).numpy()) == int(getattr(model.buffer, name))
    assert int(fresh.iteration.numpy()) == 13


def test_global_ablation_without_history_trains():
    model = make_model(adversarial="global", use_history=False)
    model.run_eagerly = True                     # the graph path is covered above
    assert model.buffer is None
    logs = fit(model, toy_batch(4), 10)
    assert all(np.isfinite(v[-1]) for v in logs.values())
    assert int(model.d_optimizer.iterations.numpy()) == 4


def test_bad_options_are_named():
    with pytest.raises(ValueError, match=r"\(B, 2\) logits, got output shape"):
        SimGAN(build_refiner(1, filters=4, blocks=0), build_discriminator((35, 55, 1)),
               adversarial="global")
    with pytest.raises(ValueError, match="k_g: expected >= 1, got 0"):
        SimGAN(build_refiner(1, filters=4, blocks=0), build_discriminator((35, 55, 1)), k_g=0)
