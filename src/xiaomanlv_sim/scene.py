"""Ray casting against the simulated campus: static world, added obstacles and moving agents.

Every static `Shape` of a `World` becomes an analytic primitive of `raycast` (box, cylinder,
sphere, finite plane; OBJ/STL meshes as triangles), and so do the agents (pedestrians,
cyclists: vertical cylinders that move every crowd step) and obstacles added at run time (boxes
standing on the ground). Intersections are exact (no facets) and compiled (numba). A sensor's
fan of rays is cast object by object over the rows and columns each object can subtend, nearest
object first (see `raycast`); arbitrary rays (`cast`, `cast_hits`) test every object.

`ground_height` reads a two-level height grid of walkable tops (categories ground, kerb, ramp,
field, ... and any plane) built once by casting rays straight down through an Open3D
`RaycastingScene` of the walkable shapes (Embree; Wald et al., ACM TOG 2014): coarse tiles of
0.8 m hold one height where the surface is flat across the tile; tiles crossed by a footprint
edge of a walkable shape, or under a sloped one, hold 16 x 16 cells of 0.05 m.

Frames: everything is in the world frame (x east, y north, z up), metres.
"""

from __future__ import annotations

import functools
import itertools
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numba
import numpy as np
import open3d as o3d
from numpy.typing import NDArray

from xiaomanlv_core.types import Pose2D
from xiaomanlv_sim import raycast
from xiaomanlv_sim.meshes import read_mesh
from xiaomanlv_sim.raycast import Primitives
from xiaomanlv_sim.world import Box, Cylinder, Mesh, Plane, Shape, Sphere, World

_log = logging.getLogger(__name__)

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]

#: Categories whose tops a wheel can stand on; planes count as walkable whatever their category.
WALKABLE_CATEGORIES = frozenset(
    {"ground", "kerb", "ramp", "field", "path", "road", "walkway", "plaza", "step", "steps"}
)
#: Category codes of hits: index into this tuple. Static shapes use their model's category.
CATEGORIES: tuple[str, ...] = (
    "", "building", "tree", "lamp_post", "bench", "bollard", "kerb", "ramp", "fence", "gate",
    "car", "wall", "ground", "field", "agent", "obstacle",
)  # fmt: skip
AGENT_CODE = CATEGORIES.index("agent")
OBSTACLE_CODE = CATEGORIES.index("obstacle")
NO_HIT = -1

CYLINDER_RESOLUTION = 24  # facets around a cylinder (height grid, map evaluation)
SPHERE_RESOLUTION = 12  # Open3D sphere resolution (likewise)
SKY_ROWS = 16  # sky_blocked_fraction: rows of equal solid angle ...
SKY_COLS = 16  # ... times azimuths
TILE_CELLS = 16  # fine cells per coarse tile edge
TILE_SHIFT = 4  # log2(TILE_CELLS)


def category_code(name: str) -> int:
    """Index of a category in `CATEGORIES` (0 for one not listed)."""
    try:
        return CATEGORIES.index(name)
    except ValueError:
        return 0


@dataclass(frozen=True)
class Hits:
    """First hits of a batch of rays (world frame)."""

    distance: F32  # (N,) [m], inf where nothing was hit
    normal: F32  # (N,3) unit surface normal at the hit (either side), zeros where no hit
    category: NDArray[np.int16]  # (N,) index into CATEGORIES, NO_HIT where no hit


