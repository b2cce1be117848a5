"""Built-in voxel scene simulator: SUNCG-like furnished rooms for the fcr_alphagan mode.

The seed trained on SUNCG ground-truth scenes downsized to 80 x 48 x 80 voxels (x, height, z)
with 12 classes, about 92% empty, keeping scenes with more than 10000 non-empty voxels. This
module draws scenes of the same kind without any download: one room per scene (living room,
bedroom, bathroom, dining room or garage) with a floor slab, walls with windows and a door, a
ceiling when it fits under the grid top, and furniture assembled from boxes.

Scale: one voxel is about 6 cm at the full grid (SUNCG's 2 cm voxels downsized three times),
so a chair seat is 7-8 voxels high, a table 12-13, a room 38-47.

Every scene is a pure function of (seed, index): `make_scene(7)` is the same array whether it
is drawn alone, inside `make_scenes`, or by another worker. Smaller grids are drawn at the
full grid and reduced with `downsample_labels`.
"""
from concurrent.futures import ProcessPoolExecutor
import functools
import multiprocessing
import sys

import numpy as np

from tfgan3d.data.classes import (BED, CEILING, CHAIR, EMPTY, FLOOR, FURNITURE,  # noqa: F401
                                  NUM_VOXEL_CLASSES, OBJECTS, SOFA, TABLE, TVS, VOXEL_CLASSES,
                                  WALL, WINDOW)

NUM_CLASSES = NUM_VOXEL_CLASSES
GRID = (80, 48, 80)
MIN_OCCUPIED = 10000
ROOM_KINDS = ("living_room", "bedroom", "bathroom", "dining_room", "garage")
SIMULATOR_VERSION = 1  # bump when the scenes drawn for a (seed, index) change

_SALT = 0x5CE4E  # keeps these streams apart from other simulators seeded with the same seed
_MAX_ATTEMPTS = 200
# Footprint range (min, max) of each kind in voxels; rooms above 80 are cut by the grid.
_ROOM_SIZE = {"living_room": (56, 100), "bedroom": (50, 84), "bathroom": (40, 60),
              "dining_room": (52, 92), "garage": (64, 104)}
# np.rot90(item, k, axes=(0, 2)) turns an item built facing +z to face this direction.
_TURNS = {"+z": 0, "-x": 1, "-z": 2, "+x": 3}
_OPPOSITE = {"+z": "-z", "-z": "+z", "+x": "-x", "-x": "+x"}
_INWARD = ("+z", "-x", "-z", "+x")  # walls 0..3 lie at z=0, x=max, z=max, x=0


def _turn(item, front):
    return np.rot90(item, _TURNS[front], axes=(0, 2))


def _box(shape, label):
    return np.full(shape, label, np.uint8)


# Item builders. Each returns (array (sx, sy, sz) uint8, tops): the item stands at y=0 with
# its back at z=0 and its front towards +z; `tops` are the local heights objects can rest at.

def _chair(rng):
    w, d = (int(v) for v in rng.integers(7, 10, size=2))
    seat, back = int(rng.integers(7, 9)), int(rng.integers(7, 11))
    a = np.zeros((w, seat + back, d), np.uint8)
    a[np.ix_([0, w - 1], range(seat), [0, d - 1])] = CHAIR   # four legs
    a[:, seat - 1, :] = CHAIR                                 # seat
    a[:, seat:, 0] = CHAIR                                    # back
    return a, []


def _table(rng, w=None, d=None, h=None, label=TABLE):
    w = int(w or rng.integers(14, 29))
    d = int(d or rng.integers(12, 21))
    h = int(h or rng.integers(12, 14))
    leg = 2 if min(w, d) >= 18 else 1
    a = np.zeros((w, h, d), np.uint8)
    for x0 in (0, w - leg):
        for z0 in (0, d - leg):
            a[x0:x0 + leg, :h - 1, z0:z0 + leg] = label
    a[:, h - 1, :] = label
    return a, [h]


def _round_table(rng):
    r = int(rng.integers(7, 11))
    h = int(rng.integers(12, 14))
    c = np.arange(2 * r + 1) - r
    disk = c[:, None] ** 2 + c[None, :] ** 2 <= r * r + r
    a = np.zeros((2 * r + 1, h, 2 * r + 1), np.uint8)
    a[:, h - 1, :][disk] = TABLE
    a[r - 1:r + 2, :h - 1, r - 1:r + 2] = TABLE                # pedestal
    a[r - 3:r + 4, 0, r - 3:r + 4] = TABLE                    # foot
    return a, [h]


