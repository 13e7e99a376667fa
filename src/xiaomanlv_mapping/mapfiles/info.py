"""``info.yaml``: what a map is, and a seal (sha256, size) of every other file in it.

The seals let a reader catch damage that still parses (a flipped pixel, an edited number):
:func:`check_seals` names the file. ``routes.geojson`` and ``stops.yaml`` are made to be edited
by hand, so a changed seal there is reported, not refused; ``seal_map`` records a deliberate
edit. The builder's provenance is stored as plain YAML (:func:`plain_provenance`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from xiaomanlv_core.fields import shown
from xiaomanlv_mapping.mapfiles.fileio import load_yaml, map_fields, write_file, yaml_text
from xiaomanlv_mapping.mapfiles.layout import (
    FORMAT,
    FORMAT_VERSION,
    HAND_EDITABLE,
    INFO_FILE,
    MAP_FRAME,
)
from xiaomanlv_mapping.model import MapFormatError

log = logging.getLogger(__name__)


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


def plain_provenance(value: Any, field: str, label: str) -> Any:
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
        return [plain_provenance(v, f"{field}[{i}]", label) for i, v in enumerate(value)]
    if isinstance(value, Mapping):
        out = {}
        for key, v in value.items():
            if not isinstance(key, str):
                raise MapFormatError(f"{label}: {field}: key {key!r} is not a string")
            out[key] = plain_provenance(v, f"{field}.{key}", label)
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
        "builder": plain_provenance(info.builder, "builder", str(path)),
        "files": {k: {"sha256": s.sha256, "size": s.size} for k, s in sorted(info.files.items())},
    }
    header = (
        'xiaomanlv prior map (docs/mapping.md, "Map files"): what it is and a seal\n'
        "(sha256, size [bytes]) of every other file. routes.geojson and stops.yaml may be\n"
        "edited by hand: re-seal afterwards (mapfiles.seal_map)."
    )
    write_file(path, yaml_text(data, header))


def read_info(path: Path) -> MapInfo:
    """Raises MapFormatError: missing file or field, another format, a newer version."""
    path = Path(path)
    f = map_fields(str(path))
    d = f.mapping(load_yaml(path), "", _INFO_KEYS, _INFO_KEYS)
    if d["format"] != FORMAT:
        raise f.fail("format", f"expected {FORMAT!r}, got {shown(d['format'])}")
    version = f.integer(d["version"], "version", low=1)
    if version > FORMAT_VERSION:
        raise f.fail("version", f"{version} is newer than this reader ({FORMAT_VERSION})")
    if d["frame"] != MAP_FRAME:
        raise f.fail("frame", f"expected {MAP_FRAME!r}, got {shown(d['frame'])}")
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
            raise f.fail(f"{where}.sha256", f"expected 64 hex digits, got {shown(digest)}")
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


def check_seals(directory: Path, info: MapInfo) -> tuple[str, ...]:
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
