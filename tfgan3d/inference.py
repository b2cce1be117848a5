"""A trained model as numpy in, numpy out: `tfgan3d.load(MODEL)` and what `tfgan3d.predict`
calls.

MODEL is a run folder (its newest whole checkpoint, or `checkpoint=`) or an exported SavedModel
(`tfgan3d-export`: a version folder, a model folder of versions, or the export's base folder).
Both call the same functions: the mode's serving signatures (`Mode.serving`), which call the
mode's `predict` (`trainers/<mode>.py`), which mirrors images of any size out to what the
network takes and crops back (`tfgan3d.serving.with_padding`). A run folder traces them here; a
SavedModel holds them traced at export. So predict, export and a serving client share one
inference path, and a run folder and its export give the same numbers.

Units of `Model.predict`: depth in metres, class ids (uint8), refined images at the input's
bit depth (uint8 or uint16), voxel class ids (uint8).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from tfgan3d.data.errors import DataError

IMAGE_MODES = ("pix2pix", "simgan", "sim2real")
FCR_PARTS = ("generator", "encoder", "autoencoder")


# ----------------------------------------------------------------------------- backends

class _RunBackend:
    """A run folder: the mode's signatures traced from the restored Keras model."""

    def __init__(self, run_dir, checkpoint=None):
        import tensorflow as tf

        from tfgan3d import export
        config, model, mode = export.load_trained(run_dir, checkpoint)
        self.source = f"run folder {run_dir}"
        self.mode = mode.name
        self.config = config.to_dict()
        self._fns = {}
        for part, endpoints in mode.serving(model, config).items():
            for name, (fn, signature) in endpoints.items():
                self._fns[(part, name)] = tf.function(fn, input_signature=signature)
        self._model = model            # keeps the variables alive

    def has(self, part, endpoint):
        return (part, endpoint) in self._fns

    def call(self, part, endpoint, x):
        return {k: v.numpy() for k, v in self._fns[(part, endpoint)](x).items()}


def _version_folder(folder: Path) -> Path | None:
    """`folder` when it holds saved_model.pb, else its highest numbered version that does."""
    if (folder / "saved_model.pb").is_file():
        return folder
    versions = sorted((int(p.name), p) for p in folder.glob("*")
                      if p.name.isdigit() and (p / "saved_model.pb").is_file())
    return versions[-1][1] if versions else None


def find_saved_models(path) -> dict:
    """{part: SavedModel folder} of an export: "" for a one-model mode; "generator",
    "encoder", "autoencoder" for fcr_alphagan (siblings NAME_<part> of one of them, or the
    base folder holding them). Raises DataError when none is found."""
    path = Path(path)
    found = _version_folder(path)
    if found is not None:
        model_folder = found.parent if found.name.isdigit() else found
        for part in FCR_PARTS:       # one fcr part named: find its two siblings
            suffix = f"_{part}"
            if model_folder.name.endswith(suffix):
                prefix = model_folder.name[:-len(suffix)]
                parts = {p: _version_folder(model_folder.parent / f"{prefix}_{p}")
                         for p in FCR_PARTS}
                return {p: f for p, f in parts.items() if f is not None}
        return {"": found}
    models = {p.name: _version_folder(p) for p in sorted(path.glob("*")) if p.is_dir()}
    models = {k: v for k, v in models.items() if v is not None}
    fcr = {part: v for k, v in models.items() for part in FCR_PARTS if k.endswith(f"_{part}")}
    if fcr and len(fcr) == len(models):
        return fcr
    if len(models) == 1:
        return {"": next(iter(models.values()))}
    if models:
        raise DataError(f"{path}: holds several exported models ({', '.join(models)}); give "
                        f"the folder of one")
    raise DataError(f"{path}: expected a run folder (config.json) or an exported SavedModel "
                    f"(saved_model.pb), found neither")


