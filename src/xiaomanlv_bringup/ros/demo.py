"""``xiaomanlv demo``: bring up the sim profile over real DDS and report what it sees.

Grows with the stack. Today the graph is the headless simulator (the /clock source, every
sensor of models/xiaomanlv/model.sdf, a crowd), the map server with the site's prior map, the
localiser (and the fusion when the profile runs it), the health monitor, the locker and its
kiosk. The demo reports the map as a late-joining planner receives it, loads a parcel, drives
the robot from the station with timed /cmd_vel commands (no planner yet), listens to every
sensor topic as a stack node would, asks the monitor for its picture through its service and
its action, delivers the parcel through the kiosk, and draws what the robot saw: a top-down PNG
with the last lidar scan, the crowd and the driven path. While it drives it prints the live
localisation error: the localiser's state and its /localization/pose (and /odometry/filtered)
against the simulator's ground truth at the same stamp, carried into the map frame by
`xiaomanlv_core.frames.world_from_map` (docs/frames.md). Only the demo reads the truth; the
stack never does.

What it prints is for people; the same facts go to ``<output>/summary.json`` for programs (the
integration test reads that): nodes, the map, sensor rates measured from header stamps (in
simulated time, so they do not depend on how busy the machine is), driven distance,
localisation (states, error against the truth), health, kiosk answers, locker events and how
the graph shut down. The file is written also when the demo fails part-way, with ``error``
saying where.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import shutil
import socket
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import yaml
from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped, Twist
from nav_msgs.msg import OccupancyGrid, Odometry
from numpy.typing import NDArray
from sensor_msgs.msg import Imu, NavSatFix, PointCloud2, Range
from std_msgs.msg import String
from visualization_msgs.msg import MarkerArray
from xiaomanlv.action import WaitForHealthy
from xiaomanlv.msg import HealthStatus, LocalizationStatus, LockerEvent
from xiaomanlv.srv import ArmStop, GetHealth, LoadParcel

from xiaomanlv_bringup.graph import NodeSpec, load_profile, node_parameters, read_executables
from xiaomanlv_bringup.ros.session import GraphSession, reserved_domain_id
from xiaomanlv_core.frames import world_from_map
from xiaomanlv_core.geometry import planar_pose, transform_points, yaw_from_quaternion, yaw_of
from xiaomanlv_core.paths import SiteMapError, executables_file, graph_file, site_map_dir
from xiaomanlv_core.robot import load_robot, model_file
from xiaomanlv_core.ros.diagnostics import level_of
from xiaomanlv_core.ros.pointcloud2 import read_points, xyz_of
from xiaomanlv_core.ros.poses import matrix_of_pose
from xiaomanlv_core.ros.qos import LATCHED_QOS, events_qos
from xiaomanlv_core.ros.time import seconds_of
from xiaomanlv_core.site import load_site
from xiaomanlv_core.stops import stops_from_dict
from xiaomanlv_core.yamlfile import read_yaml
from xiaomanlv_nav.health.monitor import Level

SENSORS = {
    "/lidar/points": PointCloud2,
    "/imu/data": Imu,
    "/wheel/odom": Odometry,
    "/gnss/fix": NavSatFix,
}
# Timed commands [(sim seconds, linear m/s, angular rad/s)]: from the station's loading pose
# (facing the station building), turn round, then drive up the walkway.
DRIVE = [(3.9, 0.0, 0.8), (1.0, 0.0, 0.0), (6.0, 1.2, 0.0), (1.5, 0.0, 0.0)]
WINDOW = 30.0  # [m] half-width of the picture around the robot
HEALTH_SETTLE = 15.0  # [s] /health/get is asked until OK for at most this long
PARCEL = {"parcel_id": "P-0001", "recipient": "alice@campus.example", "stop": "library_west"}
OPERATOR = ("demo-operator", "demo-credential")
EVENTS_QOS = events_qos(100)
SUMMARY = "summary.json"  # in the output folder, next to the picture
LOCALIZATION_STATES = ("OK", "DEGRADED", "LOST")  # xiaomanlv/LocalizationStatus.state
ESTIMATES = {"/localization/pose": PoseWithCovarianceStamped, "/odometry/filtered": Odometry}


@dataclass
class _Recorder:
    """Everything the demo hears, filled by subscription callbacks on the client's thread."""

    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    stamps: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # [s]
    last: dict[str, Any] = field(default_factory=dict)
    path: list[tuple[float, float, float, float]] = field(default_factory=list)  # x, y, z, yaw
    lock: threading.Lock = field(default_factory=threading.Lock)

    def callback(self, topic: str) -> Any:
        def on_message(msg: Any) -> None:
            with self.lock:
                self.counts[topic] += 1
                self.last[topic] = msg
                header = getattr(msg, "header", None)
                if header is not None:
                    self.stamps[topic].append(seconds_of(header.stamp))
                if isinstance(msg, PoseStamped):
                    p, q = msg.pose.position, msg.pose.orientation
                    yaw = yaw_from_quaternion(q.x, q.y, q.z, q.w)
                    self.path.append((p.x, p.y, p.z, yaw))

        return on_message

    def stamp_rate(self, topic: str) -> float:
        """[Hz] of ``topic`` in simulated time: 1 / the median interval of its header stamps
        (a message lost on the way does not lower it; 0 with fewer than two)."""
        stamps = np.asarray(self.stamps.get(topic, ()), dtype=np.float64)
        steps = np.diff(stamps)
        steps = steps[steps > 0.0]
        return 1.0 / float(np.median(steps)) if steps.size else 0.0


