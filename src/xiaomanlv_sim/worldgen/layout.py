"""Site layout: static models made of primitives, walkways, stops, station, mapping route.

A :class:`SiteLayout` is what a site script (``university.py``, ``residential.py``) builds; the
writers turn it into an SDF world and a site sidecar. Before anything is written,
:meth:`SiteLayout.validate` checks the promises the sidecar makes, with shapely footprints of
every primitive that reaches into the robot's height band: walkway corridors (edge width) and
parked-robot footprints at the stops are clear of obstacles, the walkway graph is connected
(networkx), the mapping route follows walkway edges, starts and ends at the station.

Frames: world ENU, metres, radians; a model's pose is (x, y, yaw) on the ground, a primitive's
pose (x, y, z, roll, pitch, yaw) is in its model's frame (SDF extrinsic X-Y-Z rotations).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Literal

import networkx as nx
import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry

from xiaomanlv_core.geometry import rpy_matrix

TRAVERSABLE = frozenset({"ground", "field", "ramp"})  # surfaces the robot drives on
ROBOT_LENGTH = 1.8  # [m] footprint used to check stops (models/xiaomanlv/model.sdf)
ROBOT_WIDTH = 1.0  # [m]
BAND = (0.05, 2.0)  # [m] heights at which geometry blocks the robot and pedestrians

Kind = Literal["box", "cylinder", "sphere"]


class LayoutError(ValueError):
    """A generated site breaks one of its own promises (blocked walkway, unreachable stop...)."""


@dataclass(frozen=True)
class Prim:
    """One collision (and matching visual) of a model."""

    name: str
    kind: Kind
    size: tuple[float, ...]  # box (x, y, z); cylinder (radius, length); sphere (radius,)
    pose: tuple[float, float, float, float, float, float]  # in the model frame
    colour: tuple[float, float, float] = (0.7, 0.7, 0.7)


@dataclass
class Model:
    name: str
    category: str
    x: float
    y: float
    yaw: float = 0.0
    prims: list[Prim] = field(default_factory=list)

    def add(self, prim: Prim) -> None:
        self.prims.append(prim)

    def world_pose(self, prim: Prim) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """(R, t) world-from-primitive."""
        r_model = rpy_matrix(0.0, 0.0, self.yaw)
        t = np.array([self.x, self.y, 0.0]) + r_model @ np.array(prim.pose[:3])
        return r_model @ rpy_matrix(*prim.pose[3:]), t


def prim_footprint(model: Model, prim: Prim) -> tuple[BaseGeometry, float, float]:
    """Ground footprint (shapely) and z range [m] of a primitive in the world frame."""
    r, t = model.world_pose(prim)
    if prim.kind == "box":
        half = np.array(prim.size) / 2
        corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
        points = (corners * half) @ r.T + t
        hull = shapely.MultiPoint([tuple(p) for p in points[:, :2]]).convex_hull
        return hull, float(points[:, 2].min()), float(points[:, 2].max())
    if prim.kind == "cylinder":
        radius, length = prim.size
        axis = r[:, 2]
        if abs(axis[2]) < 0.999:
            raise LayoutError(f"{model.name}::{prim.name}: only upright cylinders are supported")
        return Point(t[0], t[1]).buffer(radius, 32), t[2] - length / 2, t[2] + length / 2
    (radius,) = prim.size
    return Point(t[0], t[1]).buffer(radius, 32), t[2] - radius, t[2] + radius


@dataclass(frozen=True)
class StopSpec:
    name: str
    pose: tuple[float, float, float]  # (x, y, yaw) where the robot parks
    building: str
    entrance: tuple[float, float]


@dataclass
class SiteLayout:
    name: str
    title: str
    latitude: float  # [deg]
    longitude: float  # [deg]
    elevation: float  # [m]
    extent: tuple[float, float, float, float]  # (xmin, ymin, xmax, ymax) of the ground plane
    models: list[Model] = field(default_factory=list)
    nodes: dict[str, tuple[float, float]] = field(default_factory=dict)
    edges: list[tuple[str, str, float]] = field(default_factory=list)
    stops: list[StopSpec] = field(default_factory=list)
    entrances: dict[str, tuple[float, float]] = field(default_factory=dict)
    station_name: str = "station"
    loading: tuple[float, float, float] = (0.0, 0.0, 0.0)
    charging: tuple[float, float, float] = (0.0, 0.0, 0.0)
    station_node: str = ""
    route: list[str] = field(default_factory=list)  # mapping route as walkway node names

    # -- building -------------------------------------------------------------------------
    def model(
        self, name: str, category: str, x: float = 0.0, y: float = 0.0, yaw: float = 0.0
    ) -> Model:
        if any(m.name == name for m in self.models):
            raise LayoutError(f"{self.name}: duplicate model name {name}")
        model = Model(name, category, x, y, yaw)
        self.models.append(model)
        return model

    def node(self, name: str, x: float, y: float) -> str:
        if name in self.nodes and self.nodes[name] != (x, y):
            raise LayoutError(f"{self.name}: node {name} redefined")
        self.nodes[name] = (round(x, 3), round(y, 3))
        return name

    def edge(self, a: str, b: str, width: float) -> None:
        self.edges.append((a, b, width))

    def chain(self, names: list[str], width: float) -> None:
        for a, b in itertools.pairwise(names):
            self.edge(a, b, width)

    # -- derived ---------------------------------------------------------------------------
    def route_waypoints(self) -> list[tuple[float, float]]:
        return [self.nodes[n] for n in self.route]

    def route_length(self) -> float:
        points = self.route_waypoints()
        return float(sum(math.dist(a, b) for a, b in itertools.pairwise(points)))

    def obstacles(self) -> list[tuple[str, BaseGeometry]]:
        """Footprints of the primitives that block the robot: in the height band, not a surface."""
        found = []
        for model in self.models:
            if model.category in TRAVERSABLE:
                continue
            for prim in model.prims:
                footprint, z0, z1 = prim_footprint(model, prim)
                if z1 > BAND[0] and z0 < BAND[1]:
                    found.append((f"{model.name}::{prim.name}", footprint))
        return found

    def surfaces(self) -> list[tuple[str, BaseGeometry]]:
        """Footprints of the ramps (not allowed under a parked robot at a stop)."""
        return [
            (f"{m.name}::{p.name}", prim_footprint(m, p)[0])
            for m in self.models
            if m.category == "ramp"
            for p in m.prims
        ]

    def counts(self) -> dict[str, int]:
        return {"models": len(self.models), "shapes": sum(len(m.prims) for m in self.models)}

    # -- checks ----------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise LayoutError naming the first broken promise."""
        obstacles = self.obstacles()
        tree = shapely.STRtree([g for _, g in obstacles])
        for a, b, width in self.edges:
            for n in (a, b):
                if n not in self.nodes:
                    raise LayoutError(f"{self.name}: edge {a}-{b} names unknown node {n}")
            corridor = LineString([self.nodes[a], self.nodes[b]]).buffer(
                max(width / 2 - 0.01, ROBOT_WIDTH / 2), cap_style="flat"
            )
            hits = tree.query(corridor, predicate="intersects")
            if len(hits):
                names = ", ".join(obstacles[int(i)][0] for i in hits[:4])
                raise LayoutError(
                    f"{self.name}: walkway {a}-{b} (width {width}) blocked by {names}"
                )
        graph = nx.Graph()
        graph.add_nodes_from(self.nodes)
        graph.add_edges_from((a, b) for a, b, _ in self.edges)
        if not nx.is_connected(graph):
            parts = sorted(nx.connected_components(graph), key=len)
            raise LayoutError(
                f"{self.name}: walkways not connected; smallest part {sorted(parts[0])}"
            )
        blocking = obstacles + self.surfaces()
        tree_all = shapely.STRtree([g for _, g in blocking])
        poses = [(s.name, s.pose) for s in self.stops]
        poses += [("station.loading", self.loading), ("station.charging", self.charging)]
        for name, (x, y, yaw) in poses:
            footprint = robot_footprint(x, y, yaw)
            hits = tree_all.query(footprint, predicate="intersects")
            if len(hits):
                names = ", ".join(blocking[int(i)][0] for i in hits[:4])
                raise LayoutError(f"{self.name}: {name} footprint overlaps {names}")
        for stop in self.stops:
            if not any(math.dist(stop.pose[:2], self.nodes[n]) < 0.01 for n in graph.nodes):
                raise LayoutError(f"{self.name}: stop {stop.name} is not on a walkway node")
        pairs = {frozenset((a, b)) for a, b, _ in self.edges}
        for a, b in zip(self.route, self.route[1:], strict=False):
            if frozenset((a, b)) not in pairs:
                raise LayoutError(f"{self.name}: mapping route step {a}->{b} is not a walkway edge")
        if (
            not self.route
            or self.route[0] != self.station_node
            or self.route[-1] != self.station_node
        ):
            raise LayoutError(f"{self.name}: mapping route must start and end at the station node")


