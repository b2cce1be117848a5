"""Built-in RGB-D scene simulator: rooms with objects, rendered by vectorised ray casting.

The two domains stand for the seed report's two regimes (pix2pix monocular depth):
  "virtual"    Regime-V, the seed's "artificially-created virtual scenes [that] contain only
               simple objects, lighting, and perfect depth maps": 1-4 free primitives (sphere,
               box, cone, cylinder) in flat colours, one ceiling light, exact depth.
  "real-like"  Regime-R, the seed's SUN RGB-D rooms, "real-world scenes containing complex and
               unpredictable objects, many with faulty depth maps": 2-5 pieces of furniture
               built from parts (tables, chairs, bookshelves with books, sofas, cabinets, floor
               lamps) plus 1-4 small things, in real-world materials (wood, fabric, metal,
               paint, plastic: their albedo, saturation, gloss and texture statistics); two or
               three lights (ceiling, a window, a lamp's bulb) of different colour temperature,
               each casting shadows, plus light patterns on the walls and floor; textured floors
               and walls; a camera (blur, vignetting, exposure, white balance, gamma, noise,
               roll); and a Kinect-like sensor depth with holes, flying pixels at edges,
               projector shadows, depth-dependent quantisation, dropouts on dark, glossy or
               grazing surfaces and, sometimes, a large invalid blob at the top (seed Figure 3).
The gap is one of content as well as appearance, as between a toy world and real rooms: what a
model learns on "virtual" (few convex shapes, one shading model) has to transfer to clutter,
thin parts and mixed lighting. Both domains light the walls with spots and stripes that change
colour but not depth. Furniture parts are labelled with their primitive's class.

Sim2real's pair (seed 001) poses another problem, a gap of appearance only, as between Virtual
KITTI and KITTI: "rooms-sim" and "rooms-real" draw their content (room, camera, furniture,
small things, their colours) from one and the same distribution, Regime-R's, and differ in how
it is rendered and sensed:
  "rooms-sim"   a game engine's rendering: flat materials (no texture, no gloss), one white
                ceiling light with shadows, no light patterns, a clean camera, exact depth;
  "rooms-real"  Regime-R's rendering: textures, glossy materials, two or three coloured lights,
                light patterns, the camera's defects and the Kinect-like sensor depth.
The two domains use separate random streams, so their scenes are unpaired.

World frame: metres, y up; the room is the box [0, Lx] x [0, Ly] x [0, Lz] with the floor at
y = 0 and the ceiling (labelled "wall") at y = Ly. Depth is z-depth: the distance along the
camera's optical axis, not the length of the ray. Every pixel is traced at once with numpy.
"""
from __future__ import annotations

import dataclasses

import numpy as np

SCENE_CLASSES = ("floor", "wall", "sphere", "box", "cone", "cylinder")
DOMAINS = ("virtual", "real-like")        # pix2pix's regimes V and R
SIM2REAL_DOMAINS = ("rooms-sim", "rooms-real")  # one content distribution, two renderings
ALL_DOMAINS = DOMAINS + SIM2REAL_DOMAINS
MAX_DEPTH = 10.0

_CLASS_ID = {name: i for i, name in enumerate(SCENE_CLASSES)}
_KINDS = SCENE_CLASSES[2:]
_FLOOR = 2  # room surface ids: 0 x=0, 1 x=Lx, 2 floor, 3 ceiling, 4 z=0, 5 z=Lz
_EPS = 1e-4


@dataclasses.dataclass
class Camera:
    """Pinhole camera; yaw turns about +y (0 looks along +z), pitch < 0 looks down."""

    position: tuple[float, float, float]
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    hfov: float = np.pi / 3  # horizontal field of view, radians


@dataclasses.dataclass
class Primitive:
    """A solid. center: sphere or box centre, base centre of cone and cylinder.

    size: (r,) sphere, (hx, hy, hz) box half-extents, (r, h) cone and cylinder.
    """

    kind: str
    center: tuple[float, float, float]
    size: tuple[float, ...]
    yaw: float = 0.0
    colour: tuple[float, float, float] = (0.5, 0.5, 0.5)  # linear albedo
    texture: str = "flat"  # flat | noise | checker | stripes
    gloss: float = 0.0     # specular weight


@dataclasses.dataclass
class LightPattern:
    """Extra light on a room surface: a soft "spot" or "stripes" (blinds); colour only."""

    surface: int
    kind: str
    u: float        # spot centre in surface coordinates (u along the surface, v up or depth)
    v: float
    scale: float    # spot radius or stripe period, metres
    angle: float    # stripe direction
    colour: tuple[float, float, float]


@dataclasses.dataclass
class Texture:
    """Procedural surface textures of a real-like scene."""

    floor: str              # wood | tile | carpet
    wall: str               # plaster | wallpaper | panels
    scale: float            # plank width, tile size or wallpaper period, metres
    waves: np.ndarray       # (K, 3) spatial frequencies of the sine-sum noise, rad/m
    phases: np.ndarray      # (K,)
    salt: float


@dataclasses.dataclass
class SceneSpec:
    """An explicit scene description; `_render` turns it into images."""

    room: tuple[float, float, float]
    camera: Camera
    primitives: list[Primitive]
    light_position: tuple[float, float, float]
    light_colour: tuple[float, float, float] = (1.0, 1.0, 1.0)
    ambient: float = 0.3
    surface_colours: np.ndarray = dataclasses.field(
        default_factory=lambda: np.full((6, 3), 0.6))
    patterns: list[LightPattern] = dataclasses.field(default_factory=list)
    texture: Texture | None = None
    shadows: bool = True
    # More point lights: (position, linear RGB intensity), each lit and shadowed like the main one.
    extra_lights: list = dataclasses.field(default_factory=list)


def _check(domain, height, width):
    if domain not in ALL_DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; valid domains: {', '.join(ALL_DOMAINS)}")
    for name, value in (("height", height), ("width", width)):
        if not isinstance(value, (int, np.integer)) or value <= 0:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return ALL_DOMAINS.index(domain)


