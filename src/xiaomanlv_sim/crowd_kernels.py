"""Compiled per-step arithmetic of the social-force crowd (`xiaomanlv_sim.agents.Crowd`).

The model is the one the `agents` module docstring describes (Helbing & Molnar 1995 forces with
the anisotropy of Helbing & Johansson 2009, group cohesion after Moussaid et al. 2010, and the
position-based non-penetration of Müller et al. 2007); this module only evaluates it, agent by
agent and pair by pair, in `numba.njit` kernels instead of ~350 numpy calls on short arrays.
Nothing here draws random numbers or touches Python objects: `Crowd` keeps route planning,
events and every random draw, and passes plain contiguous arrays in: few of them (one call per
step, seven arrays and a flag), because once the rest of the simulator has run between two
crowd steps and evicted the caches, each argument of a compiled call costs about a microsecond
to unbox.

Layout: per-agent reals `real` (K, N_REAL; columns `R_*`: position, velocity, radius, desired
speed, relaxation time, timer, progress watch), per-agent integers `ints` (K, N_INT; columns
`I_*`: kind, mode, group, grouped, standing, waypoint index and count, the x order of the pair
sweep, event bits), waypoints `wp` (K, W, 2), the parameter vector `params` (`P_*`: the
config, then this step's dt and robot), and the walls `sdf`, `wall_real`, `wall_int`.

Geometry, the same as `footprint.Footprints` answers:

* the signed distance field (`sdf`, float32 rows along y, bilinear, clipped at the grid edge
  and never negative outside it) for the wall force and the candidates of the wall projection,
  evaluated with the same arithmetic as `Footprints.distance_and_gradient`;
* exact point-to-polygon distances and nearest points (what shapely's STRtree `nearest` gives)
  for the wall projection: polygons as flat closed rings, found through a bucket grid that
  lists every static polygon within `margin` of each cell (`agents.WallIndex`), plus a short
  list of polygons checked always (run-time obstacles). `wall_real` is the `W_*` header then
  the ring vertices (x, y, x, y, ...); `wall_int` is the `WI_*` header of offsets then the
  ring starts, each polygon's first ring, the bucket starts, the bucket items and the
  always-checked polygons. A polygon farther than `margin` may be missed, so distances are
  exact whenever they are below `margin`, which exceeds every agent radius: the projection
  only acts on distances below the radius.

Reference: Müller, Heidelberger, Hennix, Ratcliff, "Position based dynamics", J. Vis. Commun.
Image Represent. 18(2), 2007 (the Jacobi projection with averaged corrections).
Frames: world frame, x east, y north, metres, seconds.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

# columns of the per-agent reals
R_X, R_Y, R_VX, R_VY = 0, 1, 2, 3  # [m], [m/s]
R_RADIUS = 4  # [m]
R_V0 = 5  # [m/s] desired speed
R_TAU = 6  # [s] relaxation time
R_TIMER = 7  # [s] dwell/loiter time left
R_BEST = 8  # [m] closest approach to the current waypoint
R_SINCE = 9  # [s] since that approach last improved by 0.5 m
N_REAL = 10

# columns of the per-agent integers
I_KIND = 0  # PEDESTRIAN 0, CYCLIST 1
I_MODE = 1  # walking 0, dwelling 1, loitering 2
I_GROUP = 2  # group id (the leader's index)
I_GROUPED = 3  # 1: member of a group of two or more
I_STANDING = 4  # 1: a loiterer standing at its spot
I_WP_IDX = 5  # the waypoint heading for
I_WP_LEN = 6  # number of waypoints
I_ORDER = 7  # a permutation of the agents by x (the pair sweep), not a per-agent value
I_EVENTS = 8  # EV_* bits of this step
N_INT = 9

# the parameter vector, built by `agents.kernel_params`; the last entries change every step
P_ROBOT_HORIZON = 0
P_ROBOT_STEER = 1
P_WALL_SLIDE = 2
P_INTERACTION = 3
P_CYCLIST_RANGE = 4
P_AGENT_RANGE = 5
P_AGENT_STRENGTH = 6
P_GROUP_FACTOR = 7
P_ANISOTROPY = 8
P_WALL_STRENGTH = 9
P_WALL_RANGE = 10
P_ROBOT_STRENGTH = 11
P_ROBOT_RANGE = 12
P_COHESION = 13
P_GROUP_SPACING = 14
P_MAX_SPEED_FACTOR = 15
P_ITERATIONS = 16
P_WAYPOINT_RADIUS = 17
P_CYCLIST_WAYPOINT_RADIUS = 18
P_STUCK_TIME = 19
P_DT = 20  # [s] this step
P_ROBOT_X = 21  # [m] the robot now
P_ROBOT_Y = 22
P_ROBOT_VX = 23  # [m/s]
P_ROBOT_VY = 24
P_ROBOT_RADIUS = 25  # [m]
N_PARAMS = 26

# header of `wall_real`
W_SDF_X0 = 0  # [m] Footprints.bounds[0]
W_SDF_Y0 = 1  # [m] Footprints.bounds[1]
W_CELL = 2  # [m] distance-field cell
W_BUCKET_X0 = 3  # [m] lower-left corner of the bucket grid
W_BUCKET_Y0 = 4  # [m]
W_BUCKET_SIZE = 5  # [m]
W_BUCKETS_X = 6  # number of bucket columns
W_BUCKETS_Y = 7  # number of bucket rows
N_WALL_REAL = 8  # the vertices follow

# header of `wall_int`: where each part starts (WI_END: where the last ends)
WI_RING_START = 0  # per ring its first vertex, and one past the last ring
WI_POLY_RING = 1  # per polygon its first ring, and one past the last polygon
WI_BUCKET_START = 2  # per bucket its first item, and one past the last bucket
WI_BUCKET_ITEMS = 3  # polygon ids, bucket by bucket
WI_ALWAYS = 4  # polygons checked for every query
WI_END = 5
N_WALL_INT = 6

CYCLIST = 1
DWELLING = 1

# event bits
EV_ARRIVED = 1
EV_STUCK = 2
EV_EXPIRED = 4

_COINCIDENT_ANGLE = 2.399963  # [rad] per agent index: a fixed push direction for coincident pairs


@numba.njit(cache=True)
def _cell(
    sdf: NDArray[np.float32], wall_real: NDArray[np.float64], x: float, y: float
) -> tuple[int, int, float, float, bool]:
    """The field cell under (x, y): column, row, fractions, and whether it lies off the grid."""
    cell = wall_real[W_CELL]
    rows, cols = sdf.shape
    px = (x - wall_real[W_SDF_X0]) / cell - 0.5
    py = (y - wall_real[W_SDF_Y0]) / cell - 0.5
    cx = min(max(px, 0.0), cols - 1.000001)
    cy = min(max(py, 0.0), rows - 1.000001)
    i0, j0 = int(cx), int(cy)
    return i0, j0, cx - i0, cy - j0, px != cx or py != cy


@numba.njit(cache=True)
def _bilinear(
    v00: float,  # float32 values of the field: differences of corners stay float32, as in
    v10: float,  # Footprints._interp, so the result is the same to the last bit
    v01: float,
    v11: float,
    fx: float,
    fy: float,
    off_grid: bool,
    cell: float,
) -> tuple[float, float, float]:
    """Signed distance and gradient from a cell's corner values (`Footprints._interp`)."""
    top = v00 + (v10 - v00) * fx
    bottom = v01 + (v11 - v01) * fx
    d = top + (bottom - top) * fy
    if off_grid and d < 0.0:
        d = 0.0
    gx = ((v10 - v00) * (1.0 - fy) + (v11 - v01) * fy) / cell
    gy = (bottom - top) / cell
    return d, gx, gy


