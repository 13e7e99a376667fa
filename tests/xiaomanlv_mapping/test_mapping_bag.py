"""Mapping-drive bags: BagWriter -> rosbag2/MCAP on disk -> open_drive, with hand-built messages.

The bags are checked with three independent readers: open_drive, the plain `mcap` library and
rosbags' AnyReader. Every error names the bag file and, where one is at fault, the topic.
"""

from __future__ import annotations

import logging
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from geometry_msgs.msg import PoseStamped
from mcap.reader import make_reader
from nav_msgs.msg import Odometry
from rclpy.serialization import serialize_message
from rosbags.highlevel import AnyReader
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import Imu, NavSatFix, PointCloud2, PointField
from std_msgs.msg import String

from xiaomanlv_core.config import ConfigError
from xiaomanlv_mapping.bag import (
    EXPECTED_TYPES,
    BagWriter,
    DriveTopics,
    RecorderConfig,
    open_drive,
)
from xiaomanlv_mapping.model import BagError
from xiaomanlv_sim.ros.conversions import lidar_to_msg, stamp_of
from xiaomanlv_sim.sensors.lidar import LidarScan

# The drive's topics and types: the ones open_drive reads (one declaration, in bag.py).
_TOPICS = DriveTopics()
LIDAR, IMU, ODOM, GNSS, TRUTH = (
    _TOPICS.lidar,
    _TOPICS.imu,
    _TOPICS.odometry,
    _TOPICS.gnss,
    _TOPICS.truth,
)
TYPES = {getattr(_TOPICS, role): msgtype for role, msgtype in EXPECTED_TYPES.items()}


def ns(t: float) -> int:
    return round(t * 1e9)


def scan_msg(t: float, n: int = 300, seed: int = 0) -> PointCloud2:
    rng = np.random.default_rng(seed)
    return lidar_to_msg(
        LidarScan(
            stamp=t,
            frame_id="lidar_link",
            points=rng.normal(scale=10.0, size=(n, 3)).astype(np.float32),
            intensities=rng.uniform(0, 255, n).astype(np.float32),
            rings=rng.integers(0, 16, n).astype(np.uint16),
        )
    )


def odom_msg(t: float, x: float, y: float, yaw: float, v: float, w: float) -> Odometry:
    msg = Odometry()
    msg.header.stamp = stamp_of(t)
    msg.header.frame_id, msg.child_frame_id = "odom", "base_link"
    msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
    msg.pose.pose.orientation.z, msg.pose.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
    msg.twist.twist.linear.x, msg.twist.twist.angular.z = v, w
    return msg


def imu_msg(t: float, known_orientation: bool = True) -> Imu:
    msg = Imu()
    msg.header.stamp = stamp_of(t)
    msg.header.frame_id = "imu_link"
    msg.angular_velocity.x, msg.angular_velocity.y, msg.angular_velocity.z = 0.1, -0.2, 0.3
    a = msg.linear_acceleration
    a.x, a.y, a.z = 0.5, 0.0, 9.81
    msg.orientation.z, msg.orientation.w = math.sin(0.25), math.cos(0.25)
    if not known_orientation:
        msg.orientation_covariance[0] = -1.0
    return msg


def gnss_msg(t: float, status: int, lat: float, lon: float, alt: float) -> NavSatFix:
    msg = NavSatFix()
    msg.header.stamp = stamp_of(t)
    msg.header.frame_id = "gnss_link"
    msg.status.status = status
    msg.latitude, msg.longitude, msg.altitude = lat, lon, alt
    msg.position_covariance = [1.0, 0, 0, 0, 2.0, 0, 0, 0, 4.0]
    return msg


def truth_msg(t: float, x: float, y: float, yaw: float) -> PoseStamped:
    msg = PoseStamped()
    msg.header.stamp = stamp_of(t)
    msg.header.frame_id = "world"
    msg.pose.position.x, msg.pose.position.y = x, y
    msg.pose.orientation.z, msg.pose.orientation.w = math.sin(yaw / 2), math.cos(yaw / 2)
    return msg


