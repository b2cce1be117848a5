"""eval/simgan_eval.py: the section 3.1 evaluation program of a SimGAN run."""
import json
import types

import numpy as np
import pytest
from PIL import Image

from tfgan3d.data.eyes import render_split
from tfgan3d.eval import simgan_eval

TINY = {"conv_widths": (4, 8, 8, 16, 16), "fc_widths": (16,), "jit_compile": False}


def identity(images, training=False):
    return images


@pytest.fixture(scope="module")
def eyes():
    train, test = render_split("synthetic-train", 48), render_split("real-test", 24)
    real = render_split("real-train", 24)
    return {"x": 2 * train["image"] - 1, "gaze": train["gaze"],
            "x_test": 2 * test["image"] - 1, "gaze_test": test["gaze"],
            "real": 2 * real["image"] - 1}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A tiny simgan run folder as the runner leaves it: config.json, a checkpoint of freshly
    built networks (no training: load_trained only needs the two) and per-step samples."""
    import tensorflow as tf

    from tfgan3d import config as config_lib
    from tfgan3d import registry

    simgan = registry.get_mode("simgan")

    path = tmp_path_factory.mktemp("sg") / "00001-simgan-tiny"
    config = config_lib.resolve_config(simgan.config, "simgan",
                                       {"preset": "tiny", "image_size": (35, 55)})
    model = simgan.build_model(config)
    (path / "checkpoints").mkdir(parents=True)
    tf.train.Checkpoint(model=model).save(str(path / "checkpoints" / "ckpt"))
    (path / "config.json").write_text(json.dumps(config.to_dict()))
    (path / "samples").mkdir()
    for step in (12, 24):
        Image.fromarray(np.full((72, 169), step * 5, np.uint8)).save(
            path / "samples" / f"step_{step:07d}.png")
    return path


def test_refine_images_batches_and_verdict():
    x = np.random.default_rng(0).uniform(-1, 1, (10, 5, 7, 1)).astype(np.float32)
    np.testing.assert_allclose(simgan_eval.refine_images(lambda b, training: -b, x, 3), -x)
    v = simgan_eval.verdict([{"training_data": "synthetic", "mean_error_deg": 12.0},
                             {"training_data": "refined", "mean_error_deg": 9.5}])
    assert v["refined_beats_synthetic"] is True
    assert v["line"] == ("refined-trained estimator beats synthetic-trained: True "
                         "(mean error 9.50 vs 12.00 deg)")


def test_trained_refiner_loads_and_refines(run_dir):
    from tfgan3d.export import load_trained

    config, model, _ = load_trained(run_dir)
    synthetic, gaze, test_images, test_gaze, real = simgan_eval.load_run_data(
        config, n_train=6, n_test=5)
    assert synthetic.shape == (6, 35, 55, 1) and gaze.shape == (6, 3)
    assert test_images.shape == (5, 35, 55, 1) and test_gaze.shape == (5, 3)
    assert real.shape == (8, 35, 55, 1)
    refined = simgan_eval.refine_images(model.refiner, synthetic, batch_size=4)
    assert refined.shape == synthetic.shape and np.all(np.isfinite(refined))


def test_evaluate_run_with_identity_refiner(run_dir, tmp_path, monkeypatch):
    """The whole program on the tiny run's config and data, the refiner replaced by the
    identity: zero pupil shift, identical estimators, and a summary that agrees with the
    files."""
    from tfgan3d import export

    config, _, module = export.load_trained(run_dir)
    fake = types.SimpleNamespace(refiner=identity)
    monkeypatch.setattr(export, "load_trained", lambda run, checkpoint=None: (config, fake,
                                                                              module))
    out = tmp_path / "eval"
    summary = simgan_eval.evaluate_run(run_dir, n_train=32, n_test=16, estimator_steps=2,
                                       batch_size=16, realism_steps=2, out=out, **TINY)
    files = ("gaze_table.csv", "gaze_table.md", "gaze_cumulative.png", "gaze_results.json",
             "refined_grid.png", "samples_over_steps.png", "summary.json", "summary.md")
    for name in files:
        assert (out / name).is_file(), name
    on_disk = json.loads((out / "summary.json").read_text())
    md = (out / "summary.md").read_text()
    # label preservation of the identity
    assert on_disk["pupil_shift"]["mean_px"] == 0.0 and on_disk["pupil_shift"]["std_px"] == 0.0
    assert on_disk["pupil_shift"]["n"] == 32 and "1.1 +- 0.8 px" in md
    # the verdict line is computed from gaze_results.json's numbers
    results = json.loads((out / "gaze_results.json").read_text())
    errors = {r["training_data"]: r["mean_error_deg"] for r in results["rows"]}
    assert set(errors) == {"synthetic", "refined"}
    assert errors["refined"] == pytest.approx(errors["synthetic"])  # same images, seed, steps
    assert results["config"]["fc_widths"] == [16] and results["n_test"] == 16
    beats = errors["refined"] < errors["synthetic"]
    line = (f"refined-trained estimator beats synthetic-trained: {beats} (mean error "
            f"{errors['refined']:.2f} vs {errors['synthetic']:.2f} deg)")
    assert on_disk["verdict"]["line"] == summary["verdict"]["line"] == line
    assert line in md
    # the visual Turing test and its real-vs-synthetic reference
    for key in ("real_vs_refined", "real_vs_synthetic"):
        assert 0.0 <= on_disk["realism"][key]["accuracy"] <= 1.0
        assert f"{on_disk['realism'][key]['accuracy']:.3f}" in md
    assert on_disk["sample_steps"] == [12, 24]


def test_cli_passes_options(monkeypatch, tmp_path):
    seen = {}

    def fake(run, **kwargs):
        seen.update(kwargs, run=run)
        return {"gaze": {"rows": [], "n_test": 0, "d_deg": 7.0, "steps": 1, "batch_size": 1,
                         "seed": 0, "conv_widths": [], "fc_widths": [], "paper_fc_widths": False},
                "verdict": {"line": "x"},
                "pupil_shift": {"mean_px": 0, "std_px": 0, "n": 0, "image_width": 55,
                                "paper_mean_px": 1.1, "paper_std_px": 0.8},
                "realism": {"steps": 1, "real_vs_refined": {"accuracy": 0.5, "n_test": 1},
                            "real_vs_synthetic": {"accuracy": 0.5, "n_test": 1}}}

    monkeypatch.setattr(simgan_eval, "evaluate_run", fake)
    simgan_eval.main(["RUN", "--n-train", "10", "--fc-widths", "9600", "1000",
                      "--estimator-steps", "3", "--out", str(tmp_path)])
    assert seen["run"] == "RUN" and seen["n_train"] == 10 and seen["estimator_steps"] == 3
    assert seen["fc_widths"] == (9600, 1000)
    from tfgan3d.eval.__main__ import PROGRAMS
    assert PROGRAMS["simgan"] == "tfgan3d.eval.simgan_eval"
