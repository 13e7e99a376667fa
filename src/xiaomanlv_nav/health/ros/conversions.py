"""Message conversions shared by node adapters."""

from __future__ import annotations

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus
from xiaomanlv.msg import HealthStatus, TopicHealth

from xiaomanlv_core.ros.diagnostics import diagnostic_status, level_byte
from xiaomanlv_nav.health.monitor import HealthReport


def health_to_msg(report: HealthReport, stamp: Time, malformed: int = 0) -> HealthStatus:
    """HealthStatus stamped ``stamp`` (the node's ROS time; the report's own is steady time)."""
    msg = HealthStatus()
    msg.header.stamp = stamp
    msg.level = level_byte(report.level)
    msg.malformed_messages = malformed
    for t in report.topics:
        msg.topics.append(
            TopicHealth(
                topic=t.topic,
                level=level_byte(t.level),
                rate=float(t.rate),
                min_rate=float(t.min_rate),
                age=float(t.age),
                message=t.message,
            )
        )
    for c in report.components:
        msg.components.append(
            diagnostic_status(c.name, c.level, c.message, {"age_s": f"{c.age:.2f}"})
        )
    return msg


def report_to_diagnostics(
    report: HealthReport, prefix: str, malformed: int
) -> list[DiagnosticStatus]:
    """One DiagnosticStatus for the monitor itself and one per watched topic."""
    own = diagnostic_status(
        f"{prefix}: summary", report.level, report.summary(), {"malformed_messages": malformed}
    )
    topics = [
        diagnostic_status(
            f"{prefix}: {t.topic}",
            t.level,
            t.message,
            {
                "rate_hz": f"{t.rate:.2f}",
                "min_rate_hz": f"{t.min_rate:g}",
                "age_s": f"{t.age:.2f}",
            },
        )
        for t in report.topics
    ]
    return [own, *topics]
