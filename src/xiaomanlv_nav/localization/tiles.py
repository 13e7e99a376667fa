"""The prior map around the robot: PCD tiles loaded and dropped as it drives, and the
registration target built from them.

Autoware's dynamic map loading (``map_loader``'s differential loading: the tiles within a
radius of the vehicle are held, the rest are not) over the tiles of ``maps/<site>/pointcloud_map``
(`xiaomanlv_core.tiles`). Memory is bounded by the radius, not the site: the tiles whose box
comes within ``radius`` [m] of the robot are held, a held tile is dropped once it lies beyond
``radius + unload_margin`` (the margin stops a robot driving along a tile border from loading
and dropping the same tile every sweep).

The target is small_gicp's ``GaussianVoxelMap`` (VGICP: Koide et al., "Voxelized GICP for
fast and accurate 3D point cloud registration", ICRA 2021): each tile is downsampled and its
points' covariances estimated once, when it is loaded (``small_gicp.preprocess_points``); a
tile that arrives is inserted into the voxel map (voxel statistics add up, so tiles inserted
one by one give the same map as all at once); only dropping a tile rebuilds the map, from the
held tiles' prepared clouds, never from the files. Nothing is rebuilt while the held set does
not change, so a sweep costs no map work.

VGICP finds a point's correspondence in the one voxel the point falls in. The map's ground lies
at z = 0 (a map build anchors its drive at base_link height), exactly on a voxel boundary:
range noise would split it between two voxels, one empty, and half the ground would find no
map (measured: 16 % inliers and 0.35 m off on a synthetic courtyard). So the voxel grid is
shifted against the map by :data:`GRID_SHIFT` voxels (the ground mid-voxel, walls at round
coordinates off the boundaries): 99.6 % inliers and 5 mm there. :class:`MapTarget` carries the
shift, and registration applies it.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import small_gicp
from numpy.typing import NDArray

from xiaomanlv_core.fields import FormatError
from xiaomanlv_core.tiles import TileIndex, read_tile, read_tile_index
from xiaomanlv_nav.localization.config import LocalizerConfig

log = logging.getLogger(__name__)

GRID_SHIFT = (0.37, 0.23, 0.5)  # [voxels] of the voxel grid against the map frame
# A voxel is a surface when its covariance's smallest axis is below this share of the next:
# small_gicp regularises point covariances to (1, 1, 1e-3) on a plane and leaves the identity
# where a point had too few neighbours; an identity's "normal" would be any direction.
PLANARITY = 0.1
WORKER_NICE = 10  # the tile worker's nice above the matcher's: ~10 % of a core both want


def _lower_priority() -> None:
    """Run the calling thread :data:`WORKER_NICE` steps nicer than its process (Linux: a
    thread is a task with its own nice value). The worker builds the next target while
    sweeps arrive; on a busy core the scheduler then gives the matcher the CPU first, and the
    worker the gaps between sweeps, instead of both sharing it and the sweep waiting."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux, or not allowed: as is
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + WORKER_NICE)


class LocalizationError(ValueError):
    """An input of the localiser (map, parameter, scan) is unusable; the message names it."""


class MapTileError(LocalizationError, FormatError):
    """A map tile or its metadata is missing or malformed; names the file and the field."""


