"""maps/<site>/ as a whole: round trips, seals, hand edits, atomic writes, errors naming fields."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import yaml

from xiaomanlv_mapping.mapfiles import (
    CLOUD_DIR,
    CLOUD_METADATA,
    DATUM_FILE,
    GRID_IMAGE,
    GRID_YAML,
    INFO_FILE,
    ROUTES_FILE,
    STOPS_FILE,
    TRAJECTORY_FILE,
    load_map,
    read_info,
    read_map,
    read_pcd,
    seal_map,
    write_map,
    write_pcd,
)
from xiaomanlv_mapping.mapfiles import directory as map_directory
from xiaomanlv_mapping.model import (
    Grid,
    MapFormatError,
    MappingError,
    RouteEdge,
    RouteGraph,
    RouteNode,
)


@pytest.fixture
def written(tmp_path: Path, map_rig: ModuleType) -> Path:
    return write_map(
        map_rig.synthetic_map(), tmp_path / "maps" / "testsite", created="2025-01-02T03:04:05Z"
    )


def snapshot(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_a_written_map_reads_back_equal_and_leaves_only_the_map(
    tmp_path: Path, map_rig: ModuleType
) -> None:
    prior = map_rig.synthetic_map()
    out = write_map(prior, tmp_path / "maps" / "testsite")
    assert out == tmp_path / "maps" / "testsite"
    map_rig.assert_same_map(read_map(out), prior)
    assert [p.name for p in (tmp_path / "maps").iterdir()] == ["testsite"]
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {INFO_FILE, GRID_YAML, GRID_IMAGE, DATUM_FILE, ROUTES_FILE, STOPS_FILE} <= names
    assert f"{CLOUD_DIR}/{CLOUD_METADATA}" in names
    assert out.stat().st_mode & 0o777 == 0o755


def test_info_records_site_voxel_provenance_and_a_seal_of_every_other_file(
    written: Path, map_rig: ModuleType
) -> None:
    loaded = load_map(written)
    info = loaded.info
    assert (info.site, info.created, info.cloud_voxel, info.tile_size) == (
        "testsite", "2025-01-02T03:04:05Z", 0.2, 100.0
    )  # fmt: skip
    assert info.builder == map_rig.synthetic_map().info
    files = {p.relative_to(written).as_posix() for p in written.rglob("*") if p.is_file()}
    assert set(info.files) == files - {INFO_FILE}
    for rel, seal in info.files.items():
        data = (written / rel).read_bytes()
        assert (seal.size, seal.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert loaded.edited == () and loaded.tiles == 15


def test_builder_provenance_is_stored_as_plain_yaml(tmp_path: Path, map_rig: ModuleType) -> None:
    prior = map_rig.synthetic_map()
    info = {"bag": Path("a/b.mcap"), "rmse": np.float64(0.25), "loops": (1, 2), "k": np.int32(3)}
    out = write_map(
        map_rig.synthetic_map().__class__(**{**prior.__dict__, "info": info}), tmp_path / "m"
    )
    assert read_map(out).info == {"bag": "a/b.mcap", "rmse": 0.25, "loops": [1, 2], "k": 3}
    bad = map_rig.synthetic_map().__class__(**{**prior.__dict__, "info": {"x": object()}})
    with pytest.raises(MapFormatError, match=r"info\.yaml: builder\.x: cannot store a object"):
        write_map(bad, tmp_path / "n")
    assert not (tmp_path / "n").exists()


def test_hand_edits_to_routes_are_reported_then_sealed(written: Path) -> None:
    path = written / ROUTES_FILE
    data = json.loads(path.read_text())
    for feature in data["features"]:
        meta = feature["properties"].get("metadata", {})
        if feature["properties"]["id"] == 11 or meta.get("reverse_of") == 11:
            meta["abs_speed_limit"] = 0.7  # both directions of edge 11
    path.write_text(json.dumps(data, indent=1))
    loaded = load_map(written)
    assert loaded.edited == (ROUTES_FILE,)
    assert loaded.prior.routes.edges[1].speed_limit == 0.7
    assert seal_map(written) == written
    assert load_map(written).edited == ()


def test_editing_one_direction_only_is_refused(written: Path) -> None:
    path = written / ROUTES_FILE
    data = json.loads(path.read_text())
    index = next(
        i for i, f in enumerate(data["features"])
        if f["properties"].get("metadata", {}).get("reverse_of") == 12
    )  # fmt: skip
    data["features"][index]["properties"]["metadata"]["width"] = 9.0
    path.write_text(json.dumps(data))
    where = f"features[{index}].properties.metadata.width"
    with pytest.raises(MapFormatError, match=re.escape(f"{path}: {where}: 9 but 4 there")):
        load_map(written)


def test_a_station_node_may_name_the_loading_or_charging_pose(written: Path) -> None:
    path = written / ROUTES_FILE
    path.write_text(path.read_text().replace('"name": "depot"', '"name": "depot_charging"'))
    assert load_map(written).prior.routes.nodes[0].name == "depot_charging"


def test_the_mapping_drive_round_trips_as_a_sealed_tum_trajectory(
    tmp_path: Path, map_rig: ModuleType
) -> None:
    prior = map_rig.synthetic_map()
    out = write_map(prior, tmp_path / "site")
    first = (out / TRAJECTORY_FILE).read_text().splitlines()[1].split()
    assert len(first) == 8  # stamp x y z qx qy qz qw, as evo reads it
    assert TRAJECTORY_FILE in read_info(out / "info.yaml").files
    map_rig.assert_same_map(prior, read_map(out))


def test_a_map_without_a_trajectory_is_valid(tmp_path: Path, map_rig: ModuleType) -> None:
    prior = dataclasses.replace(map_rig.synthetic_map(), trajectory=None)
    out = write_map(prior, tmp_path / "site")
    assert not (out / TRAJECTORY_FILE).exists()
    assert read_map(out).trajectory is None


def test_an_existing_map_is_replaced_only_with_overwrite(
    written: Path, map_rig: ModuleType
) -> None:
    before = snapshot(written)
    other = map_rig.synthetic_map(seed=1)
    with pytest.raises(MappingError, match=r"a map exists there; pass overwrite=True"):
        write_map(other, written)
    assert snapshot(written) == before
    write_map(other, written, overwrite=True)
    map_rig.assert_same_map(read_map(written), other)
    assert [p.name for p in written.parent.iterdir()] == ["testsite"]


def test_overwrite_without_an_atomic_exchange_renames_the_old_map_aside(
    written: Path,
    monkeypatch: pytest.MonkeyPatch,
    map_rig: ModuleType,
) -> None:
    monkeypatch.setattr(map_directory, "_exchange", lambda a, b: False)
    other = map_rig.synthetic_map(seed=2)
    write_map(other, written, overwrite=True)
    map_rig.assert_same_map(read_map(written), other)
    assert [p.name for p in written.parent.iterdir()] == ["testsite"]


def test_an_interrupted_write_leaves_the_old_map_and_no_temporary_directory(
    written: Path,
    monkeypatch: pytest.MonkeyPatch,
    map_rig: ModuleType,
) -> None:
    before = snapshot(written)

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(map_directory, "write_routes", crash)  # after the grid, cloud and datum
    with pytest.raises(RuntimeError, match="power cut"):
        write_map(map_rig.synthetic_map(seed=3), written, overwrite=True)
    assert snapshot(written) == before
    assert [p.name for p in written.parent.iterdir()] == ["testsite"]
    map_rig.assert_same_map(read_map(written), map_rig.synthetic_map())


def test_a_failed_swap_puts_the_old_map_back(
    written: Path,
    monkeypatch: pytest.MonkeyPatch,
    map_rig: ModuleType,
) -> None:
    before = snapshot(written)
    monkeypatch.setattr(map_directory, "_exchange", lambda a, b: False)
    rename = map_directory.os.rename

    def flaky(src: Any, dst: Any) -> None:
        if ".writing-" in str(src):
            raise OSError("disk gone")
        rename(src, dst)

    monkeypatch.setattr(map_directory.os, "rename", flaky)
    with pytest.raises(OSError, match="disk gone"):
        write_map(map_rig.synthetic_map(seed=4), written, overwrite=True)
    monkeypatch.undo()
    assert snapshot(written) == before
    assert [p.name for p in written.parent.iterdir()] == ["testsite"]


def test_an_interrupted_first_write_leaves_nothing(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    map_rig: ModuleType,
) -> None:
    def crash(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(map_directory, "write_stops", crash)
    with pytest.raises(KeyboardInterrupt):
        write_map(map_rig.synthetic_map(), tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_an_invalid_product_is_refused_before_anything_is_written(
    tmp_path: Path, map_rig: ModuleType
) -> None:
    prior = map_rig.synthetic_map()
    cells = prior.grid.cells.copy()
    cells[2, 3] = 37
    bad_grid = prior.__class__(**{**prior.__dict__, "grid": Grid(0.25, (0, 0, 0), cells)})
    out = tmp_path / "m"
    with pytest.raises(  # the message names the map refused, not a file never written
        MapFormatError, match=re.escape(f"{out}: not written: {GRID_YAML}: grid.cells: values")
    ):
        write_map(bad_grid, out)
    clash = RouteGraph(
        nodes=(RouteNode(0, 0, 0, "end"), RouteNode(1, 5, 0, "end")),
        edges=(RouteEdge(1, 0, 1, ((0, 0), (5, 0)), 1.0, 2.0),),
    )
    with pytest.raises(MapFormatError, match=r"routes\.geojson: features\[2\]\.properties\.id: "
                       r"duplicate id 1 \(also features\[1\]\); ids must be unique"):  # fmt: skip
        write_map(prior.__class__(**{**prior.__dict__, "routes": clash}), out)
    with pytest.raises(MapFormatError, match=r"tile_size: expected a positive number, got 0"):
        write_map(prior, out, tile_size=0)
    assert list(tmp_path.iterdir()) == []


Edit = Callable[[str], str]


def replace(old: str, new: str) -> Edit:
    def edit(text: str) -> str:
        assert old in text, old
        return text.replace(old, new, 1)

    return edit


def edit_json(change: Callable[[dict[str, Any]], None]) -> Edit:
    def edit(text: str) -> str:
        data = json.loads(text)
        change(data)
        return json.dumps(data)

    return edit


def feature(i: int, path: str, value: Any) -> Edit:
    def change(data: dict[str, Any]) -> None:
        target = data["features"][i]
        *keys, last = path.split(".")
        for key in keys:
            target = target[key]
        if value is None:
            del target[last]
        else:
            target[last] = value

    return edit_json(change)


FIELD_ERRORS = [
    (
        GRID_YAML,
        replace("resolution: 0.25", "resolution: -1"),
        "resolution: expected a positive number, got -1",
    ),
    (GRID_YAML, replace("origin: [-7.5, -5.0, 0.1]\n", ""), "origin: missing"),
    (
        GRID_YAML,
        replace("origin: [-7.5, -5.0, 0.1]", "origin: [1, 2]"),
        "origin: expected [x, y, yaw], got [1, 2]",
    ),
    (GRID_YAML, replace("negate: 0", "negate: 2"), "negate: expected 0 or 1, got 2"),
    (GRID_YAML, replace("mode: trinary", "mode: scale"), "mode: only trinary maps are read"),
    (
        GRID_YAML,
        replace("free_thresh: 0.196", "free_thresh: 0.7"),
        "free_thresh: 0.7 must be below occupied_thresh 0.65",
    ),
    (
        GRID_YAML,
        replace("image: map.pgm", "image: map.png"),
        "image: only 8-bit binary PGM images are read",
    ),
    (GRID_YAML, replace("negate: 0", "negate: 0\nthreshold: 3"), "threshold: unknown key"),
    (GRID_YAML, replace("image: map.pgm", "image: [map.pgm"), "line 2: not valid YAML"),
    (
        DATUM_FILE,
        replace("latitude: 30.308", "latitude: 95"),
        "latitude: 95 is out of range [-90, 90] deg",
    ),
    (DATUM_FILE, replace("heading_deg: 12.5\n", ""), "heading_deg: missing"),
    (DATUM_FILE, replace("altitude: 8.5", "altitude: .nan"), "altitude: expected a finite number"),
    (
        STOPS_FILE,
        replace("name: stop_b", "name: stop_a"),
        "stops[1].name: duplicate stop name 'stop_a' (also stops[0])",
    ),
    (STOPS_FILE, replace("yaw: 0.0", "yaw: north"), "stops[1].yaw: expected a number, got 'north'"),
    (STOPS_FILE, replace("  loading: {", "  unloading: {"), "station.unloading: unknown key"),
    (ROUTES_FILE, replace('"id": 3,', '"id": 2,'), "features[3].properties.id: duplicate id 2"),
    (
        ROUTES_FILE,
        feature(6, "properties.endid", 99),
        "features[6].properties.endid: no node with id 99",
    ),
    (
        ROUTES_FILE,
        feature(5, "geometry.coordinates", [[[0.5, 0.0], [10, 0.5], [20, 0]]]),
        "features[5].geometry.coordinates: first point (0.5, 0) is 0.500 m from its node 0",
    ),
    (
        ROUTES_FILE,
        feature(5, "properties.metadata.abs_speed_limit", 0),
        "features[5].properties.metadata.abs_speed_limit: expected a speed > 0 m/s, got 0",
    ),
    (
        ROUTES_FILE,
        feature(5, "properties.metadata.width", None),
        "features[5].properties.metadata.width: missing",
    ),
    (
        ROUTES_FILE,
        feature(0, "properties.frame", "odom"),
        "features[0].properties.frame: expected 'map', got 'odom'",
    ),
    (
        ROUTES_FILE,
        feature(1, "properties.metadata.kind", "roundabout"),
        "features[1].properties.metadata.kind: expected one of junction, end, stop, station",
    ),
    (
        ROUTES_FILE,
        feature(2, "properties.metadata", {"kind": "stop"}),
        "features[2].properties.metadata.name: a stop node needs its name",
    ),
    (
        ROUTES_FILE,
        feature(9, "geometry.coordinates", [[[20, 0], [10, 0.7], [0, 0]]]),
        "features[9].geometry.coordinates: not the reversed line; a reverse edge mirrors edge 10 "
        "(features[5])",
    ),
    (
        ROUTES_FILE,
        feature(2, "properties.metadata.name", "stop_z"),
        "node 2: metadata.name: stop 'stop_z' is not in stops.yaml",
    ),
    (
        ROUTES_FILE,
        feature(0, "properties.metadata.name", "garage"),
        "node 0: metadata.name: 'garage' is not stops.yaml's station, loading or charging name "
        "('depot', 'depot_loading', 'depot_charging')",
    ),
    (
        ROUTES_FILE,
        replace('"FeatureCollection"', '"Feature"'),
        "type: expected 'FeatureCollection', got 'Feature'",
    ),
    (ROUTES_FILE, lambda text: text[:200], "not valid JSON"),
    (
        f"{CLOUD_DIR}/{CLOUD_METADATA}",
        replace("x_resolution: 100.0", "x_resolution: 0"),
        "x_resolution: expected a positive number, got 0",
    ),
    (
        f"{CLOUD_DIR}/{CLOUD_METADATA}",
        replace("tile_0_0.pcd: [0.0, 0.0]", "tile_0_0.pcd: [0.0, 0.0]\nnotes: hi"),
        "notes: unknown key",
    ),
    (
        f"{CLOUD_DIR}/{CLOUD_METADATA}",
        replace("tile_0_0.pcd: [0.0, 0.0]", "tile_0_0.pcd: [50.0, 0.0]"),
        "tile_1_0.pcd: tile overlaps tile_0_0.pcd (tiles must not overlap)",
    ),
    (
        INFO_FILE,
        replace("format: xiaomanlv-map", "format: other"),
        "format: expected 'xiaomanlv-map', got 'other'",
    ),
    (INFO_FILE, replace("version: 1", "version: 2"), "version: 2 is newer than this reader (1)"),
    (INFO_FILE, replace("site: testsite\n", ""), "site: missing"),
    (
        INFO_FILE,
        replace("cloud_voxel: 0.2", "cloud_voxel: -0.2"),
        "cloud_voxel: expected a positive",
    ),
    (
        INFO_FILE,
        replace("created: '2025-01-02T03:04:05Z'", "created: yesterday"),
        "created: expected an ISO 8601 time, got 'yesterday'",
    ),
]


@pytest.mark.parametrize(("name", "edit", "message"), FIELD_ERRORS)
def test_a_bad_field_names_the_file_and_the_field(
    written: Path, name: str, edit: Edit, message: str
) -> None:
    path = written / name
    path.write_text(edit(path.read_text()))
    label = written / ROUTES_FILE if message.startswith("node ") else path
    with pytest.raises(MapFormatError, match=re.escape(f"{label}: {message}")):
        load_map(written, verify=False)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-7])


def append(path: Path) -> None:
    path.write_bytes(path.read_bytes() + b"\n")


def change_heading(path: Path) -> None:
    path.write_text(path.read_text().replace("heading_deg: 12.5", "heading_deg: 12.6"))


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    ("name", "damage", "message"),
    [
        (GRID_IMAGE, flip_byte, "sha256 differs from info.yaml: changed since the map was written"),
        (GRID_YAML, append, "124 bytes, info.yaml sealed 123: truncated or changed"),
        (DATUM_FILE, change_heading, "sha256 differs"),
        (f"{CLOUD_DIR}/tile_0_0.pcd", flip_byte, "sha256 differs"),
        (GRID_IMAGE, truncate, "data: expected 60x40 = 2400 bytes, got 2393: truncated"),
        (f"{CLOUD_DIR}/tile_0_0.pcd", truncate,
         "DATA: expected 412 points x 12 bytes = 4944 bytes, got 4937: truncated"),
        (GRID_IMAGE, Path.unlink, "missing"),
    ],
)  # fmt: skip
def test_a_damaged_file_is_named(
    written: Path, name: str, damage: Callable[[Path], None], message: str
) -> None:
    """Damage that still parses is caught by the seals; the rest by the readers."""
    damage(written / name)
    with pytest.raises(MapFormatError, match=re.escape(f"{written / name}: {message}")):
        load_map(written)


def test_a_sealed_file_that_vanished_is_named(written: Path) -> None:
    info = yaml.safe_load((written / INFO_FILE).read_text())
    info["files"]["notes.txt"] = {"sha256": "0" * 64, "size": 3}
    (written / INFO_FILE).write_text(yaml.safe_dump(info))
    with pytest.raises(MapFormatError, match=re.escape(f"{written}/notes.txt: missing (info")):
        load_map(written)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / INFO_FILE).unlink(), f"{INFO_FILE}: missing"),
        (lambda d: (d / STOPS_FILE).unlink(), f"{STOPS_FILE}: missing"),
        (lambda d: (d / CLOUD_DIR / "tile_1_1.pcd").unlink(),
         f"{CLOUD_DIR}/tile_1_1.pcd: missing ({CLOUD_METADATA} lists it)"),
        (lambda d: (d / CLOUD_DIR / "extra.pcd").write_bytes(b""),
         f"{CLOUD_DIR}/extra.pcd: not listed in {CLOUD_METADATA}"),
    ],
)  # fmt: skip
def test_a_missing_or_stray_file_is_named(
    written: Path, damage: Callable[[Path], None], message: str
) -> None:
    damage(written)
    with pytest.raises(MapFormatError, match=re.escape(f"{written}/{message}")):
        load_map(written, verify=False)


def test_a_point_outside_its_tile_is_named(written: Path) -> None:
    path = written / CLOUD_DIR / "tile_0_0.pcd"
    points = read_pcd(path)
    points[3] = (150.0, 5.0, 1.0)
    write_pcd(path, points)
    with pytest.raises(MapFormatError, match=re.escape(
        f"{path}: DATA: point 3 at (150.000, 5.000) lies outside its tile [0, 100] x [0, 100]"
    )):  # fmt: skip
        load_map(written, verify=False)


def test_an_unsealed_file_is_refused_and_seal_map_validates_first(written: Path) -> None:
    info = yaml.safe_load((written / INFO_FILE).read_text())
    del info["files"][DATUM_FILE]
    (written / INFO_FILE).write_text(yaml.safe_dump(info))
    with pytest.raises(MapFormatError, match=r"info\.yaml: files: datum\.yaml is not sealed"):
        load_map(written)
    (written / DATUM_FILE).write_text("latitude: 1\n")
    with pytest.raises(MapFormatError, match=r"datum\.yaml: longitude: missing"):
        seal_map(written)


def test_not_a_map_directory(tmp_path: Path) -> None:
    with pytest.raises(MapFormatError, match=r"nothing: not a map directory"):
        read_map(tmp_path / "nothing")


def test_a_stop_marked_unreachable_round_trips_and_may_not_have_a_route_node(
    tmp_path: Path, map_rig: ModuleType
) -> None:
    prior = map_rig.synthetic_map()
    stops = prior.stops
    lone = dataclasses.replace(stops.stops[1], unreachable="enclosed by obstacles")
    marked = dataclasses.replace(stops, stops=(stops.stops[0], lone))
    out = tmp_path / "m"
    with pytest.raises(
        MapFormatError,
        match=re.escape(f"{out}: not written: routes.geojson: node 3: metadata.name: "
                        "'stop_b' has a route node but stops.yaml marks it unreachable"),
    ):  # fmt: skip
        write_map(dataclasses.replace(prior, stops=marked), out)
    routes = prior.routes
    without = dataclasses.replace(
        routes,
        nodes=tuple(n for n in routes.nodes if n.name != "stop_b"),
        edges=tuple(e for e in routes.edges if 3 not in (e.start, e.end)),
    )
    write_map(dataclasses.replace(prior, stops=marked, routes=without), out)
    assert load_map(out).prior.stops.stops[1].unreachable == "enclosed by obstacles"


def test_an_unreachable_charging_pose_is_marked_like_a_stop(
    tmp_path: Path, map_rig: ModuleType
) -> None:
    prior = map_rig.synthetic_map()
    charging = dataclasses.replace(prior.stops.charging, unreachable="hemmed in by obstacles")
    stops = dataclasses.replace(prior.stops, charging=charging)
    write_map(dataclasses.replace(prior, stops=stops), tmp_path / "m")
    assert load_map(tmp_path / "m").prior.stops.charging.unreachable == "hemmed in by obstacles"
