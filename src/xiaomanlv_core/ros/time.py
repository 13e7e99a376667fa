"""Seconds <-> builtin_interfaces/Time, the stack's one conversion of stamps.

A Time is ``sec`` (int32) plus ``nanosec`` (uint32, below 1e9); rclpy does not check the range
when a message is built, and a ``sec`` beyond int32 wraps silently when the message is
serialised. So :func:`stamp_of` refuses what a Time cannot hold (NaN, infinities, negative
times, 2**31 s and beyond: year 2038 on a wall clock) with a ValueError naming the value.
Nanoseconds are rounded, so a stamp round-trips to the nanosecond; a float of seconds since the
epoch resolves ~0.2 us (its whole and fractional seconds are converted apart, so no
more is lost), finer than any sensor stamp here.
"""

from __future__ import annotations

import math
from typing import Any

from builtin_interfaces.msg import Time

NS_PER_S = 1_000_000_000
MAX_SEC = 2**31 - 1  # [s] the largest int32 ``sec``


def nanoseconds_of(seconds: float) -> int:
    """[ns] of ``seconds`` [s], rounded to the nearest nanosecond.

    Raises:
        ValueError: ``seconds`` is NaN, infinite, negative or beyond what a Time holds.
    """
    t = float(seconds)
    if not math.isfinite(t) or t < 0.0:
        raise ValueError(f"time {t!r} s is not a finite, non-negative number of seconds")
    whole = math.floor(t)  # split first: t * 1e9 as one float is off by ~100 ns at 1.7e9 s
    ns = whole * NS_PER_S + round((t - whole) * NS_PER_S)
    if ns // NS_PER_S > MAX_SEC:
        raise ValueError(f"time {t!r} s is beyond {MAX_SEC} s, the largest int32 stamp")
    return ns


def stamp_of(seconds: float) -> Time:
    """builtin_interfaces/Time of ``seconds`` [s] (nanoseconds rounded).

    Raises:
        ValueError: ``seconds`` is NaN, infinite, negative or beyond 2**31 - 1 s.
    """
    sec, nanosec = divmod(nanoseconds_of(seconds), NS_PER_S)
    return Time(sec=sec, nanosec=nanosec)


def stamp_of_nanoseconds(ns: int) -> Time:
    """builtin_interfaces/Time of ``ns`` [ns] (a bag's log time, rclpy's ``nanoseconds``).

    Raises:
        ValueError: ``ns`` is negative or beyond 2**31 - 1 s.
    """
    sec, nanosec = divmod(int(ns), NS_PER_S)
    if not 0 <= sec <= MAX_SEC:
        raise ValueError(f"time {ns} ns is outside 0..{MAX_SEC} s")
    return Time(sec=sec, nanosec=nanosec)


def seconds_of(stamp: Any) -> float:
    """[s] of a builtin_interfaces/Time (rclpy's or rosbags'); total: a ``nanosec`` of 1e9 or
    more counts as the seconds it holds, as rclpy's ``Time.from_msg`` does."""
    return float(stamp.sec) + float(stamp.nanosec) * 1e-9


def nanoseconds_of_stamp(stamp: Any) -> int:
    """[ns] of a builtin_interfaces/Time, exact (no float rounding)."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


def is_zero(stamp: Any) -> bool:
    """True for the zero Time, which ROS uses for "no stamp" / "not set"."""
    return int(stamp.sec) == 0 and int(stamp.nanosec) == 0
