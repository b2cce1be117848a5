"""Built-in eye simulator: grey 35 x 55 eye images labelled with the 3D gaze (SimGAN, sec. 3.1).

A stand-in for UnityEyes (synthetic) and MPIIGaze (real) that needs no download. Eye i of either
domain is the same scene: one geometry (the labels), one set of materials and one scene
(lighting, lashes, glints). The domains differ by what the renderer leaves out:

  "synthetic"  what a renderer gives, rendered clean (float, no noise, no blur): flat skin,
               sclera, iris and pupil materials of random value, a shaded eyeball with the
               lid's shadow, eyelashes, one or two corneal glints, and random lighting
               strength, direction (a linear gradient) and a smooth blob; head pose (roll,
               shift, scale) and lid shape. UnityEyes varies all of these, so an estimator
               trained on synthetic eyes has seen them.
  "real-like"  the same scene as a laptop camera sees a real eye: real skin and eyes (skin
               texture at two scales, iris streaks, a dark limbus ring), then the camera
               (white balance, optical blur, a response curve with raised blacks, clipped
               whites and a gamma, sensor noise with spatial correlation and a shot part,
               8-bit quantisation). Each of these is one systematic value with a small
               per-image jitter: MPIIGaze is a few laptops, not a random camera per image.

Which nuisance lives where, and why: the renderer's variety (lighting, materials, lashes, glints,
pose) is in both domains, because a simulator does give it and a refiner must not be asked to
invent it (no deterministic function of a synthetic image could). The camera and the real
surface are in the real-like domain only; most of them are content-determined -- a function of
the synthetic image a refiner can learn (response curve, white balance, blur, the limbus ring
that follows the iris edge, quantisation) -- and the rest is random by nature (sensor noise,
skin texture, iris streaks, the jitter): `render_eyes(..., content_only=True)` gives the
real-like image with the random part at its mean (jitter at the systematic values, texture and
noise zero), which eval/eye_gap.py uses to measure how much of the gap a deterministic refiner
can close. Block-DCT compression is left out: its 8 x 8 grid is tied to the image border, which
a refiner with mirrored padding cannot see.

Geometry (orthographic camera, pixel centres at integer coordinates, x right, y down): an
eyeball of radius R ~ 12 px centred near the image centre; the iris is a disc of radius r_i on
the eyeball whose normal is the gaze g, so it projects to an ellipse centred at
c + sqrt(R^2 - r_i^2) * (g_x, g_y), foreshortened by |g_z| along (g_x, g_y); the pupil is a
concentric disc (no corneal refraction). The eyelids are two curves between the eye corners
whose opening follows the iris (they rise when the eye looks up); the head pose jitters by a
small roll, shift and scale. The gaze is a unit vector in camera coordinates (x right, y down,
z away from the camera; looking at the camera is (0, 0, -1)) with yaw within +-30 degrees
(positive: towards +x) and pitch within +-20 degrees (positive: up, towards -y), uniform.

Labels: gaze (3,) and pupil (2,), the pupil centre (x, y) in pixels. An eye's geometry and so
its labels depend on (seed, index) only, its appearance on (seed, domain, index): eye i of
either domain has the same labels. The splits in EYE_SPLITS use disjoint index ranges.
"""
from __future__ import annotations

import dataclasses

import numpy as np

EYE_HEIGHT, EYE_WIDTH = 35, 55
EYE_DOMAINS = ("synthetic", "real-like")
EYE_LABEL_NAMES = ("gaze_x", "gaze_y", "gaze_z", "pupil_x", "pupil_y")
MAX_YAW_DEG, MAX_PITCH_DEG = 30.0, 20.0

_GEOMETRY_STREAM = 7919  # rng stream tags; the appearance stream adds the domain id
_APPEARANCE_STREAM = 7927
_SCENE_STREAM = 7937     # the renderer's lighting, lashes, glints: shared by both domains
_N_LASHES = 14
_LASH_REACH = 4  # half-size of the patch each lash is drawn in
_Y, _X = np.mgrid[0:EYE_HEIGHT, 0:EYE_WIDTH].astype(np.float32)


