"""`python -m tfgan3d.predict MODEL --input PATH... --out DIR`: a trained model on your files.

MODEL is a run folder (newest whole checkpoint, or --checkpoint) or an exported SavedModel
(`tfgan3d-export`); both give the same outputs (`tfgan3d.inference`). Inputs are files or
folders (searched recursively), processed in sorted order, in batches of images of one size.
Every output is named after its input (OUT/<path inside the input folder>_<kind>.<ext>) and
written atomically; OUT/predictions.csv and predictions.json list input -> outputs.

  pix2pix       images (PNG, JPEG, .npy; 8 or 16 bit; grey, RGB, RGBA; any size) ->
                _depth.npy (float32 metres), _depth16.png (16-bit, metres = value *
                depth_png_scale of the index), _depth_colour.png (viridis, legend in metres);
                --side-by-side: _side_by_side.png (input | depth). --fit pad (default: mirror
                out to the next size the U-Net takes, crop back) or resize (to the training
                size and back); --tile SIDE: overlapping tiles blended, for large images.
  simgan        synthetic images -> refined images of the same name (PNG, the input's bit
                depth); a labels.csv of an input folder is carried to OUT/labels.csv.
  sim2real      images (--domain real|sim) -> the depth outputs above, _segmentation.png
                (class ids), _segmentation_colour.png (the class palette); --translate adds
                _to_sim.png (or _to_real.png).
  fcr_alphagan  label scenes (.npy [N,]X,H,Z, or Scenevox folders) -> _raw.npy and
                _refined.npy (G(E(x)) and R(G(E(x))), uint8 class ids) and VTK renders
                _raw.png, _refined.png (--no-render: none); --generate N: scenes from the prior;
                --interpolate A B --steps K: scenes decoded between the codes of A and B.

A bad input (unreadable, an unsupported channel count, a wrong voxel grid, labels out of range)
stops the run with one `error:` line naming the file (exit 1); what was written before stays,
and the index lists it. --skip-bad records the reason in the index and goes on.
"""
from __future__ import annotations

import csv
import io
import os
import sys
from pathlib import Path, PurePath

import numpy as np

from tfgan3d.data.errors import DataError
from tfgan3d.io import atomic_write, npy_bytes, write_json
from tfgan3d.pictures import (colour_depth, depth16, depth_png_scale, png_bytes, to_rgb8,
                              with_legend)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".npy")
VOXEL_SUFFIXES = (".npy",)
LABELS_CSV = "labels.csv"


# ----------------------------------------------------------------------------- reading

def match_channels(images: np.ndarray, channels: int, where) -> np.ndarray:
    """A batch [B, H, W, C] of C = 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA) channels
    as `channels` (1 or 3): alpha dropped, grey repeated, colour to grey by luminance."""
    c = images.shape[-1]
    if c not in (1, 2, 3, 4):
        raise DataError(f"{where}: expected grey, grey + alpha, RGB or RGBA (1 to 4 "
                        f"channels), found {c} channels")
    if c in (2, 4):
        images = images[..., :c - 1]
    if images.shape[-1] == channels:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=-1)
    import tensorflow as tf
    grey = tf.image.rgb_to_grayscale(images.astype(np.float32)).numpy()
    top = np.iinfo(images.dtype).max
    return np.clip(np.round(grey), 0, top).astype(images.dtype)


def _read_npy_image(path: Path, channels: int) -> np.ndarray:
    try:
        image = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path}: cannot read the .npy file ({type(e).__name__}: {e})") from e
    if image.dtype not in (np.uint8, np.uint16):
        raise DataError(f"{path}: expected an image of uint8 or uint16 values, found "
                        f"{image.dtype}")
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3:
        raise DataError(f"{path}: expected an image array (H, W) or (H, W, C), found shape "
                        f"{image.shape}")
    return match_channels(image[None], channels, path)[0]


