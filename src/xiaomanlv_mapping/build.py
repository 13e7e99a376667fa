"""`xiaomanlv map build`: a recorded mapping drive becomes ``maps/<site>/``.

Stages, each timed:

1. open the bag (`bag.open_drive`);
2. estimate the drive (`slam.estimate`): lidar odometry with wheel/IMU priors, GNSS, loop
   closures, pose-graph optimisation; the first pose is anchored at the station's loading pose
   from the site sidecar, so the stops and station carry over in the same frame;
3. the 3D map cloud from the keyframes (`cloud.assemble_cloud`): static points at the grid's
   resolution without the points some keyframe saw through (`dynamic.remove_dynamic`: people
   who walked or stood and left), stored downsampled to ``cloud_voxel``;
4. the 2D occupancy grid derived from it at full resolution (`grid.grid_from_cloud`);
5. the route graph from the driven trajectory and the grid's free space (`routes.build_routes`).
   A stop no drivable path reaches (outside the mapped area, too far from the driven routes,
   enclosed by obstacles) is reported with the reason and marked ``unreachable`` in stops.yaml;
   the map is still written (``strict`` refuses it instead, naming every such stop). The
   station's charging pose is marked the same way (the loading pose is where the drive starts,
   so the driven routes always reach it);
6. every file written to a temporary directory that is renamed into place
   (`mapfiles.write_map`, which checks every file before anything is installed): an
   interrupted or refused build never leaves a broken map.

The sensor extrinsics (lidar, GNSS antenna) come from the robot model, the one source of truth
the simulator and Gazebo read too. The bag's ground truth, when it has one, is never read here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from xiaomanlv_core.config import param, validate_fields
from xiaomanlv_core.robot import RobotSpec
from xiaomanlv_core.site import Site
from xiaomanlv_core.types import Stop, StopSet
from xiaomanlv_mapping.bag import DriveTopics, open_drive
from xiaomanlv_mapping.cloud import assemble_cloud, downsample
from xiaomanlv_mapping.dynamic import DynamicConfig, remove_dynamic
from xiaomanlv_mapping.grid import GridConfig, grid_from_cloud
from xiaomanlv_mapping.mapfiles import write_map
from xiaomanlv_mapping.model import Grid, MappingError, MappingResult, PriorMap
from xiaomanlv_mapping.routes import (
    NarrowedEdge,
    RouteConfig,
    UnreachableStop,
    build_routes,
    unreachable_message,
)
from xiaomanlv_mapping.slam import SlamConfig, estimate

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BuildConfig:
    """Settings of a map build; each stage's own settings are in its config."""

    cloud_voxel: float = param(
        0.3, low=0.02, high=1.0, unit="m", description="voxel size of the stored 3D map cloud"
    )  # [m]
    count_voxel: float = param(
        0.5,
        low=0.05,
        high=5.0,
        unit="m",
        description="voxel the keyframe observations are counted in",
    )  # [m]
    min_observations: int = param(
        3, low=1, high=100, description="keyframes that must see a voxel for it to stay (static)"
    )
    slam: SlamConfig = field(default_factory=SlamConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    routes: RouteConfig = field(default_factory=RouteConfig)
    dynamic: DynamicConfig = field(default_factory=DynamicConfig)

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass(frozen=True)
class BuildSummary:
    path: Path  # the map directory written
    drive_duration: float  # [s] of the recorded drive
    build_time: float  # [s] wall time of the whole build
    stages: dict[str, float]  # [s] wall time per stage
    result: MappingResult
    prior: PriorMap
    unreachable: tuple[UnreachableStop, ...] = ()  # stops marked unreachable, with the reason
    narrowed: tuple[NarrowedEdge, ...] = ()  # edges given the minimum width (obstacles on them)

    @property
    def realtime_factor(self) -> float:
        """Drive time over build time (the issue's mapping speed measure)."""
        return self.drive_duration / max(self.build_time, 1e-9)


def split_covered(stops: StopSet, grid: Grid) -> tuple[StopSet, tuple[Stop, ...]]:
    """The stops (and station) inside the grid's extent, and the stops outside it. A partial
    drive maps part of a site; its stops elsewhere stay in stops.yaml but get no route.

    Raises:
        MappingError: the station itself is outside the map (the drive starts there).
    """
    rows, cols = grid.cells.shape
    x0, y0, _ = grid.origin
    x1, y1 = x0 + cols * grid.resolution, y0 + rows * grid.resolution

    def inside(s: Stop) -> bool:
        return x0 <= s.x < x1 and y0 <= s.y < y1

    for pose in (stops.loading, stops.charging):
        if not inside(pose):
            raise MappingError(
                f"station {stops.station} {pose.name} pose ({pose.x:.1f}, {pose.y:.1f}) is "
                "outside the mapped area: the mapping drive must start at the station"
            )
    kept = tuple(s for s in stops.stops if inside(s))
    return replace(stops, stops=kept), tuple(s for s in stops.stops if not inside(s))


def build_map(
    bag: Path,
    out: Path,
    *,
    site: Site,
    robot: RobotSpec,
    config: BuildConfig | None = None,
    overwrite: bool = False,
    strict: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> BuildSummary:
    """Build ``out`` (e.g. ``maps/university``) from the mapping drive recorded in ``bag``.

    Args:
        bag: a rosbag2 MCAP directory recorded by `xiaomanlv map record` or `map_recorder`.
        out: the map directory to write; replaced only when ``overwrite``.
        site: the site sidecar: the station's loading pose anchors the drive, stops carry over.
        robot: the robot model (sensor extrinsics; climbing limits and height for the grid).
        strict: refuse the map when any stop is unreachable (default: mark it and write).
        progress: called as ``progress(stage, done, total)`` while sweeps are registered.

    Raises:
        BagError: the bag is missing, corrupt or lacks a topic.
        MappingError: the drive cannot be estimated (too few sweeps, no odometry, ...); with
            ``strict``, a stop or station pose is unreachable: every unreachable one is named
            with its reason, and nothing is written.
        MapFormatError: a product that would make an invalid map file (``out`` untouched).
        MappingError: ``out`` exists and ``overwrite`` is false.
    """
    cfg = config or BuildConfig()
    if Path(out).exists() and not overwrite:  # say so now, not after minutes of work
        raise MappingError(f"{out}: a map exists there; pass overwrite to replace it")
    stages: dict[str, float] = {}
    t_start = time.perf_counter()

    def stage(name: str, t0: float) -> float:
        now = time.perf_counter()
        stages[name] = now - t0
        log.info("%s: %.1f s", name, stages[name])
        return now

    t = time.perf_counter()
    drive = open_drive(bag, DriveTopics(truth=""))  # ground truth is for evaluation only
    t = stage("open_bag", t)
    start = site.station.loading
    result = estimate(
        drive,
        lidar_pose=robot.lidar.pose,
        gnss_antenna=np.asarray(robot.gnss.pose[:3, 3], dtype=float),
        start=(start.x, start.y, start.yaw),
        config=cfg.slam,
        progress=(lambda done, total: progress("register", done, total)) if progress else None,
    )
    t = stage("estimate", t)
    # The grid needs every static return at its own resolution (a fence is one cell thin);
    # the stored cloud, for scan matching, is the same points at a coarser voxel.
    dense = assemble_cloud(
        result.keyframes,
        voxel=cfg.grid.resolution,
        min_observations=cfg.min_observations,
        count_voxel=cfg.count_voxel,
    )
    lidar = robot.lidar
    moved = remove_dynamic(
        dense, result.keyframes, lidar_pose=lidar.pose,
        ring_elevations=(lidar.vertical_min, lidar.vertical_max, lidar.vertical_samples),
        config=cfg.dynamic,
    )  # fmt: skip
    dense = dense[moved.kept]
    cloud = downsample(dense, cfg.cloud_voxel)
    t = stage("cloud", t)
    grid = grid_from_cloud(
        dense,
        result.trajectory,
        max_step=robot.body.max_step,
        max_slope=robot.body.max_slope,
        robot_height=robot.height,
        config=cfg.grid,
    )
    t = stage("grid", t)
    stops = StopSet.of(site.station, site.stops)  # the drive is anchored in the site's frame
    split_covered(stops, grid)  # the station must be on the map: the drive starts there
    found = build_routes(result.trajectory, grid, stops, config=cfg.routes)
    t = stage("routes", t)
    if found.unreachable and strict:
        raise MappingError(
            f"{out}: not written (--strict refuses a map with unreachable stops): "
            f"{unreachable_message(found.unreachable)}"
        )
    for u in found.unreachable:
        log.warning("%s; marked unreachable in stops.yaml", u)
    reasons = {u.name: u.reason for u in found.unreachable}

    def marked(s: Stop) -> Stop:
        return replace(s, unreachable=reasons.get(s.name, ""))

    stops = replace(
        stops,
        loading=marked(stops.loading),
        charging=marked(stops.charging),
        stops=tuple(marked(s) for s in stops.stops),
    )
    prior = PriorMap(
        site=site.name,
        cloud=cloud,
        cloud_voxel=cfg.cloud_voxel,
        grid=grid,
        datum=result.datum,
        routes=found.graph,
        stops=stops,
        info={
            "bag": str(bag),
            "world": str(site.world),
            "site_file": str(site.source) if site.source is not None else "",
            "drive_duration_s": round(drive.duration, 3),
            "scans": drive.scan_count,
            "keyframes": len(result.keyframes),
            "loop_closures": len(result.loop_closures),
            "dynamic_points_removed": moved.removed,
            "stats": {k: round(float(v), 4) for k, v in result.stats.items()},
            "stops_without_route": [u.name for u in found.unreachable if u.kind == "stop"],
            "stops_unreachable": dict(reasons),
            "route_edges_narrowed": [str(n) for n in found.narrowed],
        },
        trajectory=result.trajectory,
    )
    written = write_map(prior, out, overwrite=overwrite)
    stage("write", t)
    total = time.perf_counter() - t_start
    return BuildSummary(
        written, drive.duration, total, stages, result, prior, found.unreachable, found.narrowed
    )
