"""Voxel scene data sets of the fcr_alphagan mode: generate, convert, count.

    python -m tfgan3d.tools.voxel_data builtin --n 2000 --out DIR [--grid 80x48x80]
        [--format npz|tfrecord|scenevox] [--seed 0] [--workers 2]
    python -m tfgan3d.tools.voxel_data convert SRC DST --format npz|tfrecord|scenevox [--grid G]
    python -m tfgan3d.tools.voxel_data stats SRC [--split all] [--limit N]
    python -m tfgan3d.tools.voxel_data stats builtin:voxels --n 200 [--grid G] [--seed 0]

`builtin` writes N simulated scenes: the first 95% to DIR/train, the rest to DIR/test (or all of
them to DIR/Scenevox, which readers split the same way).
"""
import argparse
import itertools
import json
import sys

from tfgan3d import cli
from tfgan3d.data.voxels import GRID, VOXEL_CLASSES, iter_scenes, scene_stats

# TensorFlow is imported in main(), not here: --workers processes re-import this module and
# need numpy only. Keep in step with tfgan3d.data.voxel_formats.FORMATS.
FORMATS = ("npz", "tfrecord", "scenevox")


def parse_grid(text):
    """"80x48x80" -> (80, 48, 80)."""
    try:
        grid = tuple(int(v) for v in text.lower().split("x"))
    except ValueError:
        grid = ()
    if len(grid) != 3 or min(grid) < 1:
        raise argparse.ArgumentTypeError(f"expected a grid XxHxZ such as 80x48x80, got {text!r}")
    return grid


def build_parser():
    parser = cli.ArgumentParser(prog="python -m tfgan3d.tools.voxel_data",
                                description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("builtin", help="write simulated scenes")
    b.add_argument("--n", type=int, required=True, help="scenes in all (train = first 95%%)")
    b.add_argument("--n-test", type=int, help="test scenes (default: the last 5%% of --n)")
    b.add_argument("--out", required=True)
    b.add_argument("--grid", type=parse_grid, default=GRID)
    b.add_argument("--format", choices=FORMATS, default="npz")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--workers", type=int, default=1)
    b.add_argument("--shard-size", type=int, default=1000)
    b.add_argument("--overwrite", action="store_true")
    c = sub.add_parser("convert", help="convert a voxel data set to another layout")
    c.add_argument("src")
    c.add_argument("dst")
    c.add_argument("--format", choices=FORMATS, required=True)
    c.add_argument("--grid", type=parse_grid, help="reduce the scenes to this grid")
    c.add_argument("--shard-size", type=int, default=1000)
    c.add_argument("--overwrite", action="store_true")
    s = sub.add_parser("stats", help="class fractions of a voxel data set")
    s.add_argument("src", help="a data set folder or file, or builtin:voxels")
    s.add_argument("--split", choices=("train", "test", "all"), default="all")
    s.add_argument("--limit", type=int, help="read at most this many scenes")
    s.add_argument("--n", type=int, default=200, help="builtin:voxels: scenes to draw")
    s.add_argument("--grid", type=parse_grid, default=GRID, help="builtin:voxels: grid")
    s.add_argument("--seed", type=int, default=0, help="builtin:voxels: seed")
    s.add_argument("--workers", type=int, default=1, help="builtin:voxels: processes")
    s.add_argument("--json", action="store_true", help="print the statistics as JSON")
    return parser


def format_stats(stats):
    """The class fraction table of `scene_stats` as text."""
    lines = [f"{'id':>2}  {'class':<10} {'fraction':>9}"]
    for i, name in enumerate(VOXEL_CLASSES):
        lines.append(f"{i:>2}  {name:<10} {stats['class_fractions'][name]:>9.5f}")
    lines.append(f"scenes {stats['n']}, voxels per scene {stats['voxels']}, empty fraction "
                 f"{stats['empty_fraction']:.4f}, non-empty voxels per scene: mean "
                 f"{stats['occupied_mean']:.0f}, min {stats['occupied_min']}")
    return "\n".join(lines)


def _stats(args):
    from tfgan3d.data.voxel_files import iter_voxel_source

    if args.src == "builtin:voxels":
        n = args.n if args.limit is None else min(args.n, args.limit)
        scenes = iter_scenes(n, args.seed, args.grid, 0, args.workers)
    else:
        scenes = (scene for _, scene in iter_voxel_source(args.src, args.split))
        scenes = itertools.islice(scenes, args.limit)
    return scene_stats(scenes)


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    from tfgan3d.data.images import DataError
    from tfgan3d.data.voxel_files import convert, split_counts
    from tfgan3d.data.voxel_formats import write_builtin_voxels

    try:
        if args.command == "builtin":
            n_train, n_test = split_counts(args.n)
            if args.n_test is not None:
                if not 0 <= args.n_test <= args.n:
                    parser.error(f"--n-test must lie in 0..{args.n}, got {args.n_test}")
                n_train, n_test = args.n - args.n_test, args.n_test
            out = write_builtin_voxels(args.out, n_train, n_test, format=args.format,
                                       grid=args.grid, seed=args.seed, workers=args.workers,
                                       shard_size=args.shard_size, overwrite=args.overwrite)
            print(f"wrote {n_train} train + {n_test} test scenes {args.grid} to {out}")
        elif args.command == "convert":
            out = convert(args.src, args.dst, args.format, grid=args.grid,
                          shard_size=args.shard_size, overwrite=args.overwrite)
            print(f"wrote {out}")
        else:
            stats = _stats(args)
            print(json.dumps(stats, indent=2) if args.json else format_stats(stats))
    except (DataError, FileExistsError, ValueError) as e:
        parser.error(str(e))
    return 0


if __name__ == "__main__":
    sys.exit(main())