class _Localization:
    """The stack's estimates against the ground truth, in the map frame: each estimate is
    compared with the truth at its own stamp (the truth is published at every physics tick,
    so the nearest stamp is within a tick)."""

    def __init__(self, site: str, recorder: _Recorder) -> None:
        from xiaomanlv_sim.assets import site_file, world_file

        world = load_site(site_file(world_file(site)))
        path = site_map_dir(site) / "stops.yaml"
        loading = stops_from_dict(read_yaml(path), str(path)).loading
        self.map_from_world = np.linalg.inv(world_from_map(world.station.loading, loading.pose))
        self.station = loading.pose  # the map's loading pose: where the robot is parked
        self.recorder = recorder
        self.lock = threading.Lock()
        self.estimates: dict[str, list[tuple[float, NDArray[np.float64]]]] = defaultdict(list)
        self.states: list[tuple[float, str, str]] = []  # stamp, state, reasons

    def on_estimate(self, topic: str) -> Any:
        def callback(msg: Any) -> None:
            with self.lock:
                self.estimates[topic].append(
                    (seconds_of(msg.header.stamp), matrix_of_pose(msg.pose.pose))
                )

        return callback

    def on_status(self, msg: LocalizationStatus) -> None:
        state = LOCALIZATION_STATES[msg.state] if 0 <= msg.state < 3 else str(msg.state)
        with self.lock:
            self.states.append((seconds_of(msg.header.stamp), state, ", ".join(msg.reasons)))

    def errors(self, topic: str) -> list[tuple[float, float, float]]:
        """(stamp [s], position error [m], heading error [deg]) of each estimate on ``topic``
        with a truth within 10 ms of its stamp."""
        with self.recorder.lock:
            t = np.asarray(self.recorder.stamps.get("/sim/ground_truth/pose", ()), float)
            truth = list(self.recorder.path)
        with self.lock:
            estimates = list(self.estimates.get(topic, ()))
        out: list[tuple[float, float, float]] = []
        if not len(t) or len(t) != len(truth):
            return out
        for stamp, pose in estimates:
            i = int(np.clip(np.searchsorted(t, stamp), 0, len(t) - 1))
            j = i - 1 if i > 0 and abs(t[i - 1] - stamp) < abs(t[i] - stamp) else i
            if abs(t[j] - stamp) > 0.01:
                continue
            x, y, z, yaw = truth[j]
            true = self.map_from_world @ planar_pose(x, y, yaw)
            true[2, 3] += z
            d_yaw = yaw_of(pose[:3, :3]) - yaw_of(true[:3, :3])
            d_yaw = (d_yaw + math.pi) % (2 * math.pi) - math.pi
            error = float(np.linalg.norm(pose[:3, 3] - true[:3, 3]))
            out.append((stamp, error, abs(math.degrees(d_yaw))))
        return out

    def line(self) -> str:
        """The live line: the localiser's state and the latest errors."""
        with self.lock:
            state = self.states[-1] if self.states else None
        text = "no status yet" if state is None else state[1] + (f" ({state[2]})" * bool(state[2]))
        for topic in ESTIMATES:
            errors = self.errors(topic)
            if errors:
                _, e_m, e_deg = errors[-1]
                text += f"; {topic} off by {e_m:.3f} m, {e_deg:.2f} deg"
        return f"    localisation: {text}"

    def summary(self) -> dict[str, Any]:
        with self.lock:
            states = list(self.states)
        out: dict[str, Any] = {
            "status_messages": len(states),
            "states": {s: sum(1 for _, k, _ in states if k == s) for s in LOCALIZATION_STATES},
            "last_state": states[-1][1] if states else None,
            "last_reasons": states[-1][2] if states else None,
        }
        for topic in ESTIMATES:
            errors = self.errors(topic)
            key = topic.strip("/").replace("/", "_")
            if not errors:
                out[key] = {"compared": 0}
                continue
            e = np.array([(m, d) for _, m, d in errors])
            out[key] = {
                "compared": len(errors),
                "error_m_median": float(np.median(e[:, 0])),
                "error_m_max": float(e[:, 0].max()),
                "error_m_last": float(e[-1, 0]),
                "yaw_error_deg_median": float(np.median(e[:, 1])),
            }
        return out