@dataclass(frozen=True)
class RayFan:
    """Rays leaving one origin, laid out as rows (vertical beams) x columns (azimuths).

    `directions` are unit vectors in the sensor frame, row-major: ray ``r * cols + c`` has
    azimuth ``azimuth0 + c * azimuth_step`` [rad] (about the sensor z axis). Build once per sensor.
    """

    directions: F32  # (rows*cols, 3)
    rows: int
    cols: int
    azimuth0: float  # [rad]
    azimuth_step: float  # [rad]
    elevations: F64  # (rows,) [rad] elevation of each row, ascending

    @classmethod
    def grid(cls, azimuths: NDArray[np.floating], elevations: NDArray[np.floating]) -> RayFan:
        """A fan from evenly spaced `azimuths` (cols) and ascending `elevations` (rows) [rad]."""
        az = np.asarray(azimuths, dtype=np.float64)
        el = np.asarray(elevations, dtype=np.float64)
        if np.any(np.diff(el) < 0):
            raise ValueError("RayFan.grid: elevations must be ascending")
        e, a = np.meshgrid(el, az, indexing="ij")
        dirs = np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], axis=-1)
        step = float(az[1] - az[0]) if az.size > 1 else 2.0 * math.pi
        return cls(
            directions=np.ascontiguousarray(dirs.reshape(-1, 3), dtype=np.float32),
            rows=int(el.size),
            cols=int(az.size),
            azimuth0=float(az[0]),
            azimuth_step=step,
            elevations=el,
        )

    @property
    def full_circle(self) -> bool:
        return self.cols * abs(self.azimuth_step) >= 2.0 * math.pi - 1e-6

    @functools.cached_property
    def layout(self) -> raycast.FanLayout:
        """The fan as `raycast.cast_fans` takes it (float64 directions)."""
        return raycast.FanLayout(
            directions=np.ascontiguousarray(self.directions, dtype=np.float64),
            elevations=np.ascontiguousarray(self.elevations, dtype=np.float64),
            cols=self.cols,
            azimuth0=self.azimuth0,
            azimuth_step=self.azimuth_step,
            full_circle=self.full_circle,
        )


# --------------------------------------------------------------------------- triangulation


