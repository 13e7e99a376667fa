"""Global localisation on the prior map: where is the robot, heading unknown, from GNSS and a scan.

Two stages, the scheme of Cartographer's global relocalisation:

1. **Branch-and-bound over position and heading in 2D** (Hess, Kohler, Rapp, Andor, "Real-Time
   Loop Closure in 2D LIDAR SLAM", ICRA 2016, section V). The map's obstacles (points higher than
   ``min_height`` above the local ground) are rasterised at ``resolution`` into a likelihood
   grid, ``exp(-d^2 / 2 sigma^2)`` of the distance ``d`` to the nearest obstacle cell. The
   search window is the GNSS fix's ``window_sigmas``-sigma box, every heading on the full
   circle at the step that moves the farthest scan point by one cell. A candidate covering
   ``2^h x 2^h`` offsets at one heading is bounded by the mean over the scan's obstacle points
   of the grid max-filtered over ``2^h x 2^h`` cells (the paper's precomputation grids), and
   the depth-first search keeps the ``hypotheses`` best *distinct* leaves (farther apart than
   ``distinct_distance`` or ``distinct_heading``), pruning with the worst of them: so the
   runner-up that the ambiguity test needs comes out of the same search.
2. **3D refinement by registration**: each hypothesis seeds small_gicp's VGICP
   (Koide, "small_gicp", JOSS 2024) of the whole scan against the map around it; its score is
   the share of the scan's obstacle points with a map point within ``inlier_distance`` (ground
   points are left out: ground matches anywhere).

**Confidence** is reported only when the best refined hypothesis clearly beats every distinct
other (its fitness at least ``min_fitness`` and each other's at most ``max_ratio`` of it), lies
inside the GNSS ellipse (Mahalanobis, ``gnss_gate_sigmas``), and the scan has at least
``min_points`` obstacle points; otherwise the result names the reason: too few points, a
symmetric or feature-poor place (a runner-up as good), a poor match, or disagreement with GNSS.
A wrong confident start is the one failure a robot cannot recover from by itself, so every
doubt says "not confident" and the localiser simply searches again with the next scan.

Frames: the scan in base_link (deskewed, levelled by the IMU's roll and pitch when given), GNSS
and the map in the map frame (REP 105); metres, radians. Pure Python (numpy, scipy, numba,
small_gicp); the branch-and-bound kernel is compiled with numba.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numba
import numpy as np
import small_gicp
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage
from scipy.spatial import cKDTree

from xiaomanlv_core.config import ConfigError, param, validate_fields
from xiaomanlv_core.geometry import pose_matrix, rpy_matrix, wrap_angle, yaw_of

__all__ = ["GlobalSearch", "GlobalSearchConfig", "Hypothesis", "PreparedScan", "SearchResult"]

# Reasons a search is not confident (SearchResult.reason), stable strings for logs and tests.
CONFIDENT = "confident"
TOO_FEW_POINTS = "too few points"
NO_MAP = "no map near the GNSS fix"
POOR_MATCH = "poor match"
AMBIGUOUS = "ambiguous: a distinct hypothesis matches almost as well"
OUTSIDE_GNSS = "best match outside the GNSS ellipse"
BAD_GNSS = "no usable GNSS fix"


@dataclass(frozen=True)
class GlobalSearchConfig:
    """Parameters of :class:`GlobalSearch` (module docstring); defaults tuned on the shipped
    maps with the simulator's 16-beam lidar and 1 m GNSS."""

    resolution: float = param(
        0.2, low=0.05, high=2.0, unit="m", description="finest branch-and-bound grid cell"
    )  # [m]
    likelihood_sigma: float = param(
        0.25, low=0.01, high=5.0, unit="m", description="width of an obstacle's likelihood"
    )  # [m]
    min_height: float = param(
        0.5, low=0.0, high=5.0, unit="m", description="obstacles start this high above ground"
    )  # [m]
    max_height: float = param(
        30.0, low=0.5, high=200.0, unit="m", description="obstacles end this high above ground"
    )  # [m]
    ground_cell: float = param(
        2.0, low=0.2, high=20.0, unit="m", description="cell of the map's local ground height"
    )  # [m]
    max_range: float = param(
        40.0, low=5.0, high=300.0, unit="m", description="scan points farther are not used"
    )  # [m]
    max_scan_points: int = param(
        800, low=50, high=100_000, description="obstacle cells of the scan scored in 2D at most"
    )
    window_sigmas: float = param(
        3.0, low=1.0, high=10.0, description="search half-window in GNSS standard deviations"
    )
    min_window: float = param(
        4.0, low=0.0, high=200.0, unit="m", description="smallest search half-window"
    )  # [m]
    max_window: float = param(
        30.0, low=0.5, high=500.0, unit="m", description="largest search half-window"
    )  # [m]
    depth: int = param(
        6, low=1, high=12, description="branch-and-bound levels: coarsest cell 2^depth cells"
    )
    hypotheses: int = param(
        5, low=2, high=50, description="distinct best hypotheses kept and refined"
    )
    min_bnb_score: float = param(
        0.2, low=0.0, high=1.0, description="2D score below which a hypothesis is not kept"
    )
    distinct_distance: float = param(
        2.0, low=0.1, high=100.0, unit="m", description="hypotheses this far apart are distinct"
    )  # [m]
    distinct_heading: float = param(
        0.1745, low=0.001, high=math.pi, unit="rad", description="or this far apart in heading"
    )  # [rad] 10 deg
    refine_voxel: float = param(
        0.5, low=0.05, high=5.0, unit="m", description="scan voxel for the 3D refinement"
    )  # [m]
    map_voxel: float = param(
        0.3, low=0.05, high=5.0, unit="m", description="map voxel for the 3D refinement"
    )  # [m]
    target_voxel: float = param(
        1.0, low=0.1, high=10.0, unit="m", description="VGICP Gaussian voxel of the map"
    )  # [m]
    fine_target_voxel: float = param(
        0.5, low=0.05, high=10.0, unit="m", description="VGICP voxel of the final refinement"
    )  # [m]
    fine_correspondence: float = param(
        0.5, low=0.05, high=10.0, unit="m", description="its correspondence distance"
    )  # [m]
    max_correspondence: float = param(
        1.0, low=0.05, high=10.0, unit="m", description="ICP correspondence distance"
    )  # [m]
    max_refine_shift: float = param(
        1.5, low=0.1, high=20.0, unit="m", description="a refinement moving farther is undone"
    )  # [m] a branch-and-bound leaf is within a cell and a heading step of its optimum
    max_iterations: int = param(30, low=1, high=500, description="ICP iterations per hypothesis")
    normal_neighbors: int = param(
        10, low=5, high=100, description="point covariances from k neighbours (map and scan)"
    )
    inlier_distance: float = param(
        0.3, low=0.01, high=5.0, unit="m", description="a scan point this near the map fits"
    )  # [m]
    min_points: int = param(
        150, low=10, high=100_000, description="obstacle points (after voxel) a search needs"
    )
    min_fitness: float = param(
        0.45, low=0.0, high=1.0, description="share of obstacle points that fit, to be confident"
    )
    max_ratio: float = param(
        0.8,
        low=0.0,
        high=1.0,
        description="a distinct runner-up above this share of the "
        "best's fitness makes the search ambiguous",
    )
    min_misfit_ratio: float = param(
        2.0,
        low=1.0,
        high=100.0,
        description="or its share of points off the map must be this many times the best's",
    )  # where both fit well (a facade seen 2 m along: 0.87 against 0.95) the misses tell
    gnss_gate_sigmas: float = param(
        4.0, low=1.0, high=100.0, description="best pose within this Mahalanobis distance of GNSS"
    )
    crop_margin: float = param(
        10.0, low=0.0, high=200.0, unit="m", description="map kept beyond window + range"
    )  # [m]
    # ---- negative evidence: the scan's rays cross free space ---------------------------------
    free_voxel: float = param(
        0.4, low=0.05, high=5.0, unit="m", description="voxel of the map's obstacle occupancy"
    )  # [m] the map's own voxel (LocalizerConfig.map_voxel)
    free_rays: int = param(
        400, low=10, high=100_000, description="scan rays checked against the map's obstacles"
    )
    max_see_through: float = param(
        0.15,
        low=0.0,
        high=1.0,
        description="a hypothesis whose rays cross the map's obstacles more often is wrong",
    )  # share of rays; a ray ends at what it hit, so nothing the map lacks can raise it
    # ---- evidence over sweeps (hypotheses.HypothesisTracker) --------------------------------
    min_sweeps: int = param(
        3, low=1, high=100, description="sweeps a hypothesis must be scored on to be confident"
    )
    evidence_sweeps: int = param(
        10, low=1, high=1000, description="a hypothesis is judged on its last this many sweeps"
    )
    max_tracks: int = param(
        12, low=2, high=200, description="distinct hypotheses followed by odometry at most"
    )
    gnss_history: float = param(
        20.0, low=0.0, high=600.0, unit="s", description="fixes kept to judge hypotheses"
    )  # [s] longer than a multipath hold or an injected jump (4 s), so they are the minority
    gnss_min_agree: float = param(
        0.5,
        low=0.0,
        high=1.0,
        description="a confident hypothesis agrees with more than this share of the kept fixes",
    )
    odometry_drift: float = param(
        0.03, low=0.0, high=1.0, description="odometry position std per metre driven"
    )  # [m/m] wheel slip (IntegrityConfig.odometry_position_per_m)
    gnss_rule_out: float = param(
        4.0,
        low=0.0,
        high=1000.0,
        description="a rival whose mean squared Mahalanobis distance to the kept fixes exceeds "
        "the best's by more than this is no rival (0: off)",
    )  # about chi-square 1 dof at 0.95 (3.84): the fixes' mean tells two poses apart along the
    # line joining them (a rival 3.4 m along a walkway from 1.1 m fixes: 7-9 measured, so out)
    gnss_rule_out_fixes: int = param(
        5, low=1, high=1000, description="kept fixes needed before GNSS rules a rival out"
    )

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.min_height >= self.max_height:
            raise ConfigError(
                f"parameter 'min_height' = {self.min_height} must be below "
                f"'max_height' = {self.max_height}"
            )
        if self.min_window > self.max_window:
            raise ConfigError(
                f"parameter 'min_window' = {self.min_window} must not exceed "
                f"'max_window' = {self.max_window}"
            )


