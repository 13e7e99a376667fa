"""The Xiaomanlv-class delivery robot as an SDF 1.9 model (models/xiaomanlv/model.sdf).

All numbers live in :class:`RobotParams`; docs/robot.md explains where each comes from. The
model follows the contract of docs/robot.md and the simulator contracts: link ``base_link``
(origin on the ground under the wheel axle, REP 103/105), two driven wheels on revolute joints,
two ball casters, the Gazebo Harmonic DiffDrive system and the sensors (gpu_lidar, imu, navsat,
eight narrow gpu_lidar ultrasonic stand-ins), and the ``<xiaomanlv:sim>`` block that only the
headless simulator reads.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from xiaomanlv_sim.worldgen.sdfxml import nums, sdf_root, sub, to_text

ULTRASONIC_NAMES = (
    "front_left",
    "front_right",
    "right_front",
    "right_rear",
    "rear_right",
    "rear_left",
    "left_rear",
    "left_front",
)


@dataclass(frozen=True)
class RobotParams:
    # body (collision box of base_link)
    length: float = 1.80  # [m]
    width: float = 1.00  # [m]
    body_height: float = 1.40  # [m] box height
    ground_clearance: float = 0.15  # [m] underside of the box above the ground
    mass_empty: float = 300.0  # [kg] documented only; Gazebo carries the loaded mass
    parcels: int = 50
    parcel_mass: float = 2.0  # [kg] mean parcel mass
    com_height: float = 0.70  # [m] loaded centre of mass above the ground
    # drive
    wheel_radius: float = 0.20  # [m]
    wheel_width: float = 0.10  # [m]
    wheel_separation: float = 0.86  # [m] between the wheel mid-planes
    wheel_mass: float = 2.5  # [kg] per wheel (numerical, see docs/robot.md)
    caster_radius: float = 0.10  # [m]
    caster_offset: float = 0.65  # [m] front and rear casters at +-this along x
    caster_mass: float = 1.0  # [kg]
    max_velocity: float = 2.0  # [m/s]
    min_velocity: float = -0.5  # [m/s] reverse
    max_angular_velocity: float = 1.2  # [rad/s]
    max_linear_acceleration: float = 1.0  # [m/s^2]
    min_linear_acceleration: float = -2.0  # [m/s^2] braking
    max_angular_acceleration: float = 1.5  # [rad/s^2]
    odom_rate: float = 50.0  # [Hz]
    # lidar (16 x 1800, 10 Hz)
    lidar_xyz: tuple[float, float, float] = (0.25, 0.0, 1.90)  # [m] in base_link
    lidar_rate: float = 10.0  # [Hz]
    lidar_horizontal_samples: int = 1800
    lidar_vertical_samples: int = 16
    lidar_vertical_half_angle: float = 0.261799  # [rad] 15 deg
    lidar_range_min: float = 0.5  # [m]
    lidar_range_max: float = 100.0  # [m]
    lidar_range_resolution: float = 0.01  # [m]
    lidar_noise_stddev: float = 0.03  # [m]
    # imu
    imu_xyz: tuple[float, float, float] = (0.0, 0.0, 0.40)  # [m]
    imu_rate: float = 100.0  # [Hz]
    gyro_stddev: float = 0.002  # [rad/s]
    gyro_bias_mean: float = 0.0005  # [rad/s]
    gyro_bias_stddev: float = 0.0001  # [rad/s]
    accel_stddev: float = 0.02  # [m/s^2]
    accel_bias_mean: float = 0.02  # [m/s^2]
    accel_bias_stddev: float = 0.005  # [m/s^2]
    # gnss
    gnss_xyz: tuple[float, float, float] = (-0.60, 0.0, 1.60)  # [m] antenna on the roof
    gnss_rate: float = 5.0  # [Hz]
    gnss_horizontal_stddev: float = 1.0  # [m]
    gnss_vertical_stddev: float = 2.0  # [m]
    gnss_velocity_stddev: float = 0.05  # [m/s]
    # ultrasonic rangers
    ultrasonic_height: float = 0.40  # [m]
    ultrasonic_rate: float = 20.0  # [Hz]
    ultrasonic_half_fov: float = 0.261799  # [rad] 15 deg -> 30 deg cone
    ultrasonic_vertical_half_fov: float = 0.130900  # [rad] 7.5 deg
    ultrasonic_range_min: float = 0.03  # [m]
    ultrasonic_range_max: float = 4.5  # [m]
    ultrasonic_noise_stddev: float = 0.01  # [m]
    # headless-simulator-only parameters (<xiaomanlv:sim>)
    slip_stddev: float = 0.01  # share of wheel travel
    twist_stddev: float = 0.005  # [m/s]
    multipath_height: float = 12.0  # [m]
    multipath_distance: float = 25.0  # [m]
    multipath_jump_stddev: float = 3.0  # [m]
    outage_sky_fraction: float = 0.5
    max_roll: float = 0.35  # [rad]
    max_pitch: float = 0.35  # [rad]
    max_step: float = 0.12  # [m]
    max_slope: float = 0.175  # [rad] 10 deg

    @property
    def mass_loaded(self) -> float:
        """[kg] the robot with every compartment full: base_link's mass in the model."""
        return self.mass_empty + self.parcels * self.parcel_mass

    def ultrasonic_poses(self) -> dict[str, tuple[float, float, float]]:
        """(x, y, yaw) of each ranger in base_link, on the faces of the body box."""
        hx, hy = self.length / 2, self.width / 2
        side_x = 0.5
        return {
            "front_left": (hx, 0.30, 0.0),
            "front_right": (hx, -0.30, 0.0),
            "right_front": (side_x, -hy, -math.pi / 2),
            "right_rear": (-side_x, -hy, -math.pi / 2),
            "rear_right": (-hx, -0.30, math.pi),
            "rear_left": (-hx, 0.30, math.pi),
            "left_rear": (-side_x, hy, math.pi / 2),
            "left_front": (side_x, hy, math.pi / 2),
        }