class _SavedModelBackend:
    """An exported SavedModel (or fcr's three): its signatures, called as a server would."""

    def __init__(self, path):
        import tensorflow as tf

        from tfgan3d import serving
        self.source = f"SavedModel {path}"
        self._loaded, self._sigs = {}, {}
        for part, folder in find_saved_models(path).items():
            loaded = tf.saved_model.load(str(folder))
            self._loaded[part] = loaded
            for name, fn in loaded.signatures.items():
                self._sigs[(part, name)] = fn
        info = next((fn for (_, name), fn in self._sigs.items()
                     if name == serving.INFO_ENDPOINT), None)
        if info is None:
            raise DataError(f"{path}: the SavedModel has no {serving.INFO_ENDPOINT} signature "
                            f"(exported by an older tfgan3d); export the run again")
        out = info()
        self.mode = out["mode"].numpy().decode()
        self.config = json.loads(out["config"].numpy().decode())

    def has(self, part, endpoint):
        return (part, endpoint) in self._sigs

    def call(self, part, endpoint, x):
        fn = self._sigs[(part, endpoint)]
        name = next(iter(fn.structured_input_signature[1]))
        return {k: v.numpy() for k, v in fn(**{name: x}).items()}


def open_backend(model, checkpoint=None):
    """The backend of MODEL: a run folder (config.json) or an export (saved_model.pb)."""
    path = Path(model).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"{path}: expected a run folder or an exported SavedModel, "
                                f"found nothing")
    if (path / "config.json").is_file():
        return _RunBackend(path, checkpoint)
    if checkpoint:
        raise ValueError(f"--checkpoint {checkpoint}: only a run folder has checkpoints; "
                         f"{path} is not one (no config.json)")
    return _SavedModelBackend(path)


# ----------------------------------------------------------------------------- numpy helpers

def to_unit(images: np.ndarray) -> np.ndarray:
    """uint8 or uint16 images as float32 in [-1, 1] (8 bit / 255, 16 bit / 65535, as the
    training data is read)."""
    top = 65535.0 if images.dtype == np.uint16 else 255.0
    return (images.astype(np.float32) / top) * 2.0 - 1.0


def from_unit(images, dtype) -> np.ndarray:
    """[-1, 1] back to uint8 or uint16, rounded and clipped."""
    top = 65535.0 if np.dtype(dtype) == np.uint16 else 255.0
    return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 0.5 * top), 0,
                   top).astype(dtype)


def to_uint8(images: np.ndarray) -> np.ndarray:
    """uint16 images cut to their high byte (as `tf.io.decode_image` reads 16-bit PNGs into
    uint8, so that the encoded-image signature and this path agree)."""
    return (images >> 8).astype(np.uint8) if images.dtype == np.uint16 else images


