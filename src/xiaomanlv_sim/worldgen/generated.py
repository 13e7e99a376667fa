"""Generated campus sites: a random campus from a seed, so benches run on sites nobody tuned for.

``generate_site(seed, out_dir)`` writes ``<name>.sdf`` and ``<name>.site.yaml`` (name
``generated_<seed>``) into ``out_dir``; the simulator loads the world by path
(``Simulator.from_world_name(str(site.world))``, the sidecar is found next to it) and
``xiaomanlv_core.site.load_site`` reads the sidecar. The same seed (and size) gives the same
bytes on every machine: one ``numpy.random.Generator`` drives every choice, in a fixed order,
and every coordinate is rounded to 0.1 m before it is used.

Method: the grid pattern of procedural street layouts (Parish & Mueller, "Procedural Modeling of
Cities", SIGGRAPH 2001), cut down to a campus:

1. A ring walkway inside a perimeter fence (a gate with bollards on one side) and a jittered
   grid of walkway lines 40-60 m apart. One interior line (two on large sites) is a street
   instead: a 6-8 m road with kerbs above the robot's climbing limit, sidewalks on both sides
   and a raised crossing wherever a walkway line crosses it, as on the shipped university.
2. Every cell of the grid is a block: the station (building, loading and charging bays on
   spurs), buildings, a green, a plaza or a car park. Buildings are rectangles, L or U shapes
   composed of boxes, or round (cylinders), low (6-16 m) or tall (24-60 m; at least one of
   each) so GNSS multipath and sky blockage vary along the walkways. Each building has a door
   on the facade that faces a walkway line: an entrance landing and ramp
   (``furniture.entrance``) and a delivery stop on a spur from that line.
3. Plazas and greens carry free-standing ramps: a slope up to a landing (a dock) or a block
   tilted about its long axis. Their lip (the highest edge above the ground) is sometimes above
   the robot's ``max_step`` (from the robot description) and sometimes below: the steps a
   mapping build must find. Fountains, benches, trees, lamp posts and parked cars are placed
   with ``furniture.Placer``, which keeps every piece out of the walkway corridors and stops.
4. The mapping route is an Eulerian circuit of the eulerised grid (every walkway line at least
   once; the Chinese postman tour of Edmonds & Johnson 1973 via ``networkx.eulerize``) from the
   station's lane node, so it closes many loops; station -> circuit -> station. The circuit
   goes straight on where it can and never turns straight back (``_straight_circuit``): the
   route driver follows it with pure pursuit.

``SiteLayout.validate`` then checks the sidecar's promises (corridors clear at their width,
stop footprints clear, walkways connected, route on walkway edges) and raises ``LayoutError``
naming the piece. Frames: world ENU, metres, radians, as in docs/worlds.md.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

import networkx as nx
import numpy as np
import shapely
from shapely.geometry import box as rectangle
from shapely.geometry.base import BaseGeometry

from xiaomanlv_sim.worldgen import furniture as f
from xiaomanlv_sim.worldgen.layout import (
    LayoutError,
    Model,
    Prim,
    SiteLayout,
    box,
    cylinder,
    prim_footprint,
    slope,
)
from xiaomanlv_sim.worldgen.university import _line, _name
from xiaomanlv_sim.worldgen.writers import sidecar_yaml, world_sdf

__all__ = [
    "DEFAULT_SIZE",
    "SIZE_RANGE",
    "GeneratedSite",
    "build_site",
    "generate_site",
    "site_name",
]

DEFAULT_SIZE = 200.0  # [m] side of the square world
SIZE_RANGE = (120.0, 600.0)  # [m] sizes the grid rules below are made for
RING_INSET = 14.0  # [m] world edge to the ring walkway's centre line
FENCE_OUT = 7.0  # [m] ring centre line to the perimeter fence
RING_WIDTH = 4.0  # [m]
LINE_WIDTHS = (3.0, 4.0, 5.0, 6.0)  # [m] interior walkway lines
BLOCK_SPACING = (40.0, 60.0)  # [m] target distance between walkway lines
VERGE = 1.5  # [m] between a kerb and its sidewalk's corridor (lamps, bollards)
STATION_COLOUR = (0.3, 0.55, 0.85)
ROUND = 0.1  # [m] every coordinate is a multiple of this
MIN_GAP = 30.0  # [m] least distance between the centre lines around a block
MAX_SETBACK = 9.0  # [m] most room between a walkway's edge and its blocks' buildings
GRID_DRAWS = 50  # grids drawn before giving up (a handful is the most ever needed)
TALL_SHARE = 0.4  # share of buildings that are tall
BLOCK_KINDS = ("green", "plaza", "parking")  # the blocks that are not buildings ...
BLOCK_WEIGHTS = (0.45, 0.35, 0.2)  # ... and how often each


@dataclass(frozen=True)
class GeneratedSite:
    """What ``generate_site`` wrote: the world and its sidecar, side by side."""

    name: str  # site and world name
    seed: int
    size: float  # [m]
    world: Path  # the SDF world: Simulator.from_world_name(str(world)), assets.world_file
    site: Path  # the sidecar next to it: load_site(site), assets.site_file(world)
    route_length: float  # [m] of the mapping route
    stops: int  # delivery stops


def site_name(seed: int, size: float = DEFAULT_SIZE) -> str:
    """``generated_<seed>``, with ``_<size>m`` when the size is not the default."""
    return f"generated_{seed}" if size == DEFAULT_SIZE else f"generated_{seed}_{size:g}m"


def generate_site(
    seed: int, out_dir: Path, *, size: float = DEFAULT_SIZE, max_step: float | None = None
) -> GeneratedSite:
    """Write the campus of ``seed`` as ``<name>.sdf`` and ``<name>.site.yaml`` in ``out_dir``.

    Args:
        seed: any integer >= 0; the same seed and size give byte-identical files.
        out_dir: created if missing; existing files of the same name are replaced.
        size: [m] side of the square world (120-600).
        max_step: [m] the robot's climbing limit that ramp lips are drawn around (default: the
            robot description's ``max_step``).

    Raises:
        ValueError: a negative seed or a size outside 120-600 m (the message names it).
        LayoutError: the generated layout breaks one of its promises (a generator bug: the
            message names the piece and the seed).
    """
    size = float(size)
    layout = build_site(seed, size=size, max_step=max_step)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    world = out_dir / f"{layout.name}.sdf"
    sidecar = out_dir / f"{layout.name}.site.yaml"
    call = f"xiaomanlv_sim.worldgen.generated.generate_site({seed}, size={size:g})"
    world.write_text(world_sdf(layout, generated_by=call), encoding="utf-8")
    sidecar.write_text(sidecar_yaml(layout), encoding="utf-8")
    return GeneratedSite(
        name=layout.name,
        seed=seed,
        size=size,
        world=world,
        site=sidecar,
        route_length=round(layout.route_length(), 1),
        stops=len(layout.stops),
    )


def build_site(
    seed: int, *, size: float = DEFAULT_SIZE, max_step: float | None = None
) -> SiteLayout:
    """The campus of ``seed`` in memory, validated (see :func:`generate_site`)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
    if not SIZE_RANGE[0] <= size <= SIZE_RANGE[1]:
        raise ValueError(f"size: expected {SIZE_RANGE[0]:g}-{SIZE_RANGE[1]:g} m, got {size!r}")
    if max_step is None:
        from xiaomanlv_core.robot import load_robot, model_file

        max_step = load_robot(model_file()).body.max_step
    if not 0.0 < max_step < 1.0:
        raise ValueError(f"max_step: expected 0-1 m, got {max_step!r}")
    generator = _Generator(int(seed), float(size), max_step)
    try:
        return generator.build()
    except LayoutError as error:
        raise LayoutError(f"seed {seed}, size {size:g} m: {error}") from error


