"""Read SDF 1.9+ worlds and the robot model into the simulator's own data model.

`load_world` walks the static models of an SDF world (nested models, links, `<include>` of
`model://` URIs, `<frame>`s and `<pose relative_to=...>`) and returns every collision geometry as
a `world.Shape` placed in the world frame. `load_robot` reads models/xiaomanlv/model.sdf into a
`robot.RobotSpec` (sensor poses composed to base_link). The format follows the SDFormat
specification (http://sdformat.org/spec?ver=1.9, pose frame semantics:
http://sdformat.org/tutorials?tut=pose_frame_semantics); only the subset our campus worlds use is
accepted, and anything else raises `SdfError` naming the file and the element path, e.g.
``world/model[library]/link[walls]/collision[n]/geometry/heightmap``.

XML is parsed with the standard library's ElementTree; rotations use scipy's fixed-axis
roll-pitch-yaw (SDF's convention: R = Rz(yaw) Ry(pitch) Rx(roll)).
"""

from __future__ import annotations

import contextlib
import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.spatial.transform import Rotation

from xiaomanlv_core.geodesy import Datum
from xiaomanlv_sim import assets
from xiaomanlv_sim.robot import (
    BodySpec,
    DiffDriveSpec,
    GnssSpec,
    ImuSpec,
    LidarSpec,
    NoiseSpec,
    RobotSpec,
)
from xiaomanlv_sim.world import (
    Box,
    Cylinder,
    Geometry,
    Mesh,
    Plane,
    Shape,
    Sphere,
    World,
)

XIAOMANLV_NS = "https://github.com/xiaomanlv/sdf"
MIN_VERSION = (1, 9)
MESH_SUFFIXES = (".obj", ".stl")

# World children that do not affect static geometry; they are skipped without a word.
_IGNORED_WORLD = frozenset(
    {
        "light", "physics", "plugin", "scene", "gui", "atmosphere", "gravity", "magnetic_field",
        "wind", "audio", "state", "spherical_coordinates",
    }
)  # fmt: skip
# Model children that do not affect static collision geometry.
_IGNORED_MODEL = frozenset(
    {
        "static", "pose", "joint", "plugin", "self_collide", "allow_auto_disable",
        "enable_wind", "gripper", "frame",
    }
)  # fmt: skip
_IGNORED_LINK = frozenset(
    {
        "pose", "inertial", "visual", "sensor", "gravity", "enable_wind", "self_collide",
        "kinematic", "must_be_base_link", "velocity_decay", "projector", "audio_sink",
        "audio_source", "battery", "light", "particle_emitter", "frame",
    }
)  # fmt: skip
_IGNORED_COLLISION = frozenset({"pose", "surface", "laser_retro", "max_contacts"})

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


# --------------------------------------------------------------------------- small parsers


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _floats(text: str | None, count: int, file: Path, path: str) -> list[float]:
    parts = (text or "").split()
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise SdfError(file, path, f"expected {count} numbers, got '{text}'") from None
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise SdfError(file, path, f"expected {count} finite numbers, got '{(text or '').strip()}'")
    return values


def _float(text: str | None, file: Path, path: str) -> float:
    return _floats(text, 1, file, path)[0]


def _bool(text: str | None, file: Path, path: str) -> bool:
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
    degrees = _bool(elem.get("degrees", "false"), file, path + "@degrees")
    if fmt == "euler_rpy":
        v = _floats(elem.text, 6, file, path) if (elem.text or "").strip() else [0.0] * 6
        return _transform(Rotation.from_euler("xyz", v[3:], degrees=degrees), v[:3])
    if fmt == "quat_xyzw":
        v = _floats(elem.text, 7, file, path)
        if np.linalg.norm(v[3:]) < 1e-9:
            raise SdfError(file, path, "quaternion has zero length")
        return _transform(Rotation.from_quat(v[3:]), v[:3])
    raise SdfError(file, path + "@rotation_format", f"unsupported rotation_format '{fmt}'")


