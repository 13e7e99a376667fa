"""Locker core values -> locker messages: wall stamps and the diagnostic status."""

from __future__ import annotations

import math

import pytest
from diagnostic_msgs.msg import DiagnosticStatus

from xiaomanlv_core.ros.diagnostics import level_of
from xiaomanlv_core.ros.time import seconds_of
from xiaomanlv_locker.ros.conversions import locker_diagnostics, wall_to_time


def test_wall_time_to_stamp() -> None:
    stamp = wall_to_time(1_700_000_000.25)
    assert (stamp.sec, stamp.nanosec) == (1_700_000_000, 250_000_000)
    assert seconds_of(wall_to_time(12.5)) == pytest.approx(12.5)


@pytest.mark.parametrize("seconds", [0.0, -3.0, math.nan, math.inf, 2.0**31, 1e300])
def test_what_is_no_wall_time_becomes_the_unset_stamp(seconds: float) -> None:
    stamp = wall_to_time(seconds)
    assert (stamp.sec, stamp.nanosec) == (0, 0)


def test_diagnostics_values_in_order_and_level() -> None:
    status = locker_diagnostics(
        "locker: summary",
        {"loaded": 2, "faults": 1, "empty": 47},
        "A",
        False,
        3,
        rejections={"odom": 2, "code": 1},
        internal_errors=0,
        stops=None,
        motion="",
    )
    assert level_of(status.level) == level_of(DiagnosticStatus.WARN)
    assert status.message == "1 compartment fault(s); site stops unknown (no /map/stops yet)"
    assert [(kv.key, kv.value) for kv in status.values] == [
        ("empty", "47"),
        ("faults", "1"),
        ("loaded", "2"),
        ("armed_stop", "A"),
        ("moving", "false"),
        ("motion", "parked"),
        ("malformed_messages", "3"),
        ("internal_errors", "0"),
        ("site_stops", "unknown"),
        ("rejected_code", "1"),
        ("rejected_odom", "2"),
    ]
    ok = locker_diagnostics("locker: summary", {"empty": 50}, "", True, 0, stops=4)
    assert (level_of(ok.level), ok.message) == (0, "ok")
    assert ("site_stops", "4") in [(kv.key, kv.value) for kv in ok.values]