def _inertial(link: ET.Element, mass: float, ixx: float, iyy: float, izz: float, pose: str) -> None:
    inertial = sub(link, "inertial")
    sub(inertial, "pose", pose)
    sub(inertial, "mass", mass)
    inertia = sub(inertial, "inertia")
    for name, value in (("ixx", ixx), ("ixy", 0.0), ("ixz", 0.0), ("iyy", iyy), ("iyz", 0.0)):
        sub(inertia, name, value)
    sub(inertia, "izz", izz)


def _material(visual: ET.Element, rgb: tuple[float, float, float]) -> None:
    material = sub(visual, "material")
    sub(material, "ambient", nums((*rgb, 1.0)))
    sub(material, "diffuse", nums((*rgb, 1.0)))


def _box_geometry(parent: ET.Element, size: tuple[float, float, float]) -> None:
    sub(sub(sub(parent, "geometry"), "box"), "size", nums(size))


def _noise(
    parent: ET.Element, stddev: float, bias_mean: float = 0.0, bias_stddev: float = 0.0
) -> None:
    noise = sub(parent, "noise", type="gaussian")
    sub(noise, "mean", 0.0)
    sub(noise, "stddev", stddev)
    if bias_mean or bias_stddev:
        sub(noise, "bias_mean", bias_mean)
        sub(noise, "bias_stddev", bias_stddev)


def _lidar_block(
    sensor: ET.Element,
    horizontal: tuple[int, float, float],
    vertical: tuple[int, float, float],
    ranges: tuple[float, float, float],
    stddev: float,
) -> None:
    lidar = sub(sensor, "lidar")
    scan = sub(lidar, "scan")
    for tag, (samples, lo, hi) in (("horizontal", horizontal), ("vertical", vertical)):
        axis = sub(scan, tag)
        sub(axis, "samples", str(samples))
        sub(axis, "resolution", "1")
        sub(axis, "min_angle", lo)
        sub(axis, "max_angle", hi)
    range_ = sub(lidar, "range")
    sub(range_, "min", ranges[0])
    sub(range_, "max", ranges[1])
    sub(range_, "resolution", ranges[2])
    noise = sub(lidar, "noise")
    sub(noise, "type", "gaussian")
    sub(noise, "mean", 0.0)
    sub(noise, "stddev", stddev)


