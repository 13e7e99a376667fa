"""Simulator readings <-> ROS messages, for the sim node (and tests with hand-built readings).

PointCloud2 layout (the fields Velodyne/Ouster drivers give): x, y, z, intensity (FLOAT32 at
offsets 0, 4, 8, 12), ring (UINT16 at 16) and t (FLOAT32 at 20: the point's time [s] after the
header stamp, the sweep's first column, as Ouster stamps its clouds), point step 24 (2 bytes of
padding before t, zeroed, keeping it 4-byte aligned), little-endian, one row (height 1), dense
(no-return rays were dropped by the lidar model); written and read by
:mod:`xiaomanlv_core.ros.pointcloud2`. Stamps and quaternions come from ``xiaomanlv_core.ros``
too.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped, Twist, TwistWithCovarianceStamped
from nav_msgs.msg import Odometry
from numpy.typing import NDArray
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Imu, NavSatFix, NavSatStatus, PointCloud2, Range
from std_msgs.msg import ColorRGBA, String
from visualization_msgs.msg import Marker, MarkerArray

from xiaomanlv_core.ros.pointcloud2 import create_cloud, read_points, xyz_of
from xiaomanlv_core.ros.poses import pose_msg, quaternion_msg, yaw_quaternion_msg
from xiaomanlv_core.ros.time import stamp_of
from xiaomanlv_sim.agents import AgentArrays
from xiaomanlv_sim.sensors.gnss import STATUS_FIX, GnssReading
from xiaomanlv_sim.sensors.imu import ImuReading
from xiaomanlv_sim.sensors.lidar import LidarScan
from xiaomanlv_sim.sensors.odometry import OdomReading
from xiaomanlv_sim.sensors.ultrasonic import RangeReading
from xiaomanlv_sim.simulator import Event, GroundTruth

LIDAR_FIELDS = ("x", "y", "z", "intensity", "ring", "t")
LIDAR_DTYPE = np.dtype(
    {
        "names": list(LIDAR_FIELDS),
        "formats": ["<f4", "<f4", "<f4", "<f4", "<u2", "<f4"],
        "offsets": [0, 4, 8, 12, 16, 20],
        "itemsize": 24,
    }
)
LIDAR_POINT_STEP = LIDAR_DTYPE.itemsize  # [bytes] 22 bytes of fields, 2 of padding before t
UNKNOWN_VARIANCE = 1e6  # [unit^2] for states a planar sensor does not measure (z, roll, pitch)


def clock_msg(t: float) -> Clock:
    return Clock(clock=stamp_of(t))


def lidar_to_msg(scan: LidarScan, frame_id: str | None = None) -> PointCloud2:
    """PointCloud2 of a scan, in the sensor frame (``frame_id`` overrides the scan's), stamped
    with the sweep's first column, each point's time after it in ``t``."""
    pts = np.asarray(scan.points, dtype=np.float32).reshape(-1, 3)
    cloud = np.zeros(len(pts), dtype=LIDAR_DTYPE)  # zeros: the padding is zeroed
    cloud["x"], cloud["y"], cloud["z"] = pts[:, 0], pts[:, 1], pts[:, 2]
    cloud["intensity"] = scan.intensities
    cloud["ring"] = scan.rings
    cloud["t"] = scan.times
    return create_cloud(cloud, stamp_of(scan.stamp), frame_id or scan.frame_id, is_dense=True)


def cloud_arrays(
    msg: PointCloud2,
) -> tuple[
    NDArray[np.float32], NDArray[np.float32], NDArray[np.uint16], NDArray[np.float32] | None
]:
    """(points (N,3), intensities (N,), rings (N,), times (N,) [s] or None without a ``t``
    field) of a cloud with x, y, z, intensity and ring fields (any layout and numeric types;
    the inverse of :func:`lidar_to_msg`).

    Raises:
        PointCloudError: (a ValueError) a field is missing or the layout does not fit the data.
    """
    has_t = any(f.name == "t" for f in msg.fields)
    cloud = read_points(msg, LIDAR_FIELDS if has_t else LIDAR_FIELDS[:-1])
    intensities = cloud["intensity"].astype(np.float32)
    times = cloud["t"].astype(np.float32) if has_t else None
    return xyz_of(cloud), intensities, cloud["ring"].astype(np.uint16), times


def imu_to_msg(reading: ImuReading, frame_id: str | None = None) -> Imu:
    msg = Imu()
    msg.header.stamp = stamp_of(reading.stamp)
    msg.header.frame_id = frame_id or reading.frame_id
    msg.orientation = quaternion_msg(reading.orientation)
    w, a = reading.angular_velocity, reading.linear_acceleration
    msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z = (float(v) for v in w)
    msg.linear_acceleration.x, msg.linear_acceleration.y, msg.linear_acceleration.z = (
        float(v) for v in a
    )
    msg.orientation_covariance = np.asarray(reading.orientation_covariance, float)
    msg.angular_velocity_covariance = np.asarray(reading.angular_velocity_covariance, float)
    msg.linear_acceleration_covariance = np.asarray(reading.linear_acceleration_covariance, float)
    return msg


def odom_to_msg(
    reading: OdomReading, frame_id: str | None = None, child_frame_id: str | None = None
) -> Odometry:
    """nav_msgs/Odometry in ``odom`` -> ``base_link``; planar: z, roll, pitch variances large."""
    msg = Odometry()
    msg.header.stamp = stamp_of(reading.stamp)
    msg.header.frame_id = frame_id or reading.frame_id
    msg.child_frame_id = child_frame_id or reading.child_frame_id
    x, y, yaw = (float(v) for v in reading.pose)
    msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
    msg.pose.pose.orientation = yaw_quaternion_msg(yaw)
    pose_cov = np.zeros((6, 6))
    pose_cov[np.diag_indices(6)] = [
        reading.pose_covariance[0], reading.pose_covariance[1], UNKNOWN_VARIANCE,
        UNKNOWN_VARIANCE, UNKNOWN_VARIANCE, reading.pose_covariance[2],
    ]  # fmt: skip
    msg.pose.covariance = pose_cov.ravel()
    msg.twist.twist.linear.x = float(reading.twist[0])
    msg.twist.twist.angular.z = float(reading.twist[1])
    twist_cov = np.zeros((6, 6))
    twist_cov[np.diag_indices(6)] = [
        reading.twist_covariance[0], UNKNOWN_VARIANCE, UNKNOWN_VARIANCE,
        UNKNOWN_VARIANCE, UNKNOWN_VARIANCE, reading.twist_covariance[1],
    ]  # fmt: skip
    msg.twist.covariance = twist_cov.ravel()
    return msg


def gnss_to_msg(reading: GnssReading, frame_id: str | None = None) -> NavSatFix:
    """NavSatFix: status FIX with the receiver's diagonal covariance, typed APPROXIMATED (a
    DOP-scaled estimate, as nmea_navsat_driver reports its HDOP-based one: it does not see a
    multipath error in progress), or NO_FIX (NaN position, covariance UNKNOWN)."""
    msg = NavSatFix()
    msg.header.stamp = stamp_of(reading.stamp)
    msg.header.frame_id = frame_id or reading.frame_id
    msg.status.status = int(reading.status)
    msg.status.service = NavSatStatus.SERVICE_GPS
    msg.latitude, msg.longitude, msg.altitude = (
        float(reading.latitude),
        float(reading.longitude),
        float(reading.altitude),
    )
    msg.position_covariance = np.asarray(reading.position_covariance, float)
    msg.position_covariance_type = (
        NavSatFix.COVARIANCE_TYPE_APPROXIMATED
        if reading.status >= STATUS_FIX
        else NavSatFix.COVARIANCE_TYPE_UNKNOWN
    )
    return msg


def gnss_velocity_to_msg(
    reading: GnssReading, frame_id: str | None = None
) -> TwistWithCovarianceStamped | None:
    """/gnss/vel: the receiver's velocity, linear = ENU east, north, up [m/s], in the antenna
    frame's header as nmea_navsat_driver stamps its /vel; covariance: the linear block from
    the reading's ENU velocity covariance, the angular rates unknown (UNKNOWN_VARIANCE on the
    diagonal, as `odom_to_msg` marks what a sensor does not measure). None without a fix or
    a finite velocity: no message is sent then."""
    v = np.asarray(reading.velocity_enu, float)
    if reading.status < STATUS_FIX or v.shape != (3,) or not np.all(np.isfinite(v)):
        return None
    msg = TwistWithCovarianceStamped()
    msg.header.stamp = stamp_of(reading.stamp)
    msg.header.frame_id = frame_id or reading.frame_id
    msg.twist.twist.linear.x, msg.twist.twist.linear.y, msg.twist.twist.linear.z = (
        float(c) for c in v
    )
    cov = np.zeros((6, 6))
    cov[:3, :3] = np.asarray(reading.velocity_covariance, float).reshape(3, 3)
    cov[3, 3] = cov[4, 4] = cov[5, 5] = UNKNOWN_VARIANCE
    msg.twist.covariance = cov.ravel()
    return msg


def range_to_msg(reading: RangeReading, frame_id: str | None = None) -> Range:
    """sensor_msgs/Range (ULTRASOUND); +inf means nothing in range (REP 117)."""
    msg = Range()
    msg.header.stamp = stamp_of(reading.stamp)
    msg.header.frame_id = frame_id or reading.frame_id
    msg.radiation_type = Range.ULTRASOUND
    msg.field_of_view = float(reading.field_of_view)
    msg.min_range = float(reading.min_range)
    msg.max_range = float(reading.max_range)
    msg.range = float(reading.range)
    return msg


def truth_pose_to_msg(truth: GroundTruth, frame_id: str = "world") -> PoseStamped:
    msg = PoseStamped()
    msg.header.stamp = stamp_of(truth.time)
    msg.header.frame_id = frame_id
    msg.pose = pose_msg(truth.pose)
    return msg


def truth_odometry_to_msg(
    truth: GroundTruth, frame_id: str = "world", child_frame_id: str = "base_link"
) -> Odometry:
    """The true pose and twist (forward speed, yaw rate in base_link) as nav_msgs/Odometry."""
    msg = Odometry()
    msg.header.stamp = stamp_of(truth.time)
    msg.header.frame_id = frame_id
    msg.child_frame_id = child_frame_id
    msg.pose.pose = pose_msg(truth.pose)
    msg.twist.twist.linear.x = float(truth.twist[0])
    msg.twist.twist.angular.z = float(truth.twist[1])
    return msg


_KIND_COLOURS = {
    0: ColorRGBA(r=0.2, g=0.4, b=1.0, a=0.8),  # pedestrian
    1: ColorRGBA(r=1.0, g=0.5, b=0.0, a=0.8),  # cyclist
}


def agents_to_markers(
    agents: AgentArrays, t: float, frame_id: str = "world", lifetime: float = 0.5
) -> MarkerArray:
    """One CYLINDER marker per agent (id = agent id, namespace by kind), standing on z = 0;
    markers expire after ``lifetime`` [s] so agents that left vanish."""
    out = MarkerArray()
    stamp = stamp_of(t)
    life = stamp_of(lifetime)
    for i in range(len(agents.ids)):
        m = Marker()
        m.header.stamp = stamp
        m.header.frame_id = frame_id
        kind = int(agents.kinds[i])
        m.ns = "cyclists" if kind == 1 else "pedestrians"
        m.id = int(agents.ids[i])
        m.type = Marker.CYLINDER
        m.action = Marker.ADD
        h = float(agents.heights[i])
        m.pose.position.x = float(agents.positions[i, 0])
        m.pose.position.y = float(agents.positions[i, 1])
        m.pose.position.z = h / 2.0
        vx, vy = (float(v) for v in agents.velocities[i])
        m.pose.orientation = yaw_quaternion_msg(math.atan2(vy, vx) if vx or vy else 0.0)
        d = 2.0 * float(agents.radii[i])
        m.scale.x, m.scale.y, m.scale.z = d, d, h
        m.color = _KIND_COLOURS.get(kind, _KIND_COLOURS[0])
        m.lifetime.sec, m.lifetime.nanosec = life.sec, life.nanosec
        out.markers.append(m)
    return out


def event_to_msg(event: Event) -> String:
    """std_msgs/String holding ``{"time": s, "kind": ..., "detail": ...}`` as JSON."""
    return String(data=json.dumps({"time": event.time, "kind": event.kind, "detail": event.detail}))


def event_from_msg(msg: String) -> Event:
    """Inverse of :func:`event_to_msg`; ValueError for text that is not such an event."""
    try:
        data: Any = json.loads(msg.data)
        return Event(float(data["time"]), str(data["kind"]), str(data["detail"]))
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(f"not a simulator event: {msg.data!r} ({err})") from None


def twist_to_command(msg: Twist) -> tuple[float, float]:
    """(v [m/s], w [rad/s]) of a cmd_vel Twist: linear.x and angular.z.

    Raises:
        ValueError: a non-finite linear.x or angular.z (the message names it).
    """
    v, w = float(msg.linear.x), float(msg.angular.z)
    if not math.isfinite(v) or not math.isfinite(w):
        raise ValueError(f"cmd_vel linear.x={v} angular.z={w} is not finite")
    return v, w
