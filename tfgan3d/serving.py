"""Serving-side input checks, shared by every mode's signatures (a leaf module: trainers import
it; it imports nothing of tfgan3d).

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
    x = tf.ensure_shape(x, [None, *shape], name=f"{name}_shape")
    checks = []
    free = [i + 1 for i, d in enumerate(shape[:2]) if d is None]
    if free:
        sizes = tf.gather(tf.shape(x), free)
        checks.append(tf.debugging.assert_equal(
            tf.logical_and(sizes > 0, sizes % multiple == 0), True,
            message=f"{name}: expected {expected} with height and width positive multiples "
                    f"of {multiple}"))
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
