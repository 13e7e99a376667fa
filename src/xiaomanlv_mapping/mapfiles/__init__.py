"""Map files: a :class:`~xiaomanlv_mapping.model.PriorMap` on disk as ``maps/<site>/``.

One module per file format (docs/mapping.md, "Map files")::

    maps/<site>/
      info.yaml                     info.py: format, site, provenance, a seal of every file
      map.yaml  map.pgm             grid.py: 2D occupancy grid, Nav2 map_server (trinary, P5)
      pointcloud_map/               pcd.py: binary PCD tiles (x y z float32) and Autoware's
        pointcloud_map_metadata.yaml  dynamic-map-loading metadata
        tile_<i>_<j>.pcd
      datum.yaml                    datum.py: WGS84 position and heading of the map origin
      routes.geojson                routes.py: route graph, Nav2 route server GeoJSON
      stops.yaml                    stops.py: station and delivery stops
      trajectory.tum                trajectory.py: the optimised mapping drive (optional)

directory.py reads, seals and writes the whole directory, all or nothing (:func:`write_map`,
:func:`load_map`); layout.py names the files; sites.py finds ``maps/<site>``; fields.py and
fileio.py are what every format shares: errors that name the file and the field, atomic
writes. Every error is a :class:`~xiaomanlv_mapping.model.MapFormatError` naming the file and
the field. This package re-exports the public API; the per-file readers and writers are
public for tools.
"""

from __future__ import annotations

from xiaomanlv_mapping.mapfiles.datum import datum_from_dict, datum_to_dict, read_datum, write_datum
from xiaomanlv_mapping.mapfiles.directory import LoadedMap, load_map, read_map, seal_map, write_map
from xiaomanlv_mapping.mapfiles.grid import (
    FREE_THRESH,
    OCCUPIED_THRESH,
    PGM_FREE,
    PGM_OCCUPIED,
    PGM_UNKNOWN,
    grid_yaml_text,
    read_grid,
    read_pgm,
    write_grid,
    write_pgm,
)
from xiaomanlv_mapping.mapfiles.info import FileSeal, MapInfo, file_seal, read_info, write_info
from xiaomanlv_mapping.mapfiles.layout import (
    CLOUD_DIR,
    CLOUD_METADATA,
    DATUM_FILE,
    FORMAT,
    FORMAT_VERSION,
    GRID_IMAGE,
    GRID_YAML,
    HAND_EDITABLE,
    INFO_FILE,
    MAP_FRAME,
    ROUTES_FILE,
    STOPS_FILE,
    TRAJECTORY_FILE,
)
from xiaomanlv_mapping.mapfiles.pcd import (
    DEFAULT_TILE_SIZE,
    TILE_TOLERANCE,
    read_cloud,
    read_pcd,
    tile_cloud,
    tile_name,
    write_cloud,
    write_pcd,
)
from xiaomanlv_mapping.mapfiles.routes import (
    GEOJSON_CRS,
    NODE_KINDS,
    NODE_TOLERANCE,
    geojson_text,
    read_routes,
    routes_from_geojson,
    routes_geojson_text,
    routes_to_geojson,
    write_routes,
)
from xiaomanlv_mapping.mapfiles.sites import maps_roots, resolve_map_dir, site_map_dir
from xiaomanlv_mapping.mapfiles.stops import read_stops, write_stops
from xiaomanlv_mapping.mapfiles.trajectory import read_trajectory, write_trajectory

__all__ = [
    "CLOUD_DIR",
    "CLOUD_METADATA",
    "DATUM_FILE",
    "DEFAULT_TILE_SIZE",
    "FORMAT",
    "FORMAT_VERSION",
    "FREE_THRESH",
    "GEOJSON_CRS",
    "GRID_IMAGE",
    "GRID_YAML",
    "HAND_EDITABLE",
    "INFO_FILE",
    "MAP_FRAME",
    "NODE_KINDS",
    "NODE_TOLERANCE",
    "OCCUPIED_THRESH",
    "PGM_FREE",
    "PGM_OCCUPIED",
    "PGM_UNKNOWN",
    "ROUTES_FILE",
    "STOPS_FILE",
    "TILE_TOLERANCE",
    "TRAJECTORY_FILE",
    "FileSeal",
    "LoadedMap",
    "MapInfo",
    "datum_from_dict",
    "datum_to_dict",
    "file_seal",
    "geojson_text",
    "grid_yaml_text",
    "load_map",
    "maps_roots",
    "read_cloud",
    "read_datum",
    "read_grid",
    "read_info",
    "read_map",
    "read_pcd",
    "read_pgm",
    "read_routes",
    "read_stops",
    "read_trajectory",
    "resolve_map_dir",
    "routes_from_geojson",
    "routes_geojson_text",
    "routes_to_geojson",
    "seal_map",
    "site_map_dir",
    "tile_cloud",
    "tile_name",
    "write_cloud",
    "write_datum",
    "write_grid",
    "write_info",
    "write_map",
    "write_pcd",
    "write_pgm",
    "write_routes",
    "write_stops",
    "write_trajectory",
]
