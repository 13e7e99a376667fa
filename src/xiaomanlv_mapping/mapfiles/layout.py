"""The layout of a map directory, ``maps/<site>/``: file names, the format, the frame.

    maps/<site>/
      info.yaml                     format version, site, created (UTC), cloud voxel, tile size,
                                    builder provenance, sha256 and size of every other file
      map.yaml  map.pgm             2D occupancy grid, Nav2 map_server format (trinary, P5 PGM)
      pointcloud_map/               3D cloud: binary PCD tiles (x y z float32) and
        pointcloud_map_metadata.yaml  Autoware's dynamic-map-loading metadata
        tile_<i>_<j>.pcd
      datum.yaml                    WGS84 position and heading of the map origin
      routes.geojson                route graph, Nav2 route server GeoJSON (hand-editable)
      stops.yaml                    station and delivery stops (hand-editable)
      trajectory.tum                the optimised mapping drive (optional), TUM format

docs/mapping.md, "Map files", describes each file.
"""

from __future__ import annotations

from xiaomanlv_core.tiles import CLOUD_METADATA

__all__ = [
    "CLOUD_DIR",
    "CLOUD_METADATA",
    "DATUM_FILE",
    "FORMAT",
    "FORMAT_VERSION",
    "GRID_IMAGE",
    "GRID_YAML",
    "HAND_EDITABLE",
    "INFO_FILE",
    "MAP_FRAME",
    "ROUTES_FILE",
    "STOPS_FILE",
    "TRAJECTORY_FILE",
]

FORMAT = "xiaomanlv-map"
FORMAT_VERSION = 1
MAP_FRAME = "map"  # REP 105: every coordinate in these files is in this frame

INFO_FILE = "info.yaml"
GRID_YAML = "map.yaml"
GRID_IMAGE = "map.pgm"
CLOUD_DIR = "pointcloud_map"
DATUM_FILE = "datum.yaml"
ROUTES_FILE = "routes.geojson"
STOPS_FILE = "stops.yaml"
TRAJECTORY_FILE = "trajectory.tum"  # optional: the optimised mapping drive, TUM format
# Made to be edited by hand: a checksum that no longer matches is reported, not refused
# (every field is still validated); seal_map() records a deliberate edit.
HAND_EDITABLE = frozenset({ROUTES_FILE, STOPS_FILE})
