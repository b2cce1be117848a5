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
    return _masked_mean(ops.abs(ops.cast(target, "float32") - ops.cast(prediction, "float32")),
                        mask)


def _masked_mean(values, mask=None):
    """sum(mask * values) / max(sum(mask), 1); the plain mean without a mask."""
    if mask is None:
        return ops.mean(values)
    mask = ops.broadcast_to(ops.cast(mask, "float32"), ops.shape(values))
    return ops.sum(values * mask) / ops.maximum(ops.sum(mask), 1.0)


# ----------------------------------------------------------------------------- VAE terms
# Sim2Real twin VAE (Raghavan et al., "Sim2Real for Self-Supervised Monocular Depth and
# Segmentation"): KL to the prior, MMD with a Gaussian kernel, MSE and pixel-wise
# cross-entropy.


def _flatten_batch(x):
    """[B, ...] -> [B, D] float32."""
    x = ops.cast(x, "float32")
    return ops.reshape(x, (ops.shape(x)[0], -1))


def kl_divergence(z_mean, z_log_var, per_unit=False):
    """KL(q(z|x) || N(0, I)) of a diagonal Gaussian posterior, mean over the examples.

    d_KL = 1/2 * sum_j (mu_j^2 + exp(log_var_j) - 1 - log_var_j), summed over the latent units
    of each example (Kingma & Welling 2014, appendix B; Sim2Real eqs 2, 3, 11, 12).

    Args:
        z_mean: posterior means, shape (B, ...).
        z_log_var: posterior log variances, same shape.
        per_unit: divide by the number of latent units (the KL per unit), which puts the term
            on the scale of per-pixel means such as `mse_loss`.
    Returns:
        Scalar float32 tensor.
    """
    mu, log_var = _flatten_batch(z_mean), _flatten_batch(z_log_var)
    kl = 0.5 * (ops.square(mu) + ops.exp(log_var) - 1.0 - log_var)
    per_example = ops.mean(kl, axis=1) if per_unit else ops.sum(kl, axis=1)
    return ops.mean(per_example)


def _rbf_mean(x, y, sigma):
    """mean_ij exp(-|x_i - y_j|^2 / (2 sigma^2)) over every pair of rows."""
    sq = (ops.sum(ops.square(x), axis=1)[:, None] + ops.sum(ops.square(y), axis=1)[None, :]
          - 2.0 * ops.matmul(x, ops.transpose(y)))
    return ops.mean(ops.exp(-ops.maximum(sq, 0.0) / (2.0 * sigma ** 2)))


def mmd_rbf(x, y, sigma=None):
    """Squared maximum mean discrepancy between two samples with a Gaussian kernel.

    MMD^2 = E[k(x, x')] - 2 E[k(x, y)] + E[k(y, y')], k(a, b) = exp(-|a - b|^2 / (2 sigma^2)),
    each expectation the mean over every pair of rows of the batches, pairs of a row with
    itself included (the biased V-statistic; Sim2Real eqs 6, 7, 13, 14, whose "in practice
    a = a~, z = z~" reuses one batch for both arguments). Rows are the flattened examples.

    Args:
        x: samples, shape (B1, ...).
        y: samples, shape (B2, ...) with the same number of values per example.
        sigma: kernel width; None: sqrt(D) for D values per example, so that two independent
            N(0, I) draws sit at k = exp(-1) whatever the latent size.
    Returns:
        Scalar float32 tensor (>= 0 up to rounding).
    """
    x, y = _flatten_batch(x), _flatten_batch(y)
    if sigma is None:
        sigma = ops.sqrt(ops.cast(ops.shape(x)[1], "float32"))
    return _rbf_mean(x, x, sigma) - 2.0 * _rbf_mean(x, y, sigma) + _rbf_mean(y, y, sigma)


def mse_loss(target, prediction, mask=None):
    """Mean squared error over the pixels where `mask` is 1 (all pixels without a mask).

    MSE = sum(mask * (y - y_hat)^2) / max(sum(mask), 1) (Sim2Real eqs 4, 5, 15, 16).

    Args:
        target: ground truth, shape (B, ...).
        prediction: same shape as `target`.
        mask: optional 0/1 weights broadcastable to `target`.
    Returns:
        Scalar float32 tensor.
    """
    return _masked_mean(
        ops.square(ops.cast(target, "float32") - ops.cast(prediction, "float32")), mask)


def pixelwise_cross_entropy(labels, logits, mask=None):
    """Softmax cross-entropy per pixel, mean over the pixels where `mask` is 1.

    CE = -log(exp(l[c*]) / sum_j exp(l[j])) for the true class c* of each pixel (Sim2Real
    eqs 18, 19, read as the usual one-hot cross-entropy: the sum over c there weighs each
    class by its one-hot target).

    Args:
        labels: int class ids, shape (B, ...).
        logits: raw scores, shape labels.shape + (C,).
        mask: optional 0/1 weights broadcastable to `labels` (e.g. pixels without a label).
    Returns:
        Scalar float32 tensor.
    """
    logits = ops.cast(logits, "float32")
    ce = ops.sparse_categorical_crossentropy(ops.cast(labels, "int32"), logits, from_logits=True)
    if mask is None:
        return ops.mean(ce)
    mask = ops.broadcast_to(ops.cast(mask, "float32"), ops.shape(ce))
    return ops.sum(ce * mask) / ops.maximum(ops.sum(mask), 1.0)


# ----------------------------------------------------------------------------- SimGAN terms
# Shrivastava et al. 2017, "Learning from Simulated and Unsupervised Images through Adversarial
# Training". The discriminator gives two class logits (real, refined) per patch or per image:
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
