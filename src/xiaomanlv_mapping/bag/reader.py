"""Read a mapping drive back from a rosbag2 bag: :func:`open_drive` -> :class:`Drive`.

Reading uses rosbags' AnyReader, which builds its typestore from the definitions stored in the
bag. The small series (wheel odometry, IMU, GNSS, ground truth) are loaded at once; the lidar
sweeps stream from :meth:`Drive.scans`. Sample times are the messages' ``header.stamp``; a zero
stamp falls back to the time the message was logged, unless it was logged within the first
second of a clock that starts at zero (a simulation's first sweep is stamped 0.0).

Damaged bags are named precisely: metadata.yaml and each ``.mcap`` are checked first (the MCAP
magic at both ends: a recorder killed before closing leaves a file without footer). An intact
``.mcap`` without metadata.yaml (metadata lost or deleted) is read from the MCAP summary alone,
as ``ros2 bag reindex`` would, with a warning. Every problem is a
:class:`~xiaomanlv_mapping.model.BagError` naming the bag, the file and the topic.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray
from rosbags.highlevel import AnyReader
from rosbags.interfaces import Connection
from scipy.spatial.transform import Rotation

from xiaomanlv_core.geometry import yaw_from_quaternion
from xiaomanlv_core.ros.pointcloud2 import DATATYPES, PointCloudError, read_points, xyz_of
from xiaomanlv_mapping.bag.rosbag2 import (
    MCAP_MAGIC,
    METADATA_FILE,
    SITE_FILE_KEY,
    SITE_KEY,
    WORLD_KEY,
    jazzy_typestore,
)
from xiaomanlv_mapping.model import (
    BagError,
    GnssSeries,
    ImuSeries,
    OdometrySeries,
    PoseSeries,
    Scan,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DriveTopics:
    """Topics of a mapping drive; an empty name means the drive has no such stream (its
    series is then empty). ``truth`` is optional: absent from the bag, ``Drive.truth`` is None."""

    lidar: str = "/lidar/points"
    imu: str = "/imu/data"
    odometry: str = "/wheel/odom"
    gnss: str = "/gnss/fix"
    truth: str = "/sim/ground_truth/pose"


EXPECTED_TYPES = {
    "lidar": "sensor_msgs/msg/PointCloud2",
    "imu": "sensor_msgs/msg/Imu",
    "odometry": "nav_msgs/msg/Odometry",
    "gnss": "sensor_msgs/msg/NavSatFix",
    "truth": "geometry_msgs/msg/PoseStamped",
}
OPTIONAL_ROLES = frozenset({"truth"})


def _mcap_files(bag: Path) -> list[Path]:
    return sorted(p for p in bag.iterdir() if p.suffix == ".mcap" and p.is_file())


def _check_mcap(file: Path, bag: Path, has_metadata: bool) -> None:
    """A quick structural check: the MCAP magic at both ends.

    Raises:
        BagError: missing, empty, not MCAP, or truncated (no footer: the writer never closed it).
    """
    if not file.is_file():
        raise BagError(f"bag {bag}: {file.name} is missing (metadata.yaml lists it)")
    size = file.stat().st_size
    with file.open("rb") as f:
        head = f.read(len(MCAP_MAGIC))
        if size >= 2 * len(MCAP_MAGIC):
            f.seek(size - len(MCAP_MAGIC))
            tail = f.read(len(MCAP_MAGIC))
        else:
            tail = b""
    if size == 0:
        raise BagError(f"bag {bag}: {file.name} is empty (0 bytes)")
    if head != MCAP_MAGIC:
        raise BagError(f"bag {bag}: {file.name} is not an MCAP file (bad magic at its start)")
    if tail != MCAP_MAGIC:
        why = (
            "and metadata.yaml is missing: the recording was interrupted before the recorder "
            "closed it (or is still running)"
            if not has_metadata
            else "(cut off or overwritten after it was closed)"
        )
        raise BagError(
            f"bag {bag}: {file.name} is truncated: it ends without the MCAP footer after "
            f"{size} bytes {why}; `mcap recover` can salvage its complete chunks"
        )


def _locate(path: Path) -> tuple[Path, Path]:
    """(what rosbags opens, the file errors should name) for a bag directory or .mcap file.

    Raises:
        BagError: no such path; neither metadata.yaml nor an .mcap file; a truncated file.
    """
    if not path.exists():
        raise BagError(f"bag {path}: no such directory")
    if path.is_file():
        if path.suffix != ".mcap":
            raise BagError(f"bag {path}: not a bag directory or an .mcap file")
        _check_mcap(path, path.parent, has_metadata=True)
        return path, path
    meta = path / METADATA_FILE
    files = _mcap_files(path)
    if meta.is_file():
        try:
            info = yaml.safe_load(meta.read_text(encoding="utf-8"))["rosbag2_bagfile_information"]
            names = [str(n) for n in info["relative_file_paths"]]
            storage = str(info["storage_identifier"])
        except (yaml.YAMLError, OSError, KeyError, TypeError) as err:
            raise BagError(f"bag {path}: {METADATA_FILE} is malformed: {err!r}") from None
        if storage == "mcap":
            for name in names:
                _check_mcap(path / Path(name).name, path, has_metadata=True)
        first = path / Path(names[0]).name if names else meta
        return path, first
    if not files:
        raise BagError(
            f"bag {path}: neither {METADATA_FILE} nor an .mcap file: not a rosbag2 bag "
            "(a recording holds both)"
        )
    if len(files) > 1:
        raise BagError(
            f"bag {path}: {METADATA_FILE} is missing and there are {len(files)} .mcap files; "
            "run `ros2 bag reindex` to rebuild it"
        )
    _check_mcap(files[0], path, has_metadata=False)
    log.warning(
        "bag %s: %s is missing; reading %s from its MCAP summary alone",
        path,
        METADATA_FILE,
        files[0].name,
    )
    return files[0], files[0]


def recorded_custom_data(path: Path) -> dict[str, str]:
    """The string pairs the recorder stored with bag ``path``: metadata.yaml's
    ``custom_data``, or, without metadata.yaml, the same in the MCAP's ``rosbag2`` metadata
    record (what Jazzy's storage plugin and `BagWriter` write). ``{}`` when there are none.

    Raises:
        BagError: as :func:`open_drive` for a missing or truncated bag, or malformed metadata.
    """
    path = Path(path)
    _, named = _locate(path)
    meta = path / METADATA_FILE
    try:
        if path.is_dir() and meta.is_file():
            where, text = meta, meta.read_text(encoding="utf-8")
        else:
            where, text = named, _mcap_rosbag2_metadata(named)
        info: Any = (yaml.safe_load(text) if text else None) or {}
        info = info.get("rosbag2_bagfile_information", info) or {}  # MCAP record: no wrapper
        custom = info.get("custom_data") or {}
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError) as err:
        why = _describe(err)
        raise BagError(f"bag {path}: {where.name}: unreadable metadata ({why})") from None
    if not isinstance(custom, Mapping):
        raise BagError(f"bag {path}: {where.name}: custom_data is not a mapping")
    return {str(k): str(v) for k, v in custom.items()}


@dataclass(frozen=True)
class RecordedSite:
    """Where a drive was recorded, as its bag says (each empty when not recorded)."""

    world: str  # world name or SDF path (WORLD_KEY)
    site: str  # site name (SITE_KEY)
    site_file: str  # site sidecar path (SITE_FILE_KEY)


def recorded_site(path: Path) -> RecordedSite:
    """The world and site bag ``path`` records (`recorded_custom_data`); a bag from a robot's
    ``map_recorder`` records neither.

    Raises:
        BagError: see :func:`recorded_custom_data`.
    """
    custom = recorded_custom_data(path)
    return RecordedSite(
        custom.get(WORLD_KEY, ""), custom.get(SITE_KEY, ""), custom.get(SITE_FILE_KEY, "")
    )


def _mcap_rosbag2_metadata(file: Path) -> str:
    """The ``serialized_metadata`` of the ``rosbag2`` metadata record of an MCAP file, or ""."""
    from mcap.reader import make_reader

    with file.open("rb") as stream:
        for record in make_reader(stream).iter_metadata():
            if record.name == "rosbag2":
                return str(record.metadata.get("serialized_metadata", ""))
    return ""


def _describe(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


class _Bag:
    """An open AnyReader whose failures become BagErrors naming the file."""

    def __init__(self, target: Path, where: str) -> None:
        self.where = where
        try:
            self.reader = AnyReader([target], default_typestore=jazzy_typestore())
            self.reader.open()
        except Exception as err:  # rosbags' reader errors, decoding of a corrupt summary
            raise BagError(f"{where}: unreadable or corrupt ({_describe(err)})") from err

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.reader.close()

    def messages(self, connections: Sequence[Connection]) -> Iterator[tuple[Connection, int, Any]]:
        """(connection, log time [ns], raw CDR) in log-time order; BagError on corrupt data."""
        stream = self.reader.messages(connections=connections)
        while True:
            try:
                item = next(stream)
            except StopIteration:
                return
            except Exception as err:  # chunk checksum, decompression, record structure
                topics = ", ".join(c.topic for c in connections)
                raise BagError(
                    f"{self.where}: corrupt data while reading {topics} ({_describe(err)})"
                ) from err
            yield item

    def decode(self, raw: Any, connection: Connection, index: int) -> Any:
        try:
            return self.reader.deserialize(raw, connection.msgtype)
        except Exception as err:  # SerdeError, or IndexError/struct.error on a short payload
            raise malformed(self.where, connection.topic, index, _describe(err)) from err


def malformed(where: str, topic: str, index: int, why: str) -> BagError:
    return BagError(f"{where}: message #{index} on {topic} is malformed: {why}")


#: [ns] a zero stamp logged before this is a time, not a stamp left unset: under sim time the
#: clock starts at 0, and a lidar's first sweep (begun at power-on) is stamped 0.0.
ZERO_STAMP_IS_TIME_NS = 1_000_000_000


def _seconds(stamp: Any, log_ns: int) -> float:
    """header.stamp [s]; a zero stamp (a driver that never set it) falls back to log time,
    unless it was logged within the first second of sim time (a sweep that began at 0)."""
    sec, nanosec = int(stamp.sec), int(stamp.nanosec)
    if sec == 0 and nanosec == 0 and log_ns >= ZERO_STAMP_IS_TIME_NS:
        return log_ns * 1e-9
    return sec + nanosec * 1e-9


def _header_time(msg: Any, log_ns: int) -> float:
    header = getattr(msg, "header", None)
    return log_ns * 1e-9 if header is None else _seconds(header.stamp, log_ns)


def _sorted(stamps: list[float], *columns: list[Any]) -> list[NDArray[np.float64]]:
    t = np.asarray(stamps, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    return [
        t[order],
        *(np.asarray(c, dtype=np.float64).reshape(len(t), -1)[order] for c in columns),
    ]


#: Per-point time fields, first found wins: ``t`` (Ouster: UINT32 nanoseconds; the simulator
#: and others: FLOAT32 seconds) and ``time`` (Velodyne: FLOAT32 seconds), both offsets from the
#: header stamp.
TIME_FIELDS = ("t", "time")


def cloud_points(
    msg: Any, where: str, topic: str, index: int
) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32] | None]:
    """(points (N,3) [m], intensities (N,), times (N,) [s] or None) of a PointCloud2 with
    FLOAT32 (or FLOAT64) x, y, z, an optional numeric ``intensity`` (zeros without one) and an
    optional per-point time (`TIME_FIELDS`: a float field in seconds, an integer one in
    nanoseconds, after the header stamp; None without one); non-finite points dropped.

    The layout (offsets, point and row steps, byte order, padded rows) is read by the stack's
    one PointCloud2 reader, :func:`xiaomanlv_core.ros.pointcloud2.read_points`, which takes
    rosbags' messages as they are.

    Raises:
        BagError: missing or non-float x/y/z, a time field that is not one number per point,
            or a data size that does not match the layout.
    """
    by_name = {str(f.name): f for f in msg.fields}
    names = []
    for name in ("x", "y", "z", "intensity"):
        f = by_name.get(name)
        if f is None:
            if name == "intensity":
                continue
            raise malformed(where, topic, index, f"PointCloud2 has no field '{name}'")
        kind = DATATYPES.get(int(f.datatype))
        if kind is None or (name != "intensity" and kind not in ("f4", "f8")):
            raise malformed(
                where, topic, index, f"PointCloud2 field '{name}' has datatype {f.datatype}"
            )
        names.append(name)
    time_field = next((n for n in TIME_FIELDS if n in by_name), None)
    time_kind = ""
    if time_field is not None:
        f = by_name[time_field]
        time_kind = DATATYPES.get(int(f.datatype), "")
        if not time_kind or int(f.count) != 1:
            raise malformed(
                where, topic, index,
                f"PointCloud2 time field '{time_field}' has datatype {f.datatype} and count "
                f"{f.count}; expected one number per point",
            )  # fmt: skip
        names.append(time_field)
    try:
        cloud = read_points(msg, names)
        points = xyz_of(cloud)
    except PointCloudError as err:
        raise malformed(where, topic, index, str(err)) from err
    if "intensity" in names:
        column = cloud["intensity"]
        intensities = (column if column.ndim == 1 else column[:, 0]).astype(np.float32)
    else:
        intensities = np.zeros(len(cloud), dtype=np.float32)
    times: NDArray[np.float32] | None = None
    if time_field is not None:
        raw = cloud[time_field]
        scale = 1.0 if time_kind.startswith("f") else 1e-9  # integers: nanoseconds (Ouster)
        times = (raw.astype(np.float64) * scale).astype(np.float32)
    keep = np.isfinite(points).all(axis=1)  # after the float32 cast, as the map stores them
    if times is not None:
        keep &= np.isfinite(times)
    if not keep.all():
        points, intensities = points[keep], intensities[keep]
        times = times[keep] if times is not None else None
    return (
        np.ascontiguousarray(points),
        np.ascontiguousarray(intensities),
        None if times is None else np.ascontiguousarray(times),
    )


class Drive:
    """A mapping drive read from a bag (implements `xiaomanlv_mapping.model.DriveSource`).

    Made by :func:`open_drive`; the small series are loaded, :meth:`scans` reads the bag again
    on each call.
    """

    def __init__(
        self,
        path: Path,
        target: Path,
        where: str,
        connections: Mapping[str, Connection | None],
        duration: float,
        odometry: OdometrySeries,
        imu: ImuSeries,
        gnss: GnssSeries,
        truth: PoseSeries | None,
        counts: Mapping[str, int],
    ) -> None:
        self._path = path
        self._target = target
        self._where = where
        self._connections = dict(connections)
        self._duration = duration
        self._odometry = odometry
        self._imu = imu
        self._gnss = gnss
        self._truth = truth
        self.message_counts = dict(counts)  # topic -> messages in the bag

    @property
    def path(self) -> Path:
        return self._path

    @property
    def duration(self) -> float:  # [s] first to last message (log time)
        return self._duration

    @property
    def scan_count(self) -> int:
        lidar = self._connections.get("lidar")
        return 0 if lidar is None else self.message_counts.get(lidar.topic, 0)

    @property
    def odometry(self) -> OdometrySeries:
        return self._odometry

    @property
    def imu(self) -> ImuSeries:
        return self._imu

    @property
    def gnss(self) -> GnssSeries:
        return self._gnss

    @property
    def truth(self) -> PoseSeries | None:
        return self._truth

    def scans(self) -> Iterator[Scan]:
        """Every sweep, in the bag's (log-time) order.

        Raises:
            BagError: corrupt data or a malformed cloud (naming the topic and message index).
        """
        lidar = self._connections.get("lidar")
        if lidar is None:
            return
        bag = _Bag(self._target, self._where)
        try:
            # Connections belong to the reader that made them: take this reader's.
            wanted = [c for c in bag.reader.connections if c.topic == lidar.topic]
            for index, (conn, log_ns, raw) in enumerate(bag.messages(wanted)):
                msg = bag.decode(raw, conn, index)
                points, intensities, times = cloud_points(msg, self._where, conn.topic, index)
                yield Scan(_header_time(msg, log_ns), points, intensities, times)
        finally:
            bag.close()


def _empty_series(role: str) -> Any:
    empty = np.zeros(0)
    if role == "odometry":
        return OdometrySeries(empty, np.zeros((0, 3)), np.zeros((0, 2)))
    if role == "imu":
        return ImuSeries(empty, np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 4)))
    return GnssSeries(empty, np.zeros((0, 3)), np.zeros((0, 3)))


_Row = Callable[[Any, float], None]


def open_drive(path: Path, topics: DriveTopics = DriveTopics()) -> Drive:
    """Open the mapping drive recorded in bag ``path`` (a rosbag2 directory or an .mcap file).

    Loads /wheel/odom, /imu/data, /gnss/fix and the ground truth (when recorded) at once; scans
    stream from :meth:`Drive.scans`. GNSS rows with a status below 0 (no fix) or a NaN
    position are dropped; their variances are the diagonal of ``position_covariance`` (east,
    north, up). IMU orientations flagged unknown (covariance[0] == -1, REP 145) are NaN rows.

    Raises:
        BagError: naming the bag and file: no such directory; neither metadata.yaml nor an
            .mcap file; a truncated or corrupt file; a required topic missing (listing what the
            bag has) or empty; a topic of the wrong message type; a malformed message (topic
            and index).
    """
    path = Path(path)
    target, named = _locate(path)
    where = f"bag {path}" if named == path else f"bag {path} ({named.name})"
    bag = _Bag(target, where)
    try:
        by_topic = {c.topic: c for c in bag.reader.connections}
        counts: dict[str, int] = {}
        for c in bag.reader.connections:
            counts[c.topic] = counts.get(c.topic, 0) + c.msgcount
        chosen: dict[str, Connection | None] = {}
        for field in fields(DriveTopics):
            role, topic = field.name, getattr(topics, field.name)
            chosen[role] = _pick(where, role, topic, by_topic)
        for role, conn in chosen.items():
            if conn is not None and role not in OPTIONAL_ROLES and not counts.get(conn.topic):
                raise BagError(f"{where}: topic {conn.topic} ({role}) has no messages")
        series = _load_series(bag, chosen)
        first, last = bag.reader.start_time, bag.reader.end_time
        duration = max(0, last - 1 - first) * 1e-9 if bag.reader.message_count else 0.0
    finally:
        bag.close()
    return Drive(
        path,
        target,
        where,
        chosen,
        duration,
        series["odometry"],
        series["imu"],
        series["gnss"],
        series["truth"],
        counts,
    )


def _pick(
    where: str,
    role: str,
    topic: str,
    by_topic: Mapping[str, Connection],
) -> Connection | None:
    if not topic:
        return None
    expected = EXPECTED_TYPES[role]
    conn = by_topic.get(topic)
    if conn is None:
        if role in OPTIONAL_ROLES:
            return None
        have = ", ".join(f"{t} ({c.msgtype})" for t, c in sorted(by_topic.items())) or "none"
        raise BagError(f"{where}: no topic {topic} ({role}, {expected}); the bag has: {have}")
    if conn.msgtype != expected:
        raise BagError(f"{where}: topic {topic} ({role}) is {conn.msgtype}, expected {expected}")
    return conn


def _load_series(bag: _Bag, chosen: Mapping[str, Connection | None]) -> dict[str, Any]:
    """One pass over the small topics; every series sorted by stamp."""
    rows: dict[str, list[list[Any]]] = {
        "odometry": [[], [], []],
        "imu": [[], [], [], []],
        "gnss": [[], [], []],
        "truth": [[], [], []],
    }

    def odometry(msg: Any, t: float) -> None:
        stamps, poses, twists = rows["odometry"]
        p = msg.pose.pose
        stamps.append(t)
        q = p.orientation
        yaw = yaw_from_quaternion(float(q.x), float(q.y), float(q.z), float(q.w))
        poses.append((float(p.position.x), float(p.position.y), yaw))
        tw = msg.twist.twist
        twists.append((float(tw.linear.x), float(tw.angular.z)))

    def imu(msg: Any, t: float) -> None:
        stamps, gyro, accel, orient = rows["imu"]
        stamps.append(t)
        w, a, q = msg.angular_velocity, msg.linear_acceleration, msg.orientation
        gyro.append((float(w.x), float(w.y), float(w.z)))
        accel.append((float(a.x), float(a.y), float(a.z)))
        known = float(msg.orientation_covariance[0]) != -1.0
        orient.append(
            (float(q.x), float(q.y), float(q.z), float(q.w)) if known else (math.nan,) * 4
        )

    def gnss(msg: Any, t: float) -> None:
        lla = (float(msg.latitude), float(msg.longitude), float(msg.altitude))
        if int(msg.status.status) < 0 or not all(math.isfinite(v) for v in lla):
            return
        stamps, fixes, variances = rows["gnss"]
        cov = msg.position_covariance
        stamps.append(t)
        fixes.append(lla)
        variances.append((float(cov[0]), float(cov[4]), float(cov[8])))

    def truth(msg: Any, t: float) -> None:
        stamps, positions, quats = rows["truth"]
        p, q = msg.pose.position, msg.pose.orientation
        stamps.append(t)
        positions.append((float(p.x), float(p.y), float(p.z)))
        quats.append((float(q.x), float(q.y), float(q.z), float(q.w)))

    handlers: dict[str, _Row] = {
        "odometry": odometry,
        "imu": imu,
        "gnss": gnss,
        "truth": truth,
    }
    roles = {c.topic: role for role, c in chosen.items() if c is not None and role in handlers}
    wanted = [c for role, c in chosen.items() if c is not None and role in handlers]
    index: dict[str, int] = dict.fromkeys(roles, 0)
    if wanted:
        for conn, log_ns, raw in bag.messages(wanted):
            i = index[conn.topic]
            index[conn.topic] = i + 1
            msg = bag.decode(raw, conn, i)
            try:
                handlers[roles[conn.topic]](msg, _header_time(msg, log_ns))
            except (AttributeError, TypeError, ValueError, IndexError) as err:
                raise malformed(bag.where, conn.topic, i, _describe(err)) from err

    out: dict[str, Any] = {}
    for role in ("odometry", "imu", "gnss"):
        if chosen.get(role) is None:
            out[role] = _empty_series(role)
            continue
        if role == "odometry":
            t, poses, twists = _sorted(*rows[role])
            out[role] = OdometrySeries(t, poses.reshape(-1, 3), twists.reshape(-1, 2))
        elif role == "imu":
            t, gyro, accel, orient = _sorted(*rows[role])
            out[role] = ImuSeries(
                t, gyro.reshape(-1, 3), accel.reshape(-1, 3), orient.reshape(-1, 4)
            )
        else:
            t, lla, var = _sorted(*rows[role])
            out[role] = GnssSeries(t, lla.reshape(-1, 3), var.reshape(-1, 3))
    out["truth"] = _truth_series(bag.where, chosen.get("truth"), rows["truth"])
    return out


def _truth_series(where: str, conn: Connection | None, rows: list[list[Any]]) -> PoseSeries | None:
    if conn is None:
        return None
    stamps, positions, quats = rows
    q = np.asarray(quats, dtype=np.float64).reshape(-1, 4)
    norms = np.linalg.norm(q, axis=1)
    bad = np.flatnonzero(~np.isfinite(norms) | (norms < 1e-9))
    if bad.size:
        raise malformed(where, conn.topic, int(bad[0]), "orientation is not a rotation")
    t, pos, quat = _sorted(stamps, positions, quats)
    poses = np.tile(np.eye(4), (len(t), 1, 1))
    if len(t):
        poses[:, :3, :3] = Rotation.from_quat(quat.reshape(-1, 4)).as_matrix()
        poses[:, :3, 3] = pos.reshape(-1, 3)
    return PoseSeries(t, poses)
