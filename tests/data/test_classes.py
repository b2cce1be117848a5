"""The class tables: one voxel table with its palette and one sim2real palette, shared by the
data, the training samples, the eval figures and the VTK renders."""
import subprocess
import sys

import numpy as np

from tfgan3d.data import classes, voxels


def test_voxel_table_has_the_12_suncg_classes_in_distinct_colours():
    assert classes.VOXEL_CLASSES == ("empty", "ceiling", "floor", "wall", "window", "chair",
                                     "bed", "sofa", "table", "tvs", "furniture", "objects")
    assert classes.NUM_VOXEL_CLASSES == 12 and classes.CHAIR == 5 and classes.OBJECTS == 11
    assert classes.VOXEL_PALETTE.shape == (12, 3) and classes.VOXEL_PALETTE.dtype == np.uint8
    assert len({tuple(c) for c in classes.VOXEL_PALETTE}) == 12
    assert not classes.VOXEL_PALETTE.flags.writeable


def test_simulator_figures_and_renders_read_the_one_table():
    from tfgan3d.eval import fcr_plots, palette, render
    assert voxels.VOXEL_CLASSES is classes.VOXEL_CLASSES
    assert palette.CLASS_NAMES is classes.VOXEL_CLASSES
    assert render.PALETTE is classes.VOXEL_PALETTE and fcr_plots.PALETTE is classes.VOXEL_PALETTE


def test_segmentation_palette_is_distinct_fixed_and_shared_by_samples_and_figures():
    # Hue 0 at value 1, saturation 0.85: (1, 0.15, 0.15) -> (255, 38, 38).
    np.testing.assert_array_equal(classes.segmentation_palette(1), [[255, 38, 38]])
    for n in (2, 6, 12, 40, 255):
        colours = classes.segmentation_palette(n)
        assert colours.shape == (n, 3) and colours.dtype == np.uint8
        assert len({tuple(c) for c in colours}) == n
        np.testing.assert_array_equal(colours[:2], classes.segmentation_palette(2))  # prefix
    from tfgan3d.eval import sim2real_eval
    from tfgan3d.trainers import sim2real
    assert sim2real.segmentation_palette is sim2real_eval.segmentation_palette is \
        classes.segmentation_palette


def test_class_tables_import_without_tensorflow():
    """The VTK render child process reads the palette and must not load TensorFlow."""
    code = ("import sys, tfgan3d.data.classes, tfgan3d.data.voxels; "
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    subprocess.run([sys.executable, "-c", code], check=True)
