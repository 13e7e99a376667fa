"""declare_config under a prefix (a node's second config) and refuse_changes, on a real rclpy
node of its own context (no messages: parameters are set as the parameter service sets them)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from rclpy.context import Context
from rclpy.node import Node
from rclpy.parameter import Parameter

from xiaomanlv_core.config import ConfigError, param
from xiaomanlv_core.ros.params import declare_config, refuse_changes


@dataclass(frozen=True)
class IntegrityConfig:
    """A core's own settings, as a node's second config."""

    no_fit_time: float = param(
        0.5, low=0.0, high=60.0, unit="s", description="nothing fitting this long is LOST"
    )
    lost_persistence: float = param(
        0.3, low=0.0, high=10.0, unit="s", description="evidence must last this long"
    )


def test_a_prefixed_config_is_declared_under_its_prefix(context: Context) -> None:
    node = Node(
        "prefixed",
        context=context,
        parameter_overrides=[Parameter("integrity.no_fit_time", value=0.4)],
    )
    try:
        config = declare_config(node, IntegrityConfig, prefix="integrity.")
        assert config.no_fit_time == 0.4  # the override, by its prefixed name
        assert config.lost_persistence == IntegrityConfig().lost_persistence
        assert node.has_parameter("integrity.lost_persistence")
        assert not node.has_parameter("lost_persistence")
        refuse_changes(node, ("integrity.",))
        result = node.set_parameters([Parameter("integrity.no_fit_time", value=0.6)])[0]
        assert not result.successful and "integrity.no_fit_time" in result.reason
        assert "restart the node" in result.reason
        assert node.get_parameter("integrity.no_fit_time").value == 0.4
    finally:
        node.destroy_node()


def test_a_bad_prefixed_value_names_the_prefixed_parameter(context: Context) -> None:
    node = Node(
        "bad",
        context=context,
        parameter_overrides=[Parameter("integrity.no_fit_time", value=-1.0)],
    )
    try:
        with pytest.raises(ConfigError, match=r"'integrity\.no_fit_time' = -1\.0 is out of range"):
            declare_config(node, IntegrityConfig, prefix="integrity.")
    finally:
        node.destroy_node()
