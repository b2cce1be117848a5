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
