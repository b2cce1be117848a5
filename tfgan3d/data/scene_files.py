"""Writes simulator scenes to disk in the layouts that the data loaders read.

layout="folders":
    OUT/{train,test}/rgb/NAME.png      8-bit RGB
    OUT/{train,test}/depth/NAME.png    16-bit grey: round(sensor depth / depth_scale), 0 invalid
    OUT/{train,test}/labels/NAME.png   8-bit grey class ids, indices into SCENE_CLASSES
layout="aligned" (pix2pix's AB pairs):
    OUT/{train,test}/NAME.png|jpg      RGB of width 2W: rgb | sensor depth as 8-bit grey
Always OUT/dataset.json, describing the set.

NAME is the position in its split, zero-padded to six digits. Train scene i is simulator index
i; test scene i is index TEST_INDEX_OFFSET + i, so neither split changes with the other's size.
The sensor depth is written: real-like sets carry the sensor's defects, virtual ones are exact.
"""
from __future__ import annotations

import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from tfgan3d.data.scenes import ALL_DOMAINS, MAX_DEPTH, SCENE_CLASSES, render_scenes
from tfgan3d.io import write_json

LAYOUTS = ("folders", "aligned")
GREY_CONVENTIONS = ("near-dark", "near-bright")
IMAGE_FORMATS = ("png", "jpg")
TEST_INDEX_OFFSET = 1_000_000_000


def depth_to_png16(depth: np.ndarray, depth_scale: float = 0.001) -> np.ndarray:
    """Metres -> uint16 units of depth_scale metres (rounded, clipped to 65535); 0 stays 0."""
    units = np.round(np.asarray(depth, np.float64) / depth_scale)
    return np.clip(units, 0, 65535).astype(np.uint16)


def depth_to_grey(depth: np.ndarray, convention: str = "near-dark") -> np.ndarray:
    """Metres -> uint8 grey over [0, MAX_DEPTH]; invalid depth (0) is grey 0 in both conventions.

    near-dark: round(255 * d / MAX_DEPTH); near-bright: its complement 255 - that.
    """
    if convention not in GREY_CONVENTIONS:
        raise ValueError(f"unknown grey convention {convention!r}; valid: "
                         f"{', '.join(GREY_CONVENTIONS)}")
    depth = np.asarray(depth, np.float64)
    grey = np.clip(np.round(255.0 * depth / MAX_DEPTH), 0, 255)
    if convention == "near-bright":
        grey = 255 - grey
    return np.where(depth > 0, grey, 0).astype(np.uint8)


def _check(domain, n_train, n_test, height, width, seed, layout, depth_scale,
           grey_convention, image_format, chunk_size, workers):
    choices = (("domain", domain, ALL_DOMAINS), ("layout", layout, LAYOUTS),
               ("grey_convention", grey_convention, GREY_CONVENTIONS),
               ("image_format", image_format, IMAGE_FORMATS))
    for name, value, valid in choices:
        if value not in valid:
            raise ValueError(f"unknown {name} {value!r}; valid: {', '.join(valid)}")
    counts = (("n_train", n_train, 0), ("n_test", n_test, 0), ("height", height, 1),
              ("width", width, 1), ("seed", seed, 0), ("chunk_size", chunk_size, 1),
              ("workers", workers, 1))
    for name, value, least in counts:
        if not isinstance(value, (int, np.integer)) or value < least:
            raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
    if not depth_scale > 0:
        raise ValueError(f"depth_scale must be positive (metres per unit), got {depth_scale!r}")
    if layout == "folders" and image_format != "png":
        raise ValueError(f"image_format={image_format!r} needs layout='aligned'; the folders "
                         "layout stores RGB, 16-bit depth and labels as PNG")


