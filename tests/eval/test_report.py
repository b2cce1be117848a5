"""The report page: sections per mode from experiment and run folders, tables that match the
experiments' files, pictures copied and non-blank, and (with Chromium) every image drawn."""
import csv
import json
import re

import numpy as np
import pytest
from PIL import Image

from tfgan3d.eval import protocol, report
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
