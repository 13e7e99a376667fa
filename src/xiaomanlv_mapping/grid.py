"""The 2D occupancy grid (Nav2 map_server's cell values) derived from the 3D map cloud.

`grid_from_cloud` turns the map cloud (map frame) and the drive's trajectory into a `model.Grid`
at `GridConfig.resolution` (0.1 m) by traversability, as elevation mapping does (a ground
height per cell; obstacles where the robot could not stand or climb: Fankhauser et al.,
"Probabilistic Terrain Mapping for Mobile Robots with Uncertain Localization", RA-L 2018;
step and slope limits as in Wermelinger et al., "Navigation Planning for Legged Robots in
Challenging Terrain", IROS 2016). The limits are the robot's (`xiaomanlv_core.robot`:
`max_step` 0.12 m, `max_slope` 0.175 rad = 10 deg, `height` 1.9 m, models/xiaomanlv/model.sdf),
passed in by the caller, never constants here. Five vectorised steps:

1. **Local ground height.** Per cell, the `ground_rank`-th lowest point (rank 1 = the second
   lowest, so one stray low point does not pull the ground down), unless something stands on it
   (a point in the robot's band above that low: a wall, a kerb face), and the trajectory's z
   where the robot stood (base_link is on the ground, REP 105). Points farther than
   `ground_range` from the trajectory do not measure the ground: this lidar's lowest beams meet
   flat ground within about 36 m. On blocks of `ground_cell` (the `ground_quantile` of their
   cells), the ground is the surface joined to the robot's own blocks by steps of at most
   `ground_cell * tan(max_slope)` between neighbours (connected components,
   `scipy.sparse.csgraph`): this is the **slope limit**. A ramp or a raised crossing within it
   belongs to the ground; a steeper ramp, a fountain basin, a car roof or the top of a kerb seen
   without the ground beside it do not, their points stand in the band above the ground and are
   obstacles; such blocks, like blocks with no points, take the nearest ground block's height
   (`scipy.ndimage.distance_transform_edt` indices). Blocks are read back bilinearly
   (`cv2.resize`), and a cell takes the lowest cell value within `step_radius` when that is
   lower, so a kerb top is measured from the ground in front of it. (Without the "stands on it"
   test, a wall seen edge-on from afar by a single beam - its hits sinking smoothly with
   distance - would join the ground as a gentle ramp.)
2. **Occupied by height**: a cell holding at least `min_points` points whose height above the
   local ground lies in the robot's band (`max_step - step_margin`, `height +
   overhead_clearance`]: 0.10-2.0 m for the shipped robot. The 0.02 m margin is for the noise
   of points and ground: the 0.13 m kerbs of the shipped worlds are obstacles, a 0.08 m kerb and
   a 5.7 deg entrance ramp are not. Tree crowns from 2.4 m and lamp heads pass over the robot.
3. **Occupied by steps**: a cell whose own ground (its lowest surface, where that is ground:
   within the band bottom of the local ground, not a roof or a crown) stands more than
   `max_step` above the ground next to it, in any of the 8 directions: the higher cell of the
   edge, as the robot meets it. Where the lidar could not see the lower side - the ground below
   a ramp's lip or a landing's edge lies in the edge's own shadow, at least 3.7 edge heights
   wide for a lidar 1.9 m up whose lowest beam points 15 deg down - the next ground seen beyond
   the shadow, within `step_reach`, counts; the drop across the shadow may also hold the descent
   the ground behind the cell already makes towards it (measured over `grade_baseline`, at
   most tan(max_slope)), so ground sloping away within the limit is no step. Step 2 alone finds
   an edge only where a point above the step lies within `step_radius` of a point below it: a
   ramp's lip seen from the ramp was mapped free. (A numba kernel: blocks whose samples all lie
   within `max_step` of their neighbourhood's lowest are skipped in one pass.)
4. **Free** is the union of (a) cells holding ground returns (points within the band bottom of
   the ground, above or below: a drop is no ground either) farther than `free_clearance` from an
   occupied cell (a beam dipping under an overhang - a car body 0.1 m above the ground -
   returns ground from under the obstacle), (b) the 2D visibility of the occupied cells from
   trajectory poses every `visibility_step` metres out to `visibility_range` (a polar sweep per
   pose: `cv2.warpPolar`, a running maximum along each ray, the inverse warp back; rays stop one
   cell before an occupied cell, so they cannot slip between diagonal neighbours), and (c) the
   robot's swept path (`swath_radius`). (a) alone leaves the lidar's blind ring (the lowest beam
   meets the ground 7 m out) and anything beyond its ground rings unknown, and needs the ground
   kept in the map cloud; (b) alone trusts the occupied cells to be closed walls. Occupied cells
   stay occupied.
5. Everything else is UNKNOWN.

The grid is axis-aligned (origin yaw 0), its corner on a multiple of the resolution, and covers
the cloud and the trajectory plus `margin`. A map cloud voxelised much coarser than the kerb
height (0.13 m) blurs kerbs into the ground: keep the voxel at or below 0.1 m.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import cv2
import numba
import numpy as np
from numpy.typing import NDArray
from scipy import ndimage, sparse
from scipy.sparse import csgraph

from xiaomanlv_core.config import param, validate_fields
from xiaomanlv_mapping.model import FREE, OCCUPIED, UNKNOWN, Grid, MappingError, PoseSeries

_log = logging.getLogger(__name__)

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]


@dataclass(frozen=True)
class GridConfig:
    """How the occupancy grid is derived from the map cloud (see the module docstring)."""

    resolution: float = param(
        0.1, low=0.01, high=2.0, unit="m", description="grid cell edge"
    )  # [m]
    margin: float = param(
        2.0, low=0.0, high=100.0, unit="m", description="grid border beyond the data"
    )  # [m]
    ground_cell: float = param(
        0.5, low=0.05, high=10.0, unit="m", description="block of the ground surface"
    )  # [m]
    ground_rank: int = param(
        1, low=0, high=100, description="which lowest point of a cell is its ground (0 = min)"
    )
    step_radius: float = param(
        0.1, low=0.0, high=5.0, unit="m", description="ground for a cell: lowest within this"
    )  # [m]
    ground_range: float = param(
        40.0,
        low=0.0,
        high=1000.0,
        unit="m",
        description="points farther from the trajectory do not measure the ground; 0 = all do",
    )  # [m]
    ground_quantile: float = param(
        0.25,
        low=0.0,
        high=1.0,
        description="a block's height: this quantile of its cells' (0 = the lowest cell)",
    )
    step_margin: float = param(
        0.02,
        low=0.0,
        high=0.5,
        unit="m",
        description="band bottom: the robot's max_step less this (noise of points and ground)",
    )  # [m]
    overhead_clearance: float = param(
        0.1,
        low=0.0,
        high=5.0,
        unit="m",
        description="band top: the robot's height plus this (what passes over the robot)",
    )  # [m]
    step_reach: float = param(
        1.5,
        low=0.0,
        high=10.0,
        unit="m",
        description="a step is looked for across this much unobserved ground (a drop's shadow)",
    )  # [m]
    grade_baseline: float = param(
        0.3,
        low=0.0,
        high=5.0,
        unit="m",
        description="ground behind a cell its downward slope into a shadow is measured over",
    )  # [m]
    min_points: int = param(
        1, low=1, high=1000, description="points in the band that make a cell occupied"
    )
    free_clearance: float = param(
        0.3,
        low=0.0,
        high=5.0,
        unit="m",
        description="ground returns this close to an obstacle may lie under it: not free",
    )  # [m]
    visibility_range: float = param(
        10.0, low=0.0, high=100.0, unit="m", description="2D ray casting reach; 0 = off"
    )  # [m]
    visibility_step: float = param(
        2.0, low=0.1, high=50.0, unit="m", description="trajectory spacing of ray-cast origins"
    )  # [m]
    swath_radius: float = param(
        0.3, low=0.0, high=5.0, unit="m", description="free disc around every trajectory point"
    )  # [m]

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass(frozen=True)
class _Limits:
    """What the robot can drive, in the grid's terms (from `grid_from_cloud`'s arguments)."""

    max_step: float  # [m] highest edge the robot climbs
    band_low: float  # [m] above the ground: bottom of the obstacle band
    band_high: float  # [m] above the ground: top of the obstacle band
    grade: float  # tan(max_slope): steepest climbable rise per metre
    ground_step: float  # [m] largest rise between neighbouring ground blocks


def _limits(max_step: float, max_slope: float, robot_height: float, cfg: GridConfig) -> _Limits:
    for name, value in (("max_step", max_step), ("max_slope", max_slope),
                        ("robot_height", robot_height)):  # fmt: skip
        if not (math.isfinite(value) and value > 0):
            raise MappingError(f"grid: {name} must be a positive number, got {value}")
    if max_slope >= math.pi / 2:
        raise MappingError(f"grid: max_slope must be below pi/2 rad, got {max_slope}")
    if max_step <= cfg.step_margin:
        raise MappingError(
            f"grid: max_step ({max_step} m) must exceed the config's step_margin "
            f"({cfg.step_margin} m)"
        )
    if robot_height + cfg.overhead_clearance <= max_step:
        raise MappingError(
            f"grid: robot_height ({robot_height} m) must be above max_step ({max_step} m)"
        )
    grade = math.tan(max_slope)
    return _Limits(
        max_step=max_step,
        band_low=max_step - cfg.step_margin,
        band_high=robot_height + cfg.overhead_clearance,
        grade=grade,
        ground_step=cfg.ground_cell * grade,
    )


@dataclass(frozen=True)
class _Frame:
    """Cell indexing of an axis-aligned grid: cell (row, col) spans origin + [col, col+1) * res."""

    x0: float  # [m]
    y0: float  # [m]
    res: float  # [m]
    rows: int
    cols: int

    def flat(self, xy: NDArray[np.floating]) -> NDArray[np.int64]:
        """Row-major cell index of each (N,2) point (points outside clip onto the border)."""
        col = ((xy[:, 0] - self.x0) / self.res).astype(np.int64)
        row = ((xy[:, 1] - self.y0) / self.res).astype(np.int64)
        np.clip(col, 0, self.cols - 1, out=col)
        np.clip(row, 0, self.rows - 1, out=row)
        row *= self.cols
        row += col
        return row


def _frame(xy_min: F64, xy_max: F64, res: float, margin: float) -> _Frame:
    x0 = math.floor((float(xy_min[0]) - margin) / res) * res
    y0 = math.floor((float(xy_min[1]) - margin) / res) * res
    cols = max(1, math.ceil((float(xy_max[0]) + margin - x0) / res))
    rows = max(1, math.ceil((float(xy_max[1]) + margin - y0) / res))
    return _Frame(x0, y0, res, rows, cols)


def _check_inputs(cloud: NDArray[np.floating], trajectory: PoseSeries) -> tuple[F32, F64]:
    pts = np.asarray(cloud, dtype=np.float32)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise MappingError(f"grid: cloud must be an (N,3) array [m], got shape {pts.shape}")
    if not np.isfinite(pts.sum()) and not np.all(np.isfinite(pts)):
        raise MappingError("grid: cloud holds NaN or infinite coordinates")
    poses = np.asarray(trajectory.poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or len(poses) == 0:
        raise MappingError(
            f"grid: trajectory.poses must be a non-empty (N,4,4) array, got shape {poses.shape}"
        )
    xyz = poses[:, :3, 3]
    if not np.all(np.isfinite(xyz)):
        raise MappingError("grid: trajectory.poses hold NaN or infinite positions")
    return pts, xyz


def _rank_low(flat: NDArray[np.int64], z: F32, n_cells: int, rank: int) -> F32:
    """Per cell, the `rank`-th lowest z (0 = lowest; fewer points: the highest); inf if empty."""
    out = np.full(n_cells, np.inf, dtype=np.float32)
    low = np.full(n_cells, np.inf, dtype=np.float32)
    np.minimum.at(low, flat, z)
    out[:] = low
    for _ in range(rank):
        above = z > low[flat]
        flat, z = flat[above], z[above]
        if not len(z):
            break
        low.fill(np.inf)
        np.minimum.at(low, flat, z)
        hit = np.isfinite(low)
        out[hit] = low[hit]
    return out


def _distance_from(trajectory_xyz: F64, frame: _Frame) -> F32:
    """(H,W) [m] distance of every cell from the trajectory's polyline (approximate L2)."""
    path = np.zeros((frame.rows, frame.cols), dtype=np.uint8)
    px = np.floor((trajectory_xyz[:, :2] - [frame.x0, frame.y0]) / frame.res).astype(np.int32)
    cv2.polylines(path, [px.reshape(-1, 1, 2)], False, 1)
    path[px[-1, 1].clip(0, frame.rows - 1), px[-1, 0].clip(0, frame.cols - 1)] = 1
    dist = cv2.distanceTransform(1 - path, cv2.DIST_L2, cv2.DIST_MASK_5)
    out: F32 = dist * np.float32(frame.res)
    return out