@numba.njit(cache=True)
def _field(
    sdf: NDArray[np.float32], wall_real: NDArray[np.float64], x: float, y: float
) -> tuple[float, float, float]:
    """Signed distance [m] and its gradient at (x, y): `Footprints._interp`, one point."""
    i0, j0, fx, fy, off = _cell(sdf, wall_real, x, y)
    return _bilinear(
        sdf[j0, i0], sdf[j0, i0 + 1], sdf[j0 + 1, i0], sdf[j0 + 1, i0 + 1], fx, fy, off,
        wall_real[W_CELL],
    )  # fmt: skip


@numba.njit(cache=True)
def _polygon_nearest(
    wall_real: NDArray[np.float64], wall_int: NDArray[np.int64], p: int, x: float, y: float
) -> tuple[float, float, float]:
    """Exact distance from (x, y) to polygon `p` (0 inside) and the nearest point on it."""
    inside = False
    best = np.inf
    bx, by = x, y
    rings, firsts = wall_int[WI_RING_START], wall_int[WI_POLY_RING]
    for r in range(wall_int[firsts + p], wall_int[firsts + p + 1]):
        for v in range(wall_int[rings + r], wall_int[rings + r + 1] - 1):  # rings are closed
            a = N_WALL_REAL + 2 * v
            ax, ay, cx, cy = wall_real[a], wall_real[a + 1], wall_real[a + 2], wall_real[a + 3]
            if (ay > y) != (cy > y) and x < ax + (y - ay) * (cx - ax) / (cy - ay):
                inside = not inside  # crossing number, even-odd over all rings (holes too)
            ex, ey = cx - ax, cy - ay
            len2 = ex * ex + ey * ey
            t = 0.0 if len2 <= 0.0 else ((x - ax) * ex + (y - ay) * ey) / len2
            t = min(max(t, 0.0), 1.0)
            nx, ny = ax + t * ex, ay + t * ey
            d = math.hypot(x - nx, y - ny)
            if d < best:
                best, bx, by = d, nx, ny
    if inside:
        return 0.0, x, y
    return best, bx, by


