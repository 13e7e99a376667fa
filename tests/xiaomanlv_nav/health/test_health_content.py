"""Tests for xiaomanlv_nav.health.content: what makes a reading usable, per message kind."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xiaomanlv_nav.health.content import (
    OK,
    Level,
    Verdict,
    cloud_verdict,
    fix_verdict,
    imu_verdict,
    odometry_verdict,
    publishers_verdict,
    range_verdict,
    scan_verdict,
    stamp_verdict,
    worst,
)

NAN = math.nan
INF = math.inf
QUAT = (0.0, 0.0, 0.0, 1.0)
VEC = (0.0, 0.0, 9.81)


def test_worst_takes_the_highest_level_first_of_equals() -> None:
    a, b = Verdict(Level.ERROR, "a"), Verdict(Level.ERROR, "b")
    assert worst([OK, Verdict(Level.WARN, "w"), a, b]) == a
    assert worst([]) == OK


# -- clouds -------------------------------------------------------------------------------------


def test_empty_cloud_is_an_error() -> None:
    verdict = cloud_verdict(np.zeros((0, 3)), 0)
    assert verdict == Verdict(Level.ERROR, "empty cloud (0 points)")


def test_all_nan_cloud_is_an_error() -> None:
    points = np.full((500, 3), NAN)
    verdict = cloud_verdict(points, 500)
    assert verdict == Verdict(Level.ERROR, "all 500 points non-finite")


def test_a_cloud_whose_points_each_miss_one_coordinate_is_all_non_finite() -> None:
    points = np.ones((3, 3))
    points[0, 0] = points[1, 1] = NAN
    points[2, 2] = INF
    assert cloud_verdict(points, 3).level == Level.ERROR


def test_a_cloud_with_some_nan_points_is_ok() -> None:
    """Organised clouds mark 'no return' with NaN: normal while some points are finite."""
    points = np.full((100, 3), NAN)
    points[7] = (1.0, 2.0, 0.5)
    assert cloud_verdict(points, 100) == OK


# -- scans and ranges (REP 117) -----------------------------------------------------------------


def test_scan_without_ranges_is_an_error() -> None:
    assert scan_verdict([]) == Verdict(Level.ERROR, "empty scan (no ranges)")


def test_all_nan_scan_is_an_error_but_inf_is_a_valid_reading() -> None:
    assert scan_verdict([NAN, NAN]) == Verdict(Level.ERROR, "all 2 ranges NaN")
    assert scan_verdict([INF, INF, -INF]) == OK
    assert scan_verdict([NAN, 3.2]) == OK


@pytest.mark.parametrize("value", [INF, -INF, 0.0, 2.5])
def test_range_inf_is_valid(value: float) -> None:
    assert range_verdict(value) == OK


def test_nan_range_is_an_error() -> None:
    assert range_verdict(NAN) == Verdict(Level.ERROR, "range is NaN")


# -- imu, odometry ------------------------------------------------------------------------------


def test_finite_imu_is_ok() -> None:
    assert imu_verdict(QUAT, (0.0, 0.0, 0.1), VEC) == OK


def test_nan_imu_names_each_bad_quantity() -> None:
    verdict = imu_verdict((NAN, 0, 0, 1), (0, INF, 0), VEC)
    assert verdict == Verdict(Level.ERROR, "non-finite orientation, angular_velocity")
    assert imu_verdict(QUAT, VEC, (NAN, NAN, NAN)).cause == "non-finite linear_acceleration"


def test_imu_orientation_not_provided_is_not_judged() -> None:
    """REP 145: orientation_covariance[0] == -1 means no orientation estimate."""
    nan_quat = (NAN, NAN, NAN, NAN)
    assert imu_verdict(nan_quat, VEC, VEC, provided=(False, True, True)) == OK
    assert imu_verdict(nan_quat, (NAN, 0, 0), VEC, provided=(False, True, True)).cause == (
        "non-finite angular_velocity"
    )


def test_odometry_with_nan_pose_or_twist_is_an_error() -> None:
    assert odometry_verdict(VEC, QUAT, VEC, VEC) == OK
    verdict = odometry_verdict((NAN, 0, 0), QUAT, VEC, (0, 0, INF))
    assert verdict == Verdict(Level.ERROR, "non-finite position, angular_velocity")


# -- gnss ---------------------------------------------------------------------------------------


def test_fix_with_a_position_is_ok() -> None:
    assert fix_verdict(0, 31.02, 121.43) == OK
    assert fix_verdict(2, -90.0, 180.0) == OK


def test_no_fix_is_a_warn_whatever_the_position() -> None:
    assert fix_verdict(-1, NAN, NAN) == Verdict(Level.WARN, "no fix")
    assert fix_verdict(-2, NAN, NAN) == Verdict(Level.WARN, "fix status unknown")


def test_fix_with_nan_or_off_globe_position_is_an_error() -> None:
    assert fix_verdict(0, NAN, 121.0) == Verdict(
        Level.ERROR, "non-finite latitude/longitude with a fix"
    )
    assert fix_verdict(0, 91.0, 0.0).cause == "position (91, 0) deg is off the globe"
    assert fix_verdict(1, 0.0, -180.5).level == Level.ERROR


@pytest.mark.parametrize("status", [3, 127, -3, -128])
def test_unknown_fix_status_is_an_error(status: int) -> None:
    assert fix_verdict(status, 0.0, 0.0) == Verdict(
        Level.ERROR, f"fix status {status} is not a NavSatStatus value"
    )


# -- stamps -------------------------------------------------------------------------------------


def test_stamp_limits() -> None:
    assert stamp_verdict(99.5, 100.0, max_age=1.0, max_lead=0.5) == OK
    assert stamp_verdict(100.4, 100.0, max_age=1.0, max_lead=0.5) == OK
    assert stamp_verdict(98.0, 100.0, max_age=1.0, max_lead=0.5) == Verdict(
        Level.ERROR, "stamp 2.00 s old (limit 1 s)"
    )
    assert stamp_verdict(101.0, 100.0, max_age=1.0, max_lead=0.5) == Verdict(
        Level.ERROR, "stamp 1.00 s in the future (limit 0.5 s)"
    )


def test_zero_stamp_is_unstamped_once_the_clock_is_past_the_age_limit() -> None:
    assert stamp_verdict(0.0, 0.3, 1.0, 0.5) == OK  # simulation start: t=0 is a real stamp
    assert stamp_verdict(0.0, 50.0, 1.0, 0.5).cause == "unstamped (header stamp 0)"


def test_a_clock_that_has_not_started_judges_nothing() -> None:
    assert stamp_verdict(1e9, 0.0, 1.0, 0.5) == OK


@pytest.mark.parametrize("stamp", [NAN, INF])
def test_a_non_finite_stamp_is_an_error(stamp: float) -> None:
    assert stamp_verdict(stamp, 10.0, 1.0, 0.5).cause == "stamp is not a finite time"


# -- publishers ---------------------------------------------------------------------------------


def test_publishers_within_the_declared_count_are_ok() -> None:
    assert publishers_verdict(1, 1, ("/sim",)) == OK
    assert publishers_verdict(0, 1) == OK


def test_extra_publishers_are_named_and_the_list_is_bounded() -> None:
    names = tuple(f"/n{i}" for i in range(8))
    verdict = publishers_verdict(8, 1, names)
    assert verdict == Verdict(
        Level.ERROR, "8 publishers (/n0, /n1, /n2, /n3, /n4, ...), 1 declared"
    )
