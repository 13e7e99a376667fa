"""A declared graph running as real processes, plus a client node on the same ROS domain.

The launch_testing pattern without launch_testing: :class:`GraphSession` starts nodes of a
profile through the bring-up supervisor on a reserved ``ROS_DOMAIN_ID``, gives the caller an
rclpy node (spun on a background thread) to publish, subscribe, call services and send action
goals with, and always tears everything down. The pytest fixtures in tests/conftest.py and
``xiaomanlv demo`` both use it.

Tests that use it wait for states, never for fixed times: a subscription matched
(:meth:`GraphSession.wait_for_subscribers`, :meth:`GraphSession.wait_for_match`), a message that
meets a predicate (:meth:`GraphSession.wait_for_message`, :class:`Inbox`), any condition
(:meth:`GraphSession.wait_until`), each with a deadline and an error naming what never happened.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO, TypeVar

import rclpy
from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.action.client import ClientGoalHandle
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import QoSProfile
from unique_identifier_msgs.msg import UUID

from xiaomanlv_bringup.graph import NodeSpec
from xiaomanlv_bringup.supervisor import Supervisor
from xiaomanlv_core.paths import node_executable

DOMAIN_IDS = range(1, 101)  # Fast DDS ports stay below 32768 for these
POLL = 0.02  # [s] how often a wait re-checks its condition (not a delay anything relies on)
GOAL_RESEND = 5.0  # [s] a goal or result request unanswered this long is sent again
T = TypeVar("T")


@contextlib.contextmanager
def reserved_domain_id(lock_dir: Path | None = None) -> Iterator[int]:
    """Hold an exclusive lock on a free ``ROS_DOMAIN_ID`` so concurrent runs never share one."""
    folder = lock_dir or Path(tempfile.gettempdir()) / "xiaomanlv-ros-domains"
    folder.mkdir(parents=True, exist_ok=True)
    candidates = list(DOMAIN_IDS)
    random.shuffle(candidates)
    for domain in candidates:
        handle = open(folder / f"{domain}.lock", "w")  # noqa: SIM115 - held while in use
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        try:
            yield domain
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
        return
    raise RuntimeError(f"no free ROS_DOMAIN_ID in {DOMAIN_IDS} (locks in {folder})")


class GraphSession:
    """Run ``nodes`` as processes on ``domain_id`` with a client node for the caller.

    Use as a context manager; the processes and the client stop on exit, also on failure.
    """

    def __init__(
        self,
        nodes: Sequence[NodeSpec],
        domain_id: int,
        *,
        output: TextIO | None = None,
        client_name: str = "xiaomanlv_client",
        grace: float = 5.0,
    ) -> None:
        env = {**os.environ, "ROS_DOMAIN_ID": str(domain_id)}
        env.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        self.domain_id = domain_id
        self.supervisor = Supervisor(nodes, node_executable, env=env, output=output, grace=grace)
        self._client_name = client_name
        self._context: Context | None = None
        self._executor: SingleThreadedExecutor | None = None
        self._thread: threading.Thread | None = None
        self.node: Node | None = None

    def __enter__(self) -> GraphSession:
        try:
            self.supervisor.start()
            self._context = Context()
            rclpy.init(context=self._context, domain_id=self.domain_id)
            self.node = rclpy.create_node(self._client_name, context=self._context)
            self._executor = SingleThreadedExecutor(context=self._context)
            self._executor.add_node(self.node)
            self._thread = threading.Thread(target=self._spin, daemon=True)
            self._thread.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(timeout_sec=2.0)
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self.node is not None:
            self.node.destroy_node()
        if self._context is not None:
            self._context.try_shutdown()
        self.supervisor.shutdown()

    def _spin(self) -> None:
        assert self._executor is not None
        with contextlib.suppress(Exception):
            self._executor.spin()

    @property
    def client(self) -> Node:
        if self.node is None:
            raise RuntimeError("the session is not running")
        return self.node

    def _check_alive(self) -> None:
        """Raise when the graph stopped, or a node of it is down for good."""
        self.supervisor.poll()
        if self.supervisor.failure:
            raise RuntimeError(self.supervisor.failure)
        down = self.supervisor.down()
        if down:
            raise RuntimeError("; ".join(f"{name}: {why}" for name, why in down.items()))

    def wait_until(self, condition: Callable[[], T], timeout: float, what: str) -> T:
        """Poll ``condition`` until it returns something truthy, and return that.

        Raises:
            TimeoutError: ``what`` did not happen within ``timeout`` s (the message says so).
            RuntimeError: a node of the graph died and its policy stopped the graph.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            value = condition()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {timeout:g} s")
            time.sleep(POLL)

    def wait_for_topics(self, topics: Sequence[str], timeout: float = 20.0) -> None:
        """Block until every topic in ``topics`` has a publisher.

        Raises:
            TimeoutError: naming the topics that never appeared.
            RuntimeError: a node of the graph died and its policy stopped the graph.
        """
        missing: list[str] = list(topics)

        def none_missing() -> bool:
            missing[:] = [t for t in topics if not self.client.get_publishers_info_by_topic(t)]
            return not missing

        try:
            self.wait_until(none_missing, timeout, "publishers")
        except TimeoutError:
            raise TimeoutError(
                f"no publisher after {timeout:g} s on: {', '.join(sorted(missing))}"
            ) from None

    def wait_for_subscribers(self, topic: str, count: int = 1, timeout: float = 15.0) -> None:
        """Block until ``topic`` has at least ``count`` subscribers (as the graph sees it)."""
        self.wait_until(
            lambda: self.client.count_subscribers(topic) >= count,
            timeout,
            f"{count} subscriber(s) on {topic}",
        )

    def wait_for_match(self, publisher: Publisher, count: int = 1, timeout: float = 15.0) -> None:
        """Block until ``publisher`` has matched ``count`` subscriptions, so what it publishes
        next is delivered (discovery is done on both sides, not only seen in the graph)."""
        self.wait_until(
            lambda: publisher.get_subscription_count() >= count,
            timeout,
            f"{count} subscription(s) matched by the publisher on {publisher.topic_name}",
        )

    def wait_for_message(
        self,
        msg_type: Any,
        topic: str,
        timeout: float = 10.0,
        qos: QoSProfile | int = 10,
        predicate: Callable[[Any], bool] | None = None,
    ) -> Any:
        """The next message on ``topic`` (that meets ``predicate``, if given).

        Raises:
            TimeoutError: none arrived (or none met the predicate; the last one is named).
            RuntimeError: a node of the graph died and its policy stopped the graph.
        """
        inbox = Inbox(self, msg_type, topic, qos, keep=1)
        try:
            return inbox.wait(predicate or (lambda _msg: True), timeout)
        finally:
            inbox.close()

    def collect(self, msg_type: Any, topic: str, qos: QoSProfile | int = 10) -> Inbox:
        """Keep every message on ``topic`` from now on; :meth:`Inbox.wait` for one."""
        return Inbox(self, msg_type, topic, qos)

    @contextlib.contextmanager
    def publishing(self, topic: str, msg: Any, rate: float = 20.0) -> Iterator[None]:
        """Publish ``msg`` on ``topic`` at ``rate`` [Hz] from the client while the block runs."""
        pub = self.client.create_publisher(type(msg), topic, 10)
        timer = self.client.create_timer(1.0 / rate, lambda: pub.publish(msg))
        try:
            yield
        finally:
            self.client.destroy_timer(timer)
            self.client.destroy_publisher(pub)

    def call(
        self,
        srv_type: Any,
        name: str,
        request: Any,
        timeout: float = 10.0,
        *,
        resend_every: float | None = None,
    ) -> Any:
        """Call service ``name`` and return its response; TimeoutError if it does not answer.

        A new client's response reader may not yet be matched by the server when its first
        request arrives, and DDS then drops the response (the request is served, the answer
        lost). For a request that is safe to repeat (a query), ``resend_every`` [s] sends it
        again at that interval until one answer arrives or ``timeout`` passes; a request that
        changes state is sent once.
        """
        client = self.client.create_client(srv_type, name)
        deadline = time.monotonic() + timeout
        try:
            if not client.wait_for_service(timeout_sec=timeout):
                self._check_alive()
                raise TimeoutError(f"service {name} not available within {timeout:g} s")
            every = timeout if resend_every is None else resend_every
            response, _ = self._answered(
                lambda: client.call_async(request), deadline, every, f"service {name}"
            )
            return response
        finally:
            self.client.destroy_client(client)

    def send_goal(
        self, action_type: Any, name: str, goal: Any, timeout: float = 30.0
    ) -> tuple[Any, list[Any], int]:
        """Send an action goal; returns (result, feedback messages, goal status).

        A goal request is a service request, and its answer can be lost the same way (see
        :meth:`call`; a loaded machine makes it likelier). Unanswered, the goal is sent again
        every :data:`GOAL_RESEND` s under the same goal id: a server that never got it accepts
        it then, one that did refuses the id it already has, and the result is then asked for
        under that id, so the server runs the goal once either way. Asking for the result is a
        query, repeated the same way.
        """
        client = ActionClient(self.client, action_type, name)
        feedback: list[Any] = []
        deadline = time.monotonic() + timeout
        try:
            if not client.wait_for_server(timeout_sec=timeout):
                self._check_alive()
                raise TimeoutError(f"action server {name} not available within {timeout:g} s")
            goal_id = UUID(uuid=list(uuid.uuid4().bytes))
            handle, sends = self._answered(
                lambda: client.send_goal_async(
                    goal, feedback_callback=lambda f: feedback.append(f.feedback), goal_uuid=goal_id
                ),
                deadline,
                GOAL_RESEND,
                f"goal acceptance by {name}",
            )
            if not handle.accepted:
                if sends == 1:
                    raise RuntimeError(f"action server {name} rejected the goal")
                # Refused as a duplicate, or rejected: the result under its id says which.
                accepted = action_type.Impl.SendGoalService.Response(accepted=True)
                handle = ClientGoalHandle(client, goal_id, accepted)
            response, _ = self._answered(
                handle.get_result_async, deadline, GOAL_RESEND, f"result of {name}"
            )
            if response.status == GoalStatus.STATUS_UNKNOWN:
                raise RuntimeError(f"action server {name} rejected the goal")
            return response.result, feedback, response.status
        finally:
            client.destroy()

    def _answered(
        self, send: Callable[[], Any], deadline: float, every: float, what: str
    ) -> tuple[Any, int]:
        """Send (``send`` returns a future) every ``every`` [s] until one is answered; returns
        the first answer and how many were sent. TimeoutError at ``deadline`` (monotonic)."""
        answered = threading.Event()
        futures: list[Any] = []
        start = time.monotonic()
        while True:
            future = send()
            future.add_done_callback(lambda _f: answered.set())
            futures.append(future)
            left = deadline - time.monotonic()
            if answered.wait(max(0.0, min(left, every))):
                return next(f for f in futures if f.done()).result(), len(futures)
            if time.monotonic() >= deadline:
                self._check_alive()
                raise TimeoutError(f"{what}: no answer within {deadline - start:.3g} s")


