"""``stops.yaml``: the station (loading and charging poses) and the delivery stops.

Carried over from the site sidecar and made to be edited by hand. Poses are in the map frame:
x, y [m], yaw [rad] counter-clockwise from +x, facing the entrance; ``building`` is optional;
stop names are unique. The same mapping form is the map server's /map/stops JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xiaomanlv_mapping.mapfiles.fields import Fields
from xiaomanlv_mapping.mapfiles.fileio import load_yaml, write_file, yaml_text
from xiaomanlv_mapping.model import MapStop, StopSet

_STOP_KEYS = ("name", "x", "y", "yaw", "building")
_STOP_REQUIRED = ("name", "x", "y", "yaw")


def _stop_dict(stop: MapStop) -> dict[str, Any]:
    return {
        "name": stop.name,
        "x": float(stop.x),
        "y": float(stop.y),
        "yaw": float(stop.yaw),
        "building": stop.building,
    }


def stops_to_dict(stops: StopSet) -> dict[str, Any]:
    """The mapping form of stops.yaml (and of the /map/stops JSON)."""
    return {
        "station": {
            "name": stops.station,
            "loading": _stop_dict(stops.loading),
            "charging": _stop_dict(stops.charging),
        },
        "stops": [_stop_dict(s) for s in stops.stops],
    }


def _stop_from(f: Fields, value: Any, field: str) -> MapStop:
    d = f.mapping(value, field, _STOP_REQUIRED, _STOP_KEYS)
    return MapStop(
        name=f.text(d["name"], f"{field}.name"),
        x=f.number(d["x"], f"{field}.x"),
        y=f.number(d["y"], f"{field}.y"),
        yaw=f.number(d["yaw"], f"{field}.yaw"),
        building=f.text(d.get("building", ""), f"{field}.building", empty=True),
    )


def stops_from_dict(data: Any, label: str) -> StopSet:
    """A StopSet from its mapping form: names non-empty and unique among the stops, poses
    finite ([m], [rad]), ``building`` optional. Raises MapFormatError naming ``label``."""
    f = Fields(label)
    root = f.mapping(data, "", ("station", "stops"), ("station", "stops"))
    station = f.mapping(root["station"], "station", ("name", "loading", "charging"), ())
    stops: list[MapStop] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(f.sequence(root["stops"], "stops")):
        stop = _stop_from(f, item, f"stops[{i}]")
        if stop.name in seen:
            raise f.fail(
                f"stops[{i}].name",
                f"duplicate stop name {stop.name!r} (also stops[{seen[stop.name]}])",
            )
        seen[stop.name] = i
        stops.append(stop)
    return StopSet(
        station=f.text(station["name"], "station.name"),
        loading=_stop_from(f, station["loading"], "station.loading"),
        charging=_stop_from(f, station["charging"], "station.charging"),
        stops=tuple(stops),
    )


def write_stops(stops: StopSet, path: Path) -> None:
    path = Path(path)
    data = stops_to_dict(stops)
    stops_from_dict(data, str(path))
    header = (
        "The station and the delivery stops, carried over from the site sidecar.\n"
        "Poses in the map frame: x, y [m], yaw [rad] counter-clockwise from +x (facing the\n"
        "entrance); building is optional. Edit by hand, then re-seal (docs/mapping.md)."
    )
    write_file(path, yaml_text(data, header, flow_leaves=True))


def read_stops(path: Path) -> StopSet:
    path = Path(path)
    return stops_from_dict(load_yaml(path), str(path))
