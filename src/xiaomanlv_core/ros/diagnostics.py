"""diagnostic_msgs helpers: a status from a mapping of values, levels as ints.

Every node reports on /diagnostics (REP 107's DiagnosticArray, as Nav2 and ros2 drivers do)
with a ``"<node>: <what>"`` name and string key/values; :func:`diagnostic_status` builds one
from a dict (values through ``str``, in the dict's order). ``level`` is a ``byte`` field, which
rclpy gives as ``bytes``: :func:`level_of` reads it, :func:`level_byte` writes it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue


def level_of(value: bytes | int) -> int:
    """A diagnostic level from a ``byte`` field (bytes in rclpy) or an int."""
    return value[0] if isinstance(value, (bytes, bytearray)) else int(value)


def level_byte(level: bytes | int) -> bytes:
    """The ``byte`` rclpy expects in DiagnosticStatus.level (and HealthStatus.level).

    Raises:
        ValueError: a level outside 0..255.
    """
    return bytes([level_of(level)])


def key_values(values: Mapping[str, Any]) -> list[KeyValue]:
    """KeyValues of ``values`` in their order, each value through ``str``."""
    return [KeyValue(key=str(k), value=str(v)) for k, v in values.items()]


def diagnostic_status(
    name: str,
    level: bytes | int,
    message: str,
    values: Mapping[str, Any] | None = None,
    hardware_id: str = "",
) -> DiagnosticStatus:
    """A DiagnosticStatus with ``values`` as KeyValues (see :func:`key_values`)."""
    return DiagnosticStatus(
        level=level_byte(level),
        name=name,
        message=message,
        hardware_id=hardware_id,
        values=key_values(values or {}),
    )


def diagnostic_array(statuses: Iterable[DiagnosticStatus], stamp: Time) -> DiagnosticArray:
    """A DiagnosticArray of ``statuses`` stamped ``stamp``."""
    array = DiagnosticArray(status=list(statuses))
    array.header.stamp = stamp
    return array
