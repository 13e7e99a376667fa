"""Gravity from the accelerometer less the wheels' motion (xiaomanlv_mapping.gravity)."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.typing import NDArray

from xiaomanlv_core.geometry import rpy_matrix
from xiaomanlv_mapping.gravity import GRAVITY, gravity_directions, tilt_of
from xiaomanlv_mapping.model import ImuSeries, OdometrySeries

ROLL, PITCH = 0.02, -0.03  # [rad] a cross slope and an incline, held for the whole drive
WINDOW = dict(window=2.0, sigma_floor=1e-3, max_deviation=0.05)


def _drive(
    noise: float = 0.0, jolt_at: float | None = None
) -> tuple[ImuSeries, OdometrySeries, NDArray[np.float64]]:
    """20 s on a tilted plane: accelerating at 0.5 m/s^2, then braking, turning at 0.4 rad/s
    throughout; the IMU (100 Hz) measures the specific force of that motion exactly (plus
    ``noise`` [m/s^2] white, plus a 3 g jolt 0.1 s long at ``jolt_at``). Returns the IMU, the
    wheel odometry (50 Hz) and the true "up" in the body at each IMU stamp."""
    t = np.arange(0.0, 20.0, 0.01)
    accel = np.where(t < 10.0, 0.5, -0.5)  # [m/s^2]
    v = np.where(t < 10.0, 0.5 * t, 5.0 - 0.5 * (t - 10.0))
    yaw_rate = 0.4
    # map <- body = tilt(plane) @ Rz(heading): the body turns about the plane's normal, so
    # "up" seen in the body turns with the heading.
    plane_up = rpy_matrix(ROLL, PITCH, 0.0).T @ np.array([0.0, 0.0, 1.0])
    up = np.array([rpy_matrix(0.0, 0.0, yaw_rate * ti).T @ plane_up for ti in t])
    motion = np.stack([accel, v * yaw_rate, np.zeros_like(t)], axis=1)
    force = motion + GRAVITY * up
    rng = np.random.default_rng(4)
    force = force + rng.normal(0.0, noise, force.shape)
    if jolt_at is not None:
        force[(t >= jolt_at) & (t < jolt_at + 0.1), 2] += 3.0 * GRAVITY
    gyro = np.tile([0.0, 0.0, yaw_rate], (len(t), 1))
    imu = ImuSeries(t, gyro, force, np.full((len(t), 4), np.nan))
    o = np.arange(0.0, 20.0, 0.02)
    ov = np.interp(o, t, v)
    odo = OdometrySeries(
        o, np.zeros((len(o), 3)), np.stack([ov, np.full(len(o), yaw_rate)], axis=1)
    )
    return imu, odo, up


def _up_at(imu: ImuSeries, up: NDArray[np.float64], stamps: NDArray[np.float64]) -> NDArray:
    return up[np.searchsorted(imu.stamps, stamps - 1e-9)]


def test_the_wheels_motion_is_taken_out_of_the_specific_force() -> None:
    imu, odo, up = _drive()
    g = gravity_directions(imu, odo, np.eye(4), **WINDOW)
    assert len(g) == 9  # ten 2 s windows; the last runs past the odometry's last message
    assert np.allclose(g.up, _up_at(imu, up, g.stamps), atol=5e-4)  # 3.5e-4 where braking begins
    assert np.all(g.sigma < 1.2e-3)  # noiseless: about the floor
    # Without the motion taken out, braking and cornering would lean "up" by 0.05 rad and more.
    raw = imu.linear_acceleration[:200].mean(axis=0)
    assert np.degrees(np.arccos(raw @ up[100] / np.linalg.norm(raw))) > 2.0


def test_tilt_of_reads_roll_and_pitch() -> None:
    up = rpy_matrix(ROLL, PITCH, 1.0).T @ np.array([0.0, 0.0, 1.0])
    assert tilt_of(up) == pytest.approx((ROLL, PITCH))


def test_a_noisy_window_says_so_and_a_jolt_drops_its_window() -> None:
    imu, odo, _ = _drive(noise=0.5, jolt_at=5.0)
    g = gravity_directions(imu, odo, np.eye(4), **WINDOW)
    assert not np.any((g.stamps > 4.0) & (g.stamps < 6.0))  # the jolt's window is gone
    assert len(g) == 8
    expected = np.sqrt(1e-3**2 + (0.5 / GRAVITY) ** 2 / 200)
    assert np.median(g.sigma) == pytest.approx(expected, rel=0.1)


def test_the_mounting_rotation_is_applied() -> None:
    imu, odo, up = _drive()
    mount = np.eye(4)
    mount[:3, :3] = rpy_matrix(0.0, 0.0, np.pi / 2)  # base_link <- imu: the IMU turned 90 deg
    turned = ImuSeries(
        imu.stamps,
        imu.angular_velocity @ mount[:3, :3],
        imu.linear_acceleration @ mount[:3, :3],
        imu.orientation,
    )
    g = gravity_directions(turned, odo, mount, **WINDOW)
    assert np.allclose(g.up, _up_at(imu, up, g.stamps), atol=5e-4)  # 3.5e-4 where braking begins


def test_no_imu_gives_no_measurements() -> None:
    _, odo, _ = _drive()
    empty = ImuSeries(np.zeros(0), np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 4)))
    assert len(gravity_directions(empty, odo, np.eye(4), **WINDOW)) == 0
