"""SavedModel export for TF Serving: `tfgan3d-export RUN --out DIR [--name NAME] [--version V]`.

Writes `DIR/NAME/VERSION/` with the mode's `serving_default` signature (and any further
endpoints the mode defines). The SavedModel loads with plain TensorFlow
(`tf.saved_model.load`), without tfgan3d; `saved_model_cli show --dir DIR/NAME/VERSION --all`
describes it. The folder is written under a temporary name and renamed when complete.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import keras
import tensorflow as tf

from tfgan3d import cli
from tfgan3d import config as config_lib
from tfgan3d import registry
from tfgan3d import serving


# The input checks moved to tfgan3d.serving (a leaf module the trainers import); these names stay
# for callers of the export module.
checked = serving.checked
rgb_input = serving.rgb_input


def load_trained(run_dir: str | Path, checkpoint: str | None = None):
    """(config, model, mode) of a run folder: its `tfgan3d.mode.Mode`, the config it recorded
    and the model with weights from its newest whole checkpoint (damaged newer ones are passed
    over with a warning) or the named one."""
    from tfgan3d.trainers import runner
    run_dir = Path(run_dir)
    values = config_lib.load_config_json(run_dir)
    name = values.pop("mode")
    mode = registry.get_mode(name)
    config = config_lib.resolve_config(mode.config, name, values)
    model = mode.build_model(config)
    path = checkpoint or runner.newest_good_checkpoint(run_dir / "checkpoints")
    if path is None:
        raise FileNotFoundError(f"{run_dir / 'checkpoints'}: expected a checkpoint to load, "
                                f"found none")
    tf.train.Checkpoint(model=model).restore(path).expect_partial()
    return config, model, mode


def _write_archive(endpoints: dict, tracked: list, folder: Path) -> None:
    archive = keras.export.ExportArchive()
    for obj in tracked:
        archive.track(obj)
    for endpoint, (fn, signature) in endpoints.items():
        archive.add_endpoint(name=endpoint, fn=tf.function(fn), input_signature=signature)
    archive.write_out(str(folder), verbose=False)


def _final_path(out_dir, name, version) -> Path:
    final = Path(out_dir) / name / str(version)
    if final.exists():
        raise FileExistsError(f"{final} exists; TF Serving versions are immutable: "
                              f"choose another --version")
    return final


def export_endpoints(endpoints: dict, tracked: list, out_dir: str | Path, name: str,
                     version: int) -> Path:
    """Writes a SavedModel with `endpoints` {name: (fn, input_signature)} at out/name/version."""
    return export_together({name: endpoints}, tracked, out_dir, {name: version})[name]


def export_together(models: dict, tracked: list, out_dir: str | Path,
                    versions: dict) -> dict:
    """Writes several SavedModels {name: endpoints} at out/name/version, all or none: each is
    written under a temporary name first, and they are moved into place only once all were
    written (a failed move takes back the ones already moved)."""
    finals = {name: _final_path(out_dir, name, versions[name]) for name in models}
    staged = {}
    try:
        for name, endpoints in models.items():
            final = finals[name]
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
            shutil.rmtree(tmp, ignore_errors=True)
            staged[name] = tmp
            _write_archive(endpoints, tracked, tmp)
        moved = []
        try:
            for name, tmp in staged.items():
                if finals[name].exists():
                    raise FileExistsError(f"{finals[name]} appeared during the export")
                os.replace(tmp, finals[name])
                moved.append(name)
        except BaseException:
            for name in moved:
                os.replace(finals[name], staged[name])
            raise
    finally:
        for tmp in staged.values():
            shutil.rmtree(tmp, ignore_errors=True)
    return finals


def _next_version(out_dir, name) -> int:
    existing = [int(p.name) for p in (Path(out_dir) / name).glob("*") if p.name.isdigit()]
    return max(existing, default=0) + 1


def export_run(run_dir, out_dir, name: str | None = None, version: int | None = None,
               checkpoint: str | None = None):
    """Exports a run's newest checkpoint. A mode with one SavedModel (serving suffix "")
    returns its path; a mode with several (e.g. fcr_alphagan's generator, encoder and
    autoencoder) writes each at out/<name>_<part>/<version> and returns {part: path}."""
    config, model, mode = load_trained(run_dir, checkpoint)
    name = name or config.mode
    tracked = list(mode.export_parts(model).values())
    parts = mode.serving(model, config)
    if list(parts) == [""]:
        return export_endpoints(parts[""], tracked, out_dir, name,
                                version or _next_version(out_dir, name))
    models = {f"{name}_{part}": endpoints for part, endpoints in parts.items()}
    versions = {full: version or _next_version(out_dir, full) for full in models}
    paths = export_together(models, tracked, out_dir, versions)
    return {full[len(name) + 1:]: path for full, path in paths.items()}


def main(argv=None):
    """Exports; a user error prints one `error:` line and returns 1 (--debug: traceback)."""
    from tfgan3d import cli
    return cli.run(_main, argv)


def _main(argv):
    parser = cli.ArgumentParser(prog="tfgan3d-export", description=__doc__.split("\n")[0])
    parser.add_argument("run", help="run folder (holds config.json and checkpoints/)")
    parser.add_argument("--out", required=True, help="model base folder of TF Serving")
    parser.add_argument("--name", help="model name (default: the mode)")
    parser.add_argument("--version", type=int, help="version number (default: next free)")
    parser.add_argument("--checkpoint", help="checkpoint prefix (default: the newest)")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = parser.parse_args(argv)
    if args.version is not None and args.version < 1:
        raise ValueError(f"--version: expected >= 1, got {args.version}")
    if args.checkpoint and not Path(f"{args.checkpoint}.index").is_file():
        raise FileNotFoundError(f"--checkpoint {args.checkpoint}: expected a checkpoint "
                                f"prefix, found no {args.checkpoint}.index")
    path = export_run(args.run, args.out, args.name, args.version, args.checkpoint)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
