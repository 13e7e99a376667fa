"""Gravity's direction in base_link from the accelerometer, less the motion the wheels measure.

An accelerometer measures the specific force ``f = R^T (a + g e_z)`` in its own frame (R: map <-
body, a: the body's acceleration, g e_z: "up"): gravity plus the vehicle's own acceleration,
which is what turns braking and cornering into tilt in an attitude filter (the IMU's reported
orientation on the quick university drive: 7.6 mrad RMS off the truth, 22 mrad at worst). A
ground robot moves along its body x, so strapdown kinematics (Titterton & Weston, *Strapdown
Inertial Navigation Technology*, 2nd ed., sec. 3.4: ``a_b = dv_b/dt + omega_b x v_b``) give its
acceleration in base_link from the wheel speed ``v`` and the gyro ``omega``:

    a_b = (dv/dt, v omega_z, -v omega_y)

Subtracted from ``f``, what is left is gravity, the accelerometer's noise and its turn-on bias.
Averaged over a window (each sample carried into base_link at the window's middle by the
integrated gyro, so a turn within the window does not smear it), one window gives one
measurement of "up" in base_link, as the levelling of a strapdown INS does at rest (Titterton &
Weston sec. 10.2) and LIO-SAM's gravity alignment does in motion. Windows do not overlap, so the
measurements' errors are independent; on the 300 m university drive they are 1.7 mrad RMS (after
the bias), uncorrelated beyond one window, against 6.1 mrad for the IMU's own orientation.

Each window's ``sigma`` [rad per tilt axis] is ``sqrt(floor^2 + s^2 / n)``: ``s`` the scatter
of its ``n`` samples about their mean (in rad, that is divided by g), ``floor`` what the wheels
do not measure (their speed's own error, slip, the lever arm of the mounting). A window whose
specific force's magnitude leaves g by more than ``max_deviation`` (a kerb's jolt, a collision,
the wheels slipping) or whose samples span a gap is dropped. The accelerometer's bias is not
removed here: it is a constant tilt in base_link that the pose graph estimates
(`xiaomanlv_mapping.posegraph.PoseGraph.add_attitude_bias`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from xiaomanlv_mapping.model import ImuSeries, OdometrySeries

GRAVITY = 9.80665  # [m/s^2] standard gravity (only the direction is used; the magnitude gates)


@dataclass(frozen=True)
class GravitySeries:
    """Measurements of "up" (the map's +z) in base_link, one per window."""

    stamps: NDArray[np.float64]  # (M,) [s] middle of each window
    up: NDArray[np.float64]  # (M,3) unit vectors in base_link
    sigma: NDArray[np.float64]  # (M,) [rad] standard deviation per tilt axis

    def __len__(self) -> int:
        return len(self.stamps)


def _empty() -> GravitySeries:
    return GravitySeries(np.zeros(0), np.zeros((0, 3)), np.zeros(0))


def gravity_directions(
    imu: ImuSeries,
    odometry: OdometrySeries,
    imu_pose: NDArray[np.float64],
    *,
    window: float,
    sigma_floor: float,
    max_deviation: float,
) -> GravitySeries:
    """One measurement of "up" in base_link per ``window`` seconds of the drive (module
    docstring).

    Args:
        imu: /imu/data (stamps increasing; orientation unused).
        odometry: /wheel/odom (stamps increasing); its forward speed is the body's.
        imu_pose: 4x4 base_link <- imu.
        window: [s] length of each averaging window.
        sigma_floor: [rad] per tilt axis, the error a window keeps however many samples it has.
        max_deviation: a window is dropped when its mean specific force, less the motion,
            differs from g by more than this share (0.05: 5 %).
    Returns:
        The measurements, in time order (empty without IMU or odometry).
    """
    t = np.asarray(imu.stamps, float)
    if len(t) < 4 or len(odometry.stamps) < 2:
        return _empty()
    rate = 1.0 / float(np.median(np.diff(t)))
    n = max(round(window * rate), 2)
    bins = len(t) // n
    if bins == 0:
        return _empty()
    rot_bi = np.asarray(imu_pose, float)[:3, :3]
    gyro = imu.angular_velocity @ rot_bi.T  # base_link [rad/s]
    force = imu.linear_acceleration @ rot_bi.T  # base_link [m/s^2]
    speed = odometry.twists[:, 0]
    v = np.interp(t, odometry.stamps, speed)
    dv = np.interp(t, odometry.stamps, np.gradient(speed, odometry.stamps))
    motion = np.stack([dv, v * gyro[:, 2], -v * gyro[:, 1]], axis=1)
    f = (force - motion)[: bins * n].reshape(bins, n, 3)
    w = gyro[: bins * n].reshape(bins, n, 3)
    tt = t[: bins * n].reshape(bins, n)
    dt = np.diff(tt, axis=1)
    whole = (dt.max(axis=1) <= 3.0 / rate) & (
        (odometry.stamps[0] <= tt[:, 0]) & (tt[:, -1] <= odometry.stamps[-1])
    )
    # base_link(first sample) <- base_link(sample i) by the gyro, trapezoid steps; then carried
    # to the window's middle sample.
    step = Rotation.from_rotvec((0.5 * (w[:, 1:] + w[:, :-1]) * dt[..., None]).reshape(-1, 3))
    step_m = step.as_matrix().reshape(bins, n - 1, 3, 3)
    cum = np.empty((bins, n, 3, 3))
    cum[:, 0] = np.eye(3)
    for i in range(1, n):
        cum[:, i] = cum[:, i - 1] @ step_m[:, i - 1]
    mid = n // 2
    to_mid = np.einsum("bji,bnjk->bnik", cum[:, mid], cum)  # mid <- first <- i
    f_mid = np.einsum("bnij,bnj->bni", to_mid, f)
    mean = f_mid.mean(axis=1)
    norm = np.linalg.norm(mean, axis=1)
    scatter = np.sqrt(np.var(f_mid[:, :, :2], axis=1).mean(axis=1)) / GRAVITY
    keep = whole & (np.abs(norm / GRAVITY - 1.0) <= max_deviation)
    sigma = np.sqrt(sigma_floor**2 + scatter**2 / n)
    return GravitySeries(
        stamps=tt[keep, mid].copy(),
        up=mean[keep] / norm[keep, None],
        sigma=sigma[keep],
    )


def tilt_of(up: NDArray[np.float64]) -> tuple[float, float]:
    """Roll and pitch [rad] of a body that sees the map's +z as ``up`` (a unit 3-vector in the
    body frame)."""
    x, y, z = (float(c) for c in up)
    return math.atan2(y, z), math.atan2(-x, math.hypot(y, z))
