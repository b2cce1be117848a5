"""Does a twin VAE's shared latent space hold both domains in one place? Statistics of the
codes E_S(x_S) of sim test images and E_R(x_R) of real test images.

The paper's MMD terms compare a code with N(0, I) or with the code of its own translation;
none of them says whether the codes of *real images* sit where the decoders learned from sim
codes, which is what the real path E_R -> D_depth, D_seg needs. These numbers do:

  sigma_sim, sigma_real      mean posterior standard deviation exp(log_var / 2) over every
                             code value (1: the prior's; near 0: a deterministic code)
  spread_sim, spread_real    mean over code values of the standard deviation of z_mean across
                             the images (near 0: the encoder gives every image one code)
  centroid_distance          |mean z_mean of the sim images - mean z_mean of the real ones|
  mmd                        unbiased MMD^2 (Gretton et al. 2012, eq 3; losses.mmd_rbf_unbiased)
                             between the two sets of z_mean, Gaussian kernel of width `mmd_sigma`
  mmd_sigma                  the median pairwise distance of the pooled z_mean (the median
                             heuristic), so the kernel sees the codes' own scale; the training
                             loss's sqrt(D) width is far wider than the spread of the means
  mmd_within_sim             the same MMD^2 between the two halves of the sim codes: the value
                             two samples of one distribution of this size give (None below 4
                             sim images)

The two test sets hold different scenes; in the built-in sim2real pair they are drawn from one
content distribution, so aligned domains give an mmd near mmd_within_sim.
"""
from __future__ import annotations

import numpy as np

from tfgan3d import losses

FIELDS = ("sigma_sim", "sigma_real", "spread_sim", "spread_real", "centroid_distance", "mmd",
          "mmd_within_sim", "mmd_sigma", "images_sim", "images_real", "code_size")


def _flat(a):
    a = np.asarray(a, np.float64)
    return a.reshape(len(a), -1)


def _pairwise_sq(a, b):
    return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T, 0.0)


def _mmd(x, y, width):
    """The training loss's unbiased estimator (`losses.mmd_rbf_unbiased`), as a float."""
    return float(losses.mmd_rbf_unbiased(x, y, width))


def median_distance(x) -> float:
    """Median of the distances between distinct rows of x."""
    x = _flat(x)
    d = np.sqrt(_pairwise_sq(x, x))
    return float(np.median(d[np.triu_indices(len(x), 1)]))


def alignment_stats(mean_sim, log_var_sim, mean_real, log_var_real) -> dict:
    """The statistics of the module docstring from the encoders' outputs (z_mean and z_log_var
    per image, any code shape, the first axis the images; at least 2 images each)."""
    ms, mr = _flat(mean_sim), _flat(mean_real)
    if ms.shape[1] != mr.shape[1]:
        raise ValueError(f"alignment_stats: the codes differ in size ({ms.shape[1]} sim, "
                         f"{mr.shape[1]} real values per image)")
    if len(ms) < 2 or len(mr) < 2:
        raise ValueError(f"alignment_stats: expected at least 2 sim and 2 real images, got "
                         f"{len(ms)} and {len(mr)}")
    width = median_distance(np.concatenate([ms, mr]))
    width = width if width > 0 else 1.0          # every code equal: any width gives 0
    half = len(ms) // 2
    return {"sigma_sim": float(np.exp(0.5 * _flat(log_var_sim)).mean()),
            "sigma_real": float(np.exp(0.5 * _flat(log_var_real)).mean()),
            "spread_sim": float(ms.std(0).mean()), "spread_real": float(mr.std(0).mean()),
            "centroid_distance": float(np.linalg.norm(ms.mean(0) - mr.mean(0))),
            "mmd": _mmd(ms, mr, width),
            "mmd_within_sim": _mmd(ms[:half], ms[half:], width) if half >= 2 else None,
            "mmd_sigma": width, "images_sim": len(ms), "images_real": len(mr),
            "code_size": int(ms.shape[1])}


def _encode(encoder, dataset, limit):
    means, log_vars, count = [], [], 0
    for batch in dataset:
        images = batch["image"][:limit - count]
        z_mean, z_log_var = encoder(images, training=False)
        means.append(np.asarray(z_mean))
        log_vars.append(np.asarray(z_log_var))
        count += len(images)
        if count >= limit:
            break
    if not means:
        return np.zeros((0, 1)), np.zeros((0, 1))
    return np.concatenate(means), np.concatenate(log_vars)


def latent_alignment(model, sim_dataset, real_dataset, limit: int = 256) -> dict | None:
    """`alignment_stats` of E_S on up to `limit` images of `sim_dataset` and E_R on as many of
    `real_dataset` (batches with an "image"); None for a model without both encoders or for
    test sets of fewer than 2 images."""
    if not all(hasattr(model, n) for n in ("encoder_sim", "encoder_real")):
        return None
    sim = _encode(model.encoder_sim, sim_dataset, limit)
    real = _encode(model.encoder_real, real_dataset, limit)
    if min(len(sim[0]), len(real[0])) < 2:
        return None
    return alignment_stats(*sim, *real)


def run_latent_alignment(run_dir, checkpoint=None, split="test", limit: int = 256):
    """`latent_alignment` of a sim2real run (its newest whole checkpoint, or `checkpoint`) on
    the test splits of its own sim and real data; None for a model without both encoders or
    data without both test splits (as `eval sim2real` then reports none)."""
    from tfgan3d.data import sim2real_data
    from tfgan3d.export import load_trained
    config, model, _ = load_trained(run_dir, checkpoint)
    opts = sim2real_data.data_options(config)
    try:
        sim_ds, _ = sim2real_data.make_eval_dataset(opts.sim_data, split, config=config,
                                                    role="sim")
        real_ds, _ = sim2real_data.make_eval_dataset(opts.real_data, split, config=config)
    except sim2real_data.DataError:
        return None
    return latent_alignment(model, sim_ds, real_ds, limit)


def describe(stats: dict) -> str:
    """One line for a log."""
    return (f"latent: sigma sim {stats['sigma_sim']:.3f} real {stats['sigma_real']:.3f}; "
            f"spread sim {stats['spread_sim']:.3f} real {stats['spread_real']:.3f}; "
            f"MMD^2 sim vs real {stats['mmd']:.4f} (two halves of sim: "
            + ("-" if stats["mmd_within_sim"] is None else f"{stats['mmd_within_sim']:.4f}")
            + f", width {stats['mmd_sigma']:.2f})")
