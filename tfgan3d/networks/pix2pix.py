"""pix2pix networks: the U-Net generator and the PatchGAN discriminator (Isola et al. 2017).

Layer layout as the widely used TensorFlow pix2pix (4x4 kernels, stride 2, LeakyReLU 0.2 in the
encoder, ReLU in the decoder, dropout 0.5 in the first three decoder blocks, tanh output), so
that at 256x256 with ngf = ndf = 64 and a 3-channel target the generator has 54,425,859 and the
discriminator 2,770,433 parameters (batch norm, counting its moving statistics).
"""
from __future__ import annotations

import keras
from keras import layers

from tfgan3d.layers.conv import Conv2D, Conv2DTranspose
from tfgan3d.layers.normalization import BatchNormalization

NORMS = ("batch", "instance", "none")


def _init():
    return keras.initializers.RandomNormal(0.0, 0.02)


def _norm(kind: str, name: str):
    if kind == "batch":
        return BatchNormalization(name=name)
    if kind == "instance":  # one group per channel = instance normalisation
        return layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)
    return None


def _check(norm: str, size, n_down: int):
    if norm not in NORMS:
        raise ValueError(f"norm: expected one of {', '.join(NORMS)}, got {norm!r}")
    for s in size:
        if s is not None and s % (2 ** n_down):
            raise ValueError(f"input size {size}: each side must be a multiple of "
                             f"2**n_down = {2 ** n_down}")


def _down(x, filters, norm, name, use_norm=True):
    x = Conv2D(filters, 4, strides=2, padding="same", use_bias=norm == "none",
                      kernel_initializer=_init(), name=f"{name}_conv")(x)
    n = _norm(norm, f"{name}_norm") if use_norm else None
    if n is not None:
        x = n(x)
    return layers.LeakyReLU(0.2, name=f"{name}_lrelu")(x)


def _up(x, filters, norm, name, dropout: float):
    x = Conv2DTranspose(filters, 4, strides=2, padding="same", use_bias=norm == "none",
                               kernel_initializer=_init(), name=f"{name}_deconv")(x)
    n = _norm(norm, f"{name}_norm")
    if n is not None:
        x = n(x)
    if dropout:
        x = layers.Dropout(dropout, name=f"{name}_dropout")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_unet_generator(input_channels: int = 3, output_channels: int = 1, *, size=(256, 256),
                         n_down: int = 8, ngf: int = 64, norm: str = "batch",
                         bottleneck_norm: bool = True, dropout: float = 0.5,
                         name: str = "generator") -> keras.Model:
    """U-Net: `n_down` stride-2 blocks down to 1x1 at `size`, mirrored up with skip links.

    Encoder widths ngf, 2ngf, 4ngf, 8ngf, 8ngf, ... (no norm on the first block). Decoder:
    transposed convs back up, dropout 0.5 in the three blocks nearest the bottleneck, skip
    concatenation, then a transposed conv to `output_channels` with tanh.
    `bottleneck_norm=False` leaves the innermost block without normalisation (as the PyTorch
    original): with batch size 1 a norm over the 1x1 bottleneck outputs a constant.
    Input side lengths must be multiples of 2**n_down; `size` may hold None for any such size.
    """
    _check(norm, size, n_down)
    if n_down < 2:
        raise ValueError(f"n_down: expected >= 2, got {n_down}")
    inputs = keras.Input((*size, input_channels), name="real_a")
    widths = [min(ngf * 2 ** i, ngf * 8) for i in range(n_down)]
    x, skips = inputs, []
    for i, w in enumerate(widths):
        use_norm = i > 0 and (i < n_down - 1 or bottleneck_norm)
        x = _down(x, w, norm, f"down{i + 1}", use_norm=use_norm)
        skips.append(x)
    for j, (w, skip) in enumerate(zip(reversed(widths[:-1]), reversed(skips[:-1]))):
        x = _up(x, w, norm, f"up{j + 1}", dropout=dropout if j < 3 else 0.0)
        x = layers.Concatenate(name=f"skip{j + 1}")([x, skip])
    x = Conv2DTranspose(output_channels, 4, strides=2, padding="same",
                               kernel_initializer=_init(), name="out_deconv")(x)
    outputs = layers.Activation("tanh", dtype="float32", name="fake_b")(x)
    return keras.Model(inputs, outputs, name=name)


def build_patchgan_discriminator(input_channels: int = 3, target_channels: int = 1, *,
                                 size=(256, 256), ndf: int = 64, n_layers: int = 3,
                                 norm: str = "batch", name: str = "discriminator") -> keras.Model:
    """PatchGAN on the concatenated (input, target): `n_layers` stride-2 convs (ndf, 2ndf, ...,
    capped at 8ndf), then two stride-1 4x4 convs, each after one pixel of zero padding, giving
    one logit per patch (n_layers 3: 70x70 receptive field, 30x30 logits at 256x256)."""
    _check(norm, size, 0)
    real_a = keras.Input((*size, input_channels), name="real_a")
    target = keras.Input((*size, target_channels), name="target")
    x = layers.Concatenate(name="pair")([real_a, target])
    for i in range(n_layers):
        x = _down(x, min(ndf * 2 ** i, ndf * 8), norm, f"d{i + 1}", use_norm=i > 0)
    x = layers.ZeroPadding2D(name="pad1")(x)
    x = Conv2D(min(ndf * 2 ** n_layers, ndf * 8), 4, use_bias=norm == "none",
                      kernel_initializer=_init(), name="d_last_conv")(x)
    n = _norm(norm, "d_last_norm")
    if n is not None:
        x = n(x)
    x = layers.LeakyReLU(0.2, name="d_last_lrelu")(x)
    x = layers.ZeroPadding2D(name="pad2")(x)
    x = Conv2D(1, 4, kernel_initializer=_init(), name="patch_logits_conv")(x)
    logits = layers.Activation("linear", dtype="float32", name="patch_logits")(x)
    return keras.Model([real_a, target], logits, name=name)
