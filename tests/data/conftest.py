"""Fixtures that write small image files with Pillow (not with the code under test).

The coordinate pattern makes alignment checkable after any crop or flip: at pixel (y, x) the RGB
is (8x, 10y, 50k) for sample k, and the 16-bit depth value is 1000 + 100x + y, except where
(x + y) % 5 == 0, which is invalid (0).
"""
import json
import types

import numpy as np
import pytest
from PIL import Image

HEIGHT, WIDTH = 24, 32


def save(path, array, **kwargs):
    """Writes `array` as an image (uint16 2D -> 16-bit PNG) or .npy, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".npy":
        np.save(path, array)
    else:
        Image.fromarray(np.asarray(array)).save(path, **kwargs)
    return path


def coordinate_rgb(k=0, height=HEIGHT, width=WIDTH):
    y, x = np.mgrid[:height, :width]
    return np.stack([8 * x, 10 * y, np.full_like(x, 50 * k)], axis=-1).astype(np.uint8)


def coordinate_depth_raw(height=HEIGHT, width=WIDTH):
    y, x = np.mgrid[:height, :width]
    raw = 1000 + 100 * x + y
    return np.where((x + y) % 5 == 0, 0, raw).astype(np.uint16)


@pytest.fixture
def write():
    return save


@pytest.fixture
def make_folder_pairs():
    """make_folder_pairs(root, n=3, meta=None) writes ROOT/rgb/sK.png and ROOT/depth/sK.png
    (16-bit coordinate pattern) and, when given, ROOT/dataset.json."""
    def make(root, n=3, meta=None, labels=False):
        for k in range(n):
            save(root / "rgb" / f"s{k}.png", coordinate_rgb(k))
            save(root / "depth" / f"s{k}.png", coordinate_depth_raw())
            if labels:
                y, x = np.mgrid[:HEIGHT, :WIDTH]
                save(root / "labels" / f"s{k}.png", (x % 7 + 2 * k).astype(np.uint8))
        if meta is not None:
            (root / "dataset.json").write_text(json.dumps(meta))
        return root
    return make


def decode_coordinates(real_a):
    """real_a [..., 3] in [-1, 1] -> integer (x, y) of the coordinate pattern."""
    rgb = np.round((np.asarray(real_a) + 1.0) * 127.5)
    return np.round(rgb[..., 0] / 8).astype(int), np.round(rgb[..., 1] / 10).astype(int)


@pytest.fixture
def pattern():
    """The coordinate pattern: height, width, rgb(k), depth_raw(), decode(real_a) -> (x, y)."""
    return types.SimpleNamespace(height=HEIGHT, width=WIDTH, size=(HEIGHT, WIDTH),
                                 rgb=coordinate_rgb, depth_raw=coordinate_depth_raw,
                                 decode=decode_coordinates)
