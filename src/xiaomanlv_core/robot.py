"""The robot description: body, mass, drive limits and sensor extrinsics from the robot model.

`load_robot` reads ``models/xiaomanlv/model.sdf`` (the file Gazebo runs) into these frozen
dataclasses, so the headless simulator, Gazebo, the map build (sensor extrinsics) and the
runtime stack share one description. Every pose is a 4x4 base_link-from-frame transform
(base_link: centre of the wheel axle on the ground, x forward, z up, REP 103/105). SI units,
radians. The SDF subset is `xiaomanlv_core.sdformat`'s; the simulator's noise parameters ride
along in the ``xiaomanlv:`` namespace of the same file.
"""

from __future__ import annotations

import contextlib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_core.sdformat import (
    Matrix,
    Scope,
    SdfError,
    child_name,
    floats,
    local_name,
    namespace,
    number,
    read_root,
)

MODEL = Path("models") / "xiaomanlv" / "model.sdf"  # relative to the source tree or the share
_SOURCE_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class LidarSpec:
    """A scanning range sensor (SDF gpu_lidar): the 3D lidar and each ultrasonic ranger."""

    name: str
    topic: str
    rate: float  # [Hz]
    pose: NDArray[np.float64] = field(compare=False)  # 4x4 base_link-from-sensor
    horizontal_samples: int
    horizontal_min: float  # [rad]
    horizontal_max: float  # [rad]
    vertical_samples: int
    vertical_min: float  # [rad]
    vertical_max: float  # [rad]
    range_min: float  # [m]
    range_max: float  # [m]
    range_resolution: float  # [m]
    noise_stddev: float  # [m] gaussian range noise
    noise_mean: float = 0.0  # [m]
    frame_id: str = ""  # the sensor's frame name (defaults to `name`)


@dataclass(frozen=True)
class NoiseSpec:
    """Gaussian noise of one axis (SDF <noise type="gaussian">)."""

    mean: float = 0.0
    stddev: float = 0.0
    bias_mean: float = 0.0
    bias_stddev: float = 0.0


@dataclass(frozen=True)
class ImuSpec:
    name: str
    topic: str
    rate: float  # [Hz]
    pose: NDArray[np.float64] = field(compare=False)  # 4x4 base_link-from-sensor
    gyro: tuple[NoiseSpec, NoiseSpec, NoiseSpec] = (NoiseSpec(), NoiseSpec(), NoiseSpec())
    accel: tuple[NoiseSpec, NoiseSpec, NoiseSpec] = (NoiseSpec(), NoiseSpec(), NoiseSpec())
    # gyro in [rad/s], accel in [m/s^2]


@dataclass(frozen=True)
class GnssSpec:
    name: str
    topic: str
    rate: float  # [Hz]
    pose: NDArray[np.float64] = field(compare=False)  # 4x4 base_link-from-antenna
    horizontal_stddev: float  # [m]
    vertical_stddev: float  # [m]
    velocity_stddev: float  # [m/s]
    multipath_height: float  # [m] buildings at least this tall reflect
    multipath_distance: float  # [m] within this range of such a wall
    multipath_jump_stddev: float  # [m]
    outage_sky_fraction: float  # no fix when more of the sky than this is blocked


@dataclass(frozen=True)
class DiffDriveSpec:
    wheel_separation: float  # [m]
    wheel_radius: float  # [m]
    odom_rate: float  # [Hz]
    max_velocity: float  # [m/s]
    min_velocity: float  # [m/s] (negative: reverse)
    max_angular_velocity: float  # [rad/s]
    max_linear_acceleration: float  # [m/s^2]
    min_linear_acceleration: float  # [m/s^2] (negative: braking)
    max_angular_acceleration: float  # [rad/s^2]
    slip_stddev: float  # share of wheel travel, per wheel, white
    twist_stddev: float  # [m/s] on reported speeds
    min_angular_velocity: float = 0.0  # [rad/s] (negative); 0 when the file gives none
    min_angular_acceleration: float = 0.0  # [rad/s^2] (negative); 0 when the file gives none


