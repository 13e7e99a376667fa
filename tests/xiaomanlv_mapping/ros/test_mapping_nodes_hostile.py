"""map_server and map_recorder take any parameter request and any recorded message (issue 11).

The nodes are built in this process on a reserved domain; their registered callbacks are
called as rclpy's executor calls them, with hostile values.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import rclpy
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.node import Node

from xiaomanlv_bringup.ros.session import reserved_domain_id
from xiaomanlv_mapping.mapfiles import write_map


def set_parameters(node: Node, *params: ParameterMsg) -> SetParameters.Response:
    callback = next(s for s in node.services if s.srv_name.endswith("/set_parameters")).callback
    return callback(SetParameters.Request(parameters=list(params)), SetParameters.Response())


def _param(name: str, **value: Any) -> ParameterMsg:
    return ParameterMsg(name=name, value=ParameterValue(**value))


@pytest.fixture
def map_server(tmp_path: Path, map_rig: ModuleType) -> Iterator[Any]:
    from xiaomanlv_mapping.nodes.map_server import MapServerNode

    out = write_map(map_rig.synthetic_map(), tmp_path / "maps" / "testsite")
    with reserved_domain_id() as domain:
        rclpy.init(args=["--ros-args", "-p", f"map:={out}"], domain_id=domain)
        node = MapServerNode()
        yield node
        node.destroy_node()
        rclpy.try_shutdown()


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Any]:
    from xiaomanlv_mapping.nodes.recorder import MapRecorderNode

    with reserved_domain_id() as domain:
        rclpy.init(args=["--ros-args", "-p", f"output:={tmp_path / 'bag'}"], domain_id=domain)
        node = MapRecorderNode()
        yield node
        node.destroy_node()
        rclpy.try_shutdown()


def test_map_server_refuses_bad_parameters_with_a_reason(map_server: Any) -> None:
    nan = _param("diagnostics_rate", type=ParameterType.PARAMETER_DOUBLE, double_value=math.nan)
    (result,) = set_parameters(map_server, nan).results
    assert not result.successful and "out of range" in result.reason
    site = _param("site", type=ParameterType.PARAMETER_STRING, string_value="residential")
    (result,) = set_parameters(map_server, site).results
    assert not result.successful and "site cannot change at run time" in result.reason


def test_map_server_counts_a_parameter_of_no_known_type(map_server: Any) -> None:
    assert set_parameters(map_server, _param("site", type=200)).results == []
    assert map_server._guard.count == 1
    map_server._publish_diagnostics()  # reported, not fatal


def test_recorder_parameters_are_fixed_while_recording(recorder: Any) -> None:
    topics = _param(
        "topics", type=ParameterType.PARAMETER_STRING_ARRAY, string_array_value=["/other"]
    )
    (result,) = set_parameters(recorder, topics).results
    assert not result.successful
    assert "topics cannot change while recording" in result.reason
    assert recorder.config.topics == ("/lidar/points", "/imu/data", "/wheel/odom", "/gnss/fix")
    rate = _param("diagnostics_rate", type=ParameterType.PARAMETER_DOUBLE, double_value=1e308)
    (result,) = set_parameters(recorder, rate).results
    assert not result.successful and "out of range" in result.reason


def test_recorder_counts_a_parameter_of_no_known_type(recorder: Any) -> None:
    assert set_parameters(recorder, _param("output", type=17)).results == []
    assert recorder._guard.count == 1


def test_a_recording_callback_that_raises_is_counted_not_fatal(recorder: Any) -> None:
    recorder._subscribe("/chatter", "std_msgs/msg/String", [])
    callback = next(s for s in recorder.subscriptions if s.topic_name == "/chatter").callback

    def explode(topic: str, raw: bytes, stamp: int) -> None:
        raise OverflowError("a write the bag did not foresee")

    recorder.bag.write = explode
    callback(b"\x00\x01\x00\x00garbage")
    assert recorder._guard.errors == {"subscription /chatter": 1}
