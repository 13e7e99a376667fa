"""The 2D occupancy grid as Nav2's map_server reads it: ``map.yaml`` and an 8-bit P5 PGM.

:func:`write_grid` writes what Nav2's map_saver writes (trinary: free 254, occupied 0,
unknown 205; the image's top row is the grid's highest-y row); :func:`read_grid` reads a
map.yaml as map_server does (thresholds and ``negate`` from the file). Reference: Nav2
map_server ``map_io`` (YAML keys, trinary thresholds, map_saver's pixel values); the Netpbm
PGM format. The PGM reader is small and hand-written on purpose: OpenCV's imread returns an
empty result on a bad file without saying what is wrong, and this reader must name the field.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_core.fields import shown
from xiaomanlv_mapping.mapfiles.fileio import load_yaml, map_fields, read_bytes, write_file
from xiaomanlv_mapping.mapfiles.layout import GRID_IMAGE
from xiaomanlv_mapping.model import FREE, OCCUPIED, UNKNOWN, Grid, MapFormatError

# map_saver's trinary pixel values, and thresholds that read them back as written: Nav2's
# default free_thresh 0.25 would read unknown (205: occupancy 50/255 = 0.196) as free, which
# is why ROS 1's map_saver wrote 0.196.
PGM_FREE, PGM_OCCUPIED, PGM_UNKNOWN = 254, 0, 205
OCCUPIED_THRESH = 0.65
FREE_THRESH = 0.196


def _float(value: float) -> str:
    """A float as text that YAML 1.1 (PyYAML) and yaml-cpp read back as the same double:
    Python's shortest repr, with a ".0" in an exponent form without a point (1e-09)."""
    text = repr(float(value))
    if "e" in text and "." not in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


_GRID_KEYS = ("image", "mode", "resolution", "origin", "negate", "occupied_thresh", "free_thresh")
_GRID_REQUIRED = ("image", "resolution", "origin", "negate", "occupied_thresh", "free_thresh")


def _grid_cells(grid: Grid, label: str) -> NDArray[np.int8]:
    f = map_fields(label)
    cells = np.asarray(grid.cells)
    if cells.ndim != 2 or cells.shape[0] < 1 or cells.shape[1] < 1:
        raise f.fail("grid.cells", f"expected a non-empty 2D array, got shape {cells.shape}")
    if not np.issubdtype(cells.dtype, np.integer):
        raise f.fail("grid.cells", f"expected integers, got {cells.dtype}")
    bad = (cells != FREE) & (cells != OCCUPIED) & (cells != UNKNOWN)
    if bad.any():
        row, col = (int(v) for v in np.argwhere(bad)[0])
        raise f.fail(
            "grid.cells",
            f"values must be {FREE} (free), {OCCUPIED} (occupied) or {UNKNOWN} (unknown); "
            f"found {int(cells[row, col])} at row {row}, col {col}",
        )
    f.positive(grid.resolution, "resolution")
    if len(grid.origin) != 3:
        raise f.fail("origin", f"expected [x, y, yaw], got {shown(grid.origin)}")
    for i, v in enumerate(grid.origin):
        f.number(v, f"origin[{i}]")
    return cells.astype(np.int8)


def write_pgm(path: Path, pixels: NDArray[np.uint8]) -> None:
    """An 8-bit binary PGM (P5, maxval 255); ``pixels[0]`` is the top row of the image."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width = pixels.shape
    write_file(Path(path), f"P5\n{width} {height}\n255\n".encode("ascii") + pixels.tobytes())


_PGM_SPACE = b" \t\r\n\v\f"


def read_pgm(path: Path) -> tuple[NDArray[np.uint8], int]:
    """(pixels (H,W) with row 0 at the top, maxval) of an 8-bit binary PGM (P5).

    Raises:
        MapFormatError: not P5, a bad or missing header field, a 16-bit image, truncated or
            trailing data, a pixel above maxval; the message names the file and the field.
    """
    path = Path(path)
    data = read_bytes(path)
    f = map_fields(str(path))
    tokens: list[bytes] = []
    pos = 0
    for name in ("magic", "width", "height", "maxval"):
        while pos < len(data):
            byte = data[pos : pos + 1]
            if byte in _PGM_SPACE:
                pos += 1
            elif byte == b"#":
                end = data.find(b"\n", pos)
                pos = len(data) if end < 0 else end + 1
            else:
                break
        start = pos
        while pos < len(data) and data[pos : pos + 1] not in _PGM_SPACE:
            pos += 1
        if start == pos:
            raise f.fail(name, "missing (the file ends inside the header)")
        tokens.append(data[start:pos])
    magic, width_text, height_text, maxval_text = tokens
    if magic != b"P5":
        shown = magic[:8].decode("latin-1")
        raise f.fail("magic", f"expected P5 (8-bit binary PGM), got {shown!r}")
    values = []
    for name, token in (("width", width_text), ("height", height_text), ("maxval", maxval_text)):
        if not token.isdigit() or int(token) < 1:
            raise f.fail(name, f"expected a positive integer, got {token.decode('latin-1')!r}")
        values.append(int(token))
    width, height, maxval = values
    if maxval > 255:
        raise f.fail("maxval", f"{maxval}: 16-bit PGM is not supported (expected <= 255)")
    if pos >= len(data):
        raise f.fail("data", f"missing: expected {width * height} bytes after the header")
    pos += 1  # the single whitespace byte that ends the header
    expected, got = width * height, len(data) - pos
    if got < expected:
        raise f.fail("data", f"expected {width}x{height} = {expected} bytes, got {got}: truncated")
    if got > expected:
        raise f.fail("data", f"{got - expected} bytes after the {width}x{height} image")
    pixels = np.frombuffer(data, dtype=np.uint8, count=expected, offset=pos)
    pixels = pixels.reshape(height, width)
    if int(pixels.max()) > maxval:
        row, col = (int(v) for v in np.argwhere(pixels > maxval)[0])
        raise f.fail("data", f"pixel {int(pixels[row, col])} at row {row}, col {col} > maxval")
    return pixels.copy(), maxval


def grid_yaml_text(grid: Grid, image: str = GRID_IMAGE) -> str:
    """map.yaml as Nav2's map_saver writes it (trinary), with exact float text."""
    x, y, yaw = grid.origin
    return (
        f"image: {image}\n"
        "mode: trinary\n"
        f"resolution: {_float(grid.resolution)}\n"
        f"origin: [{_float(x)}, {_float(y)}, {_float(yaw)}]\n"
        "negate: 0\n"
        f"occupied_thresh: {OCCUPIED_THRESH}\n"
        f"free_thresh: {FREE_THRESH}\n"
    )


