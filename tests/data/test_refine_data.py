"""Sources of the simgan mode: built-in eyes and depth maps, user folders, and their checks."""
import numpy as np
import pytest

from tfgan3d.data.eyes import render_split
from tfgan3d.data.images import DataError
from tfgan3d.data.refine_data import (builtin_arrays, depth_to_unit, labeled_test_set,
                                      make_refine_datasets)

H, W = 8, 12


def take(ds, batches=1):
    """The first `batches` batches as numpy dicts, concatenated."""
    out = [{k: v.numpy() for k, v in b.items()} for b in ds.take(batches)]
    return {k: np.concatenate([b[k] for b in out]) for k in out[0]}


def grey_value(k):
    return 10 + 40 * k  # 8-bit grey of synthetic image k


@pytest.fixture
def folders(tmp_path, write):
    """tmp/syn: 4 constant 8-bit grey PNGs, labels k, 2k, 3k; tmp/real: 3 constant 16-bit PNGs."""
    syn, real = tmp_path / "syn", tmp_path / "real"
    lines = ["file,gaze_x,gaze_y,gaze_z"]
    for k in range(4):
        write(syn / f"e{k}.png", np.full((H, W), grey_value(k), np.uint8))
        lines.append(f"e{k}.png,{k},{2 * k},{3 * k}")
    (syn / "labels.csv").write_text("\n".join(lines) + "\n")
    for k, value in enumerate((0, 32768, 65535)):
        write(real / f"r{k}.png", np.full((H, W), value, np.uint16))
    return syn, real


def test_depth_to_unit_worked_example():
    np.testing.assert_allclose(depth_to_unit([0.0, 5.0, 10.0, 20.0, 2.5]),
                               [-1.0, 0.0, 1.0, 1.0, -0.5])


def test_builtin_eyes_streams(tmp_path):
    synthetic_ds, real_ds, info = make_refine_datasets(
        "builtin:eyes", batch_size=6, n_synthetic=12, n_real=8, cache_dir=tmp_path)
    assert info["image_shape"] == (35, 55, 1) and info["label_shape"] == (5,)
    assert info["label_names"][:3] == ("gaze_x", "gaze_y", "gaze_z")
    assert (info["n_synthetic"], info["n_real"]) == (12, 8)
    batch = take(synthetic_ds, 3)  # more than one pass: the stream repeats
    assert batch["image"].shape == (18, 35, 55, 1) and batch["label"].shape == (18, 5)
    assert batch["image"].min() >= -1 and batch["image"].max() <= 1
    np.testing.assert_allclose(np.linalg.norm(batch["label"][:, :3], axis=1), 1, atol=1e-5)
    # image and label stay paired through the shuffle
    eyes = render_split("synthetic-train", 12)
    for image, label in zip(batch["image"], batch["label"]):
        k = int(np.argmin(np.abs(eyes["gaze"] - label[:3]).sum(axis=1)))
        np.testing.assert_allclose(image, 2 * eyes["image"][k] - 1, atol=1e-6)
    real = take(real_ds)
    assert set(real) == {"image"} and real["image"].shape == (6, 35, 55, 1)
    assert len(list(tmp_path.glob("refine-eyes-*.npz"))) == 2  # cached
    images, labels = builtin_arrays("builtin:eyes", "synthetic", 12, cache_dir=tmp_path)
    np.testing.assert_allclose(images, 2 * eyes["image"] - 1, atol=1e-6)


def test_builtin_eyes_resized_and_test_set(tmp_path):
    images, labels = labeled_test_set("builtin:eyes", n=4, cache_dir=False)
    test = render_split("real-test", 4)
    np.testing.assert_allclose(images, 2 * test["image"] - 1, atol=1e-6)
    np.testing.assert_allclose(labels[:, :3], test["gaze"])
    big, big_labels = labeled_test_set("builtin:eyes", n=4, image_size=(70, 110),
                                       cache_dir=False)
    assert big.shape == (4, 70, 110, 1)
    np.testing.assert_allclose(big_labels[:, 3:], (test["pupil"] + 0.5) * 2 - 0.5, rtol=1e-5)


def test_builtin_depth_clean_vs_sensor(tmp_path):
    synthetic_ds, real_ds, info = make_refine_datasets(
        "builtin:depth", "builtin:depth", batch_size=4, n_synthetic=4, n_real=4,
        image_size=(24, 24), cache_dir=tmp_path)
    assert info["image_shape"] == (24, 24, 1) and info["label_shape"] == (0,)
    clean, sensor = take(synthetic_ds)["image"], take(real_ds)["image"]
    assert clean.shape == sensor.shape == (4, 24, 24, 1)
    assert clean.min() > -1 and clean.max() <= 1  # dense, valid depth everywhere
    assert (sensor == -1).mean() > 0.01  # holes of the real-like sensor
    images, labels = labeled_test_set("builtin:depth", n=2, image_size=(24, 24),
                                      cache_dir=tmp_path)
    assert images.shape == labels.shape == (2, 24, 24, 1)
    holes = images == -1
    assert holes.any() and (labels[holes] > -1).all()  # the labels are the exact depth