def _give_initial_pose(session: GraphSession, localization: _Localization, out: TextIO) -> None:
    """As an operator does with RViz's 2D Pose Estimate: the robot stands at its station, so
    /initialpose is the map's loading pose (stops.yaml, not the simulator's truth); then wait
    until the localiser says it is initialised."""
    from xiaomanlv_core.ros.poses import pose_msg

    station = localization.station
    msg = PoseWithCovarianceStamped()
    msg.header.frame_id = "map"
    msg.pose.pose = pose_msg(planar_pose(station.x, station.y, station.yaw))
    msg.pose.covariance = [0.0] * 36
    for i, v in ((0, 0.25), (7, 0.25), (35, 0.0685)):  # RViz's defaults: 0.5 m, 15 deg
        msg.pose.covariance[i] = v
    pub = session.client.create_publisher(PoseWithCovarianceStamped, "/initialpose", 10)
    try:
        session.wait_for_subscribers("/initialpose", timeout=30.0)
        session.wait_for_match(pub)

        sent = [-math.inf]

        def initialised() -> bool:
            if time.monotonic() - sent[0] > 1.0:  # again until heard, once a second
                pub.publish(msg)
                sent[0] = time.monotonic()
            with localization.lock:
                return any(state != "LOST" for _, state, _ in localization.states[-1:])

        session.wait_until(initialised, 60.0, "the localiser initialised from /initialpose")
    finally:
        session.client.destroy_publisher(pub)
    print(
        f"  /initialpose: the station's loading pose ({station.x:.1f}, {station.y:.1f}) m in "
        f"map; localiser: {localization.line().split(': ', 1)[1]}",
        file=out,
    )


def _localization_site(nodes: list[NodeSpec]) -> str | None:
    """The localiser's site (its parameter files, else its default), None without one."""
    spec = next((n for n in nodes if n.executable == "localizer"), None)
    if spec is None:
        return None
    from xiaomanlv_nav.localization.config import LocalizerConfig

    got = node_parameters(spec).get("site")
    return str(got[0]) if got else LocalizerConfig().site