def _read_root(path: Path) -> ET.Element:
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as exc:
        raise SdfError(path, "", f"not well-formed XML: {exc}") from None
    except OSError as exc:
        raise SdfError(path, "", f"cannot read file: {exc.strerror}") from None
    if _local(root.tag) != "sdf":
        raise SdfError(path, _local(root.tag), "root element must be <sdf>")
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


def _category(elem: ET.Element) -> str | None:
    for child in elem:
        if _local(child.tag) == "category" and _ns(child.tag):
            return (child.text or "").strip()
    return None


# --------------------------------------------------------------------------- frames


@dataclass
class _Frame:
    """A named frame in one scope: its raw pose and what it is relative to."""

    pose: Matrix
    relative_to: str  # "" for the scope's default frame
    path: str
    resolved: Matrix | None = None


@dataclass
class _Scope:
    """The frames visible inside one model (or the world): SDF's frame graph, simplified.

    `relative_to` may name a frame of this scope (link, nested model, include, frame), the
    scope's own model (`__model__` or its name), an enclosing model, or `world`.
    """

    file: Path
    frame: Matrix  # world-from-scope
    name: str
    parent: _Scope | None = None
    frames: dict[str, _Frame] = field(default_factory=dict)
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
        self.frames[name] = _Frame(pose, rel, path)

    def lookup(self, name: str, path: str) -> Matrix:
        """World-from-frame of `name`, searched in this scope and then the enclosing ones."""
        scope: _Scope | None = self
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


# --------------------------------------------------------------------------- world loader


