"""`python -m tfgan3d.predict` and `tfgan3d.load` on files the tests write: every mode's tiny
run (2 training steps, shared with test_export_serving) on images whose sizes are not multiples of
2**n_down, in PNG, JPEG, 16-bit and grey; the run folder and its export agree; bad files stop
with one error line and leave what was written. Plus the pad / crop helper's worked examples."""
import csv
import io
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import tfgan3d
from tfgan3d import export, predict, serving

# A run folder and its export run the same signatures; traced twice they may differ by float
# round-off only.
TOLERANCE = 1e-5


# ----------------------------------------------------------------------------- pad / crop

@pytest.mark.parametrize("size,before,after", [(5, 2, 3), (3, 7, 9), (2, 5, 0), (1, 3, 4)])
def test_pad_reflect_is_numpy_reflect_for_any_amount(size, before, after):
    x = np.arange(size * 2, dtype=np.float32).reshape(1, size, 2, 1)
    got = serving.pad_reflect(tf.constant(x), before, after, 0, 0).numpy()
    if size == 1:    # numpy cannot mirror one row; we repeat it
        want = np.repeat(x, size + before + after, axis=1)
    else:
        want = np.pad(x, [(0, 0), (before, after), (0, 0), (0, 0)], mode="reflect")
    np.testing.assert_array_equal(got, want)


def test_with_padding_gives_fn_the_next_multiple_and_crops_back_exactly():
    seen = []

    def fn(x):
        seen.append(x.shape[1:3])
        return {"a": x * 2.0, "b": x[..., 0]}

    x = tf.random.uniform([2, 37, 23, 3])
    out = serving.with_padding(fn, x, 16)
    assert tuple(seen[-1]) == (48, 32)
    np.testing.assert_array_equal(out["a"].numpy(), x.numpy() * 2.0)     # the crop is exact
    np.testing.assert_array_equal(out["b"].numpy(), x.numpy()[..., 0])
    constant = tf.fill([1, 5, 7, 3], 0.25)
    np.testing.assert_array_equal(serving.with_padding(lambda y: y, constant, 32).numpy(),
                                  constant.numpy())
    empty = serving.with_padding(fn, tf.zeros([0, 9, 4, 3]), 16)
    assert empty["a"].shape == (0, 9, 4, 3) and empty["b"].shape == (0, 9, 4)


# ----------------------------------------------------------------------------- fixtures

# The session's shared tiny runs (2 training steps each) and their export (tests/shared_tiny.py):
# predict only reads them, as test_export_serving does.

@pytest.fixture(scope="module")
def pix2pix_run(shared_tiny):
    return shared_tiny.run("pix2pix")


def _png(path, array):
    Image.fromarray(array).save(path)
    return path