def _connected_ground(coarse: F32, seeds: NDArray[np.int64], step: float) -> NDArray[np.bool_]:
    """Blocks of `coarse` (H,W) heights [m] joined to a `seeds` block (flat indices) by steps
    between 8-neighbours of at most `step` [m] (diagonals sqrt(2) x); connected components of
    that graph (`scipy.sparse.csgraph`)."""
    hb, wb = coarse.shape
    valid = np.isfinite(coarse)
    idx = np.arange(hb * wb).reshape(hb, wb)
    heads, tails = [], []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        c0, c1 = max(0, -dc), wb - max(0, dc)  # columns of the first cell of each pair
        a = (slice(0, hb - dr), slice(c0, c1))
        b = (slice(dr, hb), slice(c0 + dc, c1 + dc))
        limit = step * math.hypot(dr, dc)
        with np.errstate(invalid="ignore"):  # inf - inf where both are empty
            ok = valid[a] & valid[b] & (np.abs(coarse[a] - coarse[b]) <= limit)
        heads.append(idx[a][ok])
        tails.append(idx[b][ok])
    n = hb * wb
    h, t = np.concatenate(heads), np.concatenate(tails)
    graph = sparse.coo_matrix((np.ones(len(h), dtype=np.int8), (h, t)), shape=(n, n)).tocsr()
    _, labels = csgraph.connected_components(graph, directed=False)
    keep = np.zeros(labels.max() + 1, dtype=bool)
    keep[labels[seeds]] = True
    out: NDArray[np.bool_] = (keep[labels] & valid.reshape(-1)).reshape(hb, wb)
    out.reshape(-1)[seeds] = True
    return out


