"""`xiaomanlv map ...`: record a mapping drive, build a prior map from it, evaluate a map.

`add_map_commands(subparsers)` adds the `map` command to the `xiaomanlv` parser
(xiaomanlv_bringup/cli.py). Handlers return an exit code; domain errors (a bad bag, a bad map file,
an unknown world) become one line on stderr and exit code 2.

    xiaomanlv map record --world university -o bags/university [--length M] [--speed V]
    xiaomanlv map build bags/university -o maps/university [--site university] [--overwrite]
    xiaomanlv map evaluate maps/university --bag bags/university [--world university] [-o eval.png]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tqdm import tqdm

Handler = Callable[[argparse.Namespace], int]


def _errors() -> tuple[type[BaseException], ...]:
    from xiaomanlv_core.config import ConfigError
    from xiaomanlv_core.sdformat import SdfError
    from xiaomanlv_core.site import SiteError
    from xiaomanlv_mapping.model import MappingError
    from xiaomanlv_sim.assets import AssetNotFoundError

    return (MappingError, AssetNotFoundError, SdfError, SiteError, ConfigError)


def _guarded(handler: Handler) -> Handler:
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except _errors() as err:
            print(f"xiaomanlv map {args.map_command}: {err}", file=sys.stderr)
            return 2

    return run


def _record(args: argparse.Namespace) -> int:
    from xiaomanlv_bringup.ros.mapping_drive import record_mapping_drive  # rclpy message types

    summary = record_mapping_drive(
        args.world,
        Path(args.output),
        speed=args.speed,
        length=args.length,
        seed=args.seed,
        pedestrians=args.pedestrians,
        cyclists=args.cyclists,
        progress=True,
    )
    print(
        f"recorded {summary.distance:.0f} m in {summary.duration:.0f} s of sim time "
        f"to {summary.path}"
    )
    for topic, count in sorted(summary.messages.items()):
        print(f"  {topic}: {count} messages")
    return 0


class _Bars:
    """One tqdm bar per build stage that reports progress."""

    def __init__(self) -> None:
        self.bars: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(total=total, desc=stage, unit="scan", file=sys.stderr)
        bar.update(done - bar.n)

    def close(self) -> None:
        for bar in self.bars.values():
            bar.close()


def _site_and_robot(site_name: str) -> tuple[Any, Any]:
    from xiaomanlv_core.robot import load_robot, model_file
    from xiaomanlv_core.site import load_site
    from xiaomanlv_sim import assets

    path = Path(site_name)
    if not path.name.endswith(".site.yaml"):
        path = assets.site_file(assets.world_file(site_name))
    return load_site(path), load_robot(model_file())


def _build(args: argparse.Namespace) -> int:
    from xiaomanlv_mapping.build import build_map

    out = Path(args.output)
    site, robot = _site_and_robot(args.site or out.name)
    bars = _Bars()
    try:
        summary = build_map(
            Path(args.bag), out, site=site, robot=robot, overwrite=args.overwrite, progress=bars
        )
    finally:
        bars.close()
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in summary.stages.items())
    print(
        f"built {summary.path} from {summary.drive_duration:.0f} s of driving in "
        f"{summary.build_time:.1f} s ({summary.realtime_factor:.1f}x real time): {stages}"
    )
    r = summary.result
    print(
        f"  {len(r.keyframes)} keyframes, {len(r.loop_closures)} loop closures, "
        f"{len(summary.prior.cloud)} map points, grid {summary.prior.grid.cells.shape[1]} x "
        f"{summary.prior.grid.cells.shape[0]} cells, {len(summary.prior.routes.edges)} route edges"
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from xiaomanlv_bringup.map_evaluation import evaluate_map

    world = args.world or Path(args.map).name
    report = evaluate_map(
        Path(args.map), bag=Path(args.bag) if args.bag else None, world=world, png=Path(args.png)
    )
    print(json.dumps(report, indent=2, sort_keys=True))
    print(f"wrote {args.png}", file=sys.stderr)
    return 0


def add_map_commands(sub: Any) -> None:
    """Add `map record|build|evaluate` to the `xiaomanlv` subparsers."""
    parser = sub.add_parser("map", help="record a mapping drive, build and evaluate prior maps")
    msub = parser.add_subparsers(dest="map_command", required=True)

    rec = msub.add_parser(
        "record", help="drive a world's mapping route in the simulator and record a bag"
    )
    rec.add_argument("--world", required=True, help="shipped world name or SDF path")
    rec.add_argument("-o", "--output", required=True, help="bag directory to create")
    rec.add_argument("--speed", type=float, default=1.5, help="driving speed [m/s]")
    rec.add_argument("--length", type=float, help="drive only the first LENGTH metres")
    rec.add_argument("--seed", type=int, default=0)
    rec.add_argument("--pedestrians", type=int, default=0, help="people about during the drive")
    rec.add_argument("--cyclists", type=int, default=0)
    rec.set_defaults(func=_guarded(_record))

    build = msub.add_parser("build", help="build maps/<site> from a recorded mapping drive")
    build.add_argument("bag", help="rosbag2 MCAP directory of the drive")
    build.add_argument("-o", "--output", required=True, help="map directory, e.g. maps/university")
    build.add_argument("--site", help="site name or *.site.yaml (default: the output's name)")
    build.add_argument("--overwrite", action="store_true", help="replace an existing map")
    build.set_defaults(func=_guarded(_build))

    ev = msub.add_parser("evaluate", help="compare a built map with the world's true geometry")
    ev.add_argument("map", help="map directory, e.g. maps/university")
    ev.add_argument("--bag", help="the drive's bag, for the trajectory's ground truth")
    ev.add_argument("--world", help="world name or SDF path (default: the map's name)")
    ev.add_argument("-o", "--png", default="build/map-evaluation.png", help="picture to write")
    ev.set_defaults(func=_guarded(_evaluate))
