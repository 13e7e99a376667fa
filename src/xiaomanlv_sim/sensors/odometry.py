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

Speed: the per-tick integration is a compiled kernel (``numba.njit``) that takes any number of
consecutive ticks at once (``update_many``), so the simulator feeds the encoder samples of the
ticks between two readings in one call instead of one Python call per tick.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray


@numba.njit(cache=True)
def _arc(x: float, y: float, yaw: float, ds: float, dth: float) -> tuple[float, float, float]:
    """The dynamics' exact arc integration (gz-math DiffDriveOdometry::IntegrateExact), here
    again because numba's cache does not see changes in another module's kernels;
    test_without_slip_odometry_equals_the_truth holds the two together."""
    if abs(dth) < 1e-6:
        mid = yaw + 0.5 * dth
        return x + ds * math.cos(mid), y + ds * math.sin(mid), yaw + dth
    r = ds / dth
    new = yaw + dth
    return x + r * (math.sin(new) - math.sin(yaw)), y - r * (math.cos(new) - math.cos(yaw)), new


# Odometry state vector (WheelOdometry._s).
_X, _Y, _YAW, _LEFT, _RIGHT, _TIME, _TRAVELLED, _WHEEL_SUM, _STARTED = 0, 1, 2, 3, 4, 5, 6, 7, 8
_COUNT, _HEAD = 9, 10  # speeds in the rolling window, index of the oldest one
_V_MEAN, _W_MEAN = 11, 12  # mean speeds over the window, after the last update
_NOISE_I = 13  # next row of the twist noise block
_N_STATE = 14


@dataclass(frozen=True)
class OdomReading:
    stamp: float  # [s] sim time
    frame_id: str  # "odom": the start pose
    child_frame_id: str  # "base_link"
    pose: NDArray[np.float64]  # (3,) x [m], y [m], yaw [rad] of base_link in odom
    twist: NDArray[np.float64]  # (2,) v [m/s], w [rad/s] in base_link
    pose_covariance: NDArray[np.float64]  # (3,) variances of x [m^2], y [m^2], yaw [rad^2]
    twist_covariance: NDArray[np.float64]  # (2,) variances of v [(m/s)^2], w [(rad/s)^2]


@numba.njit(cache=True)
def _integrate(
    s: NDArray[np.float64],
    speeds: NDArray[np.float64],
    samples: NDArray[np.float64],
    b: float,
) -> None:
    """``WheelOdometry.update`` for each row (left [m], right [m], time [s]) of ``samples``;
    ``speeds`` is the rolling window, (window, 2) v and w, a ring from s[_HEAD]."""
    window = speeds.shape[0]
    for k in range(samples.shape[0]):
        left = samples[k, 0]
        right = samples[k, 1]
        time = samples[k, 2]
        if s[_STARTED] == 0.0:
            s[_STARTED] = 1.0
            s[_LEFT] = left
            s[_RIGHT] = right
            s[_TIME] = time
            continue
        dt = time - s[_TIME]
        if dt < 1e-4:  # as gz-math: ignore updates closer than 0.1 ms
            continue
        dl = left - s[_LEFT]
        dr = right - s[_RIGHT]
        s[_LEFT] = left
        s[_RIGHT] = right
        s[_TIME] = time
        ds = 0.5 * (dl + dr)
        dth = (dr - dl) / b
        x, y, yaw = _arc(s[_X], s[_Y], s[_YAW], ds, dth)
        s[_X] = x
        s[_Y] = y
        s[_YAW] = (yaw + math.pi) % (2.0 * math.pi) - math.pi
        count = int(s[_COUNT])
        head = int(s[_HEAD])
        if count < window:
            slot = (head + count) % window
            s[_COUNT] = count + 1
        else:  # full: the newest replaces the oldest
            slot = head
            s[_HEAD] = (head + 1) % window
        speeds[slot, 0] = ds / dt
        speeds[slot, 1] = dth / dt
        s[_TRAVELLED] += abs(ds)
        s[_WHEEL_SUM] += abs(dl) + abs(dr)
    # Mean speeds over the window, summed oldest first (as ``sum`` over a deque).
    count = int(s[_COUNT])
    head = int(s[_HEAD])
    v = 0.0
    w = 0.0
    for k in range(count):
        slot = (head + k) % window
        v += speeds[slot, 0]
        w += speeds[slot, 1]
    s[_V_MEAN] = v / count if count else 0.0
    s[_W_MEAN] = w / count if count else 0.0


# Output vector of one reading: pose (3), twist (2), pose variances (3), twist variances (2).
_O_POSE, _O_TWIST, _O_POSE_VAR, _O_TWIST_VAR, _N_OUT = 0, 3, 5, 8, 10
# Constants vector (WheelOdometry._c).
_C_B, _C_SLIP_SD, _C_TWIST_SD, _C_TWIST_SD_W = 0, 1, 2, 3


