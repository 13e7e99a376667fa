"""Property-based fuzzing of a running graph over DDS: every input of every node, hostile values.

The fuzzer discovers what each node of a running graph listens to (its subscriptions, its
services, and the services behind its action servers and parameters) through the ROS graph API,
builds a hypothesis strategy for each interface type from its rosidl introspection
(``SLOT_TYPES``), and sends drawn messages and requests from a client node on the same domain.
Strategies lean on what breaks parsers: NaN and infinities, integer bounds, empty and very long
sequences, control characters, invalid UTF-8, JSON nested thousands deep or holding numbers too
large for a float, point clouds whose layout lies about their data, and raw CDR bytes cut short or
with corrupted lengths (published serialized, bypassing the Python type checks).

A node passes when it survives: the supervisor sees no process exit, and the node reports what it
refused in /diagnostics (keys naming ``malformed``, ``rejected`` or ``invalid``), which the fuzzer
collects per node. Used by ``bench/fuzz.py`` and ``tests/integration/test_fuzz_dds.py``.

Reference: hypothesis' strategies and ``@given`` (https://hypothesis.readthedocs.io); the
ROS 2 graph API (``get_subscriber_names_and_types_by_node``).
"""

from __future__ import annotations

import array
import contextlib
import importlib
import json
import logging
import math
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rclpy.serialization import serialize_message
from rosidl_parser.definition import (
    AbstractNestedType,
    AbstractString,
    AbstractWString,
    Array,
    BasicType,
    BoundedSequence,
    BoundedString,
    BoundedWString,
    NamespacedType,
)

from xiaomanlv_bringup.ros.session import GraphSession
from xiaomanlv_core.ros.qos import events_qos

log = logging.getLogger(__name__)

# Diagnostics keys that count refused input (a key containing any of these words, int value).
REJECTION_WORDS = ("malformed", "rejected", "invalid")
# Topics that carry no node input worth fuzzing, or that would only fuzz rclpy itself.
SKIPPED_TOPICS = frozenset({"/rosout", "/parameter_events"})

_INT_BOUNDS = {
    "int8": (-(2**7), 2**7 - 1),
    "uint8": (0, 2**8 - 1),
    "int16": (-(2**15), 2**15 - 1),
    "uint16": (0, 2**16 - 1),
    "int32": (-(2**31), 2**31 - 1),
    "uint32": (0, 2**32 - 1),
    "int64": (-(2**63), 2**63 - 1),
    "uint64": (0, 2**64 - 1),
    "short": (-(2**15), 2**15 - 1),
    "unsigned short": (0, 2**16 - 1),
    "long": (-(2**31), 2**31 - 1),
    "unsigned long": (0, 2**32 - 1),
    "long long": (-(2**63), 2**63 - 1),
    "unsigned long long": (0, 2**64 - 1),
}
_TYPECODES = {
    "float": "f",
    "double": "d",
    "int8": "b",
    "uint8": "B",
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "uint64": "Q",
}
_ACTION_PARTS = (  # an action's generated types, by the suffix of their type name
    ("_SendGoal", ("Impl", "SendGoalService")),
    ("_GetResult", ("Impl", "GetResultService")),
    ("_FeedbackMessage", ("Impl", "FeedbackMessage")),
    ("_Feedback", ("Feedback",)),
    ("_Result", ("Result",)),
    ("_Goal", ("Goal",)),
)
_SHORT_SEQUENCE = 6  # elements in a drawn sequence, before the long constant-filled ones
_LONG_SEQUENCE = 200_000  # elements of the longest constant-filled sequence
_JSON_KEYS = (
    "action",
    "compartment",
    "kind",
    "duration",
    "tag",
    "stop",
    "stops",
    "station",
    "name",
    "x",
    "y",
    "latitude",
    "longitude",
    "heading_deg",
)

# -------------------------------------------------------------------------- value strategies

_FLOAT_EXTREMES = st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e308, -1e308, 5e-324])
_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(st.characters(max_codepoint=0x1F), max_size=8),  # control characters, NUL
    st.sampled_from(["", " ", "\x00", "a\x00b", "\ufffd", "\u202e", "../../etc/passwd", "%s%n"]),
    st.integers(0, 100_000).map(lambda n: "x" * n),
)


