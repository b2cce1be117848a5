"""Sim2real evaluation: metrics against worked examples, the comparison table and verdict, and
the program end to end with a stand-in model (the supervised bounds: tests/models/test_baselines.py)."""
import csv
import json
import math
import types

import numpy as np
import pytest
import tensorflow as tf

from tfgan3d.eval import sim2real_eval as se

GT = np.array([[1.0, 2.0], [4.0, 8.0]])
PRED = np.array([[1.0, 2.5], [3.0, 10.0]])
DEPTH_EXPECTED = {"abs_rel": 0.1875, "sq_rel": 0.21875, "rmse": 1.145644, "rmse_log": 0.213511,
                  "delta1": 0.25, "delta2": 1.0, "delta3": 1.0}
# Segmentation, by hand: pairs (gt, pred) over the 7 labelled pixels: (0,0) (0,1) (1,1) (1,1)
# (2,2) (2,0) (1,1). Class 0: TP 1, FP 1, FN 1 -> 1/3; class 1: TP 3, FP 1 -> 3/4; class 2:
# TP 1, FN 1 -> 1/2; class 3 absent. mIoU = (1/3 + 3/4 + 1/2) / 3 = 19/36; accuracy 5/7.
GT_LABELS = np.array([[0, 0, 1, 1], [2, 2, 255, 1]])
PRED_LABELS = np.array([[0, 1, 1, 1], [2, 0, 0, 1]])


def test_depth_worked_example_at_the_asked_resolution():
    result = se.evaluate_predictions(PRED[None], GT[None], None, None, None, 4, max_depth=80.0)
    for name, value in DEPTH_EXPECTED.items():
        assert result[name] == pytest.approx(value, abs=1e-6), name
    assert "miou" not in result
    # Ground truth at 4x4 (2x2 blocks), invalid pixels in one block corner that nearest
    # resizing skips: scored at resolution 2 it is the same example.
    gt_big = np.kron(GT, np.ones((2, 2)))
    valid = np.ones_like(gt_big, bool)
    valid[0, 0] = False
    result = se.evaluate_predictions(PRED[None, ..., None], gt_big[None, ..., None], valid[None],
                                     None, None, 4, max_depth=80.0, resolution=2)
    assert result["abs_rel"] == pytest.approx(0.1875) and result["rmse"] == pytest.approx(
        1.145644, abs=1e-6)
    result = se.evaluate_predictions(PRED[None], GT[None], None, None, None, 4, max_depth=5.0)
    assert result["n_images"] == 1 and result["abs_rel"] == pytest.approx(
        np.mean([0, 0.25, 0.25]))  # gt 8 >= max_depth is left out


def test_segmentation_worked_example_ids_and_logits():
    result = se.evaluate_predictions(None, None, None, PRED_LABELS[None], GT_LABELS[None], 4)
    assert result["pixel_accuracy"] == pytest.approx(5 / 7)
    assert result["miou"] == pytest.approx(19 / 36)
    np.testing.assert_allclose(result["iou_per_class"][:3], [1 / 3, 3 / 4, 1 / 2])
    assert np.isnan(result["iou_per_class"][3]) and result["classes_present"] == [0, 1, 2]
    assert "abs_rel" not in result
    logits = np.eye(4)[PRED_LABELS] * 5.0
    from_logits = se.evaluate_predictions(None, None, None, logits[None], GT_LABELS[None], 4)
    assert from_logits["miou"] == pytest.approx(19 / 36)
    np.testing.assert_array_equal(from_logits["confusion_matrix"], result["confusion_matrix"])


def rows(ours_abs_rel=0.2, ours_miou=0.5):
    return [{"model": "twin VAE", "role": "sim2real", "abs_rel": ours_abs_rel, "sq_rel": 1.0,
             "rmse": 2.0, "rmse_log": 0.3, "delta1": 0.7, "miou": ours_miou,
             "pixel_accuracy": 0.8},
            {"model": "sim only", "role": "sim-only", "abs_rel": 0.3, "sq_rel": 1.5,
             "rmse": 2.5, "rmse_log": 0.4, "delta1": 0.6, "miou": 0.4, "pixel_accuracy": 0.7},
            {"model": "real labels", "role": "real-supervised", "abs_rel": 0.1, "sq_rel": 0.5,
             "rmse": 1.0, "rmse_log": 0.2, "delta1": 0.9, "miou": 0.6, "pixel_accuracy": 0.9}]


