"""The keyframe pose graph (xiaomanlv_mapping.posegraph)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xiaomanlv_core.geometry import planar_pose, rpy_matrix
from xiaomanlv_mapping.posegraph import GnssFactor, PoseGraph

TIGHT, LOOSE = 1e-4, 1e3


def _chain(n: int, step: float = 1.0) -> list[np.ndarray]:
    return [planar_pose(step * k, 0.0, 0.0) for k in range(n)]


def test_gnss_positions_pull_an_odometry_chain() -> None:
    # Odometry says 1 m steps but is loose along x; fixes say 1.1 m steps.
    graph = PoseGraph(_chain(11))
    graph.add_prior(0, planar_pose(0.0, 0.0, 0.0), (TIGHT,) * 3, (TIGHT,) * 3)
    for k in range(10):
        graph.add_between(k, k + 1, planar_pose(1.0, 0.0, 0.0), (TIGHT,) * 3, (1.0, TIGHT, TIGHT))
    lever = np.array([-0.6, 0.0, 1.6])
    for k in range(11):
        fix = np.array([1.1 * k - 0.6, 0.0, 1.6])
        graph.add_gnss(GnssFactor(k, fix, lever, np.array([0.05, 0.05, 0.05])), huber=100.0)
    poses = graph.optimize()
    assert poses[10][0, 3] == pytest.approx(11.0, abs=0.05)
    assert all(abs(p[1, 3]) < 1e-6 for p in poses)


def test_a_contradicting_loop_closure_shows_in_its_residual() -> None:
    graph = PoseGraph(_chain(6))
    graph.add_prior(0, planar_pose(0.0, 0.0, 0.0), (TIGHT,) * 3, (TIGHT,) * 3)
    for k in range(5):
        graph.add_between(k, k + 1, planar_pose(1.0, 0.0, 0.0), (TIGHT,) * 3, (0.01,) * 3)
    graph.add_loop(0, 5, planar_pose(5.0, 0.0, 0.0), (1e-3,) * 3, (0.02,) * 3)  # agrees
    graph.add_loop(1, 4, planar_pose(3.0, 2.0, 0.5), (1e-3,) * 3, (0.02,) * 3)  # does not
    graph.optimize()
    errors = graph.loop_errors()
    assert errors[1] > max(5.0, 2.0 * errors[0])  # the wrong one stands out
    poses = graph.optimize(loops=np.array([True, False]))
    assert poses[5][0, 3] == pytest.approx(5.0, abs=1e-3)


def test_attitude_factors_level_the_chain() -> None:
    # The initial chain and its edges are tilted 2 degrees about x; gravity says level.
    tilt = math.radians(2.0)
    tilted = []
    for k in range(5):
        pose = planar_pose(float(k), 0.0, 0.0)
        pose[:3, :3] = rpy_matrix(tilt, 0.0, 0.0)
        tilted.append(pose)
    graph = PoseGraph(tilted)
    graph.add_prior(0, tilted[0], (LOOSE, LOOSE, TIGHT), (TIGHT,) * 3)
    for k in range(4):
        rel = np.linalg.inv(tilted[k]) @ tilted[k + 1]
        graph.add_between(k, k + 1, rel, (0.1, 0.1, TIGHT), (TIGHT,) * 3)
    for k in range(5):
        graph.add_attitude(k, np.array([0.0, 0.0, 1.0]), 1e-3)
    poses = graph.optimize()
    for pose in poses:
        assert pose[2, 2] == pytest.approx(1.0, abs=1e-6)  # body z is up again
