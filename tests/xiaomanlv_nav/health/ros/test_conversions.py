"""Health report -> messages, with hand-built reports."""

from __future__ import annotations

from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus
from xiaomanlv.msg import HealthStatus, TopicHealth

from xiaomanlv_core.ros.diagnostics import level_of
from xiaomanlv_nav.health.monitor import ComponentReport, HealthReport, Level, TopicReport
from xiaomanlv_nav.health.ros.conversions import health_to_msg, report_to_diagnostics

REPORT = HealthReport(
    stamp=12.5,
    level=Level.STALE,
    topics=(
        TopicReport("/imu/data", Level.OK, 99.5, 80.0, 0.01, "99.5 Hz"),
        TopicReport("/gnss/fix", Level.STALE, 0.0, 4.0, -1.0, "no message yet"),
    ),
    components=(ComponentReport("driver: wheels", Level.WARN, "hot", 0.25),),
)


def test_level_of_reads_byte_fields_and_ints() -> None:
    assert level_of(b"\x02") == 2
    assert level_of(TopicHealth.STALE) == 3
    assert level_of(DiagnosticStatus.WARN) == 1
    assert level_of(0) == 0


def test_health_to_msg_carries_every_topic_and_component() -> None:
    msg = health_to_msg(REPORT, Time(sec=7, nanosec=5), malformed=3)
    assert isinstance(msg, HealthStatus)
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (7, 5)
    assert level_of(msg.level) == level_of(HealthStatus.STALE)
    assert msg.malformed_messages == 3
    assert [(t.topic, level_of(t.level)) for t in msg.topics] == [
        ("/imu/data", 0),
        ("/gnss/fix", 3),
    ]
    imu = msg.topics[0]
    assert (imu.rate, imu.min_rate, imu.message) == (99.5, 80.0, "99.5 Hz")
    assert msg.topics[1].age == -1.0
    (wheels,) = msg.components
    assert (wheels.name, level_of(wheels.level), wheels.message) == ("driver: wheels", 1, "hot")
    assert {kv.key: kv.value for kv in wheels.values} == {"age_s": "0.25"}


def test_report_to_diagnostics_has_a_summary_and_one_status_per_topic() -> None:
    statuses = report_to_diagnostics(REPORT, "health_monitor", malformed=2)
    assert [s.name for s in statuses] == [
        "health_monitor: summary",
        "health_monitor: /imu/data",
        "health_monitor: /gnss/fix",
    ]
    summary = statuses[0]
    assert level_of(summary.level) == 3
    assert summary.message == "STALE: /gnss/fix STALE, driver: wheels WARN"
    assert {kv.key: kv.value for kv in summary.values} == {"malformed_messages": "2"}
    gnss = {kv.key: kv.value for kv in statuses[2].values}
    assert gnss == {"rate_hz": "0.00", "min_rate_hz": "4", "age_s": "-1.00"}
