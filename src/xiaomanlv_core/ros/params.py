"""Declare a node's parameters from its frozen config dataclass, and validate them.

Defaults come only from the dataclass (``declare_parameter(name, cfg.field)``), YAML files
only override, ranges become ParameterDescriptors that ``ros2 param describe`` shows, and an
on-set callback rejects a change that would make the config invalid (ros2/demos' pattern).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import Any, TypeVar

from rcl_interfaces.msg import (
    FloatingPointRange,
    IntegerRange,
    ParameterDescriptor,
    ParameterType,
    SetParametersResult,
)
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.parameter import Parameter

from xiaomanlv_core.config import ConfigError, config_from_mapping, spec_of

C = TypeVar("C")

_TYPES = {
    bool: ParameterType.PARAMETER_BOOL,
    int: ParameterType.PARAMETER_INTEGER,
    float: ParameterType.PARAMETER_DOUBLE,
    str: ParameterType.PARAMETER_STRING,
}


def descriptor_for(field: dataclasses.Field[Any]) -> ParameterDescriptor:
    """A ParameterDescriptor with the field's type, description, unit and range."""
    spec = spec_of(field)
    default = field.default
    desc = ParameterDescriptor(name=field.name)
    unit = f" [{spec.unit}]" if spec.unit else ""
    desc.description = f"{spec.description}{unit}".strip()
    if isinstance(default, tuple):
        desc.type = ParameterType.PARAMETER_STRING_ARRAY
    else:
        desc.type = _TYPES.get(type(default), ParameterType.PARAMETER_NOT_SET)
    if spec.low is None or spec.high is None:
        return desc
    if isinstance(default, float):
        desc.floating_point_range = [
            FloatingPointRange(from_value=float(spec.low), to_value=float(spec.high), step=0.0)
        ]
    elif isinstance(default, int) and not isinstance(default, bool):
        desc.integer_range = [
            IntegerRange(from_value=int(spec.low), to_value=int(spec.high), step=1)
        ]
    return desc


def declare_config(node: Node, cls: type[C], prefix: str = "") -> C:
    """Declare one parameter per field of ``cls`` and build the validated config.

    ``prefix`` (``"integrity."``) declares the fields under it: a second config of one node,
    a core's own settings (``integrity.no_fit_time``; in a parameter file, ``integrity:`` with
    the fields nested under it). Such a config is read once; :func:`refuse_changes` says so.

    Raises:
        ConfigError: a parameter out of range or of the wrong type, naming the parameter,
            its value and its allowed range.
    """
    under = f" under '{prefix}'" if prefix else ""
    source = f"parameters{under} of node '{node.get_fully_qualified_name()}'"
    values: dict[str, Any] = {}
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        default = field.default
        value = list(default) if isinstance(default, tuple) else default
        if isinstance(default, tuple) and not default:
            value = Parameter.Type.STRING_ARRAY  # rclpy types a plain [] as a byte array
        try:
            param = node.declare_parameter(prefix + field.name, value, descriptor_for(field))
        except InvalidParameterValueException as err:
            # rclpy checked the descriptor's range; say it in the project's words.
            found = re.search(r"value \((.*?)\)", str(err))
            shown = found.group(1) if found else "?"
            raise ConfigError(
                f"parameter '{prefix}{field.name}' = {shown} is out of range "
                f"{spec_of(field).range_text()} ({source})"
            ) from None
        except InvalidParameterTypeException as err:
            raise ConfigError(
                f"parameter '{prefix}{field.name}' has the wrong type: expected "
                f"{type(default).__name__} ({source}): {err}"
            ) from None
        values[field.name] = default if param.value is None else param.value
    return config_from_mapping(cls, values, source)


def watch_config(node: Node, current: Callable[[], C], apply: Callable[[C], None]) -> None:
    """Validate every later parameter change against the config, then ``apply`` it.

    ``apply`` may raise ConfigError to refuse a change it cannot make at run time.
    """

    def on_set(params: list[Parameter]) -> SetParametersResult:
        config = current()
        changes = {p.name: p.value for p in params if hasattr(config, p.name)}
        if not changes:
            return SetParametersResult(successful=True)
        merged = {**dataclasses.asdict(config), **changes}  # type: ignore[call-overload]
        try:
            apply(config_from_mapping(type(config), merged, "parameter update"))
        except ConfigError as err:
            return SetParametersResult(successful=False, reason=str(err))
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)


def refuse_changes(node: Node, prefixes: tuple[str, ...]) -> None:
    """Refuse run-time changes of the parameters under ``prefixes``, naming them: configs a
    node reads once, at start (a core built from them), so a change would be accepted and
    never applied. Register after their :func:`declare_config`."""

    def on_set(params: list[Parameter]) -> SetParametersResult:
        fixed = sorted(p.name for p in params if p.name.startswith(prefixes))
        if fixed:
            return SetParametersResult(
                successful=False,
                reason=f"{', '.join(fixed)}: read at start; restart the node to change it",
            )
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(on_set)
