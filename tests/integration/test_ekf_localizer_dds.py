"""The sim profile's localisation over Fast DDS: sim, map_server, localizer and ekf as real
processes. An operator gives /initialpose as RViz does (x, y and yaw variances only, 0.3 m and
2 deg off the truth); the robot drives; /odometry/filtered must come within 0.2 m of the
simulator's truth (through the one world <- map transform) and stay there, the localiser must
never say LOST once initialised, and the fusion must have started from the operator's pose
(RViz's planar covariance) and say by its covariance that it is localised. It waits for
states, never sleeps.
"""

from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped, Twist
from nav_msgs.msg import Odometry
from xiaomanlv.msg import LocalizationStatus

from xiaomanlv_bringup.graph import NodeSpec, load_profile, read_executables
from xiaomanlv_bringup.ros.session import GraphSession
from xiaomanlv_core.frames import world_from_map
from xiaomanlv_core.geometry import planar_pose
from xiaomanlv_core.paths import executables_file, graph_file
from xiaomanlv_core.ros.poses import matrix_of_pose, pose_msg
from xiaomanlv_core.ros.qos import SENSOR_QOS
from xiaomanlv_core.ros.time import seconds_of
from xiaomanlv_core.site import load_site
from xiaomanlv_core.stops import stops_from_dict
from xiaomanlv_core.types import Pose2D
from xiaomanlv_core.yamlfile import read_yaml
from xiaomanlv_sim import assets

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
LOST = 2  # LocalizationStatus.state
NEAR = 0.2  # [m] /odometry/filtered against the truth
DRIVEN = 4.0  # [m] the robot must have moved this far off its start
IN_A_ROW = 100  # estimates (1 s at 100 Hz) within NEAR, compared at truth stamps


def _world_from_map(site: str) -> np.ndarray:
    world = load_site(assets.site_file(assets.world_file(site)))
    path = REPO / "maps" / site / "stops.yaml"
    loading = stops_from_dict(read_yaml(path), str(path)).loading
    return world_from_map(world.station.loading, Pose2D(loading.x, loading.y, loading.yaw))


def _specs(tmp_path: Path) -> list[NodeSpec]:
    """The sim profile's sim, map_server, localizer and ekf, with their shipped parameters."""
    profile = load_profile(graph_file(), "sim", executables=read_executables(executables_file()))
    params = {"sim": {"world": "university", "seed": 3, "pedestrians": 5, "cyclists": 0}}
    specs = []
    for name in ("sim", "map_server", "localizer", "ekf"):
        spec = profile.node(name)
        if name in params:
            path = tmp_path / f"{name}.params.yaml"
            path.write_text(yaml.safe_dump({"/**": {"ros__parameters": params[name]}}))
            spec = dataclasses.replace(spec, parameters=(*spec.parameters, path))
        specs.append(spec)
    return specs


def _fusion_values(msg: DiagnosticArray) -> dict[str, str] | None:
    for status in msg.status:
        if status.name == "ekf: fusion":
            return {kv.key: kv.value for kv in status.values}
    return None


@pytest.mark.timeout(420)
def test_fused_pose_lands_on_the_truth_and_the_localiser_is_never_lost(
    ros_domain: int, tmp_path: Path
) -> None:
    logs = io.StringIO()
    world_map = _world_from_map("university")
    map_world = np.linalg.inv(world_map)
    try:
        with GraphSession(_specs(tmp_path), ros_domain, output=logs, grace=3.0) as session:
            session.wait_for_topics(["/sim/ground_truth/pose", "/clock"], timeout=60.0)
            session.wait_for_subscribers("/initialpose", count=2, timeout=60.0)
            truth = session.collect(PoseStamped, "/sim/ground_truth/pose", SENSOR_QOS)
            status = session.collect(LocalizationStatus, "/localization/status")
            fused = session.collect(Odometry, "/odometry/filtered", SENSOR_QOS)
            first = truth.wait(lambda m: True, 30.0)
            start = matrix_of_pose(first.pose)
            guess = map_world @ start @ planar_pose(0.3, -0.2, math.radians(2.0))
            initial = PoseWithCovarianceStamped()
            initial.header.frame_id = "map"
            initial.pose.pose = pose_msg(guess)
            for i, var in ((0, 0.25), (7, 0.25), (35, 0.0685)):  # RViz's 2D Pose Estimate
                initial.pose.covariance[i] = var
            pub = session.client.create_publisher(PoseWithCovarianceStamped, "/initialpose", 10)
            session.wait_for_match(pub, count=2)
            pub.publish(initial)
            # The first sweep reads the map tiles around the robot: slow on a loaded machine.
            status.wait(lambda m: m.initialised, 150.0)
            forward = Twist()
            forward.linear.x, forward.angular.z = 0.8, 0.1
            errors: list[float] = []

            def settled() -> bool:
                """The last IN_A_ROW estimates at truth stamps within NEAR, robot driven."""
                stamps = {round(seconds_of(m.header.stamp), 3): m for m in truth.items}
                errors.clear()
                for msg in fused.items:
                    at = stamps.get(round(seconds_of(msg.header.stamp), 3))
                    if at is None:
                        continue
                    true = matrix_of_pose(at.pose)
                    if np.linalg.norm(true[:2, 3] - start[:2, 3]) < DRIVEN:
                        continue
                    estimate = world_map @ matrix_of_pose(msg.pose.pose)
                    errors.append(float(np.linalg.norm(estimate[:2, 3] - true[:2, 3])))
                return len(errors) >= IN_A_ROW and max(errors[-IN_A_ROW:]) < NEAR

            with session.publishing("/cmd_vel", forward):
                session.wait_until(settled, 150.0, "/odometry/filtered within 0.2 m of truth")
            # Once the robot is off: every compared estimate within reach of the truth.
            assert max(errors) < 0.5, (max(errors), errors[:20])
            states = status.items
            since = next(i for i, m in enumerate(states) if m.initialised)
            lost = [(list(m.reasons), m.header.stamp) for m in states[since:] if m.state == LOST]
            assert not lost, lost
            last = fused.items[-1]
            assert (last.header.frame_id, last.child_frame_id) == ("map", "base_link")
            assert last.pose.covariance[0] < NEAR**2  # the filter says it is localised too
            report = session.wait_for_message(
                DiagnosticArray,
                "/diagnostics",
                20.0,
                predicate=lambda m: _fusion_values(m) is not None,
            )
            values = _fusion_values(report) or {}
            assert values.get("initialized") == "True", values
            assert values.get("filter initialised") == "1", values  # the operator's pose
            assert int(values.get("initialpose bad_covariance", "0")) == 0, values
    except BaseException:
        print("---- node output ----\n" + logs.getvalue())
        raise
