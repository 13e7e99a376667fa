"""sensor_msgs/PointCloud2 <-> numpy: the one reader and writer of the stack.

A PointCloud2 is ``height`` rows of ``width`` points; each point is ``point_step`` bytes holding
its fields (name, byte offset, datatype INT8..FLOAT64, ``count`` elements) and each row is
``row_step`` bytes, either byte order (``is_bigendian``). A field list maps onto a numpy
structured dtype whose ``itemsize`` is the point step, so a cloud reads as one
``np.frombuffer`` (rows padded beyond ``width * point_step`` are sliced first) and writes as
one buffer copy. Same model as ``sensor_msgs_py.point_cloud2`` (ROS 2 common_interfaces), which
is not installable here; names follow it (``read_points``, ``create_cloud``, ``skip_nans``).

- :func:`read_points` / :func:`read_fields`: the named fields as a 1-D structured array (the
  message's or raw fields: data bytes, fields, point step, row step, byte order, so a bag reader
  working on rosbags' messages uses the same rules); :func:`read_xyz`: (N, 3) float32 x, y, z.
  ``skip_nans`` drops points whose x, y or z is not finite; by default every point is kept.
- :func:`create_cloud`: a message from named numpy columns or a structured array (its offsets,
  padding and byte order kept); :func:`xyz_cloud`: the compact x, y, z FLOAT32 layout.

Layouts that lie about their data raise :class:`PointCloudError` naming the field or size:
an unknown datatype, a field that runs past ``point_step``, a requested field that is missing,
data shorter than ``row_step * (height - 1) + point_step * width``, a ``row_step`` shorter
than a row of points. ``row_step`` 0 is read as packed rows (``point_step * width``).
"""

from __future__ import annotations

import array
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
from builtin_interfaces.msg import Time
from numpy.typing import ArrayLike, NDArray
from sensor_msgs.msg import PointCloud2, PointField

# PointField datatype -> numpy kind (without byte order); sensor_msgs/PointField constants.
DATATYPES: dict[int, str] = {
    PointField.INT8: "i1",
    PointField.UINT8: "u1",
    PointField.INT16: "i2",
    PointField.UINT16: "u2",
    PointField.INT32: "i4",
    PointField.UINT32: "u4",
    PointField.FLOAT32: "f4",
    PointField.FLOAT64: "f8",
}
_KINDS = {kind: datatype for datatype, kind in DATATYPES.items()}
XYZ = ("x", "y", "z")


class PointCloudError(ValueError):
    """A PointCloud2 whose layout does not describe its data (the message names the field)."""


def fields_dtype(
    fields: Iterable[Any],
    point_step: int,
    is_bigendian: bool = False,
    field_names: Sequence[str] | None = None,
) -> np.dtype[Any]:
    """The structured dtype of ``field_names`` (default: every field) in a ``point_step`` record.

    ``fields`` are PointField messages or anything with ``name``, ``offset``, ``datatype`` and
    ``count``; a field with ``count`` > 1 becomes a sub-array of that many elements.

    Raises:
        PointCloudError: a requested field is missing or listed twice, has an unknown
            datatype, or runs past ``point_step``.
    """
    by_name: dict[str, Any] = {}
    for f in fields:
        by_name.setdefault(str(f.name), f)
    wanted = list(by_name) if field_names is None else list(field_names)
    if len(set(wanted)) != len(wanted):
        raise PointCloudError(f"PointCloud2 field names {wanted} repeat a name")
    order = ">" if is_bigendian else "<"
    names, formats, offsets = [], [], []
    for name in wanted:
        f = by_name.get(name)
        if f is None:
            raise PointCloudError(f"PointCloud2 has no field '{name}' (fields: {list(by_name)})")
        kind = DATATYPES.get(int(f.datatype))
        if kind is None:
            raise PointCloudError(f"PointCloud2 field '{name}' has unknown datatype {f.datatype}")
        count, offset = int(f.count), int(f.offset)
        element = np.dtype(order + kind)
        if offset + element.itemsize * max(count, 1) > point_step:
            raise PointCloudError(
                f"PointCloud2 field '{name}' (offset {offset}, {max(count, 1)} x "
                f"{element.itemsize} bytes) runs past point_step {point_step}"
            )
        names.append(name)
        formats.append(element if count <= 1 else np.dtype((element, (count,))))
        offsets.append(offset)
    return np.dtype(
        {"names": names, "formats": formats, "offsets": offsets, "itemsize": int(point_step)}
    )


