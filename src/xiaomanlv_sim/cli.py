"""`xiaomanlv sim ...`: render worlds and scenarios, validate and generate scenarios.

`add_sim_commands(subparsers)` adds the `sim` command to the `xiaomanlv` parser
(xiaomanlv_bringup/cli.py); every handler returns an exit code and turns domain errors into one
line on stderr and exit code 2. `main(argv)` runs the same commands standalone
(`python -m xiaomanlv_sim.cli sim render university`).

    xiaomanlv sim render <world-or-scenario.yaml> [-o out.png] [--trajectory t.csv|t.npy]
                         [--agents [N]] [--resolution 0.25] [--seed S]
    xiaomanlv sim render <sidecar.site.yaml> [-o out.png] [--resolution 0.25]
    xiaomanlv sim scenario validate <files...>
    xiaomanlv sim scenario generate --world W --count N --seed S -o dir/
    xiaomanlv sim site check <sidecar.site.yaml or world name...> [--world <sdf>]

`render` tells a site sidecar from a scenario by its keys (a sidecar has walkways, stops, a
station...; `is_sidecar_document`), never by its file name; a sidecar is drawn with its mapping
route and the problems `site check` finds, numbered as it prints them. `site check` prints one
line per problem (`<file>: error|warning: <element>: <what> at (x, y)`) and exits 0 when the
site is clean, 1 with warnings only, 2 with an error (a schema error included).
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from xiaomanlv_sim.scenario import CrowdSpec, Scenario, ScenarioError
from xiaomanlv_sim.world import World

if TYPE_CHECKING:
    from xiaomanlv_core.site import Site
    from xiaomanlv_sim.sitecheck import SiteProblem

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
    problems: list[SiteProblem] = []
    route = None
    if target.endswith((".yaml", ".yml")) and _is_sidecar(Path(target)):
        print(f"[sim render] loading site {target}", flush=True)
        world, site = _load_sidecar(Path(target))
        problems = _check(world, site)
        for k, problem in enumerate(problems, start=1):
            print(f"[sim render] {k}: {problem}", flush=True)
        route = np.asarray(site.mapping_route.waypoints, dtype=float)
    else:
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
        route=route,
        problems=problems,
    )
    print(f"[sim render] wrote {out}", flush=True)
    return 0


def _is_sidecar(path: Path) -> bool:
    """Whether the YAML file `path` is a site sidecar (by its keys); False when unreadable, so
    the scenario loader reports what is wrong with it."""
    from xiaomanlv_core.yamlfile import YamlFileError, read_yaml
    from xiaomanlv_sim.sitecheck import is_sidecar_document

    try:
        return is_sidecar_document(read_yaml(path))
    except (OSError, YamlFileError):
        return False


def _load_sidecar(path: Path, world_path: Path | None = None) -> tuple[World, Site]:
    """The sidecar at `path` and its world (the one it names, or `world_path`)."""
    from xiaomanlv_core.site import load_site
    from xiaomanlv_sim.sdf import load_world

    if not path.is_file():
        raise CliError(f"site sidecar {path} does not exist")
    site = load_site(path, world=world_path)
    return load_world(site.world), site


def _check(world: World, site: Site) -> list[SiteProblem]:
    from xiaomanlv_core.robot import load_robot, model_file
    from xiaomanlv_sim.sitecheck import check_site

    return check_site(world, site, load_robot(model_file()))


def _sidecar_path(target: str) -> Path:
    """A sidecar path, or the sidecar of a world (name or SDF path)."""
    from xiaomanlv_sim.assets import site_file, world_file

    if target.endswith((".yaml", ".yml")):
        return Path(target)
    return site_file(world_file(target))


def _site_check(args: argparse.Namespace) -> int:
    from xiaomanlv_core.site import SiteError

    world_path = Path(args.world) if args.world else None
    if world_path is not None and not world_path.is_file():
        raise CliError(f"--world {world_path} does not exist")
    worst = 0
    for target in args.sidecars:
        path = _sidecar_path(target)
        try:
            world, site = _load_sidecar(path, world_path)
        except SiteError as err:  # the schema: one line, and the next file
            print(f"{path}: error: {err}", flush=True)
            worst = 2
            continue
        problems = _check(world, site)
        for problem in problems:
            print(f"{path}: {problem}", flush=True)
        n_err = sum(p.severity == "error" for p in problems)
        n_warn = len(problems) - n_err
        if not problems:
            print(
                f"ok {path}: {site.name} on {world.source.name}: {len(site.stops)} stops, "
                f"{len(site.walkways.edges)} walkway edges, "
                f"mapping route {site.mapping_route.length:.0f} m",
                flush=True,
            )
        else:
            print(f"{path}: {n_err} errors, {n_warn} warnings", flush=True)
        worst = max(worst, 2 if n_err else 1 if n_warn else 0)
    return worst


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
    """Add `sim` (render, scenario validate/generate, site check) to an argparse subparsers."""
    sim = subparsers.add_parser(
        "sim", help="simulator tools: render worlds, check scenarios and sites"
    )
    sim_sub = sim.add_subparsers(dest="sim_command", required=True)

    render = sim_sub.add_parser(
        "render", help="draw a world, scenario or site sidecar from above as a PNG"
    )
    render.add_argument(
        "target", help="world name (university), SDF path, scenario .yaml or site sidecar .yaml"
    )
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

    site = sim_sub.add_parser("site", help="check site sidecars against their worlds")
    site_sub = site.add_subparsers(dest="site_command", required=True)
    check = site_sub.add_parser(
        "check",
        help="schema and geometry of site sidecars; exit 0 clean, 1 warnings only, 2 errors",
    )
    check.add_argument(
        "sidecars", nargs="+", help="<name>.site.yaml files, or world names (university)"
    )
    check.add_argument(
        "--world", help="SDF world to check against (default: the one each sidecar names)"
    )
    check.set_defaults(func=_guarded(_site_check))
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
