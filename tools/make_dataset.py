"""`tfgan3d-data`: writes a simulated data set, or converts one to streamed shards
(python -m tfgan3d.tools.make_dataset).

    tfgan3d-data --domain virtual --n-train 200 --n-test 50 --size 256 --layout aligned \
        --out data/virtual
    tfgan3d-data --domain real-like --n-train 20000 --n-test 150 --size 64 --layout shards \
        --shard-size 500 --out data/real-shards          # pix2pix / sim2real: train/, test/
    tfgan3d-data --domain eyes --n-train 20000 --n-test 2000 --layout shards --out data/eyes
                                                         # simgan: synthetic/, real/, test/
    tfgan3d-data --convert data/scenes-real --out data/scenes-real-shards [--role sim|real]

`--layout shards` writes sharded TFRecords (`tfgan3d.data.shards`) that training streams from
disk, never loading the set whole; several workers read disjoint shards, so write at least
as many shards as workers. fcr_alphagan's voxel shards come from `tfgan3d.tools.voxel_data`.
"""
from __future__ import annotations

import argparse
import sys
import time

from tfgan3d import cli
from tfgan3d.data.scene_files import (GREY_CONVENTIONS, IMAGE_FORMATS, LAYOUTS,
                                      write_scene_dataset)
from tfgan3d.data.scenes import ALL_DOMAINS

REFINE_DOMAINS = ("eyes", "depth")        # simgan's built-in sets (builtin:eyes, builtin:depth)
REFINE_CHUNK = 1000                       # simgan images rendered at a time


def build_parser() -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(prog="tfgan3d-data", description=__doc__.splitlines()[0])
    parser.add_argument("--domain", choices=ALL_DOMAINS + REFINE_DOMAINS,
                        help="simulator domain (eyes, depth: simgan's sets, --layout shards)")
    parser.add_argument("--convert", metavar="FOLDER",
                        help="convert this RGB-D data set folder to shards instead")
    parser.add_argument("--role", choices=("sim", "real"),
                        help="--convert: read FOLDER as a sim2real domain of this role "
                             "(classgt/ and colour tables, KITTI-like real sets)")
    parser.add_argument("--n-train", type=int)
    parser.add_argument("--n-test", type=int)
    parser.add_argument("--n-real", type=int,
                        help="eyes, depth: unlabeled real images (default --n-train)")
    parser.add_argument("--out", required=True, help="data set folder to create")
    parser.add_argument("--size", type=int, default=256, help="height and width")
    parser.add_argument("--height", type=int, help="overrides --size")
    parser.add_argument("--width", type=int, help="overrides --size")
    parser.add_argument("--layout", choices=LAYOUTS + ("shards",), default="folders",
                        help="shards: sharded TFRecords, streamed in training")
    parser.add_argument("--shard-size", type=int, default=500, help="examples per shard")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--depth-scale", type=float, default=0.001,
                        help="metres per unit of the 16-bit depth PNGs (folders layout)")
    parser.add_argument("--grey-convention", choices=GREY_CONVENTIONS, default="near-dark",
                        help="8-bit depth of the aligned layout")
    parser.add_argument("--format", choices=IMAGE_FORMATS, default="png",
                        help="image format of the aligned layout")
    parser.add_argument("--workers", type=int, default=1, help="rendering processes")
    parser.add_argument("--overwrite", action="store_true", help="replace a non-empty --out")
    return parser


def main(argv=None) -> int:
    """Writes the data set. A user error (a bad value, an existing folder, an unwritable
    --out): one `error:` line, status 1."""
    return cli.run(_main, argv)


def _main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    height, width = args.height or args.size, args.width or args.size
    start = time.perf_counter()
    if args.convert:
        from tfgan3d.data import shards
        out = shards.write_pair_shards(args.convert, args.out, shard_size=args.shard_size,
                                       overwrite=args.overwrite, role=args.role)
        print(f"wrote {args.convert} as shards to {out} in {time.perf_counter() - start:.1f} s")
        return 0
    if args.domain is None or args.n_train is None or args.n_test is None:
        parser.error("--domain, --n-train and --n-test are required (or --convert FOLDER)")
    if args.domain in REFINE_DOMAINS:
        if args.layout != "shards":
            parser.error(f"--domain {args.domain}: simgan's sets are written with --layout "
                         f"shards, got --layout {args.layout}")
        out = _write_refine(args, (args.height, args.width) if args.height or args.width
                            else None)
        print(f"wrote {args.n_train} synthetic + {args.n_real or args.n_train} real + "
              f"{args.n_test} test {args.domain} images as shards to {out} in "
              f"{time.perf_counter() - start:.1f} s")
        return 0
    try:
        for name in ("n_train", "n_test"):
            if getattr(args, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')}: expected >= 0, "
                                 f"got {getattr(args, name)}")
        if height < 1 or width < 1:
            raise ValueError(f"--size/--height/--width: expected >= 1, got {height}x{width}")
        if args.layout == "shards":
            out = _write_scene_shards(args, height, width)
            print(f"wrote {args.n_train} train + {args.n_test} test {args.domain} scenes "
                  f"(shards, {height}x{width}) to {out} in "
                  f"{time.perf_counter() - start:.1f} s")
            return 0
        out = write_scene_dataset(args.out, args.domain, args.n_train, args.n_test, height,
                                  width, seed=args.seed, layout=args.layout,
                                  depth_scale=args.depth_scale,
                                  grey_convention=args.grey_convention,
                                  image_format=args.format, overwrite=args.overwrite,
                                  workers=args.workers)
    except (ValueError, FileExistsError) as err:
        parser.error(str(err))          # usage, then one `error:` line; status 2
    print(f"wrote {args.n_train} train + {args.n_test} test {args.domain} scenes "
          f"({args.layout}, {height}x{width}) to {out} in {time.perf_counter() - start:.1f} s")
    return 0


def _write_scene_shards(args, height, width):
    """Renders the scenes into a temporary folder set beside --out, converts it to shards,
    then removes the temporary set."""
    import shutil
    import uuid
    from pathlib import Path

    from tfgan3d.data import shards
    out = Path(args.out).expanduser()
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    scratch = out.parent / f".{out.name}.render-{uuid.uuid4().hex[:8]}"
    try:
        write_scene_dataset(scratch, args.domain, args.n_train, args.n_test, height, width,
                            seed=args.seed, layout="folders", depth_scale=args.depth_scale,
                            workers=args.workers)
        return shards.write_pair_shards(scratch, out, shard_size=args.shard_size,
                                        overwrite=args.overwrite)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _write_refine(args, size):
    """simgan's built-in set as ROOT/synthetic, real, test shards, rendered a chunk at a time
    (the set is never held whole)."""
    from tfgan3d.data import eyes, refine_data, shards
    source = f"builtin:{args.domain}"
    size = tuple(size) if size else refine_data._DEFAULT_SIZE[args.domain]
    counts = {"synthetic": args.n_train, "real": args.n_real or args.n_train,
              "test": args.n_test}

    def chunks(role):
        for start in range(0, counts[role], REFINE_CHUNK):
            n = min(REFINE_CHUNK, counts[role] - start)
            yield refine_data.render_builtin(args.domain, role, n, size, args.seed,
                                             offset=start)

    names = eyes.EYE_LABEL_NAMES if args.domain == "eyes" else ()
    return shards.write_refine_shards(args.out, {r: chunks(r) for r in counts if counts[r]},
                                      shard_size=args.shard_size, overwrite=args.overwrite,
                                      label_names=names)


if __name__ == "__main__":
    sys.exit(main())
