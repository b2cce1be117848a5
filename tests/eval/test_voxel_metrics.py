"""Voxel IoU / AP against hand-computed values, correct and legacy (the original's) variants."""
import math

import numpy as np
import pytest

from tfgan3d.eval.voxel_metrics import metrics_table, voxel_ap, voxel_iou

NAN_CLASSES = ("ceiling", "window", "bed", "sofa", "tvs", "furniture", "objects")


def _scenes(flat):
    """Two scenes of 2x2x2 voxels from two flat lists of 8 labels."""
    return np.array(flat).reshape(2, 2, 2, 2)


# Scene 0: floor (2) at 0-1, wall (3) at 2-3, chair (5) at 4-5. Scene 1: floor at 0-3, no wall or
# chair; the prediction adds a table (8) that the ground truth lacks.
GT = _scenes([[2, 2, 3, 3, 5, 5, 0, 0], [2, 2, 2, 2, 0, 0, 0, 0]])
PRED = _scenes([[2, 3, 3, 3, 5, 0, 0, 5], [2, 2, 2, 0, 8, 0, 0, 0]])


def test_iou_hand_computed():
    iou = voxel_iou(GT, PRED)
    # floor: scene 0 |A&B| 1 / |A|B| 2, scene 1 3/4.   wall and chair: scene 0 only.
    assert iou["floor"] == pytest.approx((1 / 2 + 3 / 4) / 2)
    assert iou["wall"] == pytest.approx(2 / 3)
    assert iou["chair"] == pytest.approx(1 / 3)
    # Table is predicted in scene 1 but absent from its ground truth: the union counts, IoU 0.
    assert iou["table"] == 0.0
    # Class 0 is a row: scene 0 empty at {6, 7} vs {5, 6}: 1/3; scene 1 {4..7} vs {3, 5, 6, 7}.
    assert iou["empty"] == pytest.approx((1 / 3 + 3 / 5) / 2)
    # all pools channels 1..11: scene 0 sum of intersections 1 + 2 + 1 = 4 over the sum of the
    # unions 2 + 3 + 3 = 8 (voxel 3, gt wall / pred wall; voxel 1 gt floor pred wall is in the
    # floor and the wall union); scene 1: 3 / (4 + 1).
    assert iou["all"] == pytest.approx((4 / 8 + 3 / 5) / 2)
    # Extra rows: occupancy (empty vs not) 5/7 and 3/5; mean_class over the classes with a value.
    assert iou["occupancy"] == pytest.approx((5 / 7 + 3 / 5) / 2)
    assert iou["mean_class"] == pytest.approx((0.625 + 2 / 3 + 1 / 3 + 0) / 4)
    for name in NAN_CLASSES:
        assert math.isnan(iou[name])
    assert list(iou) == ["empty", "ceiling", "floor", "wall", "window", "chair", "bed", "sofa",
                         "table", "tvs", "furniture", "objects", "all", "mean_class",
                         "occupancy"]


def test_iou_legacy_divides_by_the_sum_of_sizes():
    iou = voxel_iou(GT, PRED, legacy=True)
    assert iou["floor"] == pytest.approx((1 / 3 + 3 / 7) / 2)
    assert iou["wall"] == pytest.approx(2 / 5)
    assert iou["chair"] == pytest.approx(1 / 4)
    assert iou["table"] == 0.0
    assert iou["empty"] == pytest.approx((1 / 4 + 3 / 8) / 2)
    # all: scene 0 4 / (6 + 6), scene 1 3 / (4 + 4); no extra rows (the original had none).
    assert iou["all"] == pytest.approx((4 / 12 + 3 / 8) / 2)
    assert math.isnan(iou["bed"])
    assert list(iou)[0] == "empty" and list(iou)[-1] == "all" and len(iou) == 13


def test_iou_all_counts_a_wrong_class_in_two_unions():
    # One voxel, gt wall predicted chair: the occupancy IoU is 1, the pooled class IoU 0 / 2.
    gt, pred = np.array([3, 5]).reshape(1, 1, 1, 2), np.array([5, 5]).reshape(1, 1, 1, 2)
    iou = voxel_iou(gt, pred)
    assert iou["occupancy"] == 1.0
    assert iou["all"] == pytest.approx(1 / 3)          # chair 1 / 2 unions, wall 0 / 1
    assert voxel_iou(gt, pred, legacy=True)["all"] == pytest.approx(1 / 4)


def test_iou_perfect_prediction_is_one_and_legacy_half():
    assert voxel_iou(GT, GT)["all"] == 1.0
    assert voxel_iou(GT, GT, legacy=True)["floor"] == 0.5


def _probs():
    """Scores with hand-computable AP; every other channel scores 0."""
    probs = np.zeros(GT.shape + (12,))
    flat = probs.reshape(2, 8, 12)
    # Scene 0 floor: positives 0 (0.9) and 1 (0.7) around a negative at 0.8 -> AP 1/2 + 1/2 * 2/3.
    flat[0, :, 2] = [0.9, 0.7, 0.8, 0.1, 0.05, 0.05, 0.05, 0.05]
    # Scene 0 wall: positives 2 (0.8) and 3 (0.4), a negative at 0.6 between them -> AP 5/6.
    flat[0, :, 3] = [0.1, 0.6, 0.8, 0.4, 0.2, 0.2, 0.2, 0.2]
    flat[0, :, 5] = [0, 0, 0, 0, 0.9, 0.8, 0.1, 0.1]  # chair ranked perfectly: AP 1
    flat[1, :, 2] = [0.9, 0.8, 0.7, 0.6, 0.1, 0.1, 0.1, 0.1]  # floor ranked perfectly: AP 1
    flat[1, :, 3] = [0.5, 0, 0, 0, 0, 0, 0, 0.9]  # scene 1 has no wall: must not count
    return probs


