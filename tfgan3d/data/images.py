"""Single image files: header probes, Python-side readers with clear errors, and the TF-side
decoders that the tf.data pipelines call.

Depth encodings (metres from the stored value):

    png16   16-bit PNG, d = value * depth_scale (0.001 mm, 0.01 cm as Virtual KITTI, 1/256 KITTI)
    grey8   8-bit grey PNG/JPG, d = max_depth * g/255 ("near-dark") or
            max_depth * (1 - g/255) ("near-bright")
    npy     float array of metres

Invalid pixels: raw 0 for png16 and grey8 (both conventions); 0, NaN, inf or negative for npy.
Every decoder returns the depth with invalid pixels set to 0 together with a boolean mask, so an
invalid value is never used as a depth.

The Python readers (`read_rgb`, `read_depth`, `probe_image`) raise `DataError` naming the file,
what was expected and what was found; the TF decoders (`decode_*_tf`) trust that the files were
checked beforehand (`tfgan3d.data.paired.validate_pairs`).
"""
import dataclasses
import io
import os
import struct

import numpy as np
import tensorflow as tf

from tfgan3d.data.errors import DataError  # noqa: F401  (raised here; imported from here too)

ENCODINGS = ("auto", "png16", "grey8", "npy")
GREY_CONVENTIONS = ("near-dark", "near-bright")
DEPTH_DEFAULTS = {"encoding": "auto", "depth_scale": 0.001, "grey_convention": "near-dark",
                  "max_depth": 10.0}
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
DEPTH_EXTENSIONS = IMAGE_EXTENSIONS + (".npy",)

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_NPY_MAGIC = b"\x93NUMPY"
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}  # PNG colour type -> decoded channels
# Mean over pixels of (max - min channel) above which a 3-channel "grey" depth map is colour
# (a colour map, or an RGB photo in the depth folder). JPEG chroma noise stays well below it.
_GREY_TOLERANCE = 4.0


@dataclasses.dataclass(frozen=True)
class DepthSpec:
    """How depth values are stored. A field left as None is "not given": `resolve` fills it from
    dataset.json defaults, then from DEPTH_DEFAULTS.

    Attributes:
        encoding: "auto" (by file: .npy -> npy, 16-bit PNG -> png16, 8-bit -> grey8), "png16",
            "grey8" or "npy".
        depth_scale: metres per unit of a png16 value.
        grey_convention: "near-dark" or "near-bright" for grey8.
        max_depth: metres of grey value 255 ("near-dark") or of 0+ ("near-bright").
    """
    encoding: str | None = None
    depth_scale: float | None = None
    grey_convention: str | None = None
    max_depth: float | None = None

    def __post_init__(self):
        if self.encoding is not None and self.encoding not in ENCODINGS:
            raise ValueError(f"depth encoding must be one of {ENCODINGS}, got {self.encoding!r}")
        if self.grey_convention is not None and self.grey_convention not in GREY_CONVENTIONS:
            raise ValueError(f"grey_convention must be one of {GREY_CONVENTIONS}, "
                             f"got {self.grey_convention!r}")
        for name in ("depth_scale", "max_depth"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}")

    def resolve(self, defaults=None):
        """Returns a spec with every field set: own values, then `defaults`, then built-ins."""
        defaults = defaults or {}
        values = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is None:
                value = defaults.get(field.name, DEPTH_DEFAULTS[field.name])
            values[field.name] = value
        return DepthSpec(**values)

    def to_dict(self):
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class ImageInfo:
    """What a file's header says: format ("png", "jpeg", "npy", ...), size, channels, dtype."""
    format: str
    height: int
    width: int
    channels: int
    dtype: str


