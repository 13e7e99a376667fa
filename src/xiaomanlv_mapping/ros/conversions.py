"""Map products <-> ROS messages, for the map server and the nodes that consume the map.

- Grid <-> nav_msgs/OccupancyGrid: ``data`` row-major from the origin cell (row 0 = lowest y),
  as the model's ``Grid.cells`` already is; the origin's yaw becomes a z-rotation.
- Cloud -> sensor_msgs/PointCloud2: fields x, y, z FLOAT32 at offsets 0, 4, 8, point step 12,
  little-endian, one row, dense (:func:`xiaomanlv_core.ros.pointcloud2.xyz_cloud`; its
  ``read_xyz`` reads the map and a lidar scan alike).
- Route graph, stops and datum travel as std_msgs/String: the graph as the GeoJSON text of
  routes.geojson (Nav2's route server format), stops and datum as JSON of their YAML mappings.
- Route graph and stops -> visualization_msgs/MarkerArray for RViz.
"""

from __future__ import annotations

import array
import json
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point
from nav_msgs.msg import OccupancyGrid
from numpy.typing import NDArray
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import ColorRGBA, String
from visualization_msgs.msg import Marker, MarkerArray

from xiaomanlv_core.ros.pointcloud2 import xyz_cloud
from xiaomanlv_core.ros.poses import yaw_of_msg, yaw_quaternion_msg
from xiaomanlv_core.stops import stops_from_json, stops_to_json
from xiaomanlv_core.types import Stop
from xiaomanlv_mapping.mapfiles import (
    MAP_FRAME,
    datum_from_dict,
    datum_to_dict,
    routes_from_geojson,
    routes_geojson_text,
)
from xiaomanlv_mapping.model import (
    Datum,
    Grid,
    MapFormatError,
    RouteGraph,
    StopSet,
)


# ---- occupancy grid ------------------------------------------------------------------------------
def grid_to_msg(grid: Grid, stamp: Time, frame_id: str = MAP_FRAME) -> OccupancyGrid:
    """nav_msgs/OccupancyGrid of ``grid``; ``map_load_time`` and the header carry ``stamp``."""
    cells = np.ascontiguousarray(grid.cells, dtype=np.int8)
    height, width = cells.shape
    msg = OccupancyGrid()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.info.map_load_time = stamp
    msg.info.resolution = float(grid.resolution)
    msg.info.width = int(width)
    msg.info.height = int(height)
    x, y, yaw = (float(v) for v in grid.origin)
    msg.info.origin.position.x, msg.info.origin.position.y = x, y
    msg.info.origin.orientation = yaw_quaternion_msg(yaw)
    msg.data = array.array("b", cells.tobytes())  # rclpy takes array.array without a copy loop
    return msg


def grid_from_msg(msg: OccupancyGrid) -> Grid:
    """The Grid of an OccupancyGrid; the origin's yaw from its orientation.

    Raises:
        ValueError: ``data`` does not hold width x height cells.
    """
    width, height = int(msg.info.width), int(msg.info.height)
    data = np.array(msg.data, dtype=np.int8)
    if data.size != width * height:
        raise ValueError(f"OccupancyGrid data holds {data.size} cells, not {width} x {height}")
    origin = msg.info.origin
    return Grid(
        resolution=float(msg.info.resolution),
        origin=(
            float(origin.position.x),
            float(origin.position.y),
            yaw_of_msg(origin.orientation),
        ),
        cells=data.reshape(height, width).copy(),
    )


# ---- point cloud ---------------------------------------------------------------------------------
def cloud_to_msg(
    points: NDArray[np.float32], stamp: Time, frame_id: str = MAP_FRAME
) -> PointCloud2:
    """PointCloud2 with x, y, z FLOAT32 [m] (point step 12, one row, little-endian, dense)."""
    return xyz_cloud(points, stamp, frame_id)


# ---- route graph, stops, datum as text -----------------------------------------------------------
def routes_to_msg(graph: RouteGraph) -> String:
    """The GeoJSON text of routes.geojson (what Nav2's route server reads)."""
    return String(data=routes_geojson_text(graph))


def _json(msg: String, topic: str) -> Any:
    try:
        return json.loads(msg.data)
    except json.JSONDecodeError as err:
        raise MapFormatError(f"{topic}: not valid JSON: {err}") from None


def routes_from_msg(msg: String, topic: str = "/map/route_graph") -> RouteGraph:
    """Raises MapFormatError naming ``topic`` and the feature's field."""
    return routes_from_geojson(_json(msg, topic), topic)


def stops_to_msg(stops: StopSet) -> String:
    """JSON of the stops.yaml mapping: ``{"station": {name, loading, charging}, "stops": []}``."""
    return String(data=stops_to_json(stops))