def _shape_mesh(shape: Shape) -> tuple[F64, NDArray[np.int64]]:
    """Vertices (world frame) and triangles of one shape."""
    g = shape.geometry
    if isinstance(g, Box):
        m = o3d.geometry.TriangleMesh.create_box(*g.size)
        m.translate([-g.size[0] / 2, -g.size[1] / 2, -g.size[2] / 2])
        verts, tris = np.asarray(m.vertices), np.asarray(m.triangles)
    elif isinstance(g, Cylinder):
        m = o3d.geometry.TriangleMesh.create_cylinder(
            g.radius, g.length, resolution=CYLINDER_RESOLUTION
        )
        verts, tris = np.asarray(m.vertices), np.asarray(m.triangles)
    elif isinstance(g, Sphere):
        m = o3d.geometry.TriangleMesh.create_sphere(g.radius, resolution=SPHERE_RESOLUTION)
        verts, tris = np.asarray(m.vertices), np.asarray(m.triangles)
    elif isinstance(g, Plane):
        n = np.asarray(g.normal, dtype=np.float64)
        helper = np.array([1.0, 0.0, 0.0]) if abs(n[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        u = np.cross(n, helper)
        u /= np.linalg.norm(u)
        v = np.cross(n, u)
        if abs(n[2]) > 0.999:  # the usual ground plane: keep size[0] along x, size[1] along y
            u, v = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
        a, b = g.size[0] / 2, g.size[1] / 2
        verts = np.array([-a * u - b * v, a * u - b * v, a * u + b * v, -a * u + b * v])
        tris = np.array([[0, 1, 2], [0, 2, 3]])
    elif isinstance(g, Mesh):
        mesh = read_mesh(g.path)  # raises MeshError (an SdfError) naming file, line and cause
        verts, tris = mesh.vertices * np.asarray(g.scale), mesh.triangles
    else:  # pragma: no cover - World only holds the geometry types above
        raise TypeError(f"unknown geometry {g!r}")
    world = verts @ shape.pose[:3, :3].T + shape.pose[:3, 3]
    return world, tris.astype(np.int64)


def build_raycaster(
    shapes: Iterable[Shape],
) -> tuple[o3d.t.geometry.RaycastingScene, NDArray[np.int16], F64]:
    """One Embree scene of all shapes; per-triangle category codes; (N,3) all vertices."""
    all_v: list[F64] = []
    all_t: list[NDArray[np.int64]] = []
    cats: list[NDArray[np.int16]] = []
    offset = 0
    for shape in shapes:
        v, t = _shape_mesh(shape)
        all_v.append(v)
        all_t.append(t + offset)
        cats.append(np.full(len(t), category_code(shape.category), dtype=np.int16))
        offset += len(v)
    scene = o3d.t.geometry.RaycastingScene()
    if not all_v:
        return scene, np.zeros(0, dtype=np.int16), np.zeros((0, 3))
    verts = np.concatenate(all_v)
    tris = np.concatenate(all_t)
    scene.add_triangles(
        o3d.core.Tensor.from_numpy(np.ascontiguousarray(verts, dtype=np.float32)),
        o3d.core.Tensor.from_numpy(np.ascontiguousarray(tris, dtype=np.uint32)),
    )
    return scene, np.concatenate(cats), verts


def primitives_of(shapes: Iterable[Shape]) -> Primitives:
    """Every shape as analytic `raycast` primitives (a mesh as its triangles).

    Raises MeshError (an SdfError) for a mesh file that cannot be read.
    """
    parts: list[Primitives] = []
    for shape in shapes:
        g = shape.geometry
        rot, c = shape.pose[:3, :3], shape.pose[:3, 3]
        cat = np.array([category_code(shape.category)])
        if isinstance(g, Box):
            parts.append(raycast.oriented(raycast.BOX, c, rot, np.asarray(g.size) / 2, cat))
        elif isinstance(g, Cylinder):
            half = np.array([g.radius, g.radius, g.length / 2])
            parts.append(raycast.oriented(raycast.CYLINDER, c, rot, half, cat))
        elif isinstance(g, Sphere):
            half = np.full(3, g.radius)
            parts.append(raycast.oriented(raycast.SPHERE, c, rot, half, cat))
        elif isinstance(g, Plane):
            # Local z = the plane's normal; x, y along its size (the ground: x east, y north).
            v, _ = _shape_mesh(shape)
            u_axis = (v[1] - v[0]) / np.linalg.norm(v[1] - v[0])
            v_axis = (v[3] - v[0]) / np.linalg.norm(v[3] - v[0])
            axes = np.column_stack([u_axis, v_axis, np.cross(u_axis, v_axis)])
            half = np.array([g.size[0] / 2, g.size[1] / 2, 0.0])
            parts.append(raycast.oriented(raycast.QUAD, v.mean(axis=0), axes, half, cat))
        else:
            v, t = _shape_mesh(shape)
            parts.append(raycast.triangles(v[t], np.full(len(t), cat[0])))
    return raycast.concat(parts)


def _is_walkable(shape: Shape) -> bool:
    return shape.category in WALKABLE_CATEGORIES or isinstance(shape.geometry, Plane)


def _flat_top(shape: Shape) -> bool:
    """True when the shape's top is one horizontal face (an upright box, cylinder or plane)."""
    g = shape.geometry
    up = shape.pose[2, 2]
    if isinstance(g, Box | Cylinder):
        return bool(up > 1.0 - 1e-9)
    if isinstance(g, Plane):
        return bool(abs((shape.pose[:3, :3] @ np.asarray(g.normal))[2]) > 1.0 - 1e-9)
    return False


# --------------------------------------------------------------------------- height grid


@dataclass(frozen=True)
class HeightGrid:
    """Two-level grid of walkable tops; see the module docstring.

    Every coarse tile points at a 16 x 16 tile of `fine`: its own cells where the surface varies
    within it, or a shared constant tile where it is flat. A ring of tiles holding `default`
    surrounds the grid, so points outside clip onto it.
    """

    origin: F64  # (2,) [m] world x, y of the padded grid's corner
    cell: float  # [m] fine cell edge
    index: NDArray[np.int32]  # (ny, nx) tile -> index into `fine`
    fine: F32  # (T, TILE_CELLS, TILE_CELLS) [m]
    limit: NDArray[np.intp]  # (2,) cells per axis (x, y) minus one

    def lookup(self, xy: NDArray[np.floating]) -> F64:
        pts = np.ascontiguousarray(np.asarray(xy, dtype=np.float64).reshape(-1, 2))
        out = np.empty(len(pts))
        _heights_at(pts, self.index, self.fine, self.params, out)
        return out

    @functools.cached_property
    def params(self) -> F64:
        """(origin x, origin y, cell, last cell x, last cell y) for `height_at`."""
        return np.array(
            [self.origin[0], self.origin[1], self.cell, float(self.limit[0]), float(self.limit[1])]
        )


@numba.njit(cache=True)
def height_at(
    x: float, y: float, index: NDArray[np.int32], fine: F32, params: F64
) -> float:  # fmt: skip
    """Nearest fine cell of a `HeightGrid` (its `index`, `fine`, `params`) under (x, y) [m];
    compiled, for kernels that look the ground up themselves."""
    cx = min(max(math.floor((x - params[0]) / params[2]), 0), int(params[3]))
    cy = min(max(math.floor((y - params[1]) / params[2]), 0), int(params[4]))
    mask = TILE_CELLS - 1
    return float(fine[index[cy >> TILE_SHIFT, cx >> TILE_SHIFT], cy & mask, cx & mask])


@numba.njit(cache=True)
def _heights_at(
    xy: F64, index: NDArray[np.int32], fine: F32, params: F64, out: F64
) -> None:  # fmt: skip
    for i in range(xy.shape[0]):
        out[i] = height_at(xy[i, 0], xy[i, 1], index, fine, params)


def _footprint(shape: Shape) -> F64:
    """(M,2) world x-y outline points of a shape (polygon for boxes/planes, circle, or AABB)."""
    g = shape.geometry
    if isinstance(g, Box):
        hx, hy, hz = (s / 2 for s in g.size)
        local = np.array([[sx * hx, sy * hy, sz * hz] for sx in (-1, 1) for sy in (-1, 1)
                          for sz in (-1, 1)])  # fmt: skip
        pts = local @ shape.pose[:3, :3].T + shape.pose[:3, 3]
        if _flat_top(shape):
            quad = pts[[1, 3, 7, 5], :2]  # the four top corners, in order around the box
            return quad
        return pts[:, :2]
    if isinstance(g, Cylinder) and _flat_top(shape):
        ang = np.linspace(0.0, 2.0 * np.pi, 33)
        return shape.pose[:2, 3] + g.radius * np.stack([np.cos(ang), np.sin(ang)], axis=1)
    v, _ = _shape_mesh(shape)
    lo, hi = v[:, :2].min(axis=0), v[:, :2].max(axis=0)
    return np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])


