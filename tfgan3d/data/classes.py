"""Class tables: the names of the classes of each kind of data with their colours, and the
sim2real class maps. Data, training samples, eval figures and VTK renders all read them here.

Voxel scenes (fcr_alphagan): the 12 classes in the SUNCG / SSCNet order of the original (ids
0..11), with the original viewer's per-class palette (its `eval/util_vtk.py`, floats in 0..1
indexed by class id) rounded to 8-bit values, so renders can be compared with the published
figures. A render with flat lighting reproduces these uint8 values exactly.

Sim2real segmentation: its classes come from the data (a class map, or the simulation's own),
so their colours are `segmentation_palette(num_classes)`, one fixed colour per class id for a
class count, used by the training samples and the evaluation figures alike.

Sim2real class maps. config.class_map is a JSON or CSV file, or "kitti12" (built in: Virtual
KITTI 2 names and Cityscapes ids -> the seed's 12 classes, section 4.2):
    JSON  {"classes": ["road", "car"], "map": {"Road": "road", "Car": "car", "Misc": null}}
          or flat {"Road": "road", "Car": "car"} (classes in order of first appearance;
          all-id targets give classes class_0..class_K)
    CSV   "source,target" lines (an optional "source,target" header; # comments)
A source is a class name (colour table, dataset.json "classes") or, for id labels without
names, the decimal id. A target is a name or an id; null, "", "ignore" or 255 ignore the
source, and so does a source missing from the map: ignored pixels are label 255. A colour
table (VKITTI's colors.txt) gives the colour of each source class of RGB label images.
"""
from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np

from tfgan3d.data.errors import DataError

# ---- voxel scenes -------------------------------------------------------------------------------

VOXEL_CLASSES = ("empty", "ceiling", "floor", "wall", "window", "chair", "bed", "sofa",
                 "table", "tvs", "furniture", "objects")
NUM_VOXEL_CLASSES = len(VOXEL_CLASSES)
(EMPTY, CEILING, FLOOR, WALL, WINDOW, CHAIR, BED, SOFA, TABLE, TVS, FURNITURE,
 OBJECTS) = range(NUM_VOXEL_CLASSES)

