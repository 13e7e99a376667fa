"""Wheel odometry: equals the truth without slip, drifts with it."""

from __future__ import annotations

import math

import numpy as np
import pytest
from drive_rig import Body, Drive, Flat

from xiaomanlv_sim.dynamics import DiffDriveDynamics
from xiaomanlv_sim.sensors.odometry import WheelOdometry

START = (3.0, -2.0, 0.8)


def drive_and_odom(slip_stddev: float, slip_of=None, seed: int = 0):
    drive = Drive(slip_stddev=slip_stddev)
    dyn = DiffDriveDynamics(drive, Body(), Flat(), np.random.default_rng(seed), start=START)
    odom = WheelOdometry(0.6, slip_stddev, 0.0, np.random.default_rng(seed))
    odom.update(0.0, 0.0, 0.0)
    for v, w in [(1.0, 0.0), (1.2, 0.4), (0.8, -0.6), (-0.3, 0.2)] * 3:
        dyn.set_command(v, w)
        for _ in range(400):
            dyn.step(slip_of=slip_of)
            odom.update(dyn.state.left_travel, dyn.state.right_travel, dyn.time)
    return dyn, odom


def truth_in_odom(dyn: DiffDriveDynamics) -> tuple[float, float, float]:
    """The true pose expressed in the odom frame (the start pose)."""
    x0, y0, yaw0 = START
    dx, dy = dyn.state.x - x0, dyn.state.y - y0
    c, s = math.cos(yaw0), math.sin(yaw0)
    yaw = (dyn.state.yaw - yaw0 + math.pi) % (2 * math.pi) - math.pi
    return c * dx + s * dy, -s * dx + c * dy, yaw


def test_without_slip_odometry_equals_the_truth() -> None:
    dyn, odom = drive_and_odom(0.0)
    reading = odom.read(dyn.time)
    np.testing.assert_allclose(reading.pose, truth_in_odom(dyn), atol=1e-9)
    assert reading.frame_id == "odom" and reading.child_frame_id == "base_link"
    assert reading.twist[0] == pytest.approx(dyn.v_cmd, abs=1e-9)
    assert reading.twist[1] == pytest.approx(dyn.w_cmd, abs=1e-9)
    np.testing.assert_allclose(reading.pose_covariance, 0.0)


def test_white_slip_makes_odometry_drift() -> None:
    dyn, odom = drive_and_odom(0.05, seed=4)
    reading = odom.read(dyn.time)
    error = np.hypot(*(reading.pose[:2] - truth_in_odom(dyn)[:2]))
    assert error > 0.005
    assert reading.pose_covariance[0] > error**2  # the bound covers the drift


def test_slip_patch_makes_odometry_overestimate_the_distance() -> None:
    dyn, odom = drive_and_odom(0.0, slip_of=lambda wheels: np.full(2, 0.3))
    reading = odom.read(dyn.time)
    true_x, true_y, _ = truth_in_odom(dyn)
    assert np.hypot(*reading.pose[:2]) > 1.2 * np.hypot(true_x, true_y)


def test_twist_noise_has_the_declared_stddev() -> None:
    odom = WheelOdometry(0.6, 0.0, 0.02, np.random.default_rng(2))
    for k in range(20):
        odom.update(0.01 * k, 0.01 * k, 0.005 * k)  # 2 m/s straight
    v = np.array([odom.read(1.0).twist for _ in range(5000)])
    assert v[:, 0].mean() == pytest.approx(2.0, abs=0.002)
    assert v[:, 0].std() == pytest.approx(0.02, rel=0.05)
    assert v[:, 1].std() == pytest.approx(0.02 / 0.3, rel=0.05)
    assert odom.read(1.0).twist_covariance[0] == pytest.approx(0.02**2)


def test_bad_wheel_separation_is_rejected() -> None:
    with pytest.raises(ValueError, match="wheel_separation -1"):
        WheelOdometry(-1.0, 0.0, 0.0, np.random.default_rng(0))


def test_batches_of_ticks_integrate_exactly_as_tick_by_tick() -> None:
    """``update_many`` and ``read(stamp, samples)`` give the same bits as ``update`` per tick."""
    rng = np.random.default_rng(1)
    travel = np.cumsum(rng.uniform(-0.002, 0.01, (400, 2)), axis=0)
    times = np.arange(1, 401) / 200.0
    samples = np.column_stack([travel, times])
    one, many, in_read = (
        WheelOdometry(0.6, 0.01, 0.02, np.random.default_rng(3)) for _ in range(3)
    )
    for odom in (one, many, in_read):
        odom.update(0.0, 0.0, 0.0)
    for k in range(0, 400, 4):
        for left, right, t in samples[k : k + 4]:
            one.update(left, right, t)
        many.update_many(samples[k : k + 4])
        stamp = times[k + 3]
        readings = [one.read(stamp), many.read(stamp), in_read.read(stamp, samples[k : k + 4])]
        for r in readings[1:]:
            for field in ("pose", "twist", "pose_covariance", "twist_covariance"):
                assert getattr(r, field).tobytes() == getattr(readings[0], field).tobytes()
    assert one.x != 0.0 and one.yaw != 0.0
