"""Discovery, validation and the pix2pix pipeline over tiny files; built-in data set caching."""
import json
import sys
import types

import numpy as np
import pytest

from tfgan3d.data import builtin
from tfgan3d.data.images import DataError, DepthSpec, read_depth
from tfgan3d.data.paired import (discover_pairs, make_pix2pix_dataset, make_rgb_dataset,
                                 validate_pairs)


def batches(ds):
    return [{k: v.numpy() for k, v in b.items()} for b in ds]


def assert_aligned(sample, pattern, scale=0.001):
    """The RGB coordinates predict depth and mask at every pixel of a (cropped, flipped) sample."""
    x, y = pattern.decode(sample["real_a"])
    valid = (x + y) % 5 != 0
    expected = np.where(valid, (1000 + 100 * x + y) * scale, 0.0)
    np.testing.assert_array_equal(sample["valid_b"][..., 0], valid.astype(np.float32))
    np.testing.assert_allclose(sample["depth"][..., 0], expected, rtol=1e-6)
    np.testing.assert_allclose(sample["real_b"][..., 0], 2 * expected / 10.0 - 1, atol=1e-6)
    return x


# ---- discovery ----------------------------------------------------------------------------------

def test_folder_pairs_matched_by_stem_in_split(tmp_path, make_folder_pairs, write, pattern):
    make_folder_pairs(tmp_path / "train", n=3)
    write(tmp_path / "train" / "depth" / "s1.npy", np.ones(pattern.size, np.float32))
    (tmp_path / "train" / "depth" / "s1.png").unlink()
    files = discover_pairs(tmp_path, "train")
    assert files.layout == "folders" and files.names == ["s0", "s1", "s2"]
    assert [p.rsplit("/", 2)[1:] for p in files.depths] == [
        ["depth", "s0.png"], ["depth", "s1.npy"], ["depth", "s2.png"]]
    assert all(p.endswith(f"rgb/{n}.png") for p, n in zip(files.inputs, files.names))
    with pytest.raises(DataError, match="split folder 'test'.*train"):
        discover_pairs(tmp_path, "test")


def test_missing_partner_strict_and_dropped(tmp_path, make_folder_pairs, write, pattern):
    make_folder_pairs(tmp_path, n=3)
    (tmp_path / "depth" / "s1.png").unlink()
    write(tmp_path / "depth" / "orphan.png", pattern.depth_raw())
    with pytest.raises(DataError, match=r"without a depth file.*s1(.|\n)*without a rgb.*orphan"):
        discover_pairs(tmp_path)
    with pytest.warns(UserWarning, match="s1"):
        files = discover_pairs(tmp_path, strict=False)
    assert files.names == ["s0", "s2"]


def test_empty_folders(tmp_path, make_folder_pairs):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty.*empty folder"):
        discover_pairs(tmp_path / "empty")
    make_folder_pairs(tmp_path / "d", n=1)
    (tmp_path / "d" / "rgb" / "s0.png").unlink()
    with pytest.raises(DataError, match=r"d/rgb.*empty folder"):
        discover_pairs(tmp_path / "d")
    with pytest.raises(DataError, match="nowhere.*found nothing"):
        discover_pairs(tmp_path / "nowhere")


def test_dataset_json_defaults_and_overrides(tmp_path, make_folder_pairs, pattern):
    make_folder_pairs(tmp_path / "train", n=2, meta={"depth_scale": 0.01, "classes": ["a", "b"]})
    (tmp_path / "dataset.json").write_text(json.dumps({"max_depth": 80.0, "depth_scale": 0.5}))
    files = discover_pairs(tmp_path)
    # The split's json wins over the root's, and both fill what the call leaves open.
    assert files.spec == DepthSpec("auto", 0.01, "near-dark", 80.0)
    assert files.classes == ["a", "b"]
    (sample,) = batches(make_pix2pix_dataset(files, crop_size=pattern.size, training=False,
                                             batch_size=2).take(1))
    raw = pattern.depth_raw()
    np.testing.assert_allclose(sample["depth"][0, ..., 0], raw * 0.01, rtol=1e-6)
    # real_b normalises by the json's max_depth unless max_depth is passed.
    np.testing.assert_allclose(sample["real_b"][0, ..., 0], 2 * raw * 0.01 / 80 - 1, atol=1e-6)
    explicit = discover_pairs(tmp_path, spec=DepthSpec(depth_scale=0.001, max_depth=5.0))
    assert explicit.spec == DepthSpec("auto", 0.001, "near-dark", 5.0)
    (tmp_path / "dataset.json").write_text(json.dumps({"grey_convention": "upside-down"}))
    with pytest.raises(DataError, match="dataset.json.*upside-down"):
        discover_pairs(tmp_path)