def _r(value: float) -> float:
    """``value`` on the 0.1 m grid (and never -0.0, which would name a node ``m0``)."""
    return round(round(value / ROUND) * ROUND, 1) + 0.0


@dataclass
class _Line:
    """A straight walkway from ring to ring: ``axis`` "x" is the line x = pos (north-south)."""

    axis: str
    pos: float  # [m]
    width: float  # [m]
    ring: bool = False
    extra: set[float] = field(default_factory=set)  # positions along it of spur nodes

    def point(self, along: float) -> tuple[float, float]:
        return (self.pos, along) if self.axis == "x" else (along, self.pos)


@dataclass(frozen=True)
class _Street:
    axis: str  # the across axis: "y" = the street runs east-west at y = centre
    centre: float  # [m]
    road: float  # [m] kerb to kerb
    offset: float  # [m] centre line of the street to its sidewalks' centre lines


@dataclass(frozen=True)
class _Facade:
    """A side of a rectangle seen from outside: u runs along it, v into the rectangle."""

    name: str  # south, north, west, east: the way the facade faces
    origin: tuple[float, float]
    u: tuple[float, float]
    v: tuple[float, float]
    length: float  # [m] along u
    depth: float  # [m] of the rectangle along v
    line: _Line | None  # the walkway line it faces (None: it faces another building)
    setback: float  # [m] from that line's centre to the facade

    def world(self, u: float, v: float) -> tuple[float, float]:
        return (
            _r(self.origin[0] + u * self.u[0] + v * self.v[0]),
            _r(self.origin[1] + u * self.u[1] + v * self.v[1]),
        )

    @property
    def yaw(self) -> float:
        """Yaw of the frame (u, v) = model x, y."""
        return math.atan2(self.u[1], self.u[0])

    @property
    def facing(self) -> float:
        """Yaw of the outward normal (from the facade to its walkway)."""
        return math.atan2(-self.v[1], -self.v[0])

    def along(self, u: float) -> float:
        """Where the point at ``u`` on the facade projects on the facade's walkway line."""
        x, y = self.world(u, 0.0)
        assert self.line is not None
        return y if self.line.axis == "x" else x


def _facades(
    rect: tuple[float, float, float, float],
    lines: dict[str, _Line | None],
    setbacks: dict[str, float],
) -> dict[str, _Facade]:
    x0, y0, x1, y1 = rect
    w, h = x1 - x0, y1 - y0
    frames = {
        "south": ((x0, y0), (1.0, 0.0), (0.0, 1.0), w, h),
        "north": ((x1, y1), (-1.0, 0.0), (0.0, -1.0), w, h),
        "west": ((x0, y1), (0.0, -1.0), (1.0, 0.0), h, w),
        "east": ((x1, y0), (0.0, 1.0), (-1.0, 0.0), h, w),
    }
    return {
        side: _Facade(side, o, u, v, length, depth, lines[side], setbacks.get(side, 0.0))
        for side, (o, u, v, length, depth) in frames.items()
    }


