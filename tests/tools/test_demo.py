"""The demo on tiny runs of every mode, built once for the module: every stage runs as a child
process whose output goes to its log, the page has each system's section with the numbers of
the runs' own metrics files and every picture drawn, a second call runs nothing, MODES selects
the systems, and the browser finds every image and link."""
import html
import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tfgan3d.tools import demo, page_check

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "demo"
    stream = io.StringIO()
    result = demo.run_demo(out, preset="tiny", stream=stream)
    return out, result, stream.getvalue()


def _no_child(argv, *args, **kwargs):
    raise AssertionError(f"a finished stage ran again: {argv}")


def _page(out):
    return (out / "index.html").read_text()


def test_every_stage_ran_as_a_child_with_its_output_in_a_log(tiny_demo):
    out, result, shown = tiny_demo
    assert [s["state"] for s in result["stages"]] == ["done"] * len(result["stages"]), shown
    assert {s["mode"] for s in result["stages"]} == set(demo.MODES)
    for stage in result["stages"]:
        assert (out / stage["result"]).exists(), stage
    logs = sorted((out / "logs").glob("*.log"))
    assert len(logs) == len(result["stages"])
    assert "verdicts" in (out / "logs" / "pix2pix-2x2.log").read_text()   # the child's print
    # the terminal shows one line per stage and the summary, none of the children's output
    assert "verdicts" not in shown and "oneDNN" not in shown and "absl" not in shown
    assert shown.count("] 100 %") >= len(result["stages"])
    assert f"page: {out / 'index.html'}" in shown
    assert json.loads((out / "demo.json").read_text())["stages"] == result["stages"]


def test_the_page_has_every_system_with_the_numbers_of_its_metrics_files(tiny_demo):
    out, _, _ = tiny_demo
    page = _page(out)
    for mode in demo.MODES:
        assert f"<h2 id='{mode}'>" in page, mode
    p2p = json.loads((out / "pix2pix" / "protocol.json").read_text())
    cell = p2p["arms"]["train-real-like"]["abs_rel on real-like"]["mean"]
    assert f"<td class='own'>{cell:.4g}</td>" in page         # the 2x2, in-domain cell
    simgan = json.loads((out / "simgan" / "protocol.json").read_text())
    assert f"<td>{simgan['arms']['refined']['mean_error']['mean']:.4g}</td>" in page
    assert "<td>69.4</td>" in page                            # the seed's Table 2 beside it
    s2r = json.loads((out / "sim2real" / "seed-0" / "eval" / "metrics.json").read_text())
    for row in s2r["rows"]:
        # names are HTML-escaped on the page ("the twin VAE's" -> "the twin VAE&#x27;s")
        assert f"<td>{row['abs_rel']:.4g}</td>" in page and html.escape(row["model"]) in page
    assert "<td>0.752</td>" in page                           # the seed's Table 1 row
    fcr = json.loads((out / "fcr_alphagan" / "protocol.json").read_text())
    assert f"<td>{fcr['arms']['alphagan']['iou_all']['mean']:.4g}</td>" in page
    for protocol in (p2p, simgan, fcr):                       # each verdict, as computed
        for v in protocol["verdicts"]:
            word = "holds" if v["holds"] else "does not hold"
            assert f"<b>{word}</b> ({v['holds_in']} of {v['of']} seeds" in page
    # the command that reproduces each experiment is the one the demo ran
    assert f"python -m tfgan3d.eval domains --preset tiny --out {out / 'pix2pix'}" in page
    assert "Environment" in page and "demo stages" in page


def test_the_pictures_people_look_at_are_there_and_not_blank(tiny_demo):
    out, _, _ = tiny_demo
    page = _page(out)
    sources = re.findall(r"<img src='([^']+)'", page)
    assert all(not s.startswith("/") for s in sources)
    for src in sources:
        assert np.asarray(Image.open(out / src).convert("L")).std() > 0, src
    names = " ".join(sources)
    for wanted in ("grid.png", "refined_grid.png", "gaze_cumulative.png", "translations.png",
                   "renders.png", ".gif", "noise_heatmap.png", "curves.png"):
        assert wanted in names, wanted
    assert names.count("-curves.png") >= 5   # pix2pix x 2, simgan, sim2real, fcr
    for href in re.findall(r"<a href='([^'#][^']*)'", page):
        assert (out / href).exists(), href


def test_a_second_call_runs_nothing(tiny_demo, monkeypatch):
    out, first, _ = tiny_demo
    monkeypatch.setattr(subprocess, "Popen", _no_child)
    again = demo.run_demo(out, preset="tiny", stream=io.StringIO())
    assert [s["state"] for s in again["stages"]] == ["reused"] * len(first["stages"])
    assert [s["seconds"] for s in again["stages"]] == [s["seconds"] for s in first["stages"]]


