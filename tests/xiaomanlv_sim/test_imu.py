"""IMU model: Gazebo's noise and bias per axis, gravity in the tilted frame, motion terms."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pytest
from numpy.typing import NDArray

from xiaomanlv_sim.dynamics import GRAVITY, BodyState
from xiaomanlv_sim.sensors.imu import Imu, gazebo_bias


@dataclass(frozen=True)
class Noise:
    mean: float = 0.0
    stddev: float = 0.0
    bias_mean: float = 0.0
    bias_stddev: float = 0.0


@dataclass(frozen=True)
class ImuSpecLike:
    name: str = "imu"
    rate: float = 100.0
    pose: NDArray[np.float64] = field(default_factory=lambda: np.eye(4))
    gyro: tuple[Noise, Noise, Noise] = (Noise(), Noise(), Noise())
    accel: tuple[Noise, Noise, Noise] = (Noise(), Noise(), Noise())


def read_many(imu: Imu, state: BodyState, n: int) -> tuple[NDArray, NDArray]:
    readings = [imu.read(state, k / 100.0) for k in range(n)]
    gyro = np.array([r.angular_velocity for r in readings])
    accel = np.array([r.linear_acceleration for r in readings])
    return gyro, accel


def test_noise_and_bias_statistics_match_the_spec() -> None:
    gyro_noise = (Noise(0.0, 0.01, 0.002, 0.0),) * 3
    accel_noise = (Noise(0.0, 0.05, 0.1, 0.0),) * 3
    imu = Imu(ImuSpecLike(gyro=gyro_noise, accel=accel_noise), np.random.default_rng(1))
    # bias_stddev 0: the bias is bias_mean with a random sign, drawn once.
    assert np.all(np.abs(imu.gyro_bias) == 0.002)
    assert np.all(np.abs(imu.accel_bias) == 0.1)
    gyro, accel = read_many(imu, BodyState(), 20000)
    np.testing.assert_allclose(gyro.std(axis=0), 0.01, rtol=0.03)
    np.testing.assert_allclose(accel.std(axis=0), 0.05, rtol=0.03)
    np.testing.assert_allclose(gyro.mean(axis=0), imu.gyro_bias, atol=3e-4)
    expected = np.array([0.0, 0.0, GRAVITY]) + imu.accel_bias
    np.testing.assert_allclose(accel.mean(axis=0), expected, atol=2e-3)


def test_turn_on_bias_is_drawn_from_bias_mean_and_stddev_with_random_sign() -> None:
    rng = np.random.default_rng(7)
    draws = np.array([gazebo_bias(Noise(0.0, 0.0, 0.5, 0.1), rng) for _ in range(4000)])
    assert np.mean(draws > 0) == pytest.approx(0.5, abs=0.03)
    np.testing.assert_allclose(np.abs(draws).mean(), 0.5, atol=0.01)
    np.testing.assert_allclose(np.abs(draws).std(), 0.1, atol=0.01)


def test_gravity_is_seen_in_the_tilted_body_frame() -> None:
    imu = Imu(ImuSpecLike(), np.random.default_rng(0))
    roll, pitch = 0.1, 0.2
    r = imu.read(BodyState(roll=roll, pitch=pitch, yaw=1.0), 0.0)
    expected = GRAVITY * np.array(
        [-math.sin(pitch), math.sin(roll) * math.cos(pitch), math.cos(roll) * math.cos(pitch)]
    )
    np.testing.assert_allclose(r.linear_acceleration, expected, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(r.linear_acceleration), GRAVITY)


def test_centripetal_and_tangential_acceleration_and_yaw_rate() -> None:
    imu = Imu(ImuSpecLike(), np.random.default_rng(0))
    state = BodyState(yaw=0.4, speed=1.2, yaw_rate=0.5, accel_forward=0.3)
    r = imu.read(state, 0.0)
    np.testing.assert_allclose(r.linear_acceleration, [0.3, 1.2 * 0.5, GRAVITY], atol=1e-12)
    np.testing.assert_allclose(r.angular_velocity, [0.0, 0.0, 0.5], atol=1e-12)


def test_lever_arm_adds_centripetal_acceleration_of_the_mounting_point() -> None:
    pose = np.eye(4)
    pose[0, 3] = 0.5  # 0.5 m ahead of base_link
    imu = Imu(ImuSpecLike(pose=pose), np.random.default_rng(0))
    r = imu.read(BodyState(yaw_rate=2.0), 0.0)  # turning on the spot
    np.testing.assert_allclose(r.linear_acceleration, [-0.5 * 4.0, 0.0, GRAVITY], atol=1e-12)


def test_mounting_rotation_rotates_the_readings() -> None:
    pose = np.eye(4)
    pose[:3, :3] = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]  # yawed 90 deg
    imu = Imu(ImuSpecLike(pose=pose), np.random.default_rng(0))
    r = imu.read(BodyState(accel_forward=1.0), 0.0)
    np.testing.assert_allclose(r.linear_acceleration, [0.0, -1.0, GRAVITY], atol=1e-12)


def test_bias_step_fault_is_added() -> None:
    imu = Imu(ImuSpecLike(), np.random.default_rng(0))
    r = imu.read(BodyState(), 0.0, np.array([0.0, 0.0, 0.05]), np.array([0.2, 0.0, 0.0]))
    np.testing.assert_allclose(r.angular_velocity, [0.0, 0.0, 0.05])
    np.testing.assert_allclose(r.linear_acceleration, [0.2, 0.0, GRAVITY])


def test_heading_integrates_the_gyro_and_drifts_with_its_bias() -> None:
    gyro = (Noise(), Noise(), Noise(0.0, 0.0, 0.01, 0.0))
    imu = Imu(ImuSpecLike(gyro=gyro), np.random.default_rng(0), start_yaw=0.3)
    state = BodyState(yaw=0.3)
    for k in range(1001):
        reading = imu.read(state, k / 100.0)
    yaw = 2.0 * math.atan2(reading.orientation[2], reading.orientation[3])
    assert yaw == pytest.approx(0.3 + imu.gyro_bias[2] * 10.0, abs=1e-9)
    assert reading.orientation_covariance[8] == pytest.approx((0.01 * 10.0) ** 2, rel=0.01)


@pytest.mark.parametrize("angles", [(0.0, 0.0, 0.0), (0.1, -0.2, 0.7), (-1.2, 0.4, 3.0)])
def test_the_kernels_quaternions_are_the_core_convention(angles) -> None:
    from scipy.spatial.transform import Rotation

    from xiaomanlv_core.geometry import quaternion_from_rpy
    from xiaomanlv_sim.sensors.imu import _quat_mul, _quat_rpy

    np.testing.assert_allclose(_quat_rpy(*angles), quaternion_from_rpy(*angles), atol=1e-15)
    a, b = Rotation.from_euler("xyz", angles), Rotation.from_euler("xyz", (0.3, 0.2, -0.5))
    product = _quat_mul(tuple(a.as_quat()), tuple(b.as_quat()))
    np.testing.assert_allclose(np.abs(product), np.abs((a * b).as_quat()), atol=1e-12)
