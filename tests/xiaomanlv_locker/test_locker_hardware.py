"""The simulated driver: physics, faults, people, persistence, actuation log; the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xiaomanlv_locker.config import LockerConfig
from xiaomanlv_locker.hardware import (
    Reading,
    SimDriver,
    SimFault,
    faults_from_scenario,
    make_driver,
)
from xiaomanlv_nav.config import ConfigError


class Tick:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_unlocked_door_springs_open_and_locks_only_when_closed() -> None:
    d = SimDriver(3)
    assert d.read(1) == Reading(door_closed=True, locked=True, parcel_present=False)
    d.unlock(1)
    assert d.read(1) == Reading(False, False, False)
    d.lock(1)
    assert not d.read(1).locked  # bolt cannot engage on an open door
    d.place_parcel(1, "p")
    d.close_door(1)
    d.lock(1)
    assert d.read(1) == Reading(True, True, True)


def test_fault_windows() -> None:
    clock = Tick()
    d = SimDriver(
        3,
        faults=[SimFault("jammed", 1, 1.0, 2.0), SimFault("sensor_disagree", 2, 0.0)],
        clock=clock,
    )
    clock.t = 1.5
    d.unlock(1)
    assert d.read(1).locked
    clock.t = 2.5
    d.unlock(1)
    assert not d.read(1).locked
    assert d.read(2).parcel_present  # empty, but the sensor says otherwise
    d.inject("forced_open", 3)
    assert d.read(3) == Reading(False, False, False)
    d.inject("lock_fails", 1)
    d.close_door(1)
    d.lock(1)
    assert not d.read(1).locked


def test_auto_actor_takes_or_places_then_closes() -> None:
    clock = Tick()
    d = SimDriver(2, auto_actor=True, actor_delay=1.0, clock=clock)
    d.unlock(1)
    d.poll(0.0)
    d.poll(0.5)
    assert not d.read(1).door_closed
    d.poll(1.0)
    assert d.read(1) == Reading(True, False, True)  # an operator loaded it
    d.lock(1)
    d.unlock(1)
    d.poll(2.0)
    d.poll(3.0)
    assert d.read(1) == Reading(True, False, False)
    assert d.world.taken == [d.world.taken[0]] and d.world.taken[0].startswith("sim-1")


def test_state_survives_a_new_driver_and_actuations_are_logged(tmp_path: Path) -> None:
    d = SimDriver(2, state_path=tmp_path / "hw.json", actuation_log=tmp_path / "act.jsonl")
    d.unlock(2)
    d.place_parcel(2, "p9")
    again = SimDriver(2, state_path=tmp_path / "hw.json")
    assert again.read(2) == Reading(False, False, True)
    assert again.parcel_tag(2) == "p9"
    lines = [json.loads(x) for x in (tmp_path / "act.jsonl").read_text().splitlines()]
    assert [(x["compartment"], x["action"]) for x in lines] == [(2, "unlock")]
    assert isinstance(lines[0]["t_ns"], int)


def test_people_cannot_act_through_a_closed_door() -> None:
    d = SimDriver(1)
    with pytest.raises(ValueError, match="nothing to take"):
        d.take_parcel(1)
    with pytest.raises(ValueError, match="cannot place"):
        d.place_parcel(1, "x")


def test_door_jams_from_a_scenario() -> None:
    from xiaomanlv_sim.scenario import DoorJam, GnssJump, Scenario

    scenario = Scenario(
        name="jam",
        world="w",
        seed=1,
        duration=60.0,
        start="station",
        faults=(DoorJam(compartment=7, start=5.0, end=9.0), GnssJump(0.0, 1.0, (1.0, 0.0))),
    )
    assert faults_from_scenario(scenario) == [SimFault("jammed", 7, 5.0, 9.0)]


def test_registry(tmp_path: Path) -> None:
    assert isinstance(make_driver(LockerConfig(data_dir=str(tmp_path))), SimDriver)
    with pytest.raises(ConfigError, match="'driver' = 'can' is not a known driver; known: sim"):
        make_driver(LockerConfig(data_dir=str(tmp_path), driver="can"))