@dataclass
class _Block:
    rect: tuple[float, float, float, float]  # interior (x0, y0, x1, y1): buildable [m]
    lines: dict[str, _Line]  # the four walkway lines around it
    setbacks: dict[str, float]  # [m] line centre to the interior edge
    kind: str = ""

    @property
    def size(self) -> tuple[float, float]:
        x0, y0, x1, y1 = self.rect
        return x1 - x0, y1 - y0

    def facades(self) -> dict[str, _Facade]:
        return _facades(self.rect, dict(self.lines), self.setbacks)


class _Generator:
    def __init__(self, seed: int, size: float, max_step: float) -> None:
        self.seed = seed
        self.size = size
        self.max_step = max_step
        self.rng = np.random.default_rng(seed)
        self.ring = _r(size / 2 - RING_INSET)  # [m] ring walkway half side
        self.xs: list[_Line] = []  # lines x = const
        self.ys: list[_Line] = []  # lines y = const
        self.streets: list[_Street] = []
        self.blocks: list[_Block] = []
        self.counter = itertools.count(1)
        self.car_rows: list[tuple[_Facade, float, str]] = []  # (facade, v [m], name)
        self.gate_at: tuple[str, int, float] = ("y", -1, 0.0)  # (ring axis, side, position)
        half = size / 2
        self.site = SiteLayout(
            name=site_name(seed, size),
            title=f"Generated campus (seed {seed}, {size:g} m)",
            latitude=round(float(self.rng.uniform(30.15, 30.40)), 4),
            longitude=round(float(self.rng.uniform(120.0, 120.45)), 4),
            elevation=_r(float(self.rng.uniform(3.0, 15.0))),
            extent=(-half, -half, half, half),
        )

    # -- random helpers ---------------------------------------------------------------------
    def uniform(self, lo: float, hi: float, step: float = ROUND) -> float:
        """A draw from [lo, hi] rounded to a multiple of ``step`` [m]."""
        value = float(self.rng.uniform(lo, hi))
        return round(round(value / step) * step, 3) + 0.0

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def choice(self, options: list[str] | tuple[str, ...]) -> str:
        return str(options[int(self.rng.integers(len(options)))])

    # -- the whole site ---------------------------------------------------------------------
    def build(self) -> SiteLayout:
        for _ in range(GRID_DRAWS):
            self.xs, self.ys, self.streets = [], [], []
            self._grid()
            if self._grid_fits():
                break
        else:
            raise LayoutError(f"no grid with blocks of {MIN_GAP:g} m in {GRID_DRAWS} draws")
        self._blocks()
        self._station()
        for block in self.blocks:
            if block.kind == "buildings":
                self._buildings(block)
        self._gate()
        self._walkways()
        self._streets()
        self._fence()
        placer = f.Placer(self.site)
        self._street_cars(placer)
        for street in self.streets:  # nothing else stands on a road
            placer.take(self._road(street))
        for block in self.blocks:
            if block.kind in ("plaza", "green"):
                self._ramps(block, placer, 2 if block.kind == "plaza" else 1)
            if block.kind == "plaza":
                self._fountain(block, placer)
        self._line_furniture(placer)
        for block in self.blocks:
            self._block_furniture(block, placer)
        for facade, v, name in self.car_rows:
            a, b = facade.world(3.0, v), facade.world(facade.length - 3.0, v)
            yaw = math.atan2(facade.v[1], facade.v[0])
            f.parked_cars(self.site, placer, name, a, b, 2.8, yaw)
        self._route()
        self.site.validate()
        return self.site

    # -- grid of walkway lines --------------------------------------------------------------
    def _positions(self) -> list[float]:
        r = self.ring
        n = max(2, round(2 * r / float(self.rng.uniform(*BLOCK_SPACING))))
        spacing = 2 * r / n
        jitter = self.rng.uniform(-0.12, 0.12, n - 1) * spacing  # [m] of each interior line
        return [-r, *(_r(-r + (i + 1) * spacing + float(j)) for i, j in enumerate(jitter)), r]

    def _grid(self) -> None:
        street_axis = self.choice(("x", "y"))  # the across axis of the street(s)
        for axis in ("x", "y"):
            positions = self._positions()
            inner = list(range(1, len(positions) - 1))
            streets: set[int] = set()
            if axis == street_axis:
                streets.add(inner[int(self.rng.integers(len(inner)))])
                spare = [i for i in inner if all(abs(i - s) > 1 for s in streets)]
                if spare and self.chance(0.5):
                    streets.add(spare[int(self.rng.integers(len(spare)))])
            lines = self.xs if axis == "x" else self.ys
            for i, pos in enumerate(positions):
                if i in streets:
                    road = self.uniform(6.0, 8.0, 1.0)
                    walk = self.uniform(3.0, 4.0, 0.5)
                    offset = road / 2 + f.KERB_WIDTH + VERGE + walk / 2
                    self.streets.append(_Street(axis, pos, road, offset))
                    lines.append(_Line(axis, _r(pos - offset), walk))
                    lines.append(_Line(axis, _r(pos + offset), walk))
                else:
                    ring = i in (0, len(positions) - 1)
                    width = LINE_WIDTHS[int(self.rng.integers(len(LINE_WIDTHS)))]
                    lines.append(_Line(axis, pos, RING_WIDTH if ring else width, ring=ring))

    def _grid_fits(self) -> bool:
        """Every block at least MIN_GAP between its lines, and one on the ring that holds the
        station (24 x 12 m inside the largest setbacks)."""

        def gaps(lines: list[_Line]) -> list[tuple[float, float, bool]]:
            """(centre to centre, room inside the setbacks, on the ring) of each block."""
            return [
                (
                    b.pos - a.pos,
                    b.pos - a.pos - (a.width + b.width) / 2 - 2 * MAX_SETBACK,
                    a.ring or b.ring,
                )
                for a, b in itertools.pairwise(lines)
                if not self._is_street(a, b)
            ]

        x_gaps, y_gaps = gaps(self.xs), gaps(self.ys)
        if min(g[0] for g in x_gaps + y_gaps) < MIN_GAP:
            return False
        return any(
            (x_ring or y_ring) and max(w, h) >= 24.0 and min(w, h) >= 12.0
            for (_, w, x_ring), (_, h, y_ring) in itertools.product(x_gaps, y_gaps)
        )

    def _is_street(self, a: _Line, b: _Line) -> bool:
        return any(s.axis == a.axis and a.pos < s.centre < b.pos for s in self.streets)

    def _blocks(self) -> None:
        for west, east in itertools.pairwise(self.xs):
            if self._is_street(west, east):
                continue
            for south, north in itertools.pairwise(self.ys):
                if self._is_street(south, north):
                    continue
                lines = {"west": west, "east": east, "south": south, "north": north}
                setbacks = {
                    side: _r(line.width / 2 + float(self.rng.uniform(6.5, MAX_SETBACK)))
                    for side, line in lines.items()
                }
                rect = (
                    _r(west.pos + setbacks["west"]),
                    _r(south.pos + setbacks["south"]),
                    _r(east.pos - setbacks["east"]),
                    _r(north.pos - setbacks["north"]),
                )
                self.blocks.append(_Block(rect, lines, setbacks))
        # the station in a block on the ring big enough for it; buildings in about half the
        # others, at least two; then greens, plazas and car parks
        on_ring = [
            b for b in self.blocks
            if any(line.ring for line in b.lines.values()) and max(b.size) >= 24.0
            and min(b.size) >= 12.0
        ]  # fmt: skip
        if not on_ring:
            raise LayoutError("no block on the ring is large enough for the station")
        station = on_ring[int(self.rng.integers(len(on_ring)))]
        station.kind = "station"
        others = [b for b in self.blocks if b is not station]
        order = [int(i) for i in self.rng.permutation(len(others))]
        n_buildings = max(2, round(0.65 * len(others)))
        for rank, index in enumerate(order):
            block = others[index]
            if rank < n_buildings and min(block.size) >= 10.0:
                block.kind = "buildings"
            elif rank == n_buildings:
                block.kind = "plaza"  # at least one plaza: ramps to map
            else:
                block.kind = BLOCK_KINDS[int(self.rng.choice(3, p=BLOCK_WEIGHTS))]
            if min(block.size) < 10.0 and block.kind != "buildings":
                block.kind = "green"  # too narrow for anything but trees

    # -- spurs from the lines ---------------------------------------------------------------
    def _crossings(self, line: _Line) -> list[float]:
        other = self.ys if line.axis == "x" else self.xs
        return [o.pos for o in other]

    def _spur_along(self, facade: _Facade, lo: float, hi: float) -> float:
        """A position u in [lo, hi] on ``facade`` whose spur node keeps 4 m from the others on
        its line (the best of a few draws)."""
        assert facade.line is not None
        taken = [*self._crossings(facade.line), *facade.line.extra]
        best, best_gap = lo, -1.0
        for _ in range(12):
            u = self.uniform(lo, hi)
            gap = min((abs(facade.along(u) - t) for t in taken), default=math.inf)
            if gap >= 4.0:
                return u
            if gap > best_gap:
                best, best_gap = u, gap
        return best

    def _spur_node(self, facade: _Facade, u: float) -> str:
        """The node on the facade's walkway line opposite ``u`` (created and registered)."""
        assert facade.line is not None
        x, y = facade.world(u, -facade.setback)
        facade.line.extra.add(y if facade.line.axis == "x" else x)
        return self.site.node(_name(x, y), x, y)

    # -- the station ------------------------------------------------------------------------
    def _station(self) -> None:
        block = next(b for b in self.blocks if b.kind == "station")
        sides = [fa for fa in block.facades().values() if fa.length >= 24.0 and fa.depth >= 12.0]
        facade = sides[int(self.rng.integers(len(sides)))]
        width, depth = self.uniform(14.0, 20.0, 1.0), self.uniform(8.0, 10.0, 1.0)
        uc = self.uniform(width / 2 + 2.0, facade.length - width / 2 - 2.0)
        cx, cy = facade.world(uc, depth / 2)
        along_x = abs(facade.u[0]) > 0.5
        sx, sy = (width, depth) if along_x else (depth, width)
        site = self.site
        site.station_name = "station"
        f.building(site, "station", cx, cy, sx, sy, self.uniform(4.0, 6.0, 0.5), STATION_COLOUR)
        yaw = round(math.atan2(facade.v[1], facade.v[0]), 6)  # facing the station
        for label, du in (("loading", -4.0), ("charging", 4.0)):
            lane = self._spur_node(facade, uc + du)
            x, y = facade.world(uc + du, -5.0)
            node = site.node(f"station_{label}", x, y)
            site.edge(lane, node, 3.0)
            setattr(site, label, (x, y, yaw))
        site.station_node = "station_loading"
        site.entrances["station"] = facade.world(uc, 0.0)
        # a car park behind the station when the block is deep enough
        far = facade.depth - 3.0
        v = depth + 6.0
        rows = 0
        while v <= far and rows < 2:
            self.car_rows.append((facade, v, f"station_cars_{rows}"))
            v += 6.0
            rows += 1

    # -- buildings --------------------------------------------------------------------------
    def _buildings(self, block: _Block) -> None:
        x0, y0, x1, y1 = block.rect
        w, h = block.size
        parts: list[tuple[tuple[float, float, float, float], set[str]]]
        if max(w, h) >= 36.0 and self.chance(0.7):
            gap = self.uniform(6.0, 12.0, 0.5)
            if w >= h:
                mid = _r(x0 + (w - gap) * float(self.rng.uniform(0.4, 0.6)))
                parts = [
                    ((x0, y0, mid, y1), {"west", "south", "north"}),
                    ((_r(mid + gap), y0, x1, y1), {"east", "south", "north"}),
                ]
            else:
                mid = _r(y0 + (h - gap) * float(self.rng.uniform(0.4, 0.6)))
                parts = [
                    ((x0, y0, x1, mid), {"south", "west", "east"}),
                    ((x0, _r(mid + gap), x1, y1), {"north", "west", "east"}),
                ]
        else:
            parts = [(block.rect, {"south", "north", "west", "east"})]
        for rect, open_sides in parts:
            lines = {s: (block.lines[s] if s in open_sides else None) for s in block.lines}
            facades = _facades(rect, lines, block.setbacks)
            choices = [fa for s, fa in facades.items() if s in open_sides and fa.length >= 8.0]
            if not choices or min(rect[2] - rect[0], rect[3] - rect[1]) < 8.0:
                continue
            self._building(choices[int(self.rng.integers(len(choices)))])

    def _building(self, facade: _Facade) -> None:
        """One building in the rectangle behind ``facade``, its door on that facade."""
        built = sum(m.category == "building" for m in self.site.models) - 1  # not the station
        tall = built == 0 if built < 2 else self.chance(TALL_SHARE)  # one tall, one low, ...
        height = self.uniform(24.0, 60.0, 0.5) if tall else self.uniform(6.0, 16.0, 0.5)
        length = max(8.0, self.uniform(0.65, 1.0) * facade.length)
        length = min(_r(length), facade.length)
        depth = min(_r(max(8.0, self.uniform(0.6, 1.0) * facade.depth)), facade.depth, 60.0)
        u0 = self.uniform(0.0, facade.length - length) if facade.length > length else 0.0
        shape = self.choice(("rect", "rect", "rect", "l", "u", "round"))
        if shape in ("l", "u") and (length < 20.0 or depth < 16.0):
            shape = "rect"
        if shape == "round" and min(length, depth) > 40.0:
            shape = "rect"
        kind = "rotunda" if shape == "round" else ("tower" if tall else "hall")
        name = f"{kind}_{next(self.counter)}"
        site = self.site
        model = site.model(name, "building", *facade.origin, facade.yaw)
        colour = f.DORM if self.chance(0.4) else f.BUILDING
        if shape == "round":
            radius = _r(min(length, depth) / 2)
            uc = _r(u0 + length / 2)
            model.add(cylinder("block", radius, height, uc, radius, colour=colour))
            model.add(cylinder("roof_parapet", radius + 0.3, 1.0, uc, radius, height + 0.5, f.GREY))
            door_u = uc
        else:
            front = depth if shape == "rect" else _r(depth * float(self.rng.uniform(0.35, 0.55)))
            boxes = [("block", u0, length, 0.0, front, height)]
            wing = _r(length * float(self.rng.uniform(0.25, 0.4)))
            wing_height = max(6.0, self.uniform(0.6, 1.0, 0.05) * height)
            wing_height = _r(round(wing_height * 2) / 2)
            ends = {"l": [self.choice(("start", "end"))], "u": ["start", "end"]}.get(shape, [])
            for end in ends:
                start = u0 if end == "start" else _r(u0 + length - wing)
                boxes.append((f"wing_{end}", start, wing, front, depth - front, wing_height))
            for label, us, lu, vs, lv, hz in boxes:
                uc, vc = us + lu / 2, vs + lv / 2
                model.add(box(label, (lu, lv, hz), uc, vc, colour=colour))
                parapet = (lu + 0.6, lv + 0.6, 1.0)
                model.add(box(f"{label}_parapet", parapet, uc, vc, hz + 0.5, colour=f.GREY))
            door_u = self._spur_along(facade, u0 + 2.5, u0 + length - 2.5)
        lane = self._spur_node(facade, door_u)
        assert facade.line is not None
        reach = facade.setback - facade.line.width / 2 - 1.0  # [m] facade to the corridor edge
        stop = self.uniform(5.0, max(5.0, reach))
        door = facade.world(door_u, 0.0)
        f.entrance(site, name, facade.name, door, facade.facing, lane, stop)

    # -- walkways, streets, fence, gate -----------------------------------------------------
    def _gate(self) -> None:
        """A pedestrian gate through the fence on one side, bollards on its path."""
        r = self.ring
        side = self.choice(("south", "north", "west", "east"))
        axis, sign = {"south": ("y", -1), "north": ("y", 1), "west": ("x", -1), "east": ("x", 1)}[
            side
        ]
        lines = self.ys if axis == "y" else self.xs
        ring = lines[0] if sign < 0 else lines[-1]
        crossings = self._crossings(ring)
        spurs = sorted(ring.extra)
        roads = [
            (s.centre - s.offset - 8.0, s.centre + s.offset + 8.0)
            for s in self.streets
            if s.axis != axis
        ]
        candidates = [
            _r(float(p))
            for p in np.arange(-r + 10.0, r - 10.0, 2.0)
            if min(abs(p - c) for c in crossings) >= 10.0
            and min((abs(p - s) for s in spurs), default=math.inf) >= 6.0
            and not any(lo <= p <= hi for lo, hi in roads)
        ]
        if not candidates:
            raise LayoutError(f"no room for the gate on the {side} side")
        along = candidates[int(self.rng.integers(len(candidates)))]
        ring.extra.add(along)

        def at(out: float) -> tuple[float, float]:
            across = sign * (r + out)
            return (_r(along), _r(across)) if axis == "y" else (_r(across), _r(along))

        names = [self.site.node(_name(*at(o)), *at(o)) for o in (0.0, 2.0, 6.0, FENCE_OUT + 4.0)]
        self.site.edge(names[0], names[1], 4.0)
        self.site.edge(names[1], names[2], 1.6)  # between the bollards
        self.site.edge(names[2], names[3], 4.0)
        self.site.entrances[f"gate_{side}"] = at(FENCE_OUT + 4.0)
        posts = []
        for lateral in (-4.3, -2.6, -0.9, 0.9, 2.6, 4.3):
            x, y = at(4.0)
            posts.append((x + lateral, y) if axis == "y" else (x, y + lateral))
        f.bollards(self.site, "gate_bollards", posts)
        centre = at(FENCE_OUT)
        f.gate(self.site, "gate", centre, 0.0 if axis == "y" else math.pi / 2, 10.0 - 1.6)
        self.gate_at = (axis, sign, along)

    def _walkways(self) -> None:
        for line in [*self.xs, *self.ys]:
            along = sorted({*self._crossings(line), *line.extra})
            _line(self.site, [line.point(a) for a in along], line.width)

    def _road(self, street: _Street) -> BaseGeometry:
        half, c = self.size / 2, street.centre
        k = street.road / 2 + f.KERB_WIDTH
        if street.axis == "y":
            return rectangle(-half, c - k, half, c + k)
        return rectangle(c - k, -half, c + k, half)

    def _streets(self) -> None:
        half = self.size / 2
        for k, street in enumerate(self.streets):
            crossing = self.xs if street.axis == "y" else self.ys
            kerbs = self.site.model(f"street_{k}_kerbs", "kerb")
            edge = street.road / 2 + f.KERB_WIDTH / 2
            gaps = tuple(
                (line.pos + half - (line.width + 2.0) / 2, line.pos + half + (line.width + 2.0) / 2)
                for line in crossing
            )
            for label, sign in (("a", -1.0), ("b", 1.0)):
                across = street.centre + sign * edge
                if street.axis == "y":
                    a, b = (-half, across), (half, across)
                else:
                    a, b = (across, -half), (across, half)
                f.kerb_line(kerbs, label, a, b, gaps)
            walking = math.pi / 2 if street.axis == "y" else 0.0
            for i, line in enumerate(crossing):
                centre = line.point(street.centre)
                f.raised_crossing(
                    self.site, f"street_{k}_crossing_{i}", centre, walking, street.road,
                    line.width + 2.0,
                )  # fmt: skip
            # bollards on the verges either side of each crossing
            posts = []
            for line in crossing:
                for sign, lateral in itertools.product((-1.0, 1.0), (-1.0, 1.0)):
                    across = street.centre + sign * (street.road / 2 + f.KERB_WIDTH + VERGE / 2)
                    at = line.pos + lateral * ((line.width + 2.0) / 2 + 0.4)
                    posts.append((at, across) if street.axis == "y" else (across, at))
            f.bollards(self.site, f"street_{k}_bollards", posts)

    def _fence(self) -> None:
        """The perimeter fence at the ring + 7 m, open for the roads and the gate."""
        fence = self.site.model("perimeter_fence", "fence")
        far = self.ring + FENCE_OUT
        gate_axis, gate_sign, gate_at = self.gate_at
        for side, axis, sign in (
            ("south", "y", -1), ("north", "y", 1), ("west", "x", -1), ("east", "x", 1)
        ):  # fmt: skip
            cuts = [
                (s.centre - s.road / 2 - 1.0, s.centre + s.road / 2 + 1.0)
                for s in self.streets
                if s.axis != axis
            ]
            if (gate_axis, gate_sign) == (axis, sign):
                cuts.append((gate_at - 5.0, gate_at + 5.0))
            start = -far
            pieces = []
            for lo, hi in sorted(cuts):
                pieces.append((start, lo))
                start = hi
            pieces.append((start, far))
            for i, (lo, hi) in enumerate(pieces):
                if hi - lo < 0.5:
                    continue
                if axis == "y":
                    a, b = (lo, sign * far), (hi, sign * far)
                else:
                    a, b = (sign * far, lo), (sign * far, hi)
                f.wall_line(fence, f"{side}_{i}", a, b, 2.2, 0.08, f.DARK)

    # -- what stands in the blocks ----------------------------------------------------------
    def _place(self, placer: f.Placer, model: Model, margin: float = 0.3) -> bool:
        """Keep ``model`` if its footprint (plus ``margin``) is free; else drop it."""
        shape = shapely.union_all([prim_footprint(model, p)[0] for p in model.prims])
        spot = shape.buffer(margin)
        if placer.free(spot):
            placer.take(spot)
            return True
        self.site.models.remove(model)
        return False

    def _ramps(self, block: _Block, placer: f.Placer, count: int) -> None:
        """Free-standing ramps near the walkways: a dock (slope up to a landing) or a block
        tilted about its long axis; the lip is above ``max_step`` about half the time."""
        if min(block.size) < 8.0:
            return
        facades = list(block.facades().values())
        placed = 0
        for _ in range(12 * count):
            if placed == count:
                return
            facade = facades[int(self.rng.integers(len(facades)))]
            high = self.chance(0.5)
            lip = (
                self.uniform(self.max_step + 0.05, self.max_step + 0.35, 0.01)
                if high
                else self.uniform(0.04, max(0.05, self.max_step - 0.03), 0.01)
            )
            index = next(self.counter)
            width = self.uniform(1.5, 3.0, 0.5)
            if self.chance(0.5):
                run, landing = self.uniform(2.0, 4.0, 0.5), self.uniform(1.5, 3.0, 0.5)
                length = run + landing
                u = self.uniform(1.0, max(1.0, facade.length - length - 1.0))
                v = self.uniform(1.0 + width / 2, min(6.0, facade.depth / 2))
                x, y = facade.world(u, v)
                model = self.site.model(f"dock_{index}", "ramp", x, y, facade.yaw)
                model.add(slope("slope", run, lip, width, 0.0, 0.0, 0.0, thickness=lip + 0.1))
                model.add(box("landing", (landing, width, lip), run + landing / 2, 0.0))
            else:
                length = self.uniform(3.0, 5.0, 0.5)
                roll = math.asin(min(lip / width, 0.5))
                thick = round(width * math.sin(roll) + 0.1, 3)
                zc = width / 2 * math.sin(roll) - thick / 2 * math.cos(roll)
                u = self.uniform(1.0, max(1.0, facade.length - length - 1.0))
                v = self.uniform(1.0 + width / 2, min(6.0, facade.depth / 2))
                x, y = facade.world(u, v)
                model = self.site.model(f"tilted_ramp_{index}", "ramp", x, y, facade.yaw)
                pose = (length / 2, 0.0, zc, roll, 0.0, 0.0)
                model.add(Prim("plate", "box", (length, width, thick), pose, f.GREY))
            if self._place(placer, model):
                placed += 1

    def _street_cars(self, placer: f.Placer) -> None:
        """Cars parked along one side of each road, clear of the crossings."""
        half = self.size / 2
        for k, street in enumerate(self.streets):
            across = street.centre + (1.0 if self.chance(0.5) else -1.0) * (street.road / 2 - 1.5)
            if street.axis == "y":
                a, b, yaw = (-half + 3.0, across), (half - 3.0, across), 0.0
            else:
                a, b, yaw = (across, -half + 3.0), (across, half - 3.0), math.pi / 2
            f.parked_cars(self.site, placer, f"street_{k}_cars", a, b, 6.0, yaw)

    def _fountain(self, block: _Block, placer: f.Placer) -> None:
        w, h = block.size
        if min(w, h) < 16.0:
            return
        x0, y0, _, _ = block.rect
        radius = self.uniform(2.5, min(4.5, min(w, h) / 4), 0.5)
        model = self.site.model(f"fountain_{next(self.counter)}", "wall", x0 + w / 2, y0 + h / 2)
        model.add(cylinder("basin", radius, 0.6, 0.0, 0.0, colour=(0.7, 0.7, 0.75)))
        model.add(cylinder("column", 0.5, 3.0, 0.0, 0.0, colour=(0.7, 0.7, 0.75)))
        self._place(placer, model)

    def _line_furniture(self, placer: f.Placer) -> None:
        """Lamp posts along every walkway line on one side, trees on the other (most lines)."""
        r, site = self.ring, self.site
        for i, line in enumerate([*self.xs, *self.ys]):
            sides = (-1.0, 1.0) if self.chance(0.5) else (1.0, -1.0)

            def ends(offset: float, line: _Line = line) -> tuple[tuple[float, float], ...]:
                if line.axis == "x":
                    return (line.pos + offset, -r), (line.pos + offset, r)
                return (-r, line.pos + offset), (r, line.pos + offset)

            a, b = ends(sides[0] * (line.width / 2 + 0.9))
            f.lamp_row(site, placer, f"lamps_{i}", a, b, self.uniform(22.0, 32.0, 1.0))
            if self.chance(0.75):
                a, b = ends(sides[1] * (line.width / 2 + 1.8))
                f.tree_row(site, placer, f"trees_{i}", a, b, self.uniform(9.0, 15.0, 1.0))

    def _block_furniture(self, block: _Block, placer: f.Placer) -> None:
        x0, y0, x1, y1 = block.rect
        w, h = block.size
        label = f"{round(x0 + w / 2)}_{round(y0 + h / 2)}".replace("-", "m")
        if block.kind == "green":
            count = int(w * h / float(self.rng.uniform(60.0, 120.0)))
            spots = [
                (_r(float(self.rng.uniform(x0, x1))), _r(float(self.rng.uniform(y0, y1))))
                for _ in range(count)
            ]
            f.trees_at(self.site, placer, f"trees_green_{label}", spots)
        if block.kind in ("green", "plaza"):
            facade = list(block.facades().values())[int(self.rng.integers(4))]
            a, b = facade.world(1.0, 1.0), facade.world(facade.length - 1.0, 1.0)
            f.bench_row(self.site, placer, f"benches_{label}", a, b, self.uniform(8.0, 14.0, 1.0))
        if block.kind == "parking":
            facade = max(block.facades().values(), key=lambda fa: (fa.length, fa.name))
            v = 3.0
            while v <= facade.depth - 3.0:
                self.car_rows.append((facade, v, f"cars_{label}_{int(v)}"))
                v += 6.0

    # -- the mapping route ------------------------------------------------------------------
    def _route(self) -> None:
        """Station -> an Eulerian circuit of the walkway lines (every line driven) -> station."""
        site = self.site
        graph = nx.Graph()
        for line in [*self.xs, *self.ys]:
            along = sorted({*self._crossings(line), *line.extra})
            for a, b in itertools.pairwise(along):
                pa, pb = line.point(a), line.point(b)
                graph.add_edge(_name(*pa), _name(*pb), weight=math.dist(pa, pb))
        lane = next(
            a if b == "station_loading" else b
            for a, b, _ in site.edges
            if "station_loading" in (a, b)
        )
        circuit = _straight_circuit(nx.eulerize(graph), lane, site.nodes)
        site.route = ["station_loading", *circuit, "station_loading"]