@dataclass(frozen=True)
class BodySpec:
    mass: float  # [kg] all links: base_link (with a full load of parcels), wheels, casters
    length: float  # [m] collision box of base_link, x
    width: float  # [m] y
    height: float  # [m] z
    box_pose: NDArray[np.float64] = field(compare=False)  # 4x4 base_link-from-box-centre
    max_roll: float = 0.35  # [rad] tipped over beyond this
    max_pitch: float = 0.35  # [rad]
    max_step: float = 0.12  # [m] highest kerb edge a wheel climbs
    max_slope: float = 0.175  # [rad] steepest slope it drives up or down (10 deg)


@dataclass(frozen=True)
class RobotSpec:
    name: str
    source: Path
    body: BodySpec
    drive: DiffDriveSpec
    lidar: LidarSpec
    imu: ImuSpec
    gnss: GnssSpec
    ultrasonic: tuple[LidarSpec, ...]  # in file order; topic "ultrasonic/<where>"

    @property
    def height(self) -> float:
        """[m] the robot's top above the ground (base_link z = 0): the body box's top or the
        highest sensor origin (the lidar on its mast), whichever is higher. What passes over
        the robot (a tree crown, a sign) must clear this."""
        box_top = float(self.body.box_pose[2, 3]) + self.body.height / 2
        poses = [self.lidar.pose, self.imu.pose, self.gnss.pose, *(u.pose for u in self.ultrasonic)]
        return max(box_top, *(float(pose[2, 3]) for pose in poses))


def model_file() -> Path:
    """The robot model: the source checkout's ``models/xiaomanlv/model.sdf`` when this package
    runs from one (edits need no rebuild), else the installed ``share/xiaomanlv`` one.

    Raises:
        FileNotFoundError: neither exists (or the ROS package is not built); says where it looked.
    """
    looked = [_SOURCE_ROOT / MODEL]
    if looked[0].is_file():
        return looked[0]
    try:
        from xiaomanlv_core.paths import PackageNotBuiltError, share_dir

        with contextlib.suppress(PackageNotBuiltError):
            looked.append(share_dir() / MODEL)
    except ImportError:  # ament_index_python is not installed: only the source tree
        pass
    if len(looked) > 1 and looked[1].is_file():
        return looked[1]
    raise FileNotFoundError(f"robot model not found; looked in {', '.join(map(str, looked))}")


# --------------------------------------------------------------------------- the SDF reader


@dataclass
class _RobotReader:
    file: Path
    model: ET.Element
    prefix: str

    def req(self, elem: ET.Element, rel: str, path: str) -> ET.Element:
        """The descendant `rel` (slash-separated local names) of `elem`, or SdfError."""
        node = elem
        for part in rel.split("/"):
            found = _child(node, part)
            if found is None:
                raise SdfError(self.file, f"{path}/{rel}", "missing (required)")
            node = found
        return node

    def num(self, elem: ET.Element, rel: str, path: str, default: float | None = None) -> float:
        node = elem
        for part in rel.split("/"):
            found = _child(node, part)
            if found is None:
                if default is not None:
                    return default
                raise SdfError(self.file, f"{path}/{rel}", "missing (required)")
            node = found
        return number(node.text, self.file, f"{path}/{rel}")


def _child(elem: ET.Element, name: str) -> ET.Element | None:
    """First child with this local name; `xiaomanlv:x` names a child in our namespace."""
    ns = name.startswith("xiaomanlv:")
    local = name.split(":", 1)[-1]
    for child in elem:
        if local_name(child.tag) == local and bool(namespace(child.tag)) == ns:
            return child
    return None


