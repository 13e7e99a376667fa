"""BagWriter: rosbag2 v9 with MCAP storage, as ros2 bag, the mcap library and rosbags read it.

Every writer error names the bag; a bag left by an exception is still closed and readable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from bag_rig import (
    GNSS,
    IMU,
    LIDAR,
    ODOM,
    TRUTH,
    TYPES,
    gnss_msg,
    imu_msg,
    ns,
    odom_msg,
    scan_msg,
)
from mcap.reader import make_reader
from rclpy.serialization import serialize_message
from rosbags.highlevel import AnyReader

from xiaomanlv_mapping.bag import BagWriter, open_drive
from xiaomanlv_mapping.model import BagError


# ---- what other tools see ------------------------------------------------------------------------
def test_metadata_yaml_is_rosbag2_version_9_with_mcap_storage(drive_bag: Path) -> None:
    meta = yaml.safe_load((drive_bag / "metadata.yaml").read_text())
    info = meta["rosbag2_bagfile_information"]
    assert info["version"] == 9
    assert info["storage_identifier"] == "mcap"
    assert info["relative_file_paths"] == ["drive_0.mcap"]
    assert info["ros_distro"] == "jazzy"
    assert info["compression_format"] == "" and info["compression_mode"] == ""
    assert info["starting_time"]["nanoseconds_since_epoch"] == ns(0.01)
    assert info["duration"]["nanoseconds"] == ns(0.3) - ns(0.01)
    topics = {t["topic_metadata"]["name"]: t for t in info["topics_with_message_count"]}
    assert set(topics) == set(TYPES)
    counts = {name: t["message_count"] for name, t in topics.items()}
    assert counts == {LIDAR: 3, IMU: 30, ODOM: 15, GNSS: 1, TRUTH: 15}
    assert info["message_count"] == sum(counts.values())
    assert info["files"][0]["path"] == "drive_0.mcap"
    assert info["files"][0]["message_count"] == sum(counts.values())
    lidar = topics[LIDAR]["topic_metadata"]
    assert lidar["type"] == "sensor_msgs/msg/PointCloud2"
    assert lidar["serialization_format"] == "cdr"
    assert lidar["type_description_hash"] == (
        "RIHS01_9198cabf7da3796ae6fe19c4cb3bdd3525492988c70522628af5daa124bae2b5"
    )  # the hash rosidl generated for Jazzy's sensor_msgs/msg/PointCloud2
    (qos,) = lidar["offered_qos_profiles"]
    assert qos["history"] == "keep_last" and qos["depth"] == 10
    assert qos["reliability"] == "reliable" and qos["durability"] == "volatile"
    assert qos["deadline"] == {"sec": 9223372036, "nsec": 854775807}
    assert sorted(p.name for p in drive_bag.iterdir()) == ["drive_0.mcap", "metadata.yaml"]


def test_the_mcap_library_reads_schemas_channels_and_messages(drive_bag: Path) -> None:
    with (drive_bag / "drive_0.mcap").open("rb") as f:
        reader = make_reader(f, validate_crcs=True)
        assert reader.get_header().profile == "ros2"
        summary = reader.get_summary()
        assert summary is not None
        schemas = {s.name: s for s in summary.schemas.values()}
        assert set(schemas) == set(TYPES.values())
        cloud = schemas["sensor_msgs/msg/PointCloud2"]
        assert cloud.encoding == "ros2msg"
        text = cloud.data.decode()
        # a full definition: the message, then each dependency after a separator
        assert text.startswith("std_msgs/Header header\n")
        assert "=" * 80 + "\nMSG: std_msgs/Header\n" in text
        assert "MSG: sensor_msgs/PointField\n" in text and "uint8 FLOAT32=7" in text
        channels = {c.topic: c for c in summary.channels.values()}
        assert set(channels) == set(TYPES)
        for topic, channel in channels.items():
            assert channel.message_encoding == "cdr"
            assert summary.schemas[channel.schema_id].name == TYPES[topic]
            assert "reliability: reliable" in channel.metadata["offered_qos_profiles"]
            assert channel.metadata["topic_type_hash"].startswith("RIHS01_")
        assert summary.statistics is not None and summary.statistics.message_count == 64
        assert summary.chunk_indexes and {c.compression for c in summary.chunk_indexes} == {"zstd"}
        stamps: dict[str, list[int]] = {t: [] for t in TYPES}
        for _schema, channel, message in reader.iter_messages(log_time_order=True):
            stamps[channel.topic].append(message.log_time)
        assert len(stamps[LIDAR]) == 3 and stamps[LIDAR] == sorted(stamps[LIDAR])
        (record,) = list(reader.iter_metadata())
        assert record.name == "rosbag2"
        serialized = yaml.safe_load(record.metadata["serialized_metadata"])
        assert serialized["message_count"] == 64


def test_rosbags_anyreader_reads_and_decodes_the_bag(drive_bag: Path) -> None:
    with AnyReader([drive_bag]) as reader:  # no default typestore: the bag's own definitions
        assert {c.topic: c.msgtype for c in reader.connections} == TYPES
        conn = next(c for c in reader.connections if c.topic == GNSS)
        ((_, log_time, raw),) = list(reader.messages(connections=[conn]))
        msg: Any = reader.deserialize(raw, conn.msgtype)
        assert log_time == ns(0.2)
        assert msg.latitude == pytest.approx(30.3)
        assert msg.header.frame_id == "gnss_link"


def test_custom_data_and_a_smaller_chunk_size(tmp_path: Path) -> None:
    path = tmp_path / "bag"
    with BagWriter(path, chunk_size=64 * 1024, custom_data={"xiaomanlv.world": "university"}) as b:
        b.add_topic(LIDAR, TYPES[LIDAR])
        for i in range(5):
            b.write(LIDAR, serialize_message(scan_msg(0.1 * i, 2000, seed=i)), ns(0.1 * i))
        assert b.counts == {LIDAR: 5} and b.topics == {LIDAR: TYPES[LIDAR]}
    info = yaml.safe_load((path / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert info["custom_data"] == {"xiaomanlv.world": "university"}
    with (path / "bag_0.mcap").open("rb") as f:
        summary = make_reader(f).get_summary()
    # a chunk is closed once it grows past chunk_size: two 40 kB scans each
    assert summary is not None and len(summary.chunk_indexes) == 3


# ---- writer errors -------------------------------------------------------------------------------
def test_writer_refuses_an_existing_path_and_bad_arguments(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    with pytest.raises(BagError, match=r"taken: exists already"):
        BagWriter(tmp_path / "taken")
    with pytest.raises(BagError, match=r"compression 'gzip' is not one of zstd, lz4, none"):
        BagWriter(tmp_path / "gz", compression="gzip")
    with BagWriter(tmp_path / "bag") as bag:
        with pytest.raises(BagError, match=r"topic /imu/data was not added"):
            bag.write(IMU, b"\x00\x01\x00\x00", 0)
        with pytest.raises(BagError, match=r"topic /x: message type 'nope/msg/Nope' is unknown"):
            bag.add_topic("/x", "nope/msg/Nope")
        bag.add_topic(IMU, TYPES[IMU])
        bag.add_topic(IMU, TYPES[IMU])  # the same again is fine
        with pytest.raises(BagError, match=r"topic /imu/data was added as sensor_msgs/msg/Imu"):
            bag.add_topic(IMU, TYPES[ODOM])
        with pytest.raises(BagError, match=r"negative log time"):
            bag.write(IMU, serialize_message(imu_msg(0.0)), -1)
    with pytest.raises(BagError, match=r"closed"):
        bag.write(IMU, serialize_message(imu_msg(0.0)), 0)
    bag.close()  # idempotent


def test_lz4_and_uncompressed_bags_read_back(tmp_path: Path) -> None:
    for compression in ("lz4", "none"):
        path = tmp_path / compression
        with BagWriter(path, compression=compression) as bag:
            for topic in (LIDAR, IMU, ODOM, GNSS):
                bag.add_topic(topic, TYPES[topic])
            bag.write(IMU, serialize_message(imu_msg(0.1)), ns(0.1))
            bag.write(ODOM, serialize_message(odom_msg(0.1, 1, 2, 0, 0, 0)), ns(0.1))
            bag.write(GNSS, serialize_message(gnss_msg(0.1, 0, 30.0, 120.0, 1.0)), ns(0.1))
            bag.write(LIDAR, serialize_message(scan_msg(0.1, 20)), ns(0.1))
        assert [len(s.points) for s in open_drive(path).scans()] == [20]


def test_an_exception_inside_the_writer_still_closes_the_bag(tmp_path: Path) -> None:
    """What was written before a failure stays readable (footer and metadata.yaml written)."""
    path = tmp_path / "failed"
    with pytest.raises(RuntimeError, match="driver died"), BagWriter(path) as bag:
        for topic in (LIDAR, IMU, ODOM, GNSS):
            bag.add_topic(topic, TYPES[topic])
        bag.write(IMU, serialize_message(imu_msg(0.1)), ns(0.1))
        bag.write(ODOM, serialize_message(odom_msg(0.1, 1, 2, 0, 0, 0)), ns(0.1))
        bag.write(GNSS, serialize_message(gnss_msg(0.1, 0, 30.0, 120.0, 1.0)), ns(0.1))
        bag.write(LIDAR, serialize_message(scan_msg(0.1, 20)), ns(0.1))
        raise RuntimeError("driver died")
    assert bag.closed and (path / "metadata.yaml").is_file()
    drive = open_drive(path)
    assert drive.scan_count == 1 and len(drive.odometry.stamps) == 1