def render_scene(index: int, domain: str, height: int = 256, width: int = 256,
                 seed: int = 0) -> dict:
    """Renders scene `index` of a domain; it depends only on (seed, domain, index).

    Returns:
        dict with rgb uint8 (H, W, 3); depth float32 (H, W), exact dense z-depth in metres
        (distance along the optical axis), at most MAX_DEPTH; sensor_depth float32 (H, W) in
        metres, 0 where invalid (equal to depth for "virtual"); labels uint8 (H, W), indices
        into SCENE_CLASSES (the ceiling is "wall").

    Raises:
        ValueError: unknown domain, non-positive size, or negative index or seed.
    """
    domain_id = _check(domain, height, width)
    for name, value in (("index", index), ("seed", seed)):
        if not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, got {value!r}")
    rng = np.random.default_rng([int(seed), domain_id, int(index)])
    if domain == "virtual":
        return _render(_sample_spec(rng, domain), height, width)
    spec = _sample_real_spec(rng)
    if domain == "rooms-sim":
        return _render(_as_engine_render(spec), height, width)
    return _render(spec, height, width, rng)


def _as_engine_render(spec):
    """The same content rendered as a game engine would: flat materials, one white light with
    shadows, no patterns or textures (the camera and sensor defects are left out by _render)."""
    return dataclasses.replace(
        spec, primitives=[dataclasses.replace(p, texture="flat", gloss=0.0)
                          for p in spec.primitives],
        light_colour=(1.0, 1.0, 1.0), ambient=0.3, patterns=[], texture=None, extra_lights=[])


def render_scenes(n: int, domain: str, height: int = 256, width: int = 256, seed: int = 0,
                  start: int = 0) -> dict:
    """Renders scenes start .. start+n-1; the same keys as render_scene, stacked on axis 0."""
    _check(domain, height, width)
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    out = {"rgb": np.zeros((n, height, width, 3), np.uint8),
           "depth": np.zeros((n, height, width), np.float32),
           "sensor_depth": np.zeros((n, height, width), np.float32),
           "labels": np.zeros((n, height, width), np.uint8)}
    for i in range(n):
        for key, value in render_scene(start + i, domain, height, width, seed).items():
            out[key][i] = value
    return out


# --- sampling a random scene -------------------------------------------------------------

def _hsv(h, s, v):
    """HSV in [0, 1] -> linear RGB tuple (squared, a rough sRGB decode)."""
    k = (np.array([5.0, 3.0, 1.0]) + h * 6.0) % 6.0
    rgb = v - v * s * np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return tuple(float(c) for c in rgb ** 2)


def _place(rng, n, room, camera, real):
    """Up to n primitives standing on the floor, mostly in view, not overlapping."""
    lx, _, lz = room
    cx, _, cz = camera.position
    placed = []
    for _ in range(n):
        for _attempt in range(30):
            kind = _KINDS[rng.integers(len(_KINDS))]
            scale = rng.uniform(0.5, 1.5) if real else 1.0
            if kind == "sphere":
                size = (rng.uniform(0.2, 0.6) * scale,)
                foot, y = size[0], size[0]
            elif kind == "box":
                size = tuple(rng.uniform([0.15, 0.15, 0.15], [0.5, 0.6, 0.5]) * scale)
                foot, y = float(np.hypot(size[0], size[2])), size[1]
            else:
                size = (rng.uniform(0.15, 0.5) * scale, rng.uniform(0.4, 1.5) * scale)
                foot, y = size[0], 0.0
            if not real or rng.random() < 0.8:  # in the field of view
                angle = camera.yaw + rng.uniform(-0.45, 0.45)
                dist = rng.uniform(1.5, 6.0)
                x, z = cx + dist * np.sin(angle), cz + dist * np.cos(angle)
            else:
                x, z = rng.uniform(0.0, lx), rng.uniform(0.0, lz)
            inside = foot + 0.05 < x < lx - foot - 0.05 and foot + 0.05 < z < lz - foot - 0.05
            clear = np.hypot(x - cx, z - cz) > foot + 0.6 and all(
                np.hypot(x - p.center[0], z - p.center[2]) > foot + f + 0.05 for p, f in placed)
            if inside and clear:
                break
        else:
            continue
        if real:
            colour = _hsv(rng.random(), rng.uniform(0.0, 0.9), rng.uniform(0.15, 0.95))
            texture = ("flat", "noise", "checker", "stripes")[rng.integers(4)]
            gloss = rng.uniform(0.2, 0.8) if rng.random() < 0.35 else 0.0
        else:
            colour, texture, gloss = _hsv(rng.random(), rng.uniform(0.4, 0.9), 0.85), "flat", 0.0
        prim = Primitive(kind, (float(x), float(y), float(z)), tuple(float(s) for s in size),
                         float(rng.uniform(0, np.pi)), colour, texture, gloss)
        placed.append((prim, foot))
    return [p for p, _ in placed]


# Real-world materials: (hue range, saturation, value, P(glossy), gloss range, textures).
# Values are those of an HSV colour whose square is the linear albedo (see _hsv).
MATERIALS = {
    "wood": ((0.04, 0.11), (0.4, 0.75), (0.3, 0.75), 0.3, (0.1, 0.3), ("stripes", "noise")),
    "fabric": ((0.0, 1.0), (0.1, 0.6), (0.25, 0.8), 0.0, (0.0, 0.0), ("noise", "checker", "flat")),
    "metal": ((0.0, 1.0), (0.0, 0.1), (0.5, 0.9), 1.0, (0.5, 0.9), ("flat",)),
    "paint": ((0.0, 1.0), (0.0, 0.3), (0.1, 0.95), 0.4, (0.1, 0.4), ("flat",)),
    "plastic": ((0.0, 1.0), (0.5, 0.9), (0.5, 0.9), 0.6, (0.2, 0.5), ("flat", "noise")),
}
FURNITURE = ("table", "chair", "shelf", "sofa", "cabinet", "lamp")
_BODY_MATERIALS = {"table": ("wood", "wood", "paint", "metal"), "chair": ("wood", "paint",
                   "plastic", "metal"), "shelf": ("wood", "wood", "paint"),
                   "sofa": ("fabric",), "cabinet": ("wood", "paint"), "lamp": ("metal", "paint")}


def _material(rng, name):
    hue, sat, val, p_gloss, gloss, textures = MATERIALS[name]
    colour = _hsv(rng.uniform(*hue), rng.uniform(*sat), rng.uniform(*val))
    glossy = rng.uniform(*gloss) if rng.random() < p_gloss else 0.0
    return colour, textures[rng.integers(len(textures))], float(glossy)


