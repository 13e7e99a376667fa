"""kiosk: the locker's touchscreen web app and its ROS client, in one process.

Serves the Flask app of :mod:`xiaomanlv_locker.kiosk.app` with waitress, a production WSGI
server (https://docs.pylonsproject.org/projects/waitress/), on ``host:port`` (default
127.0.0.1:8080; an address beyond loopback only with ``allow_remote``, and then with a warning)
while an executor thread spins the node, whose
:class:`~xiaomanlv_locker.kiosk.ros.client.RosLockerClient` calls /locker/submit_code and
/locker/load_parcel and listens to /locker/compartment_NN/status. Publishes its state on
/diagnostics every ``diagnostics_period``: ERROR while the locker's services are missing or
the last call went unanswered, with counts of codes, lockouts, loads, refused input and
unusable statuses and answers, requests refused by the attempt limits and internal errors.

waitress runs its event loop on a thread of ours, one poll of at most 0.2 s at a time, so a
stop needs no signal inside waitress; it caps request bodies and headers (a flood cannot make
it buffer megabytes) and closes idle connections.

SIGINT or SIGTERM stops the web server (waiting for requests in flight), then the executor,
then rclpy (the ros2/examples entry pattern, with rclpy's signal handlers off so that one
handler stops both loops).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from waitress import wasyncore
from waitress.server import create_server

from xiaomanlv_core.config import ConfigError
from xiaomanlv_core.ros.diagnostics import diagnostic_array, diagnostic_status
from xiaomanlv_core.ros.entry import EXIT_CONFIG
from xiaomanlv_core.ros.guard import guard_node
from xiaomanlv_core.ros.params import declare_config, watch_config
from xiaomanlv_locker.kiosk.app import MAX_BODY, create_app, stats_of
from xiaomanlv_locker.kiosk.config import KioskConfig
from xiaomanlv_locker.kiosk.ros.client import RosLockerClient

EXIT_SERVE = 1  # the web server could not bind its address
EXIT_ROS = 3  # the ROS executor thread ended with an error
POLL = 0.2  # [s] longest wait of the web server's event loop before it checks for a stop
RUNTIME_FIELDS = ("service_timeout", "status_timeout")  # may change while running


class KioskNode(Node):
    def __init__(self) -> None:
        super().__init__("kiosk")
        self.config = declare_config(self, KioskConfig)
        self.locker = RosLockerClient(self, self.config)
        self.app = create_app(self.locker, self.config)
        self._prefix = self.get_fully_qualified_name().lstrip("/")
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._timer = self.create_timer(
            self.config.diagnostics_period, self._publish_diagnostics, clock=self._steady
        )
        watch_config(self, lambda: self.config, self._reconfigure)
        # The net under every callback, rclpy's /clock subscription included (it raises on a
        # Clock with negative seconds): counted in /diagnostics, the node goes on.
        self._guard = guard_node(self)

    @property
    def url(self) -> str:
        return f"http://{self.config.host}:{self.config.port}/"

    def diagnostics(self) -> DiagnosticStatus:
        """The kiosk's link to the locker and its counts as one diagnostic status."""
        link = self.locker.link()
        ready = self.locker.services_ready()
        if not ready:
            level, message = DiagnosticStatus.ERROR, "locker unavailable: services not found"
        elif link.last_error:
            level, message = DiagnosticStatus.ERROR, f"locker unavailable: {link.last_error}"
        else:
            level, message = DiagnosticStatus.OK, f"serving {self.url}"
        values: dict[str, Any] = {
            "url": self.url,
            "kiosk_id": self.config.kiosk_id,
            "locker_services_ready": ready,
            "locker_calls": link.calls,
            "locker_unanswered": link.unavailable,
            "malformed_messages": link.malformed_status,
            "malformed_responses": link.malformed_responses,
            **self._guard.diagnostics_values(),
            **stats_of(self.app).snapshot(),
        }
        return diagnostic_status(
            f"{self._prefix}: locker link",
            level,
            message,
            values,
            hardware_id=self.config.kiosk_id,
        )

    def _publish_diagnostics(self) -> None:
        stamp = self.get_clock().now().to_msg()
        self.diag_pub.publish(diagnostic_array([self.diagnostics()], stamp))

    def _reconfigure(self, config: KioskConfig) -> None:
        fixed = [
            field.name
            for field in dataclasses.fields(config)
            if field.name not in RUNTIME_FIELDS
            and getattr(config, field.name) != getattr(self.config, field.name)
        ]
        if fixed:
            raise ConfigError(
                f"{', '.join(fixed)} cannot change at run time; restart the node "
                f"(only {', '.join(RUNTIME_FIELDS)} can)"
            )
        self.config = config
        self.locker.service_timeout = config.service_timeout
        self.locker.status_timeout = config.status_timeout


