"""Voxel-scene networks of 3D FCR-alphaGAN: encoder, generator, discriminators and refiner.

Channels-last 3D tensors (B, X, H, Z, C) of per-class one-hot voxels or class probabilities.
At the paper's sizes (`VoxelNetSpec()`): scenes 80 x 48 x 80 x 12, anisotropic 5 x 3 x 5
kernels, widths 64-128-256-512, a fully convolutional latent of 5 x 3 x 5 x 16; no biases and
N(0, 0.02) weights as the original. Every strided layer halves (encoder, discriminator) or
doubles (generator) all three spatial axes, so the latent grid is the scene grid divided by
2 ** len(widths).

Departures from the original, all deliberate:
  - The discriminator's layer normalisation is `GroupNormalization(groups=1)`: statistics
    over all of (x, h, z, c) of each sample as the original, but one gain and offset per
    channel instead of one scalar pair (1,792 instead of 6 parameters at the paper's widths).
    Keras' `LayerNormalization(axis=[1, 2, 3, 4])` would instead hold one gain per voxel and
    channel, which ties the network to one grid.
  - Normalisation epsilon 1e-5; batch-norm gains start at N(1, 0.02), offsets at 0.
  - The refiner is a residual in log-probability space, softmax(log(p + 1e-6) + f(p)), with
    f's last convolution initialised to zero: it starts as the identity (the original's
    softmax(f(p)) starts near uniform, so its refiner first had to learn to copy its input).
    Same weights and count as the original.
"""
import dataclasses
import math

import keras

PAPER_GRID = (80, 48, 80)


