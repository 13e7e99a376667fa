"""Site sidecar geometry checks: does what a sidecar declares hold in its world?

`load_site` (xiaomanlv_core.site) checks a sidecar's schema on its own; `check_site` checks it
against the world it belongs to and the robot that will drive it, with shapely footprints of
the world's static obstacles and a networkx graph of the walkways:

- **walkways**: every edge's corridor (its centre line buffered by width/2, flat ends) is
  clear of every static obstacle that rises above the robot's climbing limit (`max_step`) and
  below `headroom` (buildings, walls, fences, kerbs, trees, cars, bollards...; ground, field
  and ramp are surfaces the robot drives on); an edge narrower than the robot is a warning
  (people can use it, the robot cannot); two distinct nodes at the same place are an error,
  two edges crossing away from a node a warning (the graph cannot turn there);
- **stops and station**: each pose lies on a walkway (within `stop_reach` of a corridor), the
  parked robot's rectangle there touches no obstacle, and the walkways the robot can drive
  (clear and at least as wide as it) connect every stop to the station; the error names the
  blocked or narrow edges on the shortest walkway path. A stop should face its door and be
  within `max_entrance_walk` of it (warnings);
- **entrances**: a stop's entrance lies on its building's outline (within
  `facade_tolerance`), the building being a model of the world; every named entrance is
  outside obstacles; an `entrances` entry named after a stop is that stop's door;
- **mapping route**: every segment runs inside the walkway corridors and along edges the
  robot can drive; the route starts and ends at the station's loading pose and closes a loop
  (warnings: the mapping drive and its loop closure expect both);
- **pairing**: the sidecar names the world that sits beside it (``<name>.sdf`` next to
  ``<name>.site.yaml``, how the simulator pairs them) and has the world's name.

Each finding is a `SiteProblem` naming the element (``walkways.edges[3] (a - b)``,
``stops[2] (dorm_3_south)``, ``entrances.gate_south``, ``mapping_route.waypoints[4]-[5]``), what is
wrong, where (world frame, metres) and whether it is an error or a warning. Frames: world ENU,
metres, radians. Reference: the same promises the world generator keeps
(`xiaomanlv_sim.worldgen.layout.SiteLayout.validate`), stated for sidecars written by hand.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Literal

import networkx as nx
import shapely
from scipy.spatial import cKDTree
from shapely.geometry import LineString, Point, Polygon
from shapely.geometry.base import BaseGeometry
from shapely.ops import nearest_points

from xiaomanlv_core.config import param, validate_fields
from xiaomanlv_core.robot import RobotSpec
from xiaomanlv_core.site import NODE_TOLERANCE, Site
from xiaomanlv_core.types import Pose2D
from xiaomanlv_sim.footprint import shape_footprint
from xiaomanlv_sim.world import World

Severity = Literal["error", "warning"]

DRIVABLE = frozenset({"ground", "field", "ramp"})  # surfaces the robot drives on (docs/worlds.md)


@dataclass(frozen=True)
class SiteProblem:
    """One finding of `check_site`: which element, what is wrong, where, how bad."""

    severity: Severity
    element: str  # the sidecar element, e.g. "walkways.edges[3] (w_a - w_b)"
    message: str  # what is wrong, with the numbers that show it
    where: tuple[float, float] | None = None  # [m] world frame

    def __str__(self) -> str:
        at = f" at ({self.where[0]:.2f}, {self.where[1]:.2f})" if self.where is not None else ""
        return f"{self.severity}: {self.element}: {self.message}{at}"


@dataclass(frozen=True)
class SiteCheckConfig:
    """Tolerances of the site checks (defaults only here)."""

    headroom: float = param(
        2.0, low=0.5, high=10.0, unit="m", description="obstacles below this height block"
    )  # [m] people and the robot pass under tree crowns and lamp heads above it
    clearance_tolerance: float = param(
        0.01, low=0.0, high=0.5, unit="m", description="a wall flush with a corridor is clear"
    )  # [m]
    stop_reach: float = param(
        0.5, low=0.0, high=10.0, unit="m", description="a pose this far off a corridor is on it"
    )  # [m]
    facade_tolerance: float = param(
        0.5, low=0.0, high=5.0, unit="m", description="an entrance this close is on the facade"
    )  # [m]
    max_entrance_walk: float = param(
        20.0, low=0.0, high=500.0, unit="m", description="a stop farther from its door: warning"
    )  # [m]
    max_facing_error: float = param(
        math.radians(45.0), low=0.0, high=math.pi, unit="rad", description="stop yaw to door"
    )  # [rad]


@dataclass(frozen=True)
class _Obstacle:
    name: str  # the shape's scoped SDF name
    category: str
    polygon: Polygon  # [m] in the slab max_step..headroom


class _Checker:
    """One run of the checks over one site; collects problems in order."""

    def __init__(self, world: World, site: Site, robot: RobotSpec, cfg: SiteCheckConfig) -> None:
        self.world, self.site, self.robot, self.cfg = world, site, robot, cfg
        self.problems: list[SiteProblem] = []
        self.z_min, self.z_max = robot.body.max_step, cfg.headroom
        self.obstacles = [
            _Obstacle(shape.name, shape.category, poly)
            for shape in world.shapes
            if shape.category not in DRIVABLE
            and (poly := shape_footprint(shape, self.z_min, self.z_max)) is not None
        ]
        self.tree = shapely.STRtree([o.polygon for o in self.obstacles])
        nodes = site.walkways.nodes
        self.lines = [LineString([nodes[a], nodes[b]]) for a, b, _ in site.walkways.edges]
        self.unusable: dict[int, str] = {}  # edge index -> why the robot cannot drive it

    def add(
        self, severity: Severity, element: str, message: str, where: BaseGeometry | None = None
    ) -> None:
        xy = None
        if where is not None and not where.is_empty:
            pt = where if isinstance(where, Point) else where.representative_point()
            xy = (round(float(pt.x), 3), round(float(pt.y), 3))
        self.problems.append(SiteProblem(severity, element, message, xy))

    def edge_label(self, i: int) -> str:
        a, b, _ = self.site.walkways.edges[i]
        return f"walkways.edges[{i}] ({a} - {b})"

    # -- walkways -------------------------------------------------------------------------
    def walkways(self) -> None:
        nodes = self.site.walkways.nodes
        tol = self.cfg.clearance_tolerance
        names = list(nodes)
        pairs = cKDTree([nodes[n] for n in names]).query_pairs(2 * NODE_TOLERANCE)
        for i, j in sorted(pairs):
            first, second = sorted((i, j))
            self.add(
                "error",
                f"walkways.nodes.{names[second]}",
                f"at the same place as node {names[first]} "
                f"({math.dist(nodes[names[first]], nodes[names[second]]):.3f} m apart): "
                "the graph holds two places there and a route waypoint cannot tell them apart",
                Point(nodes[names[second]]),
            )
        robot_width = self.robot.body.width
        for i, ((_, _, width), line) in enumerate(
            zip(self.site.walkways.edges, self.lines, strict=True)
        ):
            if width < robot_width:
                self.unusable[i] = f"narrower than the robot ({width:g} m)"
                self.add(
                    "warning",
                    self.edge_label(i),
                    f"width {width:g} m is narrower than the robot ({robot_width:g} m): "
                    "people can use it, the robot cannot",
                    line.interpolate(0.5, normalized=True),
                )
            if line.length < NODE_TOLERANCE:
                continue
            corridor = line.buffer(max(width / 2 - tol, 1e-3), cap_style="flat")
            hits = sorted(
                (int(k) for k in self.tree.query(corridor, predicate="intersects")),
                key=lambda k: line.project(self.obstacles[k].polygon.centroid),
            )
            if not hits:
                continue
            self.unusable[i] = "blocked"
            first = self.obstacles[hits[0]]
            named = ", ".join(
                f"{self.obstacles[k].name} ({self.obstacles[k].category or 'no category'}, "
                f"{line.distance(self.obstacles[k].polygon):.2f} m from the centre line)"
                for k in hits[:3]
            )
            more = f" and {len(hits) - 3} more" if len(hits) > 3 else ""
            self.add(
                "error",
                self.edge_label(i),
                f"not clear at its width {width:g} m (half width {width / 2:g} m): "
                f"blocked by {named}{more}",
                corridor.intersection(first.polygon),
            )
        self.crossings()

    def crossings(self) -> None:
        edges = self.site.walkways.edges
        tree = shapely.STRtree(self.lines)
        for i, line in enumerate(self.lines):
            for j in (int(k) for k in tree.query(line, predicate="intersects")):
                if j <= i or set(edges[i][:2]) & set(edges[j][:2]):
                    continue
                meet = line.intersection(self.lines[j])
                ends = shapely.MultiPoint(
                    [*line.coords, *self.lines[j].coords]
                )  # a crossing at a node of either edge is a T-junction drawn without its node
                if meet.is_empty or meet.distance(ends) < NODE_TOLERANCE:
                    continue
                a, b, _ = edges[j]
                self.add(
                    "warning",
                    self.edge_label(i),
                    f"crosses walkways.edges[{j}] ({a} - {b}) away from any node: "
                    "the walkway graph cannot turn there",
                    meet,
                )

    # -- stops and the station --------------------------------------------------------------
    def attached(self, x: float, y: float) -> list[int]:
        """Edges whose corridor (plus stop_reach) holds the point (x, y) [m]."""
        pt = Point(x, y)
        return [
            i
            for i, ((_, _, width), line) in enumerate(
                zip(self.site.walkways.edges, self.lines, strict=True)
            )
            if line.distance(pt) <= width / 2 + self.cfg.stop_reach
        ]

    def off_walkway(self, element: str, pose: Pose2D) -> None:
        pt = Point(pose.x, pose.y)
        dist = [
            line.distance(pt) - w / 2
            for (_, _, w), line in zip(self.site.walkways.edges, self.lines, strict=True)
        ]
        k = min(range(len(dist)), key=dist.__getitem__)
        self.add(
            "error",
            element,
            f"not on a walkway: {dist[k]:.2f} m beyond the edge of the nearest one, "
            f"{self.edge_label(k)} (allowed {self.cfg.stop_reach:g} m)",
            pt,
        )

    def parked(self, element: str, pose: Pose2D) -> None:
        body = self.robot.body
        c, s = math.cos(pose.yaw), math.sin(pose.yaw)
        hl, hw = body.length / 2, body.width / 2
        rect = Polygon(
            [
                (pose.x + c * u - s * v, pose.y + s * u + c * v)
                for u, v in ((hl, hw), (-hl, hw), (-hl, -hw), (hl, -hw))
            ]
        )
        for k in (int(k) for k in self.tree.query(rect, predicate="intersects")):
            ob = self.obstacles[k]
            self.add(
                "error",
                element,
                f"the parked robot ({body.length:g} x {body.width:g} m) overlaps {ob.name} "
                f"({ob.category or 'no category'})",
                rect.intersection(ob.polygon),
            )

    def stops_and_station(self) -> None:
        site = self.site
        if not site.walkways.edges:
            self.add("error", "walkways.edges", "no edges: nothing connects the stops")
            return
        usable = nx.Graph()
        usable.add_nodes_from(site.walkways.nodes)
        full = nx.Graph()
        for i, ((a, b, _), line) in enumerate(zip(site.walkways.edges, self.lines, strict=True)):
            full.add_edge(a, b, length=line.length, index=i)
            if i not in self.unusable:
                usable.add_edge(a, b)
        st = site.station
        station_nodes: set[str] = set()
        for tag, pose in (("loading", st.loading), ("charging", st.charging)):
            element = f"station.{tag}"
            self.parked(element, pose)
            edges = self.attached(pose.x, pose.y)
            if not edges:
                self.off_walkway(element, pose)
            elif tag == "loading":
                station_nodes = self.reach_nodes(edges)
                if not station_nodes:
                    self.add(
                        "error",
                        element,
                        "lies only on walkways the robot cannot drive: "
                        + "; ".join(f"{self.edge_label(i)} {self.unusable[i]}" for i in edges),
                        Point(pose.x, pose.y),
                    )
        station_part: set[str] = set()
        for n in station_nodes:
            station_part |= nx.node_connected_component(usable, n)
        for k, stop in enumerate(site.stops):
            element = f"stops[{k}] ({stop.name})"
            self.parked(element, stop.pose)
            if stop.entrance is not None:
                self.facing(element, stop.pose, stop.entrance)
            edges = self.attached(stop.pose.x, stop.pose.y)
            if not edges:
                self.off_walkway(element, stop.pose)
                continue
            mine = self.reach_nodes(edges)
            where = Point(stop.pose.x, stop.pose.y)
            if not mine:
                self.add(
                    "error",
                    element,
                    "lies only on walkways the robot cannot drive: "
                    + "; ".join(f"{self.edge_label(i)} {self.unusable[i]}" for i in edges),
                    where,
                )
            elif station_nodes and not (mine & station_part):
                self.add(
                    "error",
                    element,
                    "unreachable from the station: " + self.blockers(full, station_nodes, mine),
                    where,
                )

    def reach_nodes(self, edges: list[int]) -> set[str]:
        """Walkway nodes the robot reaches from a pose on `edges` (ends of drivable ones)."""
        return {n for i in edges if i not in self.unusable for n in self.site.walkways.edges[i][:2]}

    def blockers(self, full: nx.Graph, sources: set[str], targets: set[str]) -> str:
        """Which undrivable edges lie on the shortest walkway path between the two node sets."""
        best: list[str] | None = None
        for s, t in itertools.product(sorted(sources), sorted(targets)):
            try:
                path = nx.shortest_path(full, s, t, weight="length")
            except nx.NetworkXNoPath:
                continue
            if best is None or len(path) < len(best):
                best = path
        if best is None:
            return "no walkway path at all"
        bad = [
            full.edges[a, b]["index"]
            for a, b in itertools.pairwise(best)
            if full.edges[a, b]["index"] in self.unusable
        ]
        names = "; ".join(f"{self.edge_label(i)} {self.unusable[i]}" for i in bad)
        return f"every walkway path crosses an edge the robot cannot drive; the shortest: {names}"

    def facing(self, element: str, pose: Pose2D, door: tuple[float, float]) -> None:
        dx, dy = door[0] - pose.x, door[1] - pose.y
        dist = math.hypot(dx, dy)
        if dist > self.cfg.max_entrance_walk:
            self.add(
                "warning",
                element,
                f"{dist:.1f} m from its entrance (more than {self.cfg.max_entrance_walk:g} m "
                "for a recipient to walk)",
                Point(pose.x, pose.y),
            )
        if dist < 1e-6:
            return
        error = abs(math.remainder(math.atan2(dy, dx) - pose.yaw, math.tau))
        if error > self.cfg.max_facing_error:
            self.add(
                "warning",
                element,
                f"faces {math.degrees(error):.0f} deg away from its entrance "
                f"(allowed {math.degrees(self.cfg.max_facing_error):.0f} deg)",
                Point(pose.x, pose.y),
            )

    # -- entrances ----------------------------------------------------------------------------
    def entrances(self) -> None:
        site, tol = self.site, self.cfg.facade_tolerance
        models = set(self.world.models) | {s.model for s in self.world.shapes}
        for k, stop in enumerate(site.stops):
            element = f"stops[{k}] ({stop.name}).entrance"
            if stop.entrance is None:  # a sidecar always has one (load_site); a Site built by hand
                self.add("error", element, "missing: recipients need a door to come out of")
                continue
            door = Point(stop.entrance)
            if stop.building not in models:
                self.add(
                    "error",
                    f"stops[{k}] ({stop.name}).building",
                    f"{stop.building!r} is not a model of world {self.world.name} "
                    f"({self.world.source.name})",
                )
            else:
                outline = self.outline(stop.building)
                if outline is None:
                    self.add(
                        "error",
                        f"stops[{k}] ({stop.name}).building",
                        f"{stop.building} has no footprint between {self.z_min:g} and "
                        f"{self.z_max:g} m: no facade to put a door on",
                    )
                else:
                    dist = outline.boundary.distance(door)
                    if dist > tol:
                        side = "inside" if outline.contains(door) else "outside"
                        near = nearest_points(outline.boundary, door)[0]
                        self.add(
                            "error",
                            element,
                            f"not on the facade of {stop.building}: {dist:.2f} m {side} its "
                            f"outline (allowed {tol:g} m; the nearest facade point is "
                            f"({near.x:.2f}, {near.y:.2f}))",
                            door,
                        )
            listed = site.entrances.get(stop.name)
            if listed is None:
                self.add(
                    "warning",
                    f"stops[{k}] ({stop.name})",
                    f"its door is not in entrances (as entrances.{stop.name}): no recipient "
                    "or pedestrian ever comes out of it",
                    door,
                )
            elif math.dist(listed, stop.entrance) > tol:
                self.add(
                    "warning",
                    f"entrances.{stop.name}",
                    f"named after stop {stop.name} but {math.dist(listed, stop.entrance):.2f} m "
                    f"from its entrance ({stop.entrance[0]:g}, {stop.entrance[1]:g})",
                    Point(listed),
                )
        doors = {s.name: s.entrance for s in site.stops if s.entrance is not None}
        for name, xy in site.entrances.items():
            if name in doors and math.dist(doors[name], xy) <= tol:
                continue  # a stop's door: checked against its facade above
            door = Point(xy)
            for k in (int(k) for k in self.tree.query(door, predicate="within")):
                ob = self.obstacles[k]
                depth = ob.polygon.exterior.distance(door)
                if depth > tol:
                    self.add(
                        "error",
                        f"entrances.{name}",
                        f"{depth:.2f} m inside {ob.name} ({ob.category or 'no category'}): "
                        "nobody can come out of it",
                        door,
                    )

    def outline(self, model: str) -> BaseGeometry | None:
        polys = [
            poly
            for shape in self.world.shapes
            if shape.model == model
            and (poly := shape_footprint(shape, self.z_min, self.z_max)) is not None
        ]
        return shapely.union_all(polys) if polys else None

    # -- the mapping route ------------------------------------------------------------------
    def mapping_route(self) -> None:
        site, route = self.site, self.site.mapping_route
        corridors = shapely.union_all(
            [
                line.buffer(w / 2)
                for (_, _, w), line in zip(site.walkways.edges, self.lines, strict=True)
            ]
        )
        by_pair = {
            frozenset((self.node_at(line.coords[0]), self.node_at(line.coords[-1]))): i
            for i, line in enumerate(self.lines)
        }
        for i, (a, b) in enumerate(itertools.pairwise(route.waypoints)):
            element = f"mapping_route.waypoints[{i}]-[{i + 1}]"
            segment = LineString([a, b])
            off = segment.difference(corridors)
            if off.length > self.cfg.clearance_tolerance:
                first = nearest_points(off, Point(a))[0]
                self.add(
                    "error",
                    element,
                    f"leaves the walkways for {off.length:.2f} m of its {segment.length:.2f} m",
                    first,
                )
                continue
            edge = by_pair.get(frozenset((self.node_at(a), self.node_at(b))))
            if edge is not None and edge in self.unusable:
                self.add(
                    "error",
                    element,
                    f"runs along {self.edge_label(edge)}, which the robot cannot drive "
                    f"({self.unusable[edge]})",
                    segment.interpolate(0.5, normalized=True),
                )
        loading = (site.station.loading.x, site.station.loading.y)
        reach = self.cfg.stop_reach
        for k, label in ((0, "starts"), (len(route.waypoints) - 1, "ends")):
            d = math.dist(route.waypoints[k], loading)
            if d > reach:
                self.add(
                    "warning",
                    f"mapping_route.waypoints[{k}]",
                    f"the route {label} {d:.1f} m from station.loading: a mapping drive "
                    "starts and ends at the station",
                    Point(route.waypoints[k]),
                )
        if not route.closes_loop:
            self.add(
                "warning",
                "mapping_route",
                "never comes back to a place it passed 20 m of driving before: "
                "the map build has no loop to close",
            )

    def node_at(self, xy: tuple[float, ...]) -> str | None:
        for name, p in self.site.walkways.nodes.items():
            if math.dist(p, xy[:2]) <= NODE_TOLERANCE:
                return name
        return None

    # -- world pairing ------------------------------------------------------------------------
    def pairing(self) -> None:
        site = self.site
        if site.source is not None:
            stem = site.source.name.removesuffix(".site.yaml")
            beside = site.source.with_name(f"{stem}.sdf")
            if beside.is_file() and beside.resolve() != site.world.resolve():
                self.add(
                    "warning",
                    "world",
                    f"names {site.world.name} but {beside.name} sits beside this sidecar: the "
                    f"simulator pairs {beside.name} with it",
                )
        if site.name != self.world.name:
            self.add(
                "warning",
                "name",
                f"{site.name!r} is not the world's name {self.world.name!r}",
            )


def check_site(
    world: World, site: Site, robot: RobotSpec, config: SiteCheckConfig | None = None
) -> list[SiteProblem]:
    """Check the sidecar `site` against `world` and `robot`; every problem found, in order.

    Order: world pairing, walkways, stops and station, entrances, mapping route. An empty list
    means the site keeps every promise; `errors(problems)` are those that break it.

    Raises:
        ConfigError: a `config` value out of its range.
        FootprintError: a world mesh cannot be read.
    """
    cfg = config if config is not None else SiteCheckConfig()
    validate_fields(cfg, "SiteCheckConfig")
    checker = _Checker(world, site, robot, cfg)
    checker.pairing()
    checker.walkways()
    checker.stops_and_station()
    checker.entrances()
    checker.mapping_route()
    return checker.problems


SIDECAR_KEYS = frozenset({"station", "stops", "entrances", "walkways", "mapping_route"})


def is_sidecar_document(data: object) -> bool:
    """Whether a parsed YAML document is a site sidecar: a mapping with any key only sidecars
    have (a scenario has none of them), whatever the file is called."""
    return isinstance(data, dict) and not SIDECAR_KEYS.isdisjoint(data)


def errors(problems: list[SiteProblem]) -> list[SiteProblem]:
    """The problems that are errors."""
    return [p for p in problems if p.severity == "error"]
