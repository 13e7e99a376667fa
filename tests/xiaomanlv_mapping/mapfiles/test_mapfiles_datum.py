"""datum.yaml: where the map frame sits on the Earth, round trip and ranges."""

from __future__ import annotations

from pathlib import Path

import pytest

from xiaomanlv_mapping.mapfiles import DATUM_FILE, datum_from_dict, read_datum, write_datum
from xiaomanlv_mapping.model import Datum, MapFormatError


def test_datum_round_trip(tmp_path: Path) -> None:
    datum = Datum(latitude=-33.8688, longitude=151.2093, altitude=-12.5, heading_deg=-90.0)
    write_datum(datum, tmp_path / DATUM_FILE)
    assert read_datum(tmp_path / DATUM_FILE) == datum


def test_a_datum_out_of_range_is_refused_before_writing(tmp_path: Path) -> None:
    bad = Datum(latitude=91.0, longitude=0.0, altitude=0.0, heading_deg=0.0)
    with pytest.raises(MapFormatError, match=r"datum\.yaml: latitude: 91\.0 is out of range"):
        write_datum(bad, tmp_path / DATUM_FILE)
    assert not (tmp_path / DATUM_FILE).exists()
    with pytest.raises(MapFormatError, match=r"topic: heading_deg: missing"):
        datum_from_dict({"latitude": 1, "longitude": 2, "altitude": 3}, "topic")
