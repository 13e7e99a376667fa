"""Read OBJ and STL mesh files into triangles: the one mesh reader of the simulator.

`read_mesh(path)` returns a `TriangleMesh` (vertices [m] in the mesh's own frame, unscaled, and
0-based triangle indices) for every user of a mesh geometry: the scene's ray caster and the
footprints of the crowd's obstacles. The SDF `<scale>` is applied by the caller, as before.

Formats, per their specifications:

- Wavefront OBJ (Wavefront Technologies, "Object Files (.obj)", Appendix B1 of the Advanced
  Visualizer manual; http://paulbourke.net/dataformats/obj/): `v x y z [w]` (a trailing w, or the
  r g b colours some exporters append, are ignored), `f` with the `v`, `v/vt`, `v//vn` and
  `v/vt/vn` index forms, 1-based indices, negative indices relative to the vertices read so far,
  any number of `o`/`g` objects and groups (all become one mesh), `#` comments and `\\` line
  continuations. Faces with more than three vertices are triangulated: a convex polygon (every
  quad of a box) as a fan, any other simple polygon by GEOS' constrained Delaunay triangulation
  (`shapely.constrained_delaunay_triangles`) in the plane of its Newell normal, so a concave
  L-shaped roof covers the L and nothing else. Texture coordinates, normals, materials, lines,
  points and smoothing groups do not shape collisions and are skipped; free-form surfaces
  (`surf`) are refused rather than silently dropped.
- STL (3D Systems, "StereoLithography Interface Specification", 1989): binary (80-byte header,
  uint32 count, 50 bytes a triangle) and ASCII (`solid` ... `endsolid`, several solids allowed).
  Binary is recognised by its size (84 + 50 x count bytes), not by its first word: exporters
  write binary files whose header starts with "solid".

Why not a library: Open3D (used before) reads an OBJ quad as no triangle at all; trimesh 5.2
silently drops a face of two vertices, reads a truncated binary STL as an empty mesh, needs
Pillow as soon as an OBJ has `vt` lines, mis-reads faces that mix `v/vt/vn` and `v//vn`, and its
errors name neither the file nor the line. Both formats are small enough to read exactly here.

Every problem raises `MeshError` (an `SdfError`, so world loaders and nodes report it like any
other world error) naming the file, the line (OBJ, ASCII STL) or byte offset (binary STL) and
what is wrong: an index out of range, a non-numeric or non-finite vertex, a face with fewer
than three vertices, a truncated binary STL, a file with no faces.
"""

from __future__ import annotations

import functools
import math
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import shapely
from numpy.typing import NDArray

from xiaomanlv_core.sdformat import SdfError

MESH_SUFFIXES = (".obj", ".stl")
_STL_HEADER = 84  # [bytes] 80-byte header + uint32 triangle count
_STL_RECORD = 50  # [bytes] normal, three vertices (12 float32) + uint16 attribute count
# OBJ free-form geometry statements: refused. Every other statement but v and f (vt, vn, o, g,
# s, usemtl, mtllib, l, p, vendor extensions) does not shape a collision and is skipped.
_OBJ_FREEFORM = frozenset({"cstype", "deg", "bmat", "step", "curv", "curv2", "surf"})


class MeshError(SdfError):
    """A mesh file cannot be read; the message names the file, the line or byte, and why."""


@dataclass(frozen=True)
class TriangleMesh:
    vertices: NDArray[np.float64]  # (N, 3) [m], the mesh's own frame, before SDF <scale>
    triangles: NDArray[np.int64]  # (M, 3) 0-based indices into vertices


