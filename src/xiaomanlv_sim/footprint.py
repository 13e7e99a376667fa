"""2D static obstacles of a world at walking height, with a signed distance field.

`Footprints.from_world` slices every collision shape of a `World` with the horizontal slab
``z_min <= z <= z_max`` (default 0.05..2.0 m: the height of people, cyclists and the robot's
body) and projects what lies in the slab onto the ground plane:

- boxes (any orientation) and cylinders (as 32-sided prisms, circumscribed so they never shrink)
  are convex polyhedra: the slab cut of a convex polyhedron is convex, its vertices are the
  polyhedron's vertices inside the slab plus the crossings of its edges with the two slab planes,
  so the footprint is the convex hull of those points (exact for boxes);
- spheres give the disc where the sphere meets the slab;
- meshes (OBJ/STL, read by `meshes.read_mesh`) give the convex hull of the same cut of their
  triangle edges. This is exact for convex meshes and an over-approximation for concave ones (an
  L-shaped building mesh becomes its hull); our worlds model buildings as boxes, so this is
  documented rather than solved;
- planes are ignored unless vertical (a thin 2 cm wall), since a horizontal plane is ground.

Which shapes block walking is decided by category (`BLOCKING` / `PASSABLE`): buildings, walls,
fences, gates, tree trunks, lamp posts, benches, bollards and parked cars block; kerbs, ramps,
steps, ground and fields do not - people step over a 12 cm kerb and walk up ramps (the robot's
climbing limit is the simulator's business, not the crowd's). A shape without a category blocks
when it reaches into the slab, which is what a cautious pedestrian would assume.

Obstacles that appear at run time (`ObstacleSpec`: trolleys, barriers, boxes) are added with
`add_obstacle` / `sync_obstacles`; they join the exact geometry and the distance field.

The distance field is a signed Euclidean distance transform (Felzenszwalb & Huttenlocher 2012,
"Distance Transforms of Sampled Functions", as implemented by OpenCV's `distanceTransform` with
`DIST_MASK_PRECISE`; it returns the same values as `scipy.ndimage.distance_transform_edt` about
ten times faster - 0.2 s against 2.3 s for a 450 m world at 0.1 m cells) on a grid of `cell`
metres, clipped at `max_distance`. Values are positive outside obstacles, negative inside, with
an error below one cell; `distance` and `gradient` interpolate it bilinearly. Exact queries use
shapely's STRtree (`nearest`), which the crowd uses for its final non-penetration step.
Frames: world frame x east, y north (metres).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import MultiPolygon, Point, Polygon
from shapely.geometry.base import BaseGeometry

from xiaomanlv_sim.meshes import MeshError, read_mesh
from xiaomanlv_sim.scenario import ObstacleSpec
from xiaomanlv_sim.world import Box, Cylinder, Mesh, Plane, Shape, Sphere, World

_log = logging.getLogger(__name__)

BLOCKING = frozenset(
    {"building", "wall", "fence", "gate", "tree", "lamp_post", "bench", "bollard", "car"}
)  # categories that block people (what reaches into the slab)
PASSABLE = frozenset({"kerb", "ramp", "step", "steps", "ground", "field"})  # walked over

_CYLINDER_SIDES = 32
_PLANE_THICKNESS = 0.02  # [m] a vertical plane becomes a wall this thick


class FootprintError(ValueError):
    """A shape cannot be turned into a footprint (unreadable mesh, bad slab)."""


@dataclass(frozen=True)
class Footprint:
    """The 2D outline of one obstacle at walking height."""

    name: str  # Shape.name, or "obstacle:<key>" for run-time obstacles
    category: str  # Shape.category, or the ObstacleSpec kind
    polygon: Polygon  # [m] world frame


def _box_vertices_edges(size: Sequence[float]) -> tuple[NDArray[np.float64], list[tuple[int, int]]]:
    hx, hy, hz = (0.5 * float(s) for s in size)
    verts = np.array(
        [[sx * hx, sy * hy, sz * hz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]
    )
    edges = [(i, j) for i in range(8) for j in range(i + 1, 8) if bin(i ^ j).count("1") == 1]
    return verts, edges


def _prism_vertices_edges(
    radius: float, length: float, sides: int = _CYLINDER_SIDES
) -> tuple[NDArray[np.float64], list[tuple[int, int]]]:
    r = radius / math.cos(math.pi / sides)  # circumscribed: the prism contains the cylinder
    ang = np.arange(sides) * (2.0 * math.pi / sides)
    ring = np.stack([r * np.cos(ang), r * np.sin(ang)], axis=1)
    low = np.hstack([ring, np.full((sides, 1), -0.5 * length)])
    high = np.hstack([ring, np.full((sides, 1), 0.5 * length)])
    verts = np.vstack([low, high])
    edges = [(i, (i + 1) % sides) for i in range(sides)]
    edges += [(sides + i, sides + (i + 1) % sides) for i in range(sides)]
    edges += [(i, sides + i) for i in range(sides)]
    return verts, edges


def _slab_hull(
    verts: NDArray[np.float64], edges: NDArray[np.int64], z_min: float, z_max: float
) -> Polygon | None:
    """Convex hull of the xy projection of a convex solid's (or edge set's) cut by the slab."""
    z = verts[:, 2]
    pts = [verts[(z >= z_min) & (z <= z_max), :2]]
    if len(edges):
        a, b = verts[edges[:, 0]], verts[edges[:, 1]]
        for plane in (z_min, z_max):
            za, zb = a[:, 2] - plane, b[:, 2] - plane
            cross = (za * zb) < 0
            if np.any(cross):
                t = za[cross] / (za[cross] - zb[cross])
                pts.append(a[cross, :2] + t[:, None] * (b[cross, :2] - a[cross, :2]))
    xy = np.vstack(pts)
    if len(xy) < 3:
        return None
    hull = shapely.MultiPoint(xy).convex_hull
    return hull if isinstance(hull, Polygon) and hull.area > 1e-6 else None


def _rotation_z_to(normal: Sequence[float]) -> NDArray[np.float64]:
    """Rotation taking +z to `normal` (shortest arc, as Gazebo orients a plane)."""
    n = np.asarray(normal, dtype=float)
    n = n / np.linalg.norm(n)
    z = np.array([0.0, 0.0, 1.0])
    v = np.cross(z, n)
    c = float(np.dot(z, n))
    if np.linalg.norm(v) < 1e-9:
        return np.eye(3) if c > 0 else np.diag([1.0, -1.0, -1.0])
    vx = np.array([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    return np.eye(3) + vx + vx @ vx * (1.0 / (1.0 + c))


def _mesh_vertices_edges(mesh: Mesh) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    path = Path(mesh.path)
    if not path.is_file():
        raise FootprintError(f"mesh file {path} does not exist")
    try:
        triangles = read_mesh(path)
    except MeshError as err:
        raise FootprintError(str(err)) from err
    verts = triangles.vertices * np.asarray(mesh.scale, dtype=float)
    tris = triangles.triangles
    edges = np.vstack([tris[:, [0, 1]], tris[:, [1, 2]], tris[:, [2, 0]]]).reshape(-1, 2)
    return verts, edges


def shape_footprint(shape: Shape, z_min: float, z_max: float) -> Polygon | None:
    """The footprint of one shape in the slab z_min..z_max [m], or None if it misses the slab.

    Raises:
        FootprintError: a mesh file cannot be read.
    """
    pose = np.asarray(shape.pose, dtype=float)
    rot, trans = pose[:3, :3], pose[:3, 3]
    geom = shape.geometry
    if isinstance(geom, Sphere):
        zc = float(trans[2])
        dz = 0.0 if z_min <= zc <= z_max else min(abs(zc - z_min), abs(zc - z_max))
        if dz >= geom.radius:
            return None
        r = math.sqrt(geom.radius**2 - dz**2)
        return Point(trans[0], trans[1]).buffer(r / math.cos(math.pi / 64), quad_segs=16)
    if isinstance(geom, Box):
        verts, edge_list = _box_vertices_edges(geom.size)
        edges = np.asarray(edge_list, dtype=np.int64)
    elif isinstance(geom, Cylinder):
        verts, edge_list = _prism_vertices_edges(geom.radius, geom.length)
        edges = np.asarray(edge_list, dtype=np.int64)
    elif isinstance(geom, Plane):
        normal_world = rot @ (np.asarray(geom.normal, dtype=float))
        if abs(normal_world[2]) > 0.1 * np.linalg.norm(normal_world):
            return None  # not vertical: ground or a slope, walked on
        verts, edge_list = _box_vertices_edges((geom.size[0], geom.size[1], _PLANE_THICKNESS))
        verts = verts @ _rotation_z_to(geom.normal).T
        edges = np.asarray(edge_list, dtype=np.int64)
    elif isinstance(geom, Mesh):
        verts, edges = _mesh_vertices_edges(geom)
    else:  # pragma: no cover - Geometry is a closed union
        raise FootprintError(f"{shape.name}: unknown geometry {type(geom).__name__}")
    world_verts = verts @ rot.T + trans
    return _slab_hull(world_verts, edges, z_min, z_max)


def obstacle_polygon(spec: ObstacleSpec) -> Polygon:
    """The footprint of a run-time obstacle: its length x width rectangle at its pose [m, rad]."""
    half_l, half_w = 0.5 * spec.size[0], 0.5 * spec.size[1]
    c, s = math.cos(spec.pose.yaw), math.sin(spec.pose.yaw)
    corners = [(sx * half_l, sy * half_w) for sx, sy in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    return Polygon([(spec.pose.x + c * x - s * y, spec.pose.y + s * x + c * y) for x, y in corners])


def blocks_walking(category: str) -> bool:
    """Whether shapes of `category` are obstacles for pedestrians (see the module docstring)."""
    return category in BLOCKING or category not in PASSABLE


class Footprints:
    """Static 2D obstacles of a world plus run-time obstacles, with a signed distance field.

    Build with `from_world` (or the constructor, from footprints made by hand). Query
    `distance`/`gradient` (grid, fast, vectorised), `nearest` (exact), `geometry` (the union).
    """

    def __init__(
        self,
        footprints: Iterable[Footprint],
        *,
        bounds: tuple[float, float, float, float] | None = None,
        cell: float = 0.1,  # [m] distance-field grid spacing
        max_distance: float = 5.0,  # [m] the field is clipped to +-max_distance
        margin: float = 10.0,  # [m] grid extends this far beyond the footprints' bounds
    ) -> None:
        if cell <= 0 or max_distance <= 0:
            raise FootprintError(f"cell ({cell}) and max_distance ({max_distance}) must be > 0")
        self.static: tuple[Footprint, ...] = tuple(footprints)
        self._dynamic: dict[str, Footprint] = {}
        self.cell = cell
        self.max_distance = max_distance
        if bounds is None:
            if self.static:
                b = shapely.total_bounds([f.polygon for f in self.static])
                bounds = (b[0] - margin, b[1] - margin, b[2] + margin, b[3] + margin)
            else:
                bounds = (-margin, -margin, margin, margin)
        self.bounds = (float(bounds[0]), float(bounds[1]), float(bounds[2]), float(bounds[3]))
        self.shape = (
            max(2, math.ceil((self.bounds[3] - self.bounds[1]) / cell)),
            max(2, math.ceil((self.bounds[2] - self.bounds[0]) / cell)),
        )  # (rows along y, columns along x)
        self._static_mask = np.zeros(self.shape, dtype=np.uint8)
        for fp in self.static:
            self._fill(self._static_mask, fp.polygon)
        self._mask = self._static_mask.copy()
        self._union: BaseGeometry | None = None
        self._tree: shapely.STRtree | None = None
        self._sdf = self._signed_distance(self._mask)
        self._rebuild_tree()

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_world(
        cls,
        world: World,
        z_min: float = 0.05,  # [m] slab bottom: above the ground plane
        z_max: float = 2.0,  # [m] slab top: taller than people and the robot
        *,
        cell: float = 0.1,  # [m]
        max_distance: float = 5.0,  # [m]
        blocking: frozenset[str] | None = None,  # categories that block; None: blocks_walking
    ) -> Footprints:
        """Footprints of every walking-blocking shape of `world` in the slab z_min..z_max.

        Raises:
            FootprintError: z_max <= z_min, or a mesh cannot be read.
        """
        if z_max <= z_min:
            raise FootprintError(f"slab z_max ({z_max}) must be above z_min ({z_min})")
        footprints = []
        for shape in world.shapes:
            block = shape.category in blocking if blocking is not None else None
            if block is None:
                block = blocks_walking(shape.category)
            if not block:
                continue
            poly = shape_footprint(shape, z_min, z_max)
            if poly is not None:
                footprints.append(Footprint(shape.name, shape.category, poly))
        _log.debug("%s: %d footprints of %d shapes", world.name, len(footprints), len(world.shapes))
        return cls(footprints, cell=cell, max_distance=max_distance)

    # -- run-time obstacles -------------------------------------------------------------------
    def add_obstacle(self, key: str, obstacle: ObstacleSpec | Polygon) -> None:
        """Add (or replace) a run-time obstacle under `key`; it blocks from now on.

        Exact queries see it anywhere; the distance field only within `bounds` (the world's
        footprints plus a margin), where agents walk.
        """
        poly = obstacle if isinstance(obstacle, Polygon) else obstacle_polygon(obstacle)
        kind = "obstacle" if isinstance(obstacle, Polygon) else obstacle.kind
        old = self._dynamic.pop(key, None)
        self._dynamic[key] = Footprint(f"obstacle:{key}", kind, poly)
        self._refresh([p for p in (old.polygon if old else None, poly) if p is not None])

    def remove_obstacle(self, key: str) -> None:
        """Remove the run-time obstacle `key` (no error if it is not there)."""
        old = self._dynamic.pop(key, None)
        if old is not None:
            self._refresh([old.polygon])

    def sync_obstacles(self, obstacles: Sequence[ObstacleSpec], time: float) -> bool:
        """Make the run-time obstacles those of `obstacles` present at `time` [s].

        Obstacle i is keyed "obstacle[i]"; it is present for appear_at <= time < disappear_at.
        Returns whether anything changed.
        """
        changed = False
        for i, spec in enumerate(obstacles):
            key = f"obstacle[{i}]"
            present = spec.appear_at <= time and (
                spec.disappear_at is None or time < spec.disappear_at
            )
            if present and key not in self._dynamic:
                self.add_obstacle(key, spec)
                changed = True
            elif not present and key in self._dynamic:
                self.remove_obstacle(key)
                changed = True
        return changed

    @property
    def field(self) -> NDArray[np.float32]:
        """The signed distance grid `distance` interpolates [m] (rows along y; cell centres at
        bounds[:2] + (i + 0.5) * cell); updated in place when run-time obstacles change."""
        return self._sdf

    @property
    def obstacles(self) -> dict[str, Footprint]:
        """The run-time obstacles now present, by key."""
        return dict(self._dynamic)

    @property
    def all(self) -> tuple[Footprint, ...]:
        """Static footprints followed by run-time obstacles."""
        return self.static + tuple(self._dynamic.values())

    @property
    def geometry(self) -> BaseGeometry:
        """Union of every footprint (static and run-time) [m]."""
        if self._union is None:
            self._union = shapely.union_all([f.polygon for f in self.all])
        return self._union

    # -- queries ------------------------------------------------------------------------------
    def distance(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        """Signed distance [m] from each of `points` (N,2) to the nearest obstacle (grid).

        Positive outside, negative inside, clipped to +-max_distance, error below one cell.
        """
        d, _ = self._interp(np.asarray(points, dtype=float).reshape(-1, 2), want_gradient=False)
        return d

    def distance_and_gradient(
        self, points: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Signed distance (N,) [m] and its gradient (N,2) (unit-ish, pointing away from walls)."""
        d, g = self._interp(np.asarray(points, dtype=float).reshape(-1, 2), want_gradient=True)
        assert g is not None
        return d, g

    def gradient(self, points: NDArray[np.float64]) -> NDArray[np.float64]:
        """Gradient (N,2) of the signed distance: the direction away from the nearest obstacle."""
        return self.distance_and_gradient(points)[1]

    def nearest(
        self, points: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Exact distance (N,) [m] to the nearest footprint and the nearest point on it (N,2).

        A point inside a footprint has distance 0 and is its own nearest point. With no
        footprints at all the distance is inf and the nearest point is the query point.
        """
        pts = np.asarray(points, dtype=float).reshape(-1, 2)
        dist = np.full(len(pts), np.inf)
        near = pts.copy()
        if not len(pts) or self._tree is None:
            return dist, near
        geoms = shapely.points(pts)
        (qi, ti), d = self._tree.query_nearest(geoms, return_distance=True, all_matches=False)
        dist[qi] = d
        outside = d > 0
        if np.any(outside):
            lines = shapely.shortest_line(self._tree.geometries[ti[outside]], geoms[qi[outside]])
            near[qi[outside]] = shapely.get_coordinates(shapely.get_point(lines, 0))
        return dist, near

    def is_free(self, points: NDArray[np.float64], clearance: float = 0.0) -> NDArray[np.bool_]:
        """Exact: whether each point (N,2) is at least `clearance` [m] from every footprint."""
        dist, _ = self.nearest(points)
        return np.asarray(dist >= clearance) & np.asarray(dist > 0)

    def segment_free(
        self,
        a: Sequence[float] | NDArray[np.float64],
        b: Sequence[float] | NDArray[np.float64],
        clearance: float = 0.0,
    ) -> bool:
        """Exact: whether the segment a-b [m] keeps `clearance` [m] from every footprint."""
        if self._tree is None:
            return True
        line = shapely.LineString([(float(a[0]), float(a[1])), (float(b[0]), float(b[1]))])
        hits = self._tree.query(line, predicate="dwithin", distance=clearance)
        return len(hits) == 0

    # -- internals ----------------------------------------------------------------------------
    def _to_px(self, xy: NDArray[np.float64]) -> NDArray[np.float64]:
        """World [m] to continuous pixel coordinates (col, row) where cell centres are integers."""
        return np.stack(
            [
                (xy[:, 0] - self.bounds[0]) / self.cell - 0.5,
                (xy[:, 1] - self.bounds[1]) / self.cell - 0.5,
            ],
            axis=1,
        )

    def _fill(
        self, mask: NDArray[np.uint8], poly: Polygon, offset: NDArray[np.float64] | None = None
    ) -> None:
        """Rasterise `poly` into `mask` (whose pixel (0,0) is grid cell `offset` (col, row))."""
        shift = 4  # sub-pixel precision of cv2.fillPoly: 1/16 px
        px = self._to_px(np.asarray(poly.exterior.coords, dtype=float))
        if offset is not None:
            px = px - offset
        pts = np.round(px * float(1 << shift)).astype(np.int32)
        cv2.fillPoly(mask, [pts], 1, lineType=cv2.LINE_8, shift=shift)
        # a sliver thinner than a cell may fill nothing: also mark the cells its outline crosses
        cv2.polylines(mask, [pts], True, 1, lineType=cv2.LINE_8, shift=shift)

    def _signed_distance(self, mask: NDArray[np.uint8]) -> NDArray[np.float32]:
        free = (mask == 0).astype(np.uint8)
        d_out = cv2.distanceTransform(free, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        d_in = cv2.distanceTransform(1 - free, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        sdf = np.where(free > 0, d_out - 0.5, -(d_in - 0.5)) * self.cell
        return np.clip(sdf, -self.max_distance, self.max_distance).astype(np.float32)

    def _refresh(self, changed: Sequence[Polygon]) -> None:
        """Re-rasterise and recompute the field around `changed` polygons only."""
        pad = self.max_distance + 2 * self.cell
        b = shapely.total_bounds(list(changed))
        lo = self._to_px(np.array([[b[0] - pad, b[1] - pad]]))[0]
        hi = self._to_px(np.array([[b[2] + pad, b[3] + pad]]))[0]
        c0, r0 = max(0, int(lo[0])), max(0, int(lo[1]))
        c1, r1 = min(self.shape[1], int(hi[0]) + 2), min(self.shape[0], int(hi[1]) + 2)
        if c0 >= c1 or r0 >= r1:
            self._rebuild_tree()
            return
        ext = math.ceil(pad / self.cell)  # compute on a window extended by the field's reach
        e0, f0 = max(0, c0 - ext), max(0, r0 - ext)
        e1, f1 = min(self.shape[1], c1 + ext), min(self.shape[0], r1 + ext)
        window = self._static_mask[f0:f1, e0:e1].copy()
        offset = np.array([e0, f0], dtype=float)
        for fp in self._dynamic.values():
            self._fill(window, fp.polygon, offset)
        self._mask[f0:f1, e0:e1] = window
        sdf = self._signed_distance(window)
        self._sdf[r0:r1, c0:c1] = sdf[r0 - f0 : r1 - f0, c0 - e0 : c1 - e0]
        self._rebuild_tree()

    def _rebuild_tree(self) -> None:
        polys = [f.polygon for f in self.all]
        self._tree = shapely.STRtree(polys) if polys else None
        self._union = None

    def _interp(
        self, xy: NDArray[np.float64], *, want_gradient: bool
    ) -> tuple[NDArray[np.float64], NDArray[np.float64] | None]:
        px = self._to_px(xy)
        rows, cols = self.shape
        x = np.clip(px[:, 0], 0.0, cols - 1.000001)
        y = np.clip(px[:, 1], 0.0, rows - 1.000001)
        outside = (px[:, 0] != x) | (px[:, 1] != y)
        i0, j0 = x.astype(np.intp), y.astype(np.intp)
        fx, fy = x - i0, y - j0
        s = self._sdf
        v00, v10 = s[j0, i0], s[j0, i0 + 1]
        v01, v11 = s[j0 + 1, i0], s[j0 + 1, i0 + 1]
        top = v00 + (v10 - v00) * fx
        bottom = v01 + (v11 - v01) * fx
        d = (top + (bottom - top) * fy).astype(float)
        d[outside] = np.maximum(d[outside], 0.0)
        if not want_gradient:
            return d, None
        gx = ((v10 - v00) * (1 - fy) + (v11 - v01) * fy) / self.cell
        gy = (bottom - top) / self.cell
        g = np.stack([gx, gy], axis=1).astype(float)
        return d, g


def polygons_of(geometry: BaseGeometry) -> list[Polygon]:
    """The polygons of a (multi)polygon or collection, for drawing."""
    if isinstance(geometry, Polygon):
        return [geometry]
    if isinstance(geometry, MultiPolygon):
        return list(geometry.geoms)
    return [g for g in getattr(geometry, "geoms", []) if isinstance(g, Polygon)]