def write_drive(
    path: Path,
    *,
    scans: int = 3,
    points: int = 300,
    skip: tuple[str, ...] = (),
    chunk_size: int = 1 << 20,
) -> Path:
    """A small drive: scans at 10 Hz, odometry at 50 Hz, IMU at 100 Hz, GNSS at 5 Hz, truth."""
    with BagWriter(path, chunk_size=chunk_size) as bag:
        for topic, msgtype in TYPES.items():
            if topic not in skip:
                bag.add_topic(topic, msgtype)
        duration = max(scans, 1) * 0.1
        for k in range(round(duration * 100)):
            t = 0.01 * (k + 1)
            if IMU not in skip:
                bag.write(IMU, serialize_message(imu_msg(t, known_orientation=k != 1)), ns(t))
            if k % 2 == 1:
                if ODOM not in skip:
                    msg = odom_msg(t, 0.5 * t, 0.1, 0.05 * t, 0.5, 0.05)
                    bag.write(ODOM, serialize_message(msg), ns(t))
                if TRUTH not in skip:
                    bag.write(TRUTH, serialize_message(truth_msg(t, t, -t, 0.3)), ns(t))
            if k % 20 == 19 and GNSS not in skip:
                bag.write(GNSS, serialize_message(gnss_msg(t, 0, 30.3, 120.35, 8.0)), ns(t))
            if k % 10 == 9 and LIDAR not in skip:
                bag.write(LIDAR, serialize_message(scan_msg(t, points, seed=k)), ns(t))
    return path


@pytest.fixture
def drive_bag(tmp_path: Path) -> Path:
    return write_drive(tmp_path / "drive")


# ---- round trip ----------------------------------------------------------------------------------
def test_every_series_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "bag"
    with BagWriter(path) as bag:
        for topic, msgtype in TYPES.items():
            bag.add_topic(topic, msgtype)
        bag.write(ODOM, serialize_message(odom_msg(0.02, 1.0, 2.0, 0.5, 0.8, -0.1)), ns(0.02))
        bag.write(ODOM, serialize_message(odom_msg(0.04, 1.1, 2.0, -3.0, 0.9, 0.2)), ns(0.04))
        bag.write(IMU, serialize_message(imu_msg(0.01)), ns(0.01))
        bag.write(IMU, serialize_message(imu_msg(0.02, known_orientation=False)), ns(0.02))
        bag.write(GNSS, serialize_message(gnss_msg(0.2, 0, 30.30, 120.35, 8.0)), ns(0.2))
        bag.write(GNSS, serialize_message(gnss_msg(0.4, -1, math.nan, math.nan, math.nan)), ns(0.4))
        bag.write(GNSS, serialize_message(gnss_msg(0.6, 0, math.nan, 120.35, 8.0)), ns(0.6))
        bag.write(GNSS, serialize_message(gnss_msg(0.8, 2, 30.31, 120.36, 9.0)), ns(0.8))
        bag.write(TRUTH, serialize_message(truth_msg(0.02, 3.0, 4.0, 1.0)), ns(0.02))
        bag.write(TRUTH, serialize_message(truth_msg(0.04, 3.1, 4.2, -2.0)), ns(0.04))
        cloud = scan_msg(0.1, 50)
        bag.write(LIDAR, serialize_message(cloud), ns(0.1))
        bag.write(LIDAR, serialize_message(scan_msg(0.2, 70, seed=1)), ns(0.2))

    drive = open_drive(path)
    assert drive.path == path
    assert drive.duration == pytest.approx(0.79)
    assert drive.scan_count == 2
    odom = drive.odometry
    np.testing.assert_allclose(odom.stamps, [0.02, 0.04])
    np.testing.assert_allclose(odom.poses, [[1.0, 2.0, 0.5], [1.1, 2.0, -3.0]], atol=1e-12)
    np.testing.assert_allclose(odom.twists, [[0.8, -0.1], [0.9, 0.2]])
    imu = drive.imu
    np.testing.assert_allclose(imu.stamps, [0.01, 0.02])
    np.testing.assert_allclose(imu.angular_velocity, [[0.1, -0.2, 0.3]] * 2)
    np.testing.assert_allclose(imu.linear_acceleration, [[0.5, 0.0, 9.81]] * 2)
    np.testing.assert_allclose(imu.orientation[0], [0, 0, math.sin(0.25), math.cos(0.25)])
    assert np.isnan(imu.orientation[1]).all()  # covariance[0] == -1: not given (REP 145)
    gnss = drive.gnss  # no fix (status -1) and a NaN latitude are dropped
    np.testing.assert_allclose(gnss.stamps, [0.2, 0.8])
    np.testing.assert_allclose(gnss.lla, [[30.30, 120.35, 8.0], [30.31, 120.36, 9.0]])
    np.testing.assert_allclose(gnss.variances, [[1.0, 2.0, 4.0]] * 2)
    truth = drive.truth
    assert truth is not None
    np.testing.assert_allclose(truth.stamps, [0.02, 0.04])
    np.testing.assert_allclose(truth.positions(), [[3.0, 4.0, 0.0], [3.1, 4.2, 0.0]])
    np.testing.assert_allclose(
        truth.poses[1, :3, :3], Rotation.from_euler("z", -2.0).as_matrix(), atol=1e-12
    )
    scans = list(drive.scans())
    assert [s.stamp for s in scans] == pytest.approx([0.1, 0.2])
    assert [len(s.points) for s in scans] == [50, 70]
    first = scans[0]
    assert first.points.dtype == np.float32 and first.points.shape == (50, 3)
    assert first.intensities.dtype == np.float32
    expected = np.frombuffer(bytes(cloud.data), dtype=np.float32).reshape(50, 5)  # 20 B/point
    np.testing.assert_array_equal(first.points, expected[:, :3])
    np.testing.assert_array_equal(first.intensities, expected[:, 3])
    assert len(list(drive.scans())) == 2  # scans() reads the bag again on each call


