"""eval sim2real_curve: which checkpoints it scores (stage 2 only, whole ones, --every), the
curve it writes from each checkpoint's metrics.json, its latent statistics, and resume.
`eval sim2real` and the latent statistics are stand-ins here (both are tested on a trained
run in test_sim2real_eval.py, the statistics' values in test_latent_alignment.py)."""
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfgan3d.eval import sim2real_curve as sc

STAGE1 = 4


@pytest.fixture
def run_dir(tmp_path):
    """A run folder: stage 1 of 4 steps, whole checkpoints at 2, 4, 6, 8, 10 and a damaged 12."""
    run = tmp_path / "00001-sim2real-tiny-run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"mode": "sim2real", "stage1_steps": STAGE1,
                                                 "stage2_steps": 8}))
    ckpt = tf.train.Checkpoint(v=tf.Variable([1.0, 2.0]))
    for n in (2, 4, 6, 8, 10, 12):
        ckpt.write(str(run / "checkpoints" / f"ckpt-{n}"))
    for data in (run / "checkpoints").glob("ckpt-12.data-*"):
        data.unlink()                      # a kill between the two files
    return run


def stand_in(calls):
    """Writes metrics.json as eval sim2real would: the twin VAE's error falls on sim and rises
    on real-like with the checkpoint's step; the prior's is constant."""
    def evaluate(run_dir, *, checkpoint, baseline_steps, out, resolution):
        calls.append((checkpoint.rsplit("/", 1)[-1], baseline_steps, resolution))
        n = int(checkpoint.rsplit("-", 1)[-1])

        def row(role, abs_rel, miou):
            return {"role": role, "abs_rel": abs_rel, "rmse": 1.0, "delta1": 0.5,
                    "miou": miou, "pixel_accuracy": 0.7}
        metrics = {"resolution": [resolution, resolution],
                   "rows": [row("sim2real", 0.20 + 0.01 * n, 0.30), row("prior", 0.25, 0.23)],
                   "sim_test": {"rows": [row("sim2real", 0.30 - 0.01 * n, 0.20 + 0.01 * n),
                                         row("prior", 0.26, 0.24)]}}
        if n != 6:          # ckpt-6 as scored before eval sim2real reported the latent
            metrics["latent"] = codes(n)
        out.mkdir(parents=True, exist_ok=True)
        (out / "metrics.json").write_text(json.dumps(metrics))
    return evaluate


def codes(n):
    """Latent statistics whose values say which checkpoint they came from."""
    return {"sigma_sim": 0.9, "sigma_real": 1.0 / n, "spread_sim": 0.1, "spread_real": 0.01 * n,
            "centroid_distance": float(n), "mmd": 0.1 * n, "mmd_within_sim": 0.0,
            "mmd_sigma": 8.0, "images_sim": 4, "images_real": 4, "code_size": 12}


def align_stand_in(calls):
    def align(run_dir, prefix):
        calls.append(prefix.rsplit("/", 1)[-1])
        return codes(int(prefix.rsplit("-", 1)[-1]))
    return align


def test_only_whole_stage2_checkpoints_are_scored(run_dir):
    steps = [s for s, _ in sc.stage2_checkpoints(run_dir)]
    assert steps == [2, 4, 6]                 # ckpt-6, 8, 10; not stage 1's 2, 4; not 12
    assert [s for s, _ in sc.stage2_checkpoints(run_dir, every=4)] == [4, 6]  # 6: the last


def test_curve_rows_charts_and_resume(run_dir, tmp_path):
    calls, aligned = [], []
    out = tmp_path / "curve"
    curve = sc.run_curve(run_dir, out, resolution=32, evaluate=stand_in(calls),
                         align=align_stand_in(aligned))
    assert calls == [(f"ckpt-{n}", 0, 32) for n in (6, 8, 10)]
    # ckpt-6's metrics.json has no latent statistics: computed for it alone, kept beside it.
    assert aligned == ["ckpt-6"]
    assert json.loads((out / "step-0000002" / "latent.json").read_text()) == {"latent": codes(6)}
    assert [(r["step"], r["mmd"]) for r in curve["latent"]] == [(2, pytest.approx(0.6)),
                                                               (4, pytest.approx(0.8)),
                                                               (6, pytest.approx(1.0))]
    latent_lines = (out / "latent.csv").read_text().splitlines()
    assert latent_lines[0].split(",")[:3] == ["step", "sigma_sim", "sigma_real"]
    assert len(latent_lines) == 1 + 3
    for test, expected in (("sim", [0.24, 0.22, 0.20]), ("real", [0.26, 0.28, 0.30])):
        points = [p for p in curve["points"] if p["test"] == test]
        assert [p["step"] for p in points] == [2, 4, 6]
        assert [p["abs_rel"] for p in points] == pytest.approx(expected)
    assert curve["prior"]["sim"]["abs_rel"] == 0.26 and curve["prior"]["real"]["miou"] == 0.23
    assert json.loads((out / "curve.json").read_text())["points"] == curve["points"]
    lines = (out / "curve.csv").read_text().splitlines()
    assert lines[0].split(",")[:4] == ["step", "test", "arm", "abs_rel"]
    assert len(lines) == 1 + 6 + 2            # 3 steps x 2 tests, 2 prior rows
    for metric in ("abs_rel", "miou", "latent"):
        pixels = np.asarray(Image.open(out / f"curve_{metric}.png").convert("RGB"))
        assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10   # lines, text, not blank
    again, aligned_again = [], []
    assert sc.run_curve(run_dir, out, resolution=32, evaluate=stand_in(again),
                        align=align_stand_in(aligned_again)) == curve
    assert again == [] and aligned_again == []   # every step read back, none scored again
    other = []
    sc.run_curve(run_dir, out, resolution=16, evaluate=stand_in(other),
                 align=align_stand_in([]))
    assert [c[2] for c in other] == [16, 16, 16]   # scored at another size: not reused


def test_a_run_of_another_mode_is_refused(run_dir):
    (run_dir / "config.json").write_text(json.dumps({"mode": "pix2pix", "steps": 8}))
    with pytest.raises(ValueError, match="expected a sim2real run, found mode 'pix2pix'"):
        sc.stage2_checkpoints(run_dir)


def test_a_run_without_stage2_checkpoints_is_named(tmp_path, run_dir):
    for p in (run_dir / "checkpoints").glob("ckpt-*"):
        if int(p.name.split("-")[1].split(".")[0]) > STAGE1:
            p.unlink()
    with pytest.raises(FileNotFoundError, match=r"checkpoints after stage 1 \(step > 4\)"):
        sc.stage2_checkpoints(run_dir)