@dataclasses.dataclass(frozen=True)
class EyeSplit:
    """A split of the built-in eyes: its domain, first index, and whether labels may be used."""
    domain: str
    start: int
    labeled: bool


EYE_SPLITS = {
    "synthetic-train": EyeSplit("synthetic", 0, True),
    "real-train": EyeSplit("real-like", 500_000_000, False),  # unlabeled: refiner training only
    "real-test": EyeSplit("real-like", 1_000_000_000, True),  # evaluation only
    "synthetic-test": EyeSplit("synthetic", 1_000_000_000, True),  # real-test's geometry, clean
}


def _check(domain, n=1, seed=0, start=0):
    if domain not in EYE_DOMAINS:
        raise ValueError(f"unknown eye domain {domain!r}; valid domains: {', '.join(EYE_DOMAINS)}")
    for name, value in (("n", n), ("seed", seed), ("start", start)):
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def gaze_from_angles(yaw, pitch):
    """Unit gaze vectors from yaw and pitch in radians (yaw > 0 looks to +x, pitch > 0 up)."""
    yaw, pitch = np.asarray(yaw, np.float64), np.asarray(pitch, np.float64)
    return np.stack([np.cos(pitch) * np.sin(yaw), -np.sin(pitch),
                     -np.cos(pitch) * np.cos(yaw)], axis=-1)


def render_eye(index: int, domain: str, seed: int = 0, yaw_deg=None, pitch_deg=None) -> dict:
    """Renders eye `index` of a domain; it depends only on (seed, domain, index).

    `yaw_deg` and `pitch_deg`, when given, replace the eye's gaze angles (degrees) and keep the
    rest of the eye: a gaze sweep of one eye.

    Returns:
        dict with image float32 (35, 55) in [0, 1]; gaze float32 (3,), a unit vector in camera
        coordinates; pupil float32 (2,), the pupil centre (x, y) in pixels.
    Raises:
        ValueError: unknown domain, or a negative index or seed.
    """
    _check(domain, seed=seed, start=index)
    eyes = render_eyes(1, domain, seed=seed, start=index, yaw_deg=yaw_deg, pitch_deg=pitch_deg)
    return {"image": eyes["image"][0, ..., 0], "gaze": eyes["gaze"][0], "pupil": eyes["pupil"][0]}


def render_eyes(n: int, domain: str, seed: int = 0, start: int = 0, yaw_deg=None,
                pitch_deg=None, content_only: bool = False) -> dict:
    """Renders eyes start .. start+n-1 at once (vectorised over the batch).

    Args:
        n, domain, seed, start: which eyes.
        yaw_deg, pitch_deg: optional gaze angles (scalars or (n,) arrays, degrees) that replace
            the sampled ones, e.g. for a gaze sweep of one eye; the rest of the eye is kept.
        content_only: real-like only: the part of the real-like image that the synthetic one
            determines (camera and surface draws at their means, the zero-mean random patterns
            -- skin texture, iris streaks, sensor noise -- at zero); see the module docstring.
    Returns:
        dict with image float32 (n, 35, 55, 1) in [0, 1], gaze float32 (n, 3), pupil float32
        (n, 2); eye i equals `render_eye(start + i, domain, seed)`.
    Raises:
        ValueError: unknown domain, negative counts, or content_only for the synthetic domain.
    """
    _check(domain, n, seed, start)
    if content_only and domain != "real-like":
        raise ValueError(f"content_only applies to the real-like domain, got {domain!r}")
    indices = np.arange(start, start + n, dtype=np.int64)
    geo = _sample_geometry(indices, seed, yaw_deg, pitch_deg)
    scene = _per_eye(indices, seed, _SCENE_STREAM, _draw_scene)
    look = None
    if domain == "real-like":
        look = _sample_appearance(indices, seed, EYE_DOMAINS.index(domain), content_only)
    image = _render(geo, scene, look)
    return {"image": image[..., None], "gaze": geo["gaze"].astype(np.float32),
            "pupil": geo["pupil"].astype(np.float32)}


