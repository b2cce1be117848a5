"""Depth in the wrong unit: the share of valid depth beyond the maximum depth a model maps.

Depth targets are clipped to max_depth (pix2pix: 2 d / max_depth - 1 clipped to [-1, 1];
sim2real: min(d, max_depth)), so depth stored in another unit than the reader assumes (a .npy
of millimetres or of metres x 1e6, a 16-bit PNG with the wrong depth_scale) trains silently on
a constant map. `DepthRange` tallies, file by file, how much valid depth lies beyond max_depth;
`check` refuses a data set where more than REFUSE_SHARE of it does and warns where more than
WARN_SHARE does, naming the files, the share and the values found.
"""
from __future__ import annotations

import dataclasses
import sys

import numpy as np

from tfgan3d.data.errors import DataError

REFUSE_SHARE = 0.5    # more than half of the valid depth beyond max_depth: refused
WARN_SHARE = 0.05     # more than 5 %: a warning (far background, sky, a too small max_depth)
_LISTED = 5


@dataclasses.dataclass
class _File:
    path: str
    valid: int
    beyond: int
    low: float
    high: float

    @property
    def share(self) -> float:
        return self.beyond / self.valid if self.valid else 0.0


@dataclasses.dataclass
class DepthRange:
    """Valid depth beyond `max_depth` (metres), tallied over files.

    `flag` and `scale_flag` name the options of max_depth and of the depth unit in messages.
    """
    max_depth: float
    flag: str = "--max-depth"
    scale_flag: str = "--depth-scale"
    files: list = dataclasses.field(default_factory=list)

    def add(self, path, depth, valid) -> None:
        """Tallies one file's depth (metres) where `valid`."""
        values = np.asarray(depth, np.float64)[np.asarray(valid, bool)]
        if values.size:
            self.files.append(_File(str(path), int(values.size),
                                    int(np.count_nonzero(values > self.max_depth)),
                                    float(values.min()), float(values.max())))

    @property
    def share(self) -> float:
        valid = sum(f.valid for f in self.files)
        return sum(f.beyond for f in self.files) / valid if valid else 0.0

    def message(self) -> str:
        """What was found, with the files of most depth beyond max_depth first (at most 5)."""
        worst = sorted((f for f in self.files if f.beyond), key=lambda f: -f.share)
        listed = "; ".join(f"{f.path}: {f.share:.0%}, {f.low:.4g}..{f.high:.4g} m"
                           for f in worst[:_LISTED])
        more = f"; and {len(worst) - _LISTED} more files" if len(worst) > _LISTED else ""
        low = min(f.low for f in self.files)
        high = max(f.high for f in self.files)
        return (f"{self.share:.0%} of the valid depth in {len(worst)} of {len(self.files)} "
                f"files lies beyond {self.flag} {self.max_depth:g} m (values found "
                f"{low:.4g}..{high:.4g} m; {listed}{more})")

    def check(self, where: str = "") -> None:
        """Raises DataError when more than REFUSE_SHARE of the valid depth lies beyond
        max_depth; prints one `warning:` line to stderr when more than WARN_SHARE does."""
        if not self.files:
            return
        share = self.share
        prefix = f"{where}: " if where else ""
        if share > REFUSE_SHARE:
            raise DataError(
                f"{prefix}expected depth in metres within {self.flag} {self.max_depth:g} m, "
                f"found {self.message()}: every such target is clipped to {self.max_depth:g} "
                f"m; check the depth unit (.npy files hold metres, 16-bit PNG values are "
                f"multiplied by {self.scale_flag} or dataset.json \"depth_scale\") or raise "
                f"{self.flag}")
        if share > WARN_SHARE:
            print(f"warning: {prefix}{self.message()}; those pixels train as "
                  f"{self.max_depth:g} m", file=sys.stderr, flush=True)
