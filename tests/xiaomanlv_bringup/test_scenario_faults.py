"""A scenario's door jams reach the locker's simulated driver as its own fault records."""

from __future__ import annotations

from xiaomanlv_bringup.scenario_faults import locker_faults
from xiaomanlv_locker.hardware import SimDriver, SimFault
from xiaomanlv_sim.scenario import DoorJam, GnssJump, Scenario


def _scenario() -> Scenario:
    return Scenario(
        name="jam",
        world="w",
        seed=1,
        duration=60.0,
        start="station",
        faults=(DoorJam(compartment=7, start=5.0, end=9.0), GnssJump(0.0, 1.0, (1.0, 0.0))),
    )


def test_door_jams_become_jammed_records() -> None:
    assert locker_faults(_scenario()) == [SimFault("jammed", 7, 5.0, 9.0)]


def test_a_jammed_door_stays_locked_in_its_window() -> None:
    now = [0.0]
    driver = SimDriver(8, faults=locker_faults(_scenario()), clock=lambda: now[0])
    now[0] = 6.0
    driver.unlock(7)
    driver.poll(now[0])
    assert driver.read(7).locked
    now[0] = 10.0
    driver.unlock(7)
    driver.poll(now[0])
    assert not driver.read(7).locked