def _drive(
    session: GraphSession,
    recorder: _Recorder,
    out: TextIO,
    localization: _Localization | None = None,
) -> float:
    """Send the timed commands (durations in simulated time, read from the ground-truth pose
    stamps, so a busy machine drives the same path); returns the wall time spent [s]."""
    truth = "/sim/ground_truth/pose"

    def sim_now() -> float | None:
        with recorder.lock:
            stamps = recorder.stamps.get(truth)
            return stamps[-1] if stamps else None

    pub = session.client.create_publisher(Twist, "/cmd_vel", 10)
    start = time.monotonic()
    try:
        session.wait_until(lambda: sim_now() is not None, 15.0, f"a message on {truth}")
        session.wait_for_match(pub)
        for duration, linear, angular in DRIVE:
            cmd = Twist()
            cmd.linear.x, cmd.angular.z = linear, angular
            until = float(sim_now() or 0.0) + duration

            def step(cmd: Twist = cmd, until: float = until) -> bool:
                pub.publish(cmd)  # at the wait's polling rate, well inside cmd_timeout
                return float(sim_now() or 0.0) >= until

            session.wait_until(step, 10.0 * duration + 10.0, f"{duration:g} s of driving")
            if localization is not None:
                print(localization.line(), file=out, flush=True)
    finally:
        session.client.destroy_publisher(pub)
    return time.monotonic() - start


def _scan_in_world(
    cloud: PointCloud2, pose: tuple[float, float, float, float]
) -> NDArray[np.float64]:
    """The lidar scan's points in the world frame, from the robot's (ground-truth) pose."""
    points = xyz_of(read_points(cloud, ("x", "y", "z")))
    base_from_lidar = load_robot(model_file()).lidar.pose
    x, y, z, yaw = pose
    world_from_base = planar_pose(x, y, yaw)
    world_from_base[2, 3] = z
    return transform_points(world_from_base @ base_from_lidar, points)


def _picture(recorder: _Recorder, output: Path) -> Path | None:
    from xiaomanlv_sim.agents import AgentArrays
    from xiaomanlv_sim.assets import site_file, world_file
    from xiaomanlv_sim.render import render_top_down
    from xiaomanlv_sim.sdf import load_world

    if not recorder.path:
        return None
    world_path = world_file("university")
    world, site = load_world(world_path), load_site(site_file(world_path))
    here = recorder.path[-1]
    cloud = recorder.last.get("/lidar/points")
    points = _scan_in_world(cloud, here) if cloud is not None else None
    markers = recorder.last.get("/sim/ground_truth/agents")
    agents = None
    if markers is not None and markers.markers:
        m = markers.markers
        agents = AgentArrays(
            positions=np.array([[k.pose.position.x, k.pose.position.y] for k in m]),
            velocities=np.zeros((len(m), 2)),
            radii=np.array([k.scale.x / 2 for k in m]),
            heights=np.array([k.scale.z for k in m]),
            kinds=np.array([1 if k.ns == "cyclists" else 0 for k in m], dtype=np.int8),
            ids=np.array([k.id for k in m], dtype=np.int32),
        )
    window = (here[0] - WINDOW, here[1] - WINDOW, here[0] + WINDOW, here[1] + WINDOW)
    return render_top_down(
        world,
        site,
        agents=agents,
        trajectory=np.array([p[:2] for p in recorder.path]),
        points=points,
        resolution=0.05,
        window=window,
        path=output / "sim.png",
        title="demo: robot view",
    )


