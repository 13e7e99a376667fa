"""Localizer: predict, match, judge, correct map <- odom; LOST when it must; half a lidar."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xiaomanlv_core.geometry import planar_pose
from xiaomanlv_nav.localization.config import LocalizerConfig
from xiaomanlv_nav.localization.global_search import Hypothesis, SearchResult
from xiaomanlv_nav.localization.localizer import (
    FEW_POINTS,
    LARGE_COVARIANCE,
    NOT_INITIALISED,
    Localizer,
    State,
    localizer_for,
)
from xiaomanlv_nav.localization.tiles import tile_map_for

CONFIG = LocalizerConfig()
PERIOD = 0.1  # [s] between sweeps


def _localizer(site: Any, tmp_path: Path, **kw: Any) -> Localizer:
    return localizer_for(CONFIG, tile_map_for(CONFIG, site.write_map(tmp_path)), **kw)


def _error(pose: np.ndarray | None, truth: np.ndarray) -> float:
    assert pose is not None
    return float(np.linalg.norm(pose[:2, 3] - truth[:2, 3]))


def test_it_tracks_a_drive_and_corrects_the_odometrys_drift(tmp_path: Path, courtyard: Any) -> None:
    loc = _localizer(courtyard, tmp_path)
    first = loc.process(0.0, courtyard.sweep(planar_pose(0, 0, 0)), np.eye(4))
    assert first.state == State.LOST and first.reasons == (NOT_INITIALISED,) and first.pose is None
    start = planar_pose(-10.0, -5.0, 0.3)
    loc.set_pose(start @ planar_pose(0.3, -0.2, 0.02), np.eye(4), 0.0)  # an operator's guess
    drift = planar_pose(0.0, 0.0, 0.0)
    for k in range(1, 16):
        truth = start @ planar_pose(0.15 * k, 0.0, 0.01 * k)  # 1.5 m/s, turning
        drift = drift @ planar_pose(0.003, 0.002, 0.001)  # the odometry slips
        odom = np.linalg.inv(start) @ truth @ drift
        update = loc.process(k * PERIOD, courtyard.sweep(truth, seed=k), odom)
        assert update.accepted and update.state == State.OK, update.reasons
        # within 0.03 m at a 0.5 m scan voxel; the default 0.7 m lands up to 0.043 m off on
        # the courtyard's box corners (test_localization_registration.py), not on the worlds
        assert _error(update.pose, truth) < 0.06
        # map <- odom carries the odometry onto the truth
        assert _error(update.map_from_odom @ odom, truth) < 0.06  # type: ignore[operator]
    assert loc.accepted == 15 and loc.rejected == 0


def test_half_a_lidar_blocked_never_reports_ok_while_off_by_a_metre(
    tmp_path: Path, corridor: Any
) -> None:
    axis = math.radians(30.0)
    along = planar_pose(0.0, 0.0, axis)
    loc = _localizer(corridor, tmp_path)
    truth = along @ planar_pose(5.0, 0.0, 0.1)
    loc.set_pose(truth, np.eye(4), 0.0)
    for k in range(1, 6):  # a few whole sweeps: the usual point count
        loc.process(k * PERIOD, corridor.sweep(truth, seed=k, max_range=20.0), np.eye(4))
    # The odometry jumps 1 m along the corridor and half the lidar is covered.
    wrong = truth @ planar_pose(1.0, 0.0, 0.0)
    loc.set_pose(wrong, np.eye(4), 0.6)
    seen = set()
    for k in range(7, 20):
        scan = corridor.sweep(truth, seed=k, max_range=20.0, blocked=(0.0, math.pi))
        update = loc.process(k * PERIOD, scan, np.eye(4))
        seen.update(update.reasons)
        if update.state == State.OK:
            assert _error(update.pose, truth) < 0.3
        assert _error(update.pose, truth) > 0.5  # the corridor cannot say where along it
        assert update.state != State.OK
    assert FEW_POINTS in seen and LARGE_COVARIANCE in seen


def test_half_a_lidar_blocked_in_a_courtyard_is_degraded_and_still_right(
    tmp_path: Path, courtyard: Any
) -> None:
    loc = _localizer(courtyard, tmp_path)
    truth = planar_pose(2.0, 3.0, -0.5)
    loc.set_pose(truth @ planar_pose(1.0, 0.0, 0.0), np.eye(4), 0.0)  # a metre off
    for k in range(1, 4):
        loc.process(k * PERIOD, courtyard.sweep(truth, seed=k), np.eye(4))
    for k in range(4, 8):
        scan = courtyard.sweep(truth, seed=k, blocked=(-math.pi / 2, math.pi / 2))
        update = loc.process(k * PERIOD, scan, np.eye(4))
        assert update.state == State.DEGRADED and FEW_POINTS in update.reasons
        assert _error(update.pose, truth) < 0.1  # 0.074 m measured at the 0.7 m scan voxel


def test_a_kidnapped_robot_is_lost_within_a_second(tmp_path: Path, courtyard: Any) -> None:
    loc = _localizer(courtyard, tmp_path)
    here = planar_pose(-20.0, 10.0, 1.0)
    loc.set_pose(here, np.eye(4), 0.0)
    assert loc.process(PERIOD, courtyard.sweep(here), np.eye(4)).state == State.OK
    there = planar_pose(20.0, -15.0, -2.0)  # carried 46 m; the odometry felt nothing
    states = []
    for k in range(2, 14):
        update = loc.process(k * PERIOD, courtyard.sweep(there, seed=k), np.eye(4))
        states.append(update.state)
        assert not update.accepted
        assert update.state != State.OK
    lost_at = (states.index(State.LOST) + 2) * PERIOD
    assert lost_at - PERIOD <= 1.0 and states[-1] == State.LOST


@dataclass
class _Verdict:
    state: int
    reasons: tuple[str, ...]


class _Monitor:
    """An integrity monitor that says what it is told to."""

    def __init__(self) -> None:
        self.say = _Verdict(0, ())
        self.calls: list[tuple[float, Any, Any, Any]] = []
        self.alternatives: list[Any] = []
        self.resets = 0

    def update(
        self, stamp: float, reg: Any, odom_delta: Any, xy: Any, cov: Any, **kw: Any
    ) -> _Verdict:
        self.calls.append((stamp, reg, odom_delta, xy))
        self.alternatives.append(kw.get("alternatives"))
        return self.say

    def reset(self) -> None:
        self.resets += 1


@dataclass
class _Scan:
    obstacles_3d: np.ndarray


def test_an_integrity_monitor_and_a_global_search_plug_in(tmp_path: Path, courtyard: Any) -> None:
    truth = planar_pose(6.0, -4.0, 2.0)
    monitor = _Monitor()
    searched: list[Any] = []

    class Search:
        """Finds the truth (and a worse look-alike 5 m away) every time."""

        def __init__(self, tiles: Any) -> None:
            assert tiles.target is not None  # the tiles around the fix are held

        def prepare(self, points: Any, *, sensor_origin: Any = None) -> _Scan:
            return _Scan(np.zeros((500, 3)))

        def search(self, scan: Any, xy: Any, cov: Any) -> SearchResult:
            searched.append(xy)
            found = [Hypothesis(truth @ planar_pose(0.1, 0.0, 0.0), 0.9, 0.0)]
            found.append(Hypothesis(truth @ planar_pose(5.0, 0.0, 0.0), 0.5, 0.1))
            return SearchResult(found[0].pose, True, [], "confident", evidence=found)

        def evidence(self, scan: Any, pose: Any) -> tuple[float, float]:
            near = float(np.hypot(*(pose[:2, 3] - truth[:2, 3]))) < 1.0
            return (0.9, 0.0) if near else (0.5, 0.1)

        def covers(self, pose: Any) -> bool:
            return True

    loc = _localizer(courtyard, tmp_path, integrity=monitor, search=Search)
    loc.set_fix(0.05, [6.5, -4.5], np.eye(2))
    first = loc.process(0.1, courtyard.sweep(truth), np.eye(4))
    assert searched and first.searched and not first.accepted  # one sweep is not evidence
    assert first.state == State.LOST
    update = first
    for k in range(2, 6):
        update = loc.process(0.1 * k, courtyard.sweep(truth, seed=k), np.eye(4))
        if update.accepted:
            break
    assert update.searched == "confident" and monitor.resets == 1
    assert update.accepted and update.state == State.OK and _error(update.pose, truth) < 0.06
    assert loc.hypotheses and len(searched) == 1  # followed by odometry, not searched again
    # the start's runner-up, 5 m away, reaches the integrity monitor with both scores
    alternatives = monitor.alternatives[-1]
    assert alternatives is not None and len(alternatives) == 2
    assert alternatives[0][1] == pytest.approx(0.9) and alternatives[1][1] == pytest.approx(0.4)
    loc.set_fix(0.55, [6.5, -4.5], np.eye(2))
    loc.process(0.6, courtyard.sweep(truth, seed=2), np.eye(4))
    assert monitor.calls[-1][3] is not None  # the fix reached the monitor
    monitor.say = _Verdict(2, ("match disagrees with GNSS",))
    update = loc.process(0.7, courtyard.sweep(truth, seed=3), np.eye(4))
    assert update.state == State.LOST and not update.accepted
    assert update.reasons == ("match disagrees with GNSS",)
    assert monitor.calls[-1][3] is None  # a fix is used once


def test_a_stale_fused_prior_is_ignored_after_a_new_pose(tmp_path: Path, courtyard: Any) -> None:
    """After a start or a kidnap the fusion still holds the old pose: the localiser matches from
    its own correction until the fused prior agrees with it."""
    loc = _localizer(courtyard, tmp_path)
    truth = planar_pose(-5.0, 8.0, 0.7)
    loc.set_pose(truth, np.eye(4), 0.0)
    stale = planar_pose(20.0, -10.0, -2.0)  # the fusion's pose before the kidnap
    update = loc.process(PERIOD, courtyard.sweep(truth), np.eye(4), stale)
    assert update.accepted and _error(update.pose, truth) < 0.03
    near = truth @ planar_pose(0.2, 0.0, 0.0)  # the fusion caught up: its prior is used
    update = loc.process(2 * PERIOD, courtyard.sweep(truth, seed=3), np.eye(4), near)
    assert update.registration is not None
    assert np.allclose(update.registration.initial_pose, near)


def test_a_kidnapped_robot_is_lost_then_found_by_the_tracker(
    tmp_path: Path, courtyard: Any
) -> None:
    """Carried 30 m with the integrity monitor and the global search as the node runs them:
    LOST within a second, then OK on the new place (the hypothesis tracker) within ten."""
    from test_hypotheses import LIDAR, lidar_view

    from xiaomanlv_nav.localization.global_search import GlobalSearch
    from xiaomanlv_nav.localization.integrity import IntegrityMonitor

    searches: dict[tuple[str, ...], GlobalSearch] = {}

    def search(tiles: Any) -> GlobalSearch:
        return searches.setdefault(tiles.loaded, GlobalSearch(tiles.prepared_points()))

    loc = _localizer(courtyard, tmp_path, integrity=IntegrityMonitor(), search=search)
    here, there = planar_pose(-15.0, -10.0, 0.5), planar_pose(12.0, 3.0, -2.5)
    loc.set_pose(here, np.eye(4), 0.0)
    states = []
    for k in range(1, 60):
        truth = here if k < 10 else there  # carried away at 1.0 s; the odometry felt nothing
        if k % 2 == 0:
            loc.set_fix(k * PERIOD - 0.01, truth[:2, 3], np.eye(2))
        scan = lidar_view(courtyard.sweep(truth, seed=k))
        update = loc.process(k * PERIOD, scan, np.eye(4), sensor_origin=LIDAR)
        states.append((k * PERIOD, update.state, update.pose))
    lost = [t for t, s, _ in states if t >= 1.0 and s == State.LOST]
    assert lost and lost[0] - 1.0 <= 1.0, [(t, s.name) for t, s, _ in states]
    ok = [t for t, s, p in states if t > lost[0] and s == State.OK and _error(p, there) < 0.2]
    assert ok and ok[0] - 1.0 <= 10.0
    assert all(_error(p, there) < 0.5 for t, s, p in states if t > ok[0] and s == State.OK)
