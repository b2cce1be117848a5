"""Launch a multi-worker training on Ray: Ray Train's TensorflowTrainer starts the workers
and sets TF_CONFIG for each, so nobody writes it by hand.

    pip install -r requirements-ray.txt
    python -m tfgan3d.tools.ray_launch --workers 2 -- --mode pix2pix --preset tiny \
        --run-dir runs

Everything after `--` is `python -m tfgan3d.train`'s command line; each worker runs it with
`--strategy multi-worker` (worker 0 is the chief: it writes the run folder). Without
`--address` a local Ray cluster is started on this machine (as many logical CPUs as workers,
plus one for Ray's controller); `--address auto` or `ray://HOST:10001` joins a running
cluster, whose nodes need this package and the data at the same paths. `--gpus-per-worker 1`
asks Ray for a GPU per worker. A relative `--run-dir` / `--data` is made absolute, since Ray's
workers run in their own folders. Exit status: 0 when every worker finished, 1 otherwise
(the failed worker's error is printed).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

PATH_FLAGS = ("--run-dir", "--data", "--test-data", "--real-data", "--sim-data",
              "--resume", "--stage2-from", "--cache-dir", "--class-map")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tfgan3d.tools.ray_launch",
        description="Train on several workers started by Ray Train (TensorflowTrainer sets "
                    "TF_CONFIG); arguments after -- go to tfgan3d.train.")
    parser.add_argument("--workers", type=int, default=2, help="training workers (default 2)")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0)
    parser.add_argument("--gpus-per-worker", type=float, default=0.0)
    parser.add_argument("--address", default=None,
                        help="a running Ray cluster (auto, ray://HOST:10001); default: start "
                             "a local one")
    parser.add_argument("--storage", default=None,
                        help="Ray's own result folder (default: a temporary folder)")
    parser.add_argument("train_args", nargs=argparse.REMAINDER,
                        help="-- then tfgan3d.train's options (--mode MODE ...)")
    return parser


def absolute_paths(argv: list[str]) -> list[str]:
    """tfgan3d.train's arguments with relative paths after PATH_FLAGS made absolute
    (`--flag PATH` and `--flag=PATH`; builtin: sources and `--resume latest` unchanged)."""
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        flag, eq, value = arg.partition("=")
        if flag in PATH_FLAGS and eq:
            out.append(f"{flag}={_absolute(value)}")
        elif arg in PATH_FLAGS and i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out += [arg, _absolute(argv[i + 1])]
            i += 1
        else:
            out.append(arg)
        i += 1
    return out


def _absolute(value: str) -> str:
    if value.startswith("builtin:") or value in ("latest", "kitti12"):
        return value
    return str(Path(value).expanduser().absolute())


def train_worker(config: dict) -> None:
    """Runs on each Ray worker: TF_CONFIG is already set by Ray Train's TensorflowTrainer."""
    os.environ.pop("TF_USE_LEGACY_KERAS", None)   # Ray sets it for tf.keras; tfgan3d is Keras 3
    from tfgan3d import train
    try:
        train.main(list(config["argv"]))
    except SystemExit as stop:             # train's one `error:` line exits; Ray needs a raise
        if stop.code not in (0, None):
            raise RuntimeError(str(stop.code)) from None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    if "--mode" not in " ".join(train_args).replace("=", " ").split():
        parser.error("give tfgan3d.train's options after --, e.g. -- --mode pix2pix")
    if args.workers < 1:
        parser.error(f"--workers: expected >= 1, got {args.workers}")
    if any(a == "--strategy" or a.startswith("--strategy=") for a in train_args):
        parser.error("--strategy is set by the launcher (multi-worker); leave it out")
    try:
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.tensorflow import TensorflowTrainer
    except ImportError as err:
        print(f"error: ray is not installed ({err}); pip install -r requirements-ray.txt",
              file=sys.stderr)
        return 1
    train_argv = absolute_paths(train_args) + ["--strategy", "multi-worker"]
    os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")
    if args.address:
        ray.init(address=args.address, runtime_env={"env_vars": {"RAY_CHDIR_TO_TRIAL_DIR": "0"}})
    else:
        ray.init(num_cpus=int(args.workers * args.cpus_per_worker) + 1,
                 num_gpus=int(args.workers * args.gpus_per_worker) or None,
                 include_dashboard=False, log_to_driver=True)
    storage = args.storage or tempfile.mkdtemp(prefix="tfgan3d-ray-")
    trainer = TensorflowTrainer(
        train_worker, train_loop_config={"argv": train_argv},
        scaling_config=ScalingConfig(
            num_workers=args.workers, use_gpu=args.gpus_per_worker > 0,
            resources_per_worker={"CPU": args.cpus_per_worker,
                                  **({"GPU": args.gpus_per_worker}
                                     if args.gpus_per_worker else {})}),
        run_config=RunConfig(storage_path=str(Path(storage).absolute()), name="tfgan3d"))
    print(f"ray_launch: {args.workers} workers: python -m tfgan3d.train "
          f"{' '.join(train_argv)}", flush=True)
    try:
        result = trainer.fit()
    except Exception as err:               # noqa: BLE001 - Ray wraps the worker's error
        print(f"error: the Ray training failed: {str(err).strip().splitlines()[-1][:400]}",
              file=sys.stderr)
        return 1
    finally:
        ray.shutdown()
    if getattr(result, "error", None):
        print(f"error: the Ray training failed: {result.error}", file=sys.stderr)
        return 1
    print("ray_launch: every worker finished", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
