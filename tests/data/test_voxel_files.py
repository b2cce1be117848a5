"""Voxel scene files, the one-hot tf.data pipeline and the voxel_data CLI."""
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from tfgan3d.data import builtin, voxel_formats
from tfgan3d.data.images import DataError
from tfgan3d.data.voxel_files import (convert, iter_voxel_source, list_voxel_files,
                                      make_voxel_dataset)
from tfgan3d.data.voxel_formats import (load_shard, load_voxel_file, write_builtin_voxels,
                                        write_scenevox, write_shards)
from tfgan3d.data.voxels import downsample_labels, make_scenes
from tfgan3d.tools import voxel_data

GRID = (16, 8, 16)


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(40, seed=0, grid=GRID)


def _labels(dataset):
    batches = [b.numpy() for b in dataset]
    one_hot = np.concatenate(batches)
    assert one_hot.dtype == np.float32 and one_hot.shape[1:] == (*GRID, 12)
    np.testing.assert_array_equal(one_hot.sum(-1), 1.0)
    return one_hot.argmax(-1)


def test_scenevox_layout_round_trip_and_95_5_split(tmp_path, scenes):
    root = write_scenevox(scenes, tmp_path / "data")
    train, test = list_voxel_files(root, "train"), list_voxel_files(root, "test")
    assert (len(train), len(test)) == (38, 2)
    assert train[0].endswith(os.path.join("Scenevox", "scene000000", "room0.npy"))
    assert list_voxel_files(os.path.join(root, "Scenevox"), "test") == test
    np.testing.assert_array_equal(np.stack([load_voxel_file(p, GRID) for p in test]), scenes[38:])
    limited = list_voxel_files(root, "test", test_limit=1, seed=3)
    assert len(limited) == 1 and limited[0] in test
    assert list_voxel_files(root, "test", test_limit=1, seed=3) == limited


def test_scenevox_lists_scene_and_model_ids_in_sorted_order(tmp_path, scenes):
    for i, (scene_id, model_id) in enumerate([("b", "m2"), ("a", "z"), ("b", "m1"), ("a", "a")]):
        os.makedirs(tmp_path / "Scenevox" / scene_id, exist_ok=True)
        np.save(tmp_path / "Scenevox" / scene_id / f"{model_id}.npy", scenes[i].astype(np.int32))
    names = [name for name, _ in iter_voxel_source(tmp_path, "all")]
    assert names == ["a/a", "a/z", "b/m1", "b/m2"]
    assert [name for name, _ in iter_voxel_source(tmp_path, "test")] == ["b/m2"]
    # int32 files (as in the original) are read by numpy in the pipeline
    labels = _labels(make_voxel_dataset(tmp_path, split="all", batch_size=4, shuffle=False,
                                        flip=False, deterministic=True))
    np.testing.assert_array_equal(labels, scenes[[3, 1, 2, 0]])


@pytest.mark.parametrize("fmt", ["npz", "tfrecord"])
def test_shards_round_trip(tmp_path, scenes, fmt):
    names = [f"s{i}/m" for i in range(40)]
    out = write_shards(scenes, names, tmp_path / fmt, shard_size=16, format=fmt, split="train")
    files = list_voxel_files(out, "train")
    assert [os.path.basename(f).split(".")[0] for f in files] == [
        f"shard-0000{k}-of-00003" for k in range(3)]
    manifest = json.loads(open(os.path.join(out, "manifest.json")).read())
    assert manifest["n"] == 40 and manifest["grid"] == list(GRID) and manifest["split"] == "train"
    assert manifest["classes"][6] == "bed"
    loaded = [load_shard(f, GRID) for f in files]
    np.testing.assert_array_equal(np.concatenate([v for v, _ in loaded]), scenes)
    assert sum((n for _, n in loaded), []) == names
    with pytest.raises(DataError, match="'train' split"):
        list_voxel_files(out, "test")


