"""SimGAN gaze evaluation: angular error, the estimator, Table 2 / Figure 7 files, label
preservation and the automated visual Turing test."""
import csv
import json

import numpy as np
import pytest
from PIL import Image

from tfgan3d.data.eyes import render_split
from tfgan3d.eval.gaze import (PAPER_CONV_WIDTHS, PAPER_FC_WIDTHS, angular_error_deg,
                               build_gaze_estimator, euclidean_loss, evaluate_downstream,
                               predict_gaze, pupil_shift, realism_accuracy, train_estimator,
                               within)

TINY = {"conv_widths": (4, 8, 8, 16, 16), "fc_widths": (32,), "jit_compile": False}


@pytest.fixture(scope="module")
def eyes():
    """512 synthetic training eyes, 128 synthetic and 128 real-like test eyes, in [-1, 1]."""
    train = render_split("synthetic-train", 512)
    clean, real = render_split("synthetic-test", 128), render_split("real-test", 128)
    return {"x": 2 * train["image"] - 1, "gaze": train["gaze"],
            "x_test": 2 * clean["image"] - 1, "gaze_test": clean["gaze"],
            "x_real": 2 * real["image"] - 1, "gaze_real": real["gaze"]}


def test_angular_error_worked_examples():
    pred = np.array([[1, 0, 0], [1, 0, 0], [2, 0, 0], [1, 0, 0], [0, 0, -1]], float)
    true = np.array([[0, 1, 0], [1, 1, 0], [1, 0, 0], [-1, 0, 0], [0, 1, -np.sqrt(3)]], float)
    np.testing.assert_allclose(angular_error_deg(pred, true), [90, 45, 0, 180, 30], atol=1e-6)
    with pytest.raises(ValueError, match="3 components"):
        angular_error_deg(np.zeros((2, 2)), np.zeros((2, 2)))


def test_within_counts_errors_up_to_d():
    assert within([1.0, 7.0, 7.5, 20.0], 7) == 50.0
    assert within(np.array([0.0]), 0) == 100.0


def test_euclidean_loss_is_half_the_mean_squared_norm():
    true = np.array([[0, 0, 1], [1, 0, 0]], np.float32)
    pred = np.array([[0, 0, 0], [1, 2, 0]], np.float32)
    assert float(euclidean_loss(true, pred)) == pytest.approx(0.5 * (1 + 4) / 2)


def test_paper_estimator_layers():
    assert PAPER_CONV_WIDTHS == (32, 32, 64, 80, 192) and PAPER_FC_WIDTHS == (9600, 1000)
    model = build_gaze_estimator((35, 55, 1), fc_widths=(8,))  # the paper's FC9600 is large
    convs = [layer for layer in model.layers if layer.name.startswith("conv")]
    assert [layer.filters for layer in convs] == list(PAPER_CONV_WIDTHS)
    assert all(layer.kernel_size == (3, 3) for layer in convs)
    assert model.get_layer("flatten").output.shape[1:] == (9600,)  # 5 x 10 x 192
    assert model.output.shape[1:] == (3,)


def test_tiny_estimator_beats_the_mean_gaze(eyes):
    model = train_estimator(eyes["x"], eyes["gaze"], steps=100, batch_size=32, seed=0, **TINY)
    errors = angular_error_deg(predict_gaze(model, eyes["x_test"]), eyes["gaze_test"])
    mean_gaze = np.broadcast_to(eyes["gaze"].mean(axis=0), eyes["gaze_test"].shape)
    baseline = angular_error_deg(mean_gaze, eyes["gaze_test"])
    assert errors.mean() < 0.6 * baseline.mean()
    assert within(errors, 7) > within(baseline, 7) + 20


def test_train_estimator_rejects_labels_with_pupils(eyes):
    labels = np.concatenate([eyes["gaze"], np.zeros((512, 2))], axis=1)
    with pytest.raises(ValueError, match=r"labels\[:, :3\]"):
        train_estimator(eyes["x"], labels, steps=1)


def test_evaluate_downstream_writes_table_curve_and_json(eyes, tmp_path):
    sets = {"synthetic": (eyes["x"][:64], eyes["gaze"][:64]),
            "refined": (eyes["x"][64:128], eyes["gaze"][64:128])}
    rows = evaluate_downstream(sets, eyes["x_real"], eyes["gaze_real"], tmp_path, steps=2,
                               batch_size=16, d=7, **TINY)
    assert [row["training_data"] for row in rows] == ["synthetic", "refined"]
    for row in rows:
        assert 0 <= row["within_d_pct"] <= 100 and row["mean_error_deg"] > 0
        assert row["n_train"] == 64 and row["d_deg"] == 7
    with open(tmp_path / "gaze_table.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["training_data"] for r in table] == ["synthetic", "refined"]
    assert float(table[1]["mean_error_deg"]) == pytest.approx(rows[1]["mean_error_deg"])
    assert "| synthetic" in (tmp_path / "gaze_table.md").read_text()
    results = json.loads((tmp_path / "gaze_results.json").read_text())
    assert results["n_test"] == 128 and len(results["rows"]) == 2
    curve = results["cumulative"]["pct_within"]["refined"]
    assert curve == sorted(curve) and curve[-1] <= 100
    with Image.open(tmp_path / "gaze_cumulative.png") as image:
        assert image.format == "PNG" and np.asarray(image).std() > 0


def test_pupil_shift_measures_moved_pupils(eyes):
    same = pupil_shift(eyes["x_test"][:32], eyes["x_test"][:32])
    assert same["mean_px"] == 0 and same["n"] == 32
    moved = np.roll(eyes["x_test"][:32], 2, axis=2)  # 2 px to the right
    shift = pupil_shift(eyes["x_test"][:32], moved)
    assert shift["mean_px"] == pytest.approx(2.0, abs=0.05) and shift["std_px"] < 0.1


def test_realism_classifier_tells_domains_apart_but_not_a_domain_from_itself(eyes):
    # 150 steps: the synthetic eyes vary in lighting like the real-like ones since issue 11
    apart = realism_accuracy(eyes["x_real"], eyes["x_test"], steps=150, seed=0,
                             jit_compile=False)
    assert apart["accuracy"] > 0.85 and apart["n_test"] == 64
    same = realism_accuracy(eyes["x_real"][:64], eyes["x_real"][64:], steps=60, seed=0,
                             jit_compile=False)
    assert 0.3 <= same["accuracy"] <= 0.7
