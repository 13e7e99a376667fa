"""SDF loading: geometry, pose composition, includes, categories, errors, shipped files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import open3d as o3d
import pytest

from xiaomanlv_sim import assets
from xiaomanlv_sim.sdf import SdfError, load_world
from xiaomanlv_sim.world import Box, Cylinder, Mesh, Plane, Sphere

NS = 'xmlns:xiaomanlv="https://github.com/xiaomanlv/sdf"'


def world_file(tmp_path: Path, body: str, version: str = "1.9", name: str = "w.sdf") -> Path:
    path = tmp_path / name
    path.write_text(
        f'<?xml version="1.0"?>\n<sdf version="{version}" {NS}>\n<world name="test">\n'
        f'<physics type="ode"/><light name="sun" type="directional"/>\n{body}\n</world>\n</sdf>\n'
    )
    return path


def static_model(name: str, geometry: str, pose: str = "0 0 0 0 0 0", extra: str = "") -> str:
    return (
        f'<model name="{name}"><static>true</static><pose>{pose}</pose>{extra}'
        f'<link name="link"><collision name="c"><geometry>{geometry}</geometry></collision>'
        f'<visual name="v"><geometry>{geometry}</geometry></visual></link></model>'
    )


def test_each_primitive_geometry_type(tmp_path: Path) -> None:
    body = "".join(
        [
            static_model("b", "<box><size>1 2 3</size></box>"),
            static_model("c", "<cylinder><radius>0.5</radius><length>2</length></cylinder>"),
            static_model("s", "<sphere><radius>0.7</radius></sphere>"),
            static_model("p", "<plane><normal>0 0 1</normal><size>50 40</size></plane>"),
        ]
    )
    world = load_world(world_file(tmp_path, body))
    geoms = {s.model: s.geometry for s in world.shapes}
    assert geoms["b"] == Box(size=(1.0, 2.0, 3.0))
    assert geoms["c"] == Cylinder(radius=0.5, length=2.0)
    assert geoms["s"] == Sphere(radius=0.7)
    assert geoms["p"] == Plane(normal=(0.0, 0.0, 1.0), size=(50.0, 40.0))
    assert world.models == ("b", "c", "s", "p")
    assert world.name == "test"
    assert {s.name for s in world.shapes} == {
        "b::link::c",
        "c::link::c",
        "s::link::c",
        "p::link::c",
    }


@pytest.mark.parametrize("suffix", ["stl", "obj"])
def test_mesh_geometry_resolves_relative_uri_and_scale(tmp_path: Path, suffix: str) -> None:
    mesh = o3d.geometry.TriangleMesh.create_box(1, 1, 1)
    mesh.compute_triangle_normals()
    (tmp_path / "meshes").mkdir()
    o3d.io.write_triangle_mesh(str(tmp_path / "meshes" / f"cube.{suffix}"), mesh)
    geometry = f"<mesh><uri>meshes/cube.{suffix}</uri><scale>2 2 2</scale></mesh>"
    world = load_world(world_file(tmp_path, static_model("m", geometry)))
    (shape,) = world.shapes
    assert shape.geometry == Mesh(
        path=tmp_path / "meshes" / f"cube.{suffix}", scale=(2.0, 2.0, 2.0)
    )


def test_nested_model_link_and_collision_poses_compose(tmp_path: Path) -> None:
    # model at (10,0,0) yawed 90 deg; nested model at (1,0,0) in it; link at (0,1,0) in the
    # nested model; collision at (0,0,0.5) in the link. By hand: nested origin (10,1,0),
    # the link's +y maps to world -x: (9,1,0); collision 0.5 up: (9,1,0.5), yaw 90 deg.
    body = """
    <model name="outer"><static>true</static><pose>10 0 0 0 0 1.5707963267948966</pose>
      <model name="inner"><pose>1 0 0 0 0 0</pose>
        <link name="l"><pose>0 1 0 0 0 0</pose>
          <collision name="c"><pose>0 0 0.5 0 0 0</pose>
            <geometry><box><size>1 1 1</size></box></geometry></collision></link></model>
    </model>"""
    (shape,) = load_world(world_file(tmp_path, body)).shapes
    np.testing.assert_allclose(shape.pose[:3, 3], [9.0, 1.0, 0.5], atol=1e-9)
    np.testing.assert_allclose(shape.pose[:3, 0], [0.0, 1.0, 0.0], atol=1e-9)
    assert shape.name == "outer::inner::l::c"
    assert shape.model == "outer"


def test_pose_in_degrees_and_roll_pitch_yaw_order(tmp_path: Path) -> None:
    # SDF rpy is fixed-axis x, then y, then z: R = Rz(yaw) Ry(pitch) Rx(roll).
    body = static_model("d", "<box><size>1 1 1</size></box>").replace(
        "<pose>0 0 0 0 0 0</pose>", '<pose degrees="true">0 0 0 90 0 90</pose>'
    )
    (shape,) = load_world(world_file(tmp_path, body)).shapes
    rot = shape.pose[:3, :3]
    # Rx(90) then Rz(90): body x -> world y, body y -> world z, body z -> world x.
    np.testing.assert_allclose(rot @ [1, 0, 0], [0, 1, 0], atol=1e-9)
    np.testing.assert_allclose(rot @ [0, 1, 0], [0, 0, 1], atol=1e-9)


def test_relative_to_sibling_frame_and_world(tmp_path: Path) -> None:
    body = """
    <frame name="plaza"><pose>5 5 0 0 0 0</pose></frame>
    <model name="a"><static>true</static><pose relative_to="plaza">1 0 0 0 0 0</pose>
      <frame name="f"><pose>0 2 0 0 0 0</pose></frame>
      <link name="l"><pose relative_to="f">0 0 1 0 0 0</pose>
        <collision name="c"><geometry><sphere><radius>1</radius></sphere></geometry></collision>
      </link></model>"""
    (shape,) = load_world(world_file(tmp_path, body)).shapes
    np.testing.assert_allclose(shape.pose[:3, 3], [6.0, 7.0, 1.0], atol=1e-9)


def test_unknown_relative_to_names_the_element(tmp_path: Path) -> None:
    body = static_model("a", "<box><size>1 1 1</size></box>").replace(
        "<pose>0 0 0 0 0 0</pose>", '<pose relative_to="nowhere">0 0 0 0 0 0</pose>'
    )
    with pytest.raises(SdfError, match=r"w\.sdf: world/model\[a\].*relative_to 'nowhere'"):
        load_world(world_file(tmp_path, body))


def test_relative_to_cycle_is_an_error(tmp_path: Path) -> None:
    body = """<model name="a"><static>true</static>
      <frame name="f"><pose relative_to="g">0 0 0 0 0 0</pose></frame>
      <frame name="g"><pose relative_to="f">0 0 0 0 0 0</pose></frame>
      <link name="l"><pose relative_to="f">0 0 0 0 0 0</pose></link></model>"""
    with pytest.raises(SdfError, match="cycle"):
        load_world(world_file(tmp_path, body))


def write_bench_model(root: Path) -> None:
    model = root / "park_bench"
    model.mkdir(parents=True)
    (model / "model.config").write_text(
        '<?xml version="1.0"?><model><name>park_bench</name><sdf version="1.9">bench.sdf</sdf>'
        "</model>"
    )
    (model / "bench.sdf").write_text(
        f'<?xml version="1.0"?><sdf version="1.9" {NS}>'
        + static_model(
            "park_bench",
            "<box><size>2 0.5 0.5</size></box>",
            pose="0 0 0.25 0 0 0",
            extra="<xiaomanlv:category>bench</xiaomanlv:category>",
        )
        + "</sdf>"
    )


def test_include_from_model_path_with_name_and_pose(tmp_path: Path) -> None:
    write_bench_model(tmp_path / "models")
    body = """<include><uri>model://park_bench</uri><name>bench_1</name>
      <pose>3 4 0 0 0 0</pose></include>"""
    world = load_world(world_file(tmp_path, body), model_path=[tmp_path / "models"])
    (shape,) = world.shapes
    assert world.models == ("bench_1",)
    assert shape.model == "bench_1"
    assert shape.category == "bench"
    # The include's pose replaces the model's own (0 0 0.25) pose.
    np.testing.assert_allclose(shape.pose[:3, 3], [3.0, 4.0, 0.0], atol=1e-9)


def test_include_keeps_model_pose_without_its_own(tmp_path: Path) -> None:
    write_bench_model(tmp_path / "models")
    body = "<include><uri>model://park_bench</uri></include>"
    (shape,) = load_world(world_file(tmp_path, body), model_path=[tmp_path / "models"]).shapes
    np.testing.assert_allclose(shape.pose[:3, 3], [0.0, 0.0, 0.25], atol=1e-9)


def test_include_resolves_through_gz_sim_resource_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_bench_model(tmp_path / "elsewhere")
    monkeypatch.setenv("GZ_SIM_RESOURCE_PATH", str(tmp_path / "elsewhere"))
    world = load_world(world_file(tmp_path, "<include><uri>model://park_bench</uri></include>"))
    assert [s.category for s in world.shapes] == ["bench"]


def test_unresolvable_include_names_uri_and_file(tmp_path: Path) -> None:
    body = "<include><uri>model://no_such_model</uri></include>"
    with pytest.raises(
        SdfError, match=r"w\.sdf: world/include\[no_such_model\]/uri.*no_such_model"
    ):
        load_world(world_file(tmp_path, body), model_path=[tmp_path])


def test_category_inherited_by_nested_models(tmp_path: Path) -> None:
    body = """<model name="campus_library"><static>true</static>
      <xiaomanlv:category>building</xiaomanlv:category>
      <model name="porch"><link name="l"><collision name="c">
        <geometry><box><size>1 1 1</size></box></geometry></collision></link></model>
      <model name="tree"><xiaomanlv:category>tree</xiaomanlv:category><link name="l">
        <collision name="c"><geometry><sphere><radius>1</radius></sphere></geometry></collision>
      </link></model></model>"""
    shapes = {s.name: s.category for s in load_world(world_file(tmp_path, body)).shapes}
    assert shapes == {
        "campus_library::porch::l::c": "building",
        "campus_library::tree::l::c": "tree",
    }


@pytest.mark.parametrize(
    ("geometry", "element"),
    [
        ("<heightmap><uri>h.png</uri></heightmap>", "heightmap"),
        ("<polyline><point>0 0</point><height>1</height></polyline>", "polyline"),
        ("<capsule><radius>1</radius><length>1</length></capsule>", "capsule"),
        ("<ellipsoid><radii>1 2 3</radii></ellipsoid>", "ellipsoid"),
    ],
)
def test_unsupported_geometry_names_element_path_and_file(
    tmp_path: Path, geometry: str, element: str
) -> None:
    path = world_file(tmp_path, static_model("lib", geometry))
    expected = rf"w\.sdf: world/model\[lib\]/link\[link\]/collision\[c\]/geometry/{element}: "
    with pytest.raises(SdfError, match=expected + "geometry <" + element):
        load_world(path)


@pytest.mark.parametrize(
    ("geometry", "where", "what"),
    [
        ("<box><size>1 2</size></box>", "box/size", "expected 3 finite numbers"),
        ("<box><size>1 -2 3</size></box>", "box/size", "must be positive"),
        ("<box><size>1 x 3</size></box>", "box/size", "expected 3 numbers"),
        ("<cylinder><radius>1</radius></cylinder>", "cylinder/length", "missing"),
        ("<sphere><radius>nan</radius></sphere>", "sphere/radius", "finite"),
        ("<mesh><uri>m.dae</uri></mesh>", "mesh/uri", "does not exist"),
    ],
)
def test_bad_geometry_values(tmp_path: Path, geometry: str, where: str, what: str) -> None:
    with pytest.raises(SdfError, match=rf"geometry/{where}: .*{what}"):
        load_world(world_file(tmp_path, static_model("m", geometry)))


def test_mesh_that_is_not_obj_or_stl(tmp_path: Path) -> None:
    (tmp_path / "m.dae").write_text("<COLLADA/>")
    with pytest.raises(SdfError, match="not OBJ or STL"):
        load_world(world_file(tmp_path, static_model("m", "<mesh><uri>m.dae</uri></mesh>")))


def test_non_static_model_is_rejected(tmp_path: Path) -> None:
    body = static_model("cart", "<box><size>1 1 1</size></box>").replace(
        "<static>true</static>", "<static>false</static>"
    )
    with pytest.raises(SdfError, match=r"world/model\[cart\]: model is not static"):
        load_world(world_file(tmp_path, body))


def test_bad_pose_text(tmp_path: Path) -> None:
    body = static_model("a", "<box><size>1 1 1</size></box>", pose="1 2 3")
    with pytest.raises(SdfError, match=r"world/model\[a\]/pose: expected 6"):
        load_world(world_file(tmp_path, body))


@pytest.mark.parametrize("version", ["1.6", "1.8"])
def test_old_sdf_versions_are_rejected(tmp_path: Path, version: str) -> None:
    with pytest.raises(SdfError, match=rf"SDF version {version} is older than 1\.9"):
        load_world(world_file(tmp_path, "", version=version))


def test_malformed_xml_and_missing_world(tmp_path: Path) -> None:
    bad = tmp_path / "bad.sdf"
    bad.write_text("<sdf version='1.9'><world>")
    with pytest.raises(SdfError, match=r"bad\.sdf: not well-formed XML"):
        load_world(bad)
    empty = tmp_path / "empty.sdf"
    empty.write_text("<sdf version='1.10'/>")
    with pytest.raises(SdfError, match=r"expected exactly one <world>, found 0"):
        load_world(empty)


def test_unsupported_world_element(tmp_path: Path) -> None:
    with pytest.raises(SdfError, match=r"world/actor: <actor> is not supported"):
        load_world(world_file(tmp_path, '<actor name="walker"/>'))


def test_spherical_coordinates_are_read(tmp_path: Path) -> None:
    body = """<spherical_coordinates><surface_model>EARTH_WGS84</surface_model>
      <latitude_deg>31.03</latitude_deg><longitude_deg>121.44</longitude_deg>
      <elevation>4.5</elevation><heading_deg>0</heading_deg></spherical_coordinates>"""
    sc = load_world(world_file(tmp_path, body)).spherical_coordinates
    assert sc is not None
    assert (sc.latitude, sc.longitude, sc.altitude) == (31.03, 121.44, 4.5)


@pytest.mark.parametrize("name", ["university", "residential"])
def test_shipped_worlds_load(name: str) -> None:
    world = load_world(assets.world_file(name))
    categories = {s.category for s in world.shapes}
    assert {"building", "ground", "tree", "ramp"} <= categories
    assert world.spherical_coordinates is not None
    assert len(world.models) == len(set(world.models))
    # Every shape stands within the world, at or above the ground.
    z = np.array([s.pose[2, 3] for s in world.shapes])
    assert z.min() >= -0.5
