"""Lidar odometry: each sweep registered point-to-plane against a local map of recent keyframes.

Scan-to-map registration as in LOAM (Zhang & Singh, "LOAM: Lidar Odometry and Mapping in
Real-time", RSS 2014) and KISS-ICP (Vizzo et al., "KISS-ICP: In Defense of Point-to-Point ICP",
RA-L 2023): the sweep, voxel-downsampled, is aligned with point-to-plane ICP (Chen & Medioni,
"Object modelling by registration of multiple range images", 1992) to a local map, starting from
the motion prior (wheel odometry). The registration itself is small_gicp's
(Koide, "small_gicp: Efficient and parallel algorithms for point cloud registration", JOSS
2024), one thread.

The local map is a small_gicp ``GaussianVoxelMap`` fed with keyframe clouds and trimmed by
least-recently-used voxels; every ``rebuild_distance`` of travel its voxel centroids within
``map_radius`` become the registration target, with normals estimated over the accumulated
map. Normals from the map rather than from one sweep matter for a 16-beam lidar: a single
sweep's ground is a set of rings, and point-to-plane or GICP against rings drags the estimate
back along the rings (the ring bias measured on the university drive: 0.2 m per sweep).

The registration estimates all six degrees of freedom: roll and pitch are the lidar's, from a
prior that turns the previous sweep's pose by the gyro's roll and pitch rates. Nothing here
believes an absolute tilt: an IMU's attitude filter takes braking and cornering for tilt (up to
22 mrad on the university drive), and a tilt error of 5 mrad puts the ground 0.1 m off 20 m
away, which the grid reads as a step. What keeps the tilt from drifting over the drive is
gravity in the pose graph (`xiaomanlv_mapping.gravity`, `xiaomanlv_mapping.posegraph`), with
the uncertainty it really has.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import small_gicp
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from xiaomanlv_core.geometry import planar_pose
from xiaomanlv_mapping.model import ImuSeries, MappingError, OdometrySeries


class MotionPrior:
    """Body motion between two stamps from the wheel odometry and the IMU's gyro.

    Translation comes from the wheel odometry, heading change from the wheel odometry or the
    integrated gyro (``gyro_yaw``), the change of roll and pitch from the gyro's x and y rates
    (none without an IMU). The IMU's reported orientation is not used.
    In the simulator the integrated gyro lags the true heading while the turn rate changes
    (0.0033 rad against a true 0.0079 rad 0.1 s into the first turn) and the wheels' yaw does
    not, so the wheels are the default.

    Args:
        odometry: /wheel/odom (stamps increasing).
        imu: /imu/data, or None.
        imu_pose: 4x4 base_link <- imu.
        gyro_yaw: heading change from the gyro instead of the wheels (when there is an IMU).
    """

    def __init__(
        self,
        odometry: OdometrySeries,
        imu: ImuSeries | None,
        imu_pose: NDArray[np.float64],
        *,
        gyro_yaw: bool = False,
    ) -> None:
        self._gyro = gyro_yaw
        self._memo: dict[float, tuple[float, float, float, float]] = {}
        self._t = odometry.stamps
        self._x = odometry.poses[:, 0]
        self._y = odometry.poses[:, 1]
        self._yaw = np.unwrap(odometry.poses[:, 2])
        self._imu_t: NDArray[np.float64] | None = None
        # Integrated body rates [rad] (trapezoid): x, y for the tilt change, z for the heading.
        self._gyro_angle = np.zeros((0, 3))
        if imu is not None and len(imu.stamps) >= 2:
            rot_bi = np.asarray(imu_pose, float)[:3, :3]
            w_body = imu.angular_velocity @ rot_bi.T
            dt = np.diff(imu.stamps)[:, None]
            self._imu_t = imu.stamps
            steps = 0.5 * (w_body[1:] + w_body[:-1]) * dt
            self._gyro_angle = np.concatenate([np.zeros((1, 3)), np.cumsum(steps, axis=0)])
        self._gyro_yaw = self._gyro_angle[:, 2]
        self._heading0 = self._odom(float(self._t[0]))[3]

    def planar(
        self, stamps: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """x [m], y [m] in odom and heading [rad] (unwrapped; wheels or gyro) at ``stamps``."""
        t = np.asarray(stamps, float)
        x = np.interp(t, self._t, self._x)
        y = np.interp(t, self._t, self._y)
        if self._imu_t is None or not self._gyro:
            heading = np.interp(t, self._t, self._yaw)
        else:
            heading = np.interp(t, self._imu_t, self._gyro_yaw)
        return x, y, heading

    def _odom(self, t: float) -> tuple[float, float, float, float]:
        """x, y, wheel yaw and heading at ``t``; the last two stamps asked are remembered
        (consecutive sweeps ask for the same stamp twice)."""
        hit = self._memo.get(t)
        if hit is not None:
            return hit
        x = float(np.interp(t, self._t, self._x))
        y = float(np.interp(t, self._t, self._y))
        wheel = float(np.interp(t, self._t, self._yaw))
        if self._imu_t is None or not self._gyro:
            heading = wheel
        else:
            heading = float(np.interp(t, self._imu_t, self._gyro_yaw))
        if len(self._memo) >= 2:
            self._memo.pop(next(iter(self._memo)))
        self._memo[t] = (x, y, wheel, heading)
        return x, y, wheel, heading

    def odom_pose(self, t: float) -> NDArray[np.float64]:
        """4x4 planar pose in the odom frame at ``t`` (heading from the wheels or the gyro,
        counted from the wheels' first heading)."""
        x, y, _, heading = self._odom(t)
        return planar_pose(x, y, float(self._yaw[0]) + heading - self._heading0)

    def odom_poses(self, stamps: NDArray[np.float64]) -> NDArray[np.float64]:
        """(K, 4, 4) planar poses in the odom frame at ``stamps``: the vectorised
        `odom_pose` (the motion within a sweep, for deskewing it)."""
        x, y, heading = self.planar(stamps)
        yaw = float(self._yaw[0]) + heading - self._heading0
        c, s = np.cos(yaw), np.sin(yaw)
        out = np.zeros((len(x), 4, 4))
        out[:, 0, 0], out[:, 0, 1], out[:, 1, 0], out[:, 1, 1] = c, -s, s, c
        out[:, 0, 3], out[:, 1, 3] = x, y
        out[:, 2, 2] = out[:, 3, 3] = 1.0
        return out

    def delta(self, t0: float, t1: float) -> NDArray[np.float64]:
        """4x4 base_link(t0) <- base_link(t1): the wheels' planar move in the body, turned by
        the heading change and by the gyro's roll and pitch change (none without an IMU).
        Between two sweeps the rotation is small, so the rates' integrals are taken as one
        rotation vector (a prior for the registration, which refines it)."""
        x0, y0, w0, h0 = self._odom(t0)
        x1, y1, _, h1 = self._odom(t1)
        c, s = math.cos(w0), math.sin(w0)
        dx, dy = x1 - x0, y1 - y0
        out = planar_pose(c * dx + s * dy, -s * dx + c * dy, h1 - h0)
        if self._imu_t is not None:
            tilt = [
                float(np.interp(t1, self._imu_t, a) - np.interp(t0, self._imu_t, a))
                for a in (self._gyro_angle[:, 0], self._gyro_angle[:, 1])
            ]
            out[:3, :3] = Rotation.from_rotvec([tilt[0], tilt[1], h1 - h0]).as_matrix()
        return out


@dataclass(frozen=True)
class Registration:
    pose: NDArray[np.float64]  # 4x4 map <- base_link
    registered: bool  # False: the prior was kept (too few points or an implausible result)
    inliers: int  # source points matched within the correspondence distance
    iterations: int


class LidarOdometry:
    """Scan-to-local-map point-to-plane odometry (see module docstring).

    Args:
        start: 4x4 map <- base_link of the first sweep.
        voxel: [m] downsampling of each sweep before registration.
        map_voxel: [m] voxel of the local map (its centroids are the registration target).
        map_radius: [m] target points kept around the robot.
        map_horizon: keyframe insertions a voxel survives without being refreshed.
        rebuild_distance: [m] travel between rebuilds of the target.
        normal_neighbors: neighbours for the target's normals.
        max_correspondence: [m] point pairs farther apart are ignored.
        max_iterations: ICP iterations per sweep.
        max_correction: [m] a registration that moves the prior by more is rejected.
        min_points: a sweep with fewer points after downsampling keeps the prior.
        max_points: at most this many downsampled points are registered (an even thinning of
            the voxel centroids; 0: all). The cost of a registration grows with the points;
            1500 of the ~3000 centroids of a university sweep gave the same drift.
    """

    def __init__(
        self,
        start: NDArray[np.float64],
        *,
        voxel: float,
        map_voxel: float,
        map_radius: float,
        map_horizon: int,
        rebuild_distance: float,
        normal_neighbors: int,
        max_correspondence: float,
        max_iterations: int,
        max_correction: float,
        min_points: int,
        max_points: int = 0,
    ) -> None:
        self.pose = np.asarray(start, float).copy()
        self.max_points = max_points
        self.map_voxel = map_voxel
        self.voxel = voxel
        self.map_radius = map_radius
        self.rebuild_distance = rebuild_distance
        self.normal_neighbors = normal_neighbors
        self.max_correspondence = max_correspondence
        self.max_iterations = max_iterations
        self.max_correction = max_correction
        self.min_points = min_points
        self._map = small_gicp.GaussianVoxelMap(map_voxel)
        self._map.set_lru(horizon=map_horizon, clear_cycle=10)
        self._target: small_gicp.PointCloud | None = None
        self._tree: small_gicp.KdTree | None = None
        self._built_at: NDArray[np.float64] | None = None

    @property
    def has_map(self) -> bool:
        return self._target is not None

    def register(self, points: NDArray[np.float64], delta: NDArray[np.float64]) -> Registration:
        """Register one sweep, all six degrees of freedom.

        Args:
            points: (N,3) [m] the sweep in base_link, float64.
            delta: 4x4 motion prior base_link(previous sweep) <- base_link(this sweep).
        Returns:
            The sweep's pose (also kept as ``self.pose``) and how the registration went.
        """
        guess = self.pose @ delta
        source = small_gicp.voxelgrid_sampling(points, self.voxel)
        if self.max_points and source.size() > self.max_points:
            step = source.size() / self.max_points
            keep = (np.arange(self.max_points) * step).astype(np.intp)
            source = small_gicp.PointCloud(source.points()[keep])
        if self._target is None or source.size() < self.min_points:
            self.pose = guess
            return Registration(guess, False, 0, 0)
        result = small_gicp.align(
            self._target,
            source,
            self._tree,
            guess,
            registration_type="PLANE_ICP",
            max_correspondence_distance=self.max_correspondence,
            num_threads=1,
            max_iterations=self.max_iterations,
        )
        pose = np.asarray(result.T_target_source, float)
        moved = float(np.linalg.norm(pose[:3, 3] - guess[:3, 3]))
        if moved > self.max_correction or result.num_inliers < self.min_points:
            self.pose = guess
            return Registration(guess, False, int(result.num_inliers), int(result.iterations))
        self.pose = pose
        return Registration(pose, True, int(result.num_inliers), int(result.iterations))

    def insert(self, points: NDArray[np.float64], pose: NDArray[np.float64]) -> None:
        """Add a keyframe's points (base_link, float64) at ``pose`` to the local map (thinned to
        its voxel first: the centroids average over keyframes anyway, and inserting 4x the
        points cost 10 % more time for no better drift); rebuild the target when the robot
        has moved ``rebuild_distance`` since the last build."""
        self._map.insert(small_gicp.voxelgrid_sampling(points, self.map_voxel), pose)
        here = pose[:3, 3]
        if (
            self._built_at is not None
            and float(np.linalg.norm(here - self._built_at)) < self.rebuild_distance
        ):
            return
        centroids = self._map.voxel_points()[:, :3]
        near = np.einsum("ij,ij->i", centroids[:, :2] - here[:2], centroids[:, :2] - here[:2])
        centroids = np.ascontiguousarray(centroids[near < self.map_radius**2])
        if len(centroids) < self.normal_neighbors:
            raise MappingError(
                f"lidar odometry: the local map around ({here[0]:.1f}, {here[1]:.1f}) m holds "
                f"{len(centroids)} points; the sweeps hold too few returns to map"
            )
        target = small_gicp.PointCloud(centroids)
        tree = small_gicp.KdTree(target, num_threads=1)
        small_gicp.estimate_normals(
            target, tree, num_neighbors=self.normal_neighbors, num_threads=1
        )
        self._target, self._tree, self._built_at = target, tree, here.copy()