def _noise(reader: _RobotReader, elem: ET.Element | None, path: str) -> NoiseSpec:
    if elem is None:
        return NoiseSpec()
    noise = _child(elem, "noise")
    if noise is None:
        return NoiseSpec()
    kind = noise.get("type") or (noise.findtext("type") or "gaussian").strip()
    if kind not in ("gaussian", "none"):
        raise SdfError(reader.file, f"{path}/noise", f"noise type '{kind}' is not supported")
    p = f"{path}/noise"
    return NoiseSpec(
        mean=reader.num(noise, "mean", p, 0.0),
        stddev=reader.num(noise, "stddev", p, 0.0),
        bias_mean=reader.num(noise, "bias_mean", p, 0.0),
        bias_stddev=reader.num(noise, "bias_stddev", p, 0.0),
    )


def _lidar_spec(reader: _RobotReader, sensor: ET.Element, pose: Matrix, path: str) -> LidarSpec:
    name = sensor.get("name", "")
    body = _child(sensor, "lidar")
    if body is None:
        body = _child(sensor, "ray")
    if body is None:
        raise SdfError(reader.file, f"{path}/lidar", "missing (required)")
    bpath = f"{path}/{local_name(body.tag)}"
    h = reader.req(body, "scan/horizontal", bpath)
    hpath = f"{bpath}/scan/horizontal"
    scan = reader.req(body, "scan", bpath)
    v = _child(scan, "vertical")
    vpath = f"{bpath}/scan/vertical"
    samples_h = int(reader.num(h, "samples", hpath))
    samples_v = int(reader.num(v, "samples", vpath, 1.0)) if v is not None else 1
    if samples_h < 1 or samples_v < 1:
        raise SdfError(reader.file, hpath, "samples must be at least 1")
    noise = _child(body, "noise")
    npath = f"{bpath}/noise"
    if noise is not None:
        kind = (noise.findtext("type") or noise.get("type") or "gaussian").strip()
        if kind not in ("gaussian", "none"):
            raise SdfError(reader.file, npath, f"noise type '{kind}' is not supported")
    range_min = reader.num(body, "range/min", bpath)
    range_max = reader.num(body, "range/max", bpath)
    if not 0 <= range_min < range_max:
        raise SdfError(reader.file, f"{bpath}/range", f"need 0 <= min < max, got {range_min}, "
                       f"{range_max}")  # fmt: skip
    topic = (sensor.findtext("topic") or name).strip().lstrip("/")
    return LidarSpec(
        name=name,
        topic=topic,
        rate=reader.num(sensor, "update_rate", path),
        pose=pose,
        horizontal_samples=samples_h,
        horizontal_min=reader.num(h, "min_angle", hpath, 0.0),
        horizontal_max=reader.num(h, "max_angle", hpath, 0.0),
        vertical_samples=samples_v,
        vertical_min=reader.num(v, "min_angle", vpath, 0.0) if v is not None else 0.0,
        vertical_max=reader.num(v, "max_angle", vpath, 0.0) if v is not None else 0.0,
        range_min=range_min,
        range_max=range_max,
        range_resolution=reader.num(body, "range/resolution", bpath, 0.0),
        noise_stddev=reader.num(noise, "stddev", npath, 0.0) if noise is not None else 0.0,
        noise_mean=reader.num(noise, "mean", npath, 0.0) if noise is not None else 0.0,
        frame_id=(sensor.findtext("gz_frame_id") or name).strip(),
    )


