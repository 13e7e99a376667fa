"""Reading a map's ``datum.yaml``: where the map frame sits on the Earth.

WGS84 latitude and longitude [deg] and ellipsoidal altitude [m] of the map origin, and
``heading_deg``, the angle from east to the map's +x axis, counter-clockwise [deg] (SDF
``<spherical_coordinates>``' convention: 0 means x east, y north), as a
:class:`xiaomanlv_core.geodesy.Datum`. The map build writes the file
(`xiaomanlv_mapping.mapfiles.datum`); the map tooling and the runtime stack (the fusion takes
GNSS fixes into the map through it) read it with this one reader.

Every error is the caller's :class:`~xiaomanlv_core.fields.FormatError` subclass (``error``),
its message naming the file (or topic) and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xiaomanlv_core.fields import Fields, FormatError
from xiaomanlv_core.geodesy import Datum
from xiaomanlv_core.yamlfile import YamlFileError, read_yaml

DATUM_KEYS = ("latitude", "longitude", "altitude", "heading_deg")


def datum_to_dict(datum: Datum) -> dict[str, float]:
    """The mapping form of ``datum`` (datum.yaml's keys, floats)."""
    return {k: float(getattr(datum, k)) for k in DATUM_KEYS}


def datum_from_dict(data: Any, label: str, error: type[FormatError] = FormatError) -> Datum:
    """A Datum from its mapping form.

    Raises:
        FormatError: (``error``) naming ``label`` and the missing, unknown or out-of-range field.
    """
    f = Fields(label, error)
    d = f.mapping(data, "", DATUM_KEYS, DATUM_KEYS)
    return Datum(
        latitude=f.in_range(d["latitude"], "latitude", -90.0, 90.0, "deg"),
        longitude=f.in_range(d["longitude"], "longitude", -180.0, 180.0, "deg"),
        altitude=f.in_range(d["altitude"], "altitude", -1000.0, 10000.0, "m"),
        heading_deg=f.in_range(d["heading_deg"], "heading_deg", -360.0, 360.0, "deg"),
    )


def read_datum(path: Path, error: type[FormatError] = FormatError) -> Datum:
    """The Datum in ``path`` (a map's ``datum.yaml``).

    Raises:
        FormatError: (``error``) naming the path: missing, unreadable, not YAML (the limits of
            `xiaomanlv_core.yamlfile`), or a missing, unknown or out-of-range field.
    """
    path = Path(path)
    try:
        data = read_yaml(path)
    except FileNotFoundError:
        raise error(f"{path}: missing") from None
    except OSError as err:
        raise error(f"{path}: cannot read: {err.strerror or err}") from None
    except YamlFileError as err:
        raise error(f"{path}: {err}") from None
    return datum_from_dict(data, str(path), error)
