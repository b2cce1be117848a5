import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan3d import losses
from tfgan3d.models.pix2pix import Pix2Pix
from tfgan3d.networks.pix2pix import build_patchgan_discriminator, build_unet_generator


def toy_batch(n=4, size=32, seed=0):
    """RGB whose red channel encodes the depth target, with an invalid corner."""
    rng = np.random.default_rng(seed)
    depth = rng.uniform(-1, 1, (n, size // 8, size // 8, 1)).repeat(8, 1).repeat(8, 2)
    rgb = np.concatenate([depth, rng.uniform(-1, 1, (n, size, size, 2))], -1)
    valid = np.ones_like(depth)
    valid[:, :4, :4] = 0
    return {"real_a": rgb.astype("float32"), "real_b": depth.astype("float32"),
            "valid_b": valid.astype("float32")}


def make_model(d_update="alternating", norm="batch", dropout=0.5, opt=None):
    keras.utils.set_random_seed(1)
    g = build_unet_generator(3, 1, size=(None, None), n_down=5, ngf=8, norm=norm,
                             bottleneck_norm=False, dropout=dropout)
    d = build_patchgan_discriminator(3, 1, size=(32, 32), ndf=8, norm=norm)
    model = Pix2Pix(g, d, lambda_l1=100.0, d_update=d_update)
    opt = opt or (lambda: keras.optimizers.Adam(2e-4, beta_1=0.5))
    model.compile(g_optimizer=opt(), d_optimizer=opt())
    return model


@pytest.mark.parametrize("d_update", ["alternating", "simultaneous"])
def test_a_few_steps_lower_the_l1_loss(d_update):
    model = make_model(d_update, opt=lambda: keras.optimizers.Adam(1e-3, beta_1=0.5))
    batch = toy_batch()
    l1 = []
    for _ in range(30):
        model.reset_metrics()           # trackers hold this step's values only
        logs = model.train_on_batch(batch, return_dict=True)
        l1.append(logs["g_l1_loss"])
    assert np.mean(l1[-5:]) < 0.6 * l1[0], l1
    assert np.isfinite(logs["d_loss"])


def sgd_model(d_update, lambda_l1=1.0, lr=0.5, d_lr=None):
    """make_model with plain SGD (an update is -lr * gradient), no dropout, lambda_l1 given;
    train_step runs eagerly (one step in a fraction of a second instead of a trace)."""
    model = make_model(d_update, dropout=0.0, opt=lambda: keras.optimizers.SGD(lr))
    model.lambda_l1 = float(lambda_l1)
    model.run_eagerly = True
    if d_lr is not None:
        model.d_optimizer.learning_rate.assign(d_lr)
    return model


def tensors(batch):
    """An eager train_step takes tensors (fit's datasets give them; train_on_batch passes
    numpy arrays through unchanged)."""
    return {k: tf.constant(v) for k, v in batch.items()}


def weights(net):
    return [v.numpy().copy() for v in net.trainable_variables]


def step_gradient(before, net, lr):
    """The gradient an SGD step of rate lr applied: (w_before - w_after) / lr, flattened."""
    return np.concatenate([((b - v.numpy()) / lr).ravel()
                           for b, v in zip(before, net.trainable_variables)])


def flat(grads):
    return np.concatenate([np.asarray(g).ravel() for g in grads])


def g_objective_gradient(twin, batch, lambda_l1, terms=("gan", "l1")):
    """dL_G/dtheta_G of BCE(D(x, G(x)), 1) + lambda * masked L1 on the twin's networks."""
    real_a, real_b, valid = (tf.constant(batch[k]) for k in ("real_a", "real_b", "valid_b"))
    with tf.GradientTape() as tape:
        fake_b = twin.generator(real_a, training=True)
        loss = 0.0
        if "gan" in terms:
            loss += losses.gan_generator_loss(twin.discriminator([real_a, fake_b], training=True))
        if "l1" in terms:
            loss += lambda_l1 * losses.masked_l1_loss(real_b, fake_b, valid)
    return flat(tape.gradient(loss, twin.generator.trainable_variables))


def close(actual, expected, rel=1e-3):
    """max |actual - expected| within rel * max |expected|."""
    return float(np.max(np.abs(actual - expected))) <= rel * float(np.max(np.abs(expected)))


@pytest.mark.parametrize("d_update", ["alternating", "simultaneous"])
def test_g_step_is_the_gradient_of_its_objective_against_the_right_d(d_update):
    """One SGD step: G moves by -lr * grad of BCE(D(x, G(x)), 1) + lambda * L1 over valid
    pixels, where D is the updated discriminator in the paper's alternating schedule and the
    old one in the simultaneous variant. Both terms are large enough that dropping either (or
    stopping the gradient of G(x) into D) breaks the match."""
    lr, lambda_l1 = 0.5, 3.0      # not 1: a step that ignored lambda would match too
    batch = toy_batch(2)
    model, twin = sgd_model(d_update, lambda_l1, lr), sgd_model(d_update, lambda_l1, lr)
    g0 = weights(model.generator)
    for a, b in zip(g0, weights(twin.generator)):
        np.testing.assert_array_equal(a, b)              # the twin starts from the same weights
    model.train_on_batch(tensors(batch))
    applied = step_gradient(g0, model.generator, lr)

    with_old_d = g_objective_gradient(twin, batch, lambda_l1)
    twin.discriminator.set_weights(model.discriminator.get_weights())
    with_new_d = g_objective_gradient(twin, batch, lambda_l1)
    # The test can tell the two Ds and the two terms apart:
    assert not close(with_new_d, with_old_d, 2e-2)
    twin.discriminator.set_weights(model.discriminator.get_weights())
    gan_only = g_objective_gradient(twin, batch, lambda_l1, terms=("gan",))
    assert np.max(np.abs(gan_only)) > 0.05 * np.max(np.abs(with_new_d))
    expected = with_new_d if d_update == "alternating" else with_old_d
    assert close(applied, expected), np.max(np.abs(applied - expected))


def test_alternating_d_step_happens_before_g_sees_d():
    """The paper's schedule: G's step is taken against the D of after D's step. With D's rate
    0 the alternating G step equals the gradient under the initial D; with D's rate 0.5 it
    equals the gradient under the stepped D and not the one under the initial D."""
    lr, batch = 0.5, toy_batch(2)
    for d_lr in (0.0, lr):
        model, twin = sgd_model("alternating", 1.0, lr, d_lr), sgd_model("alternating", 1.0, lr)
        g0, d0 = weights(model.generator), weights(model.discriminator)
        model.train_on_batch(tensors(batch))
        applied = step_gradient(g0, model.generator, lr)
        under_old_d = g_objective_gradient(twin, batch, 1.0)
        d_moved = max(float(np.max(np.abs(a - b)))
                      for a, b in zip(d0, weights(model.discriminator)))
        if d_lr == 0.0:
            assert d_moved == 0.0
            assert close(applied, under_old_d)
        else:
            assert d_moved > 1e-4
            assert not close(applied, under_old_d, 2e-2)


@pytest.mark.parametrize("d_update", ["alternating", "simultaneous"])
def test_d_step_is_the_gradient_of_half_the_bce_of_both_pairs(d_update):
    lr, batch = 0.5, toy_batch(2)
    model, twin = sgd_model(d_update, 1.0, lr), sgd_model(d_update, 1.0, lr)
    d0 = weights(model.discriminator)
    model.train_on_batch(tensors(batch))
    applied = step_gradient(d0, model.discriminator, lr)
    real_a, real_b = tf.constant(batch["real_a"]), tf.constant(batch["real_b"])
    fake_b = twin.generator(real_a, training=True)
    with tf.GradientTape() as tape:
        d_loss = 0.5 * losses.gan_discriminator_loss(
            twin.discriminator([real_a, real_b], training=True),
            twin.discriminator([real_a, fake_b], training=True))
    expected = flat(tape.gradient(d_loss, twin.discriminator.trainable_variables))
    assert close(applied, expected), np.max(np.abs(applied - expected))


@pytest.mark.parametrize("d_update", ["alternating", "simultaneous"])
def test_invalid_target_pixels_give_no_l1_gradient(d_update):
    """With D frozen (rate 0), G's step does not depend on the target at invalid pixels, and
    does depend on it at valid ones; the logged L1 is the mean over valid pixels."""
    lr, batch = 0.5, toy_batch(2)
    invalid_changed = {**batch, "real_b": np.where(batch["valid_b"] > 0, batch["real_b"],
                                                   -batch["real_b"] + 0.5)}
    valid_changed = {**batch, "real_b": np.where(batch["valid_b"] > 0, -batch["real_b"],
                                                 batch["real_b"])}
    steps, l1 = {}, {}
    for name, b in (("base", batch), ("invalid", invalid_changed), ("valid", valid_changed)):
        model = sgd_model(d_update, 1.0, lr, d_lr=0.0)
        g0 = weights(model.generator)
        fake_b = model.generator(b["real_a"], training=True).numpy()
        logs = model.train_on_batch(tensors(b), return_dict=True)
        steps[name], l1[name] = step_gradient(g0, model.generator, lr), logs["g_l1_loss"]
        valid = b["valid_b"] > 0
        assert l1[name] == pytest.approx(np.abs(b["real_b"] - fake_b)[valid].mean(), rel=1e-4)
    np.testing.assert_allclose(steps["invalid"], steps["base"], rtol=0,
                               atol=1e-6 * np.max(np.abs(steps["base"])))
    assert l1["invalid"] == pytest.approx(l1["base"], rel=1e-6)
    assert not close(steps["valid"], steps["base"], 1e-2)


MIRRORED = textwrap.dedent("""
    import os, sys, numpy as np
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
    from tfgan3d import distribute
    distribute.split_cpu(2)
    import keras, tensorflow as tf
    sys.path.insert(0, {tests!r})
    from test_pix2pix_model import make_model, toy_batch
    batch = toy_batch(4)
    sgd = lambda: keras.optimizers.SGD(0.1)
    single = make_model(norm="instance", dropout=0.0, opt=sgd)
    start = [w.numpy() for w in single.weights]
    single.train_on_batch(batch)
    strategy = distribute.get_strategy("mirrored")
    assert strategy.num_replicas_in_sync == 2, strategy.num_replicas_in_sync
    with strategy.scope():
        mirrored = make_model(norm="instance", dropout=0.0, opt=sgd)
    for w, v in zip(mirrored.weights, start):
        w.assign(v)
    ds = tf.data.Dataset.from_tensors(batch)
    mirrored.fit(ds, epochs=1, steps_per_epoch=1, verbose=0)
    diffs = [float(np.max(np.abs(a.numpy() - b.numpy())))
             for a, b in zip(single.weights, mirrored.weights)]
    moved = [float(np.max(np.abs(a.numpy() - s))) for a, s in zip(single.weights, start)]
    print("MAXDIFF", max(diffs), "MAXMOVE", max(moved))
""")


def test_mirrored_strategy_on_two_logical_cpus_matches_one_device():
    """The same global batch split over 2 replicas gives the same SGD update as one device:
    losses are scaled by the global batch (an unscaled sum would double the step)."""
    import pathlib
    code = MIRRORED.format(tests=str(pathlib.Path(__file__).parent))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    line = [l for l in out.stdout.splitlines() if l.startswith("MAXDIFF")][0].split()
    max_diff, max_move = float(line[1]), float(line[3])
    assert max_move > 1e-3          # the step really changed the weights
    assert max_diff < 1e-3 * max_move