def _build_height_grid(shapes: list[Shape], cell: float, nthreads: int) -> HeightGrid:
    walk = [s for s in shapes if _is_walkable(s)]
    if not walk:
        return HeightGrid(
            origin=np.zeros(2),
            cell=cell,
            index=np.zeros((1, 1), dtype=np.int32),
            fine=np.zeros((1, TILE_CELLS, TILE_CELLS), dtype=np.float32),
            limit=np.array([TILE_CELLS - 1, TILE_CELLS - 1], dtype=np.intp),
        )
    scene, _, verts = build_raycaster(walk)
    tile = cell * TILE_CELLS
    lo = verts[:, :2].min(axis=0)
    hi = verts[:, :2].max(axis=0)
    top = float(verts[:, 2].max()) + 1.0
    nx = max(1, math.ceil((hi[0] - lo[0]) / tile))
    ny = max(1, math.ceil((hi[1] - lo[1]) / tile))
    complex_tiles = np.zeros((ny, nx), dtype=bool)

    def mark_tiles(points: F64, pad: int) -> None:
        tx = np.floor((points[:, 0] - lo[0]) / tile).astype(np.intp)
        ty = np.floor((points[:, 1] - lo[1]) / tile).astype(np.intp)
        for dy in range(-pad, pad + 1):
            for dx in range(-pad, pad + 1):
                x, y = tx + dx, ty + dy
                ok = (x >= 0) & (y >= 0) & (x < nx) & (y < ny)
                complex_tiles[y[ok], x[ok]] = True

    for shape in walk:
        outline = _footprint(shape)
        if _flat_top(shape):
            # Sample the outline's edges at under half a tile; the 3x3 tile neighbourhood of
            # each sample covers every tile the edge passes through.
            closed = np.vstack([outline, outline[:1]])
            for a, b in itertools.pairwise(closed):
                n = max(2, math.ceil(float(np.linalg.norm(b - a)) / (tile / 2)) + 1)
                mark_tiles(np.linspace(a, b, n), 1)
        else:
            slo, shi = outline.min(axis=0), outline.max(axis=0)
            xs = np.arange(slo[0], shi[0] + tile, tile / 2)
            ys = np.arange(slo[1], shi[1] + tile, tile / 2)
            gx, gy = np.meshgrid(xs, ys)
            mark_tiles(np.stack([gx.ravel(), gy.ravel()], axis=1), 1)

    def cast_down(xy: F64) -> F32:
        rays = np.zeros((len(xy), 6), dtype=np.float32)
        rays[:, 0:2] = xy
        rays[:, 2] = top
        rays[:, 5] = -1.0
        t = scene.cast_rays(o3d.core.Tensor.from_numpy(rays), nthreads=nthreads)["t_hit"].numpy()
        h = top - t
        return np.where(np.isfinite(h), h, 0.0).astype(np.float32)

    cx = lo[0] + (np.arange(nx) + 0.5) * tile
    cy = lo[1] + (np.arange(ny) + 0.5) * tile
    gx, gy = np.meshgrid(cx, cy)
    coarse = cast_down(np.stack([gx.ravel(), gy.ravel()], axis=1)).reshape(ny, nx)
    tiles_y, tiles_x = np.nonzero(complex_tiles)
    offs = (np.arange(TILE_CELLS) + 0.5) * cell
    ox, oy = np.meshgrid(offs, offs)  # [cy, cx]
    xs = lo[0] + tiles_x[:, None, None] * tile + ox[None]
    ys = lo[1] + tiles_y[:, None, None] * tile + oy[None]
    own = cast_down(np.stack([xs.ravel(), ys.ravel()], axis=1)).reshape(-1, TILE_CELLS, TILE_CELLS)
    # Flat tiles share one constant tile per distinct height; the outer ring holds 0 m.
    levels, which = np.unique(
        np.append(coarse[~complex_tiles], np.float32(0.0)), return_inverse=True
    )
    constant = np.broadcast_to(levels[:, None, None], (len(levels), TILE_CELLS, TILE_CELLS))
    fine = np.ascontiguousarray(np.concatenate([own, constant]), dtype=np.float32)
    inner = np.empty((ny, nx), dtype=np.int32)
    inner[~complex_tiles] = len(own) + which[:-1]
    inner[tiles_y, tiles_x] = np.arange(len(tiles_y), dtype=np.int32)
    index = np.full((ny + 2, nx + 2), len(own) + which[-1], dtype=np.int32)
    index[1:-1, 1:-1] = inner
    _log.debug("height grid %dx%d tiles, %d fine", nx, ny, len(tiles_y))
    return HeightGrid(
        origin=np.array([lo[0] - tile, lo[1] - tile]),
        cell=cell,
        index=index,
        fine=fine,
        limit=np.array([(nx + 2) * TILE_CELLS - 1, (ny + 2) * TILE_CELLS - 1], dtype=np.intp),
    )


