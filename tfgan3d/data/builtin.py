"""Built-in data sets: `--data builtin:NAME` generates the simulated scenes once and caches them.

    builtin:scenes-virtual   simulated scenes, "virtual" domain (Regime-V of the pix2pix report)
    builtin:scenes-real      simulated scenes, "real-like" domain (Regime-R stand-in)
    builtin:rooms-sim        sim2real's simulation: Regime-R content, a game engine's rendering
    builtin:rooms-real       sim2real's real: the same content distribution, camera and sensor

Any other source is a path to a data set folder in the layouts of `tfgan3d.data.paired`.
"""
import os
from pathlib import Path

from tfgan3d.data.images import DataError

PREFIX = "builtin:"
BUILTIN_SETS = {"scenes-virtual": "virtual", "scenes-real": "real-like",
                "rooms-sim": "rooms-sim", "rooms-real": "rooms-real"}
# Simulator version of each set, part of its cache folder's name: bump it when the renderer of
# that domain changes, so that a cached set of the old renderer is never read as the new one.
# scenes-real v2: furniture built from parts, real materials, two or three lights.
BUILTIN_VERSIONS = {"scenes-virtual": 1, "scenes-real": 2, "rooms-sim": 1, "rooms-real": 1}


def is_builtin(source):
    """True when `source` names a built-in set ("builtin:NAME"), known or not."""
    return isinstance(source, str) and source.startswith(PREFIX)


def default_cache_dir():
    """$TFGAN3D_CACHE, else ~/.cache/tfgan3d."""
    return Path(os.environ.get("TFGAN3D_CACHE") or "~/.cache/tfgan3d").expanduser()


def cache_folder_name(name, *, n_train, n_test, size, seed):
    """NAME-<H>x<W>-n<train>+<test>-s<seed>-v<simulator version>: one folder per setting."""
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    version = BUILTIN_VERSIONS.get(name, 1)
    return f"{name}-{height}x{width}-n{n_train}+{n_test}-s{seed}-v{version}"


def resolve_data_source(source, *, n_train, n_test, size, seed, cache_dir=None):
    """The data set folder for a `--data` value, generating a built-in set on first use.

    Args:
        source: "builtin:NAME" or a path.
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
                            f"({', '.join(PREFIX + n for n in BUILTIN_SETS)}), found nothing")
        return path
    name = source[len(PREFIX):]
    if name not in BUILTIN_SETS:
        raise DataError(f"unknown built-in data set {source!r}; valid: "
                        f"{', '.join(PREFIX + n for n in BUILTIN_SETS)}")
    cache_dir = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    target = cache_dir / cache_folder_name(name, n_train=n_train, n_test=n_test, size=size,
                                           seed=seed)
    # The writer renames a finished temp folder, dataset.json included: present means complete.
    if (target / "dataset.json").is_file():
        return target
    from tfgan3d.data.scene_files import write_scene_dataset  # lazy: numpy/scene code only here

    height, width = (size, size) if isinstance(size, int) else tuple(size)
    cache_dir.mkdir(parents=True, exist_ok=True)
    try:
        write_scene_dataset(target, BUILTIN_SETS[name], n_train, n_test, height=height,
                            width=width, seed=seed)
    except Exception:
        if (target / "dataset.json").is_file():  # another process finished the same set first
            return target
        raise
    return target