def test_series_are_sorted_by_header_stamp_and_zero_stamps_use_log_time(tmp_path: Path) -> None:
    path = tmp_path / "bag"
    with BagWriter(path) as bag:
        bag.add_topic(ODOM, TYPES[ODOM])
        bag.add_topic(LIDAR, TYPES[LIDAR])
        bag.add_topic(IMU, TYPES[IMU])
        bag.add_topic(GNSS, TYPES[GNSS])
        bag.write(ODOM, serialize_message(odom_msg(0.5, 2.0, 0, 0, 0, 0)), ns(0.6))
        bag.write(ODOM, serialize_message(odom_msg(0.4, 1.0, 0, 0, 0, 0)), ns(0.61))
        bag.write(ODOM, serialize_message(odom_msg(0.0, 9.0, 0, 0, 0, 0)), ns(0.3))
        bag.write(LIDAR, serialize_message(scan_msg(0.0, 10)), ns(0.7))
        bag.write(IMU, serialize_message(imu_msg(0.1)), ns(0.1))
        bag.write(GNSS, serialize_message(gnss_msg(0.1, 0, 30.0, 120.0, 1.0)), ns(0.1))
    drive = open_drive(path)
    np.testing.assert_allclose(drive.odometry.stamps, [0.3, 0.4, 0.5])
    np.testing.assert_allclose(drive.odometry.poses[:, 0], [9.0, 1.0, 2.0])
    assert drive.truth is None  # not recorded: optional
    assert next(drive.scans()).stamp == pytest.approx(0.7)


