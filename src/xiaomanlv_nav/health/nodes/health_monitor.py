"""health_monitor: watches sensor topics and /diagnostics, publishes the health picture.

Rates and ages are measured on the steady clock and the publish timer runs on it too: a
watchdog must keep running, and call streams STALE, when simulated time (/clock) stalls.
Header stamps are judged against the node's ROS clock (simulated time in the sim profile).

Subscribes to each watched topic raw and deserialises each message itself, so a message it
cannot read is counted, never raised; small converters here extract what the core judges (the
header stamp; for PointCloud2, Imu, Odometry, NavSatFix, Range and LaserScan the values whose
emptiness or finiteness :mod:`xiaomanlv_nav.health.content` checks). At each publish it counts
each watched topic's publishers. Every rejection (a message it could not read, an unfit
/diagnostics status, a refused goal) is counted: the total in ``malformed_messages`` (HealthStatus
and the /diagnostics summary), one ``from <source>`` value per source beside it in the summary.
Also subscribes to /diagnostics; publishes
xiaomanlv/HealthStatus on /health/status and its own statuses on /diagnostics at
``publish_rate``; serves /health/get (GetHealth) and /health/wait_until_healthy
(WaitForHealthy). Core: :class:`xiaomanlv_nav.health.monitor.HealthMonitor`.

A wait_until_healthy goal holds no thread: its execute callback awaits a future that the
publish timer resolves (healthy, timed out or cancelled), and the timer sends its feedback. So
any number of goals can wait while the node runs on one thread and keeps watching.
"""

from __future__ import annotations

import importlib
import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.action import ActionServer, CancelResponse
from rclpy.action.server import ServerGoalHandle
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import deserialize_message
from rclpy.task import Future
from xiaomanlv.action import WaitForHealthy
from xiaomanlv.msg import HealthStatus
from xiaomanlv.srv import GetHealth

from xiaomanlv_core.config import ConfigError
from xiaomanlv_core.ros.diagnostics import diagnostic_array, key_values, level_of
from xiaomanlv_core.ros.entry import run_node
from xiaomanlv_core.ros.params import declare_config, watch_config
from xiaomanlv_core.ros.pointcloud2 import read_xyz
from xiaomanlv_core.ros.time import seconds_of
from xiaomanlv_nav.health.config import HealthMonitorConfig
from xiaomanlv_nav.health.content import (
    OK,
    Level,
    Verdict,
    cloud_verdict,
    fix_verdict,
    imu_verdict,
    odometry_verdict,
    range_verdict,
    scan_verdict,
)
from xiaomanlv_nav.health.monitor import (
    MAX_NAME,
    HealthMonitor,
    HealthReport,
    shown,
    text_problem,
)
from xiaomanlv_nav.health.ros.conversions import health_to_msg, report_to_diagnostics


def message_class(type_name: str) -> Any:
    """``sensor_msgs/msg/Imu`` -> the class; ConfigError naming the type if it is unknown."""
    package, _, name = type_name.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError):
        raise ConfigError(f"watched_topics: message type '{type_name}' is not installed") from None


QUEUE_SECONDS = 0.25  # [s] of messages at a watch's minimum rate its queue holds
MAX_GOAL_TOPICS = 256  # entries a wait_until_healthy goal may list
WAIT_ACTION = "/health/wait_until_healthy"


# ---- converters: message -> what the core judges ------------------------------------------------
def _xyz(v: Any) -> tuple[float, float, float]:
    return (v.x, v.y, v.z)


def _xyzw(q: Any) -> tuple[float, float, float, float]:
    return (q.x, q.y, q.z, q.w)


def _cloud(msg: Any) -> Verdict:
    count = int(msg.width) * int(msg.height)
    if count == 0:  # empty, whatever its fields say
        return cloud_verdict(np.zeros((0, 3)), 0)
    return cloud_verdict(read_xyz(msg), count)


def _imu(msg: Any) -> Verdict:
    # REP 145: covariance[0] == -1 marks a quantity the sensor does not provide.
    covariances = (
        msg.orientation_covariance,
        msg.angular_velocity_covariance,
        msg.linear_acceleration_covariance,
    )
    orientation, angular, linear = (bool(cov[0] != -1.0) for cov in covariances)
    return imu_verdict(
        _xyzw(msg.orientation),
        _xyz(msg.angular_velocity),
        _xyz(msg.linear_acceleration),
        provided=(orientation, angular, linear),
    )


def _odometry(msg: Any) -> Verdict:
    pose, twist = msg.pose.pose, msg.twist.twist
    return odometry_verdict(
        _xyz(pose.position), _xyzw(pose.orientation), _xyz(twist.linear), _xyz(twist.angular)
    )


