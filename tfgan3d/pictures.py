"""The pictures `tfgan3d.predict` writes: PNG bytes of 8- and 16-bit images, 16-bit depth
PNGs, depth through a perceptual colormap with a legend in metres."""
from __future__ import annotations

import functools

import numpy as np

COLORMAP = "viridis"           # perceptually uniform; near is dark, far is bright


def png_bytes(image: np.ndarray) -> bytes:
    """uint8 or uint16 [H, W] or [H, W, C] (C = 1, 3, 4) as PNG bytes (16-bit kept)."""
    import tensorflow as tf
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    return tf.io.encode_png(image).numpy()


def depth_png_scale(max_depth: float) -> float:
    """Metres per unit of the 16-bit depth PNGs: millimetres, unless the range needs more."""
    return max(0.001, max_depth / 65535.0)


def depth16(depth: np.ndarray, scale: float) -> np.ndarray:
    return np.clip(np.round(depth / scale), 0, 65535).astype(np.uint16)


def colour_depth(depth: np.ndarray, max_depth: float) -> np.ndarray:
    """Depth [H, W] in metres as uint8 RGB through the colormap over 0..max_depth."""
    from matplotlib import colormaps
    unit = np.clip(np.asarray(depth, np.float32) / max_depth, 0.0, 1.0)
    return (colormaps[COLORMAP](unit)[..., :3] * 255).round().astype(np.uint8)


@functools.lru_cache(maxsize=16)
def legend(height: int, max_depth: float, label: str = "depth (m)") -> np.ndarray:
    """A colour bar over 0..max_depth with ticks in metres, uint8 RGB (at least 160 high)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    height = max(int(height), 160)
    dpi = 100
    fig = Figure(figsize=(90 / dpi, height / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_axes([0.08, 0.05, 0.22, 0.9])
    gradient = np.linspace(max_depth, 0, 256)[:, None]
    ax.imshow(gradient, aspect="auto", cmap=COLORMAP, extent=(0, 1, 0, max_depth))
    ax.set_xticks([])
    ax.yaxis.tick_right()
    ax.yaxis.set_label_position("right")
    ax.tick_params(labelsize=7)
    ax.set_ylabel(label, fontsize=8)
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()


def with_legend(picture: np.ndarray, max_depth: float) -> np.ndarray:
    """`picture` [H, W, 3] with the depth legend on its right (white below when shorter)."""
    bar = legend(picture.shape[0], max_depth)
    h = max(picture.shape[0], bar.shape[0])
    canvas = np.full((h, picture.shape[1] + bar.shape[1], 3), 255, np.uint8)
    canvas[:picture.shape[0], :picture.shape[1]] = picture
    canvas[:bar.shape[0], picture.shape[1]:] = bar
    return canvas


def to_rgb8(image: np.ndarray) -> np.ndarray:
    """An input image (uint8 / uint16, 1 or 3 channels) as uint8 RGB for pictures."""
    image = (image >> 8).astype(np.uint8) if image.dtype == np.uint16 else image
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image
