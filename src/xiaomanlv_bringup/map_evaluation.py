"""Map quality: a built map against the world's true geometry, the drive against ground truth.

Three measures, each a function, gathered in `Evaluation`:

**Trajectory** (`evaluate_trajectory`): the absolute trajectory error (Sturm et al., "A Benchmark
for the Evaluation of RGB-D SLAM Systems", IROS 2012). Ground truth is interpolated at the
estimate's stamps (positions linearly, orientations by slerp; stamps outside the truth are left
out). The estimate is aligned to the truth by the rigid motion (rotation + translation, no scale)
that minimises the squared position error (Umeyama, "Least-squares estimation of transformation
parameters between two point patterns", TPAMI 1991; solved by `scipy`'s `Rotation.align_vectors`
on the centred positions). ``ate_rmse_m`` and ``ate_max_m`` are the RMS and the largest position
error after that alignment; ``ate_rmse_unaligned_m`` is the RMS without it (the map frame is
anchored at the station, so this is the error the stops see); ``ate_rot_rmse_deg`` the RMS of the
aligned orientation error angles.

**Cloud** (`evaluate_cloud`): the distance from every map point to the nearest surface of the
world's static geometry, every SDF shape including the ground plane, by Open3D's
`RaycastingScene.compute_distance` over the simulator's own triangulation of the world
(`xiaomanlv_sim.scene`). ``map_rms_m`` is the RMS of those distances, ``map_p95_m`` their 95th
percentile, ``map_outlier_share`` the share farther than `CloudConfig.outlier_distance`. People
and other things that are not in the SDF count as errors, as they should in a static map. A cloud
of more than `CloudConfig.max_points` (2 M) is measured on an evenly strided subset.

**Grid** (`evaluate_grid`), at the built grid's cells (0.1 m):

- *Truth*: the footprints of every SDF shape the robot cannot drive over (every category but the
  drivable ground, field, ramp, road, path, walkway, plaza; docs/worlds.md), cut at the robot's
  height band `GridEvaluationConfig.truth_min_height` .. `truth_max_height` (the robot's
  ``max_step`` 0.12 m .. 2.0 m, absolute z: the shipped worlds' ground is z = 0) with
  `xiaomanlv_sim.footprint.shape_footprint`, so a 0.13 m kerb is an obstacle and a tree crown is
  not. A cell is a true obstacle when a footprint covers any of its 4 x 4 sample points (a
  supersampled fill), i.e. a cell the surface passes through counts, one it merely touches does
  not. Footprints are solid: a building's interior is obstacle too. Added to them: the edges
  where the walkable surface (`Scene.ground_height`: ground, kerbs, ramps, fields) steps up by
  more than ``max_step`` between neighbouring cells (the higher cell), since the robot cannot
  climb them whatever their category - the side of a raised crossing's table or of an entrance
  landing; the footprint of every walkable box or cylinder whose top is tilted beyond the
  robot's ``max_slope`` (10 deg: a generated site's steep dock ramp or tilted plate; `top_tilt`);
  and walkable surface that no climbable step or slope joins to where the robot drove and that
  stands more than ``max_step`` above the nearest drivable cell (a landing reached only by a
  steep ramp: the robot cannot stand there; a road behind a kerb, level with the walkway, is
  not raised). The limits are the robot's: `GridEvaluationConfig.for_robot` reads them from
  the robot description, and `evaluate_map` uses it (`xiaomanlv_core.robot`). A map built
  from the true poses of the university's full drive scores IoU 0.989 and 0.43 % phantom cells
  against this truth, so the truth is not what the built maps miss.
- *Region*: only cells the built grid knows (FREE or OCCUPIED) are compared. A map built from a
  drive sees the walls that face the route, not building interiors or the far side of anything;
  unknown cells carry no claim, so they are neither right nor wrong. Interiors are therefore left
  out (filling them would add tens of thousands of easy cells and say nothing about the walls),
  and so is geometry the drive never saw; ``grid_known_cells`` says how large the region was.
- *Tolerance*: a built obstacle cell is right when a true obstacle cell lies within
  `tolerance` (one cell, 8-neighbourhood), and a true obstacle cell in the region is found when a
  built obstacle cell lies within it. At 0.1 m a wall on a cell border legitimately lands in
  either cell (lidar noise 0.03 m, the map target 0.05 m RMS), and surfaces are one or two cells
  thin, so a strict cell-by-cell comparison measures aliasing rather than the map: it is
  reported as ``grid_iou_strict``.
- ``grid_precision`` = right built obstacle cells / built obstacle cells; ``grid_recall`` =
  found true obstacle cells in the region / true obstacle cells in the region; ``grid_iou`` =
  p r / (p + r - p r), which is |B and T| / |B or T| when the tolerance is 0.
  ``grid_missed_cells``: true obstacle cells the built grid calls FREE with no built obstacle
  within the tolerance (what a planner would drive into); ``grid_phantom_cells``: built obstacle
  cells with no true obstacle within the tolerance, i.e. where nothing static stands (a
  pedestrian's trail, a parked car that left), and ``phantom_cells_pct`` their share of the
  built obstacle cells in percent (0 for a grid without obstacles).

**Frames**: maps are in their ``map`` frame, the world and its ground truth in the simulator's
``world`` frame. `map_in_world` is the one transform between them (`xiaomanlv_core.frames.
world_from_map`: the station's loading pose as the site sidecar gives it, against the same pose
in the map's stops.yaml, since the build anchors the drive there; docs/frames.md), and
`evaluate_map` carries the map's cloud, grid origin and trajectory into the world with it before
comparing anything. For the shipped maps it is the identity.

`render_evaluation` draws the grid over the true footprints with the trajectory coloured by its
error (OpenCV, the top-down renderer's canvas and legend panel of `xiaomanlv_sim.render`).
`evaluate_map` does all of it for a map directory (`mapfiles.read_map`) and the ground truth in
the drive's bag (`bag.open_drive`): what ``xiaomanlv map evaluate`` and bench/mapping.py call.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import open3d as o3d
from numpy.typing import NDArray
from scipy import ndimage
from scipy.spatial.transform import Rotation, Slerp
from shapely.geometry import Polygon

from xiaomanlv_core.config import param, validate_fields
from xiaomanlv_core.frames import world_from_map
from xiaomanlv_core.geometry import planar_pose, transform_points, yaw_of
from xiaomanlv_core.robot import RobotSpec
from xiaomanlv_core.site import Site
from xiaomanlv_mapping.model import (
    FREE,
    OCCUPIED,
    UNKNOWN,
    Grid,
    MappingError,
    PoseSeries,
    PriorMap,
)
from xiaomanlv_sim.footprint import polygons_of, shape_footprint
from xiaomanlv_sim.render import RGB, Canvas, bgr, with_panel
from xiaomanlv_sim.scene import Scene, build_raycaster
from xiaomanlv_sim.world import Box, Cylinder, Shape, World

_log = logging.getLogger(__name__)

F64 = NDArray[np.float64]

#: Categories whose tops the robot drives on: never obstacles in the truth.
DRIVABLE = frozenset({"ground", "field", "ramp", "road", "path", "walkway", "plaza"})
_SUPERSAMPLE = 4  # sample points per cell edge for the truth raster
_ANY_HEIGHT = 1e4  # [m] a slab that holds every shape: its whole footprint


@dataclass(frozen=True)
class GridEvaluationConfig:
    """How a built grid is compared with the world (module docstring)."""

    truth_min_height: float = param(
        0.12, low=0.0, high=2.0, unit="m", description="truth slab bottom: the robot's max_step"
    )  # [m]
    truth_max_height: float = param(
        2.0, low=0.1, high=10.0, unit="m", description="truth slab top: above the robot"
    )  # [m]
    truth_max_slope: float = param(
        0.175,
        low=0.0,
        high=1.5,
        unit="rad",
        description="walkable tops steeper than this are obstacles: the robot's max_slope",
    )  # [rad]
    tolerance: float = param(
        0.1, low=0.0, high=1.0, unit="m", description="cell matching distance (one cell)"
    )  # [m]

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.truth_max_height <= self.truth_min_height:
            raise MappingError(
                f"grid evaluation: truth_max_height ({self.truth_max_height} m) must be above "
                f"truth_min_height ({self.truth_min_height} m)"
            )

    @classmethod
    def for_robot(cls, robot: RobotSpec, **overrides: float) -> GridEvaluationConfig:
        """The truth for ``robot``: its ``max_step`` is the slab's bottom and the step limit,
        its ``max_slope`` the slope limit (`xiaomanlv_core.robot`, models/xiaomanlv/model.sdf);
        ``overrides`` set other fields."""
        fields = {"truth_min_height": robot.body.max_step, "truth_max_slope": robot.body.max_slope}
        return cls(**{**fields, **overrides})


@dataclass(frozen=True)
class CloudConfig:
    """How a map cloud is compared with the world's surfaces."""

    max_points: int = param(
        2_000_000, low=1000, high=10**9, description="evenly strided subset above this many"
    )
    outlier_distance: float = param(
        0.2, low=0.0, high=100.0, unit="m", description="farther than this counts as an outlier"
    )  # [m]
    nthreads: int = param(1, low=0, high=256, description="Open3D threads (0: all cores)")


