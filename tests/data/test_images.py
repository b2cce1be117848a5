"""Single-file readers: depth encodings and scales, invalid masks, RGB channels, clear errors."""
import numpy as np
import pytest
import tensorflow as tf

from tfgan3d.data.images import (DataError, DepthSpec, decode_depth_tf, probe_image, read_depth,
                                 read_rgb)

RAW = np.array([[0, 1234, 2000], [256, 65535, 1]], np.uint16)


@pytest.mark.parametrize("scale", [0.001, 0.01, 1 / 256])
def test_png16_round_trip_with_scale(tmp_path, write, scale):
    path = write(tmp_path / "d.png", RAW)
    depth, valid = read_depth(path, DepthSpec(encoding="png16", depth_scale=scale))
    np.testing.assert_array_equal(valid, RAW > 0)
    np.testing.assert_allclose(depth, np.where(RAW > 0, RAW * scale, 0.0), rtol=1e-6)
    assert depth.dtype == np.float32 and depth.shape == RAW.shape
    # "auto" recognises the 16-bit PNG and gives the same metres.
    auto, _ = read_depth(path, DepthSpec(depth_scale=scale))
    np.testing.assert_array_equal(auto, depth)


@pytest.mark.parametrize("convention, expected", [
    ("near-dark", [0.0, 2.0, 10.0, 4.0]),     # 10 * g / 255
    ("near-bright", [0.0, 8.0, 0.0, 6.0]),    # 10 * (1 - g / 255); g=0 is invalid either way
])
def test_grey8_conventions(tmp_path, write, convention, expected):
    grey = np.array([[0, 51, 255, 102]], np.uint8)
    spec = DepthSpec(encoding="grey8", grey_convention=convention, max_depth=10.0)
    for path in (write(tmp_path / "g.png", grey),
                 write(tmp_path / "g3.png", np.repeat(grey[..., None], 3, -1))):
        depth, valid = read_depth(path, spec)
        np.testing.assert_array_equal(valid, [[False, True, True, True]])
        np.testing.assert_allclose(depth, [expected], atol=1e-5)


def test_grey8_jpeg_and_auto(tmp_path, write):
    grey = np.full((16, 16), 102, np.uint8)
    path = write(tmp_path / "g.jpg", grey, quality=100)
    depth, valid = read_depth(path, DepthSpec(max_depth=20.0))  # auto -> grey8
    assert valid.all()
    np.testing.assert_allclose(depth, 8.0, atol=0.2)


def test_colour_image_as_grey_depth_is_rejected(tmp_path, write):
    colour = np.zeros((8, 8, 3), np.uint8)
    colour[..., 0] = 200  # a colour-mapped depth, not grey
    path = write(tmp_path / "jet.png", colour)
    with pytest.raises(DataError, match="jet.png.*grey.*colour"):
        read_depth(path, DepthSpec(encoding="grey8"))


def test_npy_invalid_values_are_masked(tmp_path, write):
    values = np.array([[1.5, 0.0, np.nan], [np.inf, -2.0, 7.25]], np.float64)
    path = write(tmp_path / "d.npy", values[..., None])  # (H, W, 1) is accepted
    depth, valid = read_depth(path)
    np.testing.assert_array_equal(valid, [[True, False, False], [False, False, True]])
    np.testing.assert_array_equal(depth, np.float32([[1.5, 0, 0], [0, 0, 7.25]]))
    assert np.isfinite(depth).all()


def test_tf_decoder_matches_python_reader_for_every_encoding(tmp_path, write):
    files = {"png16": write(tmp_path / "a.png", RAW),
             "grey8": write(tmp_path / "b.png", RAW.astype(np.uint8)),
             "npy": write(tmp_path / "c.npy", RAW.astype(np.float32) / 100)}

    @tf.function
    def decode(data):  # graph mode, as inside tf.data
        return decode_depth_tf(data, DepthSpec())

    for encoding, path in files.items():
        expected_depth, expected_valid = read_depth(path, DepthSpec(encoding=encoding))
        depth, valid = decode(tf.io.read_file(str(path)))
        np.testing.assert_allclose(depth.numpy(), expected_depth, rtol=1e-6, err_msg=encoding)
        np.testing.assert_array_equal(valid.numpy(), expected_valid, err_msg=encoding)


def test_read_rgb_expands_grey_and_drops_alpha(tmp_path, write):
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    np.testing.assert_array_equal(read_rgb(write(tmp_path / "g.png", grey)),
                                  np.repeat(grey[..., None], 3, -1))
    rgba = np.random.default_rng(0).integers(0, 256, (3, 4, 4), dtype=np.uint8)
    rgb = read_rgb(write(tmp_path / "a.png", rgba))
    assert rgb.shape == (3, 4, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, rgba[..., :3])


@pytest.mark.parametrize("asked, data, found", [
    ("png16", np.ones((4, 4), np.uint8), "uint8"),
    ("grey8", np.ones((4, 4), np.uint16), "uint16"),
])
def test_depth_dtype_disagreeing_with_encoding(tmp_path, write, asked, data, found):
    path = write(tmp_path / "depth_file.png", data)
    with pytest.raises(DataError, match=f"depth_file.png.*'{asked}'.*{found}") as info:
        read_depth(path, DepthSpec(encoding=asked))
    expected = {"png16": "uint16", "grey8": "uint8"}[asked]
    assert expected in str(info.value)


def test_npy_encoding_with_image_file_and_int_npy(tmp_path, write):
    with pytest.raises(DataError, match=r"img.png.*'npy'.*png"):
        read_depth(write(tmp_path / "img.png", np.ones((4, 4), np.uint16)),
                   DepthSpec(encoding="npy"))
    with pytest.raises(DataError, match=r"ints.npy.*float.*int64"):
        read_depth(write(tmp_path / "ints.npy", np.ones((4, 4), np.int64)))


def test_corrupt_and_truncated_files_name_the_file(tmp_path, write):
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not an image at all" * 4)
    with pytest.raises(DataError, match="garbage.png.*found unrecognised"):
        read_rgb(garbage)
    good = write(tmp_path / "good.png", np.random.default_rng(1).integers(
        0, 256, (24, 32, 3), dtype=np.uint8)).read_bytes()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(good[: len(good) // 2])
    assert probe_image(truncated).width == 32  # the header is intact ...
    with pytest.raises(DataError, match="truncated.png.*corrupt"):  # ... the data is not
        read_rgb(truncated)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(DataError, match="empty.png.*empty file"):
        read_depth(empty)


def test_depth_spec_resolution_and_checks():
    spec = DepthSpec(depth_scale=0.01).resolve({"depth_scale": 0.5, "max_depth": 80.0})
    assert spec == DepthSpec("auto", 0.01, "near-dark", 80.0)  # explicit wins, then defaults
    with pytest.raises(ValueError, match="'png8'"):
        DepthSpec(encoding="png8")
    with pytest.raises(ValueError, match="max_depth.*-1"):
        DepthSpec(max_depth=-1)
