"""``routes.geojson``: the route graph in the GeoJSON layout of Nav2's route server.

Nodes are Point features, edges MultiLineString features (LineString is read too); ids are
unique across both, as Nav2 requires. Our edges are two-way and Nav2's one-way, so each edge
is written with a reverse feature (``reverse_of``) that the reader checks and drops. One
feature per line, for hand editing and diffs. References: the Nav2 route server README (graph
file conventions); RFC 7946 (GeoJSON).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from xiaomanlv_core.fields import Fields, shown
from xiaomanlv_mapping.mapfiles.fileio import map_fields, read_text, write_file
from xiaomanlv_mapping.mapfiles.layout import MAP_FRAME
from xiaomanlv_mapping.model import MapFormatError, RouteEdge, RouteGraph, RouteNode

NODE_TOLERANCE = 0.01  # [m] an edge's first/last point may be this far from its node
NODE_KINDS = ("junction", "end", "stop", "station")
# Nav2's own graph files name this so GIS editors (QGIS) treat the coordinates as planar
# metres; the coordinates are in the map frame, which datum.yaml places on the Earth.
GEOJSON_CRS = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}


def routes_to_geojson(graph: RouteGraph) -> dict[str, Any]:
    """The graph as Nav2's route server GeoJSON: nodes are Point features (properties id,
    frame, metadata kind/name), edges MultiLineString features (properties id, startid,
    endid, metadata abs_speed_limit [m/s] and width [m]). Nav2's edges are one-way, so each
    edge also gets a reverse feature (metadata ``reverse_of`` = the edge's id, a fresh id
    above every other)."""
    features: list[dict[str, Any]] = []
    for node in graph.nodes:
        meta: dict[str, Any] = {"kind": node.kind}
        if node.name:
            meta["name"] = node.name
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [float(node.x), float(node.y)]},
                "properties": {"id": int(node.id), "frame": MAP_FRAME, "metadata": meta},
            }
        )

    def edge_feature(
        fid: int, start: int, end: int, points: Sequence[Sequence[float]], meta: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "type": "Feature",
            "geometry": {
                "type": "MultiLineString",
                "coordinates": [[[float(x), float(y)] for x, y in points]],
            },
            "properties": {"id": fid, "startid": start, "endid": end, "metadata": meta},
        }

    for e in graph.edges:
        meta = {"abs_speed_limit": float(e.speed_limit), "width": float(e.width)}
        features.append(edge_feature(int(e.id), int(e.start), int(e.end), e.points, meta))
    ids = [n.id for n in graph.nodes] + [e.id for e in graph.edges]
    next_id = max(ids, default=-1) + 1
    for k, e in enumerate(graph.edges):
        meta = {"abs_speed_limit": float(e.speed_limit), "width": float(e.width)}
        meta["reverse_of"] = int(e.id)
        features.append(edge_feature(next_id + k, int(e.end), int(e.start), e.points[::-1], meta))
    return {"type": "FeatureCollection", "crs": GEOJSON_CRS, "features": features}


def geojson_text(data: Mapping[str, Any]) -> str:
    """A FeatureCollection as JSON text with one feature per line (for hand editing and diffs)."""
    head = {k: v for k, v in data.items() if k != "features"}
    lines = ["{"]
    lines += [f"  {json.dumps(k)}: {json.dumps(v, allow_nan=False)}," for k, v in head.items()]
    features = [f"    {json.dumps(feat, allow_nan=False)}" for feat in data.get("features", [])]
    lines.append('  "features": [')
    if features:
        lines.append(",\n".join(features))
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def routes_geojson_text(graph: RouteGraph) -> str:
    return geojson_text(routes_to_geojson(graph))


@dataclass
class _RawEdge:
    where: str  # "features[i]"
    id: int
    start: int
    end: int
    points: list[tuple[float, float]] | None  # None: no coordinates, the straight segment
    speed_limit: float
    width: float
    reverse_of: int | None


def routes_from_geojson(data: Any, label: str) -> RouteGraph:
    """A RouteGraph from Nav2 route-server GeoJSON (parsed JSON), validated.

    Checks: ids unique across nodes and edges (Nav2's rule), node kinds and names, frame
    ``map``, edges between existing nodes with their first/last point within NODE_TOLERANCE
    of those nodes, ``abs_speed_limit`` > 0 [m/s], ``width`` > 0 [m], reverse features
    mirroring their edge. An edge without coordinates is the straight segment between its
    nodes. Other properties and metadata (Nav2 operations, cost) are accepted and ignored.

    Raises:
        MapFormatError: naming ``label`` and the feature's field.
    """
    f = map_fields(label)
    root = f.mapping(data, "", ("type", "features"))
    if root["type"] != "FeatureCollection":
        raise f.fail("type", f"expected 'FeatureCollection', got {shown(root['type'])}")
    nodes: list[RouteNode] = []
    node_where: dict[int, str] = {}
    raw_edges: list[_RawEdge] = []
    seen: dict[int, str] = {}
    for i, item in enumerate(f.sequence(root["features"], "features")):
        where = f"features[{i}]"
        feature = f.mapping(item, where, ("geometry", "properties"))
        geometry = f.mapping(feature["geometry"], f"{where}.geometry", ("type",))
        props = f.mapping(feature["properties"], f"{where}.properties", ("id",))
        fid = f.integer(props["id"], f"{where}.properties.id", low=0)
        if fid in seen:
            raise f.fail(
                f"{where}.properties.id",
                f"duplicate id {fid} (also {seen[fid]}); ids must be unique across nodes and edges",
            )
        seen[fid] = where
        kind = geometry["type"]
        if kind == "Point":
            nodes.append(_node_from(f, where, fid, geometry, props))
            node_where[fid] = where
        elif kind in ("MultiLineString", "LineString"):
            raw_edges.append(_edge_from(f, where, fid, geometry, props))
        else:
            raise f.fail(
                f"{where}.geometry.type",
                f"expected Point, LineString or MultiLineString, got {shown(kind)}",
            )
    by_id = {n.id: n for n in nodes}
    forward: dict[int, RouteEdge] = {}
    edge_where: dict[int, str] = {}
    for raw in raw_edges:
        edge = _resolve_edge(f, raw, by_id)
        if raw.reverse_of is None:
            forward[edge.id] = edge
            edge_where[edge.id] = raw.where
    mirrored: dict[int, str] = {}
    for raw in raw_edges:
        if raw.reverse_of is not None:
            _check_reverse(f, raw, _resolve_edge(f, raw, by_id), forward, edge_where, mirrored)
    return RouteGraph(nodes=tuple(nodes), edges=tuple(forward.values()))


def _node_from(
    f: Fields, where: str, fid: int, geometry: dict[str, Any], props: dict[str, Any]
) -> RouteNode:
    if "coordinates" not in geometry:
        raise f.fail(f"{where}.geometry.coordinates", "missing")
    x, y = f.xy(geometry["coordinates"], f"{where}.geometry.coordinates")
    if "frame" in props and props["frame"] != MAP_FRAME:
        raise f.fail(
            f"{where}.properties.frame", f"expected {MAP_FRAME!r}, got {shown(props['frame'])}"
        )
    meta = f.mapping(props.get("metadata"), f"{where}.properties.metadata", ("kind",))
    kind = meta["kind"]
    if kind not in NODE_KINDS:
        raise f.fail(
            f"{where}.properties.metadata.kind",
            f"expected one of {', '.join(NODE_KINDS)}, got {shown(kind)}",
        )
    name = f.text(meta.get("name", ""), f"{where}.properties.metadata.name", empty=True)
    if kind in ("stop", "station") and not name.strip():
        raise f.fail(f"{where}.properties.metadata.name", f"a {kind} node needs its name")
    return RouteNode(id=fid, x=x, y=y, kind=kind, name=name)


def _edge_from(
    f: Fields, where: str, fid: int, geometry: dict[str, Any], props: dict[str, Any]
) -> _RawEdge:
    pw = f"{where}.properties"
    start = f.integer(props.get("startid"), f"{pw}.startid", low=0)
    end = f.integer(props.get("endid"), f"{pw}.endid", low=0)
    meta = f.mapping(props.get("metadata"), f"{pw}.metadata", ("abs_speed_limit", "width"))
    speed = meta["abs_speed_limit"]
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not speed > 0:
        raise f.fail(
            f"{pw}.metadata.abs_speed_limit", f"expected a speed > 0 m/s, got {shown(speed)}"
        )
    speed = f.number(speed, f"{pw}.metadata.abs_speed_limit")
    width = f.positive(meta["width"], f"{pw}.metadata.width")
    reverse_of = None
    if "reverse_of" in meta:
        reverse_of = f.integer(meta["reverse_of"], f"{pw}.metadata.reverse_of", low=0)
    points: list[tuple[float, float]] | None = None
    gw = f"{where}.geometry.coordinates"
    if "coordinates" in geometry:
        coords = f.sequence(geometry["coordinates"], gw)
        if geometry["type"] == "MultiLineString":
            if len(coords) != 1:
                raise f.fail(gw, f"expected one line, got {len(coords)}")
            gw = f"{gw}[0]"
            coords = f.sequence(coords[0], gw)
        if len(coords) < 2:
            raise f.fail(gw, f"expected at least 2 points, got {len(coords)}")
        points = [f.xy(p, f"{gw}[{k}]") for k, p in enumerate(coords)]
    return _RawEdge(where, fid, start, end, points, speed, width, reverse_of)


def _resolve_edge(f: Fields, raw: _RawEdge, by_id: Mapping[int, RouteNode]) -> RouteEdge:
    pw = f"{raw.where}.properties"
    for key, nid in (("startid", raw.start), ("endid", raw.end)):
        if nid not in by_id:
            raise f.fail(f"{pw}.{key}", f"no node with id {nid}")
    if raw.start == raw.end:
        raise f.fail(f"{pw}.endid", f"edge from node {raw.start} to itself")
    a, b = by_id[raw.start], by_id[raw.end]
    points = raw.points if raw.points is not None else [(a.x, a.y), (b.x, b.y)]
    gw = f"{raw.where}.geometry.coordinates"
    for which, point, node in (("first", points[0], a), ("last", points[-1], b)):
        gap = math.dist(point, (node.x, node.y))
        if gap > NODE_TOLERANCE:
            raise f.fail(
                gw,
                f"{which} point ({point[0]:g}, {point[1]:g}) is {gap:.3f} m from its node "
                f"{node.id} at ({node.x:g}, {node.y:g}) (tolerance {NODE_TOLERANCE} m)",
            )
    return RouteEdge(
        id=raw.id,
        start=raw.start,
        end=raw.end,
        points=tuple(points),
        speed_limit=raw.speed_limit,
        width=raw.width,
    )


def _check_reverse(
    f: Fields,
    raw: _RawEdge,
    edge: RouteEdge,
    forward: Mapping[int, RouteEdge],
    edge_where: Mapping[int, str],
    mirrored: dict[int, str],
) -> None:
    pw = f"{raw.where}.properties"
    target = raw.reverse_of
    assert target is not None
    if target not in forward:
        raise f.fail(f"{pw}.metadata.reverse_of", f"no edge with id {target}")
    if target in mirrored:
        raise f.fail(
            f"{pw}.metadata.reverse_of", f"edge {target} is reversed by {mirrored[target]} too"
        )
    mirrored[target] = raw.where
    fwd, there = forward[target], edge_where[target]
    hint = f"a reverse edge mirrors edge {target} ({there}): edit both, or delete this feature"
    if (edge.start, edge.end) != (fwd.end, fwd.start):
        raise f.fail(f"{pw}.startid", f"runs {edge.start} -> {edge.end}; {hint}")
    for key, mine, theirs in (
        ("abs_speed_limit", edge.speed_limit, fwd.speed_limit),
        ("width", edge.width, fwd.width),
    ):
        if mine != theirs:
            raise f.fail(f"{pw}.metadata.{key}", f"{mine:g} but {theirs:g} there; {hint}")
    back = fwd.points[::-1]
    same = len(back) == len(edge.points) and all(
        math.dist(p, q) <= NODE_TOLERANCE for p, q in zip(back, edge.points, strict=True)
    )
    if not same:
        raise f.fail(f"{raw.where}.geometry.coordinates", f"not the reversed line; {hint}")


def write_routes(graph: RouteGraph, path: Path) -> None:
    """routes.geojson; the graph is validated as :func:`routes_from_geojson` would read it.

    Raises:
        MapFormatError: an invalid graph (duplicate ids across nodes and edges, a dangling
            edge, an endpoint off its node, a speed limit or width that is not positive).
    """
    path = Path(path)
    data = routes_to_geojson(graph)
    routes_from_geojson(data, str(path))
    write_file(path, geojson_text(data).encode("utf-8"))


def read_routes(path: Path) -> RouteGraph:
    path = Path(path)
    try:
        data = json.loads(read_text(path))
    except json.JSONDecodeError as err:
        raise MapFormatError(f"{path}: not valid JSON: {err}") from None
    return routes_from_geojson(data, str(path))