def write_grid(grid: Grid, path: Path, image: str = GRID_IMAGE) -> None:
    """``path`` (map.yaml) and ``image`` beside it: free 254, occupied 0, unknown 205, the
    image's top row the grid's highest-y row (as Nav2's map_saver writes them).

    Raises:
        MapFormatError: cells other than FREE/OCCUPIED/UNKNOWN, a bad resolution or origin.
    """
    path = Path(path)
    cells = _grid_cells(grid, str(path))
    if not re.fullmatch(r"[A-Za-z0-9_.+-]+\.pgm", image):
        raise MapFormatError(
            f"{path}: image: expected a plain file name ending .pgm, got {image!r}"
        )
    pixels = np.full(cells.shape, PGM_UNKNOWN, dtype=np.uint8)
    pixels[cells == FREE] = PGM_FREE
    pixels[cells == OCCUPIED] = PGM_OCCUPIED
    write_pgm(path.parent / image, pixels[::-1])
    write_file(path, grid_yaml_text(grid, image).encode("utf-8"))


def read_grid_and_image(path: Path) -> tuple[Grid, Path]:
    """:func:`read_grid`, and the path of the image map.yaml names."""
    path = Path(path)
    f = map_fields(str(path))
    data = f.mapping(load_yaml(path), "", _GRID_REQUIRED, _GRID_KEYS)
    image_name = f.text(data["image"], "image")
    mode = data.get("mode", "trinary")
    if mode != "trinary":
        raise f.fail("mode", f"only trinary maps are read, got {shown(mode)}")
    resolution = f.positive(data["resolution"], "resolution")
    origin_raw = data["origin"]
    if not isinstance(origin_raw, list) or len(origin_raw) != 3:
        raise f.fail("origin", f"expected [x, y, yaw], got {shown(origin_raw)}")
    x, y, yaw = (f.number(v, f"origin[{i}]") for i, v in enumerate(origin_raw))
    negate = data["negate"]
    if negate not in (0, 1) or isinstance(negate, float):
        raise f.fail("negate", f"expected 0 or 1, got {shown(negate)}")
    occupied = f.in_range(data["occupied_thresh"], "occupied_thresh", 0.0, 1.0, "")
    free = f.in_range(data["free_thresh"], "free_thresh", 0.0, 1.0, "")
    if not free < occupied:
        raise f.fail("free_thresh", f"{free} must be below occupied_thresh {occupied}")
    image = Path(image_name) if Path(image_name).is_absolute() else path.parent / image_name
    if image.suffix.lower() != ".pgm":
        raise f.fail("image", f"only 8-bit binary PGM images are read, got {image_name!r}")
    pixels, maxval = read_pgm(image)
    # Nav2 map_io: shade in [0, 1], occupancy = 1 - shade (shade when negated), thresholds;
    # worked out once per pixel value, then looked up.
    shade = np.arange(256, dtype=np.float64) / maxval
    occupancy = shade if negate else 1.0 - shade
    table = np.full(256, UNKNOWN, dtype=np.int8)
    table[occupancy < free] = FREE
    table[occupancy > occupied] = OCCUPIED
    cells = table[pixels[::-1]]
    grid = Grid(resolution=resolution, origin=(x, y, yaw), cells=np.ascontiguousarray(cells))
    return grid, image


def read_grid(path: Path) -> Grid:
    """The grid of a Nav2 map.yaml (trinary) and its PGM image, read as Nav2's map_server
    reads them (thresholds from the YAML, ``negate`` honoured).

    Raises:
        MapFormatError: a missing, unknown or bad key, a mode other than trinary, a bad image.
    """
    return read_grid_and_image(path)[0]
