"""ekf: the fusion node, /odometry/filtered at IMU rate from the IMU, wheels, GNSS and localiser.

A thin adapter around :class:`xiaomanlv_nav.fusion.ekf.Ekf` (docs/fusion.md). Subscribes to
/imu/data (Imu, in the robot description's IMU frame), /wheel/odom (Odometry, child base_link),
/gnss/fix (NavSatFix, the antenna's frame), /gnss/vel (TwistWithCovarianceStamped, ENU),
/localization/pose and /initialpose (PoseWithCovarianceStamped in map; RViz's 2D Pose Estimate
restarts the filter there), and /map/datum (the map server's, latched) unless ``datum_file``
names the map's datum.yaml.

Publishes nav_msgs/Odometry on /odometry/filtered (header map, child base_link) after every IMU
sample once the filter has a state: nothing before the first localiser pose (the heading is
unknown until then). While the IMU is stale a 10 Hz timer publishes the coasted estimate with
its growing covariance. It does not publish map -> odom on /tf: the localiser does.

/diagnostics at ``diagnostics_rate``: OK, WARN (not started, a stale source other than the
IMU, slipping wheels) or ERROR (IMU stale), with the stale sources, every count of refused
input (``<source> <kind>``: non_finite, bad_covariance, duplicate, out_of_order, too_old,
unknown_frame, no_fix, no_datum, gated, slip) and the update timings. A jump back of the ROS
clock by more than ``time_jump_reset`` resets the filter (``filter clock_jump``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import PoseWithCovarianceStamped, TwistWithCovarianceStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import Imu, NavSatFix, NavSatStatus
from std_msgs.msg import String

from xiaomanlv_core.config import ConfigError
from xiaomanlv_core.fields import FormatError
from xiaomanlv_core.frames import BASE_LINK, MAP, sensor_frame
from xiaomanlv_core.mapdatum import read_datum
from xiaomanlv_core.robot import load_robot, model_file
from xiaomanlv_core.ros.diagnostics import diagnostic_array, diagnostic_status
from xiaomanlv_core.ros.entry import run_node
from xiaomanlv_core.ros.guard import CallbackGuard, guard_node
from xiaomanlv_core.ros.params import declare_config
from xiaomanlv_core.ros.qos import LATCHED_QOS, SENSOR_QOS
from xiaomanlv_core.sdformat import SdfError
from xiaomanlv_nav.fusion.config import EkfConfig
from xiaomanlv_nav.fusion.ekf import GNSS, GNSS_VEL, IMU, INITIAL, POSE, WHEEL, build_ekf
from xiaomanlv_nav.fusion.ros.conversions import (
    datum_of,
    gnss_fix,
    gnss_velocity,
    imu_sample,
    odometry_msg,
    pose_fix,
    wheel_odometry,
)

M = TypeVar("M")
COAST_PERIOD = 0.1  # [s] publishing period while the IMU is stale


class EkfNode(Node):
    def __init__(self) -> None:
        super().__init__("ekf")
        self.config = config = declare_config(self, EkfConfig)
        try:
            robot = load_robot(model_file())
        except (SdfError, OSError) as err:
            raise ConfigError(f"robot description: {err}") from None
        datum = None
        if config.datum_file:
            try:
                datum = read_datum(Path(config.datum_file).expanduser())
            except FormatError as err:
                raise ConfigError(f"parameter 'datum_file': {err}") from None
        self.ekf = build_ekf(config, robot, datum)
        self.frames = {
            IMU: {sensor_frame(robot.imu)},
            GNSS: {sensor_frame(robot.gnss)},
            GNSS_VEL: {sensor_frame(robot.gnss)},
            WHEEL: {BASE_LINK},
            POSE: {MAP},
            INITIAL: {MAP},
        }
        self._last_now: float | None = None
        self._last_published = math.nan  # [s] stamp of the last /odometry/filtered
        self.odom_pub = self.create_publisher(Odometry, "/odometry/filtered", SENSOR_QOS)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_subscription(Imu, "/imu/data", self._on_imu, SENSOR_QOS)
        self.create_subscription(Odometry, "/wheel/odom", self._on_wheel, SENSOR_QOS)
        self.create_subscription(NavSatFix, "/gnss/fix", self._on_fix, SENSOR_QOS)
        self.create_subscription(
            TwistWithCovarianceStamped, "/gnss/vel", self._on_gnss_velocity, SENSOR_QOS
        )
        self.create_subscription(
            PoseWithCovarianceStamped, "/localization/pose", self._on_pose, SENSOR_QOS
        )
        self.create_subscription(PoseWithCovarianceStamped, "/initialpose", self._on_initial, 10)
        if datum is None:
            self.create_subscription(String, "/map/datum", self._on_datum, LATCHED_QOS)
        self.create_timer(1.0 / config.diagnostics_rate, self._report)
        self.create_timer(COAST_PERIOD, self._coast)
        self.guard: CallbackGuard = guard_node(self)
        where = config.datum_file or "/map/datum"
        self.get_logger().info(f"fusing into '{MAP}'; datum from {where}")

    # ---- helpers ---------------------------------------------------------------------------
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _frame_ok(self, source: str, frame: str) -> bool:
        if frame in self.frames[source]:
            return True
        self.ekf.count(source, "unknown_frame")
        self.get_logger().warn(
            f"{source}: frame '{frame}' is not {sorted(self.frames[source])}",
            throttle_duration_sec=5.0,
        )
        return False

    def _convert(self, source: str, convert: Callable[[Any], M], msg: Any) -> M | None:
        try:
            return convert(msg)
        except (ValueError, TypeError) as err:  # a zero quaternion, a stamp out of range
            self.ekf.count(source, "non_finite")
            self.get_logger().warn(f"{source}: unreadable: {err}", throttle_duration_sec=5.0)
            return None

    def _publish(self, at: float | None = None) -> None:
        estimate = self.ekf.estimate(at)
        # Once per stamp: an IMU sample that arrives after a newer wheel or GNSS message
        # leaves the newest state where it was (its subscribers refuse a stamp again).
        if estimate is not None and estimate.stamp != self._last_published:
            self._last_published = estimate.stamp
            self.odom_pub.publish(odometry_msg(estimate, MAP, BASE_LINK))

    # ---- callbacks -------------------------------------------------------------------------
    def _on_imu(self, msg: Imu) -> None:
        if not self._frame_ok(IMU, msg.header.frame_id):
            return
        sample = self._convert(IMU, imu_sample, msg)
        if sample is not None and self.ekf.add_imu(sample):
            self._publish()

    def _on_wheel(self, msg: Odometry) -> None:
        if self._frame_ok(WHEEL, msg.child_frame_id):
            m = self._convert(WHEEL, wheel_odometry, msg)
            if m is not None:
                self.ekf.add_wheel(m)

    def _on_fix(self, msg: NavSatFix) -> None:
        if not self._frame_ok(GNSS, msg.header.frame_id):
            return
        if msg.status.status < NavSatStatus.STATUS_FIX:
            self.ekf.count(GNSS, "no_fix")
            return
        m = self._convert(GNSS, gnss_fix, msg)
        if m is not None:
            self.ekf.add_gnss(m)

    def _on_gnss_velocity(self, msg: TwistWithCovarianceStamped) -> None:
        if self._frame_ok(GNSS_VEL, msg.header.frame_id):
            m = self._convert(GNSS_VEL, gnss_velocity, msg)
            if m is not None:
                self.ekf.add_gnss_velocity(m)

    def _on_pose(self, msg: PoseWithCovarianceStamped) -> None:
        if self._frame_ok(POSE, msg.header.frame_id):
            m = self._convert(POSE, pose_fix, msg)
            if m is not None:
                self.ekf.add_pose(m)

    def _on_initial(self, msg: PoseWithCovarianceStamped) -> None:
        if self._frame_ok(INITIAL, msg.header.frame_id):
            m = self._convert(INITIAL, pose_fix, msg)
            if m is None:
                return
            if self.ekf.initialize(m.pose, m.covariance, m.stamp, source=INITIAL):
                self.get_logger().info("restarted from /initialpose")
            else:
                self.get_logger().warn(
                    "/initialpose refused: it needs positive x, y and yaw variances",
                    throttle_duration_sec=5.0,
                )

    def _on_datum(self, msg: String) -> None:
        try:
            datum = datum_of(msg)
        except FormatError as err:
            self.ekf.count(GNSS, "bad_datum")
            self.get_logger().error(f"{err}", throttle_duration_sec=5.0)
            return
        self.ekf.set_datum(datum)

    def _coast(self) -> None:
        now = self._now()
        if self._last_now is not None and self._last_now - now > self.config.time_jump_reset:
            self.ekf.reset("clock_jump")
            self.get_logger().warn("the clock jumped back: filter reset")
        self._last_now = now
        if now > 0.0 and IMU in self.ekf.stale(now):
            self._publish(at=now)

    def _report(self) -> None:
        self.diag_pub.publish(diagnostic_array([self.status()], self.get_clock().now().to_msg()))

    def status(self) -> DiagnosticStatus:
        now = self._now()
        ekf = self.ekf
        stale = ekf.stale(now) if now > 0.0 else []
        if IMU in stale:
            level, message = DiagnosticStatus.ERROR, "IMU stale: coasting"
        elif not ekf.initialized:
            level, message = DiagnosticStatus.WARN, "waiting for a first localiser pose"
        elif stale:
            level, message = DiagnosticStatus.WARN, f"stale: {', '.join(stale)}"
        elif ekf.slipping:
            level, message = DiagnosticStatus.WARN, "wheel slip"
        else:
            level, message = DiagnosticStatus.OK, "fusing"
        values: dict[str, Any] = {
            "initialized": ekf.initialized,
            "stale": ", ".join(stale),
            "datum": ekf.datum is not None,
            "resets": ekf.resets,
        }
        if now > 0.0:  # [s] since each source's newest stamp: how stale, or how late
            values.update({f"{s} age": f"{ekf.age(s, now):.3f}" for s in ekf.periods})
        values.update({k: v for k, v in sorted(ekf.counts.items())})
        values.update({f"{k} ms": f"{v:.3f}" for k, v in ekf.timings.medians_ms().items()})
        values.update(self.guard.diagnostics_values())
        return diagnostic_status("ekf: fusion", level, message, values)


def main(args: Sequence[str] | None = None) -> int:
    return run_node(EkfNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