def read_image(path, channels: int) -> np.ndarray:
    """An image file as [H, W, channels], uint8 (8-bit files, JPEG) or uint16 (16-bit PNG),
    decoded as the serving signature decodes it (`tf.io.decode_image`: alpha dropped, grey
    repeated, colour to grey for 1 channel). Raises DataError naming the file."""
    from tfgan3d.data.images import _decode_error, probe_image
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: expected an image file, found "
                        f"{'a folder' if path.is_dir() else 'nothing'}")
    if path.suffix.lower() == ".npy":
        return _read_npy_image(path, channels)
    info = probe_image(path)
    from PIL import Image
    try:
        with Image.open(path) as im:
            mode, bands = im.mode, len(im.getbands())
    except OSError as e:
        raise DataError(f"{path}: expected a readable image, found {e}") from e
    if mode == "CMYK" or bands not in (1, 2, 3, 4):
        raise DataError(f"{path}: expected grey, grey + alpha, RGB or RGBA, found {bands} "
                        f"channels ({mode})")
    import tensorflow as tf
    dtype = tf.uint16 if info.dtype == "uint16" else tf.uint8
    try:
        image = tf.io.decode_image(path.read_bytes(), channels=channels, dtype=dtype,
                                   expand_animations=False).numpy()
    except tf.errors.OpError as e:
        raise _decode_error(path, "image", e) from e
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise DataError(f"{path}: expected an image of at least 1 x 1 pixels, found "
                        f"{image.shape[1]} x {image.shape[0]}")
    return image


def read_scenes(path, grid, num_classes: int = 12) -> np.ndarray:
    """A .npy of label scenes, [X, H, Z] or [N, X, H, Z] on `grid`, as uint8; DataError naming
    the file for another shape, non-integer values or labels outside 0..num_classes-1."""
    from tfgan3d.data.voxel_formats import check_scenes
    path = Path(path)
    try:
        scenes = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"{path}: cannot read the voxel file ({type(e).__name__}: {e})") from e
    batched = scenes.ndim == 4
    if scenes.ndim not in (3, 4):
        raise DataError(f"{path}: expected label scenes (X, H, Z) or (N, X, H, Z) on the grid "
                        f"{tuple(grid)}, found shape {scenes.shape}")
    scenes = check_scenes(scenes, path, tuple(grid), batched=batched)
    if scenes.size and scenes.max() >= num_classes:
        raise DataError(f"{path}: label {int(scenes.max())} outside the model's classes "
                        f"0..{num_classes - 1}")
    return scenes


def gather_inputs(paths, suffixes, exclude=None) -> list[tuple[Path, PurePath, Path | None]]:
    """(file, name of its outputs, the input folder it came from or None) of every input:
    files as given, folders searched recursively in sorted order (hidden entries and
    `exclude`, the output folder, left out). Raises ValueError for a missing path, a folder
    without inputs, or two inputs whose outputs would share a name."""
    found = []
    exclude = Path(exclude).resolve() if exclude else None
    for given in paths:
        path = Path(given).expanduser()
        if path.is_file():
            found.append((path, PurePath(path.stem), None))
        elif path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file()
                           and p.suffix.lower() in suffixes
                           and not any(part.startswith(".") for part in
                                       p.relative_to(path).parts)
                           and not (exclude and exclude in p.resolve().parents))
            if not files:
                raise ValueError(f"--input {given}: expected files ending in "
                                 f"{', '.join(suffixes)}, found none in the folder")
            found += [(p, p.relative_to(path).with_suffix(""), path) for p in files]
        else:
            raise FileNotFoundError(f"--input {given}: no such file or folder")
    seen = {}
    for path, name, _ in found:
        if name in seen:
            raise ValueError(f"--input: {seen[name]} and {path} would write outputs of one "
                             f"name ({name}); rename one or give them in separate runs")
        seen[name] = path
    return found


# ----------------------------------------------------------------------------- writing

