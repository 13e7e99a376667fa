"""``datum.yaml``: where the map frame sits on the Earth.

WGS84 latitude and longitude [deg] and ellipsoidal altitude [m] of the map origin, and
``heading_deg``, the angle from east to the map's +x axis, counter-clockwise [deg] (SDF
``<spherical_coordinates>``' convention: 0 means x east, y north).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xiaomanlv_mapping.mapfiles.fileio import load_yaml, map_fields, write_file, yaml_text
from xiaomanlv_mapping.model import Datum

_DATUM_KEYS = ("latitude", "longitude", "altitude", "heading_deg")


def datum_to_dict(datum: Datum) -> dict[str, float]:
    return {k: float(getattr(datum, k)) for k in _DATUM_KEYS}


def datum_from_dict(data: Any, label: str) -> Datum:
    """A Datum from its mapping form; MapFormatError naming ``label`` and the field."""
    f = map_fields(label)
    d = f.mapping(data, "", _DATUM_KEYS, _DATUM_KEYS)
    return Datum(
        latitude=f.in_range(d["latitude"], "latitude", -90.0, 90.0, "deg"),
        longitude=f.in_range(d["longitude"], "longitude", -180.0, 180.0, "deg"),
        altitude=f.in_range(d["altitude"], "altitude", -1000.0, 10000.0, "m"),
        heading_deg=f.in_range(d["heading_deg"], "heading_deg", -360.0, 360.0, "deg"),
    )


def write_datum(datum: Datum, path: Path) -> None:
    path = Path(path)
    data = datum_to_dict(datum_from_dict(datum_to_dict(datum), str(path)))
    header = (
        "Where the map frame sits on the Earth: WGS84 latitude, longitude [deg] and ellipsoidal\n"
        "altitude [m] of the map origin; heading_deg: angle from east to the map's +x axis,\n"
        "counter-clockwise [deg] (0: x east, y north), as SDF <spherical_coordinates>."
    )
    write_file(path, yaml_text(data, header))


def read_datum(path: Path) -> Datum:
    """Raises MapFormatError for a missing, unknown or out-of-range field."""
    path = Path(path)
    return datum_from_dict(load_yaml(path), str(path))
