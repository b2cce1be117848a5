"""SavedModel export for TF Serving: `tfgan3d-export RUN --out DIR [--name NAME] [--version V]`.

Writes `DIR/NAME/VERSION/` with the mode's `serving_default` signature (and any further
endpoints the mode defines). The SavedModel loads with plain TensorFlow
(`tf.saved_model.load`), without tfgan3d; `saved_model_cli show --dir DIR/NAME/VERSION --all`
describes it. The folder is written under a temporary name and renamed when complete.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import keras
import tensorflow as tf

from tfgan3d import config as config_lib
from tfgan3d import registry


def rgb_input(rgb, multiple: int):
    """A served uint8 RGB batch [B, H, W, 3] as float32 in [-1, 1], after checking in the graph
    that H and W are multiples of `multiple` (a U-Net's 2**levels)."""
    shape = tf.shape(rgb)
    tf.debugging.assert_equal(
        tf.stack([shape[1] % multiple, shape[2] % multiple]), 0,
        message=f"image height and width must be multiples of {multiple}")
    return tf.cast(rgb, tf.float32) / 127.5 - 1.0


def load_trained(run_dir: str | Path, checkpoint: str | None = None):
    """(config, model, module) of a run folder, weights from its newest (or the named) checkpoint."""
    run_dir = Path(run_dir)
    values = config_lib.load_config_json(run_dir)
    mode = values.pop("mode")
    module = registry.get_mode(mode)
    config = config_lib.resolve_config(module.CONFIG, mode, values)
    model = module.build_model(config)
    path = checkpoint or tf.train.latest_checkpoint(str(run_dir / "checkpoints"))
    if path is None:
        raise FileNotFoundError(f"{run_dir / 'checkpoints'}: no checkpoint to load")
    tf.train.Checkpoint(model=model).restore(path).expect_partial()
    return config, model, module


def export_endpoints(endpoints: dict, tracked: list, out_dir: str | Path, name: str,
                     version: int) -> Path:
    """Writes a SavedModel with `endpoints` {name: (fn, input_signature)} at out/name/version."""
    final = Path(out_dir) / name / str(version)
    if final.exists():
        raise FileExistsError(f"{final} exists; TF Serving versions are immutable: "
                              f"choose another --version")
    tmp = final.with_name(f".{version}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    archive = keras.export.ExportArchive()
    for obj in tracked:
        archive.track(obj)
    for endpoint, (fn, signature) in endpoints.items():
        archive.add_endpoint(name=endpoint, fn=tf.function(fn), input_signature=signature)
    archive.write_out(str(tmp), verbose=False)
    os.replace(tmp, final)
    return final


def _next_version(out_dir, name) -> int:
    existing = [int(p.name) for p in (Path(out_dir) / name).glob("*") if p.name.isdigit()]
    return max(existing, default=0) + 1


def export_run(run_dir, out_dir, name: str | None = None, version: int | None = None,
               checkpoint: str | None = None):
    """Exports a run's newest checkpoint. A mode with one SavedModel (`serving_endpoints`)
    returns its path; a mode with several (`serving_models`, e.g. fcr_alphagan's generator,
    encoder and autoencoder) writes each at out/<name>_<part>/<version> and returns a dict."""
    config, model, module = load_trained(run_dir, checkpoint)
    name = name or config.mode
    tracked = list(module.export_parts(model).values())
    if hasattr(module, "serving_models"):
        paths = {}
        for part, endpoints in module.serving_models(model, config).items():
            full = f"{name}_{part}"
            paths[part] = export_endpoints(endpoints, tracked, out_dir, full,
                                           version or _next_version(out_dir, full))
        return paths
    return export_endpoints(module.serving_endpoints(model, config), tracked, out_dir, name,
                            version or _next_version(out_dir, name))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tfgan3d-export", description=__doc__.split("\n")[0])
    parser.add_argument("run", help="run folder (holds config.json and checkpoints/)")
    parser.add_argument("--out", required=True, help="model base folder of TF Serving")
    parser.add_argument("--name", help="model name (default: the mode)")
    parser.add_argument("--version", type=int, help="version number (default: next free)")
    parser.add_argument("--checkpoint", help="checkpoint prefix (default: the newest)")
    args = parser.parse_args(argv)
    try:
        path = export_run(args.run, args.out, args.name, args.version, args.checkpoint)
    except (FileNotFoundError, FileExistsError, config_lib.ConfigError) as err:
        sys.exit(f"error: {err}")
    print(path)
    return path


if __name__ == "__main__":
    main()
