"""The entry-point pattern of ros2/examples, once, for every node executable."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node

from xiaomanlv_nav.config import ConfigError

EXIT_CONFIG = 2  # a parameter or file was rejected at start-up


def run_node(
    factory: Callable[[], Node],
    args: Sequence[str] | None = None,
    *,
    multithreaded: bool = False,
) -> int:
    """Init rclpy, build the node, spin until Ctrl-C or shutdown; 2 on a config error.

    ``multithreaded`` spins on a MultiThreadedExecutor, for nodes whose long-running callbacks
    (action goals) must not block their timers and subscriptions.
    """
    # Jazzy's rclpy.init returns no context manager (that arrived in Kilted): shut down by hand.
    rclpy.init(args=None if args is None else list(args))
    try:
        try:
            node = factory()
        except ConfigError as err:
            print(f"[FATAL] configuration rejected: {err}", file=sys.stderr, flush=True)
            return EXIT_CONFIG
        try:
            executor = MultiThreadedExecutor() if multithreaded else None
            rclpy.spin(node, executor=executor)
        finally:
            node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        rclpy.try_shutdown()
    return 0
