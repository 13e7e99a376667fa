"""map_server: serves a prior map (``maps/<site>/``) to the stack.

Loads the directory named by the ``map`` parameter (empty: ``maps/<site>`` from the source
tree, then the installed share), checks every file against info.yaml's seals and validates
every field (:func:`xiaomanlv_mapping.mapfiles.load_map`). A map that fails exits the process
at start-up with code 2 and one line naming the file and the field, as a bad parameter does.

Publishes once, latched (``xiaomanlv_core.ros.qos.LATCHED_QOS``: RELIABLE, TRANSIENT_LOCAL,
KEEP_LAST 1, so a node that starts later still gets them), all in frame ``map``:

- /map            nav_msgs/OccupancyGrid
- /map/cloud      sensor_msgs/PointCloud2 (x, y, z float32)
- /map/route_graph std_msgs/String: the route graph as GeoJSON (Nav2's route-server format)
- /map/stops      std_msgs/String: JSON ``{"station": {name, loading, charging}, "stops": [...]}``
- /map/datum      std_msgs/String: JSON ``{"latitude", "longitude", "altitude", "heading_deg"}``
  (a NavSatFix cannot carry the heading)
- /map/markers    visualization_msgs/MarkerArray: routes and stops for RViz

and /diagnostics at ``diagnostics_rate`` (steady clock): OK with the map's statistics, and
the hand-edited files (routes.geojson, stops.yaml changed since sealing) if any. It subscribes
to nothing; its parameter services refuse ``map``/``site`` changes with the reason, and every
callback is guarded (:mod:`xiaomanlv_core.ros.guard`: ``callback_errors`` in /diagnostics).
Helpers for subscribers: ``xiaomanlv_mapping.ros.conversions`` (*_from_msg).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from nav_msgs.msg import OccupancyGrid
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from xiaomanlv_core.config import ConfigError
from xiaomanlv_core.ros.diagnostics import diagnostic_array, diagnostic_status
from xiaomanlv_core.ros.entry import run_node
from xiaomanlv_core.ros.guard import guard_node
from xiaomanlv_core.ros.params import declare_config, watch_config
from xiaomanlv_core.ros.qos import LATCHED_QOS
from xiaomanlv_mapping.config import MapServerConfig
from xiaomanlv_mapping.mapfiles import LoadedMap, load_map, resolve_map_dir
from xiaomanlv_mapping.model import MappingError
from xiaomanlv_mapping.ros.conversions import (
    cloud_to_msg,
    datum_to_msg,
    grid_to_msg,
    route_markers,
    routes_to_msg,
    stops_to_msg,
)

TOPICS = {
    "/map": OccupancyGrid,
    "/map/cloud": PointCloud2,
    "/map/route_graph": String,
    "/map/stops": String,
    "/map/datum": String,
    "/map/markers": MarkerArray,
}


class MapServerNode(Node):
    def __init__(self) -> None:
        super().__init__("map_server")
        self.config = declare_config(self, MapServerConfig)
        try:
            directory = resolve_map_dir(self.config)
            self.loaded: LoadedMap = load_map(directory)
        except MappingError as err:  # MapFormatError too: names the file and the field
            raise ConfigError(str(err)) from None
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._pubs = {
            topic: self.create_publisher(t, topic, LATCHED_QOS) for topic, t in TOPICS.items()
        }
        self._pub_diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._publish_map()
        self._diag_timer = self.create_timer(
            1.0 / self.config.diagnostics_rate, self._publish_diagnostics, clock=self._steady
        )
        watch_config(self, lambda: self.config, self._reconfigure)
        self._guard = guard_node(self)
        prior = self.loaded.prior
        edited = f"; hand-edited: {', '.join(self.loaded.edited)}" if self.loaded.edited else ""
        self.get_logger().info(
            f"serving {prior.site} from {directory}: grid {self._grid_text()}, "
            f"{len(prior.cloud)} cloud points in {self.loaded.tiles} tiles, "
            f"{len(prior.routes.nodes)} route nodes, {len(prior.routes.edges)} edges, "
            f"{len(prior.stops.stops)} stops{edited}"
        )

    def _grid_text(self) -> str:
        grid = self.loaded.prior.grid
        height, width = grid.cells.shape
        return f"{width} x {height} cells at {grid.resolution:g} m"

    def _publish_map(self) -> None:
        prior = self.loaded.prior
        stamp = self.get_clock().now().to_msg()
        self._pubs["/map"].publish(grid_to_msg(prior.grid, stamp))
        self._pubs["/map/cloud"].publish(cloud_to_msg(prior.cloud, stamp))
        self._pubs["/map/route_graph"].publish(routes_to_msg(prior.routes))
        self._pubs["/map/stops"].publish(stops_to_msg(prior.stops))
        self._pubs["/map/datum"].publish(datum_to_msg(prior.datum))
        self._pubs["/map/markers"].publish(route_markers(prior.routes, prior.stops, stamp))

    def _publish_diagnostics(self) -> None:
        loaded, prior = self.loaded, self.loaded.prior
        route_length = math.fsum(e.length for e in prior.routes.edges)
        values = {
            "site": prior.site,
            "directory": str(loaded.path),
            "created": loaded.info.created,
            "grid": self._grid_text(),
            "cloud_points": str(len(prior.cloud)),
            "cloud_tiles": str(loaded.tiles),
            "cloud_voxel_m": f"{prior.cloud_voxel:g}",
            "route_nodes": str(len(prior.routes.nodes)),
            "route_edges": str(len(prior.routes.edges)),
            "route_length_m": f"{route_length:.1f}",
            "stops": str(len(prior.stops.stops)),
            "station": prior.stops.station,
            "hand_edited": ", ".join(loaded.edited) or "none",
            **self._guard.diagnostics_values(),
        }
        status = diagnostic_status(
            f"{self.get_fully_qualified_name().lstrip('/')}: summary",
            DiagnosticStatus.OK,
            f"serving {prior.site}",
            values,
        )
        self._pub_diag.publish(diagnostic_array([status], self.get_clock().now().to_msg()))

    def _reconfigure(self, config: MapServerConfig) -> None:
        changed = [f for f in ("map", "site") if getattr(config, f) != getattr(self.config, f)]
        if changed:
            raise ConfigError(f"{', '.join(changed)} cannot change at run time; restart the node")
        self.config = config
        self._diag_timer = self._guard.replace_timer(
            self._diag_timer, 1.0 / config.diagnostics_rate, self._publish_diagnostics,
            clock=self._steady,
        )  # fmt: skip


def main(args: Sequence[str] | None = None) -> int:
    return run_node(MapServerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
