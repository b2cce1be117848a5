"""The FCR-alphaGAN evaluation modes on a tiny run, and their pieces on hand-made cases."""
import csv
import json
import shutil

import numpy as np
import pytest
import tensorflow as tf

from tfgan3d.data import voxel_files
from tfgan3d.eval import fcr_plots
from tfgan3d.eval.fcr import cli as fcr_cli
from tfgan3d.eval.fcr.checkpoints import evaluate_checkpoints
from tfgan3d.eval.fcr.common import FCREvalError, load_run, load_test_scenes, run_config
from tfgan3d.eval.fcr.compare import compare_runs
from tfgan3d.eval.fcr.interpolate import evaluate_interpolate
from tfgan3d.eval.fcr.latent import scene_centroids, svd_embedding
from tfgan3d.eval.fcr.noise import evaluate_noise
from tfgan3d.eval.fcr.recons import evaluate_recons
from tfgan3d.eval.fcr.renders import evaluate_renders
from tfgan3d.eval.fcr.scores import SceneScores, score_baseline, train_baseline
from tfgan3d.eval.__main__ import main as eval_main
from tfgan3d.eval.palette import PALETTE
from tfgan3d.eval.voxel_metrics import voxel_ap, voxel_iou
from tfgan3d.trainers import fcr_alphagan as trainer

# Three strided layers on the tiny 16^3 grid: a 2 x 2 x 2 latent grid, so the noise study has
# more than one position.
# One (encoder, generator) step pair per iteration: a third less tracing than the paper's two.
TINY = {"preset": "tiny", "widths": [4, 8, 8], "eg_steps": 1}


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from tfgan3d.trainers import runner

    return runner.run_mode("fcr_alphagan", {**TINY, "run_dir": str(tmp_path_factory.mktemp(
        "runs"))}).path


@pytest.fixture(scope="module")
def recons(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("recons")
    return out, evaluate_recons(run, n=4, out=out, legacy=True, batch_size=3)


def _fake_run(run, tmp_path, name, **changes):
    """A copy of the run's config with `changes` and untrained weights of that config."""
    folder = tmp_path / name
    folder.mkdir()
    values = json.loads((run / "config.json").read_text())
    values.update(changes)
    (folder / "config.json").write_text(json.dumps(values))
    config = run_config(folder)
    tf.train.Checkpoint(model=trainer.build_model(config)).save(str(folder / "checkpoints" /
                                                                    "ckpt"))
    return folder


# ----------------------------------------------------------------------------- metric pieces

@pytest.mark.parametrize("legacy", [False, True])
def test_scene_scores_equal_the_metrics_on_all_scenes(legacy):
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 5, (5, 4, 3, 4))
    gt[2][gt[2] == 3] = 0                                   # a scene lacking class 3
    probs = rng.random((5, 4, 3, 4, 12)).astype(np.float32)
    pred = probs.argmax(-1)
    scores = SceneScores(legacy=legacy)
    scores.add(gt[:2], pred[:2], probs[:2])
    scores.add(gt[2:], pred[2:], probs[2:])
    np.testing.assert_equal(scores.iou(), voxel_iou(gt, pred, legacy=legacy))
    for key, value in voxel_ap(gt, probs, legacy=legacy).items():
        assert scores.ap()[key] == pytest.approx(value, nan_ok=True), key


def test_majority_baseline_of_three_training_scenes(tmp_path):
    train = np.array([[[[1, 2]], [[3, 0]]],                # 3 scenes of 2 x 1 x 2 voxels
                      [[[1, 2]], [[0, 0]]],
                      [[[2, 2]], [[3, 5]]]], np.uint8)
    voxel_files.write_shards(train, None, tmp_path / "data" / "train", split="train")
    config = trainer.FCRConfig(grid=(2, 1, 2), data=str(tmp_path / "data"))
    labels, freq, n, _ = train_baseline(config, batch_size=2)
    assert n == 3
    np.testing.assert_array_equal(labels, [[[1, 2]], [[3, 0]]])
    np.testing.assert_allclose(freq[0, 0, 0, [1, 2]], [2 / 3, 1 / 3])
    np.testing.assert_allclose(freq.sum(-1), 1.0)
    # The first two scenes only (a limit inside a batch): a tie goes to the lowest class id.
    tie, _, n, _ = train_baseline(config, batch_size=3, limit=2)
    assert n == 2
    np.testing.assert_array_equal(tie, [[[1, 2]], [[0, 0]]])
    perfect = score_baseline(labels, freq, labels[None])
    assert perfect.iou()["all"] == 1.0


