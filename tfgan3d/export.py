"""SavedModel export for TF Serving: `tfgan3d-export RUN --out DIR [--name NAME] [--version V]
[--warmup N | --warmup-from FILES] [--base-path PREFIX] [--format savedmodel|onnx]`.

Writes `DIR/NAME/VERSION/` with the mode's `serving_default` signature (and any further
endpoints the mode defines). The SavedModel loads with plain TensorFlow
(`tf.saved_model.load`), without tfgan3d; `saved_model_cli show --dir DIR/NAME/VERSION --all`
describes it. The folder is written under a temporary name and renamed when complete.

Next to the model folders, `DIR/models.config` (TF Serving's `model_config_list` text proto)
serves every model in DIR together (fcr_alphagan's three, and models exported there before):
`tensorflow_model_server --model_config_file=DIR/models.config`. Its base paths are DIR's
absolute path, or PREFIX/NAME with `--base-path PREFIX` (the folder where a container mounts
DIR, e.g. /models). `--warmup N` puts N warm-up records per signature in each version folder
(`assets.extra/tf_serving_warmup_requests`, see tfgan3d.warmup), each replayed through the
model before the folder is moved into place. `--format onnx` writes the bare inference
networks as ONNX instead (tfgan3d.onnx_export).
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
from tfgan3d.io import move_all_into_place


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
                     version: int, finish=None) -> Path:
    """Writes a SavedModel with `endpoints` {name: (fn, input_signature)} at out/name/version."""
    return export_together({name: endpoints}, tracked, out_dir, {name: version}, finish)[name]


def export_together(models: dict, tracked: list, out_dir: str | Path,
                    versions: dict, finish=None) -> dict:
    """Writes several SavedModels {name: endpoints} at out/name/version, all or none: each is
    written under a temporary name first (and completed there by `finish(name, endpoints,
    folder)`, e.g. with warm-up records), and they are moved into place only once all were
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
            if finish is not None:
                finish(name, endpoints, tmp)
        move_all_into_place(staged, finals)
    finally:
        for tmp in staged.values():
            shutil.rmtree(tmp, ignore_errors=True)
    return finals


def _next_version(out_dir, name) -> int:
    existing = [int(p.name) for p in (Path(out_dir) / name).glob("*") if p.name.isdigit()]
    return max(existing, default=0) + 1


# ----------------------------------------------------------------------------- models.config

MODELS_CONFIG = "models.config"
_MARK = "# Written by tfgan3d-export"


def served_models(out_dir) -> list[str]:
    """Names of the model folders in `out_dir` that hold at least one SavedModel version
    (NAME/<digits>/saved_model.pb), sorted."""
    out_dir = Path(out_dir)
    return sorted(p.name for p in out_dir.iterdir()
                  if p.is_dir() and not p.name.startswith(".")
                  and any(v.name.isdigit() and (v / "saved_model.pb").is_file()
                          for v in p.iterdir()))


def models_config_text(out_dir, base_path: str | None = None) -> str:
    """TF Serving's `model_config_list` text proto serving every model in `out_dir` (the
    newest version of each, TF Serving's default policy). base_path: the folder the server
    sees as `out_dir` (default: its absolute path here)."""
    prefix = (base_path.rstrip("/") if base_path else str(Path(out_dir).resolve()))
    lines = [f"{_MARK}: every model in this folder, the newest version of each.",
             "# tensorflow_model_server --model_config_file=<this file> serves them together;",
             f"# base paths are under {prefix}" + ("" if base_path else
                                                    " (--base-path PREFIX rewrites them)."),
             "model_config_list {"]
    for name in served_models(out_dir):
        lines += ["  config {", f'    name: "{name}"', f'    base_path: "{prefix}/{name}"',
                  '    model_platform: "tensorflow"', "  }"]
    return "\n".join(lines + ["}", ""])


def write_models_config(out_dir, base_path: str | None = None) -> Path:
    """Writes (atomically) `out_dir/models.config`. One that tfgan3d-export did not write is
    kept, and the new one goes to models.config.tfgan3d beside it."""
    from tfgan3d import io
    path = Path(out_dir) / MODELS_CONFIG
    if path.exists() and not path.read_text(errors="replace").startswith(_MARK):
        print(f"{path} was not written by tfgan3d-export: kept; the export's list is in "
              f"{path.name}.tfgan3d", file=sys.stderr)
        path = path.with_name(f"{MODELS_CONFIG}.tfgan3d")
    return io.atomic_write(path, models_config_text(out_dir, base_path).encode())


