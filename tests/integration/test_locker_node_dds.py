"""The locker node as a real process over Fast DDS, with the simulated driver.

Load a parcel, arm the stop, type the code from the notification file (the recipient's
"phone"), the door opens, the simulated recipient takes the parcel and closes it: delivered.
Wrong codes, lockout, no opening while moving, SIGKILL in the middle of a delivery and a
restart that reconciles, and malformed inputs counted in /diagnostics.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from std_msgs.msg import String
from xiaomanlv.msg import CompartmentStatus, LockerEvent
from xiaomanlv.srv import ArmStop, LoadParcel, SubmitCode

from xiaomanlv_core.ros.qos import LATCHED_QOS, events_qos
from xiaomanlv_locker.config import LockerConfig
from xiaomanlv_locker.notify import latest_codes
from xiaomanlv_locker.operators import add_operator
from xiaomanlv_locker.store import Store

pytestmark = pytest.mark.integration

OPERATOR = ("op1", "station-secret-1")
SITE_STOPS = ("A 0 0", "B 50 0")  # name, x, y [m] in map
HISTORY = events_qos(200)  # what a late subscriber gets: latched statuses, the event history


@pytest.fixture
def locker_node(
    ros_domain: int, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Any]]:
    """Factory: start the locker node with ``params`` on a fresh data dir; returns the session.

    Uses the ``locker`` entry of config/graph.yaml when the graph declares it (as the
    ``ros_graph`` fixture does), else the same NodeSpec built here; restarts once if killed.
    """
    import io

    from xiaomanlv_bringup.graph import NodeSpec
    from xiaomanlv_bringup.ros.session import GraphSession

    sessions: list[GraphSession] = []
    logs = io.StringIO()

    def start(stops_from_map: bool = False, **params: Any) -> Any:
        """``site_stops`` are A and B unless ``stops_from_map`` (then /map/stops gives them)."""
        data = tmp_path / "locker"
        values = {"data_dir": str(data), "sim_actor_delay": 0.3, "status_rate": 5.0}
        if not stops_from_map:
            values["site_stops"] = list(SITE_STOPS)
        values.update(params)
        add_operator(LockerConfig(data_dir=str(data)), *OPERATOR, n=2**12)
        path = tmp_path / "locker.params.yaml"
        path.write_text(yaml.safe_dump({"/**": {"ros__parameters": values}}))
        base = Path(__file__).resolve().parents[2] / "config" / "locker.yaml"
        spec = NodeSpec(
            name="locker",
            executable="locker",
            namespace="",
            parameters=(base, path),
            remappings=(),
            on_exit="restart",
            max_restarts=3,
            use_sim_time=False,
        )
        session = GraphSession([spec], ros_domain, output=logs, grace=3.0)
        session.__enter__()
        sessions.append(session)
        session.data_dir = data
        session.wait_for_topics(["/locker/events", "/locker/compartment_01/status"], timeout=30)
        return session

    try:
        yield start
    finally:
        for s in sessions:
            s.close()
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            print("---- node output ----\n" + logs.getvalue())


@contextmanager
def odometry(session: Any, speed: Callable[[], float | None]) -> Iterator[None]:
    """Publish /wheel/odom at 20 Hz with ``speed()`` m/s (None: publish nothing); yields once
    the locker receives it (and, standing still, once it says it is parked)."""
    pub = session.client.create_publisher(Odometry, "/wheel/odom", 10)

    def tick() -> None:
        value = speed()
        if value is not None:
            msg = Odometry()
            msg.twist.twist.linear.x = value
            pub.publish(msg)

    timer = session.client.create_timer(0.05, tick)
    try:
        session.wait_for_match(pub)
        if speed() == 0.0:
            parked(session, moving=False)
        yield
    finally:
        session.client.destroy_timer(timer)
        session.client.destroy_publisher(pub)


def Watch(session: Any, msg_type: Any, topic: str, qos: Any = HISTORY) -> Any:  # noqa: N802
    """Every message on ``topic`` from now on (an :class:`~xiaomanlv_bringup.ros.session.Inbox`)."""
    return session.collect(msg_type, topic, qos)


def load(session: Any, parcel: str, stop: str = "A") -> Any:
    request = LoadParcel.Request(
        parcel_id=parcel,
        recipient=f"{parcel}@example.org",
        stop=stop,
        size="small",
        operator_id=OPERATOR[0],
        operator_credential=OPERATOR[1],
    )
    return session.call(LoadParcel, "/locker/load_parcel", request)


def arm(session: Any, stop: str = "A", on: bool = True) -> Any:
    return session.call(ArmStop, "/locker/arm_stop", ArmStop.Request(stop=stop, arm=on))


def submit(session: Any, code: str, kiosk: str = "kiosk-1") -> Any:
    return session.call(
        SubmitCode, "/locker/submit_code", SubmitCode.Request(kiosk_id=kiosk, code=code)
    )


def code_of(session: Any, parcel: str) -> str:
    return latest_codes(session.data_dir / "notifications.jsonl")[parcel]


def wrong(code: str) -> str:
    return "0" * len(code) if code != "0" * len(code) else "1" * len(code)


def test_delivery_over_dds_and_malformed_inputs_counted(locker_node: Any) -> None:
    session = locker_node()
    status = Watch(session, CompartmentStatus, "/locker/compartment_01/status")
    events = Watch(session, LockerEvent, "/locker/events")
    with odometry(session, lambda: 0.0):
        loaded = load(session, "parcel-1")
        assert loaded.success, loaded.message
        assert loaded.compartment == 1 and loaded.expires.sec > time.time()
        status.wait(lambda s: s.state == "loaded" and s.locked and s.parcel_present)
        armed = session.call(ArmStop, "/locker/arm_stop", ArmStop.Request(stop="A", arm=True))
        assert armed.success and list(armed.compartments) == [1]
        code = code_of(session, "parcel-1")
        assert len(code) == 8
        refused = submit(session, wrong(code))
        assert not refused.success and refused.compartment == 0
        opened = submit(session, code)
        assert opened.success and opened.compartment == 1, opened.message
        status.wait(lambda s: s.state == "open")
        done = status.wait(lambda s: s.state == "delivered", timeout=20.0)
        assert done.door_closed and not done.parcel_present and done.parcel_id == ""
        assert not submit(session, code).success  # single use
        kinds = [e.kind for e in events.wait(lambda e: e.kind == "delivered") and events.items]
        assert {"loaded", "armed", "code_rejected", "code_accepted", "opened"} <= set(kinds)
        assert all(code not in e.detail for e in events.items)
        seqs = [e.seq for e in events.items]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)

        # malformed: an empty kiosk id, a broken sim command, a NaN odometry twist
        assert "kiosk_id" in submit(session, "12345678", kiosk="").message
        nan = Odometry()
        nan.twist.twist.linear.x = float("nan")

        def counted(values: dict[str, str]) -> bool:
            return (
                int(values.get("rejected_sim_command", 0)) >= 1
                and int(values["malformed_messages"]) >= 3
            )

        # Published until counted: a writer matched on our side may still be unknown to the
        # locker's reader, and a message it sends then can be lost.
        with (
            session.publishing("/locker/sim/command", String(data="{not json"), rate=2.0),
            session.publishing("/wheel/odom", nan, rate=2.0),
        ):
            values = diagnostics_values(session, counted)
        assert int(values["malformed_messages"]) >= 3
    assert session.supervisor.running() == ["locker"]


def test_wrong_codes_lock_out_and_nothing_opens_while_moving(locker_node: Any) -> None:
    session = locker_node(kiosk_free_attempts=2, backoff_base=30.0)
    speed: list[float | None] = [0.0]
    with odometry(session, lambda: speed[0]):
        assert load(session, "parcel-2").success
        status = Watch(session, CompartmentStatus, "/locker/compartment_01/status")
        status.wait(lambda s: s.state == "loaded" and s.locked)
        assert session.call(
            ArmStop, "/locker/arm_stop", ArmStop.Request(stop="A", arm=True)
        ).success
        code = code_of(session, "parcel-2")
        status.wait(lambda s: s.state == "available")
        status.clear()
        speed[0] = 1.0  # driving off: the stop disarms and no code opens a door
        status.wait(lambda s: s.state == "loaded")
        moving = submit(session, code)
        assert (not moving.success and "parked" in moving.message) or "moving" in moving.message
        rearm = session.call(ArmStop, "/locker/arm_stop", ArmStop.Request(stop="A", arm=True))
        assert not rearm.success
        speed[0] = None  # odometry lost: unknown counts as moving
        parked(session, moving=True)
        assert not session.call(
            ArmStop, "/locker/arm_stop", ArmStop.Request(stop="A", arm=True)
        ).success
        speed[0] = 0.0
        parked(session, moving=False)
        assert session.call(
            ArmStop, "/locker/arm_stop", ArmStop.Request(stop="A", arm=True)
        ).success
        assert submit(session, wrong(code), "k9").retry_after == 0.0
        locked_out = submit(session, wrong(code), "k9")
        assert not locked_out.success and locked_out.retry_after == pytest.approx(30.0, abs=1.0)
        assert not submit(session, code, "k9").success  # the right code waits too
        assert submit(session, code, "k10").success  # another kiosk is not locked out
        status.wait(lambda s: s.state == "delivered", timeout=20.0)


def test_sigkill_mid_delivery_then_restart_reconciles(locker_node: Any) -> None:
    session = locker_node(sim_actor_delay=600.0)  # the recipient dawdles: the door stays open
    status = Watch(session, CompartmentStatus, "/locker/compartment_01/status")
    sim = session.client.create_publisher(String, "/locker/sim/command", 10)
    with odometry(session, lambda: 0.0):
        assert load(session, "parcel-3").success
        session.wait_for_match(sim)
        for action in ("place", "close"):  # the operator loads by hand
            sim.publish(
                String(data=json.dumps({"action": action, "compartment": 1, "tag": "parcel-3"}))
            )
        status.wait(lambda s: s.state == "loaded" and s.locked)
        assert session.call(
            ArmStop, "/locker/arm_stop", ArmStop.Request(stop="A", arm=True)
        ).success
        assert submit(session, code_of(session, "parcel-3")).success
        status.wait(lambda s: s.state == "open" and not s.door_closed)
        pid = session.supervisor.pids()["locker"]
        before = sim_command_readers(session)
        os.kill(pid, signal.SIGKILL)

        def new_pid() -> bool:  # the supervisor restarts it after restart_delay
            session.supervisor.poll()
            return session.supervisor.pids().get("locker", pid) != pid

        session.wait_until(new_pid, 20.0, "a new locker process")
        restarted = Watch(session, CompartmentStatus, "/locker/compartment_01/status")
        restarted.wait(lambda s: s.state == "open", timeout=30.0)  # state survived the kill
        # the new process's reader of sim commands is discovered and matched by our writer
        session.wait_until(
            lambda: sim_command_readers(session) - before, 20.0, "the new locker's reader"
        )
        session.wait_for_match(sim, count=len(sim_command_readers(session)))
        for action in ("take", "close"):
            sim.publish(String(data=json.dumps({"action": action, "compartment": 1})))
        restarted.wait(lambda s: s.state == "delivered" and s.locked, timeout=20.0)
    secret = (session.data_dir / "device.key").read_bytes()
    store = Store(session.data_dir / "locker.db", secret)
    try:
        parcels = store.read().parcels()
        assert [(p.parcel_id, p.status) for p in parcels] == [("parcel-3", "delivered")]
        assert store.verify_audit() is None
    finally:
        store.close()


def sim_command_readers(session: Any) -> set[bytes]:
    """The endpoint ids of every reader of /locker/sim/command the graph knows."""
    infos = session.client.get_subscriptions_info_by_topic("/locker/sim/command")
    return {bytes(info.endpoint_gid) for info in infos}


def parked(session: Any, moving: bool) -> None:
    """Wait until the locker's /diagnostics say it is (not) moving."""
    want = str(moving).lower()
    diagnostics_values(session, lambda v: v.get("moving") == want)


