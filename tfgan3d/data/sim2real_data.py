"""Sim2real data (seed 001, section 4.1): labelled simulation and unlabelled real images as two
tf.data streams, and labelled real images for evaluation and for the supervised bounds.

Sources (config.sim_data, config.real_data, or the `source` of make_eval_dataset):

    builtin:rooms-sim        simulation (the default): the scene simulator's "rooms-sim" domain,
                             Regime-R rooms rendered flat with exact depth
    builtin:rooms-real       real (the default): "rooms-real", the same content distribution
                             with textures, mixed lights, camera defects and sensor depth
    builtin:scenes-virtual, builtin:scenes-real   pix2pix's regimes V and R (content differs)
    a folder                 one of the layouts below

Built-in sets come from `tfgan3d.data.builtin.resolve_data_source` (tfgan3d folders layout), so
pix2pix and sim2real share one cache. Training reads only the RGB of the real set; its depth
and labels are read by `make_eval_dataset` and, for the upper-bound baseline only, by
`make_labelled_dataset`.

Folder layouts. ROOT holds train/ and test/ split folders, or is itself the only split: then
its names, sorted, are split 90-10 as in the seed (the last tenth, at least one, is "test").

  Simulation, VKITTI-like
    SIM/[SPLIT/]rgb/NAME.png|jpg     8-bit RGB
    SIM/[SPLIT/]depth/NAME.png       dense 16-bit depth in centimetres (Virtual KITTI); 0 invalid
    SIM/[SPLIT/]classgt/NAME.png     RGB class colours
    SIM/[SPLIT/]colors.txt           colour table (or colours.txt, classes.csv, classes.txt;
                                     the split folder's wins): one class a line, "name r g b",
                                     spaces or commas; a header such as "Category r g b" is
                                     skipped; a VKITTI 1 name "Car:3" counts as class "Car"
  Simulation, tfgan3d folders (the built-in cache, tfgan3d-data)
    SIM/[SPLIT/]rgb/, depth/ (16-bit), labels/NAME.png (8-bit class ids), SIM/dataset.json with
    "classes" (names of ids 0, 1, ...) and "depth_scale" (metres per unit)
  Real, KITTI-like
    REAL/[SPLIT/]rgb/NAME.png|jpg    8-bit RGB: all that training reads
    REAL/[SPLIT/]depth/NAME.png      optional: sparse 16-bit depth, metres * 256, 0 invalid
    REAL/[SPLIT/]labels/NAME.png     optional: 8-bit class ids (KITTI semantics: Cityscapes ids;
                                     255 ignored), or classgt/ plus a colour table as above
    An image may lack depth or labels (KITTI's depth and semantic subsets differ): it is then
    evaluated on what it has.

Depth units: config sim_depth_scale / real_depth_scale (metres per unit), else dataset.json
"depth_scale", else 0.01 (simulation, cm) and 1/256 (real). Depth files may also be 8-bit grey
or .npy, as in `tfgan3d.data.images`.

Classes. config.class_map is a JSON or CSV file, or "kitti12" (built in: Virtual KITTI 2 names
and Cityscapes ids -> the seed's 12 classes, section 4.2):
    JSON  {"classes": ["road", "car"], "map": {"Road": "road", "Car": "car", "Misc": null}}
          or flat {"Road": "road", "Car": "car"} (classes in order of first appearance;
          all-id targets give classes class_0..class_K)
    CSV   "source,target" lines (an optional "source,target" header; # comments)
A source is a class name (colour table, dataset.json "classes") or, for id labels without
names, the decimal id. A target is a name or an id; null, "", "ignore" or 255 ignore the
source, and so does a source missing from the map: ignored pixels are label 255. Without a map
the classes are the simulation's own; real labels are matched to them by name, or taken as ids.

Config fields read (any object with attributes, or a dict; missing or None -> the default of
`DataOptions`): sim_data, real_data, image_size (int or (h, w)), load_size (random crop from
it; default image_size), batch_size, seed, num_classes (None: from the classes), class_map,
n_train, n_test, sim_size (built-in render size; default image_size), max_depth,
deterministic, cache_dir, flip, sim_depth_scale, real_depth_scale, data_check ("all" decodes
every file once before training, "first", "headers").
"""
from __future__ import annotations

