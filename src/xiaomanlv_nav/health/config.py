"""Configuration of the health monitor: :class:`HealthMonitorConfig` and its watch entries.

Every default of the ``health_monitor`` node lives here (config/health_monitor.yaml and the
robot profile's file only override); the node declares one ROS parameter per field with
:func:`xiaomanlv_core.ros.params.declare_config`. A watched topic is one string
``"<topic> <package/msg/Type> <min_rate> [<publishers>]"`` (a ROS string-array parameter),
parsed into a :class:`TopicWatch`.
"""

from __future__ import annotations

from dataclasses import dataclass

from xiaomanlv_core.config import ConfigError, param, validate_fields

__all__ = ["MAX_PUBLISHERS", "HealthMonitorConfig", "TopicWatch"]

MAX_PUBLISHERS = 1000  # upper bound of a watch's declared publisher count


@dataclass(frozen=True)
class TopicWatch:
    """A topic the monitor watches: ``"<topic> <package/msg/Type> <min_rate> [<publishers>]"``."""

    topic: str
    msg_type: str  # e.g. sensor_msgs/msg/Imu
    min_rate: float  # [Hz]
    max_publishers: int = 1  # more publishers than this on the topic is an ERROR

    @classmethod
    def parse(cls, spec: str, source: str = "watched_topics") -> TopicWatch:
        """Parse ``"/imu/data sensor_msgs/msg/Imu 80"`` (or ``"... 80 2"``: two publishers).

        Raises:
            ConfigError: naming ``source`` and the bad entry.
        """
        parts = spec.split()
        if len(parts) not in (3, 4):
            raise ConfigError(
                f"{source}: entry {spec!r} must be "
                "'<topic> <package/msg/Type> <min_rate Hz> [<max publishers>]'"
            )
        topic, msg_type, rate_text = parts[:3]
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
        publishers = 1
        if len(parts) == 4:
            text = parts[3]
            if not text.isdigit() or not 1 <= int(text) <= MAX_PUBLISHERS:
                raise ConfigError(
                    f"{source}: max publishers {text!r} in {spec!r} is not a whole number "
                    f"in [1, {MAX_PUBLISHERS}]"
                )
            publishers = int(text)
        return cls(topic=topic, msg_type=msg_type, min_rate=min_rate, max_publishers=publishers)


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
    max_stamp_age: float = param(
        1.0,
        low=0.01,
        high=3600.0,
        unit="s",
        description="a header stamp older than this on the ROS clock is an ERROR",
    )  # [s]
    max_stamp_lead: float = param(
        0.5,
        low=0.0,
        high=3600.0,
        unit="s",
        description="a header stamp further ahead of the ROS clock than this is an ERROR",
    )  # [s]
    max_components: int = param(
        256,
        low=1,
        high=10_000,
        description="components tracked at most; a new one beyond is refused unless one is stale",
    )
    max_wait: float = param(
        3600.0,
        low=1.0,
        high=86_400.0,
        unit="s",
        description="longest wait_until_healthy timeout a goal may ask for",
    )  # [s]
    watched_topics: tuple[str, ...] = param(
        (
            "/lidar/points sensor_msgs/msg/PointCloud2 8.0",
            "/imu/data sensor_msgs/msg/Imu 80.0",
            "/wheel/odom nav_msgs/msg/Odometry 40.0",
            "/gnss/fix sensor_msgs/msg/NavSatFix 4.0",
        ),
        description="'<topic> <package/msg/Type> <min_rate Hz> [<max publishers>]' per entry",
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
