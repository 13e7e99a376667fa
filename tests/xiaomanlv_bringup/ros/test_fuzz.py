"""The fuzzer's strategies reach values that break parsers and always build sendable messages."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st
from rclpy.serialization import deserialize_message, serialize_message

from xiaomanlv_bringup.ros.fuzz import interface_class, message_strategy, raw_mutation

# Every interface a node of the sim profile subscribes to or serves, and the hidden ones.
INTERFACES = [
    "geometry_msgs/msg/Twist",
    "nav_msgs/msg/Odometry",
    "sensor_msgs/msg/PointCloud2",
    "sensor_msgs/msg/Imu",
    "sensor_msgs/msg/NavSatFix",
    "sensor_msgs/msg/Range",
    "std_msgs/msg/String",
    "rosgraph_msgs/msg/Clock",
    "diagnostic_msgs/msg/DiagnosticArray",
    "xiaomanlv/srv/LoadParcel",
    "xiaomanlv/srv/SubmitCode",
    "xiaomanlv/srv/OperatorOpen",
    "xiaomanlv/srv/ArmStop",
    "xiaomanlv/srv/GetHealth",
    "rcl_interfaces/srv/SetParameters",
    "xiaomanlv/action/WaitForHealthy_SendGoal",
    "xiaomanlv/action/WaitForHealthy_GetResult",
    "xiaomanlv/action/WaitForHealthy_CancelGoal",
]
SETTINGS = settings(
    max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), database=None
)


def _message_class(name: str) -> Any:
    cls = interface_class(name)
    return cls.Request if hasattr(cls, "Request") else cls


@pytest.mark.parametrize("name", INTERFACES)
def test_every_drawn_message_is_an_instance_that_serializes(name: str) -> None:
    cls = _message_class(name)

    @SETTINGS
    @given(message_strategy(cls))
    def check(msg: Any) -> None:
        assert isinstance(msg, cls)
        assert isinstance(deserialize_message(serialize_message(msg), cls), cls)

    check()


def test_unknown_interface_raises_import_error() -> None:
    with pytest.raises(ImportError):
        interface_class("no_such_pkg/msg/Thing")


def _find(strategy: Any, condition: Any) -> Any:
    return find(strategy, condition, settings=settings(max_examples=2000, database=None))


def test_floats_reach_nan_and_infinity() -> None:
    twist = message_strategy(interface_class("geometry_msgs/msg/Twist"))
    assert math.isnan(_find(twist, lambda m: math.isnan(m.linear.x)).linear.x)
    assert math.isinf(_find(twist, lambda m: math.isinf(m.angular.z)).angular.z)


def test_integers_reach_their_bounds() -> None:
    request = message_strategy(interface_class("xiaomanlv/srv/OperatorOpen").Request)
    assert _find(request, lambda r: r.compartment == 255).compartment == 255


def test_strings_reach_control_characters_and_long_text() -> None:
    request = message_strategy(interface_class("xiaomanlv/srv/LoadParcel").Request)
    assert _find(request, lambda r: any(ord(c) < 0x20 for c in r.parcel_id))
    assert len(_find(request, lambda r: len(r.stop) > 10_000).stop) > 10_000


def _depth(text: str) -> int:
    depth = best = 0
    for char in text:
        depth += char in "[{"
        depth -= char in "]}"
        best = max(best, depth)
    return best


def test_string_messages_carry_hostile_json() -> None:
    strings = message_strategy(interface_class("std_msgs/msg/String"))
    assert _depth(_find(strings, lambda m: _depth(m.data) > 1000).data) > 1000

    def huge_number(m: Any) -> bool:
        try:
            value = json.loads(m.data)
        except (ValueError, RecursionError):
            return False
        return isinstance(value, dict) and any(
            isinstance(v, int) and abs(v) > 2**1024 for v in value.values()
        )

    assert _find(strings, huge_number)


def test_clouds_lie_about_their_data() -> None:
    clouds = message_strategy(interface_class("sensor_msgs/msg/PointCloud2"))
    liar = _find(clouds, lambda c: c.width > 0 and len(c.data) != c.width * c.height * c.point_step)
    assert len(liar.data) != liar.width * liar.height * liar.point_step


@settings(max_examples=30, deadline=None, database=None)
@given(st.data())
def test_raw_mutations_differ_from_the_serialized_message(data: st.DataObject) -> None:
    cls = interface_class("std_msgs/msg/String")
    msg = cls(data="a parcel id")
    raw = data.draw(raw_mutation(msg))
    assert isinstance(raw, bytes) and raw != serialize_message(msg)
