"""Message conversions shared by node adapters."""

from __future__ import annotations

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from xiaomanlv.msg import HealthStatus, TopicHealth

from xiaomanlv_nav.health.monitor import HealthReport


def health_to_msg(report: HealthReport, stamp: Time, malformed: int = 0) -> HealthStatus:
    """HealthStatus stamped ``stamp`` (the node's ROS time; the report's own is steady time)."""
    msg = HealthStatus()
    msg.header.stamp = stamp
    msg.level = bytes([int(report.level)])
    msg.malformed_messages = malformed
    for t in report.topics:
        msg.topics.append(
            TopicHealth(
                topic=t.topic,
                level=bytes([int(t.level)]),
                rate=float(t.rate),
                min_rate=float(t.min_rate),
                age=float(t.age),
                message=t.message,
            )
        )
    for c in report.components:
        msg.components.append(
            DiagnosticStatus(
                level=bytes([int(c.level)]),
                name=c.name,
                message=c.message,
                values=[KeyValue(key="age_s", value=f"{c.age:.2f}")],
            )
        )
    return msg


def level_of(value: bytes | int) -> int:
    """A diagnostic level from a ``byte`` field (bytes in rclpy) or an int."""
    return value[0] if isinstance(value, (bytes, bytearray)) else int(value)


def report_to_diagnostics(
    report: HealthReport, prefix: str, malformed: int
) -> list[DiagnosticStatus]:
    """One DiagnosticStatus for the monitor itself and one per watched topic."""
    own = DiagnosticStatus(
        level=bytes([int(report.level)]),
        name=f"{prefix}: summary",
        message=report.summary(),
        hardware_id="",
        values=[KeyValue(key="malformed_messages", value=str(malformed))],
    )
    topics = [
        DiagnosticStatus(
            level=bytes([int(t.level)]),
            name=f"{prefix}: {t.topic}",
            message=t.message,
            values=[
                KeyValue(key="rate_hz", value=f"{t.rate:.2f}"),
                KeyValue(key="min_rate_hz", value=f"{t.min_rate:g}"),
                KeyValue(key="age_s", value=f"{t.age:.2f}"),
            ],
        )
        for t in report.topics
    ]
    return [own, *topics]