def test_compare_writes_table_with_seed_numbers_and_verdict(tmp_path):
    result = se.compare(rows(), tmp_path, data="builtin:scenes-real")
    assert result["verdict"].startswith(
        "Does the twin VAE beat the sim-only baseline on builtin:scenes-real? Yes: better on "
        "6 of 6 metrics")
    assert "closes 50% of the abs_rel gap and 50% of the miou gap" in result["verdict"]
    with open(tmp_path / "comparison.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["source"] for r in table] == ["this run"] * 3 + ["seed Table 1"] * 3
    seed = {r["model"]: r for r in table[3:]}
    assert float(seed["Ours"]["abs_rel"]) == 0.752 and float(seed["Ours"]["sq_rel"]) == 20.7
    assert float(seed["Ours"]["miou"]) == 0.063 and float(seed["Ours"]["pixel_accuracy"]) == \
        pytest.approx(0.549)
    assert float(seed["Jaipuria, et al."]["rmse"]) == 4.05 and seed["Jaipuria, et al."][
        "miou"] == ""
    assert float(seed["Zhou et al."]["pixel_accuracy"]) == pytest.approx(0.862)
    text = (tmp_path / "comparison.md").read_text()
    assert result["verdict"] in text and "86.2%" in text and "log RMSE" in text
    assert "0.148" in text and "Table 1" in text
    assert json.loads((tmp_path / "comparison.json").read_text())["verdict"] == result["verdict"]
    partly = se.verdict(rows(ours_abs_rel=0.35))
    assert "Partly: better on 5 of 6" in partly and "abs_rel 0.35 vs 0.3" in partly
    assert " No: better on 0 of 2" in se.verdict(
        [{"role": "sim2real", "miou": 0.1, "pixel_accuracy": 0.5},
         {"role": "sim-only", "miou": 0.2, "pixel_accuracy": 0.6}])
    assert "Cannot tell" in se.verdict(rows()[:1])
    weak_upper = rows()
    weak_upper[2]["abs_rel"] = 0.4
    text = se.verdict(weak_upper)
    assert "closes 50% of the miou gap." in text and "abs_rel gap" not in text
    assert "upper bound does not beat the sim-only baseline on abs_rel" in text


def test_program_end_to_end_with_a_stand_in_model(tmp_path, monkeypatch, capsys):
    """load_trained is replaced: the stand-in predicts 3 m everywhere and class 1 (its sim path
    E_S -> D: 5 m and class 3). The bounds' training (tests/models/test_baselines.py) is
    replaced by one that checks its data and predicts class 0."""
    import tfgan3d.export

    seen = {}

    def train_baseline(train_ds, *, steps, num_classes, name, **kwargs):
        batch = next(iter(train_ds))
        seen[name] = (steps, num_classes, sorted(batch), int(tf.reduce_min(batch["labels"])))

        def predict_fn(image):
            shape = tf.shape(image)[:3]
            return tf.fill(tf.concat([shape, [1]], 0), 2.0), tf.one_hot(tf.zeros(shape,
                                                                                  tf.int32), 6)
        return predict_fn, {"loss": [1.0]}

    monkeypatch.setattr(se, "train_supervised_baseline", train_baseline)

    def train_twin(config_, train_ds, steps):
        batch = next(iter(train_ds))
        seen["sim_only_twin"] = (steps, config_ is config, sorted(batch))

        def predict_fn(image):
            shape = tf.shape(image)[:3]
            return tf.fill(tf.concat([shape, [1]], 0), 4.0), tf.one_hot(
                tf.fill(shape, 2), 6)
        return predict_fn, {"loss": [1.0]}

    monkeypatch.setattr(se, "train_twin_sim_only", train_twin)

    config = types.SimpleNamespace(image_size=16, batch_size=2, n_train=3, n_test=2, seed=0,
                                   max_depth=10.0, steps=None, stage1_steps=5, stage2_steps=3)

    def predict(model, image, config):
        shape = tf.shape(image)[:3]
        depth = tf.fill(tf.concat([shape, [1]], 0), 3.0)
        logits = tf.one_hot(tf.ones(shape, tf.int32), 6)
        return {"depth": depth, "seg_logits": logits}

    mode = types.SimpleNamespace(predict=predict)
    def constant(value, classes=False):
        def decoder(z, training=False):
            shape = tf.shape(z)[:3]
            return (tf.one_hot(tf.fill(shape, value), 6) if classes
                    else tf.fill(tf.concat([shape, [1]], 0), float(value)))
        return decoder

    # Encoders as the twin VAE's: image -> (z_mean, z_log_var). E_S: the image itself, sigma
    # 1; E_R: the image plus 1, sigma 0.5 (the latent statistics in metrics.json).
    model = types.SimpleNamespace(translate=lambda images, to: -images,
                                  encoder_sim=lambda image, training=False: (
                                      image, tf.zeros_like(image)),
                                  encoder_real=lambda image, training=False: (
                                      image + 1.0, tf.fill(tf.shape(image), math.log(0.25))),
                                  code=lambda encoder, image: encoder(image)[0],
                                  depth_decoder=constant(5.0), seg_decoder=constant(3, True),
                                  depth_metres=lambda depth: depth)
    monkeypatch.setattr(tfgan3d.export, "load_trained", lambda run, checkpoint=None:
                        (config, model, mode))
    out = tmp_path / "eval"
    result = se.main([str(tmp_path / "run"), "--resolution", "8", "--baseline-steps", "2",
                      "--baseline-ngf", "4", "--out", str(out), "--grid-rows", "2"])
    assert [r["role"] for r in result["rows"]] == ["sim2real", "sim-only-twin", "sim-only",
                                                   "real-supervised", "prior",
                                                   "sim2real-via-E_S"]
    # issue 28's rows and columns: the real images read through E_S (5 m, class 3), each
    # abs_rel as a multiple of the real-supervised row's, the spread of predicted depth across
    # images (0 for these constant models), the linear probe
    via_es, ours_row = result["rows"][5], result["rows"][0]
    gt_real = np.load(out / "gt_labels.npy")
    assert via_es["pixel_accuracy"] == pytest.approx(np.mean(gt_real[gt_real != 255] == 3))
    assert via_es["abs_rel"] != ours_row["abs_rel"]
    for row in result["rows"]:
        assert row["abs_rel_x_sup"] == pytest.approx(row["abs_rel"]
                                                     / result["rows"][3]["abs_rel"])
        assert row["depth_std"] == pytest.approx(0.0, abs=1e-6)
    probe = result["content_probe"]
    assert set(probe) >= {"abs_rel_E_R", "abs_rel_E_S", "abs_rel_prior", "alpha"}
    assert (probe["train"], probe["test"], probe["size"]) == (3, 2, 16)
    assert "Content alignment, linear probe" in (out / "comparison.md").read_text()
    keys = ["depth", "depth_valid", "image", "labels"]
    assert seen == {"sim_only": (2, 6, keys, 0), "real_supervised": (2, 6, keys, 0),
                    "sim_only_twin": (2, True, keys)}
    gt_labels = np.load(out / "gt_labels.npy")
    assert result["rows"][1]["pixel_accuracy"] == pytest.approx(
        np.mean(gt_labels[gt_labels != 255] == 2))  # the twin sim-only row is its own model
    ours = result["rows"][0]
    assert ours["pixel_accuracy"] == pytest.approx(
        np.mean(np.load(out / "gt_labels.npy")[np.load(out / "gt_labels.npy") != 255] == 1))
    assert np.load(out / "pred_depth.npy").shape == (2, 8, 8)
    assert np.allclose(np.load(out / "pred_depth.npy"), 3.0)
    assert result["rows"][2]["pixel_accuracy"] != ours["pixel_accuracy"]
    assert result["rows"][2]["abs_rel"] != ours["abs_rel"]
    for name in ("comparison.csv", "comparison.md", "metrics.json", "grid.png",
                 "translations.png"):
        assert (out / name).stat().st_size > 0, name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["resolution"] == [8, 8] and len(metrics["rows"]) == 6
    assert metrics["budget_check"].startswith("Budget check:")
    assert metrics["budget_check"] in (out / "comparison.md").read_text()
    assert metrics["verdict"].startswith(se.QUESTION_TWIN.replace("real-like data",
                                                                  "builtin:rooms-real"))
    assert se.QUESTION.replace("real-like data", "builtin:rooms-real") in metrics["verdict"]
    md = (out / "comparison.md").read_text()
    assert "Shared by every trained row" in md and "2 supervised steps each" in md
    assert "5 unlabelled stage-1 steps, then 3 stage-2 steps" in md
    # The same models on the sim test split, beside (not in) the real-like rows.
    sim = metrics["sim_test"]
    assert sim["data"] == "builtin:rooms-sim" and sim["split"] == "test"
    assert [r["role"] for r in sim["rows"]] == [r["role"] for r in result["rows"]
                                                if r["role"] not in se.DIAGNOSTIC_ROLES]
    sim_ds, _ = se.sim2real_data.make_eval_dataset("builtin:rooms-sim", "test", config=config,
                                                   role="sim", gt_size=8)
    sim_labels = np.concatenate([b["labels"].numpy() for b in sim_ds])
    sim_depth = np.concatenate([b["depth"].numpy()[..., 0] for b in sim_ds])
    sim_valid = np.concatenate([b["depth_valid"].numpy()[..., 0] for b in sim_ds]) > 0.5
    twin = sim["rows"][0]     # through E_S -> D_depth, D_seg: 5 m and class 3, not 3 m, class 1
    assert "E_S" in twin["model"]
    assert twin["pixel_accuracy"] == pytest.approx(np.mean(sim_labels[sim_labels != 255] == 3))
    per_image = [np.mean(np.abs(5.0 - d[m]) / d[m]) for d, m in
                 zip(sim_depth, sim_valid & (sim_depth > 1e-3) & (sim_depth < 10.0))]
    assert twin["abs_rel"] == pytest.approx(np.mean(per_image), rel=1e-4)   # image by image
    assert sim["rows"][1]["pixel_accuracy"] == pytest.approx(   # sim-only-twin: class 2
        np.mean(sim_labels[sim_labels != 255] == 2))
    assert sim["rows"][4]["abs_rel"] != result["rows"][4]["abs_rel"]   # the prior, other images
    assert [(r["role"], r["abs_rel"], r["miou"]) for r in result["sim_test"]["rows"]] == \
        [(r["role"], r["abs_rel"], r["miou"]) for r in sim["rows"]]
    assert sim["prior_check"].startswith("Prior check on the sim test set (builtin:rooms-sim)")
    assert "sim2real " in sim["prior_check"] and "real-supervised " in sim["prior_check"]
    assert "# The same models on the sim test set (builtin:rooms-sim)" in md
    assert md.index("Table 1") < md.index("on the sim test set") and sim["prior_check"] in md
    assert (out / "grid_sim.png").stat().st_size > 0
    assert [r["miou"] for r in json.loads((out / "comparison.json").read_text())[
        "sim_test"]["rows"]] == [r["miou"] for r in sim["rows"]]
    latent = metrics["latent"]          # E_S on the 2 sim test images, E_R on the 2 real ones
    assert (latent["images_sim"], latent["images_real"], latent["code_size"]) == (2, 2, 16 * 16 * 3)
    assert latent["sigma_sim"] == pytest.approx(1.0) and latent["sigma_real"] == pytest.approx(0.5)
    assert latent["mmd_within_sim"] is None        # too few sim images for two halves
    assert result["latent"] == pytest.approx(latent)
    printed = capsys.readouterr().out
    assert "sim2real" in printed and "latent: sigma sim 1.000 real 0.500" in printed


def test_prior_is_the_per_pixel_mean_depth_and_majority_class():
    depth = np.array([[[1.0, 2.0], [3.0, 4.0]], [[3.0, 6.0], [5.0, 0.0]]])[..., None]
    valid = (depth > 0).astype(np.float32)
    labels = np.array([[[0, 1], [2, 255]], [[0, 2], [2, 255]]])
    third = {"depth": depth[:1], "depth_valid": valid[:1], "labels": np.array([[[1, 2], [2, 255]]])}
    ds = [dict(depth=tf.constant(depth, tf.float32), depth_valid=tf.constant(valid),
               labels=tf.constant(labels)),
          {k: tf.constant(v, tf.float32 if k != "labels" else tf.int32) for k, v in third.items()}]
    predict = se.fit_prior(ds, num_classes=3)
    d, logits = predict(tf.zeros((2, 2, 2, 3)))
    # per pixel over the three maps: (1+3+1)/3, (2+6+2)/3, (3+5+3)/3, (4+4)/2 (one invalid)
    np.testing.assert_allclose(d.numpy()[0, ..., 0], [[5 / 3, 10 / 3], [11 / 3, 4.0]], rtol=1e-6)
    # majority: 0 (0, 0, 1), 2 (1, 2, 2), 2, and the never-labelled pixel takes the overall
    # most frequent class (2: five of nine labelled pixels)
    np.testing.assert_array_equal(np.argmax(logits.numpy(), -1)[1], [[0, 2], [2, 2]])
    big_d, big_logits = predict(tf.zeros((1, 4, 6, 3)))
    assert big_d.shape == (1, 4, 6, 1) and big_logits.shape == (1, 4, 6, 3)


def test_budget_check_says_when_the_table_cannot_answer():
    table = rows() + [{"model": "prior", "role": "prior", "abs_rel": 0.5, "miou": 0.2}]
    assert se.budget_check(table).startswith("Budget check: passes (8 comparisons")  # 2 keys x (bound + 3 models vs prior)
    weak = [dict(r) for r in table]
    weak[2]["abs_rel"] = 0.35            # upper bound worse than sim-only
    weak[0]["miou"] = 0.1                # the twin VAE below the prior
    text = se.budget_check(weak)
    assert text.startswith("Budget check: FAILS")
    assert "upper bound does not beat sim-only on abs_rel (0.35 vs 0.3)" in text
    assert "sim2real does not beat the prior on miou (0.1 vs 0.2)" in text
    assert "cannot tell" in se.budget_check(rows()[:1])


def test_sim_only_twin_trains_the_twin_vaes_own_networks_and_lowers_its_loss():
    """The same-networks baseline: E_S -> z -> D_depth, D_seg of a tiny twin VAE spec, trained on
    one fixed sim batch; its loss falls, only those three networks change, and prediction is
    D_depth / D_seg of E_S's z_mean (depth in metres)."""
    import keras

    from tfgan3d.models.baselines import train_sim_only_twin
    from tfgan3d.networks.sim2real import Sim2RealNetSpec, build_sim2real_networks

    keras.utils.set_random_seed(0)
    spec = Sim2RealNetSpec.scaled(image_size=16, levels=2, width_mult=0.125, res_blocks=0,
                                  residual=True, d=2, num_classes=3)
    nets = build_sim2real_networks(spec)
    rng = np.random.default_rng(0)
    batch = {"image": tf.constant(rng.uniform(-1, 1, (2, 16, 16, 3)), tf.float32),
             "depth": tf.constant(rng.uniform(1, 9, (2, 16, 16, 1)), tf.float32),
             "depth_valid": tf.ones((2, 16, 16, 1)),
             "labels": tf.constant(rng.integers(0, 3, (2, 16, 16)), tf.int32)}
    ds = tf.data.Dataset.from_tensors(batch).repeat()
    untouched = [v.numpy().copy() for v in nets.decoder_real.trainable_variables
                 if not v.path.startswith("shared")]
    before = [v.numpy().copy() for v in nets.depth_decoder.trainable_variables]
    predict, history = train_sim_only_twin(ds, nets, keras.optimizers.Adam(1e-2), steps=20,
                                           max_depth=10.0, log_every=5)
    assert len(history["loss"]) == 4 and history["loss"][-1] < history["loss"][0]
    assert history["depth_loss"][-1] < history["depth_loss"][0]
    assert any(not np.allclose(a, v.numpy()) for a, v in
               zip(before, nets.depth_decoder.trainable_variables))
    for a, v in zip(untouched, [v for v in nets.decoder_real.trainable_variables
                                if not v.path.startswith("shared")]):
        np.testing.assert_array_equal(a, v.numpy())
    depth, logits = predict(batch["image"])
    z = nets.encoder_sim(batch["image"], training=False)[0]
    np.testing.assert_allclose(depth.numpy(), (nets.depth_decoder(z).numpy() + 1) * 5.0,
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logits.numpy(), nets.seg_decoder(z).numpy(), rtol=1e-5,
                               atol=1e-5)