# ----------------------------------------------------------------------------- the export

def export_run(run_dir, out_dir, name: str | None = None, version: int | None = None,
               checkpoint: str | None = None, *, warmup: int = 0, warmup_from=None,
               base_path: str | None = None):
    """Exports a run's newest checkpoint. A mode with one SavedModel (serving suffix "")
    returns its path; a mode with several (e.g. fcr_alphagan's generator, encoder and
    autoencoder) writes each at out/<name>_<part>/<version> and returns {part: path}.

    warmup: warm-up records per signature (from `warmup_from` files, else the run's data);
    with `warmup_from` alone, one per file. Then (re)writes out/models.config."""
    config, model, mode = load_trained(run_dir, checkpoint)
    name = name or config.mode
    tracked = list(mode.export_parts(model).values())
    parts = mode.serving(model, config)
    finish = _warmup_finisher(mode, config, warmup, warmup_from)
    if list(parts) == [""]:
        result = export_endpoints(parts[""], tracked, out_dir, name,
                                  version or _next_version(out_dir, name), finish)
    else:
        models = {f"{name}_{part}": endpoints for part, endpoints in parts.items()}
        versions = {full: version or _next_version(out_dir, full) for full in models}
        paths = export_together(models, tracked, out_dir, versions, finish)
        result = {full[len(name) + 1:]: path for full, path in paths.items()}
    write_models_config(out_dir, base_path)
    return result


def _warmup_finisher(mode, config, n: int, files):
    """finish(name, endpoints, folder) writing and replaying the warm-up records, or None."""
    if not n and not files:
        return None
    from tfgan3d import warmup
    try:
        import tensorflow_serving.apis.prediction_log_pb2  # noqa: F401
    except ImportError:
        raise ValueError("--warmup: the records are tensorflow_serving PredictionLog protos; "
                         "expected the tensorflow-serving-api package, found it missing (pip "
                         "install --no-deps 'tensorflow-serving-api==2.21.*')") from None
    samples = warmup.file_samples(files) if files else None
    n = n or len((samples.images or samples.scenes) if samples else [])
    if samples is None:
        samples = warmup.builtin_samples(mode, config, n)

    def finish(name, endpoints, folder):
        records = warmup.build_records(name, endpoints, samples, n)
        warmup.write_records(folder, records)
        warmup.check(folder, records, endpoints)
    return finish


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
    parser.add_argument("--format", choices=("savedmodel", "onnx"), default="savedmodel",
                        help="savedmodel (TF Serving) or onnx (the bare inference networks, "
                             "float32, through tf2onnx)")
    parser.add_argument("--warmup", type=int, default=0, metavar="N",
                        help="N warm-up records per signature in each SavedModel version "
                             "(assets.extra/tf_serving_warmup_requests), from the run's data")
    parser.add_argument("--warmup-from", nargs="+", metavar="FILE",
                        help="build the warm-up records from these images / .npy scenes")
    parser.add_argument("--base-path", metavar="PREFIX",
                        help="base path of the models in models.config as the server sees "
                             "--out (e.g. /models in a container); default: --out's absolute "
                             "path")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error")
    args = parser.parse_args(argv)
    if args.version is not None and args.version < 1:
        raise ValueError(f"--version: expected >= 1, got {args.version}")
    if args.warmup < 0:
        raise ValueError(f"--warmup: expected >= 0 records, got {args.warmup}")
    if args.checkpoint and not Path(f"{args.checkpoint}.index").is_file():
        raise FileNotFoundError(f"--checkpoint {args.checkpoint}: expected a checkpoint "
                                f"prefix, found no {args.checkpoint}.index")
    if args.format == "onnx":
        if args.warmup or args.warmup_from or args.base_path:
            raise ValueError("--format onnx: --warmup, --warmup-from and --base-path are for "
                             "SavedModels (TF Serving); leave them out")
        from tfgan3d import onnx_export
        paths = onnx_export.export_run_onnx(args.run, args.out, args.name, args.version,
                                            args.checkpoint)
    else:
        paths = export_run(args.run, args.out, args.name, args.version, args.checkpoint,
                           warmup=args.warmup, warmup_from=args.warmup_from,
                           base_path=args.base_path)
    for path in (paths.values() if isinstance(paths, dict) else [paths]):
        print(path)
    if args.format == "savedmodel":
        print(Path(args.out) / MODELS_CONFIG)
    return 0


if __name__ == "__main__":
    sys.exit(main())