def _photos(folder):
    """Images of sizes that are not multiples of 32, in the formats users have: {name: (H, W)}."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    _png(folder / "a_rgb.png", rng.integers(0, 256, (37, 23, 3), dtype=np.uint8))
    Image.fromarray(rng.integers(0, 256, (30, 41, 3), dtype=np.uint8)).save(
        folder / "b_photo.jpg", quality=90)
    _png(folder / "c_grey.png", rng.integers(0, 256, (25, 19), dtype=np.uint8))
    _png(folder / "d_rgba.png", rng.integers(0, 256, (21, 33, 4), dtype=np.uint8))
    grey16 = rng.integers(0, 65536, (26, 35), dtype=np.uint16)
    _png(folder / "e_grey16.png", grey16)
    return {"a_rgb": (37, 23), "b_photo": (30, 41), "c_grey": (25, 19), "d_rgba": (21, 33),
            "e_grey16": (26, 35)}


def _rows(out):
    with open(out / "predictions.csv") as f:
        return list(csv.DictReader(f))


# ----------------------------------------------------------------------------- pix2pix

def test_pix2pix_any_size_and_format_run_folder_and_export_agree(pix2pix_run, tmp_path,
                                                                  shared_tiny):
    sizes = _photos(tmp_path / "photos")
    out_run, out_export = tmp_path / "depth_run", tmp_path / "depth_export"
    assert predict.main([str(pix2pix_run), "--input", str(tmp_path / "photos"), "--out",
                         str(out_run), "--side-by-side", "--batch-size", "2"]) == 0
    saved = shared_tiny.model("pix2pix")
    assert predict.main([str(saved), "--input", str(tmp_path / "photos"), "--out",
                         str(out_export)]) == 0
    index = json.loads((out_run / "predictions.json").read_text())
    scale = index["depth_png_scale"]
    assert [r["status"] for r in _rows(out_run)] == ["ok"] * len(sizes)
    max_depth = json.loads((pix2pix_run / "config.json").read_text())["max_depth"]
    for name, size in sizes.items():
        depth = np.load(out_run / f"{name}_depth.npy")
        assert depth.shape == size and depth.dtype == np.float32
        assert np.isfinite(depth).all() and 0 <= depth.min() and depth.max() <= max_depth
        np.testing.assert_allclose(np.load(out_export / f"{name}_depth.npy"), depth,
                                   atol=TOLERANCE)
        png16 = np.asarray(Image.open(out_run / f"{name}_depth16.png")).astype(np.float64)
        assert png16.shape == size
        assert np.abs(png16 * scale - depth).max() <= scale          # within one unit
        colour = np.asarray(Image.open(out_run / f"{name}_depth_colour.png"))
        assert colour.shape[1] > size[1] and colour.shape[0] >= size[0]   # + the legend
        side = np.asarray(Image.open(out_run / f"{name}_side_by_side.png"))
        assert side.shape[1] > 2 * size[1]
    # The Python API gives the same numbers, from a path or an array.
    model = tfgan3d.load(pix2pix_run)
    direct = model.predict(str(tmp_path / "photos" / "a_rgb.png"))["depth"]
    np.testing.assert_allclose(direct, np.load(out_run / "a_rgb_depth.npy"), atol=TOLERANCE)
    array = np.asarray(Image.open(tmp_path / "photos" / "a_rgb.png"))
    np.testing.assert_allclose(model.predict(array[None])["depth"][0], direct, atol=TOLERANCE)
    # --fit resize and --tile also give the input's size.
    big = np.random.default_rng(1).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    assert model.predict(big, fit="resize")["depth"].shape == (70, 90)
    tiled = model.predict(big, tile=32)["depth"]
    assert tiled.shape == (70, 90) and np.isfinite(tiled).all()
    # A photo of the size the network takes gives what the generator gives (no pad at all).
    _, keras_model, _ = export.load_trained(pix2pix_run)
    rgb = big[:32, :64]
    want = (keras_model.generator(rgb[None].astype(np.float32) / 127.5 - 1, training=False)
            .numpy()[0, ..., 0] + 1) * 0.5 * max_depth
    np.testing.assert_allclose(model.predict(rgb)["depth"], want, atol=TOLERANCE)


def test_encoded_endpoint_equals_tensor_endpoint(pix2pix_run, tmp_path):
    from tfgan3d.trainers import pix2pix
    config, model, _ = export.load_trained(pix2pix_run)
    endpoints = pix2pix.serving_endpoints(model, config)
    tensor = tf.function(endpoints["serving_default"][0])
    encoded = tf.function(endpoints["serving_encoded"][0])
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (2, 27, 45, 3), dtype=np.uint8)
    blobs = []
    for image in images:
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG")
        blobs.append(buf.getvalue())
    np.testing.assert_array_equal(encoded(tf.constant(blobs))["depth"].numpy(),
                                  tensor(tf.constant(images))["depth"].numpy())
    # JPEG: the graph decodes as predict reads it
    Image.fromarray(images[0]).save(tmp_path / "x.jpg", quality=80)
    decoded = predict.read_image(tmp_path / "x.jpg", 3)
    np.testing.assert_array_equal(
        encoded(tf.constant([(tmp_path / "x.jpg").read_bytes()]))["depth"].numpy(),
        tensor(tf.constant(decoded[None]))["depth"].numpy())


def test_bad_files_stop_with_one_line_and_earlier_outputs_survive(pix2pix_run, tmp_path,
                                                                  capsys):
    photos = tmp_path / "in"
    photos.mkdir()
    rng = np.random.default_rng(2)
    _png(photos / "a.png", rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    (photos / "b.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 10)
    np.save(photos / "c.npy", np.zeros((8, 8, 5), np.uint8))
    _png(photos / "d.png", rng.integers(0, 256, (20, 20, 3), dtype=np.uint8))
    out = tmp_path / "out"
    assert predict.main([str(pix2pix_run), "--input", str(photos), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "b.png" in err[0], err
    assert (out / "a_depth.npy").is_file() and not (out / "d_depth.npy").exists()
    rows = _rows(out)
    assert [(r["input"].rsplit("/", 1)[-1], r["status"]) for r in rows] == [
        ("a.png", "ok"), ("b.png", "skipped")]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]      # no temp files
    # --skip-bad: both bad files named with their reasons, the rest written
    assert predict.main([str(pix2pix_run), "--input", str(photos), "--out", str(out),
                         "--skip-bad"]) == 0
    rows = {r["input"].rsplit("/", 1)[-1]: r for r in _rows(out)}
    assert rows["b.png"]["status"] == "skipped" and "b.png" in rows["b.png"]["reason"]
    assert "5 channels" in rows["c.npy"]["reason"]
    assert (out / "d_depth.npy").is_file()
    # a flag of another mode, and an empty input list: one line each
    assert predict.main([str(pix2pix_run), "--input", str(photos), "--out", str(out),
                         "--generate", "2"]) == 1
    assert predict.main([str(pix2pix_run), "--out", str(out)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "--generate: for fcr_alphagan" in lines[0] and \
        "--input" in lines[1], lines


# ----------------------------------------------------------------------------- simgan

def test_simgan_refines_at_the_input_bit_depth_and_carries_labels(tmp_path, shared_tiny):
    run = shared_tiny.run("simgan")
    folder = tmp_path / "synthetic"
    folder.mkdir()
    rng = np.random.default_rng(4)
    _png(folder / "e0.png", rng.integers(0, 256, (35, 55), dtype=np.uint8))
    _png(folder / "e1.png", rng.integers(0, 65536, (35, 55), dtype=np.uint16))
    Image.fromarray(rng.integers(0, 256, (1, 7, 3), dtype=np.uint8)).save(folder / "e2.jpg")
    (folder / "labels.csv").write_text("file,gaze_x,gaze_y\ne0.png,0.1,0.2\ne1.png,0.3,0.4\n"
                                       "e2.jpg,0.5,0.6\n")
    out = tmp_path / "refined"
    assert predict.main([str(run), "--input", str(folder), "--out", str(out)]) == 0
    for name, dtype, size in (("e0", np.uint8, (35, 55)), ("e1", np.uint16, (35, 55)),
                              ("e2", np.uint8, (1, 7))):      # 1 pixel high: mirrored out
        image = np.asarray(Image.open(out / f"{name}.png"))
        assert image.dtype == dtype and image.shape == size, (name, image.dtype, image.shape)
    with open(out / "labels.csv") as f:
        assert list(csv.reader(f)) == [["file", "gaze_x", "gaze_y"], ["e0.png", "0.1", "0.2"],
                                       ["e1.png", "0.3", "0.4"], ["e2.png", "0.5", "0.6"]]
    saved = shared_tiny.model("simgan")
    a = tfgan3d.load(run).predict(str(folder / "e1.png"))["refined"]
    b = tfgan3d.load(saved).predict(str(folder / "e1.png"))["refined"]
    assert a.dtype == np.uint16 and np.abs(a.astype(int) - b.astype(int)).max() <= 1


# ----------------------------------------------------------------------------- sim2real

def test_sim2real_depth_segmentation_and_translations(tmp_path, shared_tiny):
    run = shared_tiny.run("sim2real")
    _photos(tmp_path / "photos")
    out = tmp_path / "out"
    assert predict.main([str(run), "--input", str(tmp_path / "photos"), "--out", str(out),
                         "--domain", "sim", "--translate"]) == 0
    config = json.loads((run / "config.json").read_text())
    seg = np.asarray(Image.open(out / "b_photo_segmentation.png"))
    assert seg.shape == (30, 41) and seg.max() < config["num_classes"]
    colour = np.asarray(Image.open(out / "b_photo_segmentation_colour.png"))
    assert colour.shape == (30, 41, 3)
    assert np.asarray(Image.open(out / "b_photo_to_real.png")).shape == (30, 41, 3)
    assert np.load(out / "e_grey16_depth.npy").shape == (26, 35)
    saved = shared_tiny.model("sim2real")
    image = predict.read_image(tmp_path / "photos" / "a_rgb.png", 3)
    from_run, from_export = tfgan3d.load(run), tfgan3d.load(saved)
    for domain in ("real", "sim"):
        a = from_run.predict(image, domain=domain)
        b = from_export.predict(image, domain=domain)
        np.testing.assert_allclose(a["depth"], b["depth"], atol=TOLERANCE)
        np.testing.assert_array_equal(a["segmentation"], b["segmentation"])
        if domain == "sim":      # what the CLI wrote with --domain sim
            np.testing.assert_allclose(np.load(out / "a_rgb_depth.npy"), a["depth"],
                                       atol=TOLERANCE)


# ----------------------------------------------------------------------------- fcr_alphagan

def test_fcr_reconstructs_generates_interpolates_and_refuses_bad_scenes(tmp_path,
                                                                        shared_tiny,
                                                                        capsys):
    run = shared_tiny.run("fcr_alphagan")
    grid = tuple(json.loads((run / "config.json").read_text())["grid"])
    rng = np.random.default_rng(5)
    scenes = tmp_path / "scenes"
    (scenes / "Scenevox" / "room1").mkdir(parents=True)
    one = rng.integers(0, 12, grid).astype(np.uint8)
    np.save(scenes / "Scenevox" / "room1" / "m1.npy", one)
    np.save(scenes / "batch.npy", rng.integers(0, 12, (3, *grid)).astype(np.int32))
    np.save(scenes / "two.npy", rng.integers(0, 12, grid).astype(np.int64))
    out = tmp_path / "out"
    assert predict.main([str(run), "--input", str(scenes), "--out", str(out),
                         "--generate", "2", "--interpolate",
                         str(scenes / "Scenevox" / "room1" / "m1.npy"),
                         str(scenes / "two.npy"), "--steps", "3",
                         "--no-render"]) == 0
    raw = np.load(out / "Scenevox" / "room1" / "m1_raw.npy")
    assert raw.shape == grid and raw.dtype == np.uint8 and raw.max() < 12
    assert np.load(out / "batch_refined.npy").shape == (3, *grid)
    assert np.load(out / "generated_z.npy").shape[0] == 2
    assert [np.load(out / f"interpolated_{i:04d}_raw.npy").shape for i in range(3)] == [grid] * 3
    # the ends are the codes of A and B: their reconstructions
    np.testing.assert_array_equal(np.load(out / "interpolated_0000_raw.npy"), raw)
    np.testing.assert_array_equal(np.load(out / "interpolated_0002_raw.npy"),
                                  np.load(out / "two_raw.npy"))
    a = tfgan3d.load(run).predict(one)
    b = tfgan3d.load(shared_tiny.model("fcr_alphagan_autoencoder")).predict(one)
    np.testing.assert_array_equal(a["raw"], raw)
    np.testing.assert_array_equal(a["raw"], b["raw"])
    np.testing.assert_array_equal(a["refined"], b["refined"])
    # wrong grid and labels out of range: one line naming the file; --skip-bad goes on
    bad = tmp_path / "bad"
    bad.mkdir()
    np.save(bad / "a_grid.npy", np.zeros((4, 4, 4), np.uint8))
    np.save(bad / "b_labels.npy", np.full(grid, 12, np.uint8))
    capsys.readouterr()
    assert predict.main([str(run), "--input", str(bad), "--out", str(tmp_path / "o2"),
                         "--no-render"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a_grid.npy" in err[0] and "grid" in err[0], err
    assert predict.main([str(run), "--input", str(bad), "--out", str(tmp_path / "o2"),
                         "--no-render", "--skip-bad"]) == 0
    rows = {r["input"].rsplit("/", 1)[-1]: r for r in _rows(tmp_path / "o2")}
    assert "label 12" in rows["b_labels.npy"]["reason"], rows