@numba.njit(cache=True)
def nearest_wall(
    wall_real: NDArray[np.float64], wall_int: NDArray[np.int64], x: float, y: float
) -> tuple[float, float, float]:
    """Exact distance [m] from (x, y) to the nearest polygon (0 inside one) and the nearest
    point; exact below the index margin, else some larger distance (inf: nothing near)."""
    best, bx, by = np.inf, x, y
    size = wall_real[W_BUCKET_SIZE]
    fx = (x - wall_real[W_BUCKET_X0]) / size
    fy = (y - wall_real[W_BUCKET_Y0]) / size
    nbx, nby = int(wall_real[W_BUCKETS_X]), int(wall_real[W_BUCKETS_Y])
    if 0.0 <= fx < nbx and 0.0 <= fy < nby:
        b = wall_int[WI_BUCKET_START] + int(fy) * nbx + int(fx)
        items = wall_int[WI_BUCKET_ITEMS]
        for k in range(wall_int[b], wall_int[b + 1]):
            d, nx, ny = _polygon_nearest(wall_real, wall_int, wall_int[items + k], x, y)
            if d < best:
                best, bx, by = d, nx, ny
    for k in range(wall_int[WI_ALWAYS], wall_int[WI_END]):
        d, nx, ny = _polygon_nearest(wall_real, wall_int, wall_int[k], x, y)
        if d < best:
            best, bx, by = d, nx, ny
    return best, bx, by


