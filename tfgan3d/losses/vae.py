"""The Sim2Real twin VAE's terms (Raghavan et al., "Sim2Real for Self-Supervised Monocular
Depth and Segmentation"): KL to the prior, MMD with a Gaussian kernel, MSE and pixel-wise
cross-entropy. FCR-alphaGAN's VAE variants use the KL of a log-sigma code.

Two parameterisations of one KL, named by what the encoder's second head holds:
`kl_divergence_log_var` (log sigma^2: the Sim2Real encoders) and `kl_divergence_log_sigma`
(log sigma: FCR-alphaGAN's encoder, as the original names it).
"""
from keras import ops

from tfgan3d.losses.common import flatten_batch, masked_mean


def kl_divergence_log_var(z_mean, z_log_var, per_unit=False):
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
    mu, log_var = flatten_batch(z_mean), flatten_batch(z_log_var)
    kl = 0.5 * (ops.square(mu) + ops.exp(log_var) - 1.0 - log_var)
    per_example = ops.mean(kl, axis=1) if per_unit else ops.sum(kl, axis=1)
    return ops.mean(per_example)


def kl_divergence_log_sigma(z_mean, z_log_sigma):
    """KL(N(mu, sigma^2) || N(0, 1)) of a diagonal Gaussian code, summed over code values.

    KL = 0.5 * sum(mu^2 + sigma^2 - 1 - 2 log sigma), mean over the batch. The encoder's second
    head is z_log_sigma = log sigma (the log of the standard deviation, as the original names
    it), so this is `kl_divergence_log_var` with log variance 2 * z_log_sigma.

    Args:
        z_mean: mu, shape (B, ...).
        z_log_sigma: log sigma, same shape.
    Returns:
        Scalar float32 tensor.
    """
    return kl_divergence_log_var(z_mean, 2.0 * ops.cast(z_log_sigma, "float32"))


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
    x, y = flatten_batch(x), flatten_batch(y)
    if sigma is None:
        sigma = ops.sqrt(ops.cast(ops.shape(x)[1], "float32"))
    return _rbf_mean(x, x, sigma) - 2.0 * _rbf_mean(x, y, sigma) + _rbf_mean(y, y, sigma)


def _rbf_off_diagonal_mean(x, sigma):
    """mean over i != j of exp(-|x_i - x_j|^2 / (2 sigma^2)) (needs at least two rows)."""
    n = ops.cast(ops.shape(x)[0], "float32")
    total = _rbf_mean(x, x, sigma) * n * n           # every pair, the n diagonal ones included
    return (total - n) / (n * (n - 1.0))             # k(x_i, x_i) = 1


def mmd_rbf_unbiased(x, y, sigma=None):
    """Unbiased squared MMD (the U-statistic of Gretton et al. 2012, eq 3) with a Gaussian kernel.

    MMD_u^2 = 1/(m(m-1)) sum_{i != j} k(x_i, x_j) + 1/(n(n-1)) sum_{i != j} k(y_i, y_j)
              - 2/(mn) sum_{i, j} k(x_i, y_j).
    Unlike `mmd_rbf` (the V-statistic, whose self pairs k = 1 give two samples of one
    distribution an expected value of about 2 (1 - E k) / B at batch B), its expectation is 0
    when x and y come from the same distribution; single batches can read below 0. Not the
    paper's estimator: the option `mmd_pairing: unpaired` of the sim2real model uses it.

    Args:
        x: samples (m >= 2, ...); y: samples (n >= 2, ...) with as many values per example.
        sigma: kernel width; None: sqrt(D), as `mmd_rbf`.
    Returns:
        Scalar float32 tensor.
    """
    x, y = flatten_batch(x), flatten_batch(y)
    if sigma is None:
        sigma = ops.sqrt(ops.cast(ops.shape(x)[1], "float32"))
    return (_rbf_off_diagonal_mean(x, sigma) + _rbf_off_diagonal_mean(y, sigma)
            - 2.0 * _rbf_mean(x, y, sigma))


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
    return masked_mean(
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
