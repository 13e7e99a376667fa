"""The sim and ultrasonic_range nodes take any message and any parameter request (issue 11).

Each node is built in this process (as its executable builds it) on a reserved domain; the
callbacks rclpy registered are called as the executor calls them, with hostile values, and
must count a rejection and go on instead of raising (which would end the process).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest
import rclpy
from geometry_msgs.msg import Twist
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.node import Node
from sensor_msgs.msg import LaserScan

from xiaomanlv_bringup.ros.session import reserved_domain_id


@pytest.fixture(scope="module")
def rclpy_args() -> Iterator[None]:
    with reserved_domain_id() as domain:
        rclpy.init(
            args=["--ros-args", "-p", "lidar:=false", "-p", "ultrasonic:=false"],
            domain_id=domain,
        )
        yield
        rclpy.shutdown()


@pytest.fixture(scope="module")
def sim(rclpy_args: None) -> Iterator[Any]:
    from xiaomanlv_sim.nodes.sim import SimNode

    node = SimNode()
    yield node
    node.destroy_node()


@pytest.fixture
def ultrasonic(rclpy_args: None) -> Iterator[Any]:
    from xiaomanlv_sim.nodes.ultrasonic_range import UltrasonicRangeNode

    node = UltrasonicRangeNode()
    node.published: list[Any] = []
    for name, pub in node._pubs.items():
        pub.publish = lambda msg, name=name: node.published.append((name, msg))
    yield node
    node.destroy_node()


def _subscription(node: Node, topic: str) -> Any:
    return next(s for s in node.subscriptions if s.topic_name == topic).callback


def set_parameters(node: Node, *params: ParameterMsg) -> SetParameters.Response:
    """What a remote `ros2 param set` does: the node's own /set_parameters service callback."""
    callback = next(s for s in node.services if s.srv_name.endswith("/set_parameters")).callback
    return callback(SetParameters.Request(parameters=list(params)), SetParameters.Response())


def _param(name: str, **value: Any) -> ParameterMsg:
    return ParameterMsg(name=name, value=ParameterValue(**value))


def _twist(v: float, w: float) -> Twist:
    msg = Twist()
    msg.linear.x, msg.angular.z = v, w
    return msg


# -- sim: /cmd_vel ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("v", "w"), [(1e300, 0.0), (0.0, -1e300), (21.0, 0.0), (math.nan, 0.0), (0.5, math.inf)]
)
def test_a_command_that_is_not_finite_or_far_beyond_the_drive_stops_the_robot(
    sim: Any, v: float, w: float
) -> None:
    on_cmd = _subscription(sim, "/cmd_vel")
    on_cmd(_twist(1.0, 0.2))
    assert sim.sim.dynamics.cmd == (1.0, 0.2)
    before = sim.malformed
    on_cmd(_twist(v, w))
    assert sim.malformed == before + 1
    assert sim.sim.dynamics.cmd == (0.0, 0.0)  # never the garbage, nor the last good command
    assert "cmd_vel linear.x=" in sim.last_rejection


def test_a_command_within_the_drive_s_range_is_passed_on_for_the_limiter(sim: Any) -> None:
    # 2.5 m/s is above the robot's 2 m/s but a real controller's overshoot: DiffDrive clips it.
    _subscription(sim, "/cmd_vel")(_twist(2.5, -1.0))
    assert sim.sim.dynamics.cmd == (2.5, -1.0)


