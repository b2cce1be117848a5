"""SimGAN networks: the ResNet refiner and the local (patch) discriminator (Shrivastava et al.
2017, section 3 "Implementation Details").

Refiner (eyes): 3x3 conv to 64 maps, 4 ResNet blocks of two 3x3 64-map convs, a 1x1 conv to the
image channels; no striding or pooling, so any input size keeps its shape. Hands: 7x7 filters
and 10 blocks. The paper gives no output activation; tanh keeps refined images in [-1, 1] like
the data. The paper does not say how its convolutions pad. Zero ("same") padding tells every
layer where the image ends, and a refiner trained against a local discriminator paints a
frame along the border with it; the default "reflect" pads each conv with the mirrored image
(as CycleGAN's ResNet generator does), so a constant image refines to a constant image and the
border looks like the inside. ("zeros" keeps the old padding, for comparison.)

Noise input (an extension beyond the paper, off by default): `noise_channels` > 0 concatenates
that many channels of per-pixel N(0, 1) noise to the synthetic image, fresh at every call
(training and inference), so that the refiner can paint gaps that are random by nature
(sensor noise, skin texture) instead of one deterministic average.

Discriminator: the paper's layer lists, ReLU after every conv but the last, which gives the two
class logits per patch (class 0 = real, class 1 = refined, the labels of the paper's eq. 2).
Padding is "valid" by default. At the eye size 35x55 the eye list then outputs a 4x9 map:
35 -> 17 -> 8 -> 6 -> 4 rows and 55 -> 27 -> 13 -> 11 -> 9 columns. Each of the 36 cells sees a
23x23 patch, and the patches, 4 pixels apart, tile the image exactly ((35 - 23) / 4 = 3,
(55 - 23) / 4 = 8): every patch is a patch of the image, none of zero padding, which is the
paper's "w x h local patches in the image". ("same" padding gives 9x14 cells whose border
patches are partly zeros.) The hand list at 224x224 gives 5x5 cells of 71x71 patches (valid) or
7x7 (same).
"""
from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

# (kind, kernel, stride, filters): the paper's lists; the last conv gives the 2 class logits.
DISCRIMINATOR_LAYERS = {
    "eyes": (("conv", 3, 2, 96), ("conv", 3, 2, 64), ("pool", 3, 1, None),
             ("conv", 3, 1, 32), ("conv", 1, 1, 32), ("conv", 1, 1, 2)),
    "hands": (("conv", 7, 4, 96), ("conv", 5, 2, 64), ("pool", 3, 2, None),
              ("conv", 3, 2, 32), ("conv", 1, 1, 32), ("conv", 1, 1, 2)),
}
# Refiner kernel and ResNet blocks of the two experiments.
REFINER_LAYERS = {"eyes": dict(kernel=3, blocks=4), "hands": dict(kernel=7, blocks=10)}
PADDINGS = ("valid", "same")                     # the discriminator's
REFINER_PADDINGS = ("reflect", "symmetric", "zeros")
NORMS = ("none", "batch")
HEADS = ("local", "global")


