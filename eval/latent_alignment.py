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


# ---- content alignment: a linear probe from codes to depth -----------------------------------

PROBE_SIZE = 16              # depth maps are probed at 16 x 16
PROBE_ALPHAS = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)   # x the mean squared norm of a code


def _downsample(maps, valid, size):
    """(N, H, W) depth and mask -> (N, size, size) means over the valid pixels of each cell
    (H, W multiples of size), and the cells with a valid pixel."""
    n, h, w = maps.shape
    fh, fw = h // size, w // size
    m = (maps * valid)[:, :fh * size, :fw * size].reshape(n, size, fh, size, fw)
    c = valid[:, :fh * size, :fw * size].reshape(n, size, fh, size, fw)
    count = c.sum((2, 4))
    return m.sum((2, 4)) / np.maximum(count, 1), count > 0


def fit_ridge(x, y, valid, alpha):
    """Ridge regression of y (N, P) on x (N, D) with an intercept, the loss over the valid
    entries only approximated by filling invalid targets with their column mean (the
    intercept). Returns predict(x) -> (M, P)."""
    x = _flat(x)
    y = np.asarray(y, np.float64)
    col = np.where(valid, y, 0).sum(0) / np.maximum(valid.sum(0), 1)
    y = np.where(valid, y, col)
    mx, my = x.mean(0), y.mean(0)
    xc, yc = x - mx, y - my
    gram = xc @ xc.T                       # dual form: N << D
    coef = xc.T @ np.linalg.solve(gram + alpha * np.eye(len(x)), yc)
    return lambda z: (_flat(z) - mx) @ coef + my


def _abs_rel(pred, gt, valid):
    pred = np.maximum(pred, 1e-3)
    ok = valid & (gt > 1e-3)
    per_image = [float(np.mean(np.abs(p[v] - g[v]) / g[v])) for p, g, v in zip(pred, gt, ok)
                 if v.any()]
    return float(np.mean(per_image)) if per_image else float("nan")


def content_probe(train_codes, train_depth, train_valid, tests: dict, test_depth, test_valid,
                  max_depth=None, seed=0) -> dict:
    """A linear probe of content alignment (issue 28): ridge regression from E_S's codes of
    the sim training images to their depth maps (PROBE_SIZE x PROBE_SIZE cell means, metres),
    its width alpha picked on a held-out fifth of them, then read on each set of codes in
    `tests` (e.g. E_R(real test), E_S(real test)) against one real test set's depth. If E_R put
    a real room where E_S puts the same kind of sim room, the probe reads E_R's codes as well as
    E_S's; the prior row (the mean sim depth map, no code) is the floor to beat.

    Returns {"abs_rel_<name>" for each test, "abs_rel_prior", "alpha", "size", "train",
    "test"}: abs_rel (mean over images) at PROBE_SIZE x PROBE_SIZE.
    """
    y, vy = _downsample(np.asarray(train_depth, np.float64), np.asarray(train_valid, bool),
                        PROBE_SIZE)
    t, vt = _downsample(np.asarray(test_depth, np.float64), np.asarray(test_valid, bool),
                        PROBE_SIZE)
    n = len(y)
    y, vy, t, vt = (a.reshape(len(a), -1) for a in (y, vy, t, vt))
    x = _flat(train_codes)
    scale = float(np.mean(np.sum((x - x.mean(0)) ** 2, 1))) or 1.0
    order = np.random.default_rng(seed).permutation(n)
    held, fit = order[: max(1, n // 5)], order[max(1, n // 5):]
    clip = (lambda p: np.clip(p, 1e-3, max_depth)) if max_depth else (lambda p: p)

    def score(predict, codes, gt, valid):
        return _abs_rel(clip(predict(codes)), gt, valid)
    errors = {a: score(fit_ridge(x[fit], y[fit], vy[fit], a * scale), x[held], y[held], vy[held])
              for a in PROBE_ALPHAS}
    alpha = min(errors, key=lambda a: (np.nan_to_num(errors[a], nan=np.inf), a))
    predict = fit_ridge(x, y, vy, alpha * scale)
    out = {f"abs_rel_{name}": score(predict, codes, t, vt) for name, codes in tests.items()}
    mean_map = np.where(vy, y, 0).sum(0) / np.maximum(vy.sum(0), 1)
    out["abs_rel_prior"] = _abs_rel(clip(np.repeat(mean_map[None], len(t), 0)), t, vt)
    out.update(alpha=alpha, size=PROBE_SIZE, train=n, test=len(t))
    return out


def _codes_and_depth(encoder, dataset, limit=100_000):
    codes, depth, valid = [], [], []
    for batch in dataset:
        codes.append(np.asarray(encoder(batch["image"], training=False)[0]))
        depth.append(np.asarray(batch["depth"])[..., 0])
        valid.append(np.asarray(batch["depth_valid"])[..., 0] > 0.5)
        if sum(len(c) for c in codes) >= limit:
            break
    return np.concatenate(codes), np.concatenate(depth), np.concatenate(valid)


def model_content_probe(model, sim_train_ds, real_test_ds, max_depth=None) -> dict | None:
    """`content_probe` of a twin VAE: fitted on E_S(sim train), read on E_R(real test) ("E_R")
    and E_S(real test) ("E_S"); None for a model without both encoders. The datasets give
    {"image", "depth", "depth_valid"} batches with depth maps a multiple of PROBE_SIZE."""
    if not all(hasattr(model, n) for n in ("encoder_sim", "encoder_real")):
        return None
    x, d, v = _codes_and_depth(model.encoder_sim, sim_train_ds)
    codes_r, td, tv = _codes_and_depth(model.encoder_real, real_test_ds)
    codes_s, _, _ = _codes_and_depth(model.encoder_sim, real_test_ds)
    return content_probe(x, d, v, {"E_R": codes_r, "E_S": codes_s}, td, tv,
                         max_depth=max_depth)


def describe_probe(probe: dict) -> str:
    return (f"linear probe (ridge from E_S(sim train) codes to {probe['size']}x{probe['size']} "
            f"depth, alpha {probe['alpha']:g}): abs_rel on the real test set read through E_R "
            f"{probe['abs_rel_E_R']:.4f}, through E_S {probe['abs_rel_E_S']:.4f}, the prior "
            f"{probe['abs_rel_prior']:.4f}")
