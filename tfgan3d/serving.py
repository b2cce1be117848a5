"""The serving side shared by every mode's signatures and inference (a leaf module: trainers
import it; it imports nothing of tfgan3d): input checks, images of any size (mirrored out to
a size the network takes and cropped back, `with_padding`), encoded images decoded in the graph
(`decode_images`) and the `tfgan3d_info` signature.

Conventions every mode keeps: a batch of 0 images (or scenes, or codes) gives empty outputs; a
bad request is an InvalidArgumentError naming the input and what was expected.

A served request can carry any shape and any values (TF Serving does not enforce the
signature's shape), so each signature passes its inputs through `checked` before the networks
run; a bad request then fails with an InvalidArgumentError that names the input and what was
expected, and the server keeps running.
"""
from __future__ import annotations

import tensorflow as tf


def checked(x, shape, *, name: str, multiple: int = 1, value_range=None, finite=False):
    """`x` after checks in the graph that gate everything computed from it.

    A served request can carry any shape (TF Serving does not enforce the signature's), and
    a convolution given a tensor of the wrong rank can abort the whole process. So the rank
    and the fixed sizes are enforced by `tf.ensure_shape` (the returned tensor is its output,
    so nothing downstream runs before it passes), and the further checks are asserts that the
    returned tensor depends on. Each failure is an InvalidArgumentError naming the expected
    shape or range.

    Args:
        x: the request's tensor, [B, *shape].
        shape: the per-example shape; None for a free size.
        name: the signature's input name, for the messages.
        multiple: the free spatial sizes (axes 1 and 2) must be positive multiples of it.
        value_range: (low, high) inclusive bounds of the values.
        finite: float values must be finite (implied by value_range).
    """
    expected = "[B, " + ", ".join("?" if d is None else str(d) for d in shape) + "]"
    what = (f"with height and width positive multiples of {multiple}" if multiple > 1 else
            "with positive height and width")
    x = tf.ensure_shape(x, [None, *shape], name=f"{name}_shape")
    checks = []
    free = [i + 1 for i, d in enumerate(shape[:2]) if d is None]
    if free:
        sizes = tf.gather(tf.shape(x), free)
        checks.append(tf.debugging.assert_equal(
            tf.logical_and(sizes > 0, sizes % multiple == 0), True,
            message=f"{name}: expected {expected} {what}"))
    if (finite or value_range is not None) and x.dtype.is_floating:
        checks.append(tf.debugging.assert_equal(
            tf.reduce_all(tf.math.is_finite(x)), True, message=f"{name}: expected finite values"))
    if value_range is not None:
        low, high = value_range
        checks.append(tf.debugging.assert_equal(
            tf.reduce_all((x >= low) & (x <= high)), True,
            message=f"{name}: expected values in [{low}, {high}]"))
    if not checks:
        return x
    with tf.control_dependencies(checks):
        return tf.identity(x)


def rgb_input(rgb, multiple: int):
    """A served uint8 RGB batch [B, H, W, 3] as float32 in [-1, 1], after checking in the graph
    (gating the networks) its rank, 3 channels, and H and W multiples of `multiple` (a U-Net's
    2**levels)."""
    rgb = checked(rgb, (None, None, 3), name="rgb", multiple=multiple)
    return tf.cast(rgb, tf.float32) / 127.5 - 1.0


# ----------------------------------------------------------------------------- any image size
# The networks take sizes that are multiples of 2**levels (U-Nets, the sim2real encoders) or at
# least a few pixels (SimGAN's mirrored convolutions). Served and predicted images of any other
# size are mirrored out to the next size the network takes and its outputs cropped back, in the
# graph, so that every caller (the signatures, each mode's `predict`, `tfgan3d.predict`) shares
# one path.

def _mirror_indices(size, before, total):
    """Source rows of a mirrored ("reflect": the edge row not repeated) extension of `size`
    rows by `before` rows in front, `total` rows in all; any amounts, as a period of
    2 * (size - 1) rows (a 1-row image repeats its row)."""
    i = tf.range(total) - before
    period = tf.maximum(2 * (size - 1), 1)
    i = tf.math.floormod(i, period)
    return tf.where(i < size, i, period - i)


def pad_reflect(x, before_h, after_h, before_w, after_w):
    """[B, H, W, ...] mirrored by those amounts on axes 1 and 2 (any amounts, unlike tf.pad's
    REFLECT, which needs fewer than H or W)."""
    shape = tf.shape(x)
    h, w = shape[1], shape[2]
    x = tf.gather(x, _mirror_indices(h, before_h, h + before_h + after_h), axis=1)
    return tf.gather(x, _mirror_indices(w, before_w, w + before_w + after_w), axis=2)


def padded_size(size, multiple: int = 1, min_size: int = 1):
    """The smallest size >= max(size, min_size) that is a multiple of `multiple`."""
    size = tf.maximum(size, min_size)
    return (size + multiple - 1) // multiple * multiple


