"""The localisation stack in lockstep with the simulator: the localiser and the fusion as their
nodes run them, without DDS, for bench/localization.py and the tests.

Each simulator reading goes through the message the ``sim`` node publishes
(`xiaomanlv_sim.ros.conversions`) and the nav nodes' own conversions into their cores
(`xiaomanlv_nav.localization`, `xiaomanlv_nav.fusion`), built from the same config dataclass
defaults the nodes declare as parameters, and the outputs are wired as the graph wires them:

- the odometry's ``odom -> base_link`` and the robot description's ``base_link -> sensor``
  transforms go into a `TransformTree`, as the localiser's TF listener fills it;
- a sweep is read and deskewed by the node's own `sweep_in_base` and waits, as in the node, for
  the odometry to cover it (here: until the next odometry reading);
- the localiser is seeded by the fused estimate as its node takes /odometry/filtered
  (`xiaomanlv_nav.localization.prior`: fresh, localised, carried to the sweep's stamp by the
  odometry; else its own chain), and its accepted pose goes into
  the fusion through the /localization/pose message (`pose_with_covariance_msg` -> `pose_fix`);
- GNSS fixes reach the localiser through the node's own `fix_for_localizer` (the datum, the
  lever arm),
  and the fusion through `gnss_fix` / `gnss_velocity` (NO_FIX counted, as its node does);
- the fusion's estimate after every IMU sample is what /odometry/filtered would carry.

Nothing here reads the simulator's truth; an operator's initial pose is given only where the
caller says one is (:meth:`Stack.initial_pose`, the kidnap trials' hand on RViz).
"""

from __future__ import annotations

import math
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from sensor_msgs.msg import NavSatStatus

from xiaomanlv_bringup.localization_evaluation import LOST, PoseReport, StateReport
from xiaomanlv_core.fields import FormatError
from xiaomanlv_core.frames import BASE_LINK, MAP, ODOM, sensor_extrinsics
from xiaomanlv_core.geodesy import Datum
from xiaomanlv_core.geometry import planar_pose, yaw_of
from xiaomanlv_core.mapdatum import read_datum
from xiaomanlv_core.robot import RobotSpec
from xiaomanlv_core.tf_tree import TransformError, TransformTree
from xiaomanlv_nav.fusion.config import EkfConfig
from xiaomanlv_nav.fusion.ekf import GNSS, Ekf, Timings, build_ekf
from xiaomanlv_nav.fusion.ros.conversions import (
    gnss_fix,
    gnss_velocity,
    imu_sample,
    pose_fix,
    wheel_odometry,
)
from xiaomanlv_nav.localization.config import LocalizerConfig
from xiaomanlv_nav.localization.localizer import Localizer, State
from xiaomanlv_nav.localization.nodes.localizer import (
    build_localizer,
    fix_for_localizer,
    prior_for,
    sweep_in_base,
)
from xiaomanlv_nav.localization.prior import FusedPrior
from xiaomanlv_nav.localization.ros.conversions import pose_with_covariance_msg
from xiaomanlv_nav.localization.tiles import tile_map_for
from xiaomanlv_sim.ros.conversions import (
    gnss_to_msg,
    gnss_velocity_to_msg,
    imu_to_msg,
    lidar_to_msg,
    odom_to_msg,
)
from xiaomanlv_sim.sensors.gnss import GnssReading
from xiaomanlv_sim.sensors.imu import ImuReading
from xiaomanlv_sim.sensors.lidar import LidarScan
from xiaomanlv_sim.sensors.odometry import OdomReading

Row = tuple[float, float, float, float]  # x, y, z [m], yaw [rad] in the map frame
FUSED_HISTORY = 200  # fused estimates kept for the localiser's prior (the node's ODOM_HISTORY)
# RViz's 2D Pose Estimate covariance (x, y 0.5 m; yaw 15 deg), as an operator's /initialpose
OPERATOR_COVARIANCE = np.diag([0.25, 0.25, 0.25, 0.0685, 0.0685, 0.0685])


