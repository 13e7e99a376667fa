"""The university campus world: 520 m x 520 m around a 420 m ring road (fictional layout).

Georeference: the world origin is placed in Hangzhou's Xiasha higher-education park
(30.3100 N, 120.3500 E, 5 m); the campus itself is invented, not a survey of a real one.

Layout (x east, y north, metres): a campus wall at +-250 with gates south (0, -250), east
(250, 0) and north (-100, 250); a 7 m ring road at +-210 with kerbs and three raised crossings;
a 4 m sidewalk loop inside it at +-200; two 8 m boulevards on the axes meeting at a central
plaza with a fountain. Quadrants: NW six dorms (24-45 m tall) with narrow garden passages;
NE library and three teaching buildings; SW a 400 m running track, stands and a gym; SE the
canteen, the admin/lab building, the parking lot and the delivery station.
"""

from __future__ import annotations

import math

from xiaomanlv_sim.worldgen import furniture as f
from xiaomanlv_sim.worldgen.layout import SiteLayout, box, cylinder

RING = 200.0  # [m] sidewalk loop
ROAD = 210.0  # [m] ring road centre line
ROAD_WIDTH = 7.0  # [m]
WALL = 250.0  # [m] campus wall
HALF_PI = math.pi / 2


def _name(x: float, y: float) -> str:
    def part(v: float) -> str:
        text = f"{v:g}".replace(".", "p")
        return f"m{text[1:]}" if text.startswith("-") else text

    return f"w_{part(x)}_{part(y)}"


def _line(site: SiteLayout, points: list[tuple[float, float]], width: float) -> list[str]:
    """Nodes at ``points`` (named by position) chained by edges of ``width``."""
    names = [site.node(_name(x, y), x, y) for x, y in points]
    site.chain(names, width)
    return names


def build() -> SiteLayout:
    site = SiteLayout(
        name="university",
        title="University campus (fictional), Xiasha, Hangzhou",
        latitude=30.31,
        longitude=120.35,
        elevation=5.0,
        extent=(-260.0, -260.0, 260.0, 260.0),
    )
    _walkways(site)
    _buildings(site)
    _roads_and_walls(site)
    _sports(site)
    _furniture(site)
    site.validate()
    return site


