"""Mapping-drive bags: write a rosbag2 bag with MCAP storage, read a drive back from one.

Layout, as ``ros2 bag record -s mcap`` writes it on Jazzy: a directory ``<name>/`` holding
``<name>_0.mcap`` and ``metadata.yaml`` (``rosbag2_bagfile_information`` version 9: topics
with their type, RIHS01 type hash, offered QoS and message count; files; ``ros_distro``).
The MCAP file follows the ``ros2`` profile (https://mcap.dev/spec/registry): schemas are full
``ros2msg`` definitions (dependencies appended after ``====`` separators, what Foxglove and
``ros2 bag`` decode with), channels carry ``offered_qos_profiles`` and ``topic_type_hash``,
messages are CDR, chunked and zstd-compressed with CRCs, and a ``rosbag2`` metadata record
repeats metadata.yaml as Jazzy's storage plugin does. The ``mcap`` library writes the file;
message definitions and hashes come from the rosbags Jazzy typestore.

Interrupted recordings: metadata.yaml is written (atomically) only by :meth:`BagWriter.close`,
and the MCAP file gets its summary and footer only then. A killed recorder therefore leaves a
directory with an ``.mcap`` that does not end in the MCAP magic, and :func:`open_drive`
says so (``mcap recover`` salvages its complete chunks). An intact ``.mcap`` without
metadata.yaml (metadata lost or deleted) is read from the MCAP summary alone, as
``ros2 bag reindex`` would, with a warning.

Reading (:func:`open_drive`) uses rosbags' AnyReader, which builds its typestore from the
definitions stored in the bag. Sample times are the messages' ``header.stamp``; a zero stamp
falls back to the time the message was logged.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

import numpy as np
import yaml
from mcap.writer import CompressionType
from mcap.writer import Writer as McapWriter
from numpy.typing import NDArray
from rosbags.highlevel import AnyReader
from rosbags.interfaces import (
    Connection,
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.typesys import Stores, get_typestore
from rosbags.typesys.store import Typestore
from scipy.spatial.transform import Rotation

from xiaomanlv_core.config import ConfigError, param, validate_fields
from xiaomanlv_mapping.model import (
    BagError,
    GnssSeries,
    ImuSeries,
    OdometrySeries,
    PoseSeries,
    Scan,
)

log = logging.getLogger(__name__)

ROSBAG2_VERSION = 9  # bagfile_information version of Jazzy's rosbag2
ROS_DISTRO = "jazzy"
MCAP_MAGIC = b"\x89MCAP0\r\n"
METADATA_FILE = "metadata.yaml"
INFINITE = QosTime(9223372036, 854775807)  # RMW_DURATION_INFINITE as rosbag2 writes it

# What the simulator's sensors and ros_gz_bridge offer: RELIABLE, VOLATILE, KEEP_LAST 10.
SENSOR_QOS = Qos(
    QosHistory.KEEP_LAST,
    10,
    QosReliability.RELIABLE,
    QosDurability.VOLATILE,
    INFINITE,
    INFINITE,
    QosLiveliness.AUTOMATIC,
    INFINITE,
    False,
)

_COMPRESSION = {
    "zstd": CompressionType.ZSTD,
    "lz4": CompressionType.LZ4,
    "none": CompressionType.NONE,
}

_JAZZY: Typestore | None = None


def jazzy_typestore() -> Typestore:
    """rosbags' typestore of the ROS 2 Jazzy message packages (built once)."""
    global _JAZZY
    if _JAZZY is None:
        _JAZZY = get_typestore(Stores.ROS2_JAZZY)
    return _JAZZY


# ---- writing ------------------------------------------------------------------------------------
def qos_to_dicts(profiles: Sequence[Qos]) -> list[dict[str, Any]]:
    """QoS profiles as rosbag2 version 9 writes them (policy names in lower case)."""
    return [
        {
            "history": q.history.name.lower(),
            "depth": q.depth,
            "reliability": q.reliability.name.lower(),
            "durability": q.durability.name.lower(),
            "deadline": {"sec": q.deadline.sec, "nsec": q.deadline.nsec},
            "lifespan": {"sec": q.lifespan.sec, "nsec": q.lifespan.nsec},
            "liveliness": q.liveliness.name.lower(),
            "liveliness_lease_duration": {
                "sec": q.liveliness_lease_duration.sec,
                "nsec": q.liveliness_lease_duration.nsec,
            },
            "avoid_ros_namespace_conventions": q.avoid_ros_namespace_conventions,
        }
        for q in profiles
    ]


def _dump_yaml(data: object) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)


