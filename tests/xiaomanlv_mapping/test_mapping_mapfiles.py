"""maps/<site>/ files: round trips, the formats other tools read, validation, atomic writes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from map_rig import assert_same_map, sorted_rows, synthetic_map, synthetic_routes, synthetic_stops

from xiaomanlv_mapping import mapfiles
from xiaomanlv_mapping.mapfiles import (
    CLOUD_DIR,
    CLOUD_METADATA,
    DATUM_FILE,
    GRID_IMAGE,
    GRID_YAML,
    INFO_FILE,
    ROUTES_FILE,
    STOPS_FILE,
    MapServerConfig,
    load_map,
    read_cloud,
    read_datum,
    read_grid,
    read_map,
    read_pcd,
    read_pgm,
    read_routes,
    read_stops,
    resolve_map_dir,
    routes_from_geojson,
    routes_to_geojson,
    seal_map,
    tile_cloud,
    write_cloud,
    write_datum,
    write_grid,
    write_map,
    write_pcd,
    write_routes,
    write_stops,
)
from xiaomanlv_mapping.model import (
    FREE,
    OCCUPIED,
    UNKNOWN,
    Datum,
    Grid,
    MapFormatError,
    MappingError,
    RouteEdge,
    RouteGraph,
    RouteNode,
)


@pytest.fixture
def written(tmp_path: Path) -> Path:
    return write_map(
        synthetic_map(), tmp_path / "maps" / "testsite", created="2025-01-02T03:04:05Z"
    )


def snapshot(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


# ---- round trips -------------------------------------------------------------------------------
def test_a_written_map_reads_back_equal_and_leaves_only_the_map(tmp_path: Path) -> None:
    prior = synthetic_map()
    out = write_map(prior, tmp_path / "maps" / "testsite")
    assert out == tmp_path / "maps" / "testsite"
    assert_same_map(read_map(out), prior)
    assert [p.name for p in (tmp_path / "maps").iterdir()] == ["testsite"]
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {INFO_FILE, GRID_YAML, GRID_IMAGE, DATUM_FILE, ROUTES_FILE, STOPS_FILE} <= names
    assert f"{CLOUD_DIR}/{CLOUD_METADATA}" in names
    assert out.stat().st_mode & 0o777 == 0o755


def test_info_records_site_voxel_provenance_and_a_seal_of_every_other_file(written: Path) -> None:
    loaded = load_map(written)
    info = loaded.info
    assert (info.site, info.created, info.cloud_voxel, info.tile_size) == (
        "testsite", "2025-01-02T03:04:05Z", 0.2, 100.0
    )  # fmt: skip
    assert info.builder == synthetic_map().info
    files = {p.relative_to(written).as_posix() for p in written.rglob("*") if p.is_file()}
    assert set(info.files) == files - {INFO_FILE}
    for rel, seal in info.files.items():
        data = (written / rel).read_bytes()
        assert (seal.size, seal.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert loaded.edited == () and loaded.tiles == 15


def test_builder_provenance_is_stored_as_plain_yaml(tmp_path: Path) -> None:
    prior = synthetic_map()
    info = {"bag": Path("a/b.mcap"), "rmse": np.float64(0.25), "loops": (1, 2), "k": np.int32(3)}
    out = write_map(synthetic_map().__class__(**{**prior.__dict__, "info": info}), tmp_path / "m")
    assert read_map(out).info == {"bag": "a/b.mcap", "rmse": 0.25, "loops": [1, 2], "k": 3}
    bad = synthetic_map().__class__(**{**prior.__dict__, "info": {"x": object()}})
    with pytest.raises(MapFormatError, match=r"info\.yaml: builder\.x: cannot store a object"):
        write_map(bad, tmp_path / "n")
    assert not (tmp_path / "n").exists()


def test_grid_files_are_nav2_map_server_format(tmp_path: Path) -> None:
    grid = Grid(
        resolution=0.05,
        origin=(-1.25, 2.5, 0.0),
        cells=np.array([[FREE, OCCUPIED, UNKNOWN], [UNKNOWN, FREE, FREE]], dtype=np.int8),
    )
    write_grid(grid, tmp_path / "map.yaml")
    assert yaml.safe_load((tmp_path / "map.yaml").read_text()) == {
        "image": "map.pgm",
        "mode": "trinary",
        "resolution": 0.05,
        "origin": [-1.25, 2.5, 0.0],
        "negate": 0,
        "occupied_thresh": 0.65,
        "free_thresh": 0.196,
    }
    data = (tmp_path / "map.pgm").read_bytes()
    assert data.startswith(b"P5\n3 2\n255\n")
    # image row 0 is the top: the grid's highest-y row (cells[1]).
    assert list(data[-6:]) == [205, 254, 254, 254, 0, 205]
    pixels, maxval = read_pgm(tmp_path / "map.pgm")
    assert maxval == 255 and pixels.tolist() == [[205, 254, 254], [254, 0, 205]]
    back = read_grid(tmp_path / "map.yaml")
    assert back.resolution == grid.resolution and back.origin == grid.origin
    assert back.cells.dtype == np.int8 and np.array_equal(back.cells, grid.cells)


def test_grid_round_trip_is_exact_for_awkward_numbers(tmp_path: Path) -> None:
    grid = mapfiles.Grid(
        resolution=0.1 + 0.2, origin=(-1e-9, 1 / 3, -math.pi), cells=np.zeros((3, 4), np.int8)
    )
    write_grid(grid, tmp_path / "map.yaml")
    back = read_grid(tmp_path / "map.yaml")
    assert back.resolution == grid.resolution and back.origin == grid.origin


def test_grid_is_read_as_nav2_reads_it(tmp_path: Path) -> None:
    """Thresholds come from the YAML: with Nav2's default free_thresh 0.25, map_saver's
    unknown grey (205) reads as free - the reason the files say 0.196; negate flips."""
    (tmp_path / "m.pgm").write_bytes(
        b"P5\n# made by hand\n4 1\n# comment\n255\n" + bytes([254, 205, 100, 0])
    )
    base = "image: m.pgm\nresolution: 1.0\norigin: [0, 0, 0]\noccupied_thresh: 0.65\n"
    (tmp_path / "a.yaml").write_text(base + "negate: 0\nfree_thresh: 0.196\n")
    assert read_grid(tmp_path / "a.yaml").cells.tolist() == [[FREE, UNKNOWN, UNKNOWN, OCCUPIED]]
    (tmp_path / "b.yaml").write_text(base + "negate: 0\nfree_thresh: 0.25\n")
    assert read_grid(tmp_path / "b.yaml").cells.tolist() == [[FREE, FREE, UNKNOWN, OCCUPIED]]
    (tmp_path / "c.yaml").write_text(base + "negate: 1\nfree_thresh: 0.196\nmode: trinary\n")
    assert read_grid(tmp_path / "c.yaml").cells.tolist() == [[OCCUPIED, OCCUPIED, UNKNOWN, FREE]]


def test_pgm_maxval_below_255_scales_the_shade(tmp_path: Path) -> None:
    (tmp_path / "m.pgm").write_bytes(b"P5 2 1 100\n" + bytes([100, 0]))
    assert read_pgm(tmp_path / "m.pgm")[1] == 100
    (tmp_path / "m.yaml").write_text(
        "image: m.pgm\nresolution: 1\norigin: [0, 0, 0]\nnegate: 0\n"
        "occupied_thresh: 0.65\nfree_thresh: 0.196\n"
    )
    assert read_grid(tmp_path / "m.yaml").cells.tolist() == [[FREE, OCCUPIED]]


def test_cloud_tiles_split_and_merge_back_exactly(tmp_path: Path) -> None:
    cloud = synthetic_map().cloud
    tiles = tile_cloud(cloud, 100.0)
    assert sum(len(t) for t in tiles.values()) == len(cloud)
    for (i, j), part in tiles.items():
        assert (part[:, 0] >= i * 100.0).all() and (part[:, 0] < (i + 1) * 100.0).all()
        assert (part[:, 1] >= j * 100.0).all() and (part[:, 1] < (j + 1) * 100.0).all()
    assert np.array_equal(sorted_rows(np.concatenate(list(tiles.values()))), sorted_rows(cloud))
    names = write_cloud(cloud, tmp_path / CLOUD_DIR, tile_size=100.0)
    meta = yaml.safe_load((tmp_path / CLOUD_DIR / CLOUD_METADATA).read_text())
    assert meta["x_resolution"] == meta["y_resolution"] == 100.0
    assert meta["tile_0_0.pcd"] == [0.0, 0.0] and meta["tile_-2_-1.pcd"] == [-200.0, -100.0]
    assert sorted(names) == sorted([*(k for k in meta if k.endswith(".pcd")), CLOUD_METADATA])
    back = read_cloud(tmp_path / CLOUD_DIR)
    assert back.dtype == np.float32 and np.array_equal(sorted_rows(back), sorted_rows(cloud))


def test_tile_size_is_a_parameter_and_one_tile_keeps_the_order(tmp_path: Path) -> None:
    cloud = synthetic_map().cloud
    small = write_cloud(cloud, tmp_path / "small", tile_size=50.0)
    assert len(small) - 1 == len(tile_cloud(cloud, 50.0)) > 15
    whole = write_cloud(cloud, tmp_path / "whole", tile_size=1000.0)
    assert len(whole) == 5  # the four 1 km tiles around the origin, and the metadata
    one = cloud[(cloud[:, 0] >= 0) & (cloud[:, 1] >= 0)]
    write_cloud(one, tmp_path / "one", tile_size=1000.0)
    assert np.array_equal(read_cloud(tmp_path / "one"), one)


def test_an_empty_cloud_round_trips(tmp_path: Path) -> None:
    assert write_cloud(np.zeros((0, 3), np.float32), tmp_path / "c") == [CLOUD_METADATA]
    assert read_cloud(tmp_path / "c").shape == (0, 3)


def test_pcd_is_binary_xyz_float32(tmp_path: Path) -> None:
    points = np.array([[1.5, -2.25, 3.0], [1e-7, 4e6, -0.0]], dtype=np.float32)
    write_pcd(tmp_path / "a.pcd", points)
    data = (tmp_path / "a.pcd").read_bytes()
    header = data[: data.index(b"DATA binary\n") + 12].decode()
    for line in ("FIELDS x y z", "SIZE 4 4 4", "TYPE F F F", "COUNT 1 1 1", "WIDTH 2",
                 "HEIGHT 1", "POINTS 2"):  # fmt: skip
        assert f"\n{line}\n" in header
    assert data[len(header) :] == points.astype("<f4").tobytes()
    assert np.array_equal(read_pcd(tmp_path / "a.pcd"), points)


def test_pcd_from_other_tools_ascii_extra_fields_and_doubles(tmp_path: Path) -> None:
    ascii_pcd = (
        "# .PCD v0.7\nVERSION .7\nFIELDS intensity x y z\nSIZE 4 4 4 4\nTYPE F F F F\n"
        "COUNT 1 1 1 1\nWIDTH 2\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 2\nDATA ascii\n"
        "10 1 2 3\n20 4 5 6\n"
    )
    (tmp_path / "a.pcd").write_text(ascii_pcd)
    assert read_pcd(tmp_path / "a.pcd").tolist() == [[1, 2, 3], [4, 5, 6]]
    record = np.dtype([("x", "<f8"), ("y", "<f8"), ("z", "<f8"), ("ring", "<u2"), ("_", "V2")])
    rows = np.zeros(3, record)
    rows["x"], rows["y"], rows["z"], rows["ring"] = [1, 2, 3], [4, 5, 6], [7, 8, 9], [0, 1, 2]
    header = (
        "FIELDS x y z ring _\nSIZE 8 8 8 2 1\nTYPE F F F U U\nCOUNT 1 1 1 1 2\n"
        "WIDTH 3\nHEIGHT 1\nPOINTS 3\nDATA binary\n"
    )
    (tmp_path / "b.pcd").write_bytes(header.encode() + rows.tobytes())
    assert read_pcd(tmp_path / "b.pcd").tolist() == [[1, 4, 7], [2, 5, 8], [3, 6, 9]]


def test_datum_stops_and_routes_round_trip(tmp_path: Path) -> None:
    datum = Datum(latitude=-33.8688, longitude=151.2093, altitude=-12.5, heading_deg=-90.0)
    write_datum(datum, tmp_path / DATUM_FILE)
    assert read_datum(tmp_path / DATUM_FILE) == datum
    write_stops(synthetic_stops(), tmp_path / STOPS_FILE)
    assert read_stops(tmp_path / STOPS_FILE) == synthetic_stops()
    write_routes(synthetic_routes(), tmp_path / ROUTES_FILE)
    assert read_routes(tmp_path / ROUTES_FILE) == synthetic_routes()


def test_routes_file_is_nav2_route_server_geojson(tmp_path: Path) -> None:
    write_routes(synthetic_routes(), tmp_path / ROUTES_FILE)
    data = json.loads((tmp_path / ROUTES_FILE).read_text())
    assert data["type"] == "FeatureCollection"
    features = data["features"]
    points = [f for f in features if f["geometry"]["type"] == "Point"]
    lines = [f for f in features if f["geometry"]["type"] == "MultiLineString"]
    assert len(points) == 5 and len(lines) == 8  # every edge both ways: Nav2's are one-way
    ids = [f["properties"]["id"] for f in features]
    assert len(set(ids)) == len(ids)
    station = points[0]["properties"]
    assert station == {"id": 0, "frame": "map", "metadata": {"kind": "station", "name": "depot"}}
    assert points[0]["geometry"]["coordinates"] == [0.0, 0.0]
    edge = lines[0]["properties"]
    assert (edge["id"], edge["startid"], edge["endid"]) == (10, 0, 1)
    assert edge["metadata"] == {"abs_speed_limit": 1.5, "width": 3.0}
    assert lines[0]["geometry"]["coordinates"] == [[[0.0, 0.0], [10.0, 0.5], [20.0, 0.0]]]
    back = lines[4]["properties"]
    assert (back["startid"], back["endid"], back["metadata"]["reverse_of"]) == (1, 0, 10)
    assert lines[4]["geometry"]["coordinates"] == [[[20.0, 0.0], [10.0, 0.5], [0.0, 0.0]]]
    # one feature per line, for hand editing and diffs
    text = (tmp_path / ROUTES_FILE).read_text().splitlines()
    assert sum(1 for line in text if line.strip().startswith('{"type": "Feature"')) == 13


def test_a_hand_written_nav2_graph_is_read(tmp_path: Path) -> None:
    """No reverse features, an edge without coordinates (the straight segment), a LineString,
    Nav2 operations and costs (ignored), nodes listed after the edges."""
    graph = {
        "type": "FeatureCollection",
        "features": [
            {"type": "Feature", "geometry": {"type": "MultiLineString"},
             "properties": {"id": 5, "startid": 1, "endid": 2, "cost": 3.0, "overridable": True,
                            "metadata": {"abs_speed_limit": 1, "width": 2}}},
            {"type": "Feature", "geometry": {"type": "LineString", "coordinates": [[3, 4], [0, 0]]},
             "properties": {"id": 6, "startid": 2, "endid": 1,
                            "metadata": {"abs_speed_limit": 0.5, "width": 1.5, "class": "lawn"}}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [0, 0]},
             "properties": {"id": 1, "metadata": {"kind": "end"},
                            "operations": {"stop": {"type": "stop", "trigger": "NODE"}}}},
            {"type": "Feature", "geometry": {"type": "Point", "coordinates": [3, 4]},
             "properties": {"id": 2, "frame": "map", "metadata": {"kind": "junction"}}},
        ],
    }  # fmt: skip
    routes = routes_from_geojson(graph, "hand.geojson")
    assert [n.id for n in routes.nodes] == [1, 2]
    assert routes.edges == (
        RouteEdge(5, 1, 2, ((0.0, 0.0), (3.0, 4.0)), 1.0, 2.0),
        RouteEdge(6, 2, 1, ((3.0, 4.0), (0.0, 0.0)), 0.5, 1.5),
    )
    assert routes.edges[0].length == 5.0


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


def test_site_resolution_and_server_config(tmp_path: Path) -> None:
    assert resolve_map_dir(MapServerConfig(map=str(tmp_path))) == tmp_path
    with pytest.raises(MappingError, match=r"no map for site 'nowhere_site': looked in"):
        resolve_map_dir(MapServerConfig(site="nowhere_site"))
    with pytest.raises(MappingError, match=r"parameter 'site' = '\.\./x' is not a site name"):
        resolve_map_dir(MapServerConfig(site="../x"))
    with pytest.raises(ValueError, match=r"diagnostics_rate"):
        MapServerConfig(diagnostics_rate=0.0)


# ---- atomic writes -----------------------------------------------------------------------------
def test_an_existing_map_is_replaced_only_with_overwrite(written: Path) -> None:
    before = snapshot(written)
    other = synthetic_map(seed=1)
    with pytest.raises(MappingError, match=r"a map exists there; pass overwrite=True"):
        write_map(other, written)
    assert snapshot(written) == before
    write_map(other, written, overwrite=True)
    assert_same_map(read_map(written), other)
    assert [p.name for p in written.parent.iterdir()] == ["testsite"]


def test_overwrite_without_an_atomic_exchange_renames_the_old_map_aside(
    written: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(mapfiles, "_exchange", lambda a, b: False)
    other = synthetic_map(seed=2)
    write_map(other, written, overwrite=True)
    assert_same_map(read_map(written), other)
    assert [p.name for p in written.parent.iterdir()] == ["testsite"]


def test_an_interrupted_write_leaves_the_old_map_and_no_temporary_directory(
    written: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(written)

    def crash(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("power cut")

    monkeypatch.setattr(mapfiles, "write_routes", crash)  # after the grid, cloud and datum
    with pytest.raises(RuntimeError, match="power cut"):
        write_map(synthetic_map(seed=3), written, overwrite=True)
    assert snapshot(written) == before
    assert [p.name for p in written.parent.iterdir()] == ["testsite"]
    assert_same_map(read_map(written), synthetic_map())


def test_a_failed_swap_puts_the_old_map_back(
    written: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = snapshot(written)
    monkeypatch.setattr(mapfiles, "_exchange", lambda a, b: False)
    rename = mapfiles.os.rename

    def flaky(src: Any, dst: Any) -> None:
        if ".writing-" in str(src):
            raise OSError("disk gone")
        rename(src, dst)

    monkeypatch.setattr(mapfiles.os, "rename", flaky)
    with pytest.raises(OSError, match="disk gone"):
        write_map(synthetic_map(seed=4), written, overwrite=True)
    monkeypatch.undo()
    assert snapshot(written) == before
    assert [p.name for p in written.parent.iterdir()] == ["testsite"]


def test_an_interrupted_first_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(mapfiles, "write_stops", crash)
    with pytest.raises(KeyboardInterrupt):
        write_map(synthetic_map(), tmp_path / "m")
    assert list(tmp_path.iterdir()) == []


def test_an_invalid_product_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    prior = synthetic_map()
    cells = prior.grid.cells.copy()
    cells[2, 3] = 37
    bad_grid = prior.__class__(**{**prior.__dict__, "grid": Grid(0.25, (0, 0, 0), cells)})
    out = tmp_path / "m"
    with pytest.raises(
        MapFormatError, match=re.escape(f"{out / GRID_YAML}: grid.cells: values must be 0")
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


# ---- errors that name the file and the field ---------------------------------------------------
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
    (GRID_YAML, replace("image: map.pgm", "image: [map.pgm"), "not valid YAML"),
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


def pcd_with(header: str, body: bytes = b"") -> bytes:
    return header.encode() + body


GOOD_HEADER = "FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 2\nHEIGHT 1\nPOINTS 2\n"
TWO_POINTS = np.arange(6, dtype="<f4").tobytes()

PCD_ERRORS = [
    (
        pcd_with(GOOD_HEADER + "DATA binary\n", TWO_POINTS[:20]),
        "DATA: expected 2 points x 12 bytes = 24 bytes, got 20: truncated",
    ),
    (pcd_with(GOOD_HEADER + "DATA binary\n", TWO_POINTS + b"xx"), "DATA: 2 bytes after the last"),
    (
        pcd_with(GOOD_HEADER + "DATA binary_compressed\n", TWO_POINTS),
        "DATA: binary_compressed is not supported",
    ),
    (pcd_with(GOOD_HEADER), "DATA: no DATA line"),
    (
        pcd_with(GOOD_HEADER.replace("FIELDS x y z", "FIELDS x y w") + "DATA binary\n", TWO_POINTS),
        "FIELDS: no z field (got x y w)",
    ),
    (
        pcd_with(GOOD_HEADER.replace("SIZE 4 4 4", "SIZE 4 4") + "DATA binary\n", TWO_POINTS),
        "SIZE: 2 entries for 3 FIELDS",
    ),
    (
        pcd_with(GOOD_HEADER.replace("SIZE 4 4 4", "SIZE 4 4 2") + "DATA binary\n", TWO_POINTS),
        "SIZE: field z: size 2 is not valid for TYPE F",
    ),
    (
        pcd_with(GOOD_HEADER.replace("TYPE F F F", "TYPE F F X") + "DATA binary\n", TWO_POINTS),
        "TYPE: field z: expected F, I or U, got 'X'",
    ),
    (
        pcd_with(GOOD_HEADER.replace("COUNT 1 1 1", "COUNT 1 1 2") + "DATA binary\n", TWO_POINTS),
        "z: expected TYPE F with COUNT 1, got TYPE F COUNT 2",
    ),
    (
        pcd_with(GOOD_HEADER.replace("WIDTH 2", "WIDTH 3") + "DATA binary\n", TWO_POINTS),
        "POINTS: 2 but WIDTH x HEIGHT = 3 x 1 = 3",
    ),
    (
        pcd_with(GOOD_HEADER.replace("HEIGHT 1\n", "") + "DATA binary\n", TWO_POINTS),
        "HEIGHT: missing",
    ),
    (
        pcd_with(GOOD_HEADER.replace("WIDTH 2", "WIDTH two") + "DATA binary\n", TWO_POINTS),
        "WIDTH: expected an integer >= 0, got 'two'",
    ),
    (
        pcd_with("VERSION 0.5\n" + GOOD_HEADER + "DATA binary\n", TWO_POINTS),
        "VERSION: expected 0.7",
    ),
    (pcd_with(GOOD_HEADER + "COLOR 1\nDATA binary\n", TWO_POINTS), "COLOR: unknown header line"),
    (
        pcd_with(GOOD_HEADER + "DATA binary\n", np.array([0, 1, 2, np.nan, 4, 5], "<f4").tobytes()),
        "DATA: point 1 [nan, 4.0, 5.0] is not finite",
    ),
    (
        pcd_with(GOOD_HEADER + "DATA ascii\n", b"1 2 3\n4 5\n"),
        "DATA: row 1 has 2 values, expected 3",
    ),
    (pcd_with(GOOD_HEADER + "DATA ascii\n", b"1 2 3\n"), "DATA: expected 2 ascii rows, got 1"),
]


@pytest.mark.parametrize(("data", "message"), PCD_ERRORS)
def test_a_bad_pcd_names_the_header_field(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "t.pcd"
    path.write_bytes(data)
    with pytest.raises(MapFormatError, match=re.escape(f"{path}: {message}")):
        read_pcd(path)


PGM_ERRORS = [
    (b"P2\n2 1\n255\n1 2\n", "magic: expected P5 (8-bit binary PGM), got 'P2'"),
    (b"P5\n2 1\n65535\n" + bytes(4), "maxval: 65535: 16-bit PGM is not supported"),
    (b"P5\n2 x\n255\n" + bytes(2), "height: expected a positive integer, got 'x'"),
    (b"P5\n2 1\n", "maxval: missing (the file ends inside the header)"),
    (b"P5\n3 2\n255\n" + bytes(5), "data: expected 3x2 = 6 bytes, got 5: truncated"),
    (b"P5\n3 2\n255\n" + bytes(7), "data: 1 bytes after the 3x2 image"),
    (b"P5\n2 1\n100\n" + bytes([100, 101]), "data: pixel 101 at row 0, col 1 > maxval"),
]


@pytest.mark.parametrize(("data", "message"), PGM_ERRORS)
def test_a_bad_pgm_names_the_field(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "m.pgm"
    path.write_bytes(data)
    with pytest.raises(MapFormatError, match=re.escape(f"{path}: {message}")):
        read_pgm(path)


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


def test_stop_lists_and_geojson_are_plain_data() -> None:
    data = routes_to_geojson(synthetic_routes())
    assert json.loads(json.dumps(data)) == data
    with pytest.raises(MapFormatError, match=r"topic: features: expected a list, got 3"):
        routes_from_geojson({"type": "FeatureCollection", "features": 3}, "topic")


def test_the_mapping_drive_round_trips_as_a_sealed_tum_trajectory(tmp_path: Path) -> None:
    prior = synthetic_map()
    out = mapfiles.write_map(prior, tmp_path / "site")
    first = (out / mapfiles.TRAJECTORY_FILE).read_text().splitlines()[1].split()
    assert len(first) == 8  # stamp x y z qx qy qz qw, as evo reads it
    assert mapfiles.TRAJECTORY_FILE in mapfiles.read_info(out / "info.yaml").files
    assert_same_map(prior, mapfiles.read_map(out))


def test_a_map_without_a_trajectory_is_valid(tmp_path: Path) -> None:
    prior = dataclasses.replace(synthetic_map(), trajectory=None)
    out = mapfiles.write_map(prior, tmp_path / "site")
    assert not (out / mapfiles.TRAJECTORY_FILE).exists()
    assert mapfiles.read_map(out).trajectory is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("100.0 1 2 3 0 0 0", "line 3: expected 8 finite numbers"),
        ("100.0 1 2 nan 0 0 0 1", "line 3: expected 8 finite numbers"),
        ("100.0 1 2 3 0 0 0 2", "line 3: qx qy qz qw is not a unit quaternion"),
        ("50.0 1 2 3 0 0 0 1", "line 3: stamp 50.0 does not increase"),
        ("100.0 1 2 three 0 0 0 1", "line 3: expected 8 numbers"),
    ],
)
def test_a_bad_trajectory_row_is_named_by_file_and_line(
    tmp_path: Path, line: str, message: str
) -> None:
    path = tmp_path / "trajectory.tum"
    path.write_text(f"# header\n99.0 0 0 0 0 0 0 1\n{line}\n")
    with pytest.raises(MapFormatError, match=re.escape(f"{path}: {message}")):
        mapfiles.read_trajectory(path)