def probe_image(path):
    """Reads only the header of an image or .npy file.

    Raises:
        DataError: the file is missing, empty, or not a PNG / JPEG / other image / .npy file.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror or e})") from e
    if not head:
        raise DataError(f"{path}: expected an image, found an empty file")
    if head.startswith(_PNG_SIGNATURE):
        if len(head) < 26 or head[12:16] != b"IHDR":
            raise DataError(f"{path}: expected a PNG header (IHDR), found corrupt bytes")
        width, height = struct.unpack(">II", head[16:24])
        bit_depth, colour_type = head[24], head[25]
        if colour_type not in _PNG_CHANNELS or bit_depth not in (1, 2, 4, 8, 16):
            raise DataError(f"{path}: expected a PNG header, found bit depth {bit_depth} and "
                            f"colour type {colour_type}")
        dtype = "uint16" if bit_depth == 16 else "uint8"
        return ImageInfo("png", height, width, _PNG_CHANNELS[colour_type], dtype)
    if head.startswith(_NPY_MAGIC):
        try:
            header = np.load(path, mmap_mode="r", allow_pickle=False)  # maps, reads no data
            shape, dtype = header.shape, header.dtype
            del header
        except (ValueError, OSError) as e:
            raise DataError(f"{path}: expected a .npy array header, found corrupt bytes "
                            f"({e})") from e
        if len(shape) == 3 and shape[2] == 1:
            shape = shape[:2]
        if len(shape) != 2:
            raise DataError(f"{path}: expected a depth array of shape (H, W) or (H, W, 1), "
                            f"found shape {tuple(shape)}")
        return ImageInfo("npy", shape[0], shape[1], 1, dtype.name)
    from PIL import Image, UnidentifiedImageError  # JPEG, BMP, ...: Pillow reads headers only
    try:
        with Image.open(path) as image:
            width, height = image.size
            channels = len(image.getbands())
            fmt = (image.format or "unknown").lower()
            dtype = "uint16" if image.mode.startswith("I;16") else "uint8"
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise DataError(f"{path}: expected a PNG, JPEG or .npy file, found unrecognised "
                        f"bytes") from e
    return ImageInfo(fmt, height, width, channels, dtype)


def _read_bytes(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise DataError(f"{path}: cannot read the file ({e.strerror or e})") from e


def _decode_error(path, what, error):
    message = getattr(error, "message", str(error)).split("[Op:")[0].split("}}")[-1].strip()
    return DataError(f"{path}: expected a decodable {what}, found corrupt data ({message})")


def read_rgb(path):
    """Reads an 8-bit colour image (grey expanded to 3 channels, alpha dropped).

    Returns:
        np.ndarray uint8 of shape (H, W, 3).
    Raises:
        DataError: unreadable, corrupt or not an image; names the file.
    """
    path = os.fspath(path)
    info = probe_image(path)
    if info.format == "npy":
        raise DataError(f"{path}: expected an RGB image (png/jpg), found a .npy array")
    try:
        return decode_rgb_tf(_read_bytes(path)).numpy()
    except tf.errors.OpError as e:
        raise _decode_error(path, "RGB image", e) from e


def check_depth_dtype(path, info, encoding):
    """Returns the encoding of a depth file (resolving "auto") after checking its header.

    Raises:
        DataError: the file's dtype or channels disagree with `encoding`; names both.
    """
    found = {"npy": "npy", "uint16": "png16"}.get(
        "npy" if info.format == "npy" else info.dtype, "grey8")
    if encoding == "auto":
        encoding = found
    if encoding == "npy" and info.format != "npy":
        raise DataError(f"{path}: depth encoding 'npy' expects a .npy float array, found a "
                        f"{info.format} image")
    if encoding == "npy" and not np.issubdtype(np.dtype(info.dtype), np.floating):
        raise DataError(f"{path}: depth encoding 'npy' expects a float array of metres, found "
                        f"dtype {info.dtype}")
    if encoding == "png16" and (info.format != "png" or info.dtype != "uint16"):
        found_type = "a .npy array" if info.format == "npy" else f"{info.dtype} {info.format}"
        raise DataError(f"{path}: depth encoding 'png16' expects a uint16 PNG, found {found_type}")
    if encoding == "png16" and info.channels > 2:
        raise DataError(f"{path}: depth encoding 'png16' expects a single-channel PNG, found "
                        f"{info.channels} channels")
    if encoding == "grey8" and (info.format == "npy" or info.dtype != "uint8"):
        found_type = "a .npy array" if info.format == "npy" else f"{info.dtype} {info.format}"
        raise DataError(f"{path}: depth encoding 'grey8' expects a uint8 image, found "
                        f"{found_type}")
    return encoding


def check_grey(path, rgb, what="depth image"):
    """Raises DataError when a 3-channel image that should be grey is colour."""
    rgb = np.asarray(rgb, np.int16)
    spread = float(np.mean(rgb.max(axis=-1) - rgb.min(axis=-1)))
    if spread > _GREY_TOLERANCE:
        raise DataError(f"{path}: expected a grey {what} (3 equal channels), found colour "
                        f"(mean channel spread {spread:.1f} grey levels)")


def read_depth(path, spec=None):
    """Reads a depth file in metres.

    Args:
        path: .png (16-bit or 8-bit grey), .jpg (8-bit grey) or .npy (float metres).
        spec: DepthSpec; None fields take DEPTH_DEFAULTS.
    Returns:
        (depth float32 (H, W) in metres with 0 where invalid, valid bool (H, W)).
    Raises:
        DataError: unreadable or corrupt file, or a dtype that disagrees with `spec.encoding`.
    """
    path = os.fspath(path)
    spec = (spec or DepthSpec()).resolve()
    info = probe_image(path)
    encoding = check_depth_dtype(path, info, spec.encoding)
    spec = dataclasses.replace(spec, encoding=encoding)
    if encoding == "npy":
        try:
            depth = np.load(path, allow_pickle=False)
        except (ValueError, OSError, EOFError) as e:
            raise DataError(f"{path}: expected a .npy float array, found corrupt data "
                            f"({e})") from e
        return _npy_to_metres(depth.reshape(depth.shape[:2]))
    data = _read_bytes(path)
    try:
        depth, valid = decode_depth_tf(data, spec)
        if encoding == "grey8" and info.channels >= 3:
            check_grey(path, decode_rgb_tf(data).numpy())
    except tf.errors.OpError as e:
        raise _decode_error(path, f"{encoding} depth image", e) from e
    return depth.numpy(), valid.numpy()


def _npy_to_metres(depth):
    depth = np.asarray(depth, np.float32)
    with np.errstate(invalid="ignore"):
        valid = np.isfinite(depth) & (depth > 0)
    return np.where(valid, depth, 0.0).astype(np.float32), valid


def _parse_npy(data):
    depth = np.load(io.BytesIO(data), allow_pickle=False)
    depth, _ = _npy_to_metres(depth.reshape(depth.shape[:2]))
    return depth


# ---- TF side: graph-compatible decoders used inside tf.data maps --------------------------------

def decode_rgb_tf(data):
    """Encoded image bytes -> uint8 [H, W, 3] (grey expanded, alpha dropped)."""
    image = tf.io.decode_image(data, channels=3, dtype=tf.uint8, expand_animations=False)
    image.set_shape([None, None, 3])
    return image


def decode_labels_tf(data):
    """Encoded 8-bit PNG of class ids -> uint8 [H, W]."""
    return tf.io.decode_png(data, channels=1, dtype=tf.uint8)[..., 0]


def grey_to_metres_tf(grey, spec):
    """Raw 8-bit grey values (any float/int tensor) -> (depth metres, valid) per `spec`."""
    grey = tf.cast(grey, tf.float32)
    fraction = grey / 255.0
    if spec.grey_convention == "near-bright":
        fraction = 1.0 - fraction
    valid = grey > 0
    depth = tf.where(valid, spec.max_depth * fraction, 0.0)
    return depth, valid


def decode_depth_tf(data, spec):
    """Encoded depth bytes -> (depth float32 [H, W] metres, 0 where invalid; valid bool [H, W]).

    `spec` must be resolved (no None fields). With encoding "auto" the format is chosen per file
    from its magic bytes, so one data set may mix encodings.
    """
    spec = spec.resolve()

    def png16():
        raw = tf.cast(tf.io.decode_png(data, channels=1, dtype=tf.uint16)[..., 0], tf.float32)
        valid = raw > 0
        return tf.where(valid, raw * spec.depth_scale, 0.0), valid

    def grey8():
        grey = tf.io.decode_image(data, channels=1, dtype=tf.uint8, expand_animations=False)
        return grey_to_metres_tf(grey[..., 0], spec)

    def npy():
        depth = tf.numpy_function(_parse_npy, [data], tf.float32, stateful=False)
        depth = tf.ensure_shape(depth, [None, None])
        return depth, depth > 0

    branches = {"png16": png16, "grey8": grey8, "npy": npy}
    if spec.encoding != "auto":
        depth, valid = branches[spec.encoding]()
    else:
        is_npy = tf.strings.substr(data, 0, len(_NPY_MAGIC)) == _NPY_MAGIC
        is_png16 = tf.logical_and(tf.strings.substr(data, 0, 8) == _PNG_SIGNATURE,
                                  tf.strings.substr(data, 24, 1) == b"\x10")
        depth, valid = tf.cond(is_npy, npy, lambda: tf.cond(is_png16, png16, grey8))
    depth.set_shape([None, None])
    valid.set_shape([None, None])
    return depth, valid


def split_aligned_tf(data, spec):
    """pix2pix A|B image bytes -> (rgb uint8 [H, W, 3], depth metres [H, W], valid [H, W]).

    The left half is the RGB input A, the right half the grey depth B (3 equal channels).
    """
    image = decode_rgb_tf(data)
    half = tf.shape(image)[1] // 2
    real_a = image[:, :half]
    grey = tf.round(tf.reduce_mean(tf.cast(image[:, half:2 * half], tf.float32), axis=-1))
    depth, valid = grey_to_metres_tf(grey, spec.resolve())
    return real_a, depth, valid