def _turn(a: tuple[float, float], b: tuple[float, float], c: tuple[float, float]) -> float:
    """[rad] 0 straight on at b, pi straight back."""
    h0 = math.atan2(b[1] - a[1], b[0] - a[0])
    h1 = math.atan2(c[1] - b[1], c[0] - b[0])
    return abs(math.remainder(h1 - h0, math.tau))


def _straight_circuit(
    multi: nx.MultiGraph, source: str, xy: dict[str, tuple[float, float]]
) -> list[str]:
    """A closed walk from ``source`` over every edge of the (Eulerian) ``multi`` once, that
    never turns straight back: the pure-pursuit route driver cannot follow a U-turn.

    Hierholzer's algorithm (1873) taking at each node the unused edge that turns least, then a
    repair: where the walk still reverses (u, v, u), the closed sub-walk between this visit of
    v and another one is walked backwards, which keeps every edge and changes the turn at v.

    Raises:
        LayoutError: a U-turn that no reordering removes (a dead end in the grid).
    """
    left: dict[str, list[str]] = {n: [] for n in multi.nodes}
    for a, b in multi.edges():
        left[a].append(b)
        left[b].append(a)
    stack, walk = [source], []
    while stack:
        v = stack[-1]
        if left[v]:
            back = xy[stack[-2]] if len(stack) > 1 else None
            w = min(
                left[v],
                key=lambda n: (_turn(back, xy[v], xy[n]) if back else 0.0, n),
            )
            left[v].remove(w)
            left[w].remove(v)
            stack.append(w)
        else:
            walk.append(stack.pop())
    walk.reverse()
    for _ in range(4 * len(walk)):
        reversal = next((i for i in range(1, len(walk) - 1) if walk[i - 1] == walk[i + 1]), None)
        if reversal is None:
            return walk
        v = walk[reversal]
        others = [j for j in range(1, len(walk) - 1) if walk[j] == v and j != reversal]
        fixed = False
        for j in others:
            lo, hi = sorted((reversal, j))
            candidate = walk[: lo + 1] + walk[lo + 1 : hi][::-1] + walk[hi:]
            if sum(candidate[i - 1] == candidate[i + 1] for i in range(1, len(walk) - 1)) < sum(
                walk[i - 1] == walk[i + 1] for i in range(1, len(walk) - 1)
            ):
                walk, fixed = candidate, True
                break
        if not fixed:
            break
    bad = [walk[i] for i in range(1, len(walk) - 1) if walk[i - 1] == walk[i + 1]]
    if bad:
        raise LayoutError(f"mapping route turns straight back at {bad[0]} {xy[bad[0]]}")
    return walk
