"""The stops' mapping form: one codec for ``maps/<site>/stops.yaml`` and the /map/stops JSON.

``{"station": {"name", "loading": stop, "charging": stop}, "stops": [stop, ...]}`` with each
stop ``{"name", "x", "y", "yaw", "building"}`` (map frame: x, y [m], yaw [rad]) and, for a stop
the map's routes do not reach, ``"unreachable": "<why>"`` (absent otherwise). The map files
(`xiaomanlv_mapping.mapfiles.stops`) read and write it as YAML; the map server publishes it as
JSON on /map/stops, which the locker (and later the mission) decode with :func:`stops_from_json`.
"""

from __future__ import annotations

import json
from typing import Any

from xiaomanlv_core.fields import Fields, FormatError
from xiaomanlv_core.types import Stop, StopSet

_STOP_KEYS = ("name", "x", "y", "yaw", "building", "unreachable")
_STOP_REQUIRED = ("name", "x", "y", "yaw")


def _stop_dict(stop: Stop) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": stop.name,
        "x": float(stop.x),
        "y": float(stop.y),
        "yaw": float(stop.yaw),
        "building": stop.building,
    }
    if stop.unreachable:
        out["unreachable"] = stop.unreachable
    return out


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


def _stop_from(f: Fields, value: Any, field: str) -> Stop:
    d = f.mapping(value, field, _STOP_REQUIRED, _STOP_KEYS)
    return Stop(
        name=f.text(d["name"], f"{field}.name"),
        x=f.number(d["x"], f"{field}.x"),
        y=f.number(d["y"], f"{field}.y"),
        yaw=f.number(d["yaw"], f"{field}.yaw"),
        building=f.text(d.get("building", ""), f"{field}.building", empty=True),
        unreachable=f.text(d.get("unreachable", ""), f"{field}.unreachable", empty=True),
    )


def stops_from_dict(data: Any, label: str, error: type[FormatError] = FormatError) -> StopSet:
    """A StopSet from its mapping form: names non-empty and unique among the stops, poses
    finite ([m], [rad]), ``building`` and ``unreachable`` (the reason) optional.

    Raises:
        FormatError: (``error``, a subclass) naming ``label`` and the field."""
    f = Fields(label, error)
    root = f.mapping(data, "", ("station", "stops"), ("station", "stops"))
    station = f.mapping(root["station"], "station", ("name", "loading", "charging"), ())
    stops: list[Stop] = []
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


def stops_to_json(stops: StopSet) -> str:
    """The /map/stops JSON of ``stops``."""
    return json.dumps(stops_to_dict(stops), allow_nan=False)


def stops_from_json(text: str, label: str, error: type[FormatError] = FormatError) -> StopSet:
    """Decode /map/stops JSON (see :func:`stops_from_dict`); not JSON is a ``error`` too."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise error(f"{label}: not valid JSON: {err}") from None
    return stops_from_dict(data, label, error)
