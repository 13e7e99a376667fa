"""urdf/xiaomanlv.urdf: a tree rooted at base_link whose extrinsics equal the SDF model's."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from xiaomanlv_core.frames import BASE_LINK, sensor_extrinsics
from xiaomanlv_core.geometry import pose_matrix
from xiaomanlv_core.robot import load_robot, model_file
from xiaomanlv_sim.worldgen import repo_root
from xiaomanlv_sim.worldgen.robot import robot_sdf
from xiaomanlv_sim.worldgen.urdf import URDF_FILE, robot_urdf


def urdf_tree(text: str) -> tuple[dict[str, np.ndarray], dict[str, ET.Element]]:
    """({link: 4x4 base_link <- link}, {child link: joint}) of a URDF, composing joint origins
    from the root; asserts it is one tree rooted at base_link."""
    robot = ET.fromstring(text)
    links = {link.get("name") for link in robot.findall("link")}
    joints = {j.find("child").get("link"): j for j in robot.findall("joint")}
    assert len(joints) == len(robot.findall("joint")), "a link is the child of two joints"
    roots = links - set(joints)
    assert roots == {BASE_LINK}
    poses = {BASE_LINK: np.eye(4)}

    def pose_of(link: str) -> np.ndarray:
        if link not in poses:
            joint = joints[link]
            parent = joint.find("parent").get("link")
            assert parent in links
            origin = joint.find("origin")
            xyz = [float(v) for v in origin.get("xyz", "0 0 0").split()]
            rpy = [float(v) for v in origin.get("rpy", "0 0 0").split()]
            poses[link] = pose_of(parent) @ pose_matrix(*xyz, *rpy)
        return poses[link]

    for link in links:
        pose_of(link)
    return poses, joints


def test_committed_urdf_is_the_generated_one() -> None:
    assert (repo_root() / URDF_FILE).read_text(encoding="utf-8") == robot_urdf()


def test_urdf_and_sdf_extrinsics_are_equal() -> None:
    robot = load_robot(model_file())
    poses, joints = urdf_tree((repo_root() / URDF_FILE).read_text(encoding="utf-8"))
    for frame, pose in sensor_extrinsics(robot).items():
        assert joints[frame].get("type") == "fixed", frame
        np.testing.assert_allclose(poses[frame], pose, atol=1e-6, err_msg=frame)
    # the wheels: on the axle under base_link's origin, as far apart as the drive says
    left, right = poses["left_wheel"][:3, 3], poses["right_wheel"][:3, 3]
    np.testing.assert_allclose(left - right, [0, robot.drive.wheel_separation, 0], atol=1e-9)
    assert left[2] == pytest.approx(robot.drive.wheel_radius)
    assert {joints[w].get("type") for w in ("left_wheel", "right_wheel")} == {"continuous"}
    # the wheel axis (z of the wheel link) is base_link's y: forward rolling is about +-y
    np.testing.assert_allclose(abs(poses["left_wheel"][:3, 2] @ [0, 1, 0]), 1.0, atol=1e-6)


def test_the_body_box_is_the_sdf_body() -> None:
    robot = load_robot(model_file())
    urdf = ET.fromstring(robot_urdf())
    base = next(link for link in urdf.findall("link") if link.get("name") == BASE_LINK)
    box = base.find("collision/geometry/box")
    assert box is not None
    size = [float(v) for v in box.get("size", "").split()]
    assert size == pytest.approx([robot.body.length, robot.body.width, robot.body.height])
    z = float(base.find("collision/origin").get("xyz").split()[2])
    assert z == pytest.approx(robot.body.box_pose[2, 3])


def test_a_sensor_moved_in_the_sdf_moves_in_the_urdf(tmp_path: Path) -> None:
    """The URDF follows the SDF it is converted from, not a second copy of the numbers."""
    sdf = robot_sdf().replace("<pose>0.25 0 1.9 0 0 0</pose>", "<pose>0.3 0.1 2 0 0.1 0.2</pose>")
    poses, _ = urdf_tree(robot_urdf(sdf))
    path = tmp_path / "model.sdf"
    path.write_text(sdf)
    np.testing.assert_allclose(poses["lidar"], load_robot(path).lidar.pose, atol=1e-6)


def test_joints_the_urdf_cannot_hold_are_refused_by_name() -> None:
    sdf = robot_sdf().replace(
        'name="front_caster_joint" type="ball"', 'name="front_caster_joint" type="prismatic"'
    )
    with pytest.raises(ValueError, match=r"joint\[front_caster_joint\] of type 'prismatic'"):
        robot_urdf(sdf)
