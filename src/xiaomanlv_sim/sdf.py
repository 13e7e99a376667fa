"""Read SDF 1.9+ worlds into the simulator's own data model.

`load_world` walks the static models of an SDF world (nested models, links, `<include>` of
`model://` URIs, `<frame>`s and `<pose relative_to=...>`) and returns every collision geometry as
a `world.Shape` placed in the world frame, and the world's `<spherical_coordinates>` as a
`xiaomanlv_core.geodesy.Datum`. The SDF primitives (poses, frames, `SdfError`) are
`xiaomanlv_core.sdformat`'s; the robot model is read by `xiaomanlv_core.robot.load_robot`
(re-exported here for older importers). The format follows the SDFormat
specification (http://sdformat.org/spec?ver=1.9, pose frame semantics:
http://sdformat.org/tutorials?tut=pose_frame_semantics); only the subset our campus worlds use is
accepted, and anything else raises `SdfError` naming the file and the element path, e.g.
``world/model[library]/link[walls]/collision[n]/geometry/heightmap``.

XML is parsed with the standard library's ElementTree; rotations use scipy's fixed-axis
roll-pitch-yaw (SDF's convention: R = Rz(yaw) Ry(pitch) Rx(roll)).
"""

from __future__ import annotations

import contextlib
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xiaomanlv_core.geodesy import Datum
from xiaomanlv_core.sdformat import (
    Matrix,
    Scope,
    SdfError,
    boolean,
    child_name,
    floats,
    local_name,
    namespace,
    number,
    parse_pose,
    read_root,
)
from xiaomanlv_sim import assets
from xiaomanlv_sim.meshes import MESH_SUFFIXES, MeshError, read_mesh
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
# The model search path variable Gazebo (Garden and later, so Harmonic with Jazzy) reads; the
# loader reads it too, so a world that loads here loads in Gazebo with the same environment.
RESOURCE_PATH_VARIABLE = "GZ_SIM_RESOURCE_PATH"
# Older Gazebos' variables (deprecated since Garden): not read, named in errors when set.
LEGACY_PATH_VARIABLES = {
    "GAZEBO_MODEL_PATH": "Gazebo Classic",
    "IGN_GAZEBO_RESOURCE_PATH": "Ignition Gazebo",
}

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

# --------------------------------------------------------------------------- small parsers


def _category(elem: ET.Element) -> str | None:
    for child in elem:
        if local_name(child.tag) == "category" and namespace(child.tag):
            return (child.text or "").strip()
    return None


# --------------------------------------------------------------------------- world loader


