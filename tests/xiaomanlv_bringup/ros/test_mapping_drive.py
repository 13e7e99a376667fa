"""Recording a mapping drive in the lockstep simulator: a short stretch of the university's
mapping route, read back with open_drive; and the ways a drive fails."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from xiaomanlv_bringup.ros.mapping_drive import (
    YIELD_DECEL,
    YIELD_STOP_GAP,
    RecordSummary,
    record_mapping_drive,
    yield_to_people,
)
from xiaomanlv_core.robot import load_robot, model_file
from xiaomanlv_core.site import load_site
from xiaomanlv_mapping.bag import open_drive
from xiaomanlv_mapping.model import MappingError
from xiaomanlv_sim import assets
from xiaomanlv_sim.simulator import Simulator

LENGTH = 30.0  # [m] of the mapping route
TOPICS = (
    "/lidar/points",
    "/imu/data",
    "/wheel/odom",
    "/gnss/fix",
    "/gnss/vel",
    "/sim/ground_truth/pose",
)


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> tuple[RecordSummary, list[Any]]:
    out = tmp_path_factory.mktemp("record") / "university"
    calls: list[tuple[float, float]] = []
    summary = record_mapping_drive(
        "university", out, length=LENGTH, progress=lambda done, total: calls.append((done, total))
    )
    return summary, calls


def test_the_drive_covers_the_route_and_the_summary_says_so(
    recorded: tuple[RecordSummary, list[Any]],
) -> None:
    summary, _ = recorded
    assert summary.route_length == pytest.approx(LENGTH)
    assert summary.distance == pytest.approx(LENGTH, abs=2.0)
    assert LENGTH / 1.5 < summary.duration < 3 * LENGTH / 1.5
    assert set(summary.messages) == set(TOPICS)
    files = sorted(p.name for p in summary.path.iterdir())
    assert files == ["metadata.yaml", "university_0.mcap"]
    assert summary.size == sum(p.stat().st_size for p in summary.path.iterdir())
    assert summary.wall_time > 0.0
    # the bag was staged in a hidden directory next to it, now gone
    assert [p.name for p in summary.path.parent.iterdir()] == ["university"]
    info = yaml.safe_load((summary.path / "metadata.yaml").read_text())
    custom = info["rosbag2_bagfile_information"]["custom_data"]
    assert custom["xiaomanlv.world"] == "university" and custom["xiaomanlv.seed"] == "0"
    # the build and the evaluation read the site from here, not from a folder's name
    assert custom["xiaomanlv.site"] == "university"
    assert custom["xiaomanlv.site_file"].endswith("/worlds/university.site.yaml")


def test_message_counts_follow_the_sensor_rates_of_the_robot_model(
    recorded: tuple[RecordSummary, list[Any]],
) -> None:
    summary, _ = recorded
    robot = load_robot(model_file())
    rates = {
        "/lidar/points": robot.lidar.rate,
        "/imu/data": robot.imu.rate,
        "/wheel/odom": robot.drive.odom_rate,
        "/gnss/fix": robot.gnss.rate,
        "/sim/ground_truth/pose": 50.0,
    }
    for topic, rate in rates.items():
        assert summary.messages[topic] == pytest.approx(summary.duration * rate, abs=1.5), topic
    # the receiver's velocity comes with every fix that has one, as the sim node sends it
    assert 0 < summary.messages["/gnss/vel"] <= summary.messages["/gnss/fix"]


def test_the_bag_reads_back_as_a_drive_with_increasing_stamps(
    recorded: tuple[RecordSummary, list[Any]],
) -> None:
    summary, _ = recorded
    drive = open_drive(summary.path)
    assert drive.scan_count == summary.messages["/lidar/points"]
    assert drive.duration == pytest.approx(summary.duration, abs=0.05)
    for stamps in (drive.odometry.stamps, drive.imu.stamps, drive.gnss.stamps):
        assert len(stamps) > 0 and np.all(np.diff(stamps) > 0)
    truth = drive.truth
    assert truth is not None
    assert len(truth.stamps) == summary.messages["/sim/ground_truth/pose"]
    assert np.all(np.diff(truth.stamps) == pytest.approx(0.02))
    start = truth.positions()[0]
    loading = load_site(assets.site_file(assets.world_file("university"))).station.loading
    assert start[:2] == pytest.approx([loading.x, loading.y], abs=0.05)
    path = np.linalg.norm(np.diff(truth.positions()[:, :2], axis=0), axis=1).sum()
    assert path == pytest.approx(summary.distance, rel=1e-6)
    # wheel odometry and the truth agree on the distance driven (odometry noise is small)
    odo = np.linalg.norm(np.diff(drive.odometry.poses[:, :2], axis=0), axis=1).sum()
    assert odo == pytest.approx(summary.distance, rel=0.05)
    previous = -math.inf
    count = 0
    for scan in drive.scans():
        assert scan.stamp > previous and len(scan.points) > 1000
        previous = scan.stamp
        count += 1
    assert count == drive.scan_count


def test_progress_reports_metres_along_the_route(
    recorded: tuple[RecordSummary, list[Any]],
) -> None:
    _, calls = recorded
    done = [d for d, _ in calls]
    assert all(total == pytest.approx(LENGTH) for _, total in calls)
    assert done == sorted(done)
    assert done[-1] == pytest.approx(LENGTH)
    assert len(calls) > 100  # one per operator command (20 Hz)


def test_an_existing_bag_is_not_overwritten_unless_asked(tmp_path: Path) -> None:
    out = tmp_path / "taken"
    out.mkdir()
    with pytest.raises(MappingError, match=r"taken: exists already"):
        record_mapping_drive("university", out, length=5.0)


def test_a_robot_that_does_not_move_is_reported_blocked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator's commands never reach the wheels: after 10 s the drive gives up, and
    neither the bag nor its staging directory is left behind."""
    monkeypatch.setattr(Simulator, "set_cmd_vel", lambda self, v, w: None)
    out = tmp_path / "stuck"
    with pytest.raises(
        MappingError, match=r"university: the robot is blocked at \(150.0, -158.0\)"
    ):
        record_mapping_drive("university", out, length=20.0)
    assert list(tmp_path.iterdir()) == []


