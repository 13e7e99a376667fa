"""core.pcd and core.tiles: a divided point-cloud map read tile by tile, errors of the caller."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xiaomanlv_core.fields import FormatError
from xiaomanlv_core.pcd import read_pcd
from xiaomanlv_core.tiles import CLOUD_METADATA, read_tile, read_tile_index


def _write_pcd(path: Path, points: np.ndarray) -> None:
    header = (
        "VERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\n"
        f"WIDTH {len(points)}\nHEIGHT 1\nPOINTS {len(points)}\nDATA binary\n"
    )
    path.write_bytes(header.encode() + np.asarray(points, "<f4").tobytes())


def _tiled(tmp_path: Path) -> Path:
    """Four 10 m tiles around the origin, each with one point at its middle."""
    meta = ["x_resolution: 10.0", "y_resolution: 10.0"]
    for i in (-1, 0):
        for j in (-1, 0):
            _write_pcd(tmp_path / f"tile_{i}_{j}.pcd", np.array([[i * 10 + 5, j * 10 + 5, 1.0]]))
            meta.append(f"tile_{i}_{j}.pcd: [{i * 10.0}, {j * 10.0}]")
    (tmp_path / CLOUD_METADATA).write_text("\n".join(meta) + "\n")
    return tmp_path


class TileError(FormatError):
    """A reader's own error type."""


def test_near_names_the_tiles_within_the_radius_of_their_nearest_point(tmp_path: Path) -> None:
    index = read_tile_index(_tiled(tmp_path))
    assert index.box("tile_0_-1.pcd") == (0.0, -10.0, 10.0, 0.0)
    assert index.near(5.0, 5.0, 0.0) == ["tile_0_0.pcd"]  # the tile under the point only
    assert sorted(index.near(5.0, 5.0, 5.5)) == ["tile_-1_0.pcd", "tile_0_-1.pcd", "tile_0_0.pcd"]
    assert len(index.near(5.0, 5.0, 7.1)) == 4  # the diagonal tile's corner is 7.07 m away
    assert index.near(100.0, 100.0, 50.0) == []
    np.testing.assert_allclose(read_tile(index, "tile_-1_0.pcd"), [[-5.0, 5.0, 1.0]])


def test_errors_are_the_callers_type_and_name_the_file(tmp_path: Path) -> None:
    directory = _tiled(tmp_path)
    _write_pcd(directory / "tile_0_0.pcd", np.array([[25.0, 5.0, 0.0]]))
    index = read_tile_index(directory, TileError)
    with pytest.raises(TileError, match=r"tile_0_0\.pcd: DATA: point 0 at \(25\.000, 5\.000\)"):
        read_tile(index, "tile_0_0.pcd", TileError)
    (directory / "stray.pcd").write_bytes(b"")
    with pytest.raises(TileError, match=r"stray\.pcd: not listed in pointcloud_map_metadata"):
        read_tile_index(directory, TileError)
    with pytest.raises(FormatError, match=r"stray\.pcd: DATA: no DATA line"):
        read_pcd(directory / "stray.pcd")
    with pytest.raises(FormatError, match=r"nothing/pointcloud_map_metadata\.yaml: missing"):
        read_tile_index(tmp_path / "nothing")
