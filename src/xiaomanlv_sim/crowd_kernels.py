"""Compiled per-step arithmetic of the social-force crowd (`xiaomanlv_sim.agents.Crowd`).

The model is the one the `agents` module docstring describes (Helbing & Molnar 1995 forces with
the anisotropy of Helbing & Johansson 2009, group cohesion after Moussaid et al. 2010, and the
position-based non-penetration of Müller et al. 2007); this module only evaluates it, agent by
agent and pair by pair, in `numba.njit` kernels instead of ~350 numpy calls on short arrays.
Nothing here draws random numbers or touches Python objects: `Crowd` keeps route planning,
events and every random draw, and passes plain contiguous arrays in.

Geometry, the same as `footprint.Footprints` answers:

* the signed distance field (`sdf`, float32 rows along y, bilinear, clipped at the grid edge
  and never negative outside it) for the wall force and the candidates of the wall projection,
  evaluated with the same arithmetic as `Footprints.distance_and_gradient`;
* exact point-to-polygon distances and nearest points (what shapely's STRtree `nearest` gives)
  for the wall projection: polygons as flat rings (`verts`, `ring_start`, `poly_ring`), found
  through a bucket grid of `bucket_size` cells that lists every static polygon within `margin`
  of the cell (`WallIndex`, built by `agents`), plus a short list of polygons checked always
  (run-time obstacles). A polygon farther than `margin` may be missed, so distances are exact
  whenever they are below `margin`, which exceeds every agent radius: the projection only acts
  on distances below the radius.

Reference: Müller, Heidelberger, Hennix, Ratcliff, "Position based dynamics", J. Vis. Commun.
Image Represent. 18(2), 2007 (the Jacobi projection with averaged corrections).
Frames: world frame, x east, y north, metres, seconds.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numpy.typing import NDArray

# indices into the parameter vector (`params`) built by `agents.kernel_params`
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
N_PARAMS = 20

# indices into the wall parameter vector (`wall_par`)
W_SDF_X0 = 0  # [m] Footprints.bounds[0]
W_SDF_Y0 = 1  # [m] Footprints.bounds[1]
W_CELL = 2  # [m] distance-field cell
W_BUCKET_X0 = 3  # [m] lower-left corner of the bucket grid
W_BUCKET_Y0 = 4  # [m]
W_BUCKET_SIZE = 5  # [m]
W_BUCKETS_X = 6  # number of bucket columns
W_BUCKETS_Y = 7  # number of bucket rows
N_WALL_PAR = 8

CYCLIST = 1
DWELLING = 1

# event bits returned by `advance_waypoints`
EV_ARRIVED = 1
EV_STUCK = 2
EV_EXPIRED = 4

_COINCIDENT_ANGLE = 2.399963  # [rad] per agent index: a fixed push direction for coincident pairs


@numba.njit(cache=True)
def _field(
    sdf: NDArray[np.float32], wall_par: NDArray[np.float64], x: float, y: float
) -> tuple[float, float, float]:
    """Signed distance [m] and its gradient at (x, y): `Footprints._interp`, one point."""
    cell = wall_par[W_CELL]
    rows, cols = sdf.shape
    px = (x - wall_par[W_SDF_X0]) / cell - 0.5
    py = (y - wall_par[W_SDF_Y0]) / cell - 0.5
    cx = min(max(px, 0.0), cols - 1.000001)
    cy = min(max(py, 0.0), rows - 1.000001)
    i0, j0 = int(cx), int(cy)
    fx, fy = cx - i0, cy - j0
    v00, v10 = sdf[j0, i0], sdf[j0, i0 + 1]
    v01, v11 = sdf[j0 + 1, i0], sdf[j0 + 1, i0 + 1]
    top = v00 + (v10 - v00) * fx
    bottom = v01 + (v11 - v01) * fx
    d = top + (bottom - top) * fy
    if (px != cx or py != cy) and d < 0.0:
        d = 0.0
    gx = ((v10 - v00) * (1.0 - fy) + (v11 - v01) * fy) / cell
    gy = (bottom - top) / cell
    return d, gx, gy


@numba.njit(cache=True)
def _polygon_nearest(
    verts: NDArray[np.float64],
    ring_start: NDArray[np.int64],
    poly_ring: NDArray[np.int64],
    p: int,
    x: float,
    y: float,
) -> tuple[float, float, float]:
    """Exact distance from (x, y) to polygon `p` (0 inside) and the nearest point on it."""
    inside = False
    best = np.inf
    bx, by = x, y
    for r in range(poly_ring[p], poly_ring[p + 1]):
        for v in range(ring_start[r], ring_start[r + 1] - 1):  # rings are closed
            ax, ay = verts[v, 0], verts[v, 1]
            cx, cy = verts[v + 1, 0], verts[v + 1, 1]
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
    verts: NDArray[np.float64],
    ring_start: NDArray[np.int64],
    poly_ring: NDArray[np.int64],
    bucket_start: NDArray[np.int64],
    bucket_items: NDArray[np.int64],
    always: NDArray[np.int64],
    wall_par: NDArray[np.float64],
    x: float,
    y: float,
) -> tuple[float, float, float]:
    """Exact distance [m] from (x, y) to the nearest polygon (0 inside one) and the nearest
    point; exact below the index margin, else some larger distance (inf: nothing near)."""
    best, bx, by = np.inf, x, y
    size = wall_par[W_BUCKET_SIZE]
    fx = (x - wall_par[W_BUCKET_X0]) / size
    fy = (y - wall_par[W_BUCKET_Y0]) / size
    nbx, nby = int(wall_par[W_BUCKETS_X]), int(wall_par[W_BUCKETS_Y])
    if 0.0 <= fx < nbx and 0.0 <= fy < nby:
        b = int(fy) * nbx + int(fx)
        for k in range(bucket_start[b], bucket_start[b + 1]):
            d, nx, ny = _polygon_nearest(verts, ring_start, poly_ring, bucket_items[k], x, y)
            if d < best:
                best, bx, by = d, nx, ny
    for k in range(len(always)):
        d, nx, ny = _polygon_nearest(verts, ring_start, poly_ring, always[k], x, y)
        if d < best:
            best, bx, by = d, nx, ny
    return best, bx, by


@numba.njit(cache=True)
def find_pairs(
    pos: NDArray[np.float64], cutoff: float, order: NDArray[np.int64]
) -> tuple[NDArray[np.int64], int]:
    """Pairs (i < j) of agents at most `cutoff` [m] apart, as an (M,2) buffer and its count M.

    Sort and sweep along x. `order` (a permutation of the agents, kept by the caller between
    steps) is re-sorted in place by insertion sort, which is linear when the agents moved
    little since the last call; pairs come in its order, so a run repeats exactly.
    """
    k = pos.shape[0]
    for a in range(1, k):
        i = order[a]
        x = pos[i, 0]
        b = a - 1
        while b >= 0 and pos[order[b], 0] > x:
            order[b + 1] = order[b]
            b -= 1
        order[b + 1] = i
    cap = max(16, 8 * k)
    out = np.empty((cap, 2), dtype=np.int64)
    n = 0
    c2 = cutoff * cutoff
    for a in range(k):
        i = order[a]
        xi, yi = pos[i, 0], pos[i, 1]
        for b in range(a + 1, k):
            j = order[b]
            dx = pos[j, 0] - xi
            if dx > cutoff:
                break
            dy = pos[j, 1] - yi
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
def advance_waypoints(
    pos: NDArray[np.float64],
    kind: NDArray[np.int8],
    mode: NDArray[np.int8],
    standing: NDArray[np.bool_],
    timer: NDArray[np.float64],
    wp: NDArray[np.float64],
    wp_len: NDArray[np.intp],
    wp_idx: NDArray[np.intp],
    best: NDArray[np.float64],
    since: NDArray[np.float64],
    params: NDArray[np.float64],
    dt: float,
    events: NDArray[np.int8],
) -> int:
    """Waypoint progress, the progress watch and timers, in place; `events` gets the bits
    EV_ARRIVED / EV_STUCK / EV_EXPIRED per agent. Returns how many agents have an event."""
    n_events = 0
    for i in range(pos.shape[0]):
        w = wp_idx[i]
        d = math.hypot(wp[i, w, 0] - pos[i, 0], wp[i, w, 1] - pos[i, 1])
        radius = (
            params[P_CYCLIST_WAYPOINT_RADIUS] if kind[i] == CYCLIST else params[P_WAYPOINT_RADIUS]
        )
        last = w >= wp_len[i] - 1
        reached = d < (0.5 * radius if last else radius)
        if reached and not last:
            wp_idx[i] = w + 1
        better = d < best[i] - 0.5
        if reached:
            best[i] = np.inf
        elif better:
            best[i] = d
        since[i] = 0.0 if (better or reached) else since[i] + dt
        expired = timer[i] > 0.0 and timer[i] <= dt
        timer[i] = max(timer[i] - dt, 0.0)
        moving = not standing[i] and mode[i] != DWELLING
        ev = 0
        if reached and last and moving:
            ev |= EV_ARRIVED
        if since[i] > params[P_STUCK_TIME] and moving:
            ev |= EV_STUCK
        if expired:
            ev |= EV_EXPIRED
        events[i] = ev
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
def _cap_speed(vel: NDArray[np.float64], v0: NDArray[np.float64], factor: float, i: int) -> None:
    cap = factor * v0[i]
    sp = math.hypot(vel[i, 0], vel[i, 1])
    if sp > cap:
        s = cap / sp
        vel[i, 0] *= s
        vel[i, 1] *= s


@numba.njit(cache=True)
def _project_walls(
    pos: NDArray[np.float64],
    radius: NDArray[np.float64],
    clean: NDArray[np.bool_],
    sdf: NDArray[np.float32],
    verts: NDArray[np.float64],
    ring_start: NDArray[np.int64],
    poly_ring: NDArray[np.int64],
    bucket_start: NDArray[np.int64],
    bucket_items: NDArray[np.int64],
    always: NDArray[np.int64],
    wall_par: NDArray[np.float64],
) -> None:
    """Push agents closer to a footprint than their radius out of it (at most 3 rounds).

    Candidates are agents whose grid distance is below radius + 2 cells; each is moved to its
    radius (+0.1 mm) along the exact nearest-point direction, or, inside a footprint, along the
    field's gradient. `clean[i]`: agent i was found clear and has not moved since, so checking
    it again would give the same answer (skipped).
    """
    cell = wall_par[W_CELL]
    for i in range(pos.shape[0]):
        if clean[i]:
            continue
        r = radius[i]
        d, _, _ = _field(sdf, wall_par, pos[i, 0], pos[i, 1])
        if not d < r + 2.0 * cell:
            clean[i] = True
            continue
        for _ in range(3):
            x, y = pos[i, 0], pos[i, 1]
            dist, nx, ny = nearest_wall(
                verts, ring_start, poly_ring, bucket_start, bucket_items, always, wall_par, x, y
            )
            if not dist < r:
                clean[i] = True
                break
            if dist > 0.0:
                s = (r + 1e-4) / dist
                pos[i, 0] = nx + (x - nx) * s
                pos[i, 1] = ny + (y - ny) * s
            else:
                dg, gx, gy = _field(sdf, wall_par, x, y)
                gn = max(math.hypot(gx, gy), 1e-9)
                step = r - dg + cell
                pos[i, 0] = x + step * gx / gn
                pos[i, 1] = y + step * gy / gn


@numba.njit(cache=True)
def project(
    pos: NDArray[np.float64],
    radius: NDArray[np.float64],
    kind: NDArray[np.int8],
    pairs: NDArray[np.int64],
    n_pairs: int,
    iterations: int,
    sdf: NDArray[np.float32],
    verts: NDArray[np.float64],
    ring_start: NDArray[np.int64],
    poly_ring: NDArray[np.int64],
    bucket_start: NDArray[np.int64],
    bucket_items: NDArray[np.int64],
    always: NDArray[np.int64],
    wall_par: NDArray[np.float64],
) -> None:
    """Position-based projection: separate overlapping agents, then keep them out of walls.

    Of `pairs[:n_pairs]` those closer than 2 max radius + 0.3 m now are the contacts; per
    Jacobi iteration the walls are projected, then each overlapping contact is split by inverse
    mass (cyclists weigh 3x) and an agent's summed correction is scaled by 1/sqrt(contacts);
    done when no overlap exceeds 0.5 mm; the walls come last.
    """
    k = pos.shape[0]
    rmax = 0.0
    for i in range(k):
        rmax = max(rmax, radius[i])
    reach = 2.0 * rmax + 0.3
    ci = np.empty(n_pairs, dtype=np.int64)
    cj = np.empty(n_pairs, dtype=np.int64)
    m = 0
    for p in range(n_pairs):
        i, j = pairs[p, 0], pairs[p, 1]
        if math.hypot(pos[i, 0] - pos[j, 0], pos[i, 1] - pos[j, 1]) < reach:
            ci[m], cj[m] = i, j
            m += 1
    clean = np.zeros(k, dtype=np.bool_)
    cnt = np.zeros(k, dtype=np.int64)
    sx = np.zeros(k)
    sy = np.zeros(k)
    for _ in range(iterations):
        _project_walls(
            pos, radius, clean, sdf, verts, ring_start, poly_ring, bucket_start, bucket_items,
            always, wall_par,
        )  # fmt: skip
        if m == 0:
            continue
        deep = False
        for p in range(m):
            i, j = ci[p], cj[p]
            dist = math.hypot(pos[i, 0] - pos[j, 0], pos[i, 1] - pos[j, 1])
            if radius[i] + radius[j] - dist + 1e-4 > 5e-4:
                deep = True
                break
        if not deep:  # within half a millimetre: done
            break
        for i in range(k):
            cnt[i], sx[i], sy[i] = 0, 0.0, 0.0
        for p in range(m):
            i, j = ci[p], cj[p]
            dx, dy = pos[i, 0] - pos[j, 0], pos[i, 1] - pos[j, 1]
            dist = math.hypot(dx, dy)
            overlap = radius[i] + radius[j] - dist + 1e-4
            if not overlap > 0.0:
                continue
            if dist < 1e-9:  # coincident: a fixed direction per pair, no randomness needed
                ang = (i * _COINCIDENT_ANGLE) % (2.0 * math.pi)
                dx, dy, dist = math.cos(ang), math.sin(ang), 1.0
            nx, ny = dx / dist, dy / dist
            im_i = 1.0 / 3.0 if kind[i] == CYCLIST else 1.0
            im_j = 1.0 / 3.0 if kind[j] == CYCLIST else 1.0
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
                pos[i, 0] += sx[i] * scale
                pos[i, 1] += sy[i] * scale
                clean[i] = False
    _project_walls(
        pos, radius, clean, sdf, verts, ring_start, poly_ring, bucket_start, bucket_items,
        always, wall_par,
    )  # fmt: skip


@numba.njit(cache=True)
def step(
    pos: NDArray[np.float64],
    vel: NDArray[np.float64],
    radius: NDArray[np.float64],
    kind: NDArray[np.int8],
    v0: NDArray[np.float64],
    tau: NDArray[np.float64],
    group: NDArray[np.int64],
    grouped: NDArray[np.bool_],
    mode: NDArray[np.int8],
    standing: NDArray[np.bool_],
    wp: NDArray[np.float64],
    wp_idx: NDArray[np.intp],
    order: NDArray[np.int64],
    params: NDArray[np.float64],
    dt: float,
    robot: NDArray[np.float64],
    sdf: NDArray[np.float32],
    verts: NDArray[np.float64],
    ring_start: NDArray[np.int64],
    poly_ring: NDArray[np.int64],
    bucket_start: NDArray[np.int64],
    bucket_items: NDArray[np.int64],
    always: NDArray[np.int64],
    wall_par: NDArray[np.float64],
) -> None:
    """Forces, semi-implicit Euler, speed caps and projection of one crowd step, in place.

    `robot` = (x, y, vx, vy, radius) [m, m/s]. Forces per unit mass on each agent, summed in
    this order: driving (desired direction slid along walls and steered round the robot),
    agent pairs within the interaction radius, walls (clearance below 2 m), the robot capsule
    (gap below 4 m), group cohesion (members of a group of two or more farther from its centre
    than its spread).
    """
    k = pos.shape[0]
    lam = params[P_ANISOTROPY]
    robot_x, robot_y, robot_radius = robot[0], robot[1], robot[4]
    seg_x = robot[2] * params[P_ROBOT_HORIZON]
    seg_y = robot[3] * params[P_ROBOT_HORIZON]
    seg_len2 = seg_x * seg_x + seg_y * seg_y
    rmax = 0.0
    for i in range(k):
        rmax = max(rmax, radius[i])

    acc = np.empty((k, 2))
    head = np.empty((k, 2))
    wall = np.zeros((k, 2))
    away = np.zeros((k, 2))
    for i in range(k):
        # the robot, as a capsule from where it is to where it will be in robot_horizon
        rx, ry = pos[i, 0] - robot_x, pos[i, 1] - robot_y
        t = 0.0
        if seg_len2 > 1e-12:
            t = min(max((rx * seg_x + ry * seg_y) / seg_len2, 0.0), 1.0)
        dx, dy = rx - t * seg_x, ry - t * seg_y
        dist_r = max(math.hypot(dx, dy), 1e-6)
        nrx, nry = dx / dist_r, dy / dist_r
        gap = dist_r - radius[i] - robot_radius
        # driving force, its direction slid along walls and steered round the robot
        w = wp_idx[i]
        tx, ty = wp[i, w, 0] - pos[i, 0], wp[i, w, 1] - pos[i, 1]
        dist_t = math.hypot(tx, ty)
        norm_t = max(dist_t, 1e-9)
        ex, ey = tx / norm_t, ty / norm_t
        d_wall, gx, gy = _field(sdf, wall_par, pos[i, 0], pos[i, 1])
        g_norm = max(math.hypot(gx, gy), 1e-9)
        nwx, nwy = gx / g_norm, gy / g_norm
        clearance = d_wall - radius[i]
        ex, ey = _steer(ex, ey, nrx, nry, gap, params[P_ROBOT_STEER])
        ex, ey = _steer(ex, ey, nwx, nwy, clearance, params[P_WALL_SLIDE])
        wanted = v0[i] * min(max(dist_t / 0.5, 0.0), 1.0)  # slow down on the last 0.5 m
        if mode[i] == DWELLING or standing[i]:
            wanted = 0.0
        acc[i, 0] = (wanted * ex - vel[i, 0]) / tau[i]
        acc[i, 1] = (wanted * ey - vel[i, 1]) / tau[i]
        # heading for the anisotropy: velocity if moving, else desired direction
        sp = math.hypot(vel[i, 0], vel[i, 1])
        if sp > 0.1:
            head[i, 0], head[i, 1] = vel[i, 0] / sp, vel[i, 1] / sp
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
    pairs, n_pairs = find_pairs(pos, max(params[P_INTERACTION], 2.0 * rmax + 0.5), order)
    pair = np.zeros((k, 2))
    for p in range(n_pairs):
        i, j = pairs[p, 0], pairs[p, 1]
        dx, dy = pos[i, 0] - pos[j, 0], pos[i, 1] - pos[j, 1]
        dist = max(math.hypot(dx, dy), 1e-6)
        nx, ny = dx / dist, dy / dist
        cyc = kind[i] == CYCLIST or kind[j] == CYCLIST
        b = params[P_CYCLIST_RANGE] if cyc else params[P_AGENT_RANGE]
        mag = params[P_AGENT_STRENGTH] * math.exp((radius[i] + radius[j] - dist) / b)
        if group[i] == group[j]:
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
        g = group[i]
        count[g] += 1.0
        centre[g, 0] += pos[i, 0]
        centre[g, 1] += pos[i, 1]

    # integrate (semi-implicit Euler) and cap speeds
    before = np.empty((k, 2))
    for i in range(k):
        before[i, 0], before[i, 1] = pos[i, 0], pos[i, 1]
        ax = acc[i, 0] + pair[i, 0] + wall[i, 0] + away[i, 0]
        ay = acc[i, 1] + pair[i, 1] + wall[i, 1] + away[i, 1]
        if grouped[i]:
            g = group[i]
            n = max(count[g], 1.0)
            cx, cy = centre[g, 0] / n - pos[i, 0], centre[g, 1] / n - pos[i, 1]
            dist = math.hypot(cx, cy)
            spread = 0.5 * params[P_GROUP_SPACING] * (count[g] - 1.0) + 0.3
            if dist > spread:
                pull = params[P_COHESION] * (dist - spread) / max(dist, 1e-9)
                ax += pull * cx
                ay += pull * cy
        vel[i, 0] += ax * dt
        vel[i, 1] += ay * dt
        _cap_speed(vel, v0, params[P_MAX_SPEED_FACTOR], i)
        pos[i, 0] += vel[i, 0] * dt
        pos[i, 1] += vel[i, 1] * dt
    project(
        pos, radius, kind, pairs, n_pairs, int(params[P_ITERATIONS]), sdf, verts, ring_start,
        poly_ring, bucket_start, bucket_items, always, wall_par,
    )  # fmt: skip
    for i in range(k):
        vel[i, 0] = (pos[i, 0] - before[i, 0]) / dt
        vel[i, 1] = (pos[i, 1] - before[i, 1]) / dt
        _cap_speed(vel, v0, params[P_MAX_SPEED_FACTOR], i)
