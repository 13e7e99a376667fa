"""Pedestrians and cyclists on a campus: a social-force crowd with hard non-penetration.

Model (Helbing & Molnar 1995, "Social force model for pedestrian dynamics", Phys. Rev. E 51;
Helbing, Farkas & Vicsek 2000, "Simulating dynamical features of escape panic", Nature 407):
each agent i accelerates as

    dv_i/dt = (v0_i e_i - v_i) / tau_i                                   driving force
            + sum_j A exp((r_i + r_j - d_ij) / B) w(phi_ij) n_ij          other agents
            + A_w exp((r_i - d_iW) / B_w) n_iW                            walls (distance field)
            + A_r exp((r_i + r_R - d_iR) / B_r) w(phi_iR) n_iR            the robot
            + group cohesion (Moussaid et al. 2010, PLoS ONE 5(4) e10047, simplified)

with the anisotropy w(phi) = lambda + (1 - lambda) (1 + cos phi) / 2 of Helbing & Johansson
(2009): people react more to what is in front of them. The robot is a capsule from its
position to where it will be in `robot_horizon` seconds, so people step out of its path, not
only away from it. Forces are per unit mass (m/s^2). Near a wall the desired direction slides
along it (its component into the wall is removed), which avoids the classic local minimum of
agents pressing into a corner between them and their waypoint; within `robot_steer_distance`
of the robot it likewise turns tangential (head-on: to the walker's right), which breaks the
model's symmetric dead-lock of a walker stopped face to face with a standing robot.

Instead of HFV2000's body and friction forces, a position-based projection (Müller et al. 2007,
"Position based dynamics") follows each integration step: overlapping agent pairs are pushed
apart (cyclists weigh more) and agents closer to a footprint than their radius are pushed out
along the exact nearest-point direction (shapely), for a few Jacobi iterations with the walls
last, so no agent ever ends a step inside a wall. The robot is deliberately *not* a hard
constraint: people avoid it by force, and a robot that drives into someone touches them, which
the simulator can detect and count (distance < radius sum).

Behaviour: pedestrians walk between building entrances along shortest paths of the site's
walkway graph (networkx), each on its own lane offset within the walkway width; a share walks
in groups of 2-4 sharing a route; a share cuts across open areas (the route is string-pulled:
a waypoint is skipped when the straight line to a later one is clear); a share loiters near an
entrance. On arrival a walker pauses at the door and sets off to a new destination, so agents
never teleport (trackers see continuous tracks). Cyclists ride at 4-6 m/s between nodes of the
wide walkways (edges at least `cyclist_min_width` wide; the widest edges if none are).

All randomness comes from the Generator given to `Crowd`, so a seed reproduces a run.
The per-step arithmetic (waypoint progress, forces, integration, neighbour pairs by sort and
sweep, the projection with exact point-to-polygon distances) runs in compiled kernels
(`xiaomanlv_sim.crowd_kernels`, numba, cached on disk); route planning, events and random
draws stay here and run only on the steps where an agent arrives, gets stuck or ends a pause.
bench/crowd_speed.py measures `step` (and compares with PySocialForce, which was too slow for
a campus: see docs/scenarios.md). Frames: world frame, x east, y north, metres, seconds.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TypeAlias

import networkx as nx
import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import Polygon

from xiaomanlv_core.site import Site
from xiaomanlv_sim import crowd_kernels as kernels
from xiaomanlv_sim.footprint import Footprint, Footprints
from xiaomanlv_sim.scenario import CrowdSpec

_log = logging.getLogger(__name__)

PEDESTRIAN = 0
CYCLIST = 1

_WALKING, _DWELLING, _LOITERING = 0, 1, 2

WallArrays: TypeAlias = tuple[NDArray[np.float64], NDArray[np.int64]]
"""Polygons and their index as `crowd_kernels` takes them: `wall_real`, `wall_int`."""
KernelWalls: TypeAlias = tuple[NDArray[np.float32], NDArray[np.float64], NDArray[np.int64]]
"""The distance field, `wall_real`, `wall_int`: the wall arguments of the kernels."""


class CrowdError(ValueError):
    """The crowd cannot be placed (no walkways or entrances, or no free space near them)."""


@dataclass(frozen=True)
class CrowdConfig:
    """Parameters of the crowd model (per unit mass: accelerations in m/s^2)."""

    pedestrian_speed_mean: float = 1.34  # [m/s] desired walking speed (Weidmann 1993)
    pedestrian_speed_stddev: float = 0.26  # [m/s]
    pedestrian_speed_min: float = 0.7  # [m/s]
    pedestrian_speed_max: float = 1.9  # [m/s]
    pedestrian_radius_min: float = 0.22  # [m] body radius (shoulder half-width + margin)
    pedestrian_radius_max: float = 0.28  # [m]
    pedestrian_height_min: float = 1.50  # [m]
    pedestrian_height_max: float = 1.95  # [m]
    loiter_speed: float = 0.6  # [m/s] loiterers shuffling about
    cyclist_speed_min: float = 4.0  # [m/s]
    cyclist_speed_max: float = 6.0  # [m/s]
    cyclist_radius: float = 0.55  # [m] a bicycle and rider seen from above, as one disc
    cyclist_height: float = 1.75  # [m]
    cyclist_min_width: float = 3.0  # [m] walkway edges at least this wide carry cyclists
    relaxation_time: float = 0.5  # [s] tau, pedestrians (Helbing & Molnar 1995)
    cyclist_relaxation_time: float = 1.0  # [s] bicycles turn and brake less sharply
    max_speed_factor: float = 1.3  # the speed cap is this times the desired speed
    agent_strength: float = 3.0  # [m/s^2] A
    agent_range: float = 0.35  # [m] B
    cyclist_range: float = 0.8  # [m] B for pairs with a cyclist: people give bicycles room
    group_strength_factor: float = 0.3  # repulsion between members of one group, times A
    anisotropy: float = 0.3  # lambda: weight of what is behind (1: isotropic)
    wall_strength: float = 6.0  # [m/s^2] A_w
    wall_range: float = 0.2  # [m] B_w
    wall_slide_distance: float = 0.6  # [m] closer than this the desired direction slides
    robot_steer_distance: float = 3.0  # [m] closer than this people steer round the robot
    robot_strength: float = 8.0  # [m/s^2] A_r
    robot_range: float = 0.5  # [m] B_r
    robot_horizon: float = 1.0  # [s] the robot capsule reaches this far along its velocity
    interaction_radius: float = 3.0  # [m] agents farther apart ignore each other
    cohesion: float = 1.5  # [1/s^2] pull toward the group centre beyond the group's spread
    waypoint_radius: float = 0.8  # [m] a pedestrian waypoint counts as reached within this
    cyclist_waypoint_radius: float = 2.5  # [m]
    lane_fraction: float = 0.3  # lane offsets are drawn within +-this times the walkway width
    group_spacing: float = 0.65  # [m] lateral spacing of group members
    dwell_max: float = 4.0  # [s] pause at a door before setting off again
    loiter_radius: float = 3.5  # [m] loiterers stay this close to their entrance
    loiter_dwell_min: float = 8.0  # [s]
    loiter_dwell_max: float = 45.0  # [s]
    stuck_time: float = 15.0  # [s] no progress this long: re-plan from the nearest node
    projection_iterations: int = 10  # at most this many Jacobi iterations of non-penetration
    door_clearance: float = 0.6  # [m] doors are moved out of walls to this clearance


@dataclass
class AgentArrays:
    """The crowd at one instant (world frame). Arrays are copies: safe to keep."""

    positions: NDArray[np.float64]  # (K,2) [m]
    velocities: NDArray[np.float64]  # (K,2) [m/s]
    radii: NDArray[np.float64]  # (K,) [m]
    heights: NDArray[np.float64]  # (K,) [m]
    kinds: NDArray[np.int8]  # (K,) 0 pedestrian, 1 cyclist
    ids: NDArray[np.int32]  # (K,)


class Crowd:
    """A social-force crowd on a site's walkways (see the module docstring).

    Raises:
        CrowdError: agents are asked for but the site has no walkways, or no free space.
    """

    def __init__(
        self,
        spec: CrowdSpec,
        site: Site,
        obstacles: Footprints,
        rng: np.random.Generator,
        *,
        config: CrowdConfig | None = None,
    ) -> None:
        self.spec = spec
        self.site = site
        self.footprints = obstacles
        self.rng = rng
        self.cfg = config or CrowdConfig()
        self.time = 0.0  # [s] since the crowd was made
        n_ped, n_cyc = int(spec.pedestrians), int(spec.cyclists)
        k = n_ped + n_cyc
        self._k = k
        # the state the compiled kernels work on, packed per agent (crowd_kernels: R_*, I_*);
        # the attributes below are views into it: assign into them, never rebind them
        self._real = np.zeros((k, kernels.N_REAL))
        self._int = np.zeros((k, kernels.N_INT), dtype=np.int64)
        real, ints = self._real, self._int
        self.pos = real[:, kernels.R_X : kernels.R_Y + 1]  # (K,2) [m]
        self.vel = real[:, kernels.R_VX : kernels.R_VY + 1]  # (K,2) [m/s]
        self.radius = real[:, kernels.R_RADIUS]  # [m]
        self.v0 = real[:, kernels.R_V0]  # [m/s] desired speed
        self.tau = real[:, kernels.R_TAU]  # [s] relaxation time
        self.timer = real[:, kernels.R_TIMER]  # [s] dwell/loiter time left
        self._best = real[:, kernels.R_BEST]  # [m] closest approach to the current waypoint
        self._since = real[:, kernels.R_SINCE]  # [s] since that approach improved by 0.5 m
        self._best[:] = np.inf
        self.kind = ints[:, kernels.I_KIND]  # 0 pedestrian, 1 cyclist
        self.mode = ints[:, kernels.I_MODE]  # walking, dwelling, loitering
        self.group = ints[:, kernels.I_GROUP]  # group id per agent; singles are their own group
        self.group[:] = np.arange(k)
        self._grouped = ints[:, kernels.I_GROUPED]  # 1: in a group of two or more
        self._standing = ints[:, kernels.I_STANDING]  # 1: a loiterer standing at its spot
        self._wp_idx = ints[:, kernels.I_WP_IDX]
        self._wp_len = ints[:, kernels.I_WP_LEN]
        self._wp_len[:] = 1
        ints[:, kernels.I_ORDER] = np.arange(k)  # agents by x, kept for the pair sweep
        self._events = ints[:, kernels.I_EVENTS]
        self._wp = np.zeros((k, 8, 2))
        self.height = np.zeros(k)
        self.ids = np.arange(k, dtype=np.int32)
        self.leader = np.arange(k)  # the agent whose plan this agent follows
        self.crossing = np.zeros(k, dtype=bool)
        self.lane = np.zeros(k)  # lateral offset as a share of the walkway width
        self._lateral = np.zeros(k)  # [m] extra lateral offset of group members
        self.home = np.full(k, "", dtype=object)  # current/last entrance (pedestrians)
        self.goal_name = np.full(k, "", dtype=object)  # destination node
        self._path_cache: dict[tuple[str, str, bool], list[str]] = {}
        self._edges: dict[tuple[str, str], tuple[float, float, float, float]] = {}
        self._params = kernel_params(self.cfg)
        self._wall_margin = max(self.cfg.pedestrian_radius_max, self.cfg.cyclist_radius) + 0.5
        self._index: WallIndex | None = None
        self._wall_arrays: WallArrays | None = None
        self._dynamic: tuple[Footprint, ...] = ()
        if k == 0:
            return
        self._build_graphs()
        self._spawn(n_ped, n_cyc)

    # -- public -------------------------------------------------------------------------------
    @property
    def state(self) -> AgentArrays:
        """Positions, velocities, radii, heights, kinds and ids of all agents (copies)."""
        return AgentArrays(
            positions=self.pos.copy(),
            velocities=self.vel.copy(),
            radii=self.radius.copy(),
            heights=self.height.copy(),
            kinds=self.kind.astype(np.int8),
            ids=self.ids.copy(),
        )

    @property
    def goals(self) -> NDArray[np.float64]:
        """(K,2) [m] the waypoint each agent is heading for now."""
        return self._wp[np.arange(self._k), self._wp_idx].copy()

    def step(
        self,
        dt: float,
        robot_xy: NDArray[np.float64],
        robot_velocity: NDArray[np.float64],
        robot_radius: float,
    ) -> None:
        """Advance the crowd by `dt` [s] (0.05-0.1 s) around a robot at `robot_xy` [m].

        The robot (a disc of `robot_radius` [m] moving at `robot_velocity` [m/s], world frame)
        repels agents; it is not moved. Agents never end the step inside a footprint or
        overlapping each other (to within 1 cm in a dense crowd; the projection stops at 0.5 mm
        or after `projection_iterations`).
        """
        self.time += dt
        if self._k == 0:
            return
        p = self._params
        p[kernels.P_DT] = dt
        p[kernels.P_ROBOT_X], p[kernels.P_ROBOT_Y] = robot_xy[0], robot_xy[1]
        p[kernels.P_ROBOT_VX], p[kernels.P_ROBOT_VY] = robot_velocity[0], robot_velocity[1]
        p[kernels.P_ROBOT_RADIUS] = robot_radius
        sdf, wall_real, wall_int = self._walls()
        if kernels.step(self._real, self._int, self._wp, p, sdf, wall_real, wall_int, True):
            self._events_happened()  # arrivals, stuck agents, pauses over: plans change
            kernels.step(self._real, self._int, self._wp, p, sdf, wall_real, wall_int, False)

    # -- set-up -------------------------------------------------------------------------------
    def _build_graphs(self) -> None:
        cfg = self.cfg
        walk = self.site.walkways
        g: nx.Graph = nx.Graph()
        for name, (x, y) in walk.nodes.items():
            g.add_node(name, pos=(float(x), float(y)))
        for a, b, width in walk.edges:
            pa, pb = np.asarray(walk.nodes[a]), np.asarray(walk.nodes[b])
            g.add_edge(a, b, length=float(np.linalg.norm(pa - pb)), width=float(width))
        if g.number_of_nodes() == 0:
            raise CrowdError(f"site {self.site.name}: no walkway nodes to put a crowd on")
        names = list(g.nodes)
        node_xy = np.array([g.nodes[n]["pos"] for n in names])
        self._doors: dict[str, str] = {}
        for ent, xy in sorted(self.site.entrances.items()):
            door = self._free_point(np.asarray(xy, dtype=float), cfg.door_clearance)
            if door is None:
                _log.warning("entrance %s of %s has no free space near it", ent, self.site.name)
                continue
            node = f"entrance:{ent}"
            order = np.argsort(np.hypot(*(node_xy - door).T))[:6]
            chosen = [
                names[i] for i in order if self.footprints.segment_free(door, node_xy[i], 0.2)
            ]
            link = chosen[0] if chosen else names[int(order[0])]
            g.add_node(node, pos=(float(door[0]), float(door[1])))
            length = float(np.linalg.norm(door - node_xy[names.index(link)]))
            g.add_edge(node, link, length=length, width=2.0)
            self._doors[ent] = node
        self.graph = g
        if self._doors:
            self._endpoints = list(self._doors.values())
        else:
            leaves = [n for n in names if g.degree(n) == 1]
            self._endpoints = leaves if len(leaves) >= 2 else names
        street = [
            (a, b)
            for a, b, d in g.edges(data=True)
            if not str(a).startswith("entrance:") and not str(b).startswith("entrance:")
        ]
        wide_edges = [e for e in street if g.edges[e]["width"] >= cfg.cyclist_min_width]
        if not wide_edges and street:
            top = max(g.edges[e]["width"] for e in street)
            wide_edges = [e for e in street if g.edges[e]["width"] >= top]
        if wide_edges:
            wide = g.edge_subgraph(wide_edges)
            comp = max(nx.connected_components(wide), key=len)
            self.cycle_graph: nx.Graph = wide.subgraph(comp).copy()
        else:
            self.cycle_graph = g

    def _free_point(self, xy: NDArray[np.float64], clearance: float) -> NDArray[np.float64] | None:
        """A point near `xy` at least `clearance` [m] from every footprint (exact), or None."""
        p = xy.copy()
        for _ in range(6):  # climb the distance field out of walls
            d, grad = self.footprints.distance_and_gradient(p[None])
            if d[0] >= clearance + self.footprints.cell:
                break
            gn = float(np.linalg.norm(grad[0]))
            if gn < 1e-6:
                break
            p = p + grad[0] / gn * (clearance + self.footprints.cell - d[0])
        if self.footprints.is_free(p[None], clearance)[0]:
            return p
        for r in np.arange(0.25, 6.0, 0.25):  # search rings around the original point
            ang = np.linspace(0, 2 * math.pi, max(8, int(2 * math.pi * r / 0.25)), endpoint=False)
            cand = xy + r * np.stack([np.cos(ang), np.sin(ang)], axis=1)
            ok = self.footprints.is_free(cand, clearance)
            if np.any(ok):
                return np.asarray(cand[int(np.argmax(ok))])
        return None

    def _spawn(self, n_ped: int, n_cyc: int) -> None:
        cfg, rng, spec = self.cfg, self.rng, self.spec
        k = n_ped + n_cyc
        self.kind[n_ped:] = CYCLIST
        self.radius[:n_ped] = rng.uniform(
            cfg.pedestrian_radius_min, cfg.pedestrian_radius_max, n_ped
        )
        self.radius[n_ped:] = cfg.cyclist_radius
        self.height[:n_ped] = rng.uniform(
            cfg.pedestrian_height_min, cfg.pedestrian_height_max, n_ped
        )
        self.height[n_ped:] = cfg.cyclist_height
        self.v0[:n_ped] = np.clip(
            rng.normal(cfg.pedestrian_speed_mean, cfg.pedestrian_speed_stddev, n_ped),
            cfg.pedestrian_speed_min,
            cfg.pedestrian_speed_max,
        )
        self.v0[n_ped:] = rng.uniform(cfg.cyclist_speed_min, cfg.cyclist_speed_max, n_cyc)
        self.tau[:n_ped] = cfg.relaxation_time
        self.tau[n_ped:] = cfg.cyclist_relaxation_time
        self.lane[:] = rng.uniform(-cfg.lane_fraction, cfg.lane_fraction, k)

        n_loiter = min(n_ped, round(spec.loiter_fraction * n_ped)) if self._doors else 0
        walkers = n_ped - n_loiter
        n_grouped = min(walkers, round(spec.group_fraction * walkers))
        idx = 0
        groups: list[list[int]] = []
        while n_grouped - sum(len(gr) for gr in groups) >= 2:
            left = n_grouped - sum(len(gr) for gr in groups)
            size = min(left, int(rng.integers(2, 5)))
            if left - size == 1:  # never leave a group of one
                size = size + 1 if size < 4 else size - 1
            groups.append(list(range(idx, idx + size)))
            idx += size
        groups += [[i] for i in range(idx, walkers)]
        for members in groups:
            lead = members[0]
            self.group[members] = lead
            self.leader[members] = lead
            slow = float(self.v0[members].min())
            self.v0[members] = slow * rng.uniform(1.0, 1.05, len(members))
            spread = (np.arange(len(members)) - 0.5 * (len(members) - 1)) * cfg.group_spacing
            self.lane[members] = self.lane[lead]
            self._lateral[members] = spread
        self._grouped[:] = [np.sum(self.group == self.group[i]) > 1 for i in range(k)]
        crossers = rng.random(len(groups)) < spec.crossing_fraction
        for members, cross in zip(groups, crossers, strict=True):
            self.crossing[members] = bool(cross)
            self._plan_walk(members, start_anywhere=True)
        for i in range(walkers, n_ped):
            self._start_loiter(i, initial=True)
        for i in range(n_ped, k):
            self._plan_ride(i, start_anywhere=True)
        self._settle()

    def _settle(self) -> None:
        """Separate the agents as placed: projection only, no motion."""
        for _ in range(30):
            self._project(2.0 * float(self.radius.max()) + 0.1)

    # -- planning -----------------------------------------------------------------------------
    def _shortest(self, graph: nx.Graph, a: str, b: str, cyc: bool) -> list[str]:
        key = (a, b, cyc)
        if key not in self._path_cache:
            try:
                self._path_cache[key] = nx.shortest_path(graph, a, b, weight="length")
            except nx.NetworkXNoPath:
                self._path_cache[key] = [a]
        return self._path_cache[key]

    def _route_points(self, nodes: list[str], graph: nx.Graph, agent: int) -> NDArray[np.float64]:
        """Waypoints of a node path, shifted onto the agent's lane within each walkway width."""
        pts = np.array([graph.nodes[n]["pos"] for n in nodes], dtype=float)
        if len(pts) < 2:
            return pts
        out = pts.copy()
        r = float(self.radius[agent])
        lane, lateral = float(self.lane[agent]), float(self._lateral[agent])
        shifted: list[int] = []
        cands: list[tuple[float, float]] = []
        for s in range(1, len(pts)):
            ln, nx, ny, width = self._edge(graph, nodes[s - 1], nodes[s])
            if ln < 1e-6 or (s == len(pts) - 1 and nodes[s].startswith("entrance:")):
                continue
            off = lane * width + lateral
            off = min(max(off, -(0.5 * width - r)), 0.5 * width - r) if width > 2 * r else 0.0
            shifted.append(s)
            cands.append((float(pts[s, 0]) + off * nx, float(pts[s, 1]) + off * ny))
        if shifted:  # a lane point is used where it is clear of walls (one grid query for all)
            cand = np.array(cands)
            ok = self.footprints.distance(cand) > r + 0.15
            out[np.asarray(shifted)[ok]] = cand[ok]
        return out

    def _edge(self, graph: nx.Graph, a: str, b: str) -> tuple[float, float, float, float]:
        """Length [m], unit normal (left of a -> b) and width [m] of a walkway edge (cached)."""
        key = (a, b)
        if key not in self._edges:
            seg = np.asarray(graph.nodes[b]["pos"], dtype=float) - np.asarray(
                graph.nodes[a]["pos"], dtype=float
            )
            ln = float(np.linalg.norm(seg))
            nx_, ny_ = (-float(seg[1]) / ln, float(seg[0]) / ln) if ln >= 1e-6 else (0.0, 0.0)
            self._edges[key] = (ln, nx_, ny_, float(graph.edges[a, b]["width"]))
        return self._edges[key]

    def _string_pull(self, pts: NDArray[np.float64], clearance: float) -> NDArray[np.float64]:
        keep = [0]
        i = 0
        while i < len(pts) - 1:
            j = len(pts) - 1
            while j > i + 1 and not self.footprints.segment_free(pts[i], pts[j], clearance):
                j -= 1
            keep.append(j)
            i = j
        return pts[keep]

    def _set_route(self, agent: int, pts: NDArray[np.float64], index: int = 0) -> None:
        n = len(pts)
        if n > self._wp.shape[1]:
            grown = np.zeros((self._k, max(n, 2 * self._wp.shape[1]), 2))
            grown[:, : self._wp.shape[1]] = self._wp
            self._wp = grown
        self._wp[agent, :n] = pts
        self._wp_len[agent] = n
        self._wp_idx[agent] = min(index, n - 1)
        self._best[agent] = np.inf
        self._since[agent] = 0.0

    def _plan_walk(self, members: list[int], *, start_anywhere: bool = False) -> None:
        """Plan a new walk for a group (leader first) from its entrance to another one."""
        rng = self.rng
        lead = members[0]
        ends = self._endpoints
        origin = str(self.home[lead]) or ends[int(rng.integers(len(ends)))]
        if origin not in self.graph:
            origin = self._nearest_node(self.pos[lead], self.graph)
        choices = [n for n in ends if n != origin] or ends
        dest = choices[int(rng.integers(len(choices)))]
        nodes = self._shortest(self.graph, origin, dest, False)
        along = rng.random() if start_anywhere else 0.0
        for m in members:
            pts = self._route_points(nodes, self.graph, m)
            if self.crossing[m] and len(pts) > 2:
                pts = self._string_pull(pts, float(self.radius[m]) + 0.3)
            if start_anywhere:
                p, idx = self._point_along(pts, along)
                p = p + self._behind(pts, idx, m, members)
                self.pos[m] = self._place(p, float(self.radius[m]))
                self._set_route(m, pts, idx)
                heading = pts[idx] - self.pos[m]
                self.vel[m] = heading / max(float(np.linalg.norm(heading)), 1e-6) * self.v0[m]
            else:
                self._set_route(m, pts, 1 if len(pts) > 1 else 0)
            self.mode[m] = _WALKING
            self.home[m] = origin
            self.goal_name[m] = dest

    def _behind(
        self, pts: NDArray[np.float64], idx: int, m: int, members: list[int]
    ) -> NDArray[np.float64]:
        """Initial offset of group member `m`: side by side across the walking direction."""
        if len(members) == 1 or idx == 0:
            return np.zeros(2)
        seg = pts[idx] - pts[idx - 1]
        ln = max(float(np.linalg.norm(seg)), 1e-6)
        return np.array([-seg[1], seg[0]]) / ln * self._lateral[m]

    def _plan_ride(self, agent: int, *, start_anywhere: bool = False) -> None:
        rng, g = self.rng, self.cycle_graph
        nodes = list(g.nodes)
        here = str(self.goal_name[agent]) or nodes[int(rng.integers(len(nodes)))]
        if here not in g:
            here = self._nearest_node(self.pos[agent], g)
        far = [n for n in nodes if n != here] or nodes
        dest = far[int(rng.integers(len(far)))]
        path = self._shortest(g, here, dest, True)
        pts = self._route_points(path, g, agent)
        if start_anywhere:
            p, idx = self._point_along(pts, rng.random())
            self.pos[agent] = self._place(p, float(self.radius[agent]))
            self._set_route(agent, pts, idx)
            heading = pts[idx] - self.pos[agent]
            self.vel[agent] = heading / max(float(np.linalg.norm(heading)), 1e-6) * self.v0[agent]
        else:
            self._set_route(agent, pts, 1 if len(pts) > 1 else 0)
        self.goal_name[agent] = dest
        self.mode[agent] = _WALKING

    def _start_loiter(self, agent: int, *, initial: bool = False) -> None:
        rng, cfg = self.rng, self.cfg
        doors = list(self._doors.values())
        if initial or str(self.home[agent]) not in self.graph:
            self.home[agent] = doors[int(rng.integers(len(doors)))]
        door = np.asarray(self.graph.nodes[str(self.home[agent])]["pos"])
        r = float(self.radius[agent])
        spot = door
        for _ in range(10):
            ang, dist = rng.uniform(0, 2 * math.pi), rng.uniform(0.5, cfg.loiter_radius)
            cand = door + dist * np.array([math.cos(ang), math.sin(ang)])
            if self.footprints.is_free(cand[None], r + 0.1)[0] and self.footprints.segment_free(
                door, cand, r
            ):
                spot = cand
                break
        if initial:
            self.pos[agent] = self._place(spot, r)
            self.v0[agent] = cfg.loiter_speed
        self._set_route(agent, spot[None])
        self.mode[agent] = _LOITERING
        self.timer[agent] = 0.0

    def _nearest_node(self, xy: NDArray[np.float64], graph: nx.Graph) -> str:
        names = list(graph.nodes)
        pts = np.array([graph.nodes[n]["pos"] for n in names])
        return str(names[int(np.argmin(np.hypot(*(pts - xy).T)))])

    @staticmethod
    def _point_along(pts: NDArray[np.float64], share: float) -> tuple[NDArray[np.float64], int]:
        """The point at `share` of a polyline's length, and the index of the next vertex."""
        if len(pts) < 2:
            return pts[0].copy(), 0
        seg = np.hypot(*np.diff(pts, axis=0).T)
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        s = share * cum[-1]
        k = int(np.clip(np.searchsorted(cum, s, side="right"), 1, len(pts) - 1))
        t = (s - cum[k - 1]) / max(seg[k - 1], 1e-9)
        return pts[k - 1] + t * (pts[k] - pts[k - 1]), k

    def _place(self, p: NDArray[np.float64], r: float) -> NDArray[np.float64]:
        if self.footprints.distance(p[None])[0] > r + 0.05:
            return p
        free = self._free_point(p, r + 0.05)
        if free is None:
            raise CrowdError(f"no free space for an agent near ({p[0]:.1f}, {p[1]:.1f})")
        return free

    # -- per-step behaviour -------------------------------------------------------------------
    def _events_happened(self) -> None:
        """Each agent's event of this step (bits from the kernel), in agent order."""
        events = self._events
        for i in np.flatnonzero(events):
            ev = int(events[i])
            self._event(int(i), bool(ev & kernels.EV_ARRIVED), bool(ev & kernels.EV_STUCK))

    def _event(self, i: int, arrived: bool, stuck: bool) -> None:
        """Arrival, timeout or no progress of agent `i`: what it does next."""
        cfg, rng = self.cfg, self.rng
        self._since[i] = 0.0
        if self.kind[i] == CYCLIST:
            if stuck:
                self.goal_name[i] = ""
            self._plan_ride(i)
            return
        if self.mode[i] == _LOITERING:
            if self._standing[i]:  # dwell over: shuffle to another spot
                self._standing[i] = False
                self._start_loiter(i)
            elif arrived:
                self._standing[i] = True
                self.timer[i] = rng.uniform(cfg.loiter_dwell_min, cfg.loiter_dwell_max)
            else:
                self._start_loiter(i)
            return
        if self.leader[i] != i:  # followers wait at the end for their leader's next plan
            if arrived:
                self.mode[i] = _DWELLING
                self.timer[i] = 0.0
            return
        members = [i] + [int(m) for m in np.flatnonzero(self.group == self.group[i]) if m != i]
        if self.mode[i] == _WALKING:
            if stuck:
                self.home[members] = self._nearest_node(self.pos[i], self.graph)
            else:
                self.home[members] = self.goal_name[i]
            self.mode[members] = _DWELLING
            self.timer[members] = rng.uniform(0.0, cfg.dwell_max) + 1e-3
        else:  # dwell over: set off again, followers from where they stand
            self._plan_walk(members)
            if len(members) > 1:
                self._wp_idx[members] = 0

    # -- non-penetration ----------------------------------------------------------------------
    def _project(self, cutoff: float) -> None:
        """Position-based projection of the agents as they stand (pairs within `cutoff` [m])."""
        pairs, n_pairs = kernels.find_pairs(self._real, self._int, cutoff)
        kernels.project(self._real, self._int, pairs, n_pairs, self._params, *self._walls())

    def _walls(self) -> KernelWalls:
        """The walls as the kernels take them (rebuilt when run-time obstacles change)."""
        fp = self.footprints
        dynamic = tuple(fp.obstacles.values())
        if self._index is None or fp.static is not self._index.static:
            self._index = WallIndex(fp.static, self._wall_margin)
            self._wall_arrays = None
        if self._wall_arrays is None or dynamic != self._dynamic:
            self._dynamic = dynamic
            self._wall_arrays = self._index.arrays(dynamic, fp)
        sdf = fp.field  # updated in place when run-time obstacles change
        return sdf, self._wall_arrays[0], self._wall_arrays[1]


