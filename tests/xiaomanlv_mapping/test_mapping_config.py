"""The mapping nodes' configs: defaults, ranges and cross-field checks."""

from __future__ import annotations

import pytest

from xiaomanlv_core.config import ConfigError
from xiaomanlv_mapping.bag import DriveTopics
from xiaomanlv_mapping.config import MapServerConfig, RecorderConfig

_TOPICS = DriveTopics()
LIDAR, IMU, ODOM, GNSS, TRUTH = (
    _TOPICS.lidar,
    _TOPICS.imu,
    _TOPICS.odometry,
    _TOPICS.gnss,
    _TOPICS.truth,
)


def test_map_server_config_ranges() -> None:
    assert MapServerConfig().site == "university" and MapServerConfig().map == ""
    with pytest.raises(ValueError, match=r"diagnostics_rate"):
        MapServerConfig(diagnostics_rate=0.0)


def test_recorder_config_defaults_and_validation() -> None:
    cfg = RecorderConfig()
    assert cfg.topics == (LIDAR, IMU, ODOM, GNSS)
    assert cfg.optional_topics == ("/gnss/vel", TRUTH) and cfg.site == ""
    with pytest.raises(ConfigError, match=r"'compression' = 'gzip'"):
        RecorderConfig(compression="gzip")
    with pytest.raises(ConfigError, match=r"/imu/data listed more than once"):
        RecorderConfig(optional_topics=(IMU,))
    with pytest.raises(ConfigError, match=r"'imu/data' are not absolute topic names"):
        RecorderConfig(topics=("imu/data",))
    with pytest.raises(ConfigError, match=r"'topics' needs at least one topic"):
        RecorderConfig(topics=())
    with pytest.raises(ConfigError, match=r"'queue_depth' = 0 is out of range"):
        RecorderConfig(queue_depth=0)
