"""``python -m xiaomanlv_sim.worldgen [--check] [--root DIR]``: write or check the worlds.

``python -m xiaomanlv_sim.worldgen --generate --seed N [N ...] -o DIR [--size M]`` writes a
random campus per seed (``generated_<N>.sdf`` and its sidecar) into DIR instead
(:mod:`xiaomanlv_sim.worldgen.generated`).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from xiaomanlv_sim.worldgen import check, repo_root, write
from xiaomanlv_sim.worldgen.generated import DEFAULT_SIZE, generate_site
from xiaomanlv_sim.worldgen.layout import LayoutError


def _generate(seeds: list[int], out: Path, size: float) -> int:
    for seed in seeds:
        site = generate_site(seed, out, size=size)
        print(
            f"{site.world} + {site.site.name}: {site.size:g} m, {site.stops} stops, "
            f"mapping route {site.route_length:.0f} m"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xiaomanlv_sim.worldgen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed files differ")
    parser.add_argument("--root", type=Path, default=repo_root(), help="repository root")
    parser.add_argument(
        "--generate", action="store_true", help="write random campuses (--seed, -o) instead"
    )
    parser.add_argument("--seed", type=int, nargs="+", help="with --generate: one site per seed")
    parser.add_argument("-o", "--output", type=Path, help="with --generate: the folder to write")
    parser.add_argument(
        "--size", type=float, default=DEFAULT_SIZE, help="with --generate: world side [m]"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.generate and (not args.seed or args.output is None):
        parser.error("--generate needs --seed N [N ...] and -o DIR")
    if not args.generate and (args.seed or args.output is not None):
        parser.error("--seed and -o go with --generate")
    try:
        if args.generate:
            return _generate(args.seed, args.output, args.size)
        if args.check:
            problems = check(args.root)
            for problem in problems:
                print(problem, file=sys.stderr)
            if problems:
                print(f"{len(problems)} generated file(s) out of date", file=sys.stderr)
                return 1
            print("generated worlds and robot model are up to date")
            return 0
        write(args.root)
    except LayoutError as error:
        print(f"layout error: {error}", file=sys.stderr)
        return 2
    except ValueError as error:  # a seed or size out of range
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
