"""Record a mapping drive in the simulator: an operator stand-in drives the site's mapping route
and the raw sensor topics go to a rosbag2 (MCAP) bag, as the ``map_recorder`` node records a
real drive on the robot.

The simulator runs in lockstep (no DDS) with the ultrasonic rangers off (the map builder does
not use them), with ``pedestrians`` and ``cyclists`` about the site if asked (the simulator's
social-force crowd on the site's walkways). :class:`xiaomanlv_sim.operator.RouteDriver` (pure
pursuit) commands the robot at 20 Hz from its true pose, as a person who sees the robot would,
and like that person the operator yields to people (`yield_to_people`): it slows for anyone in
the robot's path ahead and stops short of them, waits until they have stepped aside, and drives
on. Waiting for people is not being blocked: the drive gives up after ``BLOCKED_AFTER`` seconds
without moving only while nobody holds it up, and after ``HELD_AFTER`` seconds when people do.
Every reading goes through the sim node's own conversions (`xiaomanlv_sim.ros.conversions`) and
``rclpy.serialization.serialize_message``, so the bag holds exactly what the node publishes:
/lidar/points, /imu/data, /wheel/odom, /gnss/fix, /gnss/vel and /sim/ground_truth/pose
(PoseStamped in ``world`` at 50 Hz, for evaluation only). Log times are the readings'
sim-time stamps.

The bag is written into a hidden temporary directory next to ``out`` and renamed to ``out``
only when the drive is complete, so ``out`` is either a whole recording or absent.

Run it: ``python -m xiaomanlv_bringup.ros.mapping_drive university -o /tmp/bags/university``.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from rclpy.serialization import serialize_message
from tqdm import tqdm

from xiaomanlv_core.ros.time import nanoseconds_of
from xiaomanlv_mapping.bag import (
    EXPECTED_TYPES,
    SITE_FILE_KEY,
    SITE_KEY,
    WORLD_KEY,
    BagWriter,
    DriveTopics,
)
from xiaomanlv_mapping.model import MappingError
from xiaomanlv_sim.operator import RouteDriver
from xiaomanlv_sim.ros.conversions import (
    gnss_to_msg,
    gnss_velocity_to_msg,
    imu_to_msg,
    lidar_to_msg,
    odom_to_msg,
    truth_pose_to_msg,
)
from xiaomanlv_sim.sensors.gnss import GnssReading
from xiaomanlv_sim.sensors.imu import ImuReading
from xiaomanlv_sim.sensors.lidar import LidarScan
from xiaomanlv_sim.sensors.odometry import OdomReading
from xiaomanlv_sim.simulator import Simulator, SimulatorConfig

log = logging.getLogger(__name__)

# The drive's topics and types: the ones open_drive reads (one declaration, in bag.py).
_TOPICS = DriveTopics()
LIDAR, IMU, ODOM, GNSS, TRUTH = (
    _TOPICS.lidar,
    _TOPICS.imu,
    _TOPICS.odometry,
    _TOPICS.gnss,
    _TOPICS.truth,
)
TYPES = {getattr(_TOPICS, role): msgtype for role, msgtype in EXPECTED_TYPES.items()}
# The receiver's velocity, recorded as the robot's map_recorder does (an optional topic there).
GNSS_VEL, GNSS_VEL_TYPE = "/gnss/vel", "geometry_msgs/msg/TwistWithCovarianceStamped"
COMMAND_RATE = 20.0  # [Hz] operator commands
TRUTH_RATE = 50.0  # [Hz] ground-truth poses
BLOCKED_AFTER = 10.0  # [s] sim time without moving BLOCKED_DISTANCE before giving up
BLOCKED_DISTANCE = 0.5  # [m]
HELD_AFTER = 120.0  # [s] sim time held up by people without moving before giving up
# Yielding to people (`yield_to_people`), in the robot frame (x forward, y left):
YIELD_LOOKAHEAD = 8.0  # [m] people farther ahead of the front bumper are not considered
YIELD_SIDE_MARGIN = 0.3  # [m] beside the body (each side) a person must keep to be passed
YIELD_STOP_GAP = 0.8  # [m] the robot stops this far from a person ahead
YIELD_DECEL = 0.8  # [m/s^2] the gentle braking the speed cap assumes
STOP_SPEED = 0.02  # [m/s] the drive ends once the robot is this slow after the route's end
STOP_WAIT = 5.0  # [s] at most this long after the route's end

ProgressCallback = Callable[[float, float], None]  # (metres along the route, route length)


@dataclass(frozen=True)
class RecordSummary:
    path: Path  # the bag directory
    duration: float  # [s] sim time driven
    distance: float  # [m] driven (true path length)
    route_length: float  # [m] of route the drive covered (all of it, or ``length``)
    messages: dict[str, int]  # messages per topic
    size: int  # [bytes] of the bag directory
    wall_time: float  # [s]
    held: float = 0.0  # [s] sim time the operator slowed or stopped for people
    collisions: int = 0  # people the robot touched (the simulator's collision events)


def yield_to_people(
    command: tuple[float, float],
    pose: tuple[float, float, float],
    people: NDArray[np.float64],
    radii: NDArray[np.float64],
    *,
    front: float,
    half_width: float,
) -> tuple[tuple[float, float], bool]:
    """The operator's command capped so the robot stops short of people in its path.

    A person is in the path when their disc reaches into the corridor ahead of the body
    (``half_width`` plus `YIELD_SIDE_MARGIN` each side, up to `YIELD_LOOKAHEAD` beyond the front
    bumper). The forward speed is capped to stop `YIELD_STOP_GAP` before the nearest such
    person at `YIELD_DECEL` (v = sqrt(2 a d)); the turn rate is scaled with it, so the robot
    keeps to its arc. A turn on the spot is left alone.

    Args:
        command: (forward speed [m/s], yaw rate [rad/s]) from the route driver.
        pose: the robot's x [m], y [m], yaw [rad] (world).
        people: (K,2) [m] positions of pedestrians and cyclists (world).
        radii: (K,) [m] their radii.
        front: [m] base_link to the front bumper.
        half_width: [m] half the body's width.
    Returns:
        The command to send, and whether it was capped for someone (the robot is held up).
    """
    v, w = command
    if v <= 0.0 or len(people) == 0:
        return (v, w), False
    x, y, yaw = pose
    c, s = math.cos(yaw), math.sin(yaw)
    dx, dy = people[:, 0] - x, people[:, 1] - y
    ahead = c * dx + s * dy - front - radii  # [m] from the bumper to the person's near side
    side = np.abs(-s * dx + c * dy) - radii
    path = (ahead > -front) & (ahead < YIELD_LOOKAHEAD) & (side < half_width + YIELD_SIDE_MARGIN)
    if not path.any():
        return (v, w), False
    gap = float(ahead[path].min()) - YIELD_STOP_GAP
    cap = math.sqrt(2.0 * YIELD_DECEL * gap) if gap > 0.0 else 0.0
    if cap >= v:
        return (v, w), False
    return (cap, w * cap / v), True


def _dir_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir() if p.is_file())


def record_mapping_drive(
    world: str,
    out: Path,
    *,
    speed: float = 1.5,
    length: float | None = None,
    seed: int = 0,
    pedestrians: int = 0,
    cyclists: int = 0,
    progress: bool | ProgressCallback = False,
    compression: str = "zstd",
    overwrite: bool = False,
) -> RecordSummary:
    """Drive ``world``'s mapping route in the simulator and record it to the bag ``out``.

    Args:
        world: a shipped world name (``worlds/<name>.sdf``) or an SDF path; it needs a site
            sidecar (the mapping route).
        out: the bag directory to create.
        speed: [m/s] cruise speed of the operator.
        length: [m] drive only this much of the route (None: all of it).
        seed: simulator seed.
        pedestrians, cyclists: crowd about the site while mapping.
        progress: True for a tqdm bar (metres along the route), or a callable given
            (metres along the route, route length) at every command.
        pedestrians, cyclists: the operator yields to them (`yield_to_people`).
        compression: the bag's chunk compression (see `BagWriter`).
        overwrite: replace an existing ``out``.

    Raises:
        MappingError: ``out`` exists (without ``overwrite``), the world has no mapping route,
            the robot tipped over, was blocked for more than 10 s (or held up by people for
            more than 120 s), or did not finish.
        AssetNotFoundError, SdfError, SiteError: the world cannot be loaded.
    """
    started = time.perf_counter()
    out = Path(out)
    if out.exists() and not overwrite:
        raise MappingError(f"bag {out}: exists already (pass overwrite=True to replace it)")
    sim = Simulator.from_world_name(
        world,
        seed=seed,
        pedestrians=pedestrians,
        cyclists=cyclists,
        config=SimulatorConfig(ultrasonic=False),
    )
    if sim.site is None:
        raise MappingError(f"world {world}: no site sidecar, so no mapping route to drive")
    driver = RouteDriver(sim.site.mapping_route.waypoints, speed=speed, length=length)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.recording-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    shipped = "/" not in world and not world.endswith(".sdf")  # a name, else a path
    custom = {
        WORLD_KEY: world if shipped else str(Path(world).resolve()),
        SITE_KEY: sim.site.name,
        SITE_FILE_KEY: str(sim.site.source.resolve()) if sim.site.source else "",
        "xiaomanlv.seed": str(seed),
        "xiaomanlv.speed": f"{speed:g}",
        "xiaomanlv.route_length": f"{driver.length:.1f}",
        "xiaomanlv.pedestrians": str(pedestrians),
        "xiaomanlv.cyclists": str(cyclists),
        "xiaomanlv.recorder": "xiaomanlv_bringup.ros.mapping_drive",
    }
    bar: Any = None
    report: ProgressCallback | None = None
    if progress is True:
        bar = tqdm(total=round(driver.length), unit="m", desc=f"mapping {sim.world.name}")

        def report(done: float, _total: float) -> None:
            bar.update(round(done) - bar.n)

    elif callable(progress):
        report = progress
    try:
        with BagWriter(staging / out.name, compression=compression, custom_data=custom) as bag:
            for topic, msgtype in TYPES.items():
                bag.add_topic(topic, msgtype)
            bag.add_topic(GNSS_VEL, GNSS_VEL_TYPE)
            duration, distance, held = _drive(sim, driver, bag, report)
            counts = bag.counts
        if out.exists():
            shutil.rmtree(out)
        (staging / out.name).rename(out)
    finally:
        if bar is not None:
            bar.close()
        shutil.rmtree(staging, ignore_errors=True)
    return RecordSummary(
        path=out,
        duration=duration,
        distance=distance,
        route_length=driver.length,
        messages=counts,
        size=_dir_size(out),
        wall_time=time.perf_counter() - started,
        held=held,
        collisions=sum(
            1 for e in sim.events if e.kind == "collision" and e.detail != "static obstacle"
        ),
    )


def _drive(
    sim: Simulator, driver: RouteDriver, bag: BagWriter, report: ProgressCallback | None
) -> tuple[float, float, float]:
    """Step the simulator until the route is done; (sim duration [s], distance [m], time held
    up by people [s])."""
    rate = sim.physics_rate
    body = sim.robot.body
    front = float(body.box_pose[0, 3]) + 0.5 * body.length
    half_width = 0.5 * body.width
    crowd = sim.crowd is not None
    held = False
    held_time = 0.0
    stuck = 0.0  # [s] without moving while nobody held the robot up
    command_every = max(1, round(rate / COMMAND_RATE))
    truth_every = max(1, round(rate / TRUTH_RATE))
    limit = 3.0 * driver.length / driver.speed + 120.0  # [s] sim: a drive that never ends
    st = sim.state
    last_xy = (st.x, st.y)
    anchor_xy, anchor_t = last_xy, 0.0
    distance = 0.0
    done_at: float | None = None
    while True:
        if sim.tick % command_every == 0:
            st = sim.state
            if not driver.done:
                command = driver.command(st.x, st.y, st.yaw)
                if crowd:
                    agents = sim.ground_truth.agents
                    command, held = yield_to_people(
                        command, (st.x, st.y, st.yaw), agents.positions, agents.radii,
                        front=front, half_width=half_width,
                    )  # fmt: skip
                    if held:
                        held_time += command_every / rate
                sim.set_cmd_vel(*command)
                if report is not None:
                    report(driver.progress, driver.length)
            if driver.done:
                sim.set_cmd_vel(0.0, 0.0)
                done_at = sim.time if done_at is None else done_at
                if abs(st.speed) < STOP_SPEED or sim.time - done_at > STOP_WAIT:
                    break
        for reading in sim.step():
            _write(bag, reading)
        t = sim.time
        if sim.tick % truth_every == 0:
            truth = sim.ground_truth
            msg = serialize_message(truth_pose_to_msg(truth, "world"))
            bag.write(TRUTH, msg, nanoseconds_of(t))
            x, y = float(truth.pose[0, 3]), float(truth.pose[1, 3])
            distance += math.hypot(x - last_xy[0], y - last_xy[1])
            last_xy = (x, y)
            if truth.tipped:
                raise MappingError(
                    f"world {sim.world.name}: the robot tipped over at ({x:.1f}, {y:.1f}) m, "
                    f"t={t:.1f} s, {driver.progress:.0f} m along the mapping route"
                )
            if math.hypot(x - anchor_xy[0], y - anchor_xy[1]) > BLOCKED_DISTANCE:
                anchor_xy, anchor_t, stuck = (x, y), t, 0.0
            elif done_at is None:
                stuck += 0.0 if held else truth_every / rate
                if stuck > BLOCKED_AFTER:
                    raise MappingError(
                        f"world {sim.world.name}: the robot is blocked at ({x:.1f}, {y:.1f}) m: "
                        f"it moved less than {BLOCKED_DISTANCE:g} m in {BLOCKED_AFTER:g} s "
                        f"(t={t:.1f} s, {driver.progress:.0f} m along the mapping route)"
                    )
                if t - anchor_t > HELD_AFTER:
                    raise MappingError(
                        f"world {sim.world.name}: people held the robot up at ({x:.1f}, "
                        f"{y:.1f}) m for {HELD_AFTER:g} s (t={t:.1f} s, {driver.progress:.0f} m "
                        "along the mapping route): record again with another --seed or fewer "
                        "people"
                    )
            if t > limit:
                raise MappingError(
                    f"world {sim.world.name}: the mapping route is not done after {t:.0f} s "
                    f"({driver.progress:.0f} of {driver.length:.0f} m)"
                )
    if report is not None:
        report(driver.length, driver.length)
    return sim.time, distance, held_time


def _write(bag: BagWriter, reading: object) -> None:
    if isinstance(reading, LidarScan):
        topic, msg, stamp = LIDAR, lidar_to_msg(reading), reading.stamp
    elif isinstance(reading, ImuReading):
        topic, msg, stamp = IMU, imu_to_msg(reading), reading.stamp
    elif isinstance(reading, OdomReading):
        topic, msg, stamp = ODOM, odom_to_msg(reading), reading.stamp
    elif isinstance(reading, GnssReading):
        bag.write(GNSS, serialize_message(gnss_to_msg(reading)), nanoseconds_of(reading.stamp))
        vel = gnss_velocity_to_msg(reading)  # None without a fix, as the sim node sends none
        if vel is not None:
            bag.write(GNSS_VEL, serialize_message(vel), nanoseconds_of(reading.stamp))
        return
    else:
        return  # ultrasonic is off; nothing else is recorded
    bag.write(topic, serialize_message(msg), nanoseconds_of(stamp))  # = header stamp


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m xiaomanlv_bringup.ros.mapping_drive WORLD -o BAG``: record a mapping drive."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("world", help="world name (worlds/<name>.sdf) or SDF path")
    parser.add_argument("-o", "--output", type=Path, required=True, help="bag directory")
    parser.add_argument("--speed", type=float, default=1.5, help="cruise speed [m/s]")
    parser.add_argument("--length", type=float, default=None, help="drive only this far [m]")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pedestrians", type=int, default=0)
    parser.add_argument("--cyclists", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true", help="replace an existing bag")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        summary = record_mapping_drive(
            args.world,
            args.output,
            speed=args.speed,
            length=args.length,
            seed=args.seed,
            pedestrians=args.pedestrians,
            cyclists=args.cyclists,
            progress=True,
            overwrite=args.overwrite,
        )
    except MappingError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    counts = ", ".join(f"{t} {n}" for t, n in summary.messages.items())
    print(
        f"{summary.path}: {summary.size / 1e6:.1f} MB, {summary.distance:.0f} m in "
        f"{summary.duration:.0f} s sim, {summary.wall_time:.0f} s wall; {counts}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