@dataclass
class _Loader:
    model_path: tuple[Path, ...]
    shapes: list[Shape] = field(default_factory=list)
    include_stack: tuple[Path, ...] = ()

    def model_dirs(self) -> list[Path]:
        dirs = list(self.model_path)
        with contextlib.suppress(FileNotFoundError):
            dirs.append(assets.models_dir())
        for entry in os.environ.get("GZ_SIM_RESOURCE_PATH", "").split(os.pathsep):
            if entry:
                dirs.append(Path(entry))
        return dirs

    def resolve_uri(self, uri: str, base_dir: Path, file: Path, path: str) -> Path:
        """A `model://name/rest`, `file://` or relative URI as an existing path."""
        uri = uri.strip()
        if uri.startswith("model://"):
            rest = uri[len("model://") :]
            name, _, tail = rest.partition("/")
            dirs = self.model_dirs()
            for d in dirs:
                candidate = d / name / tail if tail else d / name
                if candidate.exists():
                    return candidate
            looked = ", ".join(str(d) for d in dirs) or "(no model path)"
            raise SdfError(file, path, f"cannot resolve '{uri}': model '{name}' not in {looked}")
        if uri.startswith("file://"):
            candidate = Path(uri[len("file://") :])
        elif "://" in uri:
            raise SdfError(file, path, f"unsupported URI scheme in '{uri}' (model://, file://)")
        else:
            candidate = Path(uri) if Path(uri).is_absolute() else base_dir / uri
        if not candidate.exists():
            raise SdfError(file, path, f"'{uri}' resolves to {candidate}, which does not exist")
        return candidate

    # -- models ---------------------------------------------------------------------------

    def model(
        self,
        elem: ET.Element,
        scope: _Scope,
        world_from_model: Matrix,
        scoped_name: str,
        top: str,
        category: str,
        path: str,
        static: bool,
    ) -> None:
        file = scope.file
        static_elem = elem.find("static")
        if static_elem is not None:
            static = static or _bool(static_elem.text, file, path + "/static")
        if not static:
            raise SdfError(
                file, path, "model is not static; the simulator only loads static world models"
            )
        own = _category(elem)
        category = own if own is not None else category
        name = elem.get("name", "")
        inner = _Scope(file, world_from_model, name, parent=scope)
        named = {"link", "model", "frame", "include"}
        for child in elem:
            tag = _local(child.tag)
            if tag in named:
                cname = _child_name(child, tag, file, path)
                inner.add(cname, child, f"{path}/{tag}[{cname}]")
        for child in elem:
            tag = _local(child.tag)
            if _ns(child.tag) or tag in _IGNORED_MODEL:
                continue
            if tag not in named:
                raise SdfError(file, f"{path}/{tag}", f"<{tag}> is not supported in a model")
            cname = _child_name(child, tag, file, path)
            cpath = f"{path}/{tag}[{cname}]"
            frame = inner.resolve(cname)
            if tag == "link":
                self.link(child, inner, frame, f"{scoped_name}::{cname}", top, category, cpath)
            elif tag == "model":
                self.model(
                    child, inner, frame, f"{scoped_name}::{cname}", top, category, cpath, static
                )
            elif tag == "include":
                self.include(child, inner, frame, f"{scoped_name}::{cname}", top, category, cpath)

    def link(
        self,
        elem: ET.Element,
        scope: _Scope,
        world_from_link: Matrix,
        scoped_name: str,
        top: str,
        category: str,
        path: str,
    ) -> None:
        file = scope.file
        for child in elem:
            tag = _local(child.tag)
            if _ns(child.tag) or tag in _IGNORED_LINK:
                continue
            if tag != "collision":
                raise SdfError(file, f"{path}/{tag}", f"<{tag}> is not supported in a link")
            cname = _child_name(child, tag, file, path)
            cpath = f"{path}/collision[{cname}]"
            for sub in child:
                stag = _local(sub.tag)
                if not _ns(sub.tag) and stag not in _IGNORED_COLLISION and stag != "geometry":
                    raise SdfError(file, f"{cpath}/{stag}", f"<{stag}> is not supported")
            pose = scope.pose_of(child, world_from_link, cpath)
            geom_elem = child.find("geometry")
            if geom_elem is None:
                raise SdfError(file, cpath, "collision has no <geometry>")
            geometry = self.geometry(geom_elem, file, cpath + "/geometry")
            self.shapes.append(
                Shape(
                    name=f"{scoped_name}::{cname}",
                    geometry=geometry,
                    pose=pose,
                    model=top,
                    category=category,
                )
            )

    def geometry(self, elem: ET.Element, file: Path, path: str) -> Geometry:
        children = [c for c in elem if not _ns(c.tag)]
        if len(children) != 1:
            raise SdfError(file, path, f"expected exactly one geometry, found {len(children)}")
        g = children[0]
        tag = _local(g.tag)
        gpath = f"{path}/{tag}"

        def req(name: str) -> ET.Element:
            sub = g.find(name)
            if sub is None:
                raise SdfError(file, f"{gpath}/{name}", "missing")
            return sub

        def positive(values: list[float], name: str) -> list[float]:
            if any(v <= 0 for v in values):
                raise SdfError(file, f"{gpath}/{name}", f"must be positive, got {values}")
            return values

        if tag == "box":
            x, y, z = positive(_floats(req("size").text, 3, file, gpath + "/size"), "size")
            return Box(size=(x, y, z))
        if tag == "cylinder":
            r = positive([_float(req("radius").text, file, gpath + "/radius")], "radius")[0]
            h = positive([_float(req("length").text, file, gpath + "/length")], "length")[0]
            return Cylinder(radius=r, length=h)
        if tag == "sphere":
            r = positive([_float(req("radius").text, file, gpath + "/radius")], "radius")[0]
            return Sphere(radius=r)
        if tag == "plane":
            n_elem = g.find("normal")
            normal = [0.0, 0.0, 1.0]
            if n_elem is not None:
                normal = _floats(n_elem.text, 3, file, gpath + "/normal")
            norm = float(np.linalg.norm(normal))
            if norm < 1e-9:
                raise SdfError(file, gpath + "/normal", "normal has zero length")
            s_elem = g.find("size")
            size = [1000.0, 1000.0]  # SDF's default plane size
            if s_elem is not None:
                size = positive(_floats(s_elem.text, 2, file, gpath + "/size"), "size")
            nx, ny, nz = (v / norm for v in normal)
            return Plane(normal=(nx, ny, nz), size=(size[0], size[1]))
        if tag == "mesh":
            if g.find("submesh") is not None:
                raise SdfError(file, gpath + "/submesh", "submeshes are not supported")
            uri = req("uri").text or ""
            mesh_path = self.resolve_uri(uri, file.parent, file, gpath + "/uri")
            if mesh_path.suffix.lower() not in MESH_SUFFIXES:
                raise SdfError(
                    file, gpath + "/uri", f"mesh '{uri}' is not OBJ or STL (only those load)"
                )
            scale = (1.0, 1.0, 1.0)
            s_elem = g.find("scale")
            if s_elem is not None:
                sx, sy, sz = positive(_floats(s_elem.text, 3, file, gpath + "/scale"), "scale")
                scale = (sx, sy, sz)
            return Mesh(path=mesh_path, scale=scale)
        raise SdfError(file, gpath, f"geometry <{tag}> is not supported (box, cylinder, sphere, "
                       "plane, mesh)")  # fmt: skip

    def include(
        self,
        elem: ET.Element,
        scope: _Scope,
        world_from_include: Matrix,
        scoped_name: str,
        top: str,
        category: str,
        path: str,
    ) -> None:
        """Place the model an `<include>` names; its `<pose>`/`<name>`/`<static>` override."""
        file = scope.file
        uri_elem = elem.find("uri")
        if uri_elem is None or not (uri_elem.text or "").strip():
            raise SdfError(file, path + "/uri", "include has no <uri>")
        target = self.resolve_uri(uri_elem.text or "", file.parent, file, path + "/uri")
        sdf_file = _model_sdf_file(target, file, path + "/uri")
        if sdf_file in self.include_stack:
            raise SdfError(file, path, f"include cycle through {sdf_file}")
        root = _read_root(sdf_file)
        models = [c for c in root if _local(c.tag) == "model"]
        if len(models) != 1:
            raise SdfError(sdf_file, "sdf", f"expected one <model>, found {len(models)}")
        model = models[0]
        static = False
        static_elem = elem.find("static")
        if static_elem is not None:
            static = _bool(static_elem.text, file, path + "/static")
        own = _category(elem)
        category = own if own is not None else category
        # The included model's own <pose> applies only when the include gives none.
        if elem.find("pose") is None and model.find("pose") is not None:
            own_pose = parse_pose(model.find("pose"), sdf_file, "model/pose")  # type: ignore[arg-type]
            world_from_include = world_from_include @ own_pose
        sub = _Loader(self.model_path, self.shapes, (*self.include_stack, sdf_file))
        inner_parent = _Scope(sdf_file, world_from_include, scope.name, parent=scope)
        mname = model.get("name", "")
        sub.model(
            model,
            inner_parent,
            world_from_include,
            scoped_name,
            top,
            category,
            f"model[{mname}] (included at {file}: {path})",
            static,
        )