def _fix(msg: Any) -> Verdict:
    return fix_verdict(int(msg.status.status), msg.latitude, msg.longitude)


CONTENT: dict[str, Callable[[Any], Verdict]] = {
    "sensor_msgs/msg/PointCloud2": _cloud,
    "sensor_msgs/msg/Imu": _imu,
    "nav_msgs/msg/Odometry": _odometry,
    "sensor_msgs/msg/NavSatFix": _fix,
    "sensor_msgs/msg/Range": lambda msg: range_verdict(msg.range),
    "sensor_msgs/msg/LaserScan": lambda msg: scan_verdict(msg.ranges),
}


def header_stamp(msg: Any) -> float | None:
    """[s] of the message's ``header.stamp``; None for a type without a header."""
    header = getattr(msg, "header", None)
    stamp = getattr(header, "stamp", None)
    return None if stamp is None else seconds_of(stamp)


def content_of(type_name: str, msg: Any) -> Verdict:
    """The content verdict of ``msg`` (a ``type_name`` message); OK for types not judged.

    Raises:
        ValueError: the message cannot be read (a PointCloud2 layout that does not fit).
    """
    judge = CONTENT.get(type_name)
    return judge(msg) if judge is not None else OK


def goal_problem(topics: Sequence[str], timeout: float, max_wait: float) -> str | None:
    """Why a wait_until_healthy goal is refused, or None (unknown topics are checked apart)."""
    if not (math.isfinite(timeout) and 0.0 < timeout <= max_wait):
        return f"timeout {timeout:g} s is not in (0, {max_wait:g}] s"
    if len(topics) > MAX_GOAL_TOPICS:
        return f"topics lists {len(topics)} entries, at most {MAX_GOAL_TOPICS}"
    for topic in topics:
        problem = text_problem(topic, MAX_NAME)
        if problem:
            return f"topics entry {shown(topic)} {problem}"
    return None


@dataclass
class _Waiter:
    """A wait_until_healthy goal the publish timer serves."""

    goal: ServerGoalHandle
    only: frozenset[str] | None  # None: every watched topic
    start: float  # [s] steady
    deadline: float  # [s] steady
    done: Future  # resolved with the final HealthReport


