"""Heartbeat and diagnostics aggregation: the health picture the safety layer watches.

For each watched topic the monitor keeps the arrival times of recent messages and reports
OK (rate at or above its minimum), WARN (alive but slower, or too few messages to measure a
rate), or STALE (silent for longer than
``stale_factor`` periods of its minimum rate, or never seen). For each component that
publishes ``/diagnostics`` it keeps the newest status and reports STALE once that status is
older than ``diagnostics_timeout``. The overall level is the worst of all of them. Levels
follow diagnostic_msgs/DiagnosticStatus (OK=0, WARN=1, ERROR=2, STALE=3), as the ROS
diagnostic_aggregator does.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import IntEnum

from xiaomanlv_nav.config import ConfigError, param, validate_fields


class Level(IntEnum):
    OK = 0
    WARN = 1
    ERROR = 2
    STALE = 3


@dataclass(frozen=True)
class TopicWatch:
    """A topic the monitor watches: ``"<topic> <package/msg/Type> <min_rate>"`` as text."""

    topic: str
    msg_type: str  # e.g. sensor_msgs/msg/Imu
    min_rate: float  # [Hz]

    @classmethod
    def parse(cls, spec: str, source: str = "watched_topics") -> TopicWatch:
        """Parse ``"/imu/data sensor_msgs/msg/Imu 80"``.

        Raises:
            ConfigError: naming ``source`` and the bad entry.
        """
        parts = spec.split()
        if len(parts) != 3:
            raise ConfigError(
                f"{source}: entry {spec!r} must be '<topic> <package/msg/Type> <min_rate Hz>'"
            )
        topic, msg_type, rate_text = parts
        if not topic.startswith("/"):
            raise ConfigError(f"{source}: topic {topic!r} in {spec!r} must be absolute")
        package, kind, name = [*msg_type.split("/"), "", "", ""][:3]
        if msg_type.count("/") != 2 or kind != "msg" or not package or not name:
            raise ConfigError(
                f"{source}: type {msg_type!r} in {spec!r} must look like package/msg/Type"
            )
        try:
            min_rate = float(rate_text)
        except ValueError:
            raise ConfigError(
                f"{source}: min_rate {rate_text!r} in {spec!r} is not a number"
            ) from None
        if not 0.0 < min_rate <= 10_000.0:
            raise ConfigError(
                f"{source}: min_rate {min_rate:g} in {spec!r} is out of range (0, 10000] Hz"
            )
        return cls(topic=topic, msg_type=msg_type, min_rate=min_rate)


@dataclass(frozen=True)
class HealthMonitorConfig:
    """Configuration of the health monitor; defaults are the stack's sensor streams."""

    publish_rate: float = param(
        2.0, low=0.1, high=100.0, unit="Hz", description="rate of /health/status and /diagnostics"
    )  # [Hz]
    rate_window: float = param(
        2.0, low=0.1, high=60.0, unit="s", description="window over which topic rates are measured"
    )  # [s]
    stale_factor: float = param(
        3.0,
        low=1.0,
        high=100.0,
        unit="periods",
        description="a topic is STALE after this many periods of its min rate without a message",
    )  # [periods of 1/min_rate]
    diagnostics_timeout: float = param(
        5.0,
        low=0.1,
        high=600.0,
        unit="s",
        description="a component's /diagnostics status older than this is STALE",
    )  # [s]
    watched_topics: tuple[str, ...] = param(
        (
            "/lidar/points sensor_msgs/msg/PointCloud2 8.0",
            "/imu/data sensor_msgs/msg/Imu 80.0",
            "/wheel/odom nav_msgs/msg/Odometry 40.0",
            "/gnss/fix sensor_msgs/msg/NavSatFix 4.0",
        ),
        description="'<topic> <package/msg/Type> <min_rate Hz>' per entry",
    )

    def __post_init__(self) -> None:
        validate_fields(self)
        watches = self.watches()
        topics = [w.topic for w in watches]
        duplicates = sorted({t for t in topics if topics.count(t) > 1})
        if duplicates:
            raise ConfigError(f"watched_topics: {', '.join(duplicates)} listed more than once")

    def watches(self) -> list[TopicWatch]:
        return [TopicWatch.parse(spec) for spec in self.watched_topics]


@dataclass(frozen=True)
class TopicReport:
    topic: str
    level: Level
    rate: float  # [Hz] measured over the window; 0 if fewer than two messages
    min_rate: float  # [Hz]
    age: float  # [s] since the last message; -1 if never seen
    message: str


@dataclass(frozen=True)
class ComponentReport:
    name: str
    level: Level
    message: str
    age: float  # [s] since the status was received