@dataclass(frozen=True)
class SearchResult:
    """The outcome of one global search.

    ``pose`` is the best hypothesis (4x4 map <- base_link) or None when there was none;
    ``hypotheses`` are the refined distinct hypotheses, best first, as (pose, fitness);
    ``reason`` says why the search is (not) confident (module constants).
    """

    pose: NDArray[np.float64] | None
    confident: bool
    hypotheses: list[tuple[NDArray[np.float64], float]]
    reason: str
    fitness: float = 0.0  # best hypothesis' share of fitting obstacle points
    runner_up: float = 0.0  # best distinct other's fitness
    window: tuple[float, float] = (0.0, 0.0)  # [m] half-window searched, x and y
    scan_points: int = 0  # obstacle points of the scan used
    stats: dict[str, float] = field(default_factory=dict)
    evidence: list[Hypothesis] = field(default_factory=list)  # the hypotheses' evidence


class GlobalSearch:
    """Global search on one map (module docstring).

    Args:
        target: (N,3) [m] the prior map's points in the map frame (the tiles around the robot;
            anything farther than the search window plus ``max_range`` is ignored).
        config: parameters.
    Raises:
        ValueError: ``target`` is not an (N,3) array of finite points.
    """

    def __init__(self, target: ArrayLike, config: GlobalSearchConfig | None = None) -> None:
        points = np.asarray(target, dtype=np.float64)
        if points.ndim != 2 or points.shape[1] != 3:
            raise ValueError(f"global search: target of shape {points.shape}, expected (N, 3)")
        points = points[np.isfinite(points).all(axis=1)]
        self.config = config or GlobalSearchConfig()
        self._map = np.ascontiguousarray(points)
        self._crop: _Crop | None = None

    # ---- the search ---------------------------------------------------------------------------
    def prepare(
        self,
        scan_points_base: ArrayLike,
        *,
        roll_pitch: tuple[float, float] = (0.0, 0.0),
        sensor_origin: ArrayLike = (0.0, 0.0, 0.0),
    ) -> PreparedScan | None:
        """A scan made ready for searches and :meth:`evidence` (None: not an (N,3) array).

        Args:
            scan_points_base: (N,3) [m] one deskewed scan (or several accumulated) in base_link.
            roll_pitch: [rad] base_link's tilt (the IMU's attitude); the heading is searched.
            sensor_origin: (3,) [m] the lidar's position in base_link: where its rays start.
        """
        cfg = self.config
        scan = np.asarray(scan_points_base, dtype=np.float64)
        if scan.ndim != 2 or scan.shape[1] != 3:
            return None
        scan = scan[np.isfinite(scan).all(axis=1)]
        tilt = rpy_matrix(roll_pitch[0], roll_pitch[1], 0.0)
        level = scan @ tilt.T
        rng = np.hypot(level[:, 0], level[:, 1])
        obstacle = (level[:, 2] > cfg.min_height) & (level[:, 2] < cfg.max_height)
        obstacle &= rng < cfg.max_range
        obstacles_3d = _voxel(level[obstacle], cfg.refine_voxel)
        obstacles_base = obstacles_3d @ tilt  # levelled -> base_link
        rays = obstacles_base
        if len(rays) > cfg.free_rays:
            rays = rays[np.linspace(0, len(rays) - 1, cfg.free_rays).astype(np.int64)]
        origin = np.asarray(sensor_origin, dtype=np.float64).reshape(3)
        return PreparedScan(
            level[rng < cfg.max_range],
            tilt,
            obstacles_3d,
            obstacles_base,
            rays,
            origin,
            self._ray_margins(obstacles_base, rays, origin),
        )

    def _ray_margins(
        self,
        obstacles_base: NDArray[np.float64],
        rays: NDArray[np.float64],
        origin: NDArray[np.float64],
    ) -> NDArray[np.float64]:
        """[m] how far before its end each ray may cross the map: the scan's voxel and the
        pose error a fitting point is allowed, plus the length the ray runs through the
        voxels of the surface it ends on, ``free_voxel / |cos|`` of its angle to the surface's
        normal (a ray grazing a facade runs along it for metres)."""
        cfg = self.config
        margins = np.full(len(rays), cfg.refine_voxel + cfg.inlier_distance + cfg.free_voxel)
        if len(obstacles_base) < cfg.normal_neighbors or not len(rays):
            return margins
        cloud = small_gicp.PointCloud(np.ascontiguousarray(obstacles_base))
        small_gicp.estimate_normals(cloud, num_neighbors=cfg.normal_neighbors, num_threads=1)
        normals = np.asarray(cloud.normals(), dtype=np.float64)[:, :3]
        _, index = cKDTree(obstacles_base).query(rays)
        direction = rays - origin
        direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-9)
        cosine = np.abs(np.einsum("ij,ij->i", direction, normals[index]))
        margins += cfg.free_voxel * (1.0 / np.maximum(cosine, 1e-3) - 1.0)
        return margins

    def covers(self, pose: ArrayLike) -> bool:
        """The map prepared for searching already covers what a scan at ``pose`` (4x4) sees."""
        p = np.asarray(pose, dtype=np.float64)
        reach = np.array([self.config.max_range] * 2)
        return self._crop is not None and self._crop.covers(p[:2, 3], reach)

    def evidence(self, scan: PreparedScan, pose: ArrayLike) -> tuple[float, float]:
        """(fitness, see-through) of ``pose`` (4x4 map <- base_link) for ``scan``: the share of
        its obstacle points within ``inlier_distance`` of the map and the share of its rays
        that cross the map's obstacles (:meth:`_Crop.see_through`); (0, 1) where no map is
        held around the pose. Prepares the map around the pose when it is not
        (:meth:`covers`: 0.5-2.5 s)."""
        cfg = self.config
        p = np.asarray(pose, dtype=np.float64)
        crop = self._crop
        if crop is None or not self.covers(p):
            crop = self._crop_for(p[:2, 3], np.zeros(2))
        if crop is None:
            return 0.0, 1.0
        fit = crop.fitness(p, scan.obstacles_base, cfg.inlier_distance)
        return fit, crop.see_through(p, scan.rays, scan.origin, scan.margins)

    def search(
        self,
        scan_points_base: ArrayLike | PreparedScan,
        gnss_xy_map: ArrayLike,
        gnss_cov_xy: ArrayLike,
        *,
        roll_pitch: tuple[float, float] = (0.0, 0.0),
        sensor_origin: ArrayLike = (0.0, 0.0, 0.0),
    ) -> SearchResult:
        """Search position and heading around a GNSS fix.

        Args:
            scan_points_base: (N,3) [m] one deskewed scan in base_link, or :meth:`prepare`-d.
            gnss_xy_map: (2,) [m] the fix's horizontal position in the map frame (base_link's,
                after the antenna's lever arm).
            gnss_cov_xy: (2,2) [m^2] its reported horizontal covariance.
            roll_pitch, sensor_origin: as :meth:`prepare` (unused for a prepared scan).
        Returns:
            The result; never raises on a bad scan or fix (they give a not-confident result
            naming the reason).
        """
        cfg = self.config
        centre = np.asarray(gnss_xy_map, dtype=np.float64).reshape(-1)
        cov = np.asarray(gnss_cov_xy, dtype=np.float64)
        if (
            centre.shape != (2,)
            or cov.shape != (2, 2)
            or not (np.isfinite(centre).all() and np.isfinite(cov).all())
        ):
            return SearchResult(None, False, [], BAD_GNSS)
        cov = 0.5 * (cov + cov.T)
        if np.linalg.eigvalsh(cov)[0] <= 0.0:
            return SearchResult(None, False, [], BAD_GNSS)
        window = np.clip(cfg.window_sigmas * np.sqrt(np.diag(cov)), cfg.min_window, cfg.max_window)
        win = (float(window[0]), float(window[1]))
        if isinstance(scan_points_base, PreparedScan):
            scan: PreparedScan | None = scan_points_base
        else:
            scan = self.prepare(
                scan_points_base, roll_pitch=roll_pitch, sensor_origin=sensor_origin
            )
        if scan is None or len(scan.obstacles_3d) < cfg.min_points:
            n = 0 if scan is None else len(scan.obstacles_3d)
            return SearchResult(None, False, [], TOO_FEW_POINTS, window=win, scan_points=n)
        crop = self._crop_for(centre, window)
        if crop is None:
            return SearchResult(None, False, [], NO_MAP, window=win)
        n = len(scan.obstacles_3d)
        leaves = crop.branch_and_bound(scan.obstacles_3d[:, :2], centre, window, cfg)
        if not leaves:
            return SearchResult(None, False, [], POOR_MATCH, window=win, scan_points=n)
        refined = self._refine(crop, scan, leaves)
        return self._decide(refined, centre, cov, win, n, leaves)

    # ---- stages -------------------------------------------------------------------------------
    def _crop_for(self, centre: NDArray[np.float64], window: NDArray[np.float64]) -> _Crop | None:
        """The map around ``centre`` prepared for the search (reused while it still covers it)."""
        cfg = self.config
        reach = window + cfg.max_range
        if self._crop is not None and self._crop.covers(centre, reach):
            return self._crop
        half = reach + cfg.crop_margin
        near = np.all(np.abs(self._map[:, :2] - centre) <= half, axis=1)
        points = self._map[near]
        if len(points) < cfg.normal_neighbors:
            return None
        self._crop = _Crop(points, centre, half, cfg)
        return self._crop

    def _refine(
        self,
        crop: _Crop,
        scan: PreparedScan,
        leaves: list[tuple[float, float, float, float]],
    ) -> list[Hypothesis]:
        """Each 2D hypothesis refined in 3D by ICP and scored (:meth:`evidence`); hypotheses
        that converge together are merged (the better kept), best first."""
        cfg = self.config
        source, _ = small_gicp.preprocess_points(
            np.ascontiguousarray(scan.level),
            downsampling_resolution=cfg.refine_voxel,
            num_neighbors=cfg.normal_neighbors,
            num_threads=1,
        )
        tilt = _homogeneous(scan.tilt)
        out: list[Hypothesis] = []
        for _score, x, y, yaw in leaves:
            z = crop.ground_at(x, y)
            seed = pose_matrix(x, y, z, 0.0, 0.0, yaw)  # map <- levelled base_link
            result = small_gicp.align(
                crop.target,
                source,
                seed,
                max_correspondence_distance=cfg.max_correspondence,
                num_threads=1,
                max_iterations=cfg.max_iterations,
            )
            result = small_gicp.align(
                crop.fine_target,
                source,
                np.asarray(result.T_target_source, dtype=np.float64),
                max_correspondence_distance=cfg.fine_correspondence,
                num_threads=1,
                max_iterations=cfg.max_iterations,
            )
            pose = np.asarray(result.T_target_source, dtype=np.float64) @ tilt
            fit = crop.fitness(pose, scan.obstacles_base, cfg.inlier_distance)
            # ICP runs away along a direction the scan does not constrain (a corridor): the
            # seed stands when the refinement went far or fits worse.
            start = seed @ tilt
            start_fit = crop.fitness(start, scan.obstacles_base, cfg.inlier_distance)
            moved = float(np.linalg.norm(pose[:3, 3] - start[:3, 3]))
            if moved > cfg.max_refine_shift or fit < start_fit:
                pose, fit = start, start_fit
            see = crop.see_through(pose, scan.rays, scan.origin, scan.margins)
            out.append(Hypothesis(pose, fit, see))
        out.sort(key=lambda h: -h.score)
        merged: list[Hypothesis] = []
        for h in out:
            if all(distinct(h.pose, other.pose, cfg) for other in merged):
                merged.append(h)
        return merged

    def _decide(
        self,
        refined: list[Hypothesis],
        centre: NDArray[np.float64],
        cov: NDArray[np.float64],
        window: tuple[float, float],
        scan_points: int,
        leaves: list[tuple[float, float, float, float]],
    ) -> SearchResult:
        cfg = self.config
        best = refined[0]
        runner_up = refined[1].score if len(refined) > 1 else 0.0
        d = best.pose[:2, 3] - centre
        mahalanobis = float(math.sqrt(d @ np.linalg.solve(cov, d)))
        stats = {
            "bnb_best": leaves[0][0],
            "bnb_runner_up": leaves[1][0] if len(leaves) > 1 else 0.0,
            "gnss_mahalanobis": mahalanobis,
            "see_through": best.see_through,
        }
        if best.fitness < cfg.min_fitness or best.see_through > cfg.max_see_through:
            reason = POOR_MATCH
        elif ambiguous(best.score, runner_up, cfg):
            reason = AMBIGUOUS
        elif mahalanobis > cfg.gnss_gate_sigmas:
            reason = OUTSIDE_GNSS
        else:
            reason = CONFIDENT
        return SearchResult(
            pose=best.pose,
            confident=reason == CONFIDENT,
            hypotheses=[(h.pose, h.score) for h in refined],
            reason=reason,
            fitness=best.fitness,
            runner_up=runner_up,
            window=window,
            scan_points=scan_points,
            stats=stats,
            evidence=refined,
        )


