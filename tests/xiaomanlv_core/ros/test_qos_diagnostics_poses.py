"""Tests for xiaomanlv_core.ros.qos, .diagnostics and .poses (small message helpers)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus
from geometry_msgs.msg import Pose, Quaternion
from rclpy.qos import DurabilityPolicy, HistoryPolicy, ReliabilityPolicy
from rclpy.serialization import serialize_message

from xiaomanlv_core.geometry import pose_matrix, quaternion_from_rpy
from xiaomanlv_core.ros.diagnostics import (
    diagnostic_array,
    diagnostic_status,
    key_values,
    level_byte,
    level_of,
)
from xiaomanlv_core.ros.poses import (
    matrix_of_pose,
    pose_msg,
    quaternion_msg,
    xyzw_of,
    yaw_of_msg,
    yaw_quaternion_msg,
)
from xiaomanlv_core.ros.qos import CLOCK_QOS, LATCHED_QOS, SENSOR_QOS, events_qos


def test_profiles() -> None:
    latched = (LATCHED_QOS.reliability, LATCHED_QOS.durability, LATCHED_QOS.depth)
    assert latched == (ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL, 1)
    assert LATCHED_QOS.history == HistoryPolicy.KEEP_LAST
    events = events_qos(200)
    assert (events.durability, events.depth) == (DurabilityPolicy.TRANSIENT_LOCAL, 200)
    assert events.reliability == ReliabilityPolicy.RELIABLE
    assert (SENSOR_QOS.durability, SENSOR_QOS.depth) == (DurabilityPolicy.VOLATILE, 10)
    assert (CLOCK_QOS.depth, CLOCK_QOS.reliability) == (1, ReliabilityPolicy.RELIABLE)
    with pytest.raises(ValueError, match="depth 0 must be at least 1"):
        events_qos(0)


def test_status_from_a_mapping_of_values() -> None:
    status = diagnostic_status(
        "sim: summary", DiagnosticStatus.WARN, "slow", {"rtf": "0.50", "n": 3, "ok": True}, "hw"
    )
    assert [(kv.key, kv.value) for kv in status.values] == [
        ("rtf", "0.50"),
        ("n", "3"),
        ("ok", "True"),
    ]
    assert (status.name, status.message, status.hardware_id) == ("sim: summary", "slow", "hw")
    assert level_of(status.level) == 1
    serialize_message(status)  # the level is the byte rclpy expects
    array = diagnostic_array([status], Time(sec=4))
    assert array.header.stamp.sec == 4 and array.status == [status]
    assert key_values({}) == []


def test_levels_read_and_written() -> None:
    assert level_of(b"\x02") == 2 and level_of(3) == 3 and level_of(DiagnosticStatus.OK) == 0
    assert level_byte(2) == b"\x02" and level_byte(b"\x01") == b"\x01"
    with pytest.raises(ValueError):
        level_byte(256)


def test_quaternion_messages_follow_core_geometry() -> None:
    for yaw in (0.0, 0.3, -2.0, math.pi - 1e-9):
        assert yaw_of_msg(yaw_quaternion_msg(yaw)) == pytest.approx(yaw, abs=1e-12)
    q = quaternion_from_rpy(0.1, -0.2, 0.7)
    msg = quaternion_msg(np.asarray(q))
    assert isinstance(msg, Quaternion) and xyzw_of(msg) == pytest.approx(q)
    assert yaw_of_msg(msg) == pytest.approx(0.7)


def test_pose_round_trip() -> None:
    pose = pose_matrix(1.0, -2.0, 0.5, 0.1, -0.2, 2.5)
    msg = pose_msg(pose)
    assert isinstance(msg, Pose) and msg.position.y == -2.0
    np.testing.assert_allclose(matrix_of_pose(msg), pose, atol=1e-12)
    with pytest.raises(ValueError, match="has no rotation"):
        matrix_of_pose(Pose(orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=0.0)))
