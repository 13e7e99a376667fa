"""Lidar odometry and its motion prior (xiaomanlv_mapping.odometry) on synthetic data."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from xiaomanlv_core.geometry import planar_pose, rpy_matrix, yaw_of
from xiaomanlv_mapping.model import ImuSeries, OdometrySeries
from xiaomanlv_mapping.odometry import LidarOdometry, MotionPrior


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


def test_the_prior_turns_by_the_gyros_tilt_rates_never_by_the_imus_orientation() -> None:
    odo = _arc()
    t = np.arange(0.0, 2.0, 0.01)
    gyro = np.tile([0.02, -0.01, 0.2], (len(t), 1))  # yaw at twice the wheels' turn rate
    accel = np.tile([0.0, 0.0, 9.81], (len(t), 1))
    level = np.tile([0.0, 0.0, 0.0, 1.0], (len(t), 1))
    tilted = np.tile(Rotation.from_euler("xyz", [0.1, -0.05, 1.0]).as_quat(), (len(t), 1))
    for orientation in (level, tilted):  # an attitude filter's output changes nothing
        imu = ImuSeries(t, gyro, accel, orientation)
        wheels = MotionPrior(odo, imu, np.eye(4))
        delta = wheels.delta(0.0, 1.0)
        rotvec = Rotation.from_matrix(delta[:3, :3]).as_rotvec()
        assert rotvec == pytest.approx([0.02, -0.01, 0.1], abs=1e-6)
        assert np.allclose(delta[:3, 3], MotionPrior(odo, None, np.eye(4)).delta(0.0, 1.0)[:3, 3])
        gyro_prior = MotionPrior(odo, imu, np.eye(4), gyro_yaw=True)
        turned = Rotation.from_matrix(gyro_prior.delta(0.0, 1.0)[:3, :3]).as_rotvec()
        assert turned == pytest.approx([0.02, -0.01, 0.2], abs=1e-6)


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
        reg = odometry.register(sweep(truth[k]), delta)
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
    reg = odometry.register(np.zeros((3, 3)), step)
    assert not reg.registered
    assert np.allclose(reg.pose, step)


def test_registration_finds_the_tilt_the_prior_does_not_know() -> None:
    """Climbing onto a 3 deg ramp with a level prior: roll and pitch are registered, not
    assumed (nothing replaces them)."""
    world = _scene()
    truth = [
        planar_pose(0.15 * k, 0.0, 0.0) @ _tilt(0.0, -math.radians(3.0) * min(k, 10) / 10.0)
        for k in range(30)
    ]
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
    odometry.insert(_sweep(world, truth[0]), truth[0])
    for k in range(1, len(truth)):
        level = planar_pose(0.15, 0.0, 0.0)  # the wheels see no pitch
        reg = odometry.register(_sweep(world, truth[k]), level)
        assert reg.registered
    error = np.linalg.inv(truth[-1]) @ odometry.pose
    assert Rotation.from_matrix(error[:3, :3]).magnitude() < math.radians(0.1)
    assert np.linalg.norm(error[:3, 3]) < 0.03


def _tilt(roll: float, pitch: float) -> NDArray[np.float64]:
    out = np.eye(4)
    out[:3, :3] = rpy_matrix(roll, pitch, 0.0)
    return out


def _sweep(world: NDArray[np.float64], pose: NDArray[np.float64]) -> NDArray[np.float64]:
    inv = np.linalg.inv(pose)
    out: NDArray[np.float64] = world @ inv[:3, :3].T + inv[:3, 3]
    return out