def _furniture_parts(rng, kind):
    """Parts of one piece of furniture in its own frame (origin on the floor at its centre, its
    back towards -z): a list of (primitive kind, centre, size, material name or None = body)."""
    box, cyl = "box", "cylinder"
    parts = []
    if kind in ("table", "chair"):
        hx, hz = (rng.uniform(0.3, 0.7), rng.uniform(0.25, 0.45)) if kind == "table" else (
            rng.uniform(0.18, 0.25), rng.uniform(0.18, 0.24))
        top = rng.uniform(0.68, 0.78) if kind == "table" else rng.uniform(0.42, 0.48)
        t, r = rng.uniform(0.015, 0.035), rng.uniform(0.015, 0.035)
        parts.append((box, (0.0, top - t, 0.0), (hx, t, hz), None))
        for sx in (-1, 1):
            for sz in (-1, 1):
                parts.append((cyl, (sx * (hx - 2 * r), 0.0, sz * (hz - 2 * r)), (r, top - 2 * t),
                              None))
        if kind == "chair":
            back = rng.uniform(0.2, 0.35)
            parts.append((box, (0.0, top + back, -hz + t), (hx, back, t), None))
    elif kind == "shelf":
        hx, hz, height = rng.uniform(0.3, 0.6), rng.uniform(0.14, 0.2), rng.uniform(1.0, 2.0)
        t = 0.015
        for sx in (-1, 1):
            parts.append((box, (sx * (hx - t), height / 2, 0.0), (t, height / 2, hz), None))
        parts.append((box, (0.0, height / 2, -hz + t), (hx, height / 2, t), None))
        levels = int(rng.integers(3, 6))
        for k in range(levels + 1):
            y = t + k * (height - 2 * t) / levels
            parts.append((box, (0.0, y, 0.0), (hx - t, t, hz), None))
            if k < levels:  # books on this plank
                x, gap = -hx + 2 * t, (height - 2 * t) / levels
                while x < hx - 0.06 and rng.random() < 0.92:
                    w = rng.uniform(0.012, 0.035)
                    h = rng.uniform(0.5, 0.85) * gap / 2
                    parts.append((box, (x + w, y + t + h, rng.uniform(-0.02, 0.02)),
                                  (w, h, hz * rng.uniform(0.6, 0.9)), "book"))
                    x += 2 * w + rng.uniform(0.0, 0.01)
    elif kind == "sofa":
        hx, hz = rng.uniform(0.7, 1.1), rng.uniform(0.38, 0.48)
        seat, arm = rng.uniform(0.38, 0.45), rng.uniform(0.08, 0.14)
        parts.append((box, (0.0, seat / 2, 0.05), (hx, seat / 2, hz - 0.05), None))
        parts.append((box, (0.0, 0.4, -hz + 0.1), (hx, 0.4, 0.1), None))
        for sx in (-1, 1):
            parts.append((box, (sx * (hx - arm), 0.3, 0.0), (arm, 0.3, hz), None))
        for sx in (-0.5, 0.5):  # cushions
            parts.append((box, (sx * hx, seat + 0.06, 0.08), (hx / 2 - 0.04, 0.06, hz - 0.15),
                          None))
    elif kind == "cabinet":
        hx, hz, height = rng.uniform(0.3, 0.7), rng.uniform(0.2, 0.3), rng.uniform(0.5, 1.1)
        parts.append((box, (0.0, height / 2, 0.0), (hx, height / 2, hz), None))
        parts.append((box, (0.0, height + 0.015, 0.0), (hx + 0.02, 0.015, hz + 0.02), "top"))
        for sx in (-1, 1):  # handles
            parts.append((box, (sx * 0.06, height * 0.7, hz + 0.01), (0.01, 0.05, 0.01), "metal"))
    else:  # floor lamp: base, pole, shade (a cone: apex up)
        pole = rng.uniform(1.2, 1.6)
        parts.append((cyl, (0.0, 0.0, 0.0), (rng.uniform(0.12, 0.18), 0.03), None))
        parts.append((cyl, (0.0, 0.03, 0.0), (0.015, pole), None))
        parts.append(("cone", (0.0, pole - 0.1, 0.0), (rng.uniform(0.18, 0.26),
                                                       rng.uniform(0.3, 0.45)), "shade"))
    return parts


def _footprint(parts):
    """Radius of the floor circle around the origin that holds every part."""
    radius = 0.0
    for kind, (x, _, z), size, _ in parts:
        half = np.hypot(size[0], size[2]) if kind == "box" else size[0]
        radius = max(radius, np.hypot(x, z) + half)
    return float(radius)


def _furnish(rng, kind, x, z, yaw, parts):
    """The parts of one piece as world primitives: rotated by yaw about +y, moved to (x, z)."""
    body = _material(rng, _BODY_MATERIALS[kind][rng.integers(len(_BODY_MATERIALS[kind]))])
    top = _material(rng, ("wood", "paint")[rng.integers(2)])
    shade = _material(rng, "fabric")
    metal = _material(rng, "metal")
    legs = metal if kind in ("table", "chair") and rng.random() < 0.35 else body
    prims = []
    for part, (px, py, pz), size, role in parts:
        if role == "book":
            look = _material(rng, ("paint", "plastic", "fabric")[rng.integers(3)])
        else:
            look = {"top": top, "shade": shade, "metal": metal}.get(
                role, legs if part == "cylinder" else body)
        c, s_ = np.cos(yaw), np.sin(yaw)
        centre = (x + c * px + s_ * pz, py, z - s_ * px + c * pz)
        colour, texture, gloss = look
        prims.append(Primitive(part, tuple(float(v) for v in centre),
                               tuple(float(v) for v in size), float(yaw), colour, texture, gloss))
    return prims


