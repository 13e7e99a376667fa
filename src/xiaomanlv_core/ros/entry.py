"""The entry-point pattern of ros2/examples, once, for every node executable."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from xiaomanlv_core.config import ConfigError
from xiaomanlv_core.ros.guard import guard_node

EXIT_CONFIG = 2  # a parameter or file was rejected at start-up

N = TypeVar("N", bound=Node)


def _spin(node: Node) -> None:
    rclpy.spin(node)


def run_node(
    factory: Callable[[], N],
    args: Sequence[str] | None = None,
    *,
    spin: Callable[[N], None] = _spin,
) -> int:
    """Init rclpy, build the node, spin until Ctrl-C or shutdown; 2 on a config error.

    Nodes spin on one thread: a callback that has to wait (an action goal) awaits a future
    instead of blocking, so cores need no locks. A node that needs more (the locker serves
    codes on a thread of their own) passes its own ``spin``; it returns when the node stops.
    """
    # Jazzy's rclpy.init returns no context manager (that arrived in Kilted): shut down by hand.
    rclpy.init(args=None if args is None else list(args))
    try:
        try:
            node = factory()
        except ConfigError as err:
            print(f"[FATAL] configuration rejected: {err}", file=sys.stderr, flush=True)
            return EXIT_CONFIG
        # The safety net under every node, also for callbacks the node did not write (rclpy's
        # /clock subscription raises on negative seconds); idempotent for nodes that already
        # guard themselves to report the guard's counts in their /diagnostics.
        guard_node(node)
        try:
            spin(node)
        except Exception:
            # A SIGINT shuts the context down while the executor is mid-iteration: rclpy then
            # raises an RCLError (invalid context, wait set) instead of ExternalShutdownException.
            if node.context.ok():
                raise
        finally:
            node.destroy_node()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        rclpy.try_shutdown()
    return 0
