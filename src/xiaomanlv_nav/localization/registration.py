"""One lidar sweep registered against the prior map: small_gicp's VGICP, and the covariance of
the match from its geometry.

The sweep, deskewed into base_link at its stamp (:func:`prepare_scan`, with
`xiaomanlv_core.deskew` and the odometry's motion over the sweep), is cropped to
``[min_range, max_range]`` of the lidar, NaN/inf points dropped, downsampled to a voxel and
given per-point covariances (``small_gicp.preprocess_points``), then aligned to the map's
Gaussian voxel map (Koide et al., "Voxelized GICP for fast and accurate 3D point cloud
registration", ICRA 2021) from the predicted pose. Points farther than
``max_correspondence_distance`` from any map voxel have no correspondence: people, cyclists
and obstacles placed after mapping fall out of the sum instead of dragging the match.

Covariance: the Hessian of a point-to-plane cost at the solution (Censi, "An accurate
closed-form estimate of ICP's covariance", ICRA 2007; Bonnabel et al., "On the covariance of
ICP-based scan-matching techniques", ACC 2016): each inlier ``q_i`` (map frame) against the
surface of the voxel it falls in (mean ``mu_i``, normal ``n_i``: the voxel covariance's smallest
axis) has residual ``r_i = n_i . (q_i - mu_i)`` and Jacobian ``J_i = [n_i, (q_i - c) x n_i]``
for a translation and a rotation about the robot's position ``c`` (geometry_msgs'
PoseWithCovariance order: x y z, then rotations about the fixed axes). The covariance is
``covariance_scale * sigma^2 * (sum J^T J)^-1`` with ``sigma^2 = sum r^2 / (m - 6)``; the scale
stands for what the formula leaves out (a sweep's errors are correlated, the map has its own).
A direction no surface faces - along a corridor - has a near-zero eigenvalue; map normals are
never exact, so it is small rather than zero (a 200 m synthetic corridor: 0.08 m along against
0.004 m across). As in Zhang et al.'s degeneracy test ("On degeneracy of optimization-based
state estimation problems", ICRA 2016), a direction whose eigenvalue of ``sum J^T J`` is below
``min_constraint`` (with unit normals: how many points' surfaces face that direction, the sum
of the squared cosines; rotations scaled by :data:`LEVER` so the units compare) is taken as
unconstrained (measured: 0.5 along the corridor, 9 for its roll, at least 329 in a
courtyard): its std is ``max_std``, so the reported ellipse is long along the corridor's axis,
as it should be, and the fusion leans on the odometry there. ``min_position_std`` and
``min_rotation_std`` are added as a floor. The map's surfaces are off by about the
fit's rms residual ``sigma`` on every sweep alike (a bias, not noise): along an eigen-direction
``v_k`` of ``sum J^T J`` its worst case is ``sigma sum_i |J_i v_k| / lambda_k``, which is
``sigma`` for surfaces squarely facing ``v_k`` (a shift of the whole map: the fusion's map
offset) and far more where many surfaces lean only slightly into it (walls seen almost edge-on:
at the university station VGICP seeded at the truth slides 0.127 m east-west, where the formula
alone said 0.021 m); the excess ``sigma (sum_i |J_i v_k| / lambda_k - 1)`` is added to that
direction's std (0.039 m there). Along the directions whose std still exceeds ``remap_std``,
:func:`remap` keeps the prediction (Zhang et al.'s solution remapping). small_gicp's own
``RegistrationResult.H`` is not used for this: it weighs residuals by GICP's regularised
covariances (1 : 1 : 1e-3), so a point sliding along a wall still counts, and on a synthetic
corridor it reported the axis only 6.7 times less certain than across (instead of
unconstrained).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import small_gicp
from numpy.typing import ArrayLike, NDArray
from scipy.spatial.transform import Rotation

from xiaomanlv_core.deskew import deskew
from xiaomanlv_nav.localization.config import LocalizerConfig
from xiaomanlv_nav.localization.tiles import MapTarget

STRUCTURE_SAMPLE = 600  # points a sweep's structure share is estimated from (+-2 %, 1 sigma)
MIN_STRUCTURE = 50  # steep points (estimated) for the structure share to judge a match
LEVER = 10.0  # [m] a rotation of 1 rad counts as a translation of this in the degeneracy test


@dataclass(frozen=True)
class Registration:
    """One sweep matched against the map."""

    pose: NDArray[np.float64]  # 4x4 map <- base_link
    initial_pose: NDArray[np.float64]  # 4x4 map <- base_link the match started from
    covariance: NDArray[np.float64]  # 6x6 [x y z roll pitch yaw], map frame; [m^2], [rad^2]
    converged: bool
    iterations: int
    points: int  # sweep points registered (after cropping and downsampling)
    inliers: int  # of those, the ones with a map voxel within max_correspondence_distance
    fitness: float  # mean chi-square per inlier (2 error / inliers); lower is a tighter fit
    seconds: float  # [s] wall time of preprocessing, alignment and the covariance
    # registered points on steep surfaces (walls, poles, trees), and of those the ones in an
    # occupied voxel of the map: both estimated from every k-th point (STRUCTURE_SAMPLE)
    structure_points: int = 0
    structure_inliers: int = 0
    cpu_seconds: float = 0.0  # [s] the same in this thread's CPU time (no waits for a core)

    @property
    def inlier_ratio(self) -> float:
        """Share of the registered points that found the map (0 with no points)."""
        return self.inliers / self.points if self.points else 0.0

    @property
    def structure_ratio(self) -> float:
        """Share of the points on steep surfaces that lie on a map surface. The ground finds the
        map anywhere, so a sweep matched in the wrong place keeps a high :attr:`inlier_ratio`;
        walls and poles do not (0 with no steep points)."""
        return self.structure_inliers / self.structure_points if self.structure_points else 0.0

    @property
    def fit_ratio(self) -> float:
        """The share of the match's points that found the map, judged on steep surfaces
        (:attr:`structure_ratio`) when the sweep has at least :data:`MIN_STRUCTURE` of them:
        the ground finds the map anywhere, so a sweep matched 30 m from where it was taken
        keeps half its points as inliers while its walls find nothing (0.0-0.07 measured);
        else :attr:`inlier_ratio`."""
        if self.structure_points >= MIN_STRUCTURE:
            return self.structure_ratio
        return self.inlier_ratio

    @property
    def position_std(self) -> float:
        """[m] std along the horizontal covariance's longest axis."""
        return float(math.sqrt(max(np.linalg.eigvalsh(self.covariance[:2, :2])[-1], 0.0)))

    @property
    def yaw_std(self) -> float:
        """[rad] std of the yaw."""
        return float(math.sqrt(max(self.covariance[5, 5], 0.0)))