def render_split(split: str, n: int, seed: int = 0, offset: int = 0) -> dict:
    """Eyes offset .. offset+n-1 of a split in EYE_SPLITS.

    Returns:
        render_eyes's dict; for an unlabeled split only {"image": ...}, so that its labels
        cannot be used by mistake.
    Raises:
        ValueError: unknown split name (the valid ones are listed).
    """
    if split not in EYE_SPLITS:
        raise ValueError(f"unknown eye split {split!r}; valid splits: {', '.join(EYE_SPLITS)}")
    info = EYE_SPLITS[split]
    eyes = render_eyes(n, info.domain, seed=seed, start=info.start + offset)
    return eyes if info.labeled else {"image": eyes["image"]}


# --- sampling -------------------------------------------------------------------------------

def _per_eye(indices, seed, stream, draw):
    """Stacks draw(rng) over eyes, each with its own rng: an eye never depends on its batch."""
    rows = [draw(np.random.default_rng([int(seed), stream, int(i)])) for i in indices]
    if not rows:
        return {}
    return {key: np.stack([row[key] for row in rows]) for key in rows[0]}


def _draw_geometry(rng):
    u = rng.random(19)
    return {"yaw": np.deg2rad(MAX_YAW_DEG) * (2 * u[0] - 1),
            "pitch": np.deg2rad(MAX_PITCH_DEG) * (2 * u[1] - 1),
            "scale": 0.92 + 0.16 * u[2],
            "cx": (EYE_WIDTH - 1) / 2 + 4.0 * (u[3] - 0.5),
            "cy": (EYE_HEIGHT - 1) / 2 + 3.0 * (u[4] - 0.5),
            "roll": np.deg2rad(6.0) * (2 * u[5] - 1),
            "half_width": 1.45 + 0.2 * u[6],      # eye corners at +-half_width * R
            "corner_v": 0.15 * u[7],              # corners below the centre, * R
            "iris_r": 0.45 + 0.05 * u[8],         # * R
            "pupil_r": 0.3 + 0.15 * u[9],         # * iris radius
            "cover_up": 0.05 + 0.4 * u[10],       # part of the iris radius under the upper lid
            "cover_low": -0.25 + 0.55 * u[11],    # ... under the lower lid (< 0: a gap)
            "skin_value": 0.45 + 0.25 * u[12], "sclera_value": 0.75 + 0.2 * u[13],
            "iris_value": 0.15 + 0.25 * u[14], "pupil_value": 0.02 + 0.06 * u[15],
            "crease_gap": 2.0 + 2.0 * u[16], "crease_dark": 0.04 + 0.08 * u[17],
            "lid_shape": 0.6 + 0.3 * u[18]}


def _sample_geometry(indices, seed, yaw_deg=None, pitch_deg=None):
    """Geometry and flat colours of each eye (the same in both domains), and its labels."""
    geo = _per_eye(indices, seed, _GEOMETRY_STREAM, _draw_geometry)
    if not geo:
        geo = {key: np.zeros(0) for key in _draw_geometry(np.random.default_rng(0))}
    for key, value in (("yaw", yaw_deg), ("pitch", pitch_deg)):
        if value is not None:
            geo[key] = np.broadcast_to(np.deg2rad(np.asarray(value, np.float64)),
                                       (len(indices),)).copy()
    gaze = gaze_from_angles(geo["yaw"], geo["pitch"]).reshape(-1, 3)
    radius = 12.0 * geo["scale"]
    iris_r = geo["iris_r"] * radius
    depth = np.sqrt(radius ** 2 - iris_r ** 2)  # eyeball centre to the iris plane
    pupil = np.stack([geo["cx"] + depth * gaze[:, 0], geo["cy"] + depth * gaze[:, 1]], -1)
    geo.update(gaze=gaze, pupil=pupil.reshape(-1, 2), radius=radius, iris_radius=iris_r,
               pupil_radius=geo["pupil_r"] * iris_r)
    return geo


