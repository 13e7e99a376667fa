"""The ekf node in this process, callbacks called by hand: RViz's /initialpose starts it, and
/odometry/filtered carries each stamp once even when a wheel reading is newer than an IMU
sample (the localiser refuses a stamp again as out of order)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import rclpy
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Imu

from xiaomanlv_bringup.ros.session import reserved_domain_id
from xiaomanlv_core.ros.poses import yaw_quaternion_msg
from xiaomanlv_core.ros.time import seconds_of, stamp_of


@pytest.fixture
def node() -> Iterator[Any]:
    from xiaomanlv_nav.fusion.nodes.ekf import EkfNode

    with reserved_domain_id() as domain:
        rclpy.init(domain_id=domain)
        n = EkfNode()
        n.published = []
        n.odom_pub.publish = n.published.append
        yield n
        n.destroy_node()
        rclpy.try_shutdown()


def imu(t: float) -> Imu:
    msg = Imu()
    msg.header.stamp, msg.header.frame_id = stamp_of(t), "imu"
    msg.linear_acceleration.z = 9.80665
    return msg


def wheel(t: float) -> Odometry:
    msg = Odometry()
    msg.header.stamp, msg.header.frame_id = stamp_of(t), "odom"
    msg.child_frame_id = "base_link"
    msg.twist.covariance[0] = msg.twist.covariance[35] = 1e-4
    return msg


def rviz_pose() -> PoseWithCovarianceStamped:
    msg = PoseWithCovarianceStamped()  # unstamped, as a script sends it
    msg.header.frame_id = "map"
    msg.pose.pose.position.x, msg.pose.pose.position.y = 10.0, 5.0
    msg.pose.pose.orientation = yaw_quaternion_msg(0.3)
    for i, var in ((0, 0.25), (7, 0.25), (35, 0.0685)):  # RViz's 2D Pose Estimate
        msg.pose.covariance[i] = var
    return msg


def test_rviz_starts_it_and_each_stamp_is_published_once(node: Any) -> None:
    for k in range(1, 21):
        node._on_imu(imu(0.01 * k))
    assert not node.published  # no pose yet: nothing to say
    node._on_initial(rviz_pose())
    assert node.ekf.initialized and node.ekf.counts["initialpose bad_covariance"] == 0
    node._on_wheel(wheel(0.235))  # newer than the next two IMU samples (a loaded machine)
    node._on_imu(imu(0.21))
    node._on_imu(imu(0.22))
    node._on_imu(imu(0.24))
    stamps = [seconds_of(m.header.stamp) for m in node.published]
    assert stamps == sorted(set(stamps)) and stamps[-1] == pytest.approx(0.24)
    last = node.published[-1]
    assert (last.header.frame_id, last.child_frame_id) == ("map", "base_link")
    assert last.pose.pose.position.x == pytest.approx(10.0, abs=0.01)