def robot_footprint(x: float, y: float, yaw: float) -> Polygon:
    """The parked robot's rectangle (base_link at the body centre) in the world frame."""
    c, s = math.cos(yaw), math.sin(yaw)
    hl, hw = ROBOT_LENGTH / 2, ROBOT_WIDTH / 2
    corners = [(hl, hw), (-hl, hw), (-hl, -hw), (hl, -hw)]
    return Polygon([(x + c * u - s * v, y + s * u + c * v) for u, v in corners])


def box(
    name: str,
    size: tuple[float, float, float],
    x: float,
    y: float,
    z: float | None = None,
    yaw: float = 0.0,
    colour: tuple[float, float, float] = (0.7, 0.7, 0.7),
) -> Prim:
    """A box standing on the ground (z = its centre; default half its height)."""
    zc = size[2] / 2 if z is None else z
    return Prim(name, "box", size, (x, y, zc, 0.0, 0.0, yaw), colour)


def cylinder(
    name: str,
    radius: float,
    length: float,
    x: float,
    y: float,
    z: float | None = None,
    colour: tuple[float, float, float] = (0.5, 0.5, 0.5),
) -> Prim:
    zc = length / 2 if z is None else z
    return Prim(name, "cylinder", (radius, length), (x, y, zc, 0.0, 0.0, 0.0), colour)


def sphere(
    name: str,
    radius: float,
    x: float,
    y: float,
    z: float,
    colour: tuple[float, float, float] = (0.2, 0.5, 0.2),
) -> Prim:
    return Prim(name, "sphere", (radius,), (x, y, z, 0.0, 0.0, 0.0), colour)


def slope(
    name: str,
    run: float,
    rise: float,
    width: float,
    x0: float,
    y0: float,
    yaw: float,
    thickness: float = 0.1,
    colour: tuple[float, float, float] = (0.6, 0.6, 0.6),
) -> Prim:
    """A sloped box whose top surface rises from z=0 at (x0, y0) to z=rise after ``run`` along yaw.

    The box is pitched by atan(rise/run) and sunk by its thickness, so its upper face is the
    ramp surface; the part below z=0 is hidden by the ground.
    """
    theta = math.atan2(rise, run)
    length = math.hypot(run, rise)
    along = run / 2 + thickness / 2 * math.sin(theta)
    zc = rise / 2 - thickness / 2 * math.cos(theta)
    x = x0 + along * math.cos(yaw)
    y = y0 + along * math.sin(yaw)
    return Prim(name, "box", (length, width, thickness), (x, y, zc, 0.0, -theta, yaw), colour)