class Writer:
    """Writes outputs under OUT (atomically) and keeps the index of input -> outputs."""

    def __init__(self, out, model):
        self.out = Path(out).expanduser()
        self.model = model
        self.rows = []
        self.extra = {}

    def path(self, name: PurePath, kind: str, ext: str) -> Path:
        return self.out / f"{name}{'_' + kind if kind else ''}{ext}"

    def write(self, outputs: dict, name: PurePath, kind: str, ext: str, data,
              key: str | None = None) -> None:
        path = self.path(name, kind, ext)
        atomic_write(path, data)
        outputs[key or kind or "image"] = str(path.relative_to(self.out))

    def record(self, source, outputs=None, reason=None) -> None:
        self.rows.append({"input": str(source), "status": "skipped" if reason else "ok",
                          "outputs": outputs or {}, "reason": reason or ""})

    def write_index(self) -> None:
        kinds = sorted({k for row in self.rows for k in row["outputs"]})
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["input", "status", *kinds, "reason"])
        for row in self.rows:
            writer.writerow([row["input"], row["status"],
                             *(row["outputs"].get(k, "") for k in kinds), row["reason"]])
        atomic_write(self.out / "predictions.csv", buf.getvalue())
        write_json({"model": self.model.source, "mode": self.model.mode, **self.extra,
                    "items": self.rows}, self.out / "predictions.json")


# ----------------------------------------------------------------------------- per mode

def _write_depth(w: Writer, outputs, name, depth, image, side_by_side):
    m = w.model
    scale = w.extra["depth_png_scale"]
    w.write(outputs, name, "depth", ".npy", npy_bytes(depth.astype(np.float32)))
    w.write(outputs, name, "depth16", ".png", png_bytes(depth16(depth, scale)))
    coloured = colour_depth(depth, m.max_depth)
    w.write(outputs, name, "depth_colour", ".png", png_bytes(with_legend(coloured, m.max_depth)))
    if side_by_side:
        both = np.concatenate([to_rgb8(image), coloured], axis=1)
        w.write(outputs, name, "side_by_side", ".png", png_bytes(with_legend(both,
                                                                           m.max_depth)))


def write_image_outputs(w: Writer, name, image, out: dict, options) -> dict:
    """The files of one image's outputs; returns {kind: relative path}."""
    outputs = {}
    mode = w.model.mode
    if mode == "simgan":
        w.write(outputs, name, "", ".png", png_bytes(out["refined"]))
        return outputs
    _write_depth(w, outputs, name, out["depth"], image, options.get("side_by_side"))
    if mode == "sim2real":
        from tfgan3d.data.classes import segmentation_palette
        seg = out["segmentation"]
        w.write(outputs, name, "segmentation", ".png", png_bytes(seg))
        palette = segmentation_palette(w.model.num_classes)
        w.write(outputs, name, "segmentation_colour", ".png", png_bytes(palette[seg]))
        for kind in ("to_sim", "to_real"):
            if kind in out:
                w.write(outputs, name, kind, ".png", png_bytes(out[kind]))
    return outputs


class _Progress:
    def __init__(self, total, enabled):
        self.total, self.done = total, 0
        self.enabled = enabled and sys.stderr.isatty()

    def step(self, n=1):
        self.done += n
        if self.enabled:
            width = 30
            filled = width * self.done // max(self.total, 1)
            print(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}",
                  end="", file=sys.stderr, flush=True)

    def close(self):
        if self.enabled:
            print(file=sys.stderr, flush=True)


def _fail_or_skip(w: Writer, source, err, skip_bad):
    w.record(source, reason=str(err))
    if not skip_bad:
        raise err


def predict_images(w: Writer, inputs, *, batch_size, skip_bad, progress, **options):
    """Reads, batches (same size and dtype), predicts and writes every image input."""
    model = w.model
    run_options = {k: options[k] for k in ("domain", "translate", "fit", "tile")
                   if options.get(k) is not None}
    pending = []        # (path, name, image) of one size and dtype

    def flush():
        if not pending:
            return
        batch = np.stack([image for _, _, image in pending])
        out = model.images(batch, **run_options)
        for i, (path, name, image) in enumerate(pending):
            written = write_image_outputs(w, name, image, {k: v[i] for k, v in out.items()},
                                          options)
            w.record(path, written)
        progress.step(len(pending))
        pending.clear()

    for path, name, _ in inputs:
        try:
            image = read_image(path, model.channels)
        except DataError as err:
            flush()                  # the earlier inputs are written before a stop
            progress.step()
            _fail_or_skip(w, path, err, skip_bad)
            continue
        if pending and (pending[0][2].shape != image.shape
                        or pending[0][2].dtype != image.dtype or len(pending) >= batch_size):
            flush()
        pending.append((path, name, image))
    flush()


