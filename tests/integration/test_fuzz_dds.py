"""Every input of every node of the sim profile, fuzzed over DDS: no node dies.

The same fuzzer as ``bench/fuzz.py`` (``xiaomanlv_bringup.ros.fuzz``), smaller: a few hundred
hypothesis-drawn messages and service calls spread evenly over every subscription and service
(parameter and action services included) of the simulator, map server, health monitor, locker
and kiosk. Found before it existed: one /clock message with negative seconds raised inside
rclpy's time source and stopped every node on simulated time at once.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from xiaomanlv_bringup.ros.fuzz import fuzz_session

pytestmark = pytest.mark.integration

NODES = ["sim", "map_server", "health_monitor", "locker", "kiosk"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_no_node_of_the_sim_profile_dies_under_fuzzing(ros_graph, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    session = ros_graph(
        "sim",
        parameters={
            "locker": {"data_dir": str(tmp_path / "locker")},
            "kiosk": {"port": _free_port()},
        },
        topics=["/clock", "/health/status"],
        timeout=90.0,
    )
    result = fuzz_session(session, NODES, 400, seed=7, service_timeout=0.5)
    assert result["node_deaths"] == 0, result
    assert result["messages_sent"] >= 400
    # Spread over every node, each of which has inputs of both kinds between them.
    assert set(result["sent_per_node"]) == set(NODES), result["sent_per_node"]
    assert result["topic_messages"] > 0 and result["service_calls"] > 0
    assert result["raw_cdr_messages"] > 0
    # What the nodes refused, they said so: the health monitor and the locker had bad input.
    assert sum(result["rejections"].values()) > 0, result["rejections"]
