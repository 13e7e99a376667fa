"""The map cloud from keyframes (xiaomanlv_mapping.cloud)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.typing import NDArray

from xiaomanlv_mapping.cloud import assemble_cloud
from xiaomanlv_mapping.model import Keyframe, MappingError


def _pose(x: float, y: float, yaw: float) -> NDArray[np.float64]:
    out = np.eye(4)
    c, s = math.cos(yaw), math.sin(yaw)
    out[:2, :2] = [[c, -s], [s, c]]
    out[:2, 3] = x, y
    return out


def _seen_from(pose: NDArray[np.float64], world: NDArray[np.float64], index: int) -> Keyframe:
    inv = np.linalg.inv(pose)
    local = world @ inv[:3, :3].T + inv[:3, 3]
    return Keyframe(index=index, stamp=float(index), pose=pose, points=local.astype(np.float32))


def _wall() -> NDArray[np.float64]:
    """A wall in the plane x = 5.25 m (mid-voxel for 0.5 m voxels), 4 m long and 2 m high."""
    y, z = np.meshgrid(np.arange(0.01, 4.0, 0.02), np.arange(0.01, 2.0, 0.02))
    return np.stack([np.full(y.size, 5.25), y.ravel(), z.ravel()], axis=1)


def test_keyframes_are_moved_into_the_map_one_point_per_voxel() -> None:
    wall = _wall()
    poses = [_pose(0.0, 0.0, 0.0), _pose(1.0, 0.5, 0.3), _pose(-1.0, 2.0, -0.5)]
    cloud = assemble_cloud([_seen_from(p, wall, i) for i, p in enumerate(poses)], voxel=0.5)
    assert cloud.dtype == np.float32 and cloud.shape == (8 * 4, 3)  # 4 m x 2 m of 0.5 m voxels
    assert np.allclose(cloud[:, 0], 5.25, atol=1e-4)  # on the wall, wherever it was seen from
    keys = {tuple(k) for k in np.floor(cloud / 0.5).astype(int)}
    assert len(keys) == len(cloud)


def test_voxels_seen_by_too_few_keyframes_are_dropped() -> None:
    wall = _wall()
    pedestrian = np.array([[2.1, 1.1, z] for z in np.arange(0.1, 1.8, 0.05)])  # one moment
    kfs = [_seen_from(_pose(0.0, 0.1 * i, 0.0), wall, i) for i in range(3)]
    kfs.append(_seen_from(_pose(0.0, 0.3, 0.0), np.vstack([wall, pedestrian]), 3))
    kept = assemble_cloud(kfs, voxel=0.5, min_observations=2)
    assert np.allclose(kept[:, 0], 5.25, atol=1e-4)  # the wall only
    everything = assemble_cloud(kfs, voxel=0.5, min_observations=1)
    assert len(everything) == len(kept) + 4  # the pedestrian's four voxels
    assert len(assemble_cloud(kfs, voxel=0.5, min_observations=5)) == 0


def test_bad_inputs_are_refused() -> None:
    kf = _seen_from(np.eye(4), _wall(), 0)
    with pytest.raises(MappingError, match="voxel must be > 0 m"):
        assemble_cloud([kf], voxel=0.0)
    empty = Keyframe(0, 0.0, np.eye(4), np.zeros((0, 3), np.float32))
    with pytest.raises(MappingError, match="hold no points"):
        assemble_cloud([empty], voxel=0.2)
    with pytest.raises(MappingError, match="too small"):
        assemble_cloud([kf], voxel=1e-6)


def test_counting_in_coarse_voxels_keeps_a_thin_far_wall_whose_returns_scatter() -> None:
    rng = np.random.default_rng(3)
    wall = np.column_stack([np.full(400, 30.0), np.linspace(-5, 5, 400), np.full(400, 1.0)])
    kfs = []
    for i in range(6):  # each keyframe sees the wall with its own few-cm pose error
        jitter = wall + rng.normal(0.0, 0.06, wall.shape)
        kfs.append(
            Keyframe(i, float(i), np.eye(4), jitter[rng.random(400) < 0.2].astype(np.float32))
        )
    fine = assemble_cloud(kfs, voxel=0.1, min_observations=3)
    coarse = assemble_cloud(kfs, voxel=0.1, min_observations=3, count_voxel=0.5)
    assert len(coarse) > 3 * len(fine)
    assert np.all(np.abs(coarse[:, 0] - 30.0) < 0.3)
    with pytest.raises(MappingError, match="count_voxel must be > 0 m"):
        assemble_cloud(kfs, voxel=0.1, count_voxel=0.0)