def test_svd_embedding_and_centroids():
    t = np.array([-2.0, -1.0, 0.5, 2.5])
    points = np.stack([3 * t, -4 * t, np.zeros(4)], 1) + [1.0, 2.0, 3.0]
    scores = svd_embedding(points, 2)
    np.testing.assert_allclose(np.abs(scores[:, 0]), np.abs(5 * (t - t.mean())), atol=1e-9)
    np.testing.assert_allclose(scores[:, 1], 0.0, atol=1e-9)
    scenes = np.zeros((2, 4, 2, 4), np.uint8)
    scenes[0, 1, 0, 3] = scenes[0, 3, 1, 1] = 2
    np.testing.assert_allclose(scene_centroids(scenes)[0], [2.0, 0.5, 2.0])
    assert np.isnan(scene_centroids(scenes)[1]).all()


def test_top_projection_shows_the_highest_visible_class():
    scene = np.zeros((3, 4, 2), np.uint8)
    scene[:, 0, :] = 2                                      # floor
    scene[1, 2, 0] = 5                                      # a chair voxel above it
    scene[:, 3, :] = 1                                      # ceiling: hidden
    image = fcr_plots.top_projection(scene, min_width=3)
    assert image.shape == (2, 3, 3)
    chair, floor = image[0, 1].astype(float), image[0, 0].astype(float)
    assert np.allclose(chair / np.max(chair), PALETTE[5] / np.max(PALETTE[5]), atol=0.02)
    assert np.allclose(floor / np.max(floor), PALETTE[2] / np.max(PALETTE[2]), atol=0.02)


# ----------------------------------------------------------------------------- modes

def test_recons_writes_the_arrays_and_tables(run, recons):
    out, metrics = recons
    grid = (16, 16, 16)
    latent = (2, 2, 2, 4)
    shapes = {"real": grid, "recons": grid, "recons_refine": grid, "generate": grid,
              "generate_refine": grid, "decode_z": latent, "sample_z": latent}
    arrays = {name: np.load(out / f"{name}.npy") for name in shapes}
    for name, shape in shapes.items():
        assert arrays[name].shape == (4, *shape), name
    for name in ("real", "recons", "recons_refine", "generate", "generate_refine"):
        assert arrays[name].dtype == np.uint8 and arrays[name].max() < 12
    for name in ("IoU", "AP", "IoU_refine", "AP_refine"):
        rows = _rows(out / f"{name}.csv")
        assert [r["class"] for r in rows[:1] + rows[-3:]] == ["empty", "all", "mean_class",
                                                               "occupancy"], name
        assert len(rows) == 15, name
    for name in ("IoU_legacy", "AP_refine_legacy"):       # the original's 12 classes + all
        rows = _rows(out / f"{name}.csv")
        assert len(rows) == 13 and rows[-1]["class"] == "all", name
    # The tables hold what the metric code gives on the saved arrays.
    for suffix, pred in (("", arrays["recons"]), ("_refine", arrays["recons_refine"])):
        for legacy, name in ((False, f"IoU{suffix}"), (True, f"IoU{suffix}_legacy")):
            expected = voxel_iou(arrays["real"], pred, legacy=legacy)
            for row in _rows(out / f"{name}.csv"):
                assert float(row["iou"]) == pytest.approx(expected[row["class"]], nan_ok=True)
        assert metrics[f"iou_all{suffix}"] == pytest.approx(
            voxel_iou(arrays["real"], pred)["all"])
    # The baseline is the per-position majority of the training split, scored on the scenes.
    train = np.stack([s for _, s in voxel_files.iter_voxel_source(
        trainer.data_root(run_config(run)), "train")])
    counts = np.stack([(train == c).sum(0) for c in range(12)], -1)
    np.testing.assert_array_equal(np.load(out / "baseline.npy"), counts.argmax(-1))
    assert metrics["baseline"]["n_train_scenes"] == len(train) == 16
    assert metrics["baseline_iou_all"] == pytest.approx(voxel_iou(
        arrays["real"], np.broadcast_to(counts.argmax(-1), arrays["real"].shape))["all"])
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["baseline_iou_all"] == pytest.approx(metrics["baseline_iou_all"])
    assert len(_rows(out / "per_scene.csv")) == 4
    for png in ("IoU.png", "AP.png"):
        assert (out / png).stat().st_size > 5000


def test_checkpoints_lists_every_kept_checkpoint(run, tmp_path):
    rows = evaluate_checkpoints(run, n=2, out=tmp_path)
    kept = sorted(int(p.name[len("ckpt-"):-len(".index")])
                  for p in (run / "checkpoints").glob("ckpt-*.index"))
    assert kept == [4, 8, 12]                               # tiny: every 4 of 12 steps
    assert [r["step"] for r in rows] == kept
    assert [int(r["step"]) for r in _rows(tmp_path / "checkpoints.csv")] == kept
    assert [r["phase"] for r in rows] == [1, 1, 2]          # phase 2 starts at step 9
    assert all(0 <= r["iou_all"] <= 1 for r in rows)
    assert (tmp_path / "checkpoints.png").stat().st_size > 5000