def diagnostics_values(session: Any, until: Callable[[dict[str, str]], bool]) -> dict[str, str]:
    """The locker's /diagnostics values, once ``until`` holds for them (15 s at most)."""

    def locker_values(array: DiagnosticArray) -> dict[str, str] | None:
        for status in array.status:
            if status.name.startswith("locker"):
                return {kv.key: kv.value for kv in status.values}
        return None

    def matches(array: DiagnosticArray) -> bool:
        values = locker_values(array)
        return values is not None and until(values)

    array = session.wait_for_message(DiagnosticArray, "/diagnostics", 15.0, predicate=matches)
    values = locker_values(array)
    assert values is not None
    return values


HOSTILE_SIM_COMMANDS = (
    '{"action": "take", "compartment": 1e400}',  # int(inf): OverflowError killed the node
    '{"action": "take", "compartment": 100000000000000000000000000000000000}',
    '{"action": "fault", "kind": "jammed", "compartment": 1, "duration": NaN}',
    '{"action": "fault", "kind": "jammed", "compartment": 1, "duration": 1e400}',
    '{"action": "fault", "kind": "jammed", "compartment": 1, "duration": '
    + "9" * 400
    + "}",  # float() of it: OverflowError
    "[" * 3000 + "]" * 3000,  # json.loads: RecursionError
    '["take", 1]',
    '{"action": ["take"], "compartment": 1}',
    '{"action": "place", "compartment": 1, "tag": "P-1\\u0000evil"}',
    '{"action": "place", "compartment": 1, "tag": {"nested": true}}',
    '{"action": "open", "compartment": 256}',
    '{"action": "open", "compartment": true}',
    '{"action": "open", "compartment": 1, "extra": 1}',
)


