"""Hand-built messages and a small mapping drive for the bag tests (BagWriter -> open_drive)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from geometry_msgs.msg import PoseStamped
from nav_msgs.msg import Odometry
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Imu, NavSatFix, PointCloud2

from xiaomanlv_mapping.bag import EXPECTED_TYPES, BagWriter, DriveTopics
from xiaomanlv_sim.ros.conversions import lidar_to_msg, stamp_of
from xiaomanlv_sim.sensors.lidar import LidarScan

_TOPICS = DriveTopics()


LIDAR, IMU, ODOM, GNSS, TRUTH = (
    _TOPICS.lidar,
    _TOPICS.imu,
    _TOPICS.odometry,
    _TOPICS.gnss,
    _TOPICS.truth,
)


TYPES = {getattr(_TOPICS, role): msgtype for role, msgtype in EXPECTED_TYPES.items()}


def ns(t: float) -> int:
    return round(t * 1e9)


def scan_msg(t: float, n: int = 300, seed: int = 0) -> PointCloud2:
    rng = np.random.default_rng(seed)
    return lidar_to_msg(
        LidarScan(
            stamp=t,
            frame_id="lidar_link",
            points=rng.normal(scale=10.0, size=(n, 3)).astype(np.float32),
            intensities=rng.uniform(0, 255, n).astype(np.float32),
            rings=rng.integers(0, 16, n).astype(np.uint16),
            times=np.sort(rng.uniform(0.0, 0.1, n)).astype(np.float32),
        )
    )


def odom_msg(t: float, x: float, y: float, yaw: float, v: float, w: float) -> Odometry:
    msg = Odometry()
    msg.header.stamp = stamp_of(t)
    msg.header.frame_id, msg.child_frame_id = "odom", "base_link"
    msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
    msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
    msg.twist.twist.linear.x, msg.twist.twist.angular.z = v, w
    return msg


def imu_msg(t: float, known_orientation: bool = True) -> Imu:
    msg = Imu()
    msg.header.stamp = stamp_of(t)
    msg.header.frame_id = "imu_link"
    msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z = 0.1, -0.2, 0.3
    a = msg.linear_acceleration
    a.x, a.y, a.z = 0.5, 0.0, 9.81
    msg.orientation.z, msg.orientation.w = math.sin(0.25), math.cos(0.25)
    if not known_orientation:
        msg.orientation_covariance[0] = -1.0
    return msg


def gnss_msg(t: float, status: int, lat: float, lon: float, alt: float) -> NavSatFix:
    msg = NavSatFix()
    msg.header.stamp = stamp_of(t)
    msg.header.frame_id = "gnss_link"
    msg.status.status = status
    msg.latitude, msg.longitude, msg.altitude = lat, lon, alt
    msg.position_covariance = [1.0, 0, 0, 0, 2.0, 0, 0, 0, 4.0]
    return msg


def truth_msg(t: float, x: float, y: float, yaw: float) -> PoseStamped:
    msg = PoseStamped()
    msg.header.stamp = stamp_of(t)
    msg.header.frame_id = "world"
    msg.pose.position.x, msg.pose.position.y = x, y
    msg.pose.orientation.z, msg.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
    return msg


def write_drive(
    path: Path,
    *,
    scans: int = 3,
    points: int = 300,
    skip: tuple[str, ...] = (),
    chunk_size: int = 1 << 20,
) -> Path:
    """A small drive: scans at 10 Hz, odometry at 50 Hz, IMU at 100 Hz, GNSS at 5 Hz, truth."""
    with BagWriter(path, chunk_size=chunk_size) as bag:
        for topic, msgtype in TYPES.items():
            if topic not in skip:
                bag.add_topic(topic, msgtype)
        duration = max(scans, 1) * 0.1
        for k in range(round(duration * 100)):
            t = 0.01 * (k + 1)
            if IMU not in skip:
                bag.write(IMU, serialize_message(imu_msg(t, known_orientation=k != 1)), ns(t))
            if k % 2 == 1:
                if ODOM not in skip:
                    msg = odom_msg(t, 0.5 * t, 0.1, 0.05 * t, 0.5, 0.05)
                    bag.write(ODOM, serialize_message(msg), ns(t))
                if TRUTH not in skip:
                    bag.write(TRUTH, serialize_message(truth_msg(t, t, -t, 0.3)), ns(t))
            if k % 20 == 19 and GNSS not in skip:
                bag.write(GNSS, serialize_message(gnss_msg(t, 0, 30.3, 120.35, 8.0)), ns(t))
            if k % 10 == 9 and LIDAR not in skip:
                bag.write(LIDAR, serialize_message(scan_msg(t, points, seed=k)), ns(t))
    return path
