"""Mapping-drive bags: write a rosbag2 bag with MCAP storage (writer.py), read a drive back
from one (reader.py); rosbag2.py holds what both share (Jazzy's layout, the typestore).

This package re-exports the public API, so ``from xiaomanlv_mapping.bag import BagWriter,
open_drive`` works as before the split. docs/mapping.md, "Record", describes the bags.
"""

from __future__ import annotations

from xiaomanlv_mapping.bag.reader import (
    EXPECTED_TYPES,
    OPTIONAL_ROLES,
    Drive,
    DriveTopics,
    RecordedSite,
    cloud_points,
    malformed,
    open_drive,
    recorded_custom_data,
    recorded_site,
)
from xiaomanlv_mapping.bag.rosbag2 import (
    MCAP_MAGIC,
    METADATA_FILE,
    ROS_DISTRO,
    ROSBAG2_VERSION,
    SITE_FILE_KEY,
    SITE_KEY,
    WORLD_KEY,
    jazzy_typestore,
)
from xiaomanlv_mapping.bag.writer import INFINITE, SENSOR_QOS, BagWriter, qos_to_dicts
from xiaomanlv_mapping.model import BagError

__all__ = [
    "EXPECTED_TYPES",
    "INFINITE",
    "MCAP_MAGIC",
    "METADATA_FILE",
    "OPTIONAL_ROLES",
    "ROSBAG2_VERSION",
    "ROS_DISTRO",
    "SENSOR_QOS",
    "SITE_FILE_KEY",
    "SITE_KEY",
    "WORLD_KEY",
    "BagError",
    "BagWriter",
    "Drive",
    "DriveTopics",
    "RecordedSite",
    "cloud_points",
    "jazzy_typestore",
    "malformed",
    "open_drive",
    "qos_to_dicts",
    "recorded_custom_data",
    "recorded_site",
]
