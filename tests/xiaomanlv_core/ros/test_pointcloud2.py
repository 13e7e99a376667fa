"""Tests for xiaomanlv_core.ros.pointcloud2 on hand-built PointCloud2 messages."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import PointCloud2, PointField

from xiaomanlv_core.ros.pointcloud2 import (
    DATATYPES,
    PointCloudError,
    columns_array,
    create_cloud,
    fields_dtype,
    read_fields,
    read_points,
    read_xyz,
    xyz_cloud,
)

STAMP = Time(sec=3, nanosec=250)
NAN = math.nan
STRUCT = {  # PointField datatype -> struct format character
    PointField.INT8: "b",
    PointField.UINT8: "B",
    PointField.INT16: "h",
    PointField.UINT16: "H",
    PointField.INT32: "i",
    PointField.UINT32: "I",
    PointField.FLOAT32: "f",
    PointField.FLOAT64: "d",
}


def field(name: str, offset: int, datatype: int, count: int = 1) -> PointField:
    return PointField(name=name, offset=offset, datatype=datatype, count=count)


def cloud_msg(
    fields: list[PointField],
    data: bytes,
    *,
    width: int,
    height: int = 1,
    point_step: int,
    row_step: int | None = None,
    big: bool = False,
) -> PointCloud2:
    msg = PointCloud2(height=height, width=width, fields=fields, point_step=point_step)
    msg.row_step = point_step * width if row_step is None else row_step
    msg.is_bigendian = big
    msg.data = data
    return msg


@pytest.mark.parametrize("big", [False, True], ids=["little", "big"])
@pytest.mark.parametrize("datatype", sorted(STRUCT))
def test_every_datatype_in_both_byte_orders(datatype: int, big: bool) -> None:
    order = ">" if big else "<"
    fmt = STRUCT[datatype]
    values = [-3, 7] if fmt in "bhid" else [3, 200]
    if fmt in "fd":
        values = [-2.5, 1e3]
    # value at offset 0, 1 byte tag after it, point padded to 16 bytes
    size = struct.calcsize(fmt)
    data = b"".join(struct.pack(f"{order}{fmt}B", v, 9).ljust(16, b"\0") for v in values)
    msg = cloud_msg(
        [field("v", 0, datatype), field("tag", size, PointField.UINT8)],
        data,
        width=2,
        point_step=16,
        big=big,
    )
    cloud = read_points(msg)
    assert cloud["v"].tolist() == values
    assert cloud["tag"].tolist() == [9, 9]
    assert cloud.dtype["v"] == np.dtype(order + DATATYPES[datatype])


def test_count_above_one_reads_as_a_sub_array() -> None:
    data = struct.pack("<3fH2x", 1.0, 2.0, 3.0, 4) + struct.pack("<3fH2x", 5.0, 6.0, 7.0, 8)
    msg = cloud_msg(
        [field("normal", 0, PointField.FLOAT32, 3), field("ring", 12, PointField.UINT16)],
        data,
        width=2,
        point_step=16,
    )
    cloud = read_points(msg)
    np.testing.assert_array_equal(cloud["normal"], [[1, 2, 3], [5, 6, 7]])
    assert cloud["ring"].tolist() == [4, 8]
    back = read_points(create_cloud(cloud, STAMP, "f"))
    np.testing.assert_array_equal(back["normal"], cloud["normal"])


def test_padded_rows_and_height_above_one_read_row_major() -> None:
    # 2 rows of 2 points, point_step 8 (x FLOAT32 + 4 bytes padding), row_step 20 (4 padding)
    rows = [struct.pack("<f4xf4x", 1.0, 2.0) + b"\xee" * 4, struct.pack("<f4xf4x", 3.0, 4.0)]
    msg = cloud_msg(
        [field("x", 0, PointField.FLOAT32)],
        rows[0] + rows[1],  # the last row's padding may be left out
        width=2,
        height=2,
        point_step=8,
        row_step=20,
    )
    assert read_points(msg)["x"].tolist() == [1.0, 2.0, 3.0, 4.0]


def test_raw_fields_read_as_the_message_does() -> None:
    msg = xyz_cloud(np.arange(12, dtype=np.float32).reshape(4, 3), STAMP, "map")
    raw = read_fields(
        np.frombuffer(bytes(msg.data), np.uint8),  # rosbags gives a uint8 array
        msg.fields,
        width=msg.width,
        height=msg.height,
        point_step=msg.point_step,
        row_step=msg.row_step,
        is_bigendian=msg.is_bigendian,
        field_names=["z"],
    )
    assert raw["z"].tolist() == [2.0, 5.0, 8.0, 11.0]
    assert raw.dtype.names == ("z",)


def test_non_finite_points_are_kept_unless_skipped() -> None:
    points = np.array([[1, 2, 3], [NAN, 0, 0], [0, math.inf, 0], [4, 5, 6]], np.float32)
    msg = xyz_cloud(points, STAMP, "map")
    assert not msg.is_dense
    assert read_xyz(msg).shape == (4, 3)
    np.testing.assert_array_equal(read_xyz(msg, skip_nans=True), [[1, 2, 3], [4, 5, 6]])


def test_read_xyz_converts_any_numeric_type_to_float32() -> None:
    data = struct.pack(">3d", 1.5, -2.0, 3.25) + struct.pack(">3d", 4.0, 5.0, 6.0)
    fields = [field(n, 8 * i, PointField.FLOAT64) for i, n in enumerate("xyz")]
    xyz = read_xyz(cloud_msg(fields, data, width=2, point_step=24, big=True))
    assert xyz.dtype == np.float32
    np.testing.assert_array_equal(xyz, [[1.5, -2.0, 3.25], [4, 5, 6]])


def test_empty_cloud_reads_as_no_points() -> None:
    msg = xyz_cloud(np.zeros((0, 3)), STAMP, "map")
    assert (msg.width, msg.height, len(msg.data)) == (0, 1, 0)
    assert read_xyz(msg).shape == (0, 3)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda m: setattr(m, "height", 2), "data holds 36 bytes, the layout needs 72"),
        (lambda m: setattr(m, "row_step", 20), "row_step 20 is shorter than width 3"),
        (lambda m: setattr(m, "point_step", 10), "field 'z' .* runs past point_step 10"),
        (lambda m: m.fields.__setitem__(1, field("y", 4, 9)), "field 'y' has unknown datatype 9"),
        (lambda m: m.fields.pop(2), "no field 'z'"),
    ],
    ids=["short data", "short row", "field past step", "unknown datatype", "missing field"],
)
def test_layout_that_lies_about_its_data_is_refused(change: object, match: str) -> None:
    msg = xyz_cloud(np.ones((3, 3), np.float32), STAMP, "map")
    change(msg)  # type: ignore[operator]
    with pytest.raises(PointCloudError, match=match):
        read_xyz(msg)
    assert issubclass(PointCloudError, ValueError)


def test_repeated_field_names_are_refused() -> None:
    fields = [field("x", 0, PointField.FLOAT32), field("y", 4, PointField.FLOAT32)]
    with pytest.raises(PointCloudError, match="repeat a name"):
        fields_dtype(fields, 8, field_names=["x", "x"])


def test_columns_write_packed_little_endian_with_the_step_asked_for() -> None:
    msg = create_cloud(
        {
            "x": np.array([1.0], np.float32),
            "intensity": np.array([2.0], np.float64),
            "ring": np.array([3], np.uint16),
        },
        STAMP,
        "lidar",
        point_step=20,
    )
    layout = [(f.name, f.offset, f.datatype, f.count) for f in msg.fields]
    assert layout == [
        ("x", 0, PointField.FLOAT32, 1),
        ("intensity", 4, PointField.FLOAT64, 1),
        ("ring", 12, PointField.UINT16, 1),
    ]
    assert (msg.point_step, msg.row_step, msg.is_bigendian) == (20, 20, False)
    assert bytes(msg.data) == struct.pack("<fdH6x", 1.0, 2.0, 3)
    assert (msg.header.frame_id, msg.header.stamp) == ("lidar", STAMP)


def test_structured_array_writes_its_own_layout_and_byte_order() -> None:
    dtype = np.dtype({"names": ["x", "i"], "formats": [">f4", ">i2"], "offsets": [4, 0],
                      "itemsize": 12})  # fmt: skip
    cloud = np.zeros(2, dtype=dtype)
    cloud["x"], cloud["i"] = [1.5, -1.0], [-7, 300]
    msg = create_cloud(cloud, STAMP, "f")
    assert msg.is_bigendian and msg.point_step == 12
    assert [(f.name, f.offset) for f in msg.fields] == [("x", 4), ("i", 0)]
    back = read_points(msg)
    assert back["x"].tolist() == [1.5, -1.0] and back["i"].tolist() == [-7, 300]


def test_organised_cloud_round_trips_through_the_wire() -> None:
    points = np.arange(24, dtype=np.float32).reshape(8, 3)
    cloud = columns_array({"x": points[:, 0], "y": points[:, 1], "z": points[:, 2]})
    msg = create_cloud(cloud, STAMP, "lidar", height=2)
    assert (msg.height, msg.width, msg.row_step) == (2, 4, 48)
    wire = deserialize_message(serialize_message(msg), PointCloud2)
    np.testing.assert_array_equal(read_xyz(wire), points)
    with pytest.raises(PointCloudError, match="8 points do not make 3 rows"):
        create_cloud(cloud, STAMP, "lidar", height=3)


def test_writer_refuses_what_a_point_field_cannot_hold() -> None:
    with pytest.raises(PointCloudError, match="column 'id' of type int64"):
        create_cloud({"id": np.array([1], np.int64)}, STAMP, "f")
    with pytest.raises(PointCloudError, match="columns differ in length"):
        create_cloud({"x": np.zeros(2, np.float32), "y": np.zeros(3, np.float32)}, STAMP, "f")
    with pytest.raises(PointCloudError, match="point_step 2 is shorter than the 4 bytes"):
        create_cloud({"x": np.zeros(2, np.float32)}, STAMP, "f", point_step=2)


def test_xyz_cloud_matches_the_map_servers_former_layout() -> None:
    """Byte for byte what mapping's cloud_to_msg wrote before it used this module."""
    msg = xyz_cloud([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], STAMP, "map")
    assert [(f.name, f.offset, f.datatype, f.count) for f in msg.fields] == [
        ("x", 0, PointField.FLOAT32, 1),
        ("y", 4, PointField.FLOAT32, 1),
        ("z", 8, PointField.FLOAT32, 1),
    ]
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (1, 2, 12, 24)
    assert msg.is_dense and not msg.is_bigendian
    assert bytes(msg.data) == struct.pack("<6f", 1, 2, 3, 4, 5, 6)