@dataclasses.dataclass(frozen=True)
class VoxelNetSpec:
    """Sizes of the voxel networks; the defaults are the paper's.

    Attributes:
        grid: scene grid (x, height, z); each axis divisible by 2 ** len(widths).
        num_classes: voxel classes (one-hot channels).
        widths: channels of the strided encoder / discriminator convolutions, in order; the
            generator runs them backwards.
        latent_channels: channels of the fully convolutional latent.
        kernel: kernel of every strided (transposed) convolution.
        refiner_channels, refiner_blocks: refiner width and number of residual blocks.
        code_d_units: hidden units of the code discriminator.
        use_bias: biases in convolutions and dense layers (the original has none).
        latent1d: the 1-D latent baseline: a flat code of `latent_dim` values.
    """
    grid: tuple = PAPER_GRID
    num_classes: int = 12
    widths: tuple = (64, 128, 256, 512)
    latent_channels: int = 16
    kernel: tuple = (5, 3, 5)
    refiner_channels: int = 32
    refiner_blocks: int = 4
    code_d_units: tuple = (750, 750)
    use_bias: bool = False
    latent1d: bool = False

    def __post_init__(self):
        for name in ("grid", "widths", "kernel", "code_d_units"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if len(self.grid) != 3 or len(self.kernel) != 3:
            raise ValueError(f"grid and kernel need 3 axes (x, height, z); got grid={self.grid}, "
                             f"kernel={self.kernel}")
        if not self.widths:
            raise ValueError("widths must name at least one strided layer; got ()")
        factor = 2 ** len(self.widths)
        if any(g % factor for g in self.grid):
            raise ValueError(f"grid {self.grid} must be divisible by 2 ** len(widths) = {factor} "
                             f"on every axis (widths={self.widths})")
        sizes = {"num_classes": self.num_classes, "latent_channels": self.latent_channels,
                 "refiner_channels": self.refiner_channels}
        for name, value in sizes.items():
            if value < 1:
                raise ValueError(f"{name} must be >= 1; got {value}")
        if self.refiner_blocks < 0 or min(self.widths + self.code_d_units + self.kernel) < 1:
            raise ValueError(f"sizes must be positive; got widths={self.widths}, kernel="
                             f"{self.kernel}, code_d_units={self.code_d_units}, "
                             f"refiner_blocks={self.refiner_blocks}")

    @property
    def input_shape(self):
        """Shape of one scene: (*grid, num_classes)."""
        return (*self.grid, self.num_classes)

    @property
    def latent_grid(self):
        """Spatial shape of the latent: the grid after len(widths) halvings."""
        return tuple(g // 2 ** len(self.widths) for g in self.grid)

    @property
    def latent_dim(self):
        """Number of latent values per scene (1200 at the paper's sizes)."""
        return math.prod(self.latent_grid) * self.latent_channels

    @property
    def latent_shape(self):
        """Shape of one code: (*latent_grid, latent_channels), or (latent_dim,) if latent1d."""
        return (self.latent_dim,) if self.latent1d else (*self.latent_grid, self.latent_channels)


VOXEL_PRESETS = {
    "paper": VoxelNetSpec(),
    # standard: quick's grid with three strided levels instead of four, so that the latent
    # stays a spatial grid (4 x 2 x 4 x 16, the paper's is 5 x 3 x 5 x 16): quick's 2 x 1 x 2
    # latent is almost a vector and cannot pose the seed's fully convolutional vs 1-D question
    "standard": VoxelNetSpec(grid=(32, 16, 32), widths=(16, 32, 64), latent_channels=16,
                             refiner_channels=16, refiner_blocks=2, code_d_units=(256, 256)),
    "quick": VoxelNetSpec(grid=(32, 16, 32), widths=(8, 16, 32, 64), latent_channels=8,
                          refiner_channels=8, refiner_blocks=2, code_d_units=(128, 128)),
    "tiny": VoxelNetSpec(grid=(16, 16, 16), widths=(4, 8, 8, 8), latent_channels=4,
                         refiner_channels=4, refiner_blocks=1, code_d_units=(16, 16)),
}


class _Init:
    """N(mean, 0.02) initializers with distinct seeds derived from one (None: unseeded)."""

    def __init__(self, seed):
        self.seed, self.count = seed, 0

    def __call__(self, mean=0.0):
        seed = None if self.seed is None else self.seed + self.count
        self.count += 1
        return keras.initializers.RandomNormal(mean, 0.02, seed=seed)


def _conv(spec, init, filters, kernel, strides, name, transpose=False):
    layer = keras.layers.Conv3DTranspose if transpose else keras.layers.Conv3D
    return layer(filters, kernel, strides, padding="same", use_bias=spec.use_bias,
                 kernel_initializer=init(), name=name)


def _dense(spec, init, units, name, dtype=None):
    return keras.layers.Dense(units, use_bias=spec.use_bias, kernel_initializer=init(), name=name,
                              dtype=dtype)


def _batch_norm(init, name):
    return keras.layers.BatchNormalization(epsilon=1e-5, gamma_initializer=init(1.0), name=name)


def _lrelu(name):
    return keras.layers.LeakyReLU(0.2, name=name)


def _strided_trunk(spec, init, x, norm):
    """The downsampling trunk that E and D share: conv 12 -> 64, stride 2, lrelu (no
    normalisation); then conv 64 -> 128 -> 256 -> 512, stride 2, `norm(i)` + lrelu."""
    h = _conv(spec, init, spec.widths[0], spec.kernel, 2, "conv0")(x)
    h = _lrelu("lrelu0")(h)
    for i, width in enumerate(spec.widths[1:], 1):
        h = _conv(spec, init, width, spec.kernel, 2, f"conv{i}")(h)
        h = norm(i)(h)
        h = _lrelu(f"lrelu{i}")(h)
    return h


def build_encoder(spec=VoxelNetSpec(), *, seed=None, name="encoder"):
    """E: scenes (B, *grid, C) -> [z_mean, z_log_sigma], each (B, *spec.latent_shape).

    alphaGAN uses z_mean as the code; the VAE baseline samples z_mean + exp(z_log_sigma) * eps.
    """
    init = _Init(seed)
    x = keras.Input(spec.input_shape, name="voxels")
    h = _strided_trunk(spec, init, x, lambda i: _batch_norm(init, f"bn{i}"))
    if spec.latent1d:
        # 1-D baseline: flatten (5*3*5*512 = 38400) -> dense 1200 for each of mean and log-sigma
        h = keras.layers.Flatten(name="flatten")(h)
        z_mean = _dense(spec, init, spec.latent_dim, "z_mean")(h)
        z_log_sigma = _dense(spec, init, spec.latent_dim, "z_log_sigma")(h)
    else:
        # two 1x1x1 convs 512 -> 16
        z_mean = _conv(spec, init, spec.latent_channels, 1, 1, "z_mean")(h)
        z_log_sigma = _conv(spec, init, spec.latent_channels, 1, 1, "z_log_sigma")(h)
    return keras.Model(x, [z_mean, z_log_sigma], name=name)


def build_generator(spec=VoxelNetSpec(), *, seed=None, name="generator"):
    """G: codes (B, *spec.latent_shape) -> class probabilities (B, *grid, C), softmax over C.

    Probabilities only: the reconstruction loss and the discriminators take probabilities.
    The 1-D baseline differs only in its input shape (the code is flattened either way).
    """
    init = _Init(seed)
    z = keras.Input(spec.latent_shape, name="z")
    top = spec.widths[-1]
    # flatten 1200 -> dense 512*75, batch norm, relu -> reshape 5x3x5x512
    h = keras.layers.Flatten(name="flatten")(z)
    h = _dense(spec, init, math.prod(spec.latent_grid) * top, "dense")(h)
    h = _batch_norm(init, "bn_dense")(h)
    h = keras.layers.ReLU(name="relu_dense")(h)
    h = keras.layers.Reshape((*spec.latent_grid, top), name="reshape")(h)
    # conv-transpose 512 -> 256 -> 128 -> 64, stride 2, batch norm + relu
    for i, width in enumerate(reversed(spec.widths[:-1])):
        h = _conv(spec, init, width, spec.kernel, 2, f"deconv{i}", transpose=True)(h)
        h = _batch_norm(init, f"bn{i}")(h)
        h = keras.layers.ReLU(name=f"relu{i}")(h)
    # conv-transpose 64 -> 12, stride 2, softmax over classes (float32 under mixed precision)
    logits = _conv(spec, init, spec.num_classes, spec.kernel, 2, "logits", transpose=True)(h)
    probs = keras.layers.Softmax(axis=-1, dtype="float32", name="probs")(logits)
    return keras.Model(z, probs, name=name)


def build_discriminator(spec=VoxelNetSpec(), *, seed=None, name="discriminator"):
    """D: scenes (B, *grid, C) -> one logit per scene (B, 1)."""
    init = _Init(seed)
    x = keras.Input(spec.input_shape, name="voxels")
    # layer norm: per sample over x, y, z and channels
    h = _strided_trunk(spec, init, x, lambda i: keras.layers.GroupNormalization(
        groups=1, epsilon=1e-5, name=f"ln{i}"))
    # flatten 5*3*5*512 -> dense 1
    h = keras.layers.Flatten(name="flatten")(h)
    logit = _dense(spec, init, 1, "logit", dtype="float32")(h)
    return keras.Model(x, logit, name=name)


def build_code_discriminator(spec=VoxelNetSpec(), *, seed=None, name="code_discriminator"):
    """C: codes (B, *spec.latent_shape) -> one logit per code (B, 1)."""
    init = _Init(seed)
    z = keras.Input(spec.latent_shape, name="z")
    # flatten 1200 -> 750 -> 750, batch norm + relu
    h = keras.layers.Flatten(name="flatten")(z)
    for i, units in enumerate(spec.code_d_units):
        h = _dense(spec, init, units, f"dense{i}")(h)
        h = _batch_norm(init, f"bn{i}")(h)
        h = keras.layers.ReLU(name=f"relu{i}")(h)
    # -> 1
    logit = _dense(spec, init, 1, "logit", dtype="float32")(h)
    return keras.Model(z, logit, name=name)


@keras.saving.register_keras_serializable(package="tfgan3d")
class LogProbs(keras.layers.Layer):
    """log(p + 1e-6) of probabilities p, in float32: a softmax of it returns p to 1e-5."""

    def call(self, probs):
        return keras.ops.log(keras.ops.cast(probs, "float32") + 1e-6)


def build_refiner(spec=VoxelNetSpec(), *, seed=None, name="refiner"):
    """R: class probabilities (B, *grid, C) -> refined probabilities, same shape."""
    init = _Init(seed)
    width = spec.refiner_channels
    x = keras.Input(spec.input_shape, name="probs")
    # conv 3x3x3 12 -> 32, relu
    h = _conv(spec, init, width, 3, 1, "conv_in")(x)
    h = keras.layers.ReLU(name="relu_in")(h)
    # residual blocks: h = relu(h + conv(relu(conv(h)))), 3x3x3 32 -> 32
    for i in range(spec.refiner_blocks):
        r = _conv(spec, init, width, 3, 1, f"block{i}_conv0")(h)
        r = keras.layers.ReLU(name=f"block{i}_relu0")(r)
        r = _conv(spec, init, width, 3, 1, f"block{i}_conv1")(r)
        h = keras.layers.Add(name=f"block{i}_add")([h, r])
        h = keras.layers.ReLU(name=f"block{i}_relu1")(h)
    # conv 3x3x3 32 -> 12 (zero-initialised), added to log p; softmax over classes
    residual = keras.layers.Conv3D(spec.num_classes, 3, 1, padding="same",
                                   use_bias=spec.use_bias, kernel_initializer="zeros",
                                   name="conv_out")(h)
    log_p = LogProbs(name="log_probs")(x)
    logits = keras.layers.Add(name="residual_logits")([log_p, residual])
    probs = keras.layers.Softmax(axis=-1, dtype="float32", name="refined")(logits)
    return keras.Model(x, probs, name=name)


@dataclasses.dataclass
class FCRNetworks:
    """The networks of 3D FCR-alphaGAN (`tfgan3d.models.fcr_alphagan`)."""
    spec: VoxelNetSpec
    encoder: keras.Model                     # E: scenes -> [z_mean, z_log_sigma]
    generator: keras.Model                   # G: codes -> class probabilities
    discriminator: keras.Model               # D: scenes -> logit
    code_discriminator: keras.Model | None   # C: codes -> logit (None: the VAE variants)
    refiner: keras.Model                     # R: probabilities -> refined probabilities


def build_fcr_networks(spec=VoxelNetSpec(), *, seed=0, code_discriminator=True) -> FCRNetworks:
    """E, G, D, C and R of `spec`, their weights seeded from `seed` (E 1000 * seed, G + 100,
    D + 200, C + 300, R + 400). `code_discriminator=False` for the VAE variants, which have
    no C."""
    seed = int(seed)
    return FCRNetworks(
        spec=spec,
        encoder=build_encoder(spec, seed=1000 * seed),
        generator=build_generator(spec, seed=1000 * seed + 100),
        discriminator=build_discriminator(spec, seed=1000 * seed + 200),
        code_discriminator=(build_code_discriminator(spec, seed=1000 * seed + 300)
                            if code_discriminator else None),
        refiner=build_refiner(spec, seed=1000 * seed + 400))


def forward_macs(network):
    """Multiply-accumulates of one sample's forward pass, per convolution / dense layer.

    Conv3D: output voxels x kernel volume x in x out channels; Conv3DTranspose: input voxels x
    the same; Dense: in x out. Other layers (normalisation, activations) are not counted.

    Args:
        network: a built functional keras.Model.
    Returns:
        dict layer name -> MACs, in the network's layer order.
    """
    macs = {}
    for layer in network.layers:
        if isinstance(layer, keras.layers.Conv3DTranspose):
            macs[layer.name] = math.prod(layer.input.shape[1:-1]) * math.prod(layer.kernel.shape)
        elif isinstance(layer, keras.layers.Conv3D):
            macs[layer.name] = math.prod(layer.output.shape[1:-1]) * math.prod(layer.kernel.shape)
        elif isinstance(layer, keras.layers.Dense):
            macs[layer.name] = math.prod(layer.kernel.shape)
    return macs