# ---- validation ---------------------------------------------------------------------------------

def test_validate_accepts_good_pairs_and_rejects_mismatched_sizes(tmp_path, make_folder_pairs,
                                                                  write, pattern):
    make_folder_pairs(tmp_path, n=2, labels=True)
    assert validate_pairs(discover_pairs(tmp_path)) is not None
    write(tmp_path / "depth" / "s1.png", pattern.depth_raw()[:, :30])
    with pytest.raises(DataError, match=r"depth/s1.png.*rgb/s1.png \(24x32\).*24x30"):
        validate_pairs(discover_pairs(tmp_path), check="headers")


def test_validate_rejects_corrupt_files(tmp_path, make_folder_pairs):
    make_folder_pairs(tmp_path, n=3)
    (tmp_path / "rgb" / "s0.png").write_bytes(b"\x00garbage" * 10)
    good = (tmp_path / "rgb" / "s2.png").read_bytes()
    (tmp_path / "rgb" / "s2.png").write_bytes(good[: len(good) // 2])
    files = discover_pairs(tmp_path)
    with pytest.raises(DataError, match=r"rgb/s0.png.*unrecognised") as info:
        validate_pairs(files, check="first")
    assert "s2.png" not in str(info.value)  # "first" decodes only the first pair
    with pytest.raises(DataError, match=r"2 of 3 pairs(.|\n)*s0.png(.|\n)*s2.png.*corrupt"):
        validate_pairs(files, check="all")


def test_validate_rejects_depth_dtype_of_json_encoding(tmp_path, make_folder_pairs, write,
                                                        pattern):
    make_folder_pairs(tmp_path, n=2, meta={"depth_encoding": "png16"})
    write(tmp_path / "depth" / "s1.png", np.ones(pattern.size, np.uint8))
    with pytest.raises(DataError, match=r"depth/s1.png.*uint16.*uint8"):
        validate_pairs(discover_pairs(tmp_path), check="headers")


def test_aligned_pairs_split_and_odd_width(tmp_path, write, pattern):
    grey = np.arange(pattern.height * pattern.width).reshape(pattern.size) % 256
    b_half = np.repeat(grey[..., None], 3, -1).astype(np.uint8)
    for k in range(2):
        write(tmp_path / f"p{k}.png", np.concatenate([pattern.rgb(k), b_half], axis=1))
    (tmp_path / "dataset.json").write_text(json.dumps({"grey_convention": "near-bright"}))
    files = validate_pairs(discover_pairs(tmp_path))
    assert files.layout == "aligned" and files.depths is None and files.names == ["p0", "p1"]
    out = batches(make_pix2pix_dataset(files, crop_size=pattern.size, training=False))
    np.testing.assert_array_equal(np.round((out[1]["real_a"][0] + 1) * 127.5), pattern.rgb(1))
    np.testing.assert_allclose(out[1]["depth"][0, ..., 0],
                               np.where(grey > 0, 10 * (1 - grey / 255), 0), atol=1e-5)
    np.testing.assert_array_equal(out[1]["valid_b"][0, ..., 0], grey > 0)
    write(tmp_path / "odd.png", np.zeros((pattern.height, 2 * pattern.width + 1, 3), np.uint8))
    with pytest.raises(DataError, match=r"odd.png.*even width.*65"):
        validate_pairs(discover_pairs(tmp_path), check="headers")


# ---- pipeline -----------------------------------------------------------------------------------

def test_random_crop_and_flip_keep_input_target_and_mask_aligned(tmp_path, make_folder_pairs,
                                                                  pattern):
    files = discover_pairs(make_folder_pairs(tmp_path, n=3, labels=True))
    starts, flipped = set(), set()
    for seed in range(3):
        ds = make_pix2pix_dataset(files, load_size=pattern.size, crop_size=16, seed=seed,
                                  deterministic=True, labels=True)
        for sample in batches(ds):
            assert sample["real_a"].shape == (1, 16, 16, 3)
            x = assert_aligned(sample, pattern)
            np.testing.assert_array_equal(sample["labels"][..., :], x % 7 + 2 *
                                          np.round((sample["real_a"][..., 2] + 1) * 127.5 / 50))
            starts.add((x.min(), pattern.decode(sample["real_a"])[1].min()))
            flipped.add(bool(x[0, 0, 0] > x[0, 0, -1]))
    assert len(starts) > 3 and flipped == {True, False}  # the jitter really moved and flipped


def test_upscale_uses_nearest_for_depth_and_mask(tmp_path, make_folder_pairs):
    files = discover_pairs(make_folder_pairs(tmp_path, n=2))
    depth, valid = read_depth(files.depths[0], files.spec)
    original = set(depth[valid].tolist())
    for sample in batches(make_pix2pix_dataset(files, load_size=(37, 50), crop_size=(30, 40))):
        depth, valid = sample["depth"][..., 0], sample["valid_b"][..., 0].astype(bool)
        assert (depth[~valid] == 0).all() and (depth[valid] > 0).all()
        assert set(depth[valid].tolist()) <= original  # no blended values
        assert -1.0 <= sample["real_a"].min() and sample["real_a"].max() <= 1.0


def test_eval_keeps_order_and_resizes_without_crop(tmp_path, make_folder_pairs, pattern):
    files = discover_pairs(make_folder_pairs(tmp_path, n=3))
    out = batches(make_pix2pix_dataset(files, crop_size=pattern.size, training=False,
                                       batch_size=2))
    assert [b["real_a"].shape[0] for b in out] == [2, 1]
    blue = np.concatenate([np.round((b["real_a"][:, 0, 0, 2] + 1) * 127.5) for b in out])
    np.testing.assert_array_equal(blue, [0, 50, 100])  # s0, s1, s2 in order
    for b in out:
        x = assert_aligned(b, pattern)
        np.testing.assert_array_equal(x[0, 0], np.arange(pattern.width))  # no crop, no flip
    small = batches(make_pix2pix_dataset(files, crop_size=(12, 16), training=False))
    assert small[0]["real_a"].shape == (1, 12, 16, 3) and small[0]["depth"].shape == (1, 12, 16, 1)


def test_deterministic_batches_repeat_exactly(tmp_path, make_folder_pairs, pattern):
    files = discover_pairs(make_folder_pairs(tmp_path, n=4))
    kwargs = dict(load_size=pattern.size, crop_size=16, batch_size=2, deterministic=True)
    ds = make_pix2pix_dataset(files, seed=7, **kwargs)
    first, again = batches(ds), batches(ds)
    rebuilt = batches(make_pix2pix_dataset(files, seed=7, **kwargs))
    other = batches(make_pix2pix_dataset(files, seed=8, **kwargs))
    for a, b, c in zip(first, again, rebuilt):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
            np.testing.assert_array_equal(a[key], c[key])
    assert any(not np.array_equal(a["real_a"], o["real_a"]) for a, o in zip(first, other))
    # Repeating: the stream is reproducible, and the second epoch is jittered differently.
    stream = [batches(make_pix2pix_dataset(files, seed=7, repeat=True, **kwargs).take(4))
              for _ in range(2)]
    for a, b in zip(*stream):
        np.testing.assert_array_equal(a["real_a"], b["real_a"])
    assert not all(np.array_equal(a["real_a"], b["real_a"])
                   for a, b in zip(stream[0][:2], stream[0][2:]))


def test_bad_sizes_are_rejected(tmp_path, make_folder_pairs):
    files = discover_pairs(make_folder_pairs(tmp_path, n=1))
    with pytest.raises(ValueError, match="at least crop_size"):
        make_pix2pix_dataset(files, load_size=16, crop_size=(20, 20))
    with pytest.raises(DataError, match="no labels/ folder"):
        make_pix2pix_dataset(files, labels=True)


def test_rgb_dataset_keeps_names_and_sizes(tmp_path, write, pattern):
    for name, k in (("b", 1), ("a", 0)):
        write(tmp_path / "in" / f"{name}.png", pattern.rgb(k))
    out = batches(make_rgb_dataset(tmp_path / "in", (12, 16), batch_size=2))[0]
    assert out["name"].tolist() == [b"a", b"b"]
    np.testing.assert_array_equal(out["size"], [list(pattern.size)] * 2)
    assert out["real_a"].shape == (2, 12, 16, 3)
    np.testing.assert_allclose(out["real_a"][:, 0, 0, 2], [-1.0, 50 / 127.5 - 1], atol=1e-6)


# ---- built-in data sets -------------------------------------------------------------------------

@pytest.fixture
def fake_scene_files(monkeypatch):
    calls = []

    def write_scene_dataset(out_dir, domain, n_train, n_test, height=256, width=256, seed=0,
                            **_):
        calls.append((domain, n_train, n_test, height, width, seed))
        (out_dir / "train").mkdir(parents=True)
        (out_dir / "dataset.json").write_text(json.dumps({"layout": "folders"}))
        return out_dir

    module = types.ModuleType("tfgan3d.data.scene_files")
    module.write_scene_dataset = write_scene_dataset
    monkeypatch.setitem(sys.modules, "tfgan3d.data.scene_files", module)
    return calls


def test_builtin_generated_once_then_cached(tmp_path, fake_scene_files, monkeypatch):
    monkeypatch.setenv("TFGAN3D_CACHE", str(tmp_path / "cache"))
    kwargs = dict(n_train=4, n_test=2, size=(24, 32), seed=3)
    path = builtin.resolve_data_source("builtin:scenes-real", **kwargs)
    assert path == tmp_path / "cache" / "scenes-real-24x32-n4+2-s3-v2"
    assert (path / "dataset.json").is_file()
    assert builtin.resolve_data_source("builtin:scenes-real", **kwargs) == path
    assert fake_scene_files == [("real-like", 4, 2, 24, 32, 3)]  # generated once
    other = builtin.resolve_data_source("builtin:scenes-virtual", n_train=1, n_test=1, size=8,
                                        seed=0, cache_dir=tmp_path / "elsewhere")
    assert other == tmp_path / "elsewhere" / "scenes-virtual-8x8-n1+1-s0-v1"
    assert fake_scene_files[-1][0] == "virtual"


def test_builtin_accepts_folder_made_concurrently_and_reraises_real_failures(tmp_path,
                                                                           monkeypatch):
    def racing_writer(out_dir, *args, **kwargs):
        out_dir.mkdir(parents=True)  # another process finished the same set first ...
        (out_dir / "dataset.json").write_text("{}")
        raise FileExistsError(out_dir)  # ... so this writer gives up

    def failing_writer(out_dir, *args, **kwargs):
        raise ValueError("renderer broke")

    module = types.ModuleType("tfgan3d.data.scene_files")
    monkeypatch.setitem(sys.modules, "tfgan3d.data.scene_files", module)
    kwargs = dict(n_train=1, n_test=1, size=8, seed=0, cache_dir=tmp_path)
    module.write_scene_dataset = racing_writer
    path = builtin.resolve_data_source("builtin:scenes-virtual", **kwargs)
    assert (path / "dataset.json").is_file()
    module.write_scene_dataset = failing_writer
    (tmp_path / "scenes-real-8x8-n1+1-s0-v2").mkdir()  # a leftover without dataset.json
    with pytest.raises(ValueError, match="renderer broke"):
        builtin.resolve_data_source("builtin:scenes-real", **kwargs)


def test_builtin_unknown_name_and_missing_path(tmp_path):
    assert builtin.is_builtin("builtin:scenes-virtual") and not builtin.is_builtin(str(tmp_path))
    with pytest.raises(DataError, match="builtin:nope.*builtin:scenes-virtual.*scenes-real"):
        builtin.resolve_data_source("builtin:nope", n_train=1, n_test=1, size=8, seed=0)
    assert builtin.resolve_data_source(tmp_path, n_train=1, n_test=1, size=8, seed=0) == tmp_path
    with pytest.raises(DataError, match="no_such_dir"):
        builtin.resolve_data_source(tmp_path / "no_such_dir", n_train=1, n_test=1, size=8, seed=0)
