"""Configuration of the mapping nodes: :class:`MapServerConfig` and :class:`RecorderConfig`.

Every default of the ``map_server`` and ``map_recorder`` nodes lives here (config/*.yaml only
override); each node declares one ROS parameter per field with
:func:`xiaomanlv_core.ros.params.declare_config`. The build's settings (``BuildConfig`` and the
stages' configs) stay with the cores that use them: they are not node parameters.
"""

from __future__ import annotations

from dataclasses import dataclass

from xiaomanlv_core.config import ConfigError, param, validate_fields

__all__ = ["BAG_COMPRESSIONS", "MapServerConfig", "RecorderConfig"]

# Chunk compressions the bag writer offers (xiaomanlv_mapping.bag.BagWriter's ``compression``).
BAG_COMPRESSIONS = ("zstd", "lz4", "none")


@dataclass(frozen=True)
class MapServerConfig:
    """Parameters of the ``map_server`` node (``xiaomanlv_mapping.nodes.map_server``)."""

    map: str = param("", description="map directory; empty: maps/<site> (source tree, then share)")
    site: str = param("university", description="site whose map to serve when map is empty")
    diagnostics_rate: float = param(
        1.0, low=0.1, high=10.0, unit="Hz", description="/diagnostics per wall second"
    )  # [Hz]

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass(frozen=True)
class RecorderConfig:
    """Parameters of the ``map_recorder`` node (``xiaomanlv_mapping.nodes.recorder``)."""

    output: str = param("", description="bag directory to create (required; never overwritten)")
    site: str = param(
        "",
        description="the site being mapped, recorded in the bag so `map build` needs no --site",
    )
    topics: tuple[str, ...] = param(
        ("/lidar/points", "/imu/data", "/wheel/odom", "/gnss/fix"),
        description="absolute topics to record; each is waited for until a publisher appears",
    )
    optional_topics: tuple[str, ...] = param(
        ("/gnss/vel", "/sim/ground_truth/pose"),
        description="topics recorded when a publisher appears, never waited for",
    )
    compression: str = param("zstd", description="chunk compression: zstd, lz4 or none")
    queue_depth: int = param(
        50, low=1, high=10000, description="subscription history depth (sensor-data QoS)"
    )
    discovery_period: float = param(
        0.5, low=0.05, high=60.0, unit="s", description="graph check for topics not yet seen"
    )  # [s]
    diagnostics_rate: float = param(
        1.0, low=0.1, high=10.0, unit="Hz", description="/diagnostics per wall second"
    )  # [Hz]

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.compression not in BAG_COMPRESSIONS:
            raise ConfigError(
                f"parameter 'compression' = '{self.compression}' is not one of "
                f"{', '.join(BAG_COMPRESSIONS)}"
            )
        listed = [*self.topics, *self.optional_topics]
        if not self.topics:
            raise ConfigError("parameter 'topics' needs at least one topic")
        relative = [t for t in listed if not t.startswith("/") or not t.strip("/")]
        if relative:
            raise ConfigError(
                f"topics/optional_topics: {', '.join(map(repr, relative))} are not absolute "
                "topic names (/name)"
            )
        twice = sorted({t for t in listed if listed.count(t) > 1})
        if twice:
            raise ConfigError(f"topics/optional_topics: {', '.join(twice)} listed more than once")
