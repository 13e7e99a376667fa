"""``xiaomanlv demo``: bring up the sim profile over real DDS and report what it sees.

Grows with the stack. Today the graph is the health monitor alone and the simulator is not
built yet (issue 3), so the demo shows the bring-up, the interfaces working over DDS (topic,
service, action with feedback) and the monitor correctly calling every sensor stream STALE.
"""

from __future__ import annotations

import io
import sys
import time
from typing import TextIO

from diagnostic_msgs.msg import DiagnosticArray
from xiaomanlv.action import WaitForHealthy
from xiaomanlv.msg import HealthStatus
from xiaomanlv.srv import GetHealth

from xiaomanlv_nav.graph import load_profile, read_executables
from xiaomanlv_nav.health.monitor import Level
from xiaomanlv_nav.paths import executables_file, graph_file
from xiaomanlv_nav.ros.conversions import level_of
from xiaomanlv_nav.ros.session import GraphSession, reserved_domain_id


def run_demo(profile_name: str = "sim", out: TextIO | None = None) -> int:
    out = out or sys.stdout
    started = time.monotonic()
    profile = load_profile(
        graph_file(), profile_name, executables=read_executables(executables_file())
    )
    logs = io.StringIO()
    print(f"xiaomanlv demo: profile '{profile.name}' - {profile.description}", file=out)
    with reserved_domain_id() as domain, GraphSession(profile.nodes, domain, output=logs) as s:
        print(f"  ROS_DOMAIN_ID {domain}, nodes: {', '.join(s.supervisor.pids())}", file=out)
        s.wait_for_topics(["/health/status", "/diagnostics"], timeout=30.0)
        status = s.wait_for_message(HealthStatus, "/health/status", timeout=10.0)
        diagnostics = s.wait_for_message(DiagnosticArray, "/diagnostics", timeout=10.0)
        got = s.call(GetHealth, "/health/get", GetHealth.Request(), timeout=10.0)
        goal = WaitForHealthy.Goal(topics=[], timeout=1.5)
        result, feedback, _ = s.send_goal(
            WaitForHealthy, "/health/wait_until_healthy", goal, timeout=15.0
        )
        topics = [
            name
            for name, _ in s.client.get_topic_names_and_types()
            if not name.startswith(("/rosout", "/parameter_events"))
        ]
        published = [t for t in topics if s.client.count_publishers(t) > 0]
        awaited = [t for t in topics if t not in published]
        print(f"  published: {', '.join(published)}", file=out)
        print(f"  subscribed, no publisher yet: {', '.join(awaited) or '-'}", file=out)
        print(
            f"  /health/status: level {Level(level_of(status.level)).name}, "
            f"{len(diagnostics.status)} statuses on /diagnostics",
            file=out,
        )
        for topic in got.status.topics:
            print(
                f"    {topic.topic:<16} {Level(level_of(topic.level)).name:<5} "
                f"{topic.rate:5.1f} Hz (min {topic.min_rate:g})  {topic.message}",
                file=out,
            )
        still = ", ".join(feedback[-1].unhealthy_topics) if feedback else "-"
        print(
            f"  wait_until_healthy: healthy={result.healthy} after {len(feedback)} feedback "
            f"message(s); still unhealthy: {still}",
            file=out,
        )
        print(
            "  simulator: not part of the stack yet (issue 3), so no sensor publishes and the "
            "monitor rightly reports every sensor stream STALE",
            file=out,
        )
    unclean = {n: c for n, c in s.supervisor.exit_codes().items() if any(c)}
    failure = s.supervisor.failure or (f"non-zero exit codes {unclean}" if unclean else None)
    print(f"  shutdown: {failure or 'clean, every node exited 0 on SIGINT'}", file=out)
    if failure:
        print("  node output:\n" + logs.getvalue(), file=out)
    print(f"demo finished in {time.monotonic() - started:.1f} s", file=out)
    return 1 if failure else 0
