"""`xiaomanlv map ...`: record a mapping drive, build a prior map from it, evaluate a map.

`add_map_commands(subparsers)` adds the `map` command to the `xiaomanlv` parser
(xiaomanlv_bringup/cli.py). Handlers return an exit code; domain errors (a bad bag, a bad map file,
an unknown world) become one line on stderr and exit code 2.

    xiaomanlv map record --world university -o bags/university [--length M] [--speed V]
    xiaomanlv map build bags/university -o maps/university [--site university] [--overwrite]
        [--strict]
    xiaomanlv map evaluate maps/university --bag bags/university [--world university] [-o eval.png]

The site (build) and the world (evaluate) default to what the bag records (`xiaomanlv map
record` stores them in its metadata) and, for evaluate, to the world the map was built for
(its info.yaml); never to a folder's name.
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
    if args.pedestrians or args.cyclists:
        print(
            f"  people about: held up {summary.held:.0f} s, {summary.collisions} touched "
            f"({args.pedestrians} pedestrians, {args.cyclists} cyclists, seed {args.seed})"
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


def recorded_site_file(bag: Path) -> Path:
    """The site sidecar of the drive recorded in ``bag``, from what the bag records: its
    sidecar path, else its world (a shipped name or an SDF path) and the sidecar next to it.

    Raises:
        MappingError: the bag records neither (a robot's map_recorder bag), or a sidecar that
            is gone; AssetNotFoundError: the recorded world cannot be found. BagError: an
            unreadable bag.
    """
    from xiaomanlv_mapping.bag import SITE_FILE_KEY, WORLD_KEY, recorded_site
    from xiaomanlv_mapping.model import MappingError
    from xiaomanlv_sim import assets

    rec = recorded_site(bag)
    if rec.site_file and Path(rec.site_file).is_file():
        return Path(rec.site_file)
    if rec.world:
        return assets.site_file(assets.world_file(rec.world))
    if rec.site_file:
        raise MappingError(
            f"bag {bag}: records the site sidecar {rec.site_file}, which does not exist; "
            "pass --site NAME or --site path/to/<site>.site.yaml"
        )
    raise MappingError(
        f"bag {bag}: records no site ({SITE_FILE_KEY} and {WORLD_KEY} are not in its "
        "metadata.yaml custom_data, as with a robot's map_recorder bag); pass --site NAME or "
        "--site path/to/<site>.site.yaml"
    )


def _build(args: argparse.Namespace) -> int:
    from xiaomanlv_mapping.build import build_map

    out = Path(args.output)
    site_name = args.site or str(recorded_site_file(Path(args.bag)))
    site, robot = _site_and_robot(site_name)
    bars = _Bars()
    try:
        summary = build_map(
            Path(args.bag),
            out,
            site=site,
            robot=robot,
            overwrite=args.overwrite,
            strict=args.strict,
            progress=bars,
        )
    finally:
        bars.close()
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in summary.stages.items())
    print(
        f"built {summary.path} for site {site.name} from {summary.drive_duration:.0f} s of "
        f"driving in {summary.build_time:.1f} s ({summary.realtime_factor:.1f}x real time): "
        f"{stages}"
    )
    r = summary.result
    print(
        f"  {len(r.keyframes)} keyframes, {len(r.loop_closures)} loop closures, "
        f"{len(summary.prior.cloud)} map points, grid {summary.prior.grid.cells.shape[1]} x "
        f"{summary.prior.grid.cells.shape[0]} cells, {len(summary.prior.routes.edges)} route edges"
    )
    if summary.unreachable:
        print(
            f"  {len(summary.unreachable)} of {len(summary.prior.stops.stops)} stops marked "
            "unreachable in stops.yaml (--strict refuses such a map):"
        )
        for u in summary.unreachable:
            print(f"    {u}")
    for edge in summary.narrowed:
        print(f"  narrow route {edge}: obstacles on the driven path; kept at the minimum width")
    return 0


def _evaluation_world(map_dir: Path, bag: Path | None) -> str:
    """The world to evaluate ``map_dir`` against: the one its build recorded (info.yaml's
    ``builder.world``), else the one its bag records.

    Raises:
        MappingError: neither records a world; MapFormatError: an unreadable info.yaml.
    """
    from xiaomanlv_mapping.bag import recorded_site
    from xiaomanlv_mapping.mapfiles import INFO_FILE, read_info
    from xiaomanlv_mapping.model import MappingError

    built = read_info(map_dir / INFO_FILE).builder.get("world")
    if isinstance(built, str) and built and Path(built).is_file():
        return built
    if bag is not None and (world := recorded_site(bag).world):
        return world
    raise MappingError(
        f"{map_dir}: cannot tell which world to evaluate against: its {INFO_FILE} records none"
        + (f" that exists ({built})" if built else "")
        + (" and neither does its bag" if bag is not None else " (and no --bag was given)")
        + "; pass --world NAME or --world path/to/world.sdf"
    )


def _evaluate(args: argparse.Namespace) -> int:
    from xiaomanlv_bringup.map_evaluation import evaluate_map

    bag = Path(args.bag) if args.bag else None
    world = args.world or _evaluation_world(Path(args.map), bag)
    report = evaluate_map(Path(args.map), bag=bag, world=world, png=Path(args.png))
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
    build.add_argument(
        "--site", help="site name or *.site.yaml (default: the site the bag records)"
    )
    build.add_argument("--overwrite", action="store_true", help="replace an existing map")
    build.add_argument(
        "--strict",
        action="store_true",
        help="fail when a stop is unreachable (default: mark it in stops.yaml and write the map)",
    )
    build.set_defaults(func=_guarded(_build))

    ev = msub.add_parser("evaluate", help="compare a built map with the world's true geometry")
    ev.add_argument("map", help="map directory, e.g. maps/university")
    ev.add_argument("--bag", help="the drive's bag, for the trajectory's ground truth")
    ev.add_argument(
        "--world", help="world name or SDF path (default: the map's own record, else the bag's)"
    )
    ev.add_argument("-o", "--png", default="build/map-evaluation.png", help="picture to write")
    ev.set_defaults(func=_guarded(_evaluate))
