"""The standard GAN losses on logits and pix2pix's L1 term (Goodfellow et al. 2014; Isola et
al. 2017), for logits and images of any rank."""
from keras import ops

from tfgan3d.losses.common import masked_mean, sigmoid_cross_entropy


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
    return ops.mean(sigmoid_cross_entropy(real_logits, 1.0)) + ops.mean(sigmoid_cross_entropy(fake_logits, 0.0))


def gan_generator_loss(fake_logits):
    """Non-saturating GAN generator loss: -E[log D(G(z))] on logits of any rank.

    Args:
        fake_logits: discriminator logits for generated samples, shape (B, ...).
    Returns:
        Scalar float32 tensor.
    """
    return ops.mean(sigmoid_cross_entropy(fake_logits, 1.0))


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
    return masked_mean(ops.abs(ops.cast(target, "float32") - ops.cast(prediction, "float32")),
                        mask)
