"""Localisation measures against truth: accuracy, NEES bounds, drift, start, kidnap, alarms,
and where the map lets a trial happen."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xiaomanlv_bringup.localization_evaluation import (
    DEGRADED,
    LOST,
    OK,
    InitTolerance,
    PoseReport,
    StateReport,
    TruthTrack,
    accuracy,
    false_lost,
    init_outcome,
    jump_rejection_rate,
    kidnap_outcome,
    map_covers,
    median_p99,
    nees,
    nees_bounds,
    outage_drift,
    planar_nees_terms,
    pose_errors,
    wrap_angle,
)
from xiaomanlv_mapping.model import FREE, OCCUPIED, UNKNOWN, Grid


def straight_track(speed: float = 1.0, yaw: float = 0.0, until: float = 20.0) -> TruthTrack:
    """Driving along +x at ``speed`` [m/s] from the origin, sampled at 50 Hz."""
    track = TruthTrack()
    for t in np.arange(0.0, until + 1e-9, 0.02):
        track.append(float(t), speed * t, 0.0, 0.0, yaw)
    return track


def test_truth_track_interpolates_position_and_heading_the_short_way() -> None:
    track = TruthTrack()
    track.append(0.0, 0.0, 0.0, 0.0, math.pi - 0.1)
    track.append(1.0, 2.0, 4.0, 0.0, -math.pi + 0.1)  # 0.2 rad on, across the wrap
    x, y, _, yaw = track.at(0.5)[0]
    assert (x, y) == pytest.approx((1.0, 2.0))
    assert abs(wrap_angle(yaw - math.pi)) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="recorded only over"):
        track.at(2.0)
    with pytest.raises(ValueError, match="before the last"):
        track.append(0.5, 0, 0, 0, 0)


def test_accuracy_rmse_p99_and_yaw() -> None:
    est = np.array([[3.0, 4.0, 0.0, 0.1], [0.0, 0.0, 0.0, -0.1]])
    pos, yaw = pose_errors(est, np.zeros((2, 4)))
    assert pos.tolist() == [5.0, 0.0]
    a = accuracy(pos, yaw)
    assert a.rmse_m == pytest.approx(math.sqrt(12.5))
    assert a.max_m == 5.0 and 4.9 < a.p99_m <= 5.0
    assert a.yaw_rmse_deg == pytest.approx(math.degrees(0.1))
    with pytest.raises(ValueError, match="non-zero"):
        accuracy([], [])
    with pytest.raises(ValueError, match=r"\(N, 4\)"):
        pose_errors(np.zeros((2, 3)), np.zeros((2, 3)))


def test_nees_of_honest_errors_is_in_bounds_and_of_overconfident_ones_is_not() -> None:
    rng = np.random.default_rng(3)
    cov = np.diag([0.04, 0.01, 0.0004])
    n = 500
    honest = rng.multivariate_normal(np.zeros(3), cov, size=n)
    covs = np.repeat(cov[None], n, axis=0)
    result = nees(honest, covs)
    assert result.in_bounds and result.dof == 3 and result.samples == n
    assert result.anees == pytest.approx(3.0, abs=0.3)
    # The filter claims a tenth of the variance it has: ANEES ~ 30, far out of bounds.
    assert not nees(honest, covs / 10.0).in_bounds
    # And a filter that claims ten times too much is over-cautious, out of bounds below.
    cautious = nees(honest, covs * 10.0)
    assert cautious.anees < cautious.low
    with pytest.raises(ValueError, match="sample 1 is not positive definite"):
        bad = covs[:2].copy()
        bad[1] = -np.eye(3)
        nees(honest[:2], bad)


def test_nees_bounds_are_the_chi_square_quantiles_over_samples() -> None:
    low, high = nees_bounds(1, 2)  # chi2(2): 0.0506, 7.378
    assert low == pytest.approx(0.0506, abs=1e-3) and high == pytest.approx(7.378, abs=1e-3)
    low, high = nees_bounds(100, 3)
    assert 2.4 < low < 3.0 < high < 3.6


def test_planar_nees_terms_take_x_y_yaw_of_the_ros_covariance() -> None:
    cov6 = np.diag([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])[None]
    err, cov = planar_nees_terms([[1.0, 2.0, 0.0, 0.1]], [[0.0, 0.0, 5.0, -0.1]], cov6)
    assert err[0] == pytest.approx([1.0, 2.0, 0.2])
    assert np.diag(cov[0]).tolist() == [1.0, 2.0, 6.0]


def test_outage_drift_ignores_the_error_carried_in() -> None:
    t = np.arange(0.0, 31.0, 1.0)
    truth = np.column_stack([t, np.zeros_like(t)])  # 30 m driven in the window
    # 1 m off before the outage, then wandering 0.3 m sideways by its end.
    est = truth + np.column_stack([np.ones_like(t), 0.01 * t])
    d = outage_drift(t, est, truth, 0.0, 30.0)
    assert d.drift_m == pytest.approx(0.3) and d.distance_m == pytest.approx(30.0)
    assert d.pct == pytest.approx(1.0)
    with pytest.raises(ValueError, match="fewer than two"):
        outage_drift(t, est, truth, 40.0, 50.0)


def test_init_success_needs_a_confident_pose_in_tolerance_before_the_deadline() -> None:
    track = straight_track()
    tol = InitTolerance()
    unsure = PoseReport(1.0, (5.0, 5.0, 0.0, 1.0), confident=False)  # far off, but not claimed
    good = PoseReport(3.0, (3.1, 0.05, 0.0, math.radians(1.0)), confident=True)
    out = init_outcome([unsure, good], track, start=0.0, tolerance=tol)
    assert out.success and not out.false_confident and out.time_to_confident == 3.0
    late = PoseReport(6.0, (6.0, 0.0, 0.0, 0.0), confident=True)
    assert not init_outcome([late], track, 0.0).success
    off = PoseReport(3.0, (3.3, 0.0, 0.0, 0.0), confident=True)  # 0.3 m: not good, not false
    out = init_outcome([off], track, 0.0)
    assert not out.success and not out.false_confident
    wrong = PoseReport(2.0, (2.0, 0.0, 0.0, math.pi), confident=True)  # facing the wrong way
    out = init_outcome([wrong, good], track, 0.0)
    assert not out.success and out.false_confident
    assert init_outcome([], track, 0.0).time_to_confident is None


def test_kidnap_needs_lost_within_a_second_and_a_good_ok_within_ten() -> None:
    track = straight_track()
    at = 5.0
    good_pose = (12.0, 0.0, 0.0, 0.0)
    reports = [
        StateReport(4.9, OK, (4.9, 0.0, 0.0, 0.0)),
        StateReport(5.5, LOST),
        StateReport(8.0, OK, (20.0, 3.0, 0.0, 0.0)),  # OK but wrong: not recovered
        StateReport(12.0, OK, good_pose),
    ]
    out = kidnap_outcome(reports, track, at)
    assert out.success and out.lost_after == 0.5 and out.recovered_after == 7.0
    slow = [StateReport(6.5, LOST), StateReport(12.0, OK, good_pose)]
    assert not kidnap_outcome(slow, track, at).success
    never = [StateReport(5.5, LOST), StateReport(16.0, OK, (16.0, 0.0, 0.0, 0.0))]
    out = kidnap_outcome(never, track, at)
    assert not out.success and out.recovered_after == 11.0
    unnoticed = [StateReport(5.5, DEGRADED), StateReport(12.0, OK, good_pose)]
    assert kidnap_outcome(unnoticed, track, at).lost_after is None


def test_false_lost_counts_entries_into_lost_while_close() -> None:
    states = [OK, LOST, LOST, OK, LOST, DEGRADED, LOST]
    errors = [0.1, 0.2, 0.2, 0.1, 2.0, 0.1, 0.25]
    assert false_lost(range(7), states, errors) == 2  # the first and the last entry
    with pytest.raises(ValueError, match="states"):
        false_lost(range(2), [OK], [0.1, 0.2])


def test_jump_rejection_rate_and_timings() -> None:
    assert jump_rejection_rate([0, 0, 1, 0]) == 0.75
    assert jump_rejection_rate([]) is None
    assert median_p99([]) == (None, None)
    med, p99 = median_p99([1.0, 2.0, 3.0, 100.0])
    assert med == 2.5 and 3.0 < p99 <= 100.0


def test_map_covers_only_what_the_grid_saw_free_within_reach() -> None:
    """A 10 m x 6 m grid at 0.5 m, free in a 2 m band along y = 1..3 m (map frame), the map
    frame 100 m east of the world's: covered on the band and within the 1 m reach, not beyond
    it, not on occupied or unknown cells far from free ones, not off the grid."""
    cells = np.full((12, 20), UNKNOWN, dtype=np.int8)
    cells[2:6, :] = FREE  # rows 2..5: y in [1, 3) m
    cells[8:, :] = OCCUPIED
    grid = Grid(resolution=0.5, origin=(0.0, 0.0, 0.0), cells=cells)
    map_from_world = np.eye(4)
    map_from_world[0, 3] = -100.0  # world (100, y) is map (0, y)
    covered = map_covers(grid, map_from_world, reach=1.0)
    assert covered(105.0, 2.0)  # on the band
    assert covered(105.0, 3.8)  # 0.8 m above it
    assert not covered(105.0, 4.6)  # 1.6 m above it: unknown
    assert not covered(105.0, 5.5)  # occupied, far from free
    assert not covered(5.0, 2.0)  # map x = -95: off the grid
    assert not covered(112.0, 2.0)  # map x = 12: off the grid
    rotated = Grid(resolution=0.5, origin=(0.0, 0.0, 0.1), cells=cells)
    with pytest.raises(ValueError, match="rotated origin"):
        map_covers(rotated, np.eye(4))
