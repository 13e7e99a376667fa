"""``datum.yaml``: where the map frame sits on the Earth.

WGS84 latitude and longitude [deg] and ellipsoidal altitude [m] of the map origin, and
``heading_deg``, the angle from east to the map's +x axis, counter-clockwise [deg] (SDF
``<spherical_coordinates>``' convention: 0 means x east, y north). Reading is
`xiaomanlv_core.mapdatum`'s (the runtime stack reads the file too, and may not import this
package); here it raises :class:`~xiaomanlv_mapping.model.MapFormatError`, and the writer lives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xiaomanlv_core import mapdatum
from xiaomanlv_core.mapdatum import datum_to_dict
from xiaomanlv_mapping.mapfiles.fileio import write_file, yaml_text
from xiaomanlv_mapping.model import Datum, MapFormatError

__all__ = ["datum_from_dict", "datum_to_dict", "read_datum", "write_datum"]


def datum_from_dict(data: Any, label: str) -> Datum:
    """A Datum from its mapping form; MapFormatError naming ``label`` and the field."""
    return mapdatum.datum_from_dict(data, label, MapFormatError)


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
    return mapdatum.read_datum(Path(path), MapFormatError)