def _draw_scene(rng):
    """What a renderer varies besides the geometry: lighting, shading, lashes, glints."""
    u = rng.random(16)
    lash_u = rng.uniform(-0.9, 0.9, _N_LASHES)
    return {
        "gain": 0.55 + 0.7 * u[0], "grad_x": 0.8 * (u[1] - 0.5), "grad_y": 0.8 * (u[2] - 0.5),
        "light": rng.random((3, 4)).astype(np.float32), "blob": 0.1 + 0.3 * u[3],
        "lid_shadow": 0.1 + 0.15 * u[4], "sclera_round": 0.05 + 0.1 * u[5],
        "lash_u": lash_u, "lash_len": rng.uniform(1.5, 4.5, _N_LASHES),
        "lash_tilt": np.deg2rad(55.0) * lash_u + rng.normal(0, np.deg2rad(12), _N_LASHES),
        "lash_alpha": np.where(rng.random(_N_LASHES) < 0.3 + 0.6 * u[6],
                               rng.uniform(0.4, 0.9, _N_LASHES), 0.0),
        "lash_value": 0.04 + 0.1 * u[7], "lash_width": 0.35 + 0.3 * u[8],
        "glint_dx": 0.8 * (u[9] - 0.5), "glint_dy": 0.8 * (u[10] - 0.5),  # * iris radius
        "glint_sigma": 0.5 + 0.4 * u[11], "glint_amp": 0.4 + 0.6 * u[12],
        "glint2_amp": np.where(u[13] < 0.5, 0.3 + 0.4 * u[13], 0.0),
        "glint2_dx": 1.2 * (u[14] - 0.5), "glint2_dy": 1.2 * (u[15] - 0.5)}


def _draw_appearance(rng):
    """What a camera and real skin add (the real-like domain only). Each uniform draw is a
    small jitter about a systematic value: the camera is one kind of camera."""
    u = rng.random(11)
    return {
        "fine": rng.standard_normal((EYE_HEIGHT + 4, EYE_WIDTH + 4)).astype(np.float32),
        "mid": rng.standard_normal((8, 12)).astype(np.float32),
        "sensor": rng.standard_normal((EYE_HEIGHT + 6, EYE_WIDTH + 6)).astype(np.float32),
        "streak_phase": 2 * np.pi * rng.random(3),
        "patterns": np.float32(1.0),
        "skin_fine": 0.02 + 0.03 * u[0], "skin_mid": 0.015 + 0.02 * u[1],
        "streak_amp": 0.1 + 0.2 * u[2], "limbus": 0.4 + 0.3 * u[3],
        "white_balance": 0.85 + 0.1 * u[4], "blur": 1.0 + 0.4 * u[5],
        "gamma": 1.35 + 0.2 * u[6], "black": 0.05 + 0.04 * u[7], "white": 0.74 + 0.08 * u[8],
        "noise": 0.008 + 0.01 * u[9], "shot": 0.5 + 0.5 * u[10]}


class _MeanDraws:
    """Stands in for a numpy Generator and returns every draw's mean: uniform draws their
    midpoint, normal draws their location (so a draw function gives its expected values)."""

    def random(self, size=None):
        return np.full(size, 0.5) if size is not None else 0.5

    def uniform(self, low=0.0, high=1.0, size=None):
        return np.full(size, (low + high) / 2)

    def standard_normal(self, size=None):
        return np.zeros(size)

    def normal(self, loc=0.0, scale=1.0, size=None):
        return np.full(size, loc)


def _sample_appearance(indices, seed, domain_id, content_only=False):
    if not content_only:
        return _per_eye(indices, seed, _APPEARANCE_STREAM + domain_id, _draw_appearance)
    means = _draw_appearance(_MeanDraws())
    means["patterns"] = np.float32(0.0)   # skin texture, iris streaks, sensor noise off
    return {key: np.stack([value] * len(indices)) for key, value in means.items()}


# --- rendering ------------------------------------------------------------------------------

def _col(values):
    return np.asarray(values, np.float32).reshape(-1, 1, 1)