def _coffee_table(rng):
    a, tops = _table(rng, w=rng.integers(14, 21), d=rng.integers(8, 12), h=rng.integers(6, 8))
    a[:, 1, :] = TABLE                                         # lower shelf
    return a, tops


def _bed(rng):
    w = int(rng.choice([16, 17, 24, 26, 28]))
    length = int(rng.integers(32, 36))
    base, mattress = int(rng.integers(3, 5)), int(rng.integers(3, 5))
    head = int(rng.integers(13, 19))
    a = np.zeros((w, head, length), np.uint8)
    a[:, :base, :] = BED
    a[1:w - 1, base:base + mattress, 2:length - 1] = BED
    a[:, :, :2] = BED                                          # headboard
    if rng.random() < 0.4:
        a[:, :base + mattress + 2, length - 1] = BED           # footboard
    top = base + mattress
    for x0 in range(2, w - 6, 8):                              # pillows
        a[x0:x0 + 6, top:top + 2, 3:7] = OBJECTS
    return a, []


def _sofa(rng, w=None):
    w = int(w or rng.integers(28, 41))
    d, seat = int(rng.integers(13, 16)), int(rng.integers(6, 8))
    back, arm, arm_w = int(rng.integers(13, 15)), int(rng.integers(9, 11)), int(rng.integers(2, 4))
    a = np.zeros((w, back, d), np.uint8)
    a[:, :seat, :] = SOFA
    a[:, :, :4] = SOFA
    a[:arm_w, :arm, :] = SOFA
    a[w - arm_w:, :arm, :] = SOFA
    if rng.random() < 0.5:                                     # cushions
        for x0 in range(arm_w + 1, w - arm_w - 5, 9):
            a[x0:x0 + 5, seat:seat + 4, 4:6] = OBJECTS
    return a, []


def _tv(rng, w=None):
    w = int(w or rng.integers(14, 23))
    h = int(rng.integers(8, 14))
    a = np.zeros((w, h + 3, 4), np.uint8)
    c = w // 2
    a[c - 3:c + 3, 0, :] = TVS                                  # foot
    a[c:c + 1, 1:3, 1:2] = TVS                                  # neck
    a[:, 3:, 1] = TVS                                           # screen
    return a, []


def _tv_on_stand(rng):
    w = int(rng.integers(20, 31))
    h, d = int(rng.integers(7, 10)), int(rng.integers(7, 9))
    tv, _ = _tv(rng, w=min(w - 2, int(rng.integers(14, 23))))
    a = np.zeros((w, h + tv.shape[1], d), np.uint8)
    a[:, :h, :] = FURNITURE
    x0 = (w - tv.shape[0]) // 2
    a[x0:x0 + tv.shape[0], h:, :tv.shape[2]] = tv
    return a, []


def _wall_tv(rng, mount):
    w, h = int(rng.integers(16, 25)), int(rng.integers(9, 14))
    a = np.zeros((w, mount + h, 1), np.uint8)
    a[:, mount:, :] = TVS
    return a, []


def _cabinet(rng, max_h):
    w, h, d = int(rng.integers(10, 21)), int(rng.integers(11, 17)), int(rng.integers(6, 10))
    return _box((w, min(h, max_h), d), FURNITURE), [min(h, max_h)]


def _nightstand(rng):
    h = int(rng.integers(8, 10))
    return _box((int(rng.integers(7, 9)), h, 7), FURNITURE), [h]


def _wardrobe(rng, max_h):
    w, h, d = int(rng.integers(16, 27)), int(rng.integers(32, 39)), int(rng.integers(9, 11))
    return _box((w, min(h, max_h - 1), d), FURNITURE), []


def _shelf(rng, max_h, tall=None):
    w, d = int(rng.integers(12, 21)), int(rng.integers(5, 8))
    h = min(int(tall or rng.integers(20, 35)), max_h - 1)
    a = np.zeros((w, h, d), np.uint8)
    a[[0, w - 1], :, :] = FURNITURE                             # sides
    a[:, :, 0] = FURNITURE                                      # back
    boards = list(range(0, h, int(rng.integers(6, 8)))) + [h - 1]
    a[:, boards, :] = FURNITURE
    return a, [b + 1 for b in boards]


def _bathtub(rng):
    w, length, h = int(rng.integers(12, 15)), int(rng.integers(26, 31)), int(rng.integers(8, 10))
    a = _box((w, h, length), FURNITURE)
    a[1:w - 1, 1:, 1:length - 1] = EMPTY
    return a, []