def test_ap_hand_computed_over_scenes_with_the_class():
    ap = voxel_ap(GT, _probs())
    assert ap["floor"] == pytest.approx((5 / 6 + 1) / 2)
    assert ap["wall"] == pytest.approx(5 / 6)
    assert ap["chair"] == pytest.approx(1.0)
    assert math.isnan(ap["table"])  # the table is in no ground truth
    assert ap["mean_class"] == pytest.approx((11 / 12 + 5 / 6 + 1) / 3)
    # Class 0 is a row: every voxel scores 0 for empty, so the AP is the positive fraction.
    assert ap["empty"] == pytest.approx((2 / 8 + 4 / 8) / 2)


def test_ap_legacy_averages_over_all_scenes():
    ap = voxel_ap(GT, _probs(), legacy=True)
    assert ap["floor"] == pytest.approx((5 / 6 + 1) / 2)
    assert ap["wall"] == pytest.approx(5 / 6 / 2)
    assert ap["chair"] == pytest.approx(1 / 2)
    assert ap["table"] == 0.0
    assert "mean_class" not in ap


def test_ap_all_pools_the_classes_of_a_scene():
    # Scene 0: one floor voxel scored 0.6 and an empty voxel scoring 0.7 for chair: pooled over
    # channels 1..11 the positive ranks second -> AP 1/2. Scene 1 has no object: it does not
    # count in the corrected AP and counts as 0 in the original's.
    gt = np.array([[2, 0], [0, 0]]).reshape(2, 1, 1, 2)
    probs = np.zeros((2, 1, 1, 2, 12))
    probs[0, 0, 0, 0, [0, 2, 3]] = [0.1, 0.6, 0.3]
    probs[0, 0, 0, 1, [0, 5]] = [0.3, 0.7]
    probs[1, ..., 0] = 1.0
    assert voxel_ap(gt, probs, legacy=True)["all"] == pytest.approx(0.5 / 2)
    assert voxel_ap(gt, probs)["all"] == pytest.approx(0.5)
    # The mean of per-class APs is another quantity: floor is ranked first in its own channel.
    assert voxel_ap(gt, probs)["mean_class"] == pytest.approx(1.0)
    # occupancy: the floor voxel's 1 - p(empty) = 0.9 beats the empty voxel's 0.7 -> AP 1.
    assert voxel_ap(gt, probs)["occupancy"] == pytest.approx(1.0)


def test_single_scene_and_float_labels_are_accepted():
    iou = voxel_iou(GT[0].astype(np.float32), PRED[0])
    assert iou["wall"] == pytest.approx(2 / 3)


def test_metrics_table_rows():
    rows = metrics_table(voxel_iou(GT, PRED), voxel_ap(GT, _probs()))
    assert len(rows) == 15
    assert rows[0]["class_id"] == 0 and rows[0]["class"] == "empty"
    assert rows[3] == {"class_id": 3, "class": "wall", "iou": pytest.approx(2 / 3),
                       "ap": pytest.approx(5 / 6)}
    assert [r["class"] for r in rows[-3:]] == ["all", "mean_class", "occupancy"]
    assert all(r["class_id"] is None for r in rows[-3:])
    legacy = metrics_table(voxel_iou(GT, PRED, legacy=True), voxel_ap(GT, _probs(), legacy=True))
    assert len(legacy) == 13 and legacy[-1]["class"] == "all"
    assert list(metrics_table(ap=voxel_ap(GT, _probs()))[0]) == ["class_id", "class", "ap"]
    with pytest.raises(ValueError, match="at least one"):
        metrics_table()


@pytest.mark.parametrize("gt, pred, message", [
    (GT, PRED[:1], r"same shape.*\(2, 2, 2, 2\).*\(1, 2, 2, 2\)"),
    (GT[0], PRED, r"\(1, 2, 2, 2\) and \(2, 2, 2, 2\)"),
    (np.full((1, 2, 2, 2), 12), np.zeros((1, 2, 2, 2), int), r"\[12, 12\].*0\.\.11"),
    (np.full((1, 2, 2, 2), -1), np.zeros((1, 2, 2, 2), int), r"\[-1, -1\]"),
    (np.full((1, 2, 2, 2), 0.5), np.zeros((1, 2, 2, 2), int), "non-integral"),
    (np.zeros((2, 2)), np.zeros((2, 2)), r"got shape \(2, 2\)"),
])
def test_iou_rejects_bad_input(gt, pred, message):
    with pytest.raises(ValueError, match=message):
        voxel_iou(gt, pred)


def test_ap_rejects_wrong_channel_count():
    expected = r"probs must have shape \(2, 2, 2, 2, 12\).*got \(2, 2, 2, 2, 11\)"
    with pytest.raises(ValueError, match=expected):
        voxel_ap(GT, np.zeros(GT.shape + (11,)))