def test_other_pointcloud2_layouts_are_read_by_their_field_offsets(tmp_path: Path) -> None:
    """Any cloud with FLOAT32 x, y, z: intensity optional and of any numeric type, padded rows,
    big-endian data, non-finite points dropped."""

    def cloud(
        fields: list[tuple[str, int, int]], dtype: np.dtype, rows: np.ndarray, bigendian: bool
    ) -> PointCloud2:
        msg = PointCloud2()
        msg.header.stamp = stamp_of(0.1)
        msg.height, msg.width = 1, len(rows)
        msg.fields = [PointField(name=n, offset=o, datatype=d, count=1) for n, o, d in fields]
        msg.is_bigendian = bigendian
        msg.point_step = dtype.itemsize
        msg.row_step = dtype.itemsize * len(rows)
        msg.data = rows.tobytes()
        return msg

    xyz_only = np.dtype({"names": ["x", "y", "z"], "formats": ["<f4"] * 3, "offsets": [0, 4, 8],
                         "itemsize": 16})  # fmt: skip
    a = np.zeros(3, dtype=xyz_only)
    a["x"], a["y"], a["z"] = [1, 2, math.nan], [3, 4, 5], [5, 6, 7]
    msg_a = cloud([("x", 0, 7), ("y", 4, 7), ("z", 8, 7)], xyz_only, a, False)

    with_u8 = np.dtype({"names": ["intensity", "x", "y", "z"],
                        "formats": ["u1", ">f4", ">f4", ">f4"],
                        "offsets": [0, 4, 8, 12], "itemsize": 16})  # fmt: skip
    b = np.zeros(2, dtype=with_u8)
    b["intensity"], b["x"], b["y"], b["z"] = [7, 200], [1.5, -1.5], [2.5, -2.5], [0.5, -0.5]
    fields_b = [("intensity", 0, 2), ("x", 4, 7), ("y", 8, 7), ("z", 12, 7)]
    msg_b = cloud(fields_b, with_u8, b, True)

    # two rows of two points, each row padded by 8 bytes
    c = np.zeros(4, dtype=xyz_only)
    c["x"] = [1, 2, 3, 4]
    msg_c = cloud([("x", 0, 7), ("y", 4, 7), ("z", 8, 7)], xyz_only, c, False)
    rows = np.frombuffer(c.tobytes(), dtype=np.uint8).reshape(2, 32)
    msg_c.data = np.hstack([rows, np.zeros((2, 8), np.uint8)]).tobytes()
    msg_c.height, msg_c.width, msg_c.row_step = 2, 2, 40

    path2 = tmp_path / "clouds"
    with BagWriter(path2) as bag:
        for topic in (LIDAR, IMU, ODOM, GNSS):
            bag.add_topic(topic, TYPES[topic])
        bag.write(IMU, serialize_message(imu_msg(0.1)), ns(0.1))
        bag.write(ODOM, serialize_message(odom_msg(0.1, 0, 0, 0, 0, 0)), ns(0.1))
        bag.write(GNSS, serialize_message(gnss_msg(0.1, 0, 30.0, 120.0, 1.0)), ns(0.1))
        for i, msg in enumerate((msg_a, msg_b, msg_c)):
            bag.write(LIDAR, serialize_message(msg), ns(0.2 + i))
    sa, sb, sc = open_drive(path2).scans()
    np.testing.assert_array_equal(sa.points, [[1, 3, 5], [2, 4, 6]])  # NaN point dropped
    np.testing.assert_array_equal(sa.intensities, [0, 0])  # no intensity field
    np.testing.assert_array_equal(sb.points, [[1.5, 2.5, 0.5], [-1.5, -2.5, -0.5]])
    np.testing.assert_array_equal(sb.intensities, [7, 200])
    assert sb.intensities.dtype == np.float32
    np.testing.assert_array_equal(sc.points[:, 0], [1, 2, 3, 4])


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


def test_an_intact_mcap_without_metadata_yaml_is_read_from_its_summary(
    drive_bag: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (drive_bag / "metadata.yaml").unlink()
    with caplog.at_level(logging.WARNING):
        drive = open_drive(drive_bag)
    assert "metadata.yaml is missing" in caplog.text
    assert drive.scan_count == 3 and len(drive.odometry.stamps) == 15
    assert len(list(drive.scans())) == 3
    single = open_drive(drive_bag / "drive_0.mcap")  # the file alone, as `ros2 bag` accepts
    assert single.scan_count == 3


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


# ---- reader errors: missing, truncated, corrupt --------------------------------------------------
def test_no_such_directory(tmp_path: Path) -> None:
    with pytest.raises(BagError, match=r"bag .*/nowhere: no such directory"):
        open_drive(tmp_path / "nowhere")


def test_a_directory_without_metadata_or_mcap(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("hello")
    with pytest.raises(BagError, match=r"empty: neither metadata.yaml nor an .mcap file"):
        open_drive(tmp_path / "empty")


def test_a_bag_cut_in_half_is_truncated(drive_bag: Path) -> None:
    file = drive_bag / "drive_0.mcap"
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])
    with pytest.raises(BagError, match=r"drive_0.mcap is truncated: it ends without the MCAP foot"):
        open_drive(drive_bag)