def _sensor(
    link: ET.Element, name: str, kind: str, pose: str, rate: float, topic: str
) -> ET.Element:
    sensor = sub(link, "sensor", name=name, type=kind)
    sub(sensor, "pose", pose)
    sub(sensor, "always_on", "true")
    sub(sensor, "update_rate", rate)
    sub(sensor, "visualize", "false")
    sub(sensor, "topic", topic)
    # Gazebo Harmonic (gz-sensors 8) reads the message frame_id from this element; SDFormat
    # copies it with a warning (it became //sensor/frame_id in SDFormat 1.11 / Ionic).
    sub(sensor, "gz_frame_id", name)
    return sensor


def _wheel(model: ET.Element, p: RobotParams, side: str, y: float) -> None:
    link = sub(model, "link", name=f"{side}_wheel")
    sub(link, "pose", nums((0.0, y, p.wheel_radius, -math.pi / 2, 0.0, 0.0)))
    m, r, w = p.wheel_mass, p.wheel_radius, p.wheel_width
    i_radial = m * (3 * r * r + w * w) / 12
    _inertial(link, m, i_radial, i_radial, m * r * r / 2, "0 0 0 0 0 0")
    for tag in ("collision", "visual"):
        element = sub(link, tag, name=f"{side}_wheel_{tag}")
        cylinder = sub(sub(element, "geometry"), "cylinder")
        sub(cylinder, "radius", r)
        sub(cylinder, "length", w)
        if tag == "collision":
            ode = sub(sub(sub(element, "surface"), "friction"), "ode")
            sub(ode, "mu", 1.0)
            sub(ode, "mu2", 1.0)
        else:
            _material(element, (0.1, 0.1, 0.1))
    joint = sub(model, "joint", name=f"{side}_wheel_joint", type="revolute")
    sub(joint, "parent", "base_link")
    sub(joint, "child", f"{side}_wheel")
    axis = sub(joint, "axis")
    sub(axis, "xyz", "0 0 1")
    limit = sub(axis, "limit")
    sub(limit, "lower", "-1e16")
    sub(limit, "upper", "1e16")


def _caster(model: ET.Element, p: RobotParams, name: str, x: float) -> None:
    link = sub(model, "link", name=name)
    sub(link, "pose", nums((x, 0.0, p.caster_radius, 0.0, 0.0, 0.0)))
    i = 2 * p.caster_mass * p.caster_radius**2 / 5
    _inertial(link, p.caster_mass, i, i, i, "0 0 0 0 0 0")
    for tag in ("collision", "visual"):
        element = sub(link, tag, name=f"{name}_{tag}")
        sub(sub(sub(element, "geometry"), "sphere"), "radius", p.caster_radius)
        if tag == "collision":
            ode = sub(sub(sub(element, "surface"), "friction"), "ode")
            sub(ode, "mu", 0.0)
            sub(ode, "mu2", 0.0)
        else:
            _material(element, (0.3, 0.3, 0.3))
    joint = sub(model, "joint", name=f"{name}_joint", type="ball")
    sub(joint, "parent", "base_link")
    sub(joint, "child", name)


