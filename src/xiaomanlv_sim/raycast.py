"""Compiled ray casting against analytic primitives: boxes, cylinders, spheres, quads, triangles.

The scene's static shapes, its agents and its added obstacles are all *primitives*: each has a
centre, local axes, half sizes and a convex hull of at most eight corners that contains it.
Intersections are exact (slab test for boxes, Kay & Kajiya, SIGGRAPH 1986; quadratics for
cylinders and spheres; Moeller & Trumbore, JGT 1997, for triangles) and report the *first
surface crossing* at t > 0, as a ray tracer over closed meshes does: from inside a shape, its
far side.

A sensor's rays form a fan (rows of ascending elevation x columns of evenly spaced azimuth,
`scene.RayFan`). Instead of walking every ray through a hierarchy, `cast_fans` works object by
object in the sensor frame, like a rasteriser: each primitive's hull corners bound the azimuth
columns and elevation rows it can subtend, and only those rays are tested against it. Bounds:

* azimuth: the corners' azimuths lie in an arc shorter than pi exactly when the origin is outside
  the hull's x-y projection (separating line); then that arc holds every point of the hull,
  otherwise every column is tested;
* elevation: with z in [zmin, zmax] and horizontal distance rho in [rho_min, rho_max] over the
  hull, elevation = atan2(z, rho) is largest at (zmax, rho_min) for zmax >= 0 (else rho_max)
  and smallest at (zmin, rho_min) for zmin < 0 (else rho_max). rho_min is the larger of the
  projected bounding circle's near edge and the hull's extent along the arc's middle direction.

Primitives are visited nearest first and a ray skips one whose bounding sphere starts beyond the
ray's current hit, so walls hide what is behind them at the cost of one comparison per ray. A fan
narrower than a full turn first drops the primitives whose bounding sphere misses its azimuth arc
(`_nearest_first`). A lidar sweep cast in azimuth sectors, each from its own pose (`cast_sweep`),
is one pass: one nearest-first list for every sector, and a primitive is bounded and swept once
per sector whose wedge (two vertical half-spaces through its origin) its bounding sphere
reaches. The bounds are conservative, so a fan gives the same hits as testing every ray against
every primitive (`cast_rays`, used as the reference in the tests).

Everything here is numba-compiled (`cache=True`: compiled once per machine into __pycache__).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
from numpy.typing import NDArray

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]
I16 = NDArray[np.int16]
I32 = NDArray[np.int32]
I64 = NDArray[np.int64]

BOX, CYLINDER, SPHERE, QUAD, TRIANGLE = 0, 1, 2, 3, 4
SMALL_FAN = 64  # rays up to which a fan tests every ray against each primitive in range
_TWO_PI = 2.0 * math.pi


@dataclass(frozen=True)
class Primitives:
    """A batch of primitives (world frame). Build with `box`, `cylinder`, ... and `concat`."""

    kind: NDArray[np.int32]  # (N,) BOX, CYLINDER, SPHERE, QUAD or TRIANGLE
    center: F64  # (N,3) [m] centre (triangles: centroid)
    axes: F64  # (N,3,3) columns: the primitive's local x, y, z axes in the world
    half: F64  # (N,3) [m] box half sizes; cylinder (r, r, half length); sphere (r, r, r);
    #   quad (half size along x, along y, 0), normal = local z; triangle: unused
    verts: F64  # (N,3,3) triangle vertices (rows), zeros for the other kinds
    corners: F64  # (N,8,3) [m] corners of a convex hull of the primitive
    radius: F64  # (N,) [m] bounding sphere radius about `center`
    category: NDArray[np.int16]  # (N,) hit category code

    def __len__(self) -> int:
        return len(self.kind)


def empty() -> Primitives:
    return Primitives(
        kind=np.zeros(0, dtype=np.int32),
        center=np.zeros((0, 3)),
        axes=np.zeros((0, 3, 3)),
        half=np.zeros((0, 3)),
        verts=np.zeros((0, 3, 3)),
        corners=np.zeros((0, 8, 3)),
        radius=np.zeros(0),
        category=np.zeros(0, dtype=np.int16),
    )


_SIGNS = np.array(
    [[sx, sy, sz] for sx in (-1.0, 1.0) for sy in (-1.0, 1.0) for sz in (-1.0, 1.0)]
)  # (8,3)


def oriented(
    kind: int,
    center: NDArray[np.floating],
    axes: NDArray[np.floating],
    half: NDArray[np.floating],
    category: NDArray[np.integer],
) -> Primitives:
    """Boxes, cylinders (axis = local z), spheres or quads, vectorised over a leading axis.

    center (N,3), axes (N,3,3) rotation matrices (columns = local axes), half (N,3) as in
    `Primitives.half`, category (N,).
    """
    c = np.asarray(center, dtype=np.float64).reshape(-1, 3)
    a = np.asarray(axes, dtype=np.float64).reshape(-1, 3, 3)
    h = np.asarray(half, dtype=np.float64).reshape(-1, 3)
    n = len(c)
    # Hull: the box (for a quad: its rectangle, doubled) spanned by the half sizes.
    local = _SIGNS[None, :, :] * h[:, None, :]  # (N,8,3)
    corners = c[:, None, :] + np.einsum("nij,nkj->nki", a, local)
    if kind == SPHERE:
        radius = h[:, 0].copy()
    elif kind == CYLINDER:
        radius = np.hypot(h[:, 0], h[:, 2])
    else:
        radius = np.linalg.norm(h, axis=1)
    return Primitives(
        kind=np.full(n, kind, dtype=np.int32),
        center=c,
        axes=a,
        half=h,
        verts=np.zeros((n, 3, 3)),
        corners=corners,
        radius=radius,
        category=np.asarray(category, dtype=np.int16).reshape(n),
    )


class PrimitiveBuffer:
    """Static primitives followed by dynamic ones (agents, obstacles) in preallocated arrays,
    so that moving the agents rewrites their rows instead of concatenating every step."""

    _FIELDS = ("kind", "center", "axes", "half", "verts", "corners", "radius", "category")

    def __init__(self, static: Primitives) -> None:
        self.n_static = len(static)
        self._arrays: dict[str, np.ndarray] = {}
        self._reserve(static, self.n_static + 128)
        self._n = self.n_static
        self._view: Primitives | None = None

    def _reserve(self, source: Primitives, capacity: int) -> None:
        for name in self._FIELDS:
            old = self._arrays.get(name, getattr(source, name))
            new = np.zeros((capacity, *old.shape[1:]), dtype=old.dtype)
            keep = min(len(old), capacity)
            new[:keep] = old[:keep]
            self._arrays[name] = new

    def set_dynamic(self, xy: F64, radius: F64, z0: F64, z1: F64, category: int,
                    others: Primitives) -> None:  # fmt: skip
        """Upright cylinders (agents: (K,2) centres, radii, bottoms, tops [m]) then `others`."""
        k = len(xy)
        total = self.n_static + k + len(others)
        if total > len(self._arrays["kind"]):
            self._reserve(empty(), 2 * total)
        a = self._arrays
        if k:
            _write_cylinders(
                a["kind"], a["center"], a["axes"], a["half"], a["verts"], a["corners"],
                a["radius"], a["category"], self.n_static, xy, radius, z0, z1, category,
            )  # fmt: skip
        lo = self.n_static + k
        for name in self._FIELDS:
            a[name][lo:total] = getattr(others, name)
        self._n = total
        self._view = None

    def view(self) -> Primitives:
        if self._view is None:
            n = self._n
            a = self._arrays
            self._view = Primitives(
                kind=a["kind"][:n],
                center=a["center"][:n],
                axes=a["axes"][:n],
                half=a["half"][:n],
                verts=a["verts"][:n],
                corners=a["corners"][:n],
                radius=a["radius"][:n],
                category=a["category"][:n],
            )
        return self._view


@numba.njit(cache=True)
def _write_cylinders(
    kind: I32, center: F64, axes: F64, half: F64, verts: F64, corners: F64, radius: F64,
    category: I16, at: int, xy: F64, r: F64, z0: F64, z1: F64, cat: int,
) -> None:  # fmt: skip
    """Rows at.. of a primitive buffer: upright cylinders (as `vertical_cylinders`)."""
    for i in range(xy.shape[0]):
        p = at + i
        kind[p] = CYLINDER
        hz = 0.5 * (z1[i] - z0[i])
        center[p, 0], center[p, 1], center[p, 2] = xy[i, 0], xy[i, 1], 0.5 * (z0[i] + z1[i])
        half[p, 0], half[p, 1], half[p, 2] = r[i], r[i], hz
        for u in range(3):
            for v in range(3):
                axes[p, u, v] = 1.0 if u == v else 0.0
                verts[p, u, v] = 0.0
        for m in range(8):
            corners[p, m, 0] = center[p, 0] + _SIGNS[m, 0] * r[i]
            corners[p, m, 1] = center[p, 1] + _SIGNS[m, 1] * r[i]
            corners[p, m, 2] = center[p, 2] + _SIGNS[m, 2] * hz
        radius[p] = math.sqrt(r[i] * r[i] + hz * hz)
        category[p] = cat


def triangles(vertices: NDArray[np.floating], category: NDArray[np.integer]) -> Primitives:
    """Triangles from (N,3,3) world vertices (rows); category (N,)."""
    v = np.asarray(vertices, dtype=np.float64).reshape(-1, 3, 3)
    n = len(v)
    c = v.mean(axis=1)
    corners = np.concatenate([v, v[:, [0, 1, 2, 0, 1], :]], axis=1)
    return Primitives(
        kind=np.full(n, TRIANGLE, dtype=np.int32),
        center=c,
        axes=np.broadcast_to(np.eye(3), (n, 3, 3)).copy(),
        half=np.zeros((n, 3)),
        verts=v.copy(),
        corners=corners,
        radius=np.linalg.norm(v - c[:, None, :], axis=2).max(axis=1) if n else np.zeros(0),
        category=np.asarray(category, dtype=np.int16).reshape(n),
    )


def concat(parts: list[Primitives]) -> Primitives:
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty()
    return Primitives(
        kind=np.concatenate([p.kind for p in parts]),
        center=np.concatenate([p.center for p in parts]),
        axes=np.concatenate([p.axes for p in parts]),
        half=np.concatenate([p.half for p in parts]),
        verts=np.concatenate([p.verts for p in parts]),
        corners=np.concatenate([p.corners for p in parts]),
        radius=np.concatenate([p.radius for p in parts]),
        category=np.concatenate([p.category for p in parts]),
    )


# --------------------------------------------------------------------------- kernels


@numba.njit(cache=True)
def _to_frame(
    rot: F64,
    origin: F64,
    kind: int,
    center: F64,
    axes: F64,
    verts: F64,
    p: int,
    c_out: F64,
    a_out: F64,
    o_out: F64,
    v_out: F64,
) -> None:
    """Primitive `p` into the frame (rot, origin): c = R^T (c - o), axes = R^T axes, verts
    too; o_out: that frame's origin in the primitive's own frame. (Indexed, not views: a view
    per primitive costs as much as the transform.)"""
    for i in range(3):
        s = 0.0
        for k in range(3):
            s += rot[k, i] * (center[p, k] - origin[k])
        c_out[i] = s
        for j in range(3):
            s = 0.0
            for k in range(3):
                s += rot[k, i] * axes[p, k, j]
            a_out[i, j] = s
    for j in range(3):
        o_out[j] = -(a_out[0, j] * c_out[0] + a_out[1, j] * c_out[1] + a_out[2, j] * c_out[2])
    if kind == TRIANGLE:
        for m in range(3):
            for i in range(3):
                s = 0.0
                for k in range(3):
                    s += rot[k, i] * (verts[p, m, k] - origin[k])
                v_out[m, i] = s


@numba.njit(cache=True)
def _wrap(x: float) -> float:
    """Angle into [-pi, pi)."""
    return (x + math.pi) % _TWO_PI - math.pi


@numba.njit(cache=True)
def _fan(
    rots: F64,
    origins: F64,
    sectors: I64,
    max_range: float,
    dirs: F64,
    elevations: F64,
    az0: float,
    step: float,
    cols: int,
    full: bool,
    kind: I32,
    center: F64,
    axes: F64,
    half: F64,
    verts: F64,
    corners: F64,
    radius: F64,
    category: I16,
    order: I64,
    nearest: F64,
    t_out: F32,
    n_out: F32,
    cat_out: I16,
) -> None:
    """Cast one fan (rows x cols rays `dirs`, sensor frame) into t_out/n_out/cat_out, in K
    azimuth sectors of contiguous columns (`sectors`: (K+1,) the first column of each, then
    `cols`), sector s from the pose (rots[s], origins[s]); one sector: a fan from one pose.

    Lowers t_out where a primitive is nearer; n_out gets the world-frame normal. `order`: the
    primitives to visit, nearest first; `nearest`: a lower bound [m] on the distance from
    every origin to each one's bounding sphere. Hits beyond `max_range` are left out.

    A primitive is bounded and swept once per sector whose wedge it can reach: a sector
    narrower than pi is the intersection of two vertical half-spaces through its origin, and
    a bounding sphere wholly outside either cannot meet its rays (two dot products).
    """
    rows = elevations.shape[0]
    n_sec = rots.shape[0]
    c_s = np.empty(3)
    a_s = np.empty((3, 3))
    o_s = np.empty(3)
    v_s = np.zeros((3, 3))
    sx = np.empty(8)
    sy = np.empty(8)
    # Each sector's wedge: world normals of the half-spaces beyond its first and last column.
    wedge = np.zeros((n_sec, 2, 3))
    narrow = np.zeros(n_sec, dtype=np.bool_)
    for s in range(n_sec):
        a_first = az0 + sectors[s] * step
        a_last = az0 + (sectors[s + 1] - 1) * step
        narrow[s] = step > 0.0 and a_last - a_first < math.pi - 1e-6
        n1x, n1y = -math.sin(a_first), math.cos(a_first)  # counter-clockwise of the first
        n2x, n2y = math.sin(a_last), -math.cos(a_last)  # clockwise of the last
        for j in range(3):
            wedge[s, 0, j] = rots[s, j, 0] * n1x + rots[s, j, 1] * n1y
            wedge[s, 1, j] = rots[s, j, 0] * n2x + rots[s, j, 1] * n2y
    # The current sector's pose, copied in (views of rots[s] made per primitive cost more than
    # the bounds of a sky fan's shapes).
    rot = np.empty((3, 3))
    origin = np.empty(3)
    loaded = -1
    for i in range(order.shape[0]):
        p = order[i]
        near = nearest[i]
        k = kind[p]
        reach = -(radius[p] * (1.0 + 1e-9) + 1e-9)
        for s in range(n_sec):
            if s != loaded:
                for u in range(3):
                    origin[u] = origins[s, u]
                    for v in range(3):
                        rot[u, v] = rots[s, u, v]
                loaded = s
            lo, hi = sectors[s], sectors[s + 1]
            if narrow[s]:
                qx = center[p, 0] - origin[0]
                qy = center[p, 1] - origin[1]
                qz = center[p, 2] - origin[2]
                if (wedge[s, 0, 0] * qx + wedge[s, 0, 1] * qy + wedge[s, 0, 2] * qz < reach
                        or wedge[s, 1, 0] * qx + wedge[s, 1, 1] * qy + wedge[s, 1, 2] * qz
                        < reach):  # fmt: skip
                    continue
            _to_frame(rot, origin, k, center, axes, verts, p, c_s, a_s, o_s, v_s)
            if rows * (hi - lo) <= SMALL_FAN:  # bounding costs more than testing every ray
                _sweep(k, dirs, t_out, n_out, cat_out, 0, rows, lo, hi - lo, cols, near,
                       max_range, category[p], a_s, o_s, c_s, v_s, half, axes, p,
                       rot)  # fmt: skip
                continue
            if near > 0.0:
                # Quick reject: the bounding sphere's elevations (its centre's, widened by its
                # angular radius) miss the fan's rows altogether (the sky fan, most of the time).
                c_dist = near + radius[p]
                el_c = math.atan2(c_s[2], math.hypot(c_s[0], c_s[1]))
                widen = math.asin(min(1.0, radius[p] / c_dist)) + 1e-6
                if el_c + widen < elevations[0] or el_c - widen > elevations[rows - 1]:
                    continue
            # Hull corners in the sensor frame: x-y, and the z range.
            zmin, zmax = np.inf, -np.inf
            mx, my = 0.0, 0.0
            for m in range(8):
                qx = corners[p, m, 0] - origin[0]
                qy = corners[p, m, 1] - origin[1]
                qz = corners[p, m, 2] - origin[2]
                x = rot[0, 0] * qx + rot[1, 0] * qy + rot[2, 0] * qz
                y = rot[0, 1] * qx + rot[1, 1] * qy + rot[2, 1] * qz
                z = rot[0, 2] * qx + rot[1, 2] * qy + rot[2, 2] * qz
                sx[m], sy[m] = x, y
                mx += x
                my += y
                zmin = min(zmin, z)
                zmax = max(zmax, z)
            mx /= 8.0
            my /= 8.0
            rho_c = math.hypot(mx, my)
            rxy2 = 0.0
            for m in range(8):
                rxy2 = max(rxy2, (sx[m] - mx) ** 2 + (sy[m] - my) ** 2)
            rxy = math.sqrt(rxy2)
            rho_max = rho_c + rxy
            rho_min = max(0.0, rho_c - rxy)
            # Azimuth arc of the corners, relative to the centroid's azimuth. When every corner
            # is less than pi/2 off the centroid's direction u, a corner's angle off u is
            # atan(cross / dot), increasing in cross / dot: two atan calls instead of eight
            # atan2 (the bounds are the same angles; transcendental calls are most of a
            # bound's cost).
            all_cols = True
            az_lo, az_hi = 0.0, 0.0
            if rho_c > 1e-9:
                azc = math.atan2(my, mx)
                ux, uy = mx / rho_c, my / rho_c
                t_lo, t_hi = np.inf, -np.inf
                ahead = True
                for m in range(8):
                    dot = ux * sx[m] + uy * sy[m]
                    if dot <= 1e-9 * rho_c:
                        ahead = False
                        break
                    tan = (ux * sy[m] - uy * sx[m]) / dot
                    t_lo = min(t_lo, tan)
                    t_hi = max(t_hi, tan)
                if ahead:
                    a_lo, a_hi = math.atan(t_lo), math.atan(t_hi)
                else:
                    a_lo, a_hi = np.inf, -np.inf
                    for m in range(8):
                        d = _wrap(math.atan2(sy[m], sx[m]) - azc)
                        a_lo = min(a_lo, d)
                        a_hi = max(a_hi, d)
                if a_hi - a_lo < math.pi - 1e-6:  # the origin is outside the hull's projection
                    all_cols = False
                    az_lo, az_hi = azc + a_lo, azc + a_hi
                    # Every hull point lies beyond the line through the arc's nearest extent.
                    mid = azc + 0.5 * (a_lo + a_hi)
                    ux, uy = math.cos(mid), math.sin(mid)
                    along = np.inf
                    for m in range(8):
                        along = min(along, ux * sx[m] + uy * sy[m])
                    rho_min = max(rho_min, along)
            # Rows (elevations ascending) the hull can reach.
            el_hi = math.atan2(zmax, rho_min) if zmax >= 0.0 else math.atan2(zmax, rho_max)
            el_lo = math.atan2(zmin, rho_min) if zmin < 0.0 else math.atan2(zmin, rho_max)
            el_hi += 1e-6
            el_lo -= 1e-6
            r0 = 0
            while r0 < rows and elevations[r0] < el_lo:
                r0 += 1
            r1 = r0
            while r1 < rows and elevations[r1] <= el_hi:
                r1 += 1
            if r0 >= r1:
                continue
            # Columns: one block, or for a partial fan the arc's two turns around az0 (an arc
            # that starts just before az0 reaches the fan's first columns through -2 pi); each
            # block clipped to the sector's columns lo..hi.
            cat = category[p]
            if all_cols or step <= 0.0:
                _sweep(k, dirs, t_out, n_out, cat_out, r0, r1, lo, hi - lo, cols, near,
                       max_range, cat, a_s, o_s, c_s, v_s, half, axes, p, rot)  # fmt: skip
                continue
            rel = (az_lo - az0) % _TWO_PI
            width = az_hi - az_lo
            if full:
                first = math.ceil(rel / step - 1e-9)
                count = math.floor((rel + width) / step + 1e-9) - first + 1
                if count > cols:
                    first, count = 0, cols
                first = first % cols
                # [first, first + count) may run past the last column into the first ones.
                b0, b1 = max(first, lo), min(first + count, hi)
                if b1 > b0:
                    _sweep(k, dirs, t_out, n_out, cat_out, r0, r1, b0, b1 - b0, cols, near,
                           max_range, cat, a_s, o_s, c_s, v_s, half, axes, p, rot)  # fmt: skip
                b0, b1 = lo, min(first + count - cols, hi)
                if b1 > b0:
                    _sweep(k, dirs, t_out, n_out, cat_out, r0, r1, b0, b1 - b0, cols, near,
                           max_range, cat, a_s, o_s, c_s, v_s, half, axes, p, rot)  # fmt: skip
                continue
            for turn in (rel, rel - _TWO_PI):
                first = max(math.ceil(turn / step - 1e-9), lo)
                last = min(math.floor((turn + width) / step + 1e-9), hi - 1)
                if last >= first:
                    _sweep(k, dirs, t_out, n_out, cat_out, r0, r1, first, last - first + 1,
                           cols, near, max_range, cat, a_s, o_s, c_s, v_s, half, axes, p,
                           rot)  # fmt: skip


@numba.njit(cache=True)
def _sweep(
    k: int,
    dirs: F64,
    t_out: F32,
    n_out: F32,
    cat_out: I16,
    r0: int,
    r1: int,
    first: int,
    count: int,
    cols: int,
    near: float,
    tfar: float,
    cat: int,
    a: F64,
    ol: F64,
    c: F64,
    v: F64,
    half: F64,
    axes: F64,
    p: int,
    rot: F64,
) -> None:
    """Rays of rows r0..r1, `count` columns from `first` (wrapping), against one primitive of
    kind `k` in the sensor frame: a (3,3) its axes, ol the origin in its frame, c its centre,
    v a triangle's vertices; ``half[p]`` its half sizes; its world axes ``axes[p]`` and rot the
    sensor's rotation give the normals in the world frame.

    Every per-primitive quantity is a local scalar before the loop: numba reloads array
    elements on every iteration, which costs ~10x on these short tests. The branch on `k`
    inside the loop always goes the same way.
    """
    inf = np.inf
    a00, a01, a02 = a[0, 0], a[0, 1], a[0, 2]
    a10, a11, a12 = a[1, 0], a[1, 1], a[1, 2]
    a20, a21, a22 = a[2, 0], a[2, 1], a[2, 2]
    ox, oy, oz = ol[0], ol[1], ol[2]
    h0, h1, h2 = half[p, 0], half[p, 1], half[p, 2]
    cx, cy, cz = c[0], c[1], c[2]
    # Normals: local -> world through the world axes w (box, cylinder, quad), sensor -> world
    # through rot (sphere, triangle).
    if k in (SPHERE, TRIANGLE):
        w00, w01, w02 = rot[0, 0], rot[0, 1], rot[0, 2]
        w10, w11, w12 = rot[1, 0], rot[1, 1], rot[1, 2]
        w20, w21, w22 = rot[2, 0], rot[2, 1], rot[2, 2]
    else:
        w00, w01, w02 = axes[p, 0, 0], axes[p, 0, 1], axes[p, 0, 2]
        w10, w11, w12 = axes[p, 1, 0], axes[p, 1, 1], axes[p, 1, 2]
        w20, w21, w22 = axes[p, 2, 0], axes[p, 2, 1], axes[p, 2, 2]
    r2 = h0 * h0
    qc = ox * ox + oy * oy - r2  # cylinder
    cc = cx * cx + cy * cy + cz * cz - r2  # sphere
    # Triangle (Moeller-Trumbore with the ray origin at 0).
    e1x, e1y, e1z = v[1, 0] - v[0, 0], v[1, 1] - v[0, 1], v[1, 2] - v[0, 2]
    e2x, e2y, e2z = v[2, 0] - v[0, 0], v[2, 1] - v[0, 1], v[2, 2] - v[0, 2]
    sx, sy, sz = -v[0, 0], -v[0, 1], -v[0, 2]
    qx, qy, qz = sy * e1z - sz * e1y, sz * e1x - sx * e1z, sx * e1y - sy * e1x
    tq = e2x * qx + e2y * qy + e2z * qz
    tnx, tny, tnz = e1y * e2z - e1z * e2y, e1z * e2x - e1x * e2z, e1x * e2y - e1y * e2x
    tn = math.sqrt(tnx * tnx + tny * tny + tnz * tnz)
    if k == TRIANGLE:
        if tn == 0.0:
            return
        tnx, tny, tnz = tnx / tn, tny / tn, tnz / tn
    for row in range(r0, r1):
        base = row * cols
        for j in range(count):
            col = first + j
            if col >= cols:
                col -= cols
            ray = base + col
            best = t_out[ray]
            if best <= near:
                continue
            dx, dy, dz = dirs[ray, 0], dirs[ray, 1], dirs[ray, 2]
            t = inf
            nx, ny, nz = 0.0, 0.0, 0.0  # in the frame `w` maps to the world
            if k == SPHERE:
                b = dx * cx + dy * cy + dz * cz
                disc = b * b - cc
                if disc >= 0.0:
                    sq = math.sqrt(disc)
                    t = b - sq if b - sq > 0.0 else (b + sq if b + sq > 0.0 else inf)
                    nx, ny, nz = (t * dx - cx) / h0, (t * dy - cy) / h0, (t * dz - cz) / h0
            elif k == TRIANGLE:
                px, py, pz = dy * e2z - dz * e2y, dz * e2x - dx * e2z, dx * e2y - dy * e2x
                det = e1x * px + e1y * py + e1z * pz
                if abs(det) >= 1e-14:
                    inv = 1.0 / det
                    u = (sx * px + sy * py + sz * pz) * inv
                    wv = (dx * qx + dy * qy + dz * qz) * inv
                    if u >= 0.0 and wv >= 0.0 and u + wv <= 1.0 and tq * inv > 0.0:
                        t = tq * inv
                        nx, ny, nz = tnx, tny, tnz
            elif k == QUAD:
                lz = a02 * dx + a12 * dy + a22 * dz
                tt = -oz / lz if abs(lz) >= 1e-14 else inf
                if 0.0 < tt < best:
                    lx = a00 * dx + a10 * dy + a20 * dz
                    ly = a01 * dx + a11 * dy + a21 * dz
                    if abs(ox + tt * lx) <= h0 and abs(oy + tt * ly) <= h1:
                        t = tt
                        nz = 1.0
            else:
                lx = a00 * dx + a10 * dy + a20 * dz
                ly = a01 * dx + a11 * dy + a21 * dz
                lz = a02 * dx + a12 * dy + a22 * dz
                if k == BOX:
                    t, axis = _slab(ox, oy, oz, lx, ly, lz, h0, h1, h2)
                    if axis == 0:
                        nx = 1.0
                    elif axis == 1:
                        ny = 1.0
                    else:
                        nz = 1.0
                else:  # CYLINDER about local z, radius h0, half length h2
                    qa = lx * lx + ly * ly
                    if qa > 1e-14:
                        qb = ox * lx + oy * ly
                        disc = qb * qb - qa * qc
                        if disc >= 0.0:
                            sq = math.sqrt(disc)
                            tt = (-qb - sq) / qa
                            if tt <= 0.0 or abs(oz + tt * lz) > h2:
                                tt = (-qb + sq) / qa
                                if tt <= 0.0 or abs(oz + tt * lz) > h2:
                                    tt = inf
                            if tt < t:
                                t = tt
                                nx, ny = (ox + t * lx) / h0, (oy + t * ly) / h0
                    if abs(lz) > 1e-14:
                        for zc in (h2, -h2):
                            tt = (zc - oz) / lz
                            if 0.0 < tt < t:
                                px, py = ox + tt * lx, oy + tt * ly
                                if px * px + py * py <= r2:
                                    t = tt
                                    nx, ny, nz = 0.0, 0.0, 1.0
            if t >= best or t > tfar:
                continue
            t_out[ray] = t
            n_out[ray, 0] = w00 * nx + w01 * ny + w02 * nz
            n_out[ray, 1] = w10 * nx + w11 * ny + w12 * nz
            n_out[ray, 2] = w20 * nx + w21 * ny + w22 * nz
            cat_out[ray] = cat


@numba.njit(cache=True)
def _slab(
    ox: float, oy: float, oz: float, lx: float, ly: float, lz: float, h0: float, h1: float,
    h2: float,
) -> tuple[float, int]:  # fmt: skip
    """First crossing (t, axis of the face) of the ray o + t l with the box |x_i| <= h_i; (inf,
    0) for a miss (Kay & Kajiya's slabs)."""
    inf = np.inf
    t0, t1, ax0, ax1 = -inf, inf, 0, 0
    for i in range(3):
        o_i = ox if i == 0 else (oy if i == 1 else oz)
        d_i = lx if i == 0 else (ly if i == 1 else lz)
        h_i = h0 if i == 0 else (h1 if i == 1 else h2)
        if abs(d_i) < 1e-14:
            if abs(o_i) > h_i:
                return inf, 0
            continue
        ta, tb = (-h_i - o_i) / d_i, (h_i - o_i) / d_i
        if ta > tb:
            ta, tb = tb, ta
        if ta > t0:
            t0, ax0 = ta, i
        if tb < t1:
            t1, ax1 = tb, i
    if t0 > t1:
        return inf, 0
    if t0 > 0.0:
        return t0, ax0
    if t1 > 0.0:
        return t1, ax1
    return inf, 0


@numba.njit(cache=True)
def _nearest_first(
    origin: F64,
    rot: F64,
    center: F64,
    radius: F64,
    max_range: float,
    candidates: I64,
    az0: float,
    arc: float,
) -> tuple[I64, F64]:
    """Of `candidates`, the primitives whose bounding sphere starts within `max_range` and
    meets the fan's azimuth arc, nearest first, and where each starts [m] (negative: the
    origin is inside it).

    The arc runs from `az0` over `arc` [rad] about the sensor's z axis (`rot`: world <- sensor);
    `arc` >= 2 pi keeps every azimuth. A sphere of radius r whose centre lies at horizontal
    distance rho > r from the sensor's z axis meets the vertical half-plane of azimuth phi only
    when phi is within asin(r / rho) of the centre's azimuth, so a fan cast in azimuth sectors
    (the lidar's sweep) visits only the primitives of its own sector."""
    n = candidates.shape[0]
    near = np.empty(n)
    keep = np.empty(n, dtype=np.int64)
    partial = arc < _TWO_PI
    mid = az0 + 0.5 * arc
    m = 0
    for i in range(n):
        p = candidates[i]
        qx = center[p, 0] - origin[0]
        qy = center[p, 1] - origin[1]
        qz = center[p, 2] - origin[2]
        d = math.sqrt(qx * qx + qy * qy + qz * qz) - radius[p]
        if d > max_range:
            continue
        if partial:
            x = rot[0, 0] * qx + rot[1, 0] * qy + rot[2, 0] * qz
            y = rot[0, 1] * qx + rot[1, 1] * qy + rot[2, 1] * qz
            rho = math.sqrt(x * x + y * y)
            if rho > radius[p] * (1.0 + 1e-9) + 1e-9:
                half = math.asin(min(1.0, radius[p] / rho)) + 1e-6
                if abs(_wrap(math.atan2(y, x) - mid)) > 0.5 * arc + half:
                    continue
        near[m] = d
        keep[m] = p
        m += 1
    order = np.argsort(near[:m])
    return keep[order], near[order]


@numba.njit(cache=True)
def _within(origins: F64, max_ranges: F64, center: F64, radius: F64) -> I64:
    """Primitives within reach of any of the origins: one pass, squared distances, about the
    origins' own bounding sphere (a robot's eight rangers share one pass)."""
    f = origins.shape[0]
    cx, cy, cz = 0.0, 0.0, 0.0
    for i in range(f):
        cx += origins[i, 0] / f
        cy += origins[i, 1] / f
        cz += origins[i, 2] / f
    spread = 0.0
    reach = 0.0
    for i in range(f):
        spread = max(
            spread,
            math.sqrt((origins[i, 0] - cx) ** 2 + (origins[i, 1] - cy) ** 2
                      + (origins[i, 2] - cz) ** 2),
        )  # fmt: skip
        reach = max(reach, max_ranges[i])
    reach += spread
    n = center.shape[0]
    keep = np.empty(n, dtype=np.int64)
    m = 0
    for p in range(n):
        d2 = (center[p, 0] - cx) ** 2 + (center[p, 1] - cy) ** 2 + (center[p, 2] - cz) ** 2
        lim = reach + radius[p]
        if d2 <= lim * lim:
            keep[m] = p
            m += 1
    return keep[:m]


@numba.njit(cache=True)
def _cast_fans(
    rots: F64,
    origins: F64,
    max_ranges: F64,
    ray_offset: I64,
    el_offset: I64,
    dirs: F64,
    elevations: F64,
    az0: F64,
    step: F64,
    cols: I64,
    full: NDArray[np.bool_],
    kind: I32,
    center: F64,
    axes: F64,
    half: F64,
    verts: F64,
    corners: F64,
    radius: F64,
    category: I16,
    t_out: F32,
    n_out: F32,
    cat_out: I16,
) -> None:
    if np.isfinite(max_ranges).all():
        candidates = _within(origins, max_ranges, center, radius)
    else:
        candidates = np.arange(center.shape[0])
    one = np.zeros(2, dtype=np.int64)  # a fan as one sector: columns 0..cols
    for f in range(rots.shape[0]):
        r0, r1 = ray_offset[f], ray_offset[f + 1]
        # The arc the fan's columns span (a full circle: every azimuth).
        arc = _TWO_PI if full[f] or step[f] <= 0.0 else (cols[f] - 1) * step[f]
        order, near = _nearest_first(
            origins[f], rots[f], center, radius, max_ranges[f], candidates, az0[f], arc
        )
        one[1] = cols[f]
        _fan(
            rots[f : f + 1], origins[f : f + 1], one, max_ranges[f], dirs[r0:r1],
            elevations[el_offset[f]:el_offset[f + 1]], az0[f], step[f], cols[f], full[f],
            kind, center, axes, half, verts, corners, radius, category, order, near,
            t_out[r0:r1], n_out[r0:r1], cat_out[r0:r1],
        )  # fmt: skip


@numba.njit(cache=True)
def _cast_sweep(
    rots: F64,
    origins: F64,
    max_range: float,
    sectors: I64,
    dirs: F64,
    elevations: F64,
    az0: float,
    step: float,
    cols: int,
    full: bool,
    kind: I32,
    center: F64,
    axes: F64,
    half: F64,
    verts: F64,
    corners: F64,
    radius: F64,
    category: I16,
    t_out: F32,
    n_out: F32,
    cat_out: I16,
) -> None:
    """One fan cast in K azimuth sectors of contiguous columns (``sectors``: (K+1,) first
    column of each, then ``cols``), sector s from the pose (rots[s], origins[s]).

    One nearest-first list serves every sector: it is sorted from the middle sector's origin
    and each start is lowered by how far the other origins are from it (`spread`), so it
    stays a lower bound from every origin. A primitive is then bounded and swept once per
    sector whose wedge it can reach: a sector narrower than pi is the intersection of two
    vertical half-spaces through its origin, and a bounding sphere wholly outside either
    cannot meet its rays (two dot products, instead of a culling pass per sector).
    """
    n_sec = rots.shape[0]
    mid = n_sec // 2
    spread = 0.0
    for s in range(n_sec):
        spread = max(spread, math.sqrt((origins[s, 0] - origins[mid, 0]) ** 2
                                       + (origins[s, 1] - origins[mid, 1]) ** 2
                                       + (origins[s, 2] - origins[mid, 2]) ** 2))  # fmt: skip
    if math.isfinite(max_range):
        candidates = _within(origins, np.full(n_sec, max_range), center, radius)
    else:
        candidates = np.arange(center.shape[0])
    order, near = _nearest_first(
        origins[mid], rots[mid], center, radius, max_range + spread, candidates, 0.0, _TWO_PI
    )
    _fan(rots, origins, sectors, max_range, dirs, elevations, az0, step, cols, full, kind,
         center, axes, half, verts, corners, radius, category, order, near - spread, t_out,
         n_out, cat_out)  # fmt: skip


@numba.njit(cache=True)
def _cast_rays(
    origins: F64,
    dirs: F64,
    kind: I32,
    center: F64,
    axes: F64,
    half: F64,
    verts: F64,
    radius: F64,
    category: I16,
    t_out: F32,
    n_out: F32,
    cat_out: I16,
) -> None:
    """Every ray against every primitive (bounding-sphere test first)."""
    eye = np.eye(3)
    c_s = np.empty(3)
    a_s = np.empty((3, 3))
    o_s = np.empty(3)
    v_s = np.zeros((3, 3))
    for ray in range(origins.shape[0]):
        o = origins[ray]
        dx, dy, dz = dirs[ray, 0], dirs[ray, 1], dirs[ray, 2]
        for p in range(kind.shape[0]):
            qx, qy, qz = center[p, 0] - o[0], center[p, 1] - o[1], center[p, 2] - o[2]
            along = qx * dx + qy * dy + qz * dz
            q2 = qx * qx + qy * qy + qz * qz
            r2 = radius[p] * radius[p]
            if q2 - along * along > r2 * (1.0 + 1e-9) + 1e-12:
                continue
            if along < 0.0 and q2 > r2:
                continue
            # The ray as a fan of one, in a frame at its origin with the world's axes.
            _to_frame(eye, o, kind[p], center, axes, verts, p, c_s, a_s, o_s, v_s)
            _sweep(kind[p], dirs[ray : ray + 1], t_out[ray : ray + 1], n_out[ray : ray + 1],
                   cat_out[ray : ray + 1], 0, 1, 0, 1, 1, -np.inf, np.inf, category[p], a_s,
                   o_s, c_s, v_s, half, axes, p, eye)  # fmt: skip


# --------------------------------------------------------------------------- entry points


@dataclass(frozen=True)
class FanLayout:
    """What `cast_fans` needs of a fan (see `scene.RayFan`)."""

    directions: F64  # (rows*cols,3) unit, sensor frame, row-major
    elevations: F64  # (rows,) ascending [rad]
    cols: int
    azimuth0: float  # [rad]
    azimuth_step: float  # [rad]
    full_circle: bool


@dataclass(frozen=True)
class FanBatch:
    """Fans cast together: their layouts concatenated once (build with `FanBatch.of`)."""

    rays: int  # total rays
    ray_offset: I64  # (F+1,) first ray of each fan
    el_offset: I64  # (F+1,)
    directions: F64  # (rays,3)
    elevations: F64
    azimuth0: F64  # (F,)
    azimuth_step: F64
    cols: I64
    full_circle: NDArray[np.bool_]

    @classmethod
    def of(cls, fans: list[FanLayout]) -> FanBatch:
        sizes = [len(f.directions) for f in fans]
        return cls(
            rays=sum(sizes),
            ray_offset=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            el_offset=np.concatenate([[0], np.cumsum([len(f.elevations) for f in fans])]).astype(
                np.int64
            ),
            directions=np.ascontiguousarray(np.concatenate([f.directions for f in fans])),
            elevations=np.ascontiguousarray(np.concatenate([f.elevations for f in fans])),
            azimuth0=np.array([f.azimuth0 for f in fans], dtype=np.float64),
            azimuth_step=np.array([f.azimuth_step for f in fans], dtype=np.float64),
            cols=np.array([f.cols for f in fans], dtype=np.int64),
            full_circle=np.array([f.full_circle for f in fans], dtype=np.bool_),
        )


def cast_fans(
    prims: Primitives,
    batch: FanBatch,
    poses: F64,
    max_ranges: F64,
    t: NDArray[np.float32],
    normal: NDArray[np.float32],
    category: NDArray[np.int16],
) -> None:
    """Lower `t` (the batch's rays, fan after fan) where a primitive is hit nearer, in place.

    poses (F,4,4): each fan's world-from-sensor; hits beyond a fan's `max_ranges` [m] are left
    out. `normal` gets world-frame normals, `category` the primitive's code, where `t` was
    lowered.
    """
    if not len(prims) or not len(batch.cols):
        return
    _cast_fans(
        np.ascontiguousarray(poses[:, :3, :3]),
        np.ascontiguousarray(poses[:, :3, 3]),
        max_ranges,
        batch.ray_offset,
        batch.el_offset,
        batch.directions,
        batch.elevations,
        batch.azimuth0,
        batch.azimuth_step,
        batch.cols,
        batch.full_circle,
        prims.kind,
        prims.center,
        prims.axes,
        prims.half,
        prims.verts,
        prims.corners,
        prims.radius,
        prims.category,
        t,
        normal,
        category,
    )


def cast_sweep(
    prims: Primitives,
    fan: FanLayout,
    sectors: I64,
    poses: F64,
    max_range: float,
    t: NDArray[np.float32],
    normal: NDArray[np.float32],
    category: NDArray[np.int16],
) -> None:
    """Lower `t` (the fan's rays, in its order) where a primitive is hit nearer, in place, with
    the fan cast in azimuth sectors: `sectors` (K+1,) the first column of each sector then
    `fan.cols`, poses (K,4,4) each sector's world-from-sensor (a spinning lidar's sweep).

    Gives what `cast_fans` gives for the K sectors as fans of their own, in one pass over the
    primitives (`_cast_sweep`). Hits beyond `max_range` [m] are left out.

    Raises:
        ValueError: `sectors` not increasing from 0 to `fan.cols`, or not one pose per sector.
    """
    bounds = np.asarray(sectors, dtype=np.int64)
    if (
        bounds.ndim != 1
        or len(bounds) < 2
        or bounds[0] != 0
        or bounds[-1] != fan.cols
        or np.any(np.diff(bounds) <= 0)
    ):
        raise ValueError(
            f"cast_sweep: sectors {bounds.tolist()} must rise from 0 to the fan's {fan.cols} "
            "columns"
        )
    if poses.shape != (len(bounds) - 1, 4, 4):
        raise ValueError(
            f"cast_sweep: poses of shape {poses.shape}; expected ({len(bounds) - 1}, 4, 4), one "
            "per sector"
        )
    if not len(prims):
        return
    _cast_sweep(
        np.ascontiguousarray(poses[:, :3, :3], dtype=np.float64),
        np.ascontiguousarray(poses[:, :3, 3], dtype=np.float64),
        float(max_range),
        bounds,
        fan.directions,
        fan.elevations,
        fan.azimuth0,
        fan.azimuth_step,
        fan.cols,
        fan.full_circle,
        prims.kind,
        prims.center,
        prims.axes,
        prims.half,
        prims.verts,
        prims.corners,
        prims.radius,
        prims.category,
        t,
        normal,
        category,
    )


def cast_rays(
    prims: Primitives,
    origins: F64,
    directions: F64,
    t: NDArray[np.float32],
    normal: NDArray[np.float32],
    category: NDArray[np.int16],
) -> None:
    """Arbitrary rays (N,3 origins, N,3 unit directions, world frame), every primitive tested."""
    if not len(prims) or not len(origins):
        return
    _cast_rays(
        np.ascontiguousarray(origins, dtype=np.float64),
        np.ascontiguousarray(directions, dtype=np.float64),
        prims.kind,
        prims.center,
        prims.axes,
        prims.half,
        prims.verts,
        prims.radius,
        prims.category,
        t,
        normal,
        category,
    )
