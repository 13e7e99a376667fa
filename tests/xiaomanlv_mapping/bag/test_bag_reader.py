"""open_drive: a mapping drive read back from a bag, with hand-built messages.

Every error names the bag file and, where one is at fault, the topic.
"""

from __future__ import annotations

import logging
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
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
    truth_msg,
    write_drive,
)
from mcap.reader import make_reader
from rclpy.serialization import serialize_message
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import String

from xiaomanlv_mapping.bag import (
    SITE_FILE_KEY,
    SITE_KEY,
    WORLD_KEY,
    BagWriter,
    DriveTopics,
    RecordedSite,
    open_drive,
    recorded_custom_data,
    recorded_site,
)
from xiaomanlv_mapping.model import BagError
from xiaomanlv_sim.ros.conversions import stamp_of


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
    expected = np.frombuffer(bytes(cloud.data), dtype=np.float32).reshape(50, 6)  # 24 B/point
    np.testing.assert_array_equal(first.points, expected[:, :3])
    np.testing.assert_array_equal(first.intensities, expected[:, 3])
    assert first.times is not None and first.times.dtype == np.float32
    np.testing.assert_array_equal(first.times, expected[:, 5])  # t [s] after the stamp
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
        bag.write(ODOM, serialize_message(odom_msg(0.0, 9.0, 0, 0, 0, 0)), ns(100.3))
        bag.write(LIDAR, serialize_message(scan_msg(0.0, 10)), ns(100.7))
        bag.write(IMU, serialize_message(imu_msg(0.1)), ns(0.1))
        bag.write(GNSS, serialize_message(gnss_msg(0.1, 0, 30.0, 120.0, 1.0)), ns(0.1))
    drive = open_drive(path)
    np.testing.assert_allclose(drive.odometry.stamps, [0.4, 0.5, 100.3])
    np.testing.assert_allclose(drive.odometry.poses[:, 0], [1.0, 2.0, 9.0])
    assert drive.truth is None  # not recorded: optional
    assert next(drive.scans()).stamp == pytest.approx(100.7)


def test_a_zero_stamp_in_the_first_second_of_sim_time_is_a_time(tmp_path: Path) -> None:
    # The simulator's first sweep begins at power-on (t = 0) and is logged at 0.1 s: it keeps
    # its stamp, so the next sweep (stamped 0.1) does not share it.
    path = tmp_path / "bag"
    with BagWriter(path) as bag:
        for topic in (ODOM, LIDAR, IMU, GNSS):
            bag.add_topic(topic, TYPES[topic])
        bag.write(ODOM, serialize_message(odom_msg(0.1, 0.0, 0, 0, 0, 0)), ns(0.1))
        bag.write(LIDAR, serialize_message(scan_msg(0.0, 10)), ns(0.1))
        bag.write(LIDAR, serialize_message(scan_msg(0.1, 10)), ns(0.2))
        bag.write(IMU, serialize_message(imu_msg(0.1)), ns(0.1))
        bag.write(GNSS, serialize_message(gnss_msg(0.1, 0, 30.0, 120.0, 1.0)), ns(0.1))
    assert [s.stamp for s in open_drive(path).scans()] == pytest.approx([0.0, 0.1])


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


def test_per_point_times_are_read_from_t_or_time(tmp_path: Path) -> None:
    """Ouster's UINT32 ``t`` in nanoseconds and Velodyne's FLOAT32 ``time`` in seconds become
    Scan.times [s]; a cloud without either (Gazebo's gpu_lidar) has none; a time field that is
    not one number per point is refused."""

    def cloud(name: str, kind: str, datatype: int, values: list[float], count: int = 1):
        dtype = np.dtype({"names": ["x", "y", "z", name], "formats": ["<f4"] * 3 + [kind],
                          "offsets": [0, 4, 8, 12], "itemsize": 16})  # fmt: skip
        rows = np.zeros(len(values), dtype=dtype)
        rows["x"], rows[name] = 1.0, values
        msg = PointCloud2()
        msg.header.stamp = stamp_of(0.1)
        msg.height, msg.width, msg.point_step = 1, len(values), 16
        msg.row_step = 16 * len(values)
        fields = [("x", 0, 7), ("y", 4, 7), ("z", 8, 7), (name, 12, datatype)]
        msg.fields = [
            PointField(name=n, offset=o, datatype=d, count=count if n == name else 1)
            for n, o, d in fields
        ]
        msg.data = rows.tobytes()
        return msg

    ouster = cloud("t", "<u4", PointField.UINT32, [0, 50_000_000, 99_000_000])
    velodyne = cloud("time", "<f4", PointField.FLOAT32, [0.0, 0.025, 0.05])
    plain = cloud("intensity", "<f4", PointField.FLOAT32, [1.0, 2.0, 3.0])
    bad = cloud("t", "<f4", PointField.FLOAT32, [0.0, 0.1, 0.2], count=2)
    path = tmp_path / "times"
    with BagWriter(path) as bag:
        for topic in (LIDAR, IMU, ODOM, GNSS):
            bag.add_topic(topic, TYPES[topic])
        bag.write(IMU, serialize_message(imu_msg(0.1)), ns(0.1))
        bag.write(ODOM, serialize_message(odom_msg(0.1, 0, 0, 0, 0, 0)), ns(0.1))
        bag.write(GNSS, serialize_message(gnss_msg(0.1, 0, 30.0, 120.0, 1.0)), ns(0.1))
        for i, msg in enumerate((ouster, velodyne, plain, bad)):
            bag.write(LIDAR, serialize_message(msg), ns(0.2 + i))
    scans = open_drive(path).scans()
    first, second, third = next(scans), next(scans), next(scans)
    np.testing.assert_allclose(first.times, [0.0, 0.05, 0.099], rtol=1e-6)
    np.testing.assert_allclose(second.times, [0.0, 0.025, 0.05], rtol=1e-6)
    assert third.times is None
    with pytest.raises(BagError, match=r"message #3 on /lidar/points .* time field 't'"):
        next(scans)


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
    wide.width = 500  # more points than a row holds
    short = scan_msg(0.3, 5)
    short.width, short.row_step = 500, 500 * short.point_step  # more points than data
    for name, cloud, why in (
        ("no_y", bad, r"message #1 on /lidar/points is malformed: PointCloud2 has no field 'y'"),
        ("wide", wide, r"malformed: PointCloud2 row_step 120 is shorter than width 500 x point"),
        ("short", short, r"malformed: PointCloud2 data holds 120 bytes, the layout needs 12000"),
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


def test_the_recorded_site_is_read_back_from_metadata_or_the_mcap_alone(tmp_path: Path) -> None:
    path = tmp_path / "bag"
    custom = {WORLD_KEY: "university", SITE_KEY: "university", SITE_FILE_KEY: "/x/u.site.yaml"}
    with BagWriter(path, custom_data=custom) as b:
        b.add_topic(LIDAR, TYPES[LIDAR])
        b.write(LIDAR, serialize_message(scan_msg(0.0, 10, seed=0)), ns(0.0))
    assert recorded_site(path) == RecordedSite("university", "university", "/x/u.site.yaml")
    (path / "metadata.yaml").unlink()  # the MCAP's rosbag2 record says the same
    assert recorded_custom_data(path) == custom
    assert recorded_site(path / "bag_0.mcap").site_file == "/x/u.site.yaml"
    bare = tmp_path / "bare"
    with BagWriter(bare) as b:  # a robot's map_recorder records no site
        b.add_topic(LIDAR, TYPES[LIDAR])
    assert recorded_site(bare) == RecordedSite("", "", "")
