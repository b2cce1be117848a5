"""2D convolutions that switch to a matrix product where TensorFlow's kernels are slow.

On CPU, TensorFlow's convolution kernels run at a small fraction of the machine's speed on
feature maps of a few pixels with many channels, the innermost blocks of a 256x256 U-Net:
a transposed convolution 2x2x1024 -> 4x4x512 takes 40 ms forward, where reading its 33 MB of
weights takes 4. Written as gathered taps and one matrix product (im2col), with the large
weight matrix never transposed in the product or its gradient, these layers run at about the
speed of the memory.

`Conv2D` and `Conv2DTranspose` here are the Keras layers with the same weights, arguments and
results; they take the matrix-product path when the input's spatial shape is known and the
layer is one of those (see CONV_MAX_PIXELS), and Keras' convolution otherwise.
"""
from __future__ import annotations

import keras
import tensorflow as tf

# The matrix-product path is taken when its product has at most this many rows per image:
# output pixels for a convolution (the product's rows are output pixels), input pixels for a
# transposed convolution. Chosen from per-layer timings of the pix2pix U-Net on a 2-core CPU
# (python -m tfgan3d.tools.bench conv): the product is 2-3x faster (forward + backward) up to a
# 2x2 convolution output and an 8x8 transposed-convolution input, ties at a 4x4 output and a
# 16x16 input, and is slower beyond. With these limits the paper step went 1.27 -> 1.15 s.
CONV_MAX_PIXELS = 16
CONV_TRANSPOSE_MAX_PIXELS = 256
# Stride-1 'valid' convolutions (PatchGAN's last two layers) take their gradients as forward
# convolutions (`conv2d_stride1`).
STRIDE1_FORWARD_GRADIENTS = True