def _walkways(site: SiteLayout) -> None:
    r = RING
    # junctions along each side of the sidewalk loop (lanes, boulevards, gates, station lane)
    west_ys = [-r, -166.0, 0.0, 42.0, 92.0, 142.0, r]
    east_ys = [-r, -150.0, -120.0, -25.0, 0.0, 25.0, 135.0, r]
    south_xs = [-r, 0.0, r]
    north_xs = [-r, -100.0, 0.0, r]
    _line(site, [(-r, y) for y in west_ys], 4.0)
    _line(site, [(r, y) for y in east_ys], 4.0)
    _line(site, [(x, -r) for x in south_xs], 4.0)
    _line(site, [(x, r) for x in north_xs], 4.0)
    # boulevards on the axes, through the plaza diamond around the fountain
    plaza = 15.0
    ns_south = [-r, -190.0, -166.0, -150.0, -120.0, -100.0, -60.0, -25.0, -plaza]
    ns_north = [plaza, 25.0, 42.0, 70.0, 92.0, 135.0, 142.0, r]
    _line(site, [(0.0, y) for y in ns_south[:2]], 1.5)  # between the bollards
    _line(site, [(0.0, y) for y in ns_south[1:]], 8.0)
    _line(site, [(0.0, y) for y in ns_north], 8.0)
    _line(site, [(-r, 0.0), (-plaza, 0.0)], 8.0)
    _line(site, [(x, 0.0) for x in (plaza, r)], 8.0)
    diamond = [(plaza, 0.0), (0.0, plaza), (-plaza, 0.0), (0.0, -plaza), (plaza, 0.0)]
    _line(site, diamond, 6.0)
    # NW dorm lanes and the narrow garden passage between the dorm columns
    for y in (42.0, 92.0, 142.0):
        _line(site, [(-r, y), (-150.0, y), (-112.5, y), (-75.0, y), (0.0, y)], 3.0)
    _line(site, [(-112.5, 42.0), (-112.5, 92.0), (-112.5, 142.0), (-112.5, 185.0)], 2.0)
    _line(site, [(-112.5, 185.0), (-100.0, 185.0), (-100.0, r)], 2.5)
    # NE lanes
    _line(site, [(0.0, 25.0), (150.0, 25.0), (r, 25.0)], 4.0)
    _line(site, [(0.0, 135.0), (130.0, 135.0), (r, 135.0)], 4.0)
    _line(site, [(0.0, 70.0), (26.0, 70.0)], 4.0)
    # SE lanes
    _line(site, [(0.0, -25.0), (60.0, -25.0), (r, -25.0)], 4.0)
    _line(site, [(0.0, -60.0), (22.0, -60.0)], 4.0)
    _line(site, [(0.0, -120.0), (140.0, -120.0), (r, -120.0)], 4.0)
    _line(site, [(0.0, -150.0), (150.0, -150.0), (158.0, -150.0), (r, -150.0)], 4.0)
    # SW lanes: south of the stands, and through the east gate of the sports ground
    _line(site, [(-r, -166.0), (-60.0, -166.0), (0.0, -166.0)], 4.0)
    _line(site, [(0.0, -100.0), (-30.0, -100.0)], 2.5)
    # gates and crossings of the ring road
    _line(site, [(0.0, -WALL - 6.0), (0.0, -WALL), (0.0, -ROAD - 6.0), (0.0, -r)], 4.0)
    _line(site, [(WALL + 6.0, 0.0), (WALL, 0.0), (ROAD + 6.0, 0.0), (r, 0.0)], 4.0)
    _line(site, [(-100.0, WALL + 6.0), (-100.0, WALL), (-100.0, ROAD + 6.0), (-100.0, r)], 4.0)
    for name, xy in (
        ("gate_south", (0.0, -WALL - 6.0)),
        ("gate_east", (WALL + 6.0, 0.0)),
        ("gate_north", (-100.0, WALL + 6.0)),
        ("sports_ground_east_gate", (-30.0, -100.0)),
    ):
        site.entrances[name] = xy
    # the station: loading bay and charger on spurs north of the station building
    site.station_name = "delivery_station"
    loading = site.node("station_loading", 150.0, -158.0)
    charging = site.node("station_charging", 158.0, -158.0)
    site.edge(_name(150.0, -150.0), loading, 3.0)
    site.edge(_name(158.0, -150.0), charging, 3.0)
    site.loading = (150.0, -158.0, -HALF_PI)
    site.charging = (158.0, -158.0, -HALF_PI)
    site.station_node = loading
    site.entrances["delivery_station"] = (154.0, -164.0)
    _route(site)


def _route(site: SiteLayout) -> None:
    """Station -> sidewalk loop once round (counter-clockwise) -> east boulevard -> plaza ->
    south boulevard -> station lane -> station: a loop closure at (200, -150)."""
    r = RING
    east_up = [-150.0, -120.0, -25.0, 0.0, 25.0, 135.0, r]
    west_down = [142.0, 92.0, 42.0, 0.0, -166.0, -r]
    pts: list[tuple[float, float]] = [(150.0, -150.0), (158.0, -150.0)]
    pts += [(r, y) for y in east_up]
    pts += [(x, r) for x in (0.0, -100.0, -r)]
    pts += [(-r, y) for y in west_down]
    pts += [(0.0, -r), (r, -r)]
    pts += [(r, y) for y in east_up[:4]]  # back past the start of the loop to the boulevard
    pts += [(15.0, 0.0), (0.0, -15.0)]
    pts += [(0.0, y) for y in (-25.0, -60.0, -100.0, -120.0, -150.0)]
    pts += [(150.0, -150.0)]
    site.route = ["station_loading", *(_name(x, y) for x, y in pts), "station_loading"]