import csv
import dataclasses
import json
import warnings
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from tfgan3d.data import builtin, paired
from tfgan3d.data.images import (DEPTH_EXTENSIONS, IMAGE_EXTENSIONS, DataError, DepthSpec,
                                 check_depth_dtype, decode_depth_tf, decode_labels_tf,
                                 decode_rgb_tf, probe_image, read_depth, read_rgb)

IGNORE_LABEL = 255
ROLES = ("sim", "real")
DEFAULT_DEPTH_SCALE = {"sim": 0.01, "real": 1.0 / 256.0}
COLOUR_TABLES = ("colors.txt", "colours.txt", "classes.csv", "classes.txt")
DATA_CHECKS = ("all", "first", "headers")
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


# ---- options ------------------------------------------------------------------------------------

@dataclasses.dataclass
class DataOptions:
    """The config fields this module reads, with their defaults."""
    sim_data: str = "builtin:rooms-sim"
    real_data: str = "builtin:rooms-real"
    image_size: object = 256
    load_size: object = None
    batch_size: int = 1
    seed: int = 0
    num_classes: int | None = None
    class_map: object = None
    n_train: int = 1500
    n_test: int = 150
    sim_size: object = None
    max_depth: float = 10.0
    deterministic: bool = False
    cache_dir: str | None = None
    flip: bool = True
    sim_depth_scale: float | None = None
    real_depth_scale: float | None = None
    data_check: str = "all"

    def __post_init__(self):
        self.image_size = paired._size_hw(self.image_size, "image_size")
        self.load_size = paired._size_hw(self.load_size or self.image_size, "load_size")
        if self.load_size[0] < self.image_size[0] or self.load_size[1] < self.image_size[1]:
            raise ValueError(f"load_size {self.load_size} must be at least image_size "
                             f"{self.image_size}")
        if self.data_check not in DATA_CHECKS:
            raise ValueError(f"data_check must be one of {DATA_CHECKS}, got {self.data_check!r}")


def data_options(config=None, **overrides) -> DataOptions:
    """DataOptions from a config object or dict; None values keep the defaults."""
    values = {}
    for field in dataclasses.fields(DataOptions):
        value = (config.get(field.name) if isinstance(config, dict)
                 else getattr(config, field.name, None))
        if overrides.get(field.name) is not None:
            value = overrides[field.name]
        if value is not None:
            values[field.name] = value
    return DataOptions(**values)


def data_root(opts: DataOptions, source: str) -> Path:
    """The folder of a source, generating a built-in set on first use."""
    return builtin.resolve_data_source(source, n_train=opts.n_train, n_test=opts.n_test,
                                       size=opts.sim_size or opts.image_size, seed=opts.seed,
                                       cache_dir=opts.cache_dir)


# ---- classes ------------------------------------------------------------------------------------

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
        return self.targets.get(_base(source), IGNORE_LABEL)