def discriminator_map_shape(size, layer_list: str = "eyes", padding: str = "valid"):
    """(h, w) of the discriminator's patch map for an input of `size` (height, width);
    with `receptive_field` and `stride` of one cell in input pixels.

    Returns:
        dict(map=(h, w), receptive_field=int, stride=int).
    Raises:
        ValueError: unknown list or padding, or an input too small for the list.
    """
    if layer_list not in DISCRIMINATOR_LAYERS:
        raise ValueError(f"discriminator layers: expected one of "
                         f"{', '.join(DISCRIMINATOR_LAYERS)}, got {layer_list!r}")
    if padding not in PADDINGS:
        raise ValueError(f"padding: expected one of {', '.join(PADDINGS)}, got {padding!r}")
    sides, field, jump = list(size), 1, 1
    for _, kernel, stride, _ in DISCRIMINATOR_LAYERS[layer_list]:
        if padding == "valid":
            sides = [(s - kernel) // stride + 1 if s >= kernel else 0 for s in sides]
        else:
            sides = [-(-s // stride) for s in sides]
        field += (kernel - 1) * jump
        jump *= stride
    if min(sides) < 1:
        raise ValueError(f"input size {tuple(size)} is too small for the {layer_list!r} "
                         f"discriminator with {padding!r} padding (a patch is {field}x{field} "
                         f"pixels); use the 'eyes' layer list or 'same' padding")
    return {"map": tuple(sides), "receptive_field": field, "stride": jump}


@keras.saving.register_keras_serializable(package="tfgan3d")
class BorderPad2D(layers.Layer):
    """Pads H and W by (before, after) with the mirrored image ("reflect": the edge row not
    repeated, "symmetric": repeated), so that the next valid conv keeps the size.

    Args:
        before, after: pixels added above/left and below/right.
        mode: "reflect" or "symmetric".
    Raises:
        ValueError: negative amounts or an unknown mode.
    """

    def __init__(self, before: int = 1, after: int = 1, mode: str = "reflect", **kwargs):
        super().__init__(**kwargs)
        if before < 0 or after < 0:
            raise ValueError(f"BorderPad2D: amounts must be >= 0, got {before}, {after}")
        if mode not in ("reflect", "symmetric"):
            raise ValueError(f"BorderPad2D: mode must be reflect or symmetric, got {mode!r}")
        self.before, self.after, self.mode = int(before), int(after), mode

    def call(self, x):
        pads = [[0, 0], [self.before, self.after], [self.before, self.after], [0, 0]]
        return tf.pad(x, pads, mode=self.mode.upper())

    def compute_output_shape(self, shape):
        grow = self.before + self.after
        return (shape[0], *(None if s is None else s + grow for s in shape[1:3]), shape[3])

    def get_config(self):
        return {**super().get_config(), "before": self.before, "after": self.after,
                "mode": self.mode}


@keras.saving.register_keras_serializable(package="tfgan3d")
class PixelNoise(layers.Layer):
    """Concatenates `channels` channels of per-pixel N(0, 1) noise, fresh at every call.

    Args:
        channels: noise channels (>= 1).
        seed: seeds the layer's keras.random.SeedGenerator.
    """

    def __init__(self, channels: int = 1, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if channels < 1:
            raise ValueError(f"PixelNoise: channels must be >= 1, got {channels}")
        self.channels, self.seed = int(channels), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x):
        shape = tf.concat([tf.shape(x)[:3], [self.channels]], axis=0)
        noise = keras.random.normal(shape, dtype=x.dtype, seed=self.seed_generator)
        return tf.concat([x, noise], axis=-1)

    def compute_output_shape(self, shape):
        return (*shape[:3], shape[3] + self.channels)

    def get_config(self):
        return {**super().get_config(), "channels": self.channels, "seed": self.seed}


def _conv(x, filters, kernel, padding, name):
    """A stride-1 conv that keeps the size: mirrored padding + valid, or zero ("same")."""
    if padding == "zeros" or kernel == 1:
        return layers.Conv2D(filters, kernel, padding="same", name=name)(x)
    x = BorderPad2D((kernel - 1) // 2, kernel // 2, padding, name=f"{name}_pad")(x)
    return layers.Conv2D(filters, kernel, padding="valid", name=name)(x)


def _resnet_block(x, filters, kernel, padding, name):
    y = _conv(x, filters, kernel, padding, f"{name}_conv1")
    y = layers.ReLU(name=f"{name}_relu1")(y)
    y = _conv(y, filters, kernel, padding, f"{name}_conv2")
    y = layers.Add(name=f"{name}_skip")([x, y])
    return layers.ReLU(name=f"{name}_relu2")(y)


def refiner_receptive_field(kernel: int = 3, blocks: int = 4) -> int:
    """Side in pixels of the input patch that one refined pixel depends on."""
    return 1 + (kernel - 1) * (1 + 2 * blocks)


def build_refiner(channels: int = 1, *, kernel: int = 3, blocks: int = 4, filters: int = 64,
                  padding: str = "reflect", noise_channels: int = 0, seed: int | None = None,
                  name: str = "refiner") -> keras.Model:
    """R: synthetic (B, H, W, channels) in [-1, 1] -> refined, same shape, any H and W
    (at least kernel // 2 + 1 pixels for the mirrored padding).

    padding: "reflect" (default), "symmetric" or "zeros" (Keras "same"); see the module
    docstring. noise_channels: > 0 adds the noise input (extension, see the module docstring);
    seed seeds its noise.

    Raises:
        ValueError: a non-positive size argument or an unknown padding.
    """
    for arg, value in (("channels", channels), ("kernel", kernel), ("filters", filters)):
        if value < 1:
            raise ValueError(f"build_refiner: {arg} must be >= 1, got {value}")
    if blocks < 0:
        raise ValueError(f"build_refiner: blocks must be >= 0, got {blocks}")
    if noise_channels < 0:
        raise ValueError(f"build_refiner: noise_channels must be >= 0, got {noise_channels}")
    if padding not in REFINER_PADDINGS:
        raise ValueError(f"build_refiner: padding must be one of {', '.join(REFINER_PADDINGS)}, "
                         f"got {padding!r}")
    synthetic = keras.Input((None, None, channels), name="synthetic")
    x = synthetic
    # optional per-pixel noise channels (not in the paper)
    if noise_channels:
        x = PixelNoise(noise_channels, seed, name="noise")(x)
    # k x k conv to `filters` maps
    x = _conv(x, filters, kernel, padding, "conv_in")
    x = layers.ReLU(name="relu_in")(x)
    # ResNet blocks: conv-ReLU-conv, identity skip, ReLU
    for i in range(blocks):
        x = _resnet_block(x, filters, kernel, padding, f"block{i + 1}")
    # 1x1 conv to the image channels; tanh to the data range
    x = layers.Conv2D(channels, 1, name="conv_out")(x)
    refined = layers.Activation("tanh", dtype="float32", name="refined")(x)
    return keras.Model(synthetic, refined, name=name)


def build_discriminator(image_shape, *, layer_list: str = "eyes", padding: str = "valid",
                        norm: str = "none", head: str = "local",
                        name: str = "discriminator") -> keras.Model:
    """D: image (B, H, W, C) -> class logits (real, refined).

    head "local": a (B, h, w, 2) map, one logit pair per patch (see `discriminator_map_shape`;
    (B, 4, 9, 2) for 35x55 eyes). head "global" (the ablation): the same layers up to the last
    hidden conv, then a fully connected layer to one logit pair per image, (B, 2).
    norm "batch" puts batch normalisation after each hidden conv (the paper's blog mentions it).

    Raises:
        ValueError: unknown option values, or an input too small for the layer list.
    """
    if norm not in NORMS:
        raise ValueError(f"norm: expected one of {', '.join(NORMS)}, got {norm!r}")
    if head not in HEADS:
        raise ValueError(f"head: expected one of {', '.join(HEADS)}, got {head!r}")
    height, width, channels = image_shape
    discriminator_map_shape((height, width), layer_list, padding)     # validates the size
    image = keras.Input((height, width, channels), name="image")
    spec = DISCRIMINATOR_LAYERS[layer_list]
    x = image
    for i, (kind, kernel, stride, filters) in enumerate(spec[:-1]):
        if kind == "pool":
            x = layers.MaxPooling2D(kernel, stride, padding=padding, name=f"pool{i + 1}")(x)
            continue
        x = layers.Conv2D(filters, kernel, stride, padding=padding, use_bias=norm == "none",
                          name=f"conv{i + 1}")(x)
        if norm == "batch":
            x = layers.BatchNormalization(name=f"norm{i + 1}")(x)
        x = layers.ReLU(name=f"relu{i + 1}")(x)
    if head == "local":
        _, kernel, stride, filters = spec[-1]
        x = layers.Conv2D(filters, kernel, stride, padding=padding, name="patch_logits_conv")(x)
    else:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(2, name="image_logits_dense")(x)
    logits = layers.Activation("linear", dtype="float32", name="logits")(x)
    return keras.Model(image, logits, name=name)
