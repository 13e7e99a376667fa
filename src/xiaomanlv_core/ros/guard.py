"""Callback guard: an unforeseen exception in a callback is counted and logged, never fatal.

rclpy's executor lets an exception raised in a subscription, service or timer callback
propagate out of ``spin()`` (``rclpy/executors.py``: ``await_or_execute(sub.callback, ...)``),
which ends the node's process: one malformed message that a conversion did not foresee kills
the node. Each node validates what it converts and counts a rejection itself; this guard is
the safety net under that, for what the validation missed. :func:`guard_node` wraps every
callback the node has created, rclpy's own parameter services included (``Parameter.from_
parameter_msg`` raises on a parameter type it does not know), and the node reports the
guard's count and last error on /diagnostics (:meth:`CallbackGuard.diagnostics_values`).

A guarded service callback that raises answers with the default response it was handed (the
caller gets an empty answer, not a hung call); a guarded timer that raises runs again at its
next period. Exceptions raised while the context is shutting down are re-raised, so SIGINT
still ends the node the way :func:`xiaomanlv_core.ros.entry.run_node` expects.
"""

from __future__ import annotations

import functools
import inspect
import traceback
from collections import Counter
from collections.abc import Callable
from typing import Any

from rclpy.clock import Clock
from rclpy.node import Node
from rclpy.timer import Timer

MAX_ERROR_TEXT = 300  # [characters] of an exception's text kept for /diagnostics


class CallbackGuard:
    """Counts and logs exceptions that escape a node's callbacks.

    Args:
        node: the node whose logger and context the guard uses.
        throttle: at most one log line per callback per this many seconds (the first
            exception of each callback is logged with its traceback). [s]
    """

    def __init__(self, node: Node, *, throttle: float = 5.0) -> None:
        self._node = node
        self._throttle = throttle
        self.errors: Counter[str] = Counter()  # callback name -> exceptions caught
        self.last_error = ""

    @property
    def count(self) -> int:
        """Exceptions caught in every callback together."""
        return sum(self.errors.values())

    def wrap(self, callback: Callable[..., Any], where: str) -> Callable[..., Any]:
        """``callback``, guarded; ``where`` names it in logs and diagnostics."""
        if getattr(callback, "__xiaomanlv_guarded__", False):
            return callback
        if inspect.iscoroutinefunction(callback):

            @functools.wraps(callback)
            async def guarded_async(*args: Any) -> Any:
                try:
                    return await callback(*args)
                except Exception as err:
                    return self._caught(where, err, args)

            guarded: Callable[..., Any] = guarded_async
        else:

            @functools.wraps(callback)
            def guarded_sync(*args: Any) -> Any:
                try:
                    return callback(*args)
                except Exception as err:
                    return self._caught(where, err, args)

            guarded = guarded_sync
        guarded.__xiaomanlv_guarded__ = True  # type: ignore[attr-defined]
        return guarded

    def replace_timer(
        self, timer: Timer, period: float, callback: Callable[[], Any], *, clock: Clock
    ) -> Timer:
        """A node's timer at a new ``period`` [s] (a rate changed by a parameter): ``timer``
        cancelled and destroyed, a guarded one created on ``clock`` in its place."""
        node = self._node
        timer.cancel()
        node.destroy_timer(timer)
        return node.create_timer(
            period, self.wrap(callback, f"timer {_name_of(callback)}"), clock=clock
        )

    def diagnostics_values(self) -> dict[str, str]:
        """``callback_errors`` (the count) and ``last_callback_error`` for a status's values."""
        return {"callback_errors": str(self.count), "last_callback_error": self.last_error}

    def _caught(self, where: str, err: Exception, args: tuple[Any, ...]) -> Any:
        if not self._node.context.ok():
            raise err  # shutting down: run_node tells a shutdown from a failure
        first = where not in self.errors
        self.errors[where] += 1
        text = f"{type(err).__name__}: {err}"
        self.last_error = f"{where}: {text}"[:MAX_ERROR_TEXT]
        logger = self._node.get_logger()
        if first:
            detail = "".join(traceback.format_exception(err)).rstrip()
            logger.error(f"{where} raised (counted, the node goes on):\n{detail}")
        else:
            logger.error(
                f"{where} raised again ({self.errors[where]} so far): {text}",
                throttle_duration_sec=self._throttle,
            )
        # A service callback is called with (request, default response): answer with the
        # default rather than None, which rclpy could not send.
        return args[1] if len(args) == 2 and _is_response(args[1]) else None


def _is_response(value: Any) -> bool:
    return type(value).__name__.endswith("_Response")


def guard_node(node: Node, guard: CallbackGuard | None = None) -> CallbackGuard:
    """Guard every subscription, service and timer callback ``node`` has created so far.

    Call it at the end of the node's constructor; callbacks created later need
    :meth:`CallbackGuard.wrap` (or another call: wrapping is idempotent).
    """
    guard = guard if guard is not None else CallbackGuard(node)
    for sub in node.subscriptions:
        sub.callback = guard.wrap(sub.callback, f"subscription {sub.topic_name}")
    for srv in node.services:
        srv.callback = guard.wrap(srv.callback, f"service {srv.srv_name}")
    for timer in node.timers:
        timer.callback = guard.wrap(timer.callback, f"timer {_name_of(timer.callback)}")
    return guard


def _name_of(callback: Callable[..., Any]) -> str:
    return str(getattr(callback, "__name__", None) or type(callback).__name__)
