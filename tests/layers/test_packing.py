"""3D packing / unpacking layers: shapes, parameter counts, wiring, errors, save/load."""
import keras
import numpy as np
import pytest
import tensorflow as tf

from tfgan3d.layers.packing import Packing3D, Unpacking3D


def counts(layer):
    return {w.path.split("/", 1)[1]: int(np.prod(w.shape)) for w in layer.weights}


def test_shapes_and_parameter_counts():
    x = np.random.default_rng(0).normal(size=(2, 8, 6, 5)).astype("float32")
    pack = Packing3D(16, 3)
    y = pack(x)
    assert y.shape == (2, 4, 3, 16)
    # 3D conv: 8 filters of 3x3x3 on one channel + 8 biases = 224 (packnet.md);
    # 2D conv over 4 * 5 packed channels times d = 8: 3 * 3 * 160 * 16 + 16.
    assert counts(pack) == {"conv3d/kernel": 216, "conv3d/bias": 8,
                            "conv2d/kernel": 3 * 3 * 160 * 16, "conv2d/bias": 16}
    unpack = Unpacking3D(10, 3)
    z = unpack(y)
    assert z.shape == (2, 8, 6, 10)
    # 2D conv to 4 * 10 / 8 = 5 channels, 3D conv back to 5 * 8 = 40 = 4 * 10, depth-to-space.
    assert counts(unpack) == {"conv2d/kernel": 3 * 3 * 16 * 5, "conv2d/bias": 5,
                              "conv3d/kernel": 216, "conv3d/bias": 8}


def test_norm_replaces_the_bias_and_paper_widths_count():
    pack = Packing3D(76, 3, norm="instance", activation="relu")
    pack.build((None, 256, 256, 64))
    # Table 2 row 2: 64 -> 76 channels, 4 * 64 * 8 = 2048 channels into the 2D conv.
    assert pack.count_params() == 224 + 3 * 3 * 2048 * 76 + 2 * 76
    unpack = Unpacking3D(200, 3, norm="instance", activation="relu")
    unpack.build((None, 4, 4, 250))
    assert unpack.count_params() == 3 * 3 * 250 * 100 + 2 * 100 + 224


def test_packing_and_unpacking_permutations_invert_each_other():
    """With d = 1 and identity kernels (centre tap of the 3D conv, 1x1 2D convs), packing is
    space-to-depth and unpacking depth-to-space, so their composition is the identity."""
    c = 3
    x = np.random.default_rng(1).normal(size=(2, 6, 4, c)).astype("float32")
    pack = Packing3D(4 * c, 1, d=1)
    unpack = Unpacking3D(c, 1, d=1)
    packed = pack(x)
    unpack(packed)
    for layer in (pack, unpack):
        k3 = np.zeros((3, 3, 3, 1, 1), "float32")
        k3[1, 1, 1] = 1.0
        layer.conv3d.set_weights([k3, np.zeros(1, "float32")])
        layer.conv2d.set_weights([np.eye(4 * c, dtype="float32")[None, None],
                                  np.zeros(4 * c, "float32")])
    np.testing.assert_allclose(pack(x), tf.nn.space_to_depth(x, 2), atol=1e-6)
    np.testing.assert_allclose(unpack(pack(x)), x, atol=1e-6)


def test_the_3d_convolution_runs_over_the_packed_channel_axis():
    """A 3D kernel that only looks one packed channel ahead shifts the channels by one."""
    x = np.random.default_rng(2).normal(size=(1, 4, 4, 2)).astype("float32")
    pack = Packing3D(8, 1, d=1)
    pack(x)
    k3 = np.zeros((3, 3, 3, 1, 1), "float32")
    k3[1, 1, 2] = 1.0
    pack.conv3d.set_weights([k3, np.zeros(1, "float32")])
    pack.conv2d.set_weights([np.eye(8, dtype="float32")[None, None], np.zeros(8, "float32")])
    packed = tf.nn.space_to_depth(x, 2).numpy()
    expected = np.concatenate([packed[..., 1:], np.zeros_like(packed[..., :1])], -1)
    np.testing.assert_allclose(pack(x), expected, atol=1e-6)


def test_bad_arguments_and_odd_sizes_are_named():
    with pytest.raises(ValueError, match="height must be even.*7, 8, 3"):
        Packing3D(4)(np.zeros((1, 7, 8, 3), "float32"))
    with pytest.raises(ValueError, match="width must be even"):
        Packing3D(4).build((None, 8, 5, 3))
    with pytest.raises(ValueError, match="4 \\* filters must be divisible by d, got filters=3"):
        Unpacking3D(3)
    with pytest.raises(ValueError, match="kernel_size must be a positive odd integer.*4"):
        Packing3D(8, 4)
    with pytest.raises(ValueError, match="norm must be one of.*'layer'"):
        Unpacking3D(8, norm="layer")
    with pytest.raises(ValueError, match="filters must be a positive integer, got 0"):
        Packing3D(0)


def test_dynamic_sizes_and_save_load_round_trip(tmp_path):
    inputs = keras.Input((None, None, 3))
    x = Packing3D(8, 3, norm="instance", activation="relu", name="pack")(inputs)
    outputs = Unpacking3D(6, 3, norm="instance", activation="relu", name="unpack")(x)
    model = keras.Model(inputs, outputs)
    x = np.random.default_rng(3).normal(size=(2, 8, 12, 3)).astype("float32")
    assert model(x).shape == (2, 8, 12, 6)
    path = tmp_path / "packing.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    config = loaded.get_layer("pack").get_config()
    assert (config["filters"], config["d"], config["norm"], config["use_bias"]) == \
        (8, 8, "instance", False)
    assert Packing3D.from_config(config).get_config() == config