class WallIndex:
    """Footprint polygons as flat arrays plus a bucket grid, for `crowd_kernels.nearest_wall`.

    Every static polygon is listed in each `bucket` [m] cell it comes within `margin` [m] of
    (shapely `dwithin` against the cell's square), so a nearest-polygon query within a cell is
    exact for distances below `margin`. Run-time obstacles are appended by `arrays` and checked
    for every query (there are few).
    """

    def __init__(self, static: tuple[Footprint, ...], margin: float, bucket: float = 1.0) -> None:
        self.static = static
        self.margin = margin
        polys = [f.polygon for f in static]
        self._rings = _rings(polys)
        if polys:
            b = shapely.total_bounds(polys)
            x0, y0 = b[0] - margin - bucket, b[1] - margin - bucket
            nbx = max(1, math.ceil((b[2] + margin + bucket - x0) / bucket))
            nby = max(1, math.ceil((b[3] + margin + bucket - y0) / bucket))
        else:
            x0, y0, nbx, nby = 0.0, 0.0, 1, 1
        ids: list[NDArray[np.int64]] = []
        owners: list[NDArray[np.int64]] = []
        for p, poly in enumerate(polys):
            lo_x, lo_y, hi_x, hi_y = poly.bounds
            ix = np.arange(
                max(0, int((lo_x - margin - x0) // bucket)),
                min(nbx, int((hi_x + margin - x0) // bucket) + 1),
            )
            iy = np.arange(
                max(0, int((lo_y - margin - y0) // bucket)),
                min(nby, int((hi_y + margin - y0) // bucket) + 1),
            )
            gx, gy = (a.ravel() for a in np.meshgrid(ix, iy))
            cells = shapely.box(
                x0 + gx * bucket, y0 + gy * bucket, x0 + (gx + 1) * bucket, y0 + (gy + 1) * bucket
            )
            near = shapely.dwithin(poly, cells, margin)
            ids.append((gy[near] * nbx + gx[near]).astype(np.int64))
            owners.append(np.full(int(near.sum()), p, dtype=np.int64))
        bucket_ids = np.concatenate(ids) if ids else np.zeros(0, dtype=np.int64)
        items = np.concatenate(owners) if owners else np.zeros(0, dtype=np.int64)
        order = np.argsort(bucket_ids, kind="stable")
        self.bucket_items = np.ascontiguousarray(items[order])
        self.bucket_start = np.zeros(nbx * nby + 1, dtype=np.int64)
        np.cumsum(np.bincount(bucket_ids, minlength=nbx * nby), out=self.bucket_start[1:])
        self.grid = (float(x0), float(y0), float(bucket), float(nbx), float(nby))

    def arrays(self, dynamic: tuple[Footprint, ...], fp: Footprints) -> WallArrays:
        """`wall_real` and `wall_int` (layout: `crowd_kernels`) of the static polygons, the
        run-time obstacles `dynamic` (checked for every query) and the field of `fp`."""
        verts, ring_len, poly_rings = self._rings
        if dynamic:
            d_verts, d_ring_len, d_poly_rings = _rings([f.polygon for f in dynamic])
            verts = np.vstack([verts, d_verts])
            ring_len = np.concatenate([ring_len, d_ring_len])
            poly_rings = np.concatenate([poly_rings, d_poly_rings])
        header = np.zeros(kernels.N_WALL_REAL)
        header[kernels.W_SDF_X0] = fp.bounds[0]
        header[kernels.W_SDF_Y0] = fp.bounds[1]
        header[kernels.W_CELL] = fp.cell
        (
            header[kernels.W_BUCKET_X0],
            header[kernels.W_BUCKET_Y0],
            header[kernels.W_BUCKET_SIZE],
            header[kernels.W_BUCKETS_X],
            header[kernels.W_BUCKETS_Y],
        ) = self.grid
        wall_real = np.concatenate([header, np.ravel(verts)])
        n_static = len(self.static)
        parts = [
            np.concatenate([[0], np.cumsum(ring_len)]),  # WI_RING_START
            np.concatenate([[0], np.cumsum(poly_rings)]),  # WI_POLY_RING
            self.bucket_start,  # WI_BUCKET_START
            self.bucket_items,  # WI_BUCKET_ITEMS
            np.arange(n_static, n_static + len(dynamic)),  # WI_ALWAYS
        ]
        starts = kernels.N_WALL_INT + np.concatenate([[0], np.cumsum([len(a) for a in parts])])
        wall_int = np.concatenate([starts, *parts]).astype(np.int64)
        return wall_real, wall_int


def _rings(
    polys: list[Polygon],
) -> tuple[NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """Closed rings of polygons (exterior, then holes): vertices, ring lengths, rings each."""
    coords: list[NDArray[np.float64]] = []
    lengths: list[int] = []
    per_poly: list[int] = []
    for poly in polys:
        rings = [poly.exterior, *poly.interiors]
        for ring in rings:
            xy = np.asarray(ring.coords, dtype=np.float64)[:, :2]
            coords.append(xy)
            lengths.append(len(xy))
        per_poly.append(len(rings))
    verts = np.vstack(coords) if coords else np.zeros((0, 2))
    return (
        verts,
        np.asarray(lengths, dtype=np.int64),
        np.asarray(per_poly, dtype=np.int64),
    )


def kernel_params(cfg: CrowdConfig) -> NDArray[np.float64]:
    """The parameter vector of `crowd_kernels` (indices `crowd_kernels.P_*`) from a config."""
    p = np.zeros(kernels.N_PARAMS)
    p[kernels.P_ROBOT_HORIZON] = cfg.robot_horizon
    p[kernels.P_ROBOT_STEER] = cfg.robot_steer_distance
    p[kernels.P_WALL_SLIDE] = cfg.wall_slide_distance
    p[kernels.P_INTERACTION] = cfg.interaction_radius
    p[kernels.P_CYCLIST_RANGE] = cfg.cyclist_range
    p[kernels.P_AGENT_RANGE] = cfg.agent_range
    p[kernels.P_AGENT_STRENGTH] = cfg.agent_strength
    p[kernels.P_GROUP_FACTOR] = cfg.group_strength_factor
    p[kernels.P_ANISOTROPY] = cfg.anisotropy
    p[kernels.P_WALL_STRENGTH] = cfg.wall_strength
    p[kernels.P_WALL_RANGE] = cfg.wall_range
    p[kernels.P_ROBOT_STRENGTH] = cfg.robot_strength
    p[kernels.P_ROBOT_RANGE] = cfg.robot_range
    p[kernels.P_COHESION] = cfg.cohesion
    p[kernels.P_GROUP_SPACING] = cfg.group_spacing
    p[kernels.P_MAX_SPEED_FACTOR] = cfg.max_speed_factor
    p[kernels.P_ITERATIONS] = cfg.projection_iterations
    p[kernels.P_WAYPOINT_RADIUS] = cfg.waypoint_radius
    p[kernels.P_CYCLIST_WAYPOINT_RADIUS] = cfg.cyclist_waypoint_radius
    p[kernels.P_STUCK_TIME] = cfg.stuck_time
    return p
