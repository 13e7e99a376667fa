"""kiosk: the locker's touchscreen web app and its ROS client, in one process.

Serves the Flask app of :mod:`xiaomanlv_locker.kiosk.app` with Werkzeug's threaded server on
``host:port`` (default 127.0.0.1:8080) while an executor thread spins the node, whose
:class:`~xiaomanlv_locker.kiosk.ros.client.RosLockerClient` calls /locker/submit_code and
/locker/load_parcel and listens to /locker/compartment_NN/status. Publishes its state on
/diagnostics every ``diagnostics_period``: ERROR while the locker's services are missing or
the last call went unanswered, with counts of codes, lockouts, loads, refused input and
unusable statuses.

SIGINT or SIGTERM stops the web server, then the executor, then rclpy (the ros2/examples
entry pattern, with rclpy's signal handlers off so that one handler stops both loops).
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from werkzeug.serving import BaseWSGIServer, make_server

from xiaomanlv_locker.kiosk.app import create_app, stats_of
from xiaomanlv_locker.kiosk.config import KioskConfig
from xiaomanlv_locker.kiosk.ros.client import RosLockerClient
from xiaomanlv_nav.config import ConfigError
from xiaomanlv_nav.ros.entry import EXIT_CONFIG
from xiaomanlv_nav.ros.params import declare_config, watch_config

EXIT_SERVE = 1  # the web server could not bind its address
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
            **stats_of(self.app).snapshot(),
        }
        return DiagnosticStatus(
            level=level,
            name=f"{self._prefix}: locker link",
            message=message,
            hardware_id=self.config.kiosk_id,
            values=[KeyValue(key=k, value=str(v)) for k, v in values.items()],
        )

    def _publish_diagnostics(self) -> None:
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [self.diagnostics()]
        self.diag_pub.publish(array)

    def _reconfigure(self, config: KioskConfig) -> None:
        fixed = [
            name
            for name in ("host", "port", "kiosk_id", "code_length", "diagnostics_period")
            if getattr(config, name) != getattr(self.config, name)
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
    try:
        server: BaseWSGIServer = make_server(
            node.config.host, node.config.port, node.app, threaded=True
        )
    except (OSError, SystemExit) as err:  # Werkzeug exits(1) itself when the port is taken
        print(
            f"[FATAL] cannot serve the kiosk on {node.config.host}:{node.config.port} "
            f"(parameters 'host', 'port'): "
            f"{'address in use' if isinstance(err, SystemExit) else err}",
            file=sys.stderr,
            flush=True,
        )
        return EXIT_SERVE
    executor = SingleThreadedExecutor()
    executor.add_node(node)

    def spin() -> None:
        try:
            executor.spin()
        except ExternalShutdownException:
            pass
        finally:
            stop.set()

    def web() -> None:
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            stop.set()

    threads = [
        threading.Thread(target=spin, name="kiosk-ros", daemon=True),
        threading.Thread(target=web, name="kiosk-web", daemon=True),
    ]
    for thread in threads:
        thread.start()
    log.info("kiosk %s serving %s", node.config.kiosk_id, node.url)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
        executor.shutdown(timeout_sec=2.0)
        for thread in threads:
            thread.join(timeout=3.0)
    log.info("kiosk stopped")
    return 0


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