def _sensor_lines(recorder: _Recorder, ultrasonic: list[str], summary: dict[str, Any]) -> list[str]:
    """Lines for people; ``summary["sensors"]`` gets the rates from header stamps."""
    last, counts = recorder.last, recorder.counts
    lines = []
    cloud = last.get("/lidar/points")
    if cloud is not None:
        scan = read_points(cloud, ("x", "y", "z", "ring"))
        points, rings = xyz_of(scan), scan["ring"]
        nearest = float(np.min(np.linalg.norm(points, axis=1))) if len(points) else math.inf
        what = f"{len(points)} returns in {len(set(rings.tolist()))} rings, nearest {nearest:.1f} m"
    else:
        what = "no scan"
    imu, odom, fix = last.get("/imu/data"), last.get("/wheel/odom"), last.get("/gnss/fix")
    gyro = f"gyro z {imu.angular_velocity.z:+.2f} rad/s, " if imu else ""
    accel = f"accel z {imu.linear_acceleration.z:.2f} m/s^2" if imu else "no reading"
    odo = (
        f"x {odom.pose.pose.position.x:.1f} y {odom.pose.pose.position.y:.1f} m, "
        f"v {odom.twist.twist.linear.x:.2f} m/s"
        if odom
        else "no reading"
    )
    gnss = (
        f"{fix.latitude:.6f} N {fix.longitude:.6f} E, status {fix.status.status}"
        if fix
        else "no fix"
    )
    details = {"/lidar/points": what, "/imu/data": gyro + accel, "/wheel/odom": odo}
    details["/gnss/fix"] = gnss
    sensors = summary["sensors"] = {}
    for topic in [*SENSORS, *(f"/ultrasonic/{n}" for n in ultrasonic)]:
        sensors[topic] = {"rate": recorder.stamp_rate(topic), "messages": counts[topic]}
    for topic in SENSORS:
        rate = sensors[topic]["rate"]
        lines.append(f"    {topic:<16} {rate:6.1f} Hz  {details[topic]}")
    ranges = []
    for name in ultrasonic:
        msg = last.get(f"/ultrasonic/{name}")
        ranges.append(f"{name} {msg.range:.2f}" if msg else f"{name} -")
    rate = min((sensors[f"/ultrasonic/{n}"]["rate"] for n in ultrasonic), default=0.0)
    lines.append(f"    /ultrasonic/*    {rate:6.1f} Hz  each (slowest); ranges [m]:")
    lines.append("      " + ", ".join(ranges[:4]))
    lines.append("      " + ", ".join(ranges[4:]))
    return lines


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _with_locker_data(nodes: list[NodeSpec], data_dir: Path, port: int) -> list[NodeSpec]:
    """The profile's locker and kiosk on a fresh data folder and a free port (the demo must
    not touch a real locker's database), with a registered demo operator."""
    from xiaomanlv_locker.config import LockerConfig
    from xiaomanlv_locker.operators import add_operator

    overrides = {"locker": {"data_dir": str(data_dir)}, "kiosk": {"port": port}}
    add_operator(LockerConfig(data_dir=str(data_dir)), *OPERATOR)
    out = []
    for node in nodes:
        if node.name in overrides:
            path = data_dir / f"{node.name}.params.yaml"
            path.write_text(yaml.safe_dump({"/**": {"ros__parameters": overrides[node.name]}}))
            node = dataclasses.replace(node, parameters=(*node.parameters, path))
        out.append(node)
    return out


