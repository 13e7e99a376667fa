"""``stops.yaml``: the station (loading and charging poses) and the delivery stops.

Carried over from the site sidecar and made to be edited by hand. Poses are in the map frame:
x, y [m], yaw [rad] counter-clockwise from +x, facing the entrance; ``building`` is optional;
stop names are unique. A stop the map's routes do not reach carries ``unreachable: <why>``
(the build's reason) and has no node in routes.geojson. The mapping form itself
(`xiaomanlv_core.stops`) is also the map server's /map/stops JSON.
"""

from __future__ import annotations

from pathlib import Path

from xiaomanlv_core.stops import stops_from_dict, stops_to_dict
from xiaomanlv_mapping.mapfiles.fileio import load_yaml, write_file, yaml_text
from xiaomanlv_mapping.model import MapFormatError, StopSet


def write_stops(stops: StopSet, path: Path) -> None:
    path = Path(path)
    data = stops_to_dict(stops)
    stops_from_dict(data, str(path), MapFormatError)
    header = (
        "The station and the delivery stops, carried over from the site sidecar.\n"
        "Poses in the map frame: x, y [m], yaw [rad] counter-clockwise from +x (facing the\n"
        "entrance); building is optional; unreachable: why no route reaches the stop.\n"
        "Edit by hand, then re-seal (docs/mapping.md)."
    )
    write_file(path, yaml_text(data, header, flow_leaves=True))


def read_stops(path: Path) -> StopSet:
    path = Path(path)
    return stops_from_dict(load_yaml(path), str(path), MapFormatError)