@dataclass(frozen=True)
class PreparedScan:
    """A scan ready for searching and scoring (:meth:`GlobalSearch.prepare`)."""

    level: NDArray[np.float64]  # (N,3) [m] levelled base_link, within max_range
    tilt: NDArray[np.float64]  # 3x3 levelled <- base_link
    obstacles_3d: NDArray[np.float64]  # (M,3) [m] obstacle points, levelled, voxelised
    obstacles_base: NDArray[np.float64]  # (M,3) [m] the same in base_link
    rays: NDArray[np.float64]  # (K,3) [m] ray ends checked for free space, base_link
    origin: NDArray[np.float64]  # (3,) [m] the lidar in base_link
    margins: NDArray[np.float64]  # (K,) [m] a ray may cross the map this near its end


@dataclass(frozen=True)
class Hypothesis:
    """A pose (4x4 map <- base_link) with its evidence on one scan."""

    pose: NDArray[np.float64]
    fitness: float  # share of obstacle points on the map
    see_through: float  # share of rays crossing the map's obstacles

    @property
    def score(self) -> float:
        """Fitness less the free-space violations: points on people may fit a wrong pose's
        walls, but a ray ends at what it hits, so nothing new can make a right pose's rays
        cross the map."""
        return self.fitness - self.see_through