def test_a_recorder_killed_while_writing_leaves_a_bag_reported_as_interrupted(
    tmp_path: Path,
) -> None:
    """The writer process dies without closing (os._exit: no cleanup, as SIGKILL)."""
    path = tmp_path / "killed"
    script = f"""
import os
from pathlib import Path
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Imu
from xiaomanlv_mapping.bag import BagWriter
bag = BagWriter(Path({str(path)!r}), chunk_size=4096)
bag.add_topic("/imu/data", "sensor_msgs/msg/Imu")
for i in range(500):
    bag.write("/imu/data", serialize_message(Imu()), i * 10_000_000)
os._exit(9)
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    assert not (path / "metadata.yaml").exists()
    assert (path / "killed_0.mcap").stat().st_size > 4096  # complete chunks reached the disk
    with pytest.raises(
        BagError,
        match=r"killed_0.mcap is truncated: .* metadata.yaml is missing: the recording was "
        r"interrupted",
    ):
        open_drive(path)


def test_a_corrupt_chunk_is_reported_with_the_file(tmp_path: Path) -> None:
    path = write_drive(tmp_path / "flipped", scans=10, points=2000, chunk_size=128 * 1024)
    file = path / "flipped_0.mcap"
    with file.open("rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None and len(summary.chunk_indexes) > 2
    chunk = summary.chunk_indexes[1]
    middle = chunk.chunk_start_offset + chunk.chunk_length // 2
    data = bytearray(file.read_bytes())
    data[middle : middle + 64] = bytes(b ^ 0xFF for b in data[middle : middle + 64])
    file.write_bytes(bytes(data))
    with pytest.raises(BagError, match=r"bag .*flipped \(flipped_0.mcap\): corrupt data"):
        open_drive(path)


def test_a_file_that_is_not_mcap(tmp_path: Path) -> None:
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "junk_0.mcap").write_bytes(b"not an mcap file at all, really")
    with pytest.raises(BagError, match=r"junk_0.mcap is not an MCAP file"):
        open_drive(tmp_path / "junk")


def test_malformed_metadata_yaml(drive_bag: Path) -> None:
    (drive_bag / "metadata.yaml").write_text("rosbag2_bagfile_information: [unclosed")
    with pytest.raises(BagError, match=r"drive: metadata.yaml is malformed"):
        open_drive(drive_bag)


# ---- reader errors: topics and messages ----------------------------------------------------------
def test_a_missing_required_topic_is_named_with_what_the_bag_has(tmp_path: Path) -> None:
    path = write_drive(tmp_path / "no_gnss", skip=(GNSS,))
    with pytest.raises(
        BagError,
        match=r"no topic /gnss/fix \(gnss, sensor_msgs/msg/NavSatFix\); the bag has: "
        r"/imu/data \(sensor_msgs/msg/Imu\), /lidar/points",
    ):
        open_drive(path)
    drive = open_drive(path, DriveTopics(gnss=""))  # a drive without GNSS, said so
    assert drive.gnss.lla.shape == (0, 3) and drive.scan_count == 3


def test_other_topic_names(tmp_path: Path) -> None:
    path = tmp_path / "renamed"
    with BagWriter(path) as bag:
        for topic, name in ((LIDAR, "/velodyne_points"), (IMU, "/imu"), (ODOM, "/odom"),
                            (GNSS, "/fix")):  # fmt: skip
            bag.add_topic(name, TYPES[topic])
        bag.write("/velodyne_points", serialize_message(scan_msg(0.1, 5)), ns(0.1))
        bag.write("/imu", serialize_message(imu_msg(0.1)), ns(0.1))
        bag.write("/odom", serialize_message(odom_msg(0.1, 0, 0, 0, 0, 0)), ns(0.1))
        bag.write("/fix", serialize_message(gnss_msg(0.1, 0, 1.0, 2.0, 3.0)), ns(0.1))
    drive = open_drive(path, DriveTopics("/velodyne_points", "/imu", "/odom", "/fix", "/truth"))
    assert drive.scan_count == 1 and drive.truth is None and len(drive.gnss.stamps) == 1


def test_a_topic_of_the_wrong_type(tmp_path: Path) -> None:
    path = tmp_path / "wrong"
    with BagWriter(path) as bag:
        for topic in (LIDAR, ODOM, GNSS):
            bag.add_topic(topic, TYPES[topic])
        bag.add_topic(IMU, "std_msgs/msg/String")
        bag.write(IMU, serialize_message(String(data="imu?")), ns(0.1))
    with pytest.raises(
        BagError,
        match=r"topic /imu/data \(imu\) is std_msgs/msg/String, expected sensor_msgs/msg/I",
    ):
        open_drive(path)
    path = tmp_path / "wrong_truth"
    with BagWriter(path) as bag:
        bag.add_topic(TRUTH, TYPES[ODOM])
    with pytest.raises(BagError, match=r"topic /sim/ground_truth/pose \(truth\) is nav_msgs"):
        open_drive(path, DriveTopics(lidar="", imu="", odometry="", gnss=""))


def test_a_required_topic_without_messages(tmp_path: Path) -> None:
    path = tmp_path / "silent"
    with BagWriter(path) as bag:
        for topic in (LIDAR, IMU, ODOM, GNSS):
            bag.add_topic(topic, TYPES[topic])
        bag.write(IMU, serialize_message(imu_msg(0.1)), ns(0.1))
    with pytest.raises(BagError, match=r"topic /lidar/points \(lidar\) has no messages"):
        open_drive(path)


def test_a_malformed_message_is_named_by_topic_and_index(tmp_path: Path) -> None:
    path = tmp_path / "garbled"
    with BagWriter(path) as bag:
        for topic in (LIDAR, IMU, ODOM, GNSS):
            bag.add_topic(topic, TYPES[topic])
        bag.write(LIDAR, serialize_message(scan_msg(0.1, 5)), ns(0.1))
        bag.write(ODOM, serialize_message(odom_msg(0.1, 0, 0, 0, 0, 0)), ns(0.1))
        bag.write(GNSS, serialize_message(gnss_msg(0.1, 0, 1.0, 2.0, 3.0)), ns(0.1))
        bag.write(IMU, serialize_message(imu_msg(0.1)), ns(0.1))
        bag.write(IMU, serialize_message(imu_msg(0.2)), ns(0.2))
        bag.write(IMU, b"\x00\x01\x00\x00\x05", ns(0.3))  # a CDR header and five bytes
    with pytest.raises(
        BagError, match=r"bag .*garbled \(garbled_0.mcap\): message #2 on /imu/data"
    ):
        open_drive(path)


def test_a_cloud_without_x_y_z_is_malformed(tmp_path: Path) -> None:
    bad = scan_msg(0.2, 5)
    bad.fields = [f for f in bad.fields if f.name != "y"]
    wide = scan_msg(0.3, 5)
    wide.width = 500  # more points than data
    for name, cloud, why in (
        ("no_y", bad, r"message #1 on /lidar/points is malformed: PointCloud2 has no field 'y'"),
        ("wide", wide, r"message #1 on /lidar/points is malformed: PointCloud2 layout"),
    ):
        path = tmp_path / name
        with BagWriter(path) as bag:
            for topic in (LIDAR, IMU, ODOM, GNSS):
                bag.add_topic(topic, TYPES[topic])
            bag.write(IMU, serialize_message(imu_msg(0.1)), ns(0.1))
            bag.write(ODOM, serialize_message(odom_msg(0.1, 0, 0, 0, 0, 0)), ns(0.1))
            bag.write(GNSS, serialize_message(gnss_msg(0.1, 0, 1.0, 2.0, 3.0)), ns(0.1))
            bag.write(LIDAR, serialize_message(scan_msg(0.1, 5)), ns(0.1))
            bag.write(LIDAR, serialize_message(cloud), ns(0.2))
        drive = open_drive(path)  # scans are read when streamed
        scans = drive.scans()
        assert len(next(scans).points) == 5
        with pytest.raises(BagError, match=why):
            next(scans)


# ---- the recorder node's settings ----------------------------------------------------------------
def test_recorder_config_defaults_and_validation() -> None:
    cfg = RecorderConfig()
    assert cfg.topics == (LIDAR, IMU, ODOM, GNSS) and cfg.optional_topics == (TRUTH,)
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
