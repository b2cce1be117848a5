"""Class names and the fixed colour palette of the 3D FCR-alphaGAN voxel scenes.

Classes follow the SUNCG / SSCNet order used by the original (ids 0..11). The palette is the
original viewer's per-class palette (its `eval/util_vtk.py`, floats in 0..1 indexed by class id),
rounded to 8-bit values, so renders can be compared with the published figures. `PALETTE`
(uint8) is the source of truth and `PALETTE_FLOAT` is `PALETTE / 255`, so that a render with
flat lighting reproduces the uint8 values exactly.
"""
import numpy as np

CLASS_NAMES = ("empty", "ceiling", "floor", "wall", "window", "chair", "bed", "sofa", "table",
               "tvs", "furniture", "objects")
NUM_CLASSES = len(CLASS_NAMES)
EMPTY = 0
CEILING = 1

PALETTE = np.array([
    [23, 191, 207],   # empty (cyan): kept for indexing; the renderer never draws it
    [214, 38, 41],    # ceiling (red)
    [43, 161, 43],    # floor (green)
    [158, 217, 230],  # wall (pale blue)
    [115, 158, 207],  # window (steel blue)
    [204, 204, 92],   # chair (khaki)
    [255, 186, 120],  # bed (light orange)
    [148, 102, 189],  # sofa (purple)
    [31, 120, 181],   # table (blue)
    [189, 189, 33],   # tvs (olive)
    [255, 128, 13],   # furniture (orange)
    [196, 176, 214],  # objects (lilac)
], dtype=np.uint8)
PALETTE.setflags(write=False)

PALETTE_FLOAT = PALETTE.astype(np.float64) / 255.0
PALETTE_FLOAT.setflags(write=False)


def class_names(num_classes=NUM_CLASSES):
    """Names of classes 0..num_classes-1: the SUNCG names for 12 classes, `class_<id>` otherwise."""
    if num_classes == NUM_CLASSES:
        return CLASS_NAMES
    return tuple(f"class_{c}" for c in range(num_classes))
