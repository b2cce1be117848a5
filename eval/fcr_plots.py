"""Figures of the FCR-alphaGAN evaluation (eval/fcr/): latent-noise heat maps, the
latent-space map and animated GIFs of voxel scene sequences.

Everything is drawn off-screen and written through `tables.atomic_write`. Scenes are class
labels (X, H, Z) with height on the second axis, as everywhere in tfgan3d.
"""
import io

import numpy as np

from tfgan3d import render_child
from tfgan3d.eval import figures  # also selects the Agg backend before Figure
from tfgan3d.eval.palette import CEILING, EMPTY, PALETTE
from tfgan3d.eval.tables import atomic_write

from matplotlib.figure import Figure  # noqa: E402  (after figures chose Agg)

_BACKGROUND = (235, 235, 235)


# ----------------------------------------------------------------------------- scene images

def top_projection(labels, min_width=240, hide_classes=(EMPTY, CEILING)):
    """A top-down image of a scene: per (x, z) column the class of its highest visible voxel,
    in the palette colour darkened with depth below the top of the grid.

    Args:
        labels: class labels (X, H, Z).
        min_width: the image is scaled up (nearest neighbour, whole factors) to at least this
            many pixels across.
        hide_classes: classes treated as empty (default: empty and ceiling, as the renders).
    Returns:
        uint8 RGB image (Z * s, X * s, 3): rows follow z, columns follow x.
    """
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"top_projection expects labels (X, H, Z); got shape {labels.shape}")
    height = labels.shape[1]
    visible = ~np.isin(labels, list(hide_classes))
    any_visible = visible.any(axis=1)                                  # (X, Z)
    top = height - 1 - np.argmax(visible[:, ::-1, :], axis=1)          # highest visible y
    top_label = np.take_along_axis(labels, top[:, None, :], axis=1)[:, 0, :]
    shade = 0.45 + 0.55 * (top + 1) / height
    rgb = PALETTE[top_label].astype(np.float64) * shade[..., None]
    rgb = np.where(any_visible[..., None], rgb, np.array(_BACKGROUND, np.float64))
    image = np.round(rgb).astype(np.uint8).transpose(1, 0, 2)          # (Z, X, 3)
    scale = max(1, -(-int(min_width) // image.shape[1]))
    return np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)


def scene_frames(scenes, size=(240, 180), timeout_s=None):
    """Images of a sequence of scenes: VTK renders, or top projections where VTK cannot render.

    The renders run in a child process (`tfgan3d.render_child`): with TensorFlow loaded,
    Mesa's software OpenGL crashes the whole process (seen with EGL and llvmpipe or
    softpipe), and no Python exception can catch that.

    Args:
        scenes: class labels (N, X, H, Z).
        size: (width, height) of the renders.
        timeout_s: limit for the child process (default 60 s + 2 s per scene).
    Returns:
        (frames, source, note): a list of uint8 RGB images; "vtk" or "projection"; why the
        projections were used (None for renders). A scene with nothing to draw renders as an
        empty background frame.
    """
    scenes = np.asarray(scenes)
    try:
        images, errors = render_child.render_scenes(
            scenes, size, timeout_s=timeout_s or 60 + 2 * len(scenes))
        # Only "nothing to draw" errors: some scenes were empty.
        problems = [e for e in errors if e is not None and "nothing to draw" not in e]
        problem = problems[-1] if problems else None
    except RuntimeError as error:                 # no off-screen GL, a crashed or hung child
        problem = str(error)
    if problem is not None:
        return [top_projection(s, size[0]) for s in scenes], "projection", problem
    frames = [image if image is not None else np.full((size[1], size[0], 3), _BACKGROUND,
                                                      np.uint8) for image in images]
    return frames, "vtk", None


def save_gif(frames, path, captions=None, duration_ms=100):
    """Writes uint8 RGB frames as a looping animated GIF, atomically.

    Each caption is drawn in the top-left corner of its frame; distinct captions also keep
    Pillow from merging identical consecutive frames, so the GIF has one frame per image.

    Returns:
        The destination as a `pathlib.Path`.
    Raises:
        ValueError: no frames, or captions of another count.
    """
    from PIL import Image, ImageDraw

    if not len(frames):
        raise ValueError(f"{path}: no frames to write")
    if captions is not None and len(captions) != len(frames):
        raise ValueError(f"{path}: {len(captions)} captions for {len(frames)} frames")
    images = []
    for i, frame in enumerate(frames):
        image = Image.fromarray(np.asarray(frame, np.uint8)).convert("RGB")
        if captions is not None:
            ImageDraw.Draw(image).text((4, 2), str(captions[i]), fill=(20, 20, 20))
        images.append(image.quantize(colors=255, method=Image.Quantize.MEDIANCUT))
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=duration_ms, loop=0, optimize=False, disposal=1)
    return atomic_write(path, buf.getvalue())