def stops_from_msg(msg: String, topic: str = "/map/stops") -> StopSet:
    return stops_from_json(msg.data, topic, MapFormatError)


def datum_to_msg(datum: Datum) -> String:
    """JSON ``{"latitude", "longitude", "altitude", "heading_deg"}`` of the map origin."""
    return String(data=json.dumps(datum_to_dict(datum), allow_nan=False))


def datum_from_msg(msg: String, topic: str = "/map/datum") -> Datum:
    return datum_from_dict(_json(msg, topic), topic)


# ---- RViz markers --------------------------------------------------------------------------------
EDGE_COLOUR = ColorRGBA(r=0.1, g=0.6, b=1.0, a=0.9)
NODE_COLOURS = {
    "junction": ColorRGBA(r=0.9, g=0.9, b=0.9, a=1.0),
    "end": ColorRGBA(r=0.5, g=0.5, b=0.5, a=1.0),
    "stop": ColorRGBA(r=1.0, g=0.6, b=0.0, a=1.0),
    "station": ColorRGBA(r=0.2, g=0.9, b=0.2, a=1.0),
}
STOP_COLOUR = ColorRGBA(r=1.0, g=0.6, b=0.0, a=1.0)
STATION_COLOUR = ColorRGBA(r=0.2, g=0.9, b=0.2, a=1.0)
TEXT_COLOUR = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
MARKER_Z = 0.1  # [m] above the ground, so markers draw over the grid
LINE_WIDTH = 0.3  # [m]
NODE_SIZE = 1.0  # [m]
TEXT_SIZE = 1.5  # [m]


def _marker(ns: str, marker_id: int, kind: int, stamp: Time, frame_id: str) -> Marker:
    m = Marker()
    m.header.stamp = stamp
    m.header.frame_id = frame_id
    m.ns, m.id, m.type, m.action = ns, marker_id, kind, Marker.ADD
    m.pose.orientation.w = 1.0
    m.frame_locked = True
    return m


def _point(x: float, y: float, z: float = MARKER_Z) -> Point:
    return Point(x=float(x), y=float(y), z=float(z))


def route_markers(
    graph: RouteGraph, stops: StopSet, stamp: Time, frame_id: str = MAP_FRAME
) -> MarkerArray:
    """RViz markers of the map's routes and stops (they never expire):

    ``route_edges`` one LINE_LIST of every edge's polyline; ``route_nodes`` one SPHERE_LIST
    coloured by kind; ``stops`` an ARROW per stop, loading and charging pose (facing yaw);
    ``labels`` a TEXT_VIEW_FACING with each stop's and the station's name.
    """
    out = MarkerArray()
    edges = _marker("route_edges", 0, Marker.LINE_LIST, stamp, frame_id)
    edges.scale.x = LINE_WIDTH
    edges.color = EDGE_COLOUR
    for edge in graph.edges:
        for (x0, y0), (x1, y1) in zip(edge.points[:-1], edge.points[1:], strict=True):
            edges.points += [_point(x0, y0), _point(x1, y1)]
    nodes = _marker("route_nodes", 0, Marker.SPHERE_LIST, stamp, frame_id)
    nodes.scale.x = nodes.scale.y = nodes.scale.z = NODE_SIZE
    nodes.color = NODE_COLOURS["junction"]
    for node in graph.nodes:
        nodes.points.append(_point(node.x, node.y))
        nodes.colors.append(NODE_COLOURS.get(node.kind, NODE_COLOURS["junction"]))
    out.markers += [edges, nodes]
    poses: list[tuple[Stop, ColorRGBA]] = [
        (stops.loading, STATION_COLOUR),
        (stops.charging, STATION_COLOUR),
        *((s, STOP_COLOUR) for s in stops.stops),
    ]
    for i, (stop, colour) in enumerate(poses):
        arrow = _marker("stops", i, Marker.ARROW, stamp, frame_id)
        arrow.pose.position = _point(stop.x, stop.y)
        arrow.pose.orientation = yaw_quaternion_msg(stop.yaw)
        arrow.scale.x, arrow.scale.y, arrow.scale.z = 2.0, 0.4, 0.4
        arrow.color = colour
        label = _marker("labels", i, Marker.TEXT_VIEW_FACING, stamp, frame_id)
        label.pose.position = _point(stop.x, stop.y, 2.0)
        label.scale.z = TEXT_SIZE
        label.color = TEXT_COLOUR
        label.text = stop.name if i >= 2 else f"{stops.station}: {stop.name}"
        out.markers += [arrow, label]
    return out