def _json_text() -> st.SearchStrategy[str]:
    """JSON documents: random shapes over plausible keys, absurd numbers, deep nesting."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**1100), max_value=2**1100),
        st.floats(),
        _TEXT,
    )
    values = st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(
                st.one_of(st.sampled_from(_JSON_KEYS), st.text(max_size=6)), inner, max_size=5
            ),
        ),
        max_leaves=12,
    )
    deep = st.integers(1, 100_000).map(lambda n: "[" * n + "]" * n)
    deep_obj = st.integers(1, 10_000).map(lambda n: '{"a":' * n + "1" + "}" * n)
    return st.one_of(values.map(lambda v: json.dumps(v, allow_nan=True)), deep, deep_obj)


def _basic(typename: str) -> st.SearchStrategy[Any]:
    if typename == "boolean":
        return st.booleans()
    if typename == "float":
        return st.one_of(
            st.floats(width=32),
            _FLOAT_EXTREMES.filter(lambda v: abs(v) < 3.4e38 or math.isinf(v) or math.isnan(v)),
        )
    if typename in ("double", "long double"):
        return st.one_of(st.floats(), _FLOAT_EXTREMES)
    if typename == "octet":
        return st.binary(min_size=1, max_size=1)
    if typename == "char":
        return st.integers(0, 255)
    if typename == "wchar":
        return st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs"])
    low, high = _INT_BOUNDS[typename]
    return st.one_of(st.integers(low, high), st.sampled_from([low, high, 0]))


def _string(slot: AbstractString | AbstractWString) -> st.SearchStrategy[str]:
    if isinstance(slot, BoundedString | BoundedWString):
        return _TEXT.map(lambda s: s[: slot.maximum_size])
    return _TEXT


def _sequence(slot: AbstractNestedType) -> st.SearchStrategy[Any]:
    element = slot.value_type
    inner = _slot(element)
    if isinstance(slot, Array):
        return st.lists(inner, min_size=slot.size, max_size=slot.size)
    maximum = slot.maximum_size if isinstance(slot, BoundedSequence) else None
    short = st.lists(inner, max_size=min(_SHORT_SEQUENCE, maximum or _SHORT_SEQUENCE))
    if not isinstance(element, BasicType) or element.typename not in _TYPECODES:
        return short
    code = _TYPECODES[element.typename]
    longest = maximum if maximum is not None else _LONG_SEQUENCE
    long_filled = st.tuples(st.integers(0, longest), inner).map(
        lambda nv: array.array(code, [nv[1]]) * nv[0]
    )
    return st.one_of(short, long_filled)


def _slot(slot: Any) -> st.SearchStrategy[Any]:
    if isinstance(slot, BasicType):
        return _basic(slot.typename)
    if isinstance(slot, AbstractString | AbstractWString):
        return _string(slot)
    if isinstance(slot, AbstractNestedType):
        return _sequence(slot)
    if isinstance(slot, NamespacedType):
        return message_strategy(interface_class("/".join([*slot.namespaces, slot.name])))
    raise TypeError(f"no strategy for rosidl slot type {slot!r}")


# ----------------------------------------------------------------------- message strategies

_CACHE: dict[type, st.SearchStrategy[Any]] = {}
_SPECIAL: dict[str, Callable[[type], st.SearchStrategy[Any]]] = {}


def _type_name(cls: type) -> str:
    module = cls.__module__.split(".")
    return f"{module[0]}/{module[1]}/{cls.__name__}"


def _generic(cls: type) -> st.SearchStrategy[Any]:
    fields = {
        name: _slot(slot)
        for name, slot in zip(cls.get_fields_and_field_types(), cls.SLOT_TYPES, strict=True)  # type: ignore[attr-defined]
    }
    return st.fixed_dictionaries(fields).map(lambda values: _build(cls, values))


def _build(cls: type, values: dict[str, Any]) -> Any:
    msg = cls()
    for name, value in values.items():
        # A value the Python type refuses cannot be sent at all: keep the default.
        with contextlib.suppress(AssertionError, TypeError, ValueError, OverflowError):
            setattr(msg, name, value)
    return msg


def message_strategy(cls: type) -> st.SearchStrategy[Any]:
    """Hypothesis strategy for instances of the rosidl message (or request) class ``cls``."""
    if cls not in _CACHE:
        special = _SPECIAL.get(_type_name(cls))
        generic = st.deferred(lambda: _generic(cls))
        _CACHE[cls] = st.one_of(generic, special(cls)) if special else generic
    return _CACHE[cls]


def _string_message(cls: type) -> st.SearchStrategy[Any]:
    return _json_text().map(lambda text: cls(data=text))


_FIELD_TYPES = (1, 2, 3, 4, 5, 6, 7, 8, 0, 9, 255)  # PointField datatypes, valid and not


def _cloud(cls: type) -> st.SearchStrategy[Any]:
    """PointCloud2s whose layout is plausible, odd or lying about the data behind it."""
    from sensor_msgs.msg import PointField

    def build(args: tuple[Any, ...]) -> Any:
        n, names, datatype, bigendian, fill, stretch, height = args
        fields = [
            PointField(name=name, offset=4 * i, datatype=datatype, count=1)
            for i, name in enumerate(names)
        ]
        step = 4 * len(names)
        packed = (
            struct.pack(">f" if bigendian else "<f", fill) if datatype == 7 else b"\xff\xff\x7f\x7f"
        )
        data = packed * (len(names) * n + stretch) if n + stretch >= 0 else b""
        msg = cls(
            height=height,
            width=n,
            fields=fields,
            is_bigendian=bigendian,
            point_step=step,
            row_step=step * n,
            is_dense=False,
        )
        msg.header.frame_id = "lidar"
        msg.data = array.array("B", data[: 16 * (_LONG_SEQUENCE // 4)])
        return msg

    return st.tuples(
        st.integers(0, 30_000),
        st.lists(st.sampled_from(["x", "y", "z", "intensity", "t", "ring", ""]), max_size=6),
        st.sampled_from(_FIELD_TYPES),
        st.booleans(),
        st.one_of(st.floats(width=32), _FLOAT_EXTREMES.filter(lambda v: not math.isfinite(v))),
        st.integers(-3, 3),
        st.sampled_from([0, 1, 1, 1, 2]),
    ).map(build)


_SPECIAL["std_msgs/msg/String"] = _string_message
_SPECIAL["sensor_msgs/msg/PointCloud2"] = _cloud


def raw_mutation(msg: Any) -> st.SearchStrategy[bytes]:
    """Serialized CDR of ``msg`` cut short, with a byte flipped (never to itself), or with a
    length set huge."""
    good = serialize_message(msg)

    def mutate(args: tuple[int, int, int]) -> bytes:
        kind, where, value = args
        where = 4 + where % max(1, len(good) - 4)
        if kind == 0:
            return good[:where]
        if kind == 1:
            return good[:where] + bytes([good[where] ^ (1 + value % 255)]) + good[where + 1 :]
        return good[:where] + struct.pack("<I", 0x7FFFFFF0 + value % 16) + good[where + 4 :]

    return st.tuples(st.integers(0, 2), st.integers(0, 2**16), st.integers(0, 255)).map(mutate)


# ---------------------------------------------------------------------------- interfaces


def interface_class(type_name: str) -> Any:
    """The Python class of ``pkg/msg/Name``, ``pkg/srv/Name`` (its class) or an action's hidden
    services ``pkg/action/Name_SendGoal`` | ``_GetResult`` | ``_CancelGoal``.

    Raises:
        ImportError: the interface package is not installed here.
    """
    package, kind, name = type_name.split("/")
    module = importlib.import_module(f"{package}.{kind}")
    if kind == "action":
        if name.endswith("_CancelGoal"):
            return importlib.import_module("action_msgs.srv").CancelGoal
        for suffix, path in _ACTION_PARTS:  # longest suffix first: _FeedbackMessage, _Feedback
            if name.endswith(suffix):
                found = getattr(module, name[: -len(suffix)])
                for attr in path:
                    found = getattr(found, attr)
                return found
    return getattr(module, name)


@dataclass(frozen=True)
class Target:
    """One input of one node: a subscribed topic or a served service."""

    node: str  # fully qualified node name
    kind: str  # "topic" | "service"
    name: str
    type_name: str


def discover(client: Node, nodes: Iterable[str]) -> tuple[list[Target], list[str]]:
    """Every subscription and service of ``nodes`` (names without namespace, in "/").

    Returns the targets and the interfaces that could not be imported here (skipped).
    """
    targets: list[Target] = []
    skipped: list[str] = []
    for node in nodes:
        found = [
            ("topic", name, types)
            for name, types in client.get_subscriber_names_and_types_by_node(node, "/")
            if name not in SKIPPED_TOPICS
        ] + [
            ("service", name, types)
            for name, types in client.get_service_names_and_types_by_node(node, "/")
        ]
        for kind, name, types in found:
            for type_name in types:
                try:
                    interface_class(type_name)
                except (ImportError, AttributeError, ValueError):
                    skipped.append(f"{node}: {name} [{type_name}]")
                    continue
                targets.append(Target(f"/{node}", kind, name, type_name))
    return targets, skipped


# ---------------------------------------------------------------------------- the run


@dataclass
class FuzzReport:
    messages_sent: int = 0
    raw_sent: int = 0
    service_calls: int = 0
    service_answers: int = 0
    service_timeouts: int = 0
    refused_locally: int = 0  # drawn, but this side's middleware would not send it
    per_node: Counter[str] = field(default_factory=Counter)  # messages + calls per node
    rejections: dict[str, int] = field(default_factory=dict)  # per diagnostics status name
    skipped: list[str] = field(default_factory=list)
    targets: int = 0

    @property
    def total(self) -> int:
        return self.messages_sent + self.service_calls


class _Diagnostics:
    """The newest rejection counts per diagnostics status, from /diagnostics."""

    def __init__(self, client: Node) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        self.counts: dict[str, int] = {}
        self.received = 0  # messages so far
        self._heard: dict[str, int] = {}  # status name -> message number it was last in
        self._lock = threading.Lock()
        self._client = client
        self._sub = client.create_subscription(DiagnosticArray, "/diagnostics", self._on, 100)

    def _on(self, msg: Any) -> None:
        with self._lock:
            self.received += 1
            for status in msg.status:
                self._heard[status.name] = self.received
                total = 0
                for kv in status.values:
                    if any(word in kv.key.lower() for word in REJECTION_WORDS):
                        try:
                            total += int(float(kv.value))
                        except ValueError:
                            continue
                self.counts[status.name] = max(total, self.counts.get(status.name, 0))

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self.counts)

    def counts_or_zero(self) -> dict[str, int]:
        """Every status heard so far, with its count plus one (so that heard reads truthy)."""
        with self._lock:
            return {name: count + 1 for name, count in self.counts.items()}

    def close(self) -> None:
        self._client.destroy_subscription(self._sub)

    def heard_since(self, received: int) -> set[str]:
        """Status names published after the ``received``-th message."""
        with self._lock:
            return {name for name, at in self._heard.items() if at > received}


class Fuzzer:
    """Sends drawn messages and requests to ``targets`` from ``client`` (spun elsewhere).

    Args:
        client: a node spun by an executor on another thread.
        targets: what to fuzz (from :func:`discover`).
        service_timeout: how long to wait for each service's answer before moving on. [s]
        raw_every: every this many-th topic message goes out as mutated serialized bytes
            (10: 10 %).
    """

    def __init__(
        self,
        client: Node,
        targets: Sequence[Target],
        *,
        service_timeout: float = 1.0,
        raw_every: int = 10,
    ) -> None:
        if not targets:
            raise ValueError("nothing to fuzz: no subscriptions or services found on the graph")
        self.client = client
        self.targets = list(targets)
        self.service_timeout = service_timeout
        self.raw_every = raw_every
        self._topic_draws = 0  # topic messages drawn so far, all targets
        self.report = FuzzReport(targets=len(targets))
        self._publishers: dict[tuple[str, str], Any] = {}
        self._clients: dict[tuple[str, str], Any] = {}
        self._diagnostics = _Diagnostics(client)

    def _publisher(self, target: Target) -> Any:
        key = (target.name, target.type_name)
        if key not in self._publishers:
            latched = any(
                info.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL
                for info in self.client.get_subscriptions_info_by_topic(target.name)
            )
            # a TRANSIENT_LOCAL subscriber matches only a TRANSIENT_LOCAL publisher
            qos = (
                events_qos(50)
                if latched
                else QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
            )
            cls = interface_class(target.type_name)
            self._publishers[key] = self.client.create_publisher(cls, target.name, qos)
        return self._publishers[key]

    def _client(self, target: Target) -> Any:
        key = (target.name, target.type_name)
        if key not in self._clients:
            cls = interface_class(target.type_name)
            self._clients[key] = self.client.create_client(cls, target.name)
        return self._clients[key]

    def send(self, target: Target, data: st.DataObject) -> None:
        """Draw one message or request for ``target`` and send it."""
        cls = interface_class(target.type_name)
        self.report.per_node[target.node] += 1
        if target.kind == "topic":
            msg = data.draw(message_strategy(cls), label=target.name)
            publisher = self._publisher(target)
            raw = data.draw(raw_mutation(msg))  # drawn always: the draws stay one sequence
            self._topic_draws += 1
            try:
                if self._topic_draws % self.raw_every == 0:
                    publisher.publish(raw)
                    self.report.raw_sent += 1
                else:
                    publisher.publish(msg)
            except (
                RuntimeError
            ):  # rclpy RCLError: our own middleware refused to send it (e.g. a 2 GB length)
                self.report.refused_locally += 1
                return
            self.report.messages_sent += 1
            return
        request = data.draw(message_strategy(cls.Request), label=target.name)
        client = self._client(target)
        self.report.service_calls += 1
        if not client.service_is_ready():
            self.report.service_timeouts += 1
            return
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _f: done.set())
        if done.wait(self.service_timeout):
            self.report.service_answers += 1
        else:
            self.report.service_timeouts += 1

    def run(
        self,
        count: int,
        *,
        seed: int = 0,
        chunk: int = 25,
        alive: Callable[[], None] | None = None,
        progress: Callable[[FuzzReport], None] | None = None,
    ) -> FuzzReport:
        """Send ``count`` drawn messages and service calls, spread evenly over the targets.

        Round robin in chunks of ``chunk`` per target, each chunk one hypothesis run of its own
        (seeded from ``seed``, the round and the target) so that each run's draws depend on
        nothing outside it. A target whose strategy has nothing new to draw (an empty
        request) drops out. ``alive`` is called after every chunk and may raise to abort (a node
        died and the graph stopped); ``progress`` receives the report after every round.
        """
        active = list(self.targets)
        chunk = max(1, min(chunk, count // len(active)))  # every target in the first round
        round_ = 0
        while active and self.report.total < count:
            for index, target in enumerate(list(active)):
                left = count - self.report.total
                if left <= 0:
                    break
                if (
                    self._chunk(target, min(chunk, left), seed * 1_000_003 + round_ * 1_009 + index)
                    == 0
                ):
                    active.remove(target)
                if alive is not None:
                    alive()
            round_ += 1
            if progress is not None:
                progress(self.report)
        self.report.rejections = self._diagnostics.snapshot()
        return self.report

    def _chunk(self, target: Target, examples: int, run_seed: int) -> int:
        """One hypothesis run of up to ``examples`` sends to ``target``; how many it sent."""
        sent = 0

        @hypothesis_seed(run_seed)
        @settings(
            max_examples=examples,
            phases=[Phase.generate],
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(st.data())
        def one(data: st.DataObject) -> None:
            nonlocal sent
            if sent < examples:
                self.send(target, data)
                sent += 1

        one()
        return sent

    def settle(self, seconds: float, nodes: Iterable[str]) -> dict[str, int]:
        """Wait until each of ``nodes`` published /diagnostics again (at most ``seconds``);
        the rejection counts per status."""
        deadline = time.monotonic() + seconds
        since = self._diagnostics.received
        wanted = set(nodes)
        while time.monotonic() < deadline:
            heard = self._diagnostics.heard_since(since)
            if all(any(_names_node(status, node) for status in heard) for node in wanted):
                break
            time.sleep(0.1)
        self.report.rejections = self._diagnostics.snapshot()
        return self.report.rejections

    def close(self) -> None:
        for pub in self._publishers.values():
            self.client.destroy_publisher(pub)
        for cli in self._clients.values():
            self.client.destroy_client(cli)


def rejections_by_node(rejections: dict[str, int], nodes: Iterable[str]) -> dict[str, int]:
    """Sum the rejection counts per node over the statuses named after it (``"<node>: ..."``).

    Statuses of other names are left out: the fuzzer itself publishes random /diagnostics to
    the health monitor, and hears them too.
    """
    total = dict.fromkeys(nodes, 0)
    for status, count in rejections.items():
        for node in total:
            if _names_node(status, node):
                total[node] += count
                break
    return total


def _names_node(status: str, node: str) -> bool:
    """Whether a diagnostics status name is one of ``node``'s (``"<node>: ..."``)."""
    name = status.lstrip("/")
    return name == node or name.startswith(f"{node}:")