def _resize(images, size, method="bilinear"):
    import tensorflow as tf
    return tf.image.resize(images, size, method=method, antialias=method != "nearest").numpy()


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Starts of tiles of `tile` pixels covering `size`, overlapping by at least `overlap`."""
    if size <= tile:
        return [0]
    step = tile - overlap
    starts = list(range(0, size - tile, step))
    return starts + [size - tile]


def tile_weights(h: int, w: int, overlap: int) -> np.ndarray:
    """Blending weights of an h x w tile: 1 inside, a linear ramp over `overlap` pixels at each
    edge (never 0, so an image edge covered by one tile keeps its value)."""
    def ramp(n):
        i = np.arange(n)
        return np.minimum(np.minimum(i + 1, n - i) / (overlap + 1), 1.0)
    return (ramp(h)[:, None] * ramp(w)[None, :]).astype(np.float32)


# ----------------------------------------------------------------------------- the model

class Model:
    """A loaded model (`tfgan3d.load`). `predict` takes a path, a list of paths or an array and
    returns numpy arrays in user units; see each mode's method for the keys."""

    def __init__(self, backend):
        self._backend = backend
        self.mode = backend.mode
        self.config = backend.config
        self.source = backend.source

    def __repr__(self):
        return f"<tfgan3d model {self.mode} from {self.source}>"

    # --- what the network takes
    @property
    def channels(self) -> int:
        if self.mode != "simgan":
            return 3
        depth = "builtin:depth" in (self.config.get("data"), self.config.get("real_data"))
        return 1 if self.config.get("grey", True) or depth else 3

    @property
    def training_size(self) -> tuple[int, int]:
        """(H, W) of the images the model trained on (`--fit resize`)."""
        c = self.config
        if self.mode == "pix2pix":
            return (c["crop_size"], c["crop_size"])
        if self.mode == "sim2real":
            return (c["image_size"], c["image_size"])
        if self.mode == "simgan":
            return tuple(c["image_size"])
        raise ValueError(f"{self.mode}: a voxel model has no image size")

    @property
    def max_depth(self) -> float:
        return float(self.config["max_depth"])

    @property
    def num_classes(self) -> int:
        return int(self.config["num_classes"])

    def call(self, part, endpoint, x):
        return self._backend.call(part, endpoint, x)

    # --- images
    def images(self, images: np.ndarray, *, domain: str = "real", translate: bool = False,
               fit: str = "pad", tile: int | None = None) -> dict:
        """A batch [B, H, W, C] (uint8 or uint16, C = self.channels) -> per-pixel outputs
        [B, H, W, ...] in user units (see `predict`)."""
        images = np.asarray(images)
        if fit not in ("pad", "resize"):
            raise ValueError(f"--fit: expected pad or resize, got {fit!r}")
        if tile is not None:
            if self.mode != "pix2pix":
                raise ValueError(f"--tile: only for pix2pix (got a {self.mode} model)")
            if tile < 8:
                raise ValueError(f"--tile: expected a tile side of 8 pixels or more, got {tile}")
            return self._tiled(images, tile)
        size = images.shape[1:3]
        if fit == "resize" and tuple(size) != self.training_size:
            dtype = images.dtype
            top = 65535 if dtype == np.uint16 else 255
            small = np.clip(np.round(_resize(images.astype(np.float32), self.training_size)),
                            0, top).astype(dtype)
            out = self._images(small, domain, translate)
            back = {}
            for k, v in out.items():
                nearest = k == "segmentation"
                v4 = v if v.ndim == 4 else v[..., None]
                r = _resize(v4.astype(np.float32), size, "nearest" if nearest else "bilinear")
                r = r if v.ndim == 4 else r[..., 0]
                back[k] = (np.clip(np.round(r), 0, np.iinfo(v.dtype).max).astype(v.dtype)
                           if v.dtype.kind in "ui" else r.astype(v.dtype))
            return back
        return self._images(images, domain, translate)

    def _images(self, images, domain, translate):
        if self.mode == "pix2pix":
            out = self.call("", "serving_default", to_uint8(images))
            return {"depth": out["depth"][..., 0]}
        if self.mode == "simgan":
            refined = self.call("", "serving_default", to_unit(images))["refined"]
            return {"refined": from_unit(refined, images.dtype)}
        if self.mode == "sim2real":
            if domain not in ("real", "sim"):
                raise ValueError(f"--domain: expected real or sim, got {domain!r}")
            rgb = to_uint8(images)
            out = self.call("", "serving_default" if domain == "real" else "sim_domain", rgb)
            result = {"depth": out["depth"][..., 0],
                      "segmentation": out["segmentation"].astype(
                          np.uint8 if self.num_classes <= 256 else np.uint16)}
            if translate:
                to = "sim" if domain == "real" else "real"
                result[f"to_{to}"] = self.call("", f"{domain}_to_{to}", rgb)["image"]
            return result
        raise ValueError(f"{self.mode}: not an image model")

    def _tiled(self, images, tile):
        """Depth of overlapping tile x tile tiles (a quarter overlapping), blended."""
        b, h, w = images.shape[:3]
        overlap = tile // 4
        th, tw = min(tile, h), min(tile, w)
        depth = np.zeros((b, h, w), np.float32)
        weight = np.zeros((h, w), np.float32)
        win = tile_weights(th, tw, overlap)
        for y in tile_starts(h, tile, overlap):
            for x in tile_starts(w, tile, overlap):
                part = self._images(images[:, y:y + th, x:x + tw], "real", False)["depth"]
                depth[:, y:y + th, x:x + tw] += part * win
                weight[y:y + th, x:x + tw] += win
        return {"depth": depth / weight}

    # --- voxels
    def reconstruct(self, scenes: np.ndarray) -> dict:
        """Label scenes [N, X, H, Z] -> {"raw": G(E(x)), "refined": R(G(E(x)))} uint8 ids."""
        out = self.call("autoencoder", "autoencode_uint8", np.asarray(scenes, np.int32))
        return {"raw": out["reconstruction"], "refined": out["refined"]}

    def encode(self, scenes: np.ndarray) -> np.ndarray:
        return self.call("encoder", "serving_default", np.asarray(scenes, np.int32))["z"]

    def decode(self, z: np.ndarray) -> dict:
        out = self.call("generator", "generate_uint8", np.asarray(z, np.float32))
        return {"raw": out["labels"], "refined": out["refined_labels"]}

    @property
    def latent_shape(self) -> tuple:
        return tuple(self.encode(np.zeros((0, *self.config["grid"]), np.int32)).shape[1:])

    def generate(self, n: int, seed: int = 0) -> dict:
        """n scenes decoded from the prior N(0, I) (seeded): {"z", "raw", "refined"}."""
        if n < 1:
            raise ValueError(f"--generate: expected >= 1 scenes, got {n}")
        z = np.random.default_rng(seed).standard_normal((n, *self.latent_shape))
        z = z.astype(np.float32)
        return {"z": z, **self.decode(z)}

    def interpolate(self, a: np.ndarray, b: np.ndarray, steps: int) -> dict:
        """Scenes decoded along the line from E(a) to E(b) in `steps` steps (both ends
        included): {"t", "z", "raw", "refined"}."""
        if steps < 2:
            raise ValueError(f"--steps: expected >= 2 (both ends), got {steps}")
        za, zb = self.encode(np.stack([a, b]))
        t = np.linspace(0.0, 1.0, steps, dtype=np.float32)
        z = (1 - t)[:, None] * za.reshape(1, -1) + t[:, None] * zb.reshape(1, -1)
        z = z.reshape(steps, *za.shape).astype(np.float32)
        return {"t": t, "z": z, **self.decode(z)}

    # --- the one entry point of the Python API
    def predict(self, x, **options):
        """`x`: a file path, a list of paths, or an array.

        Image modes: an image [H, W(, C)] or a batch [B, H, W, C], uint8 or uint16, any size
        (or a path to PNG / JPEG / .npy). pix2pix -> {"depth": metres}; sim2real ->
        {"depth", "segmentation" (class ids)} (options: domain="real"|"sim", translate=True
        adds "to_sim" / "to_real"); simgan -> {"refined": the input's dtype}.
        fcr_alphagan: label scenes [X, H, Z] or [N, X, H, Z] (or a .npy / Scenevox file) ->
        {"raw", "refined"} uint8 class ids.
        Options of images: fit="pad"|"resize", tile=SIDE (pix2pix). Outputs have no batch
        axis when `x` had none; a list of paths gives a list of results.
        """
        from tfgan3d import predict as files
        if isinstance(x, (list, tuple)):
            return [self.predict(item, **options) for item in x]
        if isinstance(x, (str, Path)):
            x = (files.read_scenes(x, self.config["grid"], self.num_classes)
                 if self.mode == "fcr_alphagan"
                 else files.read_image(x, self.channels))
        x = np.asarray(x)
        if self.mode == "fcr_alphagan":
            single = x.ndim == 3
            out = self.reconstruct(x[None] if single else x)
        else:
            if x.ndim == 2:
                x = x[..., None]
            single = x.ndim == 3
            batch = x[None] if single else x
            if batch.dtype not in (np.uint8, np.uint16):
                raise ValueError(f"expected uint8 or uint16 images, got {batch.dtype}")
            batch = files.match_channels(batch, self.channels, "the array")
            out = self.images(batch, **options)
        return {k: v[0] for k, v in out.items()} if single else out


def load(model, checkpoint: str | None = None) -> Model:
    """A run folder (newest whole checkpoint, or `checkpoint`) or an exported SavedModel, ready
    to `predict`. See `Model.predict`."""
    return Model(open_backend(model, checkpoint))
