"""Sim2Real twin VAE: the loss functions against hand-computed values; one step of each stage
on toy data (which networks move). Losses falling over 30 steps: tests/trainers."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan3d import losses
from tfgan3d.models.sim2real import Sim2RealVAE, parse_groups
from tfgan3d.networks.sim2real import Sim2RealNetSpec, build_sim2real_networks

SIZE, CLASSES = 16, 3


# ----------------------------------------------------------------------------- losses

def test_mmd_of_two_one_dimensional_pairs():
    # x = {0, 1}, y = {0, 2}, sigma = 1, k(a, b) = exp(-(a - b)^2 / 2), all four pairs each:
    #   E k(x, x') = (1 + e^-1/2 + e^-1/2 + 1) / 4
    #   E k(y, y') = (1 + e^-2 + e^-2 + 1) / 4
    #   E k(x, y)  = (k(0,0) + k(0,2) + k(1,0) + k(1,2)) / 4 = (1 + e^-2 + 2 e^-1/2) / 4
    #   MMD^2 = (2 + 2e^-1/2 + 2 + 2e^-2 - 2 - 2e^-2 - 4e^-1/2) / 4 = (1 - e^-1/2) / 2
    x, y = np.array([[0.0], [1.0]]), np.array([[0.0], [2.0]])
    expected = (1 - math.exp(-0.5)) / 2                                    # 0.196735
    assert float(losses.mmd_rbf(x, y, sigma=1.0)) == pytest.approx(expected, rel=1e-5)
    assert float(losses.mmd_rbf(y, x, sigma=1.0)) == pytest.approx(expected, rel=1e-5)
    assert float(losses.mmd_rbf(x, x, sigma=1.0)) == pytest.approx(0.0, abs=1e-6)


def test_mmd_default_width_is_the_square_root_of_the_size():
    # One example each, D = 4 values: |x - y|^2 = 4, sigma^2 = D = 4, k = exp(-4 / 8).
    # MMD^2 = k(x, x) + k(y, y) - 2 k(x, y) = 2 - 2 e^-1/2 = 0.786939. Images flatten.
    x, y = np.zeros((1, 2, 2, 1)), np.ones((1, 2, 2, 1))
    assert float(losses.mmd_rbf(x, y)) == pytest.approx(2 - 2 * math.exp(-0.5), rel=1e-5)


def test_kl_divergence_of_a_two_unit_code():
    # mu = (1, 0), log var = (0, ln 2): 1/2 [(1 + 1 - 1 - 0) + (0 + 2 - 1 - ln 2)] = 1 - ln2 / 2
    mu, log_var = np.array([[1.0, 0.0]]), np.array([[0.0, math.log(2.0)]])
    kl = 1 - math.log(2) / 2                                               # 0.653426
    assert float(losses.kl_divergence_log_var(mu, log_var)) == pytest.approx(kl, rel=1e-6)
    assert float(losses.kl_divergence_log_var(mu, log_var, per_unit=True)) == pytest.approx(kl / 2)
    # A second example at the prior (KL 0) halves the batch mean.
    mu2, log_var2 = np.concatenate([mu, 0 * mu]), np.concatenate([log_var, 0 * log_var])
    assert float(losses.kl_divergence_log_var(mu2, log_var2)) == pytest.approx(kl / 2, rel=1e-6)


def test_pixelwise_cross_entropy_and_mask():
    # Pixel 1: logits (0, 0), class 0: log 2. Pixel 2: logits (1, 0), class 1: log(1 + e).
    labels, logits = np.array([[0, 1]]), np.array([[[0.0, 0.0], [1.0, 0.0]]])
    both = (math.log(2) + math.log(1 + math.e)) / 2
    assert float(losses.pixelwise_cross_entropy(labels, logits)) == pytest.approx(both)
    masked = losses.pixelwise_cross_entropy(labels, logits, np.array([[0.0, 1.0]]))
    assert float(masked) == pytest.approx(math.log(1 + math.e))


def test_masked_mse():
    target, pred = np.array([[1.0, 2.0, 5.0]]), np.array([[0.0, 0.0, 0.0]])
    assert float(losses.mse_loss(target, pred)) == pytest.approx((1 + 4 + 25) / 3)
    assert float(losses.mse_loss(target, pred, np.array([[1, 1, 0]]))) == pytest.approx(2.5)


# ----------------------------------------------------------------------------- the model

def toy_batch(n=4, seed=0):
    """Smooth colour ramps; depth and three class bands follow the ramp. The real domain shows
    the same kind of scene with the colour channels permuted and brighter."""
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0, 1, SIZE)[None, None, :, None] * np.ones((n, SIZE, 1, 1))
    flip = rng.integers(0, 2, (n, 1, 1, 1))
    ramp = np.where(flip, ramp[:, :, ::-1], ramp)
    colour = rng.uniform(0.3, 1.0, (n, 1, 1, 3))
    sim = ramp * colour * 2 - 1
    real = np.clip(ramp[..., ::-1] * colour[..., ::-1] * 1.5 - 0.5, -1, 1)
    real = real[:, :, :, [2, 0, 1]]
    labels = np.minimum((ramp[..., 0] * CLASSES).astype("int32"), CLASSES - 1)
    labels[:, 0, 0] = 255                                    # an ignored pixel
    valid = np.ones((n, SIZE, SIZE, 1), "float32")
    valid[:, :2] = 0
    return {"sim": {"image": sim.astype("float32"), "depth": (1 + 8 * ramp).astype("float32"),
                    "depth_valid": valid, "labels": labels},
            "real": {"image": real.astype("float32")}}


def make_model(**kwargs):
    """A 16 x 16 model whose train_step runs eagerly: one step costs about a second, a traced
    step about ten (the trainer test trains both stages for 30 compiled steps)."""
    keras.utils.set_random_seed(3)
    spec = Sim2RealNetSpec.scaled(image_size=SIZE, levels=2, width_mult=0.125, res_blocks=0,
                                  num_classes=CLASSES)
    model = Sim2RealVAE(build_sim2real_networks(spec), seed=1, **kwargs)
    model.compile(stage1_optimizer=keras.optimizers.Adam(2e-3),
                  stage2_optimizer=keras.optimizers.Adam(2e-3), run_eagerly=True)
    return model


def snapshot(*nets):
    return [v.numpy().copy() for net in nets for v in net.weights]


def moved(before, nets):
    return max(float(np.max(np.abs(a - v.numpy())))
               for a, v in zip(before, [v for net in nets for v in net.weights]))


def test_each_stage_trains_only_its_networks():
    model = make_model()
    batch = toy_batch(2)
    aux = (model.depth_decoder, model.seg_decoder)
    image_decoders = (model.decoder_sim, model.decoder_real)
    encoders = (model.encoder_sim, model.encoder_real)
    aux0, dec0, enc0 = snapshot(*aux), snapshot(*image_decoders), snapshot(*encoders)

    model.set_stage(1)
    assert model.train_function is None          # rebuilt for the stage's objective
    logs = model.train_on_batch(batch, return_dict=True)
    assert set(logs) == {"stage1_loss", "kl_sim_loss", "kl_real_loss", "rec_sim_loss",
                         "rec_real_loss", "mmd_sim_loss", "mmd_real_loss", "cycle_sim_loss",
                         "cycle_real_loss"}
    # eq 10 is the sum of the eight terms (all weights 1)
    assert logs["stage1_loss"] == pytest.approx(sum(v for k, v in logs.items()
                                                    if k != "stage1_loss"), rel=1e-5)
    assert moved(aux0, aux) == 0.0
    assert moved(dec0, image_decoders) > 1e-5 and moved(enc0, encoders) > 1e-5

    dec1, enc1 = snapshot(*image_decoders), snapshot(*encoders)
    model.set_stage(2)
    assert model.train_function is None
    logs = model.train_on_batch(batch, return_dict=True)
    assert {"depth_sim_loss", "depth_trans_loss", "seg_sim_loss", "seg_trans_loss",
            "mmd_s2r_loss", "mmd_r2s_loss", "kl_trans_loss", "rec_trans_loss"} < set(logs)
    assert all(np.isfinite(v) for v in logs.values())
    # G_S and G_R translate in stage 2 and stay frozen, batch-norm statistics included.
    assert moved(dec1, image_decoders) == 0.0
    assert moved(aux0, aux) > 1e-5 and moved(enc1, encoders) > 1e-5


def test_each_stage1_term_is_its_equation_on_the_networks():
    """Each of eq 10's eight terms against its equation computed here from the networks (with
    the noise eps and the prior draws a fixed, known array), not only their sum: a term on the
    wrong domain, network or target reads another value."""
    model = make_model()
    batch = tensors(toy_batch(2))
    sim, real = batch["sim"]["image"], batch["real"]["image"]
    rng = np.random.default_rng(5)
    fixed = {}

    def draw(shape, key):
        shape = tuple(int(d) for d in shape)
        if (key, shape) not in fixed:
            fixed[(key, shape)] = tf.constant(rng.normal(size=shape).astype("float32"))
        return fixed[(key, shape)]

    def encode(encoder, image, training):
        z_mean, z_log_var = encoder(image, training=training)
        return z_mean + tf.exp(0.5 * z_log_var) * draw(z_mean.shape, "eps"), z_mean, z_log_var

    model.encode = encode
    model._prior = lambda z: draw(z.shape, "prior")
    model.set_stage(1)
    total, terms = model.stage1_losses(sim, real)

    E_S, E_R, G_S, G_R = (model.encoder_sim, model.encoder_real, model.decoder_sim,
                          model.decoder_real)
    z_s, mean_s, log_var_s = encode(E_S, sim, True)
    z_r, mean_r, log_var_r = encode(E_R, real, True)
    expected = {
        "kl_sim_loss": losses.kl_divergence_log_var(mean_s, log_var_s, per_unit=True),
        "kl_real_loss": losses.kl_divergence_log_var(mean_r, log_var_r, per_unit=True),
        "rec_sim_loss": losses.mse_loss(sim, G_S(z_s, training=True)),
        "rec_real_loss": losses.mse_loss(real, G_R(z_r, training=True)),
        "mmd_sim_loss": losses.mmd_rbf(z_s, draw(z_s.shape, "prior")),
        "mmd_real_loss": losses.mmd_rbf(z_r, draw(z_r.shape, "prior")),
        # x_S -> z_S -> G_R -> E_R -> G_S back to x_S; x_R -> G_S -> E_S -> G_R back to x_R
        "cycle_sim_loss": losses.masked_l1_loss(sim, G_S(encode(E_R, G_R(z_s, training=True),
                                                               True)[0], training=True)),
        "cycle_real_loss": losses.masked_l1_loss(real, G_R(encode(E_S, G_S(z_r, training=True),
                                                                 True)[0], training=True)),
    }
    assert set(terms) == set(expected)
    values = {k: float(v) for k, v in expected.items()}
    assert len({round(v, 4) for v in values.values()}) == 8      # eight different numbers
    for term, value in values.items():
        assert float(terms[term]) == pytest.approx(value, rel=1e-5), term
    assert float(total) == pytest.approx(sum(values.values()), rel=1e-5)


def test_reparameterisation_samples_around_the_mean():
    model = make_model()
    real = toy_batch(2)["real"]["image"]
    z1, mean1, _ = model.encode(model.encoder_real, real, False)
    z2, mean2, _ = model.encode(model.encoder_real, real, False)
    np.testing.assert_allclose(mean1, mean2)
    assert np.max(np.abs(np.asarray(z1) - np.asarray(z2))) > 1e-3
    out = model(real)
    np.testing.assert_allclose(out["depth"], model(real)["depth"])      # z_mean: deterministic
    assert out["depth"].shape == (2, SIZE, SIZE, 1)
    assert np.all((np.asarray(out["depth"]) >= 0) & (np.asarray(out["depth"]) <= 10))
    assert out["seg_logits"].shape == (2, SIZE, SIZE, CLASSES)
    assert np.max(np.abs(np.asarray(model(real, sample=True)["depth"])
                         - np.asarray(out["depth"]))) > 0
    assert model.translate(real, "sim").shape == real.shape


def test_the_mean_code_leaves_the_random_stream_alone():
    """Inference with z_mean (predictions, translations, sample grids) draws no noise, so it
    cannot shift the reparameterisation noise of the training steps after it."""
    model = make_model()
    real = toy_batch(2)["real"]["image"]
    state = np.asarray(model.seed_generator.state.value).copy()
    model(real)
    model.translate(real, "sim")
    np.testing.assert_array_equal(model.seed_generator.state.value, state)
    model(real, sample=True)
    assert not np.array_equal(model.seed_generator.state.value, state)


def test_bad_stage_and_groups_are_named():
    with pytest.raises(ValueError, match="stage: expected 1 or 2, got 3"):
        Sim2RealVAE.set_stage(object.__new__(Sim2RealVAE), 3)
    with pytest.raises(ValueError, match="stage2_trains: expected a comma-separated subset of "
                                         "encoders, decoders, aux, got 'encoder,aux'"):
        parse_groups("encoder,aux", "stage2_trains")
    assert parse_groups("encoders, aux") == ("encoders", "aux")


# ----------------------------------------------------------------------------- objectives

def own_variables(model):
    """Network -> ids of the trainable variables it does not share with its twin network."""
    nets = model.networks
    shared_e = {id(v) for v in nets.shared_encoder.trainable_variables}
    shared_g = {id(v) for v in nets.shared_decoder.trainable_variables}
    groups = {"E_S": (model.encoder_sim, shared_e), "E_R": (model.encoder_real, shared_e),
              "G_S": (model.decoder_sim, shared_g), "G_R": (model.decoder_real, shared_g),
              "D_depth": (model.depth_decoder, set()), "D_seg": (model.seg_decoder, set())}
    return {name: [v for v in net.trainable_variables if id(v) not in shared]
            for name, (net, shared) in groups.items()}


def reach(model, stage, batch):
    """{term: the networks whose own weights get a non-zero gradient from it}."""
    sim, real = batch["sim"], batch["real"]
    own = own_variables(model)
    model.set_stage(stage)
    with tf.GradientTape(persistent=True) as tape:
        if stage == 1:
            _, terms = model.stage1_losses(sim["image"], real["image"])
        else:
            _, terms = model.stage2_losses(sim["image"], real["image"], sim["depth"],
                                           sim["depth_valid"], sim["labels"])
    names = [name for name, variables in own.items() for _ in variables]
    every = [v for variables in own.values() for v in variables]
    out = {}
    for term, value in terms.items():
        if term.endswith("_acc"):
            continue
        grads = tape.gradient(value, every)       # one backward pass per term
        out[term] = {name for name, g in zip(names, grads)
                     if g is not None and float(tf.reduce_max(tf.abs(g))) > 0}
    return out


ALL_FOUR = {"E_S", "E_R", "G_S", "G_R"}
SIM_TO_REAL = {"E_S", "G_R", "E_R"}           # z'_R = E_R(G_R(E_S(x_S)))


def test_stage1_terms_reach_the_networks_of_their_equations():
    got = reach(make_model(), 1, tensors(toy_batch(2)))
    assert got == {
        "kl_sim_loss": {"E_S"}, "kl_real_loss": {"E_R"},                      # eqs 3, 2
        "rec_sim_loss": {"E_S", "G_S"}, "rec_real_loss": {"E_R", "G_R"},      # eqs 5, 4
        "mmd_sim_loss": {"E_S"}, "mmd_real_loss": {"E_R"},                    # eqs 6, 7
        "cycle_sim_loss": ALL_FOUR, "cycle_real_loss": ALL_FOUR}              # eqs 8, 9


def test_stage2_terms_reach_the_networks_of_their_equations():
    got = reach(make_model(), 2, tensors(toy_batch(2)))
    assert got == {
        "kl_sim_loss": {"E_S"}, "kl_trans_loss": SIM_TO_REAL,                 # eqs 12, 11
        "mmd_s2r_loss": SIM_TO_REAL, "mmd_r2s_loss": {"E_R", "G_S", "E_S"},   # eqs 13, 14
        "depth_sim_loss": {"E_S", "D_depth"},                                  # eq 15
        "depth_trans_loss": SIM_TO_REAL | {"D_depth"},                         # eq 16
        "seg_sim_loss": {"E_S", "D_seg"}, "seg_trans_loss": SIM_TO_REAL | {"D_seg"},
        # x'_R is the data of eq 11's likelihood: G_R(z'_R) is fitted to it (no path to G_R
        # through the target; E_S still reaches it through z'_R).
        "rec_sim_loss": {"E_S", "G_S"}, "rec_trans_loss": SIM_TO_REAL}


def test_sampled_codes_enter_mmd_and_reconstruction():
    """MMD and the reconstructions use z = mean + exp(log_var / 2) eps: their gradients reach
    the z_log_var head (the mean alone would not)."""
    model = make_model()
    batch = tensors(toy_batch(2))
    sim, real = batch["sim"]["image"], batch["real"]["image"]
    variables = model.encoder_sim.trainable_variables
    with tf.GradientTape(persistent=True) as tape:
        z_mean, z_log_var = model.encoder_sim(sim, training=True)
        mean_sum, log_var_sum = tf.reduce_sum(z_mean), tf.reduce_sum(z_log_var)
    head = [i for i, (gm, gl) in enumerate(zip(tape.gradient(mean_sum, variables),
                                                tape.gradient(log_var_sum, variables)))
            if gm is None and gl is not None]
    assert head                                   # the z_log_var convolution
    model.set_stage(1)
    with tf.GradientTape(persistent=True) as tape:
        _, terms = model.stage1_losses(sim, real)
    for term in ("mmd_sim_loss", "rec_sim_loss", "kl_sim_loss"):
        grads = tape.gradient(terms[term], [variables[i] for i in head])
        assert any(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads), term


def tensors(batch):
    return tf.nest.map_structure(tf.constant, batch)


def test_train_step_is_the_gradient_of_the_stage_objective():
    """One stage-2 SGD step moves the stage's networks (E_S, E_R, D_depth, D_seg) by
    -lr * grad of eqs 17 + 20 and nothing else; a twin model with the same seeds draws the
    same noise. (Stage 1 moves its networks: test_each_stage_trains_only_its_networks.)"""
    lr, stage = 0.05, 2
    batch = tensors(toy_batch(2))

    def sgd_model():
        model = make_model()
        model.compile(stage1_optimizer=keras.optimizers.SGD(lr),
                      stage2_optimizer=keras.optimizers.SGD(lr), run_eagerly=True)
        model.set_stage(stage)
        return model

    model, twin = sgd_model(), sgd_model()
    every = model.trainable_variables
    before = [v.numpy().copy() for v in every]
    model.train_on_batch(batch)
    sim, real = batch["sim"], batch["real"]
    variables = twin.stage_variables(stage)
    with tf.GradientTape() as tape:
        if stage == 1:
            total, _ = twin.stage1_losses(sim["image"], real["image"])
        else:
            total, _ = twin.stage2_losses(sim["image"], real["image"], sim["depth"],
                                          sim["depth_valid"], sim["labels"])
    expected = {id(v): g.numpy() for v, g in zip(twin.stage_variables(stage),
                                                 tape.gradient(total, variables))}
    index = {id(v): i for i, v in enumerate(twin.trainable_variables)}
    trained = {index[k] for k in expected}
    worst, scale = 0.0, 0.0
    for i, (b, v) in enumerate(zip(before, every)):
        applied = (b - v.numpy()) / lr
        if i not in trained:
            assert np.max(np.abs(applied)) == 0.0, v.path       # not this stage's network
            continue
        grad = expected[id(twin.trainable_variables[i])]
        worst = max(worst, float(np.max(np.abs(applied - grad))))
        scale = max(scale, float(np.max(np.abs(grad))))
    assert scale > 0 and worst <= 1e-3 * scale, (worst, scale)
