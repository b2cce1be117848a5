"""The files of one split of a sim2real domain (simulation or real): discovery, matched by
name, and validation before training.

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
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from tfgan3d.data.classes import base_name, read_colour_table
from tfgan3d.data.depth_range import DepthRange
from tfgan3d.data.folders import (index_by_stem, listing, load_dataset_json, spec_defaults,
                                  split_folder)
from tfgan3d.data.images import (DEPTH_EXTENSIONS, IMAGE_EXTENSIONS, DataError, DepthSpec,
                                 check_depth_dtype, probe_image, read_depth, read_rgb)
from tfgan3d.data.labels import LabelLookup, read_labels

ROLES = ("sim", "real")
DEFAULT_DEPTH_SCALE = {"sim": 0.01, "real": 1.0 / 256.0}
COLOUR_TABLES = ("colors.txt", "colours.txt", "classes.csv", "classes.txt")
DATA_CHECKS = ("all", "first", "headers")


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
    layout = "files"             # shards.DomainShards says "shards"

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
    return index_by_stem(folder, extensions) if folder.is_dir() else None


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
    from tfgan3d.data import shards        # a shard set: streamed records (data/shards.py)
    sharded = shards.shard_folder(root, split)
    if sharded is not None:
        return shards.discover_domain_shards(sharded, role, depth_scale)
    folder = split_folder(root, split)
    meta = load_dataset_json(root, folder) if folder != root else \
        load_dataset_json(root)
    defaults = {"depth_scale": DEFAULT_DEPTH_SCALE[role], **spec_defaults(meta)}
    spec = DepthSpec(depth_scale=depth_scale).resolve(defaults)
    rgb = index_by_stem(folder / "rgb", IMAGE_EXTENSIONS)
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
                    f"{listing(missing)}"
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
        return tuple(dict.fromkeys(base_name(n) for n in files.source_classes))
    if num_classes:
        return tuple(f"class_{i}" for i in range(num_classes))
    raise DataError(f"{files.root}: cannot tell the classes of its id labels: give "
                    f"dataset.json \"classes\", a colour table, num_classes or a class map")


# ---- validation ---------------------------------------------------------------------------------

def validate_domain(files: DomainFiles, lookup: LabelLookup | None, check="all", *,
                    maps=("depth", "labels"), max_errors=5, max_depth=None,
                    depth_flags=("--max-depth", "--depth-scale")) -> DomainFiles:
    """Checks headers, sizes, depth dtypes and label values before training; raises once.

    Args:
        check: "all" decodes every file, "first" only the first name's, "headers" none.
        maps: which of the maps to check besides the RGB ("depth", "labels").
        max_depth: metres the depth targets are clipped to; given, more than half of the
            decoded valid depth beyond it is refused (a wrong unit) and more than 5 % warns
            (`tfgan3d.data.depth_range`), naming `depth_flags` (max depth, depth unit).
    Raises:
        DataError: every problem found, each naming its file (an unknown label colour names
            the colour too).
    """
    if check not in DATA_CHECKS:
        raise ValueError(f"check must be one of {DATA_CHECKS}, got {check!r}")
    if files.layout == "shards":            # the stream checks each record as it reads it
        from tfgan3d.data import shards
        return shards.validate_domain_shards(files, lookup if "labels" in maps else None)
    errors = []
    depth_range = DepthRange(float(max_depth), *depth_flags) if max_depth else None
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
                    depth, valid = read_depth(files.depth[i], files.spec)
                    if depth_range is not None:
                        depth_range.add(files.depth[i], depth, valid)
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
    if depth_range is not None:
        depth_range.check(files.root)
    return files
