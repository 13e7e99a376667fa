"""Messages <-> the fusion core's inputs and its estimate.

Each converter takes what the message says without judging it: non-finite values, zero or
negative covariances go to the core, which counts them (`xiaomanlv_nav.fusion.ekf`). Frames
are the node's to check. Stamps are ``header.stamp`` in seconds.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseWithCovarianceStamped, TwistWithCovarianceStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Imu, NavSatFix
from std_msgs.msg import String

from xiaomanlv_core.fields import FormatError
from xiaomanlv_core.geodesy import Datum
from xiaomanlv_core.mapdatum import datum_from_dict
from xiaomanlv_core.ros.poses import matrix_of_pose, pose_msg
from xiaomanlv_core.ros.time import seconds_of, stamp_of
from xiaomanlv_nav.fusion.ekf import (
    Estimate,
    GnssFix,
    GnssVelocity,
    ImuSample,
    PoseFix,
    WheelOdometry,
)


def _xyz(v: Any) -> np.ndarray:
    return np.array([float(v.x), float(v.y), float(v.z)])


def imu_sample(msg: Imu) -> ImuSample:
    """The IMU's angular velocity [rad/s] and specific force [m/s^2], in its own frame."""
    return ImuSample(
        seconds_of(msg.header.stamp), _xyz(msg.angular_velocity), _xyz(msg.linear_acceleration)
    )


def wheel_odometry(msg: Odometry) -> WheelOdometry:
    """Forward speed and yaw rate of base_link with their variances (twist covariance 0, 35)."""
    cov = msg.twist.covariance
    return WheelOdometry(
        seconds_of(msg.header.stamp),
        float(msg.twist.twist.linear.x),
        float(msg.twist.twist.angular.z),
        float(cov[0]),
        float(cov[35]),
    )


def gnss_fix(msg: NavSatFix) -> GnssFix:
    """Latitude, longitude [deg], altitude [m] and the ENU covariance [m^2] (a NO_FIX is the
    node's to count)."""
    return GnssFix(
        seconds_of(msg.header.stamp),
        np.array([float(msg.latitude), float(msg.longitude), float(msg.altitude)]),
        np.asarray(msg.position_covariance, float).reshape(3, 3),
    )


def gnss_velocity(msg: TwistWithCovarianceStamped) -> GnssVelocity:
    """/gnss/vel: linear = ENU east, north, up [m/s]; the linear block of its covariance."""
    cov = np.asarray(msg.twist.covariance, float).reshape(6, 6)
    return GnssVelocity(seconds_of(msg.header.stamp), _xyz(msg.twist.twist.linear), cov[:3, :3])


def pose_fix(msg: PoseWithCovarianceStamped) -> PoseFix:
    """The pose (4x4) and its 6x6 covariance.

    Raises:
        ValueError: an orientation of zero or non-finite norm.
    """
    return PoseFix(
        seconds_of(msg.header.stamp),
        matrix_of_pose(msg.pose.pose),
        np.asarray(msg.pose.covariance, float).reshape(6, 6),
    )


def datum_of(msg: String, topic: str = "/map/datum") -> Datum:
    """The map server's datum (JSON with datum.yaml's keys).

    Raises:
        FormatError: naming ``topic``: not JSON, or a missing or bad field.
    """
    try:
        data = json.loads(msg.data)
    except json.JSONDecodeError as err:
        raise FormatError(f"{topic}: not valid JSON: {err}") from None
    return datum_from_dict(data, topic)


def odometry_msg(estimate: Estimate, frame_id: str, child_frame_id: str) -> Odometry:
    """nav_msgs/Odometry of the estimate: pose in ``frame_id`` (covariance: position, then
    rotation about the frame's axes), twist in ``child_frame_id``."""
    msg = Odometry()
    msg.header.stamp = stamp_of(estimate.stamp)
    msg.header.frame_id = frame_id
    msg.child_frame_id = child_frame_id
    msg.pose.pose = pose_msg(estimate.pose)
    msg.pose.covariance = estimate.pose_covariance.ravel()
    lin, ang = estimate.linear_velocity, estimate.angular_velocity
    msg.twist.twist.linear.x, msg.twist.twist.linear.y, msg.twist.twist.linear.z = (
        float(v) for v in lin
    )
    msg.twist.twist.angular.x, msg.twist.twist.angular.y, msg.twist.twist.angular.z = (
        float(v) for v in ang
    )
    msg.twist.covariance = estimate.twist_covariance.ravel()
    return msg
