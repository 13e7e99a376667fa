"""Map files: a :class:`~xiaomanlv_mapping.model.PriorMap` on disk as ``maps/<site>/``.

Layout (docs/mapping.md, "Map files")::

    maps/<site>/
      info.yaml                     format version, site, created (UTC), cloud voxel, tile size,
                                    builder provenance, sha256 and size of every other file
      map.yaml  map.pgm             2D occupancy grid, Nav2 map_server format (trinary, P5 PGM)
      pointcloud_map/               3D cloud: binary PCD tiles (x y z float32) and
        pointcloud_map_metadata.yaml  Autoware's dynamic-map-loading metadata
        tile_<i>_<j>.pcd
      datum.yaml                    WGS84 position and heading of the map origin
      routes.geojson                route graph, Nav2 route server GeoJSON (hand-editable)
      stops.yaml                    station and delivery stops (hand-editable)

:func:`write_map` writes everything into a sibling temporary directory, fsyncs it, reads it
back, then renames it into place (an existing map is swapped out atomically with Linux
``renameat2(RENAME_EXCHANGE)``), so an interrupted build never leaves a broken map.
:func:`read_map` checks every file against the seals in info.yaml and validates every field;
every error is a :class:`~xiaomanlv_mapping.model.MapFormatError` naming the file and the field.
The per-file readers and writers are public for tools.

References: Nav2 map_server ``map_io`` (YAML keys, trinary thresholds, map_saver's pixel
values); Autoware ``map_loader`` (pointcloud_map_metadata.yaml); the PCD v0.7 file format
(pointclouds.org); the Nav2 route server README (graph file conventions); RFC 7946 (GeoJSON).
The PCD and PGM readers are small and hand-written on purpose: Open3D's PCD reader and OpenCV's
imread return an empty result on a bad file without saying what is wrong, and these readers
must name the field.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime as dt
import errno
import hashlib
import json
import logging
import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from numpy.typing import NDArray

from xiaomanlv_core.config import param, validate_fields
from xiaomanlv_mapping.model import (
    FREE,
    OCCUPIED,
    UNKNOWN,
    Datum,
    Grid,
    MapFormatError,
    MappingError,
    MapStop,
    PoseSeries,
    PriorMap,
    RouteEdge,
    RouteGraph,
    RouteNode,
    StopSet,
)

log = logging.getLogger(__name__)

FORMAT = "xiaomanlv-map"
FORMAT_VERSION = 1
MAP_FRAME = "map"  # REP 105: every coordinate in these files is in this frame

INFO_FILE = "info.yaml"
GRID_YAML = "map.yaml"
GRID_IMAGE = "map.pgm"
CLOUD_DIR = "pointcloud_map"
CLOUD_METADATA = "pointcloud_map_metadata.yaml"
DATUM_FILE = "datum.yaml"
ROUTES_FILE = "routes.geojson"
STOPS_FILE = "stops.yaml"
TRAJECTORY_FILE = "trajectory.tum"  # optional: the optimised mapping drive, TUM format
# Made to be edited by hand: a checksum that no longer matches is reported, not refused
# (every field is still validated); seal_map() records a deliberate edit.
HAND_EDITABLE = frozenset({ROUTES_FILE, STOPS_FILE})

DEFAULT_TILE_SIZE = 100.0  # [m] side of a square point-cloud tile
# map_saver's trinary pixel values, and thresholds that read them back as written: Nav2's
# default free_thresh 0.25 would read unknown (205: occupancy 50/255 = 0.196) as free, which
# is why ROS 1's map_saver wrote 0.196.
PGM_FREE, PGM_OCCUPIED, PGM_UNKNOWN = 254, 0, 205
OCCUPIED_THRESH = 0.65
FREE_THRESH = 0.196
NODE_TOLERANCE = 0.01  # [m] an edge's first/last point may be this far from its node
TILE_TOLERANCE = 1e-3  # [m] a PCD point may lie this far outside its tile's box
NODE_KINDS = ("junction", "end", "stop", "station")
# Nav2's own graph files name this so GIS editors (QGIS) treat the coordinates as planar
# metres; the coordinates are in the map frame, which datum.yaml places on the Earth.
GEOJSON_CRS = {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::3857"}}
_TILE_NAME = re.compile(r"^[A-Za-z0-9_.+-]+\.pcd$")


# ---- config of the map server (the node declares its parameters from it) -----------------------
@dataclass(frozen=True)
class MapServerConfig:
    """Parameters of the ``map_server`` node."""

    map: str = param("", description="map directory; empty: maps/<site> (source tree, then share)")
    site: str = param("university", description="site whose map to serve when map is empty")
    diagnostics_rate: float = param(
        1.0, low=0.1, high=10.0, unit="Hz", description="/diagnostics per wall second"
    )  # [Hz]

    def __post_init__(self) -> None:
        validate_fields(self)


_SOURCE_ROOT = Path(__file__).resolve().parents[2]


def maps_roots() -> list[Path]:
    """Folders that may hold ``<site>/`` maps: the source checkout's maps/ (edits need no
    rebuild), then the installed ``share/xiaomanlv/maps``."""
    roots = []
    if (_SOURCE_ROOT / "maps").is_dir():
        roots.append(_SOURCE_ROOT / "maps")
    try:
        from xiaomanlv_core.paths import PackageNotBuiltError, share_dir

        with contextlib.suppress(PackageNotBuiltError):
            roots.append(share_dir() / "maps")
    except ImportError:  # ament_index_python is not installed: only the source tree
        pass
    return roots


def site_map_dir(site: str) -> Path:
    """``maps/<site>`` of a shipped or built site.

    Raises:
        MappingError: the name is not a plain name, or no root holds that site's map.
    """
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", site):
        raise MappingError(f"parameter 'site' = {site!r} is not a site name")
    roots = maps_roots()
    for root in roots:
        if (root / site).is_dir():
            return root / site
    looked = ", ".join(str(r / site) for r in roots) or "(no source tree or installed share)"
    raise MappingError(
        f"no map for site '{site}': looked in {looked}; build one (`xiaomanlv map build`) "
        "or set the 'map' parameter to a map directory"
    )


def resolve_map_dir(config: MapServerConfig) -> Path:
    """The directory ``config`` names: ``map`` if set, else ``maps/<site>``."""
    if config.map:
        return Path(config.map).expanduser()
    return site_map_dir(config.site)


# ---- field access with errors that name the file and the field -----------------------------------
class _Fields:
    """Typed access to parsed YAML or JSON; every error names the file (label) and the field."""

    def __init__(self, label: str) -> None:
        self.label = label

    def fail(self, field: str, message: str) -> MapFormatError:
        return MapFormatError(f"{self.label}: {field or 'top level'}: {message}")

    def mapping(
        self,
        value: Any,
        field: str,
        required: Iterable[str] = (),
        known: Iterable[str] | None = None,
    ) -> dict[str, Any]:
        """A mapping with ``required`` keys; only ``known`` ones when given."""
        if not isinstance(value, dict):
            raise self.fail(field, f"expected a mapping, got {_shown(value)}")
        prefix = f"{field}." if field else ""
        if known is not None:
            allowed = set(known) | set(required)
            for key in value:
                if key not in allowed:
                    names = ", ".join(sorted(allowed))
                    raise self.fail(f"{prefix}{key}", f"unknown key (known: {names})")
        for key in required:
            if key not in value:
                raise self.fail(f"{prefix}{key}", "missing")
        return value

    def sequence(self, value: Any, field: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(field, f"expected a list, got {_shown(value)}")
        return value

    def text(self, value: Any, field: str, *, empty: bool = False) -> str:
        if not isinstance(value, str) or (not empty and not value.strip()):
            kind = "a string" if empty else "a non-empty string"
            raise self.fail(field, f"expected {kind}, got {_shown(value)}")
        return value

    def number(self, value: Any, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(field, f"expected a number, got {_shown(value)}")
        if not math.isfinite(value):
            raise self.fail(field, f"expected a finite number, got {_shown(value)}")
        return float(value)

    def positive(self, value: Any, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            raise self.fail(field, f"expected a positive number, got {_shown(value)}")
        if not math.isfinite(value):
            raise self.fail(field, f"expected a finite positive number, got {_shown(value)}")
        return float(value)

    def in_range(self, value: Any, field: str, low: float, high: float, unit: str) -> float:
        number = self.number(value, field)
        if not low <= number <= high:
            raise self.fail(field, f"{_shown(value)} is out of range [{low:g}, {high:g}] {unit}")
        return number

    def integer(self, value: Any, field: str, *, low: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(field, f"expected an integer, got {_shown(value)}")
        if low is not None and value < low:
            raise self.fail(field, f"expected an integer >= {low}, got {value}")
        return value

    def xy(self, value: Any, field: str) -> tuple[float, float]:
        if not isinstance(value, list) or len(value) != 2:
            raise self.fail(field, f"expected [x, y], got {_shown(value)}")
        return (self.number(value[0], f"{field}[0]"), self.number(value[1], f"{field}[1]"))


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise MapFormatError(f"{path}: missing") from None
    except OSError as err:
        raise MapFormatError(f"{path}: cannot read: {err.strerror or err}") from None


def _read_text(path: Path) -> str:
    try:
        return _read_bytes(path).decode("utf-8")
    except UnicodeDecodeError as err:
        raise MapFormatError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(_read_text(path))
    except yaml.YAMLError as err:
        raise MapFormatError(f"{path}: not valid YAML: {err}") from None


def _write_file(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: a temporary file beside it, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _yaml_text(data: Mapping[str, Any], header: str, *, flow_leaves: bool = False) -> bytes:
    """YAML with a comment header; ``flow_leaves`` writes innermost mappings and lists on one
    line (``{name: a, x: 1.0}``), else only lists of scalars are."""
    comment = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    body = yaml.dump(
        _flow_lists(dict(data), flow_leaves),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=100,
    )
    return (comment + body).encode("utf-8")


class _Flow(dict[str, Any]):
    """A mapping YAML writes in flow style."""


class _FlowList(list[Any]):
    """A list YAML writes in flow style."""


def _flow_lists(value: Any, flow_leaves: bool) -> Any:
    if isinstance(value, dict):
        items = {k: _flow_lists(v, flow_leaves) for k, v in value.items()}
        leaf = all(not isinstance(v, dict | list) for v in value.values())
        return _Flow(items) if flow_leaves and leaf and items else items
    if isinstance(value, list):
        items_list = [_flow_lists(v, flow_leaves) for v in value]
        leaf = all(not isinstance(v, dict | list) for v in value)
        return _FlowList(items_list) if leaf else items_list
    return value


def _represent_flow(dumper: yaml.SafeDumper, data: Any) -> yaml.Node:
    if isinstance(data, dict):
        return dumper.represent_mapping("tag:yaml.org,2002:map", dict(data), flow_style=True)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", list(data), flow_style=True)


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes _Flow and _FlowList in flow style."""