@dataclass
class _Topic:
    name: str
    msgtype: str
    type_hash: str
    qos: tuple[Qos, ...]
    channel_id: int
    count: int = 0


class BagWriter:
    """Write a rosbag2 bag (MCAP storage) at ``path``, a directory this creates.

    Use as a context manager, or call :meth:`close`: only closing writes the MCAP summary and
    metadata.yaml. Messages are CDR bytes (``rclpy.serialization.serialize_message`` or a raw
    subscription); ``stamp_ns`` is the time the message was logged (received), on the
    recording's clock, in nanoseconds.

    Args:
        path: the bag directory to create (its parents are created too).
        compression: chunk compression, ``"zstd"`` (as ``ros2 bag``'s zstd presets),
            ``"lz4"`` or ``"none"``.
        chunk_size: [bytes] uncompressed size at which a chunk is closed.
        custom_data: string pairs stored in metadata.yaml's ``custom_data``.
        typestore: where message definitions and hashes come from (default: ROS 2 Jazzy).

    Raises:
        BagError: ``path`` exists already (a bag is never overwritten), or an unknown
            compression.
    """

    def __init__(
        self,
        path: Path,
        *,
        compression: str = "zstd",
        chunk_size: int = 1 << 20,
        custom_data: Mapping[str, str] | None = None,
        typestore: Typestore | None = None,
    ) -> None:
        path = Path(path)
        if compression not in _COMPRESSION:
            raise BagError(
                f"bag {path}: compression '{compression}' is not one of {', '.join(_COMPRESSION)}"
            )
        if path.exists():
            raise BagError(f"bag {path}: exists already; a bag is never overwritten")
        path.mkdir(parents=True)
        self.path = path
        self.file = path / f"{path.name}_0.mcap"
        self.compression = compression
        self.custom_data = dict(custom_data or {})
        self._typestore = typestore or jazzy_typestore()
        self._stream: IO[bytes] | None = open(self.file, "xb")  # noqa: SIM115 - closed in close()
        self._mcap = McapWriter(
            self._stream, chunk_size=chunk_size, compression=_COMPRESSION[compression]
        )
        self._mcap.start(profile="ros2", library="xiaomanlv_mapping.bag (mcap-python)")
        self._schemas: dict[str, int] = {}
        self._topics: dict[str, _Topic] = {}
        self._first: int | None = None  # [ns]
        self._last: int | None = None  # [ns]

    # ---- topics and messages ------------------------------------------------------------------
    def add_topic(
        self,
        topic: str,
        msgtype: str,
        *,
        qos: Sequence[Qos] = (SENSOR_QOS,),
        msgdef: str | None = None,
        type_hash: str | None = None,
    ) -> None:
        """Declare ``topic`` with message type ``msgtype`` (``pkg/msg/Name``).

        ``qos`` are the profiles its publishers offered. The full ``ros2msg`` definition and the
        RIHS01 type hash come from the typestore unless ``msgdef`` and ``type_hash`` are given.

        Raises:
            BagError: the topic was added already with another type, the type is unknown to
                the typestore (pass ``msgdef`` and ``type_hash``), or the bag is closed.
        """
        self._check_open()
        known = self._topics.get(topic)
        if known is not None:
            if known.msgtype != msgtype:
                raise BagError(
                    f"bag {self.path}: topic {topic} was added as {known.msgtype}, not {msgtype}"
                )
            return
        if msgdef is None or type_hash is None:
            try:
                generated, _ = self._typestore.generate_msgdef(msgtype, ros_version=2)
                hashed = self._typestore.hash_rihs01(msgtype)
            except Exception as err:  # TypesysError, KeyError: the store lacks the type
                raise BagError(
                    f"bag {self.path}: topic {topic}: message type '{msgtype}' is unknown to the "
                    f"typestore ({err}); pass msgdef and type_hash"
                ) from None
            msgdef = generated if msgdef is None else msgdef
            type_hash = hashed if type_hash is None else type_hash
        schema_id = self._schemas.get(msgtype)
        if schema_id is None:
            schema_id = self._mcap.register_schema(msgtype, "ros2msg", msgdef.encode())
            self._schemas[msgtype] = schema_id
        profiles = tuple(qos)
        channel_id = self._mcap.register_channel(
            topic,
            "cdr",
            schema_id,
            {
                "offered_qos_profiles": _dump_yaml(qos_to_dicts(profiles)) if profiles else "",
                "topic_type_hash": type_hash,
            },
        )
        self._topics[topic] = _Topic(topic, msgtype, type_hash, profiles, channel_id)

    def write(
        self,
        topic: str,
        data: bytes | bytearray | memoryview,
        stamp_ns: int,
        *,
        publish_ns: int | None = None,
    ) -> None:
        """Append one CDR-serialised message logged at ``stamp_ns`` [ns].

        Raises:
            BagError: an undeclared topic, a negative time, or the bag is closed.
        """
        self._check_open()
        entry = self._topics.get(topic)
        if entry is None:
            raise BagError(f"bag {self.path}: topic {topic} was not added (add_topic first)")
        if stamp_ns < 0:
            raise BagError(f"bag {self.path}: topic {topic}: negative log time {stamp_ns} ns")
        entry.count += 1
        self._mcap.add_message(
            entry.channel_id,
            log_time=stamp_ns,
            data=bytes(data),
            publish_time=stamp_ns if publish_ns is None else publish_ns,
            sequence=entry.count,
        )
        self._first = stamp_ns if self._first is None else min(self._first, stamp_ns)
        self._last = stamp_ns if self._last is None else max(self._last, stamp_ns)

    # ---- state ----------------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._stream is None

    @property
    def counts(self) -> dict[str, int]:
        """Messages written so far, per topic."""
        return {t.name: t.count for t in self._topics.values()}

    @property
    def topics(self) -> dict[str, str]:
        """topic -> message type."""
        return {t.name: t.msgtype for t in self._topics.values()}

    def metadata(self) -> dict[str, Any]:
        """``rosbag2_bagfile_information`` as metadata.yaml holds it (the counts so far)."""
        start = self._first or 0
        duration = (self._last or 0) - start
        total = sum(t.count for t in self._topics.values())
        name = self.file.name
        return {
            "version": ROSBAG2_VERSION,
            "storage_identifier": "mcap",
            "duration": {"nanoseconds": duration},
            "starting_time": {"nanoseconds_since_epoch": start},
            "message_count": total,
            "topics_with_message_count": [
                {
                    "topic_metadata": {
                        "name": t.name,
                        "type": t.msgtype,
                        "serialization_format": "cdr",
                        "offered_qos_profiles": qos_to_dicts(t.qos),
                        "type_description_hash": t.type_hash,
                    },
                    "message_count": t.count,
                }
                for t in self._topics.values()
            ],
            "compression_format": "",  # chunk compression lives inside the MCAP storage
            "compression_mode": "",
            "relative_file_paths": [name],
            "files": [
                {
                    "path": name,
                    "starting_time": {"nanoseconds_since_epoch": start},
                    "duration": {"nanoseconds": duration},
                    "message_count": total,
                }
            ],
            "custom_data": dict(self.custom_data) or None,
            "ros_distro": ROS_DISTRO,
        }

    # ---- closing --------------------------------------------------------------------------------
    def close(self) -> None:
        """Finish the MCAP file (summary, footer) and write metadata.yaml; idempotent.

        Raises:
            BagError: the file or metadata.yaml cannot be written (naming it).
        """
        stream = self._stream
        if stream is None:
            return
        self._stream = None
        info = self.metadata()
        try:
            self._mcap.add_metadata("rosbag2", {"serialized_metadata": _dump_yaml(info)})
            self._mcap.finish()
            stream.flush()
            os.fsync(stream.fileno())
        except OSError as err:
            raise BagError(f"bag {self.path}: cannot finish {self.file.name}: {err}") from err
        finally:
            stream.close()
        meta = self.path / METADATA_FILE
        tmp = meta.with_suffix(".yaml.tmp")
        try:
            tmp.write_text(_dump_yaml({"rosbag2_bagfile_information": info}), encoding="utf-8")
            tmp.replace(meta)
        except OSError as err:
            raise BagError(f"bag {self.path}: cannot write {meta.name}: {err}") from err

    def _check_open(self) -> None:
        if self._stream is None:
            raise BagError(f"bag {self.path}: closed")

    def __enter__(self) -> BagWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        """Close; on an exception the bag is still closed (what was written stays readable)."""
        if exc_type is None:
            self.close()
        else:
            with contextlib.suppress(Exception):
                self.close()
        return False


