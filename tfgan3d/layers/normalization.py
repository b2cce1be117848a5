"""Batch normalisation on TensorFlow's fused kernel.

Keras 3 normalises with about a dozen separate ops (moments, then subtract, rsqrt, multiply,
add), and its gradient is as many again. `BatchNormalization` here is the Keras layer with the
same weights, arguments and results, computed for channels-last 4D and 5D inputs by one
`FusedBatchNormV3` op forward and one gradient op backward (oneDNN kernels on CPU, cuDNN on
GPU). The moving statistics follow Keras' rule with the biased batch variance, so a model
built with either layer restores the other's checkpoints. Other cases (masks, renorm,
synchronized statistics, another axis, another backend) take Keras' own path.
"""
from __future__ import annotations

import keras
import tensorflow as tf


@keras.saving.register_keras_serializable(package="tfgan3d")
class BatchNormalization(keras.layers.BatchNormalization):
    """`keras.layers.BatchNormalization` on the fused kernel (channels-last, 4D or 5D)."""

    def _fusable(self, inputs, mask) -> bool:
        rank = len(inputs.shape)
        return (keras.backend.backend() == "tensorflow" and mask is None and not self.renorm
                and not self.synchronized and rank in (4, 5)
                and self.axis in (-1, rank - 1))

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        x = tf.cast(inputs, tf.float32)
        channels = x.shape[-1]
        gamma = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones((channels,))
        beta = tf.cast(self.beta, tf.float32) if self.center else tf.zeros((channels,))
        data_format = "NHWC" if len(x.shape) == 4 else "NDHWC"
        if training and self.trainable:
            y, mean, variance, _, _, _ = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=gamma, offset=beta, mean=tf.zeros((0,)), variance=tf.zeros((0,)),
                epsilon=self.epsilon, data_format=data_format, is_training=True)
            # The kernel returns the unbiased (n / (n - 1)) variance for the moving average,
            # and n / 1 when n == 1; Keras averages the biased one.
            n = tf.cast(tf.size(x) // channels, tf.float32)
            variance = variance * tf.maximum(n - 1.0, 1.0) / n
            momentum = tf.cast(self.momentum, tf.float32)
            self.moving_mean.assign(tf.cast(
                self.moving_mean * momentum + mean * (1.0 - momentum), self.moving_mean.dtype))
            self.moving_variance.assign(tf.cast(
                self.moving_variance * momentum + variance * (1.0 - momentum),
                self.moving_variance.dtype))
        else:
            y, *_ = tf.raw_ops.FusedBatchNormV3(
                x=x, scale=gamma, offset=beta,
                mean=tf.cast(self.moving_mean, tf.float32),
                variance=tf.cast(self.moving_variance, tf.float32),
                epsilon=self.epsilon, data_format=data_format, is_training=False)
        return tf.cast(y, self.compute_dtype)


def synchronize_batch_norm(model: keras.Model) -> int:
    """Makes every batch-norm layer of `model` (nested networks included) compute its batch
    statistics over the global batch, all replicas together (`synchronized=True`: an
    all-reduce of the per-replica sums), as one device would on the whole batch (`--sync-bn`).

    Weights and checkpoints are unchanged; call it before the first training step is traced.
    Returns the number of layers changed (0: the model has no batch norm).
    """
    count = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization) and not layer.synchronized:
            layer.synchronized = True
            count += 1
    return count
