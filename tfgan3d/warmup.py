"""TF Serving warm-up records: `assets.extra/tf_serving_warmup_requests` in a SavedModel version
folder, a TFRecord file of `PredictionLog` protos (tensorflow-serving-api) that TF Serving
replays when it loads the model, so that the first user request does not pay for graph
initialisation. A record that fails makes TF Serving refuse to load the model, so `check`
replays every record through the model's functions before the export is moved into place.

Each record is one example (a batch of 1) for one signature; every signature with inputs gets
`n` records. The inputs come from samples: images (float32 in [-1, 1], [N, H, W, C]), their
encoded bytes, voxel scenes (integer labels) and codes drawn from N(0, 1); `builtin_samples`
takes them from the run's own data through the mode's `data`, `file_samples` from files
(`--warmup-from`: PNG / JPEG / ... images, or .npy scenes).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import tensorflow as tf

WARMUP_PATH = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_RECORDS = 1000          # TF Serving reads no more than this many warm-up records

# Where each mode's `data(config, split="test", training=False)` batch keeps the images or
# scenes its signatures take; simgan has no test split (its `data` says so), so its training
# stream's synthetic images are used.
SAMPLE_KEYS = {"pix2pix": ("pairs", "real_a"), "sim2real": ("real", "image"),
               "simgan": ("pairs", "synthetic"), "fcr_alphagan": ("scenes", None)}
ENCODED_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".bmp"}


@dataclasses.dataclass
class Samples:
    """What warm-up inputs are built from; `sources` names each example (for messages)."""
    images: list = dataclasses.field(default_factory=list)    # float32 [H, W, C] in [-1, 1]
    encoded: list = dataclasses.field(default_factory=list)   # bytes, or None: PNG of images[i]
    scenes: list = dataclasses.field(default_factory=list)    # integer labels [X, H, Z]
    image_sources: list = dataclasses.field(default_factory=list)
    scene_sources: list = dataclasses.field(default_factory=list)


def builtin_samples(mode, config, n: int) -> Samples:
    """Up to `n` examples of the run's own data: the test split where the mode has one (in file
    order), else the training stream."""
    dataset_key, field = SAMPLE_KEYS[mode.name]
    try:
        sets = mode.data(config, split="test", training=False)
    except ValueError:
        sets = mode.data(config, training=True)
    values = []
    for batch in sets[dataset_key]:
        batch = batch if field is None else batch[field]
        values.extend(np.asarray(batch))
        if len(values) >= n:
            break
    values = values[:n]
    where = f"{mode.name} data ({getattr(config, 'data', '') or 'built-in'})"
    if field is None:
        return Samples(scenes=values, scene_sources=[f"{where} #{i}" for i in range(len(values))])
    return Samples(images=[v.astype(np.float32) for v in values], encoded=[None] * len(values),
                   image_sources=[f"{where} #{i}" for i in range(len(values))])


def file_samples(paths) -> Samples:
    """Images (any format Pillow reads; PNG / JPEG / GIF / BMP bytes are also sent as they are
    to encoded-image signatures) and .npy scenes ([X, H, Z] or [N, X, H, Z] integer labels)."""
    from PIL import Image, UnidentifiedImageError
    samples = Samples()
    for path in map(Path, paths):
        if not path.is_file():
            raise FileNotFoundError(f"--warmup-from {path}: expected a file, found none")
        if path.suffix.lower() == ".npy":
            try:
                scenes = np.load(path, allow_pickle=False)
            except ValueError as err:
                raise ValueError(f"--warmup-from {path}: expected a .npy array, "
                                 f"could not read it ({err})") from None
            if scenes.ndim == 3:
                scenes = scenes[None]
            if scenes.ndim != 4 or not np.issubdtype(scenes.dtype, np.integer):
                raise ValueError(f"--warmup-from {path}: expected integer labels [X, H, Z] or "
                                 f"[N, X, H, Z], found {scenes.dtype} {list(scenes.shape)}")
            samples.scenes.extend(scenes)
            samples.scene_sources.extend(f"{path} #{i}" for i in range(len(scenes)))
            continue
        try:
            with Image.open(path) as image:
                pixels = _uint8_pixels(image)
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"--warmup-from {path}: expected an image or a .npy file, "
                             f"could not read it ({err})") from None
        samples.images.append(pixels.astype(np.float32) / 127.5 - 1.0)
        samples.encoded.append(path.read_bytes() if path.suffix.lower() in ENCODED_SUFFIXES
                               else None)
        samples.image_sources.append(str(path))
    return samples


def _uint8_pixels(image) -> np.ndarray:
    """[H, W, C] uint8 of a Pillow image: 16-bit greys cut to their high byte (as
    tf.io.decode_image does), palettes expanded, alpha kept as a fourth channel."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        pixels = (np.asarray(image).astype(np.uint32) >> 8).astype(np.uint8)[..., None]
    elif image.mode in ("L", "RGB", "RGBA"):
        pixels = np.asarray(image)
    else:
        pixels = np.asarray(image.convert("RGBA" if "A" in image.mode else "RGB"))
    return pixels if pixels.ndim == 3 else pixels[..., None]


