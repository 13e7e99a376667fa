"""Hostile-input benchmark: fuzz every input of every node of a profile over real DDS.

    source tools/env.sh && python bench/fuzz.py [--quick] [--count N] [--profile sim] [--seed S]

Brings up the profile (default ``sim``: simulator, map server, health monitor, locker, kiosk)
as processes through the same supervisor ``xiaomanlv bringup`` uses, on a reserved
ROS_DOMAIN_ID, with the locker on a fresh data folder. The fuzzer
(:mod:`xiaomanlv_bringup.ros.fuzz`) discovers every subscription and service of every node
(parameter and action services included) and sends ``--count`` hypothesis-drawn messages and
requests, spread evenly over them: NaN, infinities, integer bounds, huge and empty sequences,
control characters, JSON nested thousands deep, lying point clouds, and 10 % raw CDR cut short
or corrupted. Then it waits for each node's next /diagnostics.

Reports ``messages_sent`` (messages + service calls), ``node_deaths`` (process exits during
the run plus nodes down at its end; target 0), the rejections each node reported in
/diagnostics (keys naming malformed / rejected / invalid), service answers and timeouts, and
what could not be fuzzed here (interfaces not installed). ``--quick``: 1,000, under a minute.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
from pathlib import Path

from xiaomanlv_bringup.graph import load_profile, read_executables
from xiaomanlv_bringup.ros.demo import _free_port, _with_locker_data
from xiaomanlv_bringup.ros.fuzz import FuzzReport, fuzz_session
from xiaomanlv_bringup.ros.session import GraphSession, reserved_domain_id
from xiaomanlv_core.paths import executables_file, graph_file


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 messages (under a minute)")
    parser.add_argument("--count", type=int, default=None, help="messages + calls (10,000)")
    parser.add_argument("--profile", default="sim")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--service-timeout", type=float, default=1.0, help="[s] per call")
    parser.add_argument("--log", type=Path, default=None, help="write the nodes' output here")
    args = parser.parse_args()
    count = args.count or (1_000 if args.quick else 10_000)

    executables = read_executables(executables_file())
    profile = load_profile(graph_file(), args.profile, executables=executables)
    nodes = list(profile.nodes)
    if any(n.name == "locker" for n in nodes):
        data = Path(tempfile.mkdtemp(prefix="xiaomanlv-fuzz-locker-"))
        nodes = _with_locker_data(nodes, data, _free_port())
    names = [n.name for n in nodes]
    logs = io.StringIO()
    started = time.monotonic()

    def progress(report: FuzzReport) -> None:
        print(
            f"  {report.total}/{count} sent ({report.raw_sent} raw CDR), "
            f"{report.service_answers} answers, {report.service_timeouts} timeouts, "
            f"{time.monotonic() - started:.0f} s",
            file=sys.stderr,
        )

    print(f"fuzz: profile {profile.name}, nodes {', '.join(names)}, {count} sends", file=sys.stderr)
    with (
        reserved_domain_id() as domain,
        GraphSession(nodes, domain, output=logs, client_name="fuzzer") as session,
    ):
        result = fuzz_session(
            session,
            names,
            count,
            seed=args.seed,
            service_timeout=args.service_timeout,
            progress=progress,
        )
    if args.log:
        args.log.write_text(logs.getvalue())
    for node, codes in result["exit_codes"].items():
        lines = [line for line in logs.getvalue().splitlines() if line.startswith(f"[{node}]")]
        print(f"node {node} exited {codes}; its last output:", file=sys.stderr)
        print("\n".join(lines[-40:]), file=sys.stderr)
    result = {"profile": profile.name, **result, "seconds": round(time.monotonic() - started, 1)}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