def test_modes_select_the_systems(tiny_demo, monkeypatch):
    out, _, _ = tiny_demo
    monkeypatch.setattr(subprocess, "Popen", _no_child)   # every stage is finished
    only = demo.run_demo(out, modes=["simgan"], preset="tiny", stream=io.StringIO())
    assert {s["mode"] for s in only["stages"]} == {"simgan"}
    page = _page(out)
    assert "<h2 id='simgan'>" in page and "<h2 id='pix2pix'>" not in page
    assert "<h2 id='fcr_alphagan'>" not in page
    # other seeds are a new experiment, not the finished one
    assert not demo.is_done(demo.plan(out, ["pix2pix"], [0, 1], "tiny")[0], [0, 1])
    demo.run_demo(out, preset="tiny", stream=io.StringIO())   # the whole page again
    assert "<h2 id='pix2pix'>" in _page(out)


def test_make_demo_passes_modes_and_seeds():
    made = subprocess.run(["make", "-s", "-n", "demo", "MODES=simgan",
                           "SEEDS=0 1"], cwd=ROOT, capture_output=True, text=True)
    line = [l for l in made.stdout.splitlines() if "tfgan3d.tools.demo" in l]
    assert line and "--modes simgan --seeds 0 1 --preset quick" in line[-1], made.stdout


@pytest.mark.skipif(page_check.find_chromium() is None,
                    reason="Chromium is not installed (apt-get install -y chromium)")
def test_the_browser_draws_every_image_and_shows_each_systems_table(tiny_demo, tmp_path):
    out, _, _ = tiny_demo
    s2r = json.loads((out / "sim2real" / "seed-0" / "eval" / "metrics.json").read_text())
    result = page_check.check_page(
        out / "index.html", screenshot=tmp_path / "shot.png",
        expect=["the 2x2", "seed's Table 2", s2r["rows"][0]["model"],
                "FCR-alphaGAN findings", "demo stages"])
    assert result["ok"], result
    assert result["images"] >= 12 and result["broken"] == []


def test_progress_reads_the_runs_losses_against_their_steps(tmp_path):
    run = tmp_path / "seed-0" / "arm" / "00001-pix2pix-tiny"
    run.mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"mode": "pix2pix", "steps": 40}))
    (run / "losses.csv").write_text("step,g_loss\n10,1.0\n30,0.5\n")
    stage = demo.Stage("x", "pix2pix", tmp_path, lambda: [], tmp_path / "protocol.json",
                       trainings=2, parts=("seed-*/*/result.json", 2))
    assert demo.progress(stage) == pytest.approx(0.75 / 4)    # 30 of 40 steps, 1 of 4 units
    (run.parent / "result.json").write_text("{}")
    assert demo.progress(stage) == pytest.approx(1.75 / 4)
    line = demo.status_line("x", 0.5, 60.0)
    assert "[############............]" in line and "left 01:00" in line


def test_an_interrupted_training_resumes(tmp_path):
    stage = [s for s in demo.plan(tmp_path, ["sim2real"], [0], "tiny")
             if s.name.startswith("sim2real train")][0]
    assert "--resume" not in stage.argv()
    run = stage.folder / "00001-sim2real-tiny"
    run.mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (run / "losses.csv").write_text("step,loss\n2,1.0\n")
    assert stage.argv()[-2:] == ["--resume", "latest"]


def _fake_stage(tmp_path, name, code, after=()):
    done = tmp_path / name / "result.json"
    argv = [sys.executable, "-c", code.replace("DONE", repr(str(done)))]
    return demo.Stage(name, "simgan", tmp_path / name, lambda: argv, done, after=list(after))


def test_a_failed_stage_names_its_error_and_skips_what_needs_it(tmp_path, monkeypatch):
    stages = [_fake_stage(tmp_path, "ok", "open(DONE, 'w').write('{}'); print('chatter')"),
              _fake_stage(tmp_path, "bad", "import sys; sys.exit('error: bad value 7')"),
              _fake_stage(tmp_path, "needs-bad", "pass", after=["bad"])]
    monkeypatch.setattr(demo, "plan", lambda *a, **k: stages)
    shown = io.StringIO()
    result = demo.run_demo(tmp_path, modes=["simgan"], page=False, stream=shown)
    states = [s["state"] for s in result["stages"]]
    assert states[0] == "done" and states[2].startswith("skipped")
    assert states[1].startswith("failed: error: bad value 7 (log: ")
    assert "chatter" not in shown.getvalue() and "chatter" in (tmp_path / "logs" /
                                                               "ok.log").read_text()


def test_an_interrupted_demo_keeps_the_times_of_its_finished_stages(tmp_path, monkeypatch):
    def interrupted():
        raise KeyboardInterrupt
    stages = [_fake_stage(tmp_path, "first", "open(DONE, 'w').write('{}')"),
              demo.Stage("second", "simgan", tmp_path / "second", interrupted,
                         tmp_path / "second" / "result.json")]
    monkeypatch.setattr(demo, "plan", lambda *a, **k: stages)
    with pytest.raises(KeyboardInterrupt):
        demo.run_demo(tmp_path, modes=["simgan"], page=False, stream=io.StringIO())
    kept = json.loads((tmp_path / "demo.json").read_text())["stage_seconds"]
    assert list(kept) == ["first"] and kept["first"] >= 0
