"""Losses of 3D FCR-alphaGAN (Rosca et al. 2017's alphaGAN on voxel scenes): pure functions.

Every function returns a float32 scalar: a mean over the examples of the local batch (pass it
through `replica_scaled` before taking gradients under a distribution strategy).
Scenes are one-hot / probability tensors (B, ..., C) of any spatial rank; codes and logits may
have any shape (B, ...). `GAN_LOSSES` names the adversarial families: "bce" (intended) and
"legacy" (the original's swapped `sigmoid_cross_entropy_with_logits` arguments).
"""
import numpy as np
from keras import ops

from tfgan3d.losses.gan import gan_discriminator_loss, gan_generator_loss


def occupancy_class_weights(one_hot):
    """Per-class weights from the batch's class occupancy, favouring rare classes.

    w_c = (1 / (m_c + 1)) / sum_k (1 / (m_k + 1)), where m_c is the fraction of the batch's
    voxels that belong to class c. The weights sum to 1.

    Args:
        one_hot: labels (B, ..., C), one-hot (or soft) over the last axis.
    Returns:
        float32 tensor (C,).
    """
    one_hot = ops.cast(one_hot, "float32")
    occupancy = ops.mean(one_hot, axis=tuple(range(len(one_hot.shape) - 1)))
    inverse = 1.0 / (occupancy + 1.0)
    return inverse / ops.sum(inverse)


def voxel_reconstruction_loss(one_hot, probs, gamma=0.97, eps=1e-6):
    """Occupancy-weighted, gamma-weighted voxel cross-entropy.

    L = mean_b sum_c w_c sum_v -[gamma y log(p + eps) + (1 - gamma) (1 - y) log(1 - p + eps)],
    y = one_hot[b, v, c], p = probs[b, v, c], w = `occupancy_class_weights(one_hot)` (no
    gradient). gamma > 0.5 weights false negatives above false positives. Summed, not averaged,
    over voxels as the original, so the value grows with the grid (about 1e3 at 80x48x80).

    Args:
        one_hot: labels (B, ..., C).
        probs: predicted class probabilities, same shape.
        gamma: weight of the positive term, in [0, 1].
        eps: added inside the logarithms.
    Returns:
        Scalar float32 tensor.
    """
    known = zip(tuple(one_hot.shape), tuple(probs.shape))
    if (len(one_hot.shape) != len(probs.shape)
            or any(a != b for a, b in known if None not in (a, b))):
        raise ValueError(f"one_hot and probs must have the same shape; got {one_hot.shape} "
                         f"and {probs.shape}")
    y = ops.cast(one_hot, "float32")
    p = ops.cast(probs, "float32")
    weights = ops.stop_gradient(occupancy_class_weights(y))
    per_voxel = -(gamma * y * ops.log(p + eps) + (1.0 - gamma) * (1.0 - y) * ops.log(1.0 - p + eps))
    per_class = ops.sum(per_voxel, axis=tuple(range(1, len(y.shape) - 1)))   # (B, C)
    return ops.mean(ops.sum(per_class * weights, axis=-1))


def code_discriminator_loss(real_code_logits, fake_code_logits):
    """Code discriminator C: -E[log C(z)] - E[log(1 - C(E(x)))], z ~ N(0, 1) real.

    The intended sigmoid cross-entropy. The original passed the logits as `labels` and the
    constant targets as `logits` of `sigmoid_cross_entropy_with_logits`, which makes the term
    linear in the logit (e.g. 1 - l + log(1 + e^-1) for target 1).

    Args:
        real_code_logits: C's logits for prior samples z, (B, ...).
        fake_code_logits: C's logits for codes E(x), (B, ...).
    Returns:
        Scalar float32 tensor.
    """
    return gan_discriminator_loss(real_code_logits, fake_code_logits)


