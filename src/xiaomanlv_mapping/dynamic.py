"""Moving things leave no trace: map points some keyframe saw through are removed.

A point of the map cloud stands where something was at one moment of the drive. If another
keyframe's lidar beam passed through that place and returned from farther away, the place was
empty then, so what stood there moved: a pedestrian, a cyclist, a person who waited and walked
on. This is the visibility test of range-image map cleaning (Kim and Kim, "Remove, then Revert:
Static Point cloud Map Construction using Multiresolution Range Images", IROS 2020; Pomerleau
et al., "Long-term 3D map maintenance in dynamic environments", ICRA 2014) with the "seen empty
once is dynamic" rule of DUFOMap (Duberg et al., RA-L 2024): a map point is dynamic when at
least ``min_free`` keyframes saw through it. Things that stood still for the whole drive are
never seen through and stay.

Steps (`remove_dynamic`):

1. **Range images.** Each keyframe's points (base_link) are moved into the lidar frame and
   binned by ring (the lidar's ``vertical_samples`` beams, from the robot model) and azimuth
   (``azimuth_bin``); a pixel keeps its nearest return. A pixel without a return says nothing
   (a voxel-sampled keyframe leaves gaps; no return is not "free").
2. **Candidates.** Points between ``min_height`` and ``max_height`` above the local ground
   (the lowest map point within ``ground_cell``, a 3 x 3 cell minimum). A beam grazing the top
   of a low obstacle passes just above it and "sees through" its top points; starting the
   candidates 0.05 m above the bottom of the grid's obstacle band (0.10 m) leaves every
   standing thing its lowest band points, so a 0.13 m kerb is never tested and a taller one
   keeps its cells (on the crowded quick drive a 0.12 m start cut the grid's recall from 0.93
   to 0.63; 0.15 m kept it). A walker's feet below it are too few to outlast the observation
   count (`cloud.assemble_cloud`).
3. **Visibility.** Every keyframe within ``reach`` (horizontally) projects every candidate
   into its range image: a candidate near a ring (within ``elevation_tolerance``) whose pixel
   and both its azimuth neighbours returned more than ``margin`` beyond it was seen through by
   that keyframe (the neighbours keep the end of a wall or a car's corner, which beams pass
   close by).

What it does not keep: the rim of a static object's top surface (a car's roof, the top of a
wall) that beams passed just above on their way to the ground behind it. Those points are
above the object's sides, which keep theirs, so the grid does not change; the stored cloud
loses a few points of roof edge. Keeping them would need the hits of each keyframe near every
beam (DUFOMap's hit inflation), which the benchmark below found too slow for one core.

The test runs in one compiled kernel (numba) over candidates sorted into square tiles, so each
keyframe visits only the tiles within its reach. bench/dynamic_removal.py compares it with
DUFOMap (`dufomap` on PyPI) on a crowded drive: docs/mapping.md, "Moving things".
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from xiaomanlv_core.config import param, validate_fields
from xiaomanlv_mapping.model import Keyframe, MappingError

log = logging.getLogger(__name__)

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class DynamicConfig:
    """How points of moving things are found (module docstring)."""

    enabled: bool = param(True, description="remove points some keyframe saw through")
    min_height: float = param(
        0.15,
        low=0.0,
        high=5.0,
        unit="m",
        description="candidates start this far above ground: the grid's 0.10 m band bottom + 0.05",
    )  # [m]
    max_height: float = param(
        2.5, low=0.1, high=20.0, unit="m", description="candidates end this far above ground"
    )  # [m]
    ground_cell: float = param(
        1.0, low=0.1, high=10.0, unit="m", description="cell of the local ground (3 x 3 minimum)"
    )  # [m]
    reach: float = param(
        25.0, low=1.0, high=200.0, unit="m", description="keyframes this close test a point"
    )  # [m]
    margin: float = param(
        0.3, low=0.0, high=5.0, unit="m", description="a return this far beyond sees through"
    )  # [m]
    min_range: float = param(
        1.0, low=0.0, high=50.0, unit="m", description="nearer candidates are not tested"
    )  # [m]
    azimuth_bin: float = param(
        0.5, low=0.05, high=10.0, unit="deg", description="range image column width"
    )  # [deg]
    elevation_tolerance: float = param(
        0.5, low=0.01, high=10.0, unit="deg", description="candidate to ring, at most"
    )  # [deg]
    min_free: int = param(1, low=1, high=1000, description="keyframes that must see through")
    tile: float = param(
        5.0, low=0.5, high=100.0, unit="m", description="tile of the candidate index"
    )  # [m]

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.max_height <= self.min_height:
            raise MappingError(
                f"dynamic removal: max_height ({self.max_height} m) must be above min_height "
                f"({self.min_height} m)"
            )


@dataclass(frozen=True)
class Removal:
    """What `remove_dynamic` kept and why."""

    kept: NDArray[np.bool_]  # (N,) the input points that stay
    candidates: int  # points tested (within the height band)
    removed: int  # points seen through by at least min_free keyframes
    seconds: float  # [s] wall time


@numba.njit(cache=True)
def _range_images(
    points: NDArray[np.float32],
    offsets: NDArray[np.int64],
    rot: F64,
    trans: F64,
    el0: float,
    del_: float,
    rings: int,
    az_bins: int,
    tol: float,
) -> NDArray[np.uint16]:
    """(K, rings, az_bins) nearest range [cm] per pixel (0: no return) of each keyframe's
    points ``points[offsets[k]:offsets[k+1]]`` (base_link), lidar = rot^T (p - trans)."""
    k_count = offsets.shape[0] - 1
    out = np.zeros((k_count, rings, az_bins), dtype=np.uint16)
    two_pi = 2.0 * math.pi
    for k in range(k_count):
        for i in range(offsets[k], offsets[k + 1]):
            dx = points[i, 0] - trans[0]
            dy = points[i, 1] - trans[1]
            dz = points[i, 2] - trans[2]
            x = rot[0, 0] * dx + rot[1, 0] * dy + rot[2, 0] * dz
            y = rot[0, 1] * dx + rot[1, 1] * dy + rot[2, 1] * dz
            z = rot[0, 2] * dx + rot[1, 2] * dy + rot[2, 2] * dz
            rho = math.sqrt(x * x + y * y + z * z)
            if rho <= 0.0 or rho >= 655.0:
                continue
            el = math.asin(z / rho)
            ring = math.floor((el - el0) / del_ + 0.5)
            if ring < 0 or ring >= rings or abs(el - (el0 + ring * del_)) > tol:
                continue
            a = int((math.atan2(y, x) + math.pi) / two_pi * az_bins) % az_bins
            cm = np.uint16(rho * 100.0)
            if out[k, ring, a] == 0 or cm < out[k, ring, a]:
                out[k, ring, a] = cm
    return out


@numba.njit(cache=True)
def _seen_through(
    points: F64,
    tile_start: NDArray[np.int64],
    nx: int,
    ny: int,
    x0: float,
    y0: float,
    tile: float,
    sensors: F64,
    images: NDArray[np.uint16],
    el0: float,
    del_: float,
    tol: float,
    reach: float,
    margin: float,
    min_range: float,
) -> NDArray[np.int32]:
    """(N,) how many keyframes saw through each of ``points`` (sorted by tile; map frame).

    ``sensors``: (K,4,4) map <- lidar of each keyframe; ``images``: `_range_images`."""
    n = points.shape[0]
    count = np.zeros(n, dtype=np.int32)
    rings = images.shape[1]
    az_bins = images.shape[2]
    two_pi = 2.0 * math.pi
    reach2 = reach * reach
    for k in range(sensors.shape[0]):
        sx = sensors[k, 0, 3]
        sy = sensors[k, 1, 3]
        sz = sensors[k, 2, 3]
        r = sensors[k]
        ix0 = max(math.floor((sx - reach - x0) / tile), 0)
        ix1 = min(math.floor((sx + reach - x0) / tile), nx - 1)
        iy0 = max(math.floor((sy - reach - y0) / tile), 0)
        iy1 = min(math.floor((sy + reach - y0) / tile), ny - 1)
        for iy in range(iy0, iy1 + 1):
            for ix in range(ix0, ix1 + 1):
                t = iy * nx + ix
                for i in range(tile_start[t], tile_start[t + 1]):
                    dx = points[i, 0] - sx
                    dy = points[i, 1] - sy
                    if dx * dx + dy * dy > reach2:
                        continue
                    dz = points[i, 2] - sz
                    x = r[0, 0] * dx + r[1, 0] * dy + r[2, 0] * dz
                    y = r[0, 1] * dx + r[1, 1] * dy + r[2, 1] * dz
                    z = r[0, 2] * dx + r[1, 2] * dy + r[2, 2] * dz
                    rho = math.sqrt(x * x + y * y + z * z)
                    if rho < min_range:
                        continue
                    el = math.asin(z / rho)
                    ring = math.floor((el - el0) / del_ + 0.5)
                    if ring < 0 or ring >= rings or abs(el - (el0 + ring * del_)) > tol:
                        continue
                    beyond = rho + margin
                    a = int((math.atan2(y, x) + math.pi) / two_pi * az_bins) % az_bins
                    # the pixel and its two azimuth neighbours must all return beyond: a point
                    # on an edge (a wall's end, a car's corner) is passed close by on one side
                    through = True
                    for da in (-1, 0, 1):
                        seen = images[k, ring, (a + da) % az_bins]
                        if seen == 0 or seen * 0.01 <= beyond:
                            through = False
                            break
                    if through:
                        count[i] += 1
    return count


def _ground_height(points: F64, cell: float) -> F64:
    """(N,) [m] the local ground under each point: the lowest point of its ``cell`` and the
    8 cells around it."""
    ij = np.floor(points[:, :2] / cell).astype(np.int64)
    lo = ij.min(axis=0)
    ij -= lo
    shape = tuple(int(v) + 1 for v in ij.max(axis=0))
    low = np.full(shape, np.inf)
    np.minimum.at(low, (ij[:, 0], ij[:, 1]), points[:, 2])
    low = ndimage.minimum_filter(low, size=3, mode="nearest")
    out: F64 = low[ij[:, 0], ij[:, 1]]
    return out


def remove_dynamic(
    cloud: NDArray[np.floating],
    keyframes: Sequence[Keyframe],
    *,
    lidar_pose: F64,
    ring_elevations: tuple[float, float, int],
    config: DynamicConfig | None = None,
) -> Removal:
    """Which points of ``cloud`` stay: those no keyframe saw through (module docstring).

    Args:
        cloud: (N,3) [m] map points (map frame), e.g. `cloud.assemble_cloud`'s.
        keyframes: the drive's keyframes with optimised poses (map <- base_link) and their
            points (base_link).
        lidar_pose: 4x4 base_link <- lidar (``RobotSpec.lidar.pose``).
        ring_elevations: the lidar's (lowest [rad], highest [rad], number of rings)
            (``vertical_min``, ``vertical_max``, ``vertical_samples`` of ``RobotSpec.lidar``).
        config: the parameters (defaults: `DynamicConfig()`).

    Raises:
        MappingError: a cloud that is not a finite (N,3) array, or fewer than one ring.
    """
    cfg = config or DynamicConfig()
    started = time.perf_counter()
    pts = np.asarray(cloud, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise MappingError(f"dynamic removal: cloud must be an (N,3) array, got {pts.shape}")
    if len(pts) and not np.all(np.isfinite(pts)):
        raise MappingError("dynamic removal: cloud holds NaN or infinite coordinates")
    lowest, highest, rings = ring_elevations
    if int(rings) < 1:
        raise MappingError(f"dynamic removal: the lidar needs at least one ring, got {rings}")
    kept = np.ones(len(pts), dtype=bool)
    if not cfg.enabled or len(pts) == 0 or not keyframes:
        return Removal(kept, 0, 0, time.perf_counter() - started)
    rings = int(rings)
    step = (highest - lowest) / (rings - 1) if rings > 1 else 1.0
    tol = math.radians(cfg.elevation_tolerance)
    az_bins = max(1, round(360.0 / cfg.azimuth_bin))
    mount = np.asarray(lidar_pose, dtype=np.float64)
    sizes = np.array([len(kf.points) for kf in keyframes], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    stacked = np.ascontiguousarray(
        np.concatenate([np.asarray(kf.points, np.float32).reshape(-1, 3) for kf in keyframes])
    )
    images = _range_images(
        stacked, offsets, np.ascontiguousarray(mount[:3, :3]), mount[:3, 3].copy(),
        lowest, step, rings, az_bins, tol,
    )  # fmt: skip
    sensors = np.ascontiguousarray(
        np.stack([np.asarray(kf.pose, float) @ mount for kf in keyframes])
    )
    height = pts[:, 2] - _ground_height(pts, cfg.ground_cell)
    cand = np.flatnonzero((height >= cfg.min_height) & (height <= cfg.max_height))
    removed = 0
    if len(cand):
        c = pts[cand]
        lo = c[:, :2].min(axis=0)
        tij = np.floor((c[:, :2] - lo) / cfg.tile).astype(np.int64)
        nx, ny = int(tij[:, 0].max()) + 1, int(tij[:, 1].max()) + 1
        tile_id = tij[:, 1] * nx + tij[:, 0]
        order = np.argsort(tile_id, kind="stable")
        tile_start = np.searchsorted(tile_id[order], np.arange(nx * ny + 1)).astype(np.int64)
        count = _seen_through(
            np.ascontiguousarray(c[order]), tile_start, nx, ny, float(lo[0]), float(lo[1]),
            cfg.tile, sensors, images, lowest, step, tol, cfg.reach, cfg.margin, cfg.min_range,
        )  # fmt: skip
        moved = cand[order][count >= cfg.min_free]
        kept[moved] = False
        removed = len(moved)
    seconds = time.perf_counter() - started
    log.info(
        "dynamic removal: %d of %d candidates seen through (of %d points) in %.1f s",
        removed, len(cand), len(pts), seconds,
    )  # fmt: skip
    return Removal(kept, len(cand), removed, seconds)
