"""Sim2real loaders over tiny files written here: VKITTI-like colour labels and centimetre
depth, class maps, KITTI-like sparse depth, unknown colours, and the built-in sources."""
import json

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from tfgan3d.data import classes
from tfgan3d.data import sim2real_data as sd
from tfgan3d.data.images import DataError

H, W = 4, 6
TABLE = [("Terrain", (210, 0, 200)), ("Sky", (90, 200, 255)), ("Car:0", (255, 127, 80)),
         ("Car:1", (200, 100, 50)), ("Road", (100, 60, 100)), ("Misc", (80, 80, 80))]
# Column x of every sim image shows table entry x: Terrain, Sky, Car:0, Car:1, Road, Misc.
COLOUR_IDS = np.array([0, 1, 2, 3, 4, 5])


def sim_depth_cm(k):
    y, x = np.mgrid[:H, :W]
    return (100 * (x + 1) + 10 * y + k).astype(np.uint16)


def write_sim(root, write, n=3, table_name="colors.txt", bad_colour=None):
    """SIM/rgb, depth (16-bit cm), classgt (colours) and a colour table with a header line."""
    for k in range(n):
        rgb = np.zeros((H, W, 3), np.uint8)
        rgb[..., 0] = 40 * k  # the sample index, readable after shuffling
        write(root / "rgb" / f"s{k}.png", rgb)
        write(root / "depth" / f"s{k}.png", sim_depth_cm(k))
        colours = np.array([TABLE[i][1] for i in COLOUR_IDS], np.uint8)
        label = np.broadcast_to(colours[None], (H, W, 3)).copy()
        if bad_colour is not None and k == n - 1:
            label[1, 2] = bad_colour
        write(root / "classgt" / f"s{k}.png", label)
    lines = ["Category r g b"] + [f"{name} {r} {g} {b}" for name, (r, g, b) in TABLE]
    (root / table_name).write_text("\n".join(lines) + "\n")
    return root


def write_real(root, write, split, n=2, depth=True, labels=True):
    """REAL/SPLIT/rgb and, when asked, KITTI sparse depth (metres * 256, 0 invalid) and ids."""
    for k in range(n):
        write(root / split / "rgb" / f"r{k}.png", np.full((H, W, 3), 20 * k, np.uint8))
        if depth:
            y, x = np.mgrid[:H, :W]
            raw = np.where((x + y + k) % 3 == 0, 0, 256 * (x + 1) + 64 * y).astype(np.uint16)
            write(root / split / "depth" / f"r{k}.png", raw)
        if labels:
            ids = np.tile(np.array([0, 1, 2, 3, 255, 1], np.uint8), (H, 1))
            write(root / split / "labels" / f"r{k}.png", ids)
    return root


def one_batch(ds):
    return {k: v.numpy() for k, v in next(iter(ds)).items()}


def config(tmp_path, **extra):
    return {"sim_data": str(tmp_path / "sim"), "real_data": str(tmp_path / "real"),
            "image_size": (H, W), "batch_size": 2, "flip": False, "deterministic": True,
            **extra}


def test_vkitti_colour_labels_and_centimetre_depth(tmp_path, write):
    write_sim(tmp_path / "sim", write)
    write_real(tmp_path / "real", write, "train", depth=False, labels=False)
    sim_ds, real_ds, info = sd.make_sim2real_datasets(config(tmp_path))
    # No class map: the simulation's classes, "Car:0" and "Car:1" both count as "Car".
    assert info["class_names"] == ["Terrain", "Sky", "Car", "Road", "Misc"]
    assert info["num_classes"] == 5 and info["n_sim"] == 2  # 90-10 split: s0, s1 train
    batch = one_batch(sim_ds)
    assert set(batch) == {"image", "depth", "depth_valid", "labels"}
    assert batch["labels"].dtype == np.int32 and batch["labels"].shape == (2, H, W)
    np.testing.assert_array_equal(batch["labels"][0], np.tile([0, 1, 2, 2, 3, 4], (H, 1)))
    k = np.round((batch["image"][:, 0, 0, 0] + 1) * 127.5 / 40).astype(int)
    for i, sample in enumerate(k):
        np.testing.assert_allclose(batch["depth"][i, ..., 0], sim_depth_cm(sample) * 0.01,
                                   rtol=1e-6)
    assert batch["depth_valid"].min() == 1.0
    assert batch["image"].min() >= -1 and batch["image"].max() <= 1
    assert set(one_batch(real_ds)) == {"image"}
    test_ds, test_info = sd.make_eval_dataset(str(tmp_path / "sim"), config=config(tmp_path),
                                              role="sim")
    assert [n.decode() for n in one_batch(test_ds)["name"]] == ["s2"]


