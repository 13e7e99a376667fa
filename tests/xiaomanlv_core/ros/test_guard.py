"""Tests for xiaomanlv_core.ros.guard: exceptions in callbacks are counted, never fatal.

The nodes run in this process on a context of their own; messages go over real DDS where the
test says so, otherwise the callbacks rclpy registered are called as the executor calls them.
"""

from __future__ import annotations

import time

import pytest
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.srv import SetParameters
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from std_msgs.msg import String
from std_srvs.srv import Trigger

from xiaomanlv_core.ros.guard import CallbackGuard, guard_node

TIMEOUT = 10.0  # [s] upper bound of every wait


class Fragile(Node):
    """A node whose subscription, service and timer raise on demand."""

    def __init__(self, context: Context) -> None:
        super().__init__("fragile", context=context)
        self.heard: list[str] = []
        self.create_subscription(String, "/fragile/in", self._on_message, 10)
        self.create_service(Trigger, "/fragile/trigger", self._on_trigger)
        self.ticks = 0
        self.create_timer(0.01, self._tick)

    def _on_message(self, msg: String) -> None:
        if msg.data == "boom":
            raise OverflowError("cannot convert 1e400")
        self.heard.append(msg.data)

    def _on_trigger(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        raise KeyError("no such thing")

    def _tick(self) -> None:
        self.ticks += 1
        if self.ticks == 1:
            raise RuntimeError("first tick fails")


def _callback(node: Node, topic: str) -> object:
    return next(s for s in node.subscriptions if s.topic_name == topic).callback


def _service(node: Node, suffix: str) -> object:
    return next(s for s in node.services if s.srv_name.endswith(suffix)).callback


def test_a_raising_subscription_is_counted_and_the_node_spins_on(context: Context) -> None:
    node = Fragile(context)
    guard = guard_node(node)
    talker = Node("talker", context=context)
    pub = talker.create_publisher(String, "/fragile/in", 10)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    deadline = time.monotonic() + TIMEOUT
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    for data in ("before", "boom", "after"):
        pub.publish(String(data=data))
    while (node.heard != ["before", "after"] or node.ticks < 2) and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)  # would raise OverflowError unguarded
    assert node.heard == ["before", "after"]
    assert guard.errors["subscription /fragile/in"] == 1
    assert guard.errors["timer _tick"] == 1  # its first tick raised; it kept ticking
    assert node.ticks > 1
    assert guard.count == 2
    executor.shutdown()


def test_without_the_guard_the_same_message_ends_spin(context: Context) -> None:
    node = Fragile(context)
    with pytest.raises(OverflowError):
        _callback(node, "/fragile/in")(String(data="boom"))


def test_a_raising_service_answers_with_the_default_response(context: Context) -> None:
    node = Fragile(context)
    guard = guard_node(node)
    response = _service(node, "/fragile/trigger")(Trigger.Request(), Trigger.Response())
    assert isinstance(response, Trigger.Response)
    assert (response.success, response.message) == (False, "")
    assert guard.errors == {"service /fragile/trigger": 1}
    assert guard.diagnostics_values() == {
        "callback_errors": "1",
        "last_callback_error": "service /fragile/trigger: KeyError: 'no such thing'",
    }


def test_a_parameter_of_an_unknown_type_is_refused_not_fatal(context: Context) -> None:
    node = Node("params", context=context)
    node.declare_parameter("rate", 1.0)
    request = SetParameters.Request(parameters=[ParameterMsg(name="rate")])
    request.parameters[0].value.type = 99  # no such ParameterType
    set_parameters = _service(node, "/set_parameters")
    with pytest.raises(ValueError, match="99"):  # rclpy's own service, unguarded
        set_parameters(request, SetParameters.Response())
    guard = guard_node(node)
    response = _service(node, "/set_parameters")(request, SetParameters.Response())
    assert list(response.results) == []
    assert guard.errors == {"service params/set_parameters": 1}
    assert node.get_parameter("rate").value == 1.0


def test_wrapping_twice_guards_once(context: Context) -> None:
    node = Fragile(context)
    guard = guard_node(node)
    guard_node(node, guard)
    _callback(node, "/fragile/in")(String(data="boom"))
    assert guard.count == 1


def test_errors_during_shutdown_are_re_raised(context: Context) -> None:
    node = Fragile(context)
    guard = guard_node(node)
    callback = _callback(node, "/fragile/in")
    context.shutdown()
    with pytest.raises(OverflowError):
        callback(String(data="boom"))
    assert guard.count == 0


def test_async_callbacks_are_guarded(context: Context) -> None:
    node = Node("async", context=context)
    guard = CallbackGuard(node)

    async def handler(request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        raise ValueError("bad")

    wrapped = guard.wrap(handler, "service /async")
    coroutine = wrapped(Trigger.Request(), Trigger.Response())
    with pytest.raises(StopIteration) as stop:
        coroutine.send(None)
    assert isinstance(stop.value.value, Trigger.Response)
    assert guard.errors == {"service /async": 1}


def test_a_replaced_timer_runs_at_its_new_period_and_stays_guarded(context: Context) -> None:
    node = Fragile(context)
    guard = guard_node(node)
    (old,) = node.timers
    new = guard.replace_timer(old, 0.25, node._tick, clock=node.get_clock())
    assert list(node.timers) == [new]
    assert new.timer_period_ns == 250_000_000
    node.ticks = 0
    new.callback()  # the first tick raises: counted, not fatal
    assert guard.errors["timer _tick"] == 1 and node.ticks == 1
    node.destroy_node()