def wait_for_nodes(
    session: GraphSession, names: Sequence[str], timeout: float = 90.0, quiet: float = 2.0
) -> None:
    """Block until every node in ``names`` has published its first /diagnostics (its
    constructor has finished) and what it listens to has stopped changing for ``quiet`` s.

    A node's parameter services and /clock subscription exist from the start of its
    constructor, the rest only once it has loaded what it needs (the simulator: its world),
    so the first sight of a node on the graph is not all of it.

    Raises:
        TimeoutError: naming the nodes still missing.
        RuntimeError: the graph stopped (a critical node died) before they appeared.
    """
    deadline = time.monotonic() + timeout
    seen: tuple[Any, ...] = ()
    since = time.monotonic()
    diagnostics = _Diagnostics(session.client)
    while True:
        session.supervisor.poll()
        if session.supervisor.failure:
            raise RuntimeError(f"the graph stopped: {session.supervisor.failure}")
        present = {name for name, _ in session.client.get_node_names_and_namespaces()}
        inputs = tuple(
            (
                sorted(map(str, session.client.get_subscriber_names_and_types_by_node(n, "/"))),
                sorted(map(str, session.client.get_service_names_and_types_by_node(n, "/"))),
            )
            if n in present
            else None
            for n in names
        )
        now = time.monotonic()
        if inputs != seen:
            seen, since = inputs, now
        elif (
            all(i is not None and i[1] for i in inputs)
            and now - since >= quiet
            and all(rejections_by_node(diagnostics.counts_or_zero(), names).values())
        ):
            diagnostics.close()
            return
        if now > deadline:
            missing = [n for n, i in zip(names, inputs, strict=True) if i is None or not i[1]]
            raise TimeoutError(f"not on the graph after {timeout:g} s: {missing}")
        time.sleep(0.2)