def test_write_is_atomic_and_does_not_overwrite(tmp_path, scenes):
    bad = list(scenes[:6])
    bad[4] = bad[4].copy()
    bad[4][0, 0, 0] = 12
    with pytest.raises(DataError, match=r"scene 4 .*label 12"):
        write_shards(bad, None, tmp_path / "out", shard_size=2)
    assert os.listdir(tmp_path) == []  # no half-written folder, no temporary left
    write_shards(scenes[:2], None, tmp_path / "out")
    with pytest.raises(FileExistsError, match="overwrite"):
        write_shards(scenes[:3], None, tmp_path / "out")
    write_shards(scenes[:3], None, tmp_path / "out", overwrite=True)
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["n"] == 3
    assert sorted(os.listdir(tmp_path)) == ["out"]


def test_bad_files_are_named_with_what_was_found(tmp_path, scenes):
    write_scenevox(scenes[:4], tmp_path / "sv")
    files = list_voxel_files(tmp_path / "sv", "all")
    np.save(files[1], np.zeros((16, 8, 15), np.uint8))
    with pytest.raises(DataError, match=r"scene000001.*expected grid \(16, 8, 16\).*\(16, 8, 15\)"):
        make_voxel_dataset(tmp_path / "sv", split="all", validate=True)
    wrong_label = scenes[2].copy()
    wrong_label[3, 4, 5] = 12
    np.save(files[2], wrong_label)
    with pytest.raises(DataError, match=r"scene000002.*label 12 .*voxel \(3, 4, 5\)"):
        load_voxel_file(files[2])
    with open(files[3], "wb") as f:
        f.write(b"\x93NUMPY\x01\x00garbage")
    with pytest.raises(DataError, match="scene000003.*cannot read"):
        load_voxel_file(files[3])
    out = write_shards(scenes[:3], None, tmp_path / "npz")
    shard = list_voxel_files(out, "all")[0]
    bad = scenes[:3].copy()
    bad[1, 2, 3, 4] = 255
    np.savez(shard, voxels=bad, names=np.array(["a", "b", "c"]))
    with pytest.raises(DataError, match=r"shard-00000-of-00001.npz: label 255 .*scene 1, voxel "
                                        r"\(2, 3, 4\)"):
        load_voxel_file(shard)
    with open(shard, "wb") as f:
        f.write(b"PK\x03\x04 not a zip")
    with pytest.raises(DataError, match="shard-00000-of-00001.npz.*cannot read"):
        load_voxel_file(shard)
    os.makedirs(tmp_path / "empty")
    with pytest.raises(DataError, match="empty: no voxel files"):
        make_voxel_dataset(tmp_path / "empty")


def test_in_graph_checks_name_the_file(tmp_path, scenes):
    write_scenevox(scenes[:3], tmp_path / "sv")
    files = list_voxel_files(tmp_path / "sv", "all")
    wrong_label = scenes[1].copy()
    wrong_label[0, 0, 0] = 12
    np.save(files[1], wrong_label)
    dataset = make_voxel_dataset(tmp_path / "sv", split="all", validate="first", batch_size=3)
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"scene000001.*max\] \[12\]"):
        list(dataset)


@pytest.mark.parametrize("fmt", ["scenevox", "npz", "tfrecord", "array"])
def test_dataset_is_one_hot_of_the_labels(tmp_path, scenes, fmt):
    if fmt == "array":
        source = scenes
    else:
        source = write_builtin_voxels(tmp_path / fmt, 38, 2, format=fmt, grid=GRID)
    labels = _labels(make_voxel_dataset(source, split="train", batch_size=16, shuffle=False,
                                        flip=False, deterministic=True))
    np.testing.assert_array_equal(labels, scenes if fmt == "array" else scenes[:38])
    dataset = make_voxel_dataset(source, split="train", batch_size=16, drop_remainder=True)
    assert dataset.element_spec.shape == (16, *GRID, 12)
    labels = make_voxel_dataset(source, split="train", batch_size=40, shuffle=False, flip=False,
                                one_hot=False)
    batch = next(iter(labels)).numpy()
    assert batch.dtype == np.uint8
    np.testing.assert_array_equal(batch, scenes if fmt == "array" else scenes[:38])


def test_shuffle_keeps_every_scene_once(scenes):
    labels = _labels(make_voxel_dataset(scenes, batch_size=7, flip=False, seed=1))
    assert not np.array_equal(labels, scenes)
    order = [int(np.flatnonzero((scenes == s).all(axis=(1, 2, 3)))[0]) for s in labels]
    assert sorted(order) == list(range(40))


