"""The training-data quality filter: drops mostly-invalid depth maps, names what it drops."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfgan3d.data import paired, quality
from tfgan3d.data.images import DataError


def _write_pair(root, name, invalid_rows, height=10, width=8):
    (root / "rgb").mkdir(parents=True, exist_ok=True)
    (root / "depth").mkdir(exist_ok=True)
    Image.fromarray(np.full((height, width, 3), 100, np.uint8)).save(root / "rgb" / f"{name}.png")
    raw = np.full((height, width), 2000, np.uint16)
    raw[:invalid_rows] = 0  # the top rows are holes
    Image.fromarray(raw).save(root / "depth" / f"{name}.png")


@pytest.fixture
def split(tmp_path):
    # invalid fractions 0.0, 0.2, 0.3, 0.7
    for name, rows in (("a", 0), ("b", 2), ("c", 3), ("d", 7)):
        _write_pair(tmp_path, name, rows)
    return paired.discover_pairs(tmp_path, split="train")


def test_invalid_fraction_counts_the_holes(split):
    assert [quality.invalid_fraction(split, i) for i in range(4)] == pytest.approx(
        [0.0, 0.2, 0.3, 0.7])


def test_filter_drops_pairs_above_the_threshold_and_keeps_files_aligned(split):
    kept, dropped = quality.filter_pairs(split, 0.25)
    assert kept.names == ["a", "b"]
    assert [Path(p).name for p in kept.inputs] == ["a.png", "b.png"]
    assert [Path(p).name for p in kept.depths] == ["a.png", "b.png"]
    assert [(n, round(f, 3)) for n, f in dropped] == [("c", 0.3), ("d", 0.7)]
    assert len(split) == 4  # the input split is not modified


def test_no_threshold_keeps_everything(split):
    assert quality.filter_pairs(split, None) == (split, [])
    assert quality.filter_pairs(split, 1.0)[0] is split


def test_a_threshold_that_drops_everything_names_the_best_pair(tmp_path):
    for name, rows in (("b", 2), ("c", 3)):
        _write_pair(tmp_path, name, rows)
    files = paired.discover_pairs(tmp_path, split="train")
    with pytest.raises(DataError, match=r"drops every training pair \(the best, b, has 0.200"):
        quality.filter_pairs(files, 0.1)


def test_threshold_outside_zero_one_is_refused(split):
    with pytest.raises(ValueError, match="expected a value in"):
        quality.filter_pairs(split, -0.5)


def test_a_map_exactly_at_the_threshold_is_kept_and_one_pixel_more_is_dropped(tmp_path):
    # "at most": c is 24 of 80 pixels invalid (exactly 0.3; 1 - mean(valid) reads
    # 0.30000000000000004), b is 16 of 80 (0.2). The threshold keeps each at its own value and
    # drops it just below; e is one pixel more than 0.3 (25 of 80) and is dropped at 0.3.
    for name, rows in (("b", 2), ("c", 3)):
        _write_pair(tmp_path, name, rows)
    (tmp_path / "depth").mkdir(exist_ok=True)
    _write_pair(tmp_path, "e", 3)
    raw = np.array(Image.open(tmp_path / "depth" / "e.png"))
    raw[3, 0] = 0
    Image.fromarray(raw).save(tmp_path / "depth" / "e.png")
    files = paired.discover_pairs(tmp_path, split="train")
    assert quality.filter_pairs(files, 0.3)[0].names == ["b", "c"]
    assert quality.filter_pairs(files, 0.2)[0].names == ["b"]
    assert quality.filter_pairs(files, 0.2999)[0].names == ["b"]
    assert quality.filter_pairs(files, 0.3125)[0].names == ["b", "c", "e"]
    with pytest.raises(DataError):
        quality.filter_pairs(files, 0.1999)
    assert [quality.invalid_pixels(files, i) for i in range(3)] == [(16, 80), (24, 80), (25, 80)]