class Inbox:
    """Messages on one topic as the client receives them (on its spin thread).

    ``keep`` bounds how many are kept (the newest); 0 keeps all.
    """

    def __init__(
        self, session: GraphSession, msg_type: Any, topic: str, qos: QoSProfile | int, keep: int = 0
    ) -> None:
        self.topic = topic
        self._session = session
        self._keep = keep
        self._items: list[Any] = []
        self._seen = 0
        # Re-entrant: a `wait` predicate may read `items` (same thread, lock already held).
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._sub = session.client.create_subscription(msg_type, topic, self._on_message, qos)

    def _on_message(self, msg: Any) -> None:
        with self._changed:
            self._items.append(msg)
            self._seen += 1
            if self._keep and len(self._items) > self._keep:
                del self._items[: -self._keep]
            self._changed.notify_all()

    @property
    def items(self) -> list[Any]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()

    def wait(self, predicate: Callable[[Any], bool], timeout: float = 15.0) -> Any:
        """The first kept message that meets ``predicate``, waiting up to ``timeout`` s.

        Raises:
            TimeoutError: naming the topic, how many messages came and the last one.
            RuntimeError: a node of the graph died and its policy stopped the graph.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            start = 0  # count of messages before the first one not checked yet
            while True:
                first = self._seen - len(self._items)  # count before self._items[0]
                for msg in self._items[max(0, start - first) :]:
                    if predicate(msg):
                        return msg
                start = self._seen
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(min(left, 0.5))
                self._session._check_alive()
            seen, last = self._seen, (self._items or [None])[-1]
        what = "no message" if not seen else f"none of {seen} message(s) matched; last: {last}"
        raise TimeoutError(f"{self.topic}: {what} within {timeout:g} s")

    def close(self) -> None:
        self._session.client.destroy_subscription(self._sub)