def read_fields(
    data: Any,
    fields: Iterable[Any],
    *,
    width: int,
    height: int,
    point_step: int,
    row_step: int,
    is_bigendian: bool = False,
    field_names: Sequence[str] | None = None,
    skip_nans: bool = False,
) -> NDArray[Any]:
    """The points of a cloud given as raw fields, as a 1-D structured array in row-major order.

    ``data`` is anything holding the bytes (bytes, array.array, a uint8 numpy array). The
    result shares ``data``'s memory where the rows are packed; copy it to keep it longer.

    Raises:
        PointCloudError: see :func:`fields_dtype`, and data shorter than the layout needs or a
            ``row_step`` shorter than ``width * point_step``.
    """
    width, height, step = int(width), int(height), int(point_step)
    dtype = fields_dtype(fields, step, is_bigendian, field_names)
    count = width * height
    if count == 0:
        return np.zeros(0, dtype=dtype)
    row = int(row_step) or step * width
    if row < step * width:
        raise PointCloudError(
            f"PointCloud2 row_step {row} is shorter than width {width} x point_step {step}"
        )
    try:
        raw = np.frombuffer(data, dtype=np.uint8)
    except TypeError:  # a list of ints
        raw = np.asarray(data, dtype=np.uint8).reshape(-1)
    need = row * (height - 1) + step * width
    if raw.size < need:
        raise PointCloudError(
            f"PointCloud2 data holds {raw.size} bytes, the layout needs {need} "
            f"({height} x {width} points, point_step {step}, row_step {row})"
        )
    if row == step * width:
        cloud = np.frombuffer(raw, dtype=dtype, count=count)
    else:  # padded rows: keep each row's points
        rows = np.lib.stride_tricks.as_strided(
            raw, shape=(height, step * width), strides=(row, 1), writeable=False
        )
        cloud = np.ascontiguousarray(rows).view(dtype).reshape(-1)
    if skip_nans:
        cloud = cloud[finite_xyz(cloud)]
    return cloud


def read_points(
    msg: Any, field_names: Sequence[str] | None = None, *, skip_nans: bool = False
) -> NDArray[Any]:
    """The points of a PointCloud2 (rclpy's or rosbags' message) as a 1-D structured array.

    Raises:
        PointCloudError: the layout does not describe the data (see :func:`read_fields`).
    """
    return read_fields(
        msg.data,
        msg.fields,
        width=msg.width,
        height=msg.height,
        point_step=msg.point_step,
        row_step=msg.row_step,
        is_bigendian=bool(msg.is_bigendian),
        field_names=field_names,
        skip_nans=skip_nans,
    )


def finite_xyz(cloud: NDArray[Any]) -> NDArray[np.bool_]:
    """Mask of the points whose x, y and z (those the cloud has) are all finite."""
    keep = np.ones(len(cloud), dtype=bool)
    names = cloud.dtype.names or ()
    for axis in XYZ:
        if axis in names and cloud.dtype[axis].base.kind == "f":
            values = cloud[axis]
            keep &= np.isfinite(values) if values.ndim == 1 else np.isfinite(values).all(axis=1)
    return keep


def xyz_of(cloud: NDArray[Any]) -> NDArray[np.float32]:
    """(N, 3) float32 x, y, z [m] of a structured cloud holding (at least) x, y, z fields."""
    points = np.empty((len(cloud), 3), dtype=np.float32)
    for i, axis in enumerate(XYZ):
        if cloud.dtype[axis].shape:
            raise PointCloudError(
                f"PointCloud2 field '{axis}' holds {cloud.dtype[axis].shape} values"
            )
        points[:, i] = cloud[axis]
    return points


def read_xyz(msg: Any, *, skip_nans: bool = False) -> NDArray[np.float32]:
    """(N, 3) float32 x, y, z [m] of a PointCloud2 of any layout and numeric x/y/z datatypes.

    Raises:
        PointCloudError: no x, y or z field, or the layout does not describe the data.
    """
    return xyz_of(read_points(msg, XYZ, skip_nans=skip_nans))


# ---- writing -------------------------------------------------------------------------------------
def point_fields(dtype: np.dtype[Any]) -> list[PointField]:
    """PointFields of a structured dtype (offsets as the dtype has them; sub-arrays: ``count``).

    Raises:
        PointCloudError: a field whose type has no PointField datatype (e.g. int64, bool).
    """
    out = []
    for name in dtype.names or ():
        sub, offset = dtype.fields[name][:2]  # type: ignore[index]
        base, shape = (sub.base, sub.shape) if sub.subdtype else (sub, ())
        kind = f"{base.kind}{base.itemsize}"
        datatype = _KINDS.get(kind)
        if datatype is None or len(shape) > 1:
            raise PointCloudError(f"column '{name}' of type {sub} has no PointField datatype")
        count = int(shape[0]) if shape else 1
        out.append(PointField(name=name, offset=int(offset), datatype=datatype, count=count))
    return out


