"""Map products <-> ROS messages, with hand-built maps and messages."""

from __future__ import annotations

import math

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import String
from visualization_msgs.msg import Marker

from xiaomanlv_core.ros.pointcloud2 import read_xyz
from xiaomanlv_core.ros.poses import yaw_of_msg
from xiaomanlv_core.types import Stop
from xiaomanlv_mapping.model import (
    FREE,
    OCCUPIED,
    UNKNOWN,
    Datum,
    Grid,
    MapFormatError,
    RouteEdge,
    RouteGraph,
    RouteNode,
    StopSet,
)
from xiaomanlv_mapping.ros.conversions import (
    NODE_COLOURS,
    cloud_to_msg,
    datum_from_msg,
    datum_to_msg,
    grid_from_msg,
    grid_to_msg,
    route_markers,
    routes_from_msg,
    routes_to_msg,
    stops_from_msg,
    stops_to_msg,
)

STAMP = Time(sec=12, nanosec=500)
GRAPH = RouteGraph(
    nodes=(
        RouteNode(0, 0.0, 0.0, "station", "depot"),
        RouteNode(1, 10.0, 0.0, "junction"),
        RouteNode(2, 10.0, 8.0, "stop", "lab"),
    ),
    edges=(
        RouteEdge(5, 0, 1, ((0.0, 0.0), (5.0, 1.0), (10.0, 0.0)), 1.5, 3.0),
        RouteEdge(6, 1, 2, ((10.0, 0.0), (10.0, 8.0)), 1.0, 2.0),
    ),
)
STOPS = StopSet(
    station="depot",
    loading=Stop("depot_loading", 0.0, -2.0, -math.pi / 2, "depot"),
    charging=Stop("depot_charging", 3.0, -2.0, -math.pi / 2),
    stops=(Stop("lab", 10.0, 8.0, math.pi / 2, "physics"),),
)


def test_grid_to_occupancy_grid_and_back() -> None:
    cells = np.array([[FREE, OCCUPIED, UNKNOWN], [OCCUPIED, FREE, FREE]], dtype=np.int8)
    grid = Grid(resolution=0.05, origin=(-3.0, 4.5, 0.25), cells=cells)
    msg = grid_to_msg(grid, STAMP)
    assert msg.header.frame_id == "map" and msg.header.stamp == STAMP
    assert msg.info.map_load_time == STAMP
    assert (msg.info.width, msg.info.height, msg.info.resolution) == (3, 2, pytest.approx(0.05))
    assert (msg.info.origin.position.x, msg.info.origin.position.y) == (-3.0, 4.5)
    # data is row-major from the origin cell: row 0 is the lowest y
    assert list(msg.data) == [0, 100, -1, 100, 0, 0]
    back = grid_from_msg(msg)
    assert back.cells.dtype == np.int8 and np.array_equal(back.cells, cells)
    assert back.origin == pytest.approx(grid.origin)
    assert back.resolution == pytest.approx(0.05)


def test_a_grid_message_with_the_wrong_cell_count_is_refused() -> None:
    msg = grid_to_msg(Grid(1.0, (0.0, 0.0, 0.0), np.zeros((2, 2), np.int8)), STAMP)
    msg.info.width = 3
    with pytest.raises(ValueError, match=r"data holds 4 cells, not 3 x 2"):
        grid_from_msg(msg)


def test_cloud_to_point_cloud2_layout_and_back() -> None:
    points = np.array([[1.0, 2.0, 3.0], [-4.5, 5.25, -0.0], [1e5, -1e-3, 7.0]], np.float32)
    msg = cloud_to_msg(points, STAMP)
    assert msg.header.frame_id == "map" and msg.header.stamp == STAMP
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ("x", 0, PointField.FLOAT32, 1),
        ("y", 4, PointField.FLOAT32, 1),
        ("z", 8, PointField.FLOAT32, 1),
    ]
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (1, 3, 12, 36)
    assert not msg.is_bigendian and msg.is_dense
    assert bytes(msg.data) == points.astype("<f4").tobytes()
    back = read_xyz(msg)
    assert back.dtype == np.float32 and np.array_equal(back, points)
    assert read_xyz(cloud_to_msg(np.zeros((0, 3), np.float32), STAMP)).shape == (0, 3)


