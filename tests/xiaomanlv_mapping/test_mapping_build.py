"""`xiaomanlv map record | build | evaluate` end to end on a short stretch of the university's
mapping route: the map directory is complete and valid, partial coverage is handled, an
interrupted or refused build leaves nothing behind, and the command line names bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from xiaomanlv_bringup.cli import main as xiaomanlv
from xiaomanlv_bringup.ros.mapping_drive import record_mapping_drive
from xiaomanlv_core.robot import RobotSpec, load_robot, model_file
from xiaomanlv_core.site import Site, load_site
from xiaomanlv_mapping import build as build_module
from xiaomanlv_mapping.build import build_map
from xiaomanlv_mapping.mapfiles import load_map
from xiaomanlv_mapping.model import MappingError
from xiaomanlv_sim import assets

LENGTH = 60.0  # [m] of the mapping route, from the station


@pytest.fixture(scope="module")
def site() -> Site:
    return load_site(assets.site_file(assets.world_file("university")))


@pytest.fixture(scope="module")
def robot() -> RobotSpec:
    return load_robot(model_file())


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("drive") / "university"
    record_mapping_drive("university", out, length=LENGTH)
    return out


@pytest.fixture(scope="module")
def built(
    bag: Path, site: Site, robot: RobotSpec, tmp_path_factory: pytest.TempPathFactory
) -> build_module.BuildSummary:
    return build_map(bag, tmp_path_factory.mktemp("maps") / "university", site=site, robot=robot)


def test_a_build_writes_a_valid_map_with_the_drive_the_grid_and_the_station(
    built: build_module.BuildSummary, site: Site
) -> None:
    loaded = load_map(built.path)  # validates every file and its seal
    prior = loaded.prior
    assert prior.site == "university"
    assert len(prior.cloud) > 10_000
    assert prior.trajectory is not None and len(prior.trajectory.stamps) > 100
    # The drive is anchored at the station's loading pose: the map frame is the site's.
    start = prior.trajectory.poses[0]
    assert (
        np.hypot(start[0, 3] - site.station.loading.x, start[1, 3] - site.station.loading.y) < 0.5
    )
    assert {s.name for s in prior.stops.stops} == {s.name for s in site.stops}
    kinds = {n.kind for n in prior.routes.nodes}
    assert "station" in kinds
    assert built.stages.keys() >= {"open_bag", "estimate", "cloud", "grid", "routes", "write"}
    assert built.realtime_factor > 0


def test_stops_outside_a_partial_map_are_kept_but_get_no_route(
    built: build_module.BuildSummary,
) -> None:
    prior = built.prior
    routed = {n.name for n in prior.routes.nodes if n.kind == "stop"}
    unrouted = set(prior.info["stops_without_route"])  # type: ignore[arg-type]
    assert unrouted, "a 60 m drive cannot cover the whole campus"
    assert routed.isdisjoint(unrouted)
    assert routed | unrouted == {s.name for s in prior.stops.stops}


def test_every_unreachable_stop_is_reported_marked_with_its_reason_and_the_map_written(
    built: build_module.BuildSummary,
) -> None:
    reasons = {u.name: u.reason for u in built.unreachable}
    assert len(reasons) >= 3, "a 60 m drive leaves most of the campus unmapped"
    assert sum("outside the grid" in why for why in reasons.values()) >= 3
    loaded = load_map(built.path)
    stops = loaded.prior.stops
    every = (stops.loading, stops.charging, *stops.stops)
    marks = {s.name: s.unreachable for s in every if s.unreachable}
    assert marks == reasons  # stops.yaml (and so /map/stops) carries each mark
    assert loaded.prior.info["stops_unreachable"] == reasons
    routed = {n.name for n in loaded.prior.routes.nodes if n.kind == "stop"}
    assert routed and routed.isdisjoint(marks)


def test_strict_refuses_the_map_naming_every_unreachable_stop(
    bag: Path, site: Site, robot: RobotSpec, built: build_module.BuildSummary, tmp_path: Path
) -> None:
    out = tmp_path / "university"
    with pytest.raises(MappingError, match=f"{out}: not written \\(--strict") as caught:
        build_map(bag, out, site=site, robot=robot, strict=True)
    for u in built.unreachable:
        assert f"{u.kind} {u.name!r} at ({u.x:.1f}, {u.y:.1f}): {u.reason}" in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_an_existing_map_is_refused_before_any_work_unless_overwrite(
    bag: Path, site: Site, robot: RobotSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "university"
    out.mkdir()

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("the bag was opened although the map could not be written")

    monkeypatch.setattr(build_module, "open_drive", never)
    with pytest.raises(MappingError, match=f"{out}: a map exists there"):
        build_map(bag, out, site=site, robot=robot)


def test_an_interrupted_build_leaves_no_map_and_no_temporary_files(
    bag: Path, site: Site, robot: RobotSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("xiaomanlv_mapping.mapfiles.directory.write_routes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_map(bag, tmp_path / "university", site=site, robot=robot)
    assert list(tmp_path.iterdir()) == []


def test_the_cli_builds_and_evaluates_and_names_a_broken_bag(
    bag: Path,
    built: build_module.BuildSummary,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    png = tmp_path / "evaluation.png"
    args = ["map", "evaluate", str(built.path), "--bag", str(bag), "--world", "university"]
    code = xiaomanlv([*args, "-o", str(png)])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ate_poses"] > 100 and 0 <= report["ate_rmse_m"] < 1.0
    assert 0 < report["grid_iou"] <= 1 and report["map_points"] == len(built.prior.cloud)
    assert png.stat().st_size > 10_000

    broken = tmp_path / "broken"
    shutil.copytree(bag, broken)
    mcap = next(broken.glob("*.mcap"))
    mcap.write_bytes(mcap.read_bytes()[: mcap.stat().st_size // 2])
    code = xiaomanlv(["map", "build", str(broken), "-o", str(tmp_path / "university")])
    assert code == 2
    err = capsys.readouterr().err
    assert "xiaomanlv map build:" in err and str(mcap.name) in err
    assert not (tmp_path / "university").exists()


def test_the_cli_takes_the_site_from_the_bag_and_the_world_from_the_map(
    bag: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "not-a-site-name"  # the folder's name is no site: the bag says which
    assert xiaomanlv(["map", "build", str(bag), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "for site university" in printed and "marked unreachable in stops.yaml" in printed
    assert load_map(out).prior.site == "university"
    png = tmp_path / "evaluation.png"
    assert xiaomanlv(["map", "evaluate", str(out), "-o", str(png)]) == 0  # world: info.yaml's
    assert json.loads(capsys.readouterr().out)["grid_iou"] > 0

    bare = tmp_path / "bare"  # as a robot's map_recorder bag: no site recorded
    shutil.copytree(bag, bare)
    meta = bare / "metadata.yaml"
    meta.write_text(meta.read_text().replace("xiaomanlv.", "other."))
    code = xiaomanlv(["map", "build", str(bare), "-o", str(tmp_path / "m2")])
    assert code == 2
    err = capsys.readouterr().err
    assert f"bag {bare}: records no site" in err and "pass --site" in err
