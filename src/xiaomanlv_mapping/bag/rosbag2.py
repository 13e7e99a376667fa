"""What the bag writer and reader share: the rosbag2 layout of Jazzy and its typestore.

``ros2 bag record -s mcap`` on Jazzy writes a directory ``<name>/`` holding ``<name>_0.mcap``
and ``metadata.yaml`` (``rosbag2_bagfile_information`` version 9). Message definitions and
RIHS01 type hashes come from rosbags' typestore of the Jazzy message packages.
"""

from __future__ import annotations

import functools

from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore

ROSBAG2_VERSION = 9  # bagfile_information version of Jazzy's rosbag2
ROS_DISTRO = "jazzy"
MCAP_MAGIC = b"\x89MCAP0\r\n"
METADATA_FILE = "metadata.yaml"

# What a recording says about itself in metadata.yaml's custom_data (string values), so a map
# build and an evaluation need not be told the site again (`recorded_site`).
WORLD_KEY = "xiaomanlv.world"  # the world name or SDF path the drive was recorded in
SITE_KEY = "xiaomanlv.site"  # the site's name (its sidecar's ``name``)
SITE_FILE_KEY = "xiaomanlv.site_file"  # absolute path of the site sidecar (*.site.yaml)


@functools.cache
def jazzy_typestore() -> Typestore:
    """rosbags' typestore of the ROS 2 Jazzy message packages (built once)."""
    return get_typestore(Stores.ROS2_JAZZY)
