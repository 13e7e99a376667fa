"""World generator: committed outputs are current, worlds are SDF 1.9 gz sim runs, layouts check."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from xiaomanlv_sim.worldgen import LayoutError, SiteLayout, check, generate, repo_root, write
from xiaomanlv_sim.worldgen.__main__ import main
from xiaomanlv_sim.worldgen.furniture import KERB_HEIGHT, building
from xiaomanlv_sim.worldgen.layout import StopSpec

NS = "{https://github.com/xiaomanlv/sdf}"
CATEGORIES = {
    "building", "tree", "lamp_post", "bench", "bollard", "kerb", "ramp",
    "fence", "gate", "car", "wall", "ground", "field",
}  # fmt: skip
SYSTEMS = {
    "gz-sim-physics-system",
    "gz-sim-user-commands-system",
    "gz-sim-scene-broadcaster-system",
    "gz-sim-sensors-system",
    "gz-sim-imu-system",
    "gz-sim-navsat-system",
}


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return generate()


def _world(generated: dict[str, str], name: str) -> ET.Element:
    world = ET.fromstring(generated[f"worlds/{name}.sdf"]).find("world")
    assert world is not None
    return world


def test_committed_files_equal_the_generator_output() -> None:
    assert check(repo_root()) == []


def test_generation_is_deterministic(generated: dict[str, str]) -> None:
    assert generate() == generated
    assert set(generated) == {
        "models/xiaomanlv/model.sdf",
        "urdf/xiaomanlv.urdf",
        "worlds/university.sdf",
        "worlds/university.site.yaml",
        "worlds/residential.sdf",
        "worlds/residential.site.yaml",
    }


def test_check_reports_edited_and_missing_files(tmp_path: Path) -> None:
    write(tmp_path)
    assert check(tmp_path) == []
    assert main(["--check", "--root", str(tmp_path)]) == 0
    edited = tmp_path / "worlds" / "residential.site.yaml"
    edited.write_text(edited.read_text().replace("name: block_1_north", "name: renamed"))
    (tmp_path / "models" / "xiaomanlv" / "model.sdf").unlink()
    problems = check(tmp_path)
    assert len(problems) == 2
    assert problems[0].startswith("models/xiaomanlv/model.sdf: missing")
    assert problems[1].startswith("worlds/residential.site.yaml: 2 lines differ")
    assert "-  - name: renamed" in problems[1] and "+  - name: block_1_north" in problems[1]
    assert main(["--check", "--root", str(tmp_path)]) == 1
    assert main(["--root", str(tmp_path)]) == 0
    assert check(tmp_path) == []


@pytest.mark.parametrize("name", ["university", "residential"])
def test_world_is_sdf_1_9_with_what_gz_sim_needs(generated: dict[str, str], name: str) -> None:
    text = generated[f"worlds/{name}.sdf"]
    root = ET.fromstring(text)
    assert root.tag == "sdf" and root.get("version") == "1.9"
    assert 'xmlns:xiaomanlv="https://github.com/xiaomanlv/sdf"' in text
    world = _world(generated, name)
    assert world.get("name") == name
    plugins = {p.get("filename"): p for p in world.findall("plugin")}
    assert set(plugins) == SYSTEMS
    assert plugins["gz-sim-sensors-system"].findtext("render_engine") == "ogre2"
    assert all(p.get("name", "").startswith("gz::sim::systems::") for p in plugins.values())
    assert world.find("physics") is not None and world.find("scene") is not None
    sun = world.find("light[@name='sun']")
    assert sun is not None and sun.get("type") == "directional"
    geo = world.find("spherical_coordinates")
    assert geo is not None
    assert geo.findtext("world_frame_orientation") == "ENU"
    assert 29.0 < float(geo.findtext("latitude_deg", "")) < 31.0  # Hangzhou
    assert 119.0 < float(geo.findtext("longitude_deg", "")) < 121.0
    assert world.find("include") is None  # the robot is spawned, never part of the world
    assert "xiaomanlv" not in {m.get("name") for m in world.findall("model")}


@pytest.mark.parametrize("name", ["university", "residential"])
def test_every_model_is_static_categorised_and_primitive(
    generated: dict[str, str], name: str
) -> None:
    world = _world(generated, name)
    models = world.findall("model")
    names = [m.get("name") for m in models]
    assert len(names) == len(set(names))
    for model in models:
        assert model.findtext("static") == "true", model.get("name")
        assert model.findtext(f"{NS}category") in CATEGORIES, model.get("name")
        for collision in model.iter("collision"):
            geometry = collision.find("geometry")
            assert geometry is not None
            assert [g.tag for g in geometry] in (["box"], ["cylinder"], ["sphere"], ["plane"])
    ground = [m for m in models if m.findtext(f"{NS}category") == "ground"]
    assert len(ground) == 1 and ground[0].find(".//plane") is not None


def _model_heights(world: ET.Element, category: str) -> dict[str, float]:
    """Top [m] of the tallest collision of each model of ``category`` (no rotated boxes)."""
    tops: dict[str, float] = {}
    for model in world.findall("model"):
        if model.findtext(f"{NS}category") != category:
            continue
        for collision in model.iter("collision"):
            z = float(collision.findtext("pose", "0 0 0 0 0 0").split()[2])
            size = collision.findtext("geometry/box/size")
            half = float(size.split()[2]) / 2 if size else 0.0
            tops[model.get("name", "")] = max(tops.get(model.get("name", ""), 0.0), z + half)
    return tops


def test_university_scale_and_contents(generated: dict[str, str]) -> None:
    world = _world(generated, "university")
    size = world.findtext("model[@name='ground_plane']/link/collision/geometry/plane/size", "")
    width, height = (float(v) for v in size.split())
    assert width >= 400.0 and height >= 400.0
    xs = [float(m.findtext("pose", "").split()[0]) for m in world.findall("model")]
    ys = [float(m.findtext("pose", "").split()[1]) for m in world.findall("model")]
    assert max(xs) - min(xs) >= 400.0 and max(ys) - min(ys) >= 400.0
    categories = {m.findtext(f"{NS}category") for m in world.findall("model")}
    assert categories >= CATEGORIES
    tall = {n: h for n, h in _model_heights(world, "building").items() if h >= 20.0}
    assert len([n for n in tall if n.startswith("dorm_")]) >= 3
    for name in ("library", "canteen", "delivery_station", "gym"):
        assert world.find(f"model[@name='{name}']") is not None
    kerb_tops = _model_heights(world, "kerb")
    assert kerb_tops and all(0.12 <= h <= 0.15 for h in kerb_tops.values())
    shapes = len(list(world.iter("collision")))
    assert 300 < shapes < 2000  # a lidar budget of a few thousand primitives


def test_residential_is_gated_with_tall_blocks_and_cars(generated: dict[str, str]) -> None:
    world = _world(generated, "residential")
    categories = [m.findtext(f"{NS}category") for m in world.findall("model")]
    assert "fence" in categories and "gate" in categories and "kerb" in categories
    blocks = _model_heights(world, "building")
    assert len([h for h in blocks.values() if h >= 30.0]) >= 6
    for car in world.iterfind(".//collision"):
        if car.get("name", "").endswith("_body"):
            length, width, _ = (float(v) for v in car.findtext("geometry/box/size", "").split())
            assert 4.0 <= length <= 5.2 and 1.7 <= width <= 2.0


def test_ramps_are_sloped_boxes_rising_to_kerb_or_landing_height(
    generated: dict[str, str],
) -> None:
    world = _world(generated, "university")
    slopes = [
        c
        for m in world.findall("model")
        if m.findtext(f"{NS}category") == "ramp"
        for c in m.iter("collision")
        if c.get("name", "").startswith("slope")
    ]
    assert len(slopes) >= 10
    for collision in slopes:
        pitch = float(collision.findtext("pose", "").split()[4])
        length = float(collision.findtext("geometry/box/size", "").split()[0])
        rise = length * math.sin(abs(pitch))
        assert KERB_HEIGHT - 0.01 <= rise <= 0.16
        assert 0.05 < abs(pitch) < 0.12  # 3-7 degrees


def _tiny_layout() -> SiteLayout:
    site = SiteLayout("tiny", "tiny", 30.0, 120.0, 0.0, (-50.0, -50.0, 50.0, 50.0))
    site.node("a", -40.0, 0.0)
    site.node("b", 40.0, 0.0)
    site.node("c", 40.0, 20.0)
    site.edge("a", "b", 3.0)
    site.edge("b", "c", 3.0)
    site.edge("c", "a", 3.0)
    site.station_node = "a"
    site.loading = (-40.0, 0.0, 0.0)
    site.charging = (-40.0, 0.0, 0.0)
    site.route = ["a", "b", "c", "a"]
    return site


def test_layout_validation_catches_a_blocked_walkway() -> None:
    site = _tiny_layout()
    site.validate()
    building(site, "shed", 0.0, 0.8, 4.0, 4.0, 3.0)  # reaches to y = -1.2: inside the corridor
    with pytest.raises(
        LayoutError, match=r"tiny: walkway a-b \(width 3.0\) blocked by shed::block"
    ):
        site.validate()


def test_layout_validation_catches_stops_on_obstacles_and_routes_off_walkways() -> None:
    site = _tiny_layout()
    building(site, "shed", 0.0, -10.0, 4.0, 4.0, 3.0)
    site.stops.append(StopSpec("in_shed", (0.0, -9.0, 0.0), "shed", (0.0, -8.0)))
    with pytest.raises(LayoutError, match=r"tiny: in_shed footprint overlaps shed::block"):
        site.validate()
    site = _tiny_layout()
    site.node("d", 0.0, -30.0)
    site.edge("a", "d", 3.0)
    site.route = ["a", "b", "d", "a"]
    with pytest.raises(LayoutError, match=r"mapping route step b->d is not a walkway edge"):
        site.validate()
    site.route = ["b", "a", "d", "a"]
    with pytest.raises(LayoutError, match=r"must start and end at the station node"):
        site.validate()
