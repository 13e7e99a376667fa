"""Fusion conversions: hand-built messages in, the core's inputs out; the estimate out."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from geometry_msgs.msg import PoseWithCovarianceStamped, TwistWithCovarianceStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Imu, NavSatFix
from std_msgs.msg import String

from xiaomanlv_core.fields import FormatError
from xiaomanlv_core.ros.poses import yaw_quaternion_msg
from xiaomanlv_core.ros.time import stamp_of
from xiaomanlv_nav.fusion.ekf import Estimate
from xiaomanlv_nav.fusion.ros.conversions import (
    datum_of,
    gnss_fix,
    gnss_velocity,
    imu_sample,
    odometry_msg,
    pose_fix,
    wheel_odometry,
)


def test_sensor_messages_become_core_inputs() -> None:
    imu = Imu()
    imu.header.stamp = stamp_of(12.5)
    imu.angular_velocity.z, imu.linear_acceleration.z = 0.1, 9.8
    s = imu_sample(imu)
    assert s.stamp == 12.5 and s.angular_velocity[2] == pytest.approx(0.1)
    odom = Odometry()
    odom.header.stamp = stamp_of(1.0)
    odom.twist.twist.linear.x, odom.twist.twist.angular.z = 1.5, -0.2
    odom.twist.covariance[0], odom.twist.covariance[35] = 0.01, 0.02
    w = wheel_odometry(odom)
    assert (w.speed, w.yaw_rate, w.speed_variance, w.yaw_rate_variance) == (1.5, -0.2, 0.01, 0.02)
    fix = NavSatFix()
    fix.latitude, fix.longitude, fix.altitude = 30.2, 120.2, 8.0
    fix.position_covariance = [1.0, 0, 0, 0, 1.0, 0, 0, 0, 4.0]
    g = gnss_fix(fix)
    np.testing.assert_allclose(g.lla, [30.2, 120.2, 8.0])
    assert g.covariance_enu[2, 2] == 4.0
    vel = TwistWithCovarianceStamped()
    vel.twist.twist.linear.x = 0.5
    vel.twist.covariance[0] = 0.0025
    v = gnss_velocity(vel)
    assert v.velocity_enu[0] == 0.5 and v.covariance_enu.shape == (3, 3)
    pose = PoseWithCovarianceStamped()
    pose.pose.pose.position.x = 3.0
    pose.pose.pose.orientation = yaw_quaternion_msg(math.pi / 2)
    pose.pose.covariance[0] = 0.1
    p = pose_fix(pose)
    np.testing.assert_allclose(p.pose[:2, :2], [[0.0, -1.0], [1.0, 0.0]], atol=1e-12)
    assert p.covariance[0, 0] == 0.1 and p.pose[0, 3] == 3.0


def test_a_zero_quaternion_is_an_error_the_node_counts() -> None:
    pose = PoseWithCovarianceStamped()
    pose.pose.pose.orientation.w = 0.0
    with pytest.raises(ValueError):
        pose_fix(pose)


def test_the_map_servers_datum_and_its_errors() -> None:
    good = {"latitude": 30.2, "longitude": 120.2, "altitude": 8.0, "heading_deg": 0.0}
    assert datum_of(String(data=json.dumps(good))).latitude == 30.2
    with pytest.raises(FormatError, match=r"/map/datum: not valid JSON"):
        datum_of(String(data="{"))
    with pytest.raises(FormatError, match=r"/map/datum: heading_deg: missing"):
        datum_of(String(data=json.dumps({k: v for k, v in good.items() if k != "heading_deg"})))


def test_the_estimate_becomes_odometry_in_map() -> None:
    pose = np.eye(4)
    pose[:3, 3] = (1.0, 2.0, 0.0)
    cov = np.diag(np.arange(1.0, 7.0))
    est = Estimate(
        stamp=4.25,
        pose=pose,
        velocity=np.array([1.0, 0.0, 0.0]),
        linear_velocity=np.array([1.0, 0.0, 0.0]),
        angular_velocity=np.array([0.0, 0.0, 0.3]),
        pose_covariance=cov,
        twist_covariance=2 * cov,
        gyro_bias=np.zeros(3),
        accel_bias=np.zeros(3),
        covariance=np.eye(15),
    )
    msg = odometry_msg(est, "map", "base_link")
    assert (msg.header.frame_id, msg.child_frame_id) == ("map", "base_link")
    assert msg.header.stamp.sec == 4 and msg.header.stamp.nanosec == 250_000_000
    assert msg.pose.pose.position.y == 2.0 and msg.twist.twist.angular.z == 0.3
    assert msg.pose.covariance[35] == 6.0 and msg.twist.covariance[7] == 4.0