@dataclass(frozen=True)
class HealthReport:
    stamp: float  # [s] on the monitor's clock
    level: Level
    topics: tuple[TopicReport, ...]
    components: tuple[ComponentReport, ...]

    def unhealthy_topics(self, only: frozenset[str] | None = None) -> list[str]:
        return [
            t.topic
            for t in self.topics
            if t.level != Level.OK and (only is None or t.topic in only)
        ]

    def summary(self) -> str:
        bad = [f"{t.topic} {t.level.name}" for t in self.topics if t.level != Level.OK]
        bad += [f"{c.name} {c.level.name}" for c in self.components if c.level != Level.OK]
        return self.level.name + (": " + ", ".join(bad) if bad else "")


@dataclass
class _Component:
    level: Level
    message: str
    received: float  # [s]


class HealthMonitor:
    """Aggregates message arrivals and component statuses into a :class:`HealthReport`.

    Times are seconds on one clock (the node's, which follows /clock in simulation).
    """

    def __init__(self, config: HealthMonitorConfig) -> None:
        self.config = config
        self._watches = {w.topic: w for w in config.watches()}
        self._arrivals: dict[str, deque[float]] = {t: deque() for t in self._watches}
        self._components: dict[str, _Component] = {}

    @property
    def watches(self) -> list[TopicWatch]:
        return list(self._watches.values())

    def observe(self, topic: str, stamp: float) -> None:
        """Record that a message on ``topic`` arrived at ``stamp`` [s]."""
        arrivals = self._arrivals.get(topic)
        if arrivals is None:
            return
        if arrivals and stamp < arrivals[-1]:
            arrivals.clear()  # the clock went back (simulation reset): start over
        arrivals.append(stamp)
        self._trim(arrivals, stamp)

    def observe_status(self, name: str, level: int, message: str, stamp: float) -> None:
        """Record a component's diagnostic status received at ``stamp`` [s].

        Raises:
            ValueError: when ``level`` is not a diagnostic_msgs level (0..3).
        """
        try:
            checked = Level(level)
        except ValueError:
            raise ValueError(f"status '{name}' has level {level}, not one of 0..3") from None
        self._components[name] = _Component(checked, message, stamp)

    def evaluate(self, now: float) -> HealthReport:
        topics = tuple(self._topic_report(w, now) for w in self._watches.values())
        components = tuple(
            self._component_report(name, c, now) for name, c in sorted(self._components.items())
        )
        levels = [t.level for t in topics] + [c.level for c in components]
        return HealthReport(
            stamp=now,
            level=max(levels, default=Level.OK),
            topics=topics,
            components=components,
        )

    def _trim(self, arrivals: deque[float], now: float) -> None:
        """Keep the arrivals inside the window plus the last one before it.

        The one before the window keeps the rate measurable for a topic whose period is
        longer than the window (a 0.4 Hz stream in a 2 s window reads 0.4 Hz, not 0).
        """
        horizon = now - self.config.rate_window
        while len(arrivals) > 2 and arrivals[1] < horizon:
            arrivals.popleft()

    def _topic_report(self, watch: TopicWatch, now: float) -> TopicReport:
        arrivals = self._arrivals[watch.topic]
        if arrivals and now < arrivals[-1]:
            arrivals.clear()
        if not arrivals:
            return TopicReport(
                watch.topic, Level.STALE, 0.0, watch.min_rate, -1.0, "no message yet"
            )
        self._trim(arrivals, now)
        age = now - arrivals[-1]
        span = arrivals[-1] - arrivals[0]
        rate = (len(arrivals) - 1) / span if span > 0.0 else 0.0
        stale_after = self.config.stale_factor / watch.min_rate
        if age > stale_after:
            level, text = Level.STALE, f"silent for {age:.2f} s (limit {stale_after:.2f} s)"
        elif len(arrivals) < 2:
            level, text = Level.WARN, "one message so far: rate not measured yet"
        elif rate < watch.min_rate:
            level, text = Level.WARN, f"{rate:.1f} Hz, below {watch.min_rate:g} Hz"
        else:
            level, text = Level.OK, f"{rate:.1f} Hz"
        return TopicReport(watch.topic, level, rate, watch.min_rate, age, text)

    def _component_report(self, name: str, comp: _Component, now: float) -> ComponentReport:
        age = max(0.0, now - comp.received)
        if age > self.config.diagnostics_timeout:
            return ComponentReport(name, Level.STALE, f"no status for {age:.1f} s", age)
        return ComponentReport(name, comp.level, comp.message, age)
