"""The 3D point cloud: binary PCD tiles and Autoware's divided-map metadata.

``pointcloud_map/`` holds one binary PCD v0.7 file (x y z float32) per non-empty square tile
of a grid anchored at the map origin, and ``pointcloud_map_metadata.yaml`` listing each tile's
lower-left corner, as Autoware's dynamic map loading expects. References: the PCD v0.7 file
format (pointclouds.org); Autoware ``map_loader`` (pointcloud_map_metadata.yaml). The writers
live here; the readers are the foundation's (`xiaomanlv_core.pcd`, `xiaomanlv_core.tiles`, one
copy shared with the localiser), raising :class:`~xiaomanlv_mapping.model.MapFormatError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_core import pcd as core_pcd
from xiaomanlv_core.tiles import TILE_TOLERANCE, read_tile, read_tile_index
from xiaomanlv_mapping.mapfiles.fileio import map_fields, write_file, yaml_text
from xiaomanlv_mapping.mapfiles.layout import CLOUD_METADATA
from xiaomanlv_mapping.model import MapFormatError

__all__ = [
    "DEFAULT_TILE_SIZE",
    "TILE_TOLERANCE",
    "read_cloud",
    "read_cloud_and_files",
    "read_pcd",
    "tile_cloud",
    "tile_name",
    "write_cloud",
    "write_pcd",
]

DEFAULT_TILE_SIZE = 100.0  # [m] side of a square point-cloud tile
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
            missing x/y/z field, or a point that is not finite (`xiaomanlv_core.pcd`).
    """
    return core_pcd.read_pcd(path, MapFormatError)


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
    index = read_tile_index(Path(directory), MapFormatError)
    parts = [read_tile(index, name, MapFormatError) for name in index.origins]
    cloud = np.concatenate(parts) if parts else np.zeros((0, 3), dtype=np.float32)
    return cloud, [*index.origins, CLOUD_METADATA]


def read_cloud(directory: Path) -> NDArray[np.float32]:
    """(N,3) float32 [m] of a divided point-cloud map: the tiles in metadata order.

    Raises:
        MapFormatError: bad metadata, a listed tile missing or an unlisted one present,
            overlapping tiles, a bad PCD, a point outside its tile.
    """
    return read_cloud_and_files(directory)[0]