@numba.njit(cache=True)
def find_pairs(
    real: NDArray[np.float64], ints: NDArray[np.int64], cutoff: float
) -> tuple[NDArray[np.int64], int]:
    """Pairs (i < j) of agents at most `cutoff` [m] apart, as an (M,2) buffer and its count M.

    Sort and sweep along x. The order column (I_ORDER, a permutation of the agents kept
    between steps) is re-sorted in place by insertion sort, which is linear when the agents
    moved little since the last call; pairs come in its order, so a run repeats exactly.
    """
    k = real.shape[0]
    for a in range(1, k):
        i = ints[a, I_ORDER]
        x = real[i, R_X]
        b = a - 1
        while b >= 0 and real[ints[b, I_ORDER], R_X] > x:
            ints[b + 1, I_ORDER] = ints[b, I_ORDER]
            b -= 1
        ints[b + 1, I_ORDER] = i
    cap = max(16, 8 * k)
    out = np.empty((cap, 2), dtype=np.int64)
    n = 0
    c2 = cutoff * cutoff
    for a in range(k):
        i = ints[a, I_ORDER]
        xi, yi = real[i, R_X], real[i, R_Y]
        for b in range(a + 1, k):
            j = ints[b, I_ORDER]
            dx = real[j, R_X] - xi
            if dx > cutoff:
                break
            dy = real[j, R_Y] - yi
            if dx * dx + dy * dy <= c2:
                if n == cap:
                    grown = np.empty((2 * cap, 2), dtype=np.int64)
                    for q in range(n):
                        grown[q, 0], grown[q, 1] = out[q, 0], out[q, 1]
                    out, cap = grown, 2 * cap
                out[n, 0], out[n, 1] = min(i, j), max(i, j)
                n += 1
    return out, n


@numba.njit(cache=True)
def _advance_waypoints(
    real: NDArray[np.float64], ints: NDArray[np.int64], wp: NDArray[np.float64],
    params: NDArray[np.float64],
) -> int:  # fmt: skip
    """Waypoint progress, the progress watch and timers, in place; the I_EVENTS column gets
    the bits EV_ARRIVED / EV_STUCK / EV_EXPIRED. Returns how many agents have an event."""
    dt = params[P_DT]
    n_events = 0
    for i in range(real.shape[0]):
        w = ints[i, I_WP_IDX]
        d = math.hypot(wp[i, w, 0] - real[i, R_X], wp[i, w, 1] - real[i, R_Y])
        cyclist = ints[i, I_KIND] == CYCLIST
        radius = params[P_CYCLIST_WAYPOINT_RADIUS] if cyclist else params[P_WAYPOINT_RADIUS]
        last = w >= ints[i, I_WP_LEN] - 1
        reached = d < (0.5 * radius if last else radius)
        if reached and not last:
            ints[i, I_WP_IDX] = w + 1
        better = d < real[i, R_BEST] - 0.5
        if reached:
            real[i, R_BEST] = np.inf
        elif better:
            real[i, R_BEST] = d
        real[i, R_SINCE] = 0.0 if (better or reached) else real[i, R_SINCE] + dt
        timer = real[i, R_TIMER]
        expired = timer > 0.0 and timer <= dt
        real[i, R_TIMER] = max(timer - dt, 0.0)
        moving = ints[i, I_STANDING] == 0 and ints[i, I_MODE] != DWELLING
        ev = 0
        if reached and last and moving:
            ev |= EV_ARRIVED
        if real[i, R_SINCE] > params[P_STUCK_TIME] and moving:
            ev |= EV_STUCK
        if expired:
            ev |= EV_EXPIRED
        ints[i, I_EVENTS] = ev
        if ev:
            n_events += 1
    return n_events


