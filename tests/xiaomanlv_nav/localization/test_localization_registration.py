"""register(): a sweep matched to the map's voxel map; its covariance from the match geometry."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from xiaomanlv_core.geometry import planar_pose, yaw_of
from xiaomanlv_nav.localization.config import LocalizerConfig
from xiaomanlv_nav.localization.registration import (
    Registration,
    prepare_scan,
    register_with,
    remap,
)
from xiaomanlv_nav.localization.tiles import tile_map_for

CONFIG = LocalizerConfig()


def _error(reg: Registration, truth: np.ndarray) -> tuple[float, float]:
    delta = np.linalg.inv(truth) @ reg.pose
    return float(np.linalg.norm(delta[:2, 3])), abs(math.degrees(yaw_of(delta[:3, :3])))


def _target(site: Any, tmp_path: Path, x: float, y: float) -> Any:
    tiles = tile_map_for(CONFIG, site.write_map(tmp_path))
    tiles.update(x, y)
    return tiles.target


def test_a_sweep_seeded_half_a_metre_off_lands_on_the_truth(tmp_path: Path, courtyard: Any) -> None:
    truth = planar_pose(3.0, -2.0, 0.4)
    target = _target(courtyard, tmp_path, 3.0, -2.0)
    scan = courtyard.sweep(truth)
    reg = register_with(CONFIG, scan, truth @ planar_pose(0.4, -0.3, math.radians(3.0)), target)
    position, yaw = _error(reg, truth)
    # 0.003 m with a 0.5 m scan voxel, 0.040 m with the default 0.7 m: the voxel centroids at
    # the courtyard's box corners lean inwards (on simulated sweeps of both worlds seeded
    # 0.15 m off the two voxels end alike, 0.027-0.057 m median)
    assert reg.converged and position < 0.06 and yaw < 0.2, (position, yaw)
    assert reg.inlier_ratio > 0.9 and reg.points > 1000
    assert reg.position_std < 0.1 and reg.yaw_std < math.radians(0.5)
    assert np.allclose(reg.covariance, reg.covariance.T) and np.all(
        np.linalg.eigvalsh(reg.covariance) > 0
    )


def test_people_and_new_obstacles_do_not_drag_the_match(tmp_path: Path, courtyard: Any) -> None:
    truth = planar_pose(-5.0, 8.0, -1.0)
    target = _target(courtyard, tmp_path, -5.0, 8.0)
    rng = np.random.default_rng(5)
    # 40 people (0.5 m wide, 1.7 m tall) and a parked van, all within 15 m, none in the map
    people = []
    for _ in range(40):
        c = rng.uniform(-15.0, 15.0, 2)
        people.append(
            np.column_stack([c + rng.normal(0, 0.15, (150, 2)), rng.uniform(0, 1.7, 150)])
        )
    van = np.column_stack(
        [rng.uniform(3.0, 8.0, 3000), np.full(3000, 2.5), rng.uniform(0, 2, 3000)]
    )
    clutter = np.concatenate([*people, van])
    scan = np.concatenate([courtyard.sweep(truth), clutter])  # base_link, like the sweep
    reg = register_with(CONFIG, scan, truth @ planar_pose(0.2, 0.2, math.radians(2.0)), target)
    position, yaw = _error(reg, truth)
    assert position < 0.05 and yaw < 0.3, (position, yaw)
    assert reg.inliers < reg.points  # some clutter found no map


def test_a_corridor_gives_a_covariance_long_along_its_axis(tmp_path: Path, corridor: Any) -> None:
    axis = math.radians(30.0)  # the corridor runs along this heading in the map
    truth = planar_pose(10.0 * math.cos(axis), 10.0 * math.sin(axis), axis + 0.2)
    target = _target(corridor, tmp_path, truth[0, 3], truth[1, 3])
    reg = register_with(CONFIG, corridor.sweep(truth, max_range=20.0), truth, target)
    values, vectors = np.linalg.eigh(reg.covariance[:2, :2])
    long_axis = vectors[:, 1]
    across = math.sqrt(values[0])
    along = math.sqrt(values[1])
    assert along > 20.0 * across, (along, across)
    assert abs(abs(float(long_axis @ [math.cos(axis), math.sin(axis)])) - 1.0) < 1e-3
    assert across < 0.1  # across the corridor the walls fix it
    assert reg.position_std == pytest.approx(along)


def test_a_corridor_match_keeps_the_prediction_along_its_axis(
    tmp_path: Path, corridor: Any
) -> None:
    # Seeded 0.3 m off along the axis (and 0.1 m across): nothing in the sweep says where
    # along the corridor the robot is, so the match keeps the seed there (solution remapping)
    # instead of sliding wherever the map's small errors push it; across, the walls correct it.
    axis = math.radians(30.0)
    along_axis = np.array([math.cos(axis), math.sin(axis)])
    across_axis = np.array([-math.sin(axis), math.cos(axis)])
    truth = planar_pose(10.0 * math.cos(axis), 10.0 * math.sin(axis), axis + 0.2)
    target = _target(corridor, tmp_path, truth[0, 3], truth[1, 3])
    seed = truth.copy()
    seed[:2, 3] += 0.3 * along_axis + 0.1 * across_axis
    reg = register_with(CONFIG, corridor.sweep(truth, max_range=20.0), seed, target)
    moved = reg.pose[:2, 3] - seed[:2, 3]
    off = reg.pose[:2, 3] - truth[:2, 3]
    assert abs(float(moved @ along_axis)) < 0.03, moved
    assert abs(float(off @ across_axis)) < 0.03, off
    free = register_with(
        LocalizerConfig(remap_std=0.0), corridor.sweep(truth, max_range=20.0), seed, target
    )
    assert abs(float((free.pose[:2, 3] - seed[:2, 3]) @ along_axis)) > 0.03  # what it slid


def test_remap_keeps_the_seed_only_along_free_directions() -> None:
    seed = planar_pose(1.0, 2.0, 0.3)
    pose = seed @ planar_pose(0.2, -0.1, math.radians(1.0))
    cov = np.diag([0.01**2, 0.5**2, 0.01**2, 1e-6, 1e-6, 1e-6])  # y (map) unconstrained
    out = remap(seed, pose, cov, max_std=0.05)
    np.testing.assert_allclose(out[1, 3], seed[1, 3], atol=1e-9)
    np.testing.assert_allclose(out[0, 3], pose[0, 3], atol=1e-9)
    np.testing.assert_allclose(out[:3, :3], pose[:3, :3], atol=1e-9)
    np.testing.assert_allclose(remap(seed, pose, cov, max_std=0.0), pose)
    yaw_free = np.diag([1e-4] * 5 + [math.radians(5.0) ** 2])  # 5 deg at 10 m: 0.87 m
    turned = remap(seed, pose, yaw_free, max_std=0.05)
    assert yaw_of(turned[:3, :3]) == pytest.approx(0.3, abs=1e-9)
    np.testing.assert_allclose(turned[:2, 3], pose[:2, 3], atol=1e-9)


def test_prepare_scan_drops_bad_points_and_deskews_with_the_odometry() -> None:
    ext = planar_pose(0.25, 0.0, 0.0)
    ext[2, 3] = 1.9
    # A wall 10 m ahead seen by a robot driving at it at 2 m/s: a column at t = 0.05 s sees it
    # 0.1 m nearer than the first column does.
    pts = np.array([[10.0, 0.0, 0.0], [9.9, 0.0, 0.0], [np.nan, 0.0, 0.0], [0.2, 0.0, 0.0]])
    times = np.array([0.0, 0.05, 0.0, 0.0])
    odom = (np.array([100.0, 100.1]), np.stack([planar_pose(0, 0, 0), planar_pose(0.2, 0, 0)]))
    out = prepare_scan(pts, times, 100.0, ext, odom, min_range=0.5, max_range=60.0)
    assert out.shape == (2, 3)  # the NaN and the point 0.2 m from the lidar are gone
    np.testing.assert_allclose(out, [[10.25, 0.0, 1.9], [10.25, 0.0, 1.9]], atol=1e-9)
    still = prepare_scan(pts, None, 100.0, ext, None, min_range=0.5, max_range=60.0)
    np.testing.assert_allclose(still[:, 0], [10.25, 10.15])
    with pytest.raises(ValueError, match=r"times: 3 for 4 points"):
        prepare_scan(pts, times[:3], 100.0, ext, odom, min_range=0.5, max_range=60.0)
