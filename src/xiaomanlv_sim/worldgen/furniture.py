"""Builders for the recurring campus pieces: buildings with entrance ramps, trees, lamp posts,
benches, bollards, kerbs, walls and fences, parked cars, gates, raised crossings.

Every builder adds one top-level model (or primitives to a shared one) to a SiteLayout.
Furniture rows are filtered against the walkway corridors so that no piece ever stands in a
walkway (see :class:`Placer`).
"""

from __future__ import annotations

import math

import shapely
from shapely.geometry import LineString, Point
from shapely.geometry.base import BaseGeometry

from xiaomanlv_sim.worldgen.layout import (
    Model,
    SiteLayout,
    StopSpec,
    box,
    cylinder,
    prim_footprint,
    slope,
    sphere,
)

KERB_HEIGHT = 0.13  # [m] kerb stones along roads (above the robot's max_step of 0.12)
KERB_WIDTH = 0.15  # [m]
RAMP_RISE = 0.15  # [m] entrance landing height
RAMP_RUN = 1.5  # [m] horizontal length of each slope (5.7 deg)
CROSSING_RISE = KERB_HEIGHT  # [m] raised crossings are level with the kerb top
BUILDING = (0.86, 0.82, 0.74)
DORM = (0.92, 0.76, 0.62)
TRUNK = (0.4, 0.28, 0.18)
CROWN = (0.22, 0.5, 0.22)
GREY = (0.6, 0.6, 0.6)
DARK = (0.2, 0.2, 0.22)
CAR_COLOURS = ((0.8, 0.1, 0.1), (0.9, 0.9, 0.9), (0.1, 0.1, 0.1), (0.2, 0.3, 0.7), (0.6, 0.6, 0.6))


class Placer:
    """Keeps furniture out of the walkway corridors and off everything already placed."""

    def __init__(self, site: SiteLayout, margin: float = 0.3) -> None:
        corridors = [
            LineString([site.nodes[a], site.nodes[b]]).buffer(w / 2 + margin)
            for a, b, w in site.edges
        ]
        stops = [Point(s.pose[:2]).buffer(1.6) for s in site.stops]
        self.blocked: BaseGeometry = shapely.union_all(corridors + stops)
        existing = [
            prim_footprint(model, prim)[0].buffer(margin)
            for model in site.models
            for prim in model.prims
        ]
        self._existing = shapely.STRtree(existing)
        self._placed: list[BaseGeometry] = []

    def free(self, geometry: BaseGeometry) -> bool:
        """Whether ``geometry`` touches no corridor, stop and nothing placed so far."""
        if geometry.intersects(self.blocked):
            return False
        if len(self._existing.query(geometry, predicate="intersects")):
            return False
        return not any(geometry.intersects(g) for g in self._placed)

    def take(self, geometry: BaseGeometry) -> None:
        self._placed.append(geometry)


def building(
    site: SiteLayout,
    name: str,
    cx: float,
    cy: float,
    sx: float,
    sy: float,
    height: float,
    colour: tuple[float, float, float] = BUILDING,
) -> Model:
    model = site.model(name, "building", cx, cy)
    model.add(box("block", (sx, sy, height), 0.0, 0.0, colour=colour))
    model.add(box("roof_parapet", (sx + 0.6, sy + 0.6, 1.0), 0.0, 0.0, height + 0.5, colour=GREY))
    return model


def entrance(
    site: SiteLayout,
    building_name: str,
    label: str,
    door: tuple[float, float],
    facing: float,
    lane_node: str,
    stop_distance: float,
    width: float = 3.0,
) -> None:
    """A door on a facade with a landing + ramp in front, a stop on a spur from ``lane_node``.

    ``facing`` is the outward normal of the facade (yaw of the direction from the door out);
    the robot parks ``stop_distance`` from the door facing it.
    """
    dx, dy = math.cos(facing), math.sin(facing)
    ramp = site.model(f"{building_name}_{label}_ramp", "ramp", door[0], door[1], facing)
    landing = 2.0
    ramp.add(box("landing", (landing, width, RAMP_RISE), landing / 2, 0.0, colour=GREY))
    ramp.add(slope("slope", RAMP_RUN, RAMP_RISE, width, landing + RAMP_RUN, 0.0, math.pi))
    sx, sy = door[0] + dx * stop_distance, door[1] + dy * stop_distance
    stop_name = f"{building_name}_{label}"
    node = site.node(f"stop_{stop_name}", sx, sy)
    site.edge(lane_node, node, 3.0)
    yaw = math.atan2(-dy, -dx)
    site.stops.append(
        StopSpec(stop_name, (round(sx, 3), round(sy, 3), round(yaw, 6)), building_name, door)
    )
    site.entrances[stop_name] = door


