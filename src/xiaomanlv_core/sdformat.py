"""SDFormat primitives shared by the robot-model and world loaders.

The subset of the SDFormat specification (http://sdformat.org/spec?ver=1.9) both loaders need:
the root element and its version (1.9 or newer), numbers and booleans, ``<pose>`` in both
rotation formats, and the frame graph of one model or world (``<pose relative_to=...>``, pose
frame semantics: http://sdformat.org/tutorials?tut=pose_frame_semantics). Rotations follow SDF's
fixed-axis roll-pitch-yaw, ``R = Rz(yaw) Ry(pitch) Rx(roll)`` (scipy ``"xyz"``, as
`xiaomanlv_core.geometry`). XML is parsed with the standard library's ElementTree; every error
is an :class:`SdfError` naming the file and the element path inside it.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

MIN_VERSION = (1, 9)

Matrix = NDArray[np.float64]


class SdfError(ValueError):
    """An SDF file is malformed or uses something this loader does not support.

    The message names the file, the element path inside it and what is wrong.
    """

    def __init__(self, file: Path | str, element: str, problem: str) -> None:
        self.file = Path(file)
        self.element = element
        self.problem = problem
        where = f"{file}: {element}: " if element else f"{file}: "
        super().__init__(where + problem)


def local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def namespace(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def floats(text: str | None, count: int, file: Path, path: str) -> list[float]:
    parts = (text or "").split()
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise SdfError(file, path, f"expected {count} numbers, got '{text}'") from None
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise SdfError(file, path, f"expected {count} finite numbers, got '{(text or '').strip()}'")
    return values


def number(text: str | None, file: Path, path: str) -> float:
    return floats(text, 1, file, path)[0]


def boolean(text: str | None, file: Path, path: str) -> bool:
    value = (text or "").strip().lower()
    if value in ("1", "true"):
        return True
    if value in ("0", "false"):
        return False
    raise SdfError(file, path, f"expected true/false, got '{text}'")


def _transform(rotation: Rotation, xyz: Sequence[float]) -> Matrix:
    out = np.eye(4)
    out[:3, :3] = rotation.as_matrix()
    out[:3, 3] = xyz
    return out


def parse_pose(elem: ET.Element, file: Path, path: str) -> Matrix:
    """A `<pose>` element as a 4x4 parent-from-child transform (translation in metres).

    Supports `rotation_format="euler_rpy"` (default; `degrees="true"` allowed) and
    `"quat_xyzw"`. Raises SdfError naming the element on a malformed value.
    """
    fmt = elem.get("rotation_format", "euler_rpy")
    degrees = boolean(elem.get("degrees", "false"), file, path + "@degrees")
    if fmt == "euler_rpy":
        v = floats(elem.text, 6, file, path) if (elem.text or "").strip() else [0.0] * 6
        return _transform(Rotation.from_euler("xyz", v[3:], degrees=degrees), v[:3])
    if fmt == "quat_xyzw":
        v = floats(elem.text, 7, file, path)
        if np.linalg.norm(v[3:]) < 1e-9:
            raise SdfError(file, path, "quaternion has zero length")
        return _transform(Rotation.from_quat(v[3:]), v[:3])
    raise SdfError(file, path + "@rotation_format", f"unsupported rotation_format '{fmt}'")


def read_root(path: Path) -> ET.Element:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise SdfError(path, "", f"not well-formed XML: {exc}") from None
    except OSError as exc:
        raise SdfError(path, "", f"cannot read file: {exc.strerror}") from None
    if local_name(root.tag) != "sdf":
        raise SdfError(path, local_name(root.tag), "root element must be <sdf>")
    version = root.get("version")
    if version is None:
        raise SdfError(path, "sdf@version", "missing version attribute")
    try:
        parsed = tuple(int(p) for p in version.split("."))
    except ValueError:
        raise SdfError(path, "sdf@version", f"malformed version '{version}'") from None
    if parsed < MIN_VERSION:
        raise SdfError(
            path,
            "sdf@version",
            f"SDF version {version} is older than 1.9, the oldest this loader reads "
            "(convert it with `gz sdf -p`)",
        )
    return root


@dataclass
class Frame:
    """A named frame in one scope: its raw pose and what it is relative to."""

    pose: Matrix
    relative_to: str  # "" for the scope's default frame
    path: str
    resolved: Matrix | None = None


@dataclass
class Scope:
    """The frames visible inside one model (or the world): SDF's frame graph, simplified.

    `relative_to` may name a frame of this scope (link, nested model, include, frame), the
    scope's own model (`__model__` or its name), an enclosing model, or `world`.
    """

    file: Path
    frame: Matrix  # world-from-scope
    name: str
    parent: Scope | None = None
    frames: dict[str, Frame] = field(default_factory=dict)
    _resolving: set[str] = field(default_factory=set)

    def add(self, name: str, elem: ET.Element, path: str) -> None:
        pose_elem = elem.find("pose")
        if pose_elem is None:
            pose, rel = np.eye(4), ""
        else:
            pose = parse_pose(pose_elem, self.file, path + "/pose")
            rel = pose_elem.get("relative_to", "")
        if name in self.frames:
            raise SdfError(self.file, path, f"name '{name}' is used twice in the same scope")
        self.frames[name] = Frame(pose, rel, path)

    def lookup(self, name: str, path: str) -> Matrix:
        """World-from-frame of `name`, searched in this scope and then the enclosing ones."""
        scope: Scope | None = self
        while scope is not None:
            if name in ("__model__", "") and scope is self:
                return scope.frame
            if name == scope.name:
                return scope.frame
            if name in scope.frames:
                return scope.resolve(name)
            if name == "world" and scope.parent is None:
                return scope.frame
            scope = scope.parent
        if "::" in name:
            raise SdfError(
                self.file, path, f"relative_to '{name}': scoped (::) frame names are not supported"
            )
        raise SdfError(
            self.file,
            path,
            f"relative_to '{name}' names no frame of this model or an enclosing one",
        )

    def resolve(self, name: str) -> Matrix:
        frame = self.frames[name]
        if frame.resolved is not None:
            return frame.resolved
        if name in self._resolving:
            raise SdfError(self.file, frame.path + "/pose", "relative_to forms a cycle")
        self._resolving.add(name)
        base = self.frame if frame.relative_to == "" else self.lookup(frame.relative_to, frame.path)
        self._resolving.discard(name)
        frame.resolved = base @ frame.pose
        return frame.resolved

    def pose_of(self, elem: ET.Element, default: Matrix, path: str) -> Matrix:
        """World pose of an element that is not itself a named frame of this scope."""
        pose_elem = elem.find("pose")
        if pose_elem is None:
            return default
        pose = parse_pose(pose_elem, self.file, path + "/pose")
        rel = pose_elem.get("relative_to", "")
        base = default if rel == "" else self.lookup(rel, path + "/pose")
        return base @ pose


def child_name(elem: ET.Element, tag: str, file: Path, path: str) -> str:
    if tag == "include":
        name_elem = elem.find("name")
        if name_elem is not None and (name_elem.text or "").strip():
            return (name_elem.text or "").strip()
        uri = (elem.findtext("uri") or "").strip().rstrip("/")
        return uri.rsplit("/", 1)[-1] if uri else ""
    name = elem.get("name")
    if not name:
        raise SdfError(file, f"{path}/{tag}", f"<{tag}> has no name attribute")
    return name
