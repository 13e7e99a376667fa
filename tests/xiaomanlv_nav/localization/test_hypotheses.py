"""HypothesisTracker: starting alone among people, confident only on evidence that lasts."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_core.geometry import planar_pose, wrap_angle, yaw_of
from xiaomanlv_nav.localization.global_search import (
    AMBIGUOUS,
    CONFIDENT,
    POOR_MATCH,
    GlobalSearch,
)
from xiaomanlv_nav.localization.hypotheses import HypothesisTracker, Track

LIDAR = np.array([0.25, 0.0, 1.9])  # [m] the lidar in base_link (the robot description's)
PERIOD = 0.1  # [s] between sweeps


def lidar_view(points_base: NDArray[np.float64]) -> NDArray[np.float64]:
    """What a spinning lidar at :data:`LIDAR` sees of ``points_base``: the nearest point per
    0.5 deg of azimuth and 2 deg of elevation (what stands in front hides what is behind)."""
    d = points_base - LIDAR
    rng = np.linalg.norm(d, axis=1)
    az = np.floor((np.degrees(np.arctan2(d[:, 1], d[:, 0])) + 180.0) / 0.5).astype(np.int64)
    el = np.floor((np.degrees(np.arcsin(d[:, 2] / rng)) + 90.0) / 2.0).astype(np.int64)
    key = az * 1000 + el
    order = np.lexsort((rng, key))
    first = np.ones(len(order), dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    return points_base[order[first]]


def person(x: float, y: float, rng: np.random.Generator) -> NDArray[np.float64]:
    """Points on a standing person (a 0.25 m cylinder, 1.75 m tall), base_link."""
    a = rng.uniform(0, 2 * np.pi, 300)
    return np.column_stack(
        [x + 0.25 * np.cos(a), y + 0.25 * np.sin(a), rng.uniform(0.0, 1.75, 300)]
    )


def crowd(
    rng: np.random.Generator, count: int, near: float, far: float
) -> list[tuple[float, float]]:
    """``count`` people around the robot, ``near`` to ``far`` [m] away."""
    r = rng.uniform(near, far, count)
    a = rng.uniform(-np.pi, np.pi, count)
    return list(zip(r * np.cos(a), r * np.sin(a), strict=True))


def error(pose: NDArray[np.float64], truth: NDArray[np.float64]) -> tuple[float, float]:
    d = float(np.hypot(*(pose[:2, 3] - truth[:2, 3])))
    return d, math.degrees(abs(wrap_angle(yaw_of(pose[:3, :3]) - yaw_of(truth[:3, :3]))))


def test_alone_in_the_courtyard_it_becomes_confident_on_the_truth(courtyard: Any) -> None:
    search = GlobalSearch(courtyard.surface(20.0, seed=1))
    tracker = HypothesisTracker()
    truth = planar_pose(3.0, -6.0, 2.2)
    rng = np.random.default_rng(1)
    decisions = []
    for k in range(6):
        scan = lidar_view(courtyard.sweep(truth, seed=k))
        fix = (truth[:2, 3] + rng.normal(0.0, 1.0, 2), np.eye(2)) if k % 2 == 0 else None
        d = tracker.step(k * PERIOD, search, scan, np.eye(4), fix, sensor_origin=LIDAR)
        assert d is not None
        decisions.append(d)
    assert not decisions[0].confident  # one sweep is never enough
    confident = [d for d in decisions if d.confident]
    assert confident, [d.reason for d in decisions]
    for d in confident:
        assert d.pose is not None and d.reason == CONFIDENT
        e_m, e_deg = error(d.pose, truth)
        assert e_m < 0.2 and e_deg < 2.0


def test_people_mimicking_a_wrong_pose_never_make_it_confident(courtyard: Any) -> None:
    """Ten people mill about the robot, and for one sweep more of them stand exactly where the
    courtyard's surfaces would be seen from a pose 3 m and 90 deg away: that pose fits the sweep
    best, well enough for a fitness-only search to be confident (0.62 against 0.20), but the
    rays to the people by the robot would pass through its walls (free space), and the crowd
    moves on (the tracker): never confident there."""
    surface = courtyard.surface(20.0, seed=1)
    truth = planar_pose(-2.0, -4.0, 0.4)
    wrong = truth @ planar_pose(2.0, 2.2, math.pi / 2)
    rng = np.random.default_rng(7)
    # What the lidar would see from the wrong pose within 12 m, at people's heights.
    seen = lidar_view((surface - wrong[:3, 3]) @ wrong[:3, :3])
    seen = seen[(np.hypot(seen[:, 0], seen[:, 1]) < 12.0) & (seen[:, 2] > 0.6)]
    fake = seen[seen[:, 2] < 1.7]
    fix = (truth[:2, 3], np.eye(2))
    tracker = HypothesisTracker()
    search = GlobalSearch(surface)
    for k in range(8):
        people = crowd(rng, 10, 1.5, 6.0)  # they mill about: new places each sweep
        ground = courtyard.sweep(truth, seed=k, max_range=8.0)
        parts = [person(x, y, rng) for x, y in people]
        scan = lidar_view(np.concatenate([*parts, ground[ground[:, 2] < 0.2]]))
        if k == 0:
            scan = np.concatenate([scan, fake])
            alone = GlobalSearch(surface).search(scan, *fix, sensor_origin=LIDAR)
            assert alone.pose is not None and error(alone.pose, wrong)[0] < 0.5  # the trap
            assert alone.fitness > search.config.min_fitness
            assert not alone.confident and alone.reason == POOR_MATCH
        d = tracker.step(k * PERIOD, search, scan, np.eye(4), fix if k % 2 == 0 else None,
                         sensor_origin=LIDAR)  # fmt: skip
        assert d is not None
        assert not d.confident, (k, d.reason, d.pose)


def test_a_gnss_jump_is_outvoted_by_the_fixes_around_it(courtyard: Any) -> None:
    """Fixes right for 2 s, then jumped 25 m: no hypothesis near the jumped fixes is believed."""
    search = GlobalSearch(courtyard.surface(20.0, seed=1))
    tracker = HypothesisTracker()
    truth = planar_pose(10.0, 0.0, -1.0)
    for k in range(40):
        scan = lidar_view(courtyard.sweep(truth, seed=k))
        xy = truth[:2, 3] + (np.array([25.0, 0.0]) if k >= 20 else 0.0)
        d = tracker.step(k * PERIOD, search, scan, np.eye(4), (xy, np.eye(2)) if k % 2 else None,
                         sensor_origin=LIDAR)  # fmt: skip
        if d is not None and d.confident:
            assert d.pose is not None and error(d.pose, truth)[0] < 0.5


def test_gnss_settles_a_look_alike_the_scan_cannot(courtyard: Any) -> None:
    """A standing robot whose best track has a look-alike 3.4 m along a walkway, fitting
    almost as well on every sweep (0.95 against 0.92, as at the university's east walkway):
    ambiguous on the scan alone, and still with two fixes; twenty fixes around the truth (1 m
    noise) rule the look-alike out, while fixes halfway between rule nothing out."""
    search = GlobalSearch(courtyard.surface(20.0, seed=1))
    truth = planar_pose(3.0, -6.0, 2.2)
    scan = search.prepare(lidar_view(courtyard.sweep(truth, seed=0)), sensor_origin=LIDAR)
    assert scan is not None
    rng = np.random.default_rng(3)

    def decide(fixes: list[NDArray[np.float64]]) -> Any:
        tracker = HypothesisTracker()
        for pose, fit in ((truth, 0.95), (truth @ planar_pose(3.4, 0.0, 0.0), 0.92)):
            track = Track(pose, np.eye(4))
            for _ in range(10):
                track.fitness.append(fit)
                track.see_through.append(0.0)
                track.sweeps += 1
            tracker.tracks.append(track)
        for k, xy in enumerate(fixes):
            tracker._fixes.append((k * 0.2, xy, np.eye(2), np.eye(4)))
        return tracker._decide(None, scan)

    near_truth = [truth[:2, 3] + rng.normal(0.0, 1.0, 2) for _ in range(20)]
    assert decide([]).reason == AMBIGUOUS
    assert decide(near_truth[:2]).reason == AMBIGUOUS  # too few fixes to rule out
    settled = decide(near_truth)
    assert settled.confident and settled.pose is not None and error(settled.pose, truth)[0] < 0.1
    halfway = truth @ planar_pose(1.7, 0.0, 0.0)
    assert decide([halfway[:2, 3] + rng.normal(0.0, 1.0, 2) for _ in range(20)]).reason == AMBIGUOUS