def prepare_scan(
    points: ArrayLike,
    times: ArrayLike | None,
    stamp: float,
    base_from_sensor: ArrayLike,
    odom_poses: tuple[ArrayLike, ArrayLike] | None,
    *,
    min_range: float,
    max_range: float,
) -> NDArray[np.float64]:
    """(N,3) [m] points of a sweep in base_link at ``stamp``: non-finite points and those
    outside ``[min_range, max_range]`` of the sensor dropped, then deskewed.

    Args:
        points: (N,3) [m] in the sensor frame, each at ``stamp + times[i]``.
        times: (N,) [s] after ``stamp`` (the PointCloud2 ``t`` field); None: not deskewed.
        stamp: [s] the sweep's stamp (its first column).
        base_from_sensor: 4x4 extrinsic (the lidar's pose on base_link).
        odom_poses: ``(stamps (M,), poses (M,4,4) odom <- base_link)`` covering the sweep
            (interpolated on SE(3), ends held); None: not deskewed (a robot at rest).
    Raises:
        ValueError: ``points`` not (N,3), ``times`` of another length (non-finite times drop
            their points).
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points: expected (N,3), got shape {pts.shape}")
    keep: NDArray[np.bool_] = np.asarray(np.isfinite(pts).all(axis=1))
    t: NDArray[np.float64] | None = None
    if times is not None:
        t = np.asarray(times, dtype=np.float64).reshape(-1)
        if len(t) != len(pts):
            raise ValueError(f"times: {len(t)} for {len(pts)} points")
        keep &= np.isfinite(t)
    r = np.linalg.norm(np.where(keep[:, None], pts, 0.0), axis=1)
    keep &= (r >= min_range) & (r <= max_range)
    pts = pts[keep]
    ext = np.asarray(base_from_sensor, dtype=np.float64)
    if t is not None and odom_poses is not None and len(pts):
        stamps, poses = odom_poses
        sensor_poses = np.asarray(poses, dtype=np.float64) @ ext
        pts = np.asarray(deskew(pts, stamp + t[keep], (stamps, sensor_poses), stamp))
    return np.asarray(pts @ ext[:3, :3].T + ext[:3, 3], dtype=np.float64)


def register(
    scan_points_base: ArrayLike,
    initial_pose: ArrayLike,
    target: MapTarget,
    *,
    scan_voxel: float,
    neighbors: int,
    max_correspondence_distance: float,
    max_iterations: int,
    rotation_epsilon: float,
    translation_epsilon: float,
    covariance_scale: float,
    min_position_std: float,
    min_rotation_std: float,
    max_std: float,
    min_constraint: float,
    remap_std: float = 0.0,
    coarse: bool = True,
) -> Registration:
    """Align a prepared sweep (``scan_points_base`` (N,3) [m], base_link) to ``target`` (the
    map's voxel map) from ``initial_pose`` (4x4 map <- base_link); module docstring for the
    covariance. ``rotation_epsilon`` and ``min_rotation_std`` are in [rad]. ``coarse``: match
    on the coarse voxel map first (its wider basin); False when the prediction is known to be
    within centimetres (the last sweep matched: the odometry drifts millimetres in 0.1 s).
    ``remap_std`` [m] > 0: along the directions the covariance leaves freer than that, the
    pose keeps ``initial_pose`` (:func:`remap`); 0: the match as it ended.

    A sweep with fewer than 7 points after downsampling is not aligned: the result keeps the
    initial pose, ``converged`` False and no inliers.
    """
    start, start_cpu = time.perf_counter(), time.thread_time()
    init = np.asarray(initial_pose, dtype=np.float64)
    pts = np.asarray(scan_points_base, dtype=np.float64).reshape(-1, 3)
    unknown = np.diag([max_std**2] * 6)
    if len(pts) < 7:
        return Registration(init, init, unknown, False, 0, len(pts), 0, math.inf, 0.0)
    source, _ = small_gicp.preprocess_points(
        pts, downsampling_resolution=scan_voxel, num_neighbors=neighbors
    )
    n = source.size()
    if n < 7:
        seconds = time.perf_counter() - start
        return Registration(init, init, unknown, False, 0, n, 0, math.inf, seconds)
    start_pose, iterations = init, 0
    for stage in (target.coarse if coarse else None, target):
        if stage is None:
            continue
        grid = stage.grid_from_map
        result = small_gicp.align(
            stage.voxels,
            source,
            init_T_target_source=grid @ start_pose,
            max_correspondence_distance=max(max_correspondence_distance, stage.voxel_size),
            num_threads=1,
            max_iterations=max_iterations,
            rotation_epsilon=rotation_epsilon,
            translation_epsilon=translation_epsilon,
        )
        aligned = np.asarray(result.T_target_source, dtype=np.float64)
        start_pose = np.asarray(np.linalg.solve(grid, aligned), dtype=np.float64)
        iterations += int(result.iterations)
    pose = start_pose
    inliers = int(result.num_inliers)
    chi2 = 2.0 * float(result.error)
    points_map = np.asarray(source.points(), dtype=np.float64)[:, :3] @ pose[:3, :3].T
    points_map += pose[:3, 3]
    occupied, found, means, normals = target.surfaces_at(points_map)
    # Structure from every k-th point: small_gicp hands its covariances over one by one (3.5 ms
    # for a 5,000-point sweep all at once, 0.6 ms for 600); the counts are scaled back up.
    every = max(1, math.ceil(n / STRUCTURE_SAMPLE))
    sample = range(0, n, every)
    covs = np.array([source.cov(i) for i in sample], dtype=np.float64)
    steep = steep_points(covs, pose[:3, :3])
    covariance = match_covariance(
        points_map[found],
        means[found],
        normals[found],
        pose[:3, 3],
        max_distance=max_correspondence_distance,
        scale=covariance_scale,
        min_position_std=min_position_std,
        min_rotation_std=min_rotation_std,
        max_std=max_std,
        min_constraint=min_constraint,
    )
    fitness = chi2 / inliers if inliers else math.inf
    return Registration(
        pose=remap(init, pose, covariance, max_std=remap_std),
        initial_pose=init,
        covariance=covariance,
        converged=bool(result.converged),
        iterations=iterations,
        points=n,
        inliers=inliers,
        fitness=fitness,
        seconds=time.perf_counter() - start,
        structure_points=every * int(steep.sum()),
        structure_inliers=every * int((steep & occupied[::every]).sum()),
        cpu_seconds=time.thread_time() - start_cpu,
    )


STEEP = 0.7  # a surface whose normal's z is below this (45 deg from vertical) is steep
PLANE_EPSILON = 1e-3  # small_gicp's regularisation of a point's covariance along its normal


def steep_points(covs: NDArray[np.float64], rotation: NDArray[np.float64]) -> NDArray[np.bool_]:
    """(N,) True where a point's own surface (the smallest axis of its (N,4,4) or (N,16)
    covariance, in base_link) is steep in the map (``rotation``: map <- base_link): walls,
    poles, trunks, not the ground, on slopes too.

    small_gicp regularises each point's covariance to a plane, ``U diag(1, 1, e) U^T`` with
    ``e`` = 1e-3 (Segal et al.'s plane-to-plane GICP), so ``C = I - (1 - e) n n^T`` and the
    normal's share along the map's vertical ``z`` (``rotation``'s last row) is read without an
    eigen-decomposition: ``(z . n)^2 = (1 - z^T C z) / (1 - e)`` (15 ms -> 0.3 ms a sweep). A
    point with too few neighbours keeps the identity: no normal, counted steep as before."""
    c = covs.reshape(-1, 4, 4)[:, :3, :3]
    up = np.asarray(rotation, dtype=np.float64)[2, :3]  # map z in base_link
    nz2 = (1.0 - np.einsum("i,nij,j->n", up, c, up)) / (1.0 - PLANE_EPSILON)
    return np.asarray(nz2 < STEEP * STEEP)


def match_covariance(
    points: NDArray[np.float64],
    means: NDArray[np.float64],
    normals: NDArray[np.float64],
    center: NDArray[np.float64],
    *,
    max_distance: float,
    scale: float,
    min_position_std: float,
    min_rotation_std: float,
    max_std: float,
    min_constraint: float,
) -> NDArray[np.float64]:
    """6x6 covariance [x y z roll pitch yaw] (map frame; [m^2], [rad^2]) of a match whose
    registered points (N,3) [m] lie on surfaces with ``means`` and unit ``normals`` (N,3),
    rotations about ``center`` (3,) [m]; points farther than ``max_distance`` [m] from their
    surface are outliers (module docstring)."""
    r = np.einsum("ij,ij->i", normals, points - means)
    keep = np.abs(r) <= max_distance
    if keep.sum() < 7:
        return np.diag([max_std**2] * 6)
    n, r = normals[keep], r[keep]
    jac = np.hstack([n, np.cross(points[keep] - center, n)])
    jac[:, 3:] /= LEVER  # rotations [rad] -> [m] at the lever
    info = jac.T @ jac
    sigma2 = max(float(r @ r) / (len(r) - 6), 1e-12)
    values, vectors = np.linalg.eigh(0.5 * (info + info.T))
    variances = np.full(6, max_std**2)
    constrained = values > max(min_constraint, 0.0)
    constrained &= values > 0.0
    # Bias that does not average out (module docstring): sigma on every residual, the worst
    # case along eigen-direction v_k is sigma sum_i |J_i v_k| / lambda_k; less the sigma that
    # surfaces squarely facing v_k would give (a shift of the whole map: the fusion's map
    # offset), what is left is the slide of surfaces leaning only slightly into v_k.
    leak = np.abs(jac @ vectors[:, constrained]).sum(axis=0) / values[constrained] - 1.0
    leak = np.maximum(leak, 0.0)
    bias2 = sigma2 * leak**2
    variances[constrained] = np.minimum(scale * sigma2 / values[constrained] + bias2, max_std**2)
    cov = (vectors * variances) @ vectors.T
    lever = np.array([1.0] * 3 + [1.0 / LEVER] * 3)
    cov = cov * np.outer(lever, lever)
    floor = np.array([min_position_std**2] * 3 + [min_rotation_std**2] * 3)
    cov[np.diag_indices(6)] += floor
    return np.asarray(0.5 * (cov + cov.T), dtype=np.float64)


def remap(
    initial_pose: ArrayLike,
    pose: ArrayLike,
    covariance: ArrayLike,
    *,
    max_std: float,
) -> NDArray[np.float64]:
    """4x4 map <- base_link: the correction from ``initial_pose`` to ``pose`` kept only along
    the directions ``covariance`` (6x6 [x y z roll pitch yaw], [m^2], [rad^2]) pins within
    ``max_std`` [m] (rotations at :data:`LEVER`); along the others the initial pose stays
    (Zhang, Kaess & Singh, "On degeneracy of optimization-based state estimation problems",
    ICRA 2016: solution remapping). ``max_std`` <= 0 returns ``pose``."""
    seed = np.asarray(initial_pose, dtype=np.float64)
    out = np.asarray(pose, dtype=np.float64).copy()
    if max_std <= 0.0:
        return out
    lever = np.array([1.0] * 3 + [LEVER] * 3)
    cov = np.asarray(covariance, dtype=np.float64) * np.outer(lever, lever)
    values, vectors = np.linalg.eigh(0.5 * (cov + cov.T))
    free = values > max_std**2
    if not free.any():
        return out
    good = vectors[:, ~free]
    turn = Rotation.from_matrix(out[:3, :3] @ seed[:3, :3].T).as_rotvec()
    step = np.concatenate([out[:3, 3] - seed[:3, 3], turn]) * lever
    kept = good @ (good.T @ step) / lever
    out[:3, :3] = Rotation.from_rotvec(kept[3:]).as_matrix() @ seed[:3, :3]
    out[:3, 3] = seed[:3, 3] + kept[:3]
    return out


def register_with(
    config: LocalizerConfig,
    scan_points_base: ArrayLike,
    initial_pose: ArrayLike,
    target: MapTarget,
    *,
    coarse: bool = True,
) -> Registration:
    """:func:`register` with ``config``'s settings (degrees converted to radians)."""
    return register(
        scan_points_base,
        initial_pose,
        target,
        scan_voxel=config.scan_voxel,
        neighbors=config.covariance_neighbors,
        max_correspondence_distance=config.max_correspondence_distance,
        max_iterations=config.max_iterations,
        rotation_epsilon=math.radians(config.rotation_epsilon),
        translation_epsilon=config.translation_epsilon,
        covariance_scale=config.covariance_scale,
        min_position_std=config.min_position_std,
        min_rotation_std=math.radians(config.min_rotation_std),
        max_std=config.max_std,
        min_constraint=config.min_constraint,
        remap_std=config.remap_std,
        coarse=coarse,
    )
