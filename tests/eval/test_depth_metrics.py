"""Depth metrics against the worked example of metrics.md and hand-computed values."""
import math

import numpy as np
import pytest

from tfgan3d.eval.depth_metrics import DEPTH_METRICS, depth_errors, evaluate_depth

GT = [1.0, 2.0, 4.0, 8.0]
PRED = [1.0, 2.5, 3.0, 10.0]
EXPECTED = {"abs_rel": 0.1875, "sq_rel": 0.21875, "rmse": 1.145644, "rmse_log": 0.213511,
            "delta1": 0.25, "delta2": 1.0, "delta3": 1.0}


def assert_metrics(result, expected, abs_tol=1e-6):
    for name, value in expected.items():
        assert result[name] == pytest.approx(value, abs=abs_tol), name


def test_worked_example_1d():
    result = depth_errors(np.array(GT), np.array(PRED))
    assert tuple(result) == DEPTH_METRICS
    assert_metrics(result, EXPECTED)


def test_worked_example_as_image():
    # delta1 = 0.25 relies on the strict <: two pixels have a ratio of exactly 1.25.
    result = evaluate_depth(np.reshape(GT, (1, 2, 2)), np.reshape(PRED, (1, 2, 2)))
    assert_metrics(result, EXPECTED)
    assert result["n_images"] == 1 and result["n_skipped"] == 0
    assert "median_scale_mean" not in result
    # The (N, H, W, 1) layout and a single (H, W) image give the same numbers.
    assert_metrics(evaluate_depth(np.reshape(GT, (1, 2, 2, 1)), np.reshape(PRED, (1, 2, 2, 1))),
                   EXPECTED)
    assert_metrics(evaluate_depth(np.reshape(GT, (2, 2)), np.reshape(PRED, (2, 2))), EXPECTED)


def test_invalid_pixels_are_ignored():
    gt = np.array([[[1.0, 2.0, 0.0], [4.0, 8.0, 5.0]]])  # 0 = no measurement
    pred = np.array([[[1.0, 2.5, 1e6], [3.0, 10.0, 1e6]]])
    valid = np.array([[[True, True, True], [True, True, False]]])  # masks the 5.0 pixel
    assert_metrics(evaluate_depth(gt, pred, valid), EXPECTED)
    # Without the mask the huge error at the 5.0 pixel counts.
    assert evaluate_depth(gt, pred)["rmse"] > 1e5


def test_median_scaling_removes_a_global_scale():
    rng = np.random.default_rng(0)
    gt = rng.uniform(1.0, 10.0, size=(2, 4, 5))
    result = evaluate_depth(gt, gt * 3.0, median_scaling=True)
    assert result["abs_rel"] == pytest.approx(0.0, abs=1e-12)
    assert result["rmse"] == pytest.approx(0.0, abs=1e-12)
    assert result["delta1"] == 1.0
    assert result["median_scale_mean"] == pytest.approx(1.0 / 3.0)
    assert result["median_scale_std"] == pytest.approx(0.0, abs=1e-12)
    # Without scaling the same prediction is off by a factor 3: abs_rel = |1 - 3| = 2.
    unscaled = evaluate_depth(gt, gt * 3.0)
    assert unscaled["abs_rel"] == pytest.approx(2.0)
    assert unscaled["delta1"] == 0.0


def test_max_depth_masks_gt_and_clamps_pred():
    gt = np.array([[2.0, 4.0, 90.0]])  # 90 >= max_depth: not a valid pixel
    pred = np.array([[2.0, 100.0, 1.0]])  # 100 is clamped to 80
    result = evaluate_depth(gt, pred, max_depth=80.0, per_image=True)[0]
    assert result["n_pixels"] == 2
    # abs_rel = (0 + |4 - 80| / 4) / 2 = 9.5
    assert result["abs_rel"] == pytest.approx(9.5)
    assert result["rmse"] == pytest.approx(math.sqrt(76.0 ** 2 / 2))


