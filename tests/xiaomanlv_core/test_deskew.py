"""Deskewing a sweep: points measured from a moving sensor, back into one sensor frame."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from xiaomanlv_core.deskew import deskew, interpolate_poses
from xiaomanlv_core.geometry import pose_matrix, rpy_matrix


def _measure(world_points: np.ndarray, poses: np.ndarray) -> np.ndarray:
    """Each world point as the sensor at its own pose sees it (sensor <- world)."""
    rot, origin = poses[:, :3, :3], poses[:, :3, 3]
    return np.einsum("nji,nj->ni", rot, world_points - origin)


@pytest.fixture
def wall() -> tuple[np.ndarray, np.ndarray]:
    """Points on the plane x = 5 (world) and the times [s] across a 0.1 s sweep they are
    measured at, one time per column as a spinning lidar fires them."""
    rng = np.random.default_rng(3)
    n = 600
    pts = np.column_stack([np.full(n, 5.0), rng.uniform(-8, 8, n), rng.uniform(-1, 2, n)])
    times = np.floor(rng.uniform(0, 1800, n)) * (0.1 / 1800)  # 1800 column times
    return pts, times


def test_still_sensor_leaves_points_unchanged(wall) -> None:
    pts, times = wall
    pose = pose_matrix(3.0, -2.0, 1.9, 0.01, -0.02, 0.7)
    seen = _measure(pts, np.broadcast_to(pose, (len(pts), 4, 4)))

    def still(t: np.ndarray) -> np.ndarray:
        return np.broadcast_to(pose, (len(t), 4, 4))

    np.testing.assert_allclose(deskew(seen, times, still, 0.0), seen, atol=1e-12)


def test_pure_translation_is_undone(wall) -> None:
    pts, times = wall
    velocity = np.array([2.0, 0.5, 0.0])  # [m/s]

    def moving(t: np.ndarray) -> np.ndarray:
        out = np.tile(np.eye(4), (len(t), 1, 1))
        out[:, :3, 3] = np.outer(t, velocity)
        return out

    seen = _measure(pts, moving(times))
    # Raw, the wall is smeared by the 0.2 m the sensor moved along x during the sweep.
    assert np.ptp(seen[:, 0]) > 0.15
    back = deskew(seen, times, moving, 0.0)
    np.testing.assert_allclose(back, pts, atol=1e-9)
    # At the sweep's end instead: the same points, shifted by the travel.
    end = deskew(seen, times, moving, 0.1)
    np.testing.assert_allclose(end, pts - 0.1 * velocity, atol=1e-9)


def test_pure_rotation_is_undone(wall) -> None:
    pts, times = wall
    rate = 1.0  # [rad/s] about z, 0.1 rad over the sweep

    def turning(t: np.ndarray) -> np.ndarray:
        out = np.tile(np.eye(4), (len(t), 1, 1))
        out[:, :3, :3] = Rotation.from_euler("z", (rate * np.asarray(t))[:, None]).as_matrix()
        return out

    seen = _measure(pts, turning(times))
    assert np.ptp(seen[:, 0]) > 0.1  # up to 0.1 rad x 8 m across the wall
    np.testing.assert_allclose(deskew(seen, times, turning, 0.0), pts, atol=1e-9)


def test_pose_series_is_interpolated_on_se3(wall) -> None:
    """A series of poses of a robot driving an arc (2 m/s, 1 rad/s) stands in for the function;
    slerp between 11 samples reproduces the constant-rate turn exactly."""
    pts, times = wall

    def arc(t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, float)
        out = np.tile(np.eye(4), (len(t), 1, 1))
        out[:, :3, :3] = Rotation.from_euler("z", t[:, None]).as_matrix()
        out[:, 0, 3], out[:, 1, 3] = 2.0 * np.sin(t), 2.0 * (1.0 - np.cos(t))
        return out

    stamps = np.linspace(-0.01, 0.11, 13)
    seen = _measure(pts, arc(times))
    back = deskew(seen, times, (stamps, arc(stamps)), 0.0)
    # Linear translation between samples 0.01 s apart on a 2 m radius: chord error < 1e-4 m.
    np.testing.assert_allclose(back, pts, atol=2e-4)
    assert deskew(seen.astype(np.float32), times, arc, 0.0).dtype == np.float32


def test_interpolate_poses_slerps_and_clamps() -> None:
    a = pose_matrix(0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
    b = pose_matrix(2.0, 4.0, 0.0, 0.0, 0.0, math.pi / 2)
    got = interpolate_poses([0.0, 1.0], [a, b], [0.5, -3.0, 7.0])
    np.testing.assert_allclose(got[0, :3, :3], rpy_matrix(0.0, 0.0, math.pi / 4), atol=1e-12)
    np.testing.assert_allclose(got[0, :3, 3], [1.0, 2.0, 0.0])
    np.testing.assert_allclose(got[1], a, atol=1e-12)  # before the series: its first pose
    np.testing.assert_allclose(got[2], b, atol=1e-12)  # after it: its last


@pytest.mark.parametrize(
    ("stamps", "poses", "match"),
    [
        ([0.0, 1.0], [np.eye(4)], "must be"),
        ([1.0, 1.0], [np.eye(4), np.eye(4)], "strictly increasing"),
        ([0.0, math.nan], [np.eye(4), np.eye(4)], "strictly increasing"),
        ([], np.zeros((0, 4, 4)), "N >= 1"),
    ],
)
def test_bad_series_is_refused(stamps, poses, match) -> None:
    with pytest.raises(ValueError, match=match):
        interpolate_poses(stamps, poses, [0.5])


def test_bad_inputs_are_named() -> None:
    pts = np.zeros((3, 3))
    with pytest.raises(ValueError, match="3 points but 2 times"):
        deskew(pts, [0.0, 0.1], lambda t: np.tile(np.eye(4), (len(t), 1, 1)), 0.0)
    with pytest.raises(ValueError, match="times must be finite"):
        deskew(pts, [0.0, math.nan, 0.1], lambda t: np.tile(np.eye(4), (len(t), 1, 1)), 0.0)
    with pytest.raises(ValueError, match="pose function gave shape"):
        deskew(pts, [0.0, 0.05, 0.1], lambda t: np.eye(4), 0.0)
    empty = deskew(np.zeros((0, 3), np.float32), [], lambda t: np.eye(4)[None], 0.0)
    assert empty.shape == (0, 3) and empty.dtype == np.float32