def _place_real(rng, room, camera):
    """3-6 pieces of furniture and 1-4 small things on the floor, not overlapping; about half
    of the pieces that can stand against a wall do so, facing the room. Returns (primitives,
    lamp bulb positions)."""
    lx, _, lz = room
    cx, _, cz = camera.position
    placed, prims, bulbs = [], [], []

    def free(x, z, foot):
        inside = foot * 0.6 < x < lx - foot * 0.6 and foot * 0.6 < z < lz - foot * 0.6
        return inside and np.hypot(x - cx, z - cz) > foot + 0.6 and all(
            np.hypot(x - px, z - pz) > foot + f + 0.03 for px, pz, f in placed)

    for kind in [FURNITURE[k] for k in rng.integers(len(FURNITURE), size=rng.integers(3, 7))]:
        parts = _furniture_parts(rng, kind)
        foot = _footprint(parts)
        against = kind in ("shelf", "sofa", "cabinet", "table") and rng.random() < 0.5
        for _attempt in range(25):
            if against:
                wall, depth = int(rng.integers(3)), _half_depth(parts)
                if wall == 0:
                    x, z, yaw = depth + 0.02, rng.uniform(0, lz), np.pi / 2
                elif wall == 1:
                    x, z, yaw = lx - depth - 0.02, rng.uniform(0, lz), -np.pi / 2
                else:
                    x, z, yaw = rng.uniform(0, lx), lz - depth - 0.02, np.pi
                ok = free(x, z, 0.0) and all(np.hypot(x - px, z - pz) > foot + f + 0.03
                                            for px, pz, f in placed)
            else:
                angle = camera.yaw + rng.uniform(-0.5, 0.5)
                dist = rng.uniform(1.6, 6.0)
                x, z, yaw = (cx + dist * np.sin(angle), cz + dist * np.cos(angle),
                             rng.uniform(0, 2 * np.pi))
                ok = free(x, z, foot)
            if ok:
                break
        else:
            continue
        pieces = _furnish(rng, kind, x, z, yaw, parts)
        if kind == "lamp":
            shade = pieces[-1]
            bulbs.append((shade.center[0], shade.center[1] - 0.05, shade.center[2]))
        placed.append((x, z, foot))
        prims += pieces
    for _ in range(int(rng.integers(1, 5))):  # small things: vases, balls, boxes, bins
        for _attempt in range(25):
            p = _place(rng, 1, room, camera, True)
            if not p:
                continue
            p = p[0]
            size = tuple(v * rng.uniform(0.3, 0.6) for v in p.size)
            y = size[0] if p.kind == "sphere" else size[1] if p.kind == "box" else 0.0
            foot = float(np.hypot(size[0], size[2])) if p.kind == "box" else size[0]
            if free(p.center[0], p.center[2], foot):
                prims.append(dataclasses.replace(p, center=(p.center[0], y, p.center[2]),
                                                 size=size))
                placed.append((p.center[0], p.center[2], foot))
                break
    return prims, bulbs


def _half_depth(parts):
    """Extent of a piece behind its origin (along -z of its own frame)."""
    return float(max(-(z - (size[2] if kind == "box" else size[0]))
                     for kind, (_, _, z), size, _ in parts))


def _sample_real_spec(rng):
    """A Regime-R scene: furniture from parts, real materials, two or three lights."""
    room = (rng.uniform(3.5, 6.5), rng.uniform(2.4, 3.0), rng.uniform(4.0, 7.5))
    camera = Camera((rng.uniform(1.0, room[0] - 1.0), rng.uniform(1.1, 1.8),
                     rng.uniform(0.3, 0.9)),
                    yaw=rng.uniform(-0.35, 0.35), pitch=-rng.uniform(0.08, 0.35),
                    roll=rng.normal(0.0, 0.03))
    primitives, bulbs = _place_real(rng, room, camera)
    warm, cool = np.array([1.0, 0.82, 0.62]), np.array([0.75, 0.85, 1.0])
    main = (rng.uniform(0.5, room[0] - 0.5), room[1] - 0.25, rng.uniform(0.5, room[2] - 0.5))
    main_colour = tuple(rng.uniform(0.5, 1.0) * (warm if rng.random() < 0.6 else cool))
    extra = []
    if rng.random() < 0.7:  # daylight through a window in a side or far wall
        side = int(rng.integers(3))
        height = rng.uniform(1.2, 2.0)
        pos = ((0.15, height, rng.uniform(1.0, room[2] - 0.5)) if side == 0 else
               (room[0] - 0.15, height, rng.uniform(1.0, room[2] - 0.5)) if side == 1 else
               (rng.uniform(0.5, room[0] - 0.5), height, room[2] - 0.15))
        extra.append((pos, tuple(rng.uniform(0.6, 1.6) * cool)))
    for bulb in bulbs[:1]:
        extra.append((bulb, tuple(rng.uniform(0.25, 0.6) * warm)))
    wall_material = ("paint", "paint", "fabric")[rng.integers(3)]
    wall = _hsv(rng.random(), rng.uniform(0.0, 0.3), rng.uniform(0.6, 0.95)) \
        if wall_material == "paint" else _material(rng, "fabric")[0]
    floor = _material(rng, ("wood", "wood", "fabric", "paint")[rng.integers(4)])[0]
    ceiling = _hsv(0.0, 0.0, rng.uniform(0.75, 0.95))
    colours = np.array([wall, wall, floor, ceiling, wall, wall])
    patterns = _light_patterns(rng, room, rng.integers(0, 5), [0, 1, 5, 5, _FLOOR])
    texture = _room_texture(rng)
    return SceneSpec(room, camera, primitives, main, main_colour, rng.uniform(0.12, 0.3),
                     colours, patterns, texture, shadows=True, extra_lights=extra)


def _light_patterns(rng, room, count, surfaces):
    """`count` spots or blinds' stripes of coloured light on the given room surfaces."""
    patterns = []
    for _ in range(count):
        surface = int(rng.choice(surfaces))
        length = room[2] if surface in (0, 1, _FLOOR) else room[0]
        patterns.append(LightPattern(
            surface, "spot" if rng.random() < 0.6 else "stripes",
            rng.uniform(0.0, length), rng.uniform(0.3, room[1] if surface != _FLOOR else room[0]),
            rng.uniform(0.3, 1.0), rng.uniform(0.0, np.pi),
            tuple(rng.uniform(0.2, 0.8) * np.array(_hsv(rng.random(), rng.uniform(0, 0.6), 1)))))
    return patterns


def _room_texture(rng):
    """Procedural floor and wall textures of a real-like room."""
    waves = rng.normal(size=(8, 3))
    waves *= (np.geomspace(3.0, 60.0, 8) / np.linalg.norm(waves, axis=1))[:, None]
    return Texture(("wood", "tile", "carpet")[rng.integers(3)],
                   ("plaster", "wallpaper", "panels")[rng.integers(3)],
                   rng.uniform(0.12, 0.5), waves, rng.uniform(0, 2 * np.pi, 8),
                   rng.uniform(0, 100))


