"""The residential compound world: a gated 240 m x 200 m compound in a 300 m x 260 m world.

Georeference: the world origin is placed in Hangzhou's Binjiang district (30.2080 N,
120.2100 E, 8 m); the compound itself is invented.

Layout (x east, y north, metres): a 2.2 m fence at x = +-120, y = +-100 with the main gate on
the south side at x = 0; outside, a street along y = -115 with kerbs, parked cars and a
sidewalk. Inside: a 5 m ring lane at x = +-110, y = +-90 with cars parked between it and the
fence; nine apartment towers (33-54 m) in three rows with doors toward two east-west lanes
(y = -25, 25); 3 m north-south lanes at x = +-30 squeezed between parked cars; lawns with
trees; the delivery station in the south-west corner.
"""

from __future__ import annotations

import math

from xiaomanlv_sim.worldgen import furniture as f
from xiaomanlv_sim.worldgen.layout import SiteLayout
from xiaomanlv_sim.worldgen.university import _line, _name

FX, FY = 120.0, 100.0  # [m] fence half extents
LX, LY = 110.0, 90.0  # [m] ring lane
STREET = -115.0  # [m] street centre line
HALF_PI = math.pi / 2


def build() -> SiteLayout:
    site = SiteLayout(
        name="residential",
        title="Residential compound (fictional), Binjiang, Hangzhou",
        latitude=30.208,
        longitude=120.21,
        elevation=8.0,
        extent=(-150.0, -130.0, 150.0, 130.0),
    )
    _walkways(site)
    _buildings(site)
    _boundary(site)
    _furniture(site)
    site.validate()
    return site


def _walkways(site: SiteLayout) -> None:
    xs = [-LX, -95.0, -87.0, -30.0, 0.0, 30.0, LX]
    _line(site, [(x, -LY) for x in xs], 5.0)
    _line(site, [(x, LY) for x in (-LX, -30.0, 30.0, LX)], 5.0)
    _line(site, [(-LX, y) for y in (-LY, -25.0, 25.0, LY)], 5.0)
    _line(site, [(LX, y) for y in (-LY, -25.0, 25.0, LY)], 5.0)
    for y in (-25.0, 25.0):
        _line(site, [(x, y) for x in (-LX, -60.0, -30.0, 0.0, 30.0, 60.0, LX)], 4.0)
    for x in (-30.0, 30.0):
        _line(site, [(x, y) for y in (-LY, -25.0, 25.0, LY)], 3.0)
    # main gate and the street sidewalk outside the fence
    _line(site, [(0.0, -106.0), (0.0, -FY)], 2.0)  # between the gate bollards
    _line(site, [(0.0, -FY), (0.0, -LY)], 4.0)
    _line(site, [(-145.0, -106.0), (0.0, -106.0), (145.0, -106.0)], 3.0)
    site.entrances["main_gate"] = (0.0, -FY)
    site.entrances["street_west"] = (-145.0, -106.0)
    site.entrances["street_east"] = (145.0, -106.0)
    site.station_name = "compound_station"
    loading = site.node("station_loading", -95.0, -82.0)
    charging = site.node("station_charging", -87.0, -82.0)
    site.edge(_name(-95.0, -LY), loading, 3.0)
    site.edge(_name(-87.0, -LY), charging, 3.0)
    site.loading = (-95.0, -82.0, HALF_PI)
    site.charging = (-87.0, -82.0, HALF_PI)
    site.station_node = loading
    site.entrances["compound_station"] = (-91.0, -76.0)
    # route: station -> ring lane once round (clockwise from the west end) -> back along the
    # south lane past the start (loop closure) -> the east-west lane y=-25 -> west ring -> station
    ring = [(-95.0, -LY), (-LX, -LY)]
    ring += [(-LX, y) for y in (-25.0, 25.0, LY)]
    ring += [(x, LY) for x in (-30.0, 30.0, LX)]
    ring += [(LX, y) for y in (25.0, -25.0, -LY)]
    ring += [(x, -LY) for x in (30.0, 0.0, -30.0, -87.0, -95.0, -LX)]
    ring += [(-LX, -25.0)]
    ring += [(x, -25.0) for x in (-60.0, -30.0, 0.0, 30.0, 60.0, LX)]
    ring += [(LX, 25.0)]
    ring += [(x, 25.0) for x in (60.0, 30.0, 0.0, -30.0, -60.0, -LX)]
    ring += [(-LX, -25.0), (-LX, -LY), (-95.0, -LY)]
    site.route = ["station_loading", *(_name(x, y) for x, y in ring), "station_loading"]