def code_encoder_loss(fake_code_logits):
    """Encoder's code-GAN loss: -E[log C(E(x))] (non-saturating; intended BCE, see above).

    Args:
        fake_code_logits: C's logits for codes E(x), (B, ...).
    Returns:
        Scalar float32 tensor.
    """
    return gan_generator_loss(fake_code_logits)


def alphagan_generator_loss(sample_logits, rec_logits):
    """G's adversarial loss against D on both of its outputs, as alphaGAN:
    -E[log D(G(z))] - E[log D(G(E(x)))].

    Args:
        sample_logits: D's logits for G(z) (or refined samples).
        rec_logits: D's logits for G(E(x)) (or refined reconstructions).
    Returns:
        Scalar float32 tensor.
    """
    return gan_generator_loss(sample_logits) + gan_generator_loss(rec_logits)


def alphagan_discriminator_loss(real_logits, sample_logits, rec_logits):
    """D's loss with two kinds of fakes, each weighted as one term of its own:
    -E[log D(x)] - E[log(1 - D(G(z)))] - E[log(1 - D(G(E(x))))].

    Args:
        real_logits: D's logits for real scenes x.
        sample_logits: D's logits for G(z) (or refined samples).
        rec_logits: D's logits for G(E(x)) (or refined reconstructions).
    Returns:
        Scalar float32 tensor.
    """
    # -log(1 - sigmoid(l)) = softplus(l) = -log(sigmoid(-l)): the fake term of the second kind
    # is the generator loss of the negated logits.
    return gan_discriminator_loss(real_logits, sample_logits) + gan_generator_loss(-rec_logits)


# ----------------------------------------------------------------------------- legacy losses

def _swapped_bce(logits, target):
    """The original's `sigmoid_cross_entropy_with_logits(labels=logits, logits=target)`:
    max(t, 0) - t * l + log(1 + exp(-|t|)) per element, mean; linear in the logit l."""
    logits = ops.cast(logits, "float32")
    t = float(target)
    return ops.mean(max(t, 0.0) - t * logits) + float(np.log1p(np.exp(-abs(t))))


def legacy_generator_loss(sample_logits, rec_logits):
    """The original's G (and refiner) GAN loss, arguments swapped (shared/reference/fcr_alphagan.md): (1 - l_gen + c) + (1 - l_rec + c), c = log(1 + e^-1).
    Its gradient only raises D's logits, whatever they are."""
    return _swapped_bce(sample_logits, 1.0) + _swapped_bce(rec_logits, 1.0)


def legacy_discriminator_loss(real_logits, sample_logits, rec_logits):
    """The original's D loss, arguments swapped: (1 - l_real + c) + log 2 + log 2. The fake
    terms are constants: D only learns to raise its logit on real scenes."""
    return (_swapped_bce(real_logits, 1.0) + _swapped_bce(sample_logits, 0.0)
            + _swapped_bce(rec_logits, 0.0))


def legacy_code_discriminator_loss(real_code_logits, fake_code_logits):
    """The original's code-D loss, arguments swapped: (1 - l_z + c) + log 2."""
    return _swapped_bce(real_code_logits, 1.0) + _swapped_bce(fake_code_logits, 0.0)


def legacy_code_encoder_loss(fake_code_logits):
    """The original's encoder code-GAN loss, arguments swapped: 1 - l + c."""
    return _swapped_bce(fake_code_logits, 1.0)


GAN_LOSSES = {
    "bce": {"generator": alphagan_generator_loss, "discriminator": alphagan_discriminator_loss,
            "code_discriminator": code_discriminator_loss, "code_encoder": code_encoder_loss},
    "legacy": {"generator": legacy_generator_loss,
               "discriminator": legacy_discriminator_loss,
               "code_discriminator": legacy_code_discriminator_loss,
               "code_encoder": legacy_code_encoder_loss},
}
"""GAN-loss families by name: "bce" (the intended sigmoid cross-entropy, default) and
"legacy" (the original's swapped arguments, to reproduce its dynamics)."""
