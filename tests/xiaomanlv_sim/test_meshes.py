"""Mesh files per their formats: OBJ and STL, hand-written, read by `meshes.read_mesh`."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import shapely
from numpy.typing import NDArray

from xiaomanlv_sim.footprint import shape_footprint
from xiaomanlv_sim.meshes import MeshError, read_mesh
from xiaomanlv_sim.scene import Scene
from xiaomanlv_sim.sdf import SdfError
from xiaomanlv_sim.world import Mesh, Shape, World

SQUARE = "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\n"  # the unit square in z = 0, counter-clockwise


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def area(verts: NDArray[np.float64], tris: NDArray[np.int64]) -> float:
    """Total triangle area [m^2]."""
    a, b, c = verts[tris[:, 0]], verts[tris[:, 1]], verts[tris[:, 2]]
    return float(0.5 * np.linalg.norm(np.cross(b - a, c - a), axis=1).sum())


def covered(verts: NDArray[np.float64], tris: NDArray[np.int64]) -> shapely.Geometry:
    """The union of the triangles projected on the xy plane."""
    return shapely.union_all([shapely.Polygon(verts[t][:, :2]) for t in tris])


def cube_obj(faces: str) -> str:
    """The unit cube's 8 vertices (index 1 + 4x + 2y + z) and `faces`."""
    verts = "".join(f"v {x} {y} {z}\n" for x in (0, 1) for y in (0, 1) for z in (0, 1))
    return verts + faces


CUBE_QUADS = (
    "f 1 3 4 2\nf 5 6 8 7\n"  # x = 0, x = 1
    "f 1 2 6 5\nf 3 7 8 4\n"  # y = 0, y = 1
    "f 1 5 7 3\nf 2 4 8 6\n"  # z = 0, z = 1
)


# --------------------------------------------------------------------------- OBJ


def test_obj_quads_become_two_triangles_each(tmp_path: Path) -> None:
    mesh = read_mesh(write(tmp_path, "cube.obj", cube_obj(CUBE_QUADS)))
    assert mesh.vertices.shape == (8, 3)
    assert mesh.triangles.shape == (12, 3)
    assert area(mesh.vertices, mesh.triangles) == pytest.approx(6.0)


def test_obj_concave_polygon_covers_its_shape_only(tmp_path: Path) -> None:
    # an L of area 3: a fan from vertex 1 would also cover the notch at (1.5, 1.5)
    text = "v 0 0 0\nv 2 0 0\nv 2 1 0\nv 1 1 0\nv 1 2 0\nv 0 2 0\nf 1 2 3 4 5 6\n"
    mesh = read_mesh(write(tmp_path, "l.obj", text))
    assert len(mesh.triangles) == 4
    ell = shapely.Polygon([(0, 0), (2, 0), (2, 1), (1, 1), (1, 2), (0, 2)])
    cover = covered(mesh.vertices, mesh.triangles)
    assert cover.symmetric_difference(ell).area == pytest.approx(0.0, abs=1e-9)
    assert area(mesh.vertices, mesh.triangles) == pytest.approx(3.0)
    # every triangle keeps the face's counter-clockwise winding (+z normals)
    v, t = mesh.vertices, mesh.triangles
    normals = np.cross(v[t[:, 1]] - v[t[:, 0]], v[t[:, 2]] - v[t[:, 0]])
    assert np.all(normals[:, 2] > 0)


def test_obj_convex_polygon_is_fanned(tmp_path: Path) -> None:
    hexagon = "".join(f"v {np.cos(a):.6f} {np.sin(a):.6f} 2\n" for a in np.arange(6) * np.pi / 3)
    mesh = read_mesh(write(tmp_path, "hex.obj", hexagon + "f 1 2 3 4 5 6\n"))
    assert len(mesh.triangles) == 4
    assert area(mesh.vertices, mesh.triangles) == pytest.approx(3 * np.sqrt(3) / 2, rel=1e-5)


def test_obj_negative_indices_are_relative_to_the_vertices_read_so_far(tmp_path: Path) -> None:
    text = SQUARE + "f -4 -3 -2 -1\nv 5 5 5\nf -1 -5 -4\n"
    mesh = read_mesh(write(tmp_path, "neg.obj", text))
    assert len(mesh.triangles) == 3
    # the last face names vertex 5 (5, 5, 5), then vertices 1 and 2 as they were counted then
    np.testing.assert_array_equal(
        mesh.vertices[mesh.triangles[-1]], [[5, 5, 5], [0, 0, 0], [1, 0, 0]]
    )


