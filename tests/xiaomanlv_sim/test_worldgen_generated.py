"""Generated campus sites: deterministic per seed, geometrically sound, varied, drivable."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from pathlib import Path

import pytest
from shapely.geometry import LineString

from xiaomanlv_bringup.ros.mapping_drive import record_mapping_drive
from xiaomanlv_core.robot import load_robot, model_file
from xiaomanlv_core.site import load_site
from xiaomanlv_sim import assets
from xiaomanlv_sim.operator import RouteDriver
from xiaomanlv_sim.sdf import load_world
from xiaomanlv_sim.simulator import Simulator, SimulatorConfig
from xiaomanlv_sim.sitecheck import check_site
from xiaomanlv_sim.worldgen.__main__ import main
from xiaomanlv_sim.worldgen.furniture import KERB_HEIGHT
from xiaomanlv_sim.worldgen.generated import (
    DEFAULT_SIZE,
    RING_INSET,
    GeneratedSite,
    _turn,
    build_site,
    generate_site,
    site_name,
)
from xiaomanlv_sim.worldgen.layout import SiteLayout, prim_footprint
from xiaomanlv_sim.worldgen.writers import sidecar_yaml, world_sdf

SEEDS = range(20)
SIZES = (120.0, 160.0, 200.0)  # cycled over the seeds: small sites keep the test quick


def _size(seed: int) -> float:
    return SIZES[seed % len(SIZES)]


@pytest.fixture(scope="module")
def robot_max_step() -> float:
    return load_robot(model_file()).body.max_step


@pytest.fixture(scope="module")
def layouts() -> dict[int, SiteLayout]:
    return {seed: build_site(seed, size=_size(seed)) for seed in SEEDS}


@pytest.fixture(scope="module")
def small_site(tmp_path_factory: pytest.TempPathFactory) -> GeneratedSite:
    return generate_site(4, tmp_path_factory.mktemp("generated"), size=120.0)


def test_same_seed_gives_the_same_bytes_and_seeds_differ(tmp_path: Path) -> None:
    a = generate_site(3, tmp_path / "a")
    b = generate_site(3, tmp_path / "b")
    c = generate_site(5, tmp_path / "c")
    assert a.name == b.name == "generated_3" and c.name == "generated_5"
    assert a.world.read_bytes() == b.world.read_bytes()
    assert a.site.read_bytes() == b.site.read_bytes()
    assert a.world.read_bytes() != c.world.read_bytes()
    assert site_name(3, 160.0) == "generated_3_160m"
    assert build_site(3, size=160.0).extent == (-80.0, -80.0, 80.0, 80.0)


@pytest.mark.parametrize(
    ("seed", "size", "message"),
    [(-1, DEFAULT_SIZE, "seed"), (1.5, DEFAULT_SIZE, "seed"), (1, 80.0, "size"), (1, 1e4, "size")],
)
def test_bad_seed_or_size_is_named(seed: object, size: float, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}: "):
        build_site(seed, size=size)  # type: ignore[arg-type]


def test_files_load_by_path_as_the_simulator_and_sidecar_reader_find_them(
    small_site: GeneratedSite,
) -> None:
    assert assets.world_file(str(small_site.world)) == small_site.world
    assert assets.site_file(small_site.world) == small_site.site
    world = load_world(small_site.world)
    site = load_site(small_site.site)
    assert world.name == site.name == small_site.name
    assert site.world.resolve() == small_site.world.resolve()
    assert len(site.stops) == small_site.stops >= 2
    assert world.spherical_coordinates is not None  # GNSS fixes on a generated site too


def test_every_site_passes_the_site_checker(layouts: dict[int, SiteLayout], tmp_path: Path) -> None:
    """The promises of docs/worlds.md, checked by the independent checker (sitecheck) on the
    written files: walkways clear at their width, stops reachable from the station over
    drivable walkways, entrances on their buildings' facades, the route on walkways, closing
    a loop. Twenty seeds at three sizes; no warning either."""
    robot = load_robot(model_file())
    for seed in SEEDS:
        written = generate_site(seed, tmp_path, size=_size(seed))
        problems = check_site(load_world(written.world), load_site(written.site), robot)
        assert problems == [], f"seed {seed}: " + "; ".join(map(str, problems))


def test_sites_vary_in_layout_buildings_and_heights(layouts: dict[int, SiteLayout]) -> None:
    shapes: Counter[str] = Counter()
    for seed, site in layouts.items():
        heights = []
        for model in site.models:
            if model.category != "building" or model.name == "station":
                continue
            blocks = [p for p in model.prims if "parapet" not in p.name]
            kinds = {p.kind for p in blocks}
            shape = "round" if kinds == {"cylinder"} else f"{len(blocks)} boxes"
            shapes[shape] += 1
            heights.append(max(prim_footprint(model, p)[2] for p in blocks))
        # low and tall on every site: GNSS multipath and sky blockage vary along the walkways
        assert min(heights) <= 16.0 and max(heights) >= 24.0, f"seed {seed}: {heights}"
        categories = {m.category for m in site.models}
        assert {"building", "tree", "lamp_post", "bollard", "kerb", "ramp", "fence", "gate"} <= (
            categories
        ), f"seed {seed}: {sorted(categories)}"
    # rectangles, L shapes (2 boxes), U shapes (3 boxes) and round buildings all occur
    assert {"round", "1 boxes", "2 boxes", "3 boxes"} <= set(shapes), shapes
    assert shapes["round"] < shapes["1 boxes"]  # a few cylinders
    # the grids themselves differ: number of walkway nodes, and every sidecar
    assert len({len(s.nodes) for s in layouts.values()}) > 5
    assert len({sidecar_yaml(s) for s in layouts.values()}) == len(layouts)


def test_kerbs_are_above_the_climbing_limit_and_crossed_on_raised_crossings(
    layouts: dict[int, SiteLayout], robot_max_step: float
) -> None:
    assert robot_max_step < KERB_HEIGHT
    for seed, site in layouts.items():
        kerbs = [m for m in site.models if m.category == "kerb"]
        tables = [
            prim_footprint(m, p)[0]
            for m in site.models
            if "_crossing_" in m.name
            for p in m.prims
            if p.name == "table"
        ]
        assert kerbs and tables, f"seed {seed}: no street"
        for model in kerbs:
            for prim in model.prims:
                assert prim_footprint(model, prim)[2] == pytest.approx(KERB_HEIGHT)
        # each crossing carries a walkway edge over the road (sitecheck holds kerbs clear)
        segments = [LineString([site.nodes[a], site.nodes[b]]) for a, b, _ in site.edges]
        for table in tables:
            assert any(s.intersects(table) for s in segments), f"seed {seed}"


def _lips(site: SiteLayout) -> list[float]:
    """[m] the highest point of each free-standing ramp (dock or tilted block)."""
    return [
        max(prim_footprint(m, p)[2] for p in m.prims)
        for m in site.models
        if m.name.startswith(("dock_", "tilted_ramp_"))
    ]


def test_ramp_lips_sit_either_side_of_the_robots_climbing_limit(
    layouts: dict[int, SiteLayout], robot_max_step: float
) -> None:
    """Free-standing ramps (docks and tilted blocks) have a lip: the highest edge above the
    ground. Across seeds some stand above the robot description's max_step, some below, none
    within a hair of it; the limit is the caller's when given."""
    assert all(
        m.category == "ramp"
        for s in layouts.values()
        for m in s.models
        if m.name.startswith(("dock_", "tilted_ramp_"))
    )
    assert any(m.name.startswith("tilted_ramp_") for s in layouts.values() for m in s.models)
    assert any(m.name.startswith("dock_") for s in layouts.values() for m in s.models)
    lips = [lip for site in layouts.values() for lip in _lips(site)]
    # drawn at least 0.05 m above or 0.03 m below the limit (the band allows for rounding)
    assert any(lip > robot_max_step + 0.045 for lip in lips)
    assert any(0.0 < lip < robot_max_step - 0.025 for lip in lips)
    assert not any(robot_max_step - 0.025 < lip < robot_max_step + 0.045 for lip in lips)
    raised = [lip for seed in range(6) for lip in _lips(build_site(seed, max_step=0.3))]
    assert any(lip > 0.345 for lip in raised) and any(lip < 0.275 for lip in raised)
    assert not any(0.275 < lip < 0.345 for lip in raised)


