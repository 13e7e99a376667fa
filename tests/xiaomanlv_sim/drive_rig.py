"""Hand-built stand-ins for the drive's inputs (DiffDriveSpec, BodySpec, the ground), shared by
the dynamics and odometry tests so they need no robot model file."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Drive:
    wheel_separation: float = 0.6
    wheel_radius: float = 0.15
    max_velocity: float = 1.5
    min_velocity: float = -0.5
    max_angular_velocity: float = 1.0
    max_linear_acceleration: float = 1.0
    min_linear_acceleration: float = -2.0
    max_angular_acceleration: float = 2.0
    slip_stddev: float = 0.0


@dataclass(frozen=True)
class Body:
    length: float = 1.2
    box_pose: NDArray[np.float64] = field(default_factory=lambda: np.eye(4))
    max_roll: float = 0.35
    max_pitch: float = 0.35
    max_step: float = 0.12


class Flat:
    def ground_height(self, xy: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.zeros(len(xy))