def test_obj_index_forms_and_statements_that_do_not_shape_a_surface(tmp_path: Path) -> None:
    text = (
        "# exported by hand\nmtllib cube.mtl\n" + SQUARE + "vt 0 0\nvt 1 1\nvn 0 0 1\n"
        "usemtl grey\ns off\nl 1 2\np 3\n"
        "f 1/1/1 2/2/1 3//1\n"  # v/vt/vn and v//vn mixed in one face
        "f 1/1 3/2 4\n"  # v/vt and plain v
    )
    mesh = read_mesh(write(tmp_path, "forms.obj", text))
    np.testing.assert_array_equal(mesh.triangles, [[0, 1, 2], [0, 2, 3]])


def test_obj_several_objects_and_groups_make_one_mesh(tmp_path: Path) -> None:
    text = (
        "o floor\ng a\n" + SQUARE + "f 1 2 3 4\n"
        "o roof\ng b\nv 0 0 3\nv 1 0 3\nv 0 1 3\nf 5 6 7\n"
        "g c\nf -3 -2 -1 # a comment after a statement\n"
    )
    mesh = read_mesh(write(tmp_path, "objects.obj", text))
    assert len(mesh.vertices) == 7
    assert len(mesh.triangles) == 4
    assert sorted(set(mesh.vertices[mesh.triangles].reshape(-1, 3)[:, 2])) == [0.0, 3.0]


def test_obj_line_continuation_and_extra_vertex_values(tmp_path: Path) -> None:
    # `v x y z w` and `v x y z r g b` (vertex colours) both keep x y z
    text = "v 0 0 0 1\nv 1 0 0 0.5 0.5 0.5\nv 1 1 0\nf 1 \\\n 2 \\\n 3\n"
    mesh = read_mesh(write(tmp_path, "cont.obj", text))
    np.testing.assert_array_equal(mesh.vertices, [[0, 0, 0], [1, 0, 0], [1, 1, 0]])
    np.testing.assert_array_equal(mesh.triangles, [[0, 1, 2]])


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (SQUARE + "f 1 2 9\n", r"bad\.obj: line 5: face index 9 is out of range: .* 4 vertices"),
        (SQUARE + "f 1 -5 2\n", r"line 5: face index -5 is out of range: only 4 vertices"),
        (SQUARE + "f 0 1 2\n", r"line 5: face index 0"),
        ("v 0 x 0\n" + SQUARE + "f 1 2 3\n", r"line 1: vertex has a non-numeric value: 0 x 0"),
        ("v 0 0 nan\nv 1 0 0\nv 0 1 0\nf 1 2 3\n", r"line 1: vertex is not finite"),
        ("v 0 0\n", r"line 1: vertex needs x y z"),
        (SQUARE + "\nf 1 2\n", r"line 6: face has 2 vertices, needs at least 3"),
        (SQUARE + "f 1 a/1 2\n", r"line 5: face vertex 'a/1' does not start with an integer"),
        (SQUARE, r"bad\.obj: OBJ has no faces"),
        (SQUARE + "cstype bspline\nsurf 0 1 0 1 1 2 3 4\n", r"line 5: free-form geometry"),
        (SQUARE + "f 1 2 4 3\n", r"line 5: face of 4 vertices is not a simple polygon"),
        (SQUARE + "v 2 0.5 0\nf 1 5 4 3\n", r"line 6: face of 4 vertices is not a simple"),
    ],
)
def test_obj_errors_name_the_file_line_and_cause(tmp_path: Path, text: str, match: str) -> None:
    path = write(tmp_path, "bad.obj", text)
    with pytest.raises(MeshError, match=match) as info:
        read_mesh(path)
    assert isinstance(info.value, SdfError)  # world loaders and nodes report it as such
    assert info.value.file == path


# --------------------------------------------------------------------------- STL

TRIANGLES = np.array(
    [[[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 0, 1], [1, 0, 1], [0, 1, 1]]], dtype=np.float32
)


def binary_stl(header: bytes, triangles: NDArray[np.float32], count: int | None = None) -> bytes:
    out = header.ljust(80, b"\0")[:80] + struct.pack(
        "<I", len(triangles) if count is None else count
    )
    for tri in triangles:
        out += struct.pack("<3f", 0.0, 0.0, 1.0) + tri.astype("<f4").tobytes() + b"\0\0"
    return out


def ascii_stl(triangles: NDArray[np.float32], name: str = "part") -> str:
    lines = [f"solid {name}"]
    for tri in triangles:
        lines += ["  facet normal 0 0 1", "    outer loop"]
        lines += [f"      vertex {x:e} {y:e} {z:e}" for x, y, z in tri]
        lines += ["    endloop", "  endfacet"]
    return "\n".join([*lines, f"endsolid {name}", ""])


def test_binary_stl(tmp_path: Path) -> None:
    mesh = read_mesh(write(tmp_path, "part.stl", binary_stl(b"exported by CAD", TRIANGLES)))
    np.testing.assert_array_equal(mesh.vertices[mesh.triangles], TRIANGLES)


