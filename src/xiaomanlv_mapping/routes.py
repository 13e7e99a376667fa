"""The route graph: drivable paths extracted from the driven trajectory and the grid's free space.

`route_graph` builds a `model.RouteGraph` in four steps:

1. **Paths from the drive, each once.** The trajectory is resampled every `sample_spacing`
   metres and walked in order (an incremental topological map, in the spirit of Thrun's
   "Learning metric-topological maps for indoor mobile robot navigation", AIJ 1998, on the robot's
   own path): a sample that comes within `merge_distance` of a vertex laid down earlier is that
   vertex when it got there by a detour at least `revisit_slack` longer than the gap, or drives
   the other way (back from a dead end) - so the path just driven does not count; otherwise it
   lays a new vertex. A stretch driven twice therefore maps onto the first pass (one edge, never
   two parallel ones); a crossing maps onto the vertex it crosses (a junction). A link that would
   only short-cut vertices already joined (a shortest path at most `detour_factor` times as long,
   `networkx` Dijkstra) is not added. Vertices of degree other than 2 become nodes (``junction``
   or ``end``), the chains between them edges; spurs shorter than `merge_distance` ending
   nowhere are pruned; a self-loop is split in three and a second edge between the same two
   nodes in two, so the graph is simple (no parallel edges).
2. **Stops and the station** (loading, charging) are attached by a connector from the nearest
   drivable point of the graph: a shortest path over a coarse grid (`connect_cell`) of the
   occupancy grid's cells that keep `clearance` (the robot's half width) from every obstacle, free
   cells costing their length and unknown cells `unknown_cost` times it (multi-source Dijkstra
   from the graph's cells, `scipy.sparse.csgraph.dijkstra`). The connector joins the graph where
   it meets it (the edge there is split; a node within `merge_distance` is reused) and ends at a
   node of kind ``stop`` or ``station`` named after the stop. A stop with no such path within
   `max_connector` metres gets no node and is reported with the reason the search gives
   (`UnreachableStop`): outside the grid, too far from the driven routes, or enclosed by
   obstacles (the pocket of passable cells round it, measured); `build_routes` returns them,
   `route_graph` raises naming every one.
3. **Width** of each edge, from the grid: at samples every `width_step` along it the width
   across it (left plus right distance along the normal to the first OCCUPIED cell, up to
   `max_width`), smoothed by a running median over `width_window` metres (a lamp post beside a
   wide path is not its width); the edge's width is the smallest of those (its narrowest
   place). Unknown cells do not narrow it: a connector through unobserved space has the width
   of the obstacles around it, and step 4 slows it instead. An edge measured narrower than
   `min_width` runs through cells the grid calls occupied although the drive passed there
   (something stood in the way, or a phantom obstacle): it keeps `min_width` and `min_speed`
   and is reported (`RouteResult.narrowed`), so the graph never holds a width the route file
   refuses.
4. **Speed limit** from width, linear between two widths::

       speed = min_speed + (max_speed - min_speed) * clamp((width - narrow_width)
                                                            / (wide_width - narrow_width), 0, 1)

   With the defaults: 0.5 m/s where the robot (1.0 m wide) has 1.5 m or less, its full 2.0 m/s
   (models/xiaomanlv/model.sdf) from 4 m, rounded down to 0.1 m/s. An edge of which less than
   `min_observed` runs over FREE cells (a stop connector through space the drive did not see)
   gets `min_speed`, whatever its width.

Frames: map (x, y) [m]; the grid must be axis-aligned (origin yaw 0).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import networkx as nx
import numpy as np
import shapely
from numpy.typing import NDArray
from scipy import sparse
from scipy.sparse import csgraph
from shapely.geometry import LineString, Point

from xiaomanlv_core.config import param, validate_fields
from xiaomanlv_core.types import Stop, StopSet
from xiaomanlv_mapping.model import (
    FREE,
    OCCUPIED,
    Grid,
    MappingError,
    PoseSeries,
    RouteEdge,
    RouteGraph,
    RouteNode,
)

_log = logging.getLogger(__name__)

F64 = NDArray[np.float64]


@dataclass(frozen=True)
class RouteConfig:
    """How the route graph is extracted (see the module docstring)."""

    sample_spacing: float = param(
        1.0, low=0.1, high=20.0, unit="m", description="trajectory resampling step"
    )  # [m]
    merge_distance: float = param(
        1.5, low=0.1, high=20.0, unit="m", description="a later pass this close is the same path"
    )  # [m]
    revisit_slack: float = param(
        2.0, low=0.0, high=100.0, unit="m", description="detour that makes a pass a revisit"
    )  # [m]
    detour_factor: float = param(
        1.5, low=1.0, high=10.0, description="a link is redundant if a path this much longer exists"
    )
    simplify_tolerance: float = param(
        0.1, low=0.0, high=5.0, unit="m", description="edge polyline simplification"
    )  # [m]
    connect_cell: float = param(
        0.5, low=0.05, high=5.0, unit="m", description="cell of the stop connector search"
    )  # [m]
    clearance: float = param(
        0.5, low=0.0, high=5.0, unit="m", description="connector distance from obstacles"
    )  # [m]
    unknown_cost: float = param(
        4.0, low=1.0, high=1000.0, description="cost per metre of unknown cells, free = 1"
    )
    max_connector: float = param(
        300.0, low=0.0, high=10000.0, unit="m", description="longest stop connector"
    )  # [m]
    width_step: float = param(
        0.2, low=0.01, high=10.0, unit="m", description="spacing of width samples along an edge"
    )  # [m]
    width_window: float = param(
        1.0, low=0.0, high=100.0, unit="m", description="running median of the width"
    )  # [m]
    min_observed: float = param(
        0.9,
        low=0.0,
        high=1.0,
        description="share of an edge over FREE cells below which it gets min_speed",
    )
    max_width: float = param(
        20.0, low=0.5, high=200.0, unit="m", description="widths are measured up to this"
    )  # [m]
    min_width: float = param(
        0.1,
        low=0.01,
        high=10.0,
        unit="m",
        description="an edge measured narrower (obstacles on the driven path) is given this",
    )  # [m]
    min_speed: float = param(
        0.5, low=0.05, high=10.0, unit="m/s", description="speed limit at narrow_width or less"
    )  # [m/s]
    max_speed: float = param(
        2.0, low=0.05, high=10.0, unit="m/s", description="speed limit at wide_width or more"
    )  # [m/s]
    narrow_width: float = param(
        1.5, low=0.0, high=50.0, unit="m", description="width of the slowest edges"
    )  # [m]
    wide_width: float = param(
        4.0, low=0.0, high=50.0, unit="m", description="width from which max_speed applies"
    )  # [m]

    def __post_init__(self) -> None:
        validate_fields(self)
        if self.wide_width <= self.narrow_width:
            raise MappingError(
                f"route config: wide_width ({self.wide_width} m) must exceed narrow_width "
                f"({self.narrow_width} m)"
            )
        if self.max_speed < self.min_speed:
            raise MappingError(
                f"route config: max_speed ({self.max_speed} m/s) is below min_speed "
                f"({self.min_speed} m/s)"
            )


def speed_for_width(width: float, config: RouteConfig) -> float:
    """The speed limit [m/s] of an edge `width` [m] wide (module docstring, step 4)."""
    c = config
    share = min(1.0, max(0.0, (width - c.narrow_width) / (c.wide_width - c.narrow_width)))
    speed = c.min_speed + (c.max_speed - c.min_speed) * share
    return max(c.min_speed, math.floor(speed * 10.0 + 1e-9) / 10.0)


# ---- step 1: the driven paths ---------------------------------------------------------------
def resample(xy: F64, spacing: float) -> F64:
    """Points every `spacing` [m] of travel along the polyline `xy` (N,2), ends included."""
    if len(xy) == 0:
        return xy.reshape(0, 2)
    step = np.linalg.norm(np.diff(xy, axis=0), axis=1)
    keep = np.concatenate([[True], step > 1e-9])
    xy = xy[keep]
    if len(xy) < 2:
        return xy[:1].copy()
    travel = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(xy, axis=0), axis=1))])
    n = max(2, math.ceil(travel[-1] / spacing) + 1)
    s = np.linspace(0.0, travel[-1], n)
    return np.stack([np.interp(s, travel, xy[:, 0]), np.interp(s, travel, xy[:, 1])], axis=1)


class _PathGraph:
    """Vertices laid along the drive (at most `capacity`), the travel at which each was laid,
    the direction it was driven in, and their links."""

    def __init__(self, capacity: int) -> None:
        self.n = 0
        self.xy = np.zeros((capacity, 2))
        self.laid_at = np.zeros(capacity)  # [m] travel
        self.heading = np.zeros((capacity, 2))  # unit direction of travel
        self.graph = nx.Graph()

    def add(self, p: F64, travel: float, heading: F64) -> int:
        i = self.n
        self.xy[i], self.laid_at[i], self.heading[i] = p, travel, heading
        self.n += 1
        self.graph.add_node(i)
        return i

    def link(self, a: int, b: int, detour_factor: float, slack: float) -> None:
        if a == b or self.graph.has_edge(a, b):
            return
        gap = float(np.linalg.norm(self.xy[a] - self.xy[b]))
        if self.graph.degree(a) and self.graph.degree(b):
            limit = detour_factor * gap + slack
            reach = nx.single_source_dijkstra_path_length(
                self.graph, a, cutoff=limit, weight="length"
            )
            if b in reach:
                return  # already joined: this link would only short-cut vertices
        self.graph.add_edge(a, b, length=gap)


def driven_paths(xy: F64, config: RouteConfig) -> tuple[nx.Graph, F64]:
    """Step 1 before node extraction: the vertex graph of the drive and the vertex positions."""
    samples = resample(xy, config.sample_spacing)
    ahead = np.diff(samples, axis=0, append=samples[-1:] + (samples[-1:] - samples[-2:-1]))
    if len(samples) < 2:
        ahead = np.array([[1.0, 0.0]])
    ahead /= np.maximum(np.linalg.norm(ahead, axis=1, keepdims=True), 1e-12)
    pg = _PathGraph(len(samples))
    travel = 0.0
    previous: int | None = None
    for k, p in enumerate(samples):
        if k:
            travel += float(np.linalg.norm(p - samples[k - 1]))
        current: int | None = None
        if pg.n:
            gap = np.linalg.norm(pg.xy[: pg.n] - p, axis=1)
            since = travel - pg.laid_at[: pg.n]
            # back by a detour, or back the way it came (a turn at a dead end)
            detour = since - gap > config.revisit_slack
            reverse = (pg.heading[: pg.n] @ ahead[k] < 0.0) & (since > gap + 1e-9)
            revisit = (gap < config.merge_distance) & (detour | reverse)
            if revisit.any():
                current = int(np.flatnonzero(revisit)[np.argmin(gap[revisit])])
        if current is None:
            current = pg.add(p, travel, ahead[k])
        if previous is not None:
            pg.link(previous, current, config.detour_factor, config.sample_spacing)
        previous = current
    return pg.graph, pg.xy[: pg.n].copy()


def _chains(graph: nx.Graph) -> list[list[int]]:
    """Vertex chains between vertices of degree != 2; a junction-free cycle is one closed chain."""
    nodes = {v for v in graph if graph.degree(v) != 2}
    chains: list[list[int]] = []
    seen: set[frozenset[int]] = set()
    for start in sorted(nodes):
        for nxt in sorted(graph.neighbors(start)):
            if frozenset((start, nxt)) in seen:
                continue
            chain = [start, nxt]
            seen.add(frozenset((start, nxt)))
            while chain[-1] not in nodes:
                a, b = chain[-2], chain[-1]
                step = next(n for n in graph.neighbors(b) if n != a)
                seen.add(frozenset((b, step)))
                chain.append(step)
            chains.append(chain)
    for comp in nx.connected_components(graph):
        if len(comp) > 2 and all(graph.degree(v) == 2 for v in comp):
            start = min(comp)
            cycle = [start, *[v for _, v in nx.find_cycle(graph, start)][:-1], start]
            chains.append(cycle)
    return chains


def _prune_spurs(graph: nx.Graph, xy: F64, shortest: float) -> None:
    """Drop dead-end chains shorter than `shortest` [m] hanging off a junction (in place)."""
    changed = True
    while changed:
        changed = False
        for chain in _chains(graph):
            ends = (graph.degree(chain[0]), graph.degree(chain[-1]))
            if chain[0] == chain[-1] or 1 not in ends or max(ends) < 3:
                continue
            length = float(np.linalg.norm(np.diff(xy[chain], axis=0), axis=1).sum())
            if length < shortest:
                tip = chain if ends[0] == 1 else chain[::-1]
                graph.remove_nodes_from(tip[:-1])
                changed = True
                break


# ---- the graph being assembled --------------------------------------------------------------
@dataclass
class _Node:
    x: float
    y: float
    kind: str
    name: str = ""


@dataclass
class _Edge:
    a: int
    b: int
    points: list[tuple[float, float]]


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[_Node] = []
        self.edges: list[_Edge | None] = []

    def node(self, x: float, y: float, kind: str, name: str = "") -> int:
        self.nodes.append(_Node(x, y, kind, name))
        return len(self.nodes) - 1

    def edge(self, a: int, b: int, points: Sequence[tuple[float, float]]) -> int:
        self.edges.append(_Edge(a, b, list(points)))
        return len(self.edges) - 1

    def live(self) -> list[tuple[int, _Edge]]:
        return [(i, e) for i, e in enumerate(self.edges) if e is not None]

    def split(self, index: int, at: tuple[float, float], snap: float) -> int:
        """Split edge `index` at the point of it nearest `at`; returns the node there."""
        e = self.edges[index]
        assert e is not None
        line = LineString(e.points)
        s = float(line.project(Point(at)))
        for end, dist in ((e.a, 0.0), (e.b, line.length)):
            if abs(s - dist) <= snap:
                return end
        p = line.interpolate(s)
        mid = self.node(float(p.x), float(p.y), "junction")
        first, second = _cut(e.points, s)
        self.edges[index] = None
        self.edge(e.a, mid, [*first, (float(p.x), float(p.y))])
        self.edge(mid, e.b, [(float(p.x), float(p.y)), *second])
        return mid

    def simple(self) -> None:
        """Split self-loops in three and a repeated node pair's edge in two (no multi-edges)."""
        pairs: set[frozenset[int]] = set()
        for i, e in self.live():
            key = frozenset((e.a, e.b))
            if e.a != e.b and key not in pairs:
                pairs.add(key)
                continue
            line = LineString(e.points)
            cuts = (1.0 / 3.0, 2.0 / 3.0) if e.a == e.b else (0.5,)
            self.edges[i] = None
            ends = [e.a]
            pieces: list[list[tuple[float, float]]] = []
            rest = list(e.points)
            done = 0.0
            for share in cuts:
                s = share * line.length
                p = line.interpolate(s)
                xy = (float(p.x), float(p.y))
                first, rest = _cut(rest, s - done)
                rest = [xy, *rest]
                pieces.append([*first, xy])
                ends.append(self.node(xy[0], xy[1], "junction"))
                done = s
            pieces.append(rest)
            ends.append(e.b)
            for k, piece in enumerate(pieces):
                pairs.add(frozenset((ends[k], ends[k + 1])))
                self.edge(ends[k], ends[k + 1], piece)


