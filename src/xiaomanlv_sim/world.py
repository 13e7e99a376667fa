"""The simulator's world model: static geometry read from an SDF world, in the world frame.

`xiaomanlv_sim.sdf.load_world` builds a `World` from an SDF 1.9+ file; the scene (ray casting),
the crowd (walls) and the renderer (top-down picture) all read this one model. Units are SI:
metres, radians. The world frame is SDF's: x east, y north, z up (ENU), its origin at the
world's `<spherical_coordinates>` (read as a `xiaomanlv_core.geodesy.Datum`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_core.geodesy import Datum


@dataclass(frozen=True)
class Box:
    size: tuple[float, float, float]  # [m] x, y, z edge lengths, centred on the shape pose


@dataclass(frozen=True)
class Cylinder:
    radius: float  # [m]
    length: float  # [m] along the shape's z axis, centred on the shape pose


@dataclass(frozen=True)
class Sphere:
    radius: float  # [m]


@dataclass(frozen=True)
class Plane:
    normal: tuple[float, float, float]  # unit normal in the shape frame
    size: tuple[float, float]  # [m] extent along the plane's two in-plane axes


@dataclass(frozen=True)
class Mesh:
    path: Path  # resolved OBJ or STL file
    scale: tuple[float, float, float] = (1.0, 1.0, 1.0)


Geometry = Box | Cylinder | Sphere | Plane | Mesh


@dataclass(frozen=True)
class Shape:
    """One collision geometry of a static model, placed in the world frame."""

    name: str  # scoped SDF name, e.g. "library::walls::north_wall"
    geometry: Geometry
    pose: NDArray[np.float64] = field(compare=False)  # 4x4 world-from-shape transform
    model: str = ""  # name of the top-level model it belongs to
    category: str = ""  # the model's <xiaomanlv:category>: building, tree, kerb, ramp, ...


@dataclass(frozen=True)
class World:
    name: str
    source: Path  # the SDF file it was read from
    shapes: tuple[Shape, ...]
    spherical_coordinates: Datum | None  # the georeference of <spherical_coordinates>
    models: tuple[str, ...] = ()  # top-level model names, in file order
