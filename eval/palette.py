"""Class names and the fixed colour palette of the 3D FCR-alphaGAN voxel scenes, for eval.

The table itself (names, ids, palette and where its colours come from) lives in
`tfgan3d.data.classes`, the one class table that the data, the figures and the VTK renders
share; this module gives eval its names for it.
"""
from tfgan3d.data.classes import CEILING, EMPTY  # noqa: F401
from tfgan3d.data.classes import NUM_VOXEL_CLASSES as NUM_CLASSES
from tfgan3d.data.classes import VOXEL_CLASSES as CLASS_NAMES
from tfgan3d.data.classes import VOXEL_PALETTE as PALETTE


def class_names(num_classes=NUM_CLASSES):
    """Names of classes 0..num_classes-1: the SUNCG names for 12 classes, `class_<id>` otherwise."""
    if num_classes == NUM_CLASSES:
        return CLASS_NAMES
    return tuple(f"class_{c}" for c in range(num_classes))