# ---- the map around the fix ------------------------------------------------------------------
class _Crop:
    """The map within ``half`` of ``centre``: the 3D registration target (small_gicp cloud with
    normals and its k-d tree), the local ground height and the 2D obstacle likelihood grid."""

    def __init__(
        self,
        points: NDArray[np.float64],
        centre: NDArray[np.float64],
        half: NDArray[np.float64],
        cfg: GlobalSearchConfig,
    ) -> None:
        self.centre = centre.copy()
        self.half = half.copy()
        thin = small_gicp.voxelgrid_sampling(points, cfg.map_voxel)
        small_gicp.estimate_covariances(thin, num_neighbors=cfg.normal_neighbors, num_threads=1)
        self.target = small_gicp.GaussianVoxelMap(cfg.target_voxel)
        self.target.insert(thin)
        self.fine_target = small_gicp.GaussianVoxelMap(cfg.fine_target_voxel)
        self.fine_target.insert(thin)
        self.tree = cKDTree(thin.points()[:, :3])
        # Local ground: the lowest point of each ground cell, spread one cell (cells holding
        # only walls or canopy take their neighbours' ground).
        g = cfg.ground_cell
        self.origin = centre - half  # [m] corner of the grids
        gshape = np.ceil(2.0 * half / g).astype(int) + 1
        gi = np.clip(((points[:, :2] - self.origin) / g).astype(int), 0, gshape - 1)
        ground = np.full((gshape[1], gshape[0]), np.inf)
        np.minimum.at(ground, (gi[:, 1], gi[:, 0]), points[:, 2])
        ground = ndimage.minimum_filter(ground, size=3, mode="nearest")
        ground[~np.isfinite(ground)] = float(np.min(points[:, 2]))
        self.ground = ground
        self.ground_cell = g
        height = points[:, 2] - ground[gi[:, 1], gi[:, 0]]
        obstacles = points[(height > cfg.min_height) & (height < cfg.max_height), :2]
        # Likelihood grid of the obstacles (rows along y) and its max-filtered levels.
        r = cfg.resolution
        shape = np.ceil(2.0 * half / r).astype(int) + 1
        occupied = np.zeros((shape[1], shape[0]), dtype=bool)
        oi = ((obstacles - self.origin) / r).astype(int)
        inside = np.all((oi >= 0) & (oi < shape), axis=1)
        occupied[oi[inside, 1], oi[inside, 0]] = True
        if occupied.any():
            distance = ndimage.distance_transform_edt(~occupied) * r
            likelihood = np.exp(-0.5 * (distance / cfg.likelihood_sigma) ** 2)
        else:
            likelihood = np.zeros(occupied.shape)
        self.levels = _max_levels(likelihood.astype(np.float32), cfg.depth)
        self.resolution = r
        # 3D occupancy of the map's obstacles (not its ground): a scan ray that crosses one
        # before it ends is evidence against the pose (free-space negative evidence).
        solid = points[(height > cfg.min_height) & (height < cfg.max_height)]
        v = cfg.free_voxel
        if len(solid):
            low = solid.min(axis=0)
            cells = np.floor((solid - low) / v).astype(np.int64)
            occupancy = np.zeros(tuple(int(n) for n in cells.max(axis=0) + 1), dtype=np.bool_)
            occupancy[cells[:, 0], cells[:, 1], cells[:, 2]] = True
        else:
            low, occupancy = np.zeros(3), np.zeros((1, 1, 1), dtype=np.bool_)
        self.occupancy = occupancy
        self.occupancy_origin = np.asarray(low, dtype=np.float64)
        self.free_voxel = v

    def covers(self, centre: NDArray[np.float64], reach: NDArray[np.float64]) -> bool:
        return bool(np.all(np.abs(centre - self.centre) + reach <= self.half))

    def ground_at(self, x: float, y: float) -> float:
        i = int(np.clip((x - self.origin[0]) / self.ground_cell, 0, self.ground.shape[1] - 1))
        j = int(np.clip((y - self.origin[1]) / self.ground_cell, 0, self.ground.shape[0] - 1))
        return float(self.ground[j, i])

    def see_through(
        self,
        pose: NDArray[np.float64],
        rays_base: NDArray[np.float64],
        origin_base: NDArray[np.float64],
        margins: NDArray[np.float64],
    ) -> float:
        """Share of the rays from ``origin_base`` (the lidar, base_link) to ``rays_base``
        (their ends, base_link) that cross an obstacle of the map more than ``margins`` [m]
        (one a ray) before they end, at ``pose`` (map <- base_link)."""
        if not len(rays_base):
            return 0.0
        ends = rays_base @ pose[:3, :3].T + pose[:3, 3]
        start = pose[:3, :3] @ origin_base + pose[:3, 3]
        return float(
            _see_through(
                self.occupancy, self.occupancy_origin, self.free_voxel, start, ends, margins
            )
        )

    def fitness(
        self, pose: NDArray[np.float64], obstacles_base: NDArray[np.float64], distance: float
    ) -> float:
        """Share of the obstacle points (base_link) within ``distance`` of a map point."""
        moved = obstacles_base @ pose[:3, :3].T + pose[:3, 3]
        d, _ = self.tree.query(moved, distance_upper_bound=distance)
        return float(np.count_nonzero(np.isfinite(d))) / max(len(moved), 1)

    def branch_and_bound(
        self,
        scan_xy: NDArray[np.float64],
        centre: NDArray[np.float64],
        window: NDArray[np.float64],
        cfg: GlobalSearchConfig,
    ) -> list[tuple[float, float, float, float]]:
        """The best distinct (score, x, y, yaw) leaves, best first ([m], [rad], map frame)."""
        r = self.resolution
        cells = np.unique(np.round(scan_xy / r).astype(np.int64), axis=0)
        if len(cells) > cfg.max_scan_points:
            keep = np.linspace(0, len(cells) - 1, cfg.max_scan_points).astype(np.int64)
            cells = cells[keep]
        xy = cells.astype(np.float64) * r
        reach = float(np.max(np.hypot(xy[:, 0], xy[:, 1])))
        step = math.acos(max(-1.0, 1.0 - r * r / (2.0 * reach * reach)))  # [rad]
        count = math.ceil(2.0 * math.pi / step)
        yaws = np.arange(count) * (2.0 * math.pi / count)
        c, s = np.cos(yaws)[:, None], np.sin(yaws)[:, None]
        rx = np.round((c * xy[:, 0] - s * xy[:, 1]) / r).astype(np.int32)
        ry = np.round((s * xy[:, 0] + c * xy[:, 1]) / r).astype(np.int32)
        # The search centre's cell in the grids and the window in cells.
        cx, cy = np.round((centre - self.origin) / r).astype(np.int64)
        wx, wy = np.ceil(window / r).astype(np.int64)
        sep_cells = cfg.distinct_distance / r
        sep_rot = max(1, round(cfg.distinct_heading / (2.0 * math.pi / count)))
        found = _bnb(
            self.levels,
            rx,
            ry,
            int(cx),
            int(cy),
            int(wx),
            int(wy),
            cfg.hypotheses,
            float(cfg.min_bnb_score),
            float(sep_cells),
            sep_rot,
        )
        out = []
        for score, a, ox, oy in found:
            x = self.origin[0] + (cx + ox) * r
            y = self.origin[1] + (cy + oy) * r
            out.append((float(score), float(x), float(y), wrap_angle(float(yaws[int(a)]))))
        return out


