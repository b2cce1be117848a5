"""The data set writer (tfgan3d.data.scene_files) and its CLI (tfgan3d-data)."""
import json

import numpy as np
import pytest
from PIL import Image

from tfgan3d.data import scene_files
from tfgan3d.data.scene_files import (TEST_INDEX_OFFSET, depth_to_grey, depth_to_png16,
                                      write_scene_dataset)
from tfgan3d.data.scenes import MAX_DEPTH, SCENE_CLASSES, render_scene
from tfgan3d.tools.make_dataset import main

H, W = 32, 48
META_KEYS = {"format", "layout", "domain", "seed", "height", "width", "n_train", "n_test",
             "classes", "depth_scale", "depth_encoding", "grey_convention", "max_depth"}


def _read(path):
    return np.array(Image.open(path))


def test_folders_layout_round_trip(tmp_path):
    out = write_scene_dataset(tmp_path / "set", "real-like", 2, 1, H, W, seed=4)
    assert out == tmp_path / "set"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # no temporary folder left
    for split, index in (("train", 1), ("test", TEST_INDEX_OFFSET)):
        scene = render_scene(index, "real-like", H, W, seed=4)
        name = "000001.png" if split == "train" else "000000.png"
        np.testing.assert_array_equal(_read(out / split / "rgb" / name), scene["rgb"])
        np.testing.assert_array_equal(_read(out / split / "labels" / name), scene["labels"])
        depth = _read(out / split / "depth" / name)
        assert depth.dtype == np.uint16 and depth.shape == (H, W)
        np.testing.assert_array_equal(depth == 0, scene["sensor_depth"] == 0)
        np.testing.assert_allclose(depth * 0.001, scene["sensor_depth"], atol=0.0005 + 1e-6)
    meta = json.loads((out / "dataset.json").read_text())
    assert set(meta) == META_KEYS
    assert meta["classes"] == list(SCENE_CLASSES) and meta["depth_encoding"] == "png16"
    assert (meta["n_train"], meta["n_test"], meta["height"], meta["width"]) == (2, 1, H, W)
    assert meta["max_depth"] == MAX_DEPTH and meta["domain"] == "real-like"


def test_depth_scale_sets_the_png_units(tmp_path):
    out = write_scene_dataset(tmp_path / "set", "virtual", 1, 0, H, W, depth_scale=0.01)
    exact = render_scene(0, "virtual", H, W)["depth"]
    np.testing.assert_allclose(_read(out / "train" / "depth" / "000000.png") * 0.01, exact,
                               atol=0.005 + 1e-6)
    assert json.loads((out / "dataset.json").read_text())["depth_scale"] == 0.01


def test_png16_and_grey_encodings():
    np.testing.assert_array_equal(depth_to_png16(np.array([0.0, 1.2344, 70.0])), [0, 1234, 65535])
    depth = np.array([0.0, 2.5, MAX_DEPTH])
    np.testing.assert_array_equal(depth_to_grey(depth, "near-dark"), [0, 64, 255])
    np.testing.assert_array_equal(depth_to_grey(depth, "near-bright"), [0, 191, 0])
    with pytest.raises(ValueError, match="near-dark, near-bright"):
        depth_to_grey(depth, "inverse")


def test_aligned_layout_pairs_and_grey_conventions(tmp_path):
    dark = write_scene_dataset(tmp_path / "dark", "real-like", 1, 1, H, W, layout="aligned")
    bright = write_scene_dataset(tmp_path / "bright", "real-like", 1, 1, H, W, layout="aligned",
                                 grey_convention="near-bright")
    scene = render_scene(0, "real-like", H, W)
    pair_dark = _read(dark / "train" / "000000.png")
    pair_bright = _read(bright / "train" / "000000.png")
    assert pair_dark.shape == (H, 2 * W, 3) and (dark / "test" / "000000.png").exists()
    np.testing.assert_array_equal(pair_dark[:, :W], scene["rgb"])
    grey_dark, grey_bright = pair_dark[:, W:].astype(int), pair_bright[:, W:].astype(int)
    assert np.all(grey_dark == grey_dark[..., :1]) and np.all(grey_bright == grey_bright[..., :1])
    valid = scene["sensor_depth"] > 0
    assert 0 < valid.mean() < 1
    np.testing.assert_array_equal(grey_dark[valid, 0] + grey_bright[valid, 0], 255)
    assert np.all(grey_dark[~valid] == 0) and np.all(grey_bright[~valid] == 0)
    np.testing.assert_array_equal(grey_dark[..., 0],
                                  np.round(255 * scene["sensor_depth"] / MAX_DEPTH))
    meta = json.loads((bright / "dataset.json").read_text())
    assert meta["depth_encoding"] == "grey8" and meta["grey_convention"] == "near-bright"