def test_class_map_json_csv_and_kitti12(tmp_path, write):
    write_sim(tmp_path / "sim", write, table_name="classes.csv")
    write_real(tmp_path / "real", write, "train", depth=False, labels=False)
    mapping = {"classes": ["ground", "sky", "vehicle"],
               "map": {"Terrain": "ground", "Road": "ground", "Sky": 1, "Car": "vehicle",
                       "Misc": None}}
    (tmp_path / "map.json").write_text(json.dumps(mapping))
    (tmp_path / "map.csv").write_text("source,target\n# comment\nTerrain,ground\nSky,sky\n"
                                      "Car,vehicle\nRoad,ground\nMisc,ignore\n")
    expected = np.tile([0, 1, 2, 2, 0, 255], (H, 1))
    for path in ("map.json", "map.csv"):
        sim_ds, _, info = sd.make_sim2real_datasets(
            config(tmp_path, class_map=str(tmp_path / path), num_classes=3))
        assert info["class_names"] == ["ground", "sky", "vehicle"], path
        np.testing.assert_array_equal(one_batch(sim_ds)["labels"][1], expected)
    with pytest.raises(DataError, match="--num-classes 4: expected the 3 classes"):
        sd.make_sim2real_datasets(config(tmp_path, class_map=str(tmp_path / "map.json"),
                                         num_classes=4))
    (tmp_path / "bad.json").write_text(json.dumps({"classes": ["a"], "map": {"Sky": "b"}}))
    with pytest.raises(DataError, match="bad.json.*'b'.*not among"):
        classes.load_class_map(tmp_path / "bad.json")
    kitti = classes.load_class_map("kitti12")
    assert kitti.classes == classes.KITTI12_CLASSES and len(kitti.classes) == 12
    assert kitti.target("Tree") == kitti.target("Vegetation") == 2
    assert kitti.target("26") == 10 and kitti.target("Car:7") == 10  # Cityscapes id, VKITTI 1
    assert kitti.target("Misc") == kitti.target("Undefined") == 255


def test_kitti_sparse_depth_and_real_labels(tmp_path, write):
    write_sim(tmp_path / "sim", write)
    write_real(tmp_path / "real", write, "train", depth=False, labels=False)
    write_real(tmp_path / "real", write, "test")
    ds, info = sd.make_eval_dataset(str(tmp_path / "real"), config=config(tmp_path))
    assert info["has_depth"] and info["has_labels"] and info["count"] == 2
    batch = one_batch(ds)
    assert set(batch) == {"image", "depth", "depth_valid", "labels", "name"}
    y, x = np.mgrid[:H, :W]
    for k in range(2):
        invalid = (x + y + k) % 3 == 0
        np.testing.assert_array_equal(batch["depth_valid"][k, ..., 0], (~invalid).astype(float))
        np.testing.assert_allclose(batch["depth"][k, ..., 0],
                                   np.where(invalid, 0.0, (x + 1) + 0.25 * y), rtol=1e-6)
    # Ids without names are the simulation's class ids; 255 stays ignored.
    np.testing.assert_array_equal(batch["labels"][0, 0], [0, 1, 2, 3, 255, 1])
    # The training stream never carries real depth or labels.
    _, real_ds, _ = sd.make_sim2real_datasets(config(tmp_path))
    assert set(real_ds.element_spec) == {"image"}
    # A ground-truth size other than the image size: maps resized by nearest neighbour.
    ds, _ = sd.make_eval_dataset(str(tmp_path / "real"), config=config(tmp_path),
                                 gt_size=(2, 3))
    batch = one_batch(ds)
    assert batch["image"].shape == (2, H, W, 3) and batch["labels"].shape == (2, 2, 3)
    write(tmp_path / "real" / "test" / "labels" / "r1.png", np.full((H, W), 9, np.uint8))
    with pytest.raises(DataError, match=r"r1.png: label id\(s\) \[9\]"):
        sd.make_eval_dataset(str(tmp_path / "real"), config=config(tmp_path))
    Image.fromarray(np.zeros((H, W), np.uint8)).convert("P").save(
        tmp_path / "real" / "test" / "labels" / "r1.png")
    with pytest.raises(DataError, match="r1.png: expected an 8-bit grey PNG.*palette"):
        sd.make_eval_dataset(str(tmp_path / "real"), config=config(tmp_path))