def save_scene_grid(columns, path, indices, size=(320, 240)):
    """A grid of scene renders: one row per scene index, one column per named array, e.g.
    real | reconstruction | refined. Each row is captioned with its index, each column with
    its name.

    Args:
        columns: {name: class labels (N, X, H, Z)}, all of one shape.
        path: destination PNG.
        indices: the scenes (rows) to draw.
        size: (width, height) of one render.
    Returns:
        (path, source, note) as `scene_frames` (source "vtk" or "projection").
    Raises:
        ValueError: no columns, arrays of different shapes or an index out of range.
    """
    from PIL import Image, ImageDraw

    if not columns:
        raise ValueError(f"{path}: no columns to draw")
    shapes = {name: np.shape(a) for name, a in columns.items()}
    if len(set(shapes.values())) != 1:
        raise ValueError(f"{path}: the arrays differ in shape: {shapes}")
    n = next(iter(shapes.values()))[0]
    indices = [int(i) for i in indices]
    if any(not 0 <= i < n for i in indices):
        raise ValueError(f"{path}: scene indices {indices} outside 0..{n - 1}")
    names = list(columns)
    scenes = np.concatenate([np.asarray(columns[name])[indices] for name in names])
    frames, source, note = scene_frames(scenes, size)
    head = 18
    grid = Image.new("RGB", (size[0] * len(names), head + size[1] * len(indices)), "white")
    draw = ImageDraw.Draw(grid)
    for c, name in enumerate(names):
        draw.text((c * size[0] + 4, 3), name, fill=(20, 20, 20))
        for r, index in enumerate(indices):
            frame = Image.fromarray(np.asarray(frames[c * len(indices) + r], np.uint8))
            frame = frame.convert("RGB").resize(size)
            grid.paste(frame, (c * size[0], head + r * size[1]))
            if c == 0:
                draw.text((4, head + r * size[1] + 3), f"scene {index}", fill=(20, 20, 20))
    buf = io.BytesIO()
    grid.save(buf, format="PNG")
    return atomic_write(path, buf.getvalue()), source, note


# ----------------------------------------------------------------------------- charts

def save_noise_heatmap(change, path, title):
    """Heat map of a latent-noise study: one panel per height slice of the latent grid.

    Args:
        change: (GX, GY, GZ) fraction of voxels whose class changes when noise is added at
            that latent position (GY: height).
        path: destination PNG.
        title: figure title.
    Returns:
        The destination as a `pathlib.Path`.
    """
    change = np.asarray(change, np.float64)
    if change.ndim != 3:
        raise ValueError(f"change must be (GX, GY, GZ); got shape {change.shape}")
    gx, gy, gz = change.shape
    vmax = max(float(np.nanmax(change)) if np.isfinite(change).any() else 0.0, 1e-6)
    fig = Figure(figsize=(max(6.4, 2.6 * gy + 1.2), 3.8))
    axes = fig.subplots(1, gy, squeeze=False)[0]
    for y, ax in enumerate(axes):
        image = ax.imshow(change[:, y, :].T, cmap="Reds", vmin=0.0, vmax=vmax,
                          origin="lower", interpolation="nearest")
        ax.set_title(f"latent height {y}", fontsize=9)
        ax.set_xlabel("latent x")
        ax.set_ylabel("latent z" if y == 0 else "")
        ax.set_xticks(range(gx))
        ax.set_yticks(range(gz))
        if gx * gz <= 64:
            for x in range(gx):
                for z in range(gz):
                    dark = change[x, y, z] > 0.6 * vmax
                    ax.text(x, z, f"{change[x, y, z]:.2g}", ha="center", va="center",
                            fontsize=7, color="white" if dark else "black")
    fig.colorbar(image, ax=list(axes), label="fraction of voxels changed")
    fig.suptitle(title, fontsize=10)
    return figures.save_figure(fig, path)


def save_latent_map(coords, colour, path, title, colour_label="centroid embedding (1-D SVD)"):
    """Scatter of 2-D latent coordinates, grey level by `colour` (NaN drawn as red crosses).

    Returns:
        The destination as a `pathlib.Path`.
    """
    coords = np.asarray(coords, np.float64)
    colour = np.asarray(colour, np.float64)
    if coords.ndim != 2 or coords.shape[1] != 2 or colour.shape != (len(coords),):
        raise ValueError(f"expected coords (N, 2) and colour (N,); got {coords.shape} and "
                         f"{colour.shape}")
    fig = Figure(figsize=(5.4, 4.4))
    ax = fig.add_subplot()
    known = np.isfinite(colour)
    points = ax.scatter(coords[known, 0], coords[known, 1], c=colour[known], cmap="gray",
                        edgecolors="black", linewidths=0.4, s=28)
    if (~known).any():
        ax.scatter(coords[~known, 0], coords[~known, 1], marker="x", c="red", s=28,
                   label="empty scene (no centroid)")
        ax.legend(fontsize=8)
    if known.any():
        fig.colorbar(points, ax=ax, label=colour_label)
    ax.ticklabel_format(style="sci", scilimits=(-3, 4))
    ax.locator_params(nbins=5)
    ax.set_xlabel("SVD component 1")
    ax.set_ylabel("SVD component 2")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return figures.save_figure(fig, path)
