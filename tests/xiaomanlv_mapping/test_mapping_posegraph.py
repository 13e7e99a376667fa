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


def _square_loop() -> list[np.ndarray]:
    """Keyframes round a 10 m square, level, facing along the drive (every heading)."""
    out = []
    for x0, y0, yaw in ((0, 0, 0.0), (10, 0, 90.0), (10, 10, 180.0), (0, 10, 270.0)):
        c, s = math.cos(math.radians(yaw)), math.sin(math.radians(yaw))
        out += [planar_pose(x0 + c * d, y0 + s * d, math.radians(yaw)) for d in range(10)]
    return out


def _lean(up: np.ndarray, bias: tuple[float, float]) -> np.ndarray:
    """``up`` seen by a sensor whose tilt reading is off by ``bias`` [rad] in the body."""
    out = up.copy()
    out[:2] += bias
    return out / np.linalg.norm(out)


def test_a_shared_attitude_bias_is_told_from_the_maps_tilt_as_the_drive_turns() -> None:
    # Gravity measured with a constant 3 mrad lean in the body (an accelerometer's bias):
    # without a bias node every keyframe tilts by it; with one, the drive stays level and the
    # bias is found, since the drive's turns show the lean turning with the body.
    truth = _square_loop()
    bias = (0.003, -0.002)
    solved = {}
    for with_bias in (False, True):
        graph = PoseGraph(truth)
        graph.add_prior(0, truth[0], (LOOSE, LOOSE, TIGHT), (TIGHT,) * 3)
        for k in range(len(truth) - 1):
            rel = np.linalg.inv(truth[k]) @ truth[k + 1]
            graph.add_between(k, k + 1, rel, (1e-4, 1e-4, TIGHT), (TIGHT,) * 3)
        if with_bias:
            graph.add_attitude_bias(0.01)
        for k, pose in enumerate(truth):
            graph.add_attitude(k, _lean(pose[2, :3], bias), 1e-3)
        solved[with_bias] = graph.optimize()
        if with_bias:
            assert graph.attitude_bias() == pytest.approx(bias, abs=2e-4)
        else:
            assert graph.attitude_bias() is None
    tilt_without = max(math.acos(min(1.0, p[2, 2])) for p in solved[False])
    tilt_with = max(math.acos(min(1.0, p[2, 2])) for p in solved[True])
    assert tilt_without > 0.002
    assert tilt_with < 2e-4


def test_the_attitude_bias_is_added_once() -> None:
    graph = PoseGraph(_chain(2))
    graph.add_attitude_bias(0.01)
    with pytest.raises(ValueError, match="attitude bias"):
        graph.add_attitude_bias(0.01)
