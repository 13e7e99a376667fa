"""The localisation stack in lockstep with the simulator: the localiser and the fusion as their
nodes run them, without DDS, for bench/localization.py and the tests.

Each simulator reading goes through the message the ``sim`` node publishes
(`xiaomanlv_sim.ros.conversions`) and the nav nodes' own conversions into their cores
(`xiaomanlv_nav.localization`, `xiaomanlv_nav.fusion`), built from the same config dataclass
defaults the nodes declare as parameters, and the outputs are wired as the graph wires them:
the localiser is seeded by the fusion's prediction at each sweep, its pose goes into the fusion.
Nothing here reads the simulator's truth.

Until both cores have landed, :func:`available` is False and :func:`unavailable_reason` says
what is missing; the bench then reports the stack's figures as null.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_bringup.localization_evaluation import PoseReport, StateReport
from xiaomanlv_core.robot import RobotSpec

Row = tuple[float, float, float, float]  # x, y, z [m], yaw [rad] in the map frame

_NEEDED = {
    "xiaomanlv_nav.fusion.ekf": "the fusion core (issue 15 item 2)",
    "xiaomanlv_nav.localization.localizer": "the localiser core (issue 15 item 1)",
}


def unavailable_reason() -> str:
    """Why the stack cannot run in lockstep ('' when it can)."""
    missing = []
    for module, what in _NEEDED.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(f"{module} ({what})")
    if missing:
        return f"not landed yet: {', '.join(missing)}"
    return "the cores have landed; their lockstep wiring here (Stack.feed) is not written yet"


def available() -> bool:
    return not unavailable_reason()


@dataclass(frozen=True)
class Fused:
    stamp: float  # [s]
    pose: Row
    covariance: NDArray[np.float64]  # (6, 6) x, y, z, roll, pitch, yaw (ROS order)


@dataclass
class Outputs:
    """What one reading made the stack say."""

    fused: list[Fused] = field(default_factory=list)
    states: list[StateReport] = field(default_factory=list)
    seed: NDArray[np.float64] | None = None  # 4x4 map <- base_link the localiser started from
    registered: Row | None = None  # the localiser's registered pose for this sweep


class Stack:
    """The localiser and the fusion over the prior map in ``map_dir``."""

    def __init__(self, map_dir: Path, robot: RobotSpec) -> None:
        reason = unavailable_reason()
        if reason:
            raise RuntimeError(f"localisation stack: {reason}")
        self.map_dir = map_dir
        self.robot = robot
        self.on_pose: Callable[[PoseReport], None] | None = None
        self.wait_for_start = True

    def feed(self, reading: object) -> Outputs:  # pragma: no cover - wired when the cores land
        raise NotImplementedError

    def initial_pose(self, stamp: float, x: float, y: float, yaw: float) -> None:
        raise NotImplementedError

    def gnss_accepted_between(self, start: float, end: float) -> int | None:
        raise NotImplementedError

    def timings(self) -> dict[str, object]:
        raise NotImplementedError

    def search_ms(self) -> float | None:
        raise NotImplementedError