def _write_chunk(task):
    """Renders scenes first .. first+count-1 of a split and writes them under root/split."""
    root, split, first, count, opts = task
    offset = TEST_INDEX_OFFSET if split == "test" else 0
    batch = render_scenes(count, opts["domain"], opts["height"], opts["width"], opts["seed"],
                          start=offset + first)
    folder = Path(root) / split
    for i in range(count):
        name = f"{first + i:0{opts['digits']}d}"
        if opts["layout"] == "folders":
            Image.fromarray(batch["rgb"][i]).save(folder / "rgb" / f"{name}.png")
            Image.fromarray(depth_to_png16(batch["sensor_depth"][i], opts["depth_scale"])).save(
                folder / "depth" / f"{name}.png")
            Image.fromarray(batch["labels"][i]).save(folder / "labels" / f"{name}.png")
        else:
            grey = depth_to_grey(batch["sensor_depth"][i], opts["grey_convention"])
            pair = np.concatenate([batch["rgb"][i], np.repeat(grey[..., None], 3, -1)], axis=1)
            path = folder / f"{name}.{opts['image_format']}"
            if opts["image_format"] == "jpg":
                Image.fromarray(pair).save(path, quality=95)
            else:
                Image.fromarray(pair).save(path)
    return count


def write_scene_dataset(out_dir, domain: str, n_train: int, n_test: int, height: int = 256,
                        width: int = 256, seed: int = 0, layout: str = "folders",
                        depth_scale: float = 0.001, grey_convention: str = "near-dark",
                        image_format: str = "png", overwrite: bool = False,
                        chunk_size: int = 32, workers: int = 1) -> Path:
    """Renders a train and a test split of simulator scenes and writes them to out_dir.

    The set is written into the sibling folder `OUT.tmp-<pid>` and renamed to out_dir only
    when complete. Scenes are rendered chunk_size at a time, by `workers` processes.

    Args:
        out_dir: the data set folder; must be absent or empty unless overwrite.
        domain: "virtual" or "real-like" (see tfgan3d.data.scenes).
        n_train, n_test: scenes per split.
        layout: "folders" (rgb/, depth/ 16-bit, labels/) or "aligned" (pix2pix AB pairs).
        depth_scale: metres per unit of the 16-bit depth PNGs (folders layout).
        grey_convention: "near-dark" or "near-bright", for the 8-bit depth of "aligned".
        image_format: "png", or "jpg" for the aligned layout.

    Returns:
        The Path of the written data set.

    Raises:
        ValueError: an unknown choice or a bad count, size or scale.
        FileExistsError: out_dir exists, is not an empty folder, and overwrite is False.
    """
    _check(domain, n_train, n_test, height, width, seed, layout, depth_scale, grey_convention,
           image_format, chunk_size, workers)
    out = Path(out_dir).absolute()
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty; pass overwrite=True "
                              "(--overwrite) to replace it")
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    opts = dict(domain=domain, height=height, width=width, seed=seed, layout=layout,
                depth_scale=depth_scale, grey_convention=grey_convention,
                image_format=image_format, digits=max(6, len(str(max(n_train, n_test) - 1))))
    tasks = []
    try:
        for split, count in (("train", n_train), ("test", n_test)):
            for sub in (("rgb", "depth", "labels") if layout == "folders" else ("",)):
                (tmp / split / sub).mkdir(parents=True, exist_ok=True)
            tasks += [(str(tmp), split, first, min(chunk_size, count - first), opts)
                      for first in range(0, count, chunk_size)]
        if workers > 1 and len(tasks) > 1:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(workers, mp_context=context) as pool:
                list(pool.map(_write_chunk, tasks))
        else:
            for task in tasks:
                _write_chunk(task)
        meta = {"format": "tfgan3d-scenes", "layout": layout, "domain": domain, "seed": seed,
                "height": height, "width": width, "n_train": n_train, "n_test": n_test,
                "classes": list(SCENE_CLASSES), "depth_scale": depth_scale,
                "depth_encoding": "png16" if layout == "folders" else "grey8",
                "grey_convention": grey_convention, "max_depth": MAX_DEPTH}
        write_json(meta, tmp / "dataset.json", indent=2)
        if overwrite and out.exists():
            old = out.with_name(f"{out.name}.old-{os.getpid()}")
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            try:  # rename replaces an absent or empty folder, never a filled one
                tmp.rename(out)
            except OSError as err:
                raise FileExistsError(f"{out} was filled by someone else while this set was "
                                      "written; pass overwrite=True to replace it") from err
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out
