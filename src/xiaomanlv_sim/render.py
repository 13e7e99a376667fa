"""Top-down picture of a world: footprints by category, walkways, stops, agents, a trajectory.

`render_top_down` draws with OpenCV in the world frame seen from above (x east to the right,
y north up), at `resolution` metres per pixel. Every shape is projected whole (a tree shows its
canopy, a kerb its outline), filled in its category colour (`CATEGORY_COLOURS`), in an order
that keeps what matters on top: fields, walkways, ramps and kerbs, trees, then buildings, walls,
cars and street furniture. Site data (walkways at their width, entrances, stops with their
names, the station) come from the site sidecar; run-time obstacles, agents, a trajectory, the
sidecar's mapping route (dashed, its start ringed) and the problems `xiaomanlv_sim.sitecheck`
found (numbered rings, red for errors, amber for warnings, in the order they were reported) are
optional overlays. A panel east of the map holds the title, a north arrow, the legend and a
scale bar, so nothing covers the map.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray

from xiaomanlv_core.site import Site
from xiaomanlv_sim.agents import AgentArrays
from xiaomanlv_sim.footprint import obstacle_polygon, shape_footprint
from xiaomanlv_sim.scenario import ObstacleSpec
from xiaomanlv_sim.sitecheck import SiteProblem
from xiaomanlv_sim.world import Plane, World

_log = logging.getLogger(__name__)

RGB = tuple[int, int, int]

BACKGROUND: RGB = (236, 233, 222)  # paved/open ground
CATEGORY_COLOURS: dict[str, RGB] = {
    "field": (150, 200, 130),
    "ground": BACKGROUND,
    "ramp": (225, 200, 140),
    "kerb": (170, 170, 170),
    "tree": (60, 140, 60),
    "building": (178, 90, 70),
    "wall": (80, 80, 80),
    "fence": (120, 100, 80),
    "gate": (150, 60, 150),
    "car": (70, 120, 190),
    "bench": (140, 90, 40),
    "bollard": (40, 40, 40),
    "lamp_post": (230, 180, 0),
    "": (120, 120, 120),  # no category
}
WALKWAY: RGB = (250, 248, 240)
WALKWAY_EDGE: RGB = (200, 195, 180)
OBSTACLE: RGB = (255, 110, 0)
PEDESTRIAN: RGB = (220, 0, 140)
CYCLIST: RGB = (0, 170, 210)
TRAJECTORY: RGB = (20, 40, 200)
STOP: RGB = (220, 30, 30)
STATION: RGB = (30, 60, 220)
ENTRANCE: RGB = (255, 150, 0)
TEXT: RGB = (20, 20, 20)
POINTS: RGB = (0, 190, 90)
ROUTE: RGB = (0, 120, 120)
PROBLEM_ERROR: RGB = (230, 0, 0)
PROBLEM_WARNING: RGB = (240, 160, 0)
PANEL_WIDTH = 190  # [px] the legend panel east of the map

# draw order: later categories cover earlier ones
_ORDER = ["field", "ground", "ramp", "kerb", "tree", "", "building", "wall", "fence", "gate"]
_ORDER += ["car", "bench", "bollard", "lamp_post"]


class RenderError(ValueError):
    """Nothing to draw, or a bad resolution or trajectory."""


def bgr(c: RGB) -> tuple[int, int, int]:
    return (c[2], c[1], c[0])


class Canvas:
    def __init__(self, bounds: tuple[float, float, float, float], resolution: float) -> None:
        self.x0, self.y0, x1, y1 = bounds
        self.res = resolution
        self.width = max(1, math.ceil((x1 - self.x0) / resolution))
        self.height = max(1, math.ceil((y1 - self.y0) / resolution))
        self.y1 = self.y0 + self.height * resolution
        self.img = np.empty((self.height, self.width, 3), dtype=np.uint8)
        self.img[:] = bgr(BACKGROUND)

    def px(self, xy: NDArray[np.float64]) -> NDArray[np.int32]:
        """World [m] (N,2) to integer pixel (col, row); row 0 is the north edge."""
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        cols = (xy[:, 0] - self.x0) / self.res
        rows = (self.y1 - xy[:, 1]) / self.res
        return np.round(np.stack([cols, rows], axis=1)).astype(np.int32)

    def polygon(self, coords: NDArray[np.float64], colour: RGB, outline: RGB | None = None) -> None:
        pts = self.px(coords)
        cv2.fillPoly(self.img, [pts], bgr(colour), lineType=cv2.LINE_AA)
        if outline is not None:
            cv2.polylines(self.img, [pts], True, bgr(outline), 1, lineType=cv2.LINE_AA)

    def text(self, xy: tuple[int, int], s: str, scale: float = 0.45, colour: RGB = TEXT) -> None:
        x, y = xy
        cv2.putText(
            self.img, s, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 3, cv2.LINE_AA
        )
        cv2.putText(
            self.img, s, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, bgr(colour), 1, cv2.LINE_AA
        )


def _world_polygons(world: World) -> list[tuple[str, NDArray[np.float64]]]:
    """(category, exterior coords) of every shape projected whole onto the ground."""
    out = []
    for shape in world.shapes:
        if isinstance(shape.geometry, Plane) and shape.category in ("ground", ""):
            continue  # the ground plane is the background
        poly = shape_footprint(shape, -1e6, 1e6)
        if poly is not None:
            out.append((shape.category, np.asarray(poly.exterior.coords)))
    return out


def _bounds(
    polys: Sequence[tuple[str, NDArray[np.float64]]],
    site: Site | None,
    extra: Iterable[NDArray[np.float64]],
) -> tuple[float, float, float, float]:
    pts = [c for _, c in polys]
    if site is not None:
        pts += [np.array(list(site.walkways.nodes.values()), dtype=float).reshape(-1, 2)]
        pts += [np.array([[s.pose.x, s.pose.y] for s in site.stops], dtype=float).reshape(-1, 2)]
        pts += [np.array([[site.station.loading.x, site.station.loading.y]])]
    pts += [np.asarray(e, dtype=float).reshape(-1, 2) for e in extra]
    pts = [p for p in pts if len(p)]
    if not pts:
        raise RenderError("nothing to draw: the world has no shapes and there is no site")
    allp = np.vstack(pts)
    margin = 12.0
    lo, hi = allp.min(axis=0) - margin, allp.max(axis=0) + margin
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def render_top_down(
    world: World,
    site: Site | None = None,
    *,
    agents: AgentArrays | None = None,
    trajectory: NDArray[np.float64] | None = None,
    obstacles: Sequence[ObstacleSpec] = (),
    resolution: float = 0.25,
    path: Path,
    title: str | None = None,
    window: tuple[float, float, float, float] | None = None,
    points: NDArray[np.float64] | None = None,
    route: NDArray[np.float64] | None = None,
    problems: Sequence[SiteProblem] = (),
) -> Path:
    """Draw `world` from above and write a PNG to `path`; returns `path`.

    Args:
        world: the static world (world frame, metres).
        site: its sidecar: walkways, entrances, stops (labelled) and the station.
        agents: the crowd (`Crowd.state`): pedestrians as magenta discs, cyclists cyan.
        trajectory: (N,2) [m] a path to draw as a polyline (start green, end red).
        obstacles: run-time obstacles (drawn orange, whether or not they are present yet).
        resolution: [m/px].
        path: the PNG file to write (folders are created).
        title: text in the top-left corner (default: the world name).
        window: (xmin, ymin, xmax, ymax) [m] draw only this part of the world (default: all).
        points: (N,2) [m] sensor returns in the world frame (a lidar scan), drawn as dots.
        route: (N,2) [m] a mapping route's waypoints: a dashed polyline, its start ringed.
        problems: site check findings; each with a place is a ring numbered 1.. in list order.

    Raises:
        RenderError: resolution <= 0, a trajectory, route or points that are not (N,2), an
            empty window, or nothing to draw.
    """
    if not resolution > 0:
        raise RenderError(f"resolution must be > 0 m/px, got {resolution}")
    traj = None
    if trajectory is not None:
        traj = np.asarray(trajectory, dtype=float)
        if traj.ndim != 2 or traj.shape[1] < 2 or not np.all(np.isfinite(traj[:, :2])):
            raise RenderError(f"trajectory must be a finite (N,2) array, got shape {traj.shape}")
        traj = traj[:, :2]
    waypoints = None
    if route is not None:
        waypoints = np.asarray(route, dtype=float)
        if waypoints.ndim != 2 or waypoints.shape[1] != 2 or not np.all(np.isfinite(waypoints)):
            raise RenderError(f"route must be a finite (N,2) array, got shape {waypoints.shape}")
    dots = None
    if points is not None:
        dots = np.asarray(points, dtype=float)
        if dots.ndim != 2 or dots.shape[1] < 2 or not np.all(np.isfinite(dots[:, :2])):
            raise RenderError(f"points must be a finite (N,2) array, got shape {dots.shape}")
        dots = dots[:, :2]
    polys = _world_polygons(world)
    extra: list[NDArray[np.float64]] = [] if traj is None else [traj]
    if window is not None:
        if not (window[2] > window[0] and window[3] > window[1]):
            raise RenderError(f"window must be (xmin, ymin, xmax, ymax) with max > min: {window}")
        x0, y0, x1, y1 = (float(v) for v in window)
        bounds = (x0, y0, x1, y1)
    else:
        bounds = _bounds(polys, site, extra)
    canvas = Canvas(bounds, resolution)
    cv = canvas
    by_cat: dict[str, list[NDArray[np.float64]]] = {}
    for cat, coords in polys:
        by_cat.setdefault(cat if cat in CATEGORY_COLOURS else "", []).append(coords)
    present = [c for c in _ORDER if c in by_cat]
    for cat in ("field", "ground"):
        for coords in by_cat.get(cat, []):
            cv.polygon(coords, CATEGORY_COLOURS[cat])
    if site is not None:
        _draw_walkways(cv, site)
    for cat in _ORDER:
        if cat in ("field", "ground"):
            continue
        colour = CATEGORY_COLOURS[cat]
        for coords in by_cat.get(cat, []):
            outline = (90, 90, 90) if cat == "kerb" else None
            cv.polygon(coords, colour, outline)
    for ob in obstacles:
        cv.polygon(np.asarray(obstacle_polygon(ob).exterior.coords), OBSTACLE, (160, 60, 0))
        c = cv.px(np.array([ob.pose.x, ob.pose.y]))[0]  # a ring so a trolley shows at any scale
        cv2.circle(cv.img, (int(c[0]), int(c[1])), 9, bgr(OBSTACLE), 2, cv2.LINE_AA)
    if waypoints is not None and len(waypoints):
        _draw_route(cv, waypoints)
    if site is not None:
        _draw_site(cv, site)
    if agents is not None:
        _draw_agents(cv, agents)
    if dots is not None and len(dots):
        for col, row in cv.px(dots):
            cv2.circle(cv.img, (int(col), int(row)), 1, bgr(POINTS), -1)
    if traj is not None and len(traj):
        pts = cv.px(traj)
        cv2.polylines(cv.img, [pts], False, bgr(TRAJECTORY), 2, lineType=cv2.LINE_AA)
        cv2.circle(cv.img, tuple(int(v) for v in pts[0]), 5, bgr((0, 170, 0)), -1, cv2.LINE_AA)
        cv2.circle(cv.img, tuple(int(v) for v in pts[-1]), 5, bgr((200, 0, 0)), -1, cv2.LINE_AA)
    _draw_problems(cv, problems)
    entries = _legend_entries(
        present, site is not None, agents is not None, traj is not None, bool(obstacles)
    )
    if dots is not None:
        entries.append(("lidar return", POINTS))
    if waypoints is not None:
        entries.append(("mapping route", ROUTE))
    severities = {p.severity for p in problems if p.where is not None}
    if "error" in severities:
        entries.append(("site error", PROBLEM_ERROR))
    if "warning" in severities:
        entries.append(("site warning", PROBLEM_WARNING))
    image = with_panel(cv, entries, title or world.name)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise RenderError(f"could not write {path}")
    _log.info("wrote %s (%dx%d px, %.2f m/px)", path, image.shape[1], image.shape[0], resolution)
    return path


def _draw_walkways(cv: Canvas, site: Site) -> None:
    nodes = site.walkways.nodes
    for a, b, width in site.walkways.edges:
        pts = cv.px(np.array([nodes[a], nodes[b]], dtype=float))
        thick = max(1, round(width / cv.res))
        p0, p1 = (int(pts[0, 0]), int(pts[0, 1])), (int(pts[1, 0]), int(pts[1, 1]))
        cv2.line(cv.img, p0, p1, bgr(WALKWAY_EDGE), thick + 2, cv2.LINE_AA)
    for a, b, width in site.walkways.edges:
        pts = cv.px(np.array([nodes[a], nodes[b]], dtype=float))
        thick = max(1, round(width / cv.res))
        p0, p1 = (int(pts[0, 0]), int(pts[0, 1])), (int(pts[1, 0]), int(pts[1, 1]))
        cv2.line(cv.img, p0, p1, bgr(WALKWAY), thick, cv2.LINE_AA)


def _draw_site(cv: Canvas, site: Site) -> None:
    for xy in site.entrances.values():
        p = cv.px(np.array(xy, dtype=float))[0]
        cv2.circle(cv.img, (int(p[0]), int(p[1])), 4, bgr(ENTRANCE), -1, cv2.LINE_AA)
    for stop in site.stops:
        p = cv.px(np.array([stop.pose.x, stop.pose.y]))[0]
        c = (int(p[0]), int(p[1]))
        tip = (int(c[0] + 9 * math.cos(stop.pose.yaw)), int(c[1] - 9 * math.sin(stop.pose.yaw)))
        cv2.circle(cv.img, c, 5, bgr(STOP), -1, cv2.LINE_AA)
        cv2.line(cv.img, c, tip, bgr(STOP), 2, cv2.LINE_AA)
        cv.text((c[0] + 7, c[1] - 7), stop.name, 0.4, STOP)
    st = site.station
    for pose, tag in ((st.loading, "L"), (st.charging, "C")):
        p = cv.px(np.array([pose.x, pose.y]))[0]
        c = (int(p[0]), int(p[1]))
        cv2.rectangle(cv.img, (c[0] - 7, c[1] - 7), (c[0] + 7, c[1] + 7), bgr(STATION), -1)
        cv2.putText(
            cv.img, tag, (c[0] - 5, c[1] + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1
        )
    p = cv.px(np.array([st.loading.x, st.loading.y]))[0]
    cv.text((int(p[0]) + 10, int(p[1]) + 20), st.name, 0.45, STATION)


def _draw_route(cv: Canvas, waypoints: NDArray[np.float64]) -> None:
    """The mapping route: 2 px dashes (6 px on, 4 off) along the polyline, its start ringed."""
    pts = cv.px(waypoints).astype(float)
    dash, gap = 6.0, 4.0
    for p0, p1 in itertools.pairwise(pts):
        length = float(np.hypot(*(p1 - p0)))
        s = 0.0
        while s < length:
            e = min(s + dash, length)
            a = p0 + (p1 - p0) * (s / length)
            b = p0 + (p1 - p0) * (e / length)
            cv2.line(
                cv.img,
                (round(a[0]), round(a[1])),
                (round(b[0]), round(b[1])),
                bgr(ROUTE),
                2,
                cv2.LINE_AA,
            )
            s = e + gap
    c = (round(pts[0][0]), round(pts[0][1]))
    cv2.circle(cv.img, c, 8, bgr(ROUTE), 2, cv2.LINE_AA)


def _draw_problems(cv: Canvas, problems: Sequence[SiteProblem]) -> None:
    """Each located problem: a ring (red error, amber warning) numbered in report order."""
    for k, problem in enumerate(problems, start=1):
        if problem.where is None:
            continue
        colour = PROBLEM_ERROR if problem.severity == "error" else PROBLEM_WARNING
        p = cv.px(np.array(problem.where, dtype=float))[0]
        c = (int(p[0]), int(p[1]))
        cv2.circle(cv.img, c, 11, bgr(colour), 3, cv2.LINE_AA)
        cv.text((c[0] + 13, c[1] + 5), str(k), 0.5, colour)


def _draw_agents(cv: Canvas, agents: AgentArrays) -> None:
    positions = np.asarray(agents.positions, dtype=float).reshape(-1, 2)
    radii = np.asarray(agents.radii, dtype=float)
    kinds = np.asarray(agents.kinds, dtype=int)
    pts = cv.px(positions)
    for (x, y), r, k in zip(pts, radii, kinds, strict=True):
        colour = CYCLIST if k == 1 else PEDESTRIAN
        rad = max(2, round(r / cv.res))
        cv2.circle(cv.img, (int(x), int(y)), rad, bgr(colour), -1, cv2.LINE_AA)


def _legend_entries(
    present: Sequence[str], site: bool, agents: bool, trajectory: bool, obstacles: bool
) -> list[tuple[str, RGB]]:
    entries = [(c or "other", CATEGORY_COLOURS[c]) for c in present if c != "ground"]
    if site:
        entries += [("walkway", WALKWAY), ("stop", STOP), ("station", STATION)]
        entries.append(("entrance", ENTRANCE))
    if obstacles:
        entries.append(("new obstacle", OBSTACLE))
    if agents:
        entries += [("pedestrian", PEDESTRIAN), ("cyclist", CYCLIST)]
    if trajectory:
        entries.append(("trajectory", TRAJECTORY))
    return entries


def with_panel(cv: Canvas, entries: Sequence[tuple[str, RGB]], title: str) -> NDArray[np.uint8]:
    """The map with a side panel on its east side: title, north arrow, legend, scale bar."""
    row_h = 20
    needed = 110 + row_h * len(entries) + 90
    height = max(cv.height, needed)
    panel = np.full((height, PANEL_WIDTH, 3), 255, dtype=np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(panel, title[:22], (10, 26), font, 0.6, bgr(TEXT), 2, cv2.LINE_AA)
    # north arrow: world +y is up in the picture
    cv2.arrowedLine(panel, (30, 90), (30, 45), (0, 0, 0), 3, cv2.LINE_AA, tipLength=0.35)
    cv2.putText(panel, "N", (45, 75), font, 0.7, (0, 0, 0), 2, cv2.LINE_AA)
    for k, (label, colour) in enumerate(entries):
        y = 110 + k * row_h
        cv2.rectangle(panel, (10, y), (26, y + 14), bgr(colour), -1)
        cv2.rectangle(panel, (10, y), (26, y + 14), (60, 60, 60), 1)
        cv2.putText(panel, label, (34, y + 12), font, 0.45, bgr(TEXT), 1, cv2.LINE_AA)
    length = _nice_length((PANEL_WIDTH - 40) * cv.res)
    px = round(length / cv.res)
    y0 = 110 + row_h * len(entries) + 45
    cv2.line(panel, (10, y0), (10 + px, y0), (0, 0, 0), 3)
    for x in (10, 10 + px):
        cv2.line(panel, (x, y0 - 6), (x, y0 + 4), (0, 0, 0), 2)
    cv2.putText(panel, f"{length:g} m", (10, y0 - 12), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(panel, f"{cv.res:g} m/px", (10, y0 + 24), font, 0.4, (90, 90, 90), 1, cv2.LINE_AA)
    image = np.empty((height, cv.width + PANEL_WIDTH, 3), dtype=np.uint8)
    image[:] = bgr(BACKGROUND)
    image[: cv.height, : cv.width] = cv.img
    image[:, cv.width :] = panel
    image[:, cv.width] = (120, 120, 120)
    return image


def _nice_length(target: float) -> float:
    """The largest 1-2-5 x 10^k not above `target` [m]."""
    if target <= 0:
        return 1.0
    exp = math.floor(math.log10(target))
    for m in (5, 2, 1):
        if m * 10**exp <= target:
            return float(m * 10**exp)
    return float(10**exp)
