"""The exchanged types (xiaomanlv_core.types): one Stop for sidecars and maps."""

from __future__ import annotations

import dataclasses

import pytest

from xiaomanlv_core.types import Pose2D, Station, Stop, StopSet


def test_a_stop_is_flat_and_gives_its_pose() -> None:
    stop = Stop("library_west", 31.0, 70.0, 0.5, "library", entrance=(29.0, 70.0))
    assert stop.pose == Pose2D(31.0, 70.0, 0.5)
    assert Stop("x", 1.0, 2.0) == Stop(name="x", x=1.0, y=2.0, yaw=0.0, building="")
    with pytest.raises(dataclasses.FrozenInstanceError):
        stop.x = 0.0  # type: ignore[misc]


def test_a_map_stop_set_from_a_site_station_drops_entrances() -> None:
    station = Station("depot", loading=Pose2D(0.0, -2.0, -1.5), charging=Pose2D(4.0, -2.0, -1.5))
    stops = [Stop("lab", 10.0, 8.0, 1.5, "physics", entrance=(10.0, 10.0))]
    got = StopSet.of(station, stops)
    assert got == StopSet(
        station="depot",
        loading=Stop("loading", 0.0, -2.0, -1.5),
        charging=Stop("charging", 4.0, -2.0, -1.5),
        stops=(Stop("lab", 10.0, 8.0, 1.5, "physics"),),
    )
    assert got.station_record() == station
