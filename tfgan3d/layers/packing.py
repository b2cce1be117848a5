"""3D packing and unpacking (Guizilini et al., "3D Packing for Self-Supervised Monocular Depth
Estimation", CVPR 2020), channels-last.

Packing replaces a strided convolution: space-to-depth by 2 folds each 2x2 block into the
channels, a 3D convolution with one input channel runs over (height, width, packed channels)
and widens them `d` times, and a 2D convolution mixes the result down to `filters`. Unpacking
is the mirror image: a 2D convolution to `4 * filters / d` channels, the 3D convolution back
to `4 * filters`, then depth-to-space by 2. The 3D convolution is always 1 -> d filters of
3x3x3, 27 * d + d weights (224 for d = 8).

Both layers may hold the normalisation and activation that follow their 2D convolution
(Sim2Real, Table 2): after the packing layer's convolution, and between the unpacking layer's
convolution and its 3D convolution ("Conv2D + InstanceNorm + Unpacking"). A 2D convolution
followed by a normalisation has no bias by default (the norm's offset replaces it).

Channel order of the packed tensor: TensorFlow's space_to_depth / depth_to_space and a
channels-last reshape, which differ from PyTorch's PixelShuffle order; this matters only when
porting weights.
"""
from __future__ import annotations

import keras
import tensorflow as tf

NORMS = (None, "instance", "batch")


def _gaussian():
    return keras.initializers.RandomNormal(0.0, 0.02)


def _check_common(name, filters, kernel_size, d, norm):
    if not isinstance(filters, int) or filters < 1:
        raise ValueError(f"{name}: filters must be a positive integer, got {filters!r}")
    if not isinstance(kernel_size, int) or kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"{name}: kernel_size must be a positive odd integer (same padding), "
                         f"got {kernel_size!r}")
    if not isinstance(d, int) or d < 1:
        raise ValueError(f"{name}: d (3D convolution filters) must be a positive integer, "
                         f"got {d!r}")
    if norm not in NORMS:
        raise ValueError(f"{name}: norm must be one of {NORMS}, got {norm!r}")


def _make_norm(norm, name):
    if norm == "instance":  # one group per channel = instance normalisation
        return keras.layers.GroupNormalization(groups=-1, epsilon=1e-5, name=name)
    if norm == "batch":
        return keras.layers.BatchNormalization(epsilon=1e-5, name=name)
    return None


def _check_even(name, input_shape):
    if len(input_shape) != 4:
        raise ValueError(f"{name}: expected a 4-D input (batch, height, width, channels), "
                         f"got shape {tuple(input_shape)}")
    for axis, size in (("height", input_shape[1]), ("width", input_shape[2])):
        if size is not None and size % 2:
            raise ValueError(f"{name}: {axis} must be even to pack 2x2 blocks, got input shape "
                             f"{tuple(input_shape)}")
    if input_shape[-1] is None:
        raise ValueError(f"{name}: the channel axis must be known, got input shape "
                         f"{tuple(input_shape)}")


