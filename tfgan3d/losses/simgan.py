"""SimGAN's losses (Shrivastava et al. 2017, "Learning from Simulated and Unsupervised Images
through Adversarial Training"): the local and global adversarial losses and the
self-regularisation, for images of any rank."""
from keras import ops

# The discriminator gives two class logits (real, refined) per patch or per image:
# class 0 = real (the paper's label 0 for y), class 1 = refined (label 1 for x_tilde).

REAL_CLASS, REFINED_CLASS = 0, 1
SELF_REG_FEATURES = ("identity", "mean", "gradient")


def _two_class_ce_per_example(logits, label, name):
    """Softmax cross-entropy of (..., 2) logits against a constant class, summed over every
    axis but the batch and the class axes: shape (B,)."""
    logits = ops.cast(logits, "float32")
    if logits.shape[-1] is not None and logits.shape[-1] != 2:
        raise ValueError(f"{name}: expected 2 class logits (real, refined) on the last axis, "
                         f"got shape {tuple(logits.shape)}")
    ce = -ops.log_softmax(logits, axis=-1)[..., label]
    return ops.sum(ops.reshape(ce, (ops.shape(ce)[0], -1)), axis=1)


def local_adversarial_discriminator_loss(real_logits, refined_logits):
    """SimGAN's discriminator loss with a local (patch) discriminator.

    L_D = -sum_patches log(1 - D(y)) - sum_patches log D(x_tilde) with D the softmax
    probability of "refined" (eq. 2 with the local adversarial loss of section 2.2: the
    cross-entropy summed over the w x h patches), each sum averaged over its examples.

    Args:
        real_logits: logits of real images, shape (B, ..., 2), e.g. (B, h, w, 2).
        refined_logits: logits of refined images, shape (B', ..., 2).
    Returns:
        Scalar float32 tensor.
    Raises:
        ValueError: a last axis other than 2.
    """
    name = "local_adversarial_discriminator_loss"
    return (ops.mean(_two_class_ce_per_example(real_logits, REAL_CLASS, name))
            + ops.mean(_two_class_ce_per_example(refined_logits, REFINED_CLASS, name)))


def local_adversarial_refiner_loss(refined_logits):
    """SimGAN's realism loss for the refiner: l_real = -sum_patches log(1 - D(R(x))) (eqs 3
    and 4, summed over the w x h patches), averaged over the examples.

    Args:
        refined_logits: discriminator logits of refined images, shape (B, ..., 2).
    Returns:
        Scalar float32 tensor.
    Raises:
        ValueError: a last axis other than 2.
    """
    return ops.mean(_two_class_ce_per_example(refined_logits, REAL_CLASS,
                                              "local_adversarial_refiner_loss"))


def _check_global(logits, name):
    if len(logits.shape) != 2:
        raise ValueError(f"{name}: expected one logit pair per image, shape (B, 2), got "
                         f"shape {tuple(logits.shape)}; use local_adversarial_* for patch maps")


def global_adversarial_discriminator_loss(real_logits, refined_logits):
    """The ablation's global loss (section 3.3): eq. 2 with one (real, refined) logit pair per
    image, averaged over the examples.

    Args:
        real_logits: shape (B, 2).
        refined_logits: shape (B', 2).
    Returns:
        Scalar float32 tensor.
    Raises:
        ValueError: logits that are not (B, 2).
    """
    name = "global_adversarial_discriminator_loss"
    _check_global(real_logits, name)
    _check_global(refined_logits, name)
    return local_adversarial_discriminator_loss(real_logits, refined_logits)


def global_adversarial_refiner_loss(refined_logits):
    """The ablation's refiner realism loss: -log(1 - D(R(x))) per image (eq. 3), mean over the
    examples.

    Args:
        refined_logits: shape (B, 2).
    Returns:
        Scalar float32 tensor.
    Raises:
        ValueError: logits that are not (B, 2).
    """
    _check_global(refined_logits, "global_adversarial_refiner_loss")
    return local_adversarial_refiner_loss(refined_logits)


def self_regularization_features(images, feature="identity"):
    """The feature transform psi of SimGAN's self-regularisation, as a list of tensors.

    identity: [x]. mean: [mean of x over the channel (last) axis, keepdims]. gradient: forward
    differences along each spatial axis, [x[:, 1:] - x[:, :-1], x[:, :, 1:] - x[:, :, :-1], ...]
    (for images: the y then the x derivative).

    Args:
        images: shape (B, *spatial, C).
        feature: "identity", "mean" or "gradient".
    Returns:
        list of float32 tensors.
    Raises:
        ValueError: an unknown feature.
    """
    if feature not in SELF_REG_FEATURES:
        raise ValueError(f"self-regularisation feature: expected one of "
                         f"{', '.join(SELF_REG_FEATURES)}, got {feature!r}")
    x = ops.cast(images, "float32")
    if feature == "identity":
        return [x]
    if feature == "mean":
        return [ops.mean(x, axis=-1, keepdims=True)]
    rank = len(x.shape)
    diffs = []
    for axis in range(1, rank - 1):
        head = [slice(None)] * rank
        tail = [slice(None)] * rank
        head[axis], tail[axis] = slice(1, None), slice(None, -1)
        diffs.append(x[tuple(head)] - x[tuple(tail)])
    return diffs


def self_regularization_loss(refined, synthetic, feature="identity"):
    """SimGAN's self-regularisation l_reg = || psi(R(x)) - psi(x) ||_1 (eq. 4): the L1 norm
    (sum of absolute values over each example's features), averaged over the examples.

    Args:
        refined: R(x), shape (B, *spatial, C).
        synthetic: x, same shape.
        feature: psi, see `self_regularization_features`.
    Returns:
        Scalar float32 tensor.
    """
    total = 0.0
    for a, b in zip(self_regularization_features(refined, feature),
                    self_regularization_features(synthetic, feature)):
        diff = ops.abs(a - b)
        total = total + ops.sum(ops.reshape(diff, (ops.shape(diff)[0], -1)), axis=1)
    return ops.mean(total)
