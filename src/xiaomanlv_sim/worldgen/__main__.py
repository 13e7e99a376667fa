"""``python -m xiaomanlv_sim.worldgen [--check] [--root DIR]``: write or check the worlds."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from xiaomanlv_sim.worldgen import check, repo_root, write
from xiaomanlv_sim.worldgen.layout import LayoutError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xiaomanlv_sim.worldgen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if committed files differ")
    parser.add_argument("--root", type=Path, default=repo_root(), help="repository root")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