# -- sim: parameters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("param", "reason"),
    [
        (_param("cmd_timeout", type=ParameterType.PARAMETER_DOUBLE, double_value=math.nan),
         "out of range"),
        (_param("clock_rate", type=ParameterType.PARAMETER_DOUBLE, double_value=1e308),
         "out of range"),
        (_param("seed", type=ParameterType.PARAMETER_INTEGER, integer_value=2**63 - 1),
         "out of range"),
        (_param("cmd_timeout", type=ParameterType.PARAMETER_STRING, string_value="1"),
         "Wrong parameter type"),
        (_param("world", type=ParameterType.PARAMETER_STRING, string_value="residential"),
         "world cannot change at run time"),
        (_param("odom_frame", type=ParameterType.PARAMETER_STRING, string_value="od\x01om"),
         "parameter 'odom_frame' = 'od\\x01om' is not a frame id"),
        (_param("base_frame", type=ParameterType.PARAMETER_STRING, string_value=""),
         "parameter 'base_frame' = '' is not a frame id"),
        (_param("world_frame", type=ParameterType.PARAMETER_STRING, string_value="a b"),
         "is not a frame id"),
    ],
)  # fmt: skip
def test_bad_parameter_values_are_refused_with_a_reason(
    sim: Any, param: ParameterMsg, reason: str
) -> None:
    before = sim.config
    (result,) = set_parameters(sim, param).results
    assert not result.successful
    assert reason in result.reason
    assert sim.config == before


def test_a_parameter_of_no_known_type_is_counted_not_fatal(sim: Any) -> None:
    before = sim._guard.count
    response = set_parameters(sim, _param("cmd_timeout", type=99))
    assert list(response.results) == []
    assert sim._guard.count == before + 1
    assert "set_parameters: ValueError" in sim._guard.last_error


def test_a_good_frame_change_is_applied(sim: Any) -> None:
    param = _param("odom_frame", type=ParameterType.PARAMETER_STRING, string_value="odom_2")
    (result,) = set_parameters(sim, param).results
    assert result.successful, result.reason
    assert sim.config.odom_frame == "odom_2"
    set_parameters(
        sim, _param("odom_frame", type=ParameterType.PARAMETER_STRING, string_value="odom")
    )


# -- ultrasonic_range -------------------------------------------------------------------------


def _scan(**fields: Any) -> LaserScan:
    scan = LaserScan(range_min=0.02, range_max=4.0, angle_min=-0.13, angle_max=0.13)
    scan.ranges = [1.5, 2.0]
    for key, value in fields.items():
        setattr(scan, key, value)
    return scan


@pytest.mark.parametrize(
    "fields",
    [
        {"angle_min": -3.0e38, "angle_max": 3.0e38},  # float32 each, their span is not
        {"angle_min": 0.0, "angle_max": math.nan},
        {"angle_min": -math.inf, "angle_max": 0.1},
        {"angle_min": -4.0, "angle_max": 4.0},
        {"range_min": math.nan},
        {"range_min": 3.0, "range_max": 1.0},
    ],
)
def test_a_scan_no_ranger_could_produce_is_counted_and_dropped(
    ultrasonic: Any, fields: dict[str, float]
) -> None:
    _subscription(ultrasonic, "/ultrasonic/front_left/scan")(_scan(**fields))
    assert ultrasonic.malformed == 1
    assert ultrasonic.published == []
    assert ultrasonic._last_error.startswith("/ultrasonic/front_left/scan: ")


def test_a_good_scan_is_converted(ultrasonic: Any) -> None:
    _subscription(ultrasonic, "/ultrasonic/front_left/scan")(_scan())
    ((name, msg),) = ultrasonic.published
    assert name == "front_left"
    assert msg.range == pytest.approx(1.5)
    assert msg.field_of_view == pytest.approx(0.26)
    assert ultrasonic.malformed == 0


def test_ultrasonic_parameters_are_refused_or_applied(ultrasonic: Any) -> None:
    sensors = _param(
        "sensors", type=ParameterType.PARAMETER_STRING_ARRAY, string_array_value=["x/y"]
    )
    (result,) = set_parameters(ultrasonic, sensors).results
    assert not result.successful
    rate = _param("diagnostics_rate", type=ParameterType.PARAMETER_DOUBLE, double_value=math.nan)
    (result,) = set_parameters(ultrasonic, rate).results
    assert not result.successful and "out of range" in result.reason
    rate.value.double_value = 5.0
    (result,) = set_parameters(ultrasonic, rate).results
    assert result.successful, result.reason
    assert ultrasonic.config.diagnostics_rate == 5.0
    assert set_parameters(ultrasonic, _param("sensors", type=42)).results == []
    assert ultrasonic._guard.count == 1
