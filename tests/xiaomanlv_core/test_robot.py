"""The robot description read from models/xiaomanlv/model.sdf (xiaomanlv_core.robot)."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from xiaomanlv_core.robot import load_robot, model_file
from xiaomanlv_core.sdformat import SdfError


def test_shipped_robot_model() -> None:
    robot = load_robot(model_file())
    assert robot.name == "xiaomanlv"
    lidar = robot.lidar
    assert (lidar.vertical_samples, lidar.horizontal_samples) == (16, 1800)
    assert lidar.horizontal_min == pytest.approx(-math.pi, abs=1e-5)
    assert lidar.horizontal_max == pytest.approx(math.pi - 2 * math.pi / 1800, abs=1e-5)
    assert 0 < lidar.range_min < lidar.range_max
    where = [u.name.removeprefix("ultrasonic_") for u in robot.ultrasonic]
    assert where == [
        "front_left", "front_right", "right_front", "right_rear",
        "rear_right", "rear_left", "left_rear", "left_front",
    ]  # fmt: skip
    assert all(u.topic == f"ultrasonic/{w}" for u, w in zip(robot.ultrasonic, where, strict=True))
    # The front-left ranger looks forward from the front-left corner of the body.
    front_left = robot.ultrasonic[0].pose
    assert front_left[0, 3] > 0 and front_left[1, 3] > 0
    np.testing.assert_allclose(front_left[:3, 0], [1, 0, 0], atol=1e-6)
    assert robot.drive.wheel_radius > 0 and robot.drive.wheel_separation > 0
    assert robot.drive.min_linear_acceleration < 0 < robot.drive.max_linear_acceleration
    assert robot.body.length > robot.body.width > 0
    assert robot.gnss.outage_sky_fraction > 0
    assert robot.imu.rate == 100


def _robot_tree() -> ET.ElementTree:
    ET.register_namespace("xiaomanlv", "https://github.com/xiaomanlv/sdf")
    return ET.parse(model_file())


def test_robot_sensor_pose_composes_through_its_link(tmp_path: Path) -> None:
    tree = _robot_tree()
    model = tree.getroot().find("model")
    assert model is not None
    base = model.find("link[@name='base_link']")
    assert base is not None
    lidar = base.find("sensor[@name='lidar']")
    assert lidar is not None
    base.remove(lidar)
    # base_link 0.1 up; mast at (0.2, 0, 1.0) yawed 90 deg; lidar at (0.1, 0, 0.05) on the mast.
    # By hand, base_link <- lidar: (0.2, 0.1, 0.95), yawed 90 deg.
    base_pose = ET.SubElement(base, "pose")
    base_pose.text = "0 0 0.1 0 0 0"
    mast = ET.SubElement(model, "link", name="mast")
    ET.SubElement(mast, "pose").text = "0.2 0 1.0 0 0 1.5707963267948966"
    lidar_pose = lidar.find("pose")
    assert lidar_pose is not None
    lidar_pose.text = "0.1 0 0.05 0 0 0"
    mast.append(lidar)
    path = tmp_path / "model.sdf"
    tree.write(path)
    pose = load_robot(path).lidar.pose
    np.testing.assert_allclose(pose[:3, 3], [0.2, 0.1, 0.95], atol=1e-9)
    np.testing.assert_allclose(pose[:3, 0], [0.0, 1.0, 0.0], atol=1e-9)


@pytest.mark.parametrize(
    ("xpath", "message"),
    [
        (".//plugin/wheel_radius", r"plugin\[gz::sim::systems::DiffDrive\]/wheel_radius: missing"),
        (".//sensor[@name='lidar']/lidar/range/max", r"sensor\[lidar\]/lidar/range/max: missing"),
        (".//sensor[@name='imu']/update_rate", r"sensor\[imu\]/update_rate: missing"),
        (
            ".//{https://github.com/xiaomanlv/sdf}max_step",
            "xiaomanlv:tip/xiaomanlv:max_step: missing",
        ),
        (
            ".//{https://github.com/xiaomanlv/sdf}max_slope",
            "xiaomanlv:tip/xiaomanlv:max_slope: missing",
        ),
    ],
)
def test_robot_missing_required_element(tmp_path: Path, xpath: str, message: str) -> None:
    tree = _robot_tree()
    root = tree.getroot()
    target = root.find(xpath)
    assert target is not None
    parents = {child: parent for parent in root.iter() for child in parent}
    parents[target].remove(target)
    path = tmp_path / "model.sdf"
    tree.write(path)
    with pytest.raises(SdfError, match=rf"model\.sdf: model\[xiaomanlv\]/.*{message}"):
        load_robot(path)


def test_climbing_limits_and_height_come_from_the_model(tmp_path: Path) -> None:
    robot = load_robot(model_file())
    assert robot.body.max_step == pytest.approx(0.12)
    assert robot.body.max_slope == pytest.approx(0.175)  # 10 deg
    assert robot.height == pytest.approx(1.9)  # the lidar on its mast, above the 1.55 m body
    tree = _robot_tree()
    root = tree.getroot()
    ns = "{https://github.com/xiaomanlv/sdf}"
    for name, value in (("max_step", "0.2"), ("max_slope", "0.3")):
        elem = root.find(f".//{ns}{name}")
        assert elem is not None
        elem.text = value
    lidar_pose = root.find(".//sensor[@name='lidar']/pose")
    assert lidar_pose is not None
    lidar_pose.text = "0.25 0 1.20 0 0 0"  # a low lidar: the GNSS antenna is the top
    path = tmp_path / "model.sdf"
    tree.write(path)
    edited = load_robot(path)
    assert (edited.body.max_step, edited.body.max_slope) == (0.2, 0.3)
    assert edited.height == pytest.approx(1.60)  # not the 1.55 m body box


def test_the_model_is_found_in_the_source_tree() -> None:
    path = model_file()
    assert path.name == "model.sdf" and path.parent.name == "xiaomanlv"
    assert path.is_file()