def test_unknown_colour_names_file_and_colour(tmp_path, write):
    write_sim(tmp_path / "sim", write, bad_colour=(1, 2, 3))
    (tmp_path / "sim" / "classgt" / "s2.png").rename(tmp_path / "sim" / "classgt" / "s0x.png")
    (tmp_path / "sim" / "classgt" / "s0.png").rename(tmp_path / "sim" / "classgt" / "s2.png")
    (tmp_path / "sim" / "classgt" / "s0x.png").rename(tmp_path / "sim" / "classgt" / "s0.png")
    write_real(tmp_path / "real", write, "train", depth=False, labels=False)
    with pytest.raises(DataError, match=r"classgt/s0.png: label colour \(1, 2, 3\).*row 1, "
                                        r"column 2.*colors.txt"):
        sd.make_sim2real_datasets(config(tmp_path))
    # Unchecked files: the in-graph assertion stops the pipeline instead.
    sim_ds, _, _ = sd.make_sim2real_datasets(config(tmp_path, data_check="headers"))
    with pytest.raises(tf.errors.InvalidArgumentError, match="unknown label value"):
        for _ in sim_ds.take(4):
            pass
    (tmp_path / "sim" / "colors.txt").write_text("Category r g b\nSky 1 2 3\nRoad 1 2 3\n")
    with pytest.raises(DataError, match=r"colors.txt:3: colour \(1, 2, 3\).*'Sky'.*'Road'"):
        sd.make_sim2real_datasets(config(tmp_path))
    (tmp_path / "sim" / "colors.txt").unlink()
    with pytest.raises(DataError, match="colour table"):
        sd.make_sim2real_datasets(config(tmp_path))


def test_builtin_sources_keys_and_shapes():
    cfg = {"image_size": 16, "batch_size": 2, "n_train": 3, "n_test": 2, "seed": 0}
    sim_ds, real_ds, info = sd.make_sim2real_datasets(cfg)
    assert info["class_names"] == ["floor", "wall", "sphere", "box", "cone", "cylinder"]
    sim, real = one_batch(sim_ds), one_batch(real_ds)
    assert {k: v.shape for k, v in sim.items()} == {
        "image": (2, 16, 16, 3), "depth": (2, 16, 16, 1), "depth_valid": (2, 16, 16, 1),
        "labels": (2, 16, 16)}
    assert sim["image"].dtype == sim["depth"].dtype == np.float32
    assert 0 < sim["depth"].max() <= 10.0 and sim["depth_valid"].min() == 1.0  # dense, exact
    assert set(np.unique(sim["labels"])) <= set(range(6))
    assert set(real) == {"image"} and real["image"].shape == (2, 16, 16, 3)
    ds, eval_info = sd.make_eval_dataset("builtin:scenes-real", config=cfg, gt_size=8)
    batch = one_batch(ds)
    assert eval_info["count"] == 2 and eval_info["num_classes"] == 6
    assert batch["depth"].shape == (2, 8, 8, 1) and batch["labels"].shape == (2, 8, 8)
    assert batch["depth_valid"].min() == 0.0  # the real-like sensor has holes
    assert set(np.unique(batch["labels"])) <= set(range(6))