class MapTarget:
    """The registration target: a Gaussian voxel map in a frame shifted against the map
    (``grid_from_map``, 4x4, a translation by :data:`GRID_SHIFT` voxels), and each voxel's
    mean and surface normal in the map frame for the match covariance (computed on first use).
    A new MapTarget is made whenever the voxel map changes."""

    def __init__(
        self,
        voxels: small_gicp.GaussianVoxelMap,
        grid_from_map: NDArray[np.float64],
        size: float,
        coarse: MapTarget | None = None,
    ) -> None:
        self.voxels = voxels
        self.grid_from_map = grid_from_map
        self.voxel_size = float(size)  # [m]
        self.coarse = coarse  # a coarser voxel map of the same tiles: a wider basin first

    @functools.cached_property
    def surfaces(self) -> VoxelSurfaces:
        """The voxels' means and normals, looked up by position."""
        means = np.asarray(self.voxels.voxel_points(), dtype=np.float64)[:, :3]
        covs = np.asarray(self.voxels.voxel_covs(), dtype=np.float64).reshape(-1, 4, 4)[:, :3, :3]
        keys = _voxel_keys(means, self.voxel_size)
        order = np.argsort(keys)
        values, vectors = np.linalg.eigh(covs[order])
        normals = vectors[:, :, 0]  # the smallest axis
        planar = values[:, 0] < PLANARITY * values[:, 1]
        shift = self.grid_from_map[:3, 3]
        return VoxelSurfaces(keys[order], means[order] - shift, normals, planar)

    def surfaces_at(
        self, points_map: NDArray[np.float64]
    ) -> tuple[NDArray[np.bool_], NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64]]:
        """(occupied (N,), planar (N,), means (N,3), normals (N,3)) of the voxel each map-frame
        point falls in: ``occupied`` where the map has a voxel there, ``planar`` where that
        voxel holds one surface (its normal is meaningful)."""
        s = self.surfaces
        n = len(points_map)
        if not len(s.keys):
            none = np.zeros(n, dtype=bool)
            return none, none, np.zeros((n, 3)), np.zeros((n, 3))
        keys = _voxel_keys(points_map + self.grid_from_map[:3, 3], self.voxel_size)
        i = np.clip(np.searchsorted(s.keys, keys), 0, len(s.keys) - 1)
        occupied = s.keys[i] == keys
        return occupied, occupied & s.planar[i], s.means[i], s.normals[i]


@dataclass(frozen=True)
class VoxelSurfaces:
    """Voxels sorted by key: their means and unit normals, map frame."""

    keys: NDArray[np.int64]
    means: NDArray[np.float64]  # (V,3) [m]
    normals: NDArray[np.float64]  # (V,3)
    planar: NDArray[np.bool_]  # (V,) the voxel's points lie on one surface (PLANARITY)


def _voxel_keys(points: NDArray[np.float64], size: float) -> NDArray[np.int64]:
    """One int64 per voxel of ``points`` (grid frame): 21 bits per axis, as small_gicp hashes."""
    c = np.floor(points / size).astype(np.int64) & ((1 << 21) - 1)
    return np.asarray((c[:, 0] << 42) | (c[:, 1] << 21) | c[:, 2], dtype=np.int64)


@dataclass(frozen=True)
class TileChange:
    """What one :meth:`TileMap.update` did."""

    loaded: tuple[str, ...]  # tile names read from disk
    dropped: tuple[str, ...]  # tile names released
    rebuilt: bool  # the voxel map was rebuilt (a tile was dropped)
    seconds: float  # [s] wall time spent


