"""SimGAN and FCR-alphaGAN train steps against their objectives, through the public API
(constructor, compile, train_on_batch) on tiny fixed batches, with plain SGD so that an update
is -lr * gradient.

SimGAN: the refiner's step is the gradient of l_real(D(R(x))) + lambda l_reg(R(x), x) (eq. 4)
and both terms reach the refiner; while pretraining only lambda l_reg does; D's step is the
gradient of eq. 2 and leaves R alone.
FCR-alphaGAN: which networks each cost reaches, read from which networks' weights change an
update: E's update depends on C (code loss) and G (reconstruction) but not on D; G's depends
on D; D's on G; C's on E but not on D; in phase 2 the refiner's depends on D and E, G stay.
"""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan3d import losses
from tfgan3d.models.fcr_alphagan import FCRAlphaGAN
from tfgan3d.models.simgan import SimGAN
from tfgan3d.networks.simgan import build_discriminator, build_refiner
from tfgan3d.networks.voxel import VoxelNetSpec, build_fcr_networks


def flat(arrays):
    return np.concatenate([np.asarray(a).ravel() for a in arrays])


def weights(net):
    return [v.numpy().copy() for v in net.trainable_variables]


def update(before, net):
    """w_before - w_after of a network's trainable weights, flattened."""
    return flat([b - v.numpy() for b, v in zip(before, net.trainable_variables)])


def close(actual, expected, rel=1e-3):
    return float(np.max(np.abs(actual - expected))) <= rel * float(np.max(np.abs(expected)))


# ----------------------------------------------------------------------------- SimGAN

def eye_batch(n=4, seed=0):
    """Smooth 35 x 55 'synthetic' images and noisy 'real' ones, as tensors."""
    rng = np.random.default_rng(seed)

    def smooth(k):
        low = rng.uniform(-0.6, 0.6, (k, 5, 7, 1)).astype("float32")
        return tf.image.resize(low, (35, 55), "bilinear")

    real = tf.clip_by_value(smooth(n) + rng.normal(0, 0.3, (n, 35, 55, 1)), -1, 1)
    return {"synthetic": smooth(n), "real": tf.cast(real, tf.float32)}


def simgan(lr, *, lambda_reg=0.1, pretrain_r_steps=0, pretrain_d_steps=0):
    """A SimGAN whose first train step is chosen by the schedule: a refiner step in phase 2
    (no pretraining), a pretraining refiner step, or a pretraining D step. No history buffer
    (the first D batch would hold current images only anyway)."""
    keras.utils.set_random_seed(1)
    model = SimGAN(build_refiner(1, filters=8, blocks=1), build_discriminator((35, 55, 1)),
                   lambda_reg=lambda_reg, use_history=False, pretrain_r_steps=pretrain_r_steps,
                   pretrain_d_steps=pretrain_d_steps, k_g=1, k_d=1)
    model.compile(keras.optimizers.SGD(lr), keras.optimizers.SGD(lr))
    model.run_eagerly = True
    return model


def refiner_gradients(model, batch):
    """(grad of l_real, grad of l_reg) w.r.t. the refiner's weights, at the model's weights."""
    x = batch["synthetic"]
    with tf.GradientTape(persistent=True) as tape:
        refined = model.refiner(x, training=True)
        adv = losses.local_adversarial_refiner_loss(model.discriminator(refined, training=True))
        reg = losses.self_regularization_loss(refined, x, "identity")
    variables = model.refiner.trainable_variables
    return flat(tape.gradient(adv, variables)), flat(tape.gradient(reg, variables))