def _max_levels(grid: NDArray[np.float32], depth: int) -> NDArray[np.float32]:
    """(depth + 1, H, W): level h holds at (i, j) the max of ``grid[i:i+2^h, j:j+2^h]``
    (Hess et al.'s precomputation grids; beyond the edge counts as 0)."""
    levels = np.zeros((depth + 1, *grid.shape), dtype=np.float32)
    levels[0] = grid
    for h in range(1, depth + 1):
        half = 1 << (h - 1)
        prev = levels[h - 1]
        cur = prev.copy()
        cur[:, :-half] = np.maximum(prev[:, :-half], prev[:, half:])
        cur2 = cur.copy()
        cur2[:-half, :] = np.maximum(cur[:-half, :], cur[half:, :])
        levels[h] = cur2
    return levels


@numba.njit(cache=True)
def _see_through(
    occupancy: NDArray[np.bool_],
    origin: NDArray[np.float64],
    voxel: float,
    start: NDArray[np.float64],
    ends: NDArray[np.float64],
    margins: NDArray[np.float64],
) -> float:
    """Share of the rays ``start`` -> ``ends[k]`` that pass an occupied voxel of ``occupancy``
    (corner ``origin``, cubes of ``voxel``) more than ``margins[k]`` before their end."""
    nx, ny, nz = occupancy.shape
    step = 0.5 * voxel
    crossed = 0
    for k in range(ends.shape[0]):
        dx = ends[k, 0] - start[0]
        dy = ends[k, 1] - start[1]
        dz = ends[k, 2] - start[2]
        length = math.sqrt(dx * dx + dy * dy + dz * dz)
        reach = length - margins[k]
        if reach <= 0.0:
            continue
        ux, uy, uz = dx / length, dy / length, dz / length
        s = step
        while s < reach:
            i = math.floor((start[0] + s * ux - origin[0]) / voxel)
            j = math.floor((start[1] + s * uy - origin[1]) / voxel)
            m = math.floor((start[2] + s * uz - origin[2]) / voxel)
            if 0 <= i < nx and 0 <= j < ny and 0 <= m < nz and occupancy[i, j, m]:
                crossed += 1
                break
            s += step
    return crossed / max(ends.shape[0], 1)