class TileMap:
    """The tiles of one map directory within ``radius`` of the robot, as a VGICP target.

    Args:
        directory: the ``pointcloud_map/`` folder (metadata and tiles).
        radius: [m] tiles whose box comes within this of the robot are held.
        unload_margin: [m] a held tile is dropped beyond ``radius + unload_margin``.
        map_voxel: [m] voxel a tile is downsampled to.
        target_voxel: [m] Gaussian voxel size of the target.
        coarse_voxel: [m] voxel size of a coarser target matched first (0: none).
        neighbors: neighbours of each point's covariance.
    Raises:
        MapTileError: the metadata is missing or malformed (naming the file and field).
    """

    def __init__(
        self,
        directory: Path,
        *,
        radius: float,
        unload_margin: float,
        map_voxel: float,
        target_voxel: float,
        neighbors: int,
        coarse_voxel: float = 0.0,
        background: bool = False,
    ) -> None:
        self.index: TileIndex = read_tile_index(Path(directory), MapTileError)
        # One worker reads, prepares and builds the next target off the caller's thread
        # (update(wait=False)); None: everything on the caller's thread.
        self._worker = (
            ThreadPoolExecutor(1, "tiles", initializer=_lower_priority) if background else None
        )
        self._next: Future[tuple[dict[str, small_gicp.PointCloud], MapTarget | None]] | None
        self._next = None
        self.radius = float(radius)
        self.unload_margin = float(unload_margin)
        self.map_voxel = float(map_voxel)
        self.target_voxel = float(target_voxel)
        self.coarse_voxel = float(coarse_voxel)
        self.neighbors = int(neighbors)
        self._clouds: dict[str, small_gicp.PointCloud] = {}  # held tiles, prepared
        self._target: MapTarget | None = None
        self.loads = 0  # tiles read from disk so far
        self.rebuilds = 0  # voxel-map rebuilds so far

    @property
    def loaded(self) -> tuple[str, ...]:
        """Names of the held tiles, in load order."""
        return tuple(self._clouds)

    @property
    def points(self) -> int:
        """Prepared (downsampled) map points held."""
        return sum(c.size() for c in self._clouds.values())

    @property
    def target(self) -> MapTarget | None:
        """The VGICP target of the held tiles; None while none is held."""
        return self._target

    def prepared_points(self) -> NDArray[np.float64]:
        """(N,3) [m] the held tiles' downsampled points, map frame (for searches and tests)."""
        if not self._clouds:
            return np.zeros((0, 3))
        return np.concatenate([c.points()[:, :3] for c in self._clouds.values()])

    def update(self, x: float, y: float, *, wait: bool = True) -> TileChange:
        """Hold the tiles around (x, y) [m] (map frame): load the new ones, drop the far ones.

        ``wait=False`` (with ``background``) does not wait: the new set of tiles is read and
        its target built by the worker, and swapped in by a later call once it is ready (the
        held tiles reach ``tile_unload_margin`` beyond the radius and the radius beyond the
        lidar's range, so the map ahead arrives before the sweeps reach it). Nothing held
        yet, or no worker: as ``wait=True``.

        Raises:
            MapTileError: a tile that must be loaded is missing or malformed; the tiles held
                before stay held.
        """
        if not wait and self._worker is not None and self._target is not None:
            return self._update_behind(x, y)
        if self._next is not None:  # a set built behind is superseded by this one
            self._next.cancel()
            self._next = None
        start = time.perf_counter()
        wanted = self.index.near(x, y, self.radius)
        keep = set(self.index.near(x, y, self.radius + self.unload_margin))
        dropped = tuple(n for n in self._clouds if n not in keep)
        new = [n for n in wanted if n not in self._clouds]
        prepared = {n: self._prepare(n) for n in new}  # all read before anything changes
        for name in dropped:
            del self._clouds[name]
        self._clouds.update(prepared)
        rebuilt = bool(dropped) and bool(self._clouds)
        if dropped or self._target is None:
            self._target = self._voxel_map(self._clouds.values()) if self._clouds else None
            self.rebuilds += int(self._target is not None)
        elif prepared:
            self._target = self._insert(self._target, prepared.values())
        change = TileChange(tuple(new), dropped, rebuilt, time.perf_counter() - start)
        if new or dropped:
            log.info(
                "map tiles: +%d -%d, %d held (%d points), %.0f ms",
                len(new),
                len(dropped),
                len(self._clouds),
                self.points,
                1000.0 * change.seconds,
            )
        return change

    def _update_behind(self, x: float, y: float) -> TileChange:
        start = time.perf_counter()
        loaded: tuple[str, ...] = ()
        dropped: tuple[str, ...] = ()
        if self._next is not None and self._next.done():
            future, self._next = self._next, None
            clouds, target = future.result()  # a tile's MapTileError comes out here
            loaded = tuple(n for n in clouds if n not in self._clouds)
            dropped = tuple(n for n in self._clouds if n not in clouds)
            self._clouds, self._target = clouds, target
            self.loads += len(loaded)
            self.rebuilds += 1
            log.info(
                "map tiles (built behind): +%d -%d, %d held (%d points)",
                len(loaded),
                len(dropped),
                len(self._clouds),
                self.points,
            )
        wanted = self.index.near(x, y, self.radius)
        keep = set(self.index.near(x, y, self.radius + self.unload_margin))
        held = {n: c for n, c in self._clouds.items() if n in keep}
        new = [n for n in wanted if n not in self._clouds]
        if self._next is None and (new or len(held) < len(self._clouds)):
            assert self._worker is not None
            self._next = self._worker.submit(self._build_behind, held, new)
        rebuilt = bool(loaded or dropped)
        return TileChange(loaded, dropped, rebuilt, time.perf_counter() - start)

    def _build_behind(
        self, held: dict[str, small_gicp.PointCloud], new: list[str]
    ) -> tuple[dict[str, small_gicp.PointCloud], MapTarget | None]:
        """On the worker: the new tiles read and prepared, a target of all built from scratch
        (the held one is in use), its surfaces computed."""
        clouds = dict(held)
        clouds.update({n: self._prepare_behind(n) for n in new})
        target = self._voxel_map(clouds.values()) if clouds else None
        if target is not None:
            _ = target.surfaces
        return clouds, target

    def _prepare_behind(self, name: str) -> small_gicp.PointCloud:
        raw = read_tile(self.index, name, MapTileError).astype(np.float64)
        if len(raw) == 0:
            return small_gicp.PointCloud(np.zeros((0, 3)))
        cloud, _ = small_gicp.preprocess_points(
            raw, downsampling_resolution=self.map_voxel, num_neighbors=self.neighbors, num_threads=1
        )
        return cloud

    def _prepare(self, name: str) -> small_gicp.PointCloud:
        raw = read_tile(self.index, name, MapTileError).astype(np.float64)
        self.loads += 1
        if len(raw) == 0:
            return small_gicp.PointCloud(np.zeros((0, 3)))
        cloud, _ = small_gicp.preprocess_points(
            raw, downsampling_resolution=self.map_voxel, num_neighbors=self.neighbors
        )
        return cloud

    def _voxel_map(self, clouds: Iterable[small_gicp.PointCloud]) -> MapTarget:
        coarse = MapTarget(*self._empty(self.coarse_voxel)) if self.coarse_voxel > 0.0 else None
        return self._insert(MapTarget(*self._empty(self.target_voxel), coarse=coarse), clouds)

    @staticmethod
    def _empty(size: float) -> tuple[small_gicp.GaussianVoxelMap, NDArray[np.float64], float]:
        grid_from_map = np.eye(4)
        grid_from_map[:3, 3] = np.array(GRID_SHIFT) * size
        return small_gicp.GaussianVoxelMap(size), grid_from_map, size

    @staticmethod
    def _insert(target: MapTarget, clouds: Iterable[small_gicp.PointCloud]) -> MapTarget:
        """``target`` with ``clouds`` inserted, as a new MapTarget (its surfaces recomputed)."""
        clouds = [c for c in clouds if c.size()]
        for cloud in clouds:
            target.voxels.insert(cloud, target.grid_from_map)
        coarse = target.coarse
        if coarse is not None:
            for cloud in clouds:
                coarse.voxels.insert(cloud, coarse.grid_from_map)
            coarse = MapTarget(coarse.voxels, coarse.grid_from_map, coarse.voxel_size)
        return MapTarget(target.voxels, target.grid_from_map, target.voxel_size, coarse)


def tile_map_for(config: LocalizerConfig, directory: Path, *, background: bool = False) -> TileMap:
    """The :class:`TileMap` of ``directory`` (a ``pointcloud_map/`` folder) with ``config``'s
    radius, margin and voxels; ``background``: tiles read by a worker thread."""
    return TileMap(
        directory,
        radius=config.tile_radius,
        unload_margin=config.tile_unload_margin,
        map_voxel=config.map_voxel,
        target_voxel=config.target_voxel,
        neighbors=config.covariance_neighbors,
        coarse_voxel=config.coarse_voxel,
        background=background,
    )
