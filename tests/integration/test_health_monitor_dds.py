"""health_monitor as a real process over Fast DDS: topic, service, action, parameters, faults."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import rclpy
from action_msgs.msg import GoalStatus, GoalStatusArray
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.qos import qos_profile_action_status_default
from sensor_msgs.msg import Imu, PointCloud2
from xiaomanlv.action import WaitForHealthy
from xiaomanlv.msg import HealthStatus, TopicHealth
from xiaomanlv.srv import GetHealth

from xiaomanlv_core.ros.diagnostics import level_of as level

pytestmark = pytest.mark.integration

WATCH = {"watched_topics": ["/test/imu sensor_msgs/msg/Imu 20.0"], "publish_rate": 10.0}
STATUS_TOPICS = ["/health/status", "/diagnostics"]


def publishing_imu(session: Any, rate: float = 50.0) -> Any:
    """Publish Imu on /test/imu from the test's own process at ``rate`` Hz."""
    return session.publishing("/test/imu", Imu(), rate)


def wait_for_status(session: Any, predicate: Any, timeout: float = 15.0) -> HealthStatus:
    """The first /health/status that meets ``predicate``; TimeoutError naming the last one."""
    return session.wait_for_message(HealthStatus, "/health/status", timeout, predicate=predicate)


def test_status_turns_ok_when_the_watched_topic_flows(ros_graph: Any) -> None:
    session = ros_graph(
        nodes=["health_monitor"], parameters={"health_monitor": WATCH}, topics=STATUS_TOPICS
    )
    first = session.wait_for_message(HealthStatus, "/health/status")
    assert [t.topic for t in first.topics] == ["/test/imu"]
    assert level(first.topics[0].level) == level(TopicHealth.STALE)

    with publishing_imu(session):
        status = wait_for_status(
            session, lambda s: level(s.topics[0].level) == level(TopicHealth.OK)
        )
    assert level(status.level) == level(HealthStatus.OK)
    assert status.topics[0].rate > 20.0
    assert status.topics[0].min_rate == pytest.approx(20.0)

    stale = wait_for_status(session, lambda s: level(s.topics[0].level) == level(TopicHealth.STALE))
    assert stale.topics[0].age > 0.0


def test_get_health_service_answers_with_the_watched_topics(ros_graph: Any) -> None:
    session = ros_graph(
        nodes=["health_monitor"], parameters={"health_monitor": WATCH}, topics=STATUS_TOPICS
    )
    response = session.call(GetHealth, "/health/get", GetHealth.Request(), resend_every=2.0)
    assert [t.topic for t in response.status.topics] == ["/test/imu"]
    assert level(response.status.level) == level(HealthStatus.STALE)


def test_wait_until_healthy_gives_feedback_then_a_result(ros_graph: Any) -> None:
    session = ros_graph(
        nodes=["health_monitor"], parameters={"health_monitor": WATCH}, topics=STATUS_TOPICS
    )
    result, feedback, status = session.send_goal(
        WaitForHealthy, "/health/wait_until_healthy", WaitForHealthy.Goal(timeout=1.0)
    )
    assert status == 4  # action_msgs/GoalStatus.STATUS_SUCCEEDED: the wait ran to its end
    assert not result.healthy
    assert feedback, "the server must report progress while it waits"
    assert feedback[-1].unhealthy_topics == ["/test/imu"]
    assert 0.0 <= feedback[-1].elapsed <= 1.5

    with publishing_imu(session):
        result, _, _ = session.send_goal(
            WaitForHealthy, "/health/wait_until_healthy", WaitForHealthy.Goal(timeout=20.0)
        )
    assert result.healthy
    assert level(result.status.topics[0].level) == level(TopicHealth.OK)


def test_waiting_goals_never_stop_the_watchdog(ros_graph: Any) -> None:
    """More goals wait at once than the machine has cores; status must keep flowing."""
    session = ros_graph(
        nodes=["health_monitor"], parameters={"health_monitor": WATCH}, topics=STATUS_TOPICS
    )
    waiting = (os.cpu_count() or 2) + 1
    with ThreadPoolExecutor(max_workers=waiting) as pool:
        goals = [
            pool.submit(
                session.send_goal,
                WaitForHealthy,
                "/health/wait_until_healthy",
                WaitForHealthy.Goal(timeout=4.0),
            )
            for _ in range(waiting)
        ]
        # Every goal accepted and waiting: the action's status lists each as executing (or,
        # on a slow machine, already done). The status is latched and published on changes
        # only, so the subscription asks for the latched one.
        started = (GoalStatus.STATUS_EXECUTING, GoalStatus.STATUS_SUCCEEDED)
        session.wait_for_message(
            GoalStatusArray,
            "/health/wait_until_healthy/_action/status",
            timeout=15.0,
            qos=qos_profile_action_status_default,
            predicate=lambda a: sum(g.status in started for g in a.status_list) >= waiting,
        )
        # Each call subscribes afresh, so each message was published while the goals waited.
        for _ in range(3):
            session.wait_for_message(HealthStatus, "/health/status", timeout=2.0)
        results = [g.result(timeout=30.0) for g in goals]
    for result, feedback, status in results:
        assert status == 4 and not result.healthy and feedback


