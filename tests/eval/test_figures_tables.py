"""Figures are readable, non-blank PNGs of the right shape; tables round-trip; writes are atomic."""
import csv
import json
import os

import numpy as np
import pytest
from PIL import Image

from tfgan3d.eval import tables
from tfgan3d.eval.figures import (colourise_row, depth_to_colour, save_bar_chart,
                                  save_cumulative_curve, save_image_grid, save_line_chart)
from tfgan3d.eval.tables import (atomic_write, markdown_table, write_csv, write_json,
                                 write_markdown_table)


def load_png(path):
    with Image.open(path) as image:
        assert image.format == "PNG"
        return np.asarray(image.convert("RGB"))


def assert_not_blank(pixels):
    assert pixels.std() > 0


def assert_no_temp_files(folder):
    leftovers = [name for name in os.listdir(folder) if name.endswith(".tmp")]
    assert leftovers == []


def test_depth_to_colour_paints_invalid_black():
    depth = np.array([[1.0, 2.0], [3.0, np.nan]])
    valid = np.array([[True, False], [True, True]])
    rgb = depth_to_colour(depth, valid=valid, vmin=0.0, vmax=4.0)
    assert rgb.dtype == np.uint8 and rgb.shape == (2, 2, 3)
    assert (rgb[0, 1] == 0).all() and (rgb[1, 1] == 0).all()  # masked and NaN
    assert rgb[0, 0].sum() > 0 and rgb[1, 0].sum() > 0
    assert not np.array_equal(rgb[0, 0], rgb[1, 0])  # different depths, different colours


def test_depth_to_colour_range_ignores_invalid_pixels():
    depth = np.array([[1.0, 2.0, 1000.0]])
    valid = np.array([[True, True, False]])
    # vmax defaults to the largest valid depth (2), not 1000: 2 and 4 (clipped) look the same.
    auto = depth_to_colour(depth, valid=valid)
    fixed = depth_to_colour(depth, valid=valid, vmax=2.0)
    np.testing.assert_array_equal(auto, fixed)


def test_row_of_depth_maps_shares_one_range():
    near, far = np.full((2, 2), 2.0), np.full((2, 2), 4.0)
    far[0, 0] = 2.0
    coloured = colourise_row([near, far])
    # The same depth gets the same colour in both maps; a different depth does not.
    np.testing.assert_array_equal(coloured[0][0, 0], coloured[1][0, 0])
    assert not np.array_equal(coloured[1][0, 0], coloured[1][1, 1])


