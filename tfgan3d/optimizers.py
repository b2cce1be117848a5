"""Optimizers with fused TensorFlow kernels.

`keras.optimizers.Adam` updates each variable with about ten element-wise ops (subtract,
multiply, square, sqrt, divide and three assignments), each a pass over memory. For the pix2pix
generator (54 M weights) that is a fifth of a CPU training step. `Adam` here computes the same
update with TensorFlow's `ResourceApplyAdam` kernel, one pass per variable:

    m <- m + (g - m) (1 - beta_1)
    v <- v + (g^2 - v) (1 - beta_2)
    w <- w - lr sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)

which is Keras' formula term for term (t counts from 1), so checkpoints, slot names and results
are interchangeable with `keras.optimizers.Adam`. AMSGrad, sparse gradients and variables
that are not TensorFlow resource variables take Keras' own path.
"""
from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfgan3d")
class Adam(keras.optimizers.Adam):
    """`keras.optimizers.Adam` whose dense update is one fused kernel per variable."""

    def update_step(self, gradient, variable, learning_rate):
        if (self.amsgrad or keras.backend.backend() != "tensorflow"
                or isinstance(gradient, tf.IndexedSlices) or not hasattr(variable, "handle")):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=m.handle, v=v.handle,
            beta1_power=tf.pow(beta_1, step), beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype), grad=tf.cast(gradient, dtype))


def for_precision(optimizer, config):
    """Wrap `optimizer` in dynamic loss scaling when the run uses float16 on a GPU (bfloat16
    on CPU keeps float32's exponent range and needs none)."""
    if getattr(config, "mixed_precision", False) and tf.config.list_physical_devices("GPU"):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