@numba.njit(cache=True)
def _steer(
    ex: float, ey: float, nx: float, ny: float, clearance: float, reach: float
) -> tuple[float, float]:
    """Turn the desired direction (ex, ey) if it points into an obstacle with outward normal n.

    Within `reach` [m] of clearance it is blended toward the obstacle's tangent on the side it
    already leans to (head-on: the agent's right), fully tangential at contact. This removes
    the symmetric dead-lock of the social force model, where driving and repulsive forces
    cancel in front of an obstacle.
    """
    into = ex * nx + ey * ny
    if not (into < 0.0 and clearance < reach):
        return ex, ey
    w = min(max(1.0 - clearance / reach, 0.0), 1.0) * (-into)
    tx, ty = -ny, nx  # on the right of a head-on approach
    if tx * ex + ty * ey < -1e-9:
        tx, ty = -tx, -ty
    sx = (1.0 - w) * ex + w * tx
    sy = (1.0 - w) * ey + w * ty
    norm = max(math.hypot(sx, sy), 1e-9)
    return sx / norm, sy / norm


@numba.njit(cache=True)
def _cap_speed(real: NDArray[np.float64], factor: float, i: int) -> None:
    cap = factor * real[i, R_V0]
    sp = math.hypot(real[i, R_VX], real[i, R_VY])
    if sp > cap:
        s = cap / sp
        real[i, R_VX] *= s
        real[i, R_VY] *= s


@numba.njit(cache=True)
def _project_walls(
    real: NDArray[np.float64],
    clean: NDArray[np.bool_],
    sdf: NDArray[np.float32],
    wall_real: NDArray[np.float64],
    wall_int: NDArray[np.int64],
) -> None:
    """Push agents closer to a footprint than their radius out of it (at most 3 rounds).

    Candidates are agents whose grid distance is below radius + 2 cells; each is moved to its
    radius (+0.1 mm) along the exact nearest-point direction, or, inside a footprint, along the
    field's gradient. `clean[i]`: agent i was found clear and has not moved since, so checking
    it again would give the same answer (skipped).
    """
    cell = wall_real[W_CELL]
    k = real.shape[0]
    near = np.zeros(k, dtype=np.bool_)
    for i in range(k):  # independent loads first (they overlap their cache misses)
        if not clean[i]:
            d, _, _ = _field(sdf, wall_real, real[i, R_X], real[i, R_Y])
            near[i] = d < real[i, R_RADIUS] + 2.0 * cell
            clean[i] = not near[i]
    for i in range(k):
        if not near[i]:
            continue
        r = real[i, R_RADIUS]
        for _ in range(3):
            x, y = real[i, R_X], real[i, R_Y]
            dist, nx, ny = nearest_wall(wall_real, wall_int, x, y)
            if not dist < r:
                clean[i] = True
                break
            if dist > 0.0:
                s = (r + 1e-4) / dist
                real[i, R_X] = nx + (x - nx) * s
                real[i, R_Y] = ny + (y - ny) * s
            else:
                dg, gx, gy = _field(sdf, wall_real, x, y)
                gn = max(math.hypot(gx, gy), 1e-9)
                step = r - dg + cell
                real[i, R_X] = x + step * gx / gn
                real[i, R_Y] = y + step * gy / gn


