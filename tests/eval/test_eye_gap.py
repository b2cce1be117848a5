"""The eye domain-gap report on the tiny preset, and its gain arithmetic."""
import json

import numpy as np
import pytest

from tfgan3d.data import eyes
from tfgan3d.eval import eye_gap


def test_training_sets_are_three_renderings_of_the_same_eyes():
    sets = eye_gap.training_sets(6, seed=1)
    assert list(sets) == ["synthetic", "oracle", "content"]
    for images, gaze in sets.values():
        assert images.shape == (6, 35, 55, 1) and images.min() >= -1 and images.max() <= 1
        np.testing.assert_array_equal(gaze, sets["synthetic"][1])
    real = eyes.render_split("synthetic-train", 6, seed=1)
    np.testing.assert_array_equal(sets["synthetic"][0], 2 * real["image"] - 1)
    assert not np.array_equal(sets["oracle"][0], sets["content"][0])


def test_gap_summary_share_of_the_oracle_gain():
    rows = [{"training_data": "synthetic", "mean_error_deg": 10.0, "within_d_pct": 40.0},
            {"training_data": "oracle", "mean_error_deg": 4.0, "within_d_pct": 80.0},
            {"training_data": "content", "mean_error_deg": 5.5, "within_d_pct": 70.0}]
    gap = eye_gap.gap_summary(rows)
    assert gap["oracle_gain_deg"] == 6.0 and gap["oracle_gain_within_pct"] == 40.0
    assert gap["content_gain_deg"] == 4.5 and gap["gain_share"] == pytest.approx(0.75)


def test_report_on_tiny_writes_the_table(tmp_path):
    summary = eye_gap.main(["--preset", "tiny", "--out", str(tmp_path)])
    rows = summary["rows"]
    assert [r["training_data"] for r in rows] == ["synthetic", "oracle", "content"]
    for row in rows:
        assert 0 <= row["within_d_pct"] <= 100 and row["mean_error_deg"] > 0
        assert 0 <= row["real_vs_x_accuracy"] <= 1
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["gain_share"] == pytest.approx(eye_gap.gap_summary(rows)["gain_share"],
                                                nan_ok=True)
    for name in ("gap_table.csv", "gap_table.md", "summary.md", "domains_grid.png",
                 "gaze_cumulative.png"):
        assert (tmp_path / name).is_file()
    assert "real_vs_x_accuracy" in (tmp_path / "gap_table.md").read_text()