@dataclass(frozen=True)
class TrajectoryEvaluation:
    ate_rmse_m: float  # [m] after rigid alignment
    ate_max_m: float  # [m] after rigid alignment
    ate_rmse_unaligned_m: float  # [m] in the map frame as estimated
    ate_rot_rmse_deg: float  # [deg] orientation error after alignment
    poses: int  # estimate poses compared (within the truth's time span)
    alignment: F64  # 4x4 truth <- estimate (the Umeyama motion)
    errors: F64  # (poses,) [m] aligned position error per compared pose
    stamps: F64  # (poses,) [s] the compared stamps
    positions: F64  # (poses,3) [m] aligned estimate positions
    truth_positions: F64  # (poses,3) [m] truth at the same stamps


@dataclass(frozen=True)
class CloudEvaluation:
    map_rms_m: float  # [m]
    map_p95_m: float  # [m]
    map_mean_m: float  # [m]
    map_outlier_share: float  # share of points beyond CloudConfig.outlier_distance
    map_points: int  # points evaluated


@dataclass(frozen=True)
class GridEvaluation:
    grid_iou: float  # with tolerance (module docstring)
    grid_precision: float
    grid_recall: float
    grid_iou_strict: float  # cell by cell, no tolerance
    grid_known_cells: int  # the evaluation region: FREE or OCCUPIED cells of the built grid
    grid_occupied_cells: int  # built obstacle cells
    grid_truth_cells: int  # true obstacle cells in the region
    grid_missed_cells: int  # true obstacles called FREE, no built obstacle within tolerance
    grid_phantom_cells: int  # built obstacles with no true obstacle within tolerance
    phantom_cells_pct: float  # [%] of the built obstacle cells that are phantoms