def kerb_line(
    model: Model,
    name: str,
    a: tuple[float, float],
    b: tuple[float, float],
    gaps: tuple[tuple[float, float], ...] = (),
) -> None:
    """Kerb strips from a to b (world coordinates) leaving out the [s0, s1] distances in gaps."""
    length = math.dist(a, b)
    yaw = math.atan2(b[1] - a[1], b[0] - a[0])
    cuts = sorted(gaps)
    pieces, start = [], 0.0
    for s0, s1 in cuts:
        pieces.append((start, s0))
        start = s1
    pieces.append((start, length))
    for i, (s0, s1) in enumerate(pieces):
        if s1 - s0 < 0.2:
            continue
        mid = (s0 + s1) / 2
        x = a[0] + math.cos(yaw) * mid - model.x
        y = a[1] + math.sin(yaw) * mid - model.y
        model.add(
            box(f"{name}_{i}", (s1 - s0, KERB_WIDTH, KERB_HEIGHT), x, y, yaw=yaw, colour=GREY)
        )


def wall_line(
    model: Model,
    name: str,
    a: tuple[float, float],
    b: tuple[float, float],
    height: float,
    thickness: float,
    colour: tuple[float, float, float] = BUILDING,
) -> None:
    length = math.dist(a, b)
    yaw = math.atan2(b[1] - a[1], b[0] - a[0])
    x, y = (a[0] + b[0]) / 2 - model.x, (a[1] + b[1]) / 2 - model.y
    model.add(box(name, (length, thickness, height), x, y, yaw=yaw, colour=colour))


def raised_crossing(
    site: SiteLayout,
    name: str,
    centre: tuple[float, float],
    along: float,
    road_width: float,
    width: float,
) -> None:
    """A table across a road, level with the kerbs, with a slope down on each side.

    ``along`` is the yaw of the walking direction across the road.
    """
    model = site.model(name, "ramp", centre[0], centre[1], along)
    top = road_width + 2 * KERB_WIDTH
    model.add(box("table", (top, width, CROSSING_RISE), 0.0, 0.0, colour=GREY))
    model.add(slope("slope_in", RAMP_RUN, CROSSING_RISE, width, -top / 2 - RAMP_RUN, 0.0, 0.0))
    model.add(slope("slope_out", RAMP_RUN, CROSSING_RISE, width, top / 2 + RAMP_RUN, 0.0, math.pi))


def gate(
    site: SiteLayout, name: str, centre: tuple[float, float], yaw: float, opening: float
) -> None:
    """Two pillars and an overhead beam; ``yaw`` is the direction of the fence line."""
    model = site.model(name, "gate", centre[0], centre[1], yaw)
    half = opening / 2 + 0.4
    for side, s in (("left", -1), ("right", 1)):
        model.add(box(f"pillar_{side}", (0.8, 0.8, 4.0), s * half, 0.0, colour=DARK))
    model.add(box("beam", (opening + 1.6, 0.8, 0.8), 0.0, 0.0, 4.4, colour=DARK))


