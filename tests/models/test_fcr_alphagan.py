import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan3d.losses import gan_discriminator_loss, gan_generator_loss, voxel_reconstruction_loss
from tfgan3d.models.fcr_alphagan import LATENT1D_VARIANTS, VAE_VARIANTS, FCRAlphaGAN
from tfgan3d.networks.voxel import VoxelNetSpec, build_fcr_networks

TINY = dict(grid=(16, 8, 16), widths=(4, 8, 8), kernel=(3, 3, 3), latent_channels=4,
            refiner_channels=4, refiner_blocks=1, code_d_units=(16, 16))


def fcr(variant="alphagan", seed=0, **kwargs):
    """The scheme on TINY networks of the variant's shape, weights seeded by `seed`."""
    spec = VoxelNetSpec(**TINY, latent1d=variant in LATENT1D_VARIANTS)
    networks = build_fcr_networks(spec, seed=seed, code_discriminator=variant not in VAE_VARIANTS)
    return FCRAlphaGAN(networks, variant=variant, seed=seed, **kwargs)


def simple_scenes(n=4, seed=0):
    """Class labels (n, 16, 8, 16): floor, ceiling, one wall and a table at a random place."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((n, 16, 8, 16), "int32")
    labels[:, :, 0, :] = 2
    labels[:, :, -1, :] = 1
    labels[:, 0, :, :] = 3
    for i in range(n):
        x0, z0 = rng.integers(3, 10, 2)
        labels[i, x0:x0 + 4, 1:4, z0:z0 + 4] = 8
    return labels


def make_model(variant="alphagan", lr=3e-3, run_eagerly=False, sgd=False, **kwargs):
    model = fcr(variant=variant, seed=0, **kwargs)
    opt = lambda: (keras.optimizers.SGD(lr) if sgd  # noqa: E731
                   else keras.optimizers.Adam(lr, beta_1=0.5, beta_2=0.9))
    model.compile(e_optimizer=opt(), g_optimizer=opt(), d_optimizer=opt(),
                  c_optimizer=None if variant.startswith("vae") else opt(), r_optimizer=opt(),
                  run_eagerly=run_eagerly)
    return model


def snapshot(network):
    return [w.numpy().copy() for w in network.weights]


def changed(before, network):
    return [not np.array_equal(b, w.numpy()) for b, w in zip(before, network.weights)]


@pytest.fixture(scope="module")
def phase1():
    """`fit` (graph mode, batch size unknown to the trace) on 2 fixed label scenes, one
    encoder/generator pair per iteration (halves the trace; the variants test runs two)."""
    model = make_model(eg_steps=1)
    nets = ("encoder", "generator", "discriminator", "code_discriminator", "refiner")
    before = {name: snapshot(getattr(model, name)) for name in nets}
    scenes = simple_scenes(2)
    data = tf.data.Dataset.from_tensor_slices(scenes).batch(2).repeat()
    # one step per epoch: the history holds every step's losses
    history = model.fit(data, epochs=20, steps_per_epoch=1, verbose=0, shuffle=False).history
    logs = [dict(zip(history, values)) for values in zip(*history.values())]
    return model, before, logs, scenes


def test_phase1_lowers_the_reconstruction_loss(phase1):
    model, _, logs, _ = phase1
    assert set(logs[0]) == {"recons_loss", "e_loss", "g_loss", "d_loss", "c_loss", "code_mean",
                            "code_std"}
    recons = [log["recons_loss"] for log in logs]
    assert all(np.isfinite(v) for log in logs for v in log.values())
    assert np.mean(recons[-3:]) < 0.85 * recons[0], recons


def test_phase1_trains_e_g_d_c_and_leaves_the_refiner(phase1):
    model, before, _, _ = phase1
    assert not any(changed(before["refiner"], model.refiner))
    for name in ("generator", "discriminator", "code_discriminator"):
        assert all(changed(before[name], getattr(model, name))), name
    # alphaGAN codes with the mean: the z_log_sigma head gets no gradient, the rest all do
    moved = dict(zip([w.path for w in model.encoder.weights], changed(before["encoder"],
                                                                      model.encoder)))
    assert [path for path, m in moved.items() if not m] == ["z_log_sigma/kernel"]


def test_helpers_shapes(phase1):
    model, _, _, scenes = phase1
    real = keras.ops.one_hot(scenes[:2], 12)
    assert model.latent_shape == (2, 1, 2, 4)
    z_hat = model.encode(real)
    assert tuple(z_hat.shape) == (2, 2, 1, 2, 4)
    assert tuple(model.sample_z(3).shape) == (3, 2, 1, 2, 4)
    probs = model.decode(z_hat)
    assert tuple(probs.shape) == (2, 16, 8, 16, 12)
    assert tuple(model.refine(probs).shape) == tuple(probs.shape)
    np.testing.assert_allclose(keras.ops.sum(model(real), -1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(model(scenes[:2]), model(real), rtol=1e-6)   # labels in


def test_phase2_trains_only_the_refiner_and_discriminator(phase1):
    model, _, _, scenes = phase1
    nets = ("encoder", "generator", "discriminator", "code_discriminator", "refiner")
    before = {name: snapshot(getattr(model, name)) for name in nets}
    model.set_phase(2)
    assert model.phase == 2 and model.train_function is None
    model.run_eagerly = True           # saves a trace; graph mode runs the same code
    logs = [model.train_on_batch(scenes[:2], return_dict=True) for _ in range(2)]
    assert set(logs[-1]) == {"r_recons_loss", "r_loss", "d_refined_loss"}
    assert all(np.isfinite(v) for v in logs[-1].values())
    # every weight, batch-norm moving statistics included, of E, G and C stays as it was
    for name in ("encoder", "generator", "code_discriminator"):
        assert not any(changed(before[name], getattr(model, name))), name
    assert all(changed(before["refiner"], model.refiner))
    assert all(changed(before["discriminator"], model.discriminator))
    model.set_phase(1)
    assert model.phase == 1 and model.train_function is None


@pytest.mark.parametrize("variant", ["vae", "latent1d", "vae1d"])
def test_variants_run_one_step(variant):
    model = make_model(variant, eg_steps=2, run_eagerly=True)
    scenes = keras.ops.one_hot(simple_scenes(2), 12)                 # one-hot input as well
    logs = model.train_on_batch(scenes, return_dict=True)
    assert all(np.isfinite(v) for v in logs.values())
    if variant.startswith("vae"):
        assert model.code_discriminator is None
        assert set(logs) == {"recons_loss", "e_loss", "g_loss", "d_loss", "kl_loss", "code_mean",
                             "code_std"}
        assert logs["kl_loss"] > 0
        # e_loss = recons + KL (kl_weight 1)
        assert logs["e_loss"] == pytest.approx(logs["recons_loss"] + logs["kl_loss"], rel=1e-5)
    else:
        assert "c_loss" in logs
    if variant.endswith("1d"):
        assert model.latent_shape == (16,)
        assert tuple(model.encode(scenes).shape) == (2, 16)


def test_arguments_are_checked():
    with pytest.raises(ValueError, match="variant.*'gan'"):
        fcr(variant="gan")
    with pytest.raises(ValueError, match="eg_steps"):
        fcr(eg_steps=0)
    with pytest.raises(ValueError, match="gan_loss.*'wgan'"):
        fcr(gan_loss="wgan")
    with pytest.raises(ValueError, match="refiner_d_input.*'hard'"):
        fcr(refiner_d_input="hard")
    with pytest.raises(ValueError, match="no code discriminator"):
        FCRAlphaGAN(build_fcr_networks(VoxelNetSpec(**TINY)), variant="vae")
    with pytest.raises(ValueError, match="trains a code discriminator"):
        FCRAlphaGAN(build_fcr_networks(VoxelNetSpec(**TINY), code_discriminator=False))
    with pytest.raises(ValueError, match="latent1d=True"):
        FCRAlphaGAN(build_fcr_networks(VoxelNetSpec(**TINY)), variant="latent1d")
    model = fcr()
    adam = keras.optimizers.Adam()
    with pytest.raises(ValueError, match="own optimizer"):
        model.compile(e_optimizer=adam, g_optimizer=adam, d_optimizer=keras.optimizers.Adam(),
                      c_optimizer=keras.optimizers.Adam())
    with pytest.raises(ValueError, match="c_optimizer"):
        model.compile(e_optimizer=keras.optimizers.Adam(), g_optimizer=keras.optimizers.Adam(),
                      d_optimizer=keras.optimizers.Adam())
    with pytest.raises(ValueError, match="phase must be 1 or 2"):
        model.set_phase(3)
    model.compile(e_optimizer=keras.optimizers.Adam(), g_optimizer=keras.optimizers.Adam(),
                  d_optimizer=keras.optimizers.Adam(), c_optimizer=keras.optimizers.Adam())
    with pytest.raises(ValueError, match="r_optimizer"):
        model.set_phase(2)


def test_one_iteration_applies_each_players_own_gradient():
    """eg_steps=1 with SGD(1): every weight moves by minus the gradient of its player's loss,
    all taken at the weights before the iteration, as the module docstring says."""
    model = make_model(lr=1.0, sgd=True, eg_steps=1, run_eagerly=True)
    ref = fcr(seed=0)                                # the same initial weights
    real = keras.ops.one_hot(simple_scenes(2), 12)
    z = keras.random.normal((2, *ref.latent_shape), seed=keras.random.SeedGenerator(0))
    with tf.GradientTape(persistent=True) as tape:
        # the paper's costs, written out: x real, G(z) and G(E(x)) fake for D; z real and
        # E(x) fake for C
        z_hat = ref.encoder(real, training=True)[0]
        rec, fake = ref.generator(z_hat, training=True), ref.generator(z, training=True)
        d_rec = ref.discriminator(rec, training=True)
        d_fake = ref.discriminator(fake, training=True)
        d_real = ref.discriminator(real, training=True)
        # C sees both kinds of codes in one call (its batch norm standardises them together)
        c_real, c_fake = keras.ops.split(ref.code_discriminator(
            keras.ops.concatenate([z, z_hat], 0), training=True), 2)
        recons = voxel_reconstruction_loss(real, rec)
        losses = {
            "encoder": gan_generator_loss(c_fake) + recons,
            "generator": recons + gan_generator_loss(d_fake) + gan_generator_loss(d_rec),
            "discriminator": (gan_discriminator_loss(d_real, d_fake)
                              + keras.ops.mean(keras.ops.softplus(d_rec))),  # -log(1 - D)
            "code_discriminator": gan_discriminator_loss(c_real, c_fake),
        }
    before = {name: snapshot(getattr(model, name)) for name in losses}
    model.train_on_batch(real)
    for name, loss in losses.items():
        network = getattr(model, name)
        grads = tape.gradient(loss, getattr(ref, name).trainable_variables)
        trainable = {id(w) for w in network.trainable_variables}
        old = [b for b, w in zip(before[name], network.weights) if id(w) in trainable]
        for g, b, w in zip(grads, old, network.trainable_variables):
            if g is None:                                            # z_log_sigma head
                assert w.path == "z_log_sigma/kernel"
                np.testing.assert_array_equal(w.numpy(), b)
                continue
            g = g.numpy()
            np.testing.assert_allclose(b - w.numpy(), g, rtol=1e-3,
                                       atol=1e-4 * np.abs(g).max(), err_msg=w.path)


# ----------------------------------------------------------------------------- issue 12 fixes

def _frozen_model(c_lr=0.0, **kwargs):
    """A model whose E, G and D do not learn (SGD with rate 0): only batch-norm statistics and,
    with c_lr > 0, the code discriminator change."""
    model = fcr(seed=0, eg_steps=1, **kwargs)
    sgd0 = lambda: keras.optimizers.SGD(0.0)  # noqa: E731
    model.compile(e_optimizer=sgd0(), g_optimizer=sgd0(), d_optimizer=sgd0(),
                  c_optimizer=keras.optimizers.Adam(c_lr, beta_1=0.5, beta_2=0.9) if c_lr
                  else sgd0(), r_optimizer=sgd0(), run_eagerly=True)
    return model


def test_generators_evaluation_does_not_depend_on_the_prior_batches_it_saw():
    """G's moving statistics (what evaluation decodes with) follow G(E(x)) only: a run whose
    prior draws are 30 times wider ends with the same statistics and reconstructions."""
    scenes = simple_scenes(2)
    plain, wide = _frozen_model(), _frozen_model()
    start = snapshot(plain.generator)
    draw = wide.sample_z
    wide.sample_z = lambda n: 30.0 * draw(n)
    for _ in range(3):
        plain.train_on_batch(scenes)
        wide.train_on_batch(scenes)
    moving = [w.path for w in plain.generator.weights if not w.trainable]
    assert moving and any(changed(start, plain.generator))   # the statistics did move
    for a, b, path in zip(plain.generator.non_trainable_weights,
                          wide.generator.non_trainable_weights, moving):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, err_msg=path)
    np.testing.assert_allclose(plain(scenes), wide(scenes), rtol=1e-4, atol=1e-6)


def test_code_discriminator_separates_the_prior_from_narrow_codes():
    """E(x) of a fresh encoder is much narrower than N(0, I); C, trained alone for a few steps
    inside phase 1, must tell them apart (two separate batch-normed calls stay at chance)."""
    model = _frozen_model(c_lr=1e-2)
    scenes = simple_scenes(2)
    z_hat = model.encode(keras.ops.one_hot(scenes, 12), training=True)
    assert float(keras.ops.std(z_hat)) < 0.2
    # train_on_batch resets the trackers: each log is that step's loss
    # (Adam at 1e-2 oscillates over the first 15 steps; by 40 it has settled well below chance)
    c_losses = [model.train_on_batch(scenes, return_dict=True)["c_loss"] for _ in range(40)]
    assert np.mean(c_losses[-5:]) < 0.9 * 2 * np.log(2.0), c_losses


def test_phase1_logs_the_codes_mean_and_std():
    model = _frozen_model()
    logs = model.train_on_batch(simple_scenes(2), return_dict=True)
    z_hat = np.asarray(model.encode(keras.ops.one_hot(simple_scenes(2), 12), training=True))
    assert logs["code_std"] == pytest.approx(z_hat.std(), rel=1e-4)
    assert logs["code_mean"] == pytest.approx(z_hat.mean(), rel=1e-3, abs=1e-6)


def test_discriminator_sees_refined_scenes_as_straight_through_one_hot():
    model = fcr(seed=0)
    probs = keras.ops.softmax(keras.random.normal((2, 16, 8, 16, 12), seed=1), -1)
    weights = keras.random.normal((2, 16, 8, 16, 12), seed=2)
    with tf.GradientTape() as tape:
        tape.watch(probs)
        view = model._d_view(probs)
        value = keras.ops.sum(view * weights)
    np.testing.assert_array_equal(view, keras.ops.one_hot(keras.ops.argmax(probs, -1), 12))
    np.testing.assert_allclose(tape.gradient(value, probs), weights, rtol=1e-6)
    soft = fcr(seed=0, refiner_d_input="soft")
    np.testing.assert_array_equal(soft._d_view(probs), probs)


def test_model_refiner_is_the_identity_before_phase_2():
    model = fcr(seed=0)
    probs = model.decode(model.sample_z(2))
    np.testing.assert_allclose(model.refine(probs), probs, atol=2e-5)


def test_legacy_gan_loss_gives_the_originals_discriminator_loss():
    """gan_loss="legacy": D's loss is (1 - mean D-logit on real + log(1 + e^-1)) + 2 log 2."""
    model = make_model(eg_steps=1, run_eagerly=True, gan_loss="legacy")
    ref = fcr(seed=0)
    real = keras.ops.one_hot(simple_scenes(2), 12)
    real_logit = float(keras.ops.mean(ref.discriminator(real, training=True)))
    logs = model.train_on_batch(real, return_dict=True)
    expected = 1.0 - real_logit + np.log1p(np.exp(-1.0)) + 2 * np.log(2.0)
    assert logs["d_loss"] == pytest.approx(expected, rel=1e-5)
    assert FCRAlphaGAN.from_config(model.get_config()).gan_loss == "legacy"
