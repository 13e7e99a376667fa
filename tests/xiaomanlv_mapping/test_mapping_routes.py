"""route_graph: paths from the drive once each, stops attached, width and speed from the grid."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from numpy.typing import NDArray

from xiaomanlv_core.config import ConfigError
from xiaomanlv_core.types import Stop
from xiaomanlv_mapping.mapfiles import read_routes, write_routes
from xiaomanlv_mapping.model import (
    FREE,
    OCCUPIED,
    UNKNOWN,
    Grid,
    MappingError,
    PoseSeries,
    RouteGraph,
    StopSet,
)
from xiaomanlv_mapping.routes import RouteConfig, build_routes, route_graph, speed_for_width

RES = 0.1  # [m]


def drive(points: list[tuple[float, float]], step: float = 0.2, jitter: float = 0.0) -> PoseSeries:
    """Poses every `step` metres along the polyline `points`, with lateral `jitter` [m] noise."""
    pts = np.asarray(points, dtype=float)
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    travel = np.concatenate([[0.0], np.cumsum(seg)])
    s = np.arange(0.0, travel[-1], step)
    xy = np.stack([np.interp(s, travel, pts[:, 0]), np.interp(s, travel, pts[:, 1])], axis=1)
    if jitter:
        xy += np.random.default_rng(1).normal(0.0, jitter, xy.shape)
    poses = np.repeat(np.eye(4)[None], len(xy), axis=0)
    poses[:, :2, 3] = xy
    return PoseSeries(stamps=np.arange(len(xy)) * 0.1, poses=poses)


def open_grid(x0: float, y0: float, x1: float, y1: float, value: int = FREE) -> Grid:
    cols, rows = round((x1 - x0) / RES), round((y1 - y0) / RES)
    return Grid(RES, (x0, y0, 0.0), np.full((rows, cols), value, dtype=np.int8))


def mark(grid: Grid, x0: float, x1: float, y0: float, y1: float, value: int = OCCUPIED) -> None:
    c0, c1 = (round((v - grid.origin[0]) / RES) for v in (x0, x1))
    r0, r1 = (round((v - grid.origin[1]) / RES) for v in (y0, y1))
    cells: NDArray[np.int8] = grid.cells
    cells[r0:r1, c0:c1] = value


def stop_set(
    *stops: tuple[str, float, float],
    loading: tuple[float, float] = (0.0, -2.0),
    charging: tuple[float, float] = (2.0, -2.0),
) -> StopSet:
    return StopSet(
        station="depot",
        loading=Stop("loading", *loading, 0.0),
        charging=Stop("charging", *charging, 0.0),
        stops=tuple(Stop(name, x, y, 0.0) for name, x, y in stops),
    )


def as_graph(routes: RouteGraph) -> nx.MultiGraph:
    g = nx.MultiGraph()
    g.add_nodes_from(n.id for n in routes.nodes)
    g.add_edges_from((e.start, e.end) for e in routes.edges)
    return g


def check_well_formed(routes: RouteGraph) -> None:
    ids = [n.id for n in routes.nodes]
    assert ids == list(range(len(ids)))
    # Nav2's route graph: ids unique across nodes and edges (edges numbered after the nodes)
    assert [e.id for e in routes.edges] == list(range(len(ids), len(ids) + len(routes.edges)))
    by_id = {n.id: n for n in routes.nodes}
    for e in routes.edges:
        assert e.start != e.end
        assert math.dist(e.points[0], (by_id[e.start].x, by_id[e.start].y)) < 1e-6
        assert math.dist(e.points[-1], (by_id[e.end].x, by_id[e.end].y)) < 1e-6
        assert 0.0 < e.speed_limit <= 2.0
    pairs = Counter(frozenset((e.start, e.end)) for e in routes.edges)
    assert max(pairs.values()) == 1  # no parallel edges
    assert nx.is_connected(as_graph(routes))


SQUARE = [(0.0, 0.0), (40.0, 0.0), (40.0, 40.0), (0.0, 40.0), (0.0, 0.0)]


def test_a_loop_driven_twice_gives_one_set_of_edges() -> None:
    twice = SQUARE + SQUARE[1:]
    grid = open_grid(-20.0, -20.0, 60.0, 60.0)
    routes = route_graph(drive(twice, jitter=0.15), grid, stop_set())
    check_well_formed(routes)
    driven = sum(e.length for e in routes.edges) - sum(
        e.length for e in routes.edges if _touches_named(routes, e.start, e.end)
    )
    assert driven == pytest.approx(160.0, rel=0.05)  # the loop once, not twice
    assert all(e.speed_limit == pytest.approx(2.0) for e in routes.edges)


def _touches_named(routes: RouteGraph, *ids: int) -> bool:
    return any(n.kind in ("stop", "station") for n in routes.nodes if n.id in ids)


def test_a_crossing_is_a_junction_of_four_edges() -> None:
    # a figure of eight through (20, 20): out along one diagonal, back along the other
    path = [(0.0, 0.0), (40.0, 40.0), (40.0, 0.0), (0.0, 40.0), (0.0, 0.0)]
    grid = open_grid(-20.0, -20.0, 60.0, 60.0)
    routes = route_graph(drive(path), grid, stop_set())
    check_well_formed(routes)
    g = as_graph(routes)
    centre = [n for n in routes.nodes if math.dist((n.x, n.y), (20.0, 20.0)) < 2.0]
    assert len(centre) == 1
    assert centre[0].kind == "junction"
    assert g.degree(centre[0].id) == 4


def test_every_stop_and_the_station_are_nodes_of_a_connected_graph() -> None:
    grid = open_grid(-20.0, -20.0, 60.0, 60.0)
    stops = stop_set(("north", 20.0, 45.0), ("east", 44.0, 10.0), ("inside", 20.0, 20.0))
    routes = route_graph(drive(SQUARE), grid, stops)
    check_well_formed(routes)
    named = {n.name: n for n in routes.nodes if n.kind in ("stop", "station")}
    assert set(named) == {"north", "east", "inside", "loading", "charging"}
    assert named["north"].kind == "stop" and named["loading"].kind == "station"
    assert (named["east"].x, named["east"].y) == (44.0, 10.0)
    by_id = {n.id: n for n in routes.nodes}
    for name, expected in (("north", 5.0), ("east", 4.0), ("inside", 20.0)):
        (edge,) = [e for e in routes.edges if named[name].id in (e.start, e.end)]
        other = by_id[edge.end if edge.start == named[name].id else edge.start]
        assert other.kind == "junction"
        assert edge.length == pytest.approx(expected, abs=0.6)  # straight to the nearest point


def test_a_connector_goes_round_a_wall() -> None:
    grid = open_grid(-20.0, -20.0, 60.0, 60.0)
    mark(grid, 10.0, 30.0, 43.0, 43.5)  # a wall between the north side and the stop
    routes = route_graph(drive(SQUARE), grid, stop_set(("north", 20.0, 46.0)))
    check_well_formed(routes)
    stop = next(n for n in routes.nodes if n.name == "north")
    (edge,) = [e for e in routes.edges if stop.id in (e.start, e.end)]
    assert edge.length > 12.0  # round an end of the 20 m wall, not through it
    pts = np.asarray(edge.points)
    dense = np.concatenate([np.linspace(a, b, 50) for a, b in itertools.pairwise(pts)])
    cols = ((dense[:, 0] + 20.0) / RES).astype(int)
    rows = ((dense[:, 1] + 20.0) / RES).astype(int)
    assert not np.any(grid.cells[rows, cols] == OCCUPIED)


def test_a_narrow_passage_is_slower_than_open_ground() -> None:
    # drive out from the station, through a 1.4 m gap to a dead end, back, then into the open
    grid = open_grid(-20.0, -20.0, 60.0, 30.0)
    mark(grid, 20.0, 35.0, 0.7, 3.0)
    mark(grid, 20.0, 35.0, -3.0, -0.7)
    path = [(0.0, 0.0), (10.0, 0.0), (34.0, 0.0), (10.0, 0.0), (10.0, 20.0)]
    routes = route_graph(drive(path), grid, stop_set(loading=(0.0, -1.0), charging=(1.0, -1.0)))
    check_well_formed(routes)
    by_id = {n.id: n for n in routes.nodes}

    def edge_to(x: float, y: float) -> float:
        for e in routes.edges:
            for end in (e.start, e.end):
                near = math.dist((by_id[end].x, by_id[end].y), (x, y)) < 1.5
                if near and by_id[end].kind == "end":
                    return e.speed_limit
        raise AssertionError(f"no edge ends near ({x}, {y})")

    narrow, wide = edge_to(34.0, 0.0), edge_to(10.0, 20.0)
    assert narrow == pytest.approx(0.5)
    assert wide == pytest.approx(2.0)
    gap = next(e for e in routes.edges if e.speed_limit == pytest.approx(0.5))
    assert gap.width == pytest.approx(1.4, abs=0.15)


def test_speed_follows_the_width_rule() -> None:
    cfg = RouteConfig()
    assert speed_for_width(0.8, cfg) == pytest.approx(0.5)
    assert speed_for_width(1.5, cfg) == pytest.approx(0.5)
    assert speed_for_width(2.75, cfg) == pytest.approx(1.2)  # 0.5 + 1.5 * 0.5, rounded down
    assert speed_for_width(4.0, cfg) == pytest.approx(2.0)
    assert speed_for_width(30.0, cfg) == pytest.approx(2.0)


def test_a_connector_through_unobserved_space_is_slow() -> None:
    grid = open_grid(-20.0, -20.0, 60.0, 60.0)
    mark(grid, -20.0, 60.0, 42.0, 60.0, UNKNOWN)
    routes = route_graph(drive(SQUARE), grid, stop_set(("far", 20.0, 55.0)))
    stop = next(n for n in routes.nodes if n.name == "far")
    (edge,) = [e for e in routes.edges if stop.id in (e.start, e.end)]
    assert edge.speed_limit == pytest.approx(0.5)


def test_a_stop_no_path_reaches_is_an_error_naming_it() -> None:
    grid = open_grid(-20.0, -20.0, 60.0, 60.0)
    mark(grid, 14.0, 26.0, 14.0, 16.0)
    mark(grid, 14.0, 26.0, 24.0, 26.0)
    mark(grid, 14.0, 16.0, 14.0, 26.0)
    mark(grid, 24.0, 26.0, 14.0, 26.0)  # a closed box round the stop
    with pytest.raises(MappingError, match=r"'boxed'.*no drivable path"):
        route_graph(drive(SQUARE), grid, stop_set(("boxed", 20.0, 20.0)))


def test_bad_inputs_and_config_are_rejected() -> None:
    grid = open_grid(-20.0, -20.0, 60.0, 60.0)
    empty = PoseSeries(stamps=np.zeros(0), poses=np.zeros((0, 4, 4)))
    with pytest.raises(MappingError, match=r"trajectory\.poses must be \(N,4,4\)"):
        route_graph(empty, grid, stop_set())
    rotated = Grid(RES, (0.0, 0.0, 0.5), grid.cells)
    with pytest.raises(MappingError, match="yaw"):
        route_graph(drive(SQUARE), rotated, stop_set())
    with pytest.raises(MappingError, match="wide_width"):
        RouteConfig(narrow_width=3.0, wide_width=2.0)
    with pytest.raises(ConfigError, match="max_speed"):
        RouteConfig(max_speed=-1.0)


def test_a_stop_on_the_driven_path_is_a_node_on_it() -> None:
    grid = open_grid(-20.0, -20.0, 60.0, 60.0)
    routes = route_graph(drive(SQUARE), grid, stop_set(("on_path", 20.0, 0.0)))
    check_well_formed(routes)
    stop = next(n for n in routes.nodes if n.name == "on_path")
    assert (stop.x, stop.y) == (20.0, 0.0)
    touching = [e for e in routes.edges if stop.id in (e.start, e.end)]
    assert len(touching) == 2  # the path runs through it
    assert sum(e.length for e in routes.edges) == pytest.approx(160.0 + 2.0 + 2.0, abs=1.0)


def test_a_stop_outside_the_map_is_an_error_naming_it() -> None:
    grid = open_grid(-20.0, -20.0, 60.0, 60.0)
    with pytest.raises(MappingError, match=r"'far_away'.*outside the grid"):
        route_graph(drive(SQUARE), grid, stop_set(("far_away", 500.0, 0.0)))


def boxed_grid() -> Grid:
    """The SQUARE drive's ground with a closed box round (20, 20) and a pillar at (30, 30)."""
    grid = open_grid(-20.0, -20.0, 60.0, 60.0)
    mark(grid, 14.0, 26.0, 14.0, 16.0)
    mark(grid, 14.0, 26.0, 24.0, 26.0)
    mark(grid, 14.0, 16.0, 14.0, 26.0)
    mark(grid, 24.0, 26.0, 14.0, 26.0)
    mark(grid, 29.0, 31.0, 29.0, 31.0)
    return grid