@numba.njit(cache=True)
def project(
    real: NDArray[np.float64],
    ints: NDArray[np.int64],
    pairs: NDArray[np.int64],
    n_pairs: int,
    params: NDArray[np.float64],
    sdf: NDArray[np.float32],
    wall_real: NDArray[np.float64],
    wall_int: NDArray[np.int64],
) -> None:
    """Position-based projection: separate overlapping agents, then keep them out of walls.

    Of `pairs[:n_pairs]` those closer than 2 max radius + 0.3 m now are the contacts; per
    Jacobi iteration the walls are projected, then each overlapping contact is split by inverse
    mass (cyclists weigh 3x) and an agent's summed correction is scaled by 1/sqrt(contacts);
    done when no overlap exceeds 0.5 mm or after P_ITERATIONS; the walls come last.
    """
    k = real.shape[0]
    rmax = 0.0
    for i in range(k):
        rmax = max(rmax, real[i, R_RADIUS])
    reach = 2.0 * rmax + 0.3
    ci = np.empty(n_pairs, dtype=np.int64)
    cj = np.empty(n_pairs, dtype=np.int64)
    m = 0
    for p in range(n_pairs):
        i, j = pairs[p, 0], pairs[p, 1]
        if math.hypot(real[i, R_X] - real[j, R_X], real[i, R_Y] - real[j, R_Y]) < reach:
            ci[m], cj[m] = i, j
            m += 1
    clean = np.zeros(k, dtype=np.bool_)
    cnt = np.zeros(k, dtype=np.int64)
    sx = np.zeros(k)
    sy = np.zeros(k)
    for _ in range(int(params[P_ITERATIONS])):
        _project_walls(real, clean, sdf, wall_real, wall_int)
        if m == 0:
            continue
        deep = False
        for p in range(m):
            i, j = ci[p], cj[p]
            dist = math.hypot(real[i, R_X] - real[j, R_X], real[i, R_Y] - real[j, R_Y])
            if real[i, R_RADIUS] + real[j, R_RADIUS] - dist + 1e-4 > 5e-4:
                deep = True
                break
        if not deep:  # within half a millimetre: done
            break
        for i in range(k):
            cnt[i], sx[i], sy[i] = 0, 0.0, 0.0
        for p in range(m):
            i, j = ci[p], cj[p]
            dx, dy = real[i, R_X] - real[j, R_X], real[i, R_Y] - real[j, R_Y]
            dist = math.hypot(dx, dy)
            overlap = real[i, R_RADIUS] + real[j, R_RADIUS] - dist + 1e-4
            if not overlap > 0.0:
                continue
            if dist < 1e-9:  # coincident: a fixed direction per pair, no randomness needed
                ang = (i * _COINCIDENT_ANGLE) % (2.0 * math.pi)
                dx, dy, dist = math.cos(ang), math.sin(ang), 1.0
            nx, ny = dx / dist, dy / dist
            im_i = 1.0 / 3.0 if ints[i, I_KIND] == CYCLIST else 1.0
            im_j = 1.0 / 3.0 if ints[j, I_KIND] == CYCLIST else 1.0
            wi = im_i / (im_i + im_j)
            wj = 1.0 - wi
            cnt[i] += 1
            cnt[j] += 1
            sx[i] += overlap * wi * nx
            sy[i] += overlap * wi * ny
            sx[j] -= overlap * wj * nx
            sy[j] -= overlap * wj * ny
        for i in range(k):
            if cnt[i]:  # Jacobi: average the corrections an agent receives from several contacts
                scale = 1.0 / math.sqrt(cnt[i])
                real[i, R_X] += sx[i] * scale
                real[i, R_Y] += sy[i] * scale
                clean[i] = False
    _project_walls(real, clean, sdf, wall_real, wall_int)


