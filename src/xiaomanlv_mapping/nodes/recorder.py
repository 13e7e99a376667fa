"""map_recorder: records a mapping drive's raw sensor topics to a rosbag2 (MCAP) bag.

On the robot it records the operator's real drive; against the simulator it records what the
``sim`` node publishes. Subscriptions are raw (``raw=True``): CDR bytes go straight into
:class:`xiaomanlv_mapping.bag.BagWriter`, nothing is deserialised. Each topic's type and its
publishers' offered QoS come from the graph; a topic that has no publisher yet is looked for
again every ``discovery_period`` (``topics`` are waited for and reported while missing,
``optional_topics`` such as the simulator's ground truth are recorded only if they appear).
Subscriptions use the sensor-data QoS (best effort, which matches reliable publishers too) with
``queue_depth``. A message is logged at the node's clock (sim time under use_sim_time), as
``ros2 bag record`` does; under use_sim_time, messages that arrive before the first /clock
have no time to be logged at and are dropped (counted in /diagnostics).

Shutdown (SIGINT, SIGTERM) closes the bag, which writes the MCAP summary and metadata.yaml;
a killed recorder leaves a bag that `xiaomanlv_mapping.bag.open_drive` reports as truncated.
Publishes its state on /diagnostics at ``diagnostics_rate`` (messages written per topic,
topics still awaited, write errors, ``callback_errors``). Its parameters are fixed while it
records: a change is refused with the reason. Every callback, the recording subscriptions
created on discovery included, is guarded (:mod:`xiaomanlv_core.ros.guard`): an unforeseen
exception is counted, never fatal.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)

from xiaomanlv_core.config import ConfigError
from xiaomanlv_core.ros.diagnostics import diagnostic_array, diagnostic_status
from xiaomanlv_core.ros.entry import run_node
from xiaomanlv_core.ros.guard import guard_node
from xiaomanlv_core.ros.params import declare_config, watch_config
from xiaomanlv_mapping.bag import SITE_KEY, BagError, BagWriter
from xiaomanlv_mapping.config import RecorderConfig


def _time(duration: Any) -> QosTime:
    ns = int(duration.nanoseconds)
    return QosTime(ns // 1_000_000_000, ns % 1_000_000_000)


def offered_qos(profile: QoSProfile) -> Qos:
    """An rclpy QoS profile (as a publisher offers it) in the bag's QoS record."""

    def enum(cls: Any, value: Any, unknown: Any) -> Any:
        try:
            return cls(int(value))
        except ValueError:
            return unknown

    return Qos(
        enum(QosHistory, profile.history, QosHistory.UNKNOWN),
        int(profile.depth),
        enum(QosReliability, profile.reliability, QosReliability.UNKNOWN),
        enum(QosDurability, profile.durability, QosDurability.UNKNOWN),
        _time(profile.deadline),
        _time(profile.lifespan),
        enum(QosLiveliness, profile.liveliness, QosLiveliness.UNKNOWN),
        _time(profile.liveliness_lease_duration),
        bool(profile.avoid_ros_namespace_conventions),
    )


def message_class(type_name: str) -> Any:
    """``sensor_msgs/msg/Imu`` -> its class, or None when the package is not installed."""
    package, _, name = type_name.partition("/msg/")
    try:
        return getattr(importlib.import_module(f"{package}.msg"), name)
    except (ImportError, AttributeError, ValueError):
        return None


