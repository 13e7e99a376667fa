"""Loop closures: find keyframes that revisit earlier places and verify them by registration.

Candidates are proposed by position, as in LeGO-LOAM (Shan & Englot, IROS 2018) and
hdl_graph_slam (Koide et al., 2019): a keyframe whose current estimate lies within ``radius``
of a keyframe driven at least ``min_travel`` earlier. Each candidate is verified by registering
the later keyframe's cloud point-to-plane against a submap of the earlier keyframe's
neighbours (small_gicp), coarse then fine, and accepted only if the fine pass matches enough of
the cloud (overlap) and the correction of the prior stays plausible. Accepted closures go into
the pose graph behind a robust kernel (`xiaomanlv_mapping.posegraph`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import small_gicp
from numpy.typing import NDArray
from scipy.spatial import cKDTree


def loop_candidates(
    positions: NDArray[np.float64],
    travelled: NDArray[np.float64],
    *,
    radius: float,
    min_travel: float,
    spacing: float,
) -> list[tuple[int, int]]:
    """Pairs (earlier, later) of keyframe indices worth verifying.

    Args:
        positions: (K,3) [m] keyframe positions (current estimate), in drive order.
        travelled: (K,) [m] distance driven up to each keyframe.
        radius: [m] horizontal search radius.
        min_travel: [m] the earlier keyframe must lie at least this much driving back.
        spacing: [m] at most one candidate per this much driving of the later keyframe.
    """
    if len(positions) < 2:
        return []
    xy = np.asarray(positions, float)[:, :2]
    tree = cKDTree(xy)
    out: list[tuple[int, int]] = []
    last = -np.inf
    for j, near in enumerate(tree.query_ball_point(xy, r=radius)):
        if travelled[j] - last < spacing:
            continue
        earlier = [i for i in near if travelled[j] - travelled[i] >= min_travel]
        if not earlier:
            continue
        d = np.linalg.norm(xy[earlier] - xy[j], axis=1)
        out.append((int(earlier[int(np.argmin(d))]), j))
        last = float(travelled[j])
    return out


@dataclass(frozen=True)
class LoopResult:
    earlier: int
    later: int
    relative: NDArray[np.float64]  # 4x4 earlier <- later, registered
    overlap: float  # share of the later cloud matched within the inlier distance
    correction: float  # [m] how far the registration moved the prior
    accepted: bool


class LoopVerifier:
    """Registers a keyframe against a submap around an earlier keyframe.

    Args:
        clouds: per keyframe, (M,3) [m] points in base_link.
        submap_keyframes: keyframes on each side of the earlier one in its submap.
        submap_voxel: [m] voxel of the submap.
        voxel: [m] voxel of the later keyframe's cloud.
        normal_neighbors: neighbours for the submap's normals.
        max_correspondence: [m] of the coarse pass (the prior's error must be below it).
        inlier_distance: [m] of the fine pass, which measures the overlap.
        min_overlap: share of the cloud the fine pass must match to accept.
        max_correction: [m] largest accepted move of the prior.
        max_iterations: ICP iterations per pass.
    """

    def __init__(
        self,
        clouds: Sequence[NDArray[np.float32]],
        *,
        submap_keyframes: int,
        submap_voxel: float,
        voxel: float,
        normal_neighbors: int,
        max_correspondence: float,
        inlier_distance: float,
        min_overlap: float,
        max_correction: float,
        max_iterations: int,
    ) -> None:
        self.clouds = clouds
        self.submap_keyframes = submap_keyframes
        self.submap_voxel = submap_voxel
        self.voxel = voxel
        self.normal_neighbors = normal_neighbors
        self.max_correspondence = max_correspondence
        self.inlier_distance = inlier_distance
        self.min_overlap = min_overlap
        self.max_correction = max_correction
        self.max_iterations = max_iterations

    def _submap(
        self, i: int, poses: Sequence[NDArray[np.float64]]
    ) -> tuple[small_gicp.PointCloud, small_gicp.KdTree]:
        lo = max(0, i - self.submap_keyframes)
        hi = min(len(self.clouds), i + self.submap_keyframes + 1)
        inv = np.linalg.inv(poses[i])
        parts = []
        for k in range(lo, hi):
            rel = inv @ poses[k]
            parts.append(np.asarray(self.clouds[k], float) @ rel[:3, :3].T + rel[:3, 3])
        cloud = small_gicp.voxelgrid_sampling(np.vstack(parts), self.submap_voxel)
        tree = small_gicp.KdTree(cloud, num_threads=1)
        small_gicp.estimate_normals(cloud, tree, num_neighbors=self.normal_neighbors)
        return cloud, tree

    def verify(self, earlier: int, later: int, poses: Sequence[NDArray[np.float64]]) -> LoopResult:
        """Register keyframe ``later`` against the submap of ``earlier`` from the prior
        ``poses[earlier]^-1 poses[later]``."""
        prior = np.linalg.inv(poses[earlier]) @ poses[later]
        target, tree = self._submap(earlier, poses)
        source = small_gicp.voxelgrid_sampling(np.asarray(self.clouds[later], float), self.voxel)
        relative = prior
        for distance in (self.max_correspondence, self.inlier_distance):
            result = small_gicp.align(
                target,
                source,
                tree,
                relative,
                registration_type="PLANE_ICP",
                max_correspondence_distance=distance,
                num_threads=1,
                max_iterations=self.max_iterations,
            )
            relative = np.asarray(result.T_target_source, float)
        overlap = result.num_inliers / max(source.size(), 1)
        correction = float(np.linalg.norm(relative[:3, 3] - prior[:3, 3]))
        accepted = overlap >= self.min_overlap and correction <= self.max_correction
        return LoopResult(earlier, later, relative, overlap, correction, accepted)