def _child_name(elem: ET.Element, tag: str, file: Path, path: str) -> str:
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


def _model_sdf_file(target: Path, file: Path, path: str) -> Path:
    """The SDF file of a model directory: model.config's <sdf>, else model.sdf."""
    if target.is_file():
        return target
    config = target / "model.config"
    if config.is_file():
        try:
            croot = ET.parse(config).getroot()
        except ET.ParseError as exc:
            raise SdfError(config, "", f"not well-formed XML: {exc}") from None
        entries = [e for e in croot.iter() if _local(e.tag) == "sdf" and (e.text or "").strip()]
        if entries:
            candidate = target / (entries[-1].text or "").strip()
            if candidate.is_file():
                return candidate
            raise SdfError(config, "model/sdf", f"names {candidate}, which does not exist")
    candidate = target / "model.sdf"
    if candidate.is_file():
        return candidate
    raise SdfError(file, path, f"model directory {target} has no model.config or model.sdf")


def load_world(path: Path | str, model_path: Sequence[Path] = ()) -> World:
    """Read the static geometry of an SDF 1.9+ world file.

    `model://` URIs resolve against `model_path`, then `assets.models_dir()`, then the
    directories of $GZ_SIM_RESOURCE_PATH. Returns every collision geometry as a `Shape` in the
    world frame (x east, y north, z up; metres). Raises SdfError naming the file and element
    for malformed or unsupported content (non-static models, heightmaps, ...).
    """
    file = Path(path)
    root = _read_root(file)
    worlds = [c for c in root if _local(c.tag) == "world"]
    if len(worlds) != 1:
        raise SdfError(file, "sdf", f"expected exactly one <world>, found {len(worlds)}")
    welem = worlds[0]
    loader = _Loader(tuple(Path(p) for p in model_path))
    scope = _Scope(file, np.eye(4), "world")
    named = {"model", "include", "frame"}
    for child in welem:
        tag = _local(child.tag)
        if tag in named:
            name = _child_name(child, tag, file, "world")
            scope.add(name, child, f"world/{tag}[{name}]")
    top_names: list[str] = []
    for child in welem:
        tag = _local(child.tag)
        if _ns(child.tag) or tag in _IGNORED_WORLD or tag == "frame":
            continue
        if tag not in named:
            raise SdfError(file, f"world/{tag}", f"<{tag}> is not supported in a world")
        name = _child_name(child, tag, file, "world")
        cpath = f"world/{tag}[{name}]"
        frame = scope.resolve(name)
        top_names.append(name)
        if tag == "model":
            loader.model(child, scope, frame, name, name, "", cpath, False)
        else:
            loader.include(child, scope, frame, name, name, "", cpath)
    return World(
        name=welem.get("name", file.stem),
        source=file,
        shapes=tuple(loader.shapes),
        spherical_coordinates=_spherical(welem, file),
        models=tuple(top_names),
    )


