"""`model://` resolution errors that say what to set, and mesh errors seen through a world."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from xiaomanlv_sim import assets
from xiaomanlv_sim.meshes import MeshError
from xiaomanlv_sim.sdf import SdfError, load_world


def world_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "w.sdf"
    path.write_text(f'<?xml version="1.0"?><sdf version="1.9"><world name="t">{body}</world></sdf>')
    return path


def static_model(name: str, geometry: str) -> str:
    return (
        f'<model name="{name}"><static>true</static><link name="link"><collision name="c">'
        f"<geometry>{geometry}</geometry></collision></link></model>"
    )


@pytest.fixture(autouse=True)
def _no_search_path(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("GZ_SIM_RESOURCE_PATH", "GAZEBO_MODEL_PATH", "IGN_GAZEBO_RESOURCE_PATH"):
        monkeypatch.delenv(variable, raising=False)


def include(uri: str) -> str:
    return f"<include><uri>{uri}</uri><name>x</name></include>"


def test_unresolved_model_lists_the_folders_searched_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "site_models", tmp_path / "gz_a"
    first.mkdir()
    second.mkdir()
    missing = tmp_path / "gz_missing"
    monkeypatch.setenv("GZ_SIM_RESOURCE_PATH", os.pathsep.join([str(second), "", str(missing)]))
    world = world_file(tmp_path, include("model://kiosk"))
    with pytest.raises(SdfError) as info:
        load_world(world, model_path=[first])
    message = str(info.value)
    assert message.startswith(f"{world}: world/include[x]/uri: cannot resolve 'model://kiosk'")
    searched = [
        f"{first} (model_path)",
        f"{assets.models_dir()} (the package's models/)",
        f"{second} (GZ_SIM_RESOURCE_PATH)",
        f"{missing} (GZ_SIM_RESOURCE_PATH, does not exist)",
    ]
    assert f"searched in order: {', '.join(searched)}." in message
    assert "Set GZ_SIM_RESOURCE_PATH to the folder that holds 'kiosk/'" in message
    assert "is not set" not in message


def test_unset_variable_is_named(tmp_path: Path) -> None:
    with pytest.raises(
        SdfError, match=r"Set GZ_SIM_RESOURCE_PATH .*; GZ_SIM_RESOURCE_PATH is not set$"
    ):
        load_world(world_file(tmp_path, include("model://kiosk")))


def test_older_gazebo_variable_is_named_with_where_the_model_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    classic = tmp_path / "classic_models"
    (classic / "kiosk").mkdir(parents=True)
    monkeypatch.setenv("GAZEBO_MODEL_PATH", str(classic))
    monkeypatch.setenv("IGN_GAZEBO_RESOURCE_PATH", str(tmp_path / "nothing_here"))
    with pytest.raises(SdfError) as info:
        load_world(world_file(tmp_path, include("model://kiosk")))
    message = str(info.value)
    assert (
        f"GAZEBO_MODEL_PATH is set but not read (Gazebo Classic's variable), and 'kiosk/' is in "
        f"{classic}: add its folders to GZ_SIM_RESOURCE_PATH" in message
    )
    assert "IGN_GAZEBO_RESOURCE_PATH is set but not read (Ignition Gazebo's variable): " in message


def test_model_found_without_the_file_named_under_it(tmp_path: Path) -> None:
    (tmp_path / "models" / "kiosk").mkdir(parents=True)
    body = static_model("k", "<mesh><uri>model://kiosk/meshes/body.obj</uri></mesh>")
    with pytest.raises(SdfError, match=re.escape(
        f"model folder {tmp_path / 'models' / 'kiosk'} has no 'meshes/body.obj'"
    )):  # fmt: skip
        load_world(world_file(tmp_path, body), model_path=[tmp_path / "models"])


def test_model_resolves_through_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    meshes = tmp_path / "gz" / "kiosk" / "meshes"
    meshes.mkdir(parents=True)
    (meshes / "body.obj").write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nf 1 2 3 4\n")
    monkeypatch.setenv("GZ_SIM_RESOURCE_PATH", str(tmp_path / "gz"))
    body = static_model("k", "<mesh><uri>model://kiosk/meshes/body.obj</uri></mesh>")
    (shape,) = load_world(world_file(tmp_path, body)).shapes
    assert shape.geometry.path == meshes / "body.obj"  # type: ignore[union-attr]


def test_a_broken_mesh_fails_the_world_load_naming_line_and_element(tmp_path: Path) -> None:
    (tmp_path / "roof.obj").write_text("v 0 0 0\nv 1 0 0\nv 1 1 0\nf 1 2 3 4\n")
    body = static_model("hall", "<mesh><uri>roof.obj</uri></mesh>")
    with pytest.raises(MeshError, match=re.escape(
        f"roof.obj: line 4: face index 4 is out of range: the file has 3 vertices (mesh of "
        f"{tmp_path / 'w.sdf'}: world/model[hall]/link[link]/collision[c]/geometry/mesh)"
    )):  # fmt: skip
        load_world(world_file(tmp_path, body))