def _toilet(rng):
    a = np.zeros((6, 13, 9), np.uint8)
    a[1:5, :7, 3:9] = OBJECTS                                   # bowl
    a[:, 7:13, 0:3] = OBJECTS                                   # tank
    a[:, 6, 3:9] = OBJECTS                                      # seat
    return a, []


def _small_object(rng):
    kind = rng.integers(5)
    if kind == 0:                                               # box
        return _box(tuple(int(v) for v in rng.integers(2, 6, size=3)), OBJECTS), []
    if kind == 1:                                               # table lamp
        a = np.zeros((4, int(rng.integers(7, 10)), 4), np.uint8)
        a[1:3, 0, 1:3] = OBJECTS
        a[1:2, 1:-3, 1:2] = OBJECTS
        a[:, -3:, :] = OBJECTS
        return a, []
    if kind == 2:                                               # plant
        s, leaf = int(rng.integers(3, 5)), int(rng.integers(4, 8))
        a = np.zeros((s + 2, s + leaf, s + 2), np.uint8)
        a[1:s + 1, :s, 1:s + 1] = OBJECTS
        a[:, s:, :][rng.random((s + 2, leaf, s + 2)) < 0.55] = OBJECTS
        a[s // 2 + 1, s:s + 2, s // 2 + 1] = OBJECTS
        return a, []
    if kind == 3:                                               # books, bottles, bowls
        return _box((int(rng.integers(1, 4)), int(rng.integers(1, 4)), int(rng.integers(1, 4))),
                    OBJECTS), []
    w, d = int(rng.integers(4, 9)), int(rng.integers(4, 9))   # storage bin
    return _box((w, int(rng.integers(3, 7)), d), OBJECTS), []


def _floor_lamp(rng):
    a = np.zeros((5, int(rng.integers(22, 28)), 5), np.uint8)
    a[1:4, 0, 1:4] = OBJECTS
    a[2, 1:-4, 2] = OBJECTS
    a[:, -4:, :] = OBJECTS
    return a, []


def _plant(rng):
    s, leaf = int(rng.integers(4, 7)), int(rng.integers(8, 16))
    a = np.zeros((s + 4, s + leaf, s + 4), np.uint8)
    a[2:s + 2, :s, 2:s + 2] = OBJECTS
    a[:, s:, :][rng.random((s + 4, leaf, s + 4)) < 0.45] = OBJECTS
    a[s // 2 + 2, s:s + leaf // 2, s // 2 + 2] = OBJECTS
    return a, []


class _Placed:
    """A placed item: its footprint box in room coordinates and the direction it faces."""

    def __init__(self, x0, y0, z0, shape, front):
        self.x0, self.y0, self.z0 = x0, y0, z0
        self.sx, self.sy, self.sz = shape
        self.front = front


class _Room:
    """A room being furnished: label volume in room coordinates plus placement bookkeeping."""

    def __init__(self, rng, kind, lx, lz):
        self.rng, self.kind = rng, kind
        height = GRID[1]
        self.vox = np.zeros((lx, height, lz), np.uint8)
        floor_y, floor_t = int(rng.integers(0, 5)), 1 if rng.random() < 0.8 else 2
        self.t = 1 if rng.random() < 0.65 else 2                # wall thickness
        self.y0 = floor_y + floor_t                             # first layer above the floor
        ceiling_y = self.y0 + int(rng.integers(38, 48))
        self.top = min(ceiling_y, height)                       # exclusive top of the interior
        v, t = self.vox, self.t
        v[:, floor_y:self.y0, :] = FLOOR
        if ceiling_y < height and rng.random() < 0.85:
            v[:, ceiling_y, :] = CEILING
        walls = slice(self.y0, self.top)
        v[:t, walls, :] = v[lx - t:, walls, :] = WALL
        v[:, walls, :t] = v[:, walls, lz - t:] = WALL
        self.lx, self.lz = lx, lz
        self.x_lo, self.x_hi, self.z_lo, self.z_hi = t, lx - t, t, lz - t
        self.blocked = np.zeros((lx, lz), bool)                 # floor kept clear (door swing)
        self.surfaces = []                                      # (x0, x1, z0, z1, y)
        self.openings = []                                      # (wall, a0, a1)
        self.anchor = None                                      # kept in view when cropping
        self._cut_door()
        self._cut_windows()

    # Walls 0..3 lie at z=0, x=max, z=max, x=0; `a` runs along the wall.
    def _wall_length(self, wall):
        return self.lx if wall in (0, 2) else self.lz

    def _wall_slab(self, wall, a0, a1, y0, y1):
        t, ys = self.t, slice(y0, y1)
        return {0: (slice(a0, a1), ys, slice(0, t)),
                1: (slice(self.lx - t, self.lx), ys, slice(a0, a1)),
                2: (slice(a0, a1), ys, slice(self.lz - t, self.lz)),
                3: (slice(0, t), ys, slice(a0, a1))}[wall]

    def _cut_door(self):
        rng = self.rng
        if rng.random() > (0.95 if self.kind == "garage" else 0.8):
            return
        wall = int(rng.integers(4))
        width = int(rng.integers(34, 45) if self.kind == "garage" else rng.integers(13, 17))
        length = self._wall_length(wall)
        if length - 2 * self.t - 4 <= width:
            return
        a0 = int(rng.integers(self.t + 2, length - self.t - 2 - width + 1))
        height = min(int(rng.integers(34, 37)), self.top - self.y0)
        self.vox[self._wall_slab(wall, a0, a0 + width, self.y0, self.y0 + height)] = EMPTY
        self.openings.append((wall, a0, a0 + width))
        clear = 14 if self.kind != "garage" else 20
        b0, b1 = max(a0 - 2, 0), a0 + width + 2
        if wall == 0:
            self.blocked[b0:b1, :self.t + clear] = True
        elif wall == 2:
            self.blocked[b0:b1, self.lz - self.t - clear:] = True
        elif wall == 3:
            self.blocked[:self.t + clear, b0:b1] = True
        else:
            self.blocked[self.lx - self.t - clear:, b0:b1] = True

    def _cut_windows(self):
        rng = self.rng
        chance = {"garage": 0.3, "bathroom": 0.4}.get(self.kind, 0.55)
        for wall in range(4):
            if rng.random() > chance:
                continue
            for _ in range(int(rng.integers(1, 3))):
                width = int(rng.integers(10, 25))
                length = self._wall_length(wall)
                if length - 2 * self.t - 4 <= width:
                    continue
                a0 = int(rng.integers(self.t + 2, length - self.t - 2 - width + 1))
                if any(w == wall and a0 < b1 + 2 and b0 < a0 + width + 2
                       for w, b0, b1 in self.openings):
                    continue
                sill = self.y0 + int(rng.integers(10, 19))
                top = min(sill + int(rng.integers(14, 25)), self.top - 3)
                if top - sill < 6:
                    continue
                self.vox[self._wall_slab(wall, a0, a0 + width, sill, top)] = WINDOW
                self.openings.append((wall, a0, a0 + width))

    # Placement. All positions are checked against what is already in the room.
    def fits(self, x0, y0, z0, shape, margin=1):
        sx, sy, sz = shape
        if (x0 < self.x_lo or z0 < self.z_lo or x0 + sx > self.x_hi or z0 + sz > self.z_hi
                or y0 < self.y0 or y0 + sy > self.top):
            return False
        xa, xb = max(x0 - margin, self.x_lo), min(x0 + sx + margin, self.x_hi)
        za, zb = max(z0 - margin, self.z_lo), min(z0 + sz + margin, self.z_hi)
        if self.vox[xa:xb, y0:y0 + sy, za:zb].any():
            return False
        return not (y0 == self.y0 and self.blocked[xa:xb, za:zb].any())

    def put(self, built, x0, y0, z0, front):
        item, tops = built
        region = self.vox[x0:x0 + item.shape[0], y0:y0 + item.shape[1], z0:z0 + item.shape[2]]
        np.copyto(region, item, where=item != EMPTY)
        for top in tops:
            self.surfaces.append((x0, x0 + item.shape[0], z0, z0 + item.shape[2], y0 + top))
        return _Placed(x0, y0, z0, item.shape, front)

    def _rand(self, lo, hi):
        return int(self.rng.integers(lo, hi + 1)) if hi >= lo else None

    def against_wall(self, built, wall=None, along=None, y0=None, tries=25, margin=1):
        """Put an item with its back to a wall (random wall and spot unless given)."""
        y0 = self.y0 if y0 is None else y0
        for _ in range(tries):
            w = int(self.rng.integers(4)) if wall is None else wall
            front = _INWARD[w]
            item = _turn(built[0], front)
            sx, _, sz = item.shape
            if w in (0, 2):
                z0 = self.z_lo if w == 0 else self.z_hi - sz
                x0 = (self._rand(self.x_lo, self.x_hi - sx) if along is None
                      else self.x_lo + round(along * (self.x_hi - self.x_lo - sx)))
            else:
                x0 = self.x_lo if w == 3 else self.x_hi - sx
                z0 = (self._rand(self.z_lo, self.z_hi - sz) if along is None
                      else self.z_lo + round(along * (self.z_hi - self.z_lo - sz)))
            if x0 is not None and z0 is not None and self.fits(x0, y0, z0, item.shape, margin):
                return self.put((item, built[1]), x0, y0, z0, front)
        return None

    def free(self, built, front=None, tries=25, margin=2, centre=False):
        """Put an item on the floor at a random spot (near the centre when asked)."""
        for _ in range(tries):
            f = front or _INWARD[int(self.rng.integers(4))]
            item = _turn(built[0], f)
            sx, _, sz = item.shape
            if centre:
                cx, cz = (self.x_lo + self.x_hi) // 2, (self.z_lo + self.z_hi) // 2
                x0 = cx - sx // 2 + int(self.rng.integers(-6, 7))
                z0 = cz - sz // 2 + int(self.rng.integers(-6, 7))
            else:
                x0 = self._rand(self.x_lo, self.x_hi - sx)
                z0 = self._rand(self.z_lo, self.z_hi - sz)
            if x0 is not None and z0 is not None and self.fits(x0, self.y0, z0, item.shape, margin):
                return self.put((item, built[1]), x0, self.y0, z0, f)
        return None

    def next_to(self, anchor, built, side, gap, along=0.5, front=None, margin=1):
        """Put an item on the floor on one side ("+x", ...) of a placed item."""
        if anchor is None:
            return None
        front = front or anchor.front
        item = _turn(built[0], front)
        sx, _, sz = item.shape
        if side in ("+z", "-z"):
            x0 = anchor.x0 + round(along * (anchor.sx - sx))
            z0 = anchor.z0 + anchor.sz + gap if side == "+z" else anchor.z0 - gap - sz
        else:
            z0 = anchor.z0 + round(along * (anchor.sz - sz))
            x0 = anchor.x0 + anchor.sx + gap if side == "+x" else anchor.x0 - gap - sx
        if self.fits(x0, self.y0, z0, item.shape, min(margin, gap)):
            return self.put((item, built[1]), x0, self.y0, z0, front)
        return None

    def on_surface(self, built, surface=None, front=None, tries=8):
        """Put an item on a table, shelf board or cabinet top."""
        if not self.surfaces:
            return None
        for _ in range(tries):
            s = surface or self.surfaces[int(self.rng.integers(len(self.surfaces)))]
            f = front or _INWARD[int(self.rng.integers(4))]
            item = _turn(built[0], f)
            x0 = self._rand(s[0], s[1] - item.shape[0])
            z0 = self._rand(s[2], s[3] - item.shape[2])
            if (x0 is not None and z0 is not None and self.fits(x0, s[4], z0, item.shape, 0)
                    and self.vox[x0:x0 + item.shape[0], s[4] - 1, z0:z0 + item.shape[2]].all()):
                return self.put((item, built[1]), x0, s[4], z0, f)
        return None

    def scatter(self, n, on_surface=0.6, floor_item=None):
        """Small objects on surfaces, the rest (or ones that found no room) on the floor."""
        for _ in range(n):
            built = _small_object(self.rng)
            if self.rng.random() < on_surface and self.on_surface(built):
                continue
            self.free(floor_item(self.rng) if floor_item else built, margin=1)


def _sides_of(front):
    return ("-x", "+x") if front in ("+z", "-z") else ("-z", "+z")


def _living_room(room):
    rng = room.rng
    sofa = room.anchor = room.against_wall(_sofa(rng))
    if sofa is not None:
        room.next_to(sofa, _coffee_table(rng), sofa.front, int(rng.integers(4, 9)))
        wall = _INWARD.index(_OPPOSITE[sofa.front])
        tv = _wall_tv(rng, int(rng.integers(16, 22))) if rng.random() < 0.3 else _tv_on_stand(rng)
        room.against_wall(tv, wall=wall) or room.against_wall(tv)
        if rng.random() < 0.5:
            side = _sides_of(sofa.front)[int(rng.integers(2))]
            room.next_to(sofa, _sofa(rng, w=int(rng.integers(12, 16))), side,
                         int(rng.integers(3, 7)), front=_INWARD[int(rng.integers(4))])
    for _ in range(int(rng.integers(1, 3))):
        room.against_wall(_shelf(rng, room.top - room.y0))
    if rng.random() < 0.5:
        room.against_wall(_cabinet(rng, room.top - room.y0))
    if rng.random() < 0.3:
        room.free(_table(rng, w=rng.integers(8, 12), d=rng.integers(8, 12), h=rng.integers(9, 12)))
    if rng.random() < 0.5:
        room.free(_floor_lamp(rng))
    if rng.random() < 0.6:
        room.against_wall(_plant(rng), margin=1)
    room.scatter(int(rng.integers(3, 9)))


def _bedroom(room):
    rng = room.rng
    bed = room.anchor = room.against_wall(_bed(rng))
    if bed is not None:
        along = 0.0 if bed.front in ("+z", "+x") else 1.0
        for side in _sides_of(bed.front):
            if rng.random() < 0.8:
                stand = room.next_to(bed, _nightstand(rng), side, int(rng.integers(0, 3)), along)
                if stand is not None and rng.random() < 0.7:
                    room.on_surface(_small_object(rng), room.surfaces[-1])
    room.against_wall(_wardrobe(rng, room.top - room.y0))
    if rng.random() < 0.5:
        room.against_wall(_cabinet(rng, room.top - room.y0))
    if rng.random() < 0.4:
        desk = room.against_wall(_table(rng, w=rng.integers(18, 25), d=rng.integers(10, 13)))
        room.next_to(desk, _chair(rng), desk.front if desk else "+z", 1,
                     front=_OPPOSITE[desk.front] if desk else None)
    if rng.random() < 0.3:
        room.against_wall(_tv_on_stand(rng))
    if rng.random() < 0.4:
        room.against_wall(_shelf(rng, room.top - room.y0))
    room.scatter(int(rng.integers(2, 7)))


def _dining_room(room):
    rng = room.rng
    built = _round_table(rng) if rng.random() < 0.25 else _table(rng)
    table = room.anchor = (room.free(built, front="+z", centre=True, margin=10)
                           or room.free(built, front="+z", margin=8))
    if table is not None:
        for side in ("-z", "+z", "-x", "+x"):
            length = table.sx if side in ("-z", "+z") else table.sz
            n = max(1, length // 11) if rng.random() < 0.9 else 0
            for k in range(n):
                along = (k + 0.5) / n if n > 1 else 0.5
                room.next_to(table, _chair(rng), side, int(rng.integers(0, 3)), along,
                             front=_OPPOSITE[side])
        for _ in range(int(rng.integers(1, 5))):
            room.on_surface(_small_object(rng), room.surfaces[0])
    room.against_wall(_cabinet(rng, room.top - room.y0))
    if rng.random() < 0.5:
        room.against_wall(_shelf(rng, room.top - room.y0))
    if rng.random() < 0.6:
        room.against_wall(_plant(rng), margin=1)
    room.scatter(int(rng.integers(1, 5)))


def _bathroom(room):
    rng = room.rng
    room.against_wall(_bathtub(rng), along=float(rng.integers(2)))
    vanity = room.against_wall(_cabinet(rng, 15))
    if vanity is not None:
        for _ in range(int(rng.integers(1, 4))):
            room.on_surface(_small_object(rng), room.surfaces[-1])
    room.against_wall(_toilet(rng))
    if rng.random() < 0.5:
        room.against_wall(_shelf(rng, room.top - room.y0, tall=rng.integers(14, 24)))
    if rng.random() < 0.4:
        room.against_wall(_cabinet(rng, room.top - room.y0))
    room.scatter(int(rng.integers(2, 6)))


def _garage(room):
    rng = room.rng
    for _ in range(int(rng.integers(1, 4))):
        room.against_wall(_shelf(rng, room.top - room.y0, tall=rng.integers(26, 36)))
    for _ in range(int(rng.integers(0, 3))):
        room.against_wall(_cabinet(rng, room.top - room.y0))
    if rng.random() < 0.5:
        room.against_wall(_table(rng, w=rng.integers(22, 31), d=rng.integers(10, 14)))
    room.scatter(int(rng.integers(6, 16)), on_surface=0.5,
                 floor_item=lambda r: (_box(tuple(int(v) for v in r.integers(4, 11, size=3)),
                                            OBJECTS), []))


_FURNISH = {"living_room": _living_room, "bedroom": _bedroom, "bathroom": _bathroom,
            "dining_room": _dining_room, "garage": _garage}


def _check_grid(grid):
    grid = tuple(int(g) for g in grid)
    if len(grid) != 3 or any(g < 1 or g > f for g, f in zip(grid, GRID)):
        raise ValueError(f"grid must be 3 sizes (x, height, z) between 1 and {GRID}, got {grid}")
    return grid


def min_occupied(grid=GRID):
    """MIN_OCCUPIED scaled to the volume of `grid` (10000 at 80x48x80)."""
    grid = _check_grid(grid)
    return -(-MIN_OCCUPIED * int(np.prod(grid)) // int(np.prod(GRID)))


def scene_kind(index, seed=0):
    """The room kind drawn for scene `index` of `seed`."""
    rng = np.random.default_rng([_SALT, int(seed), int(index), 1])
    return ROOM_KINDS[int(rng.integers(len(ROOM_KINDS)))]


def _draw_room(rng, kind):
    lo, hi = _ROOM_SIZE[kind]
    lx, lz = (int(v) for v in rng.integers(lo, hi + 1, size=2))
    room = _Room(rng, kind, lx, lz)
    _FURNISH[kind](room)
    window = []
    for axis, full in ((0, GRID[0]), (2, GRID[2])):  # a room larger than the grid is cut
        size = room.vox.shape[axis]
        first, last = 0, max(size - full, 0)
        if room.anchor is not None and size > full:  # keep the room's main piece in view
            a0 = room.anchor.x0 if axis == 0 else room.anchor.z0
            a1 = a0 + (room.anchor.sx if axis == 0 else room.anchor.sz)
            first, last = max(first, a1 - full), min(last, a0)
        start = int(rng.integers(first, last + 1))
        window.append(slice(start, start + full))
    vox = np.rot90(room.vox[window[0], :, window[1]], int(rng.integers(4)), axes=(0, 2))
    x0 = int(rng.integers(0, GRID[0] - vox.shape[0] + 1))
    z0 = int(rng.integers(0, GRID[2] - vox.shape[2] + 1))
    scene = np.zeros(GRID, np.uint8)
    scene[x0:x0 + vox.shape[0], :, z0:z0 + vox.shape[2]] = vox
    return scene


def make_scene(index, seed=0, grid=GRID, kind=None):
    """One scene of integer labels 0..11, shape `grid` (x, height, z), dtype uint8.

    Args:
        index: scene number (>= 0); the scene depends only on (seed, index) (and `kind`).
        seed: data set seed (>= 0).
        grid: output grid, at most GRID in every axis; smaller grids are drawn at GRID and
            reduced with `downsample_labels`.
        kind: force a room kind from ROOM_KINDS (default: drawn from (seed, index)).

    Raises:
        ValueError: negative index or seed, unknown kind, or a grid larger than GRID.
    """
    if int(index) < 0 or int(seed) < 0:
        raise ValueError(f"index and seed must be >= 0, got index={index}, seed={seed}")
    grid = _check_grid(grid)
    kind = kind or scene_kind(index, seed)
    if kind not in _FURNISH:
        raise ValueError(f"unknown room kind {kind!r}; valid kinds: {', '.join(ROOM_KINDS)}")
    need = min_occupied(grid)
    for attempt in range(_MAX_ATTEMPTS):  # rejected scenes are redrawn from the next stream
        rng = np.random.default_rng([_SALT, int(seed), int(index), 0, attempt])
        scene = _draw_room(rng, kind)
        if np.count_nonzero(scene) < MIN_OCCUPIED:
            continue
        if grid != GRID:
            scene = downsample_labels(scene, grid)
            if np.count_nonzero(scene) < need:
                continue
        return scene
    raise RuntimeError(f"no scene with >= {need} occupied voxels after {_MAX_ATTEMPTS} draws "
                       f"(seed={seed}, index={index}, kind={kind})")


@functools.lru_cache(maxsize=8)
def _block_ids(shape, grid):
    ids = []
    for n_in, n_out in zip(shape, grid):
        edges = np.arange(n_out + 1) * n_in // n_out
        ids.append((np.repeat(np.arange(n_out), np.diff(edges)), np.diff(edges)))
    (ix, sx), (iy, sy), (iz, sz) = ids
    block = ((ix[:, None, None] * grid[1] + iy[None, :, None]) * grid[2] + iz[None, None, :])
    dims = np.stack(np.broadcast_arrays(sx[:, None, None], sy[None, :, None], sz[None, None, :]))
    # A block counts as occupied when its non-empty voxels fill at least half of one thin slab
    # through it (volume / longest side): one-voxel walls and floors survive a 5x reduction.
    volume = dims.prod(0)
    need = volume / dims.max(0) * 0.5
    return (block.ravel() * NUM_CLASSES).astype(np.int64), need.ravel(), volume.ravel()


def downsample_labels(scene, grid):
    """Reduce a label volume to `grid` with a class-aware block rule.

    Input axes are split into `grid` blocks of near-equal size (80 -> 32 gives blocks of 2 or 3).
    A block takes its most frequent non-empty class (ties: the lower class id) when its
    non-empty voxels fill at least half of a one-voxel slab through it, else it is empty. With
    `grid == scene.shape` the scene is returned unchanged.
    """
    scene = np.asarray(scene)
    grid = tuple(int(g) for g in grid)
    if grid == scene.shape:
        return scene.astype(np.uint8, copy=False)
    if scene.ndim != 3 or len(grid) != 3 or any(g < 1 or g > s for g, s in zip(grid, scene.shape)):
        raise ValueError(f"cannot downsample a scene of shape {scene.shape} to grid {grid}")
    if scene.size and (scene.min() < 0 or scene.max() >= NUM_CLASSES):
        raise ValueError(f"labels must lie in 0..{NUM_CLASSES - 1}, "
                         f"found {scene.min()}..{scene.max()}")
    offsets, need, volume = _block_ids(scene.shape, grid)
    counts = np.bincount(offsets + scene.ravel(), minlength=need.size * NUM_CLASSES)
    counts = counts.reshape(need.size, NUM_CLASSES)
    labels = counts[:, 1:].argmax(1).astype(np.uint8) + 1
    labels[volume - counts[:, EMPTY] < need] = EMPTY
    return labels.reshape(grid)


def _make_chunk(indices, seed, grid):
    return np.stack([make_scene(i, seed, grid) for i in indices])


def iter_scenes(n, seed=0, grid=GRID, start=0, workers=1, chunk=32):
    """Yield scenes start .. start+n-1 in order, drawing chunks in `workers` processes."""
    grid = _check_grid(grid)
    chunks = [range(i, min(i + chunk, start + n)) for i in range(start, start + n, chunk)]
    if workers <= 1 or len(chunks) <= 1:
        for c in chunks:
            yield from _make_chunk(c, seed, grid)
        return
    # A forked child of a process running TensorFlow threads can deadlock: spawn then (which
    # needs the usual `if __name__ == "__main__":` guard in scripts), fork otherwise.
    ctx = multiprocessing.get_context("spawn" if "tensorflow" in sys.modules else "fork")
    with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
        for block in pool.map(_make_chunk, chunks, [seed] * len(chunks), [grid] * len(chunks)):
            yield from block


def make_scenes(n, seed=0, grid=GRID, start=0, workers=1):
    """Scenes start .. start+n-1 as one uint8 array (n, X, H, Z); same result for any `workers`."""
    grid = _check_grid(grid)
    out = np.empty((int(n), *grid), np.uint8)
    for i, scene in enumerate(iter_scenes(n, seed, grid, start, workers)):
        out[i] = scene
    return out


def scene_stats(scenes):
    """Class statistics of label volumes.

    Args:
        scenes: one scene (X, H, Z), an array (N, X, H, Z), or an iterable of scenes.

    Returns:
        dict with "n" (scenes), "voxels" (per scene), "class_fractions" ({class name: fraction
        of all voxels}), "empty_fraction", "occupied_mean" and "occupied_min" (non-empty voxels
        per scene).

    Raises:
        ValueError: a label outside 0..11.
    """
    if isinstance(scenes, np.ndarray) and scenes.ndim == 3:
        scenes = scenes[None]
    counts = np.zeros(NUM_CLASSES, np.int64)
    occupied, voxels = [], 0
    for scene in scenes:
        scene = np.asarray(scene)
        if scene.size and (scene.min() < 0 or scene.max() >= NUM_CLASSES):
            bad = scene.max() if scene.max() >= NUM_CLASSES else scene.min()
            raise ValueError(f"label {bad} outside 0..{NUM_CLASSES - 1}")
        c = np.bincount(scene.ravel().astype(np.int64), minlength=NUM_CLASSES)
        counts += c
        occupied.append(int(scene.size - c[EMPTY]))
        voxels = scene.size
    total = max(int(counts.sum()), 1)
    fractions = {name: float(c) / total for name, c in zip(VOXEL_CLASSES, counts)}
    return {"n": len(occupied), "voxels": int(voxels), "class_fractions": fractions,
            "empty_fraction": fractions["empty"],
            "occupied_mean": float(np.mean(occupied)) if occupied else 0.0,
            "occupied_min": int(min(occupied)) if occupied else 0}
