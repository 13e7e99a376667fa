"""The simulated driver: physics, faults, people, persistence, actuation log; the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from xiaomanlv_core.config import ConfigError
from xiaomanlv_locker.config import LockerConfig
from xiaomanlv_locker.hardware import (
    Reading,
    SimDriver,
    SimFault,
    make_driver,
)


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


def test_registry(tmp_path: Path) -> None:
    assert isinstance(make_driver(LockerConfig(data_dir=str(tmp_path))), SimDriver)
    with pytest.raises(ConfigError, match="'driver' = 'can' is not a known driver; known: sim"):
        make_driver(LockerConfig(data_dir=str(tmp_path), driver="can"))


def test_state_is_journaled_per_change_and_compacted_at_start(tmp_path: Path) -> None:
    state = tmp_path / "hw.json"
    d = SimDriver(3, state_path=state)
    journal = tmp_path / "hw.json.journal"
    assert d.journal_path == journal and journal.read_bytes() == b""
    d.unlock(1)
    d.place_parcel(1, "p1")
    d.close_door(1)
    d.lock(1)
    lines = journal.read_text().splitlines()
    assert len(lines) == 4  # one line per change; the snapshot is untouched
    assert json.loads(lines[-1]) == {"c": 1, "d": True, "l": True, "p": "p1"}
    snapshot = json.loads(state.read_text())
    assert snapshot["compartments"][0]["parcel"] == ""
    again = SimDriver(3, state_path=state)  # replays, then folds the journal into the snapshot
    assert again.read(1) == Reading(True, True, True) and again.parcel_tag(1) == "p1"
    assert journal.read_bytes() == b""
    assert json.loads(state.read_text())["compartments"][0]["parcel"] == "p1"


def test_a_take_is_one_journal_line_and_a_torn_line_never_happened(tmp_path: Path) -> None:
    state = tmp_path / "hw.json"
    d = SimDriver(2, state_path=state)
    d.unlock(2)
    d.place_parcel(2, "p2")
    d.unlock(1)
    d.place_parcel(1, "p1")
    journal = tmp_path / "hw.json.journal"
    kept = journal.read_bytes()
    d.take_parcel(2)
    take = journal.read_bytes()[len(kept) :]
    assert take.count(b"\n") == 1  # emptied and recorded as taken in one write
    assert json.loads(take) == {"c": 2, "d": False, "l": False, "p": "", "t": [0, "p2"]}
    journal.write_bytes(kept + take[:-5])  # a kill cut the write short
    torn = SimDriver(2, state_path=state)
    assert torn.parcel_tag(2) == "p2" and torn.world.taken == []
    journal.write_bytes(kept + take)
    SimDriver(2, state_path=state)  # snapshot written ...
    journal.write_bytes(kept + take)  # ... and killed before the journal was emptied
    replayed = SimDriver(2, state_path=state)
    assert replayed.parcel_tag(1) == "p1" and replayed.parcel_tag(2) == ""
    assert replayed.world.taken == ["p2"]  # absolute records: the take is not repeated


def test_a_long_journal_is_compacted_while_running(tmp_path: Path) -> None:
    from xiaomanlv_locker import hardware

    state = tmp_path / "hw.json"
    d = SimDriver(1, state_path=state)
    for _ in range(hardware.JOURNAL_COMPACT // 2 + 1):
        d.unlock(1)
        d.close_door(1)
    assert len((tmp_path / "hw.json.journal").read_text().splitlines()) == 2
    assert SimDriver(1, state_path=state).read(1) == Reading(True, False, False)


def test_an_unusable_journal_line_is_named(tmp_path: Path) -> None:
    state = tmp_path / "hw.json"
    SimDriver(2, state_path=state).unlock(1)
    (tmp_path / "hw.json.journal").write_text('{"c": 1}\n')
    with pytest.raises(ConfigError, match=r"sim journal .*hw\.json\.journal line 1 unusable"):
        SimDriver(2, state_path=state)
