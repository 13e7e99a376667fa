"""The localizer node in this process: a sweep in, a pose and map -> odom out; every kind of
bad input counted on /diagnostics, never fatal (issue 15 item 4).

The node is built on a reserved domain and its callbacks are called as rclpy's executor calls
them, with hand-built messages; the transforms it would get from /tf go into its tree.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rclpy
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from rclpy.time import Time
from sensor_msgs.msg import NavSatFix, NavSatStatus

from xiaomanlv_bringup.ros.session import reserved_domain_id
from xiaomanlv_core.geodesy import Datum, local_to_geodetic
from xiaomanlv_core.geometry import planar_pose
from xiaomanlv_core.ros.pointcloud2 import create_cloud
from xiaomanlv_core.ros.poses import pose_msg
from xiaomanlv_core.ros.time import stamp_of
from xiaomanlv_mapping.mapfiles import write_datum

LIDAR = planar_pose(0.25, 0.0, 0.0)
LIDAR[2, 3] = 1.9
TRUTH = planar_pose(4.0, -3.0, 0.6)
DATUM = Datum(latitude=30.31, longitude=120.35, altitude=5.0, heading_deg=10.0)


@pytest.fixture
def node(tmp_path: Path, courtyard: Any) -> Iterator[Any]:
    from xiaomanlv_nav.localization.nodes.localizer import LocalizerNode

    courtyard.write_map(tmp_path / "site")
    write_datum(DATUM, tmp_path / "site" / "datum.yaml")
    with reserved_domain_id() as domain:
        args = ["--ros-args", "-p", f"map:={tmp_path / 'site'}", "-p", "use_global_search:=false"]
        rclpy.init(args=args, domain_id=domain)
        n = LocalizerNode()
        n._tree.set_transform("base_link", "lidar", LIDAR, 0.0, static=True)
        for t in np.arange(0.0, 3.0, 0.02):  # the robot stands still at TRUTH in odom too
            n._tree.set_transform("odom", "base_link", TRUTH, float(t))
        n.published = []
        n._pose_pub.publish = n.published.append
        n.diagnostics = []
        n._diag_pub.publish = n.diagnostics.append
        yield n
        n.destroy_node()
        rclpy.try_shutdown()


def sweep_msg(courtyard: Any, stamp: float, frame: str = "lidar", nan: int = 0) -> Any:
    """A sweep of the courtyard from TRUTH in the lidar frame, with a t field."""
    base = courtyard.sweep(TRUTH, seed=int(stamp * 10))
    lidar = (base - LIDAR[:3, 3]) @ LIDAR[:3, :3]
    lidar[:nan] = np.nan
    times = np.linspace(0.0, 0.099, len(lidar))
    columns = {"x": lidar[:, 0], "y": lidar[:, 1], "z": lidar[:, 2], "t": times}
    columns = {k: np.asarray(v, dtype=np.float32) for k, v in columns.items()}
    return create_cloud(columns, stamp_of(stamp), frame)


def initial_pose(pose: np.ndarray, frame: str = "map") -> PoseWithCovarianceStamped:
    msg = PoseWithCovarianceStamped()
    msg.header.frame_id = frame
    msg.pose.pose = pose_msg(pose)
    return msg


def bad(node: Any) -> dict[str, str]:
    node._publish_diagnostics()
    (status,) = node.diagnostics[-1].status
    return {kv.key: kv.value for kv in status.values if kv.key.startswith("bad ")}


def test_a_sweep_gives_the_pose_and_map_to_odom(node: Any, courtyard: Any) -> None:
    node._on_cloud(sweep_msg(courtyard, 0.5))
    assert node._last_update.reasons == ("not initialised",) and not node.published
    node._on_initial_pose(initial_pose(TRUTH @ planar_pose(0.4, 0.2, 0.05)))
    node._on_cloud(sweep_msg(courtyard, 0.6))
    update = node._last_update
    assert update.accepted, update.reasons
    (pose,) = node.published
    assert pose.header.frame_id == "map"
    assert math.hypot(pose.pose.pose.position.x - 4.0, pose.pose.pose.position.y + 3.0) < 0.05
    cov = np.array(pose.pose.covariance).reshape(6, 6)
    assert 0.0 < cov[0, 0] < 0.01 and np.allclose(cov, cov.T)
    # map <- odom carries the odometry's pose onto the match (here both are TRUTH: identity)
    np.testing.assert_allclose(update.map_from_odom, np.eye(4), atol=0.05)
    assert bad(node) == {}


def test_bad_clouds_are_counted_and_the_next_good_one_is_used(node: Any, courtyard: Any) -> None:
    node._on_initial_pose(initial_pose(TRUTH))
    empty = sweep_msg(courtyard, 0.5)
    empty.width, empty.data = 0, b""
    node._on_cloud(empty)
    all_nan = sweep_msg(courtyard, 0.6, nan=10**9)
    node._on_cloud(all_nan)
    unknown = sweep_msg(courtyard, 0.7, frame="radar")
    node._on_cloud(unknown)
    broken = sweep_msg(courtyard, 0.8)
    broken.data = broken.data[:100]
    node._on_cloud(broken)
    assert node.localizer.sweeps == 0
    node._on_cloud(sweep_msg(courtyard, 0.9, nan=500))  # some NaN: dropped, the rest used
    assert node._last_update.accepted and node.localizer.sweeps == 1
    node._on_cloud(sweep_msg(courtyard, 0.9))  # the same stamp again
    node._on_cloud(sweep_msg(courtyard, 0.85))  # older than the last
    assert node.localizer.sweeps == 1
    assert bad(node) == {
        "bad cloud all points non-finite": "1",
        "bad cloud empty": "1",
        "bad cloud frame 'radar'": "1",
        "bad cloud non-finite points": "1",
        "bad cloud stamp duplicated": "1",
        "bad cloud stamp out of order": "1",
        "bad cloud unreadable": "1",
    }
    node._publish_diagnostics()
    summary = {kv.key: kv.value for kv in node.diagnostics[-1].status[0].values}
    assert summary["malformed_messages"] == "7" and summary["state"] in ("OK", "DEGRADED")


def test_bad_fixes_poses_and_odometry_are_counted(node: Any) -> None:
    fix = NavSatFix()
    fix.status.status = NavSatStatus.STATUS_NO_FIX
    node._on_fix(fix)
    fix.status.status = NavSatStatus.STATUS_FIX
    fix.latitude = math.nan
    node._on_fix(fix)
    lat, lon, alt = local_to_geodetic(DATUM, [4.0, -3.0, 0.0])
    fix.latitude, fix.longitude, fix.altitude = float(lat), float(lon), float(alt)
    fix.position_covariance_type = NavSatFix.COVARIANCE_TYPE_DIAGONAL_KNOWN
    fix.position_covariance = [4.0, 0, 0, 0, 1.0, 0, 0, 0, 9.0]
    node._on_fix(fix)  # a good one: in the map through the datum
    _, xy, cov = node.localizer._fix
    np.testing.assert_allclose(xy, [4.0, -3.0], atol=1e-6)
    assert cov[0, 0] < 4.0 and cov[1, 1] > 1.0  # ENU turned by the datum's 10 deg heading
    node._on_initial_pose(initial_pose(TRUTH, frame="odom"))
    nan_pose = initial_pose(TRUTH)
    nan_pose.pose.pose.position.x = math.nan
    node._on_initial_pose(nan_pose)
    assert not node.localizer.initialised
    odom = Odometry()
    odom.header.frame_id, odom.child_frame_id = "odom", "base_link"
    node._on_odometry(odom)
    assert bad(node) == {
        "bad fix: no fix": "1",
        "bad fix: non-finite fix": "1",
        "bad initial pose frame": "1",
        "bad initial pose not finite": "1",
        "bad odometry frame": "1",
    }


def test_clock_jumping_back_is_counted_and_survived(node: Any, courtyard: Any) -> None:
    clock = node.get_clock()
    clock._set_ros_time_is_active(True)
    clock.set_ros_time_override(Time(seconds=2, clock_type=clock.clock_type))
    node._on_initial_pose(initial_pose(TRUTH))
    node._on_cloud(sweep_msg(courtyard, 1.9))
    assert node._last_update.accepted
    clock.set_ros_time_override(
        Time(seconds=0, nanoseconds=600_000_000, clock_type=clock.clock_type)
    )
    assert bad(node) == {"bad clock jumped back": "1"}  # seen by the next callback
    node._tree.set_transform("odom", "base_link", TRUTH, 0.0)  # the sim restarted
    node._tree.set_transform("odom", "base_link", TRUTH, 0.7)
    node._on_cloud(sweep_msg(courtyard, 0.5))  # older than the last sweep, after the jump
    assert node._last_update.stamp == 0.5 and node._last_update.accepted
    assert node.localizer.initialised  # the pose survived


def test_an_initial_pose_before_any_odometry_is_held_until_odometry_comes(
    node: Any, courtyard: Any
) -> None:
    # RViz's 2D Pose Estimate is clicked once; the odometry may not have reached the node yet.
    node._tree.clear_dynamic()
    node._on_initial_pose(initial_pose(TRUTH))
    assert not node.localizer.initialised and bad(node) == {}
    for t in np.arange(0.0, 3.0, 0.02):
        node._tree.set_transform("odom", "base_link", TRUTH, float(t))
    node._on_cloud(sweep_msg(courtyard, 0.6))
    assert node.localizer.initialised and node._last_update.accepted, node._last_update.reasons
    assert bad(node) == {}
