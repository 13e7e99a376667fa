"""Configuration of the localiser: :class:`LocalizerConfig`, every default of the ``localizer``
node (config/ YAML files only override). Factories (:func:`tile_map_for`, ...) in the cores
unpack it into keyword arguments, so a core is built in a test without a config file.
"""

from __future__ import annotations

from dataclasses import dataclass

from xiaomanlv_core.config import ConfigError, param, validate_fields
from xiaomanlv_core.frames import BASE_LINK, MAP, ODOM

__all__ = ["LocalizerConfig"]


@dataclass(frozen=True)
class LocalizerConfig:
    """Parameters of the ``localizer`` node (``xiaomanlv_nav.localization.nodes.localizer``)."""

    # ---- the map ----------------------------------------------------------------------------
    map: str = param("", description="map directory; empty: maps/<site> (source tree, then share)")
    site: str = param("university", description="site whose map to localise in when map is empty")
    tile_radius: float = param(
        80.0, low=10.0, high=1000.0, unit="m", description="tiles within this of the robot are held"
    )  # [m]
    tile_unload_margin: float = param(
        20.0,
        low=0.0,
        high=1000.0,
        unit="m",
        description="a held tile is dropped beyond tile_radius + this (no reload at a boundary)",
    )  # [m]
    map_voxel: float = param(
        0.4, low=0.05, high=5.0, unit="m", description="map tiles are downsampled to this voxel"
    )  # [m]
    target_voxel: float = param(
        0.5, low=0.1, high=10.0, unit="m", description="VGICP Gaussian voxel size of the target"
    )  # [m] 1 m biased the match by 8 cm (median, seeded at the truth, university), 0.5 m 2.6 cm
    coarse_voxel: float = param(
        1.5,
        low=0.0,
        high=10.0,
        unit="m",
        description="a coarser target matched first, for a wider basin (0: none)",
    )  # [m] 0.5 m alone pulled in from 0.2 m, not from 0.45 m
    covariance_neighbors: int = param(
        10, low=5, high=100, description="neighbours of a point's covariance (map and scan)"
    )
    # ---- the scan ---------------------------------------------------------------------------
    scan_voxel: float = param(
        0.7, low=0.05, high=5.0, unit="m", description="a sweep is downsampled to this voxel"
    )  # [m] quick bench, seeds 1-3, against 0.5: rmse 0.015-0.019 m (0.021-0.028), 30 % less time
    scan_min_range: float = param(
        1.0, low=0.0, high=50.0, unit="m", description="points nearer the lidar are dropped"
    )  # [m] the robot's own body, a hand over the sensor
    scan_max_range: float = param(
        60.0, low=1.0, high=500.0, unit="m", description="points farther than this are dropped"
    )  # [m]
    min_points: int = param(
        100,
        low=10,
        high=1_000_000,
        description="a sweep with fewer points after downsampling is not registered",
    )
    # ---- registration (small_gicp VGICP) ------------------------------------------------------
    max_correspondence_distance: float = param(
        1.0,
        low=0.05,
        high=10.0,
        unit="m",
        description="points farther from the map are outliers (people, new obstacles)",
    )  # [m]
    max_iterations: int = param(20, low=1, high=200, description="registration iterations")
    rotation_epsilon: float = param(
        0.1, low=1e-4, high=10.0, unit="deg", description="converged below this rotation step"
    )  # [deg]
    translation_epsilon: float = param(
        0.001, low=1e-6, high=1.0, unit="m", description="converged below this translation step"
    )  # [m]
    covariance_scale: float = param(
        4.0,
        low=0.01,
        high=1e6,
        description="factor on the inverse Hessian (scan points' errors are correlated)",
    )
    min_position_std: float = param(
        0.02, low=0.0, high=10.0, unit="m", description="floor of the reported position std"
    )  # [m]
    min_rotation_std: float = param(
        0.1, low=0.0, high=90.0, unit="deg", description="floor of the reported rotation std"
    )  # [deg]
    max_std: float = param(
        10.0,
        low=0.1,
        high=1e3,
        unit="m",
        description="std reported along a direction the scan does not constrain",
    )  # [m]; a rotation's is max_std / 10 m [rad] (registration.LEVER)
    min_constraint: float = param(
        5.0,
        low=0.0,
        high=1e6,
        unit="points",
        description="a direction fewer points' surfaces face (sum of squared cosines) is free",
    )
    remap_std: float = param(
        0.05,
        low=0.0,
        high=10.0,
        unit="m",
        description="along a direction the match pins no better than this std, keep the "
        "prediction (0: never)",
    )  # [m] the accuracy asked of the fused pose (issue 15: rmse 0.05 m); rotations at 10 m
    # ---- accept / state ---------------------------------------------------------------------
    ok_inlier_ratio: float = param(
        0.6, low=0.0, high=1.0, description="OK needs at least this share of points on the map"
    )
    lost_inlier_ratio: float = param(
        0.3, low=0.0, high=1.0, description="a match with fewer points on the map is rejected"
    )
    max_ok_position_std: float = param(
        0.3, low=0.001, high=100.0, unit="m", description="OK needs a position std below this"
    )  # [m] the largest of the horizontal covariance's axes
    max_ok_yaw_std: float = param(
        1.0, low=0.001, high=180.0, unit="deg", description="OK needs a yaw std below this"
    )  # [deg]
    max_correction: float = param(
        1.0,
        low=0.01,
        high=100.0,
        unit="m",
        description="a match farther than this from the odometry's prediction is rejected",
    )  # [m]
    max_yaw_correction: float = param(
        5.0,
        low=0.01,
        high=180.0,
        unit="deg",
        description="a match turned more than this from the prediction is rejected",
    )  # [deg]
    sparse_scan_ratio: float = param(
        0.5,
        low=0.0,
        high=1.0,
        unit="",
        description="a sweep with fewer points than this share of the usual is DEGRADED",
    )
    lost_after: float = param(
        0.5,
        low=0.0,
        high=10.0,
        unit="s",
        description="LOST after rejecting every sweep for this long",
    )  # [s] of sweep stamps; with 10 Hz sweeps LOST is said within lost_after + 0.1 s
    # ---- the node -----------------------------------------------------------------------------
    map_frame: str = param(MAP, description="the prior map's frame (REP 105)")
    odom_frame: str = param(ODOM, description="the odometry frame (REP 105)")
    base_frame: str = param(BASE_LINK, description="the robot's body frame (REP 105)")
    use_integrity_monitor: bool = param(
        True,
        description="judge matches with integrity.IntegrityMonitor (odometry, GNSS); "
        "false: the localiser's built-in rules",
    )
    use_global_search: bool = param(
        True, description="start and recover from GNSS by global_search.GlobalSearch"
    )
    transform_tolerance: float = param(
        0.2,
        low=0.0,
        high=5.0,
        unit="s",
        description="map -> odom is stamped this far after its sweep (as AMCL does)",
    )  # [s] so map -> base_link can be looked up until the next sweep's correction
    tf_wait: float = param(
        0.3,
        low=0.0,
        high=5.0,
        unit="s",
        description="a sweep waits this long for odom -> base_link to cover it",
    )  # [s] on the ROS clock
    prior_timeout: float = param(
        0.5,
        low=0.01,
        high=10.0,
        unit="s",
        description="/odometry/filtered older than this at a sweep's stamp is not used as prior",
    )  # [s]
    tf_cache: float = param(
        10.0, low=1.0, high=600.0, unit="s", description="transforms kept for lookups"
    )  # [s]
    diagnostics_rate: float = param(
        1.0, low=0.1, high=10.0, unit="Hz", description="/diagnostics per second (steady clock)"
    )  # [Hz]

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.lost_inlier_ratio > self.ok_inlier_ratio:
            raise ConfigError(
                f"parameter 'lost_inlier_ratio' = {self.lost_inlier_ratio} must not exceed "
                f"'ok_inlier_ratio' = {self.ok_inlier_ratio}"
            )
        if self.scan_min_range >= self.scan_max_range:
            raise ConfigError(
                f"parameter 'scan_min_range' = {self.scan_min_range} must be below "
                f"'scan_max_range' = {self.scan_max_range}"
            )
        frames = {"map_frame": self.map_frame, "odom_frame": self.odom_frame}
        frames["base_frame"] = self.base_frame
        for name, value in frames.items():
            if not value or any(c.isspace() or ord(c) < 32 for c in value):
                raise ConfigError(f"parameter '{name}' = {value!r} is not a frame name")
        if len(set(frames.values())) != 3:
            raise ConfigError(f"parameters map_frame, odom_frame, base_frame must differ: {frames}")