_Dumper.add_representer(_Flow, _represent_flow)
_Dumper.add_representer(_FlowList, _represent_flow)


def _float(value: float) -> str:
    """A float as text that YAML 1.1 (PyYAML) and yaml-cpp read back as the same double:
    Python's shortest repr, with a ".0" in an exponent form without a point (1e-09)."""
    text = repr(float(value))
    if "e" in text and "." not in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent}"
    return text


# ---- occupancy grid: Nav2 map_server YAML + PGM ------------------------------------------------
_GRID_KEYS = ("image", "mode", "resolution", "origin", "negate", "occupied_thresh", "free_thresh")
_GRID_REQUIRED = ("image", "resolution", "origin", "negate", "occupied_thresh", "free_thresh")


def _grid_cells(grid: Grid, label: str) -> NDArray[np.int8]:
    f = _Fields(label)
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
        raise f.fail("origin", f"expected [x, y, yaw], got {_shown(grid.origin)}")
    for i, v in enumerate(grid.origin):
        f.number(v, f"origin[{i}]")
    return cells.astype(np.int8)


def write_pgm(path: Path, pixels: NDArray[np.uint8]) -> None:
    """An 8-bit binary PGM (P5, maxval 255); ``pixels[0]`` is the top row of the image."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    height, width = pixels.shape
    _write_file(Path(path), f"P5\n{width} {height}\n255\n".encode("ascii") + pixels.tobytes())


_PGM_SPACE = b" \t\r\n\v\f"


def read_pgm(path: Path) -> tuple[NDArray[np.uint8], int]:
    """(pixels (H,W) with row 0 at the top, maxval) of an 8-bit binary PGM (P5).

    Raises:
        MapFormatError: not P5, a bad or missing header field, a 16-bit image, truncated or
            trailing data, a pixel above maxval; the message names the file and the field.
    """
    path = Path(path)
    data = _read_bytes(path)
    f = _Fields(str(path))
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
    _write_file(path, grid_yaml_text(grid, image).encode("utf-8"))


def _read_grid(path: Path) -> tuple[Grid, Path]:
    path = Path(path)
    f = _Fields(str(path))
    data = f.mapping(_load_yaml(path), "", _GRID_REQUIRED, _GRID_KEYS)
    image_name = f.text(data["image"], "image")
    mode = data.get("mode", "trinary")
    if mode != "trinary":
        raise f.fail("mode", f"only trinary maps are read, got {_shown(mode)}")
    resolution = f.positive(data["resolution"], "resolution")
    origin_raw = data["origin"]
    if not isinstance(origin_raw, list) or len(origin_raw) != 3:
        raise f.fail("origin", f"expected [x, y, yaw], got {_shown(origin_raw)}")
    x, y, yaw = (f.number(v, f"origin[{i}]") for i, v in enumerate(origin_raw))
    negate = data["negate"]
    if negate not in (0, 1) or isinstance(negate, float):
        raise f.fail("negate", f"expected 0 or 1, got {_shown(negate)}")
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
    return _read_grid(path)[0]


# ---- point cloud: binary PCD tiles + Autoware metadata -----------------------------------------
_PCD_HEADER = (
    "# .PCD v0.7 - Point Cloud Data file format\n"
    "VERSION 0.7\n"
    "FIELDS x y z\n"
    "SIZE 4 4 4\n"
    "TYPE F F F\n"
    "COUNT 1 1 1\n"
    "WIDTH {n}\n"
    "HEIGHT 1\n"
    "VIEWPOINT 0 0 0 1 0 0 0\n"
    "POINTS {n}\n"
    "DATA binary\n"
)
_PCD_KEYS = ("VERSION", "FIELDS", "SIZE", "TYPE", "COUNT", "WIDTH", "HEIGHT", "VIEWPOINT", "POINTS")
_PCD_MAX_HEADER = 65536  # [bytes] a header longer than this is not a PCD header


def _points_array(points: Any, label: str, field: str) -> NDArray[np.float32]:
    cloud = np.asarray(points)
    if cloud.ndim != 2 or cloud.shape[1] != 3:
        raise MapFormatError(f"{label}: {field}: expected an (N,3) array, got shape {cloud.shape}")
    cloud = np.ascontiguousarray(cloud, dtype=np.float32)
    finite = np.isfinite(cloud).all(axis=1)
    if not finite.all():
        i = int(np.argmin(finite))
        raise MapFormatError(f"{label}: {field}: point {i} {cloud[i].tolist()} is not finite")
    return cloud


def write_pcd(path: Path, points: NDArray[np.float32]) -> None:
    """A binary PCD v0.7 file with fields x y z (float32, little-endian), one row."""
    path = Path(path)
    cloud = _points_array(points, str(path), "points")
    header = _PCD_HEADER.format(n=len(cloud)).encode("ascii")
    _write_file(path, header + cloud.astype("<f4").tobytes())


def read_pcd(path: Path) -> NDArray[np.float32]:
    """(N,3) float32 x, y, z [m] of a PCD file (DATA ascii or binary; other fields ignored).

    Raises:
        MapFormatError: naming the header line (FIELDS, SIZE, TYPE, COUNT, WIDTH, HEIGHT,
            POINTS, DATA) that is missing or inconsistent, truncated or trailing data, a
            missing x/y/z field, or a point that is not finite.
    """
    path = Path(path)
    data = _read_bytes(path)
    f = _Fields(str(path))
    header: dict[str, list[str]] = {}
    pos = 0
    data_kind = ""
    while not data_kind:
        end = data.find(b"\n", pos)
        if end < 0 or end > _PCD_MAX_HEADER:
            raise f.fail("DATA", "no DATA line: the header is incomplete or this is not a PCD file")
        try:
            line = data[pos:end].decode("ascii").strip()
        except UnicodeDecodeError:
            raise f.fail("header", f"non-ASCII bytes in line at byte {pos}") from None
        pos = end + 1
        if not line or line.startswith("#"):
            continue
        key, *values = line.split()
        if key == "DATA":
            if len(values) != 1:
                raise f.fail("DATA", f"expected ascii or binary, got {line!r}")
            data_kind = values[0]
        elif key not in _PCD_KEYS:
            raise f.fail(key, "unknown header line")
        elif key in header:
            raise f.fail(key, "given twice")
        else:
            header[key] = values
    if data_kind == "binary_compressed":
        raise f.fail("DATA", "binary_compressed is not supported (save as binary)")
    if data_kind not in ("ascii", "binary"):
        raise f.fail("DATA", f"expected ascii or binary, got {data_kind!r}")
    if "VERSION" in header and header["VERSION"] not in (["0.7"], [".7"]):
        raise f.fail("VERSION", f"expected 0.7, got {' '.join(header['VERSION'])!r}")
    for key in ("FIELDS", "SIZE", "TYPE", "WIDTH", "HEIGHT", "POINTS"):
        if key not in header:
            raise f.fail(key, "missing")
    fields = header["FIELDS"]
    if not fields:
        raise f.fail("FIELDS", "empty")
    count_text = header.get("COUNT", ["1"] * len(fields))
    for key, values in (("SIZE", header["SIZE"]), ("TYPE", header["TYPE"]), ("COUNT", count_text)):
        if len(values) != len(fields):
            raise f.fail(key, f"{len(values)} entries for {len(fields)} FIELDS")

    def integer(key: str, text: str, low: int) -> int:
        if not re.fullmatch(r"\d+", text) or int(text) < low:
            raise f.fail(key, f"expected an integer >= {low}, got {text!r}")
        return int(text)

    sizes = [integer("SIZE", s, 1) for s in header["SIZE"]]
    counts = [integer("COUNT", c, 1) for c in count_text]
    types = header["TYPE"]
    formats = []
    for name, size, kind in zip(fields, sizes, types, strict=True):
        allowed = {"F": (4, 8), "I": (1, 2, 4, 8), "U": (1, 2, 4, 8)}.get(kind)
        if allowed is None:
            raise f.fail("TYPE", f"field {name}: expected F, I or U, got {kind!r}")
        if size not in allowed:
            raise f.fail("SIZE", f"field {name}: size {size} is not valid for TYPE {kind}")
        code = {"F": "f", "I": "i", "U": "u"}[kind]
        formats.append(np.dtype(f"<{code}{size}"))
    for axis in ("x", "y", "z"):
        if axis not in fields:
            raise f.fail("FIELDS", f"no {axis} field (got {' '.join(fields)})")
        k = fields.index(axis)
        if types[k] != "F" or counts[k] != 1:
            raise f.fail(
                axis, f"expected TYPE F with COUNT 1, got TYPE {types[k]} COUNT {counts[k]}"
            )
    width = integer("WIDTH", header["WIDTH"][0] if len(header["WIDTH"]) == 1 else "?", 0)
    height = integer("HEIGHT", header["HEIGHT"][0] if len(header["HEIGHT"]) == 1 else "?", 1)
    points = integer("POINTS", header["POINTS"][0] if len(header["POINTS"]) == 1 else "?", 0)
    if width * height != points:
        raise f.fail(
            "POINTS", f"{points} but WIDTH x HEIGHT = {width} x {height} = {width * height}"
        )
    if "VIEWPOINT" in header and len(header["VIEWPOINT"]) != 7:
        raise f.fail("VIEWPOINT", f"expected 7 numbers, got {len(header['VIEWPOINT'])}")
    columns = [fields.index(axis) for axis in ("x", "y", "z")]
    if data_kind == "binary":
        offsets, step = [], 0
        for fmt, count in zip(formats, counts, strict=True):
            offsets.append(step)
            step += fmt.itemsize * count
        body = len(data) - pos
        if body < points * step:
            raise f.fail(
                "DATA",
                f"expected {points} points x {step} bytes = {points * step} bytes, got {body}: "
                "truncated",
            )
        if body > points * step:
            raise f.fail("DATA", f"{body - points * step} bytes after the last of {points} points")
        record = np.dtype(
            {
                "names": [f"c{k}" for k in columns],
                "formats": [formats[k] for k in columns],
                "offsets": [offsets[k] for k in columns],
                "itemsize": step,
            }
        )
        table = np.frombuffer(data, dtype=record, count=points, offset=pos)
        xyz = np.stack([table[f"c{k}"].astype(np.float64) for k in columns], axis=1)
    else:
        rows = [r for r in data[pos:].decode("ascii", errors="replace").splitlines() if r.strip()]
        if len(rows) != points:
            raise f.fail("DATA", f"expected {points} ascii rows, got {len(rows)}")
        starts = np.cumsum([0, *counts[:-1]])
        total = sum(counts)
        xyz = np.empty((points, 3), dtype=np.float64)
        for i, row in enumerate(rows):
            tokens = row.split()
            if len(tokens) != total:
                raise f.fail("DATA", f"row {i} has {len(tokens)} values, expected {total}")
            try:
                xyz[i] = [float(tokens[int(starts[k])]) for k in columns]
            except ValueError:
                raise f.fail("DATA", f"row {i}: not a number in {row[:60]!r}") from None
    cloud = xyz.astype(np.float32)
    finite = np.isfinite(cloud).all(axis=1)
    if not finite.all():
        i = int(np.argmin(finite))
        raise f.fail("DATA", f"point {i} {cloud[i].tolist()} is not finite")
    return cloud


def tile_cloud(
    cloud: NDArray[np.float32], tile_size: float = DEFAULT_TILE_SIZE
) -> dict[tuple[int, int], NDArray[np.float32]]:
    """Split a cloud into square tiles on a grid anchored at the map origin:
    tile (i, j) holds ``i*size <= x < (i+1)*size`` and likewise for y. Points keep their
    order within a tile; tiles come in (i, j) order."""
    cloud = np.asarray(cloud, dtype=np.float32).reshape(-1, 3)
    if len(cloud) == 0:
        return {}
    index = np.floor(cloud[:, :2].astype(np.float64) / tile_size).astype(np.int64)
    low = index.min(axis=0)
    span = int(index[:, 1].max() - low[1]) + 1
    key = (index[:, 0] - low[0]) * span + (index[:, 1] - low[1])  # (i, j) order, one integer
    order = np.argsort(key, kind="stable")
    keys, starts = np.unique(key[order], return_index=True)
    parts = np.split(cloud[order], starts[1:])
    return {
        (int(k // span + low[0]), int(k % span + low[1])): part
        for k, part in zip(keys, parts, strict=True)
    }


def tile_name(i: int, j: int) -> str:
    return f"tile_{i}_{j}.pcd"


def write_cloud(
    cloud: NDArray[np.float32], directory: Path, tile_size: float = DEFAULT_TILE_SIZE
) -> list[str]:
    """The cloud as Autoware's divided point-cloud map: one binary PCD per non-empty
    ``tile_size`` square and ``pointcloud_map_metadata.yaml`` (x_resolution, y_resolution,
    ``<tile>.pcd: [min_x, min_y]``). Returns the file names written.

    Raises:
        MapFormatError: a cloud that is not (N,3) and finite, a tile size that is not positive.
    """
    directory = Path(directory)
    label = str(directory / CLOUD_METADATA)
    size = _Fields(label).positive(tile_size, "x_resolution")
    points = _points_array(cloud, str(directory), "cloud")
    tiles = tile_cloud(points, size)
    metadata: dict[str, Any] = {"x_resolution": size, "y_resolution": size}
    names = []
    for (i, j), part in tiles.items():
        name = tile_name(i, j)
        write_pcd(directory / name, part)
        metadata[name] = [i * size, j * size]
        names.append(name)
    header = (
        "Autoware dynamic map loading: each tile covers [min_x, min_x + x_resolution) x\n"
        "[min_y, min_y + y_resolution) in the map frame [m]."
    )
    _write_file(directory / CLOUD_METADATA, _yaml_text(metadata, header))
    return [*names, CLOUD_METADATA]


def _read_cloud(directory: Path) -> tuple[NDArray[np.float32], list[str]]:
    directory = Path(directory)
    meta_path = directory / CLOUD_METADATA
    f = _Fields(str(meta_path))
    data = f.mapping(_load_yaml(meta_path), "", ("x_resolution", "y_resolution"))
    x_res = f.positive(data["x_resolution"], "x_resolution")
    y_res = f.positive(data["y_resolution"], "y_resolution")
    tiles: dict[str, tuple[float, float]] = {}
    for key, value in data.items():
        if key in ("x_resolution", "y_resolution"):
            continue
        if not isinstance(key, str) or not _TILE_NAME.match(key):
            raise f.fail(str(key), "unknown key (expected x_resolution, y_resolution, <tile>.pcd)")
        tiles[key] = f.xy(value, key)
    if tiles:
        names = list(tiles)
        origins = np.array([tiles[n] for n in names])
        dx = np.abs(origins[:, None, 0] - origins[None, :, 0]) < x_res - TILE_TOLERANCE
        dy = np.abs(origins[:, None, 1] - origins[None, :, 1]) < y_res - TILE_TOLERANCE
        overlap = np.triu(dx & dy, k=1)
        if overlap.any():
            a, b = (int(v) for v in np.argwhere(overlap)[0])
            raise f.fail(names[b], f"tile overlaps {names[a]} (tiles must not overlap)")
    if directory.is_dir():
        for extra in sorted(p.name for p in directory.glob("*.pcd")):
            if extra not in tiles:
                raise MapFormatError(
                    f"{directory / extra}: not listed in {CLOUD_METADATA} (an unlisted tile "
                    "would be ignored by map loaders)"
                )
    parts = []
    for name, (min_x, min_y) in tiles.items():
        tile_path = directory / name
        if not tile_path.is_file():
            raise MapFormatError(f"{tile_path}: missing ({CLOUD_METADATA} lists it)")
        points = read_pcd(tile_path)
        xy = points[:, :2].astype(np.float64)
        low = np.array([min_x, min_y]) - TILE_TOLERANCE
        high = np.array([min_x + x_res, min_y + y_res]) + TILE_TOLERANCE
        outside = ((xy < low) | (xy > high)).any(axis=1)
        if outside.any():
            i = int(np.argmax(outside))
            raise MapFormatError(
                f"{tile_path}: DATA: point {i} at ({xy[i, 0]:.3f}, {xy[i, 1]:.3f}) lies outside "
                f"its tile [{min_x:g}, {min_x + x_res:g}] x [{min_y:g}, {min_y + y_res:g}] "
                f"({CLOUD_METADATA})"
            )
        parts.append(points)
    cloud = np.concatenate(parts) if parts else np.zeros((0, 3), dtype=np.float32)
    return cloud, [*tiles, CLOUD_METADATA]


def read_cloud(directory: Path) -> NDArray[np.float32]:
    """(N,3) float32 [m] of a divided point-cloud map: the tiles in metadata order.

    Raises:
        MapFormatError: bad metadata, a listed tile missing or an unlisted one present,
            overlapping tiles, a bad PCD, a point outside its tile.
    """
    return _read_cloud(directory)[0]


# ---- datum ---------------------------------------------------------------------------------------
_DATUM_KEYS = ("latitude", "longitude", "altitude", "heading_deg")


def datum_to_dict(datum: Datum) -> dict[str, float]:
    return {k: float(getattr(datum, k)) for k in _DATUM_KEYS}


def datum_from_dict(data: Any, label: str) -> Datum:
    """A Datum from its mapping form; MapFormatError naming ``label`` and the field."""
    f = _Fields(label)
    d = f.mapping(data, "", _DATUM_KEYS, _DATUM_KEYS)
    return Datum(
        latitude=f.in_range(d["latitude"], "latitude", -90.0, 90.0, "deg"),
        longitude=f.in_range(d["longitude"], "longitude", -180.0, 180.0, "deg"),
        altitude=f.in_range(d["altitude"], "altitude", -1000.0, 10000.0, "m"),
        heading_deg=f.in_range(d["heading_deg"], "heading_deg", -360.0, 360.0, "deg"),
    )


def write_datum(datum: Datum, path: Path) -> None:
    path = Path(path)
    data = datum_to_dict(datum_from_dict(datum_to_dict(datum), str(path)))
    header = (
        "Where the map frame sits on the Earth: WGS84 latitude, longitude [deg] and ellipsoidal\n"
        "altitude [m] of the map origin; heading_deg: angle from east to the map's +x axis,\n"
        "counter-clockwise [deg] (0: x east, y north), as SDF <spherical_coordinates>."
    )
    _write_file(path, _yaml_text(data, header))


def read_datum(path: Path) -> Datum:
    """Raises MapFormatError for a missing, unknown or out-of-range field."""
    path = Path(path)
    return datum_from_dict(_load_yaml(path), str(path))


# ---- route graph: Nav2 route server GeoJSON ------------------------------------------------------
def routes_to_geojson(graph: RouteGraph) -> dict[str, Any]:
    """The graph as Nav2's route server GeoJSON: nodes are Point features (properties id,
    frame, metadata kind/name), edges MultiLineString features (properties id, startid,
    endid, metadata abs_speed_limit [m/s] and width [m]). Nav2's edges are one-way, so each
    edge also gets a reverse feature (metadata ``reverse_of`` = the edge's id, a fresh id
    above every other)."""
    features: list[dict[str, Any]] = []
    for node in graph.nodes:
        meta: dict[str, Any] = {"kind": node.kind}
        if node.name:
            meta["name"] = node.name
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [float(node.x), float(node.y)]},
                "properties": {"id": int(node.id), "frame": MAP_FRAME, "metadata": meta},
            }
        )

    def edge_feature(
        fid: int, start: int, end: int, points: Sequence[Sequence[float]], meta: dict[str, Any]
    ) -> dict[str, Any]:
        return {
            "type": "Feature",
            "geometry": {
                "type": "MultiLineString",
                "coordinates": [[[float(x), float(y)] for x, y in points]],
            },
            "properties": {"id": fid, "startid": start, "endid": end, "metadata": meta},
        }

    for e in graph.edges:
        meta = {"abs_speed_limit": float(e.speed_limit), "width": float(e.width)}
        features.append(edge_feature(int(e.id), int(e.start), int(e.end), e.points, meta))
    ids = [n.id for n in graph.nodes] + [e.id for e in graph.edges]
    next_id = max(ids, default=-1) + 1
    for k, e in enumerate(graph.edges):
        meta = {"abs_speed_limit": float(e.speed_limit), "width": float(e.width)}
        meta["reverse_of"] = int(e.id)
        features.append(edge_feature(next_id + k, int(e.end), int(e.start), e.points[::-1], meta))
    return {"type": "FeatureCollection", "crs": GEOJSON_CRS, "features": features}


def geojson_text(data: Mapping[str, Any]) -> str:
    """A FeatureCollection as JSON text with one feature per line (for hand editing and diffs)."""
    head = {k: v for k, v in data.items() if k != "features"}
    lines = ["{"]
    lines += [f"  {json.dumps(k)}: {json.dumps(v, allow_nan=False)}," for k, v in head.items()]
    features = [f"    {json.dumps(feat, allow_nan=False)}" for feat in data.get("features", [])]
    lines.append('  "features": [')
    if features:
        lines.append(",\n".join(features))
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def routes_geojson_text(graph: RouteGraph) -> str:
    return geojson_text(routes_to_geojson(graph))


@dataclass
class _RawEdge:
    where: str  # "features[i]"
    id: int
    start: int
    end: int
    points: list[tuple[float, float]] | None  # None: no coordinates, the straight segment
    speed_limit: float
    width: float
    reverse_of: int | None


def routes_from_geojson(data: Any, label: str) -> RouteGraph:
    """A RouteGraph from Nav2 route-server GeoJSON (parsed JSON), validated.

    Checks: ids unique across nodes and edges (Nav2's rule), node kinds and names, frame
    ``map``, edges between existing nodes with their first/last point within NODE_TOLERANCE
    of those nodes, ``abs_speed_limit`` > 0 [m/s], ``width`` > 0 [m], reverse features
    mirroring their edge. An edge without coordinates is the straight segment between its
    nodes. Other properties and metadata (Nav2 operations, cost) are accepted and ignored.

    Raises:
        MapFormatError: naming ``label`` and the feature's field.
    """
    f = _Fields(label)
    root = f.mapping(data, "", ("type", "features"))
    if root["type"] != "FeatureCollection":
        raise f.fail("type", f"expected 'FeatureCollection', got {_shown(root['type'])}")
    nodes: list[RouteNode] = []
    node_where: dict[int, str] = {}
    raw_edges: list[_RawEdge] = []
    seen: dict[int, str] = {}
    for i, item in enumerate(f.sequence(root["features"], "features")):
        where = f"features[{i}]"
        feature = f.mapping(item, where, ("geometry", "properties"))
        geometry = f.mapping(feature["geometry"], f"{where}.geometry", ("type",))
        props = f.mapping(feature["properties"], f"{where}.properties", ("id",))
        fid = f.integer(props["id"], f"{where}.properties.id", low=0)
        if fid in seen:
            raise f.fail(
                f"{where}.properties.id",
                f"duplicate id {fid} (also {seen[fid]}); ids must be unique across nodes and edges",
            )
        seen[fid] = where
        kind = geometry["type"]
        if kind == "Point":
            nodes.append(_node_from(f, where, fid, geometry, props))
            node_where[fid] = where
        elif kind in ("MultiLineString", "LineString"):
            raw_edges.append(_edge_from(f, where, fid, geometry, props))
        else:
            raise f.fail(
                f"{where}.geometry.type",
                f"expected Point, LineString or MultiLineString, got {_shown(kind)}",
            )
    by_id = {n.id: n for n in nodes}
    forward: dict[int, RouteEdge] = {}
    edge_where: dict[int, str] = {}
    for raw in raw_edges:
        edge = _resolve_edge(f, raw, by_id)
        if raw.reverse_of is None:
            forward[edge.id] = edge
            edge_where[edge.id] = raw.where
    mirrored: dict[int, str] = {}
    for raw in raw_edges:
        if raw.reverse_of is not None:
            _check_reverse(f, raw, _resolve_edge(f, raw, by_id), forward, edge_where, mirrored)
    return RouteGraph(nodes=tuple(nodes), edges=tuple(forward.values()))


def _node_from(
    f: _Fields, where: str, fid: int, geometry: dict[str, Any], props: dict[str, Any]
) -> RouteNode:
    if "coordinates" not in geometry:
        raise f.fail(f"{where}.geometry.coordinates", "missing")
    x, y = f.xy(geometry["coordinates"], f"{where}.geometry.coordinates")
    if "frame" in props and props["frame"] != MAP_FRAME:
        raise f.fail(
            f"{where}.properties.frame", f"expected {MAP_FRAME!r}, got {_shown(props['frame'])}"
        )
    meta = f.mapping(props.get("metadata"), f"{where}.properties.metadata", ("kind",))
    kind = meta["kind"]
    if kind not in NODE_KINDS:
        raise f.fail(
            f"{where}.properties.metadata.kind",
            f"expected one of {', '.join(NODE_KINDS)}, got {_shown(kind)}",
        )
    name = f.text(meta.get("name", ""), f"{where}.properties.metadata.name", empty=True)
    if kind in ("stop", "station") and not name.strip():
        raise f.fail(f"{where}.properties.metadata.name", f"a {kind} node needs its name")
    return RouteNode(id=fid, x=x, y=y, kind=kind, name=name)


def _edge_from(
    f: _Fields, where: str, fid: int, geometry: dict[str, Any], props: dict[str, Any]
) -> _RawEdge:
    pw = f"{where}.properties"
    start = f.integer(props.get("startid"), f"{pw}.startid", low=0)
    end = f.integer(props.get("endid"), f"{pw}.endid", low=0)
    meta = f.mapping(props.get("metadata"), f"{pw}.metadata", ("abs_speed_limit", "width"))
    speed = meta["abs_speed_limit"]
    if isinstance(speed, bool) or not isinstance(speed, int | float) or not speed > 0:
        raise f.fail(
            f"{pw}.metadata.abs_speed_limit", f"expected a speed > 0 m/s, got {_shown(speed)}"
        )
    speed = f.number(speed, f"{pw}.metadata.abs_speed_limit")
    width = f.positive(meta["width"], f"{pw}.metadata.width")
    reverse_of = None
    if "reverse_of" in meta:
        reverse_of = f.integer(meta["reverse_of"], f"{pw}.metadata.reverse_of", low=0)
    points: list[tuple[float, float]] | None = None
    gw = f"{where}.geometry.coordinates"
    if "coordinates" in geometry:
        coords = f.sequence(geometry["coordinates"], gw)
        if geometry["type"] == "MultiLineString":
            if len(coords) != 1:
                raise f.fail(gw, f"expected one line, got {len(coords)}")
            gw = f"{gw}[0]"
            coords = f.sequence(coords[0], gw)
        if len(coords) < 2:
            raise f.fail(gw, f"expected at least 2 points, got {len(coords)}")
        points = [f.xy(p, f"{gw}[{k}]") for k, p in enumerate(coords)]
    return _RawEdge(where, fid, start, end, points, speed, width, reverse_of)


def _resolve_edge(f: _Fields, raw: _RawEdge, by_id: Mapping[int, RouteNode]) -> RouteEdge:
    pw = f"{raw.where}.properties"
    for key, nid in (("startid", raw.start), ("endid", raw.end)):
        if nid not in by_id:
            raise f.fail(f"{pw}.{key}", f"no node with id {nid}")
    if raw.start == raw.end:
        raise f.fail(f"{pw}.endid", f"edge from node {raw.start} to itself")
    a, b = by_id[raw.start], by_id[raw.end]
    points = raw.points if raw.points is not None else [(a.x, a.y), (b.x, b.y)]
    gw = f"{raw.where}.geometry.coordinates"
    for which, point, node in (("first", points[0], a), ("last", points[-1], b)):
        gap = math.dist(point, (node.x, node.y))
        if gap > NODE_TOLERANCE:
            raise f.fail(
                gw,
                f"{which} point ({point[0]:g}, {point[1]:g}) is {gap:.3f} m from its node "
                f"{node.id} at ({node.x:g}, {node.y:g}) (tolerance {NODE_TOLERANCE} m)",
            )
    return RouteEdge(
        id=raw.id,
        start=raw.start,
        end=raw.end,
        points=tuple(points),
        speed_limit=raw.speed_limit,
        width=raw.width,
    )


def _check_reverse(
    f: _Fields,
    raw: _RawEdge,
    edge: RouteEdge,
    forward: Mapping[int, RouteEdge],
    edge_where: Mapping[int, str],
    mirrored: dict[int, str],
) -> None:
    pw = f"{raw.where}.properties"
    target = raw.reverse_of
    assert target is not None
    if target not in forward:
        raise f.fail(f"{pw}.metadata.reverse_of", f"no edge with id {target}")
    if target in mirrored:
        raise f.fail(
            f"{pw}.metadata.reverse_of", f"edge {target} is reversed by {mirrored[target]} too"
        )
    mirrored[target] = raw.where
    fwd, there = forward[target], edge_where[target]
    hint = f"a reverse edge mirrors edge {target} ({there}): edit both, or delete this feature"
    if (edge.start, edge.end) != (fwd.end, fwd.start):
        raise f.fail(f"{pw}.startid", f"runs {edge.start} -> {edge.end}; {hint}")
    for key, mine, theirs in (
        ("abs_speed_limit", edge.speed_limit, fwd.speed_limit),
        ("width", edge.width, fwd.width),
    ):
        if mine != theirs:
            raise f.fail(f"{pw}.metadata.{key}", f"{mine:g} but {theirs:g} there; {hint}")
    back = fwd.points[::-1]
    same = len(back) == len(edge.points) and all(
        math.dist(p, q) <= NODE_TOLERANCE for p, q in zip(back, edge.points, strict=True)
    )
    if not same:
        raise f.fail(f"{raw.where}.geometry.coordinates", f"not the reversed line; {hint}")


def write_routes(graph: RouteGraph, path: Path) -> None:
    """routes.geojson; the graph is validated as :func:`routes_from_geojson` would read it.

    Raises:
        MapFormatError: an invalid graph (duplicate ids across nodes and edges, a dangling
            edge, an endpoint off its node, a speed limit or width that is not positive).
    """
    path = Path(path)
    data = routes_to_geojson(graph)
    routes_from_geojson(data, str(path))
    _write_file(path, geojson_text(data).encode("utf-8"))


def read_routes(path: Path) -> RouteGraph:
    path = Path(path)
    try:
        data = json.loads(_read_text(path))
    except json.JSONDecodeError as err:
        raise MapFormatError(f"{path}: not valid JSON: {err}") from None
    return routes_from_geojson(data, str(path))


# ---- stops ---------------------------------------------------------------------------------------
_STOP_KEYS = ("name", "x", "y", "yaw", "building")
_STOP_REQUIRED = ("name", "x", "y", "yaw")


def _stop_dict(stop: MapStop) -> dict[str, Any]:
    return {
        "name": stop.name,
        "x": float(stop.x),
        "y": float(stop.y),
        "yaw": float(stop.yaw),
        "building": stop.building,
    }


def stops_to_dict(stops: StopSet) -> dict[str, Any]:
    """The mapping form of stops.yaml (and of the /map/stops JSON)."""
    return {
        "station": {
            "name": stops.station,
            "loading": _stop_dict(stops.loading),
            "charging": _stop_dict(stops.charging),
        },
        "stops": [_stop_dict(s) for s in stops.stops],
    }


def _stop_from(f: _Fields, value: Any, field: str) -> MapStop:
    d = f.mapping(value, field, _STOP_REQUIRED, _STOP_KEYS)
    return MapStop(
        name=f.text(d["name"], f"{field}.name"),
        x=f.number(d["x"], f"{field}.x"),
        y=f.number(d["y"], f"{field}.y"),
        yaw=f.number(d["yaw"], f"{field}.yaw"),
        building=f.text(d.get("building", ""), f"{field}.building", empty=True),
    )


def stops_from_dict(data: Any, label: str) -> StopSet:
    """A StopSet from its mapping form: names non-empty and unique among the stops, poses
    finite ([m], [rad]), ``building`` optional. Raises MapFormatError naming ``label``."""
    f = _Fields(label)
    root = f.mapping(data, "", ("station", "stops"), ("station", "stops"))
    station = f.mapping(root["station"], "station", ("name", "loading", "charging"), ())
    stops: list[MapStop] = []
    seen: dict[str, int] = {}
    for i, item in enumerate(f.sequence(root["stops"], "stops")):
        stop = _stop_from(f, item, f"stops[{i}]")
        if stop.name in seen:
            raise f.fail(
                f"stops[{i}].name",
                f"duplicate stop name {stop.name!r} (also stops[{seen[stop.name]}])",
            )
        seen[stop.name] = i
        stops.append(stop)
    return StopSet(
        station=f.text(station["name"], "station.name"),
        loading=_stop_from(f, station["loading"], "station.loading"),
        charging=_stop_from(f, station["charging"], "station.charging"),
        stops=tuple(stops),
    )


def write_stops(stops: StopSet, path: Path) -> None:
    path = Path(path)
    data = stops_to_dict(stops)
    stops_from_dict(data, str(path))
    header = (
        "The station and the delivery stops, carried over from the site sidecar.\n"
        "Poses in the map frame: x, y [m], yaw [rad] counter-clockwise from +x (facing the\n"
        "entrance); building is optional. Edit by hand, then re-seal (docs/mapping.md)."
    )
    _write_file(path, _yaml_text(data, header, flow_leaves=True))


def read_stops(path: Path) -> StopSet:
    path = Path(path)
    return stops_from_dict(_load_yaml(path), str(path))


# ---- trajectory.tum, the optimised mapping drive -------------------------------------------------
def write_trajectory(trajectory: PoseSeries, path: Path) -> None:
    """TUM RGB-D format (Sturm et al. 2012; what evo reads): one pose per line,
    ``stamp x y z qx qy qz qw`` (seconds, metres, unit quaternion of map <- base_link)."""
    from scipy.spatial.transform import Rotation

    poses = np.asarray(trajectory.poses, dtype=float)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or len(poses) != len(trajectory.stamps):
        raise MapFormatError(f"{path}: poses: expected (N,4,4) matching stamps, got {poses.shape}")
    quat = Rotation.from_matrix(poses[:, :3, :3]).as_quat()  # x, y, z, w
    rows = np.column_stack([trajectory.stamps, poses[:, :3, 3], quat])
    lines = ["# stamp x y z qx qy qz qw  (TUM format; map <- base_link)"]
    lines += [" ".join(f"{v:.9g}" if i else f"{v:.6f}" for i, v in enumerate(r)) for r in rows]
    _write_file(Path(path), ("\n".join(lines) + "\n").encode())


def read_trajectory(path: Path) -> PoseSeries:
    """Read a TUM trajectory; MapFormatError names the file and line of a bad row."""
    from scipy.spatial.transform import Rotation

    path = Path(path)
    rows: list[list[float]] = []
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        parts = text.split()
        try:
            values = [float(v) for v in parts]
        except ValueError:
            raise MapFormatError(f"{path}: line {n}: expected 8 numbers, got {text!r}") from None
        if len(values) != 8 or not all(math.isfinite(v) for v in values):
            raise MapFormatError(f"{path}: line {n}: expected 8 finite numbers, got {text!r}")
        if abs(math.sqrt(sum(v * v for v in values[4:])) - 1.0) > 1e-3:
            raise MapFormatError(f"{path}: line {n}: qx qy qz qw is not a unit quaternion")
        if rows and values[0] <= rows[-1][0]:
            raise MapFormatError(f"{path}: line {n}: stamp {values[0]} does not increase")
        rows.append(values)
    if not rows:
        raise MapFormatError(f"{path}: no poses")
    data = np.asarray(rows)
    poses = np.tile(np.eye(4), (len(data), 1, 1))
    poses[:, :3, :3] = Rotation.from_quat(data[:, 4:]).as_matrix()
    poses[:, :3, 3] = data[:, 1:4]
    return PoseSeries(stamps=data[:, 0], poses=poses)


# ---- info.yaml, the whole map --------------------------------------------------------------------
@dataclass(frozen=True)
class FileSeal:
    sha256: str  # hex digest
    size: int  # [bytes]


@dataclass(frozen=True)
class MapInfo:
    """info.yaml: what the map is and the seal of every other file."""

    version: int
    site: str
    created: str  # ISO 8601, UTC ("...Z")
    cloud_voxel: float  # [m]
    tile_size: float  # [m]
    builder: dict[str, Any]  # PriorMap.info
    files: dict[str, FileSeal]  # POSIX path relative to the map directory -> seal


@dataclass(frozen=True)
class LoadedMap:
    """A map read by :func:`load_map`, with what is known about its files."""

    path: Path
    prior: PriorMap
    info: MapInfo
    edited: tuple[str, ...]  # hand-editable files changed since the map was sealed
    tiles: int  # point-cloud tiles


_INFO_KEYS = (
    "format",
    "version",
    "site",
    "created",
    "frame",
    "cloud_voxel",
    "tile_size",
    "builder",
    "files",
)


def file_seal(path: Path) -> FileSeal:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
            size += len(chunk)
    return FileSeal(sha256=digest.hexdigest(), size=size)


def _plain(value: Any, field: str, label: str) -> Any:
    """Builder provenance as plain YAML types (numpy scalars and arrays, tuples, paths)."""
    if isinstance(value, np.generic):  # before float: np.float64 is a float
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(v, f"{field}[{i}]", label) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for key, v in value.items():
            if not isinstance(key, str):
                raise MapFormatError(f"{label}: {field}: key {key!r} is not a string")
            out[key] = _plain(v, f"{field}.{key}", label)
        return out
    raise MapFormatError(f"{label}: {field}: cannot store a {type(value).__name__}")


def write_info(info: MapInfo, path: Path) -> None:
    path = Path(path)
    data = {
        "format": FORMAT,
        "version": info.version,
        "site": info.site,
        "created": info.created,
        "frame": MAP_FRAME,
        "cloud_voxel": float(info.cloud_voxel),
        "tile_size": float(info.tile_size),
        "builder": _plain(info.builder, "builder", str(path)),
        "files": {k: {"sha256": s.sha256, "size": s.size} for k, s in sorted(info.files.items())},
    }
    header = (
        'xiaomanlv prior map (docs/mapping.md, "Map files"): what it is and a seal\n'
        "(sha256, size [bytes]) of every other file. routes.geojson and stops.yaml may be\n"
        "edited by hand: re-seal afterwards (mapfiles.seal_map)."
    )
    _write_file(path, _yaml_text(data, header))


def read_info(path: Path) -> MapInfo:
    """Raises MapFormatError: missing file or field, another format, a newer version."""
    path = Path(path)
    f = _Fields(str(path))
    d = f.mapping(_load_yaml(path), "", _INFO_KEYS, _INFO_KEYS)
    if d["format"] != FORMAT:
        raise f.fail("format", f"expected {FORMAT!r}, got {_shown(d['format'])}")
    version = f.integer(d["version"], "version", low=1)
    if version > FORMAT_VERSION:
        raise f.fail("version", f"{version} is newer than this reader ({FORMAT_VERSION})")
    if d["frame"] != MAP_FRAME:
        raise f.fail("frame", f"expected {MAP_FRAME!r}, got {_shown(d['frame'])}")
    created = f.text(d["created"], "created")
    try:
        dt.datetime.fromisoformat(created)
    except ValueError:
        raise f.fail("created", f"expected an ISO 8601 time, got {created!r}") from None
    files: dict[str, FileSeal] = {}
    for name, seal in f.mapping(d["files"], "files").items():
        where = f"files.{name}"
        rel = Path(str(name))
        if rel.is_absolute() or ".." in rel.parts or name == INFO_FILE:
            raise f.fail(where, "expected a path inside the map directory")
        s = f.mapping(seal, where, ("sha256", "size"), ("sha256", "size"))
        digest = f.text(s["sha256"], f"{where}.sha256")
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise f.fail(f"{where}.sha256", f"expected 64 hex digits, got {_shown(digest)}")
        files[str(name)] = FileSeal(digest, f.integer(s["size"], f"{where}.size", low=0))
    return MapInfo(
        version=version,
        site=f.text(d["site"], "site"),
        created=created,
        cloud_voxel=f.positive(d["cloud_voxel"], "cloud_voxel"),
        tile_size=f.positive(d["tile_size"], "tile_size"),
        builder=f.mapping(d["builder"], "builder"),
        files=files,
    )


def _check_seals(directory: Path, info: MapInfo) -> tuple[str, ...]:
    edited = []
    for rel, seal in info.files.items():
        path = directory / rel
        if not path.is_file():
            raise MapFormatError(f"{path}: missing ({INFO_FILE} lists it)")
        found = file_seal(path)
        if found == seal:
            continue
        if rel in HAND_EDITABLE:
            edited.append(rel)
            log.warning("%s: changed since the map was sealed (hand edit?); validated anyway", path)
            continue
        if found.size != seal.size:
            why = f"{found.size} bytes, {INFO_FILE} sealed {seal.size}: truncated or changed"
        else:
            why = f"sha256 differs from {INFO_FILE}: changed"
        raise MapFormatError(f"{path}: {why} since the map was written")
    return tuple(edited)


def _cross_check(routes: RouteGraph, stops: StopSet, label: str) -> None:
    """Route nodes of kind stop name a stop; of kind station, the station or its loading or
    charging pose."""
    names = {s.name for s in stops.stops}
    station = (stops.station, stops.loading.name, stops.charging.name)
    for node in routes.nodes:
        if node.kind == "stop" and node.name not in names:
            raise MapFormatError(
                f"{label}: node {node.id}: metadata.name: stop {node.name!r} is not in {STOPS_FILE}"
            )
        if node.kind == "station" and node.name not in station:
            raise MapFormatError(
                f"{label}: node {node.id}: metadata.name: {node.name!r} is not {STOPS_FILE}'s "
                f"station, loading or charging name ({', '.join(map(repr, station))})"
            )


def _read_contents(directory: Path, info: MapInfo) -> tuple[PriorMap, list[str], int]:
    grid, image = _read_grid(directory / GRID_YAML)
    try:
        image_rel = image.resolve().relative_to(directory.resolve()).as_posix()
    except ValueError:
        raise MapFormatError(
            f"{directory / GRID_YAML}: image: {image} is outside the map directory"
        ) from None
    cloud, cloud_files = _read_cloud(directory / CLOUD_DIR)
    datum = read_datum(directory / DATUM_FILE)
    routes = read_routes(directory / ROUTES_FILE)
    stops = read_stops(directory / STOPS_FILE)
    _cross_check(routes, stops, str(directory / ROUTES_FILE))
    trajectory = None
    if (directory / TRAJECTORY_FILE).exists():
        trajectory = read_trajectory(directory / TRAJECTORY_FILE)
    prior = PriorMap(
        site=info.site,
        cloud=cloud,
        cloud_voxel=info.cloud_voxel,
        grid=grid,
        datum=datum,
        routes=routes,
        stops=stops,
        info=dict(info.builder),
        trajectory=trajectory,
    )
    files = [GRID_YAML, image_rel, *(f"{CLOUD_DIR}/{n}" for n in cloud_files)]
    files += [DATUM_FILE, ROUTES_FILE, STOPS_FILE]
    files += [TRAJECTORY_FILE] if trajectory is not None else []
    return prior, files, len(cloud_files) - 1


def load_map(path: Path, *, verify: bool = True) -> LoadedMap:
    """Read and validate ``maps/<site>/``: every field of every file first (so an error
    names the field), then with ``verify`` every file against its seal in info.yaml (a
    truncated or changed file that still parses is named; a hand-edited routes.geojson or
    stops.yaml is reported in ``edited`` and logged, not refused) and every file read must be
    sealed.

    Raises:
        MapFormatError: naming the file and the field.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise MapFormatError(f"{directory}: not a map directory (missing or not a folder)")
    info = read_info(directory / INFO_FILE)
    prior, files, tiles = _read_contents(directory, info)
    edited: tuple[str, ...] = ()
    if verify:
        edited = _check_seals(directory, info)
        for rel in files:
            if rel not in info.files:
                raise MapFormatError(
                    f"{directory / INFO_FILE}: files: {rel} is not sealed (re-seal the map)"
                )
    return LoadedMap(path=directory, prior=prior, info=info, edited=edited, tiles=tiles)


def read_map(path: Path) -> PriorMap:
    """The PriorMap in ``maps/<site>/`` (see :func:`load_map`). The cloud comes back tile
    by tile: the same points, in another order when it spans several tiles."""
    return load_map(path).prior


def seal_map(path: Path) -> Path:
    """Validate every file, then record their current checksums in info.yaml (after a
    deliberate hand edit of routes.geojson or stops.yaml). Raises MapFormatError."""
    directory = Path(path)
    if not directory.is_dir():
        raise MapFormatError(f"{directory}: not a map directory (missing or not a folder)")
    info = read_info(directory / INFO_FILE)
    _, files, _ = _read_contents(directory, info)
    seals = {rel: file_seal(directory / rel) for rel in files}
    write_info(
        MapInfo(
            info.version,
            info.site,
            info.created,
            info.cloud_voxel,
            info.tile_size,
            info.builder,
            seals,
        ),
        directory / INFO_FILE,
    )
    return directory


def _utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_map(
    prior: PriorMap,
    out: Path,
    *,
    overwrite: bool = False,
    tile_size: float = DEFAULT_TILE_SIZE,
    created: str | None = None,
) -> Path:
    """Write ``prior`` as the map directory ``out`` (``maps/<site>``), all or nothing.

    Files go to a sibling temporary directory (same filesystem), are fsynced and read back
    with :func:`load_map`, then the directory is renamed to ``out``. An existing ``out`` is
    replaced only with ``overwrite``, by an atomic exchange of the two directories (Linux
    ``renameat2``; elsewhere the old one is renamed aside first), then deleted. On any
    failure ``out`` is left as it was and the temporary directory is removed.

    Args:
        tile_size: [m] side of the point-cloud tiles.
        created: ISO 8601 UTC time for info.yaml; default now.

    Raises:
        MapFormatError: a product that would make an invalid file (names the file, field).
        MappingError: ``out`` exists without ``overwrite``, or is not a directory.
    """
    out = Path(out)
    if out.is_symlink():
        raise MappingError(f"{out}: is a symbolic link; write to the directory it points to")
    if out.exists() and not out.is_dir():
        raise MappingError(f"{out}: exists and is not a directory")
    if out.exists() and not overwrite:
        raise MappingError(f"{out}: a map exists there; pass overwrite=True to replace it")
    label = str(out / INFO_FILE)
    f = _Fields(label)
    site = f.text(prior.site, "site")
    voxel = f.positive(prior.cloud_voxel, "cloud_voxel")
    size = f.positive(tile_size, "tile_size")
    _plain(prior.info, "builder", label)
    _cross_check(prior.routes, prior.stops, str(out / ROUTES_FILE))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.writing-", dir=out.parent))
    try:
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a map is read by other users' nodes
        try:
            write_grid(prior.grid, tmp / GRID_YAML)
            write_cloud(prior.cloud, tmp / CLOUD_DIR, tile_size=size)
            write_datum(prior.datum, tmp / DATUM_FILE)
            write_routes(prior.routes, tmp / ROUTES_FILE)
            write_stops(prior.stops, tmp / STOPS_FILE)
            if prior.trajectory is not None:
                write_trajectory(prior.trajectory, tmp / TRAJECTORY_FILE)
            seals = {
                p.relative_to(tmp).as_posix(): file_seal(p)
                for p in sorted(tmp.rglob("*"))
                if p.is_file()
            }
            info = MapInfo(
                FORMAT_VERSION, site, created or _utc_now(), voxel, size, dict(prior.info), seals
            )
            write_info(info, tmp / INFO_FILE)
            _fsync_dir(tmp / CLOUD_DIR)
            _fsync_dir(tmp)
            load_map(tmp)
        except MapFormatError as err:  # name the destination, not the temporary directory
            raise MapFormatError(str(err).replace(str(tmp), str(out))) from None
        _install(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directory entries (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns False where that is not available (another OS, an old libc, a filesystem
    without support); raises OSError for other failures.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    renameat2.restype = ctypes.c_int
    result = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def _install(tmp: Path, out: Path, overwrite: bool) -> None:
    """Move the finished ``tmp`` to ``out``; on return ``tmp`` no longer holds a map to keep."""
    if not out.exists():
        os.rename(tmp, out)
    elif not overwrite:
        raise MappingError(f"{out}: a map appeared there while writing; not replaced")
    elif _exchange(tmp, out):
        shutil.rmtree(tmp, ignore_errors=True)  # now the old map
    else:
        old = tmp.with_name(tmp.name.replace(".writing-", ".old-"))
        os.rename(out, old)
        try:
            os.rename(tmp, out)
        except BaseException:
            os.rename(old, out)
            raise
        shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(out.parent)
