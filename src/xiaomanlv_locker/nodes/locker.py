"""locker: the 50-compartment parcel locker as a ROS node (thin adapter over the core).

Serves /locker/load_parcel (LoadParcel), /locker/submit_code (SubmitCode),
/locker/operator_open (OperatorOpen), /locker/arm_stop (ArmStop); publishes
/locker/compartment_NN/status (CompartmentStatus, on change and at ``status_rate``),
/locker/events (LockerEvent, reliable + transient local: late joiners get the recent history)
and /diagnostics; subscribes to /wheel/odom (moving or stale = no door opens; with more than
one publisher every fresh sample counts), /imu/data (rotation while odometry stands still = not
parked), /localization/pose (arming needs a fresh pose near the stop) and the map server's
latched /map/stops (the site's stops; not subscribed when ``site_stops`` gives them). With the
``sim`` driver it also takes people's actions on /locker/sim/command (std_msgs/String, JSON:
``{"action": "take"|"place"|"close"|"open"|"fault", "compartment": N, ...}``).
Core: :class:`xiaomanlv_locker.locker.Locker`. Timers run on the steady clock: the locker's
safety must not stall with simulated time.

Total: every callback checks what it converts (:mod:`xiaomanlv_locker.fields`) and counts a bad
input per kind in the core's ``rejected`` (reported in /diagnostics as ``rejected_<kind>`` and
in sum as ``malformed_messages``); :func:`xiaomanlv_core.ros.guard.guard_node` wraps every
callback of both nodes as a safety net, so an unforeseen exception is logged and counted
(``callback_errors``), never fatal.

Threads: /locker/submit_code is served by a second node in this process, ``<name>_codes``
(no parameters; it ignores the command line's remappings, so ``__node:=`` renames only the
main node), spun by its own single-threaded executor on its own thread. A code is then served
while the main thread runs a tick; the core's fair lock keeps the two out of each other's
state-machine steps (a code waits for one compartment's step, not a whole tick). rclpy of
Jazzy cannot give one node's callback group to another executor, and a multi-threaded
executor adds a hop (its dispatcher wakes, then a worker): measured over DDS it doubled the
median. Python hands the GIL between busy threads every 5 ms by default; the node asks for
1 ms, so a code does not wait 5 ms behind a status publish. Once built, the node freezes the
garbage collector's view of everything alive (``gc.freeze``): a full collection, which stops
every thread, scanned those ~38,000 objects in 10-35 ms here; now only what was made since.
"""

from __future__ import annotations

import gc
import math
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSPresetProfiles
from sensor_msgs.msg import Imu
from std_msgs.msg import String
from xiaomanlv.msg import CompartmentStatus, LockerEvent
from xiaomanlv.srv import ArmStop, LoadParcel, OperatorOpen, SubmitCode

from xiaomanlv_core.config import ConfigError
from xiaomanlv_core.fields import FormatError
from xiaomanlv_core.ros.diagnostics import diagnostic_array, key_values
from xiaomanlv_core.ros.entry import run_node
from xiaomanlv_core.ros.guard import guard_node
from xiaomanlv_core.ros.params import declare_config
from xiaomanlv_core.ros.qos import LATCHED_QOS, events_qos
from xiaomanlv_core.stops import stops_from_json
from xiaomanlv_locker.codes import SecretFileError
from xiaomanlv_locker.config import FAULT_KINDS, LockerConfig
from xiaomanlv_locker.fields import (
    FieldError,
    check_text,
    finite_in,
    int_in,
    json_object,
    text_problem,
)
from xiaomanlv_locker.hardware import SimDriver
from xiaomanlv_locker.locker import CompartmentView, Locker
from xiaomanlv_locker.ros.conversions import (
    event_to_msg,
    locker_diagnostics,
    status_to_msg,
    wall_to_time,
)
from xiaomanlv_locker.store import StoreError

EVENT_HISTORY = 200  # events a late subscriber receives
GIL_SWITCH_INTERVAL = 0.001  # [s] sys.setswitchinterval while the node spins (Python: 0.005)
CODES_POLL = 0.1  # [s] how often the codes thread checks its stop flag (work wakes it at once)
SIM_ACTIONS = ("take", "place", "close", "open", "fault")
SIM_KEYS = ("action", "compartment", "tag", "kind", "duration")
MAX_FAULT_DURATION = 86400.0  # [s] of an injected sim fault
MAX_STOPS_JSON = 1 << 20  # [characters] of /map/stops
MAP_FRAME = "map"