def _buildings(site: SiteLayout) -> None:
    # NW: six dorms, long axis east-west, doors on the south face toward their lane
    heights = {(0, 0): 24.0, (1, 0): 30.0, (0, 1): 36.0, (1, 1): 42.0, (0, 2): 45.0, (1, 2): 33.0}
    for (col, row), height in heights.items():
        cx, cy = (-150.0, -75.0)[col], (60.0, 110.0, 160.0)[row]
        name = f"dorm_{row * 2 + col + 1}"
        f.building(site, name, cx, cy, 50.0, 14.0, height, f.DORM)
        f.entrance(site, name, "south", (cx, cy - 7.0), -HALF_PI, _name(cx, cy - 18.0), 5.0)
    # NE: library (door west onto the boulevard spur) and three teaching buildings
    f.building(site, "library", 70.0, 70.0, 60.0, 50.0, 30.0)
    f.entrance(site, "library", "west", (40.0, 70.0), math.pi, _name(26.0, 70.0), 9.0)
    f.building(site, "teaching_a", 130.0, 160.0, 80.0, 18.0, 18.0)
    f.entrance(site, "teaching_a", "south", (130.0, 151.0), -HALF_PI, _name(130.0, 135.0), 8.0)
    f.building(site, "teaching_b", 130.0, 110.0, 80.0, 18.0, 22.0)
    f.entrance(site, "teaching_b", "north", (130.0, 119.0), HALF_PI, _name(130.0, 135.0), 8.0)
    f.building(site, "teaching_c", 150.0, 50.0, 80.0, 18.0, 20.0)
    f.entrance(site, "teaching_c", "south", (150.0, 41.0), -HALF_PI, _name(150.0, 25.0), 8.0)
    # SE: canteen (two doors), admin/lab building, station
    f.building(site, "canteen", 60.0, -60.0, 50.0, 35.0, 12.0)
    f.entrance(site, "canteen", "west", (35.0, -60.0), math.pi, _name(22.0, -60.0), 7.0)
    f.entrance(site, "canteen", "north", (60.0, -42.5), HALF_PI, _name(60.0, -25.0), 8.5)
    f.building(site, "admin_lab", 140.0, -90.0, 70.0, 20.0, 24.0)
    f.entrance(site, "admin_lab", "south", (140.0, -100.0), -HALF_PI, _name(140.0, -120.0), 9.0)
    f.building(site, "delivery_station", 154.0, -170.0, 24.0, 12.0, 6.0, (0.3, 0.55, 0.85))
    # SW: gym south of the stands
    f.building(site, "gym", -60.0, -182.0, 60.0, 16.0, 14.0)
    f.entrance(site, "gym", "north", (-60.0, -174.0), HALF_PI, _name(-60.0, -166.0), 6.5)


