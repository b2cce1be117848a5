"""The pix2pix evaluation program and the 2x2 domain experiment on the tiny preset."""
import json
from pathlib import Path

import numpy as np
import pytest

from tfgan3d.eval import pix2pix_domains, pix2pix_eval


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    out = tmp_path_factory.mktemp("domains")
    return out, pix2pix_domains.run_experiment(out, preset="tiny", extra={"steps": 10},
                                               seeds=(0, 1))


def test_domain_experiment_writes_the_2x2_table_per_seed_and_mean_std(experiment):
    out, result = experiment
    assert result["seeds"] == [0, 1]
    for seed in (0, 1):
        cells = result["per_seed"][seed]["cells"]
        assert set(cells) == {"virtual-on-virtual", "virtual-on-real-like",
                              "real-like-on-virtual", "real-like-on-real-like"}
        for cell in cells:
            train = cell.split("-on-")[0]
            assert (out / f"seed-{seed}" / f"train-{train}" / "cells" / cell / "grid.png"
                    ).stat().st_size > 1000
    text = (out / "domains.md").read_text()
    assert "test virtual" in text and "test real-like" in text and "### seed 1" in text
    rows = (out / "domains.csv").read_text().splitlines()
    assert len(rows) == 1 + 7 * 2                   # header + 7 metrics x 2 training domains
    # mean +- std over the two seeds, from the per-seed cells
    a = [result["per_seed"][s]["cells"]["virtual-on-real-like"]["abs_rel"] for s in (0, 1)]
    stat = result["mean_std"]["train-virtual"]["abs_rel on real-like"]
    assert stat["mean"] == pytest.approx(np.mean(a))
    assert stat["std"] == pytest.approx(np.std(a, ddof=1))
    assert f"{np.mean(a):.4f} +- {np.std(a, ddof=1):.4f}" in text
    assert len((out / "per_seed.csv").read_text().splitlines()) == 1 + 2 * 2


def test_the_verdict_counts_the_seeds_where_in_domain_wins(experiment):
    out, result = experiment
    for test, other in (("virtual", "real-like"), ("real-like", "virtual")):
        holds = []
        for seed in (0, 1):
            cells = result["per_seed"][seed]["cells"]
            inside, cross = cells[f"{test}-on-{test}"], cells[f"{other}-on-{test}"]
            holds.append(inside["abs_rel"] < cross["abs_rel"]
                         and inside["delta1"] > cross["delta1"])
        v = result["verdict"][f"test {test}"]
        assert v["holds_in"] == sum(holds) and v["of"] == 2
        assert v["in_domain_better"] == all(holds)
        assert f"holds in {sum(holds)} of 2 seeds" in (out / "domains.md").read_text()


def test_reuse_picks_up_finished_arms(experiment, monkeypatch):
    out, result = experiment
    from tfgan3d.trainers import runner

    monkeypatch.setattr(runner, "run_mode", lambda *a, **k: pytest.fail("trained again"))
    again = pix2pix_domains.run_experiment(out, preset="tiny", extra={"steps": 10},
                                           seeds=(0, 1), reuse=True)
    assert again["per_seed"][1]["cells"] == result["per_seed"][1]["cells"]


def test_an_interrupted_arm_resumes_its_run_instead_of_training_anew(experiment, monkeypatch):
    out, result = experiment
    from tfgan3d.trainers import runner

    arm = out / "seed-1" / "train-virtual"
    done = arm / "result.json"
    saved = done.read_text()
    done.unlink()                                   # as if killed after training, before eval
    calls, real_run_mode = [], runner.run_mode

    def recording(mode, options):
        calls.append(dict(options))
        return real_run_mode(mode, options)

    monkeypatch.setattr(runner, "run_mode", recording)
    try:
        again = pix2pix_domains.run_experiment(out, preset="tiny", extra={"steps": 10},
                                               seeds=(0, 1), reuse=True)
    finally:
        done.write_text(saved)
    assert [c.get("resume") for c in calls] == [result["per_seed"][1]["runs"]["virtual"]]
    assert sorted(p.name for p in arm.glob("*-pix2pix-*")) == [
        Path(result["per_seed"][1]["runs"]["virtual"]).name]  # no second run folder
    for cell, metrics in result["per_seed"][1]["cells"].items():  # the same checkpoint scored
        assert again["per_seed"][1]["cells"][cell] == pytest.approx(metrics), cell


def test_eval_outputs_agree_with_the_metric_code(experiment):
    out, result = experiment
    cell = out / "seed-0" / "train-virtual" / "cells" / "virtual-on-real-like"
    pred, gt, valid = (np.load(cell / f) for f in ("pred_depth.npy", "gt_depth.npy",
                                                    "valid.npy"))
    assert pred.shape == gt.shape == valid.shape and pred.shape[1:] == (32, 32)
    assert pred.shape[0] == 4                       # the tiny preset's test scenes
    assert not valid.all()                          # real-like sensor depth has holes
    # Recompute abs_rel by hand from the saved arrays: per image over valid pixels, then mean.
    per_image = [np.mean(np.abs(g[m] - p[m]) / g[m])
                 for p, g, m in zip(pred, gt, valid & (gt > 1e-3))]
    metrics = json.loads((cell / "metrics.json").read_text())
    assert metrics["abs_rel"] == pytest.approx(np.mean(per_image), rel=1e-5)
    assert metrics["abs_rel"] == pytest.approx(
        result["per_seed"][0]["cells"]["virtual-on-real-like"]["abs_rel"])
    assert len((cell / "per_image.csv").read_text().splitlines()) == 1 + 4


def test_median_scaling_option(experiment):
    out, result = experiment
    run = result["per_seed"][0]["runs"]["virtual"]
    summary = pix2pix_eval.evaluate_run(run, out=out / "scaled", median_scaling=True)
    assert "median_scale_mean" in summary and summary["data"] == "builtin:scenes-virtual"