@numba.njit(cache=True)
def _read(
    s: NDArray[np.float64],
    speeds: NDArray[np.float64],
    samples: NDArray[np.float64],
    c: NDArray[np.float64],
    noise: NDArray[np.float64],
    out: NDArray[np.float64],
) -> bool:
    """``samples`` integrated, then one reading into ``out``; True when the twist noise block
    is used up."""
    _integrate(s, speeds, samples, c[_C_B])
    v = s[_V_MEAN]
    w = s[_W_MEAN]
    used_up = False
    if c[_C_TWIST_SD] > 0.0:
        i = int(s[_NOISE_I])
        s[_NOISE_I] = i + 1
        v += c[_C_TWIST_SD] * noise[i, 0]
        w += c[_C_TWIST_SD_W] * noise[i, 1]
        used_up = i + 1 >= noise.shape[0]
    var_xy = (c[_C_SLIP_SD] * s[_TRAVELLED]) ** 2
    out[_O_POSE] = s[_X]
    out[_O_POSE + 1] = s[_Y]
    out[_O_POSE + 2] = s[_YAW]
    out[_O_TWIST] = v
    out[_O_TWIST + 1] = w
    out[_O_POSE_VAR] = var_xy
    out[_O_POSE_VAR + 1] = var_xy
    out[_O_POSE_VAR + 2] = (c[_C_SLIP_SD] * s[_WHEEL_SUM] / c[_C_B]) ** 2
    out[_O_TWIST_VAR] = c[_C_TWIST_SD] ** 2
    out[_O_TWIST_VAR + 1] = c[_C_TWIST_SD_W] ** 2
    return used_up


class WheelOdometry:
    """Encoder odometry of a differential drive (see module docstring).

    Args:
        wheel_separation: [m] b.
        slip_stddev: share of wheel travel (the model's white slip), for the covariance.
        twist_stddev: [m/s] noise on the reported speeds.
        rng: random generator for the twist noise.
        window: ticks in the rolling mean of the speeds.
    Raises:
        ValueError: a wheel separation that is not > 0, or a window below 1.
    """

    NOISE_ROWS = 512

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
        if window < 1:
            raise ValueError(f"window {window} ticks must be >= 1")
        self.b = wheel_separation
        self.slip_stddev = slip_stddev
        self.twist_stddev = twist_stddev
        self.rng = rng
        self.frame_id = frame_id
        self.child_frame_id = child_frame_id
        self._s = np.zeros(_N_STATE)
        self._speeds = np.zeros((window, 2))
        self._one = np.zeros((1, 3))
        self._none = np.zeros((0, 3))
        self._c = np.array(
            [wheel_separation, slip_stddev, twist_stddev, twist_stddev / (0.5 * wheel_separation)]
        )
        self._out = np.zeros(_N_OUT)
        self._noise = self._draw_noise()

    def _draw_noise(self) -> NDArray[np.float64]:
        """The twist noise, 512 readings' standard normal pairs at a time (the same numbers, in
        order, as ``rng.standard_normal(2)`` per reading); none without twist noise."""
        if self.twist_stddev > 0.0:
            return self.rng.standard_normal((self.NOISE_ROWS, 2))
        return np.zeros((1, 2))

    @property
    def x(self) -> float:
        """[m] integrated position in the odom frame."""
        return float(self._s[_X])

    @property
    def y(self) -> float:
        """[m]"""
        return float(self._s[_Y])

    @property
    def yaw(self) -> float:
        """[rad] integrated heading in the odom frame, in [-pi, pi)."""
        return float(self._s[_YAW])

    def update(self, left_travel: float, right_travel: float, time: float) -> None:
        """Cumulative encoder travel [m] of each wheel at sim time ``time`` [s]."""
        one = self._one
        one[0, 0], one[0, 1], one[0, 2] = left_travel, right_travel, time
        _integrate(self._s, self._speeds, one, self.b)

    def update_many(self, samples: NDArray[np.float64]) -> None:
        """Consecutive encoder samples, (n, 3) rows of left travel [m], right travel [m], sim
        time [s]: the same as ``update`` for each row in turn (the simulator feeds the ticks
        between two readings at once, ``DiffDriveDynamics.drain_encoders``)."""
        _integrate(self._s, self._speeds, samples, self.b)

    def read(self, stamp: float, samples: NDArray[np.float64] | None = None) -> OdomReading:
        """The odometry at sim time ``stamp`` [s] (pose integrated so far, noisy mean speeds).

        ``samples``: encoder samples to integrate first, as ``update_many`` takes them.
        """
        if _read(
            self._s, self._speeds, self._none if samples is None else samples, self._c,
            self._noise, self._out,
        ):  # fmt: skip
            self._noise = self._draw_noise()
            self._s[_NOISE_I] = 0.0
        o = self._out.copy()  # one buffer per reading; its fields are views of it
        return OdomReading(
            stamp=stamp,
            frame_id=self.frame_id,
            child_frame_id=self.child_frame_id,
            pose=o[_O_POSE : _O_POSE + 3],
            twist=o[_O_TWIST : _O_TWIST + 2],
            pose_covariance=o[_O_POSE_VAR : _O_POSE_VAR + 3],
            twist_covariance=o[_O_TWIST_VAR : _O_TWIST_VAR + 2],
        )
