"""What every loss family shares: the replica division and the masked means.

Each loss of `tfgan3d.losses` returns the mean over the examples of the local (per-replica)
batch. Under a `tf.distribute` strategy, pass the value through `replica_scaled` before taking
gradients, so that the all-reduced (summed) gradients equal those of the mean over the global
batch (`tfgan3d.models.steps` does).
"""
import tensorflow as tf
from keras import ops


def replica_scaled(loss):
    """Divides a per-replica mean loss by the number of replicas in sync.

    Gradients of the scaled losses summed over replicas equal the gradient of the mean over the
    global batch, which is how `tf.distribute` all-reduces them. With one replica the loss is
    returned unchanged.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if replicas > 1:
        loss = ops.multiply(loss, ops.cast(1.0 / replicas, loss.dtype))
    return loss


def sigmoid_cross_entropy(logits, labels_value):
    """Elementwise sigmoid cross-entropy of `logits` against a constant label (0 or 1)."""
    logits = ops.cast(logits, "float32")
    labels = ops.full_like(logits, labels_value)
    # max(x, 0) - x * z + log(1 + exp(-|x|)): stable for large |x|.
    return ops.relu(logits) - logits * labels + ops.log1p(ops.exp(-ops.abs(logits)))


def masked_mean(values, mask=None):
    """sum(mask * values) / max(sum(mask), 1); the plain mean without a mask."""
    if mask is None:
        return ops.mean(values)
    mask = ops.broadcast_to(ops.cast(mask, "float32"), ops.shape(values))
    return ops.sum(values * mask) / ops.maximum(ops.sum(mask), 1.0)


def flatten_batch(x):
    """[B, ...] -> [B, D] float32."""
    x = ops.cast(x, "float32")
    return ops.reshape(x, (ops.shape(x)[0], -1))
