"""health_monitor's converters: hand-built messages -> what the core judges."""

from __future__ import annotations

import math

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Imu, LaserScan, NavSatFix, NavSatStatus, PointCloud2, PointField, Range
from std_msgs.msg import String

from xiaomanlv_nav.health.content import OK, Level
from xiaomanlv_nav.health.nodes.health_monitor import (
    MAX_GOAL_TOPICS,
    content_of,
    goal_problem,
    header_stamp,
)

NAN = math.nan
FIELDS = [
    PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
    for i, n in enumerate(("x", "y", "z", "intensity"))
]


def _cloud(points: np.ndarray) -> PointCloud2:
    """x, y, z, intensity FLOAT32 (point step 16), like the simulator's and Ouster's."""
    rows = np.zeros((len(points), 4), dtype="<f4")
    rows[:, :3] = points
    msg = PointCloud2(height=1, width=len(points), fields=FIELDS, point_step=16)
    msg.row_step = 16 * len(points)
    msg.data = rows.tobytes()
    return msg


def test_cloud_content() -> None:
    cloud = "sensor_msgs/msg/PointCloud2"
    assert content_of(cloud, _cloud(np.ones((10, 3)))) == OK
    assert content_of(cloud, _cloud(np.zeros((0, 3)))).cause == "empty cloud (0 points)"
    assert content_of(cloud, PointCloud2()).cause == "empty cloud (0 points)"
    nan = content_of(cloud, _cloud(np.full((10, 3), NAN)))
    assert (nan.level, nan.cause) == (Level.ERROR, "all 10 points non-finite")


def test_cloud_whose_layout_does_not_fit_its_data_raises() -> None:
    msg = _cloud(np.ones((10, 3)))
    msg.width, msg.row_step = 1000, 16000  # claims more points than the data holds
    with pytest.raises(ValueError, match="PointCloud2 data holds 160 bytes"):
        content_of("sensor_msgs/msg/PointCloud2", msg)
    msg.row_step = 160  # and rows shorter than their points
    with pytest.raises(ValueError, match="row_step 160 is shorter than width 1000"):
        content_of("sensor_msgs/msg/PointCloud2", msg)


def test_cloud_of_any_xyz_datatype_and_byte_order_is_judged() -> None:
    fields = [
        PointField(name=n, offset=8 * i, datatype=PointField.FLOAT64, count=1)
        for i, n in enumerate("xyz")
    ]
    data = np.array([[1.0, 2.0, 3.0], [NAN, NAN, NAN]], dtype=">f8").tobytes()
    msg = PointCloud2(height=1, width=2, fields=fields, point_step=24, row_step=48)
    msg.is_bigendian, msg.data = True, data
    assert content_of("sensor_msgs/msg/PointCloud2", msg) == OK


def test_imu_content_and_rep145_orientation_not_provided() -> None:
    imu = "sensor_msgs/msg/Imu"
    msg = Imu()
    assert content_of(imu, msg) == OK
    msg.orientation.w = NAN
    assert content_of(imu, msg).cause == "non-finite orientation"
    msg.orientation_covariance[0] = -1.0  # REP 145: no orientation estimate
    assert content_of(imu, msg) == OK
    msg.linear_acceleration.z = math.inf
    assert content_of(imu, msg).cause == "non-finite linear_acceleration"


def test_odometry_content() -> None:
    msg = Odometry()
    assert content_of("nav_msgs/msg/Odometry", msg) == OK
    msg.twist.twist.linear.x = NAN
    assert content_of("nav_msgs/msg/Odometry", msg).cause == "non-finite linear_velocity"


def test_fix_content() -> None:
    fix = "sensor_msgs/msg/NavSatFix"
    msg = NavSatFix(latitude=31.0, longitude=121.4)
    msg.status.status = NavSatStatus.STATUS_FIX
    assert content_of(fix, msg) == OK
    msg.status.status, msg.latitude, msg.longitude = NavSatStatus.STATUS_NO_FIX, NAN, NAN
    assert (content_of(fix, msg).level, content_of(fix, msg).cause) == (Level.WARN, "no fix")
    msg.status.status = NavSatStatus.STATUS_FIX
    assert content_of(fix, msg).level == Level.ERROR


def test_range_and_scan_content() -> None:
    assert content_of("sensor_msgs/msg/Range", Range(range=math.inf)) == OK
    assert content_of("sensor_msgs/msg/Range", Range(range=NAN)).cause == "range is NaN"
    assert content_of("sensor_msgs/msg/LaserScan", LaserScan()).cause == "empty scan (no ranges)"
    assert content_of("sensor_msgs/msg/LaserScan", LaserScan(ranges=[NAN, 1.0])) == OK


def test_types_without_a_content_check_are_ok() -> None:
    assert content_of("std_msgs/msg/String", String(data="\x00")) == OK


def test_header_stamp_in_seconds_or_none_without_a_header() -> None:
    msg = Imu()
    msg.header.stamp = Time(sec=12, nanosec=500_000_000)
    assert header_stamp(msg) == pytest.approx(12.5)
    assert header_stamp(DiagnosticArray()) == 0.0
    assert header_stamp(String()) is None


@pytest.mark.parametrize(
    ("topics", "timeout", "problem"),
    [
        ([], NAN, "timeout nan s is not in (0, 3600] s"),
        ([], math.inf, "timeout inf s is not in (0, 3600] s"),
        ([], -1.0, "timeout -1 s is not in (0, 3600] s"),
        ([], 0.0, "timeout 0 s is not in (0, 3600] s"),
        ([], 3.4e38, "timeout 3.4e+38 s is not in (0, 3600] s"),
        (["/a"] * (MAX_GOAL_TOPICS + 1), 1.0, "topics lists 257 entries, at most 256"),
        (["/imu\x1b[31m"], 1.0, "topics entry '/imu\\x1b[31m' contains control character"),
        (["/" + "a" * 300], 1.0, "is 301 characters long, at most 256"),
    ],
)
def test_goal_problems_name_the_field(topics: list[str], timeout: float, problem: str) -> None:
    found = goal_problem(topics, timeout, max_wait=3600.0)
    assert found is not None and problem in found


def test_a_fit_goal_has_no_problem() -> None:
    assert goal_problem([], 1.0, 3600.0) is None
    assert goal_problem(["/imu/data", "/no/such/topic"], 3600.0, 3600.0) is None