def test_aligned_layout_as_jpeg(tmp_path):
    out = write_scene_dataset(tmp_path / "set", "virtual", 2, 0, H, W, layout="aligned",
                              image_format="jpg")
    assert sorted(p.name for p in (out / "train").iterdir()) == ["000000.jpg", "000001.jpg"]
    assert Image.open(out / "train" / "000000.jpg").format == "JPEG"
    assert _read(out / "train" / "000000.jpg").shape == (H, 2 * W, 3)


def test_refuses_to_overwrite_unless_asked(tmp_path):
    out = write_scene_dataset(tmp_path / "set", "virtual", 2, 1, H, W)
    with pytest.raises(FileExistsError, match="set.*overwrite"):
        write_scene_dataset(out, "virtual", 1, 1, H, W)
    assert len(list((out / "train" / "rgb").iterdir())) == 2
    write_scene_dataset(out, "virtual", 1, 1, H, W, overwrite=True)
    assert len(list((out / "train" / "rgb").iterdir())) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    real, calls = scene_files.render_scenes, []

    def fails_on_second_chunk(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise RuntimeError("renderer failed")
        return real(*args, **kwargs)

    monkeypatch.setattr(scene_files, "render_scenes", fails_on_second_chunk)
    with pytest.raises(RuntimeError, match="renderer failed"):
        write_scene_dataset(tmp_path / "set", "virtual", 3, 0, H, W, chunk_size=1)
    assert list(tmp_path.iterdir()) == []


def test_bad_arguments_are_named(tmp_path):
    with pytest.raises(ValueError, match="'grid'.*folders, aligned"):
        write_scene_dataset(tmp_path / "a", "virtual", 1, 1, H, W, layout="grid")
    with pytest.raises(ValueError, match="'jpg'.*aligned"):
        write_scene_dataset(tmp_path / "b", "virtual", 1, 1, H, W, image_format="jpg")
    with pytest.raises(ValueError, match="'sun'.*virtual, real-like"):
        write_scene_dataset(tmp_path / "c", "sun", 1, 1, H, W)
    with pytest.raises(ValueError, match="n_train.*-1"):
        write_scene_dataset(tmp_path / "d", "virtual", -1, 1, H, W)
    assert list(tmp_path.iterdir()) == []


def test_workers_write_the_same_files(tmp_path):
    one = write_scene_dataset(tmp_path / "one", "real-like", 3, 1, H, W, chunk_size=1)
    two = write_scene_dataset(tmp_path / "two", "real-like", 3, 1, H, W, chunk_size=1,
                              workers=2)
    for path in sorted(one.rglob("*.png")):
        assert path.read_bytes() == (two / path.relative_to(one)).read_bytes()


def test_cli_writes_a_tiny_set(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["--domain", "virtual", "--n-train", "2", "--n-test", "1", "--height", str(H),
            "--width", str(W), "--layout", "aligned", "--grey-convention", "near-bright",
            "--out", str(out)]
    assert main(argv) == 0
    assert str(out) in capsys.readouterr().out
    meta = json.loads((out / "dataset.json").read_text())
    assert (meta["height"], meta["width"], meta["layout"]) == (H, W, "aligned")
    assert meta["grey_convention"] == "near-bright"
    assert _read(out / "test" / "000000.png").shape == (H, 2 * W, 3)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 1
    assert "overwrite" in capsys.readouterr().err


def test_a_folder_filled_during_the_write_is_not_replaced(tmp_path, monkeypatch):
    real = scene_files.render_scenes

    def filled_meanwhile(*args, **kwargs):
        (tmp_path / "set").mkdir(exist_ok=True)
        (tmp_path / "set" / "theirs.txt").write_text("another writer")
        return real(*args, **kwargs)

    monkeypatch.setattr(scene_files, "render_scenes", filled_meanwhile)
    with pytest.raises(FileExistsError, match="set"):
        write_scene_dataset(tmp_path / "set", "virtual", 1, 0, H, W)
    assert sorted(p.name for p in (tmp_path / "set").iterdir()) == ["theirs.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]
