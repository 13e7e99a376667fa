"""The localizer as a real process over Fast DDS beside the simulator: given /initialpose near
the truth, its /localization/pose lands on the simulator's ground truth (through the one
world <- map transform) and map -> odom appears on /tf. It waits for states, never sleeps.
"""

from __future__ import annotations

import dataclasses
import io
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped, Twist
from xiaomanlv.msg import LocalizationStatus

from xiaomanlv_bringup.graph import NodeSpec, load_profile, read_executables
from xiaomanlv_bringup.ros.session import GraphSession
from xiaomanlv_core.frames import world_from_map
from xiaomanlv_core.geometry import planar_pose
from xiaomanlv_core.paths import executables_file, graph_file
from xiaomanlv_core.ros.poses import matrix_of_pose, pose_msg
from xiaomanlv_core.ros.qos import SENSOR_QOS
from xiaomanlv_core.ros.tf import TransformListener
from xiaomanlv_core.ros.time import seconds_of
from xiaomanlv_core.site import load_site
from xiaomanlv_core.stops import stops_from_dict
from xiaomanlv_core.types import Pose2D
from xiaomanlv_core.yamlfile import read_yaml
from xiaomanlv_sim import assets

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]


def _world_from_map(site: str) -> np.ndarray:
    world = load_site(assets.site_file(assets.world_file(site)))
    path = REPO / "maps" / site / "stops.yaml"
    loading = stops_from_dict(read_yaml(path), str(path)).loading
    return world_from_map(world.station.loading, Pose2D(loading.x, loading.y, loading.yaw))


def _specs(tmp_path: Path) -> list[NodeSpec]:
    """The sim profile's sim node and localizer."""
    profile = load_profile(graph_file(), "sim", executables=read_executables(executables_file()))
    sim = profile.node("sim")
    params = {
        "sim": {"world": "university", "seed": 3, "pedestrians": 5, "real_time_factor": 1.0},
        "localizer": {"site": "university", "use_global_search": False},
    }
    files = {}
    for name, values in params.items():
        files[name] = tmp_path / f"{name}.params.yaml"
        files[name].write_text(yaml.safe_dump({"/**": {"ros__parameters": values}}))
    localizer = profile.node("localizer")
    return [
        _with_params(sim, files["sim"]),
        _with_params(localizer, files["localizer"]),
    ]


def _with_params(spec: NodeSpec, path: Path) -> NodeSpec:
    return dataclasses.replace(spec, parameters=(*spec.parameters, path))


@pytest.mark.timeout(240)
def test_the_localizer_lands_on_the_truth_and_publishes_map_to_odom(
    ros_domain: int, tmp_path: Path
) -> None:
    logs = io.StringIO()
    specs = _specs(tmp_path)
    world_map = _world_from_map("university")
    try:
        with GraphSession(specs, ros_domain, output=logs, grace=3.0) as session:
            session.wait_for_topics(["/sim/ground_truth/pose", "/clock"], timeout=60.0)
            session.wait_for_subscribers("/initialpose", timeout=60.0)
            truth = session.collect(PoseStamped, "/sim/ground_truth/pose", SENSOR_QOS)
            status = session.collect(LocalizationStatus, "/localization/status")
            poses = session.collect(PoseWithCovarianceStamped, "/localization/pose")
            listener = TransformListener(session.client)
            first = truth.wait(lambda m: True, 30.0)
            # An operator's guess 0.3 m and 2 deg off, in the map frame.
            guess = np.linalg.inv(world_map) @ matrix_of_pose(first.pose)
            guess = guess @ planar_pose(0.3, -0.2, math.radians(2.0))
            initial = PoseWithCovarianceStamped()
            initial.header.frame_id = "map"
            initial.pose.pose = pose_msg(guess)
            pub = session.client.create_publisher(PoseWithCovarianceStamped, "/initialpose", 10)
            session.wait_for_match(pub)
            pub.publish(initial)
            status.wait(lambda m: m.initialised, 60.0)
            forward = Twist()
            forward.linear.x, forward.angular.z = 0.8, 0.1
            with session.publishing("/cmd_vel", forward):
                # A pose once the robot has moved off, compared with the truth at its stamp.
                def matched() -> Any:
                    stamps = {round(seconds_of(m.header.stamp), 3): m for m in truth.items}
                    for msg in reversed(poses.items):
                        stamp = round(seconds_of(msg.header.stamp), 3)
                        at = stamps.get(stamp)
                        if at is not None and at.pose.position.x != first.pose.position.x:
                            return msg, at
                    return None

                pose, at = session.wait_until(matched, 90.0, "/localization/pose at a truth stamp")
            estimate = world_map @ matrix_of_pose(pose.pose.pose)
            true = matrix_of_pose(at.pose)
            error = float(np.linalg.norm(estimate[:2, 3] - true[:2, 3]))
            assert error < 0.2, error
            cov = np.array(pose.pose.covariance).reshape(6, 6)
            assert 0.0 < cov[0, 0] < 0.1 and 0.0 < cov[1, 1] < 0.1
            session.wait_until(
                lambda: listener.tree.can_transform("map", "base_link"),
                30.0,
                "map -> odom -> base_link on /tf",
            )
            assert listener.tree.chain("map", "base_link") == ["base_link", "odom", "map"]
            last = status.items[-1]
            assert last.sweeps >= 1 and last.accepted_sweeps >= 1, list(last.reasons)
            # What the simulator sends is well formed: no cloud was refused for its content.
            # (A fix without a fix, or a sweep the odometry did not cover in tf_wait on a busy
            # machine, is counted too, and allowed here.)
            summary = session.wait_for_message(
                DiagnosticArray,
                "/diagnostics",
                20.0,
                predicate=lambda m: any(s.name == "localizer: summary" for s in m.status),
            )
            (ours,) = [s for s in summary.status if s.name == "localizer: summary"]
            kinds = {kv.key for kv in ours.values if kv.key.startswith("bad ")}
            assert kinds <= {"bad fix: no fix", "bad cloud without odometry"}, kinds
            listener.destroy()
    except BaseException:
        print("---- node output ----\n" + logs.getvalue())
        raise
