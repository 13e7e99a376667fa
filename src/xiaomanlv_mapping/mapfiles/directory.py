"""A whole map directory, ``maps/<site>/``: load, seal and write it, all or nothing.

:func:`write_map` writes everything into a sibling temporary directory, fsyncs it, reads it
back, then renames it into place (an existing map is swapped out atomically with Linux
``renameat2(RENAME_EXCHANGE)``), so an interrupted build never leaves a broken map.
:func:`load_map` checks every file against the seals in info.yaml and validates every field
(and that route nodes name the stops); every error is a
:class:`~xiaomanlv_mapping.model.MapFormatError` naming the file and the field.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import errno
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from xiaomanlv_mapping.mapfiles.datum import read_datum, write_datum
from xiaomanlv_mapping.mapfiles.fileio import fsync_dir, map_fields
from xiaomanlv_mapping.mapfiles.grid import read_grid_and_image, write_grid
from xiaomanlv_mapping.mapfiles.info import (
    MapInfo,
    check_seals,
    file_seal,
    plain_provenance,
    read_info,
    write_info,
)
from xiaomanlv_mapping.mapfiles.layout import (
    CLOUD_DIR,
    DATUM_FILE,
    FORMAT_VERSION,
    GRID_YAML,
    INFO_FILE,
    ROUTES_FILE,
    STOPS_FILE,
    TRAJECTORY_FILE,
)
from xiaomanlv_mapping.mapfiles.pcd import DEFAULT_TILE_SIZE, read_cloud_and_files, write_cloud
from xiaomanlv_mapping.mapfiles.routes import read_routes, write_routes
from xiaomanlv_mapping.mapfiles.stops import read_stops, write_stops
from xiaomanlv_mapping.mapfiles.trajectory import read_trajectory, write_trajectory
from xiaomanlv_mapping.model import MapFormatError, MappingError, PriorMap, RouteGraph, StopSet


@dataclass(frozen=True)
class LoadedMap:
    """A map read by :func:`load_map`, with what is known about its files."""

    path: Path
    prior: PriorMap
    info: MapInfo
    edited: tuple[str, ...]  # hand-editable files changed since the map was sealed
    tiles: int  # point-cloud tiles


def _cross_check(routes: RouteGraph, stops: StopSet, label: str) -> None:
    """Route nodes of kind stop name a stop that is not marked unreachable; of kind station,
    the station or its loading or charging pose."""
    names = {s.name for s in stops.stops}
    every = (stops.loading, stops.charging, *stops.stops)
    marked = {s.name: s.unreachable for s in every if s.unreachable}
    station = (stops.station, stops.loading.name, stops.charging.name)
    for node in routes.nodes:
        if node.kind == "stop" and node.name not in names:
            raise MapFormatError(
                f"{label}: node {node.id}: metadata.name: stop {node.name!r} is not in {STOPS_FILE}"
            )
        if node.name in marked:
            raise MapFormatError(
                f"{label}: node {node.id}: metadata.name: {node.name!r} has a route node "
                f"but {STOPS_FILE} marks it unreachable ({marked[node.name]!r}); delete one of "
                "the two"
            )
        if node.kind == "station" and node.name not in station:
            raise MapFormatError(
                f"{label}: node {node.id}: metadata.name: {node.name!r} is not {STOPS_FILE}'s "
                f"station, loading or charging name ({', '.join(map(repr, station))})"
            )


def _read_contents(directory: Path, info: MapInfo) -> tuple[PriorMap, list[str], int]:
    grid, image = read_grid_and_image(directory / GRID_YAML)
    try:
        image_rel = image.resolve().relative_to(directory.resolve()).as_posix()
    except ValueError:
        raise MapFormatError(
            f"{directory / GRID_YAML}: image: {image} is outside the map directory"
        ) from None
    cloud, cloud_files = read_cloud_and_files(directory / CLOUD_DIR)
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
        edited = check_seals(directory, info)
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
        MapFormatError: a product that would make an invalid file: ``<out>: not written:
            <file in the map>: <field>: ...`` (nothing is written, an existing map stays).
        MappingError: ``out`` exists without ``overwrite``, or is not a directory.
    """
    out = Path(out)
    if out.is_symlink():
        raise MappingError(f"{out}: is a symbolic link; write to the directory it points to")
    if out.exists() and not out.is_dir():
        raise MappingError(f"{out}: exists and is not a directory")
    if out.exists() and not overwrite:
        raise MappingError(f"{out}: a map exists there; pass overwrite=True to replace it")
    try:
        label = str(out / INFO_FILE)
        f = map_fields(label)
        site = f.text(prior.site, "site")
        voxel = f.positive(prior.cloud_voxel, "cloud_voxel")
        size = f.positive(tile_size, "tile_size")
        plain_provenance(prior.info, "builder", label)
        _cross_check(prior.routes, prior.stops, str(out / ROUTES_FILE))
    except MapFormatError as err:
        raise _not_written(err, out, out) from None
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
            fsync_dir(tmp / CLOUD_DIR)
            fsync_dir(tmp)
            load_map(tmp)
        except MapFormatError as err:  # name the destination, not the temporary directory
            raise _not_written(err, out, tmp) from None
        _install(tmp, out, overwrite)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _not_written(err: MapFormatError, out: Path, where: Path) -> MapFormatError:
    """``err`` (naming a file under ``where``) as the refusal of the map ``out``: the file is
    named relative to the map, since it was never written there."""
    text = str(err)
    prefix = f"{where}{os.sep}"
    text = text[len(prefix) :] if text.startswith(prefix) else text.replace(str(where), ".")
    return MapFormatError(f"{out}: not written: {text}")


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
    fsync_dir(out.parent)