def robot_sdf(p: RobotParams | None = None) -> str:
    """The SDF 1.9 text of models/xiaomanlv/model.sdf for parameters ``p``."""
    p = p or RobotParams()
    root = sdf_root()
    model = sub(root, "model", name="xiaomanlv")
    sub(model, "pose", "0 0 0 0 0 0")
    base = sub(model, "link", name="base_link")
    box_z = p.ground_clearance + p.body_height / 2
    size = (p.length, p.width, p.body_height)
    m = p.mass_loaded
    ixx = m * (p.width**2 + p.body_height**2) / 12
    iyy = m * (p.length**2 + p.body_height**2) / 12
    izz = m * (p.length**2 + p.width**2) / 12
    _inertial(base, m, ixx, iyy, izz, nums((0.0, 0.0, p.com_height, 0.0, 0.0, 0.0)))
    collision = sub(base, "collision", name="body_collision")
    sub(collision, "pose", nums((0.0, 0.0, box_z, 0.0, 0.0, 0.0)))
    _box_geometry(collision, size)
    body = sub(base, "visual", name="body_visual")
    sub(body, "pose", nums((0.0, 0.0, box_z, 0.0, 0.0, 0.0)))
    _box_geometry(body, size)
    _material(body, (0.95, 0.95, 0.92))
    stripe = sub(base, "visual", name="compartment_doors_visual")
    sub(stripe, "pose", nums((0.0, 0.0, box_z + 0.1, 0.0, 0.0, 0.0)))
    _box_geometry(stripe, (p.length * 0.8, p.width + 0.01, p.body_height * 0.6))
    _material(stripe, (0.2, 0.45, 0.85))
    top = p.ground_clearance + p.body_height
    mast_height = p.lidar_xyz[2] - 0.05 - top
    mast = sub(base, "visual", name="lidar_mast_visual")
    sub(mast, "pose", nums((p.lidar_xyz[0], 0.0, top + mast_height / 2, 0.0, 0.0, 0.0)))
    cylinder = sub(sub(mast, "geometry"), "cylinder")
    sub(cylinder, "radius", 0.03)
    sub(cylinder, "length", mast_height)
    _material(mast, (0.3, 0.3, 0.3))
    head = sub(base, "visual", name="lidar_visual")
    sub(head, "pose", nums((*p.lidar_xyz[:2], p.lidar_xyz[2] - 0.02, 0.0, 0.0, 0.0)))
    cylinder = sub(sub(head, "geometry"), "cylinder")
    sub(cylinder, "radius", 0.05)
    sub(cylinder, "length", 0.07)
    _material(head, (0.1, 0.1, 0.1))

    lidar = _sensor(
        base, "lidar", "gpu_lidar", nums((*p.lidar_xyz, 0, 0, 0)), p.lidar_rate, "lidar"
    )
    step = 2 * math.pi / p.lidar_horizontal_samples
    _lidar_block(
        lidar,
        (p.lidar_horizontal_samples, -math.pi, math.pi - step),
        (p.lidar_vertical_samples, -p.lidar_vertical_half_angle, p.lidar_vertical_half_angle),
        (p.lidar_range_min, p.lidar_range_max, p.lidar_range_resolution),
        p.lidar_noise_stddev,
    )

    imu = _sensor(base, "imu", "imu", nums((*p.imu_xyz, 0, 0, 0)), p.imu_rate, "imu")
    imu_block = sub(imu, "imu")
    for group, (sd, bm, bs) in (
        ("angular_velocity", (p.gyro_stddev, p.gyro_bias_mean, p.gyro_bias_stddev)),
        ("linear_acceleration", (p.accel_stddev, p.accel_bias_mean, p.accel_bias_stddev)),
    ):
        element = sub(imu_block, group)
        for axis in ("x", "y", "z"):
            _noise(sub(element, axis), sd, bm, bs)

    gnss = _sensor(base, "gnss", "navsat", nums((*p.gnss_xyz, 0, 0, 0)), p.gnss_rate, "navsat")
    navsat = sub(gnss, "navsat")
    position = sub(navsat, "position_sensing")
    _noise(sub(position, "horizontal"), p.gnss_horizontal_stddev)
    _noise(sub(position, "vertical"), p.gnss_vertical_stddev)
    velocity = sub(navsat, "velocity_sensing")
    _noise(sub(velocity, "horizontal"), p.gnss_velocity_stddev)
    _noise(sub(velocity, "vertical"), p.gnss_velocity_stddev)

    for where, (x, y, yaw) in p.ultrasonic_poses().items():
        pose = nums((x, y, p.ultrasonic_height, 0.0, 0.0, yaw))
        sensor = _sensor(
            base, f"ultrasonic_{where}", "gpu_lidar", pose, p.ultrasonic_rate, f"ultrasonic/{where}"
        )
        _lidar_block(
            sensor,
            (5, -p.ultrasonic_half_fov, p.ultrasonic_half_fov),
            # The cone's lower edge is level: flat ground 3 m ahead is no echo (real rangers
            # are mounted and gated the same way), kerbs and anything taller than 0.4 m are.
            (3, 0.0, 2 * p.ultrasonic_vertical_half_fov),
            (p.ultrasonic_range_min, p.ultrasonic_range_max, 0.01),
            p.ultrasonic_noise_stddev,
        )

    _wheel(model, p, "left", p.wheel_separation / 2)
    _wheel(model, p, "right", -p.wheel_separation / 2)
    _caster(model, p, "front_caster", p.caster_offset)
    _caster(model, p, "rear_caster", -p.caster_offset)

    drive = sub(
        model, "plugin", filename="gz-sim-diff-drive-system", name="gz::sim::systems::DiffDrive"
    )
    sub(drive, "left_joint", "left_wheel_joint")
    sub(drive, "right_joint", "right_wheel_joint")
    sub(drive, "wheel_separation", p.wheel_separation)
    sub(drive, "wheel_radius", p.wheel_radius)
    sub(drive, "odom_publish_frequency", p.odom_rate)
    sub(drive, "max_linear_acceleration", p.max_linear_acceleration)
    sub(drive, "min_linear_acceleration", p.min_linear_acceleration)
    sub(drive, "max_angular_acceleration", p.max_angular_acceleration)
    sub(drive, "min_angular_acceleration", -p.max_angular_acceleration)
    sub(drive, "max_velocity", p.max_velocity)
    sub(drive, "min_velocity", p.min_velocity)
    sub(drive, "max_linear_velocity", p.max_velocity)
    sub(drive, "min_linear_velocity", p.min_velocity)
    sub(drive, "max_angular_velocity", p.max_angular_velocity)
    sub(drive, "min_angular_velocity", -p.max_angular_velocity)
    sub(drive, "topic", "cmd_vel")
    sub(drive, "odom_topic", "wheel/odom")
    sub(drive, "tf_topic", "wheel/tf")
    sub(drive, "frame_id", "odom")
    sub(drive, "child_frame_id", "base_link")
    states = sub(
        model,
        "plugin",
        filename="gz-sim-joint-state-publisher-system",
        name="gz::sim::systems::JointStatePublisher",
    )
    sub(states, "topic", "joint_states")

    sim = sub(model, "xiaomanlv:sim")
    odometry = sub(sim, "xiaomanlv:odometry")
    sub(odometry, "xiaomanlv:slip_stddev", p.slip_stddev)
    sub(odometry, "xiaomanlv:twist_stddev", p.twist_stddev)
    gnss_sim = sub(sim, "xiaomanlv:gnss")
    sub(gnss_sim, "xiaomanlv:multipath_height", p.multipath_height)
    sub(gnss_sim, "xiaomanlv:multipath_distance", p.multipath_distance)
    sub(gnss_sim, "xiaomanlv:multipath_jump_stddev", p.multipath_jump_stddev)
    sub(gnss_sim, "xiaomanlv:outage_sky_fraction", p.outage_sky_fraction)
    tip = sub(sim, "xiaomanlv:tip")
    sub(tip, "xiaomanlv:max_roll", p.max_roll)
    sub(tip, "xiaomanlv:max_pitch", p.max_pitch)
    sub(tip, "xiaomanlv:max_step", p.max_step)
    sub(tip, "xiaomanlv:max_slope", p.max_slope)

    header = f"""
Xiaomanlv-class campus delivery robot (generated by `python -m xiaomanlv_sim.worldgen`;
edit src/xiaomanlv_sim/worldgen/robot.py, not this file). Numbers and their sources: docs/robot.md.
base_link: origin on the ground under the middle of the wheel axle, x forward, z up.
Body {p.length} x {p.width} x {p.body_height} m; {p.mass_loaded:g} kg with {p.parcels} parcels
({p.mass_empty:g} kg empty). Spawned by launch/gazebo.launch.py (ros_gz_sim create).
"""
    return to_text(root, header)