@dataclass
class _Loader:
    model_path: tuple[Path, ...]
    shapes: list[Shape] = field(default_factory=list)
    include_stack: tuple[Path, ...] = ()

    def model_dirs(self) -> list[tuple[Path, str]]:
        """The folders `model://` searches, in order, each with where it came from."""
        dirs = [(Path(p), "model_path") for p in self.model_path]
        with contextlib.suppress(FileNotFoundError):
            dirs.append((assets.models_dir(), "the package's models/"))
        for entry in os.environ.get(RESOURCE_PATH_VARIABLE, "").split(os.pathsep):
            if entry:
                dirs.append((Path(entry), RESOURCE_PATH_VARIABLE))
        return dirs

    def resolve_uri(self, uri: str, base_dir: Path, file: Path, path: str) -> Path:
        """A `model://name/rest`, `file://` or relative URI as an existing path."""
        uri = uri.strip()
        if uri.startswith("model://"):
            rest = uri[len("model://") :]
            name, _, tail = rest.partition("/")
            dirs = self.model_dirs()
            for d, _source in dirs:
                candidate = d / name / tail if tail else d / name
                if candidate.exists():
                    return candidate
            raise SdfError(file, path, _unresolved_model(uri, name, tail, dirs))
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
        scope: Scope,
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
            static = static or boolean(static_elem.text, file, path + "/static")
        if not static:
            raise SdfError(
                file, path, "model is not static; the simulator only loads static world models"
            )
        own = _category(elem)
        category = own if own is not None else category
        name = elem.get("name", "")
        inner = Scope(file, world_from_model, name, parent=scope)
        named = {"link", "model", "frame", "include"}
        for child in elem:
            tag = local_name(child.tag)
            if tag in named:
                cname = child_name(child, tag, file, path)
                inner.add(cname, child, f"{path}/{tag}[{cname}]")
        for child in elem:
            tag = local_name(child.tag)
            if namespace(child.tag) or tag in _IGNORED_MODEL:
                continue
            if tag not in named:
                raise SdfError(file, f"{path}/{tag}", f"<{tag}> is not supported in a model")
            cname = child_name(child, tag, file, path)
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
        scope: Scope,
        world_from_link: Matrix,
        scoped_name: str,
        top: str,
        category: str,
        path: str,
    ) -> None:
        file = scope.file
        for child in elem:
            tag = local_name(child.tag)
            if namespace(child.tag) or tag in _IGNORED_LINK:
                continue
            if tag != "collision":
                raise SdfError(file, f"{path}/{tag}", f"<{tag}> is not supported in a link")
            cname = child_name(child, tag, file, path)
            cpath = f"{path}/collision[{cname}]"
            for sub in child:
                stag = local_name(sub.tag)
                if not namespace(sub.tag) and stag not in _IGNORED_COLLISION and stag != "geometry":
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
        children = [c for c in elem if not namespace(c.tag)]
        if len(children) != 1:
            raise SdfError(file, path, f"expected exactly one geometry, found {len(children)}")
        g = children[0]
        tag = local_name(g.tag)
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
            x, y, z = positive(floats(req("size").text, 3, file, gpath + "/size"), "size")
            return Box(size=(x, y, z))
        if tag == "cylinder":
            r = positive([number(req("radius").text, file, gpath + "/radius")], "radius")[0]
            h = positive([number(req("length").text, file, gpath + "/length")], "length")[0]
            return Cylinder(radius=r, length=h)
        if tag == "sphere":
            r = positive([number(req("radius").text, file, gpath + "/radius")], "radius")[0]
            return Sphere(radius=r)
        if tag == "plane":
            n_elem = g.find("normal")
            normal = [0.0, 0.0, 1.0]
            if n_elem is not None:
                normal = floats(n_elem.text, 3, file, gpath + "/normal")
            norm = float(np.linalg.norm(normal))
            if norm < 1e-9:
                raise SdfError(file, gpath + "/normal", "normal has zero length")
            s_elem = g.find("size")
            size = [1000.0, 1000.0]  # SDF's default plane size
            if s_elem is not None:
                size = positive(floats(s_elem.text, 2, file, gpath + "/size"), "size")
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
            try:
                read_mesh(mesh_path)  # read once here; the scene and footprints reuse it
            except MeshError as err:
                raise MeshError(
                    err.file, err.element, f"{err.problem} (mesh of {file}: {gpath})"
                ) from None
            scale = (1.0, 1.0, 1.0)
            s_elem = g.find("scale")
            if s_elem is not None:
                sx, sy, sz = positive(floats(s_elem.text, 3, file, gpath + "/scale"), "scale")
                scale = (sx, sy, sz)
            return Mesh(path=mesh_path, scale=scale)
        raise SdfError(file, gpath, f"geometry <{tag}> is not supported (box, cylinder, sphere, "
                       "plane, mesh)")  # fmt: skip

    def include(
        self,
        elem: ET.Element,
        scope: Scope,
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
        root = read_root(sdf_file)
        models = [c for c in root if local_name(c.tag) == "model"]
        if len(models) != 1:
            raise SdfError(sdf_file, "sdf", f"expected one <model>, found {len(models)}")
        model = models[0]
        static = False
        static_elem = elem.find("static")
        if static_elem is not None:
            static = boolean(static_elem.text, file, path + "/static")
        own = _category(elem)
        category = own if own is not None else category
        # The included model's own <pose> applies only when the include gives none.
        if elem.find("pose") is None and model.find("pose") is not None:
            own_pose = parse_pose(model.find("pose"), sdf_file, "model/pose")  # type: ignore[arg-type]
            world_from_include = world_from_include @ own_pose
        sub = _Loader(self.model_path, self.shapes, (*self.include_stack, sdf_file))
        inner_parent = Scope(sdf_file, world_from_include, scope.name, parent=scope)
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


def _unresolved_model(uri: str, name: str, tail: str, dirs: list[tuple[Path, str]]) -> str:
    """Why `model://name/tail` was not found: the folders searched and the variable to set."""
    searched = []
    for d, source in dirs:
        note = source if d.is_dir() else f"{source}, does not exist"
        searched.append(f"{d} ({note})")
    if tail:
        partial = [str(d / name) for d, _ in dirs if (d / name).is_dir()]
        if partial:
            return (
                f"cannot resolve '{uri}': model folder {partial[0]} has no '{tail}'; "
                f"searched in order: {', '.join(searched)}"
            )
    where = ", ".join(searched) if searched else "nothing (no model_path, no models/)"
    message = (
        f"cannot resolve '{uri}': no folder '{name}' in the model search path; searched in "
        f"order: {where}. Set {RESOURCE_PATH_VARIABLE} to the folder that holds '{name}/' "
        f"(several joined with '{os.pathsep}')"
    )
    if not os.environ.get(RESOURCE_PATH_VARIABLE):
        message += f"; {RESOURCE_PATH_VARIABLE} is not set"
    for variable, gazebo in LEGACY_PATH_VARIABLES.items():
        value = os.environ.get(variable, "")
        if not value:
            continue
        there = [e for e in value.split(os.pathsep) if e and (Path(e) / name).is_dir()]
        found = f", and '{name}/' is in {there[0]}" if there else ""
        message += (
            f"; {variable} is set but not read ({gazebo}'s variable){found}: add its folders to "
            f"{RESOURCE_PATH_VARIABLE}"
        )
    return message


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
        entries = [e for e in croot.iter() if local_name(e.tag) == "sdf" and (e.text or "").strip()]
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
    directories of $GZ_SIM_RESOURCE_PATH; an unresolved one names the folders searched, in
    order, and the variable to set. Returns every collision geometry as a `Shape` in the
    world frame (x east, y north, z up; metres). Raises SdfError naming the file and element
    for malformed or unsupported content (non-static models, heightmaps, ...).
    """
    file = Path(path)
    root = read_root(file)
    worlds = [c for c in root if local_name(c.tag) == "world"]
    if len(worlds) != 1:
        raise SdfError(file, "sdf", f"expected exactly one <world>, found {len(worlds)}")
    welem = worlds[0]
    loader = _Loader(tuple(Path(p) for p in model_path))
    scope = Scope(file, np.eye(4), "world")
    named = {"model", "include", "frame"}
    for child in welem:
        tag = local_name(child.tag)
        if tag in named:
            name = child_name(child, tag, file, "world")
            scope.add(name, child, f"world/{tag}[{name}]")
    top_names: list[str] = []
    for child in welem:
        tag = local_name(child.tag)
        if namespace(child.tag) or tag in _IGNORED_WORLD or tag == "frame":
            continue
        if tag not in named:
            raise SdfError(file, f"world/{tag}", f"<{tag}> is not supported in a world")
        name = child_name(child, tag, file, "world")
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
        return number(text, file, f"world/spherical_coordinates/{name}")

    return Datum(
        latitude=value("latitude_deg"),
        longitude=value("longitude_deg"),
        altitude=value("elevation"),
        heading_deg=value("heading_deg"),
    )
