"""The robot model as URDF (urdf/xiaomanlv.urdf), converted from the generated SDF.

robot_state_publisher and RViz read URDF, not SDF. This converts the SDF that
:func:`~xiaomanlv_sim.worldgen.robot.robot_sdf` writes (models/xiaomanlv/model.sdf), so the
URDF can never say something else than the model Gazebo and the headless simulator run:

- every SDF link becomes a link with its visuals and collisions (box, cylinder, sphere; the
  diffuse colour as the material), posed by a joint from its parent at the pose between the two
  links; revolute joints without finite limits become ``continuous`` (the wheels, driven by
  /joint_states), ball joints ``fixed`` (URDF has none; the casters are spheres, which look the
  same at any angle);
- every sensor becomes a link named by its frame (``gz_frame_id``, else its name; what its
  messages carry in ``header.frame_id``) on a ``fixed`` joint ``<frame>_joint`` from the link it
  sits on, at its SDF pose.

No inertials: Gazebo simulates the SDF; the URDF is the kinematic tree and the looks (KDL would
also warn about a root link with an inertia). Angles are URDF's ``rpy`` (fixed axes x, y, z,
the SDF pose convention), numbers written as the SDF writer writes them (six decimals).
Reference: the URDF XML specification, wiki.ros.org/urdf/XML (robot, link, joint).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_core.geometry import matrix_rpy, pose_matrix
from xiaomanlv_core.sdformat import floats, number
from xiaomanlv_sim.worldgen.robot import robot_sdf
from xiaomanlv_sim.worldgen.sdfxml import num, nums, sub, to_text

URDF_FILE = "urdf/xiaomanlv.urdf"  # relative to the repository root and share/xiaomanlv
_UNBOUNDED = 1e15  # [rad] a revolute joint limit at least this large is no limit
_SOURCE = Path("models/xiaomanlv/model.sdf")  # named in errors


def _pose(elem: ET.Element, path: str) -> NDArray[np.float64]:
    text = elem.findtext("pose")
    if text is None:
        return np.eye(4)
    return pose_matrix(*floats(text, 6, _SOURCE, f"{path}/pose"))


def _origin(parent: ET.Element, pose: NDArray[np.float64]) -> None:
    sub(parent, "origin", xyz=nums(pose[:3, 3]), rpy=nums(matrix_rpy(pose)))


def _geometry(out: ET.Element, shape: ET.Element, path: str) -> None:
    geometry = sub(out, "geometry")
    box, cylinder, sphere = (shape.find(f"geometry/{k}") for k in ("box", "cylinder", "sphere"))
    if box is not None:
        sub(geometry, "box", size=nums(floats(box.findtext("size"), 3, _SOURCE, f"{path}/box")))
    elif cylinder is not None:
        radius = number(cylinder.findtext("radius"), _SOURCE, f"{path}/cylinder/radius")
        length = number(cylinder.findtext("length"), _SOURCE, f"{path}/cylinder/length")
        sub(geometry, "cylinder", radius=num(radius), length=num(length))
    elif sphere is not None:
        radius = number(sphere.findtext("radius"), _SOURCE, f"{path}/sphere/radius")
        sub(geometry, "sphere", radius=num(radius))
    else:
        raise ValueError(f"{_SOURCE}: {path}: no box, cylinder or sphere geometry to convert")


def _link(robot: ET.Element, link: ET.Element) -> None:
    name = link.get("name", "")
    out = sub(robot, "link", name=name)
    for tag in ("visual", "collision"):
        for shape in link.findall(tag):
            sname = shape.get("name", "")
            path = f"link[{name}]/{tag}[{sname}]"
            element = sub(out, tag, name=sname)
            _origin(element, _pose(shape, path))
            _geometry(element, shape, path)
            diffuse = shape.findtext("material/diffuse")
            if tag == "visual" and diffuse is not None:
                rgba = floats(diffuse, 4, _SOURCE, f"{path}/material/diffuse")
                sub(sub(element, "material", name=sname), "color", rgba=nums(rgba))


def robot_urdf(sdf_text: str | None = None) -> str:
    """The URDF text of the robot model (``sdf_text``: model.sdf's text; the generator's own
    by default).

    Raises:
        ValueError: an SDF element this subset does not convert (a joint type or geometry
            other than those in the module docstring), naming it.
    """
    model = ET.fromstring(sdf_text if sdf_text is not None else robot_sdf()).find("model")
    if model is None:
        raise ValueError(f"{_SOURCE}: no <model>")
    name = model.get("name", "")
    robot = ET.Element("robot", name=name)
    links = {link.get("name", ""): link for link in model.findall("link")}
    posed = {n: _pose(link, f"link[{n}]") for n, link in links.items()}  # model <- link
    for lname, link in links.items():
        _link(robot, link)
        for sensor in link.findall("sensor"):
            sname = sensor.get("name", "")
            frame = (sensor.findtext("gz_frame_id") or sname).strip()
            sub(robot, "link", name=frame)
            joint = sub(robot, "joint", name=f"{frame}_joint", type="fixed")
            sub(joint, "parent", link=lname)
            sub(joint, "child", link=frame)
            _origin(joint, _pose(sensor, f"link[{lname}]/sensor[{sname}]"))
    for joint in model.findall("joint"):
        jname, kind = joint.get("name", ""), joint.get("type", "")
        parent, child = joint.findtext("parent", ""), joint.findtext("child", "")
        if parent not in links or child not in links:
            raise ValueError(f"{_SOURCE}: joint[{jname}] joins '{parent}' and '{child}', not links")
        limit = (joint.findtext("axis/limit/lower"), joint.findtext("axis/limit/upper"))
        if kind == "revolute" and all(v is not None and abs(float(v)) >= _UNBOUNDED for v in limit):
            urdf_kind = "continuous"
        elif kind == "ball":
            urdf_kind = "fixed"
        else:
            raise ValueError(f"{_SOURCE}: joint[{jname}] of type '{kind}' is not converted")
        out = sub(robot, "joint", name=jname, type=urdf_kind)
        sub(out, "parent", link=parent)
        sub(out, "child", link=child)
        _origin(out, np.linalg.inv(posed[parent]) @ posed[child])
        if urdf_kind == "continuous":
            axis = floats(joint.findtext("axis/xyz"), 3, _SOURCE, f"joint[{jname}]/axis/xyz")
            sub(out, "axis", xyz=nums(axis))
    header = f"""
The {name} robot as URDF for robot_state_publisher and RViz (generated by
`python -m xiaomanlv_sim.worldgen` from models/xiaomanlv/model.sdf; edit
src/xiaomanlv_sim/worldgen/robot.py, not this file). Frames: docs/frames.md.
base_link: origin on the ground under the middle of the wheel axle, x forward, z up.
Kinematics and looks only: Gazebo simulates the SDF model (masses, sensors, drive).
"""
    return to_text(robot, header)
