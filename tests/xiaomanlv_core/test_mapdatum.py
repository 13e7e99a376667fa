"""xiaomanlv_core.mapdatum: datum.yaml read with errors naming the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from xiaomanlv_core.fields import FormatError
from xiaomanlv_core.geodesy import Datum
from xiaomanlv_core.mapdatum import datum_from_dict, datum_to_dict, read_datum

REPO = Path(__file__).resolve().parents[2]


class _MyError(FormatError):
    """A reader's own error type."""


def test_shipped_datums_read() -> None:
    for path in sorted((REPO / "maps").glob("*/datum.yaml")):
        datum = read_datum(path)
        assert -90.0 <= datum.latitude <= 90.0
        assert datum_from_dict(datum_to_dict(datum), "again") == datum


def test_a_file_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "datum.yaml"
    path.write_text("latitude: 30.2\nlongitude: 120.2\naltitude: 8.0\nheading_deg: -90\n")
    assert read_datum(path) == Datum(30.2, 120.2, 8.0, -90.0)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("latitude: 1\nlongitude: 2\naltitude: 3\n", r"datum\.yaml: heading_deg: missing"),
        (
            "latitude: 91\nlongitude: 2\naltitude: 3\nheading_deg: 0\n",
            r"datum\.yaml: latitude: 91 is out of range",
        ),
        (
            "latitude: 1\nlongitude: 2\naltitude: 3\nheading_deg: 0\nspeed: 1\n",
            r"datum\.yaml: speed: unknown key",
        ),
        ("latitude: [\n", r"datum\.yaml: line 2: not valid YAML"),
        ("- 1\n", r"datum\.yaml: top level: expected a mapping"),
    ],
)
def test_bad_files_name_the_file_and_field(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "datum.yaml"
    path.write_text(text)
    with pytest.raises(_MyError, match=match):
        read_datum(path, _MyError)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match=r"nowhere/datum\.yaml: missing"):
        read_datum(tmp_path / "nowhere" / "datum.yaml")
