"""``trajectory.tum``: the optimised mapping drive in the TUM RGB-D format.

One pose per line, ``stamp x y z qx qy qz qw`` (seconds, metres, unit quaternion of
``map <- base_link``), as Sturm et al. 2012 define it and evo reads it. Optional in a map;
``xiaomanlv map evaluate`` compares it with the drive's ground truth.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from xiaomanlv_mapping.mapfiles.fileio import read_text, write_file
from xiaomanlv_mapping.model import MapFormatError, PoseSeries


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
    write_file(Path(path), ("\n".join(lines) + "\n").encode())


def read_trajectory(path: Path) -> PoseSeries:
    """Read a TUM trajectory; MapFormatError names the file and line of a bad row."""
    from scipy.spatial.transform import Rotation

    path = Path(path)
    rows: list[list[float]] = []
    for n, line in enumerate(read_text(path).splitlines(), 1):
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
