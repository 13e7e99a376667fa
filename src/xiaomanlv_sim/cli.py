"""`xiaomanlv sim ...`: render worlds and scenarios, validate and generate scenarios.

`add_sim_commands(subparsers)` adds the `sim` command to the `xiaomanlv` parser
(xiaomanlv_bringup/cli.py); every handler returns an exit code and turns domain errors into one
line on stderr and exit code 2. `main(argv)` runs the same commands standalone
(`python -m xiaomanlv_sim.cli sim render university`).

    xiaomanlv sim render <world-or-scenario.yaml> [-o out.png] [--trajectory t.csv|t.npy]
                         [--agents [N]] [--resolution 0.25] [--seed S]
    xiaomanlv sim scenario validate <files...>
    xiaomanlv sim scenario generate --world W --count N --seed S -o dir/
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_sim.scenario import CrowdSpec, Scenario, ScenarioError
from xiaomanlv_sim.world import World

_log = logging.getLogger(__name__)

Handler = Callable[[argparse.Namespace], int]


class CliError(ValueError):
    """A bad command-line argument (file missing, unreadable trajectory)."""


def _errors() -> tuple[type[BaseException], ...]:
    from xiaomanlv_core.site import SiteError
    from xiaomanlv_sim.agents import CrowdError
    from xiaomanlv_sim.assets import AssetNotFoundError
    from xiaomanlv_sim.footprint import FootprintError
    from xiaomanlv_sim.render import RenderError
    from xiaomanlv_sim.sdf import SdfError

    return (
        CliError,
        ScenarioError,
        AssetNotFoundError,
        SdfError,
        SiteError,
        RenderError,
        CrowdError,
        FootprintError,
    )


def _guarded(handler: Handler) -> Handler:
    """Run `handler`; a domain error becomes one line on stderr and exit code 2."""

    @functools.wraps(handler)
    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except _errors() as err:
            print(f"xiaomanlv sim: {err}", file=sys.stderr)
            return 2

    return run


def _load_world(name: str) -> tuple[World, Any]:
    """The world (name or SDF path) and its site sidecar (None when there is none)."""
    from xiaomanlv_core.site import load_site
    from xiaomanlv_sim.assets import AssetNotFoundError, site_file, world_file
    from xiaomanlv_sim.sdf import load_world

    path = world_file(name)
    world = load_world(path)
    try:
        site = load_site(site_file(path))
    except AssetNotFoundError:
        site = None
    return world, site


def load_trajectory(path: Path) -> NDArray[np.float64]:
    """An (N,2) [m] trajectory from .npy ((N,>=2) array) or .csv/.txt (x, y columns first).

    A CSV may have a header line; commas or whitespace separate columns.

    Raises:
        CliError: the file is missing, unreadable or not at least two numeric columns.
    """
    path = Path(path)
    if not path.is_file():
        raise CliError(f"trajectory file {path} does not exist")
    try:
        if path.suffix == ".npy":
            data = np.load(path, allow_pickle=False)
        else:
            text = path.read_text(encoding="utf-8").replace(",", " ").splitlines()
            rows = []
            for k, line in enumerate(text):
                parts = line.split()
                if not parts or parts[0].startswith("#"):
                    continue
                try:
                    rows.append([float(v) for v in parts])
                except ValueError:
                    if rows or k > 0:
                        raise CliError(
                            f"{path}: line {k + 1}: not numbers: {line.strip()!r}"
                        ) from None
            data = np.array(rows, dtype=float)
    except (OSError, ValueError) as err:
        if isinstance(err, CliError):
            raise
        raise CliError(f"{path}: cannot read a trajectory: {err}") from None
    if data.ndim != 2 or data.shape[1] < 2 or len(data) == 0:
        raise CliError(f"{path}: a trajectory needs rows of at least x, y; got shape {data.shape}")
    return np.asarray(data[:, :2], dtype=float)


def _render(args: argparse.Namespace) -> int:
    from xiaomanlv_sim.agents import Crowd
    from xiaomanlv_sim.footprint import Footprints
    from xiaomanlv_sim.render import render_top_down
    from xiaomanlv_sim.scenario import load_scenario

    target = str(args.target)
    scenario: Scenario | None = None
    if target.endswith((".yaml", ".yml")):
        scenario = load_scenario(Path(target))
        world_name = scenario.world
    else:
        world_name = target
    print(f"[sim render] loading world {world_name}", flush=True)
    world, site = _load_world(world_name)
    trajectory = load_trajectory(Path(args.trajectory)) if args.trajectory else None
    agents = None
    if args.agents is not None:
        if site is None:
            raise CliError(
                f"world {world.name} has no site sidecar: no walkways to place agents on"
            )
        if args.agents >= 0:
            spec = CrowdSpec(pedestrians=args.agents)
            if scenario is not None:
                spec = CrowdSpec(
                    pedestrians=args.agents,
                    cyclists=scenario.crowd.cyclists,
                    group_fraction=scenario.crowd.group_fraction,
                    loiter_fraction=scenario.crowd.loiter_fraction,
                    crossing_fraction=scenario.crowd.crossing_fraction,
                )
        else:
            spec = (
                scenario.crowd if scenario is not None else CrowdSpec(pedestrians=100, cyclists=10)
            )
        seed = args.seed if args.seed is not None else (scenario.seed if scenario else 0)
        print(f"[sim render] placing {spec.pedestrians}+{spec.cyclists} agents", flush=True)
        footprints = Footprints.from_world(world)
        if scenario is not None:
            footprints.sync_obstacles(scenario.obstacles, 0.0)
        agents = Crowd(spec, site, footprints, np.random.default_rng(seed)).state
    name = scenario.name if scenario is not None else world.name
    out = Path(args.output) if args.output else Path(f"{name}.png")
    render_top_down(
        world,
        site,
        agents=agents,
        trajectory=trajectory,
        obstacles=scenario.obstacles if scenario is not None else (),
        resolution=args.resolution,
        path=out,
        title=name,
    )
    print(f"[sim render] wrote {out}", flush=True)
    return 0


def _validate(args: argparse.Namespace) -> int:
    from xiaomanlv_sim.scenario import load_scenario

    failed = 0
    for file in args.files:
        try:
            s = load_scenario(Path(file))
        except ScenarioError as err:
            print(f"xiaomanlv sim: {err}", file=sys.stderr)
            failed += 1
            continue
        print(
            f"ok {file}: {s.name} on {s.world}, {s.duration:g} s, "
            f"{s.crowd.pedestrians} pedestrians, {s.crowd.cyclists} cyclists, "
            f"{len(s.obstacles)} obstacles, {len(s.weather)} weather, {len(s.faults)} faults",
            flush=True,
        )
    if failed:
        print(f"xiaomanlv sim: {failed} of {len(args.files)} scenarios invalid", file=sys.stderr)
        return 2
    return 0


def _generate(args: argparse.Namespace) -> int:
    from xiaomanlv_sim.scenario import GeneratorConfig, dump_scenario, generate_scenarios

    if args.count < 1:
        raise CliError(f"--count must be at least 1, got {args.count}")
    if args.duration <= 0:
        raise CliError(f"--duration must be > 0 s, got {args.duration}")
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise CliError(f"-o {out} exists and is not a folder")
    print(
        f"[sim scenario generate] {args.count} scenarios on {args.world}, seed {args.seed}",
        flush=True,
    )
    config = GeneratorConfig(duration=args.duration)
    scenarios = generate_scenarios(args.world, args.count, args.seed, config=config)
    step = max(1, len(scenarios) // 10)
    for k, s in enumerate(scenarios, start=1):
        dump_scenario(s, out / f"{s.name}.yaml")
        if k % step == 0 or k == len(scenarios):
            print(f"[sim scenario generate] {k}/{len(scenarios)} written to {out}", flush=True)
    return 0


def add_sim_commands(subparsers: Any) -> argparse.ArgumentParser:
    """Add `sim` (render, scenario validate, scenario generate) to an argparse subparsers."""
    sim = subparsers.add_parser("sim", help="simulator tools: render worlds, check scenarios")
    sim_sub = sim.add_subparsers(dest="sim_command", required=True)

    render = sim_sub.add_parser("render", help="draw a world or scenario from above as a PNG")
    render.add_argument("target", help="world name (university), SDF path, or scenario .yaml")
    render.add_argument("-o", "--output", help="PNG file (default: <name>.png)")
    render.add_argument("--trajectory", help="trajectory to overlay: .csv (x,y) or .npy (N,2)")
    render.add_argument(
        "--agents",
        type=int,
        nargs="?",
        const=-1,
        help="draw the crowd's initial positions: N pedestrians, or the scenario's crowd",
    )
    render.add_argument("--resolution", type=float, default=0.25, help="metres per pixel")
    render.add_argument("--seed", type=int, help="crowd seed (default: the scenario's, or 0)")
    render.set_defaults(func=_guarded(_render))

    scenario = sim_sub.add_parser("scenario", help="validate or generate scenario files")
    sc_sub = scenario.add_subparsers(dest="scenario_command", required=True)
    validate = sc_sub.add_parser("validate", help="check scenario files; exit 2 if any is bad")
    validate.add_argument("files", nargs="+", help="scenario .yaml files")
    validate.set_defaults(func=_guarded(_validate))
    generate = sc_sub.add_parser("generate", help="write randomised, validated scenarios")
    generate.add_argument("--world", required=True, help="world name or SDF path")
    generate.add_argument("--count", type=int, required=True, help="how many")
    generate.add_argument("--seed", type=int, required=True, help="generator seed")
    generate.add_argument("--duration", type=float, default=600.0, help="[s] per scenario")
    generate.add_argument("-o", "--output", required=True, help="folder for the .yaml files")
    generate.set_defaults(func=_guarded(_generate))
    return sim


def main(argv: Sequence[str] | None = None) -> int:
    """Standalone entry: `python -m xiaomanlv_sim.cli sim ...` (the same as `xiaomanlv sim`)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = argparse.ArgumentParser(prog="xiaomanlv")
    add_sim_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
