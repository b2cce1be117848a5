"""The RGB-D scene simulator: determinism, geometry, labels and the two domains."""
import numpy as np
import pytest

from tfgan3d.data import scenes
from tfgan3d.data.scenes import (DOMAINS, MAX_DEPTH, SCENE_CLASSES, Camera, LightPattern,
                                 Primitive, SceneSpec, render_scene, render_scenes)

H, W = 32, 48


@pytest.fixture(scope="module")
def batches():
    return {domain: render_scenes(12, domain, H, W, seed=0) for domain in DOMAINS}


def _spec(*primitives, **kwargs):
    """A 6 x 3 x 12 m room, camera at (3, 1.5, 0.5) looking straight along +z."""
    return SceneSpec(room=(6.0, 3.0, 12.0), camera=Camera((3.0, 1.5, 0.5)),
                     primitives=list(primitives), light_position=(3.0, 2.8, 2.0), **kwargs)


@pytest.mark.parametrize("domain", DOMAINS)
def test_same_index_same_scene_other_index_or_seed_differs(domain):
    first, again = render_scene(5, domain, H, W), render_scene(5, domain, H, W)
    for key in ("rgb", "depth", "sensor_depth", "labels"):
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["depth"], render_scene(6, domain, H, W)["depth"])
    assert not np.array_equal(first["depth"], render_scene(5, domain, H, W, seed=1)["depth"])


@pytest.mark.parametrize("domain", DOMAINS)
def test_scene_does_not_depend_on_batch_start(domain):
    batch = render_scenes(2, domain, H, W, seed=3, start=3)
    for i in (0, 1):
        alone = render_scene(3 + i, domain, H, W, seed=3)
        for key, value in alone.items():
            np.testing.assert_array_equal(batch[key][i], value)


def test_shapes_and_dtypes(batches):
    batch = batches["real-like"]
    assert batch["rgb"].shape == (12, H, W, 3) and batch["rgb"].dtype == np.uint8
    assert batch["labels"].shape == (12, H, W) and batch["labels"].dtype == np.uint8
    for key in ("depth", "sensor_depth"):
        assert batch[key].shape == (12, H, W) and batch[key].dtype == np.float32


@pytest.mark.parametrize("domain", DOMAINS)
def test_exact_depth_is_dense_metric_and_bounded(batches, domain):
    depth = batches[domain]["depth"]
    assert np.all(np.isfinite(depth)) and depth.min() > 0.2 and depth.max() <= MAX_DEPTH
    assert depth.max() > 3.0  # metres of a room, not a unit range


def test_floor_is_low_and_recedes_towards_the_horizon(batches):
    batch = batches["virtual"]  # no camera roll
    rows = np.arange(H)[:, None] * np.ones((1, W))
    for depth, labels in zip(batch["depth"], batch["labels"]):
        floor, wall = labels == 0, labels == 1
        assert rows[floor].mean() > rows[wall].mean()
        for col in range(W):
            below_to_above = depth[::-1, col][floor[::-1, col]]
            assert np.all(np.diff(below_to_above) > 0)


def test_sphere_straight_ahead_has_depth_distance_minus_radius():
    sphere = Primitive("sphere", center=(3.0, 1.5, 4.5), size=(0.5,))
    out = scenes._render(_spec(sphere), 33, 33)
    assert out["depth"][16, 16] == pytest.approx(4.0 - 0.5, abs=1e-6)
    assert out["labels"][16, 16] == SCENE_CLASSES.index("sphere")
    assert out["depth"][16, 0] > 4.0 and out["labels"][16, 0] == SCENE_CLASSES.index("wall")


def test_depth_is_z_depth_not_ray_length():
    box = Primitive("box", center=(3.0, 1.5, 4.0), size=(1.5, 1.0, 0.5))  # front face z = 3.5
    out = scenes._render(_spec(box), H, W)
    on_box = out["labels"] == SCENE_CLASSES.index("box")
    assert on_box.mean() > 0.3
    np.testing.assert_allclose(out["depth"][on_box], 3.0, atol=1e-6)