def fuzz_session(
    session: GraphSession,
    names: Sequence[str],
    count: int,
    *,
    seed: int = 1,
    service_timeout: float = 1.0,
    progress: Callable[[FuzzReport], None] | None = None,
) -> dict[str, Any]:
    """Fuzz every input of the nodes ``names`` of a running session; a JSON-able summary.

    ``node_deaths`` counts the process exits during the run plus nodes down at its end.
    """
    wait_for_nodes(session, names)
    targets, skipped = discover(session.client, names)
    fuzzer = Fuzzer(session.client, targets, service_timeout=service_timeout)
    supervisor = session.supervisor
    exits_before = sum(len(c) for c in supervisor.exit_codes().values())
    try:
        report = fuzzer.run(count, seed=seed, alive=supervisor.poll, progress=progress)
        rejections = fuzzer.settle(10.0, names)
    finally:
        fuzzer.close()
    supervisor.poll()
    exit_codes = supervisor.exit_codes()
    running = supervisor.running()
    down = [n for n in names if n not in running]
    return {
        "messages_sent": report.total,
        "topic_messages": report.messages_sent,
        "raw_cdr_messages": report.raw_sent,
        "refused_locally": report.refused_locally,
        "service_calls": report.service_calls,
        "service_answers": report.service_answers,
        "service_timeouts": report.service_timeouts,
        "inputs_fuzzed": report.targets,
        "inputs_per_node": dict(Counter(t.node.lstrip("/") for t in targets)),
        "sent_per_node": {k.lstrip("/"): v for k, v in report.per_node.items()},
        "node_deaths": sum(len(c) for c in exit_codes.values()) - exits_before + len(down),
        "nodes_down_at_end": down,
        "exit_codes": {k: v for k, v in exit_codes.items() if v},
        "rejections": rejections_by_node(rejections, names),
        "skipped_inputs": skipped,
    }
