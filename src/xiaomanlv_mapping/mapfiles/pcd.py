"""The 3D point cloud: binary PCD tiles and Autoware's divided-map metadata.

``pointcloud_map/`` holds one binary PCD v0.7 file (x y z float32) per non-empty square tile
of a grid anchored at the map origin, and ``pointcloud_map_metadata.yaml`` listing each tile's
lower-left corner, as Autoware's dynamic map loading expects. References: the PCD v0.7 file
format (pointclouds.org); Autoware ``map_loader`` (pointcloud_map_metadata.yaml). The PCD
reader is small and hand-written on purpose: Open3D's reader returns an empty cloud on a bad
file without saying what is wrong, and this reader must name the header field.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_mapping.mapfiles.fileio import (
    load_yaml,
    map_fields,
    read_bytes,
    write_file,
    yaml_text,
)
from xiaomanlv_mapping.mapfiles.layout import CLOUD_METADATA
from xiaomanlv_mapping.model import MapFormatError

DEFAULT_TILE_SIZE = 100.0  # [m] side of a square point-cloud tile
TILE_TOLERANCE = 1e-3  # [m] a PCD point may lie this far outside its tile's box
_TILE_NAME = re.compile(r"^[A-Za-z0-9_.+-]+\.pcd$")
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
    write_file(path, header + cloud.astype("<f4").tobytes())


def read_pcd(path: Path) -> NDArray[np.float32]:
    """(N,3) float32 x, y, z [m] of a PCD file (DATA ascii or binary; other fields ignored).

    Raises:
        MapFormatError: naming the header line (FIELDS, SIZE, TYPE, COUNT, WIDTH, HEIGHT,
            POINTS, DATA) that is missing or inconsistent, truncated or trailing data, a
            missing x/y/z field, or a point that is not finite.
    """
    path = Path(path)
    data = read_bytes(path)
    f = map_fields(str(path))
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
    size = map_fields(label).positive(tile_size, "x_resolution")
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
    write_file(directory / CLOUD_METADATA, yaml_text(metadata, header))
    return [*names, CLOUD_METADATA]


def read_cloud_and_files(directory: Path) -> tuple[NDArray[np.float32], list[str]]:
    """:func:`read_cloud`, and the names of the files read (the tiles, then the metadata)."""
    directory = Path(directory)
    meta_path = directory / CLOUD_METADATA
    f = map_fields(str(meta_path))
    data = f.mapping(load_yaml(meta_path), "", ("x_resolution", "y_resolution"))
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
    return read_cloud_and_files(directory)[0]
