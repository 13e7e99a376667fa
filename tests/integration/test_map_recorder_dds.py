"""map_recorder as a real process over Fast DDS: it records the sim node's sensor topics while
the robot drives, closes the bag on SIGINT, and open_drive reads the drive back."""

from __future__ import annotations

import dataclasses
import io
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import Twist
from mcap.reader import make_reader
from sensor_msgs.msg import Imu

from xiaomanlv_bringup.graph import NodeSpec, load_profile, read_executables
from xiaomanlv_bringup.ros.session import GraphSession
from xiaomanlv_core.paths import executables_file, graph_file, node_executable
from xiaomanlv_core.ros.diagnostics import level_of
from xiaomanlv_mapping.bag import open_drive, recorded_site

pytestmark = pytest.mark.integration

SIM = {"world": "university", "real_time_factor": 1.0, "seed": 3, "pedestrians": 0, "cyclists": 0}
STATUS = "map_recorder: recording"


def params_file(folder: Path, name: str, values: Mapping[str, Any]) -> Path:
    path = folder / f"{name}.params.yaml"
    path.write_text(yaml.safe_dump({"/**": {"ros__parameters": dict(values)}}))
    return path


def recorder_spec(folder: Path, values: Mapping[str, Any], use_sim_time: bool) -> NodeSpec:
    """map_recorder is not part of a profile: it runs for a mapping drive only."""
    return NodeSpec(
        name="map_recorder",
        executable="map_recorder",
        namespace="",
        parameters=(params_file(folder, "map_recorder", values),),
        remappings=(),
        on_exit="shutdown",
        max_restarts=0,
        use_sim_time=use_sim_time,
    )


@contextmanager
def graph(nodes: list[NodeSpec], domain: int) -> Iterator[Any]:
    """The nodes as processes; their output is printed when the block fails."""
    logs = io.StringIO()
    try:
        with GraphSession(nodes, domain, output=logs, grace=3.0) as session:
            yield session
    except BaseException:
        print("---- node output ----\n" + logs.getvalue())
        raise


def recorder_status(session: Any, predicate: Any, timeout: float = 60.0) -> dict[str, Any]:
    """The recorder's /diagnostics status once ``predicate(level, message, values)`` holds."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        array = session.wait_for_message(DiagnosticArray, "/diagnostics", timeout=10.0)
        for status in array.status:
            if status.name != STATUS:
                continue
            values = {kv.key: kv.value for kv in status.values}
            level = level_of(status.level)
            last = {"level": level, "message": status.message, "values": values}
            if predicate(level, status.message, values):
                return last
    raise AssertionError(f"no matching {STATUS} status within {timeout} s; last: {last}")


def stop_recorder(session: Any) -> int:
    """SIGINT the recorder, as Ctrl-C would, and return its exit code."""
    pid = session.supervisor.pids()["map_recorder"]
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + 20.0
    while "map_recorder" in session.supervisor.running():
        assert time.monotonic() < deadline, "map_recorder did not exit within 20 s of SIGINT"
        time.sleep(0.1)
    session.supervisor.poll()
    return int(session.supervisor.exit_codes()["map_recorder"][-1])


def test_records_the_sim_drive_and_closes_the_bag_on_sigint(
    ros_domain: int, tmp_path: Path
) -> None:
    profile = load_profile(graph_file(), "sim", executables=read_executables(executables_file()))
    sim = profile.node("sim")
    sim = dataclasses.replace(sim, parameters=(*sim.parameters, params_file(tmp_path, "sim", SIM)))
    bag = tmp_path / "bags" / "drive"
    recorder = recorder_spec(
        tmp_path, {"output": str(bag), "site": "university"}, use_sim_time=True
    )
    with graph([sim, recorder], ros_domain) as session:
        session.wait_for_topics(["/clock", "/lidar/points"], timeout=60.0)
        forward = Twist()
        forward.linear.x, forward.angular.z = 1.0, 0.1
        with session.publishing("/cmd_vel", forward, rate=20.0):
            status = recorder_status(
                session,
                lambda level, _m, v: level == 0 and int(v.get("messages /lidar/points", 0)) >= 40,
            )
        assert status["message"] == "recording"
        assert int(status["values"]["messages /sim/ground_truth/pose"]) > 0
        assert stop_recorder(session) == 0
        assert session.supervisor.running() == ["sim"]

    assert sorted(p.name for p in bag.iterdir()) == ["drive_0.mcap", "metadata.yaml"]
    assert recorded_site(bag).site == "university"  # `map build` needs no --site
    drive = open_drive(bag)
    assert drive.scan_count >= 40
    scans = list(drive.scans())
    assert len(scans) == drive.scan_count
    assert all(len(s.points) > 1000 for s in scans)
    assert np.all(np.diff([s.stamp for s in scans]) > 0)
    odom = drive.odometry
    # each topic at its rate over the same stretch (10, 50, 100, 5 Hz)
    assert len(odom.stamps) >= 4 * drive.scan_count and np.all(np.diff(odom.stamps) > 0)
    assert np.linalg.norm(odom.poses[-1, :2] - odom.poses[0, :2]) > 0.5  # it drove
    assert len(drive.imu.stamps) >= 8 * drive.scan_count and len(drive.gnss.stamps) > 0
    assert drive.truth is not None and len(drive.truth.stamps) > 0
    assert drive.duration == pytest.approx(odom.stamps[-1] - odom.stamps[0], abs=0.5)


def test_waits_for_a_topic_until_it_is_published(ros_domain: int, tmp_path: Path) -> None:
    bag = tmp_path / "imu"
    values = {"output": str(bag), "topics": ["/test/imu"], "optional_topics": ["/test/none"]}
    recorder = recorder_spec(tmp_path, values, use_sim_time=False)
    with graph([recorder], ros_domain) as session:
        session.wait_for_topics(["/diagnostics"], timeout=30.0)
        waiting = recorder_status(session, lambda level, _m, _v: level == 1, timeout=30.0)
        assert waiting["message"] == "waiting for /test/imu"
        assert waiting["level"] == level_of(DiagnosticStatus.WARN)
        with session.publishing("/test/imu", Imu(), rate=50.0):
            recorder_status(session, lambda level, _m, v: int(v.get("messages /test/imu", 0)) >= 20)
        assert stop_recorder(session) == 0

    with (bag / "imu_0.mcap").open("rb") as f:
        summary = make_reader(f).get_summary()
    assert summary is not None
    assert [c.topic for c in summary.channels.values()] == ["/test/imu"]
    assert summary.statistics is not None and summary.statistics.message_count >= 20
    info = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    (topic,) = info["topics_with_message_count"]
    assert topic["topic_metadata"]["type"] == "sensor_msgs/msg/Imu"
    # the test's publisher as discovery reports it (history and depth are not discovered)
    (qos,) = topic["topic_metadata"]["offered_qos_profiles"]
    assert qos["reliability"] == "reliable" and qos["durability"] == "volatile"


def test_a_missing_output_parameter_is_rejected_at_start_up(ros_domain: int) -> None:
    proc = subprocess.run(
        [str(node_executable("map_recorder"))],
        capture_output=True,
        text=True,
        timeout=60,
        env={
            **os.environ,
            "ROS_DOMAIN_ID": str(ros_domain),
            "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
        },
    )
    assert proc.returncode == 2
    assert "parameter 'output' is required" in proc.stderr