def test_folder_round_trip_with_8_and_16_bit(folders):
    syn, real = folders
    synthetic_ds, real_ds, info = make_refine_datasets(syn, real, batch_size=2)
    assert info["image_shape"] == (H, W, 1) and info["label_names"] == ("gaze_x", "gaze_y",
                                                                        "gaze_z")
    batch = take(synthetic_ds, 4)
    assert batch["image"].shape == (8, H, W, 1)
    for image, label in zip(batch["image"], batch["label"]):
        assert np.ptp(image) == 0
        k = (np.round((image[0, 0, 0] + 1) / 2 * 255) - 10) / 40
        np.testing.assert_allclose(label, [k, 2 * k, 3 * k])
    seen = sorted({round(float(v), 6) for v in take(real_ds, 3)["image"].ravel()})
    np.testing.assert_allclose(seen, [-1.0, 2 * 32768 / 65535 - 1, 1.0], atol=1e-6)


def test_folder_colour_and_resizing(tmp_path, write, folders):
    syn, _ = folders
    rgb = tmp_path / "rgb"
    for k in range(2):
        write(rgb / f"c{k}.png", np.full((2 * H, 2 * W, 3), (255, 0, 0), np.uint8))
    with pytest.raises(DataError, match="give --image-size HEIGHT WIDTH"):
        make_refine_datasets(syn, rgb, batch_size=2)
    _, real_ds, info = make_refine_datasets(syn, rgb, batch_size=2, image_size=(H, W),
                                            grey=False)
    assert info["image_shape"] == (H, W, 3)
    np.testing.assert_allclose(take(real_ds)["image"][0, 0, 0], [1, -1, -1], atol=1e-6)
    _, real_ds, _ = make_refine_datasets(syn, rgb, batch_size=2, image_size=(H, W))
    np.testing.assert_allclose(take(real_ds)["image"][0, 0, 0], [2 * 76 / 255 - 1], atol=0.01)
    images, labels = labeled_test_set(syn)
    assert images.shape == (4, H, W, 1) and labels.shape == (4, 3)
    np.testing.assert_allclose(images[:, 0, 0, 0], [2 * grey_value(k) / 255 - 1
                                                    for k in range(4)], atol=1e-6)


def test_csv_naming_a_missing_file(folders):
    syn, real = folders
    with open(syn / "labels.csv", "a") as f:
        f.write("nope.png,1,2,3\n")
    with pytest.raises(DataError, match=r"labels\.csv: row 6 names 'nope\.png'"):
        make_refine_datasets(syn, real, batch_size=2)


def test_csv_row_with_wrong_label_count(folders):
    syn, real = folders
    text = (syn / "labels.csv").read_text().replace("e2.png,2,4,6", "e2.png,2,4")
    (syn / "labels.csv").write_text(text)
    with pytest.raises(DataError, match=r"labels\.csv: row 4 has 2 label values, expected 3"):
        make_refine_datasets(syn, real, batch_size=2)


def test_csv_label_columns_and_numbers_are_checked(folders):
    syn, real = folders
    with pytest.raises(DataError, match=r"\['pupil_x'\] are not in the header"):
        make_refine_datasets(syn, real, batch_size=2, label_columns=["gaze_x", "pupil_x"])
    _, _, info = make_refine_datasets(syn, real, batch_size=2, label_columns=["gaze_y"])
    assert info["label_shape"] == (1,)
    text = (syn / "labels.csv").read_text().replace("e1.png,1,2,3", "e1.png,1,two,3")
    (syn / "labels.csv").write_text(text)
    with pytest.raises(DataError, match=r"row 3 \(e1\.png\): expected numeric"):
        make_refine_datasets(syn, real, batch_size=2)
    for value in ("nan", "inf"):             # float() reads both; a label must be finite
        (syn / "labels.csv").write_text(text.replace("e1.png,1,two,3", f"e1.png,1,{value},3"))
        with pytest.raises(DataError, match=rf"row 3 \(e1\.png\): expected finite labels, "
                                            rf"found \w+={value}"):
            make_refine_datasets(syn, real, batch_size=2)
    (syn / "labels.csv").unlink()
    with pytest.raises(DataError, match=r"labels\.csv: expected a labels CSV"):
        make_refine_datasets(syn, real, batch_size=2)


def test_empty_real_folder_is_named(folders, tmp_path):
    syn, _ = folders
    empty = tmp_path / "empty_real"
    empty.mkdir()
    with pytest.raises(DataError, match="empty_real"):
        make_refine_datasets(syn, empty, batch_size=2)


def test_unreadable_image_is_named(folders):
    syn, real = folders
    (real / "r9.png").write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"r9\.png"):
        make_refine_datasets(syn, real, batch_size=2)


def test_images_of_two_sizes_are_both_named(folders, write):
    syn, real = folders
    write(real / "r5.png", np.zeros((H + 1, W), np.uint8))
    with pytest.raises(DataError, match=r"r0\.png of 8x12 and .*r5\.png of 9x12"):
        make_refine_datasets(syn, real, batch_size=2)


def test_unknown_builtin_lists_the_valid_ones():
    with pytest.raises(DataError, match="builtin:eyes, builtin:depth"):
        make_refine_datasets("builtin:hands", batch_size=2)