def carry_labels(w: Writer, inputs) -> None:
    """simgan: the labels.csv of an input folder, its `file` column renamed to the outputs
    (PNG) and its rows kept for the images that were refined."""
    folders = sorted({str(root) for _, _, root in inputs
                      if root is not None and (root / LABELS_CSV).is_file()})
    if not folders:
        return
    if len(folders) > 1:
        raise ValueError(f"--input: several folders carry {LABELS_CSV} ({', '.join(folders)}); "
                         f"refine one labelled folder per run")
    root = Path(folders[0])
    done = {row["input"]: row["outputs"].get("image") for row in w.rows if row["status"] == "ok"}
    with open(root / LABELS_CSV, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    header = [c.strip() for c in rows[0]] if rows else []
    if "file" not in header:
        raise DataError(f"{root / LABELS_CSV}: expected a `file` column in the header, found "
                        f"{','.join(header)}")
    col = header.index("file")
    buf = io.StringIO()
    out = csv.writer(buf, lineterminator="\n")
    out.writerow(header)
    kept = 0
    for row in rows[1:]:
        if not any(c.strip() for c in row):
            continue
        source = str(root / row[col].strip())
        if done.get(source):
            row = list(row)
            row[col] = str(PurePath(done[source]))
            out.writerow(row)
            kept += 1
    atomic_write(w.out / LABELS_CSV, buf.getvalue())
    w.extra["labels_csv"] = {"from": str(root / LABELS_CSV), "rows": kept}


def _render(w: Writer, scenes: dict, names: list, options) -> None:
    """VTK renders (in a child process) of {kind: scenes [N, X, H, Z]}, one PNG per scene,
    into outputs[i][kind + "_render"]; a first failure to render turns renders off (said
    once, and in the index)."""
    if not options.get("render", True) or w.extra.get("renders_skipped"):
        return
    from tfgan3d import render_child
    for kind, batch in scenes.items():
        try:
            images, errors = render_child.render_scenes(batch, options["render_size"],
                                                        timeout_s=600)
        except RuntimeError as err:
            reason = str(err).strip().splitlines()[-1][:300] if str(err).strip() else "?"
            print(f"note: renders skipped: {reason}", file=sys.stderr, flush=True)
            w.extra["renders_skipped"] = reason
            return
        for (outputs, name), image, error in zip(names, images, errors):
            if image is not None:
                w.write(outputs, name, kind, ".png", png_bytes(image), key=f"{kind}_render")
            else:
                note = f"{name} {kind} render: {error}"
                outputs["notes"] = f"{outputs['notes']}; {note}" if "notes" in outputs else note


def _scene_names(name: PurePath, n: int, batched: bool) -> list:
    return [PurePath(f"{name}_{i:04d}") for i in range(n)] if batched else [name]


def predict_scenes(w: Writer, inputs, *, batch_size, skip_bad, progress, **options):
    model = w.model
    grid, classes = model.config["grid"], model.num_classes
    for path, name, _ in inputs:
        try:
            scenes = read_scenes(path, grid, classes)
        except DataError as err:
            progress.step()
            _fail_or_skip(w, path, err, skip_bad)
            continue
        batched = scenes.ndim == 4
        batch = scenes if batched else scenes[None]
        parts = [model.reconstruct(batch[i:i + batch_size])
                 for i in range(0, len(batch), batch_size)]
        out = {k: np.concatenate([p[k] for p in parts]) for k in ("raw", "refined")}
        outputs = {}
        for kind in ("raw", "refined"):
            w.write(outputs, name, kind, ".npy", npy_bytes(out[kind] if batched
                                                           else out[kind][0]))
        # renders: one PNG per scene (NAME_raw.png; NAME_0003_raw.png in a batched file)
        scene_outputs = [{} for _ in range(len(batch))] if batched else [outputs]
        names = list(zip(scene_outputs, _scene_names(name, len(batch), batched)))
        _render(w, {k: out[k] for k in ("raw", "refined")}, names, options)
        if batched:
            for i, so in enumerate(scene_outputs):
                outputs.update({f"{k}_{i:04d}": v for k, v in so.items()})
        w.record(path, outputs)
        progress.step()


def write_decoded(w: Writer, label: str, decoded: dict, options) -> None:
    """--generate / --interpolate: one row per scene, NAME_<i>_raw.npy / _refined.npy
    (+ renders), and the codes in NAME_z.npy."""
    n = len(decoded["raw"])
    z_rel = {}
    w.write(z_rel, PurePath(label), "z", ".npy", npy_bytes(decoded["z"]))
    rows = []
    for i in range(n):
        name = PurePath(f"{label}_{i:04d}")
        outputs = {}
        for kind in ("raw", "refined"):
            w.write(outputs, name, kind, ".npy", npy_bytes(decoded[kind][i]))
        rows.append((outputs, name))
    _render(w, {k: decoded[k] for k in ("raw", "refined")}, rows, options)
    for i, (outputs, _) in enumerate(rows):
        note = f"{label} {i}" + (f" (t = {decoded['t'][i]:.3f})" if "t" in decoded else "")
        w.record(note, {**outputs, **({"z": z_rel["z"]} if i == 0 else {})})


# ----------------------------------------------------------------------------- the program

def run_predict(model, inputs=(), out=None, *, checkpoint=None, batch_size=8, skip_bad=False,
                fit="pad", tile=None, side_by_side=False, domain=None, translate=False,
                generate=None, interpolate=None, steps=8, seed=0, render=True,
                render_size=(320, 240), progress=True) -> dict:
    """Applies MODEL to the inputs and writes OUT; returns the index (predictions.json)."""
    from tfgan3d import inference
    if batch_size < 1:
        raise ValueError(f"--batch-size: expected >= 1, got {batch_size}")
    loaded = model if isinstance(model, inference.Model) else inference.load(model, checkpoint)
    mode = loaded.mode
    image_mode = mode in inference.IMAGE_MODES
    _check_options(mode, inputs, fit=fit, tile=tile, side_by_side=side_by_side, domain=domain,
                   translate=translate, generate=generate, interpolate=interpolate)
    found = gather_inputs(inputs, IMAGE_SUFFIXES if image_mode else VOXEL_SUFFIXES,
                          exclude=out) if inputs else []
    w = Writer(out, loaded)
    w.out.mkdir(parents=True, exist_ok=True)
    if mode in ("pix2pix", "sim2real"):
        w.extra["depth_png_scale"] = depth_png_scale(loaded.max_depth)
        w.extra["units"] = {"depth": "metres (.npy float32; 16-bit PNG: value * "
                                     "depth_png_scale)", "segmentation": "class ids"}
    bar = _Progress(len(found), progress)
    options = dict(fit=fit, tile=tile, side_by_side=side_by_side, domain=domain or "real",
                   translate=translate, render=render, render_size=tuple(render_size))
    try:
        if image_mode:
            predict_images(w, found, batch_size=batch_size, skip_bad=skip_bad, progress=bar,
                           **options)
            if mode == "simgan":
                carry_labels(w, found)
        else:
            predict_scenes(w, found, batch_size=batch_size, skip_bad=skip_bad, progress=bar,
                           **options)
            if generate:
                write_decoded(w, "generated", loaded.generate(generate, seed), options)
            if interpolate:
                a, b = (read_scenes(p, loaded.config["grid"], loaded.num_classes)
                        for p in interpolate)
                for p, s in zip(interpolate, (a, b)):
                    if s.ndim != 3:
                        raise DataError(f"--interpolate {p}: expected one scene (X, H, Z), "
                                        f"found {s.shape[0]} scenes")
                w.extra["interpolate"] = [str(p) for p in interpolate]
                write_decoded(w, "interpolated", loaded.interpolate(a, b, steps), options)
    finally:
        bar.close()
        w.write_index()
    return {"mode": mode, **w.extra, "items": w.rows}


def _check_options(mode, inputs, **given):
    """A flag of another mode is an error that says which mode takes it."""
    owners = {"tile": ("pix2pix",), "side_by_side": ("pix2pix", "sim2real"),
              "domain": ("sim2real",), "translate": ("sim2real",),
              "generate": ("fcr_alphagan",), "interpolate": ("fcr_alphagan",),
              "fit": ("pix2pix", "sim2real", "simgan")}
    defaults = {"fit": "pad"}
    for key, modes in owners.items():
        value = given.get(key)
        if value not in (None, False, defaults.get(key)) and mode not in modes:
            raise ValueError(f"--{key.replace('_', '-')}: for {' and '.join(modes)} models; "
                             f"this model is {mode}")
    if not inputs and not (given.get("generate") or given.get("interpolate")):
        raise ValueError("--input: expected files or folders to predict"
                         + (" (or --generate N, --interpolate A B)" if mode == "fcr_alphagan"
                            else ""))


def _parser():
    from tfgan3d import cli
    parser = cli.ArgumentParser(prog="python -m tfgan3d.predict",
                                description=__doc__.split("\n")[0], allow_abbrev=False)
    parser.add_argument("model", help="run folder or exported SavedModel folder")
    parser.add_argument("--input", nargs="+", default=[], metavar="PATH",
                        help="files or folders (searched recursively)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--checkpoint", help="checkpoint prefix of a run (default: newest)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--skip-bad", action="store_true",
                        help="record a bad input in the index and go on (default: stop)")
    parser.add_argument("--fit", choices=("pad", "resize"), default="pad",
                        help="images: mirror out and crop back (pad) or resize to the "
                             "training size and back")
    parser.add_argument("--tile", type=int, help="pix2pix: tiles of SIDE pixels, blended")
    parser.add_argument("--side-by-side", action="store_true", help="input | depth pictures")
    parser.add_argument("--domain", choices=("real", "sim"), help="sim2real: the inputs' domain")
    parser.add_argument("--translate", action="store_true",
                        help="sim2real: also write the translation to the other domain")
    parser.add_argument("--generate", type=int, metavar="N", help="fcr: N scenes from the prior")
    parser.add_argument("--interpolate", nargs=2, metavar=("A", "B"),
                        help="fcr: scenes between the codes of two scene files")
    parser.add_argument("--steps", type=int, default=8, help="--interpolate: scenes (ends "
                                                             "included)")
    parser.add_argument("--seed", type=int, default=0, help="--generate: seed of the draws")
    parser.add_argument("--no-render", action="store_true", help="fcr: no VTK renders")
    parser.add_argument("--render-size", type=int, nargs=2, default=(320, 240),
                        metavar=("W", "H"))
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    return parser


def _main(argv):
    args = _parser().parse_args(argv)
    index = run_predict(args.model, args.input, args.out, checkpoint=args.checkpoint,
                        batch_size=args.batch_size, skip_bad=args.skip_bad, fit=args.fit,
                        tile=args.tile, side_by_side=args.side_by_side, domain=args.domain,
                        translate=args.translate, generate=args.generate,
                        interpolate=args.interpolate, steps=args.steps, seed=args.seed,
                        render=not args.no_render, render_size=args.render_size)
    ok = sum(row["status"] == "ok" for row in index["items"])
    skipped = [row for row in index["items"] if row["status"] != "ok"]
    print(f"{ok} done, {len(skipped)} skipped: {Path(args.out) / 'predictions.csv'}")
    return 0


def main(argv=None):
    """Predicts; a user error prints one `error:` line and returns 1 (--debug: traceback)."""
    from tfgan3d import cli
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--help" not in argv and "-h" not in argv:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    model = next((a for a in argv if not a.startswith("-")), None)
    if model:
        _prefer_onednn(model)
    return cli.run(_main, argv)


def _prefer_onednn(model):
    """The mode's measured oneDNN choice (`tfgan3d.prefer_onednn_for`) when MODEL is a run
    folder whose config names it (before TensorFlow is imported)."""
    import json

    import tfgan3d
    try:
        mode = json.loads((Path(model) / "config.json").read_text()).get("mode")
    except (OSError, ValueError):
        return
    if isinstance(mode, str):
        tfgan3d.prefer_onednn_for(mode)


if __name__ == "__main__":
    sys.exit(main())
