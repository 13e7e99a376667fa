"""Lidar odometry and its motion prior (xiaomanlv_mapping.odometry) on synthetic data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from xiaomanlv_core.geometry import planar_pose, rpy_matrix, yaw_of
from xiaomanlv_mapping.model import ImuSeries, OdometrySeries
from xiaomanlv_mapping.odometry import LidarOdometry, MotionPrior, with_tilt


def _arc(n: int = 101) -> OdometrySeries:
    """1 m/s on a circle of 10 m radius, 50 Hz."""
    t = np.arange(n) * 0.02
    a = t / 10.0
    poses = np.stack([10.0 * np.sin(a), 10.0 * (1.0 - np.cos(a)), a], 1)
    return OdometrySeries(t, poses, np.tile([1.0, 0.1], (n, 1)))


def test_the_prior_is_the_wheel_odometrys_relative_motion() -> None:
    odo = _arc()
    prior = MotionPrior(odo, None, np.eye(4))
    delta = prior.delta(0.4, 1.6)
    p0, p1 = (planar_pose(*odo.poses[i]) for i in (20, 80))
    assert np.allclose(delta, np.linalg.inv(p0) @ p1, atol=1e-9)
    assert prior.tilt(1.0) is None  # no IMU, no tilt


def test_the_prior_takes_tilt_and_optionally_heading_from_the_imu() -> None:
    odo = _arc()
    t = np.arange(0.0, 2.0, 0.01)
    q = Rotation.from_euler("xyz", [0.1, -0.05, 1.0]).as_quat()
    orientation = np.tile(q, (len(t), 1))
    orientation[150:] = np.nan  # orientation not given from 1.5 s on
    gyro = np.tile([0.0, 0.0, 0.2], (len(t), 1))  # twice the wheels' turn rate
    imu = ImuSeries(t, gyro, np.tile([0.0, 0.0, 9.81], (len(t), 1)), orientation)
    wheels = MotionPrior(odo, imu, np.eye(4))
    assert wheels.tilt(1.0) == pytest.approx((0.1, -0.05))
    assert wheels.tilt(1.7) is None
    assert yaw_of(wheels.delta(0.0, 1.0)) == pytest.approx(0.1, abs=1e-6)
    gyro_prior = MotionPrior(odo, imu, np.eye(4), gyro_yaw=True)
    assert yaw_of(gyro_prior.delta(0.0, 1.0)) == pytest.approx(0.2, abs=1e-6)


def test_with_tilt_keeps_heading_and_position() -> None:
    pose = planar_pose(3.0, -2.0, 2.5)
    tilted = with_tilt(pose, (0.05, -0.02))
    assert yaw_of(tilted) == pytest.approx(2.5)
    assert np.allclose(tilted[:3, 3], pose[:3, 3])
    assert np.allclose(tilted[:3, :3], rpy_matrix(0.05, -0.02, 2.5))
    assert with_tilt(pose, None) is pose


def _scene() -> NDArray[np.float64]:
    """Ground, four walls of a 60 m yard and a few pillars, sampled every 0.1-0.2 m."""
    rng = np.random.default_rng(2)
    ground = np.column_stack([rng.uniform(-30, 30, (20000, 2)), np.zeros(20000)])
    parts = [ground]
    for axis, value in ((0, -30.0), (0, 30.0), (1, -30.0), (1, 30.0)):
        u, z = np.meshgrid(np.arange(-30, 30, 0.2), np.arange(0.1, 4.0, 0.2))
        wall = np.zeros((u.size, 3))
        wall[:, axis] = value
        wall[:, 1 - axis] = u.ravel()
        wall[:, 2] = z.ravel()
        parts.append(wall)
    for cx, cy in ((5.0, 8.0), (-12.0, 3.0), (9.0, -14.0), (-6.0, -9.0)):
        a, z = np.meshgrid(np.linspace(0, 2 * np.pi, 24, endpoint=False), np.arange(0, 3, 0.2))
        parts.append(
            np.column_stack([cx + 0.4 * np.cos(a.ravel()), cy + 0.4 * np.sin(a.ravel()), z.ravel()])
        )
    return np.vstack(parts)


def test_lidar_odometry_follows_a_known_motion() -> None:
    world = _scene()
    truth = [planar_pose(0.15 * k, 0.02 * k * k / 10.0, 0.01 * k) for k in range(40)]
    odometry = LidarOdometry(
        truth[0],
        voxel=0.5,
        map_voxel=0.4,
        map_radius=60.0,
        map_horizon=100,
        rebuild_distance=1.0,
        normal_neighbors=10,
        max_correspondence=1.0,
        max_iterations=20,
        max_correction=1.0,
        min_points=50,
    )

    def sweep(pose: NDArray[np.float64]) -> NDArray[np.float64]:
        inv = np.linalg.inv(pose)
        out: NDArray[np.float64] = world @ inv[:3, :3].T + inv[:3, 3]
        return out

    odometry.insert(sweep(truth[0]), truth[0])
    wrong = planar_pose(0.08, -0.05, 0.02)  # a poor prior: 9 cm and 1 degree off each step
    for k in range(1, len(truth)):
        delta = np.linalg.inv(truth[k - 1]) @ truth[k] @ wrong
        reg = odometry.register(sweep(truth[k]), delta, (0.0, 0.0))
        assert reg.registered
        if k % 5 == 0:
            odometry.insert(sweep(truth[k]), reg.pose)
    error = np.linalg.inv(truth[-1]) @ odometry.pose
    assert np.linalg.norm(error[:3, 3]) < 0.02
    assert abs(math.degrees(yaw_of(error))) < 0.1


def test_a_sweep_without_returns_keeps_the_prior() -> None:
    odometry = LidarOdometry(
        np.eye(4),
        voxel=0.5,
        map_voxel=0.4,
        map_radius=60.0,
        map_horizon=100,
        rebuild_distance=1.0,
        normal_neighbors=10,
        max_correspondence=1.0,
        max_iterations=20,
        max_correction=1.0,
        min_points=50,
    )
    step = planar_pose(0.2, 0.0, 0.0)
    reg = odometry.register(np.zeros((3, 3)), step, None)
    assert not reg.registered
    assert np.allclose(reg.pose, step)