class LockerNode(Node):
    def __init__(self) -> None:
        super().__init__("locker")
        self.config = declare_config(self, LockerConfig)
        try:
            self.locker = Locker.open(self.config)
        except (SecretFileError, StoreError) as err:
            raise ConfigError(str(err)) from None
        self.internal_errors = 0  # exceptions a service handler caught (see _failed)
        for line in self.locker.store.tightened:
            self.get_logger().warn(f"database file was readable by others: {line}")
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._published: dict[int, CompartmentView] = {}
        self._publishing = threading.Lock()  # events go out in order, from either thread
        self._name = self.get_fully_qualified_name().lstrip("/")
        count = len(self.locker.sizes)
        self.status_pubs = {
            n: self.create_publisher(
                CompartmentStatus, f"/locker/compartment_{n:02d}/status", LATCHED_QOS
            )
            for n in range(1, count + 1)
        }
        self.event_pub = self.create_publisher(
            LockerEvent, "/locker/events", events_qos(EVENT_HISTORY)
        )
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_service(LoadParcel, "/locker/load_parcel", self._on_load)
        self.codes = Node(
            f"{self.get_name()}_codes",
            namespace=self.get_namespace(),
            use_global_arguments=False,
            start_parameter_services=False,
        )
        self.codes.create_service(SubmitCode, "/locker/submit_code", self._on_submit)
        self.create_service(OperatorOpen, "/locker/operator_open", self._on_operator_open)
        self.create_service(ArmStop, "/locker/arm_stop", self._on_arm)
        sensor_qos = QoSPresetProfiles.SENSOR_DATA.value
        self.create_subscription(Odometry, "/wheel/odom", self._on_odom, sensor_qos)
        self.create_subscription(Imu, "/imu/data", self._on_imu, sensor_qos)
        self.create_subscription(
            PoseWithCovarianceStamped, "/localization/pose", self._on_pose, sensor_qos
        )
        if self.locker.stops() is None:
            self.create_subscription(String, "/map/stops", self._on_stops, LATCHED_QOS)
        if isinstance(self.locker.driver, SimDriver):
            self.create_subscription(String, "/locker/sim/command", self._on_sim_command, 50)
        self.create_timer(1.0 / self.config.tick_rate, self._on_tick, clock=self._steady)
        self.create_timer(1.0 / self.config.status_rate, self._on_status, clock=self._steady)
        self.guard = guard_node(self)  # the safety net under the checks of every callback
        guard_node(self.codes, self.guard)
        history = self.locker.store.events_since(0)[-EVENT_HISTORY:]
        self.locker.drain_events()
        for event in history:
            self.event_pub.publish(event_to_msg(event))
        self._flush(force=True)
        stops = self.locker.stops()
        self.get_logger().info(
            f"{count} compartments, db {self.config.path('db')}, driver {self.config.driver}, "
            f"brute-force bound {self.config.bruteforce_probability():.1e}, stops "
            + ("from /map/stops" if stops is None else f"from site_stops ({len(stops)})")
        )

    # -- publishing
    def _flush(self, force: bool = False) -> None:
        """Publish new audit events, and the status of every compartment that changed."""
        with self._publishing:
            for event in self.locker.drain_events():
                self.event_pub.publish(event_to_msg(event))
            stamp = self.get_clock().now().to_msg()
            for view in self.locker.statuses():
                if force or self._published.get(view.number) != view:
                    self._published[view.number] = view
                    self.status_pubs[view.number].publish(status_to_msg(view, stamp))

    def _on_tick(self) -> None:
        self.locker.set_odom_sources(self.count_publishers("/wheel/odom"))
        try:
            self.locker.tick()
        except Exception as err:  # a driver or disk error must not kill the locker
            self.get_logger().error(f"tick failed: {err}", throttle_duration_sec=5.0)
        if self.locker.changed():
            self._flush()

    def _on_status(self) -> None:
        self._flush(force=True)
        stamp = self.get_clock().now().to_msg()
        stops = self.locker.stops()
        status = locker_diagnostics(
            f"{self._name}: summary",
            self.locker.counts(),
            self.locker.armed_stop(),
            self.locker.is_moving(),
            self.locker.malformed,
            rejections=self.locker.rejections(),
            internal_errors=self.internal_errors + self.guard.count,
            stops=None if stops is None else len(stops),
            motion=self.locker.motion_problem(),
        )
        status.values += key_values(self.guard.diagnostics_values())
        self.diag_pub.publish(diagnostic_array([status], stamp))

    # -- inputs
    def _rejected(self, kind: str, topic: str, why: str) -> None:
        self.locker.reject(kind)
        self.get_logger().warn(f"ignored a message on {topic}: {why}", throttle_duration_sec=5.0)

    def _on_odom(self, msg: Odometry) -> None:
        v = msg.twist.twist.linear
        if not (math.isfinite(v.x) and math.isfinite(v.y)):
            self._rejected("odom", "/wheel/odom", "a non-finite twist")
            return
        if not self.locker.observe_odom(math.hypot(v.x, v.y), msg.twist.twist.angular.z):
            self.get_logger().warn(
                "ignored /wheel/odom with a non-finite twist", throttle_duration_sec=5.0
            )

    def _on_imu(self, msg: Imu) -> None:
        if not self.locker.observe_imu(msg.angular_velocity.z):
            self.get_logger().warn(
                "ignored /imu/data with a non-finite yaw rate", throttle_duration_sec=5.0
            )

    def _on_pose(self, msg: PoseWithCovarianceStamped) -> None:
        if msg.header.frame_id != MAP_FRAME:
            self._rejected(
                "pose",
                "/localization/pose",
                f"header.frame_id = {msg.header.frame_id[:64]!r}, expected {MAP_FRAME!r}",
            )
            return
        p = msg.pose.pose.position
        if not self.locker.observe_pose(p.x, p.y):
            self.get_logger().warn(
                "ignored /localization/pose with a non-finite position", throttle_duration_sec=5.0
            )

    def _on_stops(self, msg: String) -> None:
        try:
            if len(msg.data) > MAX_STOPS_JSON:
                raise FieldError(f"{len(msg.data)} characters, at most {MAX_STOPS_JSON}")
            json_object(msg.data, "/map/stops", max_chars=MAX_STOPS_JSON, max_depth=4)
            site = stops_from_json(msg.data, "/map/stops")
        except (FieldError, FormatError) as err:
            self._rejected("map_stops", "/map/stops", f"{err} (the stops known stay as they are)")
            return
        stops: dict[str, tuple[float, float]] = {}
        unreachable: dict[str, str] = {}
        for stop in site.stops:
            bad = text_problem("stop", stop.name)
            if bad:  # a name no request could carry: dropped, the others stay usable
                self._rejected("map_stops", "/map/stops", f"a stop dropped: {bad}")
                continue
            stops[stop.name] = (stop.x, stop.y)
            if stop.unreachable:
                unreachable[stop.name] = stop.unreachable
        self.locker.set_stops(stops, unreachable)
        marked = f", {len(unreachable)} marked unreachable by the map" if unreachable else ""
        self.get_logger().info(f"{len(stops)} stops of the site from /map/stops{marked}")

    def _on_sim_command(self, msg: String) -> None:
        driver = self.locker.driver
        assert isinstance(driver, SimDriver)
        try:
            act = self._sim_action(driver, msg.data)
            with self.locker.lock:  # the submit thread drives the same doors
                act()
        except (FieldError, ValueError, ConfigError) as err:
            self._rejected("sim_command", "/locker/sim/command", str(err))
            return
        self._on_tick()

    def _sim_action(self, driver: SimDriver, data: str) -> Callable[[], object]:
        """The driver call a /locker/sim/command asks for, every field checked.

        Raises:
            FieldError: naming the bad field (JSON, action, compartment, tag, kind, duration).
        """
        command = json_object(data, "/locker/sim/command")
        unknown = sorted(set(command) - set(SIM_KEYS))
        if unknown:
            raise FieldError(f"unknown field(s) {unknown[:5]} (known: {', '.join(SIM_KEYS)})")
        action = command.get("action")
        if not isinstance(action, str) or action not in SIM_ACTIONS:
            raise FieldError(f"field 'action' = {action!r} must be one of {', '.join(SIM_ACTIONS)}")
        number = int_in("compartment", command.get("compartment"), 1, len(self.locker.sizes))
        if action == "take":
            return lambda: driver.take_parcel(number)
        if action == "place":
            tag = check_text("tag", command.get("tag", f"sim-{number}"))
            return lambda: driver.place_parcel(number, tag)
        if action == "close":
            return lambda: driver.close_door(number)
        if action == "open":
            return lambda: driver.open_door(number)
        kind = command.get("kind")
        if not isinstance(kind, str) or kind not in FAULT_KINDS:
            raise FieldError(f"field 'kind' = {kind!r} must be one of {', '.join(FAULT_KINDS)}")
        raw = command.get("duration")
        duration = None if raw is None else finite_in("duration", raw, 0.0, MAX_FAULT_DURATION)
        return lambda: driver.inject(kind, number, duration)

    # -- services (the core validates fields and counts malformed requests)
    def _on_load(self, request: Any, response: Any) -> Any:
        try:
            result = self.locker.load_parcel(
                request.parcel_id,
                request.recipient,
                request.stop,
                request.size,
                request.operator_id,
                request.operator_credential,
            )
        except Exception as err:
            return self._failed(response, "load_parcel", err)
        response.success, response.message = result.success, result.message
        response.compartment = result.compartment
        response.expires = wall_to_time(result.expires)
        self._flush()
        return response

    def _on_submit(self, request: Any, response: Any) -> Any:
        try:
            result = self.locker.submit_code(request.kiosk_id, request.code)
        except Exception as err:
            return self._failed(response, "submit_code", err)
        response.success, response.message = result.success, result.message
        response.compartment = result.compartment
        response.retry_after = float(result.retry_after)
        self._flush()
        return response

    def _on_operator_open(self, request: Any, response: Any) -> Any:
        try:
            result = self.locker.operator_open(
                int(request.compartment),
                request.operator_id,
                request.operator_credential,
                request.reason,
            )
        except Exception as err:
            return self._failed(response, "operator_open", err)
        response.success, response.message = result.success, result.message
        self._flush()
        return response

    def _on_arm(self, request: Any, response: Any) -> Any:
        try:
            result = self.locker.arm_stop(request.stop, bool(request.arm))
        except Exception as err:
            return self._failed(response, "arm_stop", err)
        response.success, response.message = result.success, result.message
        response.compartments = list(result.compartments)
        self._flush()
        return response

    def _failed(self, response: Any, what: str, err: Exception) -> Any:
        self.internal_errors += 1
        self.get_logger().error(f"{what} failed: {err}", throttle_duration_sec=5.0)
        response.success = False
        response.message = f"internal error in {what}; see the locker log"
        return response

    def destroy_node(self) -> None:
        self.codes.destroy_node()
        self.locker.close()
        super().destroy_node()