def _ellipse(x, y, cx, cy, gaze, radius, polar=False):
    """Projected disc of `radius` with normal `gaze`: coverage in [0, 1], and with `polar` also
    rho (the normalised radius, 1 on the rim) and the angle about the centre.

    The edge is anti-aliased with a first-order signed distance, so the coverage centroid is the
    disc centre to sub-pixel accuracy.
    """
    gx, gy = gaze[:, 0], gaze[:, 1]
    norm = np.hypot(gx, gy)
    ax = _col(np.where(norm > 1e-6, gx / np.maximum(norm, 1e-6), 1.0))
    ay = _col(np.where(norm > 1e-6, gy / np.maximum(norm, 1e-6), 0.0))
    minor = _col(radius * np.abs(gaze[:, 2]))
    major = _col(radius)
    qx, qy = x - _col(cx), y - _col(cy)
    along, perp = qx * ax + qy * ay, -qx * ay + qy * ax
    rho2 = (along / minor) ** 2 + (perp / major) ** 2
    grad = 2 * np.sqrt((along / minor ** 2) ** 2 + (perp / major ** 2) ** 2)
    distance = (rho2 - 1) / np.maximum(grad, 1e-6)
    coverage = np.clip(0.5 - distance, 0.0, 1.0)
    if not polar:
        return coverage
    return coverage, np.sqrt(rho2), np.arctan2(perp / major, along / minor)


def _lids(geo):
    """Per pixel: eye-frame coordinates (u, v), the upper and lower lid curves at u."""
    radius = geo["radius"]
    cos, sin = _col(np.cos(geo["roll"])), _col(np.sin(geo["roll"]))
    dx, dy = _X - _col(geo["cx"]), _Y - _col(geo["cy"])
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    depth = np.sqrt(radius ** 2 - geo["iris_radius"] ** 2)
    iris_dx, iris_dy = depth * geo["gaze"][:, 0], depth * geo["gaze"][:, 1]
    c, s = np.cos(geo["roll"]), np.sin(geo["roll"])
    iris_u, iris_v = c * iris_dx + s * iris_dy, -s * iris_dx + c * iris_dy
    half = geo["half_width"] * radius
    v0 = geo["corner_v"] * radius
    shape = geo["lid_shape"]

    def up_profile(t, power):
        return np.clip(1 - t ** 2, 0, 1) ** power

    # Lid heights chosen so that the lids cross the iris's vertical line at the sampled cover.
    at_up = np.maximum(up_profile(iris_u / half, shape), 0.2)
    at_low = np.maximum(up_profile(iris_u / half, 0.9), 0.2)
    h_up = (v0 - iris_v + geo["iris_radius"] * (1 - geo["cover_up"])) / at_up
    h_low = (iris_v + geo["iris_radius"] * (1 - geo["cover_low"]) - v0) / at_low
    h_up = np.clip(h_up, 2.0, 1.1 * radius)
    h_low = np.clip(h_low, 2.0, 1.1 * radius)
    t = u / _col(half)
    v_up = _col(v0) - _col(h_up) * up_profile(t, _col(shape))
    v_low = _col(v0) + _col(h_low) * up_profile(t, 0.9)
    return {"u": u, "v": v, "v_up": v_up, "v_low": v_low, "half": half, "v0": v0,
            "h_up": h_up, "shape": shape}


def _smooth(grid, height=EYE_HEIGHT, width=EYE_WIDTH):
    """Smooth upsampling of (n, gh, gw) grids to (n, height, width): separable interpolation
    with smoothstep weights, so that no seams show at the grid lines (unlike bilinear)."""
    def matrix(cells, size):
        pos = np.linspace(0, cells - 1, size)
        lo = np.minimum(np.floor(pos).astype(int), cells - 2)
        frac = pos - lo
        frac = frac * frac * (3 - 2 * frac)
        m = np.zeros((size, cells), np.float32)
        m[np.arange(size), lo] = 1 - frac
        m[np.arange(size), lo + 1] = frac
        return m
    return (matrix(grid.shape[1], height) @ grid.astype(np.float32)
            @ matrix(grid.shape[2], width).T)


def _blur(images, sigma):
    """Separable Gaussian blur with one sigma per image (7 taps, reflected edges)."""
    taps = np.arange(-3, 4, dtype=np.float32)
    kernel = np.exp(-0.5 * (taps / _col(sigma).reshape(-1, 1)) ** 2)
    kernel /= kernel.sum(axis=1, keepdims=True)
    padded = np.pad(images, ((0, 0), (3, 3), (0, 0)), mode="reflect")
    out = sum(kernel[:, k, None, None] * padded[:, k:k + images.shape[1]] for k in range(7))
    padded = np.pad(out, ((0, 0), (0, 0), (3, 3)), mode="reflect")
    return sum(kernel[:, k, None, None] * padded[:, :, k:k + images.shape[2]] for k in range(7))