def test_refiner_step_is_the_gradient_of_realism_plus_self_regularisation():
    lr, batch = 1e-3, eye_batch()
    g_adv, g_reg = refiner_gradients(simgan(lr), batch)
    # lambda so that both terms give gradients of one size: dropping either breaks the match
    lam = float(np.max(np.abs(g_adv)) / np.max(np.abs(g_reg)))
    model = simgan(lr, lambda_reg=lam)
    r0, d0 = weights(model.refiner), weights(model.discriminator)
    logs = model.train_on_batch(batch, return_dict=True)
    applied = update(r0, model.refiner) / lr
    expected = g_adv + lam * g_reg
    assert not close(expected, g_adv, 0.05) and not close(expected, lam * g_reg, 0.05)
    assert close(applied, expected), np.max(np.abs(applied - expected))
    assert np.max(np.abs(update(d0, model.discriminator))) == 0.0    # a refiner step only
    assert logs["r_loss"] == pytest.approx(logs["r_adv_loss"] + lam * logs["r_reg_loss"],
                                           rel=1e-5)


def test_pretraining_refiner_step_is_self_regularisation_only():
    lr, lam, batch = 1e-3, 0.5, eye_batch()
    model = simgan(lr, lambda_reg=lam, pretrain_r_steps=1)
    _, g_reg = refiner_gradients(model, batch)
    r0 = weights(model.refiner)
    model.train_on_batch(batch)
    applied = update(r0, model.refiner) / lr
    assert close(applied, lam * g_reg), np.max(np.abs(applied - lam * g_reg))


def test_discriminator_step_is_the_gradient_of_eq2_and_leaves_the_refiner():
    lr, batch = 1e-3, eye_batch()
    model = simgan(lr, pretrain_d_steps=1)
    r0, d0 = weights(model.refiner), weights(model.discriminator)
    refined = model.refiner(batch["synthetic"], training=True)
    with tf.GradientTape() as tape:
        d_loss = losses.local_adversarial_discriminator_loss(
            model.discriminator(batch["real"], training=True),
            model.discriminator(refined, training=True))
    expected = flat(tape.gradient(d_loss, model.discriminator.trainable_variables))
    model.train_on_batch(batch)
    applied = update(d0, model.discriminator) / lr
    assert close(applied, expected), np.max(np.abs(applied - expected))
    assert np.max(np.abs(update(r0, model.refiner))) == 0.0


def test_discriminator_step_mixes_buffer_images_while_the_buffer_still_fills():
    """With the history buffer on (capacity 8, batch 4): the first D step sees the 4 current
    refined images and stores 2; the second, with the buffer 2 of 8 full, sees 2 current and
    the 2 stored ones (section 2.3), not its 4 current images."""
    lr, first, second = 1e-3, eye_batch(seed=0), eye_batch(seed=1)
    keras.utils.set_random_seed(1)
    model = SimGAN(build_refiner(1, filters=8, blocks=1), build_discriminator((35, 55, 1)),
                   lambda_reg=0.1, use_history=True, history_size=8, pretrain_r_steps=0,
                   pretrain_d_steps=2, k_g=1, k_d=1)
    model.compile(keras.optimizers.SGD(lr), keras.optimizers.SGD(lr))
    model.run_eagerly = True
    model.train_on_batch(first)
    assert int(model.buffer.filled.numpy()) == 2
    stored = model.refiner(first["synthetic"], training=True)[:2]     # R is not trained here
    current = model.refiner(second["synthetic"], training=True)
    D = model.discriminator

    def gradient(refined):
        with tf.GradientTape() as tape:
            d_loss = losses.local_adversarial_discriminator_loss(
                D(second["real"], training=True), D(refined, training=True))
        return flat(tape.gradient(d_loss, D.trainable_variables))

    expected = gradient(tf.concat([current[:2], stored], 0))
    current_only = gradient(current)
    assert not close(current_only, expected, 0.01)
    d0 = weights(D)
    model.train_on_batch(second)
    applied = update(d0, D) / lr
    assert close(applied, expected), np.max(np.abs(applied - expected))
    assert int(model.buffer.filled.numpy()) == 4


# ----------------------------------------------------------------------------- FCR-alphaGAN

FCR_TINY = dict(grid=(16, 8, 16), widths=(4, 8, 8), kernel=(3, 3, 3), latent_channels=4,
                refiner_channels=4, refiner_blocks=1, code_d_units=(16, 16))
