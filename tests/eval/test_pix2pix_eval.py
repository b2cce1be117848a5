"""The pix2pix evaluation program and the 2x2 domain experiment on the tiny preset."""
import json

import numpy as np
import pytest

from tfgan3d.eval import pix2pix_domains, pix2pix_eval


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    out = tmp_path_factory.mktemp("domains")
    return out, pix2pix_domains.run_experiment(out, preset="tiny", extra={"steps": 10})


def test_domain_experiment_writes_the_2x2_table(experiment):
    out, result = experiment
    assert set(result["cells"]) == {"virtual-on-virtual", "virtual-on-real-like",
                                    "real-like-on-virtual", "real-like-on-real-like"}
    text = (out / "domains.md").read_text()
    assert "test virtual" in text and "test real-like" in text and "in-domain better" in text
    rows = (out / "domains.csv").read_text().splitlines()
    assert len(rows) == 1 + 7 * 2                   # header + 7 metrics x 2 training domains
    for cell in result["cells"]:
        assert (out / "cells" / cell / "grid.png").stat().st_size > 1000
    # The verdict is computed from the cells, not typed in.
    v = result["verdict"]["test virtual"]
    assert v["in_domain_abs_rel"] == result["cells"]["virtual-on-virtual"]["abs_rel"]
    assert v["in_domain_better"] == (
        v["in_domain_abs_rel"] < v["cross_domain_abs_rel"]
        and v["in_domain_delta1"] > v["cross_domain_delta1"])


def test_eval_outputs_agree_with_the_metric_code(experiment):
    out, result = experiment
    cell = out / "cells" / "virtual-on-real-like"
    pred, gt, valid = (np.load(cell / f) for f in ("pred_depth.npy", "gt_depth.npy",
                                                    "valid.npy"))
    assert pred.shape == gt.shape == valid.shape and pred.shape[1:] == (32, 32)
    assert pred.shape[0] == 4                       # the tiny preset's test scenes
    assert not valid.all()                          # real-like sensor depth has holes
    # Recompute abs_rel by hand from the saved arrays: per image over valid pixels, then mean.
    per_image = [np.mean(np.abs(g[m] - p[m]) / g[m]) for p, g, m in zip(pred, gt, valid & (gt > 1e-3))]
    metrics = json.loads((cell / "metrics.json").read_text())
    assert metrics["abs_rel"] == pytest.approx(np.mean(per_image), rel=1e-5)
    assert len((cell / "per_image.csv").read_text().splitlines()) == 1 + 4


def test_median_scaling_option(experiment):
    out, result = experiment
    run = result["runs"]["virtual"]
    summary = pix2pix_eval.evaluate_run(run, out=out / "scaled", median_scaling=True)
    assert "median_scale_mean" in summary and summary["data"] == "builtin:scenes-virtual"