@numba.njit(cache=True)
def step(
    real: NDArray[np.float64],
    ints: NDArray[np.int64],
    wp: NDArray[np.float64],
    params: NDArray[np.float64],
    sdf: NDArray[np.float32],
    wall_real: NDArray[np.float64],
    wall_int: NDArray[np.int64],
    advance: bool,
) -> int:
    """One crowd step in place: with `advance`, waypoint progress and timers first, and if any
    agent has an event (I_EVENTS) return their number at once, for the caller to handle them
    and call again without `advance`; then forces, semi-implicit Euler, speed caps and the
    projection (returns 0).

    Forces per unit mass on each agent, summed in this order: driving (desired direction slid
    along walls and steered round the robot), agent pairs within the interaction radius,
    walls (clearance below 2 m), the robot capsule (gap below 4 m), group cohesion (members of
    a group of two or more farther from its centre than its spread).
    """
    if advance:
        n_events = _advance_waypoints(real, ints, wp, params)
        if n_events:
            return n_events
    k = real.shape[0]
    dt = params[P_DT]
    lam = params[P_ANISOTROPY]
    robot_x, robot_y, robot_radius = params[P_ROBOT_X], params[P_ROBOT_Y], params[P_ROBOT_RADIUS]
    seg_x = params[P_ROBOT_VX] * params[P_ROBOT_HORIZON]
    seg_y = params[P_ROBOT_VY] * params[P_ROBOT_HORIZON]
    seg_len2 = seg_x * seg_x + seg_y * seg_y
    rmax = 0.0
    for i in range(k):
        rmax = max(rmax, real[i, R_RADIUS])

    # the field under every agent first: independent loads overlap their cache misses
    corners = np.empty((k, 4), dtype=np.float32)
    frac = np.empty((k, 3))
    for i in range(k):
        i0, j0, fx, fy, off = _cell(sdf, wall_real, real[i, R_X], real[i, R_Y])
        corners[i, 0], corners[i, 1] = sdf[j0, i0], sdf[j0, i0 + 1]
        corners[i, 2], corners[i, 3] = sdf[j0 + 1, i0], sdf[j0 + 1, i0 + 1]
        frac[i, 0], frac[i, 1], frac[i, 2] = fx, fy, 1.0 if off else 0.0

    acc = np.empty((k, 2))
    head = np.empty((k, 2))
    wall = np.zeros((k, 2))
    away = np.zeros((k, 2))
    for i in range(k):
        x, y, vx, vy, r = (
            real[i, R_X],
            real[i, R_Y],
            real[i, R_VX],
            real[i, R_VY],
            real[i, R_RADIUS],
        )
        # the robot, as a capsule from where it is to where it will be in robot_horizon
        rx, ry = x - robot_x, y - robot_y
        t = 0.0
        if seg_len2 > 1e-12:
            t = min(max((rx * seg_x + ry * seg_y) / seg_len2, 0.0), 1.0)
        dx, dy = rx - t * seg_x, ry - t * seg_y
        dist_r = max(math.hypot(dx, dy), 1e-6)
        nrx, nry = dx / dist_r, dy / dist_r
        gap = dist_r - r - robot_radius
        # driving force, its direction slid along walls and steered round the robot
        w = ints[i, I_WP_IDX]
        tx, ty = wp[i, w, 0] - x, wp[i, w, 1] - y
        dist_t = math.hypot(tx, ty)
        norm_t = max(dist_t, 1e-9)
        ex, ey = tx / norm_t, ty / norm_t
        d_wall, gx, gy = _bilinear(
            corners[i, 0], corners[i, 1], corners[i, 2], corners[i, 3], frac[i, 0], frac[i, 1],
            frac[i, 2] > 0.0, wall_real[W_CELL],
        )  # fmt: skip
        g_norm = max(math.hypot(gx, gy), 1e-9)
        nwx, nwy = gx / g_norm, gy / g_norm
        clearance = d_wall - r
        ex, ey = _steer(ex, ey, nrx, nry, gap, params[P_ROBOT_STEER])
        ex, ey = _steer(ex, ey, nwx, nwy, clearance, params[P_WALL_SLIDE])
        wanted = real[i, R_V0] * min(max(dist_t / 0.5, 0.0), 1.0)  # slow down on the last 0.5 m
        if ints[i, I_MODE] == DWELLING or ints[i, I_STANDING]:
            wanted = 0.0
        acc[i, 0] = (wanted * ex - vx) / real[i, R_TAU]
        acc[i, 1] = (wanted * ey - vy) / real[i, R_TAU]
        # heading for the anisotropy: velocity if moving, else desired direction
        sp = math.hypot(vx, vy)
        if sp > 0.1:
            head[i, 0], head[i, 1] = vx / sp, vy / sp
        else:
            head[i, 0], head[i, 1] = ex, ey
        if clearance < 2.0:  # walls
            mag = params[P_WALL_STRENGTH] * math.exp(-clearance / params[P_WALL_RANGE])
            wall[i, 0], wall[i, 1] = mag * nwx, mag * nwy
        if gap < 4.0:  # the robot's repulsion, anisotropic like a person's
            w_r = lam + (1.0 - lam) * 0.5 * (1.0 - (nrx * head[i, 0] + nry * head[i, 1]))
            mag = params[P_ROBOT_STRENGTH] * math.exp(-gap / params[P_ROBOT_RANGE]) * w_r
            away[i, 0], away[i, 1] = mag * nrx, mag * nry

    # agent-agent repulsion
    pairs, n_pairs = find_pairs(real, ints, max(params[P_INTERACTION], 2.0 * rmax + 0.5))
    pair = np.zeros((k, 2))
    for p in range(n_pairs):
        i, j = pairs[p, 0], pairs[p, 1]
        dx, dy = real[i, R_X] - real[j, R_X], real[i, R_Y] - real[j, R_Y]
        dist = max(math.hypot(dx, dy), 1e-6)
        nx, ny = dx / dist, dy / dist
        cyc = ints[i, I_KIND] == CYCLIST or ints[j, I_KIND] == CYCLIST
        b = params[P_CYCLIST_RANGE] if cyc else params[P_AGENT_RANGE]
        mag = params[P_AGENT_STRENGTH] * math.exp(
            (real[i, R_RADIUS] + real[j, R_RADIUS] - dist) / b
        )
        if ints[i, I_GROUP] == ints[j, I_GROUP]:
            mag *= params[P_GROUP_FACTOR]
        w_i = lam + (1.0 - lam) * 0.5 * (1.0 - (nx * head[i, 0] + ny * head[i, 1]))
        w_j = lam + (1.0 - lam) * 0.5 * (1.0 + (nx * head[j, 0] + ny * head[j, 1]))
        pair[i, 0] += mag * w_i * nx
        pair[i, 1] += mag * w_i * ny
        pair[j, 0] -= mag * w_j * nx
        pair[j, 1] -= mag * w_j * ny

    # group cohesion: centres of the groups (group ids are agent indices)
    count = np.zeros(k)
    centre = np.zeros((k, 2))
    for i in range(k):
        g = ints[i, I_GROUP]
        count[g] += 1.0
        centre[g, 0] += real[i, R_X]
        centre[g, 1] += real[i, R_Y]

    # integrate (semi-implicit Euler) and cap speeds
    before = np.empty((k, 2))
    for i in range(k):
        before[i, 0], before[i, 1] = real[i, R_X], real[i, R_Y]
        ax = acc[i, 0] + pair[i, 0] + wall[i, 0] + away[i, 0]
        ay = acc[i, 1] + pair[i, 1] + wall[i, 1] + away[i, 1]
        if ints[i, I_GROUPED]:
            g = ints[i, I_GROUP]
            n = max(count[g], 1.0)
            cx, cy = centre[g, 0] / n - real[i, R_X], centre[g, 1] / n - real[i, R_Y]
            dist = math.hypot(cx, cy)
            spread = 0.5 * params[P_GROUP_SPACING] * (count[g] - 1.0) + 0.3
            if dist > spread:
                pull = params[P_COHESION] * (dist - spread) / max(dist, 1e-9)
                ax += pull * cx
                ay += pull * cy
        real[i, R_VX] += ax * dt
        real[i, R_VY] += ay * dt
        _cap_speed(real, params[P_MAX_SPEED_FACTOR], i)
        real[i, R_X] += real[i, R_VX] * dt
        real[i, R_Y] += real[i, R_VY] * dt
    project(real, ints, pairs, n_pairs, params, sdf, wall_real, wall_int)
    for i in range(k):
        real[i, R_VX] = (real[i, R_X] - before[i, 0]) / dt
        real[i, R_VY] = (real[i, R_Y] - before[i, 1]) / dt
        _cap_speed(real, params[P_MAX_SPEED_FACTOR], i)
    return 0
