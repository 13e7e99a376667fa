"""Write a mapping drive as a rosbag2 bag with MCAP storage, as ``ros2 bag record`` does on Jazzy.

Layout: a directory ``<name>/`` holding ``<name>_0.mcap`` and ``metadata.yaml``
(``rosbag2_bagfile_information`` version 9: topics with their type, RIHS01 type hash, offered
QoS and message count; files; ``ros_distro``). The MCAP file follows the ``ros2`` profile
(https://mcap.dev/spec/registry): schemas are full ``ros2msg`` definitions (dependencies
appended after ``====`` separators, what Foxglove and ``ros2 bag`` decode with), channels carry
``offered_qos_profiles`` and ``topic_type_hash``, messages are CDR, chunked and compressed
(zstd by default) with CRCs, and a ``rosbag2`` metadata record repeats metadata.yaml as Jazzy's
storage plugin does. The ``mcap`` library writes the file; message definitions and hashes come
from the rosbags Jazzy typestore. Messages are written as they come (raw CDR from a raw
subscription or ``serialize_message``), never deserialised.

Interrupted recordings: metadata.yaml is written (atomically) only by :meth:`BagWriter.close`,
and the MCAP file gets its summary and footer only then, after an fsync. A killed recorder
therefore leaves a directory with an ``.mcap`` that does not end in the MCAP magic, which
:func:`~xiaomanlv_mapping.bag.reader.open_drive` reports (``mcap recover`` salvages its
complete chunks). A writer left by an exception is still closed, so what was written stays
readable.

Why not rosbags' own rosbag2 writer (``rosbags.rosbag2.Writer`` with ``StoragePlugin.MCAP``,
rosbags 0.11.9, read and measured for issue 12): it writes ``<name>/<name>.mcap`` rather than
``<name>_0.mcap``; its channels carry no ``topic_type_hash`` (the RIHS01 hash survives only in
metadata.yaml, so an MCAP without metadata.yaml loses it); metadata.yaml says ``ros_distro:
rosbags``; chunk compression is zstd or none only (no lz4) at a fixed 1 MiB chunk size; chunks
and the summary carry no CRCs (a flipped byte in an uncompressed bag reads back as data); the
file is not fsynced before metadata.yaml is renamed into place; and leaving its context manager
on an exception aborts without a footer, so everything recorded until a failure is unreadable
until ``mcap recover``. Making it do what this writer does means reaching into its storage
plugin; the mcap library is Foxglove's reference implementation of the format and leaves us
only metadata.yaml to write. Speed is not the reason (811 MB of a drive's CDR written in
4.40 s here, 4.22 s there): docs/mapping.md, "Bags", has the measurement.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

import yaml
from mcap.writer import CompressionType
from mcap.writer import Writer as McapWriter
from rosbags.interfaces import (
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.typesys.store import Typestore

from xiaomanlv_mapping.bag.rosbag2 import (
    METADATA_FILE,
    ROS_DISTRO,
    ROSBAG2_VERSION,
    jazzy_typestore,
)
from xiaomanlv_mapping.config import BAG_COMPRESSIONS
from xiaomanlv_mapping.model import BagError

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

_COMPRESSION = {name: CompressionType[name.upper()] for name in BAG_COMPRESSIONS}


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