def test_binary_stl_whose_header_starts_with_solid(tmp_path: Path) -> None:
    data = binary_stl(b"solid part exported by SolidWorks", TRIANGLES)
    mesh = read_mesh(write(tmp_path, "part.stl", data))
    np.testing.assert_array_equal(mesh.vertices[mesh.triangles], TRIANGLES)


def test_ascii_stl_with_several_solids(tmp_path: Path) -> None:
    text = ascii_stl(TRIANGLES[:1], "a") + ascii_stl(TRIANGLES[1:], "b")
    mesh = read_mesh(write(tmp_path, "part.STL", text))
    np.testing.assert_allclose(mesh.vertices[mesh.triangles], TRIANGLES)


def test_truncated_binary_stl_names_the_byte(tmp_path: Path) -> None:
    data = binary_stl(b"solid part", TRIANGLES)[:-20]
    with pytest.raises(MeshError, match=r"byte 134: truncated binary STL: .* 2 triangles .* 2"):
        read_mesh(write(tmp_path, "cut.stl", data))
    with pytest.raises(MeshError, match=r"byte 50: truncated binary STL: 50 bytes"):
        read_mesh(write(tmp_path, "short.stl", bytes(50)))


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (ascii_stl(TRIANGLES).replace("vertex 0.0", "vertex zero", 1), r"line 4: vertex has a non"),
        (
            "solid x\nfacet normal 0 0 1\nouter loop\nvertex 0 0 0\nvertex 1 0\n",
            r"line 5: vertex needs",
        ),
        (
            "\n".join([*ascii_stl(TRIANGLES[:1]).splitlines()[:5], "endloop"]),
            r"line 6: facet has 2 vertices, STL needs 3",
        ),
        ("\n".join(ascii_stl(TRIANGLES).splitlines()[:9]), r"line 9: truncated ASCII STL"),
        ("solid empty\nendsolid empty\n", r"STL has no facets"),
        ("solid x\nfacet normal 0 0 1\nvertex 0 0 0\n", r"line 3: expected outer, found 'vertex"),
    ],
)
def test_ascii_stl_errors_name_the_line(tmp_path: Path, text: str, match: str) -> None:
    with pytest.raises(MeshError, match=match):
        read_mesh(write(tmp_path, "bad.stl", text))


def test_other_suffix_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(MeshError, match=r"a\.dae: mesh suffix '\.dae' is not \.obj or \.stl"):
        read_mesh(write(tmp_path, "a.dae", "<COLLADA/>"))
    with pytest.raises(MeshError, match=r"missing\.obj: cannot read mesh"):
        read_mesh(tmp_path / "missing.obj")


def test_a_rewritten_file_is_read_again(tmp_path: Path) -> None:
    path = write(tmp_path, "t.obj", SQUARE + "f 1 2 3\n")
    assert len(read_mesh(path).triangles) == 1
    write(tmp_path, "t.obj", SQUARE + "f 1 2 3 4\n")
    assert len(read_mesh(path).triangles) == 2


# --------------------------------------------------------------------------- users


def test_scene_casts_against_an_obj_of_quads(tmp_path: Path) -> None:
    cube = write(tmp_path, "cube.obj", cube_obj(CUBE_QUADS))
    pose = np.eye(4)
    pose[:3, 3] = [5.0, -1.0, 0.0]
    shape = Shape("m", Mesh(cube, (2.0, 2.0, 2.0)), pose, "m", "building")
    scene = Scene.from_world(World("w", tmp_path / "w.sdf", (shape,), None))
    # the scaled cube spans x 5..7, y -1..1, z 0..2; Open3D read its quads as no triangle
    ranges = scene.cast(
        np.array([[0.0, 0.0, 1.0], [6.0, 0.0, 10.0]]), np.array([[1.0, 0, 0], [0, 0, -1]])
    )
    assert ranges == pytest.approx([5.0, 8.0], abs=1e-4)


def test_footprint_of_a_binary_stl_and_of_an_obj_polygon(tmp_path: Path) -> None:
    # a 2 m tall triangular prism: two triangles as caps, its sides as one quad each; the slab
    # misses the caps, so only the quads give the footprint (Open3D read them as nothing)
    prism = "v 0 0 0\nv 3 0 0\nv 0 3 0\nv 0 0 2\nv 3 0 2\nv 0 3 2\n"
    prism += "f 1 3 2\nf 4 5 6\nf 1 2 5 4\nf 2 3 6 5\nf 3 1 4 6\n"
    obj = write(tmp_path, "prism.obj", prism)
    poly = shape_footprint(Shape("p", Mesh(obj), np.eye(4), "p", "building"), 0.05, 1.9)
    assert poly is not None and poly.area == pytest.approx(4.5)
    stl = write(tmp_path, "p.stl", binary_stl(b"solid p", TRIANGLES * np.float32(2.0)))
    poly = shape_footprint(Shape("s", Mesh(stl), np.eye(4), "s", "building"), 0.0, 3.0)
    assert poly is not None and poly.area == pytest.approx(2.0)
