"""localizer: each lidar sweep matched against the prior map; /localization/pose, map -> odom.

A thin adapter around :class:`xiaomanlv_nav.localization.localizer.Localizer`
(docs/localization.md). Subscribes /lidar/points (PointCloud2 with a per-point ``t``: deskewed
with the odometry's motion over the sweep), /odometry/filtered (the fused pose, the prior when
it is fresh), /initialpose (RViz's 2D Pose Estimate), /gnss/fix (through the map's datum: the
global search and the integrity monitor), and /tf, /tf_static (base_link -> lidar, odom ->
base_link, through `xiaomanlv_core.ros.tf.TransformListener`). Publishes /localization/pose
(PoseWithCovarianceStamped, map frame) for each accepted match, /localization/status
(xiaomanlv/LocalizationStatus) for every sweep, map -> odom on /tf for every sweep once
initialised (the held correction when a match is rejected: odom -> base_link stays continuous,
REP 105), stamped ``transform_tolerance`` after the sweep as AMCL does, and /diagnostics.

Bad input never stops it (issue 15 item 4), each kind is counted and reported on /diagnostics
(``malformed_messages`` and one ``bad <kind>`` value per kind): a cloud that does not read, an
empty cloud, non-finite points (dropped, the rest used), all points non-finite, a cloud in a
frame with no transform to base_link, a sweep stamped before (or at) the last one, an odometry
or initial pose that is not finite or in the wrong frame, a fix without a fix or with NaN, and
/clock jumping back (the transforms and histories are dropped, the pose kept). A sweep the
odometry does not yet cover waits up to ``tf_wait`` for it.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from numpy.typing import NDArray
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from sensor_msgs.msg import NavSatFix, PointCloud2
from xiaomanlv.msg import LocalizationStatus

from xiaomanlv_core.config import ConfigError
from xiaomanlv_core.fields import FormatError
from xiaomanlv_core.geodesy import Datum
from xiaomanlv_core.mapdatum import read_datum
from xiaomanlv_core.paths import SiteMapError, site_map_dir
from xiaomanlv_core.ros.diagnostics import diagnostic_array, diagnostic_status
from xiaomanlv_core.ros.entry import run_node
from xiaomanlv_core.ros.guard import guard_node
from xiaomanlv_core.ros.params import declare_config, refuse_changes, watch_config
from xiaomanlv_core.ros.pointcloud2 import PointCloudError, read_points
from xiaomanlv_core.ros.poses import matrix_of_pose
from xiaomanlv_core.ros.qos import SENSOR_QOS
from xiaomanlv_core.ros.tf import Broadcaster, TransformListener, transform_msg
from xiaomanlv_core.ros.time import seconds_of
from xiaomanlv_core.tf_tree import TransformError, TransformTree
from xiaomanlv_nav.localization.config import LocalizerConfig
from xiaomanlv_nav.localization.global_search import GlobalSearch, GlobalSearchConfig
from xiaomanlv_nav.localization.hypotheses import HypothesisTracker
from xiaomanlv_nav.localization.integrity import IntegrityConfig, IntegrityMonitor
from xiaomanlv_nav.localization.localizer import Localizer, LocalizerUpdate, State, localizer_for
from xiaomanlv_nav.localization.prior import FusedPrior
from xiaomanlv_nav.localization.registration import prepare_scan
from xiaomanlv_nav.localization.ros.conversions import (
    fix_in_map,
    pose_with_covariance_msg,
    status_msg,
)
from xiaomanlv_nav.localization.tiles import MapTileError, TileMap, tile_map_for

ODOM_HISTORY = 200  # /odometry/filtered messages kept (2 s at 100 Hz)
CLOCK_JUMP = 1.0  # [s] ROS time moving back more than this is a jump back
INTEGRITY = "integrity."  # IntegrityConfig's parameters: integrity.no_fit_time, ...
SEARCH = "search."  # GlobalSearchConfig's: search.resolution, ...


def map_directory(config: LocalizerConfig) -> Path:
    """``map`` if set, else ``maps/<site>`` (`xiaomanlv_core.paths.site_map_dir`: the source
    checkout, then the installed share).

    Raises:
        ConfigError: no such map (naming where it looked).
    """
    if config.map:
        return Path(config.map).expanduser()
    try:
        return site_map_dir(config.site)
    except SiteMapError as err:
        raise ConfigError(str(err)) from None


def build_localizer(
    config: LocalizerConfig,
    tiles: TileMap,
    datum: Datum | None,
    integrity_config: IntegrityConfig | None = None,
    search_config: GlobalSearchConfig | None = None,
) -> Localizer:
    """The node's :class:`Localizer`: the integrity monitor and the global search (from GNSS,
    so only with a ``datum``) as ``config`` says, with their own configs (default: theirs);
    one search per held tile set (its crop is cached). The lockstep bench builds the same
    (`xiaomanlv_bringup.ros.localization_lockstep`)."""
    integrity = IntegrityMonitor(integrity_config) if config.use_integrity_monitor else None
    searches: dict[tuple[str, ...], GlobalSearch] = {}

    def search(tile_map: TileMap) -> GlobalSearch:
        key = tile_map.loaded
        if key not in searches:
            searches.clear()
            searches[key] = GlobalSearch(tile_map.prepared_points(), search_config)
        return searches[key]

    return localizer_for(
        config,
        tiles,
        integrity=integrity,
        search=search if config.use_global_search and datum is not None else None,
        tracker=HypothesisTracker(search_config),
    )


def fix_for_localizer(
    msg: NavSatFix,
    datum: Datum,
    tree: TransformTree,
    localizer: Localizer,
    config: LocalizerConfig,
) -> tuple[float, NDArray[np.float64], NDArray[np.float64]] | str:
    """(stamp [s], base_link's xy [m] in the map frame, its 2x2 covariance [m^2]) of a fix,
    through the datum (`fix_in_map`), the antenna's lever arm (base_link -> the fix's frame in
    ``tree``) removed along the localiser's predicted heading once there is one; or the
    bad-input kind (str) to count. The node and the lockstep bench both call this."""
    fix = fix_in_map(msg, datum)
    if isinstance(fix, str):
        return f"fix: {fix}"
    xy, cov = fix
    try:  # the antenna's lever arm, turned by the predicted heading when there is one
        lever = tree.lookup(config.base_frame, msg.header.frame_id).matrix[:3, 3]
        odom = tree.lookup(config.odom_frame, config.base_frame).matrix
        predicted = localizer.predict(odom)
        if predicted is not None:
            xy = xy - predicted[:2, :3] @ lever
    except TransformError:
        pass  # no extrinsic or odometry yet: the antenna's position stands for base_link
    try:
        stamp = seconds_of(msg.header.stamp)
    except ValueError:
        return "fix: stamp"
    return stamp, xy, cov


def prior_for(
    fused: FusedPrior, tree: TransformTree, config: LocalizerConfig, stamp: float
) -> NDArray[np.float64] | None:
    """/odometry/filtered (``fused``) carried to ``stamp`` by the odometry in ``tree`` when it is
    fresh and its covariance says the fusion is localised (as an OK match:
    ``max_ok_position_std``, ``max_ok_yaw_std``); else None and the localiser seeds from its
    own chain (`xiaomanlv_nav.localization.prior`). The node and the lockstep bench both call
    this."""
    cfg = config

    def odom_at(t: float) -> NDArray[np.float64] | None:
        try:
            return tree.lookup(cfg.odom_frame, cfg.base_frame, t).matrix
        except (TransformError, ValueError):
            return None

    odom = odom_at(stamp)
    if odom is None:
        return None
    return fused.at(
        stamp,
        odom,
        odom_at,
        timeout=cfg.prior_timeout,
        max_position_std=cfg.max_ok_position_std,
        max_yaw_std=math.radians(cfg.max_ok_yaw_std),
    ).pose


def sweep_in_base(
    msg: PointCloud2,
    stamp: float,
    tree: TransformTree,
    config: LocalizerConfig,
    count: Callable[[str], None] = lambda kind: None,
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]] | str | None:
    """(points in base_link at ``stamp``, odom <- base_link at ``stamp``, the lidar's origin
    in base_link) of a sweep, deskewed with the odometry in ``tree``; a bad-input kind (str)
    to count; None while the odometry does not cover the sweep yet. Non-finite points are
    dropped and ``count``-ed. The node and the lockstep bench
    (`xiaomanlv_bringup.ros.localization_lockstep`) both call this."""
    cfg = config
    if int(msg.width) * int(msg.height) == 0:
        return "cloud empty"
    try:
        names = {f.name for f in msg.fields}
        cloud = read_points(msg, ["x", "y", "z", "t"] if "t" in names else ["x", "y", "z"])
    except PointCloudError:
        return "cloud unreadable"
    xyz = np.column_stack([cloud[a].astype(np.float64) for a in ("x", "y", "z")])
    times = cloud["t"].astype(np.float64) if "t" in names else None
    finite = np.isfinite(xyz).all(axis=1)
    if not finite.any():
        return "cloud all points non-finite"
    if not finite.all():
        count("cloud non-finite points")  # dropped; the rest are used
    try:
        extrinsic = tree.lookup(cfg.base_frame, msg.header.frame_id).matrix
    except TransformError:
        return f"cloud frame {msg.header.frame_id!r}"[:80]
    end = stamp + (float(np.nanmax(times)) if times is not None and len(times) else 0.0)
    try:
        start_pose = tree.lookup(cfg.odom_frame, cfg.base_frame, stamp)
        end_pose = tree.lookup(cfg.odom_frame, cfg.base_frame, max(end, stamp))
    except TransformError:
        return None
    if end > stamp + 1e-9 and math.isfinite(end):
        odom_series = (np.array([stamp, end]), np.stack([start_pose.matrix, end_pose.matrix]))
    else:
        odom_series = None
    if times is not None and not np.all(np.isfinite(times[finite])):
        times = np.where(np.isfinite(times), times, np.nan)
    points = prepare_scan(
        xyz,
        times,
        stamp,
        extrinsic,
        odom_series,
        min_range=cfg.scan_min_range,
        max_range=cfg.scan_max_range,
    )
    return points, start_pose.matrix, np.asarray(extrinsic[:3, 3], dtype=np.float64)


class LocalizerNode(Node):
    def __init__(self) -> None:
        super().__init__("localizer")
        self.config = cfg = declare_config(self, LocalizerConfig)
        # The integrity monitor's and the global search's own settings, read once.
        integrity_config = declare_config(self, IntegrityConfig, prefix=INTEGRITY)
        search_config = declare_config(self, GlobalSearchConfig, prefix=SEARCH)
        refuse_changes(self, (INTEGRITY, SEARCH))
        directory = map_directory(cfg)
        try:
            tiles = tile_map_for(cfg, directory / "pointcloud_map", background=True)
        except MapTileError as err:
            raise ConfigError(f"map: {err}") from None
        self.datum: Datum | None = None
        try:
            self.datum = read_datum(directory / "datum.yaml")
        except FormatError as err:
            self.get_logger().warning(f"no GNSS in the map frame: {err}")
        self.localizer = build_localizer(cfg, tiles, self.datum, integrity_config, search_config)
        self.directory = directory
        self.bad: Counter[str] = Counter()
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._tree = TransformTree(cache_time=cfg.tf_cache)
        self._listener = TransformListener(self, self._tree)
        self._tf = Broadcaster(self)
        self._odom = FusedPrior(keep=ODOM_HISTORY)  # /odometry/filtered: the prior if localised
        # An operator's pose that came before any odometry (RViz is clicked once): applied as
        # soon as odom -> base_link is known, with the stamp it was given.
        self._pending_initial: tuple[NDArray[np.float64], float] | None = None
        self._pending: tuple[float, PointCloud2, float] | None = None  # stamp, msg, waited since
        self._last_stamp = -math.inf
        self._last_now = -math.inf
        self._last_update: LocalizerUpdate | None = None
        self._pose_pub = self.create_publisher(PoseWithCovarianceStamped, "/localization/pose", 10)
        self._status_pub = self.create_publisher(LocalizationStatus, "/localization/status", 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(PointCloud2, "/lidar/points", self._on_cloud, SENSOR_QOS)
        self.create_subscription(Odometry, "/odometry/filtered", self._on_odometry, 50)
        self.create_subscription(
            PoseWithCovarianceStamped, "/initialpose", self._on_initial_pose, 10
        )
        self.create_subscription(NavSatFix, "/gnss/fix", self._on_fix, SENSOR_QOS)
        self._retry = self.create_timer(0.02, self._retry_pending)
        self._diag_timer = self.create_timer(
            1.0 / cfg.diagnostics_rate, self._publish_diagnostics, clock=self._steady
        )
        watch_config(self, lambda: self.config, self._reconfigure)
        self._guard = guard_node(self)
        self.get_logger().info(
            f"localising in {directory} ({len(tiles.index.origins)} tiles of "
            f"{tiles.index.x_resolution:g} m, held within {cfg.tile_radius:g} m)"
        )

    # ---- inputs -------------------------------------------------------------------------------
    def _count(self, kind: str, detail: str = "") -> None:
        self.bad[kind] += 1
        if self.bad[kind] in (1, 10, 100) or self.bad[kind] % 1000 == 0:
            self.get_logger().warning(f"bad {kind} ({self.bad[kind]} so far){detail}")

    def _check_clock(self) -> None:
        now = self.get_clock().now().nanoseconds * 1e-9
        if now < self._last_now - CLOCK_JUMP:
            self._count("clock jumped back", f": {self._last_now:.3f} -> {now:.3f} s")
            self._tree.clear_dynamic()  # /tf_static is latched: it is not sent again
            self._odom.clear()
            self._pending = None
            self._last_stamp = -math.inf
            self.localizer.clock_reset()
        self._last_now = now

    def _on_odometry(self, msg: Odometry) -> None:
        self._check_clock()
        cfg = self.config
        if msg.header.frame_id != cfg.map_frame or msg.child_frame_id != cfg.base_frame:
            self._count("odometry frame", f": {msg.header.frame_id} -> {msg.child_frame_id}")
            return
        try:
            pose = matrix_of_pose(msg.pose.pose)
            stamp = seconds_of(msg.header.stamp)
        except ValueError:
            self._count("odometry not finite")
            return
        refused = self._odom.add(stamp, pose, msg.pose.covariance)
        if refused is not None:
            self._count(refused)

    def _on_initial_pose(self, msg: PoseWithCovarianceStamped) -> None:
        self._check_clock()
        if msg.header.frame_id != self.config.map_frame:
            self._count("initial pose frame", f": {msg.header.frame_id!r}")
            return
        try:
            pose = matrix_of_pose(msg.pose.pose)
        except ValueError:
            self._count("initial pose not finite")
            return
        if not np.all(np.isfinite(pose)):
            self._count("initial pose not finite")
            return
        try:
            stamp = seconds_of(msg.header.stamp)
        except ValueError:
            stamp = 0.0
        self._pending_initial = None
        if not self._apply_initial(pose, stamp):
            self._pending_initial = (pose, stamp)
            self.get_logger().info("initial pose held until odom -> base_link is known")

    def _apply_initial(self, pose: NDArray[np.float64], stamp: float) -> bool:
        """Set the operator's pose against the odometry at its stamp, else the latest; False
        while there is no odometry at all."""
        try:
            odom = self._tree.lookup(self.config.odom_frame, self.config.base_frame, stamp or None)
        except (TransformError, ValueError):
            try:
                odom = self._tree.lookup(self.config.odom_frame, self.config.base_frame)
            except TransformError:
                return False
        self.localizer.set_pose(pose, odom.matrix, odom.stamp)
        self.get_logger().info(
            f"initial pose ({pose[0, 3]:.2f}, {pose[1, 3]:.2f}) m in {self.config.map_frame}"
        )
        return True

    def _on_fix(self, msg: NavSatFix) -> None:
        self._check_clock()
        if self.datum is None:
            return
        fix = fix_for_localizer(msg, self.datum, self._tree, self.localizer, self.config)
        if isinstance(fix, str):
            self._count(fix)
            return
        self.localizer.set_fix(*fix)

    def _on_cloud(self, msg: PointCloud2) -> None:
        self._check_clock()
        if self._pending_initial is not None and self._apply_initial(*self._pending_initial):
            self._pending_initial = None
        try:
            stamp = seconds_of(msg.header.stamp)
        except ValueError:
            self._count("cloud stamp")
            return
        if stamp == self._last_stamp:
            self._count("cloud stamp duplicated")
            return
        if stamp < self._last_stamp:
            self._count("cloud stamp out of order", f": {stamp:.3f} < {self._last_stamp:.3f} s")
            return
        self._pending = (stamp, msg, self._steady.now().nanoseconds * 1e-9)
        self._retry_pending()

    def _retry_pending(self) -> None:
        if self._pending is None:
            return
        stamp, msg, since = self._pending
        ready = sweep_in_base(msg, stamp, self._tree, self.config, self._count)
        if ready is None:
            waited = self._steady.now().nanoseconds * 1e-9 - since
            if waited > self.config.tf_wait:
                self._pending = None
                self._count("cloud without odometry", f": no odom -> base_link at {stamp:.3f} s")
            return
        self._pending = None
        if isinstance(ready, str):
            self._count(ready)
            return
        points, odom, origin = ready
        self._last_stamp = stamp
        self._process(stamp, points, odom, origin)

    def _prior(self, stamp: float) -> NDArray[np.float64] | None:
        return prior_for(self._odom, self._tree, self.config, stamp)

    # ---- the core call and the outputs --------------------------------------------------------
    def _process(
        self,
        stamp: float,
        points: NDArray[np.float64],
        odom: NDArray[np.float64],
        origin: NDArray[np.float64],
    ) -> None:
        cfg = self.config
        try:
            update = self.localizer.process(
                stamp, points, odom, self._prior(stamp), sensor_origin=origin
            )
        except MapTileError as err:
            self._count("map tile", f": {err}")
            return
        self._last_update = update
        if update.accepted and update.pose is not None:
            self._pose_pub.publish(
                pose_with_covariance_msg(update.pose, update.covariance, stamp, cfg.map_frame)
            )
        if update.map_from_odom is not None:
            self._tf.send(
                [
                    transform_msg(
                        update.map_from_odom,
                        cfg.map_frame,
                        cfg.odom_frame,
                        stamp + cfg.transform_tolerance,
                    )
                ]
            )
        self._status_pub.publish(
            status_msg(update, self.localizer, sum(self.bad.values()), cfg.map_frame)
        )

    def _publish_diagnostics(self) -> None:
        self._check_clock()
        loc, update = self.localizer, self._last_update
        state = loc.state
        level = {State.OK: DiagnosticStatus.OK, State.DEGRADED: DiagnosticStatus.WARN}.get(
            State(int(state)), DiagnosticStatus.ERROR
        )
        reg = None if update is None else update.registration
        values: dict[str, Any] = {
            "state": State(int(state)).name,
            "reasons": ", ".join(loc.reasons) or "none",
            "map": str(self.directory),
            "tiles_loaded": len(loc.tile_map.loaded),
            "map_points": loc.tile_map.points,
            "sweeps": loc.sweeps,
            "accepted": loc.accepted,
            "rejected": loc.rejected,
            "registration_ms": "n/a" if reg is None else f"{1000.0 * reg.seconds:.1f}",
            "inlier_ratio": "n/a" if reg is None else f"{reg.inlier_ratio:.3f}",
            "position_std_m": "n/a" if reg is None else f"{reg.position_std:.3f}",
            "malformed_messages": sum(self.bad.values()),
            **{f"bad {kind}": n for kind, n in sorted(self.bad.items())},
            **self._guard.diagnostics_values(),
        }
        status = diagnostic_status(
            f"{self.get_fully_qualified_name().lstrip('/')}: summary",
            level,
            f"{State(int(state)).name}" + (f": {', '.join(loc.reasons)}" if loc.reasons else ""),
            values,
        )
        self._diag_pub.publish(diagnostic_array([status], self.get_clock().now().to_msg()))

    def _reconfigure(self, config: LocalizerConfig) -> None:
        fixed = [
            f.name
            for f in config.__dataclass_fields__.values()
            if getattr(config, f.name) != getattr(self.config, f.name)
            and f.name
            not in ("diagnostics_rate", "prior_timeout", "transform_tolerance", "tf_wait")
        ]
        if fixed:
            raise ConfigError(f"{', '.join(fixed)} cannot change at run time; restart the node")
        self.config = config
        self._diag_timer = self._guard.replace_timer(
            self._diag_timer, 1.0 / config.diagnostics_rate, self._publish_diagnostics,
            clock=self._steady,
        )  # fmt: skip


def main(args: Sequence[str] | None = None) -> int:
    return run_node(LocalizerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
