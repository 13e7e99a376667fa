"""Site sidecars: what a world file cannot say about a delivery site.

Each world `worlds/<site>.sdf` ships `worlds/<site>.site.yaml` (schema in docs/worlds.md):
the station (loading and charging poses), named delivery stops at building entrances, the
mapping route an operator would drive, and the walkway network pedestrians and the robot use.
Coordinates are in the world frame of the SDF file (a real site's map frame), metres and
radians. A real site needs its stops as much as a simulated one, so the sidecar lives in the
foundation: the map build, the simulator and `xiaomanlv sim site` read it here; stops and the
station are `xiaomanlv_core.types`.

`load_site(path)` reads and validates a sidecar; every error names the file and the field.
"""

from __future__ import annotations

import difflib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import networkx as nx

from xiaomanlv_core.types import Pose2D, Station, Stop
from xiaomanlv_core.yamlfile import YamlFileError, read_yaml


@dataclass(frozen=True)
class MappingRoute:
    waypoints: tuple[tuple[float, float], ...]  # [m] driven in order along walkways
    closes_loop: bool  # the route returns to a place it passed before (for loop closure)
    length: float  # [m] polyline length of the waypoints


@dataclass(frozen=True)
class Walkways:
    """The path network pedestrians, cyclists and the robot travel along (undirected)."""

    nodes: dict[str, tuple[float, float]]  # name -> [m] position
    edges: tuple[tuple[str, str, float], ...]  # (a, b, width [m])


@dataclass(frozen=True)
class Site:
    name: str
    world: Path  # the SDF world this sidecar belongs to
    station: Station
    stops: tuple[Stop, ...]
    mapping_route: MappingRoute
    walkways: Walkways
    entrances: dict[str, tuple[float, float]]  # building entrances: pedestrian sources and sinks
    source: Path | None = None


class SiteError(ValueError):
    """A site sidecar is missing, malformed or inconsistent; the message names file and field."""


def load_site(path: Path, *, world: Path | None = None) -> Site:
    """Read and validate `path` (a *.site.yaml); raises SiteError naming the file and field.

    Checks (schema in docs/worlds.md): every key known and present, poses ``[x, y, yaw]``,
    points ``[x, y]``, finite numbers, unique stop names, walkway edges between known nodes
    with a positive width and no duplicates, a connected walkway graph (networkx), a mapping
    route of walkway nodes joined by walkway edges, and the world file next to the sidecar.
    The mapping route's length [m] and whether it closes a loop are computed here.

    `world` overrides the SDF file the sidecar names (``xiaomanlv sim site check --world``):
    the sidecar's ``world`` must still be a string, but that file need not exist.
    Geometry against the world is `xiaomanlv_sim.sitecheck.check_site`'s business.
    """
    path = Path(path)
    label = path.name
    try:
        data = read_yaml(path)
    except OSError as error:
        raise SiteError(f"{label}: cannot read {path}: {error.strerror or error}") from error
    except YamlFileError as error:  # not UTF-8 or YAML, too large, too deep, a YAML bomb
        raise SiteError(f"{label}: {error}") from None
    reader = _Reader(label)
    root = reader.mapping(data, "", _TOP_KEYS, required=_TOP_KEYS)
    name = reader.name(root["name"], "name")
    world_text = reader.name(root["world"], "world")
    if world is None:
        world = (path.parent / world_text).resolve()
        if not world.is_file():
            raise SiteError(f"{label}: world: {world_text} does not exist (looked for {world})")
    else:
        world = Path(world).resolve()
        if not world.is_file():
            raise SiteError(f"{label}: world: the world file given for it, {world}, does not exist")
    station = reader.station(root["station"])
    stops = reader.stops(root["stops"])
    entrances = reader.points(root["entrances"], "entrances")
    walkways = reader.walkways(root["walkways"])
    route = reader.mapping_route(root["mapping_route"], walkways)
    return Site(
        name=name,
        world=world,
        station=station,
        stops=stops,
        mapping_route=route,
        walkways=walkways,
        entrances=entrances,
        source=path,
    )