def test_mapping_route_drives_every_walkway_line_and_closes_loops(
    layouts: dict[int, SiteLayout],
) -> None:
    """Every edge of the walkway grid (inside the ring, not a spur to a stop or the station)
    is driven at least once, and the route comes back to places it left."""
    for seed, site in layouts.items():
        route = site.route
        assert route[0] == route[-1] == site.station_node == "station_loading"
        driven = {frozenset(step) for step in itertools.pairwise(route)}
        ring = site.extent[2] - RING_INSET + 0.01

        def inside(node: str, ring: float = ring, site: SiteLayout = site) -> bool:
            return all(abs(c) <= ring for c in site.nodes[node])

        grid = {
            frozenset((a, b))
            for a, b, _ in site.edges
            if inside(a)
            and inside(b)
            and not any(n.startswith(("stop_", "station_")) for n in (a, b))
        }
        missed = grid - driven
        assert not missed, f"seed {seed}: route misses {[tuple(e) for e in missed][:3]}"
        points = site.route_waypoints()
        # it never turns straight back: pure pursuit cannot follow a U-turn (the driver stalls)
        turns = [_turn(a, b, c) for a, b, c in zip(points, points[1:], points[2:], strict=False)]
        assert max(turns) <= math.pi / 2 + 1e-6, f"seed {seed}"
        revisits = sum(
            1
            for i, p in enumerate(points)
            if any(math.dist(p, q) < 1.0 for q in points[: max(0, i - 3)])
        )
        assert revisits >= 3, f"seed {seed}"


