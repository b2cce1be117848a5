"""Loss functions shared by every scheme: pure functions of tensors, any rank.

Each loss returns the mean over the examples of the local (per-replica) batch. Under a
`tf.distribute` strategy, pass the value through `replica_scaled` before taking gradients, so
that the all-reduced (summed) gradients equal those of the mean over the global batch.
"""
import keras
from keras import ops


def replica_scaled(loss):
    """Divides a per-replica mean loss by the number of replicas in sync.

    Gradients of the scaled losses summed over replicas equal the gradient of the mean over the
    global batch, which is how `tf.distribute` all-reduces them.
    """
    return keras.src.losses.loss.scale_loss_for_distribution(loss)


def _sigmoid_ce(logits, labels_value):
    """Elementwise sigmoid cross-entropy of `logits` against a constant label (0 or 1)."""
    logits = ops.cast(logits, "float32")
    labels = ops.full_like(logits, labels_value)
    # max(x, 0) - x * z + log(1 + exp(-|x|)): stable for large |x|.
    return ops.relu(logits) - logits * labels + ops.log1p(ops.exp(-ops.abs(logits)))


def gan_discriminator_loss(real_logits, fake_logits):
    """Standard (minimax) GAN discriminator loss on logits of any rank.

    L_D = -E[log D(x)] - E[log(1 - D(G(z)))] with D = sigmoid(logits); for a PatchGAN each logit
    is one patch and the expectation runs over patches and examples (Goodfellow et al. 2014;
    Isola et al. 2017, eq. 1).

    Args:
        real_logits: discriminator logits for real samples, shape (B, ...).
        fake_logits: discriminator logits for generated samples, shape (B, ...).
    Returns:
        Scalar float32 tensor.
    """
    return ops.mean(_sigmoid_ce(real_logits, 1.0)) + ops.mean(_sigmoid_ce(fake_logits, 0.0))


def gan_generator_loss(fake_logits):
    """Non-saturating GAN generator loss: -E[log D(G(z))] on logits of any rank.

    Args:
        fake_logits: discriminator logits for generated samples, shape (B, ...).
    Returns:
        Scalar float32 tensor.
    """
    return ops.mean(_sigmoid_ce(fake_logits, 1.0))


def masked_l1_loss(target, prediction, mask=None):
    """Mean absolute error over the pixels (voxels) where `mask` is 1.

    L1 = sum(mask * |y - G(x)|) / max(sum(mask), 1). Without a mask it is the plain mean, which
    is pix2pix's L1 term (Isola et al. 2017, eq. 3). Invalid depth pixels (mask 0) contribute
    neither to the sum nor to the count.

    Args:
        target: ground truth, shape (B, ...).
        prediction: same shape as `target`.
        mask: optional 0/1 weights broadcastable to `target`.
    Returns:
        Scalar float32 tensor.
    """
    diff = ops.abs(ops.cast(target, "float32") - ops.cast(prediction, "float32"))
    if mask is None:
        return ops.mean(diff)
    mask = ops.broadcast_to(ops.cast(mask, "float32"), ops.shape(diff))
    return ops.sum(diff * mask) / ops.maximum(ops.sum(mask), 1.0)