def test_interpolation_ends_at_the_decoded_endpoint_codes(run, tmp_path):
    from PIL import Image

    summary = evaluate_interpolate(run, pairs=2, steps=4, out=tmp_path)
    loaded = load_run(run)
    real, _ = load_test_scenes(loaded.config, None, 3)
    codes = np.asarray(loaded.model.encode(tf.one_hot(real.astype(np.int32), 12)))
    for left, right in ((0, 1), (1, 2)):
        z = np.load(tmp_path / f"interpolation_z{left}-{right}.npy")
        labels = np.load(tmp_path / f"interpolation{left}-{right}.npy")
        assert z.shape == (4, 2, 2, 2, 4) and labels.shape == (4, 16, 16, 16)
        np.testing.assert_allclose(z[[0, -1]], codes[[left, right]], rtol=1e-5, atol=1e-6)
        ends = loaded.model.refine(loaded.model.decode(z[[0, -1]]))
        np.testing.assert_array_equal(labels[[0, -1]], np.argmax(ends, -1))
        with Image.open(tmp_path / f"interpolation{left}-{right}.gif") as gif:
            assert gif.n_frames == 4
    assert {p["gif_frames"] for p in summary["pairs"]} <= {"vtk", "projection"}


def test_gif_falls_back_to_projections_without_gl(monkeypatch):
    import ctypes.util

    if ctypes.util.find_library("OSMesa"):
        pytest.skip("OSMesa is installed: cannot make the renderer fail this way")
    monkeypatch.setenv("VTK_DEFAULT_OPENGL_WINDOW", "vtkOSOpenGLRenderWindow")
    scenes = np.zeros((2, 8, 4, 8), np.uint8)
    scenes[:, :, 0, :] = 2
    frames, source, note = fcr_plots.scene_frames(scenes, (64, 48))
    assert source == "projection" and "OSMesa" in note
    assert len(frames) == 2 and frames[0].shape == (64, 64, 3)


def test_noise_without_noise_changes_nothing(run, tmp_path):
    summary = evaluate_noise(run, scenes=1, draws=2, sigma=0.0, out=tmp_path)
    change = np.asarray(summary["mean_change"])
    assert change.shape == (2, 2, 2) and np.all(change == 0)
    base = np.load(tmp_path / "noise0_base.npy")
    for x, y, z in np.ndindex(2, 2, 2):
        noisy = np.load(tmp_path / f"noise0_{x}_{y}_{z}.npy")
        assert noisy.shape == (2, 16, 16, 16)
        np.testing.assert_array_equal(noisy, np.broadcast_to(base, noisy.shape))


def test_noise_heat_map_covers_every_latent_position(run, tmp_path):
    summary = evaluate_noise(run, scenes=2, draws=2, sigma=3.0, out=tmp_path)
    rows = _rows(tmp_path / "noise_change.csv")
    assert sorted({(r["scene"], r["x"], r["y"], r["z"]) for r in rows}) == sorted(
        (str(s), str(x), str(y), str(z)) for s in range(2) for x, y, z in np.ndindex(2, 2, 2))
    values = np.array([float(r["changed_fraction"]) for r in rows])
    assert np.all((values >= 0) & (values <= 1))
    assert np.asarray(summary["mean_change"]).shape == (2, 2, 2)
    assert (tmp_path / "noise_heatmap.png").stat().st_size > 5000


def test_noise_skips_the_latent1d_variant(run, tmp_path):
    flat = _fake_run(run, tmp_path, "latent1d", variant="latent1d")
    summary = evaluate_noise(flat, out=tmp_path / "out")
    assert "no spatial" in summary["skipped"]
    assert not list((tmp_path / "out").glob("noise*.npy"))
    assert "skipped" in json.loads((tmp_path / "out" / "noise.json").read_text())


def test_latent_map_through_the_cli(run, tmp_path):
    eval_main(["fcr", "latent", str(run), "--n", "3", "--out", str(tmp_path)])
    coords = np.load(tmp_path / "latent_coords.npy")
    assert coords.shape == (3, 2) and np.isfinite(coords).all()
    assert len(_rows(tmp_path / "latent.csv")) == 3
    assert (tmp_path / "latent_map.png").stat().st_size > 5000


