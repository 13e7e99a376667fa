"""Ultrasonic scans from Gazebo reduced to one first-echo range (REP 117)."""

from __future__ import annotations

import math

import pytest

from xiaomanlv_sim.gazebo import ScanError, range_from_scan


def test_the_nearest_echo_in_the_cone_is_the_range() -> None:
    assert range_from_scan([3.0, 1.25, math.inf, 2.0], 0.03, 4.5) == 1.25


def test_no_echo_is_plus_infinity() -> None:
    assert range_from_scan([math.inf] * 15, 0.03, 4.5) == math.inf


def test_readings_beyond_max_range_are_no_echo() -> None:
    assert range_from_scan([4.6, 9.0], 0.03, 4.5) == math.inf


def test_anything_closer_than_min_range_is_minus_infinity() -> None:
    assert range_from_scan([2.0, -math.inf, 1.0], 0.03, 4.5) == -math.inf
    assert range_from_scan([2.0, 0.01], 0.03, 4.5) == -math.inf


def test_nan_readings_are_ignored() -> None:
    assert range_from_scan([math.nan, 2.5, math.nan], 0.03, 4.5) == 2.5
    assert range_from_scan([math.nan], 0.03, 4.5) == math.inf


@pytest.mark.parametrize(
    ("low", "high", "match"),
    [(math.nan, 4.5, "finite"), (0.03, math.inf, "finite"), (-1.0, 4.5, "range_min"),
     (2.0, 1.0, "range_min < range_max")],
)  # fmt: skip
def test_impossible_limits_are_rejected(low: float, high: float, match: str) -> None:
    with pytest.raises(ScanError, match=match):
        range_from_scan([1.0], low, high)
