"""Sim2Real networks: Table 2 shapes and parameter counts, shared weights, presets."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan3d.models.sim2real import Sim2RealVAE
from tfgan3d.networks.sim2real import (Sim2RealNetSpec, build_decoder, build_encoder,
                                       build_shared_encoder, build_sim2real_networks)

TINY = Sim2RealNetSpec.scaled(image_size=16, levels=2, width_mult=0.125, res_blocks=1,
                              num_classes=5)


def output_shapes(model):
    return {layer.name: tuple(layer.output.shape[1:]) for layer in model.layers
            if not isinstance(layer, (keras.layers.InputLayer, keras.Model))}


def pack_params(c_in, c_out):
    """3D conv 224 + 2D conv 3x3 over 4 * c_in * 8 channels, no bias + instance-norm gain/offset."""
    return 224 + 9 * 32 * c_in * c_out + 2 * c_out


def unpack_params(c_in, c_out):
    return 9 * c_in * (c_out // 2) + 2 * (c_out // 2) + 224


def res_params(c):
    return 2 * (9 * c * c + 2 * c)


def test_table2_encoder_at_256():
    spec = Sim2RealNetSpec()
    shared = build_shared_encoder(spec)
    encoder = build_encoder(spec, shared, "encoder_sim", size=(256, 256))
    shapes = output_shapes(encoder)
    assert shapes["encoder_sim_stem_lrelu"] == (256, 256, 64)                      # row 1
    assert [shapes[f"encoder_sim_pack{i}"] for i in range(1, 7)] == [
        (128, 128, 76), (64, 64, 88), (32, 32, 100), (16, 16, 128), (8, 8, 200),   # rows 2-6
        (4, 4, 250)]                                                               # row 9
    assert shapes["encoder_sim_res2_add"] == (8, 8, 200)                           # rows 7-8
    assert [tuple(o.shape[1:]) for o in encoder.outputs] == [(4, 4, 300)] * 2      # row 10
    widths = (64, 76, 88, 100, 128, 200, 250)
    expected = (7 * 7 * 3 * 64 + 64
                + sum(pack_params(a, b) for a, b in zip(widths[:5], widths[1:6]))
                + 2 * res_params(200) + pack_params(200, 250)
                + 9 * 250 * 300 + 2 * 300 + 2 * 300           # z_mean conv + batch norm (4 x 300)
                + 9 * 250 * 300 + 300)                        # z_log_var conv
    assert encoder.count_params() == expected == 34_126_176
    for i in range(1, 7):
        assert encoder.get_layer(f"encoder_sim_pack{i}").conv3d.count_params() == 224


def test_table2_decoders_at_256():
    spec = Sim2RealNetSpec()
    image = build_decoder(spec, 3, "decoder_sim", size=(4, 4))
    shapes = output_shapes(image)
    assert image.get_layer("decoder_sim_unpack1").input.shape[1:] == (4, 4, 250)     # row 11
    assert [shapes[f"decoder_sim_unpack{i}"] for i in range(1, 7)] == [
        (8, 8, 200), (16, 16, 128), (32, 32, 100), (64, 64, 88), (128, 128, 76),
        (256, 256, 64)]                                                            # 12, 15-19
    assert shapes["decoder_sim_tanh"] == (256, 256, 3)                             # row 20
    widths = (250, 200, 128, 100, 88, 76, 64)
    expected = (9 * 300 * 250 + 4 * 250                       # row 11 deconv + batch norm
                + sum(unpack_params(a, b) for a, b in zip(widths[:-1], widths[1:]))
                + 2 * res_params(200) + 7 * 7 * 64 * 3 + 3)
    assert image.count_params() == expected
    seg = build_decoder(spec, 15, "seg_decoder", tanh=False, size=(4, 4))
    assert seg.output.shape[1:] == (256, 256, 15)
    assert not any("tanh" in layer.name for layer in seg.layers)                   # (**)


def test_shared_layers_are_one_set_of_variables():
    nets = build_sim2real_networks(TINY)
    ids = lambda model: {id(v) for v in model.weights}
    shared_enc, shared_dec = ids(nets.shared_encoder), ids(nets.shared_decoder)
    assert shared_enc and shared_enc <= ids(nets.encoder_sim) & ids(nets.encoder_real)
    assert shared_dec and shared_dec <= ids(nets.decoder_sim) & ids(nets.decoder_real)
    # Only the shared blocks are common; the auxiliary decoders share nothing (section 3.3).
    assert ids(nets.encoder_sim) & ids(nets.encoder_real) == shared_enc
    assert ids(nets.decoder_sim) & ids(nets.decoder_real) == shared_dec
    for aux in (nets.depth_decoder, nets.seg_decoder):
        assert not ids(aux) & (ids(nets.decoder_sim) | ids(nets.decoder_real))
    model = Sim2RealVAE(nets)
    weights = [id(v) for v in model.weights]
    assert len(weights) == len(set(weights))            # each shared variable listed once
    assert shared_enc | shared_dec <= set(weights)
    # Row 10's convolution has no bias: kernel, gamma, beta (+ batch-norm statistics).
    names = sorted(v.path.rsplit("/", 1)[1] for v in nets.shared_encoder.trainable_weights)
    assert names == ["beta", "bias", "gamma", "kernel", "kernel"]   # mean conv, BN, log-var conv


def test_a_step_through_one_encoder_moves_the_other():
    keras.utils.set_random_seed(0)
    nets = build_sim2real_networks(TINY)
    x = tf.random.normal((2, 16, 16, 3))
    before = nets.encoder_real(x)[0].numpy()
    private_real = [v.numpy() for v in nets.encoder_real.trainable_weights
                    if not v.path.startswith("shared_encoder")]
    with tf.GradientTape() as tape:
        z_mean, _ = nets.encoder_sim(x, training=True)
        loss = tf.reduce_mean(tf.square(z_mean - 1.0))
    variables = nets.encoder_sim.trainable_weights
    keras.optimizers.SGD(0.5).apply_gradients(zip(tape.gradient(loss, variables), variables))
    after = nets.encoder_real(x)[0].numpy()
    assert np.max(np.abs(after - before)) > 1e-3        # E_R changed through E_S's step
    for old, new in zip(private_real, [v for v in nets.encoder_real.trainable_weights
                                       if not v.path.startswith("shared_encoder")]):
        np.testing.assert_array_equal(old, new.numpy())  # ... only through the shared layer


def test_any_multiple_of_the_level_size_and_output_ranges():
    nets = build_sim2real_networks(TINY)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 16, 24, 3)).astype("float32")
    z_mean, z_log_var = nets.encoder_real(x)
    assert z_mean.shape == z_log_var.shape == (2, 4, 6, TINY.latent_channels)
    image = nets.decoder_sim(z_mean).numpy()
    assert image.shape == (2, 16, 24, 3) and np.all(np.abs(image) <= 1)
    assert nets.depth_decoder(z_mean).shape == (2, 16, 24, 1)
    assert nets.seg_decoder(z_mean).shape == (2, 16, 24, 5)


def test_presets_scale_table2():
    quick = Sim2RealNetSpec.scaled(image_size=64, levels=4, width_mult=0.25)
    assert quick.widths == (16, 24, 32, 50, 62) and quick.latent_channels == 75
    assert quick.latent_size == 4
    assert Sim2RealNetSpec().latent_size == 4 and TINY.latent_size == 4


def test_bad_specs_are_named():
    with pytest.raises(ValueError,
                       match="image_size 100 is not a multiple of 2 \\*\\* levels = 64"):
        Sim2RealNetSpec(image_size=100)
    with pytest.raises(ValueError, match="divisible by d = 8"):
        Sim2RealNetSpec(widths=(64, 75, 88))
    with pytest.raises(ValueError, match="levels: expected 2..6, got 7"):
        Sim2RealNetSpec.scaled(levels=7)