def read_mesh(path: Path | str) -> TriangleMesh:
    """The triangles of an OBJ or STL file (chosen by suffix; arrays are read-only).

    A file is read once per content (keyed by path, size and modification time), so a world
    that places one tree mesh a hundred times parses it once.

    Raises:
        MeshError: the file is missing, has another suffix, or is malformed (see module doc).
    """
    file = Path(path)
    try:
        stat = file.stat()
    except OSError as exc:
        raise MeshError(file, "", f"cannot read mesh: {exc.strerror or exc}") from None
    if not file.is_file():
        raise MeshError(file, "", "mesh path is not a file")
    if file.suffix.lower() not in MESH_SUFFIXES:
        raise MeshError(file, "", f"mesh suffix '{file.suffix}' is not .obj or .stl")
    return _read_cached(str(file), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _read_cached(path: str, size: int, mtime_ns: int) -> TriangleMesh:
    file = Path(path)
    data = file.read_bytes()
    if file.suffix.lower() == ".obj":
        verts, tris = _parse_obj(_text(data), file)
    else:
        verts, tris = _parse_stl(data, file)
    verts.flags.writeable = False
    tris.flags.writeable = False
    return TriangleMesh(verts, tris)


def _text(data: bytes) -> str:
    """Text of an OBJ or ASCII STL; undecodable bytes show up in the error of their line."""
    return data.decode("utf-8-sig", errors="replace")


def _numbers(tokens: list[str], file: Path, where: str, what: str) -> list[float]:
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        text = " ".join(tokens)
        raise MeshError(file, where, f"{what} has a non-numeric value: {text}") from None
    if not all(math.isfinite(v) for v in values):
        raise MeshError(file, where, f"{what} is not finite: {' '.join(tokens)}")
    return values


# --------------------------------------------------------------------------- OBJ


def _obj_lines(text: str) -> list[tuple[int, str]]:
    """(first line number, statement) with comments removed and `\\` continuations joined."""
    out: list[tuple[int, str]] = []
    pending, start = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].rstrip()
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append((start, pending + line))
        pending = ""
    if pending:
        out.append((start, pending))
    return out


def _parse_obj(text: str, file: Path) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    vertices: list[list[float]] = []
    vertex_lines: list[int] = []
    flat: list[int] = []  # every face's 0-based vertex indices, one face after another
    sizes: list[int] = []  # vertices of each face
    face_lines: list[int] = []
    for number, line in _obj_lines(text):
        tokens = line.split()
        if not tokens:
            continue
        key = tokens[0]
        if key == "v":
            if len(tokens) < 4:
                raise MeshError(file, f"line {number}", f"vertex needs x y z, got '{line.strip()}'")
            try:
                vertices.append([float(tokens[1]), float(tokens[2]), float(tokens[3])])
            except ValueError:
                raise MeshError(
                    file,
                    f"line {number}",
                    f"vertex has a non-numeric value: {' '.join(tokens[1:])}",
                ) from None
            vertex_lines.append(number)
        elif key == "f":
            if len(tokens) < 4:
                raise MeshError(
                    file, f"line {number}", f"face has {len(tokens) - 1} vertices, needs at least 3"
                )
            count = len(vertices)
            for token in tokens[1:]:
                try:
                    index = int(token.split("/", 1)[0])
                except ValueError:
                    raise MeshError(
                        file,
                        f"line {number}",
                        f"face vertex '{token}' does not start with an integer index",
                    ) from None
                if index > 0:
                    flat.append(index - 1)  # checked against the final count below
                elif index < 0 and -index <= count:  # relative to the vertices read so far
                    flat.append(count + index)
                elif index == 0:
                    raise MeshError(file, f"line {number}", "face index 0 (OBJ indices start at 1)")
                else:
                    raise MeshError(
                        file,
                        f"line {number}",
                        f"face index {index} is out of range: only {count} vertices are defined "
                        "before this line",
                    )
            sizes.append(len(tokens) - 1)
            face_lines.append(number)
        elif key in _OBJ_FREEFORM:
            problem = f"free-form geometry ('{key}') is not supported; export polygons"
            raise MeshError(file, f"line {number}", problem)
    if not sizes:
        raise MeshError(file, "", "OBJ has no faces ('f' lines)")
    verts = np.asarray(vertices, dtype=np.float64).reshape(-1, 3)
    finite = np.isfinite(verts).all(axis=1)
    if not finite.all():
        k = int(np.argmin(finite))
        raise MeshError(file, f"line {vertex_lines[k]}", f"vertex is not finite: {verts[k]}")
    indices = np.asarray(flat, dtype=np.int64)
    size = np.asarray(sizes, dtype=np.int64)
    start = np.concatenate([[0], np.cumsum(size)[:-1]])
    beyond = indices >= len(verts)
    if beyond.any():
        first = int(np.argmax(beyond))
        face = int(np.searchsorted(start, first, side="right")) - 1
        raise MeshError(
            file,
            f"line {face_lines[face]}",
            f"face index {indices[first] + 1} is out of range: the file has {len(verts)} vertices",
        )
    return verts, _triangulate(verts, indices, size, start, face_lines, file)