def _roads_and_walls(site: SiteLayout) -> None:
    inner, outer = (
        ROAD - ROAD_WIDTH / 2 - f.KERB_WIDTH / 2,
        ROAD + ROAD_WIDTH / 2 + f.KERB_WIDTH / 2,
    )
    kerbs = site.model("ring_road_kerbs", "kerb")
    cut = 3.0  # [m] half width of each kerb cut (raised crossing)
    # (side, kerb line axis, sign, positions of the raised crossings along the side)
    sides: tuple[tuple[str, str, float, tuple[float, ...]], ...] = (
        ("south", "x", -1.0, (0.0,)),
        ("north", "x", 1.0, (-100.0,)),
        ("east", "y", 1.0, (0.0,)),
        ("west", "y", -1.0, ()),
    )
    for side, axis, sign, crossings in sides:
        for label, off in (("inner", inner), ("outer", outer)):
            if axis == "x":
                a, b = (-off, sign * off), (off, sign * off)
            else:
                a, b = (sign * off, -off), (sign * off, off)
            gaps = tuple((c + off - cut, c + off + cut) for c in crossings)
            f.kerb_line(kerbs, f"{side}_{label}", a, b, gaps)
    f.raised_crossing(site, "crossing_south", (0.0, -ROAD), HALF_PI, ROAD_WIDTH, 2 * cut)
    f.raised_crossing(site, "crossing_north", (-100.0, ROAD), HALF_PI, ROAD_WIDTH, 2 * cut)
    f.raised_crossing(site, "crossing_east", (ROAD, 0.0), 0.0, ROAD_WIDTH, 2 * cut)
    wall = site.model("campus_wall", "wall")
    w, gap = WALL, 5.0
    for name, a, b in (
        ("south_w", (-w, -w), (-gap, -w)),
        ("south_e", (gap, -w), (w, -w)),
        ("east_s", (w, -w), (w, -gap)),
        ("east_n", (w, gap), (w, w)),
        ("north_e", (w, w), (-100.0 + gap, w)),
        ("north_w", (-100.0 - gap, w), (-w, w)),
        ("west", (-w, w), (-w, -w)),
    ):
        f.wall_line(wall, name, a, b, 2.5, 0.3)
    f.gate(site, "gate_south", (0.0, -w), 0.0, 2 * gap - 1.6)
    f.gate(site, "gate_east", (w, 0.0), HALF_PI, 2 * gap - 1.6)
    f.gate(site, "gate_north", (-100.0, w), 0.0, 2 * gap - 1.6)
    # garden walls with 2 m openings on the passage between the dorm columns
    garden = site.model("dorm_garden_walls", "wall")
    for y in (67.0, 117.0, 167.0):
        f.wall_line(garden, f"w_{int(y)}", (-124.0, y), (-113.5, y), 0.9, 0.3)
        f.wall_line(garden, f"e_{int(y)}", (-111.5, y), (-101.0, y), 0.9, 0.3)
    # bollards closing the south boulevard to cars: 1.5 m between the middle pair
    xs = (-4.25, -2.55, -0.85, 0.85, 2.55, 4.25)
    f.bollards(site, "boulevard_south_bollards", [(x, -195.0) for x in xs])
    # the fountain in the plaza
    fountain = site.model("plaza_fountain", "wall")
    fountain.add(cylinder("basin", 6.0, 0.6, 0.0, 0.0, colour=(0.7, 0.7, 0.75)))
    fountain.add(cylinder("column", 0.8, 3.0, 0.0, 0.0, colour=(0.7, 0.7, 0.75)))


def _sports(site: SiteLayout) -> None:
    cx, cy = -100.0, -100.0
    straight, r_in, r_out = 84.39, 36.5, 46.26  # [m] standard 400 m track
    field = site.model("sports_ground", "field", cx, cy)
    track = (0.72, 0.32, 0.26)
    grass = (0.3, 0.6, 0.3)
    field.add(box("track_straights", (straight, 2 * r_out, 0.02), 0.0, 0.0, colour=track))
    field.add(box("infield", (straight, 2 * r_in, 0.03), 0.0, 0.0, colour=grass))
    for side, s in (("west", -1), ("east", 1)):
        field.add(cylinder(f"track_{side}_bend", r_out, 0.02, s * straight / 2, 0.0, colour=track))
        field.add(cylinder(f"infield_{side}_bend", r_in, 0.03, s * straight / 2, 0.0, colour=grass))
    fence = site.model("sports_ground_fence", "fence", cx, cy)
    hx, hy = straight / 2 + r_out + 3.0, r_out + 3.0
    for name, a, b in (
        ("south", (-hx, -hy), (hx, -hy)),
        ("north", (-hx, hy), (hx, hy)),
        ("west", (-hx, -hy), (-hx, hy)),
        ("east_s", (hx, -hy), (hx, -1.5)),
        ("east_n", (hx, 1.5), (hx, hy)),
    ):
        f.wall_line(fence, name, (a[0] + cx, a[1] + cy), (b[0] + cx, b[1] + cy), 2.2, 0.08, f.DARK)
    f.building(site, "stands", -100.0, -156.0, 80.0, 8.0, 6.0, (0.7, 0.7, 0.72))


