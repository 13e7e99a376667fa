"""The data model shared by the mapping steps: a recorded drive, its estimate, the map products.

Frames (REP 105): ``map`` is the site frame the prior map lives in. A mapping drive starts at
the station's loading pose, and that pose (from the site sidecar) anchors the drive in ``map``,
so the site's stops and station carry over unchanged; in the simulator ``map`` is the world
frame of the SDF file. ``base_link`` is the robot body, the lidar frame is fixed on it (its
pose comes from the robot model, ``models/xiaomanlv/model.sdf``). The datum, the stops and the
station are the foundation's types (`xiaomanlv_core.geodesy`, `xiaomanlv_core.types`).

Poses are 4x4 homogeneous matrices ``map <- base_link``; times are seconds of the bag's clock
(sim time in the simulator). Arrays are numpy; every field states its unit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_core.fields import FormatError
from xiaomanlv_core.geodesy import Datum
from xiaomanlv_core.types import StopSet


class MappingError(ValueError):
    """A mapping input (bag, map directory, parameter) is unusable; the message names it."""


class BagError(MappingError):
    """A bag is missing, corrupt, truncated or lacks a topic; names the file and the topic."""


class MapFormatError(MappingError, FormatError):
    """A map file is missing or malformed; the message names the file and the field."""


# ---- a recorded drive ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Scan:
    """One lidar sweep. A spinning lidar measures its points over the sweep's period, each in
    the lidar frame at its own time ``stamp + times[i]`` (the cloud's ``t`` field); the builder
    deskews them to ``stamp`` with the wheel odometry. ``times`` is None for a cloud without
    per-point times (Gazebo's gpu_lidar, bags recorded before the simulator had them): its
    points are taken as measured at ``stamp``."""

    stamp: float  # [s] header stamp (the simulator's: the sweep's first column)
    points: NDArray[np.float32]  # (N,3) [m] in the lidar frame, returns only
    intensities: NDArray[np.float32]  # (N,) 0..255
    times: NDArray[np.float32] | None = None  # (N,) [s] each point's time after ``stamp``


@dataclass(frozen=True)
class OdometrySeries:
    """/wheel/odom: the wheel-odometry pose in its own ``odom`` frame and the body twist."""

    stamps: NDArray[np.float64]  # (N,) [s]
    poses: NDArray[np.float64]  # (N,3) x [m], y [m], yaw [rad] in odom
    twists: NDArray[np.float64]  # (N,2) forward speed [m/s], yaw rate [rad/s]


@dataclass(frozen=True)
class ImuSeries:
    """/imu/data in the IMU frame (REP 145)."""

    stamps: NDArray[np.float64]  # (N,) [s]
    angular_velocity: NDArray[np.float64]  # (N,3) [rad/s]
    linear_acceleration: NDArray[np.float64]  # (N,3) [m/s^2], gravity included
    orientation: NDArray[np.float64]  # (N,4) quaternion x, y, z, w; NaN rows when not given


@dataclass(frozen=True)
class GnssSeries:
    """/gnss/fix (NavSatFix); rows without a fix are dropped by the reader."""

    stamps: NDArray[np.float64]  # (N,) [s]
    lla: NDArray[np.float64]  # (N,3) latitude [deg], longitude [deg], altitude [m] (WGS84)
    variances: NDArray[np.float64]  # (N,3) east, north, up variance [m^2] (covariance diagonal)


@dataclass(frozen=True)
class PoseSeries:
    """Timed poses ``map <- base_link``: an estimate, or the simulator's ground truth."""

    stamps: NDArray[np.float64]  # (N,) [s], increasing
    poses: NDArray[np.float64]  # (N,4,4)

    def positions(self) -> NDArray[np.float64]:
        """(N,3) [m] translations."""
        out: NDArray[np.float64] = self.poses[:, :3, 3]
        return out


class DriveSource(Protocol):
    """A recorded mapping drive, as `xiaomanlv_mapping.bag.open_drive` reads it from a bag.

    The small series are loaded whole; scans are streamed in time order (a full drive holds
    tens of thousands of sweeps). ``truth`` is the simulator's ground truth, for evaluation
    only: the map builder never reads it.
    """

    @property
    def path(self) -> Path: ...
    @property
    def duration(self) -> float: ...  # [s] first to last message
    @property
    def scan_count(self) -> int: ...
    @property
    def odometry(self) -> OdometrySeries: ...
    @property
    def imu(self) -> ImuSeries: ...
    @property
    def gnss(self) -> GnssSeries: ...
    @property
    def truth(self) -> PoseSeries | None: ...
    def scans(self) -> Iterator[Scan]: ...


# ---- what the builder estimates -----------------------------------------------------------------
@dataclass(frozen=True)
class Keyframe:
    """A sweep kept for the map: its optimised pose and its (downsampled, filtered) points."""

    index: int  # position in the drive's scan order
    stamp: float  # [s]
    pose: NDArray[np.float64]  # 4x4 map <- base_link, after pose-graph optimisation
    points: NDArray[np.float32]  # (M,3) [m] in base_link


@dataclass(frozen=True)
class MappingResult:
    """The estimate of a drive: `xiaomanlv_mapping.slam.estimate` returns it."""

    trajectory: PoseSeries  # one optimised pose per sweep used
    keyframes: tuple[Keyframe, ...]
    loop_closures: tuple[tuple[int, int], ...]  # keyframe index pairs (earlier, later)
    datum: Datum  # fitted from GNSS fixes against the trajectory
    odometry_only: PoseSeries  # the lidar-odometry poses before loop closure (for evaluation)
    stats: dict[str, float] = field(default_factory=dict)  # timings [s], counts


# ---- map products -------------------------------------------------------------------------------
FREE, OCCUPIED, UNKNOWN = 0, 100, -1  # nav_msgs/OccupancyGrid cell values


@dataclass(frozen=True)
class Grid:
    """A 2D occupancy grid as nav_msgs/OccupancyGrid holds it: ``cells[row, col]`` with row 0
    at ``origin`` (the bottom edge, lowest y), values FREE, OCCUPIED or UNKNOWN."""

    resolution: float  # [m/cell]
    origin: tuple[float, float, float]  # x [m], y [m], yaw [rad] of cell (0,0)'s corner in map
    cells: NDArray[np.int8]  # (H,W)


@dataclass(frozen=True)
class RouteNode:
    id: int
    x: float  # [m] in map
    y: float  # [m] in map
    kind: str  # "junction", "end", "stop" or "station"
    name: str = ""  # the stop's or station's name; empty for junctions and ends


@dataclass(frozen=True)
class RouteEdge:
    """A drivable path between two nodes (undirected); ``points`` runs from start to end."""

    id: int
    start: int  # RouteNode.id
    end: int  # RouteNode.id
    points: tuple[tuple[float, float], ...]  # [m] polyline in map, first = start, last = end
    speed_limit: float  # [m/s]
    width: float  # [m] free width along the edge (narrowest place)

    @property
    def length(self) -> float:  # [m]
        p = np.asarray(self.points, dtype=float)
        return float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum())


@dataclass(frozen=True)
class RouteGraph:
    """Drivable paths; as in Nav2's route graph, ids are unique across nodes and edges."""

    nodes: tuple[RouteNode, ...]
    edges: tuple[RouteEdge, ...]


@dataclass(frozen=True)
class PriorMap:
    """Everything in ``maps/<site>/``; `xiaomanlv_mapping.mapfiles` writes and reads it."""

    site: str
    cloud: NDArray[np.float32]  # (N,3) [m] in map, voxel-downsampled static points
    cloud_voxel: float  # [m] the voxel size it was downsampled with
    grid: Grid
    datum: Datum
    routes: RouteGraph
    stops: StopSet
    info: dict[str, object] = field(default_factory=dict)  # build provenance (bag, params, stats)
    trajectory: PoseSeries | None = None  # the optimised mapping drive (for evaluation)
