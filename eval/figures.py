"""Figures of the evaluation programs: image grids, bar and line charts, cumulative curves.

All figures are drawn off-screen (Agg) on `matplotlib.figure.Figure` objects, without pyplot's
global figure list, and written as PNG through `tables.atomic_write`.
"""
import io

import matplotlib
import numpy as np

matplotlib.use("Agg")  # headless: set before anything can import pyplot

from matplotlib.figure import Figure  # noqa: E402

from .tables import atomic_write  # noqa: E402

_DPI = 100
_GAP_PX = 4  # space around and between the cells of an image grid
_ROW_TITLE_PX = 24  # band left of the grid for row titles
_COL_TITLE_PX = 22  # band above the grid for column titles


def save_figure(fig, path):
    """Writes matplotlib Figure `fig` as a PNG at `path` (white background, through
    `tables.atomic_write`) and returns what atomic_write returns."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, facecolor="white")
    return atomic_write(path, buf.getvalue())


def depth_to_colour(depth, valid=None, vmin=0.0, vmax=None, cmap="magma_r"):
    """Colours a depth map with a colormap; invalid pixels are black.

    Args:
        depth: float array (H, W) or (H, W, 1).
        valid: optional boolean mask of the same shape; non-finite depths are always invalid.
        vmin: depth mapped to the low end of the colormap.
        vmax: depth mapped to the high end; defaults to the largest valid depth.
        cmap: matplotlib colormap name (e.g. "magma_r", "viridis", "gray") or Colormap.
    Returns:
        uint8 array (H, W, 3).
    Raises:
        ValueError: bad shape, or a mask of another shape.
    """
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim == 3 and depth.shape[-1] == 1:
        depth = depth[..., 0]
    if depth.ndim != 2:
        raise ValueError(f"depth must be shaped (H, W) or (H, W, 1); got {depth.shape}")
    mask = np.isfinite(depth)
    if valid is not None:
        valid = np.asarray(valid, dtype=bool)
        if valid.ndim == 3 and valid.shape[-1] == 1:
            valid = valid[..., 0]
        if valid.shape != depth.shape:
            raise ValueError(f"valid shape {valid.shape} differs from depth shape {depth.shape}")
        mask &= valid
    if vmax is None:
        vmax = float(depth[mask].max()) if mask.any() else vmin + 1.0
    span = vmax - vmin if vmax > vmin else 1.0
    norm = np.clip((np.where(mask, depth, vmin) - vmin) / span, 0.0, 1.0)
    colormap = matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
    rgb = np.round(colormap(norm)[..., :3] * 255.0).astype(np.uint8)
    rgb[~mask] = 0
    return rgb


def _is_depth(image):
    return image.ndim == 2 or (image.ndim == 3 and image.shape[-1] == 1)


def _to_rgb(image, where):
    """uint8 (H, W, 3) from uint8 RGB(A), or from float RGB(A) in [0, 1]."""
    if image.ndim != 3 or image.shape[-1] not in (3, 4):
        raise ValueError(f"{where}: expected RGB (H, W, 3) or depth (H, W); got {image.shape}")
    image = image[..., :3]
    if image.dtype == np.uint8:
        return image
    if np.issubdtype(image.dtype, np.floating):
        return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    raise ValueError(f"{where}: RGB images must be uint8 or float in [0, 1]; got {image.dtype}")


def colourise_row(images, cmap="magma_r", row=0):
    """Turns one grid row into uint8 RGB images; its depth maps share one colour range.

    Depth maps are 2-D (or (H, W, 1)) float arrays; pixels that are not finite or not > 0 are
    invalid (0 means "no measurement" in every depth format used here) and drawn black. The
    shared range is [0, largest valid depth of the row].

    Returns:
        list of uint8 arrays (H, W, 3).
    """
    arrays = [np.asarray(image) for image in images]
    depths = [a.astype(np.float64) for a in arrays if _is_depth(a)]
    valid_max = [d[np.isfinite(d) & (d > 0)].max() for d in depths
                 if (np.isfinite(d) & (d > 0)).any()]
    vmax = float(max(valid_max)) if valid_max else 1.0
    out = []
    for col, a in enumerate(arrays):
        if _is_depth(a):
            d = a.astype(np.float64)
            out.append(depth_to_colour(d, valid=np.isfinite(d) & (d > 0), vmin=0.0, vmax=vmax,
                                       cmap=cmap))
        else:
            out.append(_to_rgb(a, f"row {row}, column {col}"))
    return out


def save_image_grid(rows, path, *, titles=None, col_titles=None, scale=1.0, cmap="magma_r"):
    """Writes a grid of images as one PNG, e.g. input | prediction | ground truth per row.

    Each cell shows its image at `scale` screen pixels per image pixel (nearest neighbour), so
    the PNG is about (columns * W) x (rows * H) * scale pixels plus thin gaps and title bands.

    Args:
        rows: list of rows, each a list of images: uint8 RGB (H, W, 3), float RGB in [0, 1], or
            float depth (H, W) coloured with one range per row (see `colourise_row`). Rows may
            be shorter than the longest one; missing cells stay blank.
        path: destination PNG.
        titles: optional row titles (one str per row), written left of each row.
        col_titles: optional column titles, written above the first row.
        scale: screen pixels per image pixel.
        cmap: colormap for depth maps.
    Returns:
        The destination as a `pathlib.Path`.
    Raises:
        ValueError: no images, a title list of the wrong length, or an image of a bad shape.
    """
    rows = [list(row) for row in rows]
    if not rows or not any(rows):
        raise ValueError("save_image_grid needs at least one image")
    n_rows, n_cols = len(rows), max(len(row) for row in rows)
    if titles is not None and len(titles) != n_rows:
        raise ValueError(f"titles has {len(titles)} entries for {n_rows} rows")
    if col_titles is not None and len(col_titles) != n_cols:
        raise ValueError(f"col_titles has {len(col_titles)} entries for {n_cols} columns")
    if not scale > 0:
        raise ValueError(f"scale must be > 0; got {scale}")
    cells = [colourise_row(row, cmap=cmap, row=i) for i, row in enumerate(rows)]
    cell_h = max(image.shape[0] for row in cells for image in row) * scale
    cell_w = max(image.shape[1] for row in cells for image in row) * scale
    left = _ROW_TITLE_PX if titles is not None else 0
    top = _COL_TITLE_PX if col_titles is not None else 0
    width = left + n_cols * cell_w + (n_cols + 1) * _GAP_PX
    height = top + n_rows * cell_h + (n_rows + 1) * _GAP_PX

    fig = Figure(figsize=(width / _DPI, height / _DPI), dpi=_DPI)
    for i, row in enumerate(cells):
        y0 = top + _GAP_PX + i * (cell_h + _GAP_PX)  # from the top, in pixels
        for j, image in enumerate(row):
            x0 = left + _GAP_PX + j * (cell_w + _GAP_PX)
            ax = fig.add_axes((x0 / width, 1 - (y0 + cell_h) / height,
                               cell_w / width, cell_h / height))
            ax.imshow(image, interpolation="nearest")
            ax.set_axis_off()
        if titles is not None:
            fig.text(left / 2 / width, 1 - (y0 + cell_h / 2) / height, str(titles[i]),
                     rotation=90, ha="center", va="center", fontsize=9)
    if col_titles is not None:
        for j, text in enumerate(col_titles):
            x_mid = left + _GAP_PX + j * (cell_w + _GAP_PX) + cell_w / 2
            fig.text(x_mid / width, 1 - (top / 2 + _GAP_PX / 2) / height, str(text),
                     ha="center", va="center", fontsize=9)
    return save_figure(fig, path)


def save_bar_chart(values_by_series, path, title, ylabel):
    """Grouped bar chart: one group per category (e.g. class), one bar per series.

    Args:
        values_by_series: {series name: {category: value}}; categories are ordered by first
            appearance; a missing or NaN value leaves its bar out.
        path: destination PNG.
        title, ylabel: chart texts.
    Returns:
        The destination as a `pathlib.Path`.
    """
    if not values_by_series:
        raise ValueError("save_bar_chart needs at least one series")
    categories = list(dict.fromkeys(c for values in values_by_series.values() for c in values))
    n_series = len(values_by_series)
    x = np.arange(len(categories))
    bar_w = 0.8 / n_series
    fig = Figure(figsize=(max(6.0, 0.6 * len(categories) * max(1.0, n_series / 2)), 4.0))
    ax = fig.add_subplot()
    for k, (name, values) in enumerate(values_by_series.items()):
        heights = np.array([values.get(c, np.nan) for c in categories], dtype=np.float64)
        shown = np.isfinite(heights)
        ax.bar(x[shown] + (k - (n_series - 1) / 2) * bar_w, heights[shown], width=bar_w,
               label=str(name))
    ax.set_xticks(x, [str(c) for c in categories], rotation=45 if len(categories) > 6 else 0,
                  ha="right" if len(categories) > 6 else "center")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def save_line_chart(x, series, path, title, xlabel, ylabel):
    """Line chart of several series over a shared x (e.g. metrics over checkpoints).

    Args:
        x: x values (e.g. training steps).
        series: {name: values}, each as long as `x`; NaN values leave gaps.
        path: destination PNG.
        title, xlabel, ylabel: chart texts.
    Returns:
        The destination as a `pathlib.Path`.
    Raises:
        ValueError: no series, or a series whose length differs from `x`.
    """
    if not series:
        raise ValueError("save_line_chart needs at least one series")
    x = np.asarray(x)
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    for name, values in series.items():
        values = np.asarray(values, dtype=np.float64)
        if values.shape != x.shape:
            raise ValueError(f"series {name!r} has {values.size} values for {x.size} x values")
        ax.plot(x, values, marker="o", markersize=3, label=str(name))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return save_figure(fig, path)


def save_cumulative_curve(errors_by_series, path, xlabel, max_x, *, title=None,
                          ylabel="% of samples"):
    """Cumulative error curves: % of samples with error <= x for x in [0, max_x].

    The curves are exact staircases of the empirical distribution (SimGAN, Figures 7 and 9).

    Args:
        errors_by_series: {name: 1-D array of non-negative errors}.
        path: destination PNG.
        xlabel: x-axis text (e.g. "angular error (degrees)").
        max_x: right end of the x axis.
    Returns:
        The destination as a `pathlib.Path`.
    Raises:
        ValueError: no series, an empty series, or a NaN or negative error.
    """
    if not errors_by_series:
        raise ValueError("save_cumulative_curve needs at least one series")
    if not max_x > 0:
        raise ValueError(f"max_x must be > 0; got {max_x}")
    fig = Figure(figsize=(6.4, 4.0))
    ax = fig.add_subplot()
    for name, errors in errors_by_series.items():
        errors = np.sort(np.asarray(errors, dtype=np.float64).ravel())
        if errors.size == 0:
            raise ValueError(f"series {name!r} has no errors")
        if np.isnan(errors).any() or errors[0] < 0:
            raise ValueError(f"series {name!r} holds NaN or negative errors "
                             f"(min {errors[0]:g})")
        inside = np.unique(errors[errors <= max_x])
        xs = np.concatenate([[0.0], inside, [max_x]])
        ys = np.searchsorted(errors, xs, side="right") / errors.size * 100.0
        ax.step(xs, ys, where="post", label=str(name))
    ax.set_xlim(0, max_x)
    ax.set_ylim(0, 100)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    return save_figure(fig, path)
