"""Simulator readings -> ROS messages (and back where a consumer needs it), hand-built inputs."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from geometry_msgs.msg import Twist, TwistWithCovarianceStamped
from sensor_msgs.msg import NavSatFix, NavSatStatus, PointField, Range
from std_msgs.msg import String

from xiaomanlv_core.ros.pointcloud2 import PointCloudError
from xiaomanlv_core.ros.time import seconds_of
from xiaomanlv_sim.agents import AgentArrays
from xiaomanlv_sim.ros.conversions import (
    agents_to_markers,
    clock_msg,
    cloud_arrays,
    event_from_msg,
    event_to_msg,
    gnss_to_msg,
    gnss_velocity_to_msg,
    imu_to_msg,
    lidar_to_msg,
    odom_to_msg,
    range_to_msg,
    truth_odometry_to_msg,
    truth_pose_to_msg,
    twist_to_command,
)
from xiaomanlv_sim.sensors.gnss import GnssReading
from xiaomanlv_sim.sensors.imu import ImuReading
from xiaomanlv_sim.sensors.lidar import LidarScan
from xiaomanlv_sim.sensors.odometry import OdomReading
from xiaomanlv_sim.sensors.ultrasonic import RangeReading
from xiaomanlv_sim.simulator import Event, GroundTruth


def test_clock_carries_sim_time() -> None:
    assert clock_msg(2.5).clock.sec == 2 and clock_msg(2.5).clock.nanosec == 500_000_000


def test_lidar_scan_to_pointcloud2_and_back() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(500, 3)).astype(np.float32)
    scan = LidarScan(
        stamp=1.2,
        frame_id="lidar",
        points=points,
        intensities=rng.uniform(0, 255, 500).astype(np.float32),
        rings=rng.integers(0, 16, 500).astype(np.uint16),
        times=np.sort(rng.uniform(0.0, 0.1, 500)).astype(np.float32),
    )
    msg = lidar_to_msg(scan)
    assert [f.name for f in msg.fields] == ["x", "y", "z", "intensity", "ring", "t"]
    assert msg.fields[4].datatype == PointField.UINT16
    assert msg.fields[5].datatype == PointField.FLOAT32
    assert msg.width == 500 and msg.height == 1 and msg.point_step == 24
    assert msg.row_step == 24 * 500 and len(msg.data) == 24 * 500
    assert msg.header.frame_id == "lidar" and seconds_of(msg.header.stamp) == pytest.approx(1.2)
    back_points, back_i, back_rings, back_t = cloud_arrays(msg)
    np.testing.assert_array_equal(back_points, points)
    np.testing.assert_array_equal(back_i, scan.intensities)
    np.testing.assert_array_equal(back_rings, scan.rings)
    assert back_t is not None
    np.testing.assert_array_equal(back_t, scan.times)


def _one_point(t: float = 0.0) -> LidarScan:
    return LidarScan(
        0.5, "l", np.array([[1.0, 2.0, 3.0]], np.float32), np.array([7.0], np.float32),
        np.array([5], np.uint16), np.array([t], np.float32),
    )  # fmt: skip


def test_lidar_layout_is_the_drivers_with_zeroed_padding() -> None:
    msg = lidar_to_msg(_one_point(0.0625))
    layout = [(f.name, f.offset, f.datatype, f.count) for f in msg.fields]
    assert layout == [
        ("x", 0, PointField.FLOAT32, 1),
        ("y", 4, PointField.FLOAT32, 1),
        ("z", 8, PointField.FLOAT32, 1),
        ("intensity", 12, PointField.FLOAT32, 1),
        ("ring", 16, PointField.UINT16, 1),
        ("t", 20, PointField.FLOAT32, 1),  # [s] after the header stamp, 4-byte aligned
    ]
    assert not msg.is_bigendian and msg.is_dense
    assert bytes(msg.data) == struct.pack("<ffffH2xf", 1.0, 2.0, 3.0, 7.0, 5, 0.0625)


def test_cloud_without_time_reads_none_and_without_lidar_fields_is_refused() -> None:
    msg = lidar_to_msg(_one_point())
    msg.fields = msg.fields[:5]  # as Gazebo's gpu_lidar bridge gives it: no t
    assert cloud_arrays(msg)[3] is None
    msg.fields = msg.fields[:3]
    with pytest.raises(PointCloudError, match="no field 'intensity'"):
        cloud_arrays(msg)


def test_imu_reading_to_msg() -> None:
    reading = ImuReading(
        stamp=3.0,
        frame_id="imu",
        orientation=np.array([0.0, 0.0, math.sin(0.2), math.cos(0.2)]),
        angular_velocity=np.array([0.01, -0.02, 0.3]),
        linear_acceleration=np.array([0.5, 0.1, 9.8]),
        orientation_covariance=np.diag([1e-4, 1e-4, 1e-2]).ravel(),
        angular_velocity_covariance=np.diag([4e-6] * 3).ravel(),
        linear_acceleration_covariance=np.diag([4e-4] * 3).ravel(),
    )
    msg = imu_to_msg(reading)
    assert msg.header.frame_id == "imu"
    assert (msg.orientation.z, msg.orientation.w) == pytest.approx((math.sin(0.2), math.cos(0.2)))
    assert (msg.angular_velocity.x, msg.angular_velocity.z) == pytest.approx((0.01, 0.3))
    assert msg.linear_acceleration.z == pytest.approx(9.8)
    assert msg.orientation_covariance[8] == pytest.approx(1e-2)
    assert msg.linear_acceleration_covariance[4] == pytest.approx(4e-4)


def test_odom_reading_to_msg_is_planar() -> None:
    reading = OdomReading(
        stamp=1.0,
        frame_id="odom",
        child_frame_id="base_link",
        pose=np.array([1.0, 2.0, math.pi / 2]),
        twist=np.array([0.8, -0.1]),
        pose_covariance=np.array([0.01, 0.02, 0.003]),
        twist_covariance=np.array([2.5e-5, 1e-4]),
    )
    msg = odom_to_msg(reading)
    assert (msg.header.frame_id, msg.child_frame_id) == ("odom", "base_link")
    assert (msg.pose.pose.position.x, msg.pose.pose.position.y) == (1.0, 2.0)
    yaw = 2 * math.atan2(msg.pose.pose.orientation.z, msg.pose.pose.orientation.w)
    assert yaw == pytest.approx(math.pi / 2)
    assert (msg.twist.twist.linear.x, msg.twist.twist.angular.z) == (0.8, -0.1)
    cov = np.asarray(msg.pose.covariance).reshape(6, 6)
    assert (cov[0, 0], cov[1, 1], cov[5, 5]) == pytest.approx((0.01, 0.02, 0.003))
    assert cov[2, 2] > 1e3  # z is not measured
    assert np.asarray(msg.twist.covariance).reshape(6, 6)[5, 5] == pytest.approx(1e-4)
    assert odom_to_msg(reading, "odom2", "base2").child_frame_id == "base2"


def test_gnss_fix_and_no_fix() -> None:
    fix = GnssReading(
        2.0, "gnss", 31.02, 121.43, 12.0, 0, np.diag([1.0, 1.0, 4.0]).ravel(),
        np.array([1.5, -0.5, 0.02]), np.diag([0.01, 0.01, 0.04]).ravel(),
    )  # fmt: skip
    msg = gnss_to_msg(fix)
    assert msg.status.status == NavSatStatus.STATUS_FIX
    # A receiver's DOP-scaled estimate, not a known covariance: multipath is not in it.
    assert msg.position_covariance_type == NavSatFix.COVARIANCE_TYPE_APPROXIMATED
    assert (msg.latitude, msg.longitude, msg.altitude) == (31.02, 121.43, 12.0)
    assert msg.position_covariance[8] == 4.0
    vel = gnss_velocity_to_msg(fix)
    assert isinstance(vel, TwistWithCovarianceStamped)
    assert vel.header.frame_id == "gnss" and seconds_of(vel.header.stamp) == pytest.approx(2.0)
    linear = vel.twist.twist.linear
    assert (linear.x, linear.y, linear.z) == pytest.approx((1.5, -0.5, 0.02))  # ENU [m/s]
    cov = np.asarray(vel.twist.covariance).reshape(6, 6)
    np.testing.assert_allclose(np.diag(cov), [0.01, 0.01, 0.04, 1e6, 1e6, 1e6])
    assert gnss_velocity_to_msg(fix, "antenna").header.frame_id == "antenna"
    nan = math.nan
    lost = GnssReading(2.2, "gnss", nan, nan, nan, -1, np.zeros(9), np.full(3, nan))
    msg = gnss_to_msg(lost)
    assert msg.status.status == NavSatStatus.STATUS_NO_FIX
    assert msg.position_covariance_type == NavSatFix.COVARIANCE_TYPE_UNKNOWN
    assert math.isnan(msg.latitude)
    assert gnss_velocity_to_msg(lost) is None  # no velocity without a fix


def test_range_reading_to_msg() -> None:
    reading = RangeReading(0.5, "us_fl", "ultrasonic_front_left", math.inf, 0.03, 4.5, 0.52)
    msg = range_to_msg(reading)
    assert msg.radiation_type == Range.ULTRASOUND
    assert math.isinf(msg.range) and msg.range > 0  # REP 117: nothing in range
    assert (msg.min_range, msg.max_range) == pytest.approx((0.03, 4.5))
    assert msg.field_of_view == pytest.approx(0.52)


def agents(n: int) -> AgentArrays:
    return AgentArrays(
        positions=np.arange(2 * n, dtype=float).reshape(n, 2),
        velocities=np.tile([1.0, 0.0], (n, 1)),
        radii=np.full(n, 0.25),
        heights=np.full(n, 1.7),
        kinds=np.array([0] * (n - 1) + [1], dtype=np.int8),
        ids=np.arange(10, 10 + n, dtype=np.int32),
    )


def test_ground_truth_pose_odometry_and_agents() -> None:
    pose = np.eye(4)
    pose[:3, 3] = (5.0, 6.0, 0.1)
    pose[:3, :3] = [[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]
    truth = GroundTruth(
        4.0, pose, np.array([1.0, 0.2]), np.array([0.0, 1.0, 0.0]), agents(3), False, ()
    )
    msg = truth_pose_to_msg(truth, "world")
    assert msg.header.frame_id == "world"
    assert (msg.pose.position.x, msg.pose.position.z) == (5.0, 0.1)
    assert msg.pose.orientation.z == pytest.approx(math.sin(math.pi / 4))
    odom = truth_odometry_to_msg(truth)
    assert odom.child_frame_id == "base_link" and odom.twist.twist.angular.z == 0.2
    markers = agents_to_markers(truth.agents, truth.time)
    assert [m.id for m in markers.markers] == [10, 11, 12]
    assert [m.ns for m in markers.markers] == ["pedestrians", "pedestrians", "cyclists"]
    assert markers.markers[1].pose.position.x == 2.0
    assert markers.markers[0].scale.x == pytest.approx(0.5)
    assert markers.markers[0].pose.position.z == pytest.approx(0.85)


def test_events_round_trip_as_json() -> None:
    event = Event(12.5, "tipped", "pitch 0.4 rad")
    assert event_from_msg(event_to_msg(event)) == event
    with pytest.raises(ValueError, match="not a simulator event"):
        event_from_msg(String(data="hello"))


def test_twist_to_command_rejects_non_finite() -> None:
    msg = Twist()
    msg.linear.x, msg.angular.z = 0.7, -0.3
    assert twist_to_command(msg) == (0.7, -0.3)
    msg.angular.z = math.inf
    with pytest.raises(ValueError, match=r"angular\.z=inf"):
        twist_to_command(msg)