class HealthMonitorNode(Node):
    def __init__(self) -> None:
        super().__init__("health_monitor")
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.config = declare_config(self, HealthMonitorConfig)
        self.monitor = HealthMonitor(self.config)
        self.rejected: Counter[str] = Counter()  # per source: topic, /diagnostics, goals
        self._waiters: list[_Waiter] = []
        self._prefix = self.get_fully_qualified_name().lstrip("/")
        self._subscriptions_for(self.config)
        self.create_subscription(
            DiagnosticArray,
            "/diagnostics",
            self._on_diagnostics,
            50,
        )
        self.status_pub = self.create_publisher(HealthStatus, "/health/status", 10)
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_service(GetHealth, "/health/get", self._on_get)
        self._action = ActionServer(
            self,
            WaitForHealthy,
            WAIT_ACTION,
            execute_callback=self._on_wait,
            cancel_callback=lambda _goal: CancelResponse.ACCEPT,
        )
        self._timer = self.create_timer(
            1.0 / self.config.publish_rate, self._publish, clock=self._steady
        )
        watch_config(self, lambda: self.config, self._reconfigure)
        topics = ", ".join(w.topic for w in self.monitor.watches)
        self.get_logger().info(f"watching {topics}")

    @property
    def malformed(self) -> int:
        """Every rejection so far: what HealthStatus.malformed_messages reports."""
        return sum(self.rejected.values())

    def _reject(self, source: str, reason: str) -> None:
        self.rejected[source] += 1
        self.get_logger().warn(
            f"rejected from {source}: {reason} ({self.rejected[source]} so far)",
            throttle_duration_sec=5.0,
        )

    def _now(self) -> float:
        return self._steady.now().nanoseconds * 1e-9

    def _status(self, report: HealthReport) -> Any:
        return health_to_msg(report, self.get_clock().now().to_msg(), malformed=self.malformed)

    def _subscriptions_for(self, config: HealthMonitorConfig) -> None:
        for watch in config.watches():
            cls = message_class(watch.msg_type)
            # Best effort (as `ros2 topic hz`), with room for a quarter second of messages at
            # the expected rate: a monitor that a loaded machine starves for a moment still
            # counts what its DDS reader received instead of dropping it at a queue of 5
            # (a loaded demo heard /imu/data at 84 Hz so; a deep queue would turn a long
            # starvation into stamps judged too old instead).
            qos = QoSProfile(
                history=HistoryPolicy.KEEP_LAST,
                depth=max(5, math.ceil(watch.min_rate * QUEUE_SECONDS)),
                reliability=ReliabilityPolicy.BEST_EFFORT,
                durability=DurabilityPolicy.VOLATILE,
            )
            self.create_subscription(
                cls,
                watch.topic,
                self._arrival(watch.topic, watch.msg_type, cls),
                qos,
                raw=True,
            )

    def _arrival(self, topic: str, type_name: str, cls: Any) -> Callable[[bytes], None]:
        def callback(raw: bytes) -> None:
            arrived = self._now()
            ros_now = self.get_clock().now().nanoseconds * 1e-9
            try:
                msg = deserialize_message(raw, cls)
                content, stamp = content_of(type_name, msg), header_stamp(msg)
            except Exception as err:
                # Undecodable bytes (RMWError), a cloud layout that does not fit its data...
                reason = f"unreadable {type_name.rsplit('/', 1)[-1]}: {err}"
                self._reject(topic, reason)
                self.monitor.observe(topic, arrived, Verdict(Level.ERROR, reason[:200]))
                return
            self.monitor.observe(topic, arrived, content, header_stamp=stamp, ros_now=ros_now)

        return callback

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        now = self._now()
        for status in msg.status:
            if status.name.startswith(self._prefix):
                continue  # our own statuses
            try:
                self.monitor.observe_status(
                    status.name, level_of(status.level), status.message, now
                )
            except ValueError as err:
                self._reject("/diagnostics", f"ignored status: {err}")

    def _observe_publishers(self) -> None:
        for watch in self.monitor.watches:
            infos = self.get_publishers_info_by_topic(watch.topic)
            names = tuple(sorted(f"{i.node_namespace.rstrip('/')}/{i.node_name}" for i in infos))
            self.monitor.observe_publishers(watch.topic, len(infos), names)

    def _evaluate(self) -> HealthReport:
        return self.monitor.evaluate(self._now())

    def _publish(self) -> None:
        self._observe_publishers()
        report = self._evaluate()
        self.status_pub.publish(self._status(report))
        statuses = report_to_diagnostics(report, self._prefix, self.malformed)
        statuses[0].values.extend(
            key_values({f"from {source}": n for source, n in sorted(self.rejected.items())})
        )
        self.diag_pub.publish(diagnostic_array(statuses, self.get_clock().now().to_msg()))
        self._serve_waiters(report)

    def _serve_waiters(self, report: HealthReport) -> None:
        for waiter in list(self._waiters):
            unhealthy = report.unhealthy_topics(waiter.only)
            finished = not unhealthy or report.stamp >= waiter.deadline
            if finished or waiter.goal.is_cancel_requested:
                self._waiters.remove(waiter)
                waiter.done.set_result(report)
                continue
            elapsed = float(report.stamp - waiter.start)
            waiter.goal.publish_feedback(
                WaitForHealthy.Feedback(unhealthy_topics=unhealthy, elapsed=elapsed)
            )

    def _on_get(self, _request: GetHealth.Request, response: GetHealth.Response) -> Any:
        response.status = self._status(self._evaluate())
        return response

    async def _on_wait(self, goal: ServerGoalHandle) -> Any:
        request = goal.request
        topics = list(request.topics)
        result = WaitForHealthy.Result()
        reason = goal_problem(topics, float(request.timeout), self.config.max_wait)
        only = frozenset(topics) or None
        if reason is None:
            unknown = sorted((only or frozenset()) - {w.topic for w in self.monitor.watches})
            if unknown:
                shown_unknown = ", ".join(shown(t) for t in unknown[:5])
                reason = f"unknown topics {shown_unknown}" + (", ..." if len(unknown) > 5 else "")
        if reason is not None:
            self._reject(WAIT_ACTION, f"goal aborted: {reason}")
            goal.abort()
            result.status = self._status(self._evaluate())
            return result
        # Steady time: the goal's timeout is the caller's patience, not simulated time.
        report = self._evaluate()
        if report.unhealthy_topics(only):
            start = report.stamp
            waiter = _Waiter(goal, only, start, start + request.timeout, Future())
            self._waiters.append(waiter)
            report = await waiter.done
        unhealthy = report.unhealthy_topics(only)
        if goal.is_cancel_requested:
            goal.canceled()
        else:
            goal.succeed()
        result.healthy = not unhealthy
        result.status = self._status(report)
        return result

    def _reconfigure(self, config: HealthMonitorConfig) -> None:
        if config.watched_topics != self.config.watched_topics:
            raise ConfigError("watched_topics cannot change at run time; restart the node")
        self.config = config
        self.monitor.config = config
        self._timer.cancel()
        self.destroy_timer(self._timer)
        self._timer = self.create_timer(
            1.0 / config.publish_rate, self._publish, clock=self._steady
        )


def main(args: Sequence[str] | None = None) -> int:
    return run_node(HealthMonitorNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
