"""pointcloud_map/: binary PCD tiles and Autoware's metadata; PCD from other tools; bad headers."""

from __future__ import annotations

import re
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
import yaml

from xiaomanlv_mapping.mapfiles import (
    CLOUD_DIR,
    CLOUD_METADATA,
    read_cloud,
    read_pcd,
    tile_cloud,
    write_cloud,
    write_pcd,
)
from xiaomanlv_mapping.model import MapFormatError


def test_cloud_tiles_split_and_merge_back_exactly(tmp_path: Path, map_rig: ModuleType) -> None:
    cloud = map_rig.synthetic_map().cloud
    tiles = tile_cloud(cloud, 100.0)
    assert sum(len(t) for t in tiles.values()) == len(cloud)
    for (i, j), part in tiles.items():
        assert (part[:, 0] >= i * 100.0).all() and (part[:, 0] < (i + 1) * 100.0).all()
        assert (part[:, 1] >= j * 100.0).all() and (part[:, 1] < (j + 1) * 100.0).all()
    assert np.array_equal(
        map_rig.sorted_rows(np.concatenate(list(tiles.values()))), map_rig.sorted_rows(cloud)
    )
    names = write_cloud(cloud, tmp_path / CLOUD_DIR, tile_size=100.0)
    meta = yaml.safe_load((tmp_path / CLOUD_DIR / CLOUD_METADATA).read_text())
    assert meta["x_resolution"] == meta["y_resolution"] == 100.0
    assert meta["tile_0_0.pcd"] == [0.0, 0.0] and meta["tile_-2_-1.pcd"] == [-200.0, -100.0]
    assert sorted(names) == sorted([*(k for k in meta if k.endswith(".pcd")), CLOUD_METADATA])
    back = read_cloud(tmp_path / CLOUD_DIR)
    assert back.dtype == np.float32 and np.array_equal(
        map_rig.sorted_rows(back), map_rig.sorted_rows(cloud)
    )


def test_tile_size_is_a_parameter_and_one_tile_keeps_the_order(
    tmp_path: Path, map_rig: ModuleType
) -> None:
    cloud = map_rig.synthetic_map().cloud
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