def _cut(
    points: Sequence[tuple[float, float]], s: float
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Vertices of a polyline strictly before and strictly after arc length `s` [m]."""
    p = np.asarray(points, dtype=np.float64)
    travel = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    before = [(float(x), float(y)) for (x, y), t in zip(p, travel, strict=True) if t < s - 1e-9]
    after = [(float(x), float(y)) for (x, y), t in zip(p, travel, strict=True) if t > s + 1e-9]
    return before, after


def _from_paths(graph: nx.Graph, xy: F64) -> _Builder:
    b = _Builder()
    ids: dict[int, int] = {}
    for v in sorted(graph):
        if graph.degree(v) != 2:
            kind = "end" if graph.degree(v) <= 1 else "junction"
            ids[v] = b.node(float(xy[v, 0]), float(xy[v, 1]), kind)
    for chain in _chains(graph):
        for v in (chain[0], chain[-1]):
            if v not in ids:  # a cycle with no junction: its first vertex becomes a node
                ids[v] = b.node(float(xy[v, 0]), float(xy[v, 1]), "junction")
        pts = [(float(xy[v, 0]), float(xy[v, 1])) for v in chain]
        b.edge(ids[chain[0]], ids[chain[-1]], pts)
    if graph.number_of_nodes() == 1:
        v = next(iter(graph))
        if v not in ids:
            ids[v] = b.node(float(xy[v, 0]), float(xy[v, 1]), "end")
    return b


# ---- step 2: stops --------------------------------------------------------------------------
@dataclass(frozen=True)
class _GridView:
    cells: NDArray[np.int8]
    res: float
    x0: float
    y0: float

    @classmethod
    def of(cls, grid: Grid) -> _GridView:
        cells = np.asarray(grid.cells)
        if cells.ndim != 2 or cells.size == 0:
            raise MappingError(
                f"routes: grid cells must be a non-empty 2D array, got {cells.shape}"
            )
        if abs(grid.origin[2]) > 1e-9:
            raise MappingError(f"routes: grid origin yaw must be 0, got {grid.origin[2]}")
        return cls(cells, float(grid.resolution), float(grid.origin[0]), float(grid.origin[1]))

    def index(self, xy: F64) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.bool_]]:
        col = np.floor((xy[:, 0] - self.x0) / self.res).astype(np.intp)
        row = np.floor((xy[:, 1] - self.y0) / self.res).astype(np.intp)
        inside = (row >= 0) & (col >= 0) & (row < self.cells.shape[0]) & (col < self.cells.shape[1])
        return row.clip(0, self.cells.shape[0] - 1), col.clip(0, self.cells.shape[1] - 1), inside


def _stop_list(stops: StopSet) -> list[tuple[Stop, str, str]]:
    out = [
        (stops.loading, "station", stops.loading.name or f"{stops.station}_loading"),
        (stops.charging, "station", stops.charging.name or f"{stops.station}_charging"),
    ]
    out += [(s, "stop", s.name) for s in stops.stops]
    return out


def _connector_tree(
    b: _Builder, view: _GridView, targets: F64, config: RouteConfig
) -> tuple[nx.Graph, F64, list[int | None], set[int], dict[int, str]]:
    """Shortest paths over the coarse grid from the graph's cells to each target (M,2).

    Returns the union of the paths (a forest of coarse-cell ids: paths that share cells share
    them once), the (n,2) [m] centres of the cells, each target's cell id (None where no path
    within `max_connector` reaches it), the cell ids where the forest meets the graph, and why
    each unreached target was not reached (by target index).
    """
    c = config
    k = max(1, round(c.connect_cell / view.res))
    rows, cols = view.cells.shape
    hb, wb = -(-rows // k), -(-cols // k)
    cell = k * view.res
    bottom, right = hb * k - rows, wb * k - cols
    open_cells = cv2.copyMakeBorder(
        (view.cells != OCCUPIED).astype(np.uint8), 0, bottom, 0, right, cv2.BORDER_CONSTANT, value=1
    )
    clear = cv2.distanceTransform(open_cells, cv2.DIST_L2, cv2.DIST_MASK_5)
    # a block is passable where any of its cells keeps the clearance: the block maximum, as a
    # dilation anchored at the block's corner sampled every k cells (numpy's 4D reduce is slow)
    widest = cv2.dilate(clear, np.ones((k, k), np.uint8), anchor=(0, 0))[::k, ::k]
    passable = widest * view.res >= c.clearance
    free = cv2.copyMakeBorder(
        (view.cells == FREE).astype(np.uint8) * np.uint8(255), 0, bottom, 0, right,
        cv2.BORDER_CONSTANT, value=0,
    )  # fmt: skip
    block_free = cv2.resize(free, (wb, hb), interpolation=cv2.INTER_AREA) >= 128  # half FREE
    cost = np.where(block_free, 1.0, c.unknown_cost)
    sources = np.zeros((hb, wb), dtype=np.uint8)
    for _, e in b.live():
        px = np.floor((np.asarray(e.points) - [view.x0, view.y0]) / cell).astype(np.int32)
        cv2.polylines(sources, [px.reshape(-1, 1, 2)], False, 1)
    trow = np.floor((targets[:, 1] - view.y0) / cell).astype(np.intp).clip(0, hb - 1)
    tcol = np.floor((targets[:, 0] - view.x0) / cell).astype(np.intp).clip(0, wb - 1)
    passable[trow, tcol] = True  # a stop's own cell: the robot parks there
    is_source = sources.astype(bool)
    passable |= is_source
    ids = np.full((hb, wb), -1, dtype=np.int64)
    n = int(passable.sum())
    ids[passable] = np.arange(n)
    r_idx, c_idx = np.nonzero(passable)
    heads, tails, weights = [], [], []
    for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
        r2, c2 = r_idx + dr, c_idx + dc
        ok = (r2 < hb) & (c2 >= 0) & (c2 < wb)
        r1, c1, r2, c2 = r_idx[ok], c_idx[ok], r2[ok], c2[ok]
        both = passable[r2, c2]
        r1, c1, r2, c2 = r1[both], c1[both], r2[both], c2[both]
        heads.append(ids[r1, c1])
        tails.append(ids[r2, c2])
        weights.append(0.5 * cell * math.hypot(dr, dc) * (cost[r1, c1] + cost[r2, c2]))
    matrix = sparse.coo_matrix(
        (np.concatenate(weights), (np.concatenate(heads), np.concatenate(tails))), shape=(n, n)
    ).tocsr()
    roots = ids[is_source]
    _, pred, _ = csgraph.dijkstra(
        matrix,
        directed=False,
        indices=roots,
        return_predecessors=True,
        limit=c.max_connector * c.unknown_cost,
        min_only=True,
    )
    forest = nx.Graph()
    target_ids: list[int | None] = []
    met: set[int] = set()
    failed: list[int] = []
    for i in range(len(targets)):
        node = int(ids[trow[i], tcol[i]])
        path = [node]
        while pred[path[-1]] >= 0:
            path.append(int(pred[path[-1]]))
        if not is_source[r_idx[path[-1]], c_idx[path[-1]]]:
            target_ids.append(None)
            failed.append(i)
            continue
        target_ids.append(node)
        met.add(path[-1])
        forest.add_node(node)
        nx.add_path(forest, path)
    centres = np.stack([view.x0 + (c_idx + 0.5) * cell, view.y0 + (r_idx + 0.5) * cell], axis=1)
    reasons: dict[int, str] = {}
    if failed:
        reasons = _why_unreached(
            view, targets, failed, matrix, roots, ids[trow, tcol], cell, config
        )
    return forest, centres, target_ids, met, reasons


def _why_unreached(
    view: _GridView,
    targets: F64,
    failed: Sequence[int],
    matrix: sparse.csr_matrix,
    roots: NDArray[np.int64],
    target_cells: NDArray[np.int64],
    cell: float,
    config: RouteConfig,
) -> dict[int, str]:
    """Why no connector reached each of `failed` (indices into `targets`): what the search
    found, for the build's report. The search is run again without `max_connector` and the
    pocket of passable cells round the stop is measured, so the reason tells "too far" from
    "walled in" from "standing on an obstacle"."""
    c = config
    dist = csgraph.dijkstra(matrix, directed=False, indices=roots, min_only=True)
    _, labels = csgraph.connected_components(matrix, directed=False)
    reasons: dict[int, str] = {}
    for i in failed:
        node = int(target_cells[i])
        r, col, _ = view.index(targets[i : i + 1])
        on_obstacle = view.cells[r[0], col[0]] == OCCUPIED
        if np.isfinite(dist[node]):
            reasons[i] = (
                f"no drivable path within {c.max_connector:g} m joins it to the driven routes: "
                f"the shortest keeping {c.clearance:g} m from obstacles weighs {dist[node]:.0f} m"
                f" (unknown ground counted {c.unknown_cost:g}x), over the limit of "
                f"{c.max_connector * c.unknown_cost:.0f} m; drive the mapping route closer to it"
            )
            continue
        pocket = int(np.count_nonzero(labels == labels[node]))
        where = "it stands on an occupied cell and " if on_obstacle else ""
        if pocket <= 1:
            reasons[i] = (
                f"no drivable path joins it to the driven routes: {where}no cell round it "
                f"keeps {c.clearance:g} m from obstacles (it is hemmed in by obstacles)"
            )
        else:
            reasons[i] = (
                f"no drivable path joins it to the driven routes: {where}it is enclosed by "
                f"obstacles, in a pocket of {pocket * cell * cell:.0f} m^2 with no way out "
                f"{2 * c.clearance:g} m wide"
            )
    return reasons


@dataclass(frozen=True)
class UnreachableStop:
    """A stop (or a station pose) no drivable path joins to the driven routes, and why."""

    name: str
    kind: str  # "stop" or "station"
    x: float  # [m] in map
    y: float  # [m] in map
    reason: str  # what the route builder found, for the build report and stops.yaml

    def __str__(self) -> str:
        return f"{self.kind} {self.name!r} at ({self.x:.1f}, {self.y:.1f}): {self.reason}"


def _attach_stops(
    b: _Builder, view: _GridView, stops: StopSet, config: RouteConfig
) -> list[UnreachableStop]:
    """Join every stop and station pose to the graph (module docstring, step 2); those no
    connector reaches are left out and returned with the reason."""
    every = _stop_list(stops)
    _, _, inside = view.index(np.array([[s.x, s.y] for s, _, _ in every], dtype=np.float64))
    unreachable = [
        UnreachableStop(name, kind, stop.x, stop.y, "lies outside the grid: the map does not "
                        "cover it; drive the mapping route near it and rebuild")
        for (stop, kind, name), ok in zip(every, inside, strict=True)
        if not ok
    ]  # fmt: skip
    entries = [e for e, ok in zip(every, inside, strict=True) if ok]
    targets = np.array([[s.x, s.y] for s, _, _ in entries], dtype=np.float64).reshape(-1, 2)
    forest, centres, target_ids, met, reasons = _connector_tree(b, view, targets, config)
    for i, ((stop, kind, name), tid) in enumerate(zip(entries, target_ids, strict=True)):
        if tid is None:
            unreachable.append(UnreachableStop(name, kind, stop.x, stop.y, reasons[i]))
    entries, target_ids = (
        [e for e, t in zip(entries, target_ids, strict=True) if t is not None],
        [t for t in target_ids if t is not None],
    )
    # where the connectors meet the graph: split the nearest edge there (nearest to the stop
    # itself when the stop's own cell is on the graph)
    on_graph = {tid: (s.x, s.y) for (s, _, _), tid in zip(entries, target_ids, strict=True)}
    at: dict[int, int] = {}
    for cell_id in sorted(met):
        live = b.live()
        lines = [LineString(e.points) for _, e in live]
        near = Point(on_graph.get(cell_id, centres[cell_id]))
        j = int(shapely.STRtree(lines).nearest(near))
        meet = lines[j].interpolate(lines[j].project(near))
        at[cell_id] = b.split(live[j][0], (float(meet.x), float(meet.y)), config.merge_distance)
    # the stops themselves (a second stop in the same cell hangs off the first)
    for (stop, kind, name), tid in zip(entries, target_ids, strict=True):
        assert tid is not None
        if tid in at:
            anchor = at[tid]
            if math.dist((b.nodes[anchor].x, b.nodes[anchor].y), (stop.x, stop.y)) < 1e-3:
                b.nodes[anchor].kind, b.nodes[anchor].name = kind, name
                continue
            node = b.node(stop.x, stop.y, kind, name)
            b.edge(anchor, node, [(b.nodes[anchor].x, b.nodes[anchor].y), (stop.x, stop.y)])
            continue
        at[tid] = b.node(stop.x, stop.y, kind, name)
    # branch points of the connectors
    for cell_id in forest:
        if cell_id not in at and forest.degree(cell_id) != 2:
            at[cell_id] = b.node(float(centres[cell_id, 0]), float(centres[cell_id, 1]), "junction")
    tol = 0.5 * config.clearance
    for chain in _chains_between(forest, set(at)):
        pts = [(float(centres[v, 0]), float(centres[v, 1])) for v in chain]
        pts[0] = (b.nodes[at[chain[0]]].x, b.nodes[at[chain[0]]].y)
        pts[-1] = (b.nodes[at[chain[-1]]].x, b.nodes[at[chain[-1]]].y)
        if len(pts) > 2 and tol > 0:
            pts = [(float(x), float(y)) for x, y in LineString(pts).simplify(tol).coords]
        b.edge(at[chain[0]], at[chain[-1]], pts)
    order = {name: k for k, (_, _, name) in enumerate(every)}
    return sorted(unreachable, key=lambda u: order[u.name])


def _chains_between(graph: nx.Graph, nodes: set[int]) -> list[list[int]]:
    """Paths of `graph` (a forest) between members of `nodes`, through non-members only."""
    chains: list[list[int]] = []
    seen: set[frozenset[int]] = set()
    for start in sorted(nodes):
        if start not in graph:
            continue
        for nxt in sorted(graph.neighbors(start)):
            if frozenset((start, nxt)) in seen:
                continue
            seen.add(frozenset((start, nxt)))
            chain = [start, nxt]
            while chain[-1] not in nodes:
                a, here = chain[-2], chain[-1]
                step = next(v for v in graph.neighbors(here) if v != a)
                seen.add(frozenset((here, step)))
                chain.append(step)
            chains.append(chain)
    return chains


# ---- steps 3 and 4: width and speed -----------------------------------------------------------
def edge_width(
    points: Sequence[tuple[float, float]], view: _GridView, config: RouteConfig
) -> tuple[float, float, tuple[float, float]]:
    """The narrowest width [m] across the polyline `points` between occupied cells, the
    share of it that runs over FREE cells (module docstring, step 3), and the point [m] where
    it is narrowest."""
    line = LineString(points)
    if line.length <= 0:
        r, c, inside = view.index(np.asarray(points[:1], dtype=np.float64))
        here = (float(points[0][0]), float(points[0][1]))
        return 0.0, float(inside[0] and view.cells[r[0], c[0]] == FREE), here
    n = max(2, math.ceil(line.length / config.width_step) + 1)
    s = np.linspace(0.0, line.length, n)
    xy = shapely.get_coordinates(shapely.line_interpolate_point(line, s))
    d = 0.5 * config.width_step
    ahead = shapely.get_coordinates(
        shapely.line_interpolate_point(line, np.minimum(s + d, line.length))
    )
    behind = shapely.get_coordinates(shapely.line_interpolate_point(line, np.maximum(s - d, 0.0)))
    tangent = ahead - behind
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-12)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    step = 0.5 * view.res
    reach = np.arange(1, math.ceil(0.5 * config.max_width / step) + 1) * step  # (K,)
    sides = []
    for sign in (1.0, -1.0):
        probe = xy[:, None, :] + sign * normal[:, None, :] * reach[None, :, None]  # (n,K,2)
        r, c, inside = view.index(probe.reshape(-1, 2))
        blocked = (view.cells[r, c] == OCCUPIED) | ~inside
        blocked = blocked.reshape(len(xy), len(reach))
        first = np.where(blocked.any(axis=1), blocked.argmax(axis=1), len(reach))
        sides.append(np.where(first > 0, reach[np.maximum(first - 1, 0)], 0.0))
    width = np.minimum(sides[0] + sides[1], config.max_width)
    win = max(1, round(config.width_window / config.width_step))
    centre = xy
    if win > 1 and len(width) >= win:
        view_w = np.lib.stride_tricks.sliding_window_view(width, win)
        width = np.median(view_w, axis=1)
        centre = xy[win // 2 : win // 2 + len(width)]
    r, c, inside = view.index(xy)
    observed = float(np.mean(inside & (view.cells[r, c] == FREE)))
    k = int(np.argmin(width))
    return float(width[k]), observed, (float(centre[k, 0]), float(centre[k, 1]))


# ---- the whole ------------------------------------------------------------------------------
@dataclass(frozen=True)
class NarrowedEdge:
    """An edge whose measured width was below `RouteConfig.min_width`: the grid has obstacles
    on the path the drive took there (something that stood in the way, or a phantom)."""

    id: int  # RouteEdge.id
    width: float  # [m] as measured
    at: tuple[float, float]  # [m] in map: where it is narrowest

    def __str__(self) -> str:
        return f"edge {self.id}: {self.width:.2f} m wide at ({self.at[0]:.1f}, {self.at[1]:.1f})"


@dataclass(frozen=True)
class RouteResult:
    """What `build_routes` found: the graph, the stops it could not join, the edges it had
    to widen to the smallest width a route file holds."""

    graph: RouteGraph
    unreachable: tuple[UnreachableStop, ...]
    narrowed: tuple[NarrowedEdge, ...]


def route_graph(
    trajectory: PoseSeries, grid: Grid, stops: StopSet, *, config: RouteConfig | None = None
) -> RouteGraph:
    """The route graph of a mapping drive (module docstring), every stop joined.

    Args:
        trajectory: the drive's poses map <- base_link (the estimate), in time order.
        grid: the occupancy grid of the same map (`grid.grid_from_cloud`).
        stops: the station and the delivery stops (map frame).
        config: extraction parameters (defaults: `RouteConfig()`).

    Returns:
        A connected graph (networkx-checked) holding a node per stop and the station's loading
        and charging poses, edges with their polyline, width and speed limit.

    Raises:
        MappingError: a trajectory that is empty or not finite, a rotated grid, or stops that
            no drivable path joins to the driven routes (every one named, with the reason).
    """
    result = build_routes(trajectory, grid, stops, config=config)
    if result.unreachable:
        raise MappingError(unreachable_message(result.unreachable))
    return result.graph


def unreachable_message(unreachable: Sequence[UnreachableStop]) -> str:
    """One message naming every unreachable stop with its reason."""
    lines = "; ".join(str(u) for u in unreachable)
    return f"routes: {len(unreachable)} unreachable: {lines}"


def build_routes(
    trajectory: PoseSeries, grid: Grid, stops: StopSet, *, config: RouteConfig | None = None
) -> RouteResult:
    """The route graph of a mapping drive (module docstring), with what could not be joined.

    Stops (and station poses) that no drivable path joins to the driven routes get no node;
    each is returned with the reason (outside the grid; too far; enclosed by obstacles). An
    edge narrower than `min_width` (obstacles on the driven path: a route file refuses a
    width of 0) is given `min_width` and `min_speed` and returned in ``narrowed``; the graph
    returned is always one that `mapfiles.write_routes` accepts.

    Raises:
        MappingError: a trajectory that is empty or not finite, a rotated grid, a graph that
            falls apart.
    """
    cfg = config or RouteConfig()
    poses = np.asarray(trajectory.poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or len(poses) == 0:
        raise MappingError(f"routes: trajectory.poses must be (N,4,4), got shape {poses.shape}")
    xy = poses[:, :2, 3]
    if not np.all(np.isfinite(xy)):
        raise MappingError("routes: trajectory holds NaN or infinite positions")
    view = _GridView.of(grid)
    graph, verts = driven_paths(xy, cfg)
    _prune_spurs(graph, verts, cfg.merge_distance)
    b = _from_paths(graph, verts)
    unreachable = _attach_stops(b, view, stops, cfg)
    b.simple()
    # renumber and measure
    live = b.live()
    used = sorted({e.a for _, e in live} | {e.b for _, e in live} | _named(b))
    new_id = {old: i for i, old in enumerate(used)}
    nodes = tuple(
        RouteNode(new_id[i], b.nodes[i].x, b.nodes[i].y, b.nodes[i].kind, b.nodes[i].name)
        for i in used
    )
    edges = []
    narrowed = []
    for k, (_, e) in enumerate(live):
        pts = e.points
        if cfg.simplify_tolerance > 0 and len(pts) > 2:
            pts = [
                (float(x), float(y))
                for x, y in LineString(pts).simplify(cfg.simplify_tolerance).coords
            ]
        width, observed, narrowest = edge_width(e.points, view, cfg)
        speed = speed_for_width(width, cfg) if observed >= cfg.min_observed else cfg.min_speed
        eid = len(nodes) + k  # Nav2's route graph: ids unique across nodes and edges
        if round(width, 2) < cfg.min_width:
            narrowed.append(NarrowedEdge(eid, width, narrowest))
            width, speed = cfg.min_width, cfg.min_speed
        edges.append(
            RouteEdge(
                id=eid,
                start=new_id[e.a],
                end=new_id[e.b],
                points=tuple(pts),
                speed_limit=speed,
                width=round(width, 2),
            )
        )
    for n in narrowed:
        _log.warning(
            "routes: %s (below %g m): the grid has obstacles on the driven path there; "
            "the edge keeps %g m and %g m/s",
            n, cfg.min_width, cfg.min_width, cfg.min_speed,
        )  # fmt: skip
    result = RouteGraph(nodes=nodes, edges=tuple(edges))
    check = nx.Graph()
    check.add_nodes_from(n.id for n in nodes)
    check.add_edges_from((e.start, e.end) for e in edges)
    if not nx.is_connected(check):
        parts = sorted(nx.connected_components(check), key=len)
        lost = [n.name or f"node {n.id}" for n in nodes if n.id in parts[0]]
        raise MappingError(
            f"routes: the graph falls apart in {len(parts)} pieces; cut off: {lost[:5]}"
        )
    _log.info("route graph: %d nodes, %d edges", len(nodes), len(edges))
    return RouteResult(result, tuple(unreachable), tuple(narrowed))


def _named(b: _Builder) -> set[int]:
    return {i for i, n in enumerate(b.nodes) if n.kind in ("stop", "station")}