def test_light_patterns_change_colour_but_not_depth():
    sphere = Primitive("sphere", center=(3.0, 0.6, 5.0), size=(0.6,))
    spot = LightPattern(surface=5, kind="spot", u=3.0, v=1.5, scale=2.0, angle=0.0,
                        colour=(0.8, 0.3, 0.1))
    plain = scenes._render(_spec(sphere), H, W)
    lit = scenes._render(_spec(sphere, patterns=[spot]), H, W)
    np.testing.assert_array_equal(plain["depth"], lit["depth"])
    np.testing.assert_array_equal(plain["labels"], lit["labels"])
    assert np.abs(plain["rgb"].astype(int) - lit["rgb"]).max() > 30


@pytest.mark.parametrize("domain", DOMAINS)
def test_labels_have_floor_walls_and_primitives(batches, domain):
    labels = batches[domain]["labels"]
    assert labels.max() < len(SCENE_CLASSES)
    for scene in labels:
        assert {0, 1} <= set(np.unique(scene))
    assert np.mean([scene.max() >= 2 for scene in labels]) >= 0.8
    assert set(np.unique(labels)) == set(range(len(SCENE_CLASSES)))


def test_virtual_sensor_depth_is_exact(batches):
    np.testing.assert_array_equal(batches["virtual"]["sensor_depth"], batches["virtual"]["depth"])


def test_real_like_sensor_depth_is_a_faulty_copy_of_depth(batches):
    sensor, exact = batches["real-like"]["sensor_depth"], batches["real-like"]["depth"]
    for s, d in zip(sensor, exact):
        valid = s > 0
        assert 0.0 < 1.0 - valid.mean() < 0.9
        assert not np.array_equal(s[valid], d[valid])
        assert np.median(np.abs(s[valid] - d[valid])) < 0.1  # degraded, not unrelated
        np.testing.assert_allclose(s * 1000, np.round(s * 1000), atol=2e-3)  # millimetre steps


def test_some_real_like_scenes_lose_a_large_region_at_the_top():
    sensor = render_scenes(20, "real-like", H, W, seed=0)["sensor_depth"]
    top_invalid = (sensor[:, : H // 4] == 0).mean(axis=(1, 2))
    assert top_invalid.max() > 0.5


def test_real_like_images_have_more_high_frequency_energy(batches):
    def laplacian_energy(rgb):
        grey = rgb.astype(np.float64).mean(-1)
        lap = 4 * grey[:, 1:-1, 1:-1] - grey[:, :-2, 1:-1] - grey[:, 2:, 1:-1] \
            - grey[:, 1:-1, :-2] - grey[:, 1:-1, 2:]
        return np.abs(lap).mean()

    assert laplacian_energy(batches["real-like"]["rgb"]) > 1.5 * laplacian_energy(
        batches["virtual"]["rgb"])


def test_bad_arguments_name_the_value_and_the_choices():
    with pytest.raises(ValueError, match=r"'sunrgbd'.*virtual, real-like"):
        render_scene(0, "sunrgbd")
    with pytest.raises(ValueError, match="height.*0"):
        render_scene(0, "virtual", height=0)
    with pytest.raises(ValueError, match="width.*-4"):
        render_scenes(1, "virtual", width=-4)
    with pytest.raises(ValueError, match="index.*-1"):
        render_scene(-1, "virtual")


@pytest.mark.parametrize("domain", DOMAINS)
def test_bounding_volume_culling_does_not_change_the_render(domain, monkeypatch):
    culled = render_scenes(6, domain, 64, 96)
    bounds = scenes._bounds
    monkeypatch.setattr(scenes, "_bounds", lambda prim: (bounds(prim)[0], 1e6))  # cull nothing
    brute = render_scenes(6, domain, 64, 96)
    for key, value in culled.items():
        np.testing.assert_array_equal(value, brute[key])
