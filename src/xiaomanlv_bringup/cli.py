"""The ``xiaomanlv`` command: bring-up, the demo, the simulator tools, the map tools."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from xiaomanlv_bringup.graph import GraphError, load_profile, profile_names, read_executables
from xiaomanlv_bringup.supervisor import Supervisor
from xiaomanlv_core.paths import PackageNotBuiltError, executables_file, graph_file, node_executable


def _bringup(args: argparse.Namespace) -> int:
    graph = Path(args.graph) if args.graph else graph_file()
    profile = load_profile(graph, args.profile, executables=read_executables(executables_file()))
    nodes = list(profile.nodes)
    if args.nodes:
        nodes = [profile.node(name) for name in args.nodes.split(",")]
    print(f"[bringup] profile '{profile.name}': {', '.join(n.name for n in nodes)}", flush=True)
    return Supervisor(nodes, node_executable, grace=args.grace).run()


def _graph(args: argparse.Namespace) -> int:
    graph = Path(args.graph) if args.graph else graph_file()
    executables = read_executables(executables_file())
    for name in [args.profile] if args.profile else profile_names(graph):
        profile = load_profile(graph, name, executables=executables)
        print(f"{profile.name}: {profile.description}")
        for node in profile.nodes:
            print(f"  {node.name}: {node_executable(node.executable)} {' '.join(node.ros_args())}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from xiaomanlv_bringup.ros.demo import run_demo  # rclpy only when the demo runs

    return run_demo(args.profile, output=Path(args.output))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xiaomanlv", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    bringup = sub.add_parser("bringup", help="start a profile of config/graph.yaml as processes")
    bringup.add_argument("profile", help="profile name, e.g. sim or robot")
    bringup.add_argument("--nodes", help="comma-separated subset of the profile's nodes")
    bringup.add_argument("--graph", help="graph declaration (default: the installed one)")
    bringup.add_argument("--grace", type=float, default=5.0, help="shutdown grace period [s]")
    bringup.set_defaults(func=_bringup)

    graph = sub.add_parser("graph", help="print the resolved graph (commands and arguments)")
    graph.add_argument("profile", nargs="?", help="one profile (default: all)")
    graph.add_argument("--graph", help="graph declaration (default: the installed one)")
    graph.set_defaults(func=_graph)

    demo = sub.add_parser("demo", help="run the main demo and print a summary")
    demo.add_argument("--profile", default="sim")
    demo.add_argument("--output", default="build/demo", help="folder for the demo's pictures")
    demo.set_defaults(func=_demo)

    from xiaomanlv_sim.cli import add_sim_commands  # `xiaomanlv sim ...`: render, scenarios

    add_sim_commands(sub)
    from xiaomanlv_bringup.map_cli import add_map_commands  # `xiaomanlv map ...`: record, build

    add_map_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    args = build_parser().parse_args(argv)
    try:
        result: int = args.func(args)
    except (GraphError, PackageNotBuiltError) as err:
        print(f"xiaomanlv: {err}", file=sys.stderr)
        return 2
    return result


if __name__ == "__main__":
    raise SystemExit(main())
