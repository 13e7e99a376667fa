"""The mapping drive's estimate: lidar odometry, GNSS, loop closures, one pose graph.

The pipeline behind ``xiaomanlv map build`` (one algorithm per module):

1. `xiaomanlv_mapping.odometry`: every ``scan_stride``-th sweep is deskewed to its stamp with
   its points' times and the wheel odometry (`xiaomanlv_core.deskew`; a sweep without times
   is used as is), then registered point-to-plane in all six degrees of freedom against a
   local map, from the wheel-odometry and gyro prior; a keyframe is kept every
   ``keyframe_distance`` metres or ``keyframe_angle`` radians. The first sweep sits at
   ``start`` moved by the wheel odometry since the drive began, tilted as gravity says there.
2. `xiaomanlv_mapping.posegraph`, solved in a local ENU frame at the first fix: keyframe
   nodes, odometry edges, an attitude factor per measurement of gravity
   (`xiaomanlv_mapping.gravity`: the accelerometer less the wheels' acceleration, one per
   ``gravity_window``, with its own sigma) sharing one tilt-bias node, and a GNSS factor per
   fix (antenna lever arm, Huber kernel), started from the odometry placed by a robust fit of the
   datum (`xiaomanlv_mapping.datum`). The map frame is then the ENU solution moved so its
   first keyframe lies on ``start``: the datum is estimated with the trajectory, not before
   it. Fixes whose residual exceeds ``gnss_outlier_sigma`` are dropped.
3. `xiaomanlv_mapping.loops`: revisits near the solved positions are verified by
   registration; accepted ones join the graph, which is solved again (closures the solution
   contradicts are dropped and it is solved once more).
4. Every sweep of the drive gets a pose between its two keyframes, carried there by the wheel
   odometry, its tilt blended between theirs (``MappingResult.trajectory``);
   ``MappingResult.odometry_only`` keeps the lidar
   odometry of the registered sweeps as it was before steps 2-3.

This follows the usual structure of graph SLAM front and back ends (Grisetti et al., "A
Tutorial on Graph-Based SLAM", IEEE ITS Magazine 2010; hdl_graph_slam, Koide et al. 2019).
`SlamConfig`'s defaults were chosen by ATE and map RMS on three simulated full drives
(university twice, residential once).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import small_gicp
from numpy.typing import NDArray

from xiaomanlv_core.config import param, validate_fields
from xiaomanlv_core.deskew import deskew
from xiaomanlv_core.geodesy import Datum, enu_to_geodetic, geodetic_to_local
from xiaomanlv_core.geometry import planar_pose, rpy_matrices, yaw_of
from xiaomanlv_mapping import model
from xiaomanlv_mapping.datum import fit_datum
from xiaomanlv_mapping.gravity import GravitySeries, gravity_directions, tilt_of
from xiaomanlv_mapping.loops import LoopResult, LoopVerifier, loop_candidates
from xiaomanlv_mapping.model import DriveSource, MappingError, MappingResult
from xiaomanlv_mapping.odometry import LidarOdometry, MotionPrior
from xiaomanlv_mapping.posegraph import GnssFactor, PoseGraph

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class SlamConfig:
    """Parameters of the mapping estimate (`estimate`)."""

    # ---- lidar odometry
    scan_stride: int = param(
        3, low=1, high=10, description="register every n-th sweep (1: all of them)"
    )
    min_range: float = param(
        1.0, low=0.0, high=20.0, unit="m", description="returns closer than this are dropped"
    )  # [m]
    voxel: float = param(
        1.0, low=0.05, high=5.0, unit="m", description="sweep downsampling before registration"
    )  # [m]
    map_voxel: float = param(
        0.7, low=0.05, high=5.0, unit="m", description="local map voxel (registration target)"
    )  # [m]
    map_radius: float = param(
        100.0, low=5.0, high=500.0, unit="m", description="local map kept around the robot"
    )  # [m]
    map_horizon: int = param(
        150, low=5, high=100000, description="keyframes a local-map voxel survives unseen"
    )
    rebuild_distance: float = param(
        6.0, low=0.1, high=100.0, unit="m", description="travel between target rebuilds"
    )  # [m]
    normal_neighbors: int = param(
        10, low=5, high=100, description="neighbours for the target's normals"
    )
    max_correspondence: float = param(
        1.0, low=0.05, high=10.0, unit="m", description="registration pairing distance"
    )  # [m]
    max_points: int = param(
        1500, low=0, high=1000000, description="registered points per sweep at most (0: all)"
    )
    max_iterations: int = param(20, low=1, high=200, description="ICP iterations per sweep")
    max_correction: float = param(
        2.0, low=0.01, high=100.0, unit="m", description="largest accepted move of the prior"
    )  # [m]
    min_points: int = param(
        50, low=3, high=100000, description="fewer matched points: keep the motion prior"
    )
    gyro_yaw: bool = param(
        False, description="motion prior heading from the gyro instead of the wheels"
    )
    # ---- keyframes
    keyframe_distance: float = param(
        1.0, low=0.05, high=50.0, unit="m", description="travel between keyframes"
    )  # [m]
    keyframe_angle: float = param(
        0.17, low=0.01, high=3.2, unit="rad", description="turn between keyframes"
    )  # [rad]
    keyframe_voxel: float = param(
        0.1, low=0.02, high=2.0, unit="m", description="voxel of the points kept per keyframe"
    )  # [m]
    # ---- odometry edges of the graph: sigma = floor + rate * distance driven
    odometry_sigma_xy: float = param(
        0.003, low=1e-5, high=10.0, unit="m", description="odometry edge x/y sigma floor"
    )  # [m]
    odometry_sigma_xy_rate: float = param(
        0.001, low=0.0, high=1.0, unit="m/m", description="odometry x/y sigma per metre"
    )  # [m/m]
    odometry_sigma_z: float = param(
        0.002, low=1e-5, high=10.0, unit="m", description="odometry edge height sigma floor"
    )  # [m]
    odometry_sigma_z_rate: float = param(
        0.001, low=0.0, high=1.0, unit="m/m", description="odometry height sigma per metre"
    )  # [m/m]
    odometry_sigma_yaw: float = param(
        1e-4, low=1e-7, high=1.0, unit="rad", description="odometry edge heading sigma floor"
    )  # [rad]
    odometry_sigma_yaw_rate: float = param(
        2e-5, low=0.0, high=1.0, unit="rad/m", description="odometry heading sigma per metre"
    )  # [rad/m]
    odometry_sigma_tilt: float = param(
        5e-4, low=1e-7, high=1.0, unit="rad", description="odometry edge roll/pitch sigma"
    )  # [rad]
    # ---- gravity (accelerometer less the wheels' acceleration): attitude factors
    gravity_window: float = param(
        2.0, low=0.1, high=60.0, unit="s", description="accelerometer averaged per factor"
    )  # [s]
    gravity_sigma_floor: float = param(
        0.001, low=1e-6, high=1.0, unit="rad", description="attitude factor sigma floor"
    )  # [rad]
    gravity_max_deviation: float = param(
        0.05, low=0.0, high=1.0, description="windows whose |f| leaves g by more are dropped"
    )
    attitude_bias_sigma: float = param(
        0.01, low=1e-6, high=1.0, unit="rad", description="prior of the shared tilt bias"
    )  # [rad]
    start_tilt_sigma: float = param(
        0.05, low=1e-7, high=1.0, unit="rad", description="first keyframe's tilt prior (gravity)"
    )  # [rad]
    # ---- GNSS
    gnss_correlation_time: float = param(
        0.0, low=0.0, high=3600.0, unit="s", description="fix errors persist (0: independent)"
    )  # [s]
    gnss_sigma_scale: float = param(
        1.0, low=0.01, high=100.0, description="factor on the fixes' reported sigmas"
    )
    gnss_default_sigma: float = param(
        2.0, low=0.01, high=100.0, unit="m", description="sigma of fixes reporting none"
    )  # [m]
    gnss_huber: float = param(
        1.345, low=0.1, high=100.0, description="Huber threshold [sigmas] of GNSS factors"
    )
    gnss_outlier_sigma: float = param(
        3.0, low=1.0, high=100.0, description="fixes beyond this many sigmas are dropped"
    )
    # ---- loop closures
    loop_radius: float = param(
        8.0, low=0.5, high=100.0, unit="m", description="search radius for revisits"
    )  # [m]
    loop_min_travel: float = param(
        50.0, low=1.0, high=100000.0, unit="m", description="driving between loop ends"
    )  # [m]
    loop_spacing: float = param(
        5.0, low=0.0, high=1000.0, unit="m", description="driving between loop candidates"
    )  # [m]
    loop_submap_keyframes: int = param(
        8, low=0, high=1000, description="keyframes each side in the loop submap"
    )
    loop_submap_voxel: float = param(
        0.4, low=0.05, high=5.0, unit="m", description="loop submap voxel"
    )  # [m]
    loop_voxel: float = param(
        0.5, low=0.05, high=5.0, unit="m", description="later keyframe's voxel in a loop"
    )  # [m]
    loop_max_correspondence: float = param(
        2.0, low=0.1, high=20.0, unit="m", description="loop registration, coarse pass"
    )  # [m]
    loop_inlier_distance: float = param(
        0.3, low=0.01, high=5.0, unit="m", description="loop registration, fine pass"
    )  # [m]
    loop_min_overlap: float = param(
        0.6, low=0.0, high=1.0, description="share of points the fine pass must match"
    )
    loop_max_correction: float = param(
        3.0, low=0.01, high=100.0, unit="m", description="largest accepted loop correction"
    )  # [m]
    loop_sigma_xyz: float = param(
        0.02, low=1e-5, high=10.0, unit="m", description="loop edge position sigma"
    )  # [m]
    loop_sigma_rotation: float = param(
        5e-4, low=1e-7, high=1.0, unit="rad", description="loop edge rotation sigma"
    )  # [rad]
    loop_outlier_sigma: float = param(
        5.0, low=1.0, high=1000.0, description="closures beyond this residual [sigmas] dropped"
    )
    # ---- anchor and solver
    start_sigma: float = param(
        1e-3, low=1e-9, high=10.0, unit="m", description="prior of the first keyframe at start"
    )  # [m] (and rad)
    optimizer_iterations: int = param(
        100, low=1, high=10000, description="Levenberg-Marquardt iterations per solve"
    )

    def __post_init__(self) -> None:
        validate_fields(self)


# ---- input checks ---------------------------------------------------------------------------
def _check_increasing(stamps: NDArray[np.float64], what: str, where: str) -> None:
    stamps = np.asarray(stamps, float)
    if stamps.ndim != 1:
        raise MappingError(f"{where}: {what} stamps must be one-dimensional")
    if not np.all(np.isfinite(stamps)):
        raise MappingError(f"{where}: {what} stamps are not all finite")
    bad = np.flatnonzero(np.diff(stamps) <= 0.0)
    if len(bad):
        i = int(bad[0]) + 1
        raise MappingError(
            f"{where}: {what} stamps are not increasing at message {i} "
            f"({stamps[i - 1]:.3f} s then {stamps[i]:.3f} s)"
        )


def _check_inputs(drive: DriveSource) -> None:
    where = f"drive {drive.path}"
    if drive.scan_count <= 0:
        raise MappingError(f"{where}: no lidar sweeps (/lidar/points); nothing to map")
    odo = drive.odometry
    if len(odo.stamps) < 2:
        raise MappingError(
            f"{where}: no wheel odometry (/wheel/odom, {len(odo.stamps)} messages); "
            "the motion prior needs it"
        )
    if odo.poses.shape != (len(odo.stamps), 3):
        raise MappingError(f"{where}: wheel odometry poses have shape {odo.poses.shape}")
    _check_increasing(odo.stamps, "wheel odometry (/wheel/odom)", where)
    imu = drive.imu
    if len(imu.stamps):
        if imu.angular_velocity.shape != (len(imu.stamps), 3):
            shape = imu.angular_velocity.shape
            raise MappingError(f"{where}: IMU angular velocity has shape {shape}")
        _check_increasing(imu.stamps, "IMU (/imu/data)", where)
    gnss = drive.gnss
    if len(gnss.stamps) < 3:
        raise MappingError(
            f"{where}: {len(gnss.stamps)} GNSS fixes (/gnss/fix); the datum needs at least 3"
        )
    if gnss.lla.shape != (len(gnss.stamps), 3):
        raise MappingError(f"{where}: GNSS positions have shape {gnss.lla.shape}")
    _check_increasing(gnss.stamps, "GNSS (/gnss/fix)", where)


# ---- the pipeline ---------------------------------------------------------------------------
@dataclass
class _Front:
    """What the odometry pass leaves: registered sweeps and keyframes."""

    all_stamps: list[float]  # every sweep of the drive
    sweep_index: list[int]  # drive scan order of the registered sweeps
    sweep_stamp: list[float]
    sweep_pose: list[NDArray[np.float64]]
    sweep_keyframe: list[int]
    kf_index: list[int]
    kf_stamp: list[float]
    kf_pose: list[NDArray[np.float64]]
    kf_points: list[NDArray[np.float32]]
    registered: int = 0


def _drive_begin(odometry: model.OdometrySeries) -> NDArray[np.float64]:
    """The wheel-odometry pose (4x4, in odom) of the robot standing at ``start``.

    A wheel odometry whose first pose is its origin (within 0.05 m and 0.01 rad) was started
    with the drive: its origin is the start, and motion before its first message counts (in
    the simulator the robot turns 3.8e-4 rad before that message, 0.11 m at 300 m). Otherwise
    the recording began later and the start is the pose of the first message."""
    x, y, yaw = (float(v) for v in odometry.poses[0])
    if math.hypot(x, y) < 0.05 and abs(yaw) < 0.01:
        return np.eye(4)
    return planar_pose(x, y, yaw)


def _start_tilt(gravity: GravitySeries, stamp: float) -> NDArray[np.float64]:
    """3x3 roll and pitch of the body at ``stamp`` from the gravity measurement nearest to it
    (level without one). Only the front end's start: the graph refines it."""
    if not len(gravity):
        return np.eye(3)
    roll, pitch = tilt_of(gravity.up[int(np.argmin(np.abs(gravity.stamps - stamp)))])
    out: NDArray[np.float64] = rpy_matrices(np.array([roll]), np.array([pitch]), np.zeros(1))[0]
    return out


