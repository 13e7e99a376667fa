"""routes.geojson: Nav2 route-server GeoJSON written both ways, hand-written graphs read."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType

import pytest

from xiaomanlv_mapping.mapfiles import (
    ROUTES_FILE,
    read_routes,
    routes_from_geojson,
    routes_to_geojson,
    write_routes,
)
from xiaomanlv_mapping.model import MapFormatError, RouteEdge


def test_routes_round_trip(tmp_path: Path, map_rig: ModuleType) -> None:
    write_routes(map_rig.synthetic_routes(), tmp_path / ROUTES_FILE)
    assert read_routes(tmp_path / ROUTES_FILE) == map_rig.synthetic_routes()


def test_routes_file_is_nav2_route_server_geojson(tmp_path: Path, map_rig: ModuleType) -> None:
    write_routes(map_rig.synthetic_routes(), tmp_path / ROUTES_FILE)
    data = json.loads((tmp_path / ROUTES_FILE).read_text())
    assert data["type"] == "FeatureCollection"
    features = data["features"]
    points = [f for f in features if f["geometry"]["type"] == "Point"]
    lines = [f for f in features if f["geometry"]["type"] == "MultiLineString"]
    assert len(points) == 5 and len(lines) == 8  # every edge both ways: Nav2's are one-way
    ids = [f["properties"]["id"] for f in features]
    assert len(set(ids)) == len(ids)
    station = points[0]["properties"]
    assert station == {"id": 0, "frame": "map", "metadata": {"kind": "station", "name": "depot"}}
    assert points[0]["geometry"]["coordinates"] == [0.0, 0.0]
    edge = lines[0]["properties"]
    assert (edge["id"], edge["startid"], edge["endid"]) == (10, 0, 1)
    assert edge["metadata"] == {"abs_speed_limit": 1.5, "width": 3.0}
    assert lines[0]["geometry"]["coordinates"] == [[[0.0, 0.0], [10.0, 0.5], [20.0, 0.0]]]
    back = lines[4]["properties"]
    assert (back["startid"], back["endid"], back["metadata"]["reverse_of"]) == (1, 0, 10)
    assert lines[4]["geometry"]["coordinates"] == [[[20.0, 0.0], [10.0, 0.5], [0.0, 0.0]]]
    # one feature per line, for hand editing and diffs
    text = (tmp_path / ROUTES_FILE).read_text().splitlines()
    assert sum(1 for line in text if line.strip().startswith('{"type": "Feature"')) == 13


def test_a_hand_written_nav2_graph_is_read(tmp_path: Path) -> None:
    """No reverse features, an edge without coordinates (the straight segment), a LineString,
    Nav2 operations and costs (ignored), nodes listed after the edges."""
    graph = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "MultiLineString"},
             "properties": {"id": 5, "startid": 1, "endid": 2, "cost": 3.0, "overridable": True,
                            "metadata": {"abs_speed_limit": 1, "width": 2}}},
            {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[3, 4], [0, 0]]},
             "properties": {"id": 6, "startid": 2, "endid": 1,
                            "metadata": {"abs_speed_limit": 0.5, "width": 1.5, "class": "lawn"}}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]},
             "properties": {"id": 1, "metadata": {"kind": "end"},
                            "operations": {"stop": {"type": "stop", "trigger": "NODE"}}}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [3, 4]},
             "properties": {"id": 2, "frame": "map", "metadata": {"kind": "junction"}}},
        ],
    }  # fmt: skip
    routes = routes_from_geojson(graph, "hand.geojson")
    assert [n.id for n in routes.nodes] == [1, 2]
    assert routes.edges == (
        RouteEdge(5, 1, 2, ((0.0, 0.0), (3.0, 4.0)), 1.0, 2.0),
        RouteEdge(6, 2, 1, ((3.0, 4.0), (0.0, 0.0)), 0.5, 1.5),
    )
    assert routes.edges[0].length == 5.0


def test_stop_lists_and_geojson_are_plain_data(map_rig: ModuleType) -> None:
    data = routes_to_geojson(map_rig.synthetic_routes())
    assert json.loads(json.dumps(data)) == data
    with pytest.raises(MapFormatError, match=r"topic: features: expected a list, got 3"):
        routes_from_geojson({"type": "FeatureCollection", "features": 3}, "topic")