def test_wait_until_healthy_rejects_unknown_topics(ros_graph: Any) -> None:
    session = ros_graph(
        nodes=["health_monitor"], parameters={"health_monitor": WATCH}, topics=STATUS_TOPICS
    )
    goal = WaitForHealthy.Goal(topics=["/no/such/topic"], timeout=1.0)
    result, _, status = session.send_goal(WaitForHealthy, "/health/wait_until_healthy", goal)
    assert status == 6  # STATUS_ABORTED
    assert not result.healthy


def test_malformed_diagnostics_are_counted_not_fatal(ros_graph: Any) -> None:
    session = ros_graph(
        nodes=["health_monitor"], parameters={"health_monitor": WATCH}, topics=STATUS_TOPICS
    )
    pub = session.client.create_publisher(DiagnosticArray, "/diagnostics", 10)
    good = DiagnosticStatus(level=DiagnosticStatus.WARN, name="driver: wheels", message="hot")
    bad = DiagnosticStatus(level=bytes([7]), name="driver: broken", message="level 7")
    deadline = time.monotonic() + 15.0
    status = None
    while time.monotonic() < deadline:
        pub.publish(DiagnosticArray(status=[good, bad]))
        status = session.wait_for_message(HealthStatus, "/health/status", timeout=5.0)
        if status.malformed_messages >= 1 and status.components:
            break
    assert status is not None and status.malformed_messages >= 1
    assert [c.name for c in status.components] == ["driver: wheels"]
    assert level(status.components[0].level) == level(DiagnosticStatus.WARN)
    assert session.supervisor.running() == ["health_monitor"]
    own = session.wait_for_message(DiagnosticArray, "/diagnostics", timeout=5.0)
    summaries = [s for s in own.status if s.name.endswith("summary")]
    if summaries:  # our publisher's arrays arrive too; the monitor's carry its summary
        values = {kv.key: kv.value for kv in summaries[0].values}
        assert int(values["malformed_messages"]) >= 1


def _set(session: Any, name: str, value: float) -> Any:
    request = SetParameters.Request(
        parameters=[
            Parameter(
                name=name,
                value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value),
            )
        ]
    )
    return session.call(SetParameters, "/health_monitor/set_parameters", request).results[0]


def test_parameter_changes_are_validated_at_run_time(ros_graph: Any) -> None:
    session = ros_graph(
        nodes=["health_monitor"], parameters={"health_monitor": WATCH}, topics=STATUS_TOPICS
    )
    rejected = _set(session, "publish_rate", -5.0)
    assert not rejected.successful
    assert "publish_rate" in rejected.reason
    rejected = _set(session, "stale_factor", 0.5)
    assert not rejected.successful and "stale_factor" in rejected.reason
    accepted = _set(session, "publish_rate", 20.0)
    assert accepted.successful, accepted.reason
    assert session.supervisor.running() == ["health_monitor"]


def test_a_killed_node_is_restarted_as_declared(ros_graph: Any) -> None:
    session = ros_graph(nodes=["health_monitor"], topics=STATUS_TOPICS)
    pid = session.supervisor.pids()["health_monitor"]
    os.kill(pid, signal.SIGKILL)
    supervisor = session.supervisor

    def restarted() -> bool:
        supervisor.poll()
        return supervisor.restarts()["health_monitor"] > 0

    session.wait_until(restarted, 15.0, "the supervisor restarting health_monitor")
    assert supervisor.restarts()["health_monitor"] == 1
    assert supervisor.exit_codes()["health_monitor"] == [-signal.SIGKILL]

    def new_pid() -> bool:  # the supervisor restarts after its restart delay
        supervisor.poll()
        return supervisor.pids().get("health_monitor", pid) != pid

    session.wait_until(new_pid, 15.0, "a new health_monitor process")
    session.wait_for_message(HealthStatus, "/health/status", timeout=20.0)


