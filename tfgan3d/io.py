"""One home for writing files and converting images: everything tfgan3d writes goes through here.

Every writer builds the whole file in memory and hands it to `atomic_write`, which writes a
temporary file in the destination folder (same file system), flushes it to disk and renames it
over the destination. A reader, or a crash half-way, never sees a half-written file, and an
existing file is left untouched when writing fails.

Image values: networks work in [-1, 1]; files hold uint8. `to_uint8` is the one conversion
(rounded, clipped); `from_uint8` its inverse. No TensorFlow here: PNGs are encoded with Pillow.
"""
from __future__ import annotations

import io
import json
import math
import os
import secrets
from pathlib import Path

import numpy as np


def atomic_write(path, data) -> Path:
    """Writes `data` (bytes or str, UTF-8) to `path` through a temporary file and `os.replace`.

    The parent folder is created when missing. On any error the temporary file is removed and
    an existing file at `path` is left as it was. Returns the destination as a Path.
    """
    if isinstance(data, str):
        data = data.encode("utf-8")
    elif isinstance(data, (bytearray, memoryview)):
        data = bytes(data)
    elif not isinstance(data, bytes):
        raise TypeError(f"atomic_write expects bytes or str for {path}, got "
                        f"{type(data).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # os.open with O_EXCL and mode 0o666 keeps the process umask, unlike tempfile.mkstemp (0o600).
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"could not create a temporary file next to {path}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def plain(value):
    """numpy scalars and arrays, tuples, sets and paths as plain JSON-able Python; non-finite
    floats become None (strict JSON has no NaN or Infinity)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [plain(v) for v in value.tolist()] if value.ndim else plain(value.item())
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def write_json(obj, path, indent=2, sort_keys=False) -> Path:
    """`obj` as strict JSON (see `plain`), written atomically."""
    text = json.dumps(plain(obj), indent=indent, allow_nan=False, sort_keys=sort_keys)
    return atomic_write(path, text + "\n")


def npy_bytes(array) -> bytes:
    """The .npy file of `array`, in memory."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def save_npy(path, array) -> Path:
    """`array` as a .npy file, written atomically."""
    return atomic_write(path, npy_bytes(array))


def to_uint8(images) -> np.ndarray:
    """Values in [-1, 1] as uint8 0..255: rounded to the nearest level, clipped outside."""
    return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def from_uint8(images) -> np.ndarray:
    """uint8 0..255 as float32 in [-1, 1] (the inverse of `to_uint8` on its 256 levels)."""
    return np.asarray(images, np.float32) / 127.5 - 1.0


def png_bytes(image) -> bytes:
    """A uint8 image (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) as PNG bytes."""
    from PIL import Image
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise TypeError(f"png_bytes expects uint8, got {image.dtype}")
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def save_png(path, image) -> Path:
    """A uint8 image as a PNG file, written atomically."""
    return atomic_write(path, png_bytes(image))


def move_all_into_place(staged: dict, finals: dict) -> None:
    """Renames each finished temporary folder `staged[key]` to `finals[key]`, all or none: a
    final path that appeared meanwhile stops the move and the folders already moved go back
    to their temporary names (the caller removes those)."""
    moved = []
    try:
        for key, tmp in staged.items():
            if finals[key].exists():
                raise FileExistsError(f"{finals[key]} appeared during the export")
            os.replace(tmp, finals[key])
            moved.append(key)
    except BaseException:
        for key in moved:
            os.replace(finals[key], staged[key])
        raise
