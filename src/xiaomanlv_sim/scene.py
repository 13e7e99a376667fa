"""Ray casting against the simulated campus: static world, added obstacles and moving agents.

Static geometry (every `Shape` of a `World`) is triangulated once (boxes, cylinders and spheres
through Open3D's mesh factories, planes as finite quads, OBJ/STL meshes through
`open3d.io.read_triangle_mesh`) into a single Open3D `RaycastingScene`, i.e. an Embree BVH
(Wald et al., "Embree: A Kernel Framework for Efficient CPU Ray Tracing", ACM TOG 2014).

Agents (pedestrians, cyclists: vertical cylinders that move every step) and obstacles added at
run time (boxes standing on the ground) are intersected analytically instead, so the BVH is never
rebuilt: ray-cylinder (quadratic in the horizontal plane, plus the top cap) and the slab test
for oriented boxes (Kay & Kajiya, SIGGRAPH 1986). For a fan of rays from one origin (a lidar) only
the azimuth columns an object subtends are tested: the object's bounding vertical cylinder
projects to the sensor's x-y plane as a stadium, whose azimuth interval is the union of the
intervals of its two end discs, so the culling stays exact under roll and pitch.

`ground_height` reads a two-level height grid of walkable tops (categories ground, kerb, ramp,
field, ... and any plane) built once by casting rays straight down: coarse tiles of 0.8 m hold
one height where the surface is flat across the tile; tiles crossed by a footprint edge of a
walkable shape, or under a sloped one, hold 16 x 16 cells of 0.05 m.

Frames: everything is in the world frame (x east, y north, z up), metres.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import open3d as o3d
from numpy.typing import NDArray

from xiaomanlv_sim.sdf import SdfError
from xiaomanlv_sim.site import Pose2D
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

CYLINDER_RESOLUTION = 24  # facets around a cylinder
SPHERE_RESOLUTION = 12  # Open3D sphere resolution
TILE_CELLS = 16  # fine cells per coarse tile edge
TILE_SHIFT = 4  # log2(TILE_CELLS)
SMALL_FAN_PAIRS = 512  # ray/object pairs up to which a fan tests all pairs instead of culling


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
    def grid(cls, azimuths: NDArray[np.float64], elevations: NDArray[np.float64]) -> RayFan:
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
        m = o3d.io.read_triangle_mesh(g.path)
        verts, tris = np.asarray(m.vertices), np.asarray(m.triangles)
        if len(tris) == 0:
            raise SdfError(g.path, shape.name, "mesh has no triangles (or could not be read)")
        verts = verts * np.asarray(g.scale)
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
        g = np.floor((np.asarray(xy, dtype=np.float64).reshape(-1, 2) - self.origin) / self.cell)
        c = g.astype(np.intp)
        np.clip(c, 0, self.limit, out=c)
        cx, cy = c[:, 0], c[:, 1]
        h = self.fine[
            self.index[cy >> TILE_SHIFT, cx >> TILE_SHIFT],
            cy & (TILE_CELLS - 1),
            cx & (TILE_CELLS - 1),
        ]
        return h.astype(np.float64)


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


# --------------------------------------------------------------------------- dynamic objects


@dataclass
class _Obstacle:
    center: tuple[float, float]
    yaw: float
    half: tuple[float, float]  # [m] half length, half width
    z0: float  # [m] bottom (ground height at the centre)
    z1: float  # [m] top


def _wrap(a: F64) -> F64:
    return (a + np.pi) % (2.0 * np.pi) - np.pi


def _fan_cull(
    fan: RayFan, rot: F64, origin: F64, c: F64, r: F64, z0: F64, z1: F64
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int64], NDArray[np.int64]]:
    """Columns (first, count) and rows (first, count) of `fan` each vertical cylinder can hit.

    The cylinder (centre c, radius r, from z0 to z1, world frame) lies within distance r of its
    axis segment. In the sensor frame, its azimuths lie within the union of the two end discs'
    azimuth intervals (the x-y projection is the discs' convex hull), and its elevations within
    the segment's elevation range widened by asin(r / distance to the segment).
    """
    rel0 = np.column_stack([c[:, 0] - origin[0], c[:, 1] - origin[1], z0 - origin[2]])
    rel1 = rel0.copy()
    rel1[:, 2] = z1 - origin[2]
    s0, s1 = rel0 @ rot, rel1 @ rot
    rho0, rho1 = np.hypot(s0[:, 0], s0[:, 1]), np.hypot(s1[:, 0], s1[:, 1])
    az0 = np.arctan2(s0[:, 1], s0[:, 0])
    az1 = np.arctan2(s1[:, 1], s1[:, 0])
    h0 = np.arcsin(np.minimum(1.0, r / np.maximum(rho0, 1e-9)))
    h1 = np.arcsin(np.minimum(1.0, r / np.maximum(rho1, 1e-9)))
    inside = (h0 >= np.pi / 2 - 1e-9) | (h1 >= np.pi / 2 - 1e-9)
    diff = _wrap(az1 - az0)
    lo = np.minimum(-h0, diff - h1)
    hi = np.maximum(h0, diff + h1)
    step = fan.azimuth_step
    first = np.ceil((_wrap(az0 + lo - fan.azimuth0) - 1e-9) / step).astype(np.int64)
    count = np.floor((hi - lo) / step + 1e-9).astype(np.int64) + 1
    full = inside | (count >= fan.cols) | (not fan.full_circle)
    first[full] = 0
    count[full] = fan.cols
    # Elevations: tan(el) = z / rho along the axis segment, rho convex and z linear in it.
    seg = s1 - s0
    seg_xy2 = seg[:, 0] ** 2 + seg[:, 1] ** 2
    lam = np.clip(
        -(s0[:, 0] * seg[:, 0] + s0[:, 1] * seg[:, 1]) / np.maximum(seg_xy2, 1e-12), 0.0, 1.0
    )
    rho_min = np.hypot(s0[:, 0] + lam * seg[:, 0], s0[:, 1] + lam * seg[:, 1])
    rho_max = np.maximum(rho0, rho1)
    zmin = np.minimum(s0[:, 2], s1[:, 2])
    zmax = np.maximum(s0[:, 2], s1[:, 2])
    lam3 = np.clip(-np.einsum("ij,ij->i", s0, seg) / np.maximum(np.einsum("ij,ij->i", seg, seg),
                   1e-12), 0.0, 1.0)  # fmt: skip
    dist = np.linalg.norm(s0 + lam3[:, None] * seg, axis=1)
    widen = np.arcsin(np.minimum(1.0, r / np.maximum(dist, 1e-9)))
    with np.errstate(divide="ignore", invalid="ignore"):
        top = np.arctan2(zmax, np.where(zmax >= 0, rho_min, rho_max))
        bottom = np.arctan2(zmin, np.where(zmin >= 0, rho_max, rho_min))
    el_hi = top + widen + 1e-6
    el_lo = bottom - widen - 1e-6
    row0 = np.searchsorted(fan.elevations, el_lo, side="left")
    row1 = np.searchsorted(fan.elevations, el_hi, side="right")
    enclosed = widen >= np.pi / 2 - 1e-9
    row0[enclosed] = 0
    row1[enclosed] = fan.rows
    return first, count, row0.astype(np.int64), np.maximum(row1 - row0, 0).astype(np.int64)


# --------------------------------------------------------------------------- the scene


class Scene:
    """Ray casting over a world's static geometry plus agents and added obstacles.

    Build with `Scene.from_world`. `nthreads` is passed to Open3D's `cast_rays` (1 = one core,
    0 = all cores).
    """

    def __init__(
        self,
        raycaster: o3d.t.geometry.RaycastingScene,
        triangle_categories: NDArray[np.int16],
        heights: HeightGrid,
        bounds: tuple[float, float, float, float],
        nthreads: int = 1,
    ) -> None:
        self._scene = raycaster
        self._tri_cat_lookup = np.append(triangle_categories, np.int16(NO_HIT)).astype(np.int16)
        self._heights = heights
        self._bounds = bounds
        self.nthreads = nthreads
        self._agents_xy = np.zeros((0, 2))
        self._agents_r = np.zeros(0)
        self._agents_z0 = np.zeros(0)
        self._agents_z1 = np.zeros(0)
        self._obstacles: dict[str, _Obstacle] = {}
        self._sky_dirs: dict[float, F32] = {}
        # Per fan (by identity): its directions as (N,4) homogeneous rows, and a (4,6) transform.
        self._fan_buffers: dict[int, tuple[RayFan, F32, F32]] = {}

    @classmethod
    def from_world(cls, world: World, *, height_cell: float = 0.05, nthreads: int = 1) -> Scene:
        """Triangulate every shape of `world` and precompute the ground height grid.

        `height_cell` [m] is the fine cell of the height grid. Raises SdfError for a mesh file
        that has no triangles.
        """
        shapes = list(world.shapes)
        raycaster, cats, _ = build_raycaster(shapes)
        heights = _build_height_grid(shapes, height_cell, nthreads=0)
        finite = [s for s in shapes if not isinstance(s.geometry, Plane)] or shapes
        bounds = (0.0, 0.0, 0.0, 0.0)
        if finite:
            lo = np.min([_footprint(s).min(axis=0) for s in finite], axis=0)
            hi = np.max([_footprint(s).max(axis=0) for s in finite], axis=0)
            bounds = (float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1]))
        return cls(raycaster, cats, heights, bounds, nthreads)

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
        self._agents_xy = xy
        self._agents_r = np.asarray(radii, dtype=np.float64).reshape(-1)
        self._agents_z0 = self.ground_height(xy) if len(xy) else np.zeros(0)
        self._agents_z1 = self._agents_z0 + np.asarray(heights, dtype=np.float64).reshape(-1)

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

    def remove_obstacle(self, key: str) -> None:
        """Remove an added obstacle; unknown keys are ignored."""
        self._obstacles.pop(key, None)

    def _dynamic(self) -> tuple[F64, F64, F64, F64, int]:
        """Bounding vertical cylinders (centres, radii, bottoms, tops) of agents then obstacles."""
        k = len(self._agents_xy)
        if not self._obstacles:
            return self._agents_xy, self._agents_r, self._agents_z0, self._agents_z1, k
        obs = list(self._obstacles.values())
        c = np.array([o.center for o in obs])
        r = np.array([math.hypot(*o.half) for o in obs])
        z0 = np.array([o.z0 for o in obs])
        z1 = np.array([o.z1 for o in obs])
        return (
            np.concatenate([self._agents_xy, c]),
            np.concatenate([self._agents_r, r]),
            np.concatenate([self._agents_z0, z0]),
            np.concatenate([self._agents_z1, z1]),
            k,
        )

    # -- casting --------------------------------------------------------------------------

    def _cast_static(self, rays: F32) -> tuple[F32, F32, NDArray[np.int16]]:
        out = self._scene.cast_rays(o3d.core.Tensor.from_numpy(rays), nthreads=self.nthreads)
        t = out["t_hit"].numpy()
        normal = out["primitive_normals"].numpy()
        prim = out["primitive_ids"].numpy()
        # Misses carry Open3D's INVALID_ID: clip it onto the trailing NO_HIT entry.
        cat: NDArray[np.int16] = np.asarray(self._tri_cat_lookup.take(prim, mode="clip"))
        return t, normal, cat

    def cast(self, origins: NDArray[np.floating], directions: NDArray[np.floating]) -> F32:
        """Distance [m] along each unit direction to the first hit, inf where none.

        origins, directions: (N,3) world frame. Hits static geometry, obstacles and agents.
        """
        return self.cast_hits(origins, directions).distance

    def cast_hits(self, origins: NDArray[np.floating], directions: NDArray[np.floating]) -> Hits:
        """Like `cast`, with the surface normal and category of each hit."""
        o = np.asarray(origins, dtype=np.float32).reshape(-1, 3)
        d = np.asarray(directions, dtype=np.float32).reshape(-1, 3)
        o, d = np.broadcast_arrays(o, d)
        rays = np.ascontiguousarray(np.concatenate([o, d], axis=1), dtype=np.float32)
        t, normal, cat = self._cast_static(rays)
        c, _, _, _, n_agents = self._dynamic()
        if len(c):
            # Every ray against every object, in chunks that keep the pair arrays small.
            chunk = max(1, 200_000 // len(c))
            for lo in range(0, len(d), chunk):
                rays_here = np.arange(lo, min(lo + chunk, len(d)))
                ray_idx = np.repeat(rays_here, len(c))
                obj_idx = np.tile(np.arange(len(c)), len(rays_here))
                self._intersect_dynamic(
                    o[ray_idx].astype(np.float64), d[ray_idx].astype(np.float64), ray_idx,
                    obj_idx, n_agents, t, normal, cat,
                )  # fmt: skip
        return Hits(t, normal, cat)

    def cast_fan(
        self, fan: RayFan, world_from_sensor: NDArray[np.floating], max_range: float = math.inf
    ) -> Hits:
        """First hits of a sensor's ray fan; arrays are ordered as `fan.directions`.

        world_from_sensor: 4x4 pose of the sensor. Agents and obstacles farther than
        `max_range` [m] are left out; the others are tested only on the rows and columns they
        can subtend (conservative culling, see the module docstring).
        """
        return self.cast_fan_world(fan, world_from_sensor, max_range)[0]

    def cast_fan_world(
        self, fan: RayFan, world_from_sensor: NDArray[np.floating], max_range: float = math.inf
    ) -> tuple[Hits, F32]:
        """`cast_fan`, plus the (N,6) rays it cast: world-frame origin and unit direction."""
        pose = np.asarray(world_from_sensor, dtype=np.float64)
        rays = self._fan_rays(fan, pose)
        t, normal, cat = self._cast_static(rays)
        dyn = self._dynamic()
        if len(dyn[0]):
            self._fan_dynamic(fan, pose, max_range, rays, dyn, None, t, normal, cat)
        return Hits(t, normal, cat), rays

    def cast_fans(
        self,
        fans: Sequence[RayFan],
        world_from_sensors: Sequence[NDArray[np.floating]],
        max_ranges: Sequence[float],
    ) -> list[Hits]:
        """`cast_fan` for several fans at once, with one static cast for all their rays.

        Returns one `Hits` per fan, equal to what `cast_fan(fan, pose, max_range)` gives.
        The agents within `max_range` of each origin are found for all fans in one step.
        """
        poses = [np.asarray(p, dtype=np.float64) for p in world_from_sensors]
        blocks = [self._fan_rays(f, p) for f, p in zip(fans, poses, strict=True)]
        ends = np.cumsum([len(b) for b in blocks])
        t, normal, cat = self._cast_static(np.concatenate(blocks))
        out: list[Hits] = []
        dyn = self._dynamic()
        near: NDArray[np.bool_] | None = None
        if len(dyn[0]):
            origins = np.array([p[:3, 3] for p in poses])
            gap = np.hypot(
                dyn[0][None, :, 0] - origins[:, None, 0], dyn[0][None, :, 1] - origins[:, None, 1]
            )
            near = gap - dyn[1][None, :] <= np.asarray(max_ranges, dtype=np.float64)[:, None]
        any_near: NDArray[np.bool_] = np.zeros(len(fans), dtype=bool)
        if near is not None:
            any_near = np.asarray(near.any(axis=1))
        for i, (fan, pose, rays) in enumerate(zip(fans, poses, blocks, strict=True)):
            lo, hi = int(ends[i]) - len(rays), int(ends[i])
            hits = Hits(t[lo:hi], normal[lo:hi], cat[lo:hi])
            if near is not None and any_near[i]:
                self._fan_dynamic(
                    fan, pose, math.inf, rays, dyn, near[i], hits.distance, hits.normal,
                    hits.category,
                )  # fmt: skip
            out.append(hits)
        return out

    def _fan_rays(self, fan: RayFan, pose: F64) -> F32:
        """(N,6) float32 rays (world origin, world direction) of `fan` at sensor `pose` (4x4)."""
        buffers = self._fan_buffers.get(id(fan))
        if buffers is None or buffers[0] is not fan:
            n = fan.rows * fan.cols
            homogeneous = np.ones((n, 4), dtype=np.float32)
            homogeneous[:, :3] = fan.directions
            buffers = (fan, homogeneous, np.zeros((4, 6), dtype=np.float32))
            self._fan_buffers[id(fan)] = buffers
        _, homogeneous, transform = buffers
        # rays = [direction, 1] @ [[0, R^T], [origin, 0]]: origins and rotated directions in
        # one contiguous product (writing the (N,6) halves separately is strided and 6x slower).
        transform[:3, 3:] = pose[:3, :3].T
        transform[3, :3] = pose[:3, 3]
        rays: F32 = homogeneous @ transform
        return rays

    def _fan_dynamic(
        self,
        fan: RayFan,
        pose: F64,
        max_range: float,
        rays: F32,
        dyn: tuple[F64, F64, F64, F64, int],
        near: NDArray[np.bool_] | None,
        t: F32,
        normal: F32,
        cat: NDArray[np.int16],
    ) -> None:
        """Agents and obstacles on a fan's static hits (in place), culled to rows and columns.

        `near` (optional) are the objects already known to be within range of the origin.
        """
        rot = pose[:3, :3]
        origin = pose[:3, 3]
        c, r, z0, z1, n_agents = dyn
        if near is None:
            near = np.hypot(c[:, 0] - origin[0], c[:, 1] - origin[1]) - r <= max_range
        if not near.all():
            obj = np.flatnonzero(near)
            c, r, z0, z1 = c[obj], r[obj], z0[obj], z1[obj]
        else:
            obj = np.arange(len(c))
        if len(c) == 0:
            return
        n_rays = fan.rows * fan.cols
        if n_rays * len(c) <= SMALL_FAN_PAIRS:
            # A narrow fan (a ranger) with a few objects near: testing every pair is cheaper
            # than culling, and gives the same hits (the culling only drops certain misses).
            ray_idx = np.tile(np.arange(n_rays), len(c))
            obj_idx = np.repeat(obj, n_rays)
        else:
            first, count, row0, nrows = _fan_cull(fan, rot, origin, c, r, z0, z1)
            # Expand (object -> columns) then (column -> rows) into flat ray/object index pairs.
            cols_total = int(count.sum())
            obj_of_col = np.repeat(np.arange(len(c)), count)
            start = np.repeat(np.cumsum(count) - count, count)
            col = (np.repeat(first, count) + (np.arange(cols_total) - start)) % fan.cols
            per_col = nrows[obj_of_col]
            pairs = int(per_col.sum())
            if pairs == 0:
                return
            start = np.repeat(np.cumsum(per_col) - per_col, per_col)
            row = np.repeat(row0[obj_of_col], per_col) + (np.arange(pairs) - start)
            ray_idx = row * fan.cols + np.repeat(col, per_col)
            obj_idx = obj[np.repeat(obj_of_col, per_col)]
        d = rays[ray_idx, 3:].astype(np.float64)
        o = np.broadcast_to(origin, d.shape)
        self._intersect_dynamic(o, d, ray_idx, obj_idx, n_agents, t, normal, cat)

    def _intersect_dynamic(
        self,
        o: F64,
        d: F64,
        ray_idx: NDArray[np.intp],
        obj_idx: NDArray[np.intp],
        n_agents: int,
        t: F32,
        normal: F32,
        cat: NDArray[np.int16],
    ) -> None:
        """Intersect ray/object pairs; lower `t` (and set normal, category) where closer."""
        parts: list[tuple[NDArray[np.intp], F64, F64, int]] = []
        if not self._obstacles:
            tt, nn = self._hit_cylinders(o, d, obj_idx)
            parts.append((ray_idx, tt, nn, AGENT_CODE))
            is_agent = np.ones(len(obj_idx), dtype=bool)
        else:
            is_agent = obj_idx < n_agents
        if self._obstacles and is_agent.any():
            sel = np.nonzero(is_agent)[0]
            tt, nn = self._hit_cylinders(o[sel], d[sel], obj_idx[sel])
            parts.append((ray_idx[sel], tt, nn, AGENT_CODE))
        if self._obstacles and not is_agent.all():
            sel = np.nonzero(~is_agent)[0]
            tt, nn = self._hit_boxes(o[sel], d[sel], obj_idx[sel] - n_agents)
            parts.append((ray_idx[sel], tt, nn, OBSTACLE_CODE))
        for rays, tt, nn, code in parts:
            ok = np.isfinite(tt)
            if not ok.any():
                continue
            rays, t32, nn = rays[ok], tt[ok].astype(np.float32), nn[ok]
            before = t[rays]
            np.minimum.at(t, rays, t32)
            win = (t32 <= t[rays]) & (t32 < before)
            normal[rays[win]] = nn[win].astype(np.float32)
            cat[rays[win]] = code

    def _hit_cylinders(self, o: F64, d: F64, k: NDArray[np.intp]) -> tuple[F64, F64]:
        """Entry distance into vertical cylinders (side or top cap) and the normal there."""
        cx, cy = self._agents_xy[k, 0], self._agents_xy[k, 1]
        r, z0, z1 = self._agents_r[k], self._agents_z0[k], self._agents_z1[k]
        px, py = o[:, 0] - cx, o[:, 1] - cy
        a = d[:, 0] ** 2 + d[:, 1] ** 2
        b = px * d[:, 0] + py * d[:, 1]
        cc = px**2 + py**2 - r**2
        disc = b * b - a * cc
        with np.errstate(invalid="ignore", divide="ignore"):
            t_side = (-b - np.sqrt(disc)) / a
        z = o[:, 2] + t_side * d[:, 2]
        side_ok = (disc >= 0) & (a > 1e-12) & (t_side > 0) & (z >= z0) & (z <= z1)
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            t_top = (z1 - o[:, 2]) / d[:, 2]
            hx, hy = px + t_top * d[:, 0], py + t_top * d[:, 1]
            top_ok = (d[:, 2] < 0) & (o[:, 2] > z1) & (hx * hx + hy * hy <= r * r) & (t_top > 0)
        tt = np.where(side_ok, t_side, np.where(top_ok, t_top, np.inf))
        nn = np.zeros((len(tt), 3))
        nn[:, 0] = (px + t_side * d[:, 0]) / r
        nn[:, 1] = (py + t_side * d[:, 1]) / r
        nn[~side_ok] = (0.0, 0.0, 1.0)
        return tt, nn

    def _hit_boxes(self, o: F64, d: F64, k: NDArray[np.intp]) -> tuple[F64, F64]:
        """Entry distance into yawed boxes (slab test in the box frame) and the normal there."""
        obs = list(self._obstacles.values())
        params = np.array([(*ob.center, ob.yaw, *ob.half, ob.z0, ob.z1) for ob in obs])[k]
        cos, sin = np.cos(params[:, 2]), np.sin(params[:, 2])
        px, py = o[:, 0] - params[:, 0], o[:, 1] - params[:, 1]
        lo = np.column_stack([-params[:, 3], -params[:, 4], params[:, 5] - o[:, 2]])
        hi = np.column_stack([params[:, 3], params[:, 4], params[:, 6] - o[:, 2]])
        ol = np.column_stack([cos * px + sin * py, -sin * px + cos * py, np.zeros(len(px))])
        dl = np.column_stack(
            [cos * d[:, 0] + sin * d[:, 1], -sin * d[:, 0] + cos * d[:, 1], d[:, 2]]
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / dl
            t1 = (lo - ol) * inv
            t2 = (hi - ol) * inv
        tmin = np.fmin(t1, t2)
        tmax = np.fmax(t1, t2)
        t_enter = np.nanmax(tmin, axis=1)
        t_exit = np.nanmin(tmax, axis=1)
        ok = (t_enter <= t_exit) & (t_enter > 0)
        tt = np.where(ok, t_enter, np.inf)
        axis = np.nanargmax(np.where(np.isnan(tmin), -np.inf, tmin), axis=1)
        sign = -np.sign(dl[np.arange(len(dl)), axis])
        nl = np.zeros((len(tt), 3))
        nl[np.arange(len(tt)), axis] = sign
        nn = np.column_stack([cos * nl[:, 0] - sin * nl[:, 1], sin * nl[:, 0] + cos * nl[:, 1],
                              nl[:, 2]])  # fmt: skip
        return tt, nn

    # -- ground and sky -------------------------------------------------------------------

    def ground_height(self, xy: NDArray[np.floating]) -> F64:
        """Height [m] of the walkable top (ground, kerb, ramp) under each (N,2) world point.

        Nearest fine cell of the precomputed grid; 0 where no walkable surface is below.
        """
        return self._heights.lookup(xy)

    def sky_blocked_fraction(self, xyz: NDArray[np.floating], min_elevation: float = 0.26) -> float:
        """Share of the sky above `min_elevation` [rad] hidden by static geometry from `xyz`.

        Rays from a Fibonacci lattice uniform in solid angle over the cap (256 rays); agents
        and added obstacles are not counted (they are low and close to the ground).
        """
        dirs = self._sky_dirs.get(min_elevation)
        if dirs is None:
            n = 256
            i = np.arange(n) + 0.5
            z = math.sin(min_elevation) + (1.0 - math.sin(min_elevation)) * i / n
            phi = i * math.pi * (3.0 - math.sqrt(5.0))
            rho = np.sqrt(1.0 - z * z)
            dirs = np.stack([rho * np.cos(phi), rho * np.sin(phi), z], axis=1).astype(np.float32)
            self._sky_dirs[min_elevation] = dirs
        rays = np.empty((len(dirs), 6), dtype=np.float32)
        rays[:, :3] = np.asarray(xyz, dtype=np.float32).reshape(3)
        rays[:, 3:] = dirs
        t = self._scene.cast_rays(o3d.core.Tensor.from_numpy(rays), nthreads=self.nthreads)
        return float(np.isfinite(t["t_hit"].numpy()).mean())
