"""Tests for xiaomanlv_core.ros.time: stamps round-trip, and what a Time cannot hold is refused."""

from __future__ import annotations

import math

import pytest
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message

from xiaomanlv_core.ros.time import (
    MAX_SEC,
    is_zero,
    nanoseconds_of,
    nanoseconds_of_stamp,
    seconds_of,
    stamp_of,
    stamp_of_nanoseconds,
)


def test_stamps_round_trip_to_the_nanosecond() -> None:
    for t in (0.0, 0.005, 1.1, 12345.678901234, 1_700_000_000.25):
        stamp = stamp_of(t)
        assert 0 <= stamp.nanosec < 1_000_000_000
        assert seconds_of(stamp) == pytest.approx(t, abs=1e-9 * max(1.0, t / 1e6))
    assert (stamp_of(2.5).sec, stamp_of(2.5).nanosec) == (2, 500_000_000)
    assert (stamp_of(0.9999999999).sec, stamp_of(0.9999999999).nanosec) == (1, 0)  # rounded
    wall = stamp_of(1_700_000_000.25)  # a wall time: no float error from t * 1e9
    assert (wall.sec, wall.nanosec) == (1_700_000_000, 250_000_000)


def test_nanoseconds_are_exact() -> None:
    assert nanoseconds_of(1.5) == 1_500_000_000
    stamp = stamp_of_nanoseconds(12_000_000_007)
    assert (stamp.sec, stamp.nanosec) == (12, 7)
    assert nanoseconds_of_stamp(stamp) == 12_000_000_007


@pytest.mark.parametrize(
    ("seconds", "match"),
    [
        (math.nan, "nan s is not a finite"),
        (math.inf, "inf s is not a finite"),
        (-0.5, "-0.5 s is not a finite, non-negative"),
        (2.0**31, "beyond 2147483647 s"),
    ],
)
def test_what_a_time_cannot_hold_is_refused(seconds: float, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        stamp_of(seconds)


def test_the_largest_stamp_survives_the_wire() -> None:
    """A sec beyond int32 used to wrap silently on serialisation; the largest one does not."""
    stamp = stamp_of(MAX_SEC + 0.5)
    wire = deserialize_message(serialize_message(stamp), Time)
    assert (wire.sec, wire.nanosec) == (MAX_SEC, 500_000_000)
    with pytest.raises(ValueError, match=r"outside 0\.\.2147483647 s"):
        stamp_of_nanoseconds((MAX_SEC + 1) * 1_000_000_000)
    with pytest.raises(ValueError, match="outside"):
        stamp_of_nanoseconds(-1)


def test_zero_time_means_unset_and_seconds_of_is_total() -> None:
    assert is_zero(Time()) and not is_zero(Time(nanosec=1))
    assert seconds_of(Time(sec=1, nanosec=2_000_000_000)) == pytest.approx(3.0)  # as rclpy
