"""Reading PCD files: the point clouds of a prior map's tiles.

The PCD v0.7 file format (pointclouds.org, "The PCD (Point Cloud Data) file format"): an ASCII
header (VERSION, FIELDS, SIZE, TYPE, COUNT, WIDTH, HEIGHT, VIEWPOINT, POINTS, DATA) and the
points as ``ascii`` rows or ``binary`` records. :func:`read_pcd` returns the x, y, z columns
of either form, any other fields ignored. It is small and hand-written on purpose: Open3D's
reader returns an empty cloud on a bad file without saying what is wrong, and this reader names
the header field. The map build writes the files (`xiaomanlv_mapping.mapfiles.pcd`); the map
tooling and the localiser read them with this one reader.

Every error is the caller's :class:`~xiaomanlv_core.fields.FormatError` subclass (``error``),
its message naming the file and the header line.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_core.fields import Fields, FormatError

PCD_KEYS = ("VERSION", "FIELDS", "SIZE", "TYPE", "COUNT", "WIDTH", "HEIGHT", "VIEWPOINT", "POINTS")
PCD_MAX_HEADER = 65536  # [bytes] a header longer than this is not a PCD header


def read_file_bytes(path: Path, error: type[FormatError] = FormatError) -> bytes:
    """The bytes of ``path``; ``error`` naming the path when it is missing or unreadable."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: missing") from None
    except OSError as err:
        raise error(f"{path}: cannot read: {err.strerror or err}") from None


def read_pcd(path: Path, error: type[FormatError] = FormatError) -> NDArray[np.float32]:
    """(N,3) float32 x, y, z [m] of a PCD file (DATA ascii or binary; other fields ignored).

    Raises:
        FormatError: (``error``) naming the file and the header line (FIELDS, SIZE, TYPE,
            COUNT, WIDTH, HEIGHT, POINTS, DATA) that is missing or inconsistent, truncated or
            trailing data, a missing x/y/z field, or a point that is not finite.
    """
    path = Path(path)
    data = read_file_bytes(path, error)
    f = Fields(str(path), error)
    header: dict[str, list[str]] = {}
    pos = 0
    data_kind = ""
    while not data_kind:
        end = data.find(b"\n", pos)
        if end < 0 or end > PCD_MAX_HEADER:
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
        elif key not in PCD_KEYS:
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