def _serve(
    executor: SingleThreadedExecutor, stop: threading.Event, failed: list[BaseException]
) -> None:
    """Spin the codes node's executor until ``stop``; an error outside a shutdown stops the
    whole node."""
    try:
        while not stop.is_set():
            executor.spin_once(timeout_sec=CODES_POLL)
    except ExternalShutdownException:
        pass
    except BaseException as err:
        failed.append(err)
        rclpy.try_shutdown()


def _spin_with_codes_thread(node: LockerNode) -> None:
    """Spin the locker on this thread and its codes-only node on a thread of its own.

    At the end the codes thread is stopped and joined *before* its executor is shut down and
    the nodes destroyed: shutting an executor down while another thread waits in it raced
    rclpy's teardown (a SIGSEGV at SIGINT, once in five integration runs).
    """
    codes = SingleThreadedExecutor()
    codes.add_node(node.codes)
    stop = threading.Event()
    failed: list[BaseException] = []
    thread = threading.Thread(target=_serve, args=(codes, stop, failed), name="codes", daemon=True)
    try:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        gc.freeze()  # start-up objects live for good: no full collection rescans them
        thread.start()
        rclpy.spin(node, SingleThreadedExecutor())
    finally:
        stop.set()
        thread.join(timeout=5.0)
        if not thread.is_alive():
            codes.shutdown()
    if failed:
        raise failed[0]


def main(args: Sequence[str] | None = None) -> int:
    return run_node(LockerNode, args, spin=_spin_with_codes_thread)


if __name__ == "__main__":
    raise SystemExit(main())