@dataclass(frozen=True)
class Evaluation:
    """All map-quality numbers of one built map; a part not evaluated is None."""

    trajectory: TrajectoryEvaluation | None = None
    cloud: CloudEvaluation | None = None
    grid: GridEvaluation | None = None

    def as_dict(self) -> dict[str, float | int]:
        """The scalar metrics, flat (ate_*, map_*, grid_*), for JSON."""
        out: dict[str, float | int] = {}
        if self.trajectory is not None:
            t = self.trajectory
            out.update(
                ate_rmse_m=t.ate_rmse_m,
                ate_max_m=t.ate_max_m,
                ate_rmse_unaligned_m=t.ate_rmse_unaligned_m,
                ate_rot_rmse_deg=t.ate_rot_rmse_deg,
                ate_poses=t.poses,
            )
        if self.cloud is not None:
            out.update(asdict(self.cloud))
        if self.grid is not None:
            out.update(asdict(self.grid))
        return out


# ---- trajectory -----------------------------------------------------------------------------
def _check_series(series: PoseSeries, label: str) -> tuple[F64, F64]:
    stamps = np.asarray(series.stamps, dtype=np.float64)
    poses = np.asarray(series.poses, dtype=np.float64)
    if stamps.ndim != 1 or poses.shape != (len(stamps), 4, 4):
        raise MappingError(
            f"{label}: expected stamps (N,) and poses (N,4,4), got {stamps.shape} and {poses.shape}"
        )
    if len(stamps) and (not np.all(np.isfinite(stamps)) or np.any(np.diff(stamps) <= 0)):
        raise MappingError(f"{label}: stamps must be finite and strictly increasing")
    if not np.all(np.isfinite(poses)):
        raise MappingError(f"{label}: poses hold NaN or infinite values")
    return stamps, poses