def _is_bigendian(dtype: np.dtype[Any]) -> bool:
    """True for big-endian fields; PointCloudError for fields of mixed byte orders."""
    orders = set()
    for name in dtype.names or ():
        base = dtype.fields[name][0].base  # type: ignore[index]
        if base.itemsize > 1:
            big = base.byteorder == ">" or (base.byteorder == "=" and sys.byteorder == "big")
            orders.add(big)
    if len(orders) > 1:
        raise PointCloudError(f"columns mix byte orders ({dtype})")
    return orders == {True}


def columns_array(columns: Mapping[str, ArrayLike], point_step: int | None = None) -> NDArray[Any]:
    """A little-endian structured array of named columns, packed in order (``point_step``
    pads each point to that many bytes). A column of shape (N, k) becomes a field of count k.

    Raises:
        PointCloudError: columns of different lengths, a type without a PointField datatype,
            or a ``point_step`` shorter than the packed fields.
    """
    arrays = {name: np.asarray(values) for name, values in columns.items()}
    lengths = {name: (len(a) if a.ndim else 1) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise PointCloudError(f"columns differ in length: {lengths}")
    names, formats, offsets, offset = [], [], [], 0
    for name, a in arrays.items():
        base = a.dtype.newbyteorder("<")
        if f"{base.kind}{base.itemsize}" not in _KINDS or a.ndim > 2:
            raise PointCloudError(f"column '{name}' of type {a.dtype} has no PointField datatype")
        fmt = base if a.ndim <= 1 else np.dtype((base, (a.shape[1],)))
        names.append(name)
        formats.append(fmt)
        offsets.append(offset)
        offset += fmt.itemsize
    step = offset if point_step is None else int(point_step)
    if step < offset:
        raise PointCloudError(f"point_step {step} is shorter than the {offset} bytes of {names}")
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": step})
    n = next(iter(lengths.values()), 0)
    cloud = np.zeros(n, dtype=dtype)
    for name, a in arrays.items():
        cloud[name] = a
    return cloud


def create_cloud(
    points: NDArray[Any] | Mapping[str, ArrayLike],
    stamp: Time,
    frame_id: str,
    *,
    height: int = 1,
    point_step: int | None = None,
    is_dense: bool | None = None,
) -> PointCloud2:
    """A PointCloud2 of a structured array (its fields, offsets, padding and byte order kept)
    or of named columns (packed little-endian, see :func:`columns_array`).

    ``height`` > 1 makes an organised cloud of ``len(points) / height`` points per row.
    ``is_dense`` defaults to whether every x, y, z is finite.

    Raises:
        PointCloudError: columns that do not make a cloud, mixed byte orders, or a point count
            that ``height`` does not divide.
    """
    if isinstance(points, Mapping):
        cloud = columns_array(points, point_step)
    else:
        cloud = np.ascontiguousarray(points).reshape(-1)
        if cloud.dtype.names is None:
            raise PointCloudError(f"points of dtype {cloud.dtype} are not a structured array")
    n, height = len(cloud), int(height)
    if height < 1 or n % height:
        raise PointCloudError(f"{n} points do not make {height} rows")
    msg = PointCloud2()
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height = height if n else 1
    msg.width = n // height if n else 0
    msg.fields = point_fields(cloud.dtype)
    msg.is_bigendian = _is_bigendian(cloud.dtype)
    msg.point_step = cloud.dtype.itemsize
    msg.row_step = cloud.dtype.itemsize * msg.width
    msg.is_dense = bool(finite_xyz(cloud).all()) if is_dense is None else bool(is_dense)
    data = array.array("B")
    data.frombytes(cloud.view(np.uint8).data)  # one copy, into the message's buffer
    msg.data = data
    return msg


def xyz_cloud(points: ArrayLike, stamp: Time, frame_id: str) -> PointCloud2:
    """PointCloud2 of (N, 3) points [m]: x, y, z FLOAT32 at 0, 4, 8, point step 12, one row."""
    xyz = np.ascontiguousarray(np.asarray(points, dtype="<f4").reshape(-1, 3))
    cloud = xyz.view(np.dtype({"names": list(XYZ), "formats": ["<f4"] * 3})).reshape(-1)
    return create_cloud(cloud, stamp, frame_id)
