"""Site checks: each rule broken by a small hand-built site; the shipped sites keep them all."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from site_rig import HALF_PI, SIDECAR, box_model, toy_site

from xiaomanlv_core.robot import RobotSpec, load_robot, model_file
from xiaomanlv_core.site import MappingRoute, Site, load_site
from xiaomanlv_sim.sdf import load_world
from xiaomanlv_sim.sitecheck import SiteProblem, check_site, errors, is_sidecar_document
from xiaomanlv_sim.world import World

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def robot() -> RobotSpec:
    return load_robot(model_file())


def check(
    folder: Path,
    robot: RobotSpec,
    edit: Any = None,
    models: tuple[str, ...] = (),
) -> list[SiteProblem]:
    site = load_site(toy_site(folder, edit, models))
    return check_site(load_world(site.world), site, robot)


def about(problems: list[SiteProblem], element: str) -> list[SiteProblem]:
    return [p for p in problems if p.element == element]


def test_the_toy_site_is_clean(tmp_path: Path, robot: RobotSpec) -> None:
    assert check(tmp_path, robot) == []


@pytest.mark.parametrize("name", ["university", "residential"])
def test_shipped_sites_keep_every_rule(name: str, robot: RobotSpec) -> None:
    site = load_site(REPO / "worlds" / f"{name}.site.yaml")
    assert check_site(load_world(site.world), site, robot) == []


def test_a_bench_on_a_walkway_is_named_with_the_edge_and_place(
    tmp_path: Path, robot: RobotSpec
) -> None:
    bench = box_model("bench", "bench", 10, 1.0, (1.6, 0.5, 0.45))
    problems = check(tmp_path, robot, models=(bench,))
    (edge,) = about(problems, "walkways.edges[0] (s - a)")
    assert edge.severity == "error"
    assert "blocked by bench::link::c (bench, 0.75 m from the centre line)" in edge.message
    assert "width 3 m" in edge.message
    assert edge.where is not None and edge.where[0] == pytest.approx(10, abs=0.8)
    assert 0.75 <= edge.where[1] <= 1.5
    (route,) = about(problems, "mapping_route.waypoints[0]-[1]")
    assert route.severity == "error" and "walkways.edges[0] (s - a)" in route.message
    # the stop is still reached the other way round the loop
    assert not [p for p in problems if p.element.startswith("stops")]


@pytest.mark.parametrize(("height", "blocked"), [(0.10, False), (0.13, True)])
def test_a_kerb_blocks_only_above_the_robots_climbing_limit(
    tmp_path: Path, robot: RobotSpec, height: float, blocked: bool
) -> None:
    kerb = box_model("kerb", "kerb", 10, 0, (0.15, 4.0, height))
    assert robot.body.max_step == pytest.approx(0.12)
    problems = errors(check(tmp_path, robot, models=(kerb,)))
    assert bool(about(problems, "walkways.edges[0] (s - a)")) is blocked
    climber = dataclasses.replace(robot, body=dataclasses.replace(robot.body, max_step=0.15))
    assert errors(check(tmp_path, climber, models=(kerb,))) == []


def test_a_ramp_on_a_walkway_is_driven_over(tmp_path: Path, robot: RobotSpec) -> None:
    ramp = box_model("ramp", "ramp", 10, 0, (3.0, 3.0, 0.3))
    assert check(tmp_path, robot, models=(ramp,)) == []


def test_a_spur_narrower_than_the_robot_leaves_its_stop_unreachable(
    tmp_path: Path, robot: RobotSpec
) -> None:
    def narrow(d: dict[str, Any]) -> None:
        d["walkways"]["edges"][4][2] = 0.8

    problems = check(tmp_path, robot, narrow)
    (spur,) = about(problems, "walkways.edges[4] (c - h)")
    assert spur.severity == "warning" and "narrower than the robot (1 m)" in spur.message
    (stop,) = about(problems, "stops[0] (hall_south)")
    assert stop.severity == "error"
    assert "walkways.edges[4] (c - h) narrower than the robot (0.8 m)" in stop.message


def test_a_blocked_spur_leaves_its_stop_unreachable(tmp_path: Path, robot: RobotSpec) -> None:
    bollard = box_model("bollard", "bollard", -5, 10, (0.2, 0.2, 1.0))
    problems = check(tmp_path, robot, models=(bollard,))
    assert about(problems, "walkways.edges[4] (c - h)")[0].severity == "error"
    (stop,) = about(problems, "stops[0] (hall_south)")
    assert stop.message.startswith("lies only on walkways the robot cannot drive")
    assert "walkways.edges[4] (c - h) blocked" in stop.message


def test_a_stop_off_the_walkways(tmp_path: Path, robot: RobotSpec) -> None:
    def move(d: dict[str, Any]) -> None:
        d["stops"][0]["pose"] = [-12, 5, HALF_PI]

    (stop,) = check(tmp_path, robot, move)
    assert stop.element == "stops[0] (hall_south)" and stop.where == (-12, 5)
    assert "3.50 m beyond the edge of the nearest one, walkways.edges[4] (c - h)" in stop.message


def test_a_parked_robot_in_the_facade_and_facing_away(tmp_path: Path, robot: RobotSpec) -> None:
    def move(d: dict[str, Any]) -> None:
        d["stops"][0]["pose"] = [-12, 11.8, 0.0]

    problems = about(check(tmp_path, robot, move), "stops[0] (hall_south)")
    assert [p.severity for p in problems] == ["error", "warning"]
    assert "the parked robot (1.8 x 1 m) overlaps hall::link::c (building)" in problems[0].message
    assert "faces 90 deg away from its entrance" in problems[1].message


def test_an_entrance_off_its_facade_or_on_no_building(tmp_path: Path, robot: RobotSpec) -> None:
    def inside(d: dict[str, Any]) -> None:
        d["stops"][0]["entrance"] = d["entrances"]["hall_south"] = [-12, 14]

    (door,) = errors(check(tmp_path, robot, inside))
    assert door.element == "stops[0] (hall_south).entrance" and door.where == (-12, 14)
    assert "2.00 m inside its outline" in door.message and "(-12.00, 12.00)" in door.message

    def outside(d: dict[str, Any]) -> None:
        d["stops"][0]["entrance"] = d["entrances"]["hall_south"] = [-12, 11]

    (door,) = errors(check(tmp_path, robot, outside))
    assert "1.00 m outside its outline" in door.message

    def nowhere(d: dict[str, Any]) -> None:
        d["stops"][0]["building"] = "annex"

    (door,) = check(tmp_path, robot, nowhere)
    assert door.element == "stops[0] (hall_south).building"
    assert "'annex' is not a model of world toy (toy.sdf)" in door.message


def test_entrances_inside_obstacles_or_apart_from_their_stop(
    tmp_path: Path, robot: RobotSpec
) -> None:
    def entrances(d: dict[str, Any]) -> None:
        d["entrances"] = {"courtyard": [-12, 17], "gate": [20, -5]}

    problems = check(tmp_path, robot, entrances)
    (lost,) = about(problems, "stops[0] (hall_south)")
    assert lost.severity == "warning" and "not in entrances" in lost.message
    (courtyard,) = about(problems, "entrances.courtyard")
    assert courtyard.severity == "error"
    assert courtyard.message.startswith("5.00 m inside hall::link::c (building)")

    def apart(d: dict[str, Any]) -> None:
        d["entrances"]["hall_south"] = [0, 0]

    (named,) = check(tmp_path, robot, apart)
    assert named.element == "entrances.hall_south" and named.severity == "warning"
    assert "16.97 m from its entrance (-12, 12)" in named.message


def test_a_route_off_the_walkways(tmp_path: Path, robot: RobotSpec) -> None:
    site = load_site(toy_site(tmp_path))
    diagonal = ((0.0, 0.0), (20.0, 10.0), (0.0, 10.0), (0.0, 0.0))  # s -> b cuts the corner
    route = MappingRoute(waypoints=diagonal, closes_loop=True, length=52.4)
    site = dataclasses.replace(site, mapping_route=route)
    (off,) = check_site(load_world(site.world), site, robot)
    assert off.element == "mapping_route.waypoints[0]-[1]" and off.severity == "error"
    assert "leaves the walkways for" in off.message
    assert off.where == (3.0, 1.5)  # where it leaves the s - a corridor


def test_a_route_away_from_the_station_without_a_loop(tmp_path: Path, robot: RobotSpec) -> None:
    def short(d: dict[str, Any]) -> None:
        d["mapping_route"]["waypoints"] = [[0, 0], [20, 0], [20, 10]]

    problems = check(tmp_path, robot, short)
    assert [(p.severity, p.element) for p in problems] == [
        ("warning", "mapping_route.waypoints[2]"),
        ("warning", "mapping_route"),
    ]
    assert "ends 22.4 m from station.loading" in problems[0].message
    assert "no loop to close" in problems[1].message


def test_nodes_at_one_place_and_edges_crossing_without_a_node(
    tmp_path: Path, robot: RobotSpec
) -> None:
    def tangle(d: dict[str, Any]) -> None:
        d["walkways"]["nodes"]["h2"] = [-12, 10.015]
        d["walkways"]["edges"] += [["h2", "c", 2], ["s", "b", 2], ["a", "c", 2]]

    problems = check(tmp_path, robot, tangle)
    (twin,) = about(problems, "walkways.nodes.h2")
    assert twin.severity == "error" and "same place as node h (0.015 m apart)" in twin.message
    (cross,) = about(problems, "walkways.edges[6] (s - b)")
    assert cross.severity == "warning"
    assert "crosses walkways.edges[7] (a - c) away from any node" in cross.message
    assert cross.where == (10, 5)


def test_a_problem_reads_as_one_line() -> None:
    p = SiteProblem("error", "stops[0] (x)", "off the walkways", (1.0, -2.5))
    assert str(p) == "error: stops[0] (x): off the walkways at (1.00, -2.50)"
    assert str(SiteProblem("warning", "mapping_route", "no loop")) == (
        "warning: mapping_route: no loop"
    )


def test_a_sidecar_is_told_from_a_scenario_by_its_keys() -> None:
    assert is_sidecar_document(SIDECAR)
    assert is_sidecar_document({"name": "x", "walkways": None})
    scenario = {"name": "x", "world": "university", "seed": 1, "duration": 60, "start": "station"}
    assert not is_sidecar_document(scenario)
    assert not is_sidecar_document([SIDECAR])


def test_worlds_are_unchanged_by_a_check(tmp_path: Path, robot: RobotSpec) -> None:
    site: Site = load_site(toy_site(tmp_path))
    world: World = load_world(site.world)
    before = (world.shapes, site)
    check_site(world, site, robot)
    assert (world.shapes, site) == before


def test_a_stop_built_without_a_door_is_an_error(tmp_path: Path, robot: RobotSpec) -> None:
    site = load_site(toy_site(tmp_path))
    doorless = dataclasses.replace(site.stops[0], entrance=None)
    site = dataclasses.replace(site, stops=(doorless,))
    (door,) = errors(check_site(load_world(site.world), site, robot))
    assert door.element == "stops[0] (hall_south).entrance"
    assert door.message.startswith("missing")
