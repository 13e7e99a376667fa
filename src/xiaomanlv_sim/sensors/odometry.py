"""Wheel odometry the way Gazebo's DiffDrive system computes it, from the wheel encoders.

gz-math ``DiffDriveOdometry``: every physics tick the change of each wheel's rolling travel
gives ``ds = (dl + dr) / 2`` and ``dtheta = (dr - dl) / b``; the pose integrates them with the
exact arc (second-order Runge-Kutta when nearly straight) from (0, 0, 0) at start (the odom
frame is the start pose), and the reported speeds are rolling means over the last
``window`` ticks (Gazebo's ``velocityRollingWindowSize``, 10). The encoders see the commanded
wheel rotation, the ground sees the slipped travel (:mod:`xiaomanlv_sim.dynamics`), so odometry
drifts from the truth by the slip, as on the robot.

Sim-only additions: white noise of ``twist_stddev`` [m/s] on the reported linear speed and
``twist_stddev / (b/2)`` [rad/s] on the angular speed (a wheel-rim speed error), and
covariances. Pose covariance is the systematic bound ``(slip_stddev * travelled)^2`` on x and y
and ``(slip_stddev * (|left| + |right|) / b)^2`` on yaw, growing with distance as
Siegwart et al., *Introduction to Autonomous Mobile Robots* (2011) 5.2.4 describe.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_sim.dynamics import integrate_arc


@dataclass(frozen=True)
class OdomReading:
    stamp: float  # [s] sim time
    frame_id: str  # "odom": the start pose
    child_frame_id: str  # "base_link"
    pose: NDArray[np.float64]  # (3,) x [m], y [m], yaw [rad] of base_link in odom
    twist: NDArray[np.float64]  # (2,) v [m/s], w [rad/s] in base_link
    pose_covariance: NDArray[np.float64]  # (3,) variances of x [m^2], y [m^2], yaw [rad^2]
    twist_covariance: NDArray[np.float64]  # (2,) variances of v [(m/s)^2], w [(rad/s)^2]


class WheelOdometry:
    """Encoder odometry of a differential drive (see module docstring).

    Args:
        wheel_separation: [m] b.
        slip_stddev: share of wheel travel (the model's white slip), for the covariance.
        twist_stddev: [m/s] noise on the reported speeds.
        rng: random generator for the twist noise.
        window: ticks in the rolling mean of the speeds.
    """

    def __init__(
        self,
        wheel_separation: float,
        slip_stddev: float,
        twist_stddev: float,
        rng: np.random.Generator,
        *,
        window: int = 10,
        frame_id: str = "odom",
        child_frame_id: str = "base_link",
    ) -> None:
        if wheel_separation <= 0.0:
            raise ValueError(f"wheel_separation {wheel_separation} m must be > 0")
        self.b = wheel_separation
        self.slip_stddev = slip_stddev
        self.twist_stddev = twist_stddev
        self.rng = rng
        self.frame_id = frame_id
        self.child_frame_id = child_frame_id
        self.x = self.y = self.yaw = 0.0
        self._left: float | None = None
        self._right = 0.0
        self._time = 0.0
        self._v: deque[float] = deque(maxlen=window)
        self._w: deque[float] = deque(maxlen=window)
        self._travelled = 0.0
        self._wheel_sum = 0.0

    def update(self, left_travel: float, right_travel: float, time: float) -> None:
        """Cumulative encoder travel [m] of each wheel at sim time ``time`` [s]."""
        if self._left is None:
            self._left, self._right, self._time = left_travel, right_travel, time
            return
        dt = time - self._time
        if dt < 1e-4:  # as gz-math: ignore updates closer than 0.1 ms
            return
        dl = left_travel - self._left
        dr = right_travel - self._right
        self._left, self._right, self._time = left_travel, right_travel, time
        ds = 0.5 * (dl + dr)
        dth = (dr - dl) / self.b
        x, y, yaw = integrate_arc(self.x, self.y, self.yaw, ds, dth)
        self.x, self.y = x, y
        self.yaw = (yaw + math.pi) % (2.0 * math.pi) - math.pi
        self._v.append(ds / dt)
        self._w.append(dth / dt)
        self._travelled += abs(ds)
        self._wheel_sum += abs(dl) + abs(dr)

    def read(self, stamp: float) -> OdomReading:
        """The odometry at sim time ``stamp`` [s] (pose integrated so far, noisy mean speeds)."""
        v = sum(self._v) / len(self._v) if self._v else 0.0
        w = sum(self._w) / len(self._w) if self._w else 0.0
        sd_w = self.twist_stddev / (0.5 * self.b)
        if self.twist_stddev > 0.0:
            n = self.rng.standard_normal(2)
            v += self.twist_stddev * float(n[0])
            w += sd_w * float(n[1])
        var_xy = (self.slip_stddev * self._travelled) ** 2
        var_yaw = (self.slip_stddev * self._wheel_sum / self.b) ** 2
        return OdomReading(
            stamp=stamp,
            frame_id=self.frame_id,
            child_frame_id=self.child_frame_id,
            pose=np.array([self.x, self.y, self.yaw]),
            twist=np.array([v, w]),
            pose_covariance=np.array([var_xy, var_xy, var_yaw]),
            twist_covariance=np.array([self.twist_stddev**2, sd_w**2]),
        )