def test_compare_refuses_runs_of_other_grids_or_data(run, tmp_path):
    other_grid = tmp_path / "grid"
    other_grid.mkdir()
    values = json.loads((run / "config.json").read_text())
    (other_grid / "config.json").write_text(json.dumps({**values, "grid": [32, 16, 32]}))
    with pytest.raises(FCREvalError, match="grid"):
        compare_runs([run, other_grid], out=tmp_path / "out")
    other_data = tmp_path / "data"
    shutil.copytree(other_grid, other_data)
    (other_data / "config.json").write_text(json.dumps({**values, "n_train": 32}))
    with pytest.raises(FCREvalError, match="data"):
        compare_runs([run, other_data], out=tmp_path / "out")
    with pytest.raises(SystemExit, match="error: .*grid"):
        fcr_cli.main(["compare", str(run), str(other_grid)])
    assert not (tmp_path / "out").exists()


def test_compare_scores_every_run_on_the_same_scenes(run, recons, tmp_path):
    flat = _fake_run(run, tmp_path, "latent1d", variant="latent1d")
    rows = compare_runs([run, flat], n=4, out=tmp_path / "out")
    assert [r["variant"] for r in rows[:2]] == ["alphagan", "latent1d"]
    assert rows[0]["iou_all"] == pytest.approx(recons[1]["iou_all"])
    assert rows[0]["map_refine"] == pytest.approx(recons[1]["map_refine"])
    assert rows[0]["ap_all"] == pytest.approx(recons[1]["ap"]["all"])
    assert rows[0]["map"] == pytest.approx(recons[1]["ap"]["mean_class"])
    assert rows[2]["iou_all"] == pytest.approx(recons[1]["baseline_iou_all"])
    assert len(_rows(tmp_path / "out" / "comparison.csv")) == 3
    assert "latent1d" in (tmp_path / "out" / "comparison.md").read_text()


def test_renders_put_real_reconstruction_and_refined_side_by_side(recons, tmp_path):
    from PIL import Image

    out, _ = recons
    summary = evaluate_renders(out, indices=[0, 2], out=tmp_path / "grid.png",
                                        size=(96, 72))
    assert summary["indices"] == [0, 2] and summary["source"] in ("vtk", "projection")
    with Image.open(tmp_path / "grid.png") as image:
        assert image.size == (3 * 96, 18 + 2 * 72)
        pixels = np.asarray(image.convert("RGB"))
    # every cell shows something besides the background (the real scenes have a floor)
    cell = pixels[18:18 + 72, :96]
    assert len(np.unique(cell.reshape(-1, 3), axis=0)) > 3
    with pytest.raises(FCREvalError, match="missing real.npy"):
        evaluate_renders(tmp_path)


def test_noise_moves_one_latent_position_at_a_time(tmp_path, monkeypatch):
    """Stand-ins for the run: the codes decoded for position (x, y, z) differ from the scene's
    code at that position's channels only, in every draw."""
    import types

    from tfgan3d.eval.fcr import noise

    grid, channels, draws = (2, 1, 3), 4, 2
    code = np.arange(np.prod(grid) * channels, dtype=np.float32).reshape(1, *grid, channels)
    model = types.SimpleNamespace(spec=types.SimpleNamespace(latent1d=False, latent_grid=grid))
    loaded = types.SimpleNamespace(config=types.SimpleNamespace(seed=0, variant="alphagan"),
                                   model=model, run=tmp_path / "run", checkpoint="ckpt-1")
    decoded = []

    def decode(model, z, batch_size):
        decoded.append(np.array(z))
        return (np.asarray(z).reshape(len(z), -1)[:, :4] > 3.5).astype(np.int32)

    monkeypatch.setattr(noise, "load_run", lambda run, checkpoint: loaded)
    monkeypatch.setattr(noise, "load_test_scenes", lambda config, data, n: (
        np.zeros((1, 4, 4, 4), np.int32), ["scene0"]))
    monkeypatch.setattr(noise, "encode_scenes", lambda model, real, batch_size: code)
    monkeypatch.setattr(noise, "decode_labels", decode)
    monkeypatch.setattr(noise.fcr_plots, "save_noise_heatmap", lambda *a, **k: None)
    noise.evaluate_noise("run", scenes=1, draws=draws, sigma=1.0, out=tmp_path)
    base, noisy = decoded
    np.testing.assert_array_equal(base, code)
    positions = list(np.ndindex(*grid))
    assert noisy.shape == (len(positions) * draws, *grid, channels)
    for p, position in enumerate(positions):
        moved = noisy[p * draws:(p + 1) * draws] != code     # (draws, *grid, channels)
        where = np.zeros(grid, bool)
        where[position] = True
        assert moved[:, where].all(), position                # that position's channels
        assert not moved[:, ~where].any(), position           # and nothing else