@keras.saving.register_keras_serializable("tfgan3d")
class Packing3D(keras.layers.Layer):
    """Space-to-depth by 2, a 1 -> d 3D convolution over the packed channels, a 2D convolution.

    [B, H, W, C] -> [B, H/2, W/2, 4C] -> [B, H/2, W/2, 4C, 1] -> Conv3D(d, 3x3x3)
    -> [B, H/2, W/2, 4C * d] -> Conv2D(filters, kernel_size) [-> norm -> activation].

    Args:
        filters: output channels.
        kernel_size: odd kernel of the 2D convolution (same padding).
        d: filters of the 3D convolution (8 in PackNet).
        norm: None, "instance" or "batch": normalisation after the 2D convolution.
        activation: activation after the normalisation (e.g. "relu"), or None.
        kernel_initializer: initializer of both convolution kernels (default N(0, 0.02)).
        use_bias: bias of the 2D convolution; None: only without a norm.
    Raises:
        ValueError: bad arguments; an input whose height or width is odd.
    """

    def __init__(self, filters: int, kernel_size: int = 3, d: int = 8, norm: str | None = None,
                 activation=None, kernel_initializer=None, use_bias: bool | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        _check_common("Packing3D", filters, kernel_size, d, norm)
        self.filters, self.kernel_size, self.d, self.norm = filters, kernel_size, d, norm
        self.use_bias = norm is None if use_bias is None else bool(use_bias)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer or _gaussian())
        init = self.kernel_initializer
        self.conv3d = keras.layers.Conv3D(d, 3, padding="same", kernel_initializer=init,
                                          name="conv3d")
        self.conv2d = keras.layers.Conv2D(filters, kernel_size, padding="same",
                                          use_bias=self.use_bias, kernel_initializer=init,
                                          name="conv2d")
        self.norm_layer = _make_norm(norm, "norm")

    def build(self, input_shape):
        _check_even("Packing3D", input_shape)
        b, h, w, c = input_shape
        half = (None if h is None else h // 2, None if w is None else w // 2)
        self.conv3d.build((b, *half, 4 * c, 1))
        self.conv2d.build((b, *half, 4 * c * self.d))
        if self.norm_layer is not None:
            self.norm_layer.build((b, *half, self.filters))

    def call(self, inputs, training=None):
        packed = tf.nn.space_to_depth(inputs, 2)                  # [B, H/2, W/2, 4C]
        x = self.conv3d(packed[..., None])                        # [B, H/2, W/2, 4C, d]
        shape = tf.shape(x)
        x = tf.reshape(x, [shape[0], shape[1], shape[2], packed.shape[-1] * self.d])
        x = self.conv2d(x)
        if self.norm_layer is not None:
            x = self.norm_layer(x, training=training)
        return self.activation(x)

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        return (b, None if h is None else h // 2, None if w is None else w // 2, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "d": self.d, "norm": self.norm,
                "use_bias": self.use_bias,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}


@keras.saving.register_keras_serializable("tfgan3d")
class Unpacking3D(keras.layers.Layer):
    """A 2D convolution, a 1 -> d 3D convolution, depth-to-space by 2.

    [B, H, W, C] -> Conv2D(4 * filters / d, kernel_size) [-> norm -> activation]
    -> [B, H, W, 4 * filters / d, 1] -> Conv3D(d, 3x3x3) -> [B, H, W, 4 * filters]
    -> depth-to-space -> [B, 2H, 2W, filters].

    Args:
        filters: output channels; 4 * filters must be divisible by d.
        kernel_size: odd kernel of the 2D convolution (same padding).
        d: filters of the 3D convolution (8 in PackNet).
        norm: None, "instance" or "batch": normalisation after the 2D convolution.
        activation: activation after that normalisation (e.g. "relu"), or None.
        kernel_initializer: initializer of both convolution kernels (default N(0, 0.02)).
        use_bias: bias of the 2D convolution; None: only without a norm.
    Raises:
        ValueError: bad arguments.
    """

    def __init__(self, filters: int, kernel_size: int = 3, d: int = 8, norm: str | None = None,
                 activation=None, kernel_initializer=None, use_bias: bool | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        _check_common("Unpacking3D", filters, kernel_size, d, norm)
        if (4 * filters) % d:
            raise ValueError(f"Unpacking3D: 4 * filters must be divisible by d, got "
                             f"filters={filters}, d={d}")
        self.filters, self.kernel_size, self.d, self.norm = filters, kernel_size, d, norm
        self.use_bias = norm is None if use_bias is None else bool(use_bias)
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer or _gaussian())
        init = self.kernel_initializer
        self.conv2d = keras.layers.Conv2D(4 * filters // d, kernel_size, padding="same",
                                          use_bias=self.use_bias, kernel_initializer=init,
                                          name="conv2d")
        self.norm_layer = _make_norm(norm, "norm")
        self.conv3d = keras.layers.Conv3D(d, 3, padding="same", kernel_initializer=init,
                                          name="conv3d")

    def build(self, input_shape):
        if len(input_shape) != 4 or input_shape[-1] is None:
            raise ValueError(f"Unpacking3D: expected a 4-D input with known channels, got "
                             f"shape {tuple(input_shape)}")
        b, h, w, _ = input_shape
        narrow = 4 * self.filters // self.d
        self.conv2d.build(input_shape)
        if self.norm_layer is not None:
            self.norm_layer.build((b, h, w, narrow))
        self.conv3d.build((b, h, w, narrow, 1))

    def call(self, inputs, training=None):
        x = self.conv2d(inputs)                                   # [B, H, W, 4F/d]
        if self.norm_layer is not None:
            x = self.norm_layer(x, training=training)
        x = self.activation(x)
        x = self.conv3d(x[..., None])                             # [B, H, W, 4F/d, d]
        shape = tf.shape(x)
        x = tf.reshape(x, [shape[0], shape[1], shape[2], 4 * self.filters])
        return tf.nn.depth_to_space(x, 2)                         # [B, 2H, 2W, F]

    def compute_output_shape(self, input_shape):
        b, h, w, _ = input_shape
        return (b, None if h is None else 2 * h, None if w is None else 2 * w, self.filters)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters,
                "kernel_size": self.kernel_size, "d": self.d, "norm": self.norm,
                "use_bias": self.use_bias,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer)}
