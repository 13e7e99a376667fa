"""models/xiaomanlv/model.sdf declares the sensors, rates and drive the issue requires."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from xiaomanlv_core.robot import model_file as robot_model_file
from xiaomanlv_sim.worldgen.furniture import KERB_HEIGHT
from xiaomanlv_sim.worldgen.robot import ULTRASONIC_NAMES

NS = "{https://github.com/xiaomanlv/sdf}"


@pytest.fixture(scope="module")
def model() -> ET.Element:
    text = robot_model_file().read_text()
    assert 'xmlns:xiaomanlv="https://github.com/xiaomanlv/sdf"' in text
    root = ET.fromstring(text)
    assert root.tag == "sdf" and root.get("version") == "1.9"
    (element,) = root.findall("model")
    assert element.get("name") == "xiaomanlv"
    return element


def _float(element: ET.Element, path: str) -> float:
    text = element.findtext(path)
    assert text is not None, path
    return float(text)


def _sensor(model: ET.Element, name: str) -> ET.Element:
    sensor = model.find(f"link[@name='base_link']/sensor[@name='{name}']")
    assert sensor is not None, name
    return sensor


def _pose(element: ET.Element) -> list[float]:
    return [float(v) for v in element.findtext("pose", "0 0 0 0 0 0").split()]


def test_body_mass_and_footprint(model: ET.Element) -> None:
    base = model.find("link[@name='base_link']")
    assert base is not None
    assert 350.0 <= _float(base, "inertial/mass") <= 450.0  # loaded with 50 parcels
    size = [float(v) for v in base.findtext("collision/geometry/box/size", "").split()]
    assert size[0] == pytest.approx(1.8) and size[1] == pytest.approx(1.0)
    box_bottom = _pose(base.find("collision"))[2] - size[2] / 2  # type: ignore[arg-type]
    assert box_bottom > KERB_HEIGHT  # the body clears a kerb edge


def test_wheels_and_casters(model: ET.Element) -> None:
    drive = model.find("plugin[@filename='gz-sim-diff-drive-system']")
    assert drive is not None and drive.get("name") == "gz::sim::systems::DiffDrive"
    radius = _float(drive, "wheel_radius")
    ys = []
    for side in ("left", "right"):
        joint = model.find(f"joint[@name='{side}_wheel_joint']")
        assert joint is not None and joint.get("type") == "revolute"
        assert joint.findtext("parent") == "base_link"
        assert joint.findtext("child") == f"{side}_wheel"
        link = model.find(f"link[@name='{side}_wheel']")
        assert link is not None
        assert _float(link, "collision/geometry/cylinder/radius") == pytest.approx(radius)
        pose = _pose(link)
        assert pose[2] == pytest.approx(radius)  # base_link origin on the ground
        ys.append(pose[1])
    assert ys[0] - ys[1] == pytest.approx(_float(drive, "wheel_separation"))
    casters = [j for j in model.findall("joint") if j.get("type") == "ball"]
    assert len(casters) == 2


def test_diff_drive_limits_and_topics(model: ET.Element) -> None:
    drive = model.find("plugin[@filename='gz-sim-diff-drive-system']")
    assert drive is not None
    assert drive.findtext("left_joint") == "left_wheel_joint"
    assert drive.findtext("right_joint") == "right_wheel_joint"
    assert _float(drive, "odom_publish_frequency") == 50.0
    assert 1.5 <= _float(drive, "max_velocity") <= 2.5
    assert _float(drive, "min_velocity") < 0.0
    assert _float(drive, "max_linear_acceleration") > 0.0
    assert _float(drive, "min_linear_acceleration") < 0.0  # braking
    assert _float(drive, "min_angular_acceleration") == -_float(drive, "max_angular_acceleration")
    assert _float(drive, "min_angular_velocity") == -_float(drive, "max_angular_velocity")
    assert (drive.findtext("topic"), drive.findtext("odom_topic")) == ("cmd_vel", "wheel/odom")
    assert (drive.findtext("frame_id"), drive.findtext("child_frame_id")) == ("odom", "base_link")


def test_lidar_is_16_by_1800_at_10_hz(model: ET.Element) -> None:
    lidar = _sensor(model, "lidar")
    assert lidar.get("type") == "gpu_lidar"
    assert _float(lidar, "update_rate") == 10.0 and lidar.findtext("topic") == "lidar"
    h = lidar.find("lidar/scan/horizontal")
    v = lidar.find("lidar/scan/vertical")
    assert h is not None and v is not None
    assert _float(h, "samples") == 1800
    step = 2 * math.pi / 1800
    assert _float(h, "min_angle") == pytest.approx(-math.pi, abs=1e-5)
    assert _float(h, "max_angle") == pytest.approx(math.pi - step, abs=1e-5)
    assert _float(v, "samples") == 16
    assert _float(v, "min_angle") == pytest.approx(-0.2618, abs=1e-4)
    assert _float(v, "max_angle") == pytest.approx(0.2618, abs=1e-4)
    assert 0.0 < _float(lidar, "lidar/range/min") < _float(lidar, "lidar/range/max")
    assert _float(lidar, "lidar/range/resolution") > 0.0
    assert lidar.findtext("lidar/noise/type") == "gaussian"
    assert _float(lidar, "lidar/noise/stddev") > 0.0
    base = model.find("link[@name='base_link']")
    assert base is not None
    size = [float(v) for v in base.findtext("collision/geometry/box/size", "").split()]
    roof = _pose(base.find("collision"))[2] + size[2] / 2  # type: ignore[arg-type]
    x, _, z = _pose(lidar)[:3]
    # the lowest beam clears the roof edge behind the sensor
    assert z - roof > (size[0] / 2 + abs(x)) * math.tan(_float(v, "max_angle"))


def test_imu_100_hz_with_noise_and_bias_on_every_axis(model: ET.Element) -> None:
    imu = _sensor(model, "imu")
    assert imu.get("type") == "imu" and _float(imu, "update_rate") == 100.0
    assert imu.findtext("topic") == "imu"
    for group in ("angular_velocity", "linear_acceleration"):
        for axis in "xyz":
            noise = imu.find(f"imu/{group}/{axis}/noise")
            assert noise is not None and noise.get("type") == "gaussian"
            for field in ("mean", "stddev", "bias_mean", "bias_stddev"):
                assert noise.findtext(field) is not None, (group, axis, field)
            assert _float(noise, "stddev") > 0.0 and _float(noise, "bias_stddev") > 0.0


def test_navsat_5_hz(model: ET.Element) -> None:
    gnss = _sensor(model, "gnss")
    assert gnss.get("type") == "navsat" and _float(gnss, "update_rate") == 5.0
    assert gnss.findtext("topic") == "navsat"
    for group in ("position_sensing", "velocity_sensing"):
        for axis in ("horizontal", "vertical"):
            noise = gnss.find(f"navsat/{group}/{axis}/noise")
            assert noise is not None and noise.get("type") == "gaussian"
            assert _float(noise, "stddev") > 0.0


def test_eight_ultrasonic_rangers_at_20_hz_facing_outwards(model: ET.Element) -> None:
    base = model.find("link[@name='base_link']")
    assert base is not None
    names = [s.get("name") for s in base.findall("sensor") if "ultrasonic" in s.get("name", "")]
    expected = [
        "front_left", "front_right", "right_front", "right_rear",
        "rear_right", "rear_left", "left_rear", "left_front",
    ]  # fmt: skip
    assert tuple(expected) == ULTRASONIC_NAMES
    assert names == [f"ultrasonic_{w}" for w in expected]
    for where in expected:
        sensor = _sensor(model, f"ultrasonic_{where}")
        assert sensor.get("type") == "gpu_lidar" and _float(sensor, "update_rate") == 20.0
        assert sensor.findtext("topic") == f"ultrasonic/{where}"
        h = sensor.find("lidar/scan/horizontal")
        assert h is not None and _float(h, "samples") == 5
        fov = _float(h, "max_angle") - _float(h, "min_angle")
        assert math.radians(25) < fov < math.radians(35)
        assert _float(sensor, "lidar/scan/vertical/samples") == 3
        assert _float(sensor, "lidar/range/min") == pytest.approx(0.03, abs=0.05)
        assert _float(sensor, "lidar/range/max") == pytest.approx(4.5, abs=0.5)
        assert sensor.findtext("lidar/noise/type") == "gaussian"
        x, y, _, _, _, yaw = _pose(sensor)
        facing = (math.cos(yaw), math.sin(yaw))
        assert facing[0] * x + facing[1] * y > 0.0, where  # points away from the body centre
        assert abs(x) == pytest.approx(0.9) or abs(y) == pytest.approx(0.5)  # on the body


def test_sim_block(model: ET.Element) -> None:
    sim = model.find(f"{NS}sim")
    assert sim is not None
    expected = {
        "odometry": ("slip_stddev", "twist_stddev"),
        "gnss": (
            "multipath_height",
            "multipath_distance",
            "multipath_jump_stddev",
            "outage_sky_fraction",
        ),
        "tip": ("max_roll", "max_pitch", "max_step", "max_slope"),
    }
    for group, fields in expected.items():
        element = sim.find(f"{NS}{group}")
        assert element is not None, group
        assert [child.tag for child in element] == [f"{NS}{f}" for f in fields]
        assert all(float(child.text or "") > 0.0 for child in element)
    assert 0.0 < _float(sim, f"{NS}gnss/{NS}outage_sky_fraction") < 1.0
    assert _float(sim, f"{NS}tip/{NS}max_step") < KERB_HEIGHT  # kerbs need a ramp


def test_model_has_no_world_systems(model: ET.Element) -> None:
    filenames = {p.get("filename") for p in model.findall("plugin")}
    assert filenames == {"gz-sim-diff-drive-system", "gz-sim-joint-state-publisher-system"}
