"""Site sidecars: the shipped ones keep their promises, and load_site names every bad field."""

from __future__ import annotations

import itertools
import math
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np
import pytest
import shapely
import yaml
from scipy.spatial.transform import Rotation
from shapely.geometry import LineString, Point, Polygon

from xiaomanlv_core.site import Site, SiteError, closes_loop, load_site, polyline_length
from xiaomanlv_sim.assets import site_file, world_file

NS = "{https://github.com/xiaomanlv/sdf}"
SURFACES = {"ground", "field", "ramp"}  # categories the robot drives on
ROBOT = (1.8, 1.0)  # [m] length, width of the robot body (models/xiaomanlv/model.sdf)


def _pose(element: ET.Element) -> np.ndarray:
    text = element.findtext("pose", "0 0 0 0 0 0")
    x, y, z, roll, pitch, yaw = (float(v) for v in text.split())
    matrix = np.eye(4)
    matrix[:3, :3] = Rotation.from_euler("xyz", [roll, pitch, yaw]).as_matrix()
    matrix[:3, 3] = (x, y, z)
    return matrix


def sdf_obstacles(path: Path) -> list[tuple[str, Any]]:
    """Footprints (shapely) of the collisions that block a robot between 0.05 m and 2 m,
    read from the SDF with xml.etree (independent of the project's SDF loader)."""
    found = []
    world = ET.parse(path).getroot().find("world")
    assert world is not None
    for model in world.findall("model"):
        if model.findtext(f"{NS}category") in SURFACES:
            continue
        model_pose = _pose(model)
        for link in model.findall("link"):
            link_pose = model_pose @ _pose(link)
            for collision in link.findall("collision"):
                pose = link_pose @ _pose(collision)
                geometry = collision.find("geometry")
                assert geometry is not None
                name = f"{model.get('name')}::{collision.get('name')}"
                box = geometry.find("box")
                if box is not None:
                    half = np.array([float(v) for v in box.findtext("size", "").split()]) / 2
                    corners = np.array(
                        [[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]
                    )
                    points = (corners * half) @ pose[:3, :3].T + pose[:3, 3]
                    z0, z1 = points[:, 2].min(), points[:, 2].max()
                    shape = shapely.MultiPoint(points[:, :2]).convex_hull
                else:
                    element = geometry.find("cylinder")
                    if element is None:
                        element = geometry.find("sphere")
                    assert element is not None, name
                    radius = float(element.findtext("radius", ""))
                    half_z = float(element.findtext("length", str(2 * radius))) / 2
                    z0, z1 = pose[2, 3] - half_z, pose[2, 3] + half_z
                    shape = Point(pose[0, 3], pose[1, 3]).buffer(radius)
                if z1 > 0.05 and z0 < 2.0:
                    found.append((name, shape))
    return found


def robot_rectangle(x: float, y: float, yaw: float) -> Polygon:
    c, s = math.cos(yaw), math.sin(yaw)
    hl, hw = ROBOT[0] / 2, ROBOT[1] / 2
    return Polygon(
        [
            (x + c * u - s * v, y + s * u + c * v)
            for u, v in ((hl, hw), (-hl, hw), (-hl, -hw), (hl, -hw))
        ]
    )


@pytest.fixture(scope="module", params=["university", "residential"])
def shipped(request: pytest.FixtureRequest) -> tuple[Site, list[tuple[str, Any]]]:
    world = world_file(request.param)
    return load_site(site_file(world)), sdf_obstacles(world)


MINIMUM = {"university": (8, 2000.0), "residential": (6, 600.0)}


def test_shipped_sites_have_enough_stops_and_a_long_closed_mapping_route(
    shipped: tuple[Site, Any],
) -> None:
    site, _ = shipped
    min_stops, min_route = MINIMUM[site.name]
    assert len(site.stops) >= min_stops
    assert site.world.name == f"{site.name}.sdf" and site.world.is_file()
    route = site.mapping_route
    assert route.length >= min_route
    assert route.closes_loop
    start = (site.station.loading.x, site.station.loading.y)
    assert math.dist(route.waypoints[0], start) < 0.01
    assert math.dist(route.waypoints[-1], start) < 0.01
    assert route.length == pytest.approx(polyline_length(route.waypoints))


def test_shipped_walkways_are_connected_and_the_route_follows_them(
    shipped: tuple[Site, Any],
) -> None:
    site, _ = shipped
    graph = nx.Graph()
    graph.add_nodes_from(site.walkways.nodes)
    graph.add_edges_from((a, b) for a, b, _ in site.walkways.edges)
    assert nx.is_connected(graph)
    assert len(nx.cycle_basis(graph)) >= 1  # at least one loop to close
    where = {xy: n for n, xy in site.walkways.nodes.items()}
    names = [where[p] for p in site.mapping_route.waypoints]
    assert all(graph.has_edge(a, b) for a, b in itertools.pairwise(names))
    stops_on_graph = {(s.pose.x, s.pose.y) for s in site.stops} <= set(where)
    assert stops_on_graph


def test_shipped_walkway_edges_are_clear_at_robot_width(shipped: tuple[Site, Any]) -> None:
    site, obstacles = shipped
    tree = shapely.STRtree([g for _, g in obstacles])
    blocked = []
    for a, b, width in site.walkways.edges:
        corridor = LineString([site.walkways.nodes[a], site.walkways.nodes[b]]).buffer(0.5)
        hits = tree.query(corridor, predicate="intersects")
        blocked += [(a, b, obstacles[int(i)][0]) for i in hits]
        assert width >= 1.5, (a, b)
    assert not blocked


def test_shipped_stops_and_station_are_clear_of_static_geometry(
    shipped: tuple[Site, Any],
) -> None:
    site, obstacles = shipped
    tree = shapely.STRtree([g for _, g in obstacles])
    poses = {s.name: s.pose for s in site.stops}
    poses |= {"loading": site.station.loading, "charging": site.station.charging}
    for name, pose in poses.items():
        hits = tree.query(robot_rectangle(pose.x, pose.y, pose.yaw), predicate="intersects")
        assert not [obstacles[int(i)][0] for i in hits], name
    for stop in site.stops:
        to_door = math.atan2(stop.entrance[1] - stop.pose.y, stop.entrance[0] - stop.pose.x)
        assert abs(math.remainder(to_door - stop.pose.yaw, 2 * math.pi)) < 1e-3, stop.name
        assert 3.0 < math.dist(stop.entrance, (stop.pose.x, stop.pose.y)) < 12.0, stop.name
        assert stop.name in site.entrances


def test_stop_buildings_and_entrances_are_on_their_buildings(shipped: tuple[Site, Any]) -> None:
    site, obstacles = shipped
    facades = {name.split("::")[0]: shape for name, shape in obstacles if "::block" in name}
    for stop in site.stops:
        assert stop.building in facades, stop.name
        assert facades[stop.building].distance(Point(stop.entrance)) < 0.01, stop.name


# -- bad sidecars ------------------------------------------------------------------------------


def _shipped_data() -> dict[str, Any]:
    data = yaml.safe_load(site_file(world_file("university")).read_text())
    data["world"] = str(world_file("university").resolve())
    return data


def _set(path: list[Any], value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return mutate


def _delete(path: list[Any]) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]

    return mutate


def _duplicate_stop(data: dict[str, Any]) -> None:
    data["stops"][1]["name"] = data["stops"][0]["name"]


def _isolated_node(data: dict[str, Any]) -> None:
    data["walkways"]["nodes"]["lonely"] = [999.0, 999.0]


def _duplicate_edge(data: dict[str, Any]) -> None:
    data["walkways"]["edges"].append(list(data["walkways"]["edges"][0]))


def _route_skips(data: dict[str, Any]) -> None:
    waypoints = data["mapping_route"]["waypoints"]
    del waypoints[2]


def _route_off_walkways(data: dict[str, Any]) -> None:
    data["mapping_route"]["waypoints"][1] = [1.5, 2.5]


BAD_FIELDS = [
    (_set(["stops", 3, "pose"], [1.0, 2.0]), r"stops\[3\]\.pose: expected \[x, y, yaw\]"),
    (_set(["colour"], "red"), r": colour: unknown key"),
    (_set(["stops", 0, "door"], [0, 0]), r"stops\[0\]\.door: unknown key"),
    (_delete(["stops", 2, "building"]), r"stops\[2\]\.building: missing"),
    (_set(["stops", 0, "entrance"], ["a", 1]), r"stops\[0\]\.entrance\[0\]: expected a number"),
    (_set(["stops", 1, "pose"], [0.0, float("nan"), 0.0]), r"stops\[1\]\.pose\[1\]: .*finite"),
    (_set(["stops", 0, "building"], ""), r"stops\[0\]\.building: expected a non-empty string"),
    (_duplicate_stop, r"stops\[1\]\.name: duplicate stop name"),
    (_delete(["station"]), r": station: missing"),
    (_set(["station", "loading"], "here"), r"station\.loading: expected \[x, y, yaw\]"),
    (_set(["station", "dock"], [0, 0, 0]), r"station\.dock: unknown key"),
    (_set(["stops"], {"a": 1}), r": stops: expected a list"),
    (_set(["entrances", "gate_south"], [0.0]), r"entrances\.gate_south: expected \[x, y\]"),
    (_set(["walkways", "edges", 0, 1], "nowhere"), r"walkways\.edges\[0\]\[1\]: unknown walkway"),
    (_set(["walkways", "edges", 2, 2], -1.0), r"walkways\.edges\[2\]\[2\]: width must be > 0"),
    (_set(["walkways", "edges", 4], ["a", "b"]), r"walkways\.edges\[4\]: expected \[node_a"),
    (_set(["walkways", "nodes", "w_200_m200"], [1, 2, 3]), r"walkways\.nodes\.w_200_m200"),
    (_set(["walkways", "paths"], []), r"walkways\.paths: unknown key"),
    (_duplicate_edge, r"walkways\.edges\[\d+\]: duplicate of walkways\.edges\[0\]"),
    (_isolated_node, r": walkways: graph not connected: 2 parts; the smallest holds lonely"),
    (_route_off_walkways, r"mapping_route\.waypoints\[1\]: \[1\.5, 2\.5\] is not a walkway node"),
    (_route_skips, r"mapping_route\.waypoints\[2\]: no walkway edge from"),
    (_set(["mapping_route", "waypoints"], [[0, 0]]), r"mapping_route\.waypoints: expected at"),
    (_set(["mapping_route", "length"], 5.0), r"mapping_route\.length: unknown key"),
    (_set(["world"], "nowhere.sdf"), r": world: nowhere\.sdf does not exist"),
    (_set(["name"], 42), r": name: expected a non-empty string"),
]


@pytest.mark.parametrize(("mutate", "match"), BAD_FIELDS)
def test_a_bad_field_is_named_with_the_file(
    tmp_path: Path, mutate: Callable[[dict[str, Any]], None], match: str
) -> None:
    data = _shipped_data()
    mutate(data)
    path = tmp_path / "bad.site.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(SiteError, match=match) as info:
        load_site(path)
    assert str(info.value).startswith("bad.site.yaml: ")


def test_the_unmodified_copy_loads(tmp_path: Path) -> None:
    path = tmp_path / "copy.site.yaml"
    path.write_text(yaml.safe_dump(_shipped_data(), sort_keys=False))
    site = load_site(path)
    assert site.source == path and site.name == "university"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("name: [unclosed\n", r"^odd\.site\.yaml: line 2: not valid YAML"),
        ("- just\n- a list\n", r"^odd\.site\.yaml: top level: expected a mapping, got list"),
        ("", r"^odd\.site\.yaml: top level: expected a mapping, got NoneType"),
    ],
)
def test_malformed_documents(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "odd.site.yaml"
    path.write_text(text)
    with pytest.raises(SiteError, match=match):
        load_site(path)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(SiteError, match=r"^absent\.site\.yaml: cannot read"):
        load_site(tmp_path / "absent.site.yaml")


def _tiny_site(tmp_path: Path, waypoints: list[list[float]]) -> Path:
    (tmp_path / "tiny.sdf").write_text("<sdf version='1.9'/>")
    data = {
        "name": "tiny",
        "world": "tiny.sdf",
        "station": {"name": "s", "loading": [0, 0, 0], "charging": [0, 0, 0]},
        "stops": [],
        "entrances": {},
        "walkways": {
            "nodes": {"a": [0, 0], "b": [30, 0], "c": [30, 40]},
            "edges": [["a", "b", 2.0], ["b", "c", 2.0], ["c", "a", 2.5]],
        },
        "mapping_route": {"waypoints": waypoints},
    }
    path = tmp_path / "tiny.site.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_route_length_and_loop_are_computed(tmp_path: Path) -> None:
    loop = load_site(_tiny_site(tmp_path, [[0, 0], [30, 0], [30, 40], [0, 0]]))
    assert loop.mapping_route.length == pytest.approx(120.0)
    assert loop.mapping_route.closes_loop
    assert loop.world == (tmp_path / "tiny.sdf").resolve()
    open_path = load_site(_tiny_site(tmp_path, [[0, 0], [30, 0], [30, 40]]))
    assert open_path.mapping_route.length == pytest.approx(70.0)
    assert not open_path.mapping_route.closes_loop


def test_closes_loop_needs_real_travel_before_the_revisit() -> None:
    assert not closes_loop([(0.0, 0.0), (5.0, 0.0), (0.5, 0.0)])  # 9.5 m: a wiggle, not a loop
    assert closes_loop([(0.0, 0.0), (15.0, 0.0), (0.5, 0.2)])  # 29.5 m out and back
    assert polyline_length([(0.0, 0.0), (3.0, 4.0), (3.0, 10.0)]) == pytest.approx(11.0)
