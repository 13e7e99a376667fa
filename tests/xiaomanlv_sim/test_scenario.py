"""Scenarios: YAML round trip, every bad field named, generator output valid and seeded."""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any

import pytest
import shapely
import yaml

from xiaomanlv_core.site import load_site
from xiaomanlv_core.types import Pose2D
from xiaomanlv_sim.assets import site_file, world_file
from xiaomanlv_sim.scenario import (
    CrowdSpec,
    DoorJam,
    GnssJump,
    ImuBiasStep,
    ObstacleSpec,
    RecipientSpec,
    Scenario,
    ScenarioError,
    SensorDropout,
    WeatherSpec,
    WheelSlipPatch,
    dump_scenario,
    generate_scenarios,
    load_scenario,
    scenario_to_dict,
)

REPO = Path(__file__).resolve().parents[2]

FULL = Scenario(
    name="everything",
    world="university",
    seed=42,
    duration=300.0,
    start=Pose2D(150.0, -150.0, 1.5),
    crowd=CrowdSpec(pedestrians=40, cyclists=5, group_fraction=0.25, loiter_fraction=0.05),
    obstacles=(
        ObstacleSpec("trolley", Pose2D(60.0, 1.5, 0.0), (1.0, 0.6, 1.0), 10.0, 200.0),
        ObstacleSpec("box", Pose2D(0.0, 50.0, 0.3), (0.6, 0.5, 0.5)),
    ),
    weather=(WeatherSpec("rain", 0.0, 100.0, 0.5), WeatherSpec("fog", 50.0, 150.0, 0.2)),
    faults=(
        SensorDropout("lidar", 10.0, 12.0),
        GnssJump(20.0, 40.0, (3.0, -1.0)),
        ImuBiasStep(30.0, gyro=(0.0, 0.0, 0.01)),
        WheelSlipPatch((60.0, 0.0), 2.0, 0.4, 0.0, None),
        DoorJam(7, 5.0, 90.0),
    ),
    recipients=(RecipientSpec("library_west"), RecipientSpec("gym_north", "late", 60.0)),
)