def _lashes(geo, look, lids):
    """Darkening weight in [0, 1] of the upper-lid eyelashes: short strokes from the lid up."""
    base_u = look["lash_u"] * lids["half"][:, None]                          # (n, K) eye frame
    base_v = lids["v0"][:, None] - lids["h_up"][:, None] * np.clip(
        1 - look["lash_u"] ** 2, 0, 1) ** lids["shape"][:, None]
    tip_u = base_u + look["lash_len"] * np.sin(look["lash_tilt"])
    tip_v = base_v - look["lash_len"] * np.cos(look["lash_tilt"])
    cos, sin = np.cos(geo["roll"])[:, None], np.sin(geo["roll"])[:, None]

    def to_pixels(u, v):
        return geo["cx"][:, None] + cos * u - sin * v, geo["cy"][:, None] + sin * u + cos * v

    x0, y0 = to_pixels(base_u, base_v)
    x1, y1 = to_pixels(tip_u, tip_v)
    # Each lash is drawn in the 9 x 9 pixels around its middle (lashes are at most 4.5 px long
    # and 1.2 px wide), then max-combined into the image: far cheaper than every pixel.
    n = len(x0)
    offsets = np.arange(-_LASH_REACH, _LASH_REACH + 1)
    rows = np.round((y0 + y1) / 2).astype(int)[..., None] + offsets               # (n, K, 9)
    cols = np.round((x0 + x1) / 2).astype(int)[..., None] + offsets
    px = (cols[:, :, None, :] - x0[..., None, None]).astype(np.float32)          # (n, K, 9, 9)
    py = (rows[:, :, :, None] - y0[..., None, None]).astype(np.float32)
    ex = (x1 - x0).astype(np.float32)[..., None, None]
    ey = (y1 - y0).astype(np.float32)[..., None, None]
    t = np.clip((px * ex + py * ey) / np.maximum(ex * ex + ey * ey, 1e-6), 0, 1)
    dist = np.hypot(px - t * ex, py - t * ey)
    cover = np.clip(look["lash_width"][:, None, None, None] + 0.5 - dist, 0, 1)
    cover = (cover * look["lash_alpha"][..., None, None]).astype(np.float32)
    rows = np.broadcast_to(rows[:, :, :, None], cover.shape)
    cols = np.broadcast_to(cols[:, :, None, :], cover.shape)
    keep = (rows >= 0) & (rows < EYE_HEIGHT) & (cols >= 0) & (cols < EYE_WIDTH) & (cover > 0)
    eye = np.broadcast_to(np.arange(n)[:, None, None, None], cover.shape)
    out = np.zeros(n * EYE_HEIGHT * EYE_WIDTH, np.float32)
    flat = (eye[keep] * EYE_HEIGHT + rows[keep]) * EYE_WIDTH + cols[keep]
    np.maximum.at(out, flat, cover[keep])
    return out.reshape(n, EYE_HEIGHT, EYE_WIDTH)


