"""IMU model: Gazebo's noise and bias per axis, gravity in the tilted frame, motion terms, and
the orientation of its attitude filter against the truth."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation
from scipy.stats import kstest

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


def yaw_of(reading) -> float:
    x, y, z, w = reading.orientation
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def tilt_error(reading, state: BodyState) -> NDArray[np.float64]:
    """[rad] rotation taking the true "up" onto the estimated one, about the imu's x and y
    (roll and pitch errors for an unrotated mount)."""
    up_est = Rotation.from_quat(reading.orientation).as_matrix()[2]
    up_true = state.rotation()[2]
    return np.cross(up_true, up_est)[:2]


def test_heading_integrates_the_gyro_and_drifts_with_its_bias() -> None:
    gyro = (Noise(), Noise(), Noise(0.0, 0.0, 0.01, 0.0))
    imu = Imu(ImuSpecLike(gyro=gyro), np.random.default_rng(0), reference_yaw=0.3)
    state = BodyState(yaw=-2.0)  # the true heading plays no part
    for k in range(1001):
        reading = imu.read(state, k / 100.0)
    assert yaw_of(reading) == pytest.approx(0.3 + imu.gyro_bias[2] * 10.0, abs=1e-9)
    unknown = math.pi**2 / 3.0  # a reference uniform on the circle
    assert reading.orientation_covariance[8] == pytest.approx(unknown + (0.01 * 10.0) ** 2)


@pytest.mark.parametrize("true_yaw", [0.0, 1.0, -2.5])
def test_initial_yaw_is_a_reference_unknown_to_the_stack_not_the_truth(true_yaw: float) -> None:
    spec = ImuSpecLike(gyro=(Noise(0.0, 0.002, 0.0005, 0.0001),) * 3)
    first = []
    for seed in range(200):
        imu = Imu(spec, np.random.default_rng(seed))
        reading = imu.read(BodyState(yaw=true_yaw), 0.0)
        first.append(yaw_of(reading))
        assert first[-1] == pytest.approx(imu.reference_yaw)
        assert reading.orientation_covariance[8] >= math.pi**2 / 3.0
    errors = (np.array(first) - true_yaw + math.pi) % (2 * math.pi) - math.pi
    # Uniform on the circle whatever the truth: no seed knows it.
    assert kstest(errors, "uniform", args=(-math.pi, 2 * math.pi)).pvalue > 0.01
    assert np.mean(np.abs(errors) > 0.5) > 0.7
    # The same seed gives the same start at any true heading.
    again = Imu(spec, np.random.default_rng(0)).read(BodyState(yaw=true_yaw + 1.0), 0.0)
    assert yaw_of(again) == pytest.approx(first[0])


def test_roll_and_pitch_level_at_power_on_and_track_a_static_tilt() -> None:
    spec = ImuSpecLike(
        gyro=(Noise(0.0, 0.002, 0.0005, 0.0001),) * 3,
        accel=(Noise(0.0, 0.02, 0.02, 0.005),) * 3,
    )
    imu = Imu(spec, np.random.default_rng(4))
    tilted = BodyState(roll=0.1, pitch=-0.15, yaw=0.4)
    first = imu.read(tilted, 0.0)  # levelled from the accelerometer alone
    np.testing.assert_allclose(tilt_error(first, tilted), 0.0, atol=0.01)
    # Back to level over 1 s (the gyro sees it), then held for 30 s.
    t = 0.0
    for _ in range(100):
        t += 0.01
        f = min(1.0, t)
        moving = BodyState(
            roll=0.1 * (1 - f), pitch=-0.15 * (1 - f), roll_rate=-0.1, pitch_rate=0.15
        )
        imu.read(moving, t)
    level = BodyState()
    for _ in range(3000):
        t += 0.01
        reading = imu.read(level, t)
    error = tilt_error(reading, level)
    sigma = np.sqrt(reading.orientation_covariance[[0, 4]])
    # What is left is the accelerometer's bias (0.02 m/s^2 -> 0.002 rad) and the gyro's
    # (0.0005 rad/s x 5 s): within the reported sigma.
    assert np.all(np.abs(error) < 0.006)
    assert np.all(np.abs(error) < 2.0 * sigma)
    assert np.all(sigma < 0.006)


def drive(dt: float = 0.01) -> Iterator[tuple[float, BodyState]]:
    """A drive with hard manoeuvres: (duration [s], forward acceleration [m/s^2], yaw rate
    [rad/s], pitch rate [rad/s]) segments: start, cruise, brake to a stop, start, turn left then
    right at 1.5 m/s, up a ramp and down again, brake, stand."""
    segments = [
        (2.0, 0.0, 0.0, 0.0), (2.0, 1.0, 0.0, 0.0), (4.0, 0.0, 0.0, 0.0), (1.0, -2.0, 0.0, 0.0),
        (3.0, 0.0, 0.0, 0.0), (1.5, 1.0, 0.0, 0.0), (4.0, 0.0, 0.5, 0.0), (3.0, 0.0, -0.5, 0.0),
        (2.0, 0.0, 0.0, 0.05), (3.0, 0.0, 0.0, 0.0), (2.0, 0.0, 0.0, -0.05),
        (0.75, -2.0, 0.0, 0.0), (5.0, 0.0, 0.0, 0.0),
    ]  # fmt: skip
    speed = yaw = pitch = t = 0.0
    for duration, accel, yaw_rate, pitch_rate in segments:
        for _ in range(round(duration / dt)):
            yield t, BodyState(
                speed=speed, accel_forward=accel, yaw=yaw, yaw_rate=yaw_rate, pitch=pitch,
                pitch_rate=pitch_rate,
            )  # fmt: skip
            speed += accel * dt
            yaw += yaw_rate * dt
            pitch += pitch_rate * dt
            t += dt


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_manoeuvres_tilt_the_estimate_within_its_reported_covariance(seed: int) -> None:
    """Braking, accelerating and turning tilt the specific force by up to 0.2 rad; the filter
    follows part of it, as a real unit does, and its covariance says so."""
    spec = ImuSpecLike(
        gyro=(Noise(0.0, 0.002, 0.0005, 0.0001),) * 3,
        accel=(Noise(0.0, 0.02, 0.02, 0.005),) * 3,
    )
    imu = Imu(spec, np.random.default_rng(seed))
    errors, sigmas = [], []
    for t, state in drive():
        reading = imu.read(state, t)
        errors.append(tilt_error(reading, state))
        sigmas.append(np.sqrt(reading.orientation_covariance[[0, 4]]))
    err, sig = np.array(errors), np.array(sigmas)
    assert np.abs(err).max() > 0.02  # the manoeuvres do tilt it (1 m/s^2 for 2 s: 0.03 rad)
    assert sig.max() > 5.0 * sig[150].max()  # and the reported sigma grows from the standing one
    z = err / sig
    assert np.all(np.abs(z) < 3.0)
    assert np.mean(np.abs(z) > 2.0) < 0.05
    assert np.mean(z**2) < 1.0  # never overconfident; a bound, so below 1 (0.02-0.6 here)


def test_a_jolt_off_one_g_is_not_taken_for_a_tilt() -> None:
    """The gain fades as |f| leaves 1 g by 10-20 % (Valenti et al. 2015): a 3 m/s^2 vertical
    jolt during hard braking leaves the tilt alone, the braking alone does not."""
    results = []
    for z_accel in (0.0, 3.0):
        imu = Imu(ImuSpecLike(), np.random.default_rng(0))
        imu.read(BodyState(), 0.0)
        for k in range(1, 101):
            reading = imu.read(BodyState(accel_forward=-2.0, z_accel=z_accel), k / 100.0)
        results.append(abs(tilt_error(reading, BodyState())[1]))
    assert results[0] > 0.02  # 1 s of 0.2 rad through tau = 5 s
    assert results[1] < 1e-9


def test_a_bad_filter_time_constant_is_refused() -> None:
    with pytest.raises(ValueError, match=r"imu.*tilt_time_constant"):
        Imu(ImuSpecLike(), np.random.default_rng(0), tilt_time_constant=0.0)


@pytest.mark.parametrize("angles", [(0.0, 0.0, 0.0), (0.1, -0.2, 0.7), (-1.2, 0.4, 3.0)])
def test_the_kernels_quaternions_are_the_core_convention(angles) -> None:
    from scipy.spatial.transform import Rotation

    from xiaomanlv_core.geometry import quaternion_from_rpy
    from xiaomanlv_sim.sensors.imu import _quat_mul, _quat_rpy

    np.testing.assert_allclose(_quat_rpy(*angles), quaternion_from_rpy(*angles), atol=1e-15)
    a, b = Rotation.from_euler("xyz", angles), Rotation.from_euler("xyz", (0.3, 0.2, -0.5))
    product = _quat_mul(tuple(a.as_quat()), tuple(b.as_quat()))
    np.testing.assert_allclose(np.abs(product), np.abs((a * b).as_quat()), atol=1e-12)