def test_hostile_messages_are_counted_and_the_node_lives_on(locker_node: Any) -> None:
    session = locker_node()
    sim = session.client.create_publisher(String, "/locker/sim/command", 50)
    pose = session.client.create_publisher(PoseWithCovarianceStamped, "/localization/pose", 10)
    session.wait_for_match(sim)  # matched both ways: what we publish now is delivered
    for data in HOSTILE_SIM_COMMANDS:
        sim.publish(String(data=data))
    elsewhere = PoseWithCovarianceStamped()
    elsewhere.header.frame_id = "odom"  # a pose in the wrong frame
    pose.publish(elsewhere)
    values = diagnostics_values(
        session, lambda v: int(v.get("rejected_sim_command", 0)) >= len(HOSTILE_SIM_COMMANDS)
    )
    assert int(values["rejected_sim_command"]) == len(HOSTILE_SIM_COMMANDS)
    assert values["internal_errors"] == "0" and values["callback_errors"] == "0"
    assert session.supervisor.running() == ["locker"]
    assert session.supervisor.restarts()["locker"] == 0
    with odometry(session, lambda: 0.0):
        assert load(session, "after-the-storm").success  # still serving
        nul = load(session, "P-1\x00evil")  # rclpy cuts a NUL on the way out: "P-1" arrives
        assert nul.success and "P-1" in latest_codes(session.data_dir / "notifications.jsonl")
        moon = load(session, "parcel-moon", stop="moon")
        assert not moon.success and "field 'stop' = 'moon' is not a stop" in moon.message