def load_robot(path: Path | str) -> RobotSpec:
    """Read the robot model (models/xiaomanlv/model.sdf) into a `RobotSpec`.

    Sensor, body and wheel poses are composed to base_link (4x4 base_link-from-frame).
    Raises SdfError naming the file and element for a missing or malformed required element.
    """
    file = Path(path)
    root = read_root(file)
    models = [c for c in root if local_name(c.tag) == "model"]
    if len(models) != 1:
        raise SdfError(file, "sdf", f"expected exactly one <model>, found {len(models)}")
    model = models[0]
    mname = model.get("name", "")
    mpath = f"model[{mname}]"
    reader = _RobotReader(file, model, mpath)
    scope = Scope(file, np.eye(4), mname)
    links = {}
    for child in model:
        tag = local_name(child.tag)
        if tag in ("link", "frame") and not namespace(child.tag):
            name = child_name(child, tag, file, mpath)
            scope.add(name, child, f"{mpath}/{tag}[{name}]")
            if tag == "link":
                links[name] = child
    if "base_link" not in links:
        raise SdfError(file, f"{mpath}/link[base_link]", "missing (required)")
    base_inv = np.linalg.inv(scope.resolve("base_link"))

    def to_base(world_from_x: Matrix) -> Matrix:
        return base_inv @ world_from_x

    # Body: the first box collision of base_link; mass of all links.
    base = links["base_link"]
    bpath = f"{mpath}/link[base_link]"
    box_elem = None
    for col in base.findall("collision"):
        if col.find("geometry/box") is not None:
            box_elem = col
            break
    if box_elem is None:
        raise SdfError(file, f"{bpath}/collision/geometry/box", "missing (required: body box)")
    cpath = f"{bpath}/collision[{box_elem.get('name', '')}]"
    size = floats(box_elem.findtext("geometry/box/size"), 3, file, f"{cpath}/geometry/box/size")
    box_pose = to_base(scope.pose_of(box_elem, scope.resolve("base_link"), cpath))
    mass = 0.0
    for lname, link in links.items():
        if link.find("inertial/mass") is not None:
            mass += reader.num(link, "inertial/mass", f"{mpath}/link[{lname}]")
    if mass <= 0:
        raise SdfError(file, f"{bpath}/inertial/mass", "missing or not positive")
    sim = reader.req(model, "xiaomanlv:sim", mpath)
    spath = f"{mpath}/xiaomanlv:sim"
    tip = reader.req(sim, "xiaomanlv:tip", spath)
    tpath = f"{spath}/xiaomanlv:tip"
    body = BodySpec(
        mass=mass,
        length=size[0],
        width=size[1],
        height=size[2],
        box_pose=box_pose,
        max_roll=reader.num(tip, "xiaomanlv:max_roll", tpath),
        max_pitch=reader.num(tip, "xiaomanlv:max_pitch", tpath),
        max_step=reader.num(tip, "xiaomanlv:max_step", tpath),
        max_slope=reader.num(tip, "xiaomanlv:max_slope", tpath),
    )

    # Drive: the DiffDrive plugin.
    plugin = None
    for p in model.findall("plugin"):
        if "diff-drive" in p.get("filename", "") or p.get("name", "").endswith("DiffDrive"):
            plugin = p
    if plugin is None:
        raise SdfError(file, f"{mpath}/plugin[gz::sim::systems::DiffDrive]", "missing (required)")
    ppath = f"{mpath}/plugin[{plugin.get('name', '')}]"
    odo = reader.req(sim, "xiaomanlv:odometry", spath)
    opath = f"{spath}/xiaomanlv:odometry"
    max_w = reader.num(plugin, "max_angular_velocity", ppath)
    max_aa = reader.num(plugin, "max_angular_acceleration", ppath)
    drive = DiffDriveSpec(
        wheel_separation=reader.num(plugin, "wheel_separation", ppath),
        wheel_radius=reader.num(plugin, "wheel_radius", ppath),
        odom_rate=reader.num(plugin, "odom_publish_frequency", ppath),
        max_velocity=reader.num(plugin, "max_velocity", ppath),
        min_velocity=reader.num(plugin, "min_velocity", ppath),
        max_angular_velocity=max_w,
        max_linear_acceleration=reader.num(plugin, "max_linear_acceleration", ppath),
        min_linear_acceleration=reader.num(plugin, "min_linear_acceleration", ppath),
        max_angular_acceleration=max_aa,
        slip_stddev=reader.num(odo, "xiaomanlv:slip_stddev", opath),
        twist_stddev=reader.num(odo, "xiaomanlv:twist_stddev", opath),
        min_angular_velocity=reader.num(plugin, "min_angular_velocity", ppath, -max_w),
        min_angular_acceleration=reader.num(plugin, "min_angular_acceleration", ppath, -max_aa),
    )

    # Sensors, each posed relative to its link.
    lidar: LidarSpec | None = None
    imu: ImuSpec | None = None
    gnss: GnssSpec | None = None
    ultrasonic: list[LidarSpec] = []
    for lname, link in links.items():
        lpath = f"{mpath}/link[{lname}]"
        link_frame = scope.resolve(lname)
        for sensor in link.findall("sensor"):
            sname = sensor.get("name", "")
            kind = sensor.get("type", "")
            sp = f"{lpath}/sensor[{sname}]"
            pose = to_base(scope.pose_of(sensor, link_frame, sp))
            topic = (sensor.findtext("topic") or sname).strip().lstrip("/")
            if kind in ("gpu_lidar", "lidar", "gpu_ray", "ray"):
                spec = _lidar_spec(reader, sensor, pose, sp)
                if sname.startswith("ultrasonic"):
                    ultrasonic.append(spec)
                elif lidar is None:
                    lidar = spec
            elif kind == "imu" and imu is None:
                ip = f"{sp}/imu"
                body_imu = reader.req(sensor, "imu", sp)

                def axes(
                    group: str, ip: str = ip, body_imu: ET.Element = body_imu
                ) -> tuple[NoiseSpec, NoiseSpec, NoiseSpec]:
                    g = _child(body_imu, group)
                    gp = f"{ip}/{group}"
                    if g is None:
                        raise SdfError(file, gp, "missing (required)")
                    x, y, z = (_noise(reader, _child(g, a), f"{gp}/{a}") for a in "xyz")
                    return (x, y, z)

                imu = ImuSpec(
                    name=sname,
                    topic=topic,
                    rate=reader.num(sensor, "update_rate", sp),
                    pose=pose,
                    gyro=axes("angular_velocity"),
                    accel=axes("linear_acceleration"),
                )
            elif kind == "navsat" and gnss is None:
                nav = reader.req(sensor, "navsat", sp)
                np_ = f"{sp}/navsat"
                gx = reader.req(sim, "xiaomanlv:gnss", spath)
                gxp = f"{spath}/xiaomanlv:gnss"
                vel = _child(nav, "velocity_sensing")
                vel_h = _child(vel, "horizontal") if vel is not None else None
                gnss = GnssSpec(
                    name=sname,
                    topic=topic,
                    rate=reader.num(sensor, "update_rate", sp),
                    pose=pose,
                    horizontal_stddev=reader.num(
                        nav, "position_sensing/horizontal/noise/stddev", np_
                    ),
                    vertical_stddev=reader.num(nav, "position_sensing/vertical/noise/stddev", np_),
                    velocity_stddev=_noise(
                        reader, vel_h, f"{np_}/velocity_sensing/horizontal"
                    ).stddev,
                    multipath_height=reader.num(gx, "xiaomanlv:multipath_height", gxp),
                    multipath_distance=reader.num(gx, "xiaomanlv:multipath_distance", gxp),
                    multipath_jump_stddev=reader.num(gx, "xiaomanlv:multipath_jump_stddev", gxp),
                    outage_sky_fraction=reader.num(gx, "xiaomanlv:outage_sky_fraction", gxp),
                )
    for what, value in (("lidar", lidar), ("imu", imu), ("navsat", gnss)):
        if value is None:
            raise SdfError(file, f"{mpath}/link/sensor[type={what}]", "missing (required)")
    assert lidar is not None and imu is not None and gnss is not None
    return RobotSpec(
        name=mname,
        source=file,
        body=body,
        drive=drive,
        lidar=lidar,
        imu=imu,
        gnss=gnss,
        ultrasonic=tuple(ultrasonic),
    )
