import numpy as np
import pytest

from tfgan3d.networks.simgan import (BorderPad2D, build_discriminator, build_refiner,
                                     discriminator_map_shape, refiner_receptive_field)


def test_eye_discriminator_gives_a_4x9_map_of_two_logits_at_35x55():
    d = build_discriminator((35, 55, 1))
    out = d(np.zeros((3, 35, 55, 1), "float32"))
    assert out.shape == (3, 4, 9, 2)
    # 23x23 patches 4 pixels apart tile the 35x55 image exactly.
    info = discriminator_map_shape((35, 55))
    assert info == {"map": (4, 9), "receptive_field": 23, "stride": 4}
    assert (4 - 1) * 4 + 23 == 35 and (9 - 1) * 4 + 23 == 55


def test_eye_discriminator_follows_the_paper_list():
    d = build_discriminator((35, 55, 1))
    convs = [(l.kernel_size, l.strides, l.filters) for l in d.layers
             if l.__class__.__name__ == "Conv2D"]
    assert convs == [((3, 3), (2, 2), 96), ((3, 3), (2, 2), 64), ((3, 3), (1, 1), 32),
                     ((1, 1), (1, 1), 32), ((1, 1), (1, 1), 2)]
    pools = [(l.pool_size, l.strides) for l in d.layers if "Pooling" in l.__class__.__name__]
    assert pools == [((3, 3), (1, 1))]
    # 3*3*96+96 + 3*3*96*64+64 + 3*3*64*32+32 + 32*32+32 + 32*2+2
    assert d.count_params() == 960 + 55_360 + 18_464 + 1_056 + 66


def test_other_paddings_heads_and_the_hand_list():
    assert build_discriminator((35, 55, 1), padding="same").output_shape == (None, 9, 14, 2)
    assert build_discriminator((35, 55, 1), head="global").output_shape == (None, 2)
    hands = build_discriminator((224, 224, 1), layer_list="hands")
    assert hands.output_shape == (None, 5, 5, 2)
    assert discriminator_map_shape((224, 224), "hands")["receptive_field"] == 71


def test_refiner_keeps_the_shape_of_any_input():
    r = build_refiner(1)
    for shape in [(2, 35, 55, 1), (1, 17, 40, 1)]:
        y = np.asarray(r(np.random.default_rng(0).uniform(-1, 1, shape).astype("float32")))
        assert y.shape == shape
        assert np.all(np.abs(y) <= 1.0)          # tanh
    # conv_in 3*3*64+64, 4 blocks of two 3*3*64*64+64 convs, conv_out 64+1
    assert r.count_params() == 640 + 8 * 36_928 + 65
    assert all(l.strides == (1, 1) for l in r.layers if l.__class__.__name__ == "Conv2D")


def test_hand_refiner_has_7x7_filters_and_10_blocks():
    r = build_refiner(1, kernel=7, blocks=10, filters=8)
    convs = [l for l in r.layers if l.__class__.__name__ == "Conv2D"]
    assert len(convs) == 1 + 2 * 10 + 1
    assert {l.kernel_size for l in convs[:-1]} == {(7, 7)} and convs[-1].kernel_size == (1, 1)
    assert r(np.zeros((1, 24, 30, 1), "float32")).shape == (1, 24, 30, 1)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"\(64, 64\) is too small for the 'hands'"):
        build_discriminator((64, 64, 1), layer_list="hands")
    with pytest.raises(ValueError, match="padding"):
        build_discriminator((35, 55, 1), padding="reflect")
    with pytest.raises(ValueError, match="head"):
        build_discriminator((35, 55, 1), head="patch")
    with pytest.raises(ValueError, match="blocks must be >= 0, got -1"):
        build_refiner(1, blocks=-1)


@pytest.mark.parametrize("kernel", [3, 7])
def test_refiner_cannot_see_the_border_of_a_constant_image(kernel):
    # Mirrored padding: every layer's input stays constant, so the pixel next to the border
    # refines exactly as the middle one. ("same" zero padding told the refiner where the
    # border is, and the trained grids showed a frame.)
    r = build_refiner(1, kernel=kernel, blocks=2, filters=8)
    x = np.full((1, 35, 55, 1), 0.3, "float32")
    y = np.asarray(r(x))[0, ..., 0]
    middle = y[17, 27]
    for border in (y[0], y[-1], y[:, 0], y[:, -1], y[1], y[:, 2]):
        np.testing.assert_allclose(border, middle, atol=1e-6)
    zeros = np.asarray(build_refiner(1, kernel=kernel, blocks=2, filters=8,
                                     padding="zeros")(x))[0, ..., 0]
    assert np.abs(zeros[0] - zeros[17, 27]).max() > 1e-3      # the old padding shows a frame


def test_mirrored_padding_keeps_sizes_and_parameters():
    for padding in ("reflect", "symmetric", "zeros"):
        r = build_refiner(1, padding=padding)
        assert r.count_params() == 640 + 8 * 36_928 + 65
        assert r(np.zeros((1, 17, 40, 1), "float32")).shape == (1, 17, 40, 1)
    pad = BorderPad2D(1, 1, "reflect")
    row = np.tile(np.arange(4, dtype="float32").reshape(1, 1, 4, 1), (1, 2, 1, 1))
    np.testing.assert_array_equal(np.asarray(pad(row))[0, 1, :, 0], [1, 0, 1, 2, 3, 2])
    sym = np.asarray(BorderPad2D(1, 1, "symmetric")(row))[0, 1, :, 0]
    np.testing.assert_array_equal(sym, [0, 0, 1, 2, 3, 3])
    assert refiner_receptive_field(3, 4) == 19 and refiner_receptive_field(7, 10) == 127


def test_noise_input_changes_outputs_only_when_on():
    x = np.random.default_rng(1).uniform(-1, 1, (2, 35, 55, 1)).astype("float32")
    off = build_refiner(1, blocks=1, filters=8)
    np.testing.assert_array_equal(np.asarray(off(x)), np.asarray(off(x)))
    on = build_refiner(1, blocks=1, filters=8, noise_channels=2, seed=3)
    first, second = np.asarray(on(x)), np.asarray(on(x))
    assert first.shape == x.shape
    assert np.abs(first - second).mean() > 1e-3               # fresh noise at every call
    # the noise enters as 2 more input channels of the first conv: 3*3*(1+2)*8 + 8 weights
    assert on.get_layer("conv_in").kernel.shape == (3, 3, 3, 8)
    assert on.count_params() - off.count_params() == 3 * 3 * 2 * 8


def test_bad_refiner_options_are_named():
    with pytest.raises(ValueError, match="padding must be one of reflect, symmetric, zeros, "
                                         "got 'same'"):
        build_refiner(1, padding="same")
    with pytest.raises(ValueError, match="noise_channels must be >= 0, got -1"):
        build_refiner(1, noise_channels=-1)
