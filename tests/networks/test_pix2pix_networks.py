import numpy as np
import pytest

from tfgan3d.networks.pix2pix import build_patchgan_discriminator, build_unet_generator


def test_paper_parameter_counts_match_tensorflow_pix2pix():
    # The TensorFlow pix2pix architecture at 256x256 with a 3-channel target.
    assert build_unet_generator(3, 3).count_params() == 54_425_859
    assert build_patchgan_discriminator(3, 3).count_params() == 2_770_433


def test_bottleneck_without_norm_drops_one_batch_norm_of_512_channels():
    with_norm = build_unet_generator(3, 1).count_params()
    without = build_unet_generator(3, 1, bottleneck_norm=False).count_params()
    assert with_norm - without == 4 * 512   # gamma, beta, moving mean, moving variance


def test_depth_variant_shapes():
    g = build_unet_generator(3, 1, size=(None, None), n_down=5, ngf=4)
    d = build_patchgan_discriminator(3, 1, size=(64, 64), ndf=4)
    x = np.zeros((2, 64, 96, 3), "float32")
    y = g(x)
    assert y.shape == (2, 64, 96, 1)
    assert np.all(np.abs(np.asarray(y)) <= 1.0)          # tanh output
    assert d([x[:, :, :64], np.asarray(y)[:, :, :64]]).shape == (2, 6, 6, 1)


def test_patchgan_logit_map_is_30x30_at_256():
    assert build_patchgan_discriminator(3, 1, ndf=4).output_shape == (None, 30, 30, 1)


def test_instance_norm_variant_has_no_moving_statistics():
    g = build_unet_generator(3, 1, size=(32, 32), n_down=5, ngf=4, norm="instance")
    assert not g.non_trainable_weights


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="norm"):
        build_unet_generator(norm="layer")
    with pytest.raises(ValueError, match="multiple of 2\\*\\*n_down = 256"):
        build_unet_generator(size=(200, 256))
