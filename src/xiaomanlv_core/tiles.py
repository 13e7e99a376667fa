"""Reading a divided point-cloud map: Autoware's ``pointcloud_map_metadata.yaml`` and its tiles.

A prior map's ``pointcloud_map/`` holds one PCD file per non-empty square tile of a grid
anchored at the map origin and a metadata file listing each tile's lower-left corner
(Autoware ``map_loader``, "dynamic map loading")::

    x_resolution: 100.0          # [m] tile side along x (and y_resolution along y)
    y_resolution: 100.0
    tile_0_0.pcd: [0.0, 0.0]     # [m] min_x, min_y of the tile in the map frame

:func:`read_tile_index` reads and checks the metadata (no overlapping tiles, no PCD file it
does not list), :meth:`TileIndex.near` names the tiles within a radius of a position, so a
reader can hold only those (the localiser), and :func:`read_tile` reads one tile and checks
every point lies in its box. The map tooling (`xiaomanlv_mapping.mapfiles.pcd`) reads a whole
map through the same functions. Errors are the caller's
:class:`~xiaomanlv_core.fields.FormatError` subclass, naming the file and the field.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_core.fields import Fields, FormatError
from xiaomanlv_core.pcd import read_pcd
from xiaomanlv_core.yamlfile import YamlFileError, read_yaml

CLOUD_METADATA = "pointcloud_map_metadata.yaml"
TILE_TOLERANCE = 1e-3  # [m] a PCD point may lie this far outside its tile's box
TILE_NAME = re.compile(r"^[A-Za-z0-9_.+-]+\.pcd$")


@dataclass(frozen=True)
class TileIndex:
    """The tiles of one ``pointcloud_map/`` directory, from its metadata."""

    directory: Path
    x_resolution: float  # [m] tile side along x
    y_resolution: float  # [m] tile side along y
    origins: dict[str, tuple[float, float]]  # tile file name -> (min_x, min_y) [m], map frame

    def box(self, name: str) -> tuple[float, float, float, float]:
        """(min_x, min_y, max_x, max_y) [m] of tile ``name``."""
        x, y = self.origins[name]
        return (x, y, x + self.x_resolution, y + self.y_resolution)

    def near(self, x: float, y: float, radius: float) -> list[str]:
        """Names of the tiles whose box comes within ``radius`` [m] of (x, y) [m], metadata
        order (the distance is the box's nearest point's: a tile under (x, y) is always in)."""
        out = []
        for name, (min_x, min_y) in self.origins.items():
            dx = max(min_x - x, 0.0, x - (min_x + self.x_resolution))
            dy = max(min_y - y, 0.0, y - (min_y + self.y_resolution))
            if math.hypot(dx, dy) <= radius:
                out.append(name)
        return out


def _load_yaml(path: Path, error: type[FormatError]) -> object:
    try:
        return read_yaml(path)
    except FileNotFoundError:
        raise error(f"{path}: missing") from None
    except OSError as err:
        raise error(f"{path}: cannot read: {err.strerror or err}") from None
    except YamlFileError as err:
        raise error(f"{path}: {err}") from None


def read_tile_index(directory: Path, error: type[FormatError] = FormatError) -> TileIndex:
    """The metadata of the divided cloud in ``directory`` (its tiles are not read).

    Raises:
        FormatError: (``error``) a missing or malformed metadata file (naming the field), a
            resolution that is not positive, a key that is no tile name, overlapping tiles, a
            PCD file in the directory that the metadata does not list.
    """
    directory = Path(directory)
    meta_path = directory / CLOUD_METADATA
    f = Fields(str(meta_path), error)
    data = f.mapping(_load_yaml(meta_path, error), "", ("x_resolution", "y_resolution"))
    x_res = f.positive(data["x_resolution"], "x_resolution")
    y_res = f.positive(data["y_resolution"], "y_resolution")
    tiles: dict[str, tuple[float, float]] = {}
    for key, value in data.items():
        if key in ("x_resolution", "y_resolution"):
            continue
        if not isinstance(key, str) or not TILE_NAME.match(key):
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
                raise error(
                    f"{directory / extra}: not listed in {CLOUD_METADATA} (an unlisted tile "
                    "would be ignored by map loaders)"
                )
    return TileIndex(directory, x_res, y_res, tiles)


def read_tile(
    index: TileIndex, name: str, error: type[FormatError] = FormatError
) -> NDArray[np.float32]:
    """(N,3) float32 [m] of tile ``name`` of ``index``, map frame.

    Raises:
        FormatError: (``error``) the tile file missing, a bad PCD (`xiaomanlv_core.pcd`), a
            point outside the tile's box (beyond :data:`TILE_TOLERANCE`).
        KeyError: ``name`` is not a tile of ``index``.
    """
    min_x, min_y = index.origins[name]
    tile_path = index.directory / name
    if not tile_path.is_file():
        raise error(f"{tile_path}: missing ({CLOUD_METADATA} lists it)")
    points = read_pcd(tile_path, error)
    xy = points[:, :2].astype(np.float64)
    low = np.array([min_x, min_y]) - TILE_TOLERANCE
    high = np.array([min_x + index.x_resolution, min_y + index.y_resolution]) + TILE_TOLERANCE
    outside = ((xy < low) | (xy > high)).any(axis=1)
    if outside.any():
        i = int(np.argmax(outside))
        raise error(
            f"{tile_path}: DATA: point {i} at ({xy[i, 0]:.3f}, {xy[i, 1]:.3f}) lies outside "
            f"its tile [{min_x:g}, {min_x + index.x_resolution:g}] x "
            f"[{min_y:g}, {min_y + index.y_resolution:g}] ({CLOUD_METADATA})"
        )
    return points
