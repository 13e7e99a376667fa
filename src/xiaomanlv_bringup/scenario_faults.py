"""A scenario's locker faults as the locker's own fault records.

The locker's simulated driver takes its faults as data (:class:`xiaomanlv_locker.hardware.
SimFault`) and never imports the simulator; bringup, the one package that sees both, turns a
scenario's ``DoorJam`` entries into ``jammed`` records here.
"""

from __future__ import annotations

from xiaomanlv_locker.hardware import SimFault
from xiaomanlv_sim.scenario import DoorJam, Scenario


def locker_faults(scenario: Scenario) -> list[SimFault]:
    """The scenario's door jams as ``jammed`` faults (compartment, start [s], end [s])."""
    return [
        SimFault("jammed", f.compartment, f.start, f.end)
        for f in scenario.faults
        if isinstance(f, DoorJam)
    ]