def test_map_cloud_reader_reads_xyz_of_another_layout_with_row_padding() -> None:
    record = np.dtype(
        {"names": ["intensity", "x", "y", "z", "ring"], "formats": ["<f4"] * 4 + ["<u2"],
         "offsets": [0, 4, 8, 12, 16], "itemsize": 20}
    )  # fmt: skip
    rows = np.zeros((2, 2), record)
    rows["x"], rows["y"], rows["z"] = [[1, 2], [3, 4]], [[5, 6], [7, 8]], [[9, 10], [11, 12]]
    msg = PointCloud2(height=2, width=2, point_step=20, row_step=44, is_bigendian=False)
    msg.fields = [
        PointField(name=n, offset=o, datatype=PointField.FLOAT32, count=1)
        for n, o in (("intensity", 0), ("x", 4), ("y", 8), ("z", 12))
    ] + [PointField(name="ring", offset=16, datatype=PointField.UINT16, count=1)]
    msg.data = b"".join(r.tobytes() + b"\xff" * 4 for r in rows)  # 4 padding bytes per row
    assert read_xyz(msg).tolist() == [[1, 5, 9], [2, 6, 10], [3, 7, 11], [4, 8, 12]]
    msg.data = msg.data[:-10]
    with pytest.raises(ValueError, match=r"data holds 78 bytes, the layout needs 84"):
        read_xyz(msg)
    msg.fields = msg.fields[:2]
    with pytest.raises(ValueError, match=r"no field 'y'"):
        read_xyz(msg)


def test_route_graph_stops_and_datum_travel_as_text() -> None:
    msg = routes_to_msg(GRAPH)
    assert '"type": "FeatureCollection"' in msg.data and '"abs_speed_limit": 1.5' in msg.data
    assert routes_from_msg(msg) == GRAPH
    assert stops_from_msg(stops_to_msg(STOPS)) == STOPS
    datum = Datum(latitude=30.3, longitude=120.35, altitude=8.0, heading_deg=-15.0)
    assert datum_from_msg(datum_to_msg(datum)) == datum
    with pytest.raises(MapFormatError, match=r"/map/route_graph: not valid JSON"):
        routes_from_msg(String(data="{"))
    with pytest.raises(MapFormatError, match=r"/map/datum: latitude: 91 is out of range"):
        datum_from_msg(String(data='{"latitude": 91, "longitude": 0, "altitude": 0, '
                                   '"heading_deg": 0}'))  # fmt: skip
    with pytest.raises(MapFormatError, match=r"/map/stops: station: missing"):
        stops_from_msg(String(data='{"stops": []}'))


def test_route_markers_draw_edges_nodes_and_stops() -> None:
    markers = route_markers(GRAPH, STOPS, STAMP).markers
    assert {m.header.frame_id for m in markers} == {"map"}
    by_ns: dict[str, list[Marker]] = {}
    for m in markers:
        by_ns.setdefault(m.ns, []).append(m)
    (edges,) = by_ns["route_edges"]
    assert edges.type == Marker.LINE_LIST and len(edges.points) == 2 * (2 + 1)
    assert (edges.points[2].x, edges.points[2].y) == (5.0, 1.0)
    (nodes,) = by_ns["route_nodes"]
    assert nodes.type == Marker.SPHERE_LIST and len(nodes.points) == 3
    assert nodes.colors[0] == NODE_COLOURS["station"] and nodes.colors[2] == NODE_COLOURS["stop"]
    arrows = by_ns["stops"]
    assert [m.type for m in arrows] == [Marker.ARROW] * 3
    assert yaw_of_msg(arrows[2].pose.orientation) == pytest.approx(math.pi / 2)
    assert (arrows[2].pose.position.x, arrows[2].pose.position.y) == (10.0, 8.0)
    assert [m.text for m in by_ns["labels"]] == [
        "depot: depot_loading", "depot: depot_charging", "lab"
    ]  # fmt: skip
    ids = [(m.ns, m.id) for m in markers]
    assert len(set(ids)) == len(ids)
