"""The stops' mapping form: the one codec of stops.yaml and the /map/stops JSON."""

from __future__ import annotations

import re

import pytest

from xiaomanlv_core.fields import FormatError
from xiaomanlv_core.stops import stops_from_dict, stops_from_json, stops_to_dict, stops_to_json
from xiaomanlv_core.types import Stop, StopSet

STOPS = StopSet(
    station="depot",
    loading=Stop("loading", 1.0, 2.0, 0.5),
    charging=Stop("charging", 3.0, 4.0, -0.5),
    stops=(Stop("library", 10.0, -5.0, 1.5, "library_bldg"), Stop("dorm_3", -2.0, 7.0)),
)


def test_round_trip_through_json() -> None:
    assert stops_from_json(stops_to_json(STOPS), "/map/stops") == STOPS
    assert stops_from_dict(stops_to_dict(STOPS), "stops.yaml") == STOPS


class SiteError(FormatError):
    pass


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["stops"].append(dict(d["stops"][0])), "stops[2].name"),
        (lambda d: d["stops"][0].update(x=float("nan")), "stops[0].x"),
        (lambda d: d["station"].pop("charging"), "station.charging"),
        (lambda d: d["stops"][1].update(colour="red"), "stops[1].colour"),
    ],
)
def test_errors_name_the_document_and_the_field(mutate: object, field: str) -> None:
    data = stops_to_dict(STOPS)
    mutate(data)  # type: ignore[operator]
    with pytest.raises(SiteError, match="^" + re.escape(f"/map/stops: {field}")):
        stops_from_dict(data, "/map/stops", SiteError)


def test_an_unreachable_stop_carries_its_reason_and_a_reachable_one_no_key() -> None:
    marked = Stop("annex", 5.0, 5.0, 0.0, unreachable="enclosed by obstacles")
    stops = StopSet("depot", STOPS.loading, STOPS.charging, (*STOPS.stops, marked))
    data = stops_to_dict(stops)
    assert data["stops"][2]["unreachable"] == "enclosed by obstacles"
    assert "unreachable" not in data["stops"][0]  # files of maps built before stay the same
    assert stops_from_json(stops_to_json(stops), "/map/stops") == stops


def test_not_json_is_a_format_error_naming_the_topic() -> None:
    with pytest.raises(FormatError, match=r"^/map/stops: not valid JSON"):
        stops_from_json("{", "/map/stops")
    with pytest.raises(FormatError, match=r"^/map/stops: top level: expected a mapping"):
        stops_from_json("[1, 2]", "/map/stops")