def _furniture(site: SiteLayout) -> None:
    placer = f.Placer(site)
    r, t = RING, 204.2
    for name, a, b in (
        ("trees_ring_south", (-t, -t), (t, -t)),
        ("trees_ring_north", (-t, t), (t, t)),
        ("trees_ring_east", (t, -t), (t, t)),
        ("trees_ring_west", (-t, -t), (-t, t)),
    ):
        f.tree_row(site, placer, name, a, b, 14.0)
    for side, s in (("e", 1.0), ("w", -1.0)):
        f.tree_row(
            site, placer, f"trees_boulevard_south_{side}", (s * 6.5, -188.0), (s * 6.5, -24.0), 12.0
        )
        f.tree_row(
            site, placer, f"trees_boulevard_north_{side}", (s * 6.5, 24.0), (s * 6.5, 196.0), 12.0
        )
        f.tree_row(
            site, placer, f"trees_boulevard_east_{side}", (24.0, s * 6.5), (196.0, s * 6.5), 12.0
        )
        f.tree_row(
            site, placer, f"trees_boulevard_west_{side}", (-196.0, s * 6.5), (-24.0, s * 6.5), 12.0
        )
    groves = [(-30.0 - 9.0 * i, 20.0 + 5.0 * (i % 2)) for i in range(6)]
    groves += [(25.0 + 8.0 * i, 190.0 - 4.0 * (i % 3)) for i in range(10)]
    groves += [(185.0 - 3.0 * (i % 2), -40.0 - 9.0 * i) for i in range(8)]
    groves += [(30.0 + 8.0 * i, -100.0 - 4.0 * (i % 2)) for i in range(8)]
    groves += [(-185.0, 20.0 + 8.0 * i) for i in range(3)]
    f.trees_at(site, placer, "trees_groves", groves)
    for name, a, b in (
        ("lamps_ring_south", (-r + 2.6, -r + 2.6), (r - 2.6, -r + 2.6)),
        ("lamps_ring_north", (-r + 2.6, r - 2.6), (r - 2.6, r - 2.6)),
        ("lamps_ring_east", (r - 2.6, -r + 2.6), (r - 2.6, r - 2.6)),
        ("lamps_ring_west", (-r + 2.6, -r + 2.6), (-r + 2.6, r - 2.6)),
        ("lamps_boulevard_ns", (4.8, -196.0), (4.8, 196.0)),
        ("lamps_boulevard_ew", (-196.0, -4.8), (196.0, -4.8)),
    ):
        f.lamp_row(site, placer, name, a, b, 30.0)
    for name, a, b in (
        ("benches_boulevard_ns", (-5.2, -180.0), (-5.2, 180.0)),
        ("benches_boulevard_ew", (-180.0, 5.2), (180.0, 5.2)),
        ("benches_dorm_lanes", (-190.0, 38.8), (-10.0, 38.8)),
    ):
        f.bench_row(site, placer, name, a, b, 36.0)
    plaza = site.model("benches_plaza", "bench")
    for i, (x, y) in enumerate(((12.0, 12.0), (-12.0, 12.0), (-12.0, -12.0), (12.0, -12.0))):
        plaza.add(
            box(
                f"bench_{i}",
                (1.8, 0.6, 0.45),
                x,
                y,
                yaw=math.atan2(y, x) + HALF_PI,
                colour=(0.55, 0.4, 0.25),
            )
        )
    f.parked_cars(
        site, placer, "parking_lot_north_row", (30.0, -172.0), (110.0, -172.0), 2.8, HALF_PI
    )
    f.parked_cars(
        site, placer, "parking_lot_south_row", (30.0, -184.0), (110.0, -184.0), 2.8, HALF_PI
    )