def nonempty(fn, x, probe=None):
    """`fn(x)`, or for a batch of 0 the outputs of `fn` on `probe` (default: one zero example
    like x's) cut to 0 examples. Some kernels fail on an empty batch (oneDNN's convolutions in
    a loaded SavedModel, MirrorPad); every mode answers an empty request with empty outputs."""
    x = tf.convert_to_tensor(x)
    if probe is None:
        probe = tf.zeros(tf.concat([[1], tf.shape(x)[1:]], 0), x.dtype)
    return tf.cond(tf.shape(x)[0] > 0, lambda: fn(x),
                   lambda: tf.nest.map_structure(lambda y: y[:0], fn(probe)))


def with_padding(fn, x, multiple: int = 1, min_size: int = 1):
    """`fn` applied to `x` [B, H, W, C] mirrored out (centred) to sizes the network takes,
    H' = padded_size(H) and W' = padded_size(W), and every output cropped back to H x W on its
    axes 1 and 2. `fn` returns a tensor or a dict of tensors of rank >= 3 (per-pixel outputs).
    An input of the right size passes through unchanged (the crop of a zero pad); a batch of
    0 gives empty outputs [0, H, W, ...] (see `nonempty`)."""
    x = tf.convert_to_tensor(x)
    shape = tf.shape(x)
    h, w = shape[1], shape[2]

    def run(x):
        pad_h = padded_size(h, multiple, min_size) - h
        pad_w = padded_size(w, multiple, min_size) - w
        top, left = pad_h // 2, pad_w // 2
        out = fn(pad_reflect(x, top, pad_h - top, left, pad_w - left))
        return tf.nest.map_structure(lambda y: y[:, top:top + h, left:left + w], out)

    def empty(probe):
        out = fn(probe)
        return tf.nest.map_structure(
            lambda y: tf.zeros(tf.concat([[0, h, w], tf.shape(y)[3:]], 0), y.dtype), out)

    side = padded_size(1, multiple, min_size)
    probe = tf.zeros(tf.concat([[1, side, side], shape[3:]], 0), x.dtype)
    return tf.cond(shape[0] > 0, lambda: run(x), lambda: empty(probe))


def image_input(image, channels: int, *, name: str = "rgb"):
    """A served uint8 batch [B, H, W, channels] as float32 in [-1, 1], after checking in the
    graph its rank, channels and positive H and W. A batch of 0 images is allowed and gives
    empty outputs (in every mode)."""
    image = checked(image, (None, None, channels), name=name)
    return tf.cast(image, tf.float32) / 127.5 - 1.0


def decode_images(image_bytes, channels: int, *, name: str = "image_bytes"):
    """A batch of encoded images (PNG, JPEG, GIF or BMP strings [B]; other bytes are an
    InvalidArgumentError naming `name`) as uint8 [B, H, W, channels], decoded in the graph as
    `tf.io.decode_image` does (grey expanded, alpha dropped, 16-bit PNGs cut to their high
    byte, colour to grey for 1 channel). The images of one request must share a size (an
    InvalidArgumentError says so); an empty batch gives [0, 1, 1, channels]."""
    image_bytes = tf.ensure_shape(image_bytes, [None], name=f"{name}_shape")

    def decode(data):
        head = tf.strings.substr(data, 0, 8)
        known = tf.reduce_any(tf.stack([
            tf.equal(head, b"\x89PNG\r\n\x1a\n"),
            tf.equal(tf.strings.substr(head, 0, 3), b"\xff\xd8\xff"),
            tf.equal(tf.strings.substr(head, 0, 3), b"GIF"),
            tf.equal(tf.strings.substr(head, 0, 2), b"BM")]))
        check = tf.debugging.assert_equal(
            known, True, message=f"{name}: expected PNG, JPEG, GIF or BMP bytes")
        with tf.control_dependencies([check]):
            return tf.io.decode_image(data, channels=channels, dtype=tf.uint8,
                                      expand_animations=False)

    def decode_all():
        size = tf.shape(decode(image_bytes[0]))[:2]

        def one(data):
            image = decode(data)
            same = tf.debugging.assert_equal(
                tf.shape(image)[:2], size,
                message=f"{name}: expected images of one size in a request (send other "
                        f"sizes in another request)")
            with tf.control_dependencies([same]):
                return tf.identity(image)
        return tf.map_fn(one, image_bytes,
                         fn_output_signature=tf.TensorSpec([None, None, channels], tf.uint8))

    return tf.cond(tf.size(image_bytes) > 0, decode_all,
                   lambda: tf.zeros([0, 1, 1, channels], tf.uint8))


ENCODED_SPEC = tf.TensorSpec([None], tf.string, name="image_bytes")
ENCODED_ENDPOINT = "serving_encoded"
INFO_ENDPOINT = "tfgan3d_info"


def info_endpoint(mode: str, config_json: str) -> tuple:
    """The `tfgan3d_info` signature: no inputs -> {"mode": string, "config": the run's config
    as JSON}; how `tfgan3d.predict` knows what an exported model is and how to show it."""
    def info():
        return {"mode": tf.constant(mode), "config": tf.constant(config_json)}
    return info, []