VOXEL_PALETTE = np.array([
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
VOXEL_PALETTE.setflags(write=False)


# ---- sim2real segmentation ----------------------------------------------------------------------

IGNORE_LABEL = 255


def segmentation_palette(num_classes: int) -> np.ndarray:
    """uint8 (num_classes, 3): one distinct, saturated colour per class id (golden-ratio hues
    around the colour wheel, value 1, saturation 0.85), the same for every call with that count.
    """
    hue = (np.arange(num_classes) * 0.618034) % 1.0
    k = (np.array([5.0, 3.0, 1.0])[None] + hue[:, None] * 6.0) % 6.0
    rgb = 1.0 - 0.85 * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return (rgb * 255).astype(np.uint8)


# The seed's 12 classes common to VKITTI, CityScapes and KITTI (section 4.2).
KITTI12_CLASSES = ("terrain", "sky", "vegetation", "building", "road", "guard rail",
                   "traffic sign", "traffic light", "pole", "truck", "car", "van")
_KITTI12_MAP = {  # Virtual KITTI 2 class names; Cityscapes ids of KITTI's semantic labels
    "Terrain": "terrain", "Sky": "sky", "Tree": "vegetation", "Vegetation": "vegetation",
    "Building": "building", "Road": "road", "GuardRail": "guard rail",
    "TrafficSign": "traffic sign", "TrafficLight": "traffic light", "Pole": "pole",
    "Truck": "truck", "Car": "car", "Van": "van", "Misc": None,
    "7": "road", "11": "building", "14": "guard rail", "17": "pole", "19": "traffic light",
    "20": "traffic sign", "21": "vegetation", "22": "terrain", "23": "sky", "26": "car",
    "27": "truck"}
_IGNORE_WORDS = ("", "ignore", "255", "none", "null")


# ---- sim2real class maps ----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ClassMap:
    """Evaluated classes and source class -> class id (IGNORE_LABEL: ignored)."""
    classes: tuple
    targets: dict
    origin: str = ""

    def target(self, source) -> int:
        source = str(source)
        if source in self.targets:
            return self.targets[source]
        return self.targets.get(base_name(source), IGNORE_LABEL)


def base_name(name):
    """A class name without its VKITTI 1 instance suffix: "Car:3" -> "Car"."""
    return str(name).split(":")[0].strip()


def _is_ignore(value):
    return value is None or value == IGNORE_LABEL or (
        isinstance(value, str) and value.strip().lower() in _IGNORE_WORDS)


def _is_id(value):
    return (isinstance(value, int) and not isinstance(value, bool)) or (
        isinstance(value, str) and value.strip().isdigit())


def _target_id(value, classes, origin, source):
    """A map target (name, id, or an ignore word) -> class id; `classes` None: ids only."""
    if _is_ignore(value):
        return IGNORE_LABEL
    if _is_id(value):
        value, limit = int(value), len(classes) if classes is not None else IGNORE_LABEL
        if not 0 <= value < limit:
            raise DataError(f"{origin}: target id {value} of {source!r} is outside the classes "
                            f"0..{limit - 1}")
        return value
    if not isinstance(value, str):
        raise DataError(f"{origin}: target of {source!r} must be a class name or id, found "
                        f"{value!r}")
    if classes is None or value.strip() not in classes:
        raise DataError(f"{origin}: target {value!r} of {source!r} is not among the classes "
                        f"{list(classes or [])}")
    return list(classes).index(value.strip())


def _class_map_from_pairs(pairs, classes, origin):
    """A ClassMap from (source, target) pairs; without `classes`, the classes are the target
    names in order of first appearance, or class_0..class_K for id targets."""
    if classes is None:
        named = [t.strip() for _, t in pairs if not _is_ignore(t) and not _is_id(t)
                 and isinstance(t, str)]
        ids = [int(t) for _, t in pairs if not _is_ignore(t) and _is_id(t)]
        if named and ids:
            raise DataError(f"{origin}: targets mix class names and ids; give a \"classes\" "
                            f"list (JSON) or use one kind")
        if not named and not ids:
            raise DataError(f"{origin}: every source class is ignored; expected at least one "
                            f"target")
        classes = (list(dict.fromkeys(named)) if named
                   else [f"class_{i}" for i in range(max(ids) + 1)])
    classes = [str(c) for c in classes]
    targets = {str(s).strip(): _target_id(t, classes, origin, s) for s, t in pairs}
    return ClassMap(tuple(classes), targets, origin)


def load_class_map(spec) -> ClassMap | None:
    """A ClassMap from None, a ClassMap, "kitti12", or a JSON / CSV file (the module docstring).

    Raises:
        DataError: a missing or malformed file, an unknown target name or an id out of range;
            the message names the file.
    """
    if spec is None or isinstance(spec, ClassMap):
        return spec
    if spec == "kitti12":
        return _class_map_from_pairs(list(_KITTI12_MAP.items()), KITTI12_CLASSES, "kitti12")
    path = Path(spec).expanduser()
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: expected a class-map file (JSON or CSV) or 'kitti12', "
                        f"cannot read it ({e})") from e
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: expected a JSON object, found invalid JSON ({e})") from e
        if not isinstance(data, dict):
            raise DataError(f"{path}: expected a JSON object, found {type(data).__name__}")
        if "map" in data:
            if not isinstance(data["map"], dict):
                raise DataError(f"{path}: \"map\" must be an object source -> target")
            return _class_map_from_pairs(list(data["map"].items()), data.get("classes"),
                                         str(path))
        return _class_map_from_pairs(list(data.items()), None, str(path))
    pairs = []
    for number, row in enumerate(csv.reader(text.splitlines()), 1):
        if not row or not row[0].strip() or row[0].lstrip().startswith("#"):
            continue
        if number == 1 and row[0].strip().lower() == "source":
            continue
        if len(row) != 2:
            raise DataError(f"{path}:{number}: expected 'source,target', found {row}")
        pairs.append((row[0].strip(), row[1].strip()))
    if not pairs:
        raise DataError(f"{path}: expected 'source,target' lines, found none")
    return _class_map_from_pairs(pairs, None, str(path))


def read_colour_table(path) -> list:
    """[(name, (r, g, b)), ...] from a colour table file, in file order.

    Raises:
        DataError: unreadable file, a bad line (named by number), or one colour given to two
            different classes.
    """
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read the colour table ({e})") from e
    table, seen, header = [], {}, False
    for number, line in enumerate(lines, 1):
        parts = line.replace(",", " ").split()
        if not parts or parts[0].startswith("#"):
            continue
        values = parts[-3:]
        if len(parts) < 4 or not all(v.lstrip("-").isdigit() for v in values):
            if not table and not header:
                header = True  # e.g. "Category r g b"
                continue
            raise DataError(f"{path}:{number}: expected 'name r g b', found {line.strip()!r}")
        rgb = tuple(int(v) for v in values)
        if not all(0 <= v <= 255 for v in rgb):
            raise DataError(f"{path}:{number}: colour values must be 0..255, found {rgb}")
        name = " ".join(parts[:-3])
        if rgb in seen and base_name(seen[rgb]) != base_name(name):
            raise DataError(f"{path}:{number}: colour {rgb} is given to both {seen[rgb]!r} and "
                            f"{name!r}")
        seen[rgb] = name
        table.append((name, rgb))
    if not table:
        raise DataError(f"{path}: expected 'name r g b' lines, found none")
    return table