def serve(node: KioskNode, stop: threading.Event) -> int:
    """Run the web server and the executor until ``stop`` is set or either of them ends."""
    log = logging.getLogger("xiaomanlv_locker.kiosk")
    config = node.config
    socket_map: dict[int, Any] = {}
    try:
        server = create_server(
            node.app,
            map=socket_map,
            host=config.host,
            port=config.port,
            threads=config.server_threads,
            ident="xiaomanlv-kiosk",
            max_request_body_size=16 * MAX_BODY,  # [bytes] larger: cut off by waitress unread
            max_request_header_size=16 * 1024,  # [bytes]
            channel_timeout=30,  # [s] idle connections are closed
            clear_untrusted_proxy_headers=True,  # no proxy is trusted: X-Forwarded-* dropped
            asyncore_use_poll=True,  # DDS opens many descriptors; select() stops at 1024
        )
    except OSError as err:
        print(
            f"[FATAL] cannot serve the kiosk on {config.host}:{config.port} "
            f"(parameters 'host', 'port'): {err}",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_SERVE
    if config.remote:
        log.warning(
            "kiosk bound to %s beyond loopback (allow_remote): any machine that reaches it can "
            "try pickup codes and operator credentials; attempt limits apply per client "
            "address, and Host must be one of %s",
            config.host,
            ", ".join(sorted(config.host_names())),
        )
    executor = SingleThreadedExecutor()
    executor.add_node(node)

    failed: list[BaseException] = []

    def spin() -> None:
        try:
            executor.spin()
        except ExternalShutdownException:
            pass
        except Exception as err:  # rclpy itself failed: end the process non-zero
            if not stop.is_set():
                failed.append(err)
                log.exception("the kiosk's ROS executor stopped")
        finally:
            stop.set()

    def web() -> None:
        try:
            while not stop.is_set():
                wasyncore.loop(timeout=POLL, map=socket_map, use_poll=True, count=1)
        finally:
            stop.set()
            wasyncore.close_all(socket_map, ignore_all=True)
            # Requests in flight finish (a locker call waits at most service_timeout).
            server.task_dispatcher.shutdown(timeout=math.ceil(node.config.service_timeout) + 1)

    ros_thread = threading.Thread(target=spin, name="kiosk-ros", daemon=True)
    web_thread = threading.Thread(target=web, name="kiosk-web", daemon=True)
    ros_thread.start()
    web_thread.start()
    log.info("kiosk %s serving %s (waitress)", config.kiosk_id, node.url)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        stop.set()
        web_thread.join(timeout=node.config.service_timeout + 3.0)  # the executor still spins
        executor.shutdown(timeout_sec=2.0)
        ros_thread.join(timeout=3.0)
    log.info("kiosk stopped")
    return EXIT_ROS if failed else 0


def main(args: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="[%(levelname)s] [%(name)s] %(message)s")
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda _signum, _frame: stop.set())
        for sig in (signal.SIGINT, signal.SIGTERM)
    }
    rclpy.init(
        args=None if args is None else list(args),
        signal_handler_options=SignalHandlerOptions.NO,
    )
    try:
        try:
            node = KioskNode()
        except ConfigError as err:
            print(f"[FATAL] configuration rejected: {err}", file=sys.stderr, flush=True)
            return EXIT_CONFIG
        try:
            return serve(node, stop)
        finally:
            node.destroy_node()
    finally:
        rclpy.try_shutdown()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    raise SystemExit(main())