def test_image_grid_png(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    depth = rng.uniform(1.0, 5.0, size=(8, 8))
    gt = depth.copy()
    gt[:2] = 0.0  # no measurement
    rows = [[rgb, depth, gt], [rgb, depth[..., None], gt]]
    path = save_image_grid(rows, tmp_path / "grid.png", scale=8)
    pixels = load_png(path)
    height, width, _ = pixels.shape
    # Three 64-pixel columns by two 64-pixel rows, plus thin gaps.
    assert width >= 3 * 64 and height >= 2 * 64
    assert width / height == pytest.approx(3 / 2, rel=0.05)
    assert_not_blank(pixels)
    assert_no_temp_files(tmp_path)


def test_image_grid_with_titles(tmp_path):
    image = np.zeros((16, 32, 3), dtype=np.uint8)
    image[:, 16:] = 255
    path = save_image_grid([[image, image]], tmp_path / "titled.png", scale=4,
                           titles=["sample 0"], col_titles=["input", "prediction"])
    pixels = load_png(path)
    assert pixels.shape[1] / pixels.shape[0] == pytest.approx(2 * 128 / 64, rel=0.25)
    assert_not_blank(pixels)
    with pytest.raises(ValueError, match="col_titles has 1 entries for 2 columns"):
        save_image_grid([[image, image]], tmp_path / "bad.png", col_titles=["input"])
    assert not (tmp_path / "bad.png").exists()


def test_charts_png(tmp_path):
    bar = save_bar_chart({"sim": {"road": 0.9, "car": 0.5, "sky": float("nan")},
                          "real": {"road": 0.7, "car": 0.3, "sky": 0.8}},
                         tmp_path / "iou.png", "per-class IoU", "IoU")
    line = save_line_chart([1000, 2000, 3000], {"abs_rel": [0.3, 0.2, 0.15],
                                                "rmse": [5.0, 4.0, np.nan]},
                           tmp_path / "curve.png", "depth metrics", "step", "value")
    rng = np.random.default_rng(0)
    cumulative = save_cumulative_curve({"synthetic": rng.uniform(0, 20, 50),
                                        "refined": rng.uniform(0, 10, 50)},
                                       tmp_path / "cumulative.png", "error (degrees)", 25)
    for path in (bar, line, cumulative):
        pixels = load_png(path)
        assert pixels.shape[1] > pixels.shape[0]  # landscape
        assert_not_blank(pixels)
    with pytest.raises(ValueError, match="'rmse' has 2 values for 3"):
        save_line_chart([1, 2, 3], {"rmse": [1.0, 2.0]}, tmp_path / "bad.png", "t", "x", "y")
    assert sorted(os.listdir(tmp_path)) == ["cumulative.png", "curve.png", "iou.png"]


def test_csv_round_trip(tmp_path):
    rows = [{"image": "a.png", "abs_rel": 0.123456789, "n_pixels": 10},
            {"image": "b.png", "abs_rel": 1e-9, "rmse": 2.5}]
    path = write_csv(rows, tmp_path / "per_image.csv")
    with open(path, newline="") as f:
        read = list(csv.DictReader(f))
    assert list(read[0]) == ["image", "abs_rel", "n_pixels", "rmse"]
    assert read[0]["image"] == "a.png" and float(read[0]["abs_rel"]) == 0.123456789
    assert int(read[0]["n_pixels"]) == 10 and read[0]["rmse"] == ""
    assert float(read[1]["abs_rel"]) == 1e-9 and float(read[1]["rmse"]) == 2.5


def test_json_is_strict(tmp_path):
    obj = {"iou": np.array([0.5, np.nan]), "n": np.int64(3), "miou": np.float32(0.25)}
    path = write_json(obj, tmp_path / "scores.json")
    assert json.loads(path.read_text()) == {"iou": [0.5, None], "n": 3, "miou": 0.25}


def test_markdown_table_text(tmp_path):
    rows = [{"model": "sim", "abs_rel": 0.12345, "n": 10},
            {"model": "sim2real", "abs_rel": 0.5, "n": 200}]
    expected = ("| model    | abs_rel |   n |\n"
                "| -------- | ------: | --: |\n"
                "| sim      |  0.1235 |  10 |\n"
                "| sim2real |  0.5000 | 200 |\n")
    assert markdown_table(rows) == expected
    assert markdown_table(rows, columns=["n", "model"], floatfmt=".2f", title="Depth") == (
        "### Depth\n\n"
        "|   n | model    |\n"
        "| --: | -------- |\n"
        "|  10 | sim      |\n"
        "| 200 | sim2real |\n")
    path = write_markdown_table(rows, tmp_path / "table.md")
    assert path.read_text() == expected


def test_atomic_write_leaves_no_temp_files(tmp_path, monkeypatch):
    target = tmp_path / "sub" / "out.txt"
    atomic_write(target, "first")
    atomic_write(target, b"second")
    assert target.read_bytes() == b"second"
    assert os.listdir(target.parent) == ["out.txt"]

    def failing_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(tables.os, "replace", failing_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, "third")
    assert target.read_bytes() == b"second"  # the old file is untouched
    assert os.listdir(target.parent) == ["out.txt"]  # and the temporary file is gone
    monkeypatch.undo()
    with pytest.raises(TypeError, match="bytes or str"):
        atomic_write(target, 42)
    assert os.listdir(target.parent) == ["out.txt"]
