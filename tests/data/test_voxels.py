"""The built-in voxel scene simulator (numpy only)."""
import numpy as np
import pytest

from tfgan3d.data import voxels
from tfgan3d.data.voxels import (BED, CHAIR, FLOOR, GRID, MIN_OCCUPIED, NUM_CLASSES, ROOM_KINDS,
                                 SOFA, TABLE, downsample_labels, iter_scenes, make_scene,
                                 make_scenes, min_occupied, scene_kind, scene_stats)

SMALL = (16, 8, 16)


@pytest.fixture(scope="module")
def full_scenes():
    return make_scenes(20, seed=0)


def test_classes_and_grid_match_the_original():
    assert voxels.VOXEL_CLASSES[0] == "empty" and voxels.VOXEL_CLASSES[11] == "objects"
    assert NUM_CLASSES == 12 and GRID == (80, 48, 80) and MIN_OCCUPIED == 10000


def test_scenes_depend_only_on_seed_and_index():
    forward = make_scenes(3, seed=5, start=10)
    backward = [make_scene(i, seed=5) for i in (12, 11, 10)]
    np.testing.assert_array_equal(forward, np.stack(backward[::-1]))
    assert not np.array_equal(make_scene(10, seed=6), forward[0])
    assert not np.array_equal(forward[0], forward[1])


def test_shape_dtype_labels_and_minimum_occupancy(full_scenes):
    assert full_scenes.shape == (20, *GRID) and full_scenes.dtype == np.uint8
    assert full_scenes.max() <= 11
    assert (np.count_nonzero(full_scenes.reshape(20, -1), axis=1) >= MIN_OCCUPIED).all()
    assert len(np.unique(full_scenes)) == NUM_CLASSES  # every class occurs somewhere


def test_empty_fraction_is_like_suncg(full_scenes):
    stats = scene_stats(full_scenes)
    assert 0.85 <= stats["empty_fraction"] <= 0.96
    assert stats["n"] == 20 and stats["occupied_min"] >= MIN_OCCUPIED


def test_scene_stats_against_hand_counts():
    scene = np.zeros((2, 2, 2), np.uint8)
    scene[0, 0, :] = 2          # two floor voxels
    scene[1, 1, 1] = 11         # one object
    stats = scene_stats(scene)
    assert stats["class_fractions"]["floor"] == 2 / 8
    assert stats["class_fractions"]["objects"] == 1 / 8
    assert stats["empty_fraction"] == 5 / 8 and stats["occupied_mean"] == 3
    scene[1, 0, 1] = 12
    with pytest.raises(ValueError, match="label 12"):
        scene_stats(scene)


@pytest.mark.parametrize("kind", ROOM_KINDS)
def test_floor_is_the_lowest_layer_and_furniture_stands_on_it(kind):
    for index in range(3):
        scene = make_scene(index, kind=kind)
        occupied_layers = np.flatnonzero((scene > 0).any(axis=(0, 2)))
        lowest = scene[:, occupied_layers[0], :]
        assert FLOOR in lowest and set(np.unique(lowest)) <= {0, FLOOR}
        floor_top = np.flatnonzero((scene == FLOOR).any(axis=(0, 2))).max()
        for label in (CHAIR, BED, SOFA, TABLE):
            if not (scene == label).any():
                continue
            xs, ys, zs = np.nonzero(scene == label)
            assert ys.min() == floor_top + 1, (kind, index, label)
            bottom = ys == ys.min()
            assert (scene[xs[bottom], ys[bottom] - 1, zs[bottom]] == FLOOR).all()


@pytest.mark.parametrize("kind, present, absent", [
    ("bedroom", {BED}, {SOFA}),
    ("dining_room", {TABLE, CHAIR}, {BED}),
    ("living_room", {SOFA}, {BED}),
    ("bathroom", {voxels.FURNITURE}, {BED, SOFA, CHAIR}),
    ("garage", {voxels.OBJECTS}, {BED, SOFA}),
])
def test_room_kinds_hold_their_furniture(kind, present, absent):
    for index in range(4):
        labels = set(np.unique(make_scene(index, seed=1, kind=kind)))
        assert present <= labels and not absent & labels, (kind, index, labels)


def test_kinds_are_drawn_per_index():
    kinds = {scene_kind(i) for i in range(40)}
    assert kinds == set(ROOM_KINDS)


def test_small_grids_are_the_class_aware_reduction_of_the_full_scene():
    for index in range(3):
        small = make_scene(index, grid=SMALL)
        assert small.shape == SMALL and small.dtype == np.uint8
        assert np.count_nonzero(small) >= min_occupied(SMALL) == 67
        np.testing.assert_array_equal(small, downsample_labels(make_scene(index), SMALL))
    odd = make_scene(0, grid=(32, 16, 32))  # blocks of 2 or 3 voxels
    assert odd.shape == (32, 16, 32) and {2, 3} <= set(np.unique(odd))


def test_downsample_rule_on_a_hand_made_block():
    scene = np.zeros((10, 12, 10), np.uint8)      # -> (2, 2, 2): blocks of 5 x 6 x 5
    scene[0:5, 0, 0:5] = FLOOR                   # one-voxel slab: kept
    scene[5, 6, 5] = CHAIR                       # one voxel in 150: dropped
    scene[0:5, 6:12, 5] = 3                      # wall slab 5 x 6 with 4 windows in it
    scene[0:2, 6:8, 5] = 4
    small = downsample_labels(scene, (2, 2, 2))
    assert small[0, 0, 0] == FLOOR
    assert small[1, 1, 1] == 0
    assert small[0, 1, 1] == 3                   # most frequent class of the block
    np.testing.assert_array_equal(downsample_labels(scene, scene.shape), scene)


def test_workers_give_the_same_scenes():
    together = np.stack(list(iter_scenes(6, seed=2, grid=SMALL, workers=2, chunk=2)))
    np.testing.assert_array_equal(together, make_scenes(6, seed=2, grid=SMALL))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match=r"\(81, 48, 80\)"):
        make_scene(0, grid=(81, 48, 80))
    with pytest.raises(ValueError, match="kitchen.*living_room"):
        make_scene(0, kind="kitchen")
    with pytest.raises(ValueError, match="index=-1"):
        make_scene(-1)
