"""Sim2Real twin-VAE networks (Raghavan et al., appendix Table 2): two encoders and two image
decoders around a shared latent space, and two auxiliary decoders (depth, segmentation).

Table 2 at 256 x 256 (rows; K = kernel; InstanceNorm = GroupNormalization(groups=-1)):
  E_S, E_R   1  Conv2D 7, 64 + LeakyReLU(0.2)                       256
           2-6  Packing3D + Conv2D 3 + InstanceNorm + ReLU: 76, 88, 100, 128, 200
                                                                     128 .. 8
           7-8  residual block 200: Conv2D 3 + IN + ReLU + Conv2D 3 + IN, + input
             9  Packing3D + Conv2D 3 + IN + ReLU: 250                  4
  shared    10  z_mean = Conv2D 3, 300 + BatchNorm (no activation: a mean takes any sign)
                z_log_var = Conv2D 3, 300 beside it (not in the table; shared as well)
  G_S, G_R  11  shared: ConvTranspose2D 3, 250 + BatchNorm + ReLU        4
            12  Conv2D 3 + IN + ReLU + Unpacking3D: 200                  8
         13-14  residual blocks 200                                      8
         15-19  Conv2D 3 + IN + ReLU + Unpacking3D: 128, 100, 88, 76, 64 16 .. 256
            20  ConvTranspose2D 7, 3 + tanh                              256
  D_depth   rows 11-20 of its own (nothing shared), 1 channel + tanh
  D_seg     rows 11-20 of its own, C channels, logits (no tanh)

"Shared" layers are one set of layer objects called from both domains' networks (section
3.2): `shared_encoder` inside E_S and E_R, `shared_decoder` inside G_S and G_R. The convolution
of rows 10 and 11 has no bias (BatchNorm follows), so each shared block holds the three weight
tensors "kernel, gamma, beta" (section 3.2 speaks of the last three weights of each encoder);
likewise every convolution followed by a normalisation has no bias.
Rows 7-8 and 13-14 are read as UNIT's residual blocks (`residual=False`: plain conv pairs with
a ReLU after the second norm). Convolution kernels start at N(0, 0.02).

Smaller presets keep the layout and take fewer packing levels (the deepest ones of the table)
and a width multiplier: `Sim2RealNetSpec.scaled(image_size=32, levels=3, width_mult=0.125)`.
"""
from __future__ import annotations

import dataclasses

import keras
from keras import layers

from tfgan3d.layers.packing import Packing3D, Unpacking3D

TABLE2_WIDTHS = (64, 76, 88, 100, 128, 200, 250)   # row 1, then the six packing layers
TABLE2_LATENT = 300
TABLE2_CLASSES = 15                                  # Table 2's segmentation output


def _init():
    return keras.initializers.RandomNormal(0.0, 0.02)


def _round_width(x: float, multiple: int) -> int:
    return max(multiple, int(round(x / multiple)) * multiple)