NETS = ("encoder", "generator", "discriminator", "code_discriminator", "refiner")


def scenes(n=2, seed=0):
    """Class labels (n, 16, 8, 16): floor, ceiling, a wall and a box at a random place."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((n, 16, 8, 16), "int32")
    labels[:, :, 0, :], labels[:, :, -1, :], labels[:, 0, :, :] = 2, 1, 3
    for i in range(n):
        x0, z0 = rng.integers(3, 10, 2)
        labels[i, x0:x0 + 4, 1:4, z0:z0 + 4] = 8
    return tf.constant(labels)


def fcr_updates(phase=1, perturb=None, lr=0.05):
    """{network: its update} after one train step of a fresh model (seeded weights and noise),
    with the weights of network `perturb` moved first by a fixed random amount."""
    model = FCRAlphaGAN(build_fcr_networks(VoxelNetSpec(**FCR_TINY), seed=0),
                        variant="alphagan", seed=0, eg_steps=1)
    model.compile(**{f"{k}_optimizer": keras.optimizers.SGD(lr) for k in "egdcr"})
    model.run_eagerly = True
    if perturb is not None:
        rng = np.random.default_rng(7)
        for v in getattr(model, perturb).trainable_variables:
            scale = float(np.std(v.numpy())) or 0.1
            v.assign(v + rng.normal(0, scale, v.shape).astype("float32"))
    model.set_phase(phase)
    before = {name: weights(getattr(model, name)) for name in NETS}
    model.train_on_batch(scenes())
    return {name: update(before[name], getattr(model, name)) for name in NETS}


def same(a, b):
    return float(np.max(np.abs(a - b))) <= 1e-6 * max(float(np.max(np.abs(a))), 1e-12)


def depends(a, b):
    """Differs by far more than rounding. An update that does not depend on a network comes
    out bit for bit equal; the reconstruction term dominates the updates of E, G and R, so the
    share of an adversarial term can be well under 1% (about 3e-4 for R)."""
    return float(np.max(np.abs(a - b))) > 1e-5 * float(np.max(np.abs(a)))


def test_fcr_phase1_each_cost_reaches_its_networks():
    base = fcr_updates()
    for name in ("encoder", "generator", "discriminator", "code_discriminator"):
        assert np.max(np.abs(base[name])) > 0, f"{name} did not move"
    assert np.max(np.abs(base["refiner"])) == 0           # phase 2's network
    with_c = fcr_updates(perturb="code_discriminator")
    with_d = fcr_updates(perturb="discriminator")
    with_g = fcr_updates(perturb="generator")
    with_e = fcr_updates(perturb="encoder")
    # Encoder: recons(x, G(E(x))) + code loss of C(E(x)); D is not in its cost.
    assert depends(base["encoder"], with_c["encoder"]), "the code loss does not reach E"
    assert depends(base["encoder"], with_g["encoder"]), "the reconstruction does not reach E"
    assert same(base["encoder"], with_d["encoder"]), "E's update depends on D"
    # Generator: recons + D's verdict on G(z) and G(E(x)).
    assert depends(base["generator"], with_d["generator"]), "the GAN loss does not reach G"
    # Discriminator: its fakes come from G.
    assert depends(base["discriminator"], with_g["discriminator"])
    # Code discriminator: z (real) against E(x) (fake); D plays no part.
    assert depends(base["code_discriminator"], with_e["code_discriminator"])
    assert same(base["code_discriminator"], with_d["code_discriminator"])


def test_fcr_phase2_trains_the_refiner_against_d_with_e_and_g_frozen():
    base = fcr_updates(phase=2)
    with_d = fcr_updates(phase=2, perturb="discriminator")
    for name in ("encoder", "generator", "code_discriminator"):
        assert np.max(np.abs(base[name])) == 0, f"{name} moved in phase 2"
    assert np.max(np.abs(base["refiner"])) > 0 and np.max(np.abs(base["discriminator"])) > 0
    assert depends(base["refiner"], with_d["refiner"]), "the GAN loss does not reach R"