def test_bad_parameter_file_fails_at_start_up_naming_parameter_and_range(
    tmp_path: Any, ros_domain: int
) -> None:
    from xiaomanlv_core.paths import node_executable

    params = tmp_path / "bad.yaml"
    params.write_text("/**:\n  ros__parameters:\n    publish_rate: 500.0\n")
    proc = subprocess.run(
        [str(node_executable("health_monitor")), "--ros-args", "--params-file", str(params)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "ROS_DOMAIN_ID": str(ros_domain)},
    )
    assert proc.returncode == 2
    assert "publish_rate" in proc.stderr
    assert "500" in proc.stderr and "[0.1, 100] Hz" in proc.stderr


def test_bringup_command_runs_the_profile_and_stops_on_sigint(ros_domain: int) -> None:
    """`xiaomanlv bringup sim` as a user runs it: prefixed output, SIGINT, clean exit."""
    from xiaomanlv_bringup.ros.session import GraphSession

    env = {**os.environ, "ROS_DOMAIN_ID": str(ros_domain)}
    proc = subprocess.Popen(
        ["xiaomanlv", "bringup", "sim", "--grace", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        with GraphSession([], ros_domain) as observer:
            observer.wait_for_topics(["/health/status"], timeout=30.0)
            observer.wait_for_message(HealthStatus, "/health/status", timeout=10.0)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    assert "[bringup] started health_monitor" in out
    assert "[health_monitor] " in out
    assert "still running" not in out, "every node must stop on the forwarded SIGINT"


# -- content, stamps, publishers: arriving is not enough ----------------------------------------

CLOUD_WATCH = {
    "watched_topics": [
        "/test/imu sensor_msgs/msg/Imu 20.0",
        "/test/points sensor_msgs/msg/PointCloud2 5.0",
    ],
    "publish_rate": 10.0,
}


def _topic_health(status: HealthStatus, topic: str) -> TopicHealth:
    (found,) = [t for t in status.topics if t.topic == topic]
    return found


def wait_for_topic(session: Any, topic: str, predicate: Any, timeout: float = 20.0) -> TopicHealth:
    status = wait_for_status(session, lambda s: predicate(_topic_health(s, topic)), timeout)
    return _topic_health(status, topic)


def is_error_with(cause: str, min_rate: float = 0.0) -> Any:
    """An ERROR whose message starts with ``cause``, once its rate is above ``min_rate``:
    the first bad message is an error before two messages give a rate."""

    def check(t: TopicHealth) -> bool:
        return (
            level(t.level) == level(TopicHealth.ERROR)
            and t.message.startswith(cause)
            and t.rate > min_rate
        )

    return check


def test_an_empty_cloud_at_full_rate_is_an_error(ros_graph: Any) -> None:
    session = ros_graph(
        nodes=["health_monitor"], parameters={"health_monitor": CLOUD_WATCH}, topics=STATUS_TOPICS
    )
    with session.publishing("/test/points", PointCloud2(), rate=20.0):
        # It arrives at its rate, and the content makes it unhealthy all the same.
        points = wait_for_topic(
            session, "/test/points", is_error_with("empty cloud (0 points)", min_rate=5.0)
        )
    assert "messages in the last 2 s" in points.message


def test_a_nan_imu_is_an_error(ros_graph: Any) -> None:
    session = ros_graph(
        nodes=["health_monitor"], parameters={"health_monitor": WATCH}, topics=STATUS_TOPICS
    )
    nan_imu = Imu()
    nan_imu.orientation.w = float("nan")
    nan_imu.angular_velocity.z = float("nan")
    with session.publishing("/test/imu", nan_imu, rate=50.0):
        imu = wait_for_topic(
            session,
            "/test/imu",
            is_error_with("non-finite orientation, angular_velocity", min_rate=20.0),
        )
    assert imu.rate > 20.0


def test_old_and_future_stamps_are_errors_on_the_ros_clock(ros_graph: Any) -> None:
    """The robot profile runs on wall time: a stamp from 1970 is old, one from 2036 ahead."""
    session = ros_graph(
        profile="robot",
        nodes=["health_monitor"],
        parameters={"health_monitor": WATCH},
        topics=STATUS_TOPICS,
    )
    old = Imu()
    old.header.stamp = Time(sec=1000)
    with session.publishing("/test/imu", old, rate=50.0):
        wait_for_topic(session, "/test/imu", lambda t: " s old (limit 1 s)" in t.message)
    future = Imu()
    future.header.stamp = Time(sec=2_100_000_000)  # 2036, ahead of any clock this runs on
    with session.publishing("/test/imu", future, rate=50.0):
        imu = wait_for_topic(
            session, "/test/imu", lambda t: " s in the future (limit 0.5 s)" in t.message
        )
    assert level(imu.level) == level(TopicHealth.ERROR)


def test_a_second_publisher_is_an_error_naming_it(ros_graph: Any) -> None:
    session = ros_graph(
        nodes=["health_monitor"], parameters={"health_monitor": WATCH}, topics=STATUS_TOPICS
    )
    with publishing_imu(session):
        wait_for_topic(session, "/test/imu", lambda t: level(t.level) == level(TopicHealth.OK))
        spoofer = rclpy.create_node("spoofer", context=session.client.context)
        try:
            spoofer.create_publisher(Imu, "/test/imu", 10)  # discovered; need not even publish
            imu = wait_for_topic(session, "/test/imu", is_error_with("2 publishers ("))
            assert "/spoofer" in imu.message and "1 declared" in imu.message
        finally:
            spoofer.destroy_node()
        # the spoofer gone, the topic recovers
        wait_for_topic(session, "/test/imu", lambda t: level(t.level) == level(TopicHealth.OK))


# -- hostile input: counted, reported, never fatal ----------------------------------------------


def test_unreadable_bytes_and_refused_goals_are_counted_not_fatal(ros_graph: Any) -> None:
    session = ros_graph(
        nodes=["health_monitor"], parameters={"health_monitor": WATCH}, topics=STATUS_TOPICS
    )
    pub = session.client.create_publisher(Imu, "/test/imu", 10)
    garbage = b"\x00\x01\x00\x00" + b"\xff" * 7  # a CDR header, then too few bytes for an Imu
    deadline = time.monotonic() + 15.0
    imu = None
    while time.monotonic() < deadline:
        pub.publish(garbage)
        status = session.wait_for_message(HealthStatus, "/health/status", timeout=5.0)
        imu = _topic_health(status, "/test/imu")
        if imu.message.startswith("unreadable Imu"):
            break
    assert imu is not None and imu.message.startswith("unreadable Imu"), imu
    assert level(imu.level) == level(TopicHealth.ERROR)

    hostile_goals = [
        WaitForHealthy.Goal(timeout=float("nan")),
        WaitForHealthy.Goal(timeout=float("inf")),
        WaitForHealthy.Goal(timeout=-1.0),
        WaitForHealthy.Goal(topics=["/test/imu\x1b[2J"], timeout=1.0),
        WaitForHealthy.Goal(topics=["/x"] * 10_000, timeout=1.0),
        WaitForHealthy.Goal(topics=["/" + "a" * 100_000], timeout=1.0),
    ]
    for goal in hostile_goals:
        result, _, goal_status = session.send_goal(
            WaitForHealthy, "/health/wait_until_healthy", goal
        )
        assert goal_status == 6 and not result.healthy  # STATUS_ABORTED
    status = session.call(GetHealth, "/health/get", GetHealth.Request(), resend_every=2.0).status
    assert status.malformed_messages >= 1 + len(hostile_goals)
    assert session.supervisor.running() == ["health_monitor"]
    values: dict[str, str] = {}
    deadline = time.monotonic() + 15.0
    while "from /health/wait_until_healthy" not in values and time.monotonic() < deadline:
        own = session.wait_for_message(DiagnosticArray, "/diagnostics", timeout=5.0)
        for s in own.status:
            if s.name.endswith("summary"):
                values = {kv.key: kv.value for kv in s.values}
    assert int(values["from /health/wait_until_healthy"]) == len(hostile_goals)
    assert int(values["from /test/imu"]) >= 1


def test_hostile_diagnostics_are_refused_and_counted(ros_graph: Any) -> None:
    session = ros_graph(
        nodes=["health_monitor"], parameters={"health_monitor": WATCH}, topics=STATUS_TOPICS
    )
    pub = session.client.create_publisher(DiagnosticArray, "/diagnostics", 10)
    good = DiagnosticStatus(level=DiagnosticStatus.OK, name="driver: wheels", message="fine")
    hostile = [
        DiagnosticStatus(level=DiagnosticStatus.OK, name="x\x1b[2J", message="escape"),
        DiagnosticStatus(level=DiagnosticStatus.OK, name="y", message="forged\nline"),
        DiagnosticStatus(level=DiagnosticStatus.OK, name="z" * 1000, message="long"),
        DiagnosticStatus(level=DiagnosticStatus.OK, name="", message="nameless"),
    ]
    deadline = time.monotonic() + 15.0
    status = None
    while time.monotonic() < deadline:
        pub.publish(DiagnosticArray(status=[good, *hostile]))
        status = session.wait_for_message(HealthStatus, "/health/status", timeout=5.0)
        if status.malformed_messages >= len(hostile) and status.components:
            break
    assert status is not None and status.malformed_messages >= len(hostile)
    assert [c.name for c in status.components] == ["driver: wheels"]
    assert session.supervisor.running() == ["health_monitor"]
