"""ultrasonic_range as a real process: Gazebo-style LaserScans in, sensor_msgs/Range out."""

from __future__ import annotations

import math
import time
from typing import Any

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import LaserScan, Range

pytestmark = pytest.mark.integration

RANGERS = ["front_left", "front_right", "right_front", "right_rear",
           "rear_right", "rear_left", "left_rear", "left_front"]  # fmt: skip


def scan(ranges: list[float], range_min: float = 0.03, range_max: float = 4.5) -> LaserScan:
    msg = LaserScan(angle_min=-0.2618, angle_max=0.2618, range_min=range_min, range_max=range_max)
    msg.header.frame_id = "ultrasonic_front_left"
    msg.ranges = ranges
    return msg


def test_every_ranger_of_the_model_gets_a_range_topic(ros_graph: Any) -> None:
    topics = [f"/ultrasonic/{n}" for n in RANGERS]
    session = ros_graph(profile="gazebo", nodes=["ultrasonic_range"], topics=topics)
    with session.publishing("/ultrasonic/front_left/scan", scan([2.0, 1.5, math.inf])):
        got = session.wait_for_message(Range, "/ultrasonic/front_left", timeout=10.0)
    assert got.range == pytest.approx(1.5)
    assert got.radiation_type == Range.ULTRASOUND
    assert got.field_of_view == pytest.approx(0.5236, abs=1e-4)
    assert (got.min_range, got.max_range) == pytest.approx((0.03, 4.5))
    assert got.header.frame_id == "ultrasonic_front_left"


def test_a_malformed_scan_is_counted_and_the_node_goes_on(ros_graph: Any) -> None:
    session = ros_graph(
        profile="gazebo", nodes=["ultrasonic_range"], topics=["/ultrasonic/rear_left"]
    )
    with session.publishing("/ultrasonic/rear_left/scan", scan([1.0], 3.0, 1.0)):
        deadline = time.monotonic() + 15.0
        malformed = 0
        while malformed == 0 and time.monotonic() < deadline:
            diag = session.wait_for_message(DiagnosticArray, "/diagnostics", timeout=5.0)
            values = {kv.key: kv.value for st in diag.status for kv in st.values}
            malformed = int(values.get("malformed_messages", 0))
    assert malformed > 0
    with session.publishing("/ultrasonic/rear_left/scan", scan([math.inf] * 15)):
        got = session.wait_for_message(Range, "/ultrasonic/rear_left", timeout=10.0)
    assert got.range == math.inf


def test_a_scan_whose_cone_overflows_a_float32_range_does_not_kill_the_node(
    ros_graph: Any,
) -> None:
    # Each angle is a valid float32; their span (6e38) is not, and the Range constructor
    # refused it with an AssertionError that ended the process (issue 11).
    session = ros_graph(
        profile="gazebo", nodes=["ultrasonic_range"], topics=["/ultrasonic/front_right"]
    )
    hostile = scan([1.0])
    hostile.angle_min, hostile.angle_max = -3.0e38, 3.0e38
    with session.publishing("/ultrasonic/front_right/scan", hostile):
        deadline = time.monotonic() + 15.0
        values: dict[str, str] = {}
        while int(values.get("malformed_messages", 0)) == 0 and time.monotonic() < deadline:
            diag = session.wait_for_message(DiagnosticArray, "/diagnostics", timeout=5.0)
            values = {kv.key: kv.value for st in diag.status for kv in st.values}
    assert int(values["malformed_messages"]) > 0
    assert values["callback_errors"] == "0"  # rejected by validation, not by the safety net
    assert session.supervisor.running() == ["ultrasonic_range"]
    with session.publishing("/ultrasonic/front_right/scan", scan([0.8])):
        got = session.wait_for_message(Range, "/ultrasonic/front_right", timeout=10.0)
    assert got.range == pytest.approx(0.8)