def tree_row(
    site: SiteLayout,
    placer: Placer,
    name: str,
    a: tuple[float, float],
    b: tuple[float, float],
    spacing: float,
    crown: float = 2.2,
) -> int:
    """Trees (trunk + crown) every ``spacing`` metres from a to b where the spot is free."""
    n = int(math.dist(a, b) // spacing)
    spots = []
    for i in range(n + 1):
        t = i / n if n else 0.0
        spots.append((a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t))
    return trees_at(site, placer, name, spots, crown, trunk=0.15, clearance=0.6, crown_base=2.4)


def trees_at(
    site: SiteLayout,
    placer: Placer,
    name: str,
    spots: list[tuple[float, float]],
    crown: float = 2.5,
    *,
    trunk: float = 0.2,
    clearance: float | None = None,
    crown_base: float = 2.5,
) -> int:
    """Trees at ``spots`` that are free: trunk radius ``trunk`` [m], 3 m tall; crown of radius
    ``crown`` [m] centred ``crown_base + crown`` above the ground; each takes a disc of
    ``clearance`` [m] (default 0.6 x crown) from the placer."""
    model = site.model(name, "tree", 0.0, 0.0)
    count = 0
    for x, y in spots:
        spot = Point(x, y).buffer(crown * 0.6 if clearance is None else clearance)
        if not placer.free(spot):
            continue
        placer.take(spot)
        model.add(cylinder(f"trunk_{count}", trunk, 3.0, x, y, colour=TRUNK))
        model.add(sphere(f"crown_{count}", crown, x, y, crown_base + crown, colour=CROWN))
        count += 1
    if not count:
        site.models.remove(model)
    return count


def lamp_row(
    site: SiteLayout,
    placer: Placer,
    name: str,
    a: tuple[float, float],
    b: tuple[float, float],
    spacing: float,
) -> int:
    model = site.model(name, "lamp_post", 0.0, 0.0)
    count = 0
    n = int(math.dist(a, b) // spacing)
    for i in range(n + 1):
        t = i / n if n else 0.0
        x, y = a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t
        spot = Point(x, y).buffer(0.4)
        if not placer.free(spot):
            continue
        placer.take(spot)
        model.add(cylinder(f"pole_{count}", 0.08, 5.0, x, y, colour=DARK))
        model.add(box(f"lamp_{count}", (0.5, 0.5, 0.3), x, y, 5.15, colour=(0.95, 0.95, 0.8)))
        count += 1
    if not count:
        site.models.remove(model)
    return count


def bench_row(
    site: SiteLayout,
    placer: Placer,
    name: str,
    a: tuple[float, float],
    b: tuple[float, float],
    spacing: float,
) -> int:
    model = site.model(name, "bench", 0.0, 0.0)
    yaw = math.atan2(b[1] - a[1], b[0] - a[0])
    count = 0
    n = int(math.dist(a, b) // spacing)
    for i in range(n + 1):
        t = i / n if n else 0.0
        x, y = a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t
        prim = box(f"bench_{count}", (1.8, 0.6, 0.45), x, y, yaw=yaw, colour=(0.55, 0.4, 0.25))
        spot = prim_footprint(model, prim)[0].buffer(0.2)
        if not placer.free(spot):
            continue
        placer.take(spot)
        model.add(prim)
        count += 1
    if not count:
        site.models.remove(model)
    return count


def bollards(site: SiteLayout, name: str, points: list[tuple[float, float]]) -> None:
    model = site.model(name, "bollard", 0.0, 0.0)
    for i, (x, y) in enumerate(points):
        model.add(cylinder(f"bollard_{i}", 0.1, 0.9, x, y, colour=DARK))


def parked_cars(
    site: SiteLayout,
    placer: Placer,
    name: str,
    a: tuple[float, float],
    b: tuple[float, float],
    spacing: float,
    yaw: float,
) -> int:
    """Cars (4.7 x 1.85 x 1.5 m bodies with a cabin) every ``spacing`` from a to b."""
    model = site.model(name, "car", 0.0, 0.0)
    count = 0
    n = int(math.dist(a, b) // spacing)
    for i in range(n + 1):
        t = i / n if n else 0.0
        x, y = a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t
        body = box(
            f"car_{count}_body",
            (4.7, 1.85, 0.9),
            x,
            y,
            0.55,
            yaw=yaw,
            colour=CAR_COLOURS[(i * 7 + len(name)) % len(CAR_COLOURS)],
        )
        spot = prim_footprint(model, body)[0].buffer(0.2)
        if not placer.free(spot):
            continue
        placer.take(spot)
        model.add(body)
        model.add(
            box(
                f"car_{count}_cabin",
                (2.6, 1.7, 0.55),
                x - 0.2 * math.cos(yaw),
                y - 0.2 * math.sin(yaw),
                1.275,
                yaw=yaw,
                colour=(0.25, 0.3, 0.35),
            )
        )
        count += 1
    if not count:
        site.models.remove(model)
    return count