def _same_pad(size: int, stride: int, kernel: int) -> tuple[int, int, int]:
    """(output size, pad before, pad after) of a 'same' convolution along one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return out, total // 2, total - total // 2


def _conv_geometry(size: int, stride: int, kernel: int, padding: str) -> tuple[int, int, int]:
    """(output size, pad before, pad after) of a convolution along one axis."""
    if padding == "same":
        return _same_pad(size, stride, kernel)
    return (size - kernel) // stride + 1, 0, 0


def _plain(layer) -> bool:
    return (keras.backend.backend() == "tensorflow" and layer.data_format == "channels_last"
            and tuple(layer.dilation_rate) == (1, 1) and getattr(layer, "groups", 1) == 1)


@tf.custom_gradient
def _small_times_wide(a, w):
    """a @ w for a short `a` (few rows) and a large weight matrix `w`, with every product of
    the gradient taken with the large operand untransposed: oneDNN's and Eigen's kernels take
    several times longer for a transposed large operand than for a copy of the small one."""
    def grad(dy):
        da = tf.transpose(tf.matmul(w, tf.transpose(dy)))
        dw = tf.matmul(tf.transpose(a), dy)
        return da, dw
    return tf.matmul(a, w), grad


@tf.custom_gradient
def _wide_times_small(w, b):
    """w @ b for a large `w` and a narrow `b` (few columns); see `_small_times_wide`."""
    def grad(dy):
        dw = tf.matmul(dy, tf.transpose(b))
        db = tf.transpose(tf.matmul(tf.transpose(dy), w))
        return dw, db
    return tf.matmul(w, b), grad


@tf.custom_gradient
def conv2d_stride1(x, kernel):
    """tf.nn.conv2d(x, kernel, 1, "VALID") whose gradients are forward convolutions.

    TensorFlow's backprop kernels (oneDNN off) took 1.4-1.8x longer than these on PatchGAN's
    512-channel 4x4 layer at 34x34 and 5-18x longer on its one-channel logits layer. The input gradient is the correlation of
    the fully padded output gradient with the flipped, transposed kernel; the kernel gradient
    is a convolution of the input with the output gradient as the filter, with the batch and
    channel axes exchanged.
    """
    def grad(dy):
        kh, kw = kernel.shape[0], kernel.shape[1]
        flipped = tf.transpose(tf.reverse(kernel, [0, 1]), [0, 1, 3, 2])
        dx = tf.nn.conv2d(tf.pad(dy, [[0, 0], [kh - 1, kh - 1], [kw - 1, kw - 1], [0, 0]]),
                          flipped, 1, "VALID")
        dk = tf.nn.conv2d(tf.transpose(x, [3, 1, 2, 0]), tf.transpose(dy, [1, 2, 0, 3]), 1,
                          "VALID")                              # (C, kh, kw, F)
        return dx, tf.transpose(dk, [1, 2, 0, 3])
    return tf.nn.conv2d(x, kernel, 1, "VALID"), grad


def conv2d_matmul(x, kernel, strides, padding: str):
    """tf.nn.conv2d(x, kernel, strides, padding) for channels-last x of static spatial shape,
    as k_h * k_w strided slices concatenated along channels and one matrix product."""
    _, h, w, c = x.shape
    kh, kw, _, filters = kernel.shape
    sh, sw = strides
    oh, top, bottom = _conv_geometry(h, sh, kh, padding)
    ow, left, right = _conv_geometry(w, sw, kw, padding)
    x = tf.pad(x, [[0, 0], [top, bottom], [left, right], [0, 0]])
    taps = [x[:, i:i + (oh - 1) * sh + 1:sh, j:j + (ow - 1) * sw + 1:sw, :]
            for i in range(kh) for j in range(kw)]
    patches = tf.concat(taps, axis=-1) if len(taps) > 1 else taps[0]
    y = _small_times_wide(tf.reshape(patches, [-1, kh * kw * c]),
                          tf.reshape(kernel, [-1, filters]))
    return tf.reshape(y, [-1, oh, ow, filters])


def conv2d_transpose_matmul(x, kernel, strides, padding: str):
    """The Keras/TensorFlow transposed convolution (kernel (k_h, k_w, filters, in_channels),
    no output padding) as one matrix product to per-tap columns and their overlap-add.

    Output pixel s*i + k - p receives x[i] @ kernel[k]; with k = s*q + r, the taps of one
    phase r are shifts by q of a grid, and depth_to_space interleaves the s*s phases.
    """
    _, h, w, c = x.shape
    kh, kw, filters, _ = kernel.shape
    sh, sw = strides
    if kh % sh or kw % sw:
        raise ValueError("matmul transposed convolution needs kernel sizes divisible by strides")
    # rows (k_h, k_w, filter) of the kernel times the pixels as columns
    cols = _wide_times_small(tf.reshape(kernel, [kh * kw * filters, c]),
                             tf.transpose(tf.reshape(x, [-1, c])))
    cols = tf.reshape(tf.transpose(cols), [-1, h, w, kh, kw, filters])
    qh, qw = kh // sh, kw // sw
    phases = []
    for rh in range(sh):
        for rw in range(sw):
            grid = 0
            for a in range(qh):
                for b in range(qw):
                    tap = cols[:, :, :, sh * a + rh, sw * b + rw, :]
                    grid += tf.pad(tap, [[0, 0], [a, qh - 1 - a], [b, qw - 1 - b], [0, 0]])
            phases.append(grid)
    full = phases[0] if len(phases) == 1 else tf.concat(phases, axis=-1)
    if (sh, sw) != (1, 1):
        if sh != sw:
            raise ValueError("matmul transposed convolution needs equal strides")
        full = tf.nn.depth_to_space(full, sh)
    # full covers output positions -p .. (h - 1) * s + k - 1 - p
    if padding == "same":
        oh, ow = h * sh, w * sw
        top = _same_pad(oh, sh, kh)[1]
        left = _same_pad(ow, sw, kw)[1]
        return full[:, top:top + oh, left:left + ow, :]
    return full


@keras.saving.register_keras_serializable(package="tfgan3d")
class Conv2D(keras.layers.Conv2D):
    """keras.layers.Conv2D that takes the matrix-product path where it is faster."""

    def convolution_op(self, inputs, kernel):
        shape = inputs.shape
        if (STRIDE1_FORWARD_GRADIENTS and _plain(self) and tuple(self.strides) == (1, 1)
                and self.padding == "valid"):
            return conv2d_stride1(inputs, tf.cast(kernel, inputs.dtype))
        if _plain(self) and None not in shape[1:3]:
            oh, ow = (_conv_geometry(shape[axis], self.strides[axis - 1],
                                     self.kernel_size[axis - 1], self.padding)[0]
                      for axis in (1, 2))
            if oh * ow <= CONV_MAX_PIXELS:
                return conv2d_matmul(inputs, tf.cast(kernel, inputs.dtype), self.strides,
                                     self.padding)
        return super().convolution_op(inputs, kernel)


@keras.saving.register_keras_serializable(package="tfgan3d")
class Conv2DTranspose(keras.layers.Conv2DTranspose):
    """keras.layers.Conv2DTranspose that takes the matrix-product path where it is faster."""

    def call(self, inputs):
        shape = inputs.shape
        fast = (_plain(self) and None not in shape[1:3] and self.output_padding is None
                and self.kernel_size[0] % self.strides[0] == 0
                and self.kernel_size[1] % self.strides[1] == 0
                and self.strides[0] == self.strides[1]
                and shape[1] * shape[2] <= CONV_TRANSPOSE_MAX_PIXELS)
        if not fast:
            return super().call(inputs)
        outputs = conv2d_transpose_matmul(inputs, tf.cast(self.kernel, inputs.dtype),
                                          self.strides, self.padding)
        if self.use_bias:
            outputs = outputs + tf.cast(self.bias, outputs.dtype)
        if self.activation is not None:
            outputs = self.activation(outputs)
        return outputs
