"""Segmentation metrics against a hand-worked confusion matrix."""
import math

import numpy as np
import pytest

from tfgan3d.eval.seg_metrics import confusion_matrix, segmentation_scores

# 2x3 image, 3 classes.
GT = np.array([[0, 0, 1],
               [1, 2, 2]])
PRED = np.array([[0, 1, 1],
                 [1, 2, 0]])
# Confusion matrix (rows gt, columns pred):
#   gt 0: pred 0 once, pred 1 once   -> [1, 1, 0]
#   gt 1: pred 1 twice               -> [0, 2, 0]
#   gt 2: pred 2 once, pred 0 once   -> [1, 0, 1]
# class 0: TP 1, FP 1 (gt 2 -> 0), FN 1 (0 -> 1): IoU 1/3
# class 1: TP 2, FP 1 (gt 0 -> 1), FN 0:          IoU 2/3
# class 2: TP 1, FP 0,             FN 1 (2 -> 0): IoU 1/2
# mIoU = (1/3 + 2/3 + 1/2) / 3 = 1/2; pixel accuracy = 4 correct / 6 = 2/3.
CONF = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 1]])


def test_hand_worked_example():
    conf = confusion_matrix(GT, PRED, num_classes=3)
    np.testing.assert_array_equal(conf, CONF)
    scores = segmentation_scores(conf)
    np.testing.assert_allclose(scores["iou_per_class"], [1 / 3, 2 / 3, 1 / 2])
    assert scores["miou"] == pytest.approx(0.5)
    assert scores["pixel_accuracy"] == pytest.approx(2 / 3)
    assert scores["classes_present"] == [0, 1, 2]


def test_matrix_accumulates_over_the_set():
    # Two copies of the image as a batch count every pair twice; the ratios stay the same.
    conf = confusion_matrix(np.stack([GT, GT]), np.stack([PRED, PRED]), num_classes=3)
    np.testing.assert_array_equal(conf, 2 * CONF)
    assert segmentation_scores(conf)["miou"] == pytest.approx(0.5)


def test_ignore_index_excluded():
    gt = np.concatenate([GT, [[255, 255, 255]]])
    pred = np.concatenate([PRED, [[2, 1, 0]]])  # wrong everywhere, but unlabelled
    np.testing.assert_array_equal(confusion_matrix(gt, pred, num_classes=3), CONF)
    # The same pixels labelled as class 0 would count.
    gt[2] = 0
    assert confusion_matrix(gt, pred, num_classes=3).sum() == 9


def test_absent_classes_excluded_from_miou():
    scores = segmentation_scores(confusion_matrix(GT, PRED, num_classes=5))
    assert scores["classes_present"] == [0, 1, 2]
    assert math.isnan(scores["iou_per_class"][3]) and math.isnan(scores["iou_per_class"][4])
    assert scores["miou"] == pytest.approx(0.5)


def test_class_only_in_prediction_counts_with_iou_zero():
    pred = PRED.copy()
    pred[1, 0] = 3  # was a correct class-1 pixel
    scores = segmentation_scores(confusion_matrix(GT, pred, num_classes=4))
    # class 1 now: TP 1, FP 1, FN 1 -> 1/3; class 3: TP 0, FP 1 -> 0.
    np.testing.assert_allclose(scores["iou_per_class"], [1 / 3, 1 / 3, 1 / 2, 0.0])
    assert scores["classes_present"] == [0, 1, 2, 3]
    assert scores["miou"] == pytest.approx((1 / 3 + 1 / 3 + 1 / 2 + 0.0) / 4)


def test_bad_labels_are_named():
    gt = GT.copy()
    gt[0, 0] = 7
    with pytest.raises(ValueError, match="label 7"):
        confusion_matrix(gt, PRED, num_classes=3)
    pred = PRED.copy()
    pred[0, 0] = -1
    with pytest.raises(ValueError, match="label -1"):
        confusion_matrix(GT, pred, num_classes=3)
    with pytest.raises(ValueError, match=r"\(2, 3\).*\(2, 3, 3\)"):
        confusion_matrix(GT, np.zeros((2, 3, 3)), num_classes=3)