def test_min_depth_clamps_pred():
    gt = np.array([[1.0, 2.0]])
    pred = np.array([[-5.0, 2.0]])  # clamped to min_depth 0.5
    result = evaluate_depth(gt, pred, min_depth=0.5)
    assert result["abs_rel"] == pytest.approx((abs(1.0 - 0.5) / 1.0 + 0.0) / 2)


def test_image_without_valid_pixels_is_skipped():
    gt = np.stack([np.reshape(GT, (2, 2)), np.zeros((2, 2))])
    pred = np.stack([np.reshape(PRED, (2, 2)), np.ones((2, 2))])
    result = evaluate_depth(gt, pred)
    assert_metrics(result, EXPECTED)
    assert result["n_images"] == 1 and result["n_skipped"] == 1
    per_image = evaluate_depth(gt, pred, per_image=True)
    assert len(per_image) == 2
    assert per_image[1]["n_pixels"] == 0 and math.isnan(per_image[1]["abs_rel"])
    with pytest.raises(ValueError, match="valid pixel"):
        evaluate_depth(np.zeros((2, 2)), np.ones((2, 2)))


def test_mean_over_images_not_pooled_pixels():
    # Image 1: one pixel, gt 1, pred 2 -> abs_rel 1, rmse 1.
    # Image 2: three pixels, gt 1, pred 1 -> abs_rel 0, rmse 0.
    # Mean over images: abs_rel 0.5, rmse 0.5; pooled pixels would give 0.25 and 0.5.
    gt = np.array([[[1.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 0.0]]])
    pred = np.array([[[2.0, 7.0], [7.0, 7.0]], [[1.0, 1.0], [1.0, 7.0]]])
    result = evaluate_depth(gt, pred)
    assert result["abs_rel"] == pytest.approx(0.5)
    assert result["rmse"] == pytest.approx(0.5)
    assert result["delta1"] == pytest.approx(0.5)
    assert result["n_images"] == 2


def test_disagreeing_shapes_name_both():
    with pytest.raises(ValueError, match=r"\(2, 4, 4\).*\(2, 4, 5\)"):
        evaluate_depth(np.ones((2, 4, 4)), np.ones((2, 4, 5)))
    with pytest.raises(ValueError, match=r"\(4,\).*\(3,\)"):
        depth_errors(np.ones(4), np.ones(3))


def test_median_scaling_then_clamping_in_that_order():
    # High side: gt 8, 8, 8 (median 8), pred 2, 2, 4 (median 2, all inside [1, 10]) -> scale 4
    # -> 8, 8, 16 -> clamped after scaling: 8, 8, 10, abs_rel (0 + 0 + 2/8) / 3 = 1/12
    # (clamping before scaling keeps the 16: abs_rel 1/3).
    high = evaluate_depth(np.array([[8.0, 8.0, 8.0]]), np.array([[2.0, 2.0, 4.0]]),
                          min_depth=1.0, max_depth=10.0, median_scaling=True, per_image=True)[0]
    assert high["median_scale"] == 4.0
    assert high["abs_rel"] == pytest.approx(1 / 12)
    assert high["rmse"] == pytest.approx(math.sqrt(4 / 3))
    # Low side: gt 2, 2, 2, pred 0.5, 1, 1 (median 1) -> scale 2 -> 1, 2, 2 -> clamped to
    # min_depth 1.5: 1.5, 2, 2, abs_rel 0.25 / 3 (clamping first lifts every value to 1.5:
    # scale 4/3, abs_rel 0).
    low = evaluate_depth(np.array([[2.0, 2.0, 2.0]]), np.array([[0.5, 1.0, 1.0]]),
                         min_depth=1.5, max_depth=10.0, median_scaling=True, per_image=True)[0]
    assert low["median_scale"] == 2.0
    assert low["abs_rel"] == pytest.approx(0.25 / 3)