def _buildings(site: SiteLayout) -> None:
    heights = (33.0, 45.0, 54.0, 39.0, 51.0, 36.0, 54.0, 42.0, 48.0)
    for row, cy in enumerate((-50.0, 0.0, 50.0)):
        for col, cx in enumerate((-60.0, 0.0, 60.0)):
            name = f"block_{row * 3 + col + 1}"
            f.building(site, name, cx, cy, 36.0, 14.0, heights[row * 3 + col], f.DORM)
            if row == 0:  # doors on the north face, onto lane y = -25
                f.entrance(site, name, "north", (cx, cy + 7.0), HALF_PI, _name(cx, -25.0), 11.0)
            elif row == 1:
                f.entrance(site, name, "south", (cx, cy - 7.0), -HALF_PI, _name(cx, -25.0), 11.0)
            else:
                f.entrance(site, name, "south", (cx, cy - 7.0), -HALF_PI, _name(cx, 25.0), 11.0)
    f.building(site, "compound_station", -91.0, -72.0, 16.0, 8.0, 4.0, (0.3, 0.55, 0.85))
    f.building(site, "guard_house", 10.0, -95.0, 4.0, 3.0, 3.0)


def _boundary(site: SiteLayout) -> None:
    fence = site.model("compound_fence", "fence")
    gap = 5.0
    for name, a, b in (
        ("south_w", (-FX, -FY), (-gap, -FY)),
        ("south_e", (gap, -FY), (FX, -FY)),
        ("east", (FX, -FY), (FX, FY)),
        ("north", (FX, FY), (-FX, FY)),
        ("west", (-FX, FY), (-FX, -FY)),
    ):
        f.wall_line(fence, name, a, b, 2.2, 0.08, f.DARK)
    f.gate(site, "main_gate", (0.0, -FY), 0.0, 2 * gap - 1.6)
    kerbs = site.model("street_kerbs", "kerb")
    half = 4.0 + f.KERB_WIDTH / 2
    f.kerb_line(kerbs, "north", (-150.0, STREET + half), (150.0, STREET + half))
    f.kerb_line(kerbs, "south", (-150.0, STREET - half), (150.0, STREET - half))


def _furniture(site: SiteLayout) -> None:
    placer = f.Placer(site)
    # cars parked between the ring lane and the fence, and on both sides of the narrow lanes
    f.parked_cars(site, placer, "cars_ring_east", (115.6, -85.0), (115.6, 85.0), 5.6, HALF_PI)
    f.parked_cars(site, placer, "cars_ring_west", (-115.6, -60.0), (-115.6, 85.0), 5.6, HALF_PI)
    f.parked_cars(site, placer, "cars_ring_north", (-105.0, 95.6), (105.0, 95.6), 5.6, 0.0)
    for x in (-30.0, 30.0):
        side = "w" if x < 0 else "e"
        for s in (-1.0, 1.0):
            label = f"cars_lane_{side}{'l' if s < 0 else 'r'}"
            f.parked_cars(
                site, placer, label, (x + s * 2.55, -84.0), (x + s * 2.55, 84.0), 5.6, HALF_PI
            )
    f.parked_cars(
        site, placer, "cars_street", (-140.0, STREET + 2.4), (140.0, STREET + 2.4), 6.0, 0.0
    )
    for x in (-60.0, 0.0, 60.0):
        for y in (-72.0, 72.0):
            f.trees_at(
                site,
                placer,
                f"trees_lawn_{int(x)}_{int(y)}".replace("-", "m"),
                [(x + dx, y + dy) for dx in (-12.0, 0.0, 12.0) for dy in (-6.0, 6.0)],
            )
    for x in (-92.0, 92.0):
        f.trees_at(
            site,
            placer,
            f"trees_side_{'w' if x < 0 else 'e'}",
            [(x, y) for y in range(-60, 70, 12)],
        )
    f.tree_row(site, placer, "trees_street", (-145.0, -108.5), (145.0, -108.5), 10.0)
    f.lamp_row(site, placer, "lamps_ring_south", (-106.5, -86.5), (106.5, -86.5), 25.0)
    f.lamp_row(site, placer, "lamps_ring_north", (-106.5, 86.5), (106.5, 86.5), 25.0)
    f.lamp_row(site, placer, "lamps_lanes", (-105.0, -21.8), (105.0, -21.8), 25.0)
    f.lamp_row(site, placer, "lamps_street", (-145.0, -102.5), (145.0, -102.5), 25.0)
    f.bench_row(site, placer, "benches_lawns", (-100.0, 21.0), (100.0, 21.0), 20.0)
    f.bench_row(site, placer, "benches_south", (-100.0, -29.0), (100.0, -29.0), 20.0)
    f.bollards(site, "gate_bollards", [(x, -103.0) for x in (-3.0, -1.2, 1.2, 3.0)])