def ground_heights(
    flat: NDArray[np.int64],
    z: F32,
    trajectory_xyz: F64,
    frame: _Frame,
    config: GridConfig,
    limits: _Limits,
) -> tuple[F32, F32]:
    """Local ground height of every cell and its own lowest surface (step 1 of the module
    docstring), both (H*W,) [m]; the second is inf where the cell holds no ground sample.

    `flat` are the points' cell indices (`_Frame.flat`), `z` their heights [m].
    """
    low = _rank_low(flat, z, frame.rows * frame.cols, config.ground_rank)
    # a cell with something standing on it (a point in the robot's band above its low) is no
    # clean ground sample: a wall seen edge-on by one beam from afar would pass for a ramp
    rise = z - low[flat]
    band = (rise > limits.band_low) & (rise <= limits.band_high)
    low[flat[band]] = np.inf
    fine = low.reshape(frame.rows, frame.cols)
    if config.ground_range > 0:
        fine[_distance_from(trajectory_xyz, frame) > config.ground_range] = np.inf
    tflat = frame.flat(trajectory_xyz[:, :2])
    np.minimum.at(fine.reshape(-1), tflat, trajectory_xyz[:, 2].astype(np.float32))
    # Blocks: a low quantile of their cells. Only blocks joined to the robot's own
    # blocks by steps of at most ground_step are ground; the others (a fountain basin, a car
    # roof, the top of a kerb whose far side is in shadow) and empty blocks take the height of
    # the nearest ground block.
    k = max(1, round(config.ground_cell / frame.res))
    hb, wb = -(-frame.rows // k), -(-frame.cols // k)
    padded = np.full((hb * k, wb * k), np.inf, dtype=np.float32)
    padded[: frame.rows, : frame.cols] = fine
    blocks = np.sort(padded.reshape(hb, k, wb, k).transpose(0, 2, 1, 3).reshape(hb, wb, k * k))
    filled = np.isfinite(blocks).sum(axis=2)
    pick = np.floor(config.ground_quantile * np.maximum(filled - 1, 0)).astype(np.intp)
    coarse = np.take_along_axis(blocks, pick[..., None], axis=2)[..., 0]
    seeds = np.unique(
        ((trajectory_xyz[:, 1] - frame.y0) // (k * frame.res)).astype(np.int64).clip(0, hb - 1) * wb
        + ((trajectory_xyz[:, 0] - frame.x0) // (k * frame.res)).astype(np.int64).clip(0, wb - 1)
    )
    ground_ok = _connected_ground(coarse, seeds, limits.ground_step)
    if not ground_ok.all():
        _, (ir, ic) = ndimage.distance_transform_edt(~ground_ok, return_indices=True)
        coarse = coarse[ir, ic]
    # Back to cells: bilinear between block centres (cv2.resize aligns pixel centres).
    resized = cv2.resize(coarse, (wb * k, hb * k), interpolation=cv2.INTER_LINEAR)
    ground = np.ascontiguousarray(resized[: frame.rows, : frame.cols], dtype=np.float32)
    # Fine: the lowest ground within step_radius, so the top of a kerb whose far side lies in
    # its own shadow is measured from the ground in front of it.
    own = fine.reshape(-1).copy()
    radius = round(config.step_radius / frame.res)
    if radius > 0:
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        fine[~np.isfinite(fine)] = np.float32(1e9)
        np.minimum(ground, cv2.erode(fine, disc, borderType=cv2.BORDER_REPLICATE), out=ground)
    return ground.reshape(-1), own


# The 8 neighbour directions (row, column step) of the step search.
_DIRECTIONS = np.array(
    [(0, 1), (1, 1), (1, 0), (1, -1), (0, -1), (-1, -1), (-1, 0), (-1, 1)], dtype=np.int64
)


@numba.njit(cache=True)
def _step_edges(
    h: F32,
    directions: NDArray[np.int64],
    res: float,
    max_step: float,
    grade: float,
    reach: int,
    baseline: int,
) -> NDArray[np.bool_]:  # pragma: no cover - compiled; tested through grid_from_cloud
    """Cells of the ground height map `h` (H,W) [m] (inf: no ground sample) that stand more
    than `max_step` [m] above the ground ahead in one of the 8 directions, on the higher side
    (step 2 of the module docstring). Ahead is the first sampled cell within `reach` cells;
    across unsampled cells (a shadow) between them, the drop may also hold the descent the
    ground behind the cell already makes towards it (over up to `baseline` cells, at most
    `grade` [m/m], the robot's slope limit; `grade` when nothing is sampled behind).

    Blocks of `reach` cells whose highest sample is within `max_step` of the lowest in their
    3x3 block neighbourhood hold no step and are skipped: the flat majority costs one pass."""
    rows, cols = h.shape
    out = np.zeros((rows, cols), dtype=np.bool_)
    b = max(reach, 1)
    hb, wb = (rows + b - 1) // b, (cols + b - 1) // b
    lo = np.full((hb, wb), np.inf, dtype=np.float32)
    hi = np.full((hb, wb), -np.inf, dtype=np.float32)
    for r in range(rows):
        i = r // b
        for j in range(wb):
            low, high = lo[i, j], hi[i, j]
            for c in range(j * b, min((j + 1) * b, cols)):
                v = h[r, c]
                if v < low:  # inf (no sample) never is
                    low = v
                if v > high and v < np.inf:
                    high = v
            lo[i, j], hi[i, j] = low, high
    for i in range(hb):
        for j in range(wb):
            if not np.isfinite(hi[i, j]):
                continue
            floor = np.inf
            for ii in range(max(i - 1, 0), min(i + 2, hb)):
                for jj in range(max(j - 1, 0), min(j + 2, wb)):
                    floor = min(floor, lo[ii, jj])
            if hi[i, j] - floor <= max_step:
                continue
            for r in range(i * b, min((i + 1) * b, rows)):
                for c in range(j * b, min((j + 1) * b, cols)):
                    hc = h[r, c]
                    if not (np.isfinite(hc) and hc - floor > max_step):
                        continue
                    for d in range(8):
                        dr, dc = directions[d, 0], directions[d, 1]
                        length = res * (1.4142135623730951 if dr != 0 and dc != 0 else 1.0)
                        k = 1
                        ahead = np.inf
                        while k <= reach:
                            rr, cc = r + k * dr, c + k * dc
                            if rr < 0 or rr >= rows or cc < 0 or cc >= cols:
                                break
                            if np.isfinite(h[rr, cc]):
                                ahead = h[rr, cc]
                                break
                            k += 1
                        drop = hc - ahead
                        if not drop > max_step:
                            continue
                        if k > 1:
                            descent = grade
                            for m in range(baseline, 0, -1):
                                rb, cb = r - m * dr, c - m * dc
                                if 0 <= rb < rows and 0 <= cb < cols and np.isfinite(h[rb, cb]):
                                    fall = (h[rb, cb] - hc) / (m * length)
                                    descent = min(max(fall, 0.0), grade)
                                    break
                            if drop <= max_step + (k - 1) * length * descent:
                                continue
                        out[r, c] = True
                        break
    return out


def _visible(
    blocked: NDArray[np.uint8], frame: _Frame, origins: F64, reach: float
) -> NDArray[np.bool_]:
    """Cells seen in 2D from `origins` (M,2) [m] within `reach` [m], not through `blocked`."""
    seen = np.zeros((frame.rows, frame.cols), dtype=np.uint8)
    radius = max(2, math.ceil(reach / frame.res))
    n_angles = max(64, math.ceil(2.0 * math.pi * radius))
    size = 2 * radius + 1
    flags_fwd = cv2.WARP_POLAR_LINEAR | cv2.INTER_NEAREST | cv2.WARP_FILL_OUTLIERS
    flags_inv = flags_fwd | cv2.WARP_INVERSE_MAP
    ring = np.zeros((size, size), dtype=np.uint8)
    cv2.circle(ring, (radius, radius), radius, 1, -1)
    for x, y in origins:
        c = math.floor((x - frame.x0) / frame.res)
        r = math.floor((y - frame.y0) / frame.res)
        r0, c0 = r - radius, c - radius
        window = np.ones((size, size), dtype=np.uint8)  # outside the grid blocks
        rr0, cc0 = max(r0, 0), max(c0, 0)
        rr1, cc1 = min(r0 + size, frame.rows), min(c0 + size, frame.cols)
        if rr0 >= rr1 or cc0 >= cc1:
            continue
        window[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0] = blocked[rr0:rr1, cc0:cc1]
        polar = cv2.warpPolar(
            window, (radius, n_angles), (float(radius), float(radius)), float(radius), flags_fwd
        )  # rows: angles, columns: radius
        polar[:, 0] = 0  # the origin itself is where the robot stood
        clear = (np.maximum.accumulate(polar, axis=1) == 0).astype(np.uint8)
        back = cv2.warpPolar(
            clear, (size, size), (float(radius), float(radius)), float(radius), flags_inv
        )
        back &= ring
        seen[rr0:rr1, cc0:cc1] |= back[rr0 - r0 : rr1 - r0, cc0 - c0 : cc1 - c0]
    return seen.astype(bool)


def _along(xy: F64, spacing: float) -> F64:
    """Points of the polyline `xy` about every `spacing` [m] of travel (always the first)."""
    if len(xy) < 2:
        return xy[:, :2]
    travel = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xy[:, :2], axis=0), axis=1))])
    marks = np.arange(0.0, travel[-1] + 1e-9, spacing)
    idx = np.unique(np.searchsorted(travel, marks, side="left").clip(0, len(xy) - 1))
    out: F64 = xy[idx, :2]
    return out