def umeyama_rigid(source: F64, target: F64) -> F64:
    """The 4x4 rigid motion T (no scale) minimising sum |target - T source|^2 over (N,3) pairs.

    Raises:
        MappingError: fewer than 3 pairs, or shapes that differ.
    """
    src = np.asarray(source, dtype=np.float64)
    dst = np.asarray(target, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 3 or len(src) < 3:
        raise MappingError(
            f"alignment needs two (N,3) arrays of the same shape, N >= 3; got {src.shape} "
            f"and {dst.shape}"
        )
    mu_s, mu_d = src.mean(axis=0), dst.mean(axis=0)
    rot = np.eye(3)
    if np.linalg.norm(src - mu_s) > 1e-12:
        r, _ = Rotation.align_vectors(dst - mu_d, src - mu_s)
        rot = r.as_matrix()
    out = np.eye(4)
    out[:3, :3] = rot
    out[:3, 3] = mu_d - rot @ mu_s
    return out


def evaluate_trajectory(estimate: PoseSeries, truth: PoseSeries) -> TrajectoryEvaluation:
    """ATE of `estimate` against `truth` (module docstring); both map <- base_link.

    Raises:
        MappingError: malformed series, or fewer than 3 estimate stamps inside the truth's span.
    """
    est_t, est_p = _check_series(estimate, "estimate")
    tru_t, tru_p = _check_series(truth, "truth")
    if len(tru_t) < 2:
        raise MappingError(f"truth: needs at least 2 poses, got {len(tru_t)}")
    inside = (est_t >= tru_t[0]) & (est_t <= tru_t[-1])
    if inside.sum() < 3:
        raise MappingError(
            f"estimate: {int(inside.sum())} of {len(est_t)} stamps lie within the truth's "
            f"{tru_t[0]:.3f}..{tru_t[-1]:.3f} s; need at least 3"
        )
    stamps = est_t[inside]
    est = est_p[inside]
    true_xyz = np.stack([np.interp(stamps, tru_t, tru_p[:, i, 3]) for i in range(3)], axis=1)
    true_rot = Slerp(tru_t, Rotation.from_matrix(tru_p[:, :3, :3]))(stamps)
    est_xyz = est[:, :3, 3]
    align = umeyama_rigid(est_xyz, true_xyz)
    aligned = est_xyz @ align[:3, :3].T + align[:3, 3]
    errors = np.linalg.norm(aligned - true_xyz, axis=1)
    raw = np.linalg.norm(est_xyz - true_xyz, axis=1)
    rot_err = (true_rot.inv() * Rotation.from_matrix(align[:3, :3] @ est[:, :3, :3])).magnitude()
    return TrajectoryEvaluation(
        ate_rmse_m=float(np.sqrt(np.mean(errors**2))),
        ate_max_m=float(errors.max()),
        ate_rmse_unaligned_m=float(np.sqrt(np.mean(raw**2))),
        ate_rot_rmse_deg=float(np.degrees(np.sqrt(np.mean(rot_err**2)))),
        poses=len(stamps),
        alignment=align,
        errors=errors,
        stamps=stamps,
        positions=aligned,
        truth_positions=true_xyz,
    )


# ---- cloud ----------------------------------------------------------------------------------
def surface_distances(
    points: NDArray[np.floating], world: World, *, nthreads: int = 1
) -> NDArray[np.float64]:
    """(N,) [m] distance from each (N,3) world point to the nearest static surface of `world`."""
    scene, _, _ = build_raycaster(world.shapes)
    query = np.ascontiguousarray(np.asarray(points, dtype=np.float32).reshape(-1, 3))
    d = scene.compute_distance(o3d.core.Tensor.from_numpy(query), nthreads=nthreads).numpy()
    return np.asarray(d, dtype=np.float64)


def evaluate_cloud(
    cloud: NDArray[np.floating], world: World, *, config: CloudConfig | None = None
) -> CloudEvaluation:
    """Distances of map points to the world's true surfaces (module docstring).

    Args:
        cloud: (N,3) [m] map points in the map frame (= the SDF world frame).
        world: the world the map was built in.

    Raises:
        MappingError: an empty or malformed cloud, or a world without shapes.
    """
    cfg = config or CloudConfig()
    pts = np.asarray(cloud, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0:
        raise MappingError(f"cloud: expected a non-empty (N,3) array, got shape {pts.shape}")
    if not np.all(np.isfinite(pts)):
        raise MappingError("cloud: holds NaN or infinite coordinates")
    if not world.shapes:
        raise MappingError(f"world {world.name} ({world.source}) has no shapes to compare with")
    if len(pts) > cfg.max_points:
        pts = pts[:: math.ceil(len(pts) / cfg.max_points)]
    d = surface_distances(pts, world, nthreads=cfg.nthreads)
    return CloudEvaluation(
        map_rms_m=float(np.sqrt(np.mean(d**2))),
        map_p95_m=float(np.percentile(d, 95)),
        map_mean_m=float(d.mean()),
        map_outlier_share=float(np.mean(d > cfg.outlier_distance)),
        map_points=len(d),
    )


# ---- grid -----------------------------------------------------------------------------------
def _check_grid(grid: Grid) -> NDArray[np.int8]:
    cells = np.asarray(grid.cells)
    if cells.ndim != 2 or cells.size == 0:
        raise MappingError(f"grid: cells must be a non-empty 2D array, got shape {cells.shape}")
    if not grid.resolution > 0:
        raise MappingError(f"grid: resolution must be > 0 m, got {grid.resolution}")
    if abs(grid.origin[2]) > 1e-9:
        raise MappingError(
            f"grid: origin yaw must be 0 to compare with the world, got {grid.origin[2]}"
        )
    return cells


def top_tilt(shape: Shape) -> float:
    """[rad] The tilt from level of the top face of a box or cylinder (a walkable surface);
    0 for other geometry (spheres, planes and meshes are not ramps in these worlds)."""
    rot = np.asarray(shape.pose, dtype=np.float64)[:3, :3]
    if isinstance(shape.geometry, Box):
        up = float(np.abs(rot[2]).max())  # the face whose normal points most upwards
    elif isinstance(shape.geometry, Cylinder):
        up = abs(float(rot[2, 2]))
    else:
        return 0.0
    return math.acos(min(1.0, up))


def _cells_of(points: NDArray[np.floating], grid: Grid, shape: tuple[int, int]) -> NDArray[np.intp]:
    """Flat indices of the cells under (N,2+) points [m], those inside the grid only."""
    xy = np.asarray(points, dtype=np.float64).reshape(len(points), -1)[:, :2]
    col = np.floor((xy[:, 0] - grid.origin[0]) / grid.resolution).astype(np.intp)
    row = np.floor((xy[:, 1] - grid.origin[1]) / grid.resolution).astype(np.intp)
    inside = (row >= 0) & (row < shape[0]) & (col >= 0) & (col < shape[1])
    out: NDArray[np.intp] = row[inside] * shape[1] + col[inside]
    return out


def true_obstacles(
    world: World,
    grid: Grid,
    *,
    config: GridEvaluationConfig | None = None,
    scene: Scene | None = None,
    drivable_at: NDArray[np.floating] | None = None,
) -> NDArray[np.bool_]:
    """(H,W) true obstacle cells of `world` on `grid`'s cells (module docstring: Truth).

    `scene` (optional) is a prebuilt `Scene.from_world(world)`, for its walkable-surface heights.
    `drivable_at` (optional, (N,2+) [m] world positions, such as the drive's true path) are
    where the robot stood: the walkable surface joined to them is the drivable one. Without
    them it is the largest joined walkable surface.
    """
    cfg = config or GridEvaluationConfig()
    cells = _check_grid(grid)
    rows, cols = cells.shape
    res, (x0, y0) = grid.resolution, grid.origin[:2]
    truth = np.zeros((rows, cols), dtype=bool)
    s = _SUPERSAMPLE
    for shape in world.shapes:
        if shape.category in DRIVABLE:
            continue
        footprint = shape_footprint(shape, cfg.truth_min_height, cfg.truth_max_height)
        if footprint is None:
            continue
        for poly in polygons_of(footprint):
            _fill_supersampled(truth, poly, x0, y0, res, s)
    # steps of the walkable surface higher than the robot climbs: the higher cell of the pair
    scene = scene if scene is not None else Scene.from_world(world)
    xs = x0 + (np.arange(cols) + 0.5) * res
    heights = np.empty((rows, cols), dtype=np.float32)
    chunk = max(1, 2_000_000 // cols)
    for r0 in range(0, rows, chunk):
        ys = y0 + (np.arange(r0, min(rows, r0 + chunk)) + 0.5) * res
        gx, gy = np.meshgrid(xs, ys)
        heights[r0 : r0 + len(ys)] = scene.ground_height(
            np.stack([gx.ravel(), gy.ravel()], axis=1)
        ).reshape(len(ys), cols)
    step = cfg.truth_min_height
    barrier = np.zeros((rows, cols), dtype=bool)
    for axis in (0, 1):
        diff = np.diff(heights, axis=axis)
        lo = [slice(None), slice(None)]
        hi = [slice(None), slice(None)]
        lo[axis], hi[axis] = slice(0, -1), slice(1, None)
        barrier[tuple(lo)] |= -diff > step  # this cell is higher than the next
        barrier[tuple(hi)] |= diff > step
    # walkable tops steeper than the robot drives (a dock's ramp, a tilted plate)
    for shape in world.shapes:
        if shape.category in DRIVABLE and top_tilt(shape) > cfg.truth_max_slope:
            footprint = shape_footprint(shape, -_ANY_HEIGHT, _ANY_HEIGHT)
            for poly in polygons_of(footprint) if footprint is not None else ():
                _fill_supersampled(barrier, poly, x0, y0, res, s)
    truth |= barrier
    truth |= _raised_islands(heights, barrier, step, grid, drivable_at)
    return truth


def _raised_islands(
    heights: NDArray[np.float32],
    barrier: NDArray[np.bool_],
    step: float,
    grid: Grid,
    drivable_at: NDArray[np.floating] | None,
) -> NDArray[np.bool_]:
    """Walkable surface (`heights` [m], (H,W)) that no climbable step or slope joins to the
    drivable surface and that stands more than `step` [m] above the nearest drivable cell: a
    landing reached only by a steep ramp, a plinth. The robot cannot stand there, as it cannot
    in a wall. A road behind a kerb, level with the walkway, is not raised and stays drivable.

    4-neighbours with no `barrier` cell (a step's higher side, a steep top) between them differ
    by `step` at most, so the joined surfaces are the labels of the cells that are not barrier;
    the drivable one holds `drivable_at` (the largest one without them)."""
    labels, count = ndimage.label(~barrier)
    if count <= 1:
        return np.zeros_like(barrier)
    seeds = _cells_of(drivable_at, grid, barrier.shape) if drivable_at is not None else None
    keep = np.zeros(count + 1, dtype=bool)
    if seeds is not None and len(seeds):
        keep[labels.reshape(-1)[seeds]] = True
    else:
        keep[int(np.argmax(np.bincount(labels.reshape(-1))[1:])) + 1] = True
    keep[0] = False
    drivable = keep[labels]
    if not drivable.any():
        return np.zeros_like(barrier)
    _, (ir, ic) = ndimage.distance_transform_edt(~drivable, return_indices=True)
    rise = heights - heights[ir, ic]  # above the nearest drivable cell
    others = np.flatnonzero(~keep[1:]) + 1
    lowest = np.asarray(ndimage.minimum(rise, labels, others), dtype=np.float64).reshape(-1)
    raised = np.zeros(count + 1, dtype=bool)
    raised[others[lowest > step]] = True
    out: NDArray[np.bool_] = raised[labels]
    return out


def _fill_supersampled(
    out: NDArray[np.bool_], poly: Polygon, x0: float, y0: float, res: float, s: int
) -> None:
    """Mark cells of `out` with at least one of their s x s sample points inside `poly`."""
    rows, cols = out.shape
    bx0, by0, bx1, by1 = poly.bounds
    c0, r0 = max(0, math.floor((bx0 - x0) / res)), max(0, math.floor((by0 - y0) / res))
    c1, r1 = (
        min(cols, math.floor((bx1 - x0) / res) + 1),
        min(rows, math.floor((by1 - y0) / res) + 1),
    )
    if c0 >= c1 or r0 >= r1:
        return
    sub = np.zeros(((r1 - r0) * s, (c1 - c0) * s), dtype=np.uint8)
    shift = 8
    # sample (i, j) of the window sits at world x0 + (c0 + (j + 0.5) / s) * res: pixel centres
    ext = np.asarray(poly.exterior.coords, dtype=np.float64)
    px = np.stack(
        [((ext[:, 0] - x0) / res - c0) * s - 0.5, ((ext[:, 1] - y0) / res - r0) * s - 0.5], axis=1
    )
    rings = [np.round(px * (1 << shift)).astype(np.int32)]
    cv2.fillPoly(sub, rings, 1, lineType=cv2.LINE_8, shift=shift)
    for hole in poly.interiors:
        h = np.asarray(hole.coords, dtype=np.float64)
        hp = np.stack(
            [((h[:, 0] - x0) / res - c0) * s - 0.5, ((h[:, 1] - y0) / res - r0) * s - 0.5], axis=1
        )
        cv2.fillPoly(
            sub, [np.round(hp * (1 << shift)).astype(np.int32)], 0, cv2.LINE_8, shift=shift
        )
    block = sub.reshape(r1 - r0, s, c1 - c0, s).max(axis=(1, 3)).astype(bool)
    out[r0:r1, c0:c1] |= block


def _dilate(mask: NDArray[np.bool_], cells: int) -> NDArray[np.bool_]:
    if cells <= 0:
        return mask
    k = 2 * cells + 1
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    return cv2.dilate(mask.astype(np.uint8), disc).astype(bool)


def _grid_classes(
    grid: Grid, truth: NDArray[np.bool_], tolerance: float
) -> tuple[dict[str, NDArray[np.bool_]], GridEvaluation]:
    cells = np.asarray(grid.cells)
    known = cells != UNKNOWN
    built = cells == OCCUPIED
    free = cells == FREE
    true_in = truth & known
    k = round(tolerance / grid.resolution)
    near_truth = _dilate(truth, k)
    near_built = _dilate(built, k)
    right = built & near_truth
    found = true_in & near_built
    n_b, n_t = int(built.sum()), int(true_in.sum())
    p = right.sum() / n_b if n_b else 1.0
    r = found.sum() / n_t if n_t else 1.0
    iou = p * r / (p + r - p * r) if p + r > 0 else 0.0
    union = int((built | true_in).sum())
    strict = float((built & true_in).sum() / union) if union else 1.0
    missed = true_in & free & ~near_built
    phantom = built & ~near_truth
    scores = GridEvaluation(
        grid_iou=float(iou),
        grid_precision=float(p),
        grid_recall=float(r),
        grid_iou_strict=strict,
        grid_known_cells=int(known.sum()),
        grid_occupied_cells=n_b,
        grid_truth_cells=n_t,
        grid_missed_cells=int(missed.sum()),
        grid_phantom_cells=int(phantom.sum()),
        phantom_cells_pct=100.0 * float(phantom.sum()) / n_b if n_b else 0.0,
    )
    classes = {"free": free, "right": right, "phantom": phantom, "missed": missed}
    return classes, scores


def evaluate_grid(
    grid: Grid,
    world: World,
    *,
    config: GridEvaluationConfig | None = None,
    scene: Scene | None = None,
    drivable_at: NDArray[np.floating] | None = None,
) -> GridEvaluation:
    """The built grid's obstacles against the world's footprints (module docstring: Grid).

    `scene`: a prebuilt `Scene.from_world(world)` to reuse (building one takes seconds);
    `drivable_at`: where the robot drove (`true_obstacles`).

    Raises:
        MappingError: a malformed grid or one with a rotated origin.
    """
    cfg = config or GridEvaluationConfig()
    truth = true_obstacles(world, grid, config=cfg, scene=scene, drivable_at=drivable_at)
    return _grid_classes(grid, truth, cfg.tolerance)[1]


# ---- picture --------------------------------------------------------------------------------
TRUTH_FILL: RGB = (205, 180, 160)
FREE_FILL: RGB = (252, 252, 250)
RIGHT: RGB = (20, 20, 20)
PHANTOM: RGB = (235, 30, 30)
MISSED: RGB = (200, 0, 220)
TRUTH_PATH: RGB = (110, 110, 110)
ESTIMATE: RGB = (20, 40, 200)
#: Upper bounds [m] of the trajectory error bins and their colours.
ERROR_BINS: tuple[tuple[float, RGB], ...] = (
    (0.05, (0, 160, 60)),
    (0.10, (150, 200, 0)),
    (0.20, (255, 170, 0)),
    (0.50, (230, 60, 0)),
    (math.inf, (140, 0, 0)),
)


def render_evaluation(
    grid: Grid,
    world: World,
    estimate: PoseSeries | None,
    truth: PoseSeries | None,
    out_png: Path,
    *,
    resolution: float = 0.2,
    config: GridEvaluationConfig | None = None,
    title: str = "map evaluation",
    scene: Scene | None = None,
) -> Path:
    """Write a PNG: the grid over the true footprints, the trajectory coloured by its error.

    The map part spans the grid, `resolution` [m/px] rounded to a whole number of cells per
    pixel (a pixel shows the most telling class of its cells: missed, phantom, right obstacle,
    true obstacle, free); a legend panel with a scale bar sits east of it
    (`xiaomanlv_sim.render`), so the image is ceil(W / k) + 190 pixels wide and ceil(H / k)
    high (at least the panel's height) for a W x H grid and k cells per pixel.
    Colours: true obstacles (`true_obstacles`) tan, free white, built obstacles matching the
    truth black, phantom obstacles red, missed obstacles magenta; the truth path grey, the
    aligned estimate in error bins (`ERROR_BINS`). Without `truth` the estimate is drawn as
    it is, in one colour; without `estimate` no path is drawn.

    Raises:
        MappingError: a malformed grid or trajectories (see `evaluate_trajectory`), or the
            PNG cannot be written.
    """
    cfg = config or GridEvaluationConfig()
    cells = _check_grid(grid)
    if not resolution > 0:
        raise MappingError(f"evaluation picture: resolution must be > 0 m/px, got {resolution}")
    traj = (
        evaluate_trajectory(estimate, truth) if estimate is not None and truth is not None else None
    )
    drivable_at = traj.truth_positions if traj is not None else None
    truth_cells = true_obstacles(world, grid, config=cfg, scene=scene, drivable_at=drivable_at)
    classes, scores = _grid_classes(grid, truth_cells, cfg.tolerance)
    k = max(1, round(resolution / grid.resolution))
    px_res = k * grid.resolution
    rows, cols = cells.shape
    hp, wp = math.ceil(rows / k), math.ceil(cols / k)
    label = np.zeros((hp * k, wp * k), dtype=np.uint8)
    shown = label[:rows, :cols]
    shown[classes["free"]] = 1
    shown[truth_cells & ~classes["free"]] = 2
    for value, name in ((3, "right"), (4, "phantom"), (5, "missed")):
        shown[classes[name]] = value
    pooled = label.reshape(hp, k, wp, k).max(axis=(1, 3))[::-1]  # row 0 = north
    x0, y0 = grid.origin[0], grid.origin[1]
    eps = 1e-6 * px_res
    canvas = Canvas((x0, y0, x0 + wp * px_res - eps, y0 + hp * px_res - eps), px_res)
    img = canvas.img[:hp, :wp]
    colours = ((1, FREE_FILL), (2, TRUTH_FILL), (3, RIGHT), (4, PHANTOM), (5, MISSED))
    for value, colour in colours:
        img[pooled == value] = bgr(colour)
    lines = [
        f"grid IoU {scores.grid_iou:.3f} (p {scores.grid_precision:.3f}, "
        f"r {scores.grid_recall:.3f}, strict {scores.grid_iou_strict:.3f})"
    ]
    entries: list[tuple[str, RGB]] = [
        ("true obstacle", TRUTH_FILL),
        ("free", FREE_FILL),
        ("obstacle, right", RIGHT),
        ("obstacle, phantom", PHANTOM),
        ("obstacle, missed", MISSED),
    ]
    if traj is not None:
        true_px = canvas.px(traj.truth_positions[:, :2])
        cv2.polylines(canvas.img, [true_px], False, bgr(TRUTH_PATH), 3, cv2.LINE_AA)
        est_px = canvas.px(traj.positions[:, :2])
        bins = np.searchsorted([b for b, _ in ERROR_BINS], traj.errors)
        for i in range(len(est_px) - 1):
            a, b = est_px[i], est_px[i + 1]
            colour = ERROR_BINS[int(bins[i])][1]
            cv2.line(canvas.img, (int(a[0]), int(a[1])), (int(b[0]), int(b[1])), bgr(colour), 2)
        lines.insert(0, f"ATE {traj.ate_rmse_m:.3f} m rms (max {traj.ate_max_m:.3f} m)")
        entries.append(("true path", TRUTH_PATH))
        lower = 0.0
        for upper, colour in ERROR_BINS:
            name = f"error > {lower:g} m" if math.isinf(upper) else f"error {lower:g}-{upper:g} m"
            entries.append((name, colour))
            lower = upper
    elif estimate is not None and len(estimate.poses):
        est_px = canvas.px(np.asarray(estimate.poses, dtype=np.float64)[:, :2, 3])
        cv2.polylines(canvas.img, [est_px], False, bgr(ESTIMATE), 2, cv2.LINE_AA)
        entries.append(("estimated path", ESTIMATE))
    for i, text in enumerate(lines):
        canvas.text((10, 22 + 20 * i), text, 0.5)
    image = with_panel(canvas, entries, title)
    path = Path(out_png)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise MappingError(f"evaluation picture: could not write {path}")
    _log.info("wrote %s (%dx%d px, %.2f m/px)", path, image.shape[1], image.shape[0], px_res)
    return path


# ---- a map directory ------------------------------------------------------------------------
def map_in_world(prior: PriorMap, site: Site) -> F64:
    """4x4 ``T_world_map`` of a map built on ``site``: its station's loading pose in the world
    (the sidecar) against the same pose in the map (stops.yaml); module docstring, Frames."""
    return world_from_map(site.station.loading, prior.stops.loading.pose)


def prior_in_world(prior: PriorMap, world_map: F64) -> PriorMap:
    """The parts of ``prior`` evaluation compares, carried into the world by ``world_map``
    (``T_world_map``): the cloud, the grid's origin and the trajectory."""
    if np.allclose(world_map, np.eye(4), rtol=0.0, atol=1e-12):
        return prior
    x, y, yaw = prior.grid.origin
    origin = world_map @ planar_pose(x, y, yaw)
    grid = Grid(
        prior.grid.resolution, (float(origin[0, 3]), float(origin[1, 3]), yaw_of(origin)),
        prior.grid.cells,
    )  # fmt: skip
    cloud = transform_points(world_map, prior.cloud).astype(prior.cloud.dtype)
    trajectory = prior.trajectory
    if trajectory is not None:
        trajectory = PoseSeries(trajectory.stamps, world_map @ np.asarray(trajectory.poses))
    return dataclasses.replace(prior, cloud=cloud, grid=grid, trajectory=trajectory)


def _path_length(series: PoseSeries) -> float:
    xyz = np.asarray(series.poses, dtype=np.float64)[:, :3, 3]
    return float(np.linalg.norm(np.diff(xyz, axis=0), axis=1).sum()) if len(xyz) > 1 else 0.0


def evaluate_map(
    map_dir: Path,
    *,
    bag: Path | None = None,
    world: str | Path,
    png: Path | None = None,
    grid_config: GridEvaluationConfig | None = None,
    cloud_config: CloudConfig | None = None,
) -> dict[str, float | int]:
    """Evaluate ``maps/<site>/`` against `world` (a shipped world's name or an SDF path).

    The map is first carried into the world frame by `map_in_world` (the site sidecar next to
    the world file gives the station). The cloud and the grid are compared with the world's
    geometry; the map's optimised drive (`PriorMap.trajectory`) with the ground truth recorded in
    `bag` (``/sim/ground_truth/pose``), when both exist. Writes the evaluation picture to `png`
    when given.

    Returns:
        `Evaluation.as_dict()` plus ``drive_m``: the length [m] of the true drive (of the
        estimate without a truth; 0 without either).

    Raises:
        MapFormatError: an unreadable map directory; BagError: an unreadable bag;
        MappingError: a world or site sidecar that cannot be found or read, a map rotated
            against the world (the grid comparison needs an axis-aligned grid), or malformed
            contents.
    """
    from xiaomanlv_core.robot import load_robot, model_file
    from xiaomanlv_core.site import SiteError, load_site
    from xiaomanlv_mapping.bag import open_drive  # the bag reader pulls in rosbags
    from xiaomanlv_mapping.mapfiles import read_map
    from xiaomanlv_sim import assets
    from xiaomanlv_sim.sdf import SdfError, load_world

    prior = read_map(Path(map_dir))
    if grid_config is None:
        grid_config = GridEvaluationConfig.for_robot(load_robot(model_file()))
    try:
        world_path = assets.world_file(str(world))
        sdf_world = load_world(world_path)
        site = load_site(assets.site_file(world_path))
    except (SdfError, SiteError, assets.AssetNotFoundError) as err:
        raise MappingError(f"evaluate {map_dir}: world {world}: {err}") from err
    prior = prior_in_world(prior, map_in_world(prior, site))
    truth = open_drive(Path(bag)).truth if bag is not None else None
    estimate = prior.trajectory
    scene = Scene.from_world(sdf_world)
    part_traj = (
        evaluate_trajectory(estimate, truth) if estimate is not None and truth is not None else None
    )
    part_cloud = evaluate_cloud(prior.cloud, sdf_world, config=cloud_config)
    drove = truth.positions() if truth is not None else None
    part_grid = evaluate_grid(
        prior.grid, sdf_world, config=grid_config, scene=scene, drivable_at=drove
    )
    report = Evaluation(part_traj, part_cloud, part_grid).as_dict()
    drive = truth if truth is not None else estimate
    report["drive_m"] = _path_length(drive) if drive is not None else 0.0
    if png is not None:
        render_evaluation(
            prior.grid, sdf_world, estimate, truth, Path(png), config=grid_config, scene=scene,
            title=f"{prior.site} map",
        )  # fmt: skip
    return report