def _triangulate(
    verts: NDArray[np.float64],
    indices: NDArray[np.int64],
    size: NDArray[np.int64],
    start: NDArray[np.int64],
    face_lines: list[int],
    file: Path,
) -> NDArray[np.int64]:
    """Triangles of every face, in face order: polygons of each size at once, a convex one as a
    fan, any other by GEOS' constrained Delaunay triangulation in its plane."""
    parts: list[NDArray[np.int64]] = []
    owners: list[NDArray[np.int64]] = []  # the face of each triangle, to restore file order
    for n in np.unique(size):
        faces = np.flatnonzero(size == n)
        corners = indices[start[faces, None] + np.arange(n)]  # (F, n)
        if n == 3:
            parts.append(corners)
            owners.append(faces)
            continue
        pts = verts[corners]  # (F, n, 3)
        nxt = np.roll(pts, -1, axis=1)
        # Newell's normal, |normal| = twice the area: robust for concave and non-planar faces
        normal = np.stack(
            [
                np.sum((pts[..., 1] - nxt[..., 1]) * (pts[..., 2] + nxt[..., 2]), axis=1),
                np.sum((pts[..., 2] - nxt[..., 2]) * (pts[..., 0] + nxt[..., 0]), axis=1),
                np.sum((pts[..., 0] - nxt[..., 0]) * (pts[..., 1] + nxt[..., 1]), axis=1),
            ],
            axis=1,
        )
        edge = nxt - pts
        turn = np.einsum("fkc,fc->fk", np.cross(edge, np.roll(edge, -1, axis=1)), normal)
        norm2 = np.einsum("fc,fc->f", normal, normal)
        spread = np.ptp(pts, axis=1).max(axis=1)
        flat_face = norm2 <= (1e-12 * spread**2) ** 2  # no net area: a line, or a bow tie
        # convex: every corner turns left about the normal (collinear corners allowed)
        convex = ~flat_face & np.all(turn >= -1e-9 * norm2[:, None], axis=1)
        for f in np.flatnonzero(flat_face):
            centred = pts[f] - pts[f].mean(axis=0)
            sv = np.linalg.svd(centred, compute_uv=False)
            if sv[1] > 1e-9 * sv[0]:
                raise MeshError(
                    file,
                    f"line {face_lines[faces[f]]}",
                    f"face of {n} vertices is not a simple polygon (its edges cross, enclosing "
                    "no net area); split it into simple faces",
                )
        fan = convex | flat_face  # a collinear face's fan: zero-area triangles, harmless
        k = np.arange(1, n - 1)
        ring = corners[fan]
        fanned = np.stack([np.repeat(ring[:, :1], n - 2, axis=1), ring[:, k], ring[:, k + 1]], 2)
        parts.append(fanned.reshape(-1, 3))
        owners.append(np.repeat(faces[fan], n - 2))
        for f in np.flatnonzero(~fan):
            tris = _triangulate_polygon(pts[f], normal[f], corners[f], file, face_lines[faces[f]])
            parts.append(tris)
            owners.append(np.full(len(tris), faces[f]))
    order = np.argsort(np.concatenate(owners), kind="stable")
    return np.concatenate(parts).astype(np.int64)[order]