@numba.njit(cache=True)
def _score(
    grid: NDArray[np.float32], rx: NDArray[np.int32], ry: NDArray[np.int32], a: int, x: int, y: int
) -> float:
    """Mean of ``grid`` over rotation ``a``'s scan cells shifted to cell (x, y)."""
    h, w = grid.shape
    total = 0.0
    n = rx.shape[1]
    for k in range(n):
        i = ry[a, k] + y
        j = rx[a, k] + x
        if 0 <= i < h and 0 <= j < w:
            total += grid[i, j]
    return total / n


@numba.njit(cache=True)
def _bnb(
    levels: NDArray[np.float32],
    rx: NDArray[np.int32],
    ry: NDArray[np.int32],
    cx: int,
    cy: int,
    wx: int,
    wy: int,
    keep: int,
    min_score: float,
    sep_cells: float,
    sep_rot: int,
) -> list[tuple[float, int, int, int]]:
    """Depth-first branch and bound keeping the ``keep`` best distinct leaves.

    Candidates (rotation a, offset ox, oy, level h) cover offsets [ox, ox + 2^h) x [oy, oy + 2^h)
    within [-wx, wx] x [-wy, wy] cells of (cx, cy). Returns (score, a, ox, oy), best first.
    """
    depth = levels.shape[0] - 1
    rotations = rx.shape[0]
    top = 1 << depth
    # Stack of candidates: a, ox, oy, h and bound.
    cap = rotations * ((2 * wx) // top + 2) * ((2 * wy) // top + 2) + 8 * (depth + 1) + 16
    st_a = np.empty(cap, dtype=np.int64)
    st_x = np.empty(cap, dtype=np.int64)
    st_y = np.empty(cap, dtype=np.int64)
    st_h = np.empty(cap, dtype=np.int64)
    st_s = np.empty(cap, dtype=np.float64)
    n = 0
    # Top level: scored, pushed worst first so the best is popped first.
    for a in range(rotations):
        ox = -wx
        while ox <= wx:
            oy = -wy
            while oy <= wy:
                s = _score(levels[depth], rx, ry, a, cx + ox, cy + oy)
                if s > min_score:
                    st_a[n] = a
                    st_x[n] = ox
                    st_y[n] = oy
                    st_h[n] = depth
                    st_s[n] = s
                    n += 1
                oy += top
            ox += top
    order = np.argsort(st_s[:n])
    st_a[:n] = st_a[:n][order]
    st_x[:n] = st_x[:n][order]
    st_y[:n] = st_y[:n][order]
    st_s[:n] = st_s[:n][order]
    best_s = np.full(keep, -1.0)
    best_a = np.zeros(keep, dtype=np.int64)
    best_x = np.zeros(keep, dtype=np.int64)
    best_y = np.zeros(keep, dtype=np.int64)
    held = 0
    ch_a = np.empty(4, dtype=np.int64)
    ch_x = np.empty(4, dtype=np.int64)
    ch_y = np.empty(4, dtype=np.int64)
    ch_s = np.empty(4, dtype=np.float64)
    while n > 0:
        n -= 1
        a, ox, oy, h, s = st_a[n], st_x[n], st_y[n], st_h[n], st_s[n]
        threshold = min_score
        if held == keep:
            threshold = max(threshold, best_s[keep - 1])
        if s <= threshold:
            continue
        if h == 0:
            # Insert the leaf, keeping the list distinct (the better of two near ones stays).
            near = -1
            for k in range(held):
                dr = abs(best_a[k] - a)
                dr = min(dr, rotations - dr)
                dd = math.hypot(best_x[k] - ox, best_y[k] - oy)
                if dd < sep_cells and dr < sep_rot:
                    near = k
                    break
            if near >= 0:
                if best_s[near] >= s:
                    continue
                # Replace it, then restore the order by bubbling.
                best_s[near], best_a[near], best_x[near], best_y[near] = s, a, ox, oy
                k = near
            else:
                if held < keep:
                    held += 1
                k = held - 1
                best_s[k], best_a[k], best_x[k], best_y[k] = s, a, ox, oy
            while k > 0 and best_s[k - 1] < best_s[k]:
                best_s[k - 1], best_s[k] = best_s[k], best_s[k - 1]
                best_a[k - 1], best_a[k] = best_a[k], best_a[k - 1]
                best_x[k - 1], best_x[k] = best_x[k], best_x[k - 1]
                best_y[k - 1], best_y[k] = best_y[k], best_y[k - 1]
                k -= 1
            continue
        half = 1 << (h - 1)
        m = 0
        for dx in (0, half):
            for dy in (0, half):
                x, y = ox + dx, oy + dy
                if x > wx or y > wy:
                    continue
                cs = _score(levels[h - 1], rx, ry, a, cx + x, cy + y)
                if cs > threshold:
                    ch_a[m], ch_x[m], ch_y[m], ch_s[m] = a, x, y, cs
                    m += 1
        # Push worst first.
        idx = np.argsort(ch_s[:m])
        for q in range(m):
            i = idx[q]
            if n >= cap:
                break
            st_a[n], st_x[n], st_y[n], st_h[n], st_s[n] = ch_a[i], ch_x[i], ch_y[i], h - 1, ch_s[i]
            n += 1
    out = []
    for k in range(held):
        out.append((best_s[k], best_a[k], best_x[k], best_y[k]))
    return out


def _voxel(points: NDArray[np.float64], voxel: float) -> NDArray[np.float64]:
    if len(points) == 0:
        return np.zeros((0, 3))
    return np.asarray(small_gicp.voxelgrid_sampling(points, voxel).points()[:, :3], dtype=float)


def _homogeneous(rotation: NDArray[np.float64]) -> NDArray[np.float64]:
    out = np.eye(4)
    out[:3, :3] = rotation
    return out


def ambiguous(best: float, runner_up: float, cfg: GlobalSearchConfig) -> bool:
    """A distinct runner-up scores too near the best: above ``max_ratio`` of it, and missing
    fewer than ``min_misfit_ratio`` times the best's share of points."""
    near_score = runner_up > cfg.max_ratio * best
    near_misfit = (1.0 - runner_up) < cfg.min_misfit_ratio * (1.0 - best)
    return near_score and near_misfit


def distinct(a: NDArray[np.float64], b: NDArray[np.float64], cfg: GlobalSearchConfig) -> bool:
    """Two poses are distinct hypotheses: far apart in position or in heading."""
    apart = float(np.hypot(*(a[:2, 3] - b[:2, 3])))
    turn = abs(wrap_angle(yaw_of(a[:3, :3]) - yaw_of(b[:3, :3])))
    return apart > cfg.distinct_distance or turn > cfg.distinct_heading
