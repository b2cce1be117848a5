"""Folder discovery shared by the paired (pix2pix) and sim2real loaders: dataset.json, image
listings matched by file stem, split folders and the short name listings of error messages.

A data set folder ROOT holds train/ and test/ (and val/) split folders, or is itself the only
split. ROOT/dataset.json, and a split folder's own dataset.json (which wins), may hold
"layout", "depth_encoding", "depth_scale", "grey_convention", "max_depth" and "classes".
"""
import json
from pathlib import Path

from tfgan3d.data.images import IMAGE_EXTENSIONS, DataError, DepthSpec

LAYOUTS = ("folders", "aligned")
SPLITS = ("train", "test", "val")
_JSON_TO_SPEC = {"depth_encoding": "encoding", "depth_scale": "depth_scale",
                 "grey_convention": "grey_convention", "max_depth": "max_depth"}
_MAX_LISTED = 5


def load_dataset_json(*folders):
    """Merged contents of dataset.json in `folders` (later folders win); {} when none exist.

    Raises:
        DataError: a dataset.json that is not a JSON object or holds an invalid value.
    """
    merged = {}
    for folder in folders:
        path = Path(folder) / "dataset.json"
        if not path.is_file():
            continue
        try:
            meta = json.loads(path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataError(f"{path}: expected a JSON object, found unreadable JSON ({e})") from e
        if not isinstance(meta, dict):
            raise DataError(f"{path}: expected a JSON object, found {type(meta).__name__}")
        if meta.get("layout", "folders") not in LAYOUTS:
            raise DataError(f"{path}: \"layout\" must be one of {LAYOUTS}, "
                            f"found {meta['layout']!r}")
        try:
            DepthSpec(**spec_defaults(meta))
        except ValueError as e:
            raise DataError(f"{path}: {e}") from e
        merged.update(meta)
    return merged


def spec_defaults(meta):
    """The DepthSpec fields that a dataset.json sets (its keys renamed to the spec's)."""
    return {field: meta[key] for key, field in _JSON_TO_SPEC.items() if key in meta}


def list_images(folder, extensions=IMAGE_EXTENSIONS):
    """Sorted files of `folder` whose extension (any case) is in `extensions`.

    Raises:
        DataError: the folder is missing or holds no such file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: expected a folder of images, found no folder")
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix.lower() in extensions)
    if not files:
        raise DataError(f"{folder}: expected {'/'.join(e[1:] for e in extensions)} files, "
                        f"found an empty folder")
    return files


def index_by_stem(folder, extensions):
    """{file stem: path} of the images of `folder` (see `list_images`).

    Raises:
        DataError: a missing or empty folder, or two files of one stem (a.png and a.jpg).
    """
    by_stem = {}
    for path in list_images(folder, extensions):
        if path.stem in by_stem:
            raise DataError(f"{folder}: expected one file per name, found both "
                            f"{by_stem[path.stem].name} and {path.name}")
        by_stem[path.stem] = path
    return by_stem


def listing(names):
    """The first few of `names`, sorted, for a message: "a, b, c, d, e, ... (12 in all)"."""
    names = sorted(names)
    shown = ", ".join(names[:_MAX_LISTED])
    return shown + (f", ... ({len(names)} in all)" if len(names) > _MAX_LISTED else "")


def split_folder(root, split):
    """ROOT/SPLIT when it exists; ROOT itself when ROOT has no split folders (or split None).

    Raises:
        DataError: ROOT has split folders, but not this one.
    """
    if split is None:
        return root
    folder = root / split
    if folder.is_dir():
        return folder
    present = [s for s in SPLITS if (root / s).is_dir()]
    if present:
        raise DataError(f"{root}: expected a split folder '{split}', found only {present}")
    return root  # a data set without split folders: the root is the only split