def unavailable_reason() -> str:
    """Why the stack cannot run in lockstep ('' when it can). Kept for the bench's report."""
    return ""


def available() -> bool:
    return not unavailable_reason()


def row_of(pose: NDArray[np.float64]) -> Row:
    return float(pose[0, 3]), float(pose[1, 3]), float(pose[2, 3]), yaw_of(pose[:3, :3])


@dataclass(frozen=True)
class Fused:
    stamp: float  # [s]
    pose: Row
    covariance: NDArray[np.float64]  # (6, 6) x, y, z, roll, pitch, yaw (ROS order)


@dataclass
class Outputs:
    """What one reading made the stack say."""

    fused: list[Fused] = field(default_factory=list)
    states: list[StateReport] = field(default_factory=list)
    seed: NDArray[np.float64] | None = None  # 4x4 map <- base_link the localiser started from
    registered: Row | None = None  # the localiser's registered pose for this sweep


class Stack:
    """The localiser and the fusion over the prior map in ``map_dir``, for ``robot``.

    Args:
        localizer_config, ekf_config: the nodes' parameters (default: their defaults, as the
            ``sim`` profile runs them: config/ sets only the site).

    Raises:
        MapTileError: the map's ``pointcloud_map/`` cannot be read.
    """

    def __init__(
        self,
        map_dir: Path,
        robot: RobotSpec,
        localizer_config: LocalizerConfig | None = None,
        ekf_config: EkfConfig | None = None,
    ) -> None:
        self.map_dir = map_dir
        self.robot = robot
        self.config = cfg = localizer_config or LocalizerConfig(map=str(map_dir))
        self.datum: Datum | None
        try:
            self.datum = read_datum(map_dir / "datum.yaml")
        except FormatError:
            self.datum = None  # the localiser starts only from an operator; GNSS unused
        self.localizer: Localizer = build_localizer(
            cfg, tile_map_for(cfg, map_dir / "pointcloud_map", background=True), self.datum
        )
        self.ekf: Ekf = build_ekf(ekf_config or EkfConfig(), robot, self.datum)
        self.ekf.timings = Timings(window=10**7)  # every sample, for the bench's median
        self.on_pose: Callable[[PoseReport], None] | None = None
        self.wait_for_start = True  # unused: the stack starts alone unless given a pose
        self.bad: dict[str, int] = {}
        self._tree = TransformTree(cache_time=cfg.tf_cache)
        for frame, pose in sensor_extrinsics(robot).items():  # the sim node's /tf_static
            self._tree.set_transform(BASE_LINK, frame, pose, 0.0, static=True)
        self._fused = FusedPrior(keep=FUSED_HISTORY)
        self._pending: LidarScan | None = None
        self._initial: tuple[float, NDArray[np.float64]] | None = None
        self._last_sweep = -math.inf
        self._gnss: list[tuple[float, bool]] = []  # (stamp, the fusion took it)
        # [ms] per tracked sweep: the registration (`Registration.seconds`: downsampling,
        # covariances, alignment, the match's covariance) and the whole sweep (reading,
        # deskewing, predicting, matching, judging); the *_cpu_ms the same in this thread's CPU
        # time: what they cost a core of their own on a machine shared with other work (wall
        # time there counts the waits for the CPU)
        self.reg_ms: list[float] = []
        self.reg_cpu_ms: list[float] = []
        self.sweep_ms: list[float] = []
        self.sweep_cpu_ms: list[float] = []
        self._search_ms: list[float] = []
        self.search_reasons: Counter[str] = Counter()  # the global searches' outcomes
        self._fused_stamps: list[float] = []

    # ---- inputs -------------------------------------------------------------------------------
    def feed(self, reading: object) -> Outputs:
        """One simulator reading through the nodes; what the stack said because of it."""
        out = Outputs()
        if isinstance(reading, OdomReading):
            self._on_odometry(reading, out)
        elif isinstance(reading, ImuReading):
            if self.ekf.add_imu(imu_sample(imu_to_msg(reading))):
                self._publish(out)
        elif isinstance(reading, GnssReading):
            self._on_gnss(reading)
        elif isinstance(reading, LidarScan):
            if self._pending is not None:
                self._count("cloud without odometry")
            self._pending = reading
            self._try_sweep(out)
        return out

    def initial_pose(self, stamp: float, x: float, y: float, yaw: float) -> None:
        """An operator's /initialpose (map frame) at ``stamp`` [s]: to the localiser (with the
        odometry then) and the fusion (which restarts there), as both nodes take it. Held
        until the odometry has spoken when given before it."""
        self._initial = (stamp, planar_pose(x, y, yaw))
        self._apply_initial()

    def _apply_initial(self) -> None:
        if self._initial is None:
            return
        stamp, pose = self._initial
        try:
            odom = self._tree.lookup(ODOM, BASE_LINK, stamp)
        except TransformError:
            try:
                odom = self._tree.lookup(ODOM, BASE_LINK)
            except TransformError:
                return  # the node would drop it; an operator waits until the robot is up
        self._initial = None
        self.localizer.set_pose(pose, odom.matrix, odom.stamp)
        msg = pose_with_covariance_msg(pose, OPERATOR_COVARIANCE, odom.stamp, MAP)
        fix = pose_fix(msg)
        self.ekf.initialize(fix.pose, fix.covariance, fix.stamp)

    def _on_odometry(self, reading: OdomReading, out: Outputs) -> None:
        msg = odom_to_msg(reading, ODOM, BASE_LINK)
        x, y, yaw = (float(v) for v in reading.pose)
        self._tree.set_transform(ODOM, BASE_LINK, planar_pose(x, y, yaw), reading.stamp)
        self.ekf.add_wheel(wheel_odometry(msg))
        self._apply_initial()
        if self._pending is not None:
            self._try_sweep(out)

    def _on_gnss(self, reading: GnssReading) -> None:
        msg = gnss_to_msg(reading)
        if msg.status.status < NavSatStatus.STATUS_FIX:
            self.ekf.count(GNSS, "no_fix")
        else:
            gated = self.ekf.counts[f"{GNSS} gated"]
            added = self.ekf.add_gnss(gnss_fix(msg))
            took = added and self.ekf.initialized and self.ekf.counts[f"{GNSS} gated"] == gated
            self._gnss.append((reading.stamp, took))
        velocity = gnss_velocity_to_msg(reading)
        if velocity is not None:
            self.ekf.add_gnss_velocity(gnss_velocity(velocity))
        if self.datum is None:
            return
        fix = fix_for_localizer(msg, self.datum, self._tree, self.localizer, self.config)
        if isinstance(fix, str):
            self._count(fix)
            return
        self.localizer.set_fix(*fix)

    def _try_sweep(self, out: Outputs) -> None:
        scan = self._pending
        assert scan is not None
        start = time.perf_counter()
        start_cpu = time.thread_time()
        msg = lidar_to_msg(scan)
        stamp = scan.stamp
        ready = sweep_in_base(msg, stamp, self._tree, self.config, self._count)
        if ready is None:
            return  # the odometry does not cover the sweep yet: the next reading retries
        self._pending = None
        if isinstance(ready, str):
            self._count(ready)
            return
        if stamp <= self._last_sweep:
            self._count("cloud stamp out of order")
            return
        self._last_sweep = stamp
        points, odom, origin = ready
        prior = self._prior(stamp)
        loc = self.localizer
        out.seed = prior if prior is not None and loc.initialised else loc.predict(odom)
        update = loc.process(stamp, points, odom, prior, sensor_origin=origin)
        elapsed = 1e3 * (time.perf_counter() - start)
        if update.searched:
            self._search_ms.append(elapsed)
            self.search_reasons[update.searched] += 1
        elif update.registration is not None:
            self.sweep_ms.append(elapsed)
            self.sweep_cpu_ms.append(1e3 * (time.thread_time() - start_cpu))
            self.reg_ms.append(1e3 * update.registration.seconds)
            self.reg_cpu_ms.append(1e3 * update.registration.cpu_seconds)
        if update.registration is not None and loc.initialised:
            out.registered = row_of(update.registration.pose)
        state = State(int(update.state)).name
        row = None if update.pose is None else row_of(update.pose)
        out.states.append(StateReport(stamp, state, row if state != LOST else None))
        if update.accepted and update.pose is not None:
            if self.on_pose is not None and row is not None:
                self.on_pose(PoseReport(stamp, row, update.state == State.OK))
            msg_pose = pose_with_covariance_msg(update.pose, update.covariance, stamp, MAP)
            self.ekf.add_pose(pose_fix(msg_pose))

    def _prior(self, stamp: float) -> NDArray[np.float64] | None:
        return prior_for(self._fused, self._tree, self.config, stamp)

    def _publish(self, out: Outputs) -> None:
        estimate = self.ekf.estimate()
        if estimate is None:
            return
        self._fused.add(estimate.stamp, estimate.pose, estimate.pose_covariance)
        self._fused_stamps.append(estimate.stamp)
        out.fused.append(Fused(estimate.stamp, row_of(estimate.pose), estimate.pose_covariance))

    def _count(self, kind: str) -> None:
        self.bad[kind] = self.bad.get(kind, 0) + 1

    # ---- what the bench reads -----------------------------------------------------------------
    @property
    def gnss_fixes(self) -> int:
        """Fixes (status FIX or better) the stack has been given."""
        return len(self._gnss)

    def gnss_accepted_between(self, start: float, end: float) -> int | None:
        """Fixes stamped in [start, end) [s] the fusion applied (None: no fix came then): the
        window is half-open as a GnssJump fault's is (`xiaomanlv_sim.faults`), so the clean fix
        stamped at ``end`` is not counted as a jumped one."""
        inside = [took for t, took in self._gnss if start <= t < end]
        return sum(inside) if inside else None

    def timings(self) -> dict[str, object]:
        """``reg_ms`` (every tracked sweep's registration, the global searches apart),
        ``sweep_ms`` (the whole sweep: reading, deskewing, matching, judging), each also as
        ``*_cpu_ms`` (CPU time), ``ekf_update_ms`` (every
        measurement update), ``ekf_predict_ms`` (median), ``fusion_hz`` (estimates per second
        of sim time), the fusion's and the localiser's counts."""
        samples = self.ekf.timings.samples
        updates = [1e3 * v for k, q in samples.items() if k != "predict" for v in q]
        predict = [1e3 * v for v in samples.get("predict", [])]
        stamps = self._fused_stamps
        span = stamps[-1] - stamps[0] if len(stamps) > 1 else 0.0
        return {
            "reg_ms": list(self.reg_ms),
            "reg_cpu_ms": list(self.reg_cpu_ms),
            "sweep_ms": list(self.sweep_ms),
            "sweep_cpu_ms": list(self.sweep_cpu_ms),
            "ekf_update_ms": updates,
            "ekf_predict_ms": statistics.median(predict) if predict else None,
            # to 1 mHz: 100 estimates a second came out as 99.99999999 of float rounding
            "fusion_hz": round((len(stamps) - 1) / span, 3) if span > 0.0 else None,
            "ekf_counts": dict(self.ekf.counts),
            "localizer_bad": dict(self.bad),
            "search_reasons": dict(self.search_reasons),
            "sweeps": self.localizer.sweeps,
            "accepted_sweeps": self.localizer.accepted,
        }

    def search_ms(self) -> float | None:
        """[ms] median wall time of a sweep that ran a global search (None: none ran)."""
        return statistics.median(self._search_ms) if self._search_ms else None