_TOP_KEYS = frozenset(
    {"name", "world", "station", "stops", "entrances", "walkways", "mapping_route"}
)
_STATION_KEYS = frozenset({"name", "loading", "charging"})
_STOP_KEYS = frozenset({"name", "pose", "building", "entrance"})
_WALKWAY_KEYS = frozenset({"nodes", "edges"})
_ROUTE_KEYS = frozenset({"waypoints"})
NODE_TOLERANCE = 0.01  # [m] a route waypoint within this of a walkway node is that node
LOOP_RADIUS = 1.0  # [m] the route closes a loop when it comes back this close to a point...
LOOP_MIN_TRAVEL = 20.0  # [m] ...that it passed at least this far of driving before


class _Reader:
    """Typed access to the parsed YAML; every error names the file and the field path."""

    def __init__(self, label: str) -> None:
        self.label = label

    def fail(self, field: str, message: str) -> SiteError:
        return SiteError(f"{self.label}: {field}: {message}")

    def mapping(
        self, value: Any, field: str, keys: frozenset[str], required: frozenset[str]
    ) -> dict[str, Any]:
        where = field or "top level"
        if not isinstance(value, dict):
            raise self.fail(where, f"expected a mapping, got {type(value).__name__}")
        for key in value:
            if key not in keys:
                known = ", ".join(sorted(keys))
                prefix = f"{field}." if field else ""
                raise self.fail(f"{prefix}{key}", f"unknown key (known: {known})")
        for key in sorted(required):
            if key not in value:
                prefix = f"{field}." if field else ""
                raise self.fail(f"{prefix}{key}", "missing")
        return value

    def sequence(self, value: Any, field: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(field, f"expected a list, got {type(value).__name__}")
        return value

    def name(self, value: Any, field: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(field, f"expected a non-empty string, got {value!r}")
        return value

    def number(self, value: Any, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(field, f"expected a number, got {value!r}")
        if not math.isfinite(value):
            raise self.fail(field, f"expected a finite number, got {value!r}")
        return float(value)

    def pose(self, value: Any, field: str) -> Pose2D:
        if not isinstance(value, list) or len(value) != 3:
            raise self.fail(field, f"expected [x, y, yaw], got {value!r}")
        x, y, yaw = (self.number(v, f"{field}[{i}]") for i, v in enumerate(value))
        return Pose2D(x, y, yaw)

    def point(self, value: Any, field: str) -> tuple[float, float]:
        if not isinstance(value, list) or len(value) != 2:
            raise self.fail(field, f"expected [x, y], got {value!r}")
        x, y = (self.number(v, f"{field}[{i}]") for i, v in enumerate(value))
        return (x, y)

    def points(self, value: Any, field: str) -> dict[str, tuple[float, float]]:
        if not isinstance(value, dict):
            raise self.fail(field, f"expected a mapping of name: [x, y], got {value!r}")
        return {
            self.name(key, f"{field} key {key!r}"): self.point(xy, f"{field}.{key}")
            for key, xy in value.items()
        }

    def station(self, value: Any) -> Station:
        data = self.mapping(value, "station", _STATION_KEYS, _STATION_KEYS)
        return Station(
            name=self.name(data["name"], "station.name"),
            loading=self.pose(data["loading"], "station.loading"),
            charging=self.pose(data["charging"], "station.charging"),
        )

    def stops(self, value: Any) -> tuple[Stop, ...]:
        stops: list[Stop] = []
        seen: dict[str, int] = {}
        for i, item in enumerate(self.sequence(value, "stops")):
            field = f"stops[{i}]"
            data = self.mapping(item, field, _STOP_KEYS, _STOP_KEYS)
            name = self.name(data["name"], f"{field}.name")
            if name in seen:
                raise self.fail(
                    f"{field}.name", f"duplicate stop name {name!r} (also stops[{seen[name]}])"
                )
            seen[name] = i
            pose = self.pose(data["pose"], f"{field}.pose")
            stops.append(
                Stop(
                    name,
                    pose.x,
                    pose.y,
                    pose.yaw,
                    building=self.name(data["building"], f"{field}.building"),
                    entrance=self.point(data["entrance"], f"{field}.entrance"),
                )
            )
        return tuple(stops)

    def walkways(self, value: Any) -> Walkways:
        data = self.mapping(value, "walkways", _WALKWAY_KEYS, _WALKWAY_KEYS)
        nodes = self.points(data["nodes"], "walkways.nodes")
        if not nodes:
            raise self.fail("walkways.nodes", "no nodes")
        edges: list[tuple[str, str, float]] = []
        seen: dict[frozenset[str], int] = {}
        for i, item in enumerate(self.sequence(data["edges"], "walkways.edges")):
            field = f"walkways.edges[{i}]"
            if not isinstance(item, list) or len(item) != 3:
                raise self.fail(field, f"expected [node_a, node_b, width], got {item!r}")
            a, b = (self.name(item[k], f"{field}[{k}]") for k in (0, 1))
            for k, node in ((0, a), (1, b)):
                if node not in nodes:
                    close = difflib.get_close_matches(node, list(nodes), n=3)
                    hint = f" (did you mean {', '.join(close)}?)" if close else ""
                    raise self.fail(f"{field}[{k}]", f"unknown walkway node {node!r}{hint}")
            if a == b:
                raise self.fail(field, f"edge from {a!r} to itself")
            width = self.number(item[2], f"{field}[2]")
            if width <= 0:
                raise self.fail(f"{field}[2]", f"width must be > 0 m, got {width}")
            pair = frozenset((a, b))
            if pair in seen:
                raise self.fail(field, f"duplicate of walkways.edges[{seen[pair]}] ({a} - {b})")
            seen[pair] = i
            edges.append((a, b, width))
        graph = nx.Graph()
        graph.add_nodes_from(nodes)
        graph.add_edges_from((a, b) for a, b, _ in edges)
        if not nx.is_connected(graph):
            parts = sorted(nx.connected_components(graph), key=lambda c: (len(c), sorted(c)))
            sample = ", ".join(sorted(parts[0])[:5])
            raise self.fail(
                "walkways",
                f"graph not connected: {len(parts)} parts; the smallest holds {sample}",
            )
        return Walkways(nodes=nodes, edges=tuple(edges))

    def mapping_route(self, value: Any, walkways: Walkways) -> MappingRoute:
        data = self.mapping(value, "mapping_route", _ROUTE_KEYS, _ROUTE_KEYS)
        raw = self.sequence(data["waypoints"], "mapping_route.waypoints")
        if len(raw) < 2:
            raise self.fail("mapping_route.waypoints", f"expected at least 2, got {len(raw)}")
        points = [self.point(p, f"mapping_route.waypoints[{i}]") for i, p in enumerate(raw)]
        by_position = {
            (round(x / NODE_TOLERANCE), round(y / NODE_TOLERANCE)): n
            for n, (x, y) in walkways.nodes.items()
        }
        pairs = {frozenset((a, b)) for a, b, _ in walkways.edges}
        names: list[str] = []
        for i, (x, y) in enumerate(points):
            node = by_position.get((round(x / NODE_TOLERANCE), round(y / NODE_TOLERANCE)))
            if node is None:
                near = min(walkways.nodes, key=lambda n: math.dist(walkways.nodes[n], (x, y)))
                gap = math.dist(walkways.nodes[near], (x, y))
                raise self.fail(
                    f"mapping_route.waypoints[{i}]",
                    f"[{x}, {y}] is not a walkway node (within {NODE_TOLERANCE} m); the nearest "
                    f"is {near} at {list(walkways.nodes[near])}, {gap:.2f} m away",
                )
            if names and frozenset((names[-1], node)) not in pairs:
                raise self.fail(
                    f"mapping_route.waypoints[{i}]",
                    f"no walkway edge from {names[-1]} (waypoints[{i - 1}]) to {node}: "
                    "consecutive waypoints must be the two ends of one walkway edge",
                )
            names.append(node)
        return MappingRoute(
            waypoints=tuple(points), closes_loop=closes_loop(points), length=polyline_length(points)
        )


def polyline_length(points: Sequence[tuple[float, float]]) -> float:
    """[m] sum of the straight segments between consecutive points."""
    return float(sum(math.dist(a, b) for a, b in itertools.pairwise(points)))


def closes_loop(points: Sequence[tuple[float, float]]) -> bool:
    """Whether the polyline comes back within LOOP_RADIUS of a vertex it left at least
    LOOP_MIN_TRAVEL of driving earlier (what a mapping drive needs for a loop closure)."""
    travelled = [0.0]
    for a, b in itertools.pairwise(points):
        travelled.append(travelled[-1] + math.dist(a, b))
    for j, pj in enumerate(points):
        for i in range(j):
            if travelled[j] - travelled[i] < LOOP_MIN_TRAVEL:
                break
            if math.dist(points[i], pj) <= LOOP_RADIUS:
                return True
    return False