def _base(name):
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
    """A ClassMap from None, a ClassMap, "kitti12", or a JSON / CSV file (module docstring).

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
        if rgb in seen and _base(seen[rgb]) != _base(name):
            raise DataError(f"{path}:{number}: colour {rgb} is given to both {seen[rgb]!r} and "
                            f"{name!r}")
        seen[rgb] = name
        table.append((name, rgb))
    if not table:
        raise DataError(f"{path}: expected 'name r g b' lines, found none")
    return table


# ---- discovery ----------------------------------------------------------------------------------

@dataclasses.dataclass
class DomainFiles:
    """The files of one split of one domain, matched by name; "" marks a missing map.

    Attributes:
        label_kind: "ids" (8-bit class ids), "colour" (RGB class colours) or None.
        source_classes: names of the label ids (dataset.json "classes") or of the colour-table
            entries; None for ids without names.
        colours: the colour table's (r, g, b), one per source class (colour labels).
    """
    root: str
    names: list
    rgb: list
    depth: list | None
    labels: list | None
    label_kind: str | None
    source_classes: tuple | None
    colours: tuple | None
    colour_table: str | None
    spec: DepthSpec

    def __len__(self):
        return len(self.names)

    def has_depth(self):
        return self.depth is not None and any(self.depth)

    def has_labels(self):
        return self.labels is not None and any(self.labels)


def _split_names(root, folder, names, split):
    """The seed's 90-10 split of a root without split folders."""
    if folder != root or split not in ("train", "test") or len(names) < 2:
        return names
    n_test = max(1, len(names) // 10)
    return names[-n_test:] if split == "test" else names[:-n_test]


def _optional_index(folder, extensions):
    return paired._index_by_stem(folder, extensions) if folder.is_dir() else None


def discover_domain(root, split="train", role="sim", *, depth_scale=None) -> DomainFiles:
    """Finds the files of one split of a simulation ("sim") or real ("real") data set.

    Simulation needs rgb/, depth/ and labels (classgt/ + colour table, or labels/) for every
    name; real needs rgb/ and may lack depth or labels for some names.

    Raises:
        DataError: missing folders or colour table, unpaired simulation files, bad dataset.json.
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: expected a data set folder, found "
                        f"{'a file' if root.exists() else 'nothing'}")
    folder = paired._split_folder(root, split)
    meta = paired.load_dataset_json(root, folder) if folder != root else \
        paired.load_dataset_json(root)
    defaults = {"depth_scale": DEFAULT_DEPTH_SCALE[role], **paired._spec_defaults(meta)}
    spec = DepthSpec(depth_scale=depth_scale).resolve(defaults)
    rgb = paired._index_by_stem(folder / "rgb", IMAGE_EXTENSIONS)
    depth = _optional_index(folder / "depth", DEPTH_EXTENSIONS)
    label_kind, source_classes, colours, table_path = None, None, None, None
    labels = _optional_index(folder / "classgt", (".png",))
    if labels is not None:
        label_kind = "colour"
        table_path = next((d / n for d in (folder, root) for n in COLOUR_TABLES
                           if (d / n).is_file()), None)
        if table_path is None:
            raise DataError(f"{folder / 'classgt'}: colour-coded labels need a colour table "
                            f"({' or '.join(COLOUR_TABLES)}) in {folder} or {root}, found none")
        table = read_colour_table(table_path)
        source_classes = tuple(name for name, _ in table)
        colours = tuple(rgb_ for _, rgb_ in table)
    else:
        labels = _optional_index(folder / "labels", (".png",))
        if labels is not None:
            label_kind = "ids"
            source_classes = tuple(meta["classes"]) if meta.get("classes") else None
    names = sorted(rgb)
    if role == "sim":
        problems = [f"{len(missing)} name(s) without a {kind} file in {folder / sub}: "
                    f"{paired._listing(missing)}"
                    for kind, sub, have in (("depth", "depth", depth),
                                            ("label", "classgt" if label_kind == "colour"
                                             else "labels", labels))
                    if have is not None and (missing := set(names) - set(have))]
        if depth is None or labels is None:
            problems.insert(0, "simulation needs depth/ and classgt/ (with a colour table) or "
                               "labels/ folders beside rgb/")
        if problems:
            raise DataError(f"{folder}: " + "\n  ".join(problems))
    names = _split_names(root, folder, names, split)
    return DomainFiles(
        str(folder), names, [str(rgb[n]) for n in names],
        [str(depth[n]) if n in depth else "" for n in names] if depth is not None else None,
        [str(labels[n]) if n in labels else "" for n in names] if labels is not None else None,
        label_kind, source_classes, colours, str(table_path) if table_path else None, spec)


def derive_classes(files: DomainFiles, num_classes=None) -> tuple:
    """The evaluated classes when no class map is given: the simulation's own."""
    if files.source_classes is not None:
        return tuple(dict.fromkeys(_base(n) for n in files.source_classes))
    if num_classes:
        return tuple(f"class_{i}" for i in range(num_classes))
    raise DataError(f"{files.root}: cannot tell the classes of its id labels: give "
                    f"dataset.json \"classes\", a colour table, num_classes or a class map")


# ---- labels -------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class LabelLookup:
    """Raw label value -> class id. Colour: sorted keys r*65536+g*256+b with their ids; ids: a
    256-entry table. A class id of -1 marks a value that must not occur; 255 is ignored."""
    kind: str
    keys: np.ndarray
    values: np.ndarray
    describe: str

    @staticmethod
    def colour_key(rgb):
        rgb = np.asarray(rgb, np.int64)
        return rgb[..., 0] * 65536 + rgb[..., 1] * 256 + rgb[..., 2]


def label_lookup(files: DomainFiles, classes, class_map: ClassMap | None = None):
    """The LabelLookup of a domain's labels onto `classes` (None when it has no labels)."""
    if files.label_kind is None:
        return None

    def target(name):
        if class_map is not None:
            return class_map.target(name)
        return classes.index(_base(name)) if _base(name) in classes else IGNORE_LABEL

    if files.label_kind == "colour":
        keys = LabelLookup.colour_key(np.array(files.colours))
        values = np.array([target(n) for n in files.source_classes], np.int32)
        order = np.argsort(keys, kind="stable")
        return LabelLookup("colour", keys[order].astype(np.int32), values[order],
                           f"the colour table {files.colour_table}")
    table = np.full(256, -1, np.int32)
    table[IGNORE_LABEL] = IGNORE_LABEL
    if files.source_classes is not None:
        for i, name in enumerate(files.source_classes[:IGNORE_LABEL]):
            table[i] = target(name)
        describe = f"ids 0..{len(files.source_classes) - 1} of dataset.json \"classes\""
    elif class_map is not None:
        table[:IGNORE_LABEL] = [class_map.target(str(i)) for i in range(IGNORE_LABEL)]
        describe = "ids 0..254"
    else:
        table[:len(classes)] = np.arange(len(classes))
        describe = f"class ids 0..{len(classes) - 1} (or {IGNORE_LABEL})"
    return LabelLookup("ids", np.arange(256, dtype=np.int32), table, describe)


def read_labels(path, lookup: LabelLookup) -> np.ndarray:
    """A label image as class ids uint8 (H, W), 255 ignored.

    Raises:
        DataError: an unreadable file, or a colour (an id) that the lookup does not know; the
            message names the file and the colour.
    """
    try:
        with Image.open(path) as image:
            if lookup.kind == "ids" and image.mode != "L":
                raise DataError(f"{path}: expected an 8-bit grey PNG of class ids, found PNG "
                                f"mode {image.mode!r}" + (" (a palette image: its colours "
                                                          "would be decoded, not its indices)"
                                                          if image.mode == "P" else ""))
            raw = np.asarray(image.convert("RGB") if lookup.kind == "colour" else image)
    except (OSError, SyntaxError) as e:
        raise DataError(f"{path}: expected a decodable label PNG, found corrupt data") from e
    if lookup.kind == "colour":
        keys = LabelLookup.colour_key(raw)
        index = np.clip(np.searchsorted(lookup.keys, keys), 0, len(lookup.keys) - 1)
        known = lookup.keys[index] == keys
        if not known.all():
            y, x = np.argwhere(~known)[0]
            colour = tuple(int(v) for v in raw[y, x])
            n_unknown = len(np.unique(keys[~known]))
            raise DataError(f"{path}: label colour {colour} at pixel (row {y}, column {x}) is "
                            f"not in {lookup.describe} ({n_unknown} unknown colour(s) in this "
                            f"file)")
        return lookup.values[index].astype(np.uint8)
    ids = lookup.values[raw]
    if (ids < 0).any():
        bad = sorted(set(np.unique(raw[ids < 0]).tolist()))
        raise DataError(f"{path}: label id(s) {bad[:10]} are not among {lookup.describe}")
    return ids.astype(np.uint8)


def _labels_tf(data, path, lookup):
    """Encoded label bytes -> int32 [H, W] class ids, asserting every value is known."""
    if lookup.kind == "colour":
        raw = tf.cast(decode_rgb_tf(data), tf.int32)
        flat = tf.reshape(raw[..., 0] * 65536 + raw[..., 1] * 256 + raw[..., 2], [-1])
        keys = tf.constant(lookup.keys)
        index = tf.minimum(tf.searchsorted(keys, flat), len(lookup.keys) - 1)
        known = tf.equal(tf.gather(keys, index), flat)
        ids = tf.where(known, tf.gather(tf.constant(lookup.values), index), -1)
        ids = tf.reshape(ids, tf.shape(raw)[:2])
    else:
        ids = tf.gather(tf.constant(lookup.values), tf.cast(decode_labels_tf(data), tf.int32))
    check = tf.debugging.Assert(tf.reduce_all(ids >= 0),
                                ["unknown label value (colour or id) in", path])
    with tf.control_dependencies([check]):
        return tf.identity(ids)


# ---- validation ---------------------------------------------------------------------------------

def validate_domain(files: DomainFiles, lookup: LabelLookup | None, check="all", *,
                    maps=("depth", "labels"), max_errors=10) -> DomainFiles:
    """Checks headers, sizes, depth dtypes and label values before training; raises once.

    Args:
        check: "all" decodes every file, "first" only the first name's, "headers" none.
        maps: which of the maps to check besides the RGB ("depth", "labels").
    Raises:
        DataError: every problem found, each naming its file (an unknown label colour names
            the colour too).
    """
    if check not in DATA_CHECKS:
        raise ValueError(f"check must be one of {DATA_CHECKS}, got {check!r}")
    errors = []
    for i in range(len(files)):
        decode = check == "all" or (check == "first" and i == 0)
        try:
            info = probe_image(files.rgb[i])
            if info.format == "npy":
                raise DataError(f"{files.rgb[i]}: expected an RGB image, found a .npy array")
            others = []
            if "depth" in maps and files.depth is not None and files.depth[i]:
                found = check_depth_dtype(files.depth[i], probe_image(files.depth[i]),
                                          files.spec.encoding)
                if found == "grey8" and files.spec.encoding == "auto":
                    raise DataError(
                        f"{files.depth[i]}: expected 16-bit depth as the layout specifies "
                        f"(simulation: centimetres, real: metres x 256) or .npy metres, found "
                        f"an 8-bit image; declare \"depth_encoding\": \"grey8\" and "
                        f"\"max_depth\" in dataset.json to train on 8-bit depth")
                others.append(files.depth[i])
            if "labels" in maps and files.labels is not None and files.labels[i]:
                others.append(files.labels[i])
            for path in others:
                other = probe_image(path)
                if (other.height, other.width) != (info.height, info.width):
                    raise DataError(f"{path}: expected the size of {files.rgb[i]} "
                                    f"({info.height}x{info.width}), found "
                                    f"{other.height}x{other.width}")
            if decode:
                read_rgb(files.rgb[i])
                if "depth" in maps and files.depth is not None and files.depth[i]:
                    read_depth(files.depth[i], files.spec)
                if "labels" in maps and lookup is not None and files.labels[i]:
                    read_labels(files.labels[i], lookup)
        except DataError as e:
            errors.append(str(e))
    if len(errors) == 1:
        raise DataError(errors[0])
    if errors:
        more = f"\n  ... and {len(errors) - max_errors} more" if len(errors) > max_errors else ""
        raise DataError(f"{len(errors)} of {len(files)} samples in {files.root} failed "
                        f"validation:\n  " + "\n  ".join(errors[:max_errors]) + more)
    return files


# ---- tf.data pipelines --------------------------------------------------------------------------

def _load(element, files, lookup, size, maps_size, with_depth, with_labels):
    """File paths -> {"rgb": float 0..255 [h, w, 3], "maps": [h', w', k]} with maps = depth
    metres, valid, labels (as present); a missing map ("") is invalid depth / ignored labels."""
    rgb = decode_rgb_tf(tf.io.read_file(element["rgb"]))
    hw = tf.shape(rgb)[:2]
    maps = []
    if with_depth:
        path = element["depth"]
        depth, valid = tf.cond(
            tf.strings.length(path) > 0,
            lambda: decode_depth_tf(tf.io.read_file(path), files.spec),
            lambda: (tf.zeros(hw), tf.zeros(hw, tf.bool)))
        maps += [depth, tf.cast(valid, tf.float32)]
    if with_labels:
        path = element["labels"]
        labels = tf.cond(tf.strings.length(path) > 0,
                         lambda: _labels_tf(tf.io.read_file(path), path, lookup),
                         lambda: tf.fill(hw, IGNORE_LABEL))
        maps.append(tf.cast(labels, tf.float32))
    rgb = tf.image.resize(tf.cast(rgb, tf.float32), size, method="bilinear", antialias=True)
    sample = {"rgb": rgb}
    if maps:  # nearest: invalid zeros and label ids never blend
        sample["maps"] = tf.image.resize(tf.stack(maps, axis=-1), maps_size, method="nearest")
    return sample


def _outputs(sample, size, maps_size, with_depth, with_labels, clip_depth):
    rgb = sample["rgb"]
    rgb.set_shape([size[0], size[1], 3])
    out = {"image": tf.clip_by_value(rgb / 127.5 - 1.0, -1.0, 1.0)}
    if "maps" in sample:
        maps = sample["maps"]
        maps.set_shape([maps_size[0], maps_size[1], None])
        if with_depth:
            depth = maps[..., 0:1]
            out["depth"] = tf.minimum(depth, clip_depth) if clip_depth else depth
            out["depth_valid"] = maps[..., 1:2]
        if with_labels:
            out["labels"] = tf.cast(tf.round(maps[..., -1]), tf.int32)
    return out


def _make_dataset(files, lookup, *, size, load_size=None, maps_size=None, batch_size,
                  training, with_depth, with_labels, seed=0, deterministic=False, flip=True,
                  repeat=None, clip_depth=None, with_names=False):
    """The shared pipeline: shuffled, repeating, random crop (load_size -> size) and flip when
    training; in file order otherwise."""
    load_size = load_size if training and load_size else size
    maps_size = size if training else (maps_size or size)
    slices = {"rgb": files.rgb, "name": files.names}
    if with_depth:
        slices["depth"] = files.depth if files.depth is not None else [""] * len(files)
    if with_labels:
        slices["labels"] = files.labels if files.labels is not None else [""] * len(files)
    if with_labels and lookup is None:
        lookup = LabelLookup("ids", np.arange(256, dtype=np.int32),
                             np.full(256, IGNORE_LABEL, np.int32), "no labels")
    repeat = training if repeat is None else repeat
    load_maps = load_size if training else maps_size

    def load_fn(element):
        sample = _load(element, files, lookup, load_size, load_maps, with_depth, with_labels)
        sample["name"] = element["name"]
        return sample

    ds = tf.data.Dataset.from_tensor_slices(slices)
    stream_seed = seed if deterministic else None
    if training:
        ds = ds.shuffle(len(files), seed=stream_seed,
                        reshuffle_each_iteration=repeat or not deterministic)
    if repeat:
        ds = ds.repeat()
    ds = ds.map(load_fn, num_parallel_calls=tf.data.AUTOTUNE)
    if training and (flip or load_size != size):
        def augment(index, sample):  # one crop window and one flip for the image and maps
            maps = sample.get("maps", sample["rgb"][..., :0])
            out = paired._augment(index, {"rgb": sample["rgb"], "maps": maps}, size, flip,
                                  stream_seed)
            if "maps" not in sample:
                del out["maps"]
            out["name"] = sample["name"]
            return out
        ds = ds.enumerate().map(augment, num_parallel_calls=tf.data.AUTOTUNE)

    def finish(sample):
        out = _outputs(sample, size, maps_size, with_depth, with_labels, clip_depth)
        if with_names:
            out["name"] = sample["name"]
        return out

    ds = ds.map(finish, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.deterministic = bool(deterministic or not training)
    return ds.with_options(options)


def resolve_classes(opts: DataOptions, sim_files: DomainFiles | None = None):
    """(classes, class_map): the map's classes, else the simulation's own; checks num_classes.

    Raises:
        DataError: num_classes disagrees with the classes found.
    """
    class_map = load_class_map(opts.class_map)
    if class_map is not None:
        classes = class_map.classes
    else:
        if sim_files is None:
            sim_files = discover_domain(data_root(opts, opts.sim_data), "train", "sim",
                                        depth_scale=opts.sim_depth_scale)
        classes = derive_classes(sim_files, opts.num_classes)
    if opts.num_classes and opts.num_classes != len(classes):
        raise DataError(f"num_classes={opts.num_classes}, but the "
                        f"{'class map' if class_map else 'simulation data'} defines "
                        f"{len(classes)} classes {list(classes)}; set num_classes to "
                        f"{len(classes)} (or leave it unset) or give another class map")
    return tuple(classes), class_map


def make_sim2real_datasets(config):
    """Training streams of the sim2real mode.

    Args:
        config: the mode's config (fields: module docstring).
    Returns:
        (sim_ds, real_ds, info): repeating, shuffled batches of
          sim_ds  {"image" float32 [B, H, W, 3] in [-1, 1], "depth" float32 [B, H, W, 1] metres
                  clipped to max_depth (0 where invalid), "depth_valid" float32 [B, H, W, 1],
                  "labels" int32 [B, H, W] (255 = ignore)}
          real_ds {"image"} only: real depth and labels are never read for training.
          info    {"num_classes", "class_names", "image_size", "n_sim", "n_real", "sim_root",
                  "real_root", "ignore_label", "max_depth"}
    Raises:
        DataError: a bad file, folder, class map or colour (validated before training).
    """
    opts = data_options(config)
    sim_root, real_root = data_root(opts, opts.sim_data), data_root(opts, opts.real_data)
    sim_files = discover_domain(sim_root, "train", "sim", depth_scale=opts.sim_depth_scale)
    real_files = discover_domain(real_root, "train", "real", depth_scale=opts.real_depth_scale)
    classes, class_map = resolve_classes(opts, sim_files)
    lookup = label_lookup(sim_files, classes, class_map)
    validate_domain(sim_files, lookup, opts.data_check)
    validate_domain(real_files, None, opts.data_check, maps=())
    common = dict(size=opts.image_size, load_size=opts.load_size, batch_size=opts.batch_size,
                  training=True, deterministic=opts.deterministic, flip=opts.flip)
    sim_ds = _make_dataset(sim_files, lookup, with_depth=True, with_labels=True,
                           seed=opts.seed, clip_depth=opts.max_depth, **common)
    real_ds = _make_dataset(real_files, None, with_depth=False, with_labels=False,
                            seed=opts.seed + 1, **common)
    info = {"num_classes": len(classes), "class_names": list(classes),
            "image_size": opts.image_size, "n_sim": len(sim_files), "n_real": len(real_files),
            "sim_root": str(sim_root), "real_root": str(real_root),
            "ignore_label": IGNORE_LABEL, "max_depth": opts.max_depth}
    return sim_ds, real_ds, info


def make_labelled_dataset(source, split="train", *, config=None, role="real", training=True,
                          image_size=None, gt_size=None, batch_size=None, repeat=None,
                          with_names=False, require_labels=False):
    """Images with their depth and labels, mapped onto the evaluated classes.

    For the supervised bounds (training=True: shuffled, repeating, flipped; the real-like
    upper bound reads the real train split this way) and for evaluation (training=False).
    Images without any ground truth are left out; an image without depth has depth_valid 0,
    one without labels is all 255.

    Args:
        source: "builtin:NAME" or a folder; role: "sim" or "real" (its layout and depth units).
        config: the run's config (classes, class map, sizes, built-in settings); may be None.
        image_size: size of "image" (default config image_size); gt_size: size of the ground
            truth maps when not training (default image_size): the evaluation resolution.
    Returns:
        (dataset, info): batches of {"image", "depth", "depth_valid", "labels"} (depth in
        metres, not clipped) and "name" when asked; info {"num_classes", "class_names",
        "count", "has_depth", "has_labels", "root", "image_size", "gt_size"}.
    Raises:
        DataError: no ground truth (or no labels with require_labels), bad files or colours.
    """
    opts = data_options(config, image_size=image_size, batch_size=batch_size)
    root = data_root(opts, source)
    scale = opts.sim_depth_scale if role == "sim" else opts.real_depth_scale
    files = discover_domain(root, split, role, depth_scale=scale)
    classes, class_map = resolve_classes(
        opts, files if role == "sim" and opts.sim_data == source else None)
    lookup = label_lookup(files, classes, class_map)
    if require_labels and not files.has_labels():
        raise DataError(f"{files.root}: expected class labels (labels/ or classgt/), found none")
    keep = [i for i in range(len(files))
            if (files.depth and files.depth[i]) or (files.labels and files.labels[i])]
    if 0 < len(keep) < len(files):
        warnings.warn(f"{files.root}: {len(files) - len(keep)} of {len(files)} images have "
                      f"no depth and no labels; left out", stacklevel=2)
    if not keep:
        raise DataError(f"{files.root}: expected ground truth (depth/ or labels/ or classgt/) "
                        f"for at least one image, found none")
    files = dataclasses.replace(
        files, names=[files.names[i] for i in keep], rgb=[files.rgb[i] for i in keep],
        depth=[files.depth[i] for i in keep] if files.depth is not None else None,
        labels=[files.labels[i] for i in keep] if files.labels is not None else None)
    validate_domain(files, lookup, opts.data_check)
    gt = paired._size_hw(gt_size, "gt_size") if gt_size is not None else opts.image_size
    ds = _make_dataset(files, lookup, size=opts.image_size, maps_size=gt,
                       batch_size=opts.batch_size, training=training, with_depth=True,
                       with_labels=True, seed=opts.seed, deterministic=opts.deterministic,
                       flip=opts.flip, repeat=repeat, with_names=with_names)
    info = {"num_classes": len(classes), "class_names": list(classes), "count": len(files),
            "has_depth": files.has_depth(), "has_labels": files.has_labels(),
            "root": files.root, "image_size": opts.image_size,
            "gt_size": opts.image_size if training else gt}
    return ds, info


def make_eval_dataset(source, split="test", *, config=None, image_size=None, gt_size=None,
                      batch_size=8, role="real"):
    """Real (or any) test images with their depth and labels, in file order, not repeated.

    Returns `make_labelled_dataset(..., training=False, with_names=True)`: (dataset, info);
    each batch holds "image" at image_size and "depth", "depth_valid", "labels" at gt_size,
    and "name".
    """
    return make_labelled_dataset(source, split, config=config, role=role, training=False,
                                 image_size=image_size, gt_size=gt_size, batch_size=batch_size,
                                 repeat=False, with_names=True)