# --------------------------------------------------------------------------- the scene


@dataclass
class _Obstacle:
    center: tuple[float, float]
    yaw: float
    half: tuple[float, float]  # [m] half length, half width
    z0: float  # [m] bottom (ground height at the centre)
    z1: float  # [m] top


class Scene:
    """Ray casting over a world's static geometry plus agents and added obstacles.

    Build with `Scene.from_world`. Casting runs on the calling thread (one core).
    """

    def __init__(
        self,
        static: Primitives,
        heights: HeightGrid,
        bounds: tuple[float, float, float, float],
    ) -> None:
        self._static = static
        # [m] highest point of any static shape (bounds the sky rays).
        self._top = float(static.corners[:, :, 2].max()) if len(static) else 0.0
        self._heights = heights
        self._bounds = bounds
        self._obstacles: dict[str, _Obstacle] = {}
        # Static shapes, then agents, then obstacles.
        self._all = raycast.PrimitiveBuffer(static)
        self._agents = (np.zeros((0, 2)), np.zeros(0), np.zeros(0), np.zeros(0))
        self._sky: dict[float, RayFan] = {}
        # Concatenated layouts per sequence of fans (by identity; the fans are kept alive).
        self._batches: dict[tuple[int, ...], tuple[tuple[RayFan, ...], raycast.FanBatch]] = {}

    @classmethod
    def from_world(cls, world: World, *, height_cell: float = 0.05) -> Scene:
        """Every shape of `world` as a primitive, and the ground height grid.

        `height_cell` [m] is the fine cell of the height grid. Raises MeshError (an SdfError)
        for a mesh file that cannot be read.
        """
        shapes = list(world.shapes)
        heights = _build_height_grid(shapes, height_cell, nthreads=0)
        finite = [s for s in shapes if not isinstance(s.geometry, Plane)] or shapes
        bounds = (0.0, 0.0, 0.0, 0.0)
        if finite:
            lo = np.min([_footprint(s).min(axis=0) for s in finite], axis=0)
            hi = np.max([_footprint(s).max(axis=0) for s in finite], axis=0)
            bounds = (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
        return cls(primitives_of(shapes), heights, bounds)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) [m] of the world's finite shapes (planes left out)."""
        return self._bounds

    # -- dynamic content ------------------------------------------------------------------

    def set_agents(
        self,
        positions: NDArray[np.floating],
        radii: NDArray[np.floating],
        heights: NDArray[np.floating],
    ) -> None:
        """This step's agents: vertical cylinders standing on the ground.

        positions (K,2) [m] world x-y, radii (K,) [m], heights (K,) [m] above the ground there.
        """
        xy = np.asarray(positions, dtype=np.float64).reshape(-1, 2)
        r = np.asarray(radii, dtype=np.float64).reshape(-1)
        z0 = self.ground_height(xy) if len(xy) else np.zeros(0)
        z1 = z0 + np.asarray(heights, dtype=np.float64).reshape(-1)
        self._agents = (xy, r, z0, z1)
        self._all.set_dynamic(*self._agents, AGENT_CODE, self._obstacle_primitives())

    def add_obstacle(self, key: str, pose: Pose2D, size: tuple[float, float, float]) -> None:
        """A box (length along yaw, width, height [m]) standing on the ground at `pose`.

        Replaces an obstacle with the same key. Raises ValueError for a non-positive size.
        """
        if any(not (s > 0) for s in size):
            raise ValueError(f"obstacle '{key}': size must be positive, got {size}")
        z0 = float(self.ground_height(np.array([[pose.x, pose.y]]))[0])
        self._obstacles[key] = _Obstacle(
            (pose.x, pose.y), pose.yaw, (size[0] / 2, size[1] / 2), z0, z0 + size[2]
        )
        self._all.set_dynamic(*self._agents, AGENT_CODE, self._obstacle_primitives())

    def remove_obstacle(self, key: str) -> None:
        """Remove an added obstacle; unknown keys are ignored."""
        if self._obstacles.pop(key, None) is not None:
            self._all.set_dynamic(*self._agents, AGENT_CODE, self._obstacle_primitives())

    def _obstacle_primitives(self) -> Primitives:
        parts = [raycast.empty()]
        for ob in self._obstacles.values():
            c, s = math.cos(ob.yaw), math.sin(ob.yaw)
            axes = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
            centre = np.array([*ob.center, 0.5 * (ob.z0 + ob.z1)])
            half = np.array([*ob.half, 0.5 * (ob.z1 - ob.z0)])
            parts.append(
                raycast.oriented(raycast.BOX, centre, axes, half, np.array([OBSTACLE_CODE]))
            )
        return raycast.concat(parts)

    def _primitives(self) -> Primitives:
        """Static shapes, then agents, then obstacles."""
        return self._all.view()

    # -- casting --------------------------------------------------------------------------

    def cast(self, origins: NDArray[np.floating], directions: NDArray[np.floating]) -> F32:
        """Distance [m] along each unit direction to the first hit, inf where none.

        origins, directions: (N,3) world frame. Hits static geometry, obstacles and agents.
        """
        return self.cast_hits(origins, directions).distance

    def cast_hits(self, origins: NDArray[np.floating], directions: NDArray[np.floating]) -> Hits:
        """Like `cast`, with the surface normal and category of each hit.

        Tests every ray against every object: for a few rays; a sensor's fan is `cast_fan`.
        """
        o = np.asarray(origins, dtype=np.float64).reshape(-1, 3)
        d = np.asarray(directions, dtype=np.float64).reshape(-1, 3)
        o, d = np.broadcast_arrays(o, d)
        hits = _no_hits(len(d))
        raycast.cast_rays(self._primitives(), o, d, hits.distance, hits.normal, hits.category)
        return hits

    def cast_fan(
        self, fan: RayFan, world_from_sensor: NDArray[np.floating], max_range: float = math.inf
    ) -> Hits:
        """First hits of a sensor's ray fan; arrays are ordered as `fan.directions`.

        world_from_sensor: 4x4 pose of the sensor. Hits farther than `max_range` [m] are
        reported as misses (inf), and objects beyond it are not looked at.
        """
        return self.cast_fans([fan], [world_from_sensor], [max_range])[0]

    def cast_fans(
        self,
        fans: Sequence[RayFan],
        world_from_sensors: Sequence[NDArray[np.floating]],
        max_ranges: Sequence[float],
    ) -> list[Hits]:
        """`cast_fan` for several fans at once (one compiled call); one `Hits` per fan."""
        return self._cast_fans(self._primitives(), fans, world_from_sensors, max_ranges)

    def cast_fans_joined(
        self,
        fans: Sequence[RayFan],
        world_from_sensors: Sequence[NDArray[np.floating]],
        max_ranges: Sequence[float],
    ) -> Hits:
        """`cast_fans` with the hits of all fans in one `Hits`, fan after fan (a lidar sweep
        cast in azimuth sectors, each from its own pose; a (F, 4, 4) array is a sequence)."""
        return self._cast(self._primitives(), fans, world_from_sensors, max_ranges)[0]

    def cast_sweep(
        self,
        fan: RayFan,
        sectors: NDArray[np.integer],
        world_from_sensors: NDArray[np.floating],
        max_range: float = math.inf,
    ) -> Hits:
        """First hits of a fan cast in azimuth sectors of contiguous columns, each from its
        own pose (a spinning lidar's sweep), ordered as `fan.directions`: the hits of the
        sectors cast as fans of their own (`cast_fans_joined`), in one pass over the primitives
        (`raycast.cast_sweep`).

        sectors: (K+1,) first column of each sector, then `fan.cols`; world_from_sensors:
        (K, 4, 4).

        Raises:
            ValueError: sectors that do not rise from 0 to `fan.cols`, or not K poses.
        """
        hits = _no_hits(len(fan.directions))
        poses = np.asarray(world_from_sensors, dtype=np.float64)
        raycast.cast_sweep(
            self._primitives(), fan.layout, np.asarray(sectors), poses, max_range,
            hits.distance, hits.normal, hits.category,
        )  # fmt: skip
        return hits

    def nearest_hits(
        self,
        fans: Sequence[RayFan],
        world_from_sensors: Sequence[NDArray[np.floating]],
        max_ranges: Sequence[float],
    ) -> F32:
        """(F,) distance [m] of each fan's nearest hit (inf: none within its max range)."""
        hits = self._cast(self._primitives(), fans, world_from_sensors, max_ranges)[0]
        offsets = self._batch(fans).ray_offset[:-1]
        out: F32 = np.minimum.reduceat(hits.distance, offsets)
        return out

    def _batch(self, fans: Sequence[RayFan]) -> raycast.FanBatch:
        key = tuple(id(fan) for fan in fans)
        cached = self._batches.get(key)
        if cached is None or any(a is not b for a, b in zip(cached[0], fans, strict=True)):
            cached = (tuple(fans), raycast.FanBatch.of([fan.layout for fan in fans]))
            self._batches[key] = cached
        return cached[1]

    def _cast(
        self,
        prims: Primitives,
        fans: Sequence[RayFan],
        world_from_sensors: Sequence[NDArray[np.floating]],
        max_ranges: Sequence[float],
    ) -> tuple[Hits, raycast.FanBatch]:
        """The fans' hits, concatenated fan after fan."""
        batch = self._batch(fans)
        hits = _no_hits(batch.rays)
        raycast.cast_fans(
            prims,
            batch,
            np.asarray(world_from_sensors, dtype=np.float64).reshape(-1, 4, 4),
            np.asarray(max_ranges, dtype=np.float64).reshape(-1),
            hits.distance,
            hits.normal,
            hits.category,
        )
        return hits, batch

    def _cast_fans(
        self,
        prims: Primitives,
        fans: Sequence[RayFan],
        world_from_sensors: Sequence[NDArray[np.floating]],
        max_ranges: Sequence[float],
    ) -> list[Hits]:
        hits, batch = self._cast(prims, fans, world_from_sensors, max_ranges)
        if len(fans) == 1:
            return [hits]
        offsets = batch.ray_offset.tolist()
        return [
            Hits(hits.distance[lo:hi], hits.normal[lo:hi], hits.category[lo:hi])
            for lo, hi in itertools.pairwise(offsets)
        ]

    # -- ground and sky -------------------------------------------------------------------

    @property
    def height_grid(self) -> HeightGrid:
        """The grid `ground_height` reads (for kernels: `height_at`)."""
        return self._heights

    def ground_height(self, xy: NDArray[np.floating]) -> F64:
        """Height [m] of the walkable top (ground, kerb, ramp) under each (N,2) world point.

        Nearest fine cell of the precomputed grid; 0 where no walkable surface is below.
        """
        return self._heights.lookup(xy)

    def sky_blocked_fraction(self, xyz: NDArray[np.floating], min_elevation: float = 0.26) -> float:
        """Share of the sky above `min_elevation` [rad] hidden by static geometry from `xyz`.

        16 x 16 rays, one per cell of equal solid angle (rows evenly spaced in sin(elevation),
        Archimedes' hat-box theorem, and evenly spaced azimuths); agents and added obstacles are
        not counted (they are low and close to the ground).
        """
        fan = self._sky.get(min_elevation)
        if fan is None:
            z = (
                math.sin(min_elevation)
                + (1.0 - math.sin(min_elevation)) * (np.arange(SKY_ROWS) + 0.5) / SKY_ROWS
            )
            az = (np.arange(SKY_COLS) + 0.5) * (2.0 * math.pi / SKY_COLS) - math.pi
            fan = RayFan.grid(az, np.arcsin(z).astype(np.float64))
            self._sky[min_elevation] = fan
        pose = np.eye(4)
        pose[:3, 3] = np.asarray(xyz, dtype=np.float64).reshape(3)
        # A ray rising at min_elevation or more is above every shape beyond this distance.
        reach = (self._top - pose[2, 3]) / math.sin(min_elevation) if min_elevation > 0 else np.inf
        if reach <= 0.0:
            return 0.0
        hits = self._cast_fans(self._static, [fan], [pose], [reach + 1.0])[0]
        return float(np.isfinite(hits.distance).mean())


def _no_hits(n: int) -> Hits:
    return Hits(
        distance=np.full(n, np.inf, dtype=np.float32),
        normal=np.zeros((n, 3), dtype=np.float32),
        category=np.full(n, NO_HIT, dtype=np.int16),
    )