def _render(geo, scene, look=None):
    """Composites skin, eye opening, sclera, iris and pupil under the scene's lighting (the
    synthetic image); `look` adds real skin and limbus, then the camera (the real-like one)."""
    n = len(geo["gaze"])
    if n == 0:
        return np.zeros((0, EYE_HEIGHT, EYE_WIDTH), np.float32)
    lids = _lids(geo)
    u, v, v_up, v_low, half = (lids[key] for key in ("u", "v", "v_up", "v_low", "half"))
    opening = np.clip(0.5 + (v - v_up), 0, 1) * np.clip(0.5 + (v_low - v), 0, 1)
    opening *= (np.abs(u) < _col(half)).astype(np.float32)
    centre_x, centre_y = geo["pupil"][:, 0], geo["pupil"][:, 1]
    iris, iris_rho, iris_angle = _ellipse(_X, _Y, centre_x, centre_y, geo["gaze"],
                                          geo["iris_radius"], polar=True)
    pupil = _ellipse(_X, _Y, centre_x, centre_y, geo["gaze"], geo["pupil_radius"])
    crease = np.exp(-((v - v_up + _col(geo["crease_gap"])) / 1.2) ** 2) * (
        (v < v_up) & (np.abs(u) < _col(half)))
    # 1. the renderer: flat materials, shaded sclera with the lid's shadow
    skin = _col(geo["skin_value"]) * (1 - _col(geo["crease_dark"]) * crease)
    sclera = _col(geo["sclera_value"]) * (
        1 - _col(scene["lid_shadow"]) * np.exp(-np.maximum(v - v_up, 0) / 1.5)) * (
        1 - _col(scene["sclera_round"]) * (u / _col(half)) ** 2)
    iris_value = _col(geo["iris_value"]) * np.ones_like(u)
    if look is not None:
        # 2. real skin and eyes: skin texture, iris streaks (random) and a dark limbus ring
        patterns = _col(look["patterns"])
        fine = _blur(look["fine"], np.full(n, 0.7))[:, 2:-2, 2:-2]
        fine /= fine.std(axis=(1, 2), keepdims=True) + 1e-6
        skin = skin * (1 + patterns * (_col(look["skin_fine"]) * fine
                                       + _col(look["skin_mid"]) * _smooth(look["mid"])))
        phase = look["streak_phase"]
        streaks = sum(np.sin(k * iris_angle + _col(phase[:, j]))
                      for j, k in enumerate((7, 13, 23))) / 3
        iris_value = iris_value * (1 + patterns * _col(look["streak_amp"]) * streaks) * (
            1 - _col(look["limbus"]) * np.clip((iris_rho - 0.75) / 0.25, 0, 1))
    eye = sclera + iris * (iris_value - sclera)
    eye = eye + pupil * (_col(geo["pupil_value"]) - eye)
    image = skin + opening * (eye - skin)
    image = image + _lashes(geo, scene, lids) * (_col(scene["lash_value"]) - image)
    for prefix, amp in (("glint", scene["glint_amp"]), ("glint2", scene["glint2_amp"])):
        gx = geo["pupil"][:, 0] + scene[f"{prefix}_dx"] * geo["iris_radius"]
        gy = geo["pupil"][:, 1] + scene[f"{prefix}_dy"] * geo["iris_radius"]
        spot = np.exp(-((_X - _col(gx)) ** 2 + (_Y - _col(gy)) ** 2)
                      / (2 * _col(scene["glint_sigma"]) ** 2))
        image = image + _col(amp) * spot * opening
    # lighting: strength, a linear gradient (direction) and a smooth blob
    light = _col(scene["gain"]) * (1 + _col(scene["grad_x"]) * (_X / (EYE_WIDTH - 1) - 0.5) * 2
                                   + _col(scene["grad_y"]) * (_Y / (EYE_HEIGHT - 1) - 0.5) * 2)
    light = light * (1 + _col(scene["blob"]) * (_smooth(scene["light"]) - 0.5))
    image = np.clip(image * light, 0, 1)
    if look is None:
        return image.astype(np.float32)
    # 3. the camera: white balance, optics blur, response curve, correlated sensor noise
    # (read noise plus a shot part that grows with the signal), 8-bit quantisation
    image = _blur(np.clip(image * _col(look["white_balance"]), 0, 1), look["blur"])
    image = _col(look["black"]) + (_col(look["white"]) - _col(look["black"])) * (
        np.clip(image, 0, 1) ** _col(look["gamma"]))
    noise = _blur(look["sensor"], np.full(n, 0.8))[:, 3:-3, 3:-3]
    noise /= noise.std(axis=(1, 2), keepdims=True) + 1e-6
    image = image + patterns * _col(look["noise"]) * (1 + _col(look["shot"]) * image) * noise
    return (np.round(np.clip(image, 0, 1) * 255) / 255).astype(np.float32)


# --- measuring ------------------------------------------------------------------------------

def _box(images, size):
    """Mean over each pixel's size x size neighbourhood (edge padded)."""
    r = size // 2
    padded = np.pad(images, ((0, 0), (r, r), (r, r)), mode="edge")
    h, w = images.shape[1:]
    return sum(padded[:, dy:dy + h, dx:dx + w] for dy in range(size) for dx in range(size)) / (
        size * size)