def _spherical(welem: ET.Element, file: Path) -> Datum | None:
    """The world's georeference; <elevation> is the WGS84 height of the origin."""
    sc = welem.find("spherical_coordinates")
    if sc is None:
        return None

    def value(name: str) -> float:
        text = sc.findtext(name)
        if text is None:
            return 0.0
        return _float(text, file, f"world/spherical_coordinates/{name}")

    return Datum(
        latitude=value("latitude_deg"),
        longitude=value("longitude_deg"),
        altitude=value("elevation"),
        heading_deg=value("heading_deg"),
    )


# --------------------------------------------------------------------------- robot loader


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
        return _float(node.text, self.file, f"{path}/{rel}")


def _child(elem: ET.Element, name: str) -> ET.Element | None:
    """First child with this local name; `xiaomanlv:x` names a child in our namespace."""
    ns = name.startswith("xiaomanlv:")
    local = name.split(":", 1)[-1]
    for child in elem:
        if _local(child.tag) == local and bool(_ns(child.tag)) == ns:
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
    bpath = f"{path}/{_local(body.tag)}"
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
    root = _read_root(file)
    models = [c for c in root if _local(c.tag) == "model"]
    if len(models) != 1:
        raise SdfError(file, "sdf", f"expected exactly one <model>, found {len(models)}")
    model = models[0]
    mname = model.get("name", "")
    mpath = f"model[{mname}]"
    reader = _RobotReader(file, model, mpath)
    scope = _Scope(file, np.eye(4), mname)
    links = {}
    for child in model:
        tag = _local(child.tag)
        if tag in ("link", "frame") and not _ns(child.tag):
            name = _child_name(child, tag, file, mpath)
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
    size = _floats(box_elem.findtext("geometry/box/size"), 3, file, f"{cpath}/geometry/box/size")
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