def write(tmp_path: Path, data: Any, name: str = "s.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_round_trip_keeps_every_field(tmp_path: Path) -> None:
    path = dump_scenario(FULL, tmp_path / "sub" / "full.yaml")
    loaded = load_scenario(path)
    assert loaded == FULL
    assert loaded.source == path
    assert scenario_to_dict(loaded) == scenario_to_dict(FULL)


def test_defaults_and_named_start(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        {"name": "n", "world": "university", "seed": 1, "duration": 60, "start": "station"},
    )
    s = load_scenario(path)
    assert s.crowd == CrowdSpec() and s.faults == () and s.start == "station"
    path = write(
        tmp_path,
        {"name": "n", "world": "university", "seed": 1, "duration": 60, "start": "gym_north"},
    )
    assert load_scenario(path).start == "gym_north"


BASE = scenario_to_dict(FULL)

# (change to the valid mapping, the field the message must name, words it must contain)
BAD: list[tuple[str, Any, str, str]] = [
    ("name", "", "name", "non-empty string"),
    ("seed", -1, "seed", "must be in"),
    ("seed", 1.5, "seed", "integer"),
    ("duration", 0, "duration", "> 0"),
    ("duration", True, "duration", "number"),
    ("world", "atlantis", "world", "no world named 'atlantis'"),
    ("start", "roof_garden", "start", "neither 'station' nor a stop"),
    ("start", {"x": 1.0}, r"start\.y", "required"),
    ("bogus", 1, "bogus", "unknown key"),
    ("crowd.pedestrians", -3, r"crowd\.pedestrians", "must be in"),
    ("crowd.group_fraction", 1.5, r"crowd\.group_fraction", "<= 1"),
    ("crowd.tourists", 3, r"crowd\.tourists", "unknown key"),
    ("obstacles.0.kind", "piano", r"obstacles\[0\]\.kind", "one of trolley, barrier, box"),
    ("obstacles.0.size", [1.0, 0.6], r"obstacles\[0\]\.size", "list of 3"),
    ("obstacles.1.size", [1.0, 0.0, 1.0], r"obstacles\[1\]\.size\[1\]", "> 0"),
    ("obstacles.0.disappear_at", 5.0, r"obstacles\[0\]\.disappear_at", "after appear_at"),
    ("obstacles.0.pose.yaw", "north", r"obstacles\[0\]\.pose\.yaw", "number"),
    ("weather.0.intensity", 2.0, r"weather\[0\]\.intensity", "<= 1"),
    ("weather.1.kind", "snow", r"weather\[1\]\.kind", "one of rain, fog"),
    ("weather.1.start", 400.0, r"weather\[1\]\.start", "before the end"),
    ("faults.0.sensor", "radar", r"faults\[0\]\.sensor", "one of lidar"),
    ("faults.1.end", 10.0, r"faults\[1\]\.end", r"must be after start \(20 >= 10\)"),
    ("faults.1.offset", [1.0], r"faults\[1\]\.offset", "list of 2"),
    ("faults.2.gyro", [0.0, 0.0, 0.0], r"faults\[2\]", "non-zero"),
    ("faults.3.slip", 1.2, r"faults\[3\]\.slip", "<= 1"),
    ("faults.3.radius", 0.0, r"faults\[3\]\.radius", "> 0"),
    ("faults.4.compartment", 51, r"faults\[4\]\.compartment", r"\[1, 50\]"),
    ("faults.4.type", "meteor", r"faults\[4\]\.type", "one of sensor_dropout"),
    ("faults.4.colour", "red", r"faults\[4\]\.colour", "unknown key"),
    ("recipients.0.stop", "nowhere_hall", r"recipients\[0\]\.stop", "not a stop of site"),
    ("recipients.1.stop", "library_west", r"recipients\[1\]\.stop", "already has recipients"),
    ("recipients.1.behaviour", "angry", r"recipients\[1\]\.behaviour", "one of on_time"),
    ("recipients.1.delay", -5.0, r"recipients\[1\]\.delay", ">= 0"),
]


def mutate(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    out = copy.deepcopy(data)
    *parents, last = dotted.split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return out


@pytest.mark.parametrize(
    ("dotted", "value", "field", "words"), BAD, ids=[b[0] + "=" + repr(b[1]) for b in BAD]
)
def test_bad_field_is_named(
    tmp_path: Path, dotted: str, value: Any, field: str, words: str
) -> None:
    path = write(tmp_path, mutate(BASE, dotted, value), "rainy.yaml")
    with pytest.raises(ScenarioError, match=rf"^{path}: {field}: .*{words}"):
        load_scenario(path)


def test_overlapping_weather_of_one_kind(tmp_path: Path) -> None:
    data = mutate(
        BASE, "weather.1", {"kind": "rain", "start": 90.0, "end": 120.0, "intensity": 0.3}
    )
    with pytest.raises(ScenarioError, match=r"weather\[1\]: overlaps weather\[0\]"):
        load_scenario(write(tmp_path, data))


def test_missing_required_and_not_a_mapping(tmp_path: Path) -> None:
    data = dict(BASE)
    del data["duration"]
    with pytest.raises(ScenarioError, match=r"s\.yaml: duration: is required"):
        load_scenario(write(tmp_path, data))
    with pytest.raises(ScenarioError, match=r"must be a mapping"):
        load_scenario(write(tmp_path, ["a", "list"]))


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("name: x\nworld: [university\nseed: 1\n")
    with pytest.raises(ScenarioError, match=r"broken\.yaml: line \d+: not valid YAML"):
        load_scenario(path)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "absent.yaml")


def test_world_path_is_relative_to_the_scenario_file(tmp_path: Path) -> None:
    (tmp_path / "worlds").mkdir()
    sdf = tmp_path / "worlds" / "mine.sdf"
    sdf.write_text("<sdf version='1.9'/>")
    data = {"name": "n", "world": "worlds/mine.sdf", "seed": 1, "duration": 60, "start": "station"}
    s = load_scenario(write(tmp_path, data))
    assert Path(s.world) == sdf.resolve()
    data["world"] = "worlds/other.sdf"
    with pytest.raises(ScenarioError, match=r"world: world file .*other\.sdf does not exist"):
        load_scenario(write(tmp_path, data))


def test_shipped_example_scenarios_are_valid() -> None:
    files = sorted((REPO / "scenarios").glob("*.yaml"))
    names = {f.stem for f in files}
    assert {"university_rush_hour", "university_rain", "residential_gnss_faults"} <= names
    loaded = {f.stem: load_scenario(f) for f in files}
    assert loaded["university_rush_hour"].crowd.pedestrians == 100
    assert any(s.crowd.pedestrians == 0 and "mapping" in s.name for s in loaded.values())


def test_generator_is_valid_seeded_and_varied(tmp_path: Path) -> None:
    a = generate_scenarios("university", 30, seed=3)
    assert a == generate_scenarios("university", 30, seed=3)
    assert a != generate_scenarios("university", 30, seed=4)
    assert len({s.name for s in a}) == 30
    for s in a:  # every one survives the file round trip and validation
        assert load_scenario(dump_scenario(s, tmp_path / f"{s.name}.yaml")) == s
    assert len({s.crowd.pedestrians for s in a}) > 10
    assert any(s.weather for s in a) and any(s.faults for s in a)
    assert any(s.obstacles for s in a) and any(s.recipients for s in a)
    kinds = {type(f).__name__ for s in a for f in s.faults}
    assert kinds == {"SensorDropout", "GnssJump", "ImuBiasStep", "WheelSlipPatch", "DoorJam"}
    assert generate_scenarios("university", 0, seed=3) == []


def test_generated_obstacles_lie_on_walkways() -> None:
    site = load_site(site_file(world_file("university")))
    nodes = site.walkways.nodes
    lanes = [
        shapely.LineString([nodes[a], nodes[b]]).buffer(w / 2 + 1e-6)
        for a, b, w in site.walkways.edges
    ]
    union = shapely.union_all(lanes)
    obstacles = [o for s in generate_scenarios("university", 40, seed=9) for o in s.obstacles]
    assert len(obstacles) > 10
    for o in obstacles:
        assert union.contains(shapely.Point(o.pose.x, o.pose.y))
        assert o.disappear_at is None or o.disappear_at > o.appear_at
        assert math.isfinite(o.pose.yaw)


def test_generator_errors() -> None:
    with pytest.raises(ScenarioError, match="count must be >= 0"):
        generate_scenarios("university", -1, seed=0)
    with pytest.raises(ScenarioError, match="no world named 'atlantis'"):
        generate_scenarios("atlantis", 1, seed=0)
