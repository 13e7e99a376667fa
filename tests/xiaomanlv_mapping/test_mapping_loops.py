"""Loop-closure candidates and their verification (xiaomanlv_mapping.loops)."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_core.geometry import planar_pose, yaw_of
from xiaomanlv_mapping.loops import LoopVerifier, loop_candidates


def _square(side: float = 40.0, laps: float = 1.25) -> NDArray[np.float64]:
    """Keyframe positions 1 m apart around a square, a quarter lap past the start."""
    s = np.arange(0.0, 4 * side * laps, 1.0)
    leg, along = np.divmod(s, side)
    corners = np.array([[0, 0], [side, 0], [side, side], [0, side]])
    direction = np.array([[1, 0], [0, 1], [-1, 0], [0, -1]])
    leg = leg.astype(int) % 4
    xy = corners[leg] + direction[leg] * along[:, None]
    return np.column_stack([xy, np.zeros(len(s))])


def test_candidates_pair_revisits_far_apart_in_travel() -> None:
    positions = _square()
    travelled = np.arange(len(positions), dtype=float)
    pairs = loop_candidates(positions, travelled, radius=2.0, min_travel=50.0, spacing=5.0)
    assert pairs
    for earlier, later in pairs:
        assert travelled[later] - travelled[earlier] >= 50.0
        assert np.linalg.norm(positions[later] - positions[earlier]) <= 2.0
    laters = [j for _, j in pairs]
    assert min(laters) >= 158  # only on the second pass (within 2 m of its start)
    assert np.all(np.diff(travelled[laters]) >= 5.0)
    assert loop_candidates(positions[:100], travelled[:100], radius=2.0, min_travel=50.0,
                           spacing=5.0) == []  # fmt: skip


def _world() -> NDArray[np.float64]:
    rng = np.random.default_rng(7)
    ground = np.column_stack([rng.uniform(-25, 25, (15000, 2)), np.zeros(15000)])
    walls = []
    for x0, y0, x1, y1 in ((-20, -20, 20, -20), (20, -20, 20, 15), (-20, 10, 5, 20)):
        t, z = np.meshgrid(np.linspace(0, 1, 200), np.arange(0.1, 3.0, 0.2))
        walls.append(
            np.column_stack([x0 + (x1 - x0) * t.ravel(), y0 + (y1 - y0) * t.ravel(), z.ravel()])
        )
    boxes = [np.column_stack([rng.uniform(-1, 1, (300, 2)) + c, rng.uniform(0, 2, 300)])
             for c in ((4, 6), (-8, -3), (10, -9))]  # fmt: skip
    return np.vstack([ground, *walls, *boxes])


def _local(world: NDArray[np.float64], pose: NDArray[np.float64]) -> NDArray[np.float32]:
    inv = np.linalg.inv(pose)
    out: NDArray[np.float32] = (world @ inv[:3, :3].T + inv[:3, 3]).astype(np.float32)
    return out


def _verifier(clouds: list[NDArray[np.float32]]) -> LoopVerifier:
    return LoopVerifier(
        clouds,
        submap_keyframes=1,
        submap_voxel=0.3,
        voxel=0.5,
        normal_neighbors=10,
        max_correspondence=2.0,
        inlier_distance=0.3,
        min_overlap=0.6,
        max_correction=3.0,
        max_iterations=30,
    )


def test_verification_recovers_the_true_relative_pose() -> None:
    world = _world()
    true_poses = [
        planar_pose(-1.0, 0.0, 0.1),
        planar_pose(0.0, 0.0, 0.1),
        planar_pose(1.0, 0.2, 0.1),
        planar_pose(0.5, 0.8, 0.4),
    ]
    clouds = [_local(world, p) for p in true_poses]
    estimate = list(true_poses)
    estimate[3] = true_poses[3] @ planar_pose(0.6, -0.4, math.radians(3.0))  # drifted
    result = _verifier(clouds).verify(1, 3, estimate)
    truth = np.linalg.inv(true_poses[1]) @ true_poses[3]
    error = np.linalg.inv(truth) @ result.relative
    assert result.accepted
    assert result.overlap > 0.9
    assert np.linalg.norm(error[:3, 3]) < 0.03
    assert abs(math.degrees(yaw_of(error))) < 0.2
    assert result.correction > 0.5


def test_verification_rejects_a_place_that_does_not_match() -> None:
    world = _world()
    elsewhere = _world() * [1.0, -1.0, 1.0] + [3.0, 0.0, 0.0]  # a mirrored, shifted place
    poses = [planar_pose(0.0, 0.0, 0.0), planar_pose(0.5, 0.0, 0.0), planar_pose(0.0, 0.5, 0.0)]
    clouds = [_local(world, poses[0]), _local(world, poses[1]), _local(elsewhere, poses[2])]
    result = _verifier(clouds).verify(0, 2, poses)
    assert not result.accepted
