"""The report page: sections per mode from experiment and run folders, tables that match the
experiments' files, pictures copied and non-blank, and (with Chromium) every image drawn."""
import csv
import json
import re

import numpy as np
import pytest
from PIL import Image

from tfgan3d.eval import protocol, report, report_modes
from tfgan3d.tools import page_check


def _png(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[:24, :32]
    Image.fromarray(((x * 8 + y * value) % 256).astype(np.uint8)).save(path)
    return path


def _run(folder, mode, seed):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"mode": mode, "preset": "tiny",
                                                    "seed": seed}))
    with open(folder / "losses.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "time_s", "g_loss", "d_loss"])
        for step in range(1, 6):
            w.writerow([step * 10, step, 2.0 / step, 0.7])
    _png(folder / "samples" / "step_0000050.png", 3)
    return folder


@pytest.fixture
def folders(tmp_path):
    exp = protocol.Experiment(tmp_path / "domains", seeds=[0, 1])
    for seed in (0, 1):
        for arm, offset in (("train-virtual", 0.0), ("train-real-like", 0.1)):
            def fn(s, arm_dir, offset=offset):
                _run(arm_dir / "00001-pix2pix-tiny-run", "pix2pix", s)
                _png(arm_dir / "cells" / "grid.png", 5 + s)
                return {"abs_rel": 0.2 + offset + 0.01 * s}
            exp.run(seed, arm, fn)
    lower = protocol.Claim("virtual lower", lambda r: r["train-virtual"]["abs_rel"]
                           < r["train-real-like"]["abs_rel"])
    exp.write(title="fake 2x2", claims=[lower])
    loose = _run(tmp_path / "runs" / "00001-simgan-tiny", "simgan", 0)
    return tmp_path / "domains", loose.parent


def test_page_has_a_section_per_mode_with_the_experiments_numbers(folders, tmp_path):
    out = tmp_path / "page"
    page = report.build(folders, out).read_text()
    assert "id='pix2pix'" in page and "id='simgan'" in page and "id='sim2real'" not in page
    assert report.SEED_CLAIMS["simgan"]["numbers"] in page.replace("&#x27;", "'")
    saved = json.loads((folders[0] / "protocol.json").read_text())
    mean = saved["arms"]["train-real-like"]["abs_rel"]["mean"]  # 0.305 over seeds 0 and 1
    assert mean == pytest.approx(0.305)
    assert f"{mean:.4g} &plusmn;" in page
    assert "holds</b> (2 of 2 seeds" in page
    assert "python -m tfgan3d.eval domains" in page and "Environment" in page


def test_pictures_are_copied_non_blank_and_linked_relatively(folders, tmp_path):
    out = tmp_path / "page"
    page = report.build(folders, out).read_text()
    sources = re.findall(r"<img src='([^']+)'", page)
    assert sources and all(not s.startswith("/") for s in sources)
    for src in sources:
        image = np.asarray(Image.open(out / src))
        assert image.std() > 0, src                         # not blank
    # the experiment shows its first seed's evaluation grid, not its runs' training samples;
    # the loose simgan run has only its sample to show
    assert sum(s.endswith("-grid.png") for s in sources) == 2  # both arms of seed 0
    assert sum(s.endswith("-step_0000050.png") for s in sources) == 1
    assert sum(s.endswith("-curves.png") for s in sources) == 5  # 2 seeds x 2 arms + simgan
    for href in re.findall(r"<a href='([^'#][^']*)'", page):
        assert (out / href).exists(), href


def test_a_missing_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope: expected an experiment or run folder"):
        report.build([tmp_path / "nope"], tmp_path / "page")


@pytest.mark.skipif(page_check.find_chromium() is None,
                    reason="Chromium is not installed (apt-get install -y chromium)")
def test_the_browser_draws_every_image_and_shows_the_tables(folders, tmp_path):
    out = tmp_path / "page"
    report.build(folders, out)
    result = page_check.check_page(out / "index.html", screenshot=tmp_path / "shot.png",
                                   expect=["fake 2x2", "virtual lower", "train-real-like"])
    assert result["ok"], result
    assert result["images"] >= 4 and result["broken"] == []
    assert Image.open(tmp_path / "shot.png").size[0] == 1280
    # a broken image is reported, not missed
    (out / "index.html").write_text((out / "index.html").read_text().replace(
        "</body>", "<img src='assets/absent.png'></body>"))
    broken = page_check.check_page(out / "index.html")
    assert not broken["ok"] and broken["dangling"] == ["assets/absent.png"]
    assert "assets/absent.png" in broken["broken"]


def test_the_2x2_puts_each_metric_in_train_by_test_cells_and_shades_the_in_domain_ones():
    arms = {"train-virtual": {"abs_rel on virtual": {"mean": 0.1, "std": 0.01},
                              "abs_rel on real-like": {"mean": 0.4, "std": 0.02}},
            "train-real-like": {"abs_rel on virtual": {"mean": 0.3, "std": 0.03},
                                "abs_rel on real-like": {"mean": 0.2, "std": 0.04}}}
    table = report_modes.pix2pix_matrix({"seeds": [0, 1], "arms": arms,
                                         "metrics": ["abs_rel on virtual",
                                                     "abs_rel on real-like"]})
    rows = re.findall(r"<tr>(.*?)</tr>", table)
    virtual = [r for r in rows if "<th>train-virtual</th>" in r][0]
    real = [r for r in rows if "<th>train-real-like</th>" in r][0]
    assert re.findall(r"<td class='(\w*)'>([^<]*)</td>", virtual) == [
        ("own", "0.1 &plusmn; 0.01"), ("", "0.4 &plusmn; 0.02")]
    assert re.findall(r"<td class='(\w*)'>([^<]*)</td>", real) == [
        ("", "0.3 &plusmn; 0.03"), ("own", "0.2 &plusmn; 0.04")]


def test_one_seed_shows_the_mean_alone_and_missing_cells_read_na():
    assert report_modes.mean_std({"mean": 0.5, "std": 0.0}, 1) == "0.5"
    assert report_modes.mean_std({"mean": 0.5, "std": 0.0}, 2) == "0.5 &plusmn; 0"
    assert report_modes.mean_std(None, 3) == "n/a"


def test_a_sim2real_verdict_is_red_when_its_budget_check_fails():
    metrics = {"rows": [{"model": "m", "role": "sim2real", "abs_rel": 0.3}], "data": "d",
               "verdict": "Does it beat sim-only? Yes: better on 6 of 6 metrics",
               "budget_check": "Budget check: FAILS, the prior wins"}
    text = report_modes.sim2real_evaluation(metrics)
    assert "<li class='fails'><b>budget check fails</b>" in text
    assert "<li class='fails'><b>holds (but the budget check fails)</b>" in text
    assert "<td>0.3</td>" in text and "<td>0.752</td>" in text      # ours, the seed's
    ok = report_modes.sim2real_evaluation({**metrics, "budget_check": "Budget check: passes"})
    assert "<li class='holds'><b>holds</b>" in ok
    assert "shared latent" not in ok


def test_a_sim2real_evaluation_shows_where_the_encoders_put_the_domains():
    latent = {"sigma_sim": 0.86, "sigma_real": 0.048, "spread_sim": 0.129, "spread_real": 0.039,
              "mmd": 0.846, "mmd_within_sim": 0.0006}
    text = report_modes.sim2real_evaluation({"rows": [], "latent": latent})
    assert "E_R on real 0.048" in text and "MMD&sup2; of sim and real codes 0.846" in text
    assert "(two halves of sim: 0.0006)" in text
    # issue 28: E_R at the end of each stage, the linear probe, the multiple of the upper bound
    text = report_modes.sim2real_evaluation({
        "rows": [{"model": "twin", "role": "sim2real", "abs_rel": 0.3, "abs_rel_x_sup": 1.5}],
        "latent_by_stage": {"stage1": {**latent, "spread_real": 0.49},
                            "stage2": {**latent, "spread_real": 0.14}},
        "content_probe": {"abs_rel_E_R": 0.317, "abs_rel_E_S": 0.25, "abs_rel_prior": 0.28}})
    assert "spread 0.49 -&gt; 0.14" in text or "spread 0.49 -> 0.14" in text
    assert "abs_rel 0.317 through E_R, 0.25 through E_S, against the prior's 0.28" in text
    assert "<th>abs_rel_x_sup</th>" in text and "<td>1.5</td>" in text


def test_reproduce_shows_the_seeds_and_folder_the_experiment_holds(tmp_path):
    exp = protocol.Experiment(tmp_path / "fcr-seed3", seeds=[3])
    exp.run(3, "alphagan", lambda s, d: _run(d / "00001-fcr_alphagan-quick-alphagan",
                                              "fcr_alphagan", s) and {"iou_all": 0.3})
    exp.write(title="fcr seed 3")
    page = report.build([tmp_path / "fcr-seed3"], tmp_path / "page").read_text()
    line = re.search(r"Reproduce: <code>(.*?)</code>", page).group(1)
    assert line == (f"python -m tfgan3d.eval.fcr_findings {tmp_path / 'fcr-seed3'} --seeds 3 "
                    f"--preset quick")
    assert "over 1 seed<" in page and "1 seeds" not in page
    assert report.reproduce_command("python -m tfgan3d.eval domains --seeds 0 1 2 --preset quick",
                                    {"seeds": [4, 7]}, tmp_path) == \
        "python -m tfgan3d.eval domains --seeds 4 7 --preset quick"