def test_a_robot_that_tips_over_ends_the_drive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    step = Simulator.step

    def tipping_step(self: Simulator) -> Any:
        out = step(self)
        if self.time >= 2.0:
            self.dynamics.state.tipped = True
        return out

    monkeypatch.setattr(Simulator, "step", tipping_step)
    with pytest.raises(MappingError, match=r"university: the robot tipped over at .* t=2.0 s"):
        record_mapping_drive("university", tmp_path / "tipped", length=20.0)
    assert list(tmp_path.iterdir()) == []


def test_a_world_without_a_site_has_no_mapping_route(tmp_path: Path) -> None:
    world = tmp_path / "bare.sdf"
    world.write_text(
        '<?xml version="1.0"?>\n<sdf version="1.9"><world name="bare">'
        '<model name="ground"><static>true</static><link name="link">'
        '<collision name="c"><geometry><plane><normal>0 0 1</normal><size>50 50</size></plane>'
        "</geometry></collision></link></model></world></sdf>\n"
    )
    with pytest.raises(MappingError, match=r"bare.sdf: no site sidecar, so no mapping route"):
        record_mapping_drive(str(world), tmp_path / "bag", length=5.0)


def test_progress_true_shows_a_bar_of_metres(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = record_mapping_drive("university", tmp_path / "short", length=3.0, progress=True)
    err = capsys.readouterr().err
    assert "mapping university" in err and "3/3" in err and "m/s" in err
    assert summary.messages["/lidar/points"] > 0


# ---- people about ---------------------------------------------------------------------------
def test_the_operator_slows_for_people_ahead_and_stops_short_of_them() -> None:
    body = load_robot(model_file()).body
    front, half = 0.5 * body.length, 0.5 * body.width
    radius = np.array([0.3])

    def command(person: tuple[float, float]) -> tuple[tuple[float, float], bool]:
        return yield_to_people(
            (1.5, 0.2), (0.0, 0.0, 0.0), np.array([person]), radius, front=front, half_width=half
        )

    assert command((20.0, 0.0)) == ((1.5, 0.2), False)  # far ahead
    assert command((4.0, 2.5)) == ((1.5, 0.2), False)  # beside the path
    assert command((-3.0, 0.0)) == ((1.5, 0.2), False)  # behind
    (v, w), held = command((3.0, 0.5))  # ahead in the path: slower, on the same arc
    gap = 3.0 - front - 0.3 - YIELD_STOP_GAP
    assert held and v == pytest.approx(math.sqrt(2.0 * YIELD_DECEL * gap))
    assert w / v == pytest.approx(0.2 / 1.5)
    assert command((front + 0.5, 0.0)) == ((0.0, 0.0), True)  # at the bumper: stop
    turn = yield_to_people(
        (0.0, 0.8), (0.0, 0.0, 0.0), np.array([[1.5, 0.0]]), radius, front=front, half_width=half
    )
    assert turn == ((0.0, 0.8), False)  # turning on the spot stays allowed


def test_a_person_standing_in_the_way_holds_the_drive_up_without_ending_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone stands on the route 8 m ahead for 20 s, then leaves: the robot stops short of
    them (never within the stop gap), waits longer than BLOCKED_AFTER, and finishes."""
    site = load_site(assets.site_file(assets.world_file("university")))
    route = np.asarray(site.mapping_route.waypoints, float)
    heading = (route[1] - route[0]) / np.linalg.norm(route[1] - route[0])
    spot = route[0] + 8.0 * heading
    leaves = 20.0  # [s] sim time
    truth_of = Simulator.ground_truth.fget
    closest: list[float] = []

    def ground_truth(self: Simulator) -> Any:
        truth = truth_of(self)
        if self.time >= leaves:
            return truth
        agents = replace(
            truth.agents, positions=spot[None, :].copy(), radii=np.array([0.3]),
            velocities=np.zeros((1, 2)), heights=np.array([1.7]),
            kinds=np.zeros(1, np.int8), ids=np.zeros(1, np.int32),
        )  # fmt: skip
        closest.append(float(np.linalg.norm(truth.pose[:2, 3] - spot)))
        return replace(truth, agents=agents)

    monkeypatch.setattr(Simulator, "ground_truth", property(ground_truth))
    summary = record_mapping_drive("university", tmp_path / "held", length=14.0, pedestrians=1)
    assert leaves - 10.0 < summary.held <= leaves
    front = 0.5 * load_robot(model_file()).body.length
    assert min(closest) > front + 0.3 + 0.5 * YIELD_STOP_GAP
    assert summary.duration > leaves and summary.distance == pytest.approx(14.0, abs=2.0)


def test_map_record_with_people_says_how_they_held_the_drive_up(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from xiaomanlv_bringup.cli import main

    out = tmp_path / "crowded"
    args = ["map", "record", "--world", "university", "-o", str(out), "--length", "5"]
    assert main([*args, "--pedestrians", "3", "--cyclists", "1", "--seed", "4"]) == 0
    text = capsys.readouterr().out
    assert "people about: held up" in text and "(3 pedestrians, 1 cyclists, seed 4)" in text
    info = yaml.safe_load((out / "metadata.yaml").read_text())
    custom = info["rosbag2_bagfile_information"]["custom_data"]
    assert (custom["xiaomanlv.pedestrians"], custom["xiaomanlv.cyclists"]) == ("3", "1")
    assert custom["xiaomanlv.seed"] == "4"
