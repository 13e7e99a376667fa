"""The prior map's point cloud: keyframes in the map frame, one centroid per voxel, transients out.

Each keyframe's points are moved to the map with its optimised pose and reduced to one
centroid per voxel (small_gicp's voxel grid, Koide 2024), so a keyframe counts once per voxel
however many of its returns fall there. A voxel is kept only if at least ``min_observations``
keyframes saw it: static surfaces are seen from every keyframe within range (a wall 20 m away
from about 40 keyframes a metre apart), a pedestrian crossing the scene occupies a voxel for a
fraction of a second, i.e. one keyframe. This is the hit count of an occupancy map
(Hornung et al., "OctoMap", Autonomous Robots 2013) without the free-space pass. The kept
voxels' centroid is the mean of the keyframe centroids, again by small_gicp's voxel grid,
which uses the same grid (``floor(p / voxel)``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import small_gicp
from numpy.typing import NDArray

from xiaomanlv_mapping.model import Keyframe, MappingError

_BITS = 21  # per axis in a packed voxel key (small_gicp's voxel grid uses the same range)
_OFFSET = 1 << (_BITS - 1)


def _keys(points: NDArray[np.float64], voxel: float) -> NDArray[np.int64]:
    """One int64 per point packing its voxel's integer coordinates."""
    ijk = np.floor(points / voxel).astype(np.int64) + _OFFSET
    out: NDArray[np.int64] = (ijk[:, 0] << (2 * _BITS)) | (ijk[:, 1] << _BITS) | ijk[:, 2]
    return out


def assemble_cloud(
    keyframes: Sequence[Keyframe],
    *,
    voxel: float = 0.2,
    min_observations: int = 3,
    count_voxel: float | None = None,
) -> NDArray[np.float32]:
    """The map cloud: (N,3) float32 [m] in the map frame, one centroid per kept voxel.

    Args:
        keyframes: keyframes with optimised poses (map <- base_link) and base_link points.
        voxel: [m] voxel edge.
        min_observations: keyframes that must have seen a voxel for it to stay.
        count_voxel: [m] voxel the observations are counted in (default ``voxel``). A
            coarser one (0.5 m) keeps thin, distant structure - a fence 30 m away whose
            returns scatter over several fine voxels from keyframe to keyframe - while a
            pedestrian still fills a coarse voxel for one keyframe only.
    Raises:
        MappingError: a non-positive voxel, a voxel too small for the extent (more than
            2^20 voxels from the origin along an axis), or no keyframe points.
    """
    if not voxel > 0.0:
        raise MappingError(f"map cloud: voxel must be > 0 m, got {voxel}")
    min_observations = max(1, int(min_observations))
    centroids: list[NDArray[np.float64]] = []
    for kf in keyframes:
        if len(kf.points) == 0:
            continue
        pose = np.asarray(kf.pose, float)
        pts = np.asarray(kf.points, float) @ pose[:3, :3].T + pose[:3, 3]
        centroids.append(small_gicp.voxelgrid_sampling(pts, voxel).points()[:, :3])
    if not centroids:
        raise MappingError("map cloud: the keyframes hold no points")
    allc = np.vstack(centroids)
    extent = float(np.max(np.abs(allc))) / voxel
    if extent >= _OFFSET - 1:
        raise MappingError(
            f"map cloud: voxel {voxel} m is too small for points {extent * voxel:.0f} m from "
            f"the origin (at most {_OFFSET - 1} voxels)"
        )
    coarse = voxel if count_voxel is None else count_voxel
    if not coarse > 0.0:
        raise MappingError(f"map cloud: count_voxel must be > 0 m, got {count_voxel}")
    if coarse == voxel:
        _, inverse, counts = np.unique(_keys(allc, voxel), return_inverse=True, return_counts=True)
        seen = allc[counts[inverse] >= min_observations]
    else:  # each keyframe counts once per coarse voxel it has points in
        per_kf = np.concatenate([np.unique(_keys(c, coarse)) for c in centroids])
        keys, counts = np.unique(per_kf, return_counts=True)
        seen = allc[counts[np.searchsorted(keys, _keys(allc, coarse))] >= min_observations]
    if len(seen) == 0:
        return np.zeros((0, 3), dtype=np.float32)
    out: NDArray[np.float32] = (
        small_gicp.voxelgrid_sampling(seen, voxel).points()[:, :3].astype(np.float32)
    )
    return out


def downsample(points: NDArray[np.float32], voxel: float) -> NDArray[np.float32]:
    """(N,3) float32: one centroid per ``voxel`` [m] (small_gicp's voxel grid)."""
    if not voxel > 0.0:
        raise MappingError(f"map cloud: voxel must be > 0 m, got {voxel}")
    if len(points) == 0:
        return np.zeros((0, 3), dtype=np.float32)
    out: NDArray[np.float32] = (
        small_gicp.voxelgrid_sampling(np.asarray(points, float), voxel)
        .points()[:, :3]
        .astype(np.float32)
    )
    return out