def _channels(image: np.ndarray, channels: int) -> np.ndarray:
    """An image with `channels` channels: alpha dropped, grey repeated, colour averaged."""
    image = image[..., :3] if image.shape[-1] == 4 else image
    if image.shape[-1] == channels:
        return image
    if image.shape[-1] == 1:
        return np.repeat(image, channels, axis=-1)
    return image.mean(axis=-1, keepdims=True).astype(image.dtype)


def _to_uint8(image):
    return np.clip(np.round((image + 1.0) * 127.5), 0, 255).astype(np.uint8)


def example_inputs(signature: str, specs: list, samples: Samples, i: int) -> tuple[dict, str]:
    """({input name: array [1, ...]}, source) of record `i` of `signature`, whose inputs are
    `specs` (tf.TensorSpec with names)."""
    inputs, sources = {}, []
    for spec in specs:
        shape, dtype, name = spec.shape, spec.dtype, spec.name
        if dtype == tf.string and shape.rank == 1:
            k = _pick(samples.images, signature, name, "images", i)
            data = samples.encoded[k]
            if data is None:
                data = tf.io.encode_png(_to_uint8(_channels(samples.images[k], 3))).numpy()
            inputs[name] = np.array([data], dtype=object)
            sources.append(samples.image_sources[k])
        elif shape.rank == 4 and shape[1] is None and dtype in (tf.uint8, tf.float32):
            k = _pick(samples.images, signature, name, "images", i)
            image = _channels(samples.images[k], shape[3])
            inputs[name] = (_to_uint8(image) if dtype == tf.uint8 else image)[None]
            sources.append(samples.image_sources[k])
        elif dtype.is_integer and shape[1:].is_fully_defined():
            k = _pick(samples.scenes, signature, name, "scenes", i)
            scene = np.asarray(samples.scenes[k])
            if list(scene.shape) != shape[1:].as_list():
                raise ValueError(f"warm-up scene {samples.scene_sources[k]}: signature "
                                 f"{signature!r} expects {name} {shape[1:].as_list()}, found "
                                 f"{list(scene.shape)}")
            inputs[name] = scene.astype(dtype.as_numpy_dtype)[None]
            sources.append(samples.scene_sources[k])
        elif dtype == tf.float32 and shape[1:].is_fully_defined():
            rng = np.random.default_rng(i)        # a code from the prior N(0, 1)
            inputs[name] = rng.standard_normal([1, *shape[1:]]).astype(np.float32)
            sources.append(f"N(0, 1) draw #{i}")
        else:
            raise ValueError(f"signature {signature!r}: no warm-up value for input {name} "
                             f"({dtype.name} {shape}); export without --warmup")
    return inputs, ", ".join(sources)


def _pick(values, signature, name, what, i) -> int:
    if not values:
        raise ValueError(f"signature {signature!r} takes {what} ({name}): expected some among "
                         f"the warm-up samples, found none (give --warmup-from files of that "
                         f"kind)")
    return i % len(values)


def build_records(model_name: str, endpoints: dict, samples: Samples, n: int) -> list:
    """[(PredictionLog, source)]: `n` records for each signature with inputs."""
    from tensorflow_serving.apis import prediction_log_pb2, predict_pb2
    records = []
    for signature, (_, specs) in endpoints.items():
        if not specs:
            continue
        for i in range(n):
            inputs, source = example_inputs(signature, specs, samples, i)
            request = predict_pb2.PredictRequest()
            request.model_spec.name = model_name
            request.model_spec.signature_name = signature
            for name, value in inputs.items():
                request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
            log = prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request))
            records.append((log, f"{signature} <- {source}"))
    if len(records) > MAX_RECORDS:
        raise ValueError(f"--warmup: {len(records)} records for {model_name}, TF Serving reads "
                         f"at most {MAX_RECORDS}; ask for fewer")
    return records


def write_records(folder: Path, records: list) -> Path:
    """Writes the records into the SavedModel folder `folder` (a temporary one: the export
    moves it into place once complete)."""
    path = Path(folder) / WARMUP_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log, _ in records:
            writer.write(log.SerializeToString())
    return path


def read_records(folder) -> list:
    """The PredictionLog protos of a SavedModel folder's warm-up file."""
    from tensorflow_serving.apis import prediction_log_pb2
    path = Path(folder) / WARMUP_PATH
    return [prediction_log_pb2.PredictionLog.FromString(raw.numpy())
            for raw in tf.data.TFRecordDataset(str(path))]


def check(folder, records: list, endpoints: dict) -> None:
    """Replays every record of `folder`'s warm-up file (read back from the file) through its
    endpoint {signature: (fn, input_signature)}, the functions the SavedModel was traced from,
    as TF Serving replays them at load; a failing one raises ValueError naming its source."""
    for log, (_, source) in zip(read_records(folder), records):
        request = log.predict_log.request
        fn, specs = endpoints[request.model_spec.signature_name]
        inputs = {k: tf.constant(tf.make_ndarray(v)) for k, v in request.inputs.items()}
        try:
            fn(*[inputs[spec.name] for spec in specs])
        except tf.errors.InvalidArgumentError as err:
            message = err.message.strip().splitlines()[0]
            raise ValueError(f"warm-up record {source}: the model refuses it ({message}); "
                             f"TF Serving would not load a model whose warm-up fails") from None