def test_the_whole_route_of_a_small_site_is_driven_without_contact(
    small_site: GeneratedSite,
) -> None:
    """The operator stand-in drives the whole mapping route (streets crossed on the raised
    crossings) and never touches a static obstacle, never stalls on a step and never tips.
    Physics at 50 Hz and no lidar keep it quick; one pedestrian makes the simulator track
    static contacts (it only does with a crowd)."""
    sim = Simulator.from_world_name(
        str(small_site.world),
        pedestrians=1,
        config=SimulatorConfig(physics_rate=50.0, lidar=False, ultrasonic=False),
    )
    assert sim.site is not None
    driver = RouteDriver(sim.site.mapping_route.waypoints)
    every = max(1, round(sim.physics_rate / 20.0))
    limit = 2.0 * driver.length / driver.speed
    while not driver.done and sim.time < limit:
        if sim.tick % every == 0:
            st = sim.state
            sim.set_cmd_vel(*driver.command(st.x, st.y, st.yaw))
        sim.step()
    assert driver.done, f"{driver.progress:.0f} of {driver.length:.0f} m in {sim.time:.0f} s"
    bad = [
        e for e in sim.events if e.kind in ("blocked", "tipped") or e.detail == "static obstacle"
    ]
    assert bad == []
    assert not sim.ground_truth.tipped


def test_a_mapping_drive_records_on_a_generated_site(
    small_site: GeneratedSite, tmp_path: Path
) -> None:
    summary = record_mapping_drive(str(small_site.world), tmp_path / "bag", length=60.0)
    assert summary.route_length == pytest.approx(60.0)
    assert 55.0 < summary.distance < 65.0
    assert all(n > 0 for n in summary.messages.values()), summary.messages


def test_cli_writes_sites_per_seed_and_names_bad_arguments(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sites"
    assert main(["--generate", "--seed", "1", "2", "-o", str(out), "--size", "120"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "generated_1_120m.sdf",
        "generated_1_120m.site.yaml",
        "generated_2_120m.sdf",
        "generated_2_120m.site.yaml",
    ]
    assert "generated_1_120m.sdf" in capsys.readouterr().out
    assert main(["--generate", "--seed", "1", "-o", str(out), "--size", "50"]) == 2
    assert "size: expected 120-600 m, got 50" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--generate", "-o", str(out)])


def test_world_header_names_the_call_and_refuses_a_double_hyphen() -> None:
    site = build_site(1, size=120.0)
    text = world_sdf(site, generated_by="generate_site(1, size=120)")
    assert "Generated by `generate_site(1, size=120)`" in text
    with pytest.raises(ValueError, match="generated_by"):
        world_sdf(site, generated_by="python -m x --generate")
