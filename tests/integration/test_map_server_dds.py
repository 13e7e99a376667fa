"""The map_server node as a real process over Fast DDS: latched map topics, a corrupt map."""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from nav_msgs.msg import OccupancyGrid
from sensor_msgs.msg import PointCloud2
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray

from xiaomanlv_bringup.graph import NodeSpec
from xiaomanlv_bringup.ros.session import GraphSession
from xiaomanlv_core.paths import node_executable
from xiaomanlv_core.ros.pointcloud2 import read_xyz
from xiaomanlv_core.ros.qos import LATCHED_QOS
from xiaomanlv_mapping.mapfiles import write_map
from xiaomanlv_mapping.ros.conversions import (
    datum_from_msg,
    grid_from_msg,
    routes_from_msg,
    stops_from_msg,
)

pytestmark = pytest.mark.integration

LATCHED_TOPICS = {
    "/map": OccupancyGrid,
    "/map/cloud": PointCloud2,
    "/map/route_graph": String,
    "/map/stops": String,
    "/map/datum": String,
    "/map/markers": MarkerArray,
}


def map_server_spec(map_dir: Path, params: Path) -> NodeSpec:
    params.write_text(f"/**:\n  ros__parameters:\n    map: {json.dumps(str(map_dir))}\n")
    return NodeSpec(
        name="map_server",
        executable="map_server",
        namespace="",
        parameters=(params,),
        remappings=(),
        on_exit="shutdown",
        max_restarts=0,
        use_sim_time=False,
    )


@pytest.fixture
def served(
    tmp_path: Path, ros_domain: int, map_rig: ModuleType
) -> Iterator[tuple[GraphSession, Any]]:
    rig = map_rig
    prior = rig.synthetic_map()
    out = write_map(prior, tmp_path / "maps" / "testsite")
    logs = io.StringIO()
    spec = map_server_spec(out, tmp_path / "map_server.params.yaml")
    try:
        with GraphSession([spec], ros_domain, output=logs, grace=3.0) as session:
            session.wait_for_topics(list(LATCHED_TOPICS), timeout=30.0)
            yield session, (rig, prior)
    except BaseException:
        print("---- node output ----\n" + logs.getvalue())
        raise


def summary(session: GraphSession, timeout: float = 15.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        array = session.wait_for_message(DiagnosticArray, "/diagnostics", timeout=timeout)
        for status in array.status:
            if status.name == "map_server: summary":
                assert status.level == b"\x00", status.message
                return {kv.key: kv.value for kv in status.values}
    raise AssertionError("no map_server summary on /diagnostics")


def test_a_late_subscriber_gets_every_map_topic(served: tuple[GraphSession, Any]) -> None:
    session, (rig, prior) = served
    values = summary(session)  # the node has published: its timer runs after the constructor
    assert values["site"] == "testsite" and values["cloud_points"] == "3000"
    assert (values["route_edges"], values["stops"], values["hand_edited"]) == ("4", "2", "none")
    got = {
        topic: session.wait_for_message(cls, topic, timeout=15.0, qos=LATCHED_QOS)
        for topic, cls in LATCHED_TOPICS.items()
    }
    grid = grid_from_msg(got["/map"])
    assert got["/map"].header.frame_id == "map"
    assert np.array_equal(grid.cells, prior.grid.cells)
    assert grid.origin == pytest.approx(prior.grid.origin)
    cloud = read_xyz(got["/map/cloud"])
    assert got["/map/cloud"].header.frame_id == "map"
    assert np.array_equal(rig.sorted_rows(cloud), rig.sorted_rows(prior.cloud))
    assert routes_from_msg(got["/map/route_graph"]) == prior.routes
    assert stops_from_msg(got["/map/stops"]) == prior.stops
    assert datum_from_msg(got["/map/datum"]) == prior.datum
    assert {m.ns for m in got["/map/markers"].markers} >= {"route_edges", "stops"}
    assert session.supervisor.running() == ["map_server"]


def test_a_corrupt_map_stops_the_node_at_start_up_naming_the_file(
    tmp_path: Path, ros_domain: int, map_rig: ModuleType
) -> None:
    out = write_map(map_rig.synthetic_map(), tmp_path / "maps" / "testsite")
    path = out / "map.yaml"
    path.write_text(path.read_text().replace("resolution: 0.25", "resolution: -1"))
    env = {**os.environ, "ROS_DOMAIN_ID": str(ros_domain)}
    env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    proc = subprocess.run(
        [str(node_executable("map_server")), "--ros-args", "-p", f"map:={out}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert f"{path}: resolution: expected a positive number, got -1" in proc.stderr