def _triangulate_polygon(
    pts: NDArray[np.float64],
    normal: NDArray[np.float64],
    corners: NDArray[np.int64],
    file: Path,
    number: int,
) -> NDArray[np.int64]:
    """One concave polygon by constrained Delaunay (GEOS) in the plane of its normal."""
    normal = normal / np.linalg.norm(normal)
    helper = np.array([1.0, 0.0, 0.0]) if abs(normal[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    u = np.cross(normal, helper)
    u /= np.linalg.norm(u)
    v = np.cross(normal, u)  # (u, v, normal) right-handed: the face winds counter-clockwise
    xy = np.column_stack([pts @ u, pts @ v])
    polygon = shapely.Polygon(xy)
    if not polygon.is_valid:
        raise MeshError(
            file,
            f"line {number}",
            f"face of {len(pts)} vertices is not a simple polygon "
            f"({shapely.is_valid_reason(polygon)}); split it into simple faces",
        )
    lookup = {(float(x), float(y)): int(i) for (x, y), i in zip(xy, corners, strict=True)}
    out: list[list[int]] = []
    for tri in shapely.get_parts(shapely.constrained_delaunay_triangles(polygon)):
        (ax, ay), (bx, by), (cx, cy) = shapely.get_coordinates(tri)[:3]
        a, b, c = (lookup[(float(x), float(y))] for x, y in ((ax, ay), (bx, by), (cx, cy)))
        ccw = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax) > 0.0
        out.append([a, b, c] if ccw else [a, c, b])  # keep the face's winding
    return np.asarray(out, dtype=np.int64).reshape(-1, 3)


# --------------------------------------------------------------------------- STL


def _parse_stl(data: bytes, file: Path) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    if len(data) >= _STL_HEADER:
        (count,) = struct.unpack_from("<I", data, 80)
        if len(data) == _STL_HEADER + _STL_RECORD * count:
            return _stl_binary(data, count, file)
    # ASCII starts with "solid"; so do some binary headers, but binary records hold NUL bytes
    # (a zero coordinate, the attribute count), which text never does.
    if data.lstrip()[:5].lower() == b"solid" and b"\0" not in data:
        return _stl_ascii(_text(data), file)
    if len(data) < _STL_HEADER:
        raise MeshError(
            file,
            f"byte {len(data)}",
            f"truncated binary STL: {len(data)} bytes, the header alone is {_STL_HEADER}",
        )
    expected = _STL_HEADER + _STL_RECORD * count
    if len(data) < expected:
        whole = (len(data) - _STL_HEADER) // _STL_RECORD
        raise MeshError(
            file,
            f"byte {_STL_HEADER + _STL_RECORD * whole}",
            f"truncated binary STL: the header counts {count} triangles ({expected} bytes), the "
            f"file has {len(data)} bytes and ends inside triangle {whole + 1}",
        )
    raise MeshError(
        file,
        f"byte {expected}",
        f"binary STL has {len(data) - expected} bytes after the {count} triangles its header "
        "counts",
    )


def _stl_binary(
    data: bytes, count: int, file: Path
) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    if count == 0:
        raise MeshError(file, "byte 80", "binary STL counts 0 triangles")
    record = np.dtype([("normal", "<f4", 3), ("vertices", "<f4", (3, 3)), ("attribute", "<u2")])
    rows = np.frombuffer(data, dtype=record, count=count, offset=_STL_HEADER)
    verts = rows["vertices"].reshape(-1, 3).astype(np.float64)
    finite = np.isfinite(verts).all(axis=1)
    if not finite.all():
        k = int(np.argmin(finite)) // 3
        raise MeshError(
            file,
            f"byte {_STL_HEADER + _STL_RECORD * k + 12}",
            f"triangle {k + 1} has a non-finite vertex",
        )
    return verts, np.arange(len(verts), dtype=np.int64).reshape(-1, 3)


def _stl_ascii(text: str, file: Path) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    vertices: list[list[float]] = []
    state = "outside"  # outside -> solid -> facet -> loop -> closed -> solid -> outside
    loop: list[list[float]] = []
    number = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        tokens = raw.split()
        if not tokens:
            continue
        key = tokens[0].lower()
        where = f"line {number}"
        expected = {
            "outside": ("solid",),
            "solid": ("facet", "endsolid"),
            "facet": ("outer",),
            "loop": ("vertex", "endloop"),
            "closed": ("endfacet",),
        }[state]
        if key not in expected:
            raise MeshError(file, where, f"expected {' or '.join(expected)}, found '{raw.strip()}'")
        if key == "solid":
            state = "solid"
        elif key == "endsolid":
            state = "outside"
        elif key == "facet":
            state = "facet"
        elif key == "outer":
            state, loop = "loop", []
        elif key == "vertex":
            if len(tokens) != 4:
                raise MeshError(file, where, f"vertex needs x y z, got '{raw.strip()}'")
            loop.append(_numbers(tokens[1:], file, where, "vertex"))
        elif key == "endloop":
            if len(loop) != 3:
                raise MeshError(file, where, f"facet has {len(loop)} vertices, STL needs 3")
            vertices.extend(loop)
            state = "closed"
        elif key == "endfacet":
            state = "solid"
    if state != "outside":
        raise MeshError(file, f"line {number}", "truncated ASCII STL: ends before 'endsolid'")
    if not vertices:
        raise MeshError(file, "", "STL has no facets")
    verts = np.asarray(vertices, dtype=np.float64)
    return verts, np.arange(len(verts), dtype=np.int64).reshape(-1, 3)
