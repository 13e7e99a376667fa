"""map.yaml + map.pgm: Nav2 map_server's format, read as Nav2 reads it; a bad PGM is named."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml

from xiaomanlv_mapping.mapfiles import read_grid, read_pgm, write_grid
from xiaomanlv_mapping.model import FREE, OCCUPIED, UNKNOWN, Grid, MapFormatError


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
    grid = Grid(
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
