"""`tfgan3d-data`: writes a simulated RGB-D data set (python -m tfgan3d.tools.make_dataset).

    tfgan3d-data --domain virtual --n-train 200 --n-test 50 --size 256 --layout aligned \
        --out data/virtual
"""
from __future__ import annotations

import argparse
import sys
import time

from tfgan3d.data.scene_files import (GREY_CONVENTIONS, IMAGE_FORMATS, LAYOUTS,
                                      write_scene_dataset)
from tfgan3d.data.scenes import ALL_DOMAINS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfgan3d-data", description=__doc__.splitlines()[0])
    parser.add_argument("--domain", choices=ALL_DOMAINS, required=True)
    parser.add_argument("--n-train", type=int, required=True)
    parser.add_argument("--n-test", type=int, required=True)
    parser.add_argument("--out", required=True, help="data set folder to create")
    parser.add_argument("--size", type=int, default=256, help="height and width")
    parser.add_argument("--height", type=int, help="overrides --size")
    parser.add_argument("--width", type=int, help="overrides --size")
    parser.add_argument("--layout", choices=LAYOUTS, default="folders")
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
    """Writes the data set. A bad value or an existing folder: usage and one `error:` line,
    status 2; another user error (an unwritable --out): one `error:` line, status 1."""
    from tfgan3d import cli
    return cli.run(_main, argv)


def _main(argv) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    height, width = args.height or args.size, args.width or args.size
    start = time.perf_counter()
    try:
        for name in ("n_train", "n_test"):
            if getattr(args, name) < 0:
                raise ValueError(f"--{name.replace('_', '-')}: expected >= 0, "
                                 f"got {getattr(args, name)}")
        if height < 1 or width < 1:
            raise ValueError(f"--size/--height/--width: expected >= 1, got {height}x{width}")
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


if __name__ == "__main__":
    sys.exit(main())