def _kiosk_code(port: int, code: str) -> dict[str, Any]:
    """POST a code to the kiosk page's endpoint, as its keypad does."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/code",
        data=json.dumps({"code": code}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10.0) as response:
            answer: dict[str, Any] = json.load(response)
    except urllib.error.HTTPError as err:  # 4xx answers carry the page's message too
        answer = json.load(err)
    return answer


def _load(
    session: GraphSession, data_dir: Path, out: TextIO, summary: dict[str, Any]
) -> tuple[int, str]:
    """Load the demo parcel at the station; returns (compartment, the recipient's code)."""
    request = LoadParcel.Request(size="small", operator_id=OPERATOR[0])
    request.operator_credential = OPERATOR[1]
    for key, value in PARCEL.items():
        setattr(request, key, value)
    # the locker first needs odometry saying "parked" and the site's stops from the map server
    deadline = time.monotonic() + 20.0
    got = session.call(LoadParcel, "/locker/load_parcel", request, timeout=15.0)
    waiting = ("moving", "not known yet")
    while (
        not got.success and any(w in got.message for w in waiting) and time.monotonic() < deadline
    ):
        time.sleep(0.5)
        got = session.call(LoadParcel, "/locker/load_parcel", request, timeout=15.0)
    if not got.success:
        raise RuntimeError(f"load_parcel failed: {got.message}")
    note = json.loads((data_dir / "notifications.jsonl").read_text().splitlines()[-1])
    summary["locker"] = {"parcel": PARCEL["parcel_id"], "compartment": int(got.compartment)}
    print(
        f"  locker: loaded {PARCEL['parcel_id']} for {PARCEL['stop']} into compartment "
        f"{got.compartment}; the recipient's notification carries the code",
        file=out,
    )
    return int(got.compartment), str(note["code"])


def _deliver(
    session: GraphSession,
    port: int,
    code: str,
    events: list[Any],
    out: TextIO,
    summary: dict[str, Any],
) -> bool:
    """Arm the stop, type a wrong then the right code on the kiosk; True once delivered."""
    armed = session.call(
        ArmStop, "/locker/arm_stop", ArmStop.Request(stop=PARCEL["stop"], arm=True)
    )
    print(
        f"  locker: stop {PARCEL['stop']} armed (a stand-in at the station, before the "
        "localiser has a pose; the mission will arm it parked there): "
        f"{armed.message or 'ok'}, compartments {list(armed.compartments)}",
        file=out,
    )
    summary["locker"]["armed"] = {"success": armed.success, "message": armed.message}
    wrong = str((int(code) + 1) % 10 ** len(code)).zfill(len(code))
    kiosk = summary["kiosk"] = {"wrong_code": _kiosk_code(port, wrong)}
    print(f"  kiosk, wrong code: {kiosk['wrong_code']['message']}", file=out)
    kiosk["right_code"] = _kiosk_code(port, code)
    print(f"  kiosk, right code: {kiosk['right_code']['message']}", file=out)
    with contextlib.suppress(TimeoutError):  # reported below as not delivered
        session.wait_until(
            lambda: any(e.kind == "delivered" for e in list(events)), 15.0, "delivered event"
        )
    kinds = [e.kind for e in list(events)]
    summary["locker"]["events"] = kinds
    print(f"  locker events: {', '.join(kinds)}", file=out)
    return "delivered" in kinds


LATCHED = LATCHED_QOS
#: [s] for a latched map topic to reach a late joiner: the cloud is ~30 MB (1.9 M points), sent
#: again in DDS fragments to each new subscriber; with the whole graph busy on two loaded cores
#: (the localiser reading its tiles, the fusion at IMU rate) a CI run saw it take over 30 s.
MAP_WAIT = 120.0


def _map_lines(session: GraphSession, summary: dict[str, Any]) -> list[str]:
    """What map_server serves, as a late-joining planner receives it (latched topics)."""
    grid = session.wait_for_message(OccupancyGrid, "/map", timeout=MAP_WAIT, qos=LATCHED)
    cloud = session.wait_for_message(PointCloud2, "/map/cloud", timeout=MAP_WAIT, qos=LATCHED)
    routes = json.loads(
        session.wait_for_message(String, "/map/route_graph", timeout=MAP_WAIT, qos=LATCHED).data
    )
    stops = json.loads(
        session.wait_for_message(String, "/map/stops", timeout=MAP_WAIT, qos=LATCHED).data
    )
    kinds = [f["geometry"]["type"] for f in routes["features"]]
    info = grid.info
    summary["map"] = {
        "grid": {"width": info.width, "height": info.height, "resolution": info.resolution},
        "cloud_points": cloud.width * cloud.height,
        "route_nodes": kinds.count("Point"),
        "route_edges": kinds.count("MultiLineString"),
        "stops": len(stops["stops"]),
    }
    return [
        f"  prior map (map_server, latched): grid {info.width} x {info.height} cells at "
        f"{info.resolution:g} m, cloud {cloud.width * cloud.height} points, route graph "
        f"{kinds.count('Point')} nodes / {kinds.count('MultiLineString')} one-way edges, "
        f"{len(stops['stops'])} stops"
    ]


@contextlib.contextmanager
def _summary_file(path: Path) -> Iterator[dict[str, Any]]:
    """A summary the block fills; written to ``path`` as JSON on the way out, also on failure
    (then with ``error`` naming the exception)."""
    summary: dict[str, Any] = {}
    try:
        yield summary
    except BaseException as err:
        summary["error"] = f"{type(err).__name__}: {err}"
        raise
    finally:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")


def run_demo(
    profile_name: str = "sim", out: TextIO | None = None, output: Path = Path("build/demo")
) -> int:
    with _summary_file(output / SUMMARY) as summary:
        return _run(profile_name, out or sys.stdout, output, summary)


def _run(profile_name: str, out: TextIO, output: Path, summary: dict[str, Any]) -> int:
    started = time.monotonic()
    profile = load_profile(
        graph_file(), profile_name, executables=read_executables(executables_file())
    )
    summary["profile"] = profile.name
    ultrasonic = [s.name.removeprefix("ultrasonic_") for s in load_robot(model_file()).ultrasonic]
    topics = {**SENSORS, **{f"/ultrasonic/{n}": Range for n in ultrasonic}}
    topics["/sim/ground_truth/pose"] = PoseStamped
    topics["/sim/ground_truth/agents"] = MarkerArray
    logs = io.StringIO()
    recorder = _Recorder()
    picture = None
    delivered = None
    events: list[Any] = []
    print(f"xiaomanlv demo: profile '{profile.name}' - {profile.description}", file=out)
    data = Path(tempfile.mkdtemp(prefix="xiaomanlv-demo-locker-"))
    port = _free_port()
    nodes = _with_locker_data(list(profile.nodes), data, port)
    with_locker = any(n.name == "locker" for n in nodes) and any(n.name == "kiosk" for n in nodes)
    with reserved_domain_id() as domain, GraphSession(nodes, domain, output=logs) as s:
        summary["domain_id"] = domain
        summary["nodes"] = list(s.supervisor.pids())
        print(f"  ROS_DOMAIN_ID {domain}, nodes: {', '.join(s.supervisor.pids())}", file=out)
        s.wait_for_topics(["/clock", "/health/status", *topics], timeout=60.0)
        if any(n.name == "map_server" for n in nodes):
            print("\n".join(_map_lines(s, summary)), file=out)
        for topic, cls in topics.items():
            s.client.create_subscription(cls, topic, recorder.callback(topic), 10)
        localization = None
        site = _localization_site(nodes)
        if site is not None:
            try:
                localization = _Localization(site, recorder)
            except (SiteMapError, OSError, ValueError) as err:
                print(f"  localisation error not measured: {err}", file=out)
        if localization is not None:
            for topic, cls in ESTIMATES.items():
                s.client.create_subscription(cls, topic, localization.on_estimate(topic), 50)
            s.client.create_subscription(
                LocalizationStatus, "/localization/status", localization.on_status, 10
            )
        if with_locker:
            s.client.create_subscription(LockerEvent, "/locker/events", events.append, EVENTS_QOS)
            s.wait_for_topics(["/locker/events"], timeout=30.0)
            _, code = _load(s, data, out, summary)
            # never drive off with a door open
            s.wait_until(lambda: "locked" in [e.kind for e in events], 15.0, "locked event")
            # The delivery is a stand-in for the mission's (no planner yet), run here at the
            # station before the localiser has a pose: with one, the locker arms a stop only
            # within its stop_radius, and the demo's short drive reaches none.
            delivered = _deliver(s, port, code, events, out, summary)
            summary["locker"]["delivered"] = delivered
        if localization is not None:
            _give_initial_pose(s, localization, out)
        print(f"  driving from the station for {sum(d for d, *_ in DRIVE):.0f} s ...", file=out)
        seconds = _drive(s, recorder, out, localization)
        if localization is not None:
            summary["localization"] = localization.summary()
        with recorder.lock:
            lines = _sensor_lines(recorder, ultrasonic, summary)
            path = list(recorder.path)
        print(
            f"  sensors, as a stack node hears them over DDS for {seconds:.1f} s "
            "(rates from header stamps, in simulated time):",
            file=out,
        )
        print("\n".join(lines), file=out)
        summary["driven"] = {"seconds": seconds, "distance": 0.0, "to": None}
        if len(path) > 1:
            xy = np.array([p[:2] for p in path])
            driven = float(np.sum(np.linalg.norm(np.diff(xy, axis=0), axis=1)))
            summary["driven"].update(distance=driven, to=[float(xy[-1, 0]), float(xy[-1, 1])])
            print(
                f"  ground truth: drove {driven:.1f} m to ({xy[-1, 0]:.1f}, {xy[-1, 1]:.1f})",
                file=out,
            )
        # Ask until OK (HEALTH_SETTLE at most): on two loaded cores a node's callbacks can lag
        # behind its inputs for a moment (the ekf coasting on an IMU message it has not been
        # handed yet); the last answer and how many asks it took are reported.
        asks, settle_until = 0, time.monotonic() + HEALTH_SETTLE
        while True:
            got = s.call(
                GetHealth, "/health/get", GetHealth.Request(), timeout=20.0, resend_every=2.0
            )
            asks += 1
            ok = Level(level_of(got.status.level)) == Level.OK
            if ok or time.monotonic() >= settle_until:
                break
            time.sleep(1.0)
        health = summary["health"] = {
            "asks": asks,
            "get": Level(level_of(got.status.level)).name,
            "topics": {
                t.topic: {
                    "level": Level(level_of(t.level)).name,
                    "rate": t.rate,
                    "min_rate": t.min_rate,
                    "message": t.message,
                }
                for t in got.status.topics
            },
            "components": {
                c.name: {"level": Level(level_of(c.level)).name, "message": c.message}
                for c in got.status.components
            },
        }
        print(f"  health monitor (/health/get): {health['get']} (asked {asks}x)", file=out)
        for topic in got.status.topics:
            print(
                f"    {topic.topic:<16} {Level(level_of(topic.level)).name:<5} "
                f"{topic.rate:5.1f} Hz (min {topic.min_rate:g})  {topic.message}",
                file=out,
            )
        result, feedback, _ = s.send_goal(
            WaitForHealthy, "/health/wait_until_healthy", WaitForHealthy.Goal(timeout=5.0), 60.0
        )
        health["wait_until_healthy"] = {"healthy": result.healthy, "feedback": len(feedback)}
        print(
            f"  wait_until_healthy: healthy={result.healthy} after {len(feedback)} feedback "
            "message(s)",
            file=out,
        )
        # A new subscription: on two starved cores its discovery alone can take seconds.
        status = s.wait_for_message(HealthStatus, "/health/status", timeout=30.0)
        health["status"] = Level(level_of(status.level)).name
        print(f"  /health/status: {health['status']}", file=out)
        with recorder.lock:
            picture = _picture(recorder, output)
        summary["picture"] = None if picture is None else str(picture)
        if picture is not None:
            print(f"  picture: {picture} ({2 * WINDOW:.0f} m around the robot: lidar returns, "
                  "crowd, driven path)", file=out)  # fmt: skip
    shutil.rmtree(data, ignore_errors=True)
    exit_codes = s.supervisor.exit_codes()
    unclean = {n: c for n, c in exit_codes.items() if any(c)}
    failure = s.supervisor.failure or (f"non-zero exit codes {unclean}" if unclean else None)
    if delivered is False:
        failure = failure or "the demo parcel was not delivered"
    summary["shutdown"] = {"clean": failure is None, "failure": failure, "exit_codes": exit_codes}
    print(f"  shutdown: {failure or 'clean, every node exited 0 on SIGINT'}", file=out)
    if failure:
        print("  node output:\n" + logs.getvalue(), file=out)
    summary["seconds"] = time.monotonic() - started
    print(f"demo finished in {summary['seconds']:.1f} s", file=out)
    return 1 if failure else 0