def grid_from_cloud(
    cloud: NDArray[np.floating],
    trajectory: PoseSeries,
    *,
    max_step: float,
    max_slope: float,
    robot_height: float,
    config: GridConfig | None = None,
) -> Grid:
    """Occupancy grid of the map cloud (module docstring); cells FREE, OCCUPIED or UNKNOWN.

    Args:
        cloud: (N,3) [m] map points in the map frame (static, registered).
        trajectory: the drive's poses map <- base_link (base_link on the ground).
        max_step: [m] the highest edge the robot climbs (`BodySpec.max_step`).
        max_slope: [rad] the steepest slope it drives (`BodySpec.max_slope`).
        robot_height: [m] its top above the ground (`RobotSpec.height`).
        config: the derivation's parameters (defaults: `GridConfig()`).

    Raises:
        MappingError: a cloud that is not a finite (N,3) array, an empty trajectory, or
            limits that are not positive (or a max_step within the config's step_margin).
    """
    cfg = config or GridConfig()
    limits = _limits(max_step, max_slope, robot_height, cfg)
    pts, traj = _check_inputs(cloud, trajectory)
    # per column: numpy's axis-0 reduction of an (N,3) array is 20x slower
    lo = traj[:, :2].min(axis=0)
    hi = traj[:, :2].max(axis=0)
    for i in (0, 1):
        if len(pts):
            lo[i] = min(lo[i], float(pts[:, i].min()))
            hi[i] = max(hi[i], float(pts[:, i].max()))
    frame = _frame(lo, hi, cfg.resolution, cfg.margin)
    flat = frame.flat(pts[:, :2])
    z = pts[:, 2]
    ground, own = ground_heights(flat, z, traj, frame, cfg, limits)
    height = z - ground[flat]
    n_cells = frame.rows * frame.cols
    band = (height > limits.band_low) & (height <= limits.band_high)
    if cfg.min_points == 1:
        hits = np.zeros(n_cells, dtype=bool)
        hits[flat[band]] = True
    else:
        hits = np.bincount(flat[band], minlength=n_cells) >= cfg.min_points
    occupied = hits.reshape(frame.rows, frame.cols)
    # Steps: a cell's own ground, where it is ground (not a roof or a crown), against the
    # ground around it and beyond a shadow.
    with np.errstate(invalid="ignore"):  # inf - inf of cells without samples
        sampled = np.where(own - ground <= limits.band_low, own, np.float32(np.inf))
    steps = _step_edges(
        sampled.reshape(frame.rows, frame.cols),
        _DIRECTIONS,
        frame.res,
        limits.max_step,
        limits.grade,
        max(1, round(cfg.step_reach / frame.res)),
        round(cfg.grade_baseline / frame.res),
    )
    n_steps = int((steps & ~occupied).sum())
    occupied |= steps
    ground_hit = np.zeros(n_cells, dtype=bool)
    ground_hit[flat[np.abs(height) <= limits.band_low]] = True  # not a drop either
    free = ground_hit.reshape(frame.rows, frame.cols)
    near = round(cfg.free_clearance / frame.res)
    if near > 0:
        disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * near + 1, 2 * near + 1))
        free &= cv2.dilate(occupied.astype(np.uint8), disc) == 0
    if cfg.visibility_range > 0:
        blocked = np.asarray(
            cv2.dilate(occupied.astype(np.uint8), np.ones((3, 3), np.uint8)), dtype=np.uint8
        )
        free |= _visible(blocked, frame, _along(traj, cfg.visibility_step), cfg.visibility_range)
    if cfg.swath_radius > 0:
        swath = np.zeros((frame.rows, frame.cols), dtype=np.uint8)
        px = np.round((traj[:, :2] - [frame.x0, frame.y0]) / frame.res - 0.5).astype(np.int32)
        pts_px = px.reshape(-1, 1, 2)
        thick = max(1, round(2 * cfg.swath_radius / frame.res))
        cv2.polylines(swath, [pts_px], False, 1, thickness=thick)
        free |= swath.astype(bool)
    cells = np.full((frame.rows, frame.cols), UNKNOWN, dtype=np.int8)
    cells[free] = FREE
    cells[occupied] = OCCUPIED
    _log.info(
        "grid %dx%d at %.2f m: %d occupied (%d by steps alone), %d free",
        frame.cols, frame.rows, frame.res, int(occupied.sum()), n_steps,
        int((cells == FREE).sum()),
    )  # fmt: skip
    return Grid(resolution=frame.res, origin=(frame.x0, frame.y0, 0.0), cells=cells)
