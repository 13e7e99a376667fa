"""The sim profile's frames over Fast DDS: /tf_static and /tf from the lidar to odom.

``xiaomanlv bringup sim``'s nodes run as processes; the test's own listener
(`xiaomanlv_core.ros.tf.TransformListener`) joins late, as RViz would, and follows the chain
lidar -> base_link -> odom. The static part must be the robot description's extrinsics, the
dynamic part the wheel odometry at the odometry's own stamps. It waits for states, never sleeps.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from geometry_msgs.msg import Twist
from nav_msgs.msg import Odometry

from xiaomanlv_core.frames import sensor_extrinsics
from xiaomanlv_core.robot import load_robot, model_file
from xiaomanlv_core.ros.poses import matrix_of_pose
from xiaomanlv_core.ros.tf import TransformListener
from xiaomanlv_core.ros.time import seconds_of

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_sim_profile_chains_the_lidar_to_odom_as_the_robot_description_says(
    ros_graph: Any, tmp_path: Path
) -> None:
    session = ros_graph(
        profile="sim",
        parameters={
            "sim": {"world": "university", "seed": 3, "pedestrians": 0, "real_time_factor": 1.0},
            "locker": {"data_dir": str(tmp_path / "locker")},
            "kiosk": {"port": free_port()},
        },
        topics=["/tf_static", "/tf", "/wheel/odom"],
        timeout=60.0,
    )
    extrinsics = sensor_extrinsics(load_robot(model_file()))
    listener = TransformListener(session.client)
    tree = listener.tree
    session.wait_until(
        lambda: set(extrinsics) <= tree.frames() and tree.can_transform("odom", "lidar"),
        30.0,
        "every sensor frame on /tf_static and odom -> base_link on /tf",
    )
    assert tree.chain("odom", "lidar") == ["lidar", "base_link", "odom"]
    for frame, pose in extrinsics.items():  # the latched message reached a late joiner
        np.testing.assert_allclose(tree.lookup("base_link", frame).matrix, pose, atol=1e-9)

    # Drive, so odom -> base_link is no identity, then hold /tf against /wheel/odom.
    odometry = session.collect(Odometry, "/wheel/odom", 50)
    forward = Twist()
    forward.linear.x, forward.angular.z = 1.0, 0.3
    with session.publishing("/cmd_vel", forward):
        moved = session.wait_until(
            lambda: next(
                (m for m in reversed(odometry.items) if m.pose.pose.position.x > 0.5), None
            ),
            30.0,
            "the wheel odometry 0.5 m ahead of its start",
        )
    stamp = seconds_of(moved.header.stamp)
    session.wait_until(
        lambda: tree.lookup("odom", "base_link").stamp >= stamp, 10.0, f"/tf at {stamp:.3f} s"
    )
    odom_base = matrix_of_pose(moved.pose.pose)
    at_stamp = tree.lookup("odom", "base_link", stamp)  # a sample with the odometry's stamp
    np.testing.assert_allclose(at_stamp.matrix, odom_base, atol=1e-9)
    lidar = tree.lookup("odom", "lidar", stamp)
    assert lidar.stamp == stamp
    np.testing.assert_allclose(lidar.matrix, odom_base @ extrinsics["lidar"], atol=1e-9)
    assert listener.rejected == 0, listener.last_rejection
    odometry.close()
    listener.destroy()