def _sample_spec(rng, domain="virtual"):
    """A Regime-V scene: 1-4 primitives in flat colours, one white light, light patterns."""
    if domain != "virtual":
        raise ValueError(f"_sample_spec samples the virtual domain; got {domain!r}")
    # Room and camera sizes keep every visible point within MAX_DEPTH of the camera.
    room = (rng.uniform(3.5, 6.5), rng.uniform(2.4, 3.0), rng.uniform(4.0, 7.5))
    camera = Camera((rng.uniform(1.0, room[0] - 1.0), rng.uniform(1.1, 1.8),
                     rng.uniform(0.3, 0.9)),
                    yaw=rng.uniform(-0.35, 0.35), pitch=-rng.uniform(0.08, 0.35), roll=0.0)
    primitives = _place(rng, rng.integers(1, 5), room, camera, False)
    light = (rng.uniform(0.5, room[0] - 0.5), room[1] - 0.25, rng.uniform(0.5, room[2] - 0.5))
    wall = _hsv(rng.random(), rng.uniform(0.0, 0.5), rng.uniform(0.7, 0.95))
    floor_value = rng.uniform(0.4, 0.8)
    floor = _hsv(rng.random(), rng.uniform(0.1, 0.6), floor_value)
    colours = np.array([wall, wall, floor, (0.8, 0.8, 0.8), wall, wall])
    patterns = _light_patterns(rng, room, rng.integers(1, 4), [0, 1, 5, 5])
    return SceneSpec(room, camera, primitives, light, (1.0, 1.0, 1.0),
                     rng.uniform(0.2, 0.4), colours, patterns, None, shadows=True)


# --- ray casting: vectors are (3, N) arrays, one row per axis ------------------------------

def _dot(a, b):
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _col(v):
    return np.asarray(v, np.float64).reshape(3, 1)


def _camera_frame(camera):
    cy, sy, cp, sp = np.cos(camera.yaw), np.sin(camera.yaw), np.cos(camera.pitch), np.sin(
        camera.pitch)
    forward = np.array([sy * cp, sp, cy * cp])
    right = np.array([cy, 0.0, -sy])
    up = np.cross(forward, right)
    cr, sr = np.cos(camera.roll), np.sin(camera.roll)
    return forward, cr * right + sr * up, cr * up - sr * right


def _camera_rays(camera, height, width):
    """(3, H*W) ray directions whose component along the optical axis is 1, so t = z-depth."""
    f_px = 0.5 * width / np.tan(0.5 * camera.hfov)
    forward, right, up = (v[:, None, None] for v in _camera_frame(camera))
    cols = (np.arange(width) + 0.5 - 0.5 * width) / f_px
    rows = -(np.arange(height) + 0.5 - 0.5 * height) / f_px
    dirs = forward + cols[None, None, :] * right + rows[None, :, None] * up
    return dirs.reshape(3, -1), f_px