def test_every_unreachable_stop_is_reported_with_its_reason_and_the_rest_are_joined() -> None:
    stops = stop_set(
        ("boxed", 20.0, 20.0), ("pillar", 30.0, 30.0), ("far_away", 500.0, 0.0), ("fine", 8.0, 8.0)
    )
    result = build_routes(drive(SQUARE), boxed_grid(), stops)
    check_well_formed(result.graph)
    reasons = {u.name: u.reason for u in result.unreachable}
    assert list(reasons) == ["boxed", "pillar", "far_away"]  # in the stops' order
    assert "enclosed by obstacles" in reasons["boxed"] and "pocket of 64 m^2" in reasons["boxed"]
    assert "stands on an occupied cell" in reasons["pillar"]
    assert "outside the grid" in reasons["far_away"]
    named = {n.name for n in result.graph.nodes if n.kind == "stop"}
    assert named == {"fine"}
    # route_graph, which must join every stop, names all three, not only the first
    with pytest.raises(MappingError, match=r"3 unreachable: .*'boxed'.*'pillar'.*'far_away'"):
        route_graph(drive(SQUARE), boxed_grid(), stops)


def test_a_stop_beyond_the_longest_connector_says_how_far_it_is() -> None:
    grid = open_grid(-20.0, -20.0, 60.0, 60.0)
    result = build_routes(
        drive(SQUARE), grid, stop_set(("north", 20.0, 55.0)), config=RouteConfig(max_connector=2.0)
    )
    (far,) = result.unreachable
    assert far.name == "north" and far.kind == "stop"
    assert "within 2 m" in far.reason and "drive the mapping route closer" in far.reason


def test_an_obstacle_on_the_driven_path_gives_a_narrow_edge_the_route_file_accepts(
    tmp_path: Path,
) -> None:
    grid = open_grid(-20.0, -20.0, 60.0, 60.0)
    mark(grid, 10.0, 12.0, -1.0, 1.0)  # a trail left on the path by someone walking along it
    result = build_routes(drive(SQUARE), grid, stop_set())
    (narrow,) = result.narrowed
    assert narrow.width == 0.0 and 10.0 <= narrow.at[0] <= 12.0 and abs(narrow.at[1]) < 0.5
    edge = next(e for e in result.graph.edges if e.id == narrow.id)
    assert edge.width == RouteConfig().min_width and edge.speed_limit == RouteConfig().min_speed
    write_routes(result.graph, tmp_path / "routes.geojson")  # refused a width of 0 before
    assert read_routes(tmp_path / "routes.geojson") == result.graph
