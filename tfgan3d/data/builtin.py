"""Built-in data sets: `--data builtin:NAME` generates a simulated set once and caches it.

    builtin:scenes-virtual   simulated scenes, "virtual" domain (Regime-V of the pix2pix report)
    builtin:scenes-real      simulated scenes, "real-like" domain (Regime-R stand-in)
    builtin:rooms-sim        sim2real's simulation: Regime-R content, a game engine's rendering
    builtin:rooms-real       sim2real's real: the same content distribution, camera and sensor
    builtin:eyes             simgan's grey 35 x 55 eyes (`tfgan3d.data.eyes`)
    builtin:depth            simgan's depth maps: clean "virtual" vs sensor "real-like" depth
    builtin:voxels           fcr_alphagan's furnished rooms (`tfgan3d.data.voxels`), npz shards

This module is the one place that maps a built-in name to its generator and its cache: `BUILTIN`
lists every set with its kind, the generator of that kind (`GENERATORS`) and the simulator
version that names its cache. Three kinds, one resolver each:

    scenes   `resolve_data_source` -> a folder in the tfgan3d folders layout (pix2pix, sim2real)
    voxels   `resolve_voxel_source` -> a folder of npz shards (fcr_alphagan)
    refine   `cached_arrays` -> (images, labels) arrays from an .npz file (simgan; through
             `tfgan3d.data.refine_data.builtin_arrays`, which knows each role's defaults)

Caches live under $TFGAN3D_CACHE (default ~/.cache/tfgan3d), one folder or file per setting;
a cache appears by renaming a finished temporary, so one that exists is complete. Any other
source is a path to a data set folder.
"""
import dataclasses
import importlib
import io
import os
from pathlib import Path

import numpy as np

from tfgan3d import io as tio
from tfgan3d.data import voxels
from tfgan3d.data.errors import DataError

PREFIX = "builtin:"


@dataclasses.dataclass(frozen=True)
class BuiltinSet:
    """One built-in set: its kind (the generator and cache of `GENERATORS`), the simulator's
    domain it draws (scenes) and the version in its cache name: bump it when the simulator of
    that set changes, so that a cached set of the old simulator is never read as the new one."""
    kind: str
    version: int = 1
    domain: str | None = None


# scenes-real v2: furniture built from parts, real materials, two or three lights.
# eyes, depth v2: the simulators' or refine_data's scaling changed.
BUILTIN = {
    "scenes-virtual": BuiltinSet("scenes", 1, "virtual"),
    "scenes-real": BuiltinSet("scenes", 2, "real-like"),
    "rooms-sim": BuiltinSet("scenes", 1, "rooms-sim"),
    "rooms-real": BuiltinSet("scenes", 1, "rooms-real"),
    "eyes": BuiltinSet("refine", 2),
    "depth": BuiltinSet("refine", 2),
    "voxels": BuiltinSet("voxels", voxels.SIMULATOR_VERSION),
}
# kind -> (what a message calls it, "module:function" of its generator, imported when used)
GENERATORS = {
    "scenes": ("data set", "tfgan3d.data.scene_files:write_scene_dataset"),
    "refine": ("refinement set", "tfgan3d.data.refine_data:render_builtin"),
    "voxels": ("voxel data set", "tfgan3d.data.voxel_formats:write_builtin_voxels"),
}
BUILTIN_SETS = {name: s.domain for name, s in BUILTIN.items() if s.kind == "scenes"}


def is_builtin(source):
    """True when `source` names a built-in set ("builtin:NAME"), known or not."""
    return isinstance(source, str) and source.startswith(PREFIX)


def names(kind):
    """"builtin:NAME" of every set of a kind, in table order."""
    return [PREFIX + name for name, s in BUILTIN.items() if s.kind == kind]


def builtin_name(source, kind):
    """NAME of a "builtin:NAME" source of this kind.

    Raises:
        DataError: not a known built-in set of this kind (the valid ones listed).
    """
    name = str(source)[len(PREFIX):]
    if not str(source).startswith(PREFIX) or BUILTIN.get(name, BuiltinSet("")).kind != kind:
        raise DataError(f"unknown built-in {GENERATORS[kind][0]} {source!r}; valid: "
                        f"{', '.join(names(kind))}")
    return name


def generator(kind):
    """The function that writes (or renders) a set of this kind."""
    module, function = GENERATORS[kind][1].split(":")
    return getattr(importlib.import_module(module), function)


def default_cache_dir():
    """$TFGAN3D_CACHE, else ~/.cache/tfgan3d."""
    return Path(os.environ.get("TFGAN3D_CACHE") or "~/.cache/tfgan3d").expanduser()


def _cache_dir(cache_dir):
    return Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()


# ---- scenes: folders of the tfgan3d layout ------------------------------------------------------