def test_flips_mirror_x_and_z(scenes):
    scene = scenes[5]
    variants = {"same": scene, "x": np.flip(scene, 0), "z": np.flip(scene, 2),
                "xz": np.flip(scene, (0, 2))}
    assert len({v.tobytes() for v in variants.values()}) == 4
    dataset = make_voxel_dataset(scene, batch_size=1, shuffle=False, repeat=True, seed=4)
    seen = []
    for batch in dataset.take(24):
        label = batch.numpy()[0].argmax(-1)
        match = [k for k, v in variants.items() if np.array_equal(label, v)]
        assert len(match) == 1
        seen += match
    assert set(seen) == set(variants)
    unflipped = make_voxel_dataset(scene, batch_size=1, shuffle=False, flip=False, repeat=3)
    assert all(np.array_equal(b.numpy()[0].argmax(-1), scene) for b in unflipped)


def test_expected_grid_mismatch_is_reported_before_training(tmp_path, scenes):
    out = write_shards(scenes[:2], None, tmp_path / "npz")
    with pytest.raises(DataError, match=r"expected grid \(80, 48, 80\).*found \(16, 8, 16\)"):
        make_voxel_dataset(out, split="all", grid=(80, 48, 80))


def test_builtin_source_is_generated_once_and_cached(tmp_path, monkeypatch, scenes):
    monkeypatch.setenv("TFGAN3D_CACHE", str(tmp_path))
    root = builtin.resolve_voxel_source("builtin:voxels", n_train=6, n_test=2, grid=GRID)
    assert root.startswith(str(tmp_path))
    np.testing.assert_array_equal(np.concatenate(
        [load_voxel_file(f) for f in list_voxel_files(root, "train")]), scenes[:6])
    np.testing.assert_array_equal(np.concatenate(
        [load_voxel_file(f) for f in list_voxel_files(root, "test")]), scenes[6:8])

    def fail(*args, **kwargs):
        raise AssertionError("generated again")
    monkeypatch.setattr(voxel_formats, "write_builtin_voxels", fail)
    assert builtin.resolve_voxel_source("builtin:voxels", n_train=6, n_test=2, grid=GRID) == root
    with pytest.raises(DataError, match="builtin:voxels"):
        builtin.resolve_voxel_source("builtin:voxel")


def test_convert_keeps_splits_and_reduces_grids(tmp_path, scenes):
    src = write_builtin_voxels(tmp_path / "npz", 38, 2, grid=GRID, shard_size=10)
    sv = convert(src, tmp_path / "sv", "scenevox")
    np.testing.assert_array_equal(
        np.stack([s for _, s in iter_voxel_source(sv, "test")]), scenes[38:])
    small = convert(sv, tmp_path / "small", "tfrecord", grid=(8, 4, 8))
    assert sorted(os.listdir(small)) == ["test", "train"]
    train = np.concatenate([load_voxel_file(f) for f in list_voxel_files(small, "train")])
    assert train.shape == (38, 8, 4, 8)
    np.testing.assert_array_equal(train[0], downsample_labels(scenes[0], (8, 4, 8)))


def test_cli_builtin_stats_convert(tmp_path, capsys):
    assert voxel_data.FORMATS == voxel_formats.FORMATS  # the CLI keeps its own copy
    out = str(tmp_path / "b")
    assert voxel_data.main(["builtin", "--n", "20", "--out", out, "--grid", "16x8x16"]) == 0
    assert "19 train + 1 test" in capsys.readouterr().out
    voxel_data.main(["stats", out, "--json"])
    stats = json.loads(capsys.readouterr().out)
    assert stats["n"] == 20 and abs(sum(stats["class_fractions"].values()) - 1) < 1e-9
    voxel_data.main(["stats", out, "--split", "test"])
    table = capsys.readouterr().out
    assert " 6  bed" in table and "scenes 1," in table
    voxel_data.main(["convert", out, str(tmp_path / "t"), "--format", "tfrecord"])
    assert len(list_voxel_files(tmp_path / "t", "train")) == 1
    with pytest.raises(SystemExit) as exit_info:
        voxel_data.main(["convert", out, str(tmp_path / "t"), "--format", "npz"])
    assert exit_info.value.code == 1 and "exists" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        voxel_data.main(["builtin", "--n", "4", "--out", out, "--grid", "16x8"])