def test_stops_come_from_the_map_servers_latched_topic(locker_node: Any) -> None:
    from xiaomanlv_core.types import Stop, StopSet
    from xiaomanlv_mapping.ros.conversions import stops_to_msg

    session = locker_node(stops_from_map=True)
    with odometry(session, lambda: 0.0):
        early = load(session, "parcel-early", stop="library")
        assert not early.success and "stops are not known yet" in early.message
        values = diagnostics_values(session, lambda v: "site_stops" in v)
        assert values["site_stops"] == "unknown"
        here = Stop("loading", 0.0, 0.0, 0.0)
        pocket = Stop("gym", 5.0, 5.0, 0.0, unreachable="enclosed by obstacles, in a pocket")
        site = StopSet("station", here, here, (Stop("library", 31.0, 70.0, 0.0), pocket))
        stops_pub = session.client.create_publisher(String, "/map/stops", LATCHED_QOS)
        stops_pub.publish(stops_to_msg(site))
        diagnostics_values(session, lambda v: v.get("site_stops") == "2")
        assert load(session, "parcel-library", stop="library").success
        gym = load(session, "parcel-gym", stop="gym")
        assert not gym.success and "marks it unreachable (enclosed by obstacles" in gym.message
        moon = load(session, "parcel-moon", stop="moon")
        assert not moon.success and "field 'stop' = 'moon'" in moon.message
        stops_pub.publish(String(data='{"station": 1}'))  # broken: the known stops stay
        values = diagnostics_values(session, lambda v: v.get("rejected_map_stops") == "1")
        assert values["site_stops"] == "2"