@dataclasses.dataclass(frozen=True)
class Sim2RealNetSpec:
    """Sizes of the networks; the defaults are Table 2's.

    Attributes:
        image_size: training image side; a multiple of 2 ** (len(widths) - 1).
        widths: row-1 width, then the output width of each packing layer (the decoders run
            them backwards; each must be a multiple of d / 4 for the unpacking layers).
        latent_channels: channels of z (z is image_size / 2 ** levels on a side).
        res_blocks: residual blocks at the second deepest level of every encoder / decoder.
        residual: identity skips around those blocks.
        num_classes: segmentation classes C.
        depth_channels: channels of the depth decoder's output.
        d: filters of the packing layers' 3D convolutions.
    """
    image_size: int = 256
    widths: tuple = TABLE2_WIDTHS
    latent_channels: int = TABLE2_LATENT
    res_blocks: int = 2
    residual: bool = True
    num_classes: int = TABLE2_CLASSES
    depth_channels: int = 1
    d: int = 8

    def __post_init__(self):
        widths = tuple(int(w) for w in self.widths)
        object.__setattr__(self, "widths", widths)
        if len(widths) < 3:
            raise ValueError(f"widths: expected a row-1 width and at least two packing "
                             f"widths, got {widths}")
        if any(w < 1 or (4 * w) % self.d for w in widths):
            raise ValueError(f"widths {widths}: each must be positive and 4 * width divisible "
                             f"by d = {self.d}")
        if self.image_size % 2 ** self.levels:
            raise ValueError(f"image_size {self.image_size} is not a multiple of "
                             f"2 ** levels = {2 ** self.levels} ({self.levels} packing layers)")
        for name in ("latent_channels", "num_classes", "depth_channels"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: expected >= 1, got {getattr(self, name)}")
        if self.res_blocks < 0:
            raise ValueError(f"res_blocks: expected >= 0, got {self.res_blocks}")

    @property
    def levels(self) -> int:
        """Packing (and unpacking) layers per encoder (decoder)."""
        return len(self.widths) - 1

    @property
    def latent_size(self) -> int:
        return self.image_size // 2 ** self.levels

    @classmethod
    def scaled(cls, image_size: int = 256, levels: int = 6, width_mult: float = 1.0,
               **kwargs) -> "Sim2RealNetSpec":
        """Table 2 with the `levels` deepest packing layers and every width times `width_mult`
        (rounded to a multiple of d / 4)."""
        if not 2 <= levels <= len(TABLE2_WIDTHS) - 1:
            raise ValueError(f"levels: expected 2..{len(TABLE2_WIDTHS) - 1}, got {levels}")
        if width_mult <= 0:
            raise ValueError(f"width_mult: expected > 0, got {width_mult}")
        multiple = max(1, kwargs.get("d", 8) // 4)
        table = (TABLE2_WIDTHS[0],) + TABLE2_WIDTHS[-levels:]
        widths = tuple(_round_width(w * width_mult, multiple) for w in table)
        latent = _round_width(TABLE2_LATENT * width_mult, 1)
        return cls(image_size=image_size, widths=widths, latent_channels=latent, **kwargs)


@dataclasses.dataclass
class Sim2RealNetworks:
    """The networks of the scheme; the `shared_*` models are nested inside the domain ones."""
    encoder_sim: keras.Model      # E_S: x_S -> [z_mean, z_log_var]
    encoder_real: keras.Model     # E_R
    decoder_sim: keras.Model      # G_S: z -> image in [-1, 1]
    decoder_real: keras.Model     # G_R
    depth_decoder: keras.Model    # D_depth (the paper's G_D): z -> depth in [-1, 1]
    seg_decoder: keras.Model      # D_seg (the paper's G_I): z -> class logits
    shared_encoder: keras.Model   # row 10 (+ the z_log_var head)
    shared_decoder: keras.Model   # row 11 of G_S and G_R

    def parts(self) -> dict:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def _instance_norm(name):
    return layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)


def _res_block(x, width, residual, name):
    """Rows 7-8 / 13-14: Conv2D + IN + ReLU + Conv2D + IN (+ input)."""
    y = layers.Conv2D(width, 3, padding="same", use_bias=False, kernel_initializer=_init(),
                      name=f"{name}_conv1")(x)
    y = layers.ReLU(name=f"{name}_relu1")(_instance_norm(f"{name}_in1")(y))
    y = layers.Conv2D(width, 3, padding="same", use_bias=False, kernel_initializer=_init(),
                      name=f"{name}_conv2")(y)
    y = _instance_norm(f"{name}_in2")(y)
    if residual:
        return layers.Add(name=f"{name}_add")([x, y])
    return layers.ReLU(name=f"{name}_relu2")(y)


def build_shared_encoder(spec: Sim2RealNetSpec, name: str = "shared_encoder") -> keras.Model:
    """Row 10: h [h, w, widths[-1]] -> [z_mean, z_log_var], each [h, w, latent_channels]."""
    h = keras.Input((None, None, spec.widths[-1]), name=f"{name}_h")
    z_mean = layers.Conv2D(spec.latent_channels, 3, padding="same", use_bias=False,
                           kernel_initializer=_init(), name=f"{name}_mean_conv")(h)
    z_mean = layers.BatchNormalization(epsilon=1e-5, name=f"{name}_mean_bn")(z_mean)
    z_log_var = layers.Conv2D(spec.latent_channels, 3, padding="same",
                              kernel_initializer=_init(), name=f"{name}_log_var_conv")(h)
    return keras.Model(h, [z_mean, z_log_var], name=name)


def build_encoder(spec: Sim2RealNetSpec, shared_encoder: keras.Model, name: str,
                  size=(None, None)) -> keras.Model:
    """Rows 1-9 of one domain, then the shared row 10: RGB in [-1, 1] -> [z_mean, z_log_var]."""
    w = spec.widths
    x_in = keras.Input((*size, 3), name=f"{name}_image")
    x = layers.Conv2D(w[0], 7, padding="same", kernel_initializer=_init(),
                      name=f"{name}_stem")(x_in)                                   # row 1
    x = layers.LeakyReLU(0.2, name=f"{name}_stem_lrelu")(x)
    for i, width in enumerate(w[1:-1]):                                            # rows 2-6
        x = Packing3D(width, 3, d=spec.d, norm="instance", activation="relu",
                      name=f"{name}_pack{i + 1}")(x)
    for j in range(spec.res_blocks):                                               # rows 7-8
        x = _res_block(x, w[-2], spec.residual, f"{name}_res{j + 1}")
    x = Packing3D(w[-1], 3, d=spec.d, norm="instance", activation="relu",
                  name=f"{name}_pack{spec.levels}")(x)                             # row 9
    z_mean, z_log_var = shared_encoder(x)                                          # row 10
    return keras.Model(x_in, [z_mean, z_log_var], name=name)


def build_decoder_head(spec: Sim2RealNetSpec, name: str) -> keras.Model:
    """Row 11: z -> [h, w, widths[-1]] (shared by G_S and G_R; each auxiliary decoder owns one)."""
    z = keras.Input((None, None, spec.latent_channels), name=f"{name}_z")
    x = layers.Conv2DTranspose(spec.widths[-1], 3, padding="same", use_bias=False,
                               kernel_initializer=_init(), name=f"{name}_deconv")(z)
    x = layers.BatchNormalization(epsilon=1e-5, name=f"{name}_bn")(x)
    x = layers.ReLU(name=f"{name}_relu")(x)
    return keras.Model(z, x, name=name)


def build_decoder(spec: Sim2RealNetSpec, out_channels: int, name: str, *,
                  head: keras.Model | None = None, tanh: bool = True,
                  size=(None, None)) -> keras.Model:
    """Row 11 (`head`, or a private one), rows 12-20: z -> [H, W, out_channels]."""
    w = spec.widths
    z = keras.Input((*size, spec.latent_channels), name=f"{name}_z")
    head = head if head is not None else build_decoder_head(spec, f"{name}_head")
    x = head(z)                                                                    # row 11
    x = Unpacking3D(w[-2], 3, d=spec.d, norm="instance", activation="relu",
                    name=f"{name}_unpack1")(x)                                     # row 12
    for j in range(spec.res_blocks):                                               # rows 13-14
        x = _res_block(x, w[-2], spec.residual, f"{name}_res{j + 1}")
    for i, width in enumerate(reversed(w[:-2])):                                   # rows 15-19
        x = Unpacking3D(width, 3, d=spec.d, norm="instance", activation="relu",
                        name=f"{name}_unpack{i + 2}")(x)
    x = layers.Conv2DTranspose(out_channels, 7, padding="same", kernel_initializer=_init(),
                               name=f"{name}_out")(x)                              # row 20
    if tanh:
        x = layers.Activation("tanh", name=f"{name}_tanh")(x)
    return keras.Model(z, x, name=name)


def build_sim2real_networks(spec: Sim2RealNetSpec | None = None,
                            size=(None, None)) -> Sim2RealNetworks:
    """All eight networks; `size` (None, None) accepts any multiple of 2 ** levels."""
    spec = spec or Sim2RealNetSpec()
    latent = tuple(None if s is None else s // 2 ** spec.levels for s in size)
    shared_encoder = build_shared_encoder(spec)
    shared_decoder = build_decoder_head(spec, "shared_decoder")
    return Sim2RealNetworks(
        encoder_sim=build_encoder(spec, shared_encoder, "encoder_sim", size),
        encoder_real=build_encoder(spec, shared_encoder, "encoder_real", size),
        decoder_sim=build_decoder(spec, 3, "decoder_sim", head=shared_decoder, size=latent),
        decoder_real=build_decoder(spec, 3, "decoder_real", head=shared_decoder, size=latent),
        depth_decoder=build_decoder(spec, spec.depth_channels, "depth_decoder", size=latent),
        seg_decoder=build_decoder(spec, spec.num_classes, "seg_decoder", tanh=False,
                                  size=latent),
        shared_encoder=shared_encoder,
        shared_decoder=shared_decoder,
    )
