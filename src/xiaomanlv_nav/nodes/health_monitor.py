"""health_monitor: watches sensor topic rates and /diagnostics, publishes the health picture.

Rates and ages are measured on the steady clock and the publish timer runs on it too: a
watchdog must keep running, and call streams STALE, when simulated time (/clock) stalls.

Subscribes (raw, not deserialised) to each watched topic and to /diagnostics; publishes
xiaomanlv/HealthStatus on /health/status and its own statuses on /diagnostics at
``publish_rate``; serves /health/get (GetHealth) and /health/wait_until_healthy
(WaitForHealthy). Core: :class:`xiaomanlv_nav.health.monitor.HealthMonitor`.

A wait_until_healthy goal holds no thread: its execute callback awaits a future that the
publish timer resolves (healthy, timed out or cancelled), and the timer sends its feedback. So
any number of goals can wait while the node runs on one thread and keeps watching.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from rclpy.action import ActionServer, CancelResponse
from rclpy.action.server import ServerGoalHandle
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import QoSPresetProfiles
from rclpy.task import Future
from xiaomanlv.action import WaitForHealthy
from xiaomanlv.msg import HealthStatus
from xiaomanlv.srv import GetHealth

from xiaomanlv_nav.config import ConfigError
from xiaomanlv_nav.health.monitor import HealthMonitor, HealthMonitorConfig, HealthReport
from xiaomanlv_nav.ros.conversions import (
    health_to_msg,
    level_of,
    report_to_diagnostics,
)
from xiaomanlv_nav.ros.entry import run_node
from xiaomanlv_nav.ros.params import declare_config, watch_config


def message_class(type_name: str) -> Any:
    """``sensor_msgs/msg/Imu`` -> the class; ConfigError naming the type if it is unknown."""
    package, _, name = type_name.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError):
        raise ConfigError(f"watched_topics: message type '{type_name}' is not installed") from None


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
        self.malformed = 0
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
            "/health/wait_until_healthy",
            execute_callback=self._on_wait,
            cancel_callback=lambda _goal: CancelResponse.ACCEPT,
        )
        self._timer = self.create_timer(
            1.0 / self.config.publish_rate, self._publish, clock=self._steady
        )
        watch_config(self, lambda: self.config, self._reconfigure)
        topics = ", ".join(w.topic for w in self.monitor.watches)
        self.get_logger().info(f"watching {topics}")

    def _now(self) -> float:
        return self._steady.now().nanoseconds * 1e-9

    def _status(self, report: HealthReport) -> Any:
        return health_to_msg(report, self.get_clock().now().to_msg(), malformed=self.malformed)

    def _subscriptions_for(self, config: HealthMonitorConfig) -> None:
        qos = QoSPresetProfiles.SENSOR_DATA.value
        for watch in config.watches():
            cls = message_class(watch.msg_type)
            self.create_subscription(
                cls,
                watch.topic,
                self._arrival(watch.topic),
                qos,
                raw=True,
            )

    def _arrival(self, topic: str) -> Any:
        def callback(_raw: bytes) -> None:
            self.monitor.observe(topic, self._now())

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
                self.malformed += 1
                self.get_logger().warn(
                    f"ignored /diagnostics status: {err}", throttle_duration_sec=5.0
                )

    def _evaluate(self) -> HealthReport:
        return self.monitor.evaluate(self._now())

    def _publish(self) -> None:
        report = self._evaluate()
        self.status_pub.publish(self._status(report))
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = report_to_diagnostics(report, self._prefix, self.malformed)
        self.diag_pub.publish(array)
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
        only = frozenset(request.topics) or None
        unknown = sorted((only or frozenset()) - {w.topic for w in self.monitor.watches})
        result = WaitForHealthy.Result()
        if unknown or not request.timeout > 0.0:
            reason = f"unknown topics {unknown}" if unknown else f"timeout {request.timeout} <= 0"
            self.get_logger().warn(f"wait_until_healthy rejected: {reason}")
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
