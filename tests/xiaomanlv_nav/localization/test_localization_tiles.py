"""TileMap: tiles held within a radius of the robot, dropped beyond it, the target kept."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from xiaomanlv_nav.localization.config import LocalizerConfig
from xiaomanlv_nav.localization.tiles import WORKER_NICE, MapTileError, TileMap, tile_map_for


def _tile_map(
    folder: Path, radius: float = 20.0, margin: float = 10.0, *, background: bool = False
) -> TileMap:
    return TileMap(
        folder,
        radius=radius,
        unload_margin=margin,
        map_voxel=0.4,
        target_voxel=1.0,
        neighbors=10,
        background=background,
    )


def test_tiles_load_around_the_robot_and_memory_stays_bounded(
    tmp_path: Path, courtyard: Any
) -> None:
    folder = courtyard.write_map(tmp_path, tile_size=20.0)  # 4 x 3 tiles of 20 m
    tiles = _tile_map(folder, radius=15.0)
    assert tiles.target is None and tiles.loaded == () and tiles.points == 0
    change = tiles.update(-30.0, -20.0)  # on a corner of four tiles; the next are 20 m away
    first = set(tiles.loaded)
    assert (
        set(change.loaded)
        == set(tiles.loaded)
        == {
            "tile_-2_-2.pcd",
            "tile_-2_-1.pcd",
            "tile_-1_-2.pcd",
            "tile_-1_-1.pcd",
        }
    )
    assert tiles.target is not None and tiles.points > 0
    held_xy = tiles.prepared_points()[:, :2]  # the four tiles' box: x, y in [-40, 0]
    assert (held_xy >= -40.0 - 1e-3).all() and (held_xy <= 1e-3).all()
    held = tiles.points
    assert tiles.update(-29.0, -21.0).loaded == ()  # the same tiles: no work
    assert tiles.loads == 4 and tiles.rebuilds == 1 and tiles.points == held
    # Across the site: the far tiles go, the near ones come; never the whole site at once.
    change = tiles.update(30.0, 20.0)
    assert set(change.dropped) == first
    assert "tile_1_0.pcd" in tiles.loaded and "tile_-2_-2.pcd" not in tiles.loaded
    assert change.rebuilt and tiles.rebuilds == 2
    assert len(tiles.loaded) < len(tiles.index.origins)


def test_a_tile_at_the_edge_of_the_radius_is_not_reloaded_every_sweep(
    tmp_path: Path, courtyard: Any
) -> None:
    tiles = _tile_map(courtyard.write_map(tmp_path, tile_size=20.0), radius=5.0, margin=5.0)
    tiles.update(-5.0, 10.0)  # 5 m from tile_0_0's border at x = 0: held
    assert "tile_0_0.pcd" in tiles.loaded
    for x in (-6.0, -8.0, -5.0, -9.0):  # beyond the radius, within the margin: kept
        assert tiles.update(x, 10.0).dropped == ()
    assert tiles.loads == len(tiles.loaded)
    assert "tile_0_0.pcd" in tiles.update(-11.0, 10.0).dropped


def test_a_broken_tile_is_an_error_naming_it_and_the_held_tiles_stay(
    tmp_path: Path, courtyard: Any
) -> None:
    folder = courtyard.write_map(tmp_path, tile_size=20.0)
    tiles = tile_map_for(LocalizerConfig(tile_radius=10.0, tile_unload_margin=0.0), folder)
    tiles.update(-30.0, -20.0)
    before = tiles.loaded
    (folder / "tile_1_0.pcd").write_bytes(b"VERSION 0.7\n")
    with pytest.raises(MapTileError, match=r"tile_1_0\.pcd: DATA: no DATA line"):
        tiles.update(30.0, 10.0)
    assert tiles.loaded == before and tiles.target is not None
    with pytest.raises(MapTileError, match=r"pointcloud_map_metadata\.yaml: missing"):
        _tile_map(tmp_path / "nowhere")


def test_tiles_ahead_are_built_behind_the_sweeps(tmp_path: Path, courtyard: Any) -> None:
    """With a worker, tracking never waits for a tile: the held target serves until the
    worker's new one is ready, then the next update swaps it in, the far tiles dropped."""
    folder = courtyard.write_map(tmp_path, tile_size=20.0)
    tiles = _tile_map(folder, radius=15.0, background=True)
    tiles.update(-30.0, -20.0, wait=False)  # nothing held yet: loaded at once
    first, target = set(tiles.loaded), tiles.target
    assert len(first) == 4 and target is not None
    change = tiles.update(30.0, 20.0, wait=False)  # across the site: asked, not waited for
    assert change.loaded == () and set(tiles.loaded) == first and tiles.target is target
    assert tiles._next is not None
    tiles._next.result(timeout=120.0)  # the worker finishes (no sleep: its future)
    change = tiles.update(30.0, 20.0, wait=False)
    assert "tile_1_0.pcd" in change.loaded and set(change.dropped) == first
    assert tiles.target is not target and "tile_1_0.pcd" in tiles.loaded
    assert tiles.update(30.0, 20.0, wait=False).loaded == ()  # nothing more to do
    assert tiles._next is None


def test_the_tile_worker_yields_the_core_to_the_matcher(tmp_path: Path, courtyard: Any) -> None:
    """The worker runs nicer than the thread that matches sweeps, so on a busy core a
    target being built behind does not lengthen a sweep's registration."""
    tiles = _tile_map(courtyard.write_map(tmp_path, tile_size=20.0), 15.0, background=True)
    assert tiles._worker is not None

    def nice() -> int:
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    assert tiles._worker.submit(nice).result(timeout=30.0) == nice() + WORKER_NICE