def cache_folder_name(name, *, n_train, n_test, size, seed):
    """NAME-<H>x<W>-n<train>+<test>-s<seed>-v<simulator version>: one folder per setting."""
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    version = BUILTIN[name].version if name in BUILTIN else 1
    return f"{name}-{height}x{width}-n{n_train}+{n_test}-s{seed}-v{version}"


def resolve_data_source(source, *, n_train, n_test, size, seed, cache_dir=None):
    """The data set folder for a `--data` value, generating a built-in set on first use.

    Args:
        source: "builtin:NAME" (a scenes set) or a path.
        n_train, n_test, size (int or (height, width)), seed: generation settings of a built-in
            set (they name its cache folder); ignored for a path.
        cache_dir: where built-in sets are cached; default `default_cache_dir()`.
    Returns:
        pathlib.Path of the data set root.
    Raises:
        DataError: an unknown built-in name (valid ones listed) or a path that does not exist.
    """
    if not is_builtin(source):
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError(f"{path}: expected a data set folder or builtin:NAME "
                            f"({', '.join(names('scenes'))}), found nothing")
        return path
    name = builtin_name(source, "scenes")
    cache_dir = _cache_dir(cache_dir)
    target = cache_dir / cache_folder_name(name, n_train=n_train, n_test=n_test, size=size,
                                           seed=seed)
    # The writer renames a finished temp folder, dataset.json included: present means complete.
    if (target / "dataset.json").is_file():
        return target
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        generator("scenes")(target, BUILTIN[name].domain, n_train, n_test, height=height,
                            width=width, seed=seed)
    except Exception:
        if (target / "dataset.json").is_file():  # another process finished the same set first
            return target
        raise
    return target


# ---- voxels: shard folders ----------------------------------------------------------------------

def voxel_root(config, source=None) -> str:
    """`resolve_voxel_source` of `source` (default `config.data`) with a voxel config's data
    settings (n_train, n_test, grid, seed, cache_dir): the folder a fcr_alphagan run reads."""
    return resolve_voxel_source(source or config.data, n_train=config.n_train,
                                n_test=config.n_test, grid=config.grid, seed=config.seed,
                                cache_dir=config.cache_dir)


def resolve_voxel_source(source, n_train=2000, n_test=100, grid=voxels.GRID, seed=0,
                         cache_dir=None, workers=1):
    """The folder of a voxel data set, generating "builtin:voxels" on first use.

    The built-in set (`write_builtin_voxels`, npz shards) is cached under $TFGAN3D_CACHE
    (default ~/.cache/tfgan3d) in a folder named by the settings; a path is returned as it is.

    Raises:
        DataError: an unknown built-in name or a path that does not exist.
    """
    if not str(source).startswith(PREFIX):
        path = Path(source).expanduser()
        if not path.exists():
            raise DataError(f"{path}: expected a voxel data set folder or builtin:voxels, "
                            f"found nothing")
        return str(path)
    name = builtin_name(source, "voxels")
    grid = tuple(int(g) for g in grid)
    target = _cache_dir(cache_dir) / (f"{name}-{'x'.join(map(str, grid))}-n{n_train}+{n_test}"
                                      f"-s{seed}-v{BUILTIN[name].version}")
    if target.is_dir():  # complete: the set appears by renaming a finished temporary folder
        return str(target)
    try:
        return generator("voxels")(target, n_train, n_test, grid=grid, seed=seed,
                                   workers=workers)
    except OSError:
        if target.is_dir():  # another process finished the same set first
            return str(target)
        raise


# ---- refine: arrays in one .npz file ------------------------------------------------------------

def cached_arrays(source, role, n, size, seed, cache_dir=None):
    """(images, labels) of a refine set's role, rendered once and cached as one .npz file.

    Args:
        source: "builtin:eyes" or "builtin:depth"; role, n, size (height, width), seed: what to
            render (`tfgan3d.data.refine_data.render_builtin`), and the cache file's name.
        cache_dir: folder of the cache; None: `default_cache_dir()`; False: no cache.
    Raises:
        DataError: an unknown built-in name.
    """
    name = builtin_name(source, "refine")
    size = tuple(int(s) for s in size)
    if cache_dir is False:
        return generator("refine")(name, role, n, size, seed)
    path = _cache_dir(cache_dir) / (f"refine-{name}-{role}-{size[0]}x{size[1]}-n{n}-s{seed}"
                                    f"-v{BUILTIN[name].version}.npz")
    if path.is_file():
        with np.load(path) as data:
            return data["images"], data["labels"]
    images, labels = generator("refine")(name, role, n, size, seed)
    buffer = io.BytesIO()
    np.savez(buffer, images=images, labels=labels)
    tio.atomic_write(path, buffer.getvalue())  # a reader never sees a half-written cache file
    return images, labels
