"""RosLockerClient: the kiosk's LockerClient over the locker node's services and topics.

Calls /locker/submit_code and /locker/load_parcel with a timeout from the web server's
threads while the node spins on its own executor thread; a service that is missing or does
not answer in ``service_timeout`` raises LockerUnavailableError, which the page shows as
"Locker unavailable, please wait" and the node reports on /diagnostics. Compartment
statuses arrive on /locker/compartment_NN/status (best effort, so any publisher QoS matches)
and are kept with their arrival time; a status older than ``status_timeout`` is not shown.
A status or an answer the locker would never send (see ``conversions``) is counted, not used:
a malformed answer reads as "locker unavailable" with the reason on /diagnostics.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from rclpy.client import Client
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from xiaomanlv.msg import CompartmentStatus
from xiaomanlv.srv import LoadParcel, SubmitCode

from xiaomanlv_locker.kiosk.client import (
    CodeResult,
    CompartmentView,
    LoadRequest,
    LoadResult,
    LockerStatus,
    LockerUnavailableError,
)
from xiaomanlv_locker.kiosk.config import KioskConfig
from xiaomanlv_locker.kiosk.ros.conversions import (
    MAX_COMPARTMENT,
    code_result,
    compartment_view,
    load_result,
)

SUBMIT_CODE = "/locker/submit_code"
LOAD_PARCEL = "/locker/load_parcel"
T = TypeVar("T")
STATUS_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)


def status_topic(compartment: int) -> str:
    """/locker/compartment_NN/status for compartment 1..50."""
    return f"/locker/compartment_{compartment:02d}/status"


@dataclass(frozen=True)
class LinkState:
    """How the kiosk's calls to the locker went, for /diagnostics."""

    calls: int = 0
    unavailable: int = 0  # calls the locker did not answer
    last_error: str = ""  # "" after a call that was answered
    malformed_status: int = 0  # compartment statuses that could not be used
    malformed_responses: int = 0  # locker answers that could not be used


class RosLockerClient:
    """LockerClient over rclpy. Thread-safe: the web server calls it from many threads.

    Args:
        node: the node the clients and subscriptions belong to (spun by another thread).
        config: ``service_timeout`` [s] and ``status_timeout`` [s].
    """

    def __init__(self, node: Node, config: KioskConfig) -> None:
        self._node = node
        self.service_timeout = config.service_timeout  # [s]
        self.status_timeout = config.status_timeout  # [s]
        self._lock = threading.Lock()
        self._link = LinkState()
        self._seen: dict[int, tuple[CompartmentView, float]] = {}  # number -> (view, steady s)
        self._submit = node.create_client(SubmitCode, SUBMIT_CODE)
        self._load = node.create_client(LoadParcel, LOAD_PARCEL)
        for number in range(1, MAX_COMPARTMENT + 1):
            node.create_subscription(
                CompartmentStatus, status_topic(number), self._on_status(number), STATUS_QOS
            )

    # LockerClient -------------------------------------------------------------------------

    def submit_code(self, kiosk_id: str, code: str) -> CodeResult:
        request = SubmitCode.Request(kiosk_id=kiosk_id, code=code)
        return self._convert(code_result, self._call(self._submit, request), SUBMIT_CODE)

    def load_parcel(self, request: LoadRequest) -> LoadResult:
        msg = LoadParcel.Request(
            parcel_id=request.parcel_id,
            recipient=request.recipient,
            stop=request.stop,
            size=request.size,
            operator_id=request.operator_id,
            operator_credential=request.operator_credential,
        )
        return self._convert(load_result, self._call(self._load, msg), LOAD_PARCEL)

    def status(self) -> LockerStatus:
        now = time.monotonic()
        with self._lock:
            seen = sorted(self._seen.items())
        views = tuple(
            replace(view, age=now - stamp)
            for _number, (view, stamp) in seen
            if now - stamp <= self.status_timeout
        )
        return LockerStatus(reachable=self.services_ready(), compartments=views)

    # For the node -------------------------------------------------------------------------

    def services_ready(self) -> bool:
        """Both locker services have a server on the graph."""
        return bool(self._submit.service_is_ready() and self._load.service_is_ready())

    def link(self) -> LinkState:
        with self._lock:
            return self._link

    # Internals ----------------------------------------------------------------------------

    def _on_status(self, number: int) -> Any:
        def callback(msg: CompartmentStatus) -> None:
            try:
                view = compartment_view(msg)
                if view.compartment != number:
                    raise ValueError(
                        f"compartment {view.compartment} published on {status_topic(number)}"
                    )
            except ValueError as err:
                with self._lock:
                    self._link = replace(
                        self._link, malformed_status=self._link.malformed_status + 1
                    )
                self._node.get_logger().warn(
                    f"ignored a compartment status: {err}", throttle_duration_sec=5.0
                )
                return
            with self._lock:
                self._seen[number] = (view, time.monotonic())

        return callback

    def _convert(self, convert: Callable[[Any], T], response: Any, service: str) -> T:
        """``convert(response)``; a malformed answer is counted and raises
        LockerUnavailableError (the page says the locker is unavailable)."""
        try:
            return convert(response)
        except ValueError as err:
            error = f"{service} sent a malformed answer: {err}"
            with self._lock:
                self._link = replace(
                    self._link,
                    malformed_responses=self._link.malformed_responses + 1,
                    last_error=error,
                )
            self._node.get_logger().warn(error, throttle_duration_sec=5.0)
            raise LockerUnavailableError(error) from None

    def _call(self, client: Client, request: Any) -> Any:
        timeout = self.service_timeout
        deadline = time.monotonic() + timeout
        try:
            if not client.service_is_ready() and not client.wait_for_service(timeout_sec=timeout):
                raise LockerUnavailableError(
                    f"{client.service_name} is not available (waited {timeout:g} s)"
                )
            future = client.call_async(request)
            done = threading.Event()
            future.add_done_callback(lambda _f: done.set())
            if not done.wait(max(0.0, deadline - time.monotonic())):
                client.remove_pending_request(future)
                future.cancel()
                raise LockerUnavailableError(
                    f"{client.service_name} did not answer within {timeout:g} s"
                )
            response = future.result()
            if response is None:
                raise LockerUnavailableError(f"{client.service_name} returned no response")
        except LockerUnavailableError as err:
            self._record(str(err))
            raise
        self._record("")
        return response

    def _record(self, error: str) -> None:
        with self._lock:
            self._link = replace(
                self._link,
                calls=self._link.calls + 1,
                unavailable=self._link.unavailable + (1 if error else 0),
                last_error=error,
            )
