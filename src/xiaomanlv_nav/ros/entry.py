"""The entry-point pattern of ros2/examples, once, for every node executable."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from xiaomanlv_nav.config import ConfigError

EXIT_CONFIG = 2  # a parameter or file was rejected at start-up


def run_node(factory: Callable[[], Node], args: Sequence[str] | None = None) -> int:
    """Init rclpy, build the node, spin until Ctrl-C or shutdown; 2 on a config error.

    Nodes spin on one thread: a callback that has to wait (an action goal) awaits a future
    instead of blocking, so cores need no locks.
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
            rclpy.spin(node)
        finally:
            node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        rclpy.try_shutdown()
    return 0