def _rotate_y(v, angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.stack([c * v[0] + s * v[2], v[1], c * v[2] - s * v[0]])


def _bounds(prim):
    """A bounding sphere (centre, radius) of a primitive."""
    if prim.kind == "sphere":
        return np.asarray(prim.center), prim.size[0]
    if prim.kind == "box":
        return np.asarray(prim.center), float(np.linalg.norm(prim.size))
    r, h = prim.size
    return np.asarray(prim.center) + (0.0, h / 2, 0.0), float(np.hypot(r, h / 2))


def _nearest(t0, ok0, t1, ok1):
    return np.minimum(np.where(ok0 & (t0 > _EPS), t0, np.inf),
                      np.where(ok1 & (t1 > _EPS), t1, np.inf))


def _safe(x):
    return np.where(np.abs(x) < 1e-12, 1e-12, x)


def _hit_sphere(o, d, prim):
    oc = o - _col(prim.center)
    a, b = _dot(d, d), _dot(oc, d)
    disc = b * b - a * (_dot(oc, oc) - prim.size[0] ** 2)
    ok = disc >= 0
    sq = np.sqrt(np.maximum(disc, 0.0))
    return _nearest((-b - sq) / a, ok, (-b + sq) / a, ok)


def _hit_box(o, d, prim):
    lo, ld = _rotate_y(o - _col(prim.center), -prim.yaw), _rotate_y(d, -prim.yaw)
    near, far = -np.inf, np.inf
    for axis, half in enumerate(prim.size):
        step = _safe(ld[axis])
        t1, t2 = (-half - lo[axis]) / step, (half - lo[axis]) / step
        near, far = np.maximum(near, np.minimum(t1, t2)), np.minimum(far, np.maximum(t1, t2))
    ok = far >= near
    return _nearest(near, ok, far, ok)


def _hit_round(o, d, prim):
    """Cylinder (radius r) or cone (apex on top) of height h standing on its base centre."""
    r, h = prim.size
    (qx, qy, qz), (dx, dy, dz) = o - _col(prim.center), d
    if prim.kind == "cone":  # x^2 + z^2 = k2 (h - y)^2 below the apex
        k2, ry = (r / h) ** 2, h - qy
        a = dx * dx + dz * dz - k2 * dy * dy
        b = qx * dx + qz * dz + k2 * ry * dy
        c = qx * qx + qz * qz - k2 * ry * ry
    else:
        a, b, c = dx * dx + dz * dz, qx * dx + qz * dz, qx * qx + qz * qz - r * r
    a = _safe(a)
    disc = b * b - a * c
    sq = np.sqrt(np.maximum(disc, 0.0))
    t0, t1 = (-b - sq) / a, (-b + sq) / a
    y0, y1 = qy + t0 * dy, qy + t1 * dy
    t = _nearest(t0, (disc >= 0) & (y0 >= 0) & (y0 <= h), t1, (disc >= 0) & (y1 >= 0) & (y1 <= h))
    dy = _safe(dy)
    for y_cap in ([0.0, h] if prim.kind == "cylinder" else [0.0]):
        tc = (y_cap - qy) / dy
        ok = (qx + tc * dx) ** 2 + (qz + tc * dz) ** 2 <= r * r
        t = np.minimum(t, np.where(ok & (tc > _EPS), tc, np.inf))
    return t


_HIT = {"sphere": _hit_sphere, "box": _hit_box, "cone": _hit_round, "cylinder": _hit_round}


def _normal(prim, p):
    """Unit outward normals (3, M) at surface points p (3, M)."""
    q = p - _col(prim.center)
    if prim.kind == "sphere":
        return q / prim.size[0]
    if prim.kind == "box":
        local = _rotate_y(q, -prim.yaw)
        axis = np.argmax(np.abs(local) / _col(prim.size), axis=0)
        n = np.zeros_like(local)
        cols = np.arange(local.shape[1])
        n[axis, cols] = np.sign(local[axis, cols])
        return _rotate_y(n, prim.yaw)
    r, h = prim.size
    if prim.kind == "cone":
        n = np.stack([q[0], (r / h) ** 2 * (h - q[1]), q[2]])
    else:
        n = np.stack([q[0], np.zeros_like(q[0]), q[2]])
        n[:, q[1] > h - 1e-4] = _col((0.0, 1.0, 0.0))
    n[:, q[1] < 1e-4] = _col((0.0, -1.0, 0.0))
    return n / np.maximum(np.sqrt(_dot(n, n)), 1e-12)


def _pixels_of(prim, camera, f_px, height, width):
    """Flat indices of a pixel rectangle that holds the primitive's image (all if unsure)."""
    centre, radius = _bounds(prim)
    rel = centre - np.asarray(camera.position)
    forward, right, up = _camera_frame(camera)
    x, y, z = rel @ right, rel @ up, rel @ forward
    if z - radius < 0.05:
        return np.arange(height * width)
    depths = (z - radius, z + radius)
    us = [f_px * (x + sx) / zz for sx in (-radius, radius) for zz in depths]
    vs = [f_px * (y + sy) / zz for sy in (-radius, radius) for zz in depths]
    c0 = int(np.clip(np.floor(min(us) + 0.5 * width) - 1, 0, width))
    c1 = int(np.clip(np.ceil(max(us) + 0.5 * width) + 1, 0, width))
    r0 = int(np.clip(np.floor(0.5 * height - max(vs)) - 1, 0, height))
    r1 = int(np.clip(np.ceil(0.5 * height - min(vs)) + 1, 0, height))
    return (np.arange(r0, r1)[:, None] * width + np.arange(c0, c1)[None, :]).ravel()


def _trace(spec, height, width):
    """Primary rays: z-depth, labels, hit points, normals, room surface ids, winner ids."""
    dirs, f_px = _camera_rays(spec.camera, height, width)
    origin = _col(spec.camera.position)
    exits = []
    for axis, size in enumerate(spec.room):
        with np.errstate(divide="ignore"):
            step = dirs[axis]
            exits.append(np.where(step > 0, (size - origin[axis]) / step,
                                  np.where(step < 0, -origin[axis] / step, np.inf)))
    depth = np.minimum(np.minimum(exits[0], exits[1]), exits[2])
    axis = np.where(exits[0] == depth, 0, np.where(exits[1] == depth, 1, 2))
    positive = np.choose(axis, dirs) > 0
    surface = 2 * axis + positive
    winner = np.zeros(len(depth), np.int64)
    for k, prim in enumerate(spec.primitives, start=1):
        idx = _pixels_of(prim, spec.camera, f_px, height, width)
        t = _HIT[prim.kind](origin, dirs[:, idx], prim)
        closer = t < depth[idx]
        depth[idx[closer]] = t[closer]
        winner[idx[closer]] = k
    points = origin + depth * dirs
    normals = np.zeros_like(points)
    normals[axis, np.arange(len(depth))] = np.where(positive, -1.0, 1.0)
    labels = np.where(surface == _FLOOR, _CLASS_ID["floor"], _CLASS_ID["wall"])
    for k, prim in enumerate(spec.primitives, start=1):
        mine = winner == k
        normals[:, mine] = _normal(prim, points[:, mine])
        labels[mine] = _CLASS_ID[prim.kind]
    return dict(depth=depth, labels=labels, points=points, normals=normals, dirs=dirs,
                surface=np.where(winner == 0, surface, -1), winner=winner, f_px=f_px)


# --- shading -------------------------------------------------------------------------------

def _hash(a, b, salt):
    """Per-cell pseudo-random values in [0, 1) for integer cell coordinates a, b."""
    return np.modf(np.abs(np.sin(a * 12.9898 + b * 78.233 + salt) * 43758.5453))[0]


def _wave_noise(texture, p):
    """Smooth noise in [-1, 1] at points (3, M): a sum of sines of several frequencies."""
    return np.sin(texture.waves @ p + texture.phases[:, None]).mean(0) * 2.0


def _surface_uv(surface, p):
    """Coordinates along a room surface: u horizontal, v up (floor: u = z, v = x)."""
    u = np.where((surface == 4) | (surface == 5), p[0], p[2])
    v = np.where(surface == _FLOOR, p[0], p[1])
    return u, v


def _texture(spec, geo):
    """Multiplicative albedo factor (N,) of the procedural textures of a real-like scene."""
    tex, p, surface, winner = spec.texture, geo["points"], geo["surface"], geo["winner"]
    factor = np.ones(p.shape[1])
    u, v = _surface_uv(surface, p)
    s = tex.scale
    floor = surface == _FLOOR
    fu, fv = u[floor], v[floor]
    if tex.floor == "wood":
        plank = np.floor(fu / (2 * s))
        offset = _hash(plank, 0.0, tex.salt)
        board = np.floor(fv / (6 * s) + offset)
        seam = (np.modf(fu / (2 * s))[0] < 0.04) | (np.modf(fv / (6 * s) + offset)[0] < 0.01)
        grain = 0.9 + 0.1 * np.sin(90.0 * fu + 3.0 * np.sin(5.0 * fv + plank))
        factor[floor] = (0.7 + 0.5 * _hash(plank, board, tex.salt)) * grain * np.where(seam, 0.5, 1)
    elif tex.floor == "tile":
        tu, tv = np.modf(fu / s)[0], np.modf(fv / s)[0]
        grout = np.minimum(np.minimum(tu, 1 - tu), np.minimum(tv, 1 - tv)) < 0.03
        tile = 0.85 + 0.3 * _hash(np.floor(fu / s), np.floor(fv / s), tex.salt)
        factor[floor] = np.where(grout, 0.45, tile)
    else:  # carpet: fine fibre noise over a soft mottle
        fibre = _hash(np.floor(fu / 0.004), np.floor(fv / 0.004), tex.salt)
        factor[floor] = (0.75 + 0.35 * fibre) * (1.0 + 0.1 * _wave_noise(tex, p[:, floor]))
    walls = (surface >= 0) & (surface != _FLOOR) & (surface != 3)
    wu, wv = u[walls], v[walls]
    if tex.wall == "plaster":
        factor[walls] = 1.0 + 0.08 * _wave_noise(tex, p[:, walls] * 2.0)
    elif tex.wall == "wallpaper":
        factor[walls] = np.where(np.sin(2 * np.pi * wu / (0.5 * s)) > 0, 1.0, 0.8)
    else:  # dark wooden panels below a dado rail
        factor[walls] = np.where(wv < 0.9, 0.45 + 0.05 * np.sin(40 * wu), 1.0)
    for k, prim in enumerate(spec.primitives, start=1):
        mine = winner == k
        q = p[:, mine] - _col(prim.center)
        if prim.texture == "noise":
            factor[mine] = 1.0 + 0.3 * _wave_noise(tex, q * 1.5)
        elif prim.texture == "checker":
            factor[mine] = np.where(np.floor(q / 0.1).sum(0) % 2 == 0, 1.0, 0.6)
        elif prim.texture == "stripes":
            factor[mine] = np.where(np.sin(q[1] * 40.0) > 0, 1.0, 0.65)
    return factor


def _patterns(spec, geo):
    """(3, N) extra irradiance of the light patterns on room surfaces."""
    extra = np.zeros_like(geo["points"])
    u, v = _surface_uv(geo["surface"], geo["points"])
    for pat in spec.patterns:
        mine = np.flatnonzero(geo["surface"] == pat.surface)
        du, dv = u[mine] - pat.u, v[mine] - pat.v
        if pat.kind == "spot":
            level = np.exp(-((du * du + dv * dv) / pat.scale ** 2) ** 2)
        else:  # blinds: sharp stripes inside a soft window
            across = du * np.cos(pat.angle) + dv * np.sin(pat.angle)
            window = np.exp(-((du * du + dv * dv) / (3 * pat.scale) ** 2) ** 2)
            level = np.clip(2.5 * np.sin(2 * np.pi * across / (0.4 * pat.scale)), 0, 1) * window
        extra[:, mine] += _col(pat.colour) * level
    return extra


def _in_shadow(spec, origins, rays, light_position):
    """True where the segment origin -> origin + ray (ending at the light) meets a primitive.

    Only points inside the cone that a primitive's bounding sphere casts from the light, and
    beyond the sphere's near side, are traced exactly.
    """
    blocked = np.zeros(origins.shape[1], bool)
    from_light = -rays
    dist2 = _dot(from_light, from_light)
    light = _col(light_position)
    for prim in spec.primitives:
        centre, radius = _bounds(prim)
        axis = _col(centre) - light
        reach = float(np.sqrt(_dot(axis, axis))[0])
        if reach <= radius:  # the light is inside the bounding sphere: trace everything
            near = np.flatnonzero(~blocked)
        else:
            along = _dot(axis / reach, from_light)
            cos2 = 1.0 - (radius / reach) ** 2
            near = np.flatnonzero((along > 0) & (along * along >= cos2 * dist2)
                                  & (dist2 >= (reach - radius) ** 2) & ~blocked)
        blocked[near] = _HIT[prim.kind](origins[:, near], rays[:, near], prim) < 1.0
    return blocked


def _direct(spec, geo, position):
    """Diffuse irradiance factor (N,) of one point light, with its shadows."""
    p, n = geo["points"], geo["normals"]
    to_light = _col(position) - p
    dist = np.sqrt(_dot(to_light, to_light))
    cos_light = np.maximum(_dot(n, to_light) / dist, 0.0)
    if spec.shadows:
        lit = np.flatnonzero(cos_light > 0)
        origins = p[:, lit] + 1e-3 * n[:, lit]
        blocked = _in_shadow(spec, origins, _col(position) - origins, position)
        cos_light[lit[blocked]] = 0.0
    return 1.4 * cos_light / (1.0 + (dist / 4.0) ** 2), to_light / dist, cos_light


def _shade(spec, geo):
    """Linear RGB (3, N) with Lambert + ambient light, patterns, shadows and highlights.

    Every light (the main one and `extra_lights`) adds its own diffuse term, shadows and
    highlight. Returns the image, the albedo luminance and the specular highlight (N,) too: the
    depth sensor model drops dark and glossy surfaces.
    """
    surface, winner, n = geo["surface"], geo["winner"], geo["normals"]
    colours = np.vstack([spec.surface_colours] + [prim.colour for prim in spec.primitives])
    albedo = colours.T[:, np.where(winner == 0, surface, 5 + winner)]
    if spec.texture is not None:
        albedo = albedo * _texture(spec, geo)
    lights = [(spec.light_position, spec.light_colour)] + list(spec.extra_lights)
    gloss = np.array([0.0] + [prim.gloss for prim in spec.primitives])[winner]
    irradiance = spec.ambient * _col(spec.light_colour) + _patterns(spec, geo)
    specular = np.zeros(n.shape[1])
    highlights = np.zeros_like(irradiance)
    for position, colour in lights:
        direct, to_light, cos_light = _direct(spec, geo, position)
        irradiance = irradiance + direct * _col(colour)
        shiny = np.flatnonzero((gloss > 0) & (cos_light > 0))
        if shiny.size:
            view = geo["dirs"][:, shiny]
            half = to_light[:, shiny] - view / np.sqrt(_dot(view, view))
            half /= np.sqrt(_dot(half, half))
            spec_k = gloss[shiny] * np.maximum(_dot(n[:, shiny], half), 0.0) ** 40
            specular[shiny] += spec_k
            highlights[:, shiny] += spec_k * _col(colour)
    rgb = albedo * irradiance + highlights
    return rgb, _dot(albedo, _col((0.2126, 0.7152, 0.0722))), specular


def _to_uint8(rgb_linear):
    return np.round(255.0 * np.clip(rgb_linear, 0.0, 1.0) ** (1 / 2.2)).astype(np.uint8)


# --- real-like camera and depth sensor -----------------------------------------------------

def _smooth_noise(rng, height, width, cells):
    """A smooth random field in [0, 1] on a grid of cells x cells, bicubic-ish upsampled."""
    grid = rng.random((cells + 1, cells + 1))
    y, x = np.linspace(0, cells, height, endpoint=False), np.linspace(0, cells, width,
                                                                      endpoint=False)
    iy, ix = y.astype(int), x.astype(int)
    fy, fx = y - iy, x - ix
    fy, fx = (fy * fy * (3 - 2 * fy))[:, None], (fx * fx * (3 - 2 * fx))[None, :]
    top = grid[iy][:, ix] * (1 - fx) + grid[iy][:, ix + 1] * fx
    bottom = grid[iy + 1][:, ix] * (1 - fx) + grid[iy + 1][:, ix + 1] * fx
    return top * (1 - fy) + bottom * fy


def _blur(image, sigma):
    """Separable Gaussian blur over the last two axes (H, W), edges replicated."""
    radius = max(1, int(np.ceil(2.5 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(image.dtype)
    for axis in (image.ndim - 2, image.ndim - 1):
        pad = [(0, 0)] * image.ndim
        pad[axis] = (radius, radius)
        padded = np.pad(image, pad, mode="edge")
        size = image.shape[axis]
        window = [slice(None)] * image.ndim
        out = np.zeros_like(image)
        for i, w in enumerate(taps):
            window[axis] = slice(i, i + size)
            out += w * padded[tuple(window)]
        image = out
    return image


def _camera_effects(rgb_linear, rng):
    """A cheap camera on a (3, H, W) image: blur, vignetting, exposure and colour cast, gamma,
    noise -> uint8 (3, H, W)."""
    _, height, width = rgb_linear.shape
    image = rgb_linear.astype(np.float32)
    sigma = rng.uniform(0.4, 1.2) * width / 256  # pixels of a 256-wide image
    if sigma > 0.25:
        image = _blur(image, sigma)
    y, x = np.ogrid[0:height, 0:width]
    r2 = ((x - width / 2) ** 2 + (y - height / 2) ** 2) / ((width / 2) ** 2 + (height / 2) ** 2)
    gain = (1.0 - rng.uniform(0.1, 0.5) * r2) * rng.uniform(0.75, 1.35)
    image = image * (gain * rng.uniform(0.8, 1.15, (3, 1, 1))).astype(np.float32)
    image = np.clip(image, 0.0, 1.0) ** (1 / 2.2)
    image = image + rng.uniform(0.008, 0.03) * rng.standard_normal(image.shape, np.float32)
    return np.round(255.0 * np.clip(image, 0.0, 1.0)).astype(np.uint8)


def _local_min_max(depth):
    """Minimum and maximum over each pixel's 3x3 neighbourhood."""
    height, width = depth.shape
    padded = np.pad(depth, 1, mode="edge")
    near, far = depth, depth
    for dy in range(3):
        for dx in range(3):
            shifted = padded[dy:dy + height, dx:dx + width]
            near, far = np.minimum(near, shifted), np.maximum(far, shifted)
    return near, far


def _sensor_depth(depth, geo, albedo_luminance, specular, rng):
    """A Kinect-v1-like depth sensor: metres, 0 where invalid.

    Axial noise grows with depth squared (Nguyen et al. 2012); flying pixels and holes at
    depth edges; projector shadows beside near objects; dropouts on dark, glossy and grazing
    surfaces, clumped into blobs; a range limit; sometimes a big invalid blob at the top;
    disparity quantised to 1/8 px of a 580 px, 7.5 cm baseline sensor, then to millimetres.
    """
    height, width = depth.shape
    noisy = depth + rng.normal(size=depth.shape) * rng.uniform(0.7, 1.5) * (
        0.0012 + 0.0019 * (depth - 0.4) ** 2)
    near, far = _local_min_max(depth)
    edge = far - near > 0.04 * near + 0.05
    draw = rng.random(depth.shape)
    fly = edge & (draw < 0.5)
    noisy[fly] = near[fly] + rng.random(fly.sum()) * (far[fly] - near[fly])
    invalid = edge & (draw > 0.75)
    # Projector shadow: a background pixel is hidden from the projector (to the right) by a
    # nearer surface s pixels to its right whose disparity exceeds the background's by > s.
    disparity = 0.075 * geo["f_px"] / depth
    for s in range(1, min(int(disparity.max() - disparity.min()), width // 4) + 1):
        invalid[:, :-s] |= disparity[:, s:] - disparity[:, :-s] > s
    dirs = geo["dirs"]
    cos_view = np.abs(_dot(geo["normals"], dirs)) / np.sqrt(_dot(dirs, dirs))
    risk = (np.clip((0.06 - albedo_luminance) / 0.06, 0, 1) + np.clip(specular * 3.0, 0, 1)
            + np.clip((0.2 - cos_view) / 0.2, 0, 1)).reshape(depth.shape)
    blobs = _smooth_noise(rng, height, width, int(rng.integers(6, 16)))
    invalid |= risk * (0.4 + blobs) > 0.6
    invalid |= rng.random(depth.shape) < rng.uniform(0.0005, 0.003)
    invalid |= (depth > rng.uniform(6.0, 9.5)) | (depth < 0.5)
    if rng.random() < 0.3:  # seed Figure 3: a large black region at the top
        y, x = np.mgrid[0:height, 0:width]
        shape = ((x - rng.uniform(0, width)) / (rng.uniform(0.2, 0.6) * width)) ** 2 + (
            y / (rng.uniform(0.15, 0.5) * height)) ** 2
        invalid |= shape + 0.8 * (_smooth_noise(rng, height, width, 5) - 0.5) < 1.0
    steps = 580.0 * 0.075 * 8.0
    quantised = steps / np.maximum(np.round(steps / np.maximum(noisy, 0.3)), 1.0)
    quantised = np.round(np.minimum(quantised, MAX_DEPTH) * 1000.0) / 1000.0
    return np.where(invalid, 0.0, quantised).astype(np.float32)


def _render(spec: SceneSpec, height: int, width: int, rng=None) -> dict:
    """Renders an explicit scene; with an rng, adds the real-like camera and sensor defects.

    Returns the dict of render_scene; without rng, sensor_depth equals depth.
    """
    geo = _trace(spec, height, width)
    rgb_linear, albedo_luminance, specular = _shade(spec, geo)
    depth = np.minimum(geo["depth"], MAX_DEPTH).reshape(height, width)
    rgb_linear = rgb_linear.reshape(3, height, width)
    if rng is None:
        rgb, sensor = _to_uint8(rgb_linear), depth
    else:
        rgb = _camera_effects(rgb_linear, rng)
        sensor = _sensor_depth(depth, geo, albedo_luminance, specular, rng)
    return {"rgb": np.ascontiguousarray(rgb.transpose(1, 2, 0)),
            "depth": depth.astype(np.float32), "sensor_depth": sensor.astype(np.float32),
            "labels": geo["labels"].reshape(height, width).astype(np.uint8)}