def _rank_filter(images, reduce, size=3):
    """reduce (np.max or np.min) over each pixel's size x size neighbourhood (edge padded)."""
    r = size // 2
    padded = np.pad(images, ((0, 0), (r, r), (r, r)), mode="edge")
    h, w = images.shape[1:]
    return reduce(np.stack([padded[:, dy:dy + h, dx:dx + w] for dy in range(size)
                            for dx in range(size)]), axis=0)


def pupil_centre(images, window=4):
    """Estimates the pupil centre (x, y) in pixels as the centroid of the darkest blob.

    The method, applied per image (any intensity range, dark pupil on a brighter iris):
      1. in a grey closing of the image (3 x 3 max, then 3 x 3 min: dark strokes thinner
         than 3 px, such as eyelashes, vanish), find the pixel where a 5 x 5 box mean is
         darkest relative to the 13 x 13 box mean around it (a dark blob on a brighter
         surround; smooth illumination gradients cancel);
      2. in the (2 * window + 1)^2 neighbourhood of that pixel in a 3 x 3 box-blurred copy, take
         the darkest value as the pupil level and the median as the iris level;
      3. return the centroid of alpha = clip((iris - I) / (iris - pupil), 0, 1), the fraction of
         pupil in each pixel under a linear mix of the two levels. A symmetric blur does not
         move this centroid, so anti-aliased or blurred pupils are located to sub-pixel
         accuracy.

    Args:
        images: (H, W), (H, W, 1), (N, H, W) or (N, H, W, 1) array.
        window: half-size of the neighbourhood in pixels; it should hold the pupil and be
            mostly iris (4 suits 35 x 55 eyes).
    Returns:
        float32 (2,) for one image, (N, 2) for a batch.
    Raises:
        ValueError: an array of another shape.
    """
    images = np.asarray(images, np.float32)
    shape = images.shape
    single = images.ndim == 2 or (images.ndim == 3 and shape[-1] == 1)
    if images.ndim in (3, 4) and shape[-1] == 1:
        images = images[..., 0]
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3 or min(images.shape[1:]) < 2 * window + 1:
        raise ValueError(f"images must be (H, W), (H, W, 1), (N, H, W) or (N, H, W, 1) with H "
                         f"and W >= {2 * window + 1}; got {shape}")
    n, h, w = images.shape
    closed = _rank_filter(_rank_filter(images, np.max), np.min)
    coarse = (_box(closed, 5) - _box(closed, 13)).reshape(n, -1).argmin(axis=1)
    fine = _box(_rank_filter(_rank_filter(images, np.min), np.max), 3)  # glints opened away
    offsets = np.arange(-window, window + 1)

    def cut(cy, cx):  # the window around (cy, cx), NaN outside the image
        rows, cols = cy[:, None] + offsets, cx[:, None] + offsets
        inside = ((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :]
        patch = fine[np.arange(n)[:, None, None], np.clip(rows, 0, h - 1)[:, :, None],
                     np.clip(cols, 0, w - 1)[:, None, :]]
        return rows, cols, inside, np.where(inside, patch, np.nan)

    rows, cols, inside, patch = cut(*np.divmod(coarse, w))
    dy, dx = np.divmod(np.nanargmin(patch.reshape(n, -1), axis=1), 2 * window + 1)
    rows, cols, inside, patch = cut(rows[np.arange(n), dy], cols[np.arange(n), dx])
    low = np.nanmin(patch, axis=(1, 2), keepdims=True)
    high = np.nanmedian(patch, axis=(1, 2), keepdims=True)
    alpha = np.clip((high - patch) / np.maximum(high - low, 1e-6), 0, 1)
    alpha = np.where(inside, alpha, 0.0)
    total = np.maximum(alpha.sum(axis=(1, 2)), 1e-6)
    y = (alpha.sum(axis=2) * rows).sum(axis=1) / total
    x = (alpha.sum(axis=1) * cols).sum(axis=1) / total
    centres = np.stack([x, y], axis=-1).astype(np.float32)
    return centres[0] if single else centres