# ---- the map_recorder node's settings -----------------------------------------------------------
@dataclass(frozen=True)
class RecorderConfig:
    """Parameters of the ``map_recorder`` node (``xiaomanlv_mapping.nodes.recorder``)."""

    output: str = param("", description="bag directory to create (required; never overwritten)")
    topics: tuple[str, ...] = param(
        ("/lidar/points", "/imu/data", "/wheel/odom", "/gnss/fix"),
        description="absolute topics to record; each is waited for until a publisher appears",
    )
    optional_topics: tuple[str, ...] = param(
        ("/sim/ground_truth/pose",),
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
        if self.compression not in _COMPRESSION:
            raise ConfigError(
                f"parameter 'compression' = '{self.compression}' is not one of "
                f"{', '.join(_COMPRESSION)}"
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


# ---- reading ------------------------------------------------------------------------------------
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

# sensor_msgs/PointField datatypes -> numpy (little-endian; byte order set per cloud)
_POINT_TYPES = {1: "i1", 2: "u1", 3: "i2", 4: "u2", 5: "i4", 6: "u4", 7: "f4", 8: "f8"}


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


def _seconds(stamp: Any, log_ns: int) -> float:
    """header.stamp [s]; a zero stamp (a driver that never set it) falls back to log time."""
    sec, nanosec = int(stamp.sec), int(stamp.nanosec)
    if sec == 0 and nanosec == 0:
        return log_ns * 1e-9
    return sec + nanosec * 1e-9


def _header_time(msg: Any, log_ns: int) -> float:
    header = getattr(msg, "header", None)
    return log_ns * 1e-9 if header is None else _seconds(header.stamp, log_ns)


def _yaw(q: Any) -> float:
    x, y, z, w = float(q.x), float(q.y), float(q.z), float(q.w)
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def _sorted(stamps: list[float], *columns: list[Any]) -> list[NDArray[np.float64]]:
    t = np.asarray(stamps, dtype=np.float64)
    order = np.argsort(t, kind="stable")
    return [
        t[order],
        *(np.asarray(c, dtype=np.float64).reshape(len(t), -1)[order] for c in columns),
    ]


def cloud_points(
    msg: Any, where: str, topic: str, index: int
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """(points (N,3) [m], intensities (N,)) of a PointCloud2 with FLOAT32 (or FLOAT64) x, y, z
    and an optional numeric ``intensity`` (zeros without one); non-finite points dropped.

    Raises:
        BagError: missing or non-float x/y/z, or a data size that does not match the layout.
    """
    by_name = {str(f.name): f for f in msg.fields}
    order = ">" if msg.is_bigendian else "<"
    names, formats, offsets = [], [], []
    for name in ("x", "y", "z", "intensity"):
        f = by_name.get(name)
        if f is None:
            if name == "intensity":
                continue
            raise malformed(where, topic, index, f"PointCloud2 has no field '{name}'")
        kind = _POINT_TYPES.get(int(f.datatype))
        if kind is None or (name != "intensity" and kind not in ("f4", "f8")):
            raise malformed(
                where, topic, index, f"PointCloud2 field '{name}' has datatype {f.datatype}"
            )
        names.append(name)
        formats.append(order + kind)
        offsets.append(int(f.offset))
    step, width, height = int(msg.point_step), int(msg.width), int(msg.height)
    row_step = int(msg.row_step) or step * width
    data = np.asarray(msg.data, dtype=np.uint8)
    need = row_step * (height - 1) + step * width if height and width else 0
    itemsize = max(o + np.dtype(k).itemsize for o, k in zip(offsets, formats, strict=True))
    if step < itemsize or row_step < step * width or data.size < need:
        raise malformed(
            where,
            topic,
            index,
            f"PointCloud2 layout (point_step {step}, row_step {row_step}, {height}x{width}) "
            f"does not fit its {data.size} data bytes",
        )
    dtype = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": step})
    if row_step == step * width:
        cloud = np.frombuffer(data, dtype=dtype, count=width * height)
    else:  # rows padded: take each row's points
        rows = [
            np.frombuffer(data, dtype=dtype, count=width, offset=r * row_step)
            for r in range(height)
        ]
        cloud = np.concatenate(rows) if rows else np.zeros(0, dtype=dtype)
    points = np.empty((len(cloud), 3), dtype=np.float32)
    points[:, 0], points[:, 1], points[:, 2] = cloud["x"], cloud["y"], cloud["z"]
    if "intensity" in names:
        intensities = cloud["intensity"].astype(np.float32)
    else:
        intensities = np.zeros(len(cloud), dtype=np.float32)
    keep = np.isfinite(points).all(axis=1)
    if not keep.all():
        points, intensities = points[keep], intensities[keep]
    return np.ascontiguousarray(points), np.ascontiguousarray(intensities)


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
                points, intensities = cloud_points(msg, self._where, conn.topic, index)
                yield Scan(_header_time(msg, log_ns), points, intensities)
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
        poses.append((float(p.position.x), float(p.position.y), _yaw(p.orientation)))
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