def _run_odometry(
    drive: DriveSource,
    prior: MotionPrior,
    gravity: GravitySeries,
    lidar_pose: NDArray[np.float64],
    start_pose: NDArray[np.float64],
    config: SlamConfig,
    progress: Progress | None,
) -> _Front:
    c = config
    odometry = LidarOdometry(
        start_pose,
        voxel=c.voxel,
        map_voxel=c.map_voxel,
        map_radius=c.map_radius,
        map_horizon=c.map_horizon,
        rebuild_distance=c.rebuild_distance,
        normal_neighbors=c.normal_neighbors,
        max_correspondence=c.max_correspondence,
        max_iterations=c.max_iterations,
        max_correction=c.max_correction,
        min_points=c.min_points,
        max_points=c.max_points,
    )
    rot, trans = lidar_pose[:3, :3].T.copy(), lidar_pose[:3, 3].copy()
    front = _Front([], [], [], [], [], [], [], [], [])
    total = drive.scan_count
    last_kf: NDArray[np.float64] | None = None
    previous: float | None = None
    cos_angle = math.cos(c.keyframe_angle)
    min_r2 = c.min_range**2
    begin = _drive_begin(drive.odometry)
    skewed_warned = False

    def lidar_motion(stamps: NDArray[np.float64]) -> NDArray[np.float64]:
        """odom <- lidar at ``stamps``: the wheel odometry (and gyro) within a sweep."""
        out: NDArray[np.float64] = prior.odom_poses(stamps) @ lidar_pose
        return out

    n = -1
    for n, scan in enumerate(drive.scans()):
        if progress is not None and n % 100 == 0:
            progress(n, total)
        if front.all_stamps and scan.stamp <= front.all_stamps[-1]:
            raise MappingError(
                f"drive {drive.path}: lidar sweep {n} stamp {scan.stamp:.3f} s is not after "
                f"the previous one ({front.all_stamps[-1]:.3f} s)"
            )
        front.all_stamps.append(scan.stamp)
        if n % c.scan_stride:
            continue
        points = np.asarray(scan.points, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 3:
            raise MappingError(f"drive {drive.path}: lidar sweep {n} has shape {points.shape}")
        times = scan.times
        if min_r2 > 0.0:
            near = np.einsum("ij,ij->i", points, points) >= min_r2
            points = points[near]
            times = times[near] if times is not None else None
        if times is not None:
            points = np.asarray(
                deskew(points, scan.stamp + times, lidar_motion, scan.stamp), dtype=np.float64
            )
        elif not skewed_warned:
            log.info(
                "drive %s: lidar sweeps carry no per-point time (field 't'): their points are "
                "taken as measured at the header stamp (no deskewing)",
                drive.path,
            )
            skewed_warned = True
        points = points @ rot + trans
        if previous is None:
            # The robot stood at ``start`` when the drive began (`_drive_begin`); it may
            # have moved a little by the first sweep.
            reg_pose = start_pose @ np.linalg.inv(begin) @ prior.odom_pose(scan.stamp)
            reg_pose[:3, :3] = reg_pose[:3, :3] @ _start_tilt(gravity, scan.stamp)
            odometry.pose = reg_pose
        else:
            delta = prior.delta(previous, scan.stamp)
            reg = odometry.register(points, delta)
            reg_pose = reg.pose
            front.registered += int(reg.registered)
        previous = scan.stamp
        if last_kf is None:
            new_kf = True
        else:
            rel = np.linalg.inv(last_kf) @ reg_pose
            turned = (np.trace(rel[:3, :3]) - 1.0) / 2.0 < cos_angle
            new_kf = bool(turned or np.linalg.norm(rel[:3, 3]) >= c.keyframe_distance)
        if new_kf:
            cloud = small_gicp.voxelgrid_sampling(points, c.keyframe_voxel).points()[:, :3]
            odometry.insert(np.ascontiguousarray(cloud), reg_pose)
            front.kf_index.append(n)
            front.kf_stamp.append(scan.stamp)
            front.kf_pose.append(reg_pose)
            front.kf_points.append(cloud.astype(np.float32))
            last_kf = reg_pose
        front.sweep_index.append(n)
        front.sweep_stamp.append(scan.stamp)
        front.sweep_pose.append(reg_pose)
        front.sweep_keyframe.append(len(front.kf_pose) - 1)
    if n < 0:
        raise MappingError(f"drive {drive.path}: no lidar sweeps (/lidar/points); nothing to map")
    if progress is not None:
        progress(n + 1, total)
    return front


@dataclass(frozen=True)
class _Fixes:
    stamp: NDArray[np.float64]  # (F,) [s]
    keyframe: NDArray[np.intp]  # (F,)
    lever: NDArray[np.float64]  # (F,3) antenna in the keyframe's frame at the fix time
    lla: NDArray[np.float64]  # (F,3)
    sigmas: NDArray[np.float64]  # (F,3) [m] east, north, up, as reported (x gnss_sigma_scale)
    inflation: float  # on ``sigmas`` in the graph's factors (`_gnss_inflation`)


def _associate_fixes(
    drive: DriveSource,
    front: _Front,
    prior: MotionPrior,
    antenna: NDArray[np.float64],
    c: SlamConfig,
) -> _Fixes:
    """Tie each fix inside the registered span to the keyframe of its nearest sweep."""
    gnss = drive.gnss
    stamps = np.asarray(front.sweep_stamp)
    inside = np.flatnonzero((gnss.stamps >= stamps[0]) & (gnss.stamps <= stamps[-1]))
    var = np.asarray(gnss.variances, float).reshape(-1, 3)
    keyframes = np.empty(len(inside), dtype=np.intp)
    levers = np.empty((len(inside), 3))
    nearest = np.clip(np.searchsorted(stamps, gnss.stamps[inside]), 1, max(len(stamps) - 1, 1))
    for out, (f, s) in enumerate(zip(inside, nearest, strict=True)):
        t = float(gnss.stamps[f])
        if len(stamps) == 1 or t - stamps[s - 1] < stamps[s] - t:
            s -= 1
        k = front.sweep_keyframe[s]
        at_fix = front.sweep_pose[s] @ prior.delta(float(stamps[s]), t)
        rel = np.linalg.inv(front.kf_pose[k]) @ at_fix
        keyframes[out] = k
        levers[out] = rel[:3, :3] @ antenna + rel[:3, 3]
    v = var[inside]
    good = np.isfinite(v) & (v > 0.0)
    sig = np.where(good, np.sqrt(np.where(good, v, 1.0)), c.gnss_default_sigma)
    lla = np.asarray(gnss.lla, float)[inside]
    inflation = _gnss_inflation(gnss, c)
    return _Fixes(gnss.stamps[inside], keyframes, levers, lla, sig * c.gnss_sigma_scale, inflation)


def _gnss_inflation(gnss: model.GnssSeries, c: SlamConfig) -> float:
    """The factor on the fixes' sigmas in the graph, ``sqrt(correlation time x fix rate)`` (at
    least 1). A receiver's errors persist for seconds (multipath held while the geometry holds,
    the atmosphere, its own tracking loops; Groves 2013, 9.4), so 5 fixes a second are not 5
    independent measurements. Weighed as correlated over 10 s (x7 at 5 Hz) they no longer bent
    the first 300 m of the university towards a multipath jump (ATE 0.036 -> 0.019 m, map RMS
    0.067 -> 0.031 m), but on the full drive (2.3 km, 34 loops) the lidar odometry drifts more
    than they then correct (ATE 0.067 -> 0.110 m, map RMS 0.060 -> 0.096 m; 2 s: 0.088 m,
    0.077 m), so the default keeps them independent. Outlier tests and the Huber kernel's
    threshold stay in reported sigmas."""
    rate = (len(gnss.stamps) - 1) / max(float(gnss.stamps[-1] - gnss.stamps[0]), 1e-9)
    return math.sqrt(max(1.0, c.gnss_correlation_time * rate))


@dataclass(frozen=True)
class _Attitudes:
    keyframe: NDArray[np.intp]  # (A,)
    up: NDArray[np.float64]  # (A,3) the map's +z in the keyframe's body frame (measured)
    sigma: NDArray[np.float64]  # (A,) [rad] per tilt axis


def _associate_gravity(gravity: GravitySeries, front: _Front, prior: MotionPrior) -> _Attitudes:
    """Tie each gravity measurement inside the registered span to the keyframe of its nearest
    sweep, turned into that keyframe's body by the lidar odometry and the gyro between them."""
    stamps = np.asarray(front.sweep_stamp)
    inside = np.flatnonzero((gravity.stamps >= stamps[0]) & (gravity.stamps <= stamps[-1]))
    keyframes = np.empty(len(inside), dtype=np.intp)
    ups = np.empty((len(inside), 3))
    nearest = np.clip(np.searchsorted(stamps, gravity.stamps[inside]), 1, max(len(stamps) - 1, 1))
    for out, (g, s) in enumerate(zip(inside, nearest, strict=True)):
        t = float(gravity.stamps[g])
        if len(stamps) == 1 or t - stamps[s - 1] < stamps[s] - t:
            s -= 1
        k = front.sweep_keyframe[s]
        at = front.sweep_pose[s][:3, :3] @ prior.delta(float(stamps[s]), t)[:3, :3]
        keyframes[out] = k
        ups[out] = front.kf_pose[k][:3, :3].T @ at @ gravity.up[g]
    return _Attitudes(keyframes, ups, gravity.sigma[inside])


def _antenna_positions(fixes: _Fixes, poses: list[NDArray[np.float64]]) -> NDArray[np.float64]:
    """(F,3) [m] where the poses put the antenna at each fix, in the poses' frame."""
    out = np.empty((len(fixes.keyframe), 3))
    for n, k in enumerate(fixes.keyframe):
        out[n] = poses[k][:3, :3] @ fixes.lever[n] + poses[k][:3, 3]
    return out


def _horizontal_sigma(fixes: _Fixes) -> NDArray[np.float64]:
    out: NDArray[np.float64] = np.hypot(fixes.sigmas[:, 0], fixes.sigmas[:, 1]) / math.sqrt(2.0)
    return out


def _level_transform(
    to_pose: NDArray[np.float64], from_pose: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The transform T, a turn about the vertical and a translation, with ``T @ from_pose``
    at ``to_pose``'s position and heading (their roll and pitch may differ: the frames T joins
    share "up", so it carries none of that difference; a tilt of 2.5 mrad taken into T would
    move a point 200 m from the origin by 0.5 m)."""
    turn = planar_pose(0.0, 0.0, yaw_of(to_pose) - yaw_of(from_pose))
    turn[:3, 3] = to_pose[:3, 3] - turn[:3, :3] @ from_pose[:3, 3]
    return turn


class _EnuGraph:
    """The keyframe graph solved in a local ENU frame, so the datum is free.

    GNSS fixes are positions in ENU; the map frame is tied to the trajectory by the start
    pose. Solving in ENU with the first keyframe free in position and heading, then carrying
    the solution into the map by the transform that puts the first keyframe on ``anchor``,
    estimates trajectory and datum jointly: a common offset of the fixes moves the datum,
    not the trajectory. (Solving in the map frame with fixes converted by a datum fitted
    beforehand bent the trajectory towards the datum's error: 0.64 m RMS on the university.)
    """

    def __init__(
        self,
        front: _Front,
        anchor: NDArray[np.float64],
        fixes: _Fixes,
        attitudes: _Attitudes,
        ref: Datum,
        c: SlamConfig,
    ) -> None:
        self.front, self.anchor, self.fixes, self.ref, self.c = front, anchor, fixes, ref, c
        self.attitudes = attitudes
        self.attitude_bias: NDArray[np.float64] | None = None
        self.enu = geodetic_to_local(ref, fixes.lla)  # ref has heading 0: east, north, up
        self.used = np.ones(len(fixes.keyframe), dtype=bool)
        self.loops: list[LoopResult] = []
        self.dropped_loops: list[LoopResult] = []
        sig_h = _horizontal_sigma(fixes)
        fit = fit_datum(
            _antenna_positions(fixes, front.kf_pose),
            fixes.lla,
            np.stack([sig_h, fixes.sigmas[:, 2]], 1),
            outlier_sigma=c.gnss_outlier_sigma,
        )
        # ENU <- map from the fit on the odometry alone: the first solve's starting point.
        d = fit.datum
        origin = geodetic_to_local(ref, np.array([[d.latitude, d.longitude, d.altitude]]))[0]
        enu_map = planar_pose(float(origin[0]), float(origin[1]), math.radians(d.heading_deg))
        enu_map[2, 3] = origin[2]
        self.poses_enu = [enu_map @ p for p in front.kf_pose]

    def _build(self) -> PoseGraph:
        c, front = self.c, self.front
        graph = PoseGraph(self.poses_enu)
        tilt, free_xyz, free_yaw = c.odometry_sigma_tilt, 1e3, math.pi
        att = self.attitudes
        # With gravity measured, the first keyframe's tilt is theirs to set; without, the
        # front end's start (level) holds the drive's tilt.
        start_tilt = c.start_tilt_sigma if len(att.keyframe) else tilt
        graph.add_prior(0, self.poses_enu[0], (start_tilt, start_tilt, free_yaw), (free_xyz,) * 3)
        if len(att.keyframe):
            graph.add_attitude_bias(c.attitude_bias_sigma)
        for k, up, sigma in zip(att.keyframe, att.up, att.sigma, strict=True):
            graph.add_attitude(int(k), up, float(sigma))
        odo = front.kf_pose
        for k in range(len(odo) - 1):
            rel = np.linalg.inv(odo[k]) @ odo[k + 1]
            d = float(np.linalg.norm(rel[:3, 3]))
            sxy = c.odometry_sigma_xy + c.odometry_sigma_xy_rate * d
            sz = c.odometry_sigma_z + c.odometry_sigma_z_rate * d
            syaw = c.odometry_sigma_yaw + c.odometry_sigma_yaw_rate * d
            graph.add_between(k, k + 1, rel, (tilt, tilt, syaw), (sxy, sxy, sz))
        r, t = c.loop_sigma_rotation, c.loop_sigma_xyz
        for loop in self.loops:
            graph.add_loop(loop.earlier, loop.later, loop.relative, (r, r, r), (t, t, t))
        f = self.fixes
        for n in np.flatnonzero(self.used):
            sigmas = f.sigmas[n] * f.inflation
            factor = GnssFactor(int(f.keyframe[n]), self.enu[n], f.lever[n], sigmas)
            graph.add_gnss(factor, huber=c.gnss_huber / f.inflation)
        return graph

    def solve(self) -> list[NDArray[np.float64]]:
        """Solve; loop closures the solution contradicts (residual beyond
        ``loop_outlier_sigma``) are dropped and the graph solved again. Returns the keyframe
        poses in the map frame."""
        graph = self._build()
        self.poses_enu = graph.optimize(max_iterations=self.c.optimizer_iterations)
        if self.loops:
            keep = graph.loop_errors() <= self.c.loop_outlier_sigma
            if not keep.all():
                self.dropped_loops += [lp for lp, k in zip(self.loops, keep, strict=True) if not k]
                self.loops = [lp for lp, k in zip(self.loops, keep, strict=True) if k]
                graph = self._build()
                self.poses_enu = graph.optimize(max_iterations=self.c.optimizer_iterations)
        self.attitude_bias = graph.attitude_bias()
        # ENU <- map: the transform that puts the first keyframe at the anchor.
        self.enu_map = _level_transform(self.poses_enu[0], self.anchor)
        map_enu = np.linalg.inv(self.enu_map)
        return [map_enu @ p for p in self.poses_enu]

    def residuals(self) -> NDArray[np.float64]:
        """(F,2) horizontal GNSS residuals (east, north) [sigmas] at the current solution."""
        pred = _antenna_positions(self.fixes, self.poses_enu)
        out: NDArray[np.float64] = (pred[:, :2] - self.enu[:, :2]) / _horizontal_sigma(self.fixes)[
            :, None
        ]
        return out

    def datum(self) -> Datum:
        lat, lon, alt = enu_to_geodetic(self.ref, self.enu_map[:3, 3]).tolist()
        heading = math.degrees(yaw_of(self.enu_map))
        return Datum(lat, lon, alt, (heading + 180.0) % 360.0 - 180.0)


def _trajectory(
    stamps: NDArray[np.float64],
    kf_stamps: NDArray[np.float64],
    kf_poses: list[NDArray[np.float64]],
    prior: MotionPrior,
) -> NDArray[np.float64]:
    """A pose per stamp: the keyframes' poses carried to it by the wheel-odometry motion
    prior, from the keyframe before and the one after, blended by time, and so their roll and
    pitch. Smooth between keyframes, which the per-sweep registrations are not (their jitter
    is 1-2 cm)."""
    t = np.asarray(stamps, float)
    kt = np.asarray(kf_stamps, float)
    kp = np.asarray(kf_poses, float)
    x, y, h = prior.planar(t)
    kx, ky, kh = prior.planar(kt)
    kyaw = np.arctan2(kp[:, 1, 0], kp[:, 0, 0])

    def carried(k: NDArray[np.intp]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        c, s = np.cos(kh[k]), np.sin(kh[k])
        dx, dy = x - kx[k], y - ky[k]
        local = np.stack([c * dx + s * dy, -s * dx + c * dy], axis=1)
        position = kp[k, :3, 3] + np.einsum("nij,nj->ni", kp[k, :3, :2], local)
        return position, kyaw[k] + (h - kh[k])

    after = np.searchsorted(kt, t, side="right")
    k0 = np.maximum(after - 1, 0)
    k1 = np.minimum(after, len(kt) - 1)
    p0, yaw0 = carried(k0)
    p1, yaw1 = carried(k1)
    span = kt[k1] - kt[k0]
    w = np.where(span > 0.0, np.clip((t - kt[k0]) / np.where(span > 0.0, span, 1.0), 0.0, 1.0), 0.0)
    dyaw = (yaw1 - yaw0 + np.pi) % (2.0 * np.pi) - np.pi
    kroll = np.arctan2(kp[:, 2, 1], kp[:, 2, 2])
    kpitch = -np.arcsin(np.clip(kp[:, 2, 0], -1.0, 1.0))
    roll = (1.0 - w) * kroll[k0] + w * kroll[k1]
    pitch = (1.0 - w) * kpitch[k0] + w * kpitch[k1]
    out = np.zeros((len(t), 4, 4))
    out[:, :3, :3] = rpy_matrices(roll, pitch, yaw0 + w * dyaw)
    out[:, :3, 3] = (1.0 - w)[:, None] * p0 + w[:, None] * p1
    out[:, 3, 3] = 1.0
    return out


def estimate(
    drive: DriveSource,
    *,
    lidar_pose: NDArray[np.float64],
    gnss_antenna: NDArray[np.float64],
    start: tuple[float, float, float],
    config: SlamConfig = SlamConfig(),
    progress: Progress | None = None,
    imu_pose: NDArray[np.float64] | None = None,
) -> MappingResult:
    """Estimate the drive's trajectory, keyframes, loop closures and datum (module docstring).

    Args:
        drive: the recorded drive (``truth`` is never read).
        lidar_pose: 4x4 base_link <- lidar (``RobotSpec.lidar.pose``).
        gnss_antenna: base_link <- antenna, 4x4 (``RobotSpec.gnss.pose``) or its (3,) [m]
            position.
        start: x [m], y [m], yaw [rad] in map of the robot at the drive's first odometry
            message: the station's loading pose.
        config: parameters.
        progress: called with (sweeps read, sweeps in the drive) while the sweeps stream.
        imu_pose: 4x4 base_link <- imu (``RobotSpec.imu.pose``); identity when None.
    Returns:
        The estimate: a pose for every sweep of the drive (``trajectory``), the registered
        sweeps' lidar odometry (``odometry_only``), keyframes, loop closures, the datum;
        ``stats`` holds timings [s] per stage and counts.
    Raises:
        MappingError: no sweeps, no wheel odometry, fewer than 3 GNSS fixes, stamps that do
            not increase, malformed arrays; the message names the drive and the topic.
    """
    t_start = time.perf_counter()
    _check_inputs(drive)
    antenna = np.asarray(gnss_antenna, float)
    antenna = antenna[:3, 3] if antenna.shape == (4, 4) else antenna.reshape(3)
    lidar = np.asarray(lidar_pose, float)
    imu_mount = np.eye(4) if imu_pose is None else np.asarray(imu_pose, float)
    start_pose = planar_pose(*start)
    c = config
    imu = drive.imu if len(drive.imu.stamps) >= 2 else None
    prior = MotionPrior(drive.odometry, imu, imu_mount, gyro_yaw=c.gyro_yaw)
    gravity = (
        gravity_directions(
            imu,
            drive.odometry,
            imu_mount,
            window=c.gravity_window,
            sigma_floor=c.gravity_sigma_floor,
            max_deviation=c.gravity_max_deviation,
        )
        if imu is not None
        else GravitySeries(np.zeros(0), np.zeros((0, 3)), np.zeros(0))
    )
    stats: dict[str, float] = {}

    t0 = time.perf_counter()
    front = _run_odometry(drive, prior, gravity, lidar, start_pose, c, progress)
    stats["time_odometry_s"] = time.perf_counter() - t0

    # Solve 1: odometry + GNSS, the datum free; then drop the fixes that disagree.
    t0 = time.perf_counter()
    fixes = _associate_fixes(drive, front, prior, antenna, c)
    if len(fixes.keyframe) < 3:
        raise MappingError(
            f"drive {drive.path}: {len(fixes.keyframe)} GNSS fixes (/gnss/fix) fall within the "
            "lidar sweeps' time span; the datum needs at least 3"
        )
    lat, lon, alt = (float(v) for v in fixes.lla[0])
    attitudes = _associate_gravity(gravity, front, prior)
    graph = _EnuGraph(front, front.kf_pose[0], fixes, attitudes, Datum(lat, lon, alt, 0.0), c)
    poses = graph.solve()
    graph.used = np.linalg.norm(graph.residuals(), axis=1) <= c.gnss_outlier_sigma
    stats["time_graph_s"] = time.perf_counter() - t0

    # Loop closures on the GNSS-aided estimate.
    t0 = time.perf_counter()
    positions = np.array([p[:3, 3] for p in poses])
    steps = np.linalg.norm(np.diff(np.array([p[:3, 3] for p in front.kf_pose]), axis=0), axis=1)
    travelled = np.concatenate([[0.0], np.cumsum(steps)])
    candidates = loop_candidates(
        positions,
        travelled,
        radius=c.loop_radius,
        min_travel=c.loop_min_travel,
        spacing=c.loop_spacing,
    )
    verifier = LoopVerifier(
        front.kf_points,
        submap_keyframes=c.loop_submap_keyframes,
        submap_voxel=c.loop_submap_voxel,
        voxel=c.loop_voxel,
        normal_neighbors=c.normal_neighbors,
        max_correspondence=c.loop_max_correspondence,
        inlier_distance=c.loop_inlier_distance,
        min_overlap=c.loop_min_overlap,
        max_correction=c.loop_max_correction,
        max_iterations=c.max_iterations,
    )
    results = [verifier.verify(i, j, poses) for i, j in candidates]
    graph.loops = [r for r in results if r.accepted]
    stats["time_loops_s"] = time.perf_counter() - t0

    # Solve 2: with the loop closures, without the GNSS outliers.
    t0 = time.perf_counter()
    poses = graph.solve()
    inliers = np.linalg.norm(graph.residuals(), axis=1)[graph.used]
    stats["time_graph_s"] += time.perf_counter() - t0

    t0 = time.perf_counter()
    kf_stamps = np.asarray(front.kf_stamp)
    all_stamps = np.asarray(front.all_stamps)
    trajectory = _trajectory(all_stamps, kf_stamps, poses, prior)
    keyframes = tuple(
        model.Keyframe(index=i, stamp=t, pose=p, points=pts)
        for i, t, p, pts in zip(front.kf_index, front.kf_stamp, poses, front.kf_points, strict=True)
    )
    stats["time_trajectory_s"] = time.perf_counter() - t0
    sig_h = _horizontal_sigma(fixes)[graph.used]
    bias = graph.attitude_bias if graph.attitude_bias is not None else np.full(2, math.nan)
    stats.update(
        sweeps=float(drive.scan_count),
        sweeps_used=float(len(front.sweep_index)),
        sweeps_registered=float(front.registered),
        keyframes=float(len(keyframes)),
        loop_candidates=float(len(results)),
        loops_accepted=float(len(graph.loops)),
        loops_rejected=float(len(results) - len(graph.loops)),
        loops_dropped_by_graph=float(len(graph.dropped_loops)),
        gnss_fixes=float(len(fixes.keyframe)),
        gnss_used=float(np.count_nonzero(graph.used)),
        gnss_rejected=float(len(graph.used) - np.count_nonzero(graph.used)),
        gnss_rms_m=float(np.sqrt(np.mean((inliers * sig_h) ** 2))) if len(inliers) else math.nan,
        attitude_factors=float(len(attitudes.keyframe)),
        attitude_bias_x_rad=float(bias[0]),
        attitude_bias_y_rad=float(bias[1]),
        time_total_s=time.perf_counter() - t_start,
    )
    log.info("mapping estimate: %s", stats)
    stamps = np.asarray(front.sweep_stamp)
    return MappingResult(
        trajectory=model.PoseSeries(stamps=all_stamps, poses=trajectory),
        keyframes=keyframes,
        loop_closures=tuple((r.earlier, r.later) for r in graph.loops),
        datum=graph.datum(),
        odometry_only=model.PoseSeries(stamps=stamps, poses=np.array(front.sweep_pose)),
        stats=stats,
    )