class MapRecorderNode(Node):
    def __init__(self) -> None:
        super().__init__("map_recorder")
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self.config = declare_config(self, RecorderConfig)
        cfg = self.config
        source = f"parameters of node '{self.get_fully_qualified_name()}'"
        if not cfg.output.strip():
            raise ConfigError(
                f"parameter 'output' is required: the bag directory to create ({source})"
            )
        output = Path(cfg.output).expanduser()
        try:
            self.bag = BagWriter(
                output,
                compression=cfg.compression,
                custom_data={
                    "xiaomanlv.recorder": "map_recorder",
                    **({SITE_KEY: cfg.site.strip()} if cfg.site.strip() else {}),
                },
            )
        except (BagError, OSError) as err:
            raise ConfigError(f"parameter 'output' = '{cfg.output}': {err} ({source})") from None
        self.write_errors = 0
        self.before_clock = 0  # messages dropped: they came before the clock started
        self._pending = [*cfg.topics, *cfg.optional_topics]
        self._unsupported: dict[str, str] = {}  # topic -> why it cannot be recorded
        self._ambiguous: set[str] = set()
        self._qos = QoSProfile(  # rclpy's sensor-data preset with our depth
            history=HistoryPolicy.KEEP_LAST,
            depth=cfg.queue_depth,
            reliability=ReliabilityPolicy.BEST_EFFORT,
            durability=DurabilityPolicy.VOLATILE,
        )
        self._diag = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._prefix = self.get_fully_qualified_name().lstrip("/")
        self._guard = guard_node(self)  # the parameter services, before discovery subscribes
        self._discover()
        self.create_timer(
            cfg.discovery_period,
            self._guard.wrap(self._discover, "timer _discover"),
            clock=self._steady,
        )
        self.create_timer(
            1.0 / cfg.diagnostics_rate,
            self._guard.wrap(self._publish_diagnostics, "timer _publish_diagnostics"),
            clock=self._steady,
        )
        watch_config(self, lambda: self.config, self._refuse_changes)
        optional = ", ".join(cfg.optional_topics) or "none"
        self.get_logger().info(
            f"recording to {self.bag.path}: {', '.join(cfg.topics)} (if present: {optional})"
        )

    # ---- discovery ------------------------------------------------------------------------
    def _discover(self) -> None:
        if not self._pending or self.bag.closed:
            return
        graph = dict(self.get_topic_names_and_types())
        for topic in list(self._pending):
            types = graph.get(topic)
            if not types:
                continue
            if len(types) != 1:
                if topic not in self._ambiguous:
                    self._ambiguous.add(topic)
                    self.get_logger().warn(f"{topic} has several types {types}; waiting")
                continue
            publishers = self.get_publishers_info_by_topic(topic)
            if not publishers:
                continue  # only subscribers so far
            self._pending.remove(topic)
            self._subscribe(topic, types[0], [offered_qos(p.qos_profile) for p in publishers])

    def _subscribe(self, topic: str, msgtype: str, qos: list[Qos]) -> None:
        cls = message_class(msgtype)
        if cls is None:
            self._unsupported[topic] = f"message package of {msgtype} is not installed"
        else:
            try:
                self.bag.add_topic(topic, msgtype, qos=qos)
            except BagError as err:
                self._unsupported[topic] = str(err)
        if topic in self._unsupported:
            self.get_logger().error(f"cannot record {topic}: {self._unsupported[topic]}")
            return
        writer = self._guard.wrap(self._writer(topic), f"subscription {topic}")
        self.create_subscription(cls, topic, writer, self._qos, raw=True)
        self.get_logger().info(f"recording {topic} ({msgtype})")

    def _writer(self, topic: str) -> Callable[[bytes], None]:
        def on_message(raw: bytes) -> None:
            if self.bag.closed:
                return
            now = self.get_clock().now().nanoseconds
            if now <= 0:  # use_sim_time and no /clock yet: no time to log it at
                self.before_clock += 1
                return
            try:
                self.bag.write(topic, raw, now)
            except (BagError, OSError) as err:
                self.write_errors += 1
                self.get_logger().error(
                    f"cannot write {topic} to {self.bag.path}: {err}", throttle_duration_sec=5.0
                )

        return on_message

    # ---- diagnostics and shutdown ---------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        cfg = self.config
        waiting = [t for t in cfg.topics if t in self._pending]
        counts = self.bag.counts
        level, message = DiagnosticStatus.OK, "recording"
        if self.write_errors:
            level, message = DiagnosticStatus.ERROR, f"{self.write_errors} message(s) not written"
        elif waiting or self._unsupported:
            level = DiagnosticStatus.WARN
            parts = [f"waiting for {', '.join(waiting)}"] if waiting else []
            if self._unsupported:
                parts.append(f"cannot record {', '.join(sorted(self._unsupported))}")
            message = "; ".join(parts)
        try:
            size = os.stat(self.bag.file).st_size
        except OSError:
            size = 0
        values = {
            "output": str(self.bag.path),
            **{f"messages {t}": str(n) for t, n in counts.items()},
            "messages": str(sum(counts.values())),
            "bytes": str(size),
            "waiting_for": ", ".join(waiting),
            "write_errors": str(self.write_errors),
            "dropped_before_clock": str(self.before_clock),
            **self._guard.diagnostics_values(),
        }
        status = diagnostic_status(
            f"{self._prefix}: recording", level, message, values, hardware_id="xiaomanlv_mapping"
        )
        self._diag.publish(diagnostic_array([status], self.get_clock().now().to_msg()))

    def _refuse_changes(self, config: RecorderConfig) -> None:
        changed = [
            f.name
            for f in dataclasses.fields(config)
            if getattr(config, f.name) != getattr(self.config, f.name)
        ]
        if changed:
            raise ConfigError(
                f"{', '.join(changed)} cannot change while recording; restart the node"
            )

    def close(self) -> None:
        """Close the bag (MCAP summary, metadata.yaml); idempotent."""
        if self.bag.closed:
            return
        try:
            self.bag.close()
        except BagError as err:
            self._say("ERROR", str(err))
            return
        counts = ", ".join(f"{t} {n}" for t, n in self.bag.counts.items()) or "no messages"
        self._say("INFO", f"closed {self.bag.path}: {counts}")

    def _say(self, level: str, text: str) -> None:
        """Log, also after a signal shut the context down (then /rosout is gone: stderr)."""
        if self.context.ok():
            logger = self.get_logger()
            (logger.error if level == "ERROR" else logger.info)(text)
        else:
            print(f"[{level}] [{self.get_name()}]: {text}", file=sys.stderr, flush=True)

    def destroy_node(self) -> None:
        self.close()
        super().destroy_node()


def main(args: Sequence[str] | None = None) -> int:
    return run_node(MapRecorderNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
