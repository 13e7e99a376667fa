"""The headless simulator: a fixed-step lockstep loop over world, robot, crowd and sensors.

One call of :meth:`Simulator.step` advances one physics tick (``physics_rate``, 200 Hz by
default): faults and obstacles are brought up to date, the drive and ground contact integrate
(:mod:`xiaomanlv_sim.dynamics`), the crowd moves every ``physics_rate / crowd_rate`` ticks and
is pushed into the scene for the ranging sensors, the encoders feed the odometry, and each
sensor whose period ends on this tick produces a reading. A sensor of rate ``r`` emits on tick
``n`` when ``floor(n r / physics_rate)`` grows, so its stamps are exact multiples of its period
when the rates divide (all of the robot's do) and the schedule never drifts. Readings of one
tick come in a fixed order (odometry, IMU, GNSS, ultrasonic, lidar).

Determinism: every random part draws from its own generator spawned from one
``numpy.random.SeedSequence(seed)``, in a fixed order, and time is ``tick / physics_rate``
(never an accumulated float): the same seed and the same command sequence give identical
readings, bit for bit.

Speed (the loop runs 200 times per simulated second): what is due on a tick comes from a table
precomputed over the lcm of the sensor periods; the dynamics, the IMU, the odometry and the
agent contacts are compiled kernels; the odometry integrates the encoder samples of the ticks
since its last reading in one call; static contacts are checked only once the body may have
reached a footprint (see ``_static_contacts``).

Nothing here imports rclpy: ``xiaomanlv_sim.nodes.sim`` is the ROS adapter.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
from numpy.typing import NDArray

from xiaomanlv_core.config import param, validate_fields
from xiaomanlv_core.robot import RobotSpec, load_robot, model_file
from xiaomanlv_core.site import Site, SiteError, load_site
from xiaomanlv_core.types import Pose2D
from xiaomanlv_sim import assets
from xiaomanlv_sim.agents import AgentArrays, Crowd
from xiaomanlv_sim.config import SimNodeConfig
from xiaomanlv_sim.dynamics import BodyState, DiffDriveDynamics
from xiaomanlv_sim.faults import Faults
from xiaomanlv_sim.footprint import Footprints
from xiaomanlv_sim.scenario import CrowdSpec, Scenario, ScenarioError, load_scenario
from xiaomanlv_sim.scene import Scene
from xiaomanlv_sim.sdf import load_world
from xiaomanlv_sim.sensors.gnss import Gnss, GnssReading
from xiaomanlv_sim.sensors.imu import Imu, ImuReading
from xiaomanlv_sim.sensors.lidar import Lidar, LidarScan
from xiaomanlv_sim.sensors.odometry import OdomReading, WheelOdometry
from xiaomanlv_sim.sensors.ultrasonic import RangeReading, Ultrasonic, read_rangers
from xiaomanlv_sim.weather import CLEAR, WeatherState, weather_at
from xiaomanlv_sim.world import World

log = logging.getLogger(__name__)

SensorReading = LidarScan | RangeReading | ImuReading | OdomReading | GnssReading


@dataclass(frozen=True)
class SimulatorConfig:
    """Loop settings of the simulator; the sensors' rates and noise come from the robot SDF."""

    physics_rate: float = param(
        200.0, low=20.0, high=2000.0, unit="Hz", description="physics (drive, contact) rate"
    )  # [Hz]
    crowd_rate: float = param(
        20.0, low=1.0, high=200.0, unit="Hz", description="crowd update rate"
    )  # [Hz]
    suspension_frequency: float = param(
        4.0, low=0.5, high=50.0, unit="Hz", description="body following the ground"
    )  # [Hz]
    drop_tip_speed: float = param(
        0.5, low=0.0, high=10.0, unit="m/s", description="speed at which a kerb drop tips"
    )  # [m/s]
    lidar: bool = True  # run the 3D lidar
    lidar_sectors: int = param(
        20,
        low=1,
        high=3600,
        description="azimuth sectors a lidar sweep is cast in, each from its own pose",
    )  # 20 at 10 Hz: 5 ms of travel at 2 m/s within a sector (sensors/lidar.py)
    ultrasonic: bool = True  # run the ultrasonic rangers

    def __post_init__(self) -> None:
        validate_fields(self)


def simulator_for(config: SimNodeConfig) -> Simulator:
    """The simulator a node config describes: a scenario file, or a world with a crowd.

    Raises:
        ScenarioError, SiteError, SdfError, AssetNotFoundError: naming the file and field.
    """
    sim_config = SimulatorConfig(
        physics_rate=config.physics_rate, lidar=config.lidar, ultrasonic=config.ultrasonic
    )
    if config.scenario:
        scenario = load_scenario(Path(config.scenario))
        seed = None if config.seed < 0 else config.seed
        world_path = assets.world_file(scenario.world)
        world = load_world(world_path)
        site = load_site(assets.site_file(world_path))
        robot = load_robot(model_file())
        return Simulator(world, robot, site, scenario, seed=seed, config=sim_config)
    return Simulator.from_world_name(
        config.world,
        seed=max(config.seed, 0),
        pedestrians=config.pedestrians,
        cyclists=config.cyclists,
        config=sim_config,
    )


@dataclass(frozen=True)
class Event:
    """A ground-truth event: tipped, blocked, collision, fault_start/end, obstacle_*."""

    time: float  # [s] sim time
    kind: str
    detail: str


@dataclass(frozen=True)
class GroundTruth:
    time: float  # [s]
    pose: NDArray[np.float64]  # 4x4 world <- base_link
    twist: NDArray[np.float64]  # (2,) forward speed [m/s], yaw rate [rad/s] over ground
    velocity: NDArray[np.float64]  # (3,) [m/s] base_link velocity in the world frame
    agents: AgentArrays
    tipped: bool
    events: tuple[Event, ...] = field(default=())  # every event so far, in time order


class _Schedule:
    """When a sensor of ``rate`` [Hz] is due on the physics ticks: every ``every`` ticks when
    the rates divide, else whenever ``floor(tick * rate / physics_rate)`` grows."""

    def __init__(self, rate: float, physics_rate: float) -> None:
        self.rate = rate
        self.physics_rate = physics_rate
        ratio = physics_rate / rate
        self.every = round(ratio) if abs(ratio - round(ratio)) < 1e-9 else 0
        self.count = 0  # readings due so far (general case)

    def due(self, tick: int) -> bool:
        if self.every:
            return tick % self.every == 0
        n = math.floor(tick * self.rate / self.physics_rate + 1e-9)
        if n > self.count:
            self.count = n
            return True
        return False


@dataclass(frozen=True)
class _Due:
    """What is due on one tick (rangers by index)."""

    odom: bool
    imu: bool
    gnss: bool
    rangers: tuple[int, ...]
    lidar: bool


class _Timetable:
    """The sensors due on each tick. When every rate divides the physics rate the pattern
    repeats every lcm of the periods and is looked up in a precomputed table; otherwise each
    ``_Schedule`` is asked every tick, in the loop's order."""

    MAX_CYCLE = 100_000  # [ticks] longest table kept

    def __init__(
        self,
        odom: _Schedule,
        imu: _Schedule,
        gnss: _Schedule | None,
        rangers: list[_Schedule],
        lidar: _Schedule | None,
    ) -> None:
        self._parts = (odom, imu, gnss, rangers, lidar)
        everies = [x.every for x in (odom, imu, gnss, *rangers, lidar) if x is not None]
        cycle = math.lcm(*everies) if all(everies) else 0
        self.table: list[_Due | None] | None = None
        self.cycle = cycle if 0 < cycle <= self.MAX_CYCLE else 0  # [ticks] of the table
        if self.cycle:
            self.table = [self._ask(k) for k in range(cycle)]

    def _ask(self, tick: int) -> _Due | None:
        odom, imu, gnss, rangers, lidar = self._parts
        due = _Due(
            odom.due(tick),
            imu.due(tick),
            gnss is not None and gnss.due(tick),
            tuple(i for i, r in enumerate(rangers) if r.due(tick)),
            lidar is not None and lidar.due(tick),
        )
        if due.odom or due.imu or due.gnss or due.rangers or due.lidar:
            return due
        return None

    def due(self, tick: int) -> _Due | None:
        """What is due on ``tick`` (ticks asked in order, each once); None: nothing."""
        if self.table is not None:
            return self.table[tick % self.cycle]
        return self._ask(tick)


@numba.njit(cache=True)
def _touching_agents(
    positions: NDArray[np.float64],
    radii: NDArray[np.float64],
    pose: NDArray[np.float64],
    out: NDArray[np.int64],
) -> int:
    """Indices (into ``out``) of the agents whose disc overlaps the body box; their count.

    ``pose``: robot x, y [m], cos and sin of yaw, box centre x, y in base_link [m], half
    length and half width [m]. Gap = |max(|local| - half, 0)| - radius < 0, as
    ``Simulator._agent_contacts`` states it."""
    x, y, c, s = pose[0], pose[1], pose[2], pose[3]
    bx, by, hl, hw = pose[4], pose[5], pose[6], pose[7]
    n = 0
    for i in range(positions.shape[0]):
        dx = positions[i, 0] - x
        dy = positions[i, 1] - y
        lx = abs(c * dx + s * dy - bx) - hl
        ly = abs(-s * dx + c * dy - by) - hw
        lx = lx if lx > 0.0 else 0.0
        ly = ly if ly > 0.0 else 0.0
        if math.sqrt(lx * lx + ly * ly) - radii[i] < 0.0:
            out[n] = i
            n += 1
    return n


@numba.njit(cache=True)
def _interpolated_poses(
    track: NDArray[np.float64],
    tick: int,
    at: NDArray[np.float64],
    mount: NDArray[np.float64],
    out: NDArray[np.float64],
) -> None:
    """``out`` (K, 4, 4): world <- sensor at each of the ticks ``at`` (fractional, K) from the
    body's ``track`` (n, 6) of x, y, z [m], roll, pitch, yaw [rad] ring-indexed by tick, whose
    last row is ``tick``: linear between ticks (angles the short way round), clamped to the
    ticks held, then ``mount`` (4, 4: base_link <- sensor).

    The rotation is ``xiaomanlv_core.geometry.rpy_matrix`` written out (numba cannot call
    scipy; a test holds the two equal)."""
    n = track.shape[0]
    for s in range(at.shape[0]):
        lo = min(max(math.floor(at[s]), tick - n + 2), tick - 1)
        frac = min(max(at[s] - lo, 0.0), 1.0)
        a = track[lo % n]
        b = track[(lo + 1) % n]
        x = a[0] + frac * (b[0] - a[0])
        y = a[1] + frac * (b[1] - a[1])
        z = a[2] + frac * (b[2] - a[2])
        roll = a[3] + frac * ((b[3] - a[3] + math.pi) % (2.0 * math.pi) - math.pi)
        pitch = a[4] + frac * ((b[4] - a[4] + math.pi) % (2.0 * math.pi) - math.pi)
        yaw = a[5] + frac * ((b[5] - a[5] + math.pi) % (2.0 * math.pi) - math.pi)
        cr, sr = math.cos(roll), math.sin(roll)
        cp, sp = math.cos(pitch), math.sin(pitch)
        cy, sy = math.cos(yaw), math.sin(yaw)
        r00, r01, r02 = cy * cp, cy * sp * sr - sy * cr, cy * sp * cr + sy * sr
        r10, r11, r12 = sy * cp, sy * sp * sr + cy * cr, sy * sp * cr - cy * sr
        r20, r21, r22 = -sp, cp * sr, cp * cr
        for j in range(4):
            m0, m1, m2, m3 = mount[0, j], mount[1, j], mount[2, j], mount[3, j]
            out[s, 0, j] = r00 * m0 + r01 * m1 + r02 * m2 + x * m3
            out[s, 1, j] = r10 * m0 + r11 * m1 + r12 * m2 + y * m3
            out[s, 2, j] = r20 * m0 + r21 * m1 + r22 * m2 + z * m3
            out[s, 3, j] = m3


def _empty_agents() -> AgentArrays:
    return AgentArrays(
        positions=np.zeros((0, 2)),
        velocities=np.zeros((0, 2)),
        radii=np.zeros(0),
        heights=np.zeros(0),
        kinds=np.zeros(0, dtype=np.int8),
        ids=np.zeros(0, dtype=np.int32),
    )


def start_pose(scenario: Scenario | None, site: Site | None) -> Pose2D:
    """Where a scenario starts: its pose, the station's loading pose or a named stop.

    Raises:
        ScenarioError: the start names a stop the site does not have, or needs a site.
    """
    start = scenario.start if scenario is not None else "station"
    if isinstance(start, Pose2D):
        return start
    where = f"scenario '{scenario.name}' start" if scenario is not None else "start"
    if site is None:
        if scenario is None:
            return Pose2D(0.0, 0.0, 0.0)
        raise ScenarioError(f"{where}: '{start}' needs the world's site sidecar")
    if start == "station":
        return site.station.loading
    for stop in site.stops:
        if stop.name == start:
            return stop.pose
    known = ", ".join(s.name for s in site.stops)
    raise ScenarioError(f"{where}: no stop '{start}' in site {site.name} (stops: {known})")


class Simulator:
    """The lockstep simulator (see module docstring).

    Args:
        world: static geometry (``sdf.load_world``).
        robot: the robot model (`xiaomanlv_core.robot.load_robot`).
        site: the world's sidecar (start poses, walkways for the crowd); optional.
        scenario: crowd, obstacles, weather, faults, start; optional.
        seed: seeds every random part; defaults to the scenario's seed when a scenario is given
            and ``seed`` is None.
        start: overrides the scenario's start pose.
        config: loop settings.
        scene: a prebuilt Scene of ``world`` (building one takes a while; reuse it).
    """

    def __init__(
        self,
        world: World,
        robot: RobotSpec,
        site: Site | None = None,
        scenario: Scenario | None = None,
        *,
        seed: int | None = None,
        start: Pose2D | None = None,
        config: SimulatorConfig | None = None,
        scene: Scene | None = None,
        crowd: CrowdSpec | None = None,
    ) -> None:
        self.world = world
        self.robot = robot
        self.site = site
        self.scenario = scenario
        self.config = config or SimulatorConfig()
        self.seed = seed if seed is not None else (scenario.seed if scenario else 0)
        cfg = self.config
        self.physics_rate = cfg.physics_rate
        self.tick = 0
        self.time = 0.0
        self.scene = scene if scene is not None else Scene.from_world(world)
        # A reused scene starts without the agents and obstacles of an earlier run.
        self.scene.set_agents(np.zeros((0, 2)), np.zeros(0), np.zeros(0))
        for i in range(len(scenario.obstacles) if scenario else 0):
            self.scene.remove_obstacle(f"obstacle[{i}]")
        self.start = start or start_pose(scenario, site)
        streams = np.random.SeedSequence(self.seed).spawn(8 + len(robot.ultrasonic))
        rngs = [np.random.default_rng(s) for s in streams]
        d = robot.drive
        self.dynamics = DiffDriveDynamics(
            robot.drive,
            robot.body,
            self.scene,
            rngs[0],
            rate=cfg.physics_rate,
            start=(self.start.x, self.start.y, self.start.yaw),
            suspension_frequency=cfg.suspension_frequency,
            drop_tip_speed=cfg.drop_tip_speed,
            # The odometry integrates the ticks between two of its readings at once.
            encoder_log=math.ceil(cfg.physics_rate / d.odom_rate) + 2,
        )
        self.odometry = WheelOdometry(d.wheel_separation, d.slip_stddev, d.twist_stddev, rngs[1])
        self.odometry.update(0.0, 0.0, 0.0)
        self.imu = Imu(robot.imu, rngs[2])
        self.gnss: Gnss | None = None
        if world.spherical_coordinates is not None:
            self.gnss = Gnss(robot.gnss, world, rngs[3])
        else:
            log.warning("world %s has no <spherical_coordinates>: no GNSS fixes", world.name)
        self.lidar = Lidar(robot.lidar, rngs[4], sectors=cfg.lidar_sectors)
        self.rangers = [Ultrasonic(spec, rngs[8 + i]) for i, spec in enumerate(robot.ultrasonic)]
        self.faults = Faults(scenario.faults if scenario else ())
        self._transitions = self.faults.transitions()
        self._next_transition = self._transitions[0].time if self._transitions else math.inf
        self._slip_of = self._slip if self.faults.has_slip_patches() else None
        self._obstacle_specs = scenario.obstacles if scenario else ()
        self._next_obstacle_change = -math.inf  # [s] sim time the obstacles next change
        self._present: set[int] = set()
        self.events: list[Event] = []  # before the first _sync_obstacles, which may emit
        self._new_events: list[Event] = []
        self._weather = scenario.weather if scenario else ()
        spec = crowd if crowd is not None else (scenario.crowd if scenario else CrowdSpec())
        self.footprints: Footprints | None = None
        self.crowd: Crowd | None = None
        if spec.pedestrians + spec.cyclists > 0:
            if site is None:
                raise SiteError(f"a crowd on world {world.name} needs its site sidecar")
            self.footprints = Footprints.from_world(world)
            self._sync_obstacles()
            self.crowd = Crowd(spec, site, self.footprints, rngs[5])
        else:
            self._sync_obstacles()
        # The crowd's state as ground truth gives it: taken when first asked after a crowd step.
        self._agents: AgentArrays | None = self.crowd.state if self.crowd else _empty_agents()
        if self.crowd is not None:
            c = self.crowd
            self.scene.set_agents(c.pos.copy(), c.radius.copy(), c.height.copy())
        body = robot.body
        self.robot_radius = 0.5 * math.hypot(body.length, body.width)
        self._crowd_every = max(1, round(cfg.physics_rate / cfg.crowd_rate))
        pr = cfg.physics_rate
        self._odom = _Schedule(d.odom_rate, pr)
        self._imu = _Schedule(robot.imu.rate, pr)
        self._gnss = _Schedule(robot.gnss.rate, pr)
        self._lidar = _Schedule(robot.lidar.rate, pr)
        self._rangers = [_Schedule(s.rate, pr) for s in robot.ultrasonic]
        self._timetable = _Timetable(
            self._odom,
            self._imu,
            self._gnss if self.gnss is not None else None,
            self._rangers if cfg.ultrasonic else [],
            self._lidar if cfg.lidar else None,
        )
        self._ranger_poses: dict[tuple[int, ...], tuple[list[Ultrasonic], NDArray[np.float64]]] = {}
        # The body's pose (x, y, z, roll, pitch, yaw) on each tick of the last lidar sweep and
        # a little more, ring-indexed by tick (plain tuples: a row costs a fraction of a numpy
        # row's assignment): each sector of a sweep is cast from the pose at its time
        # (`_sweep_poses`).
        self._track: list[tuple[float, ...]] | None = None
        if cfg.lidar:
            self._track = [(0.0,) * 6] * (math.ceil(pr / robot.lidar.rate) + 3)
            self._record_track(0)
        self._lidar_mount = np.ascontiguousarray(robot.lidar.pose, dtype=np.float64)
        self._contacts: set[int] = set()
        self._static_contact = False
        half = np.array([body.length / 2, body.width / 2])
        self._box_local = (float(body.box_pose[0, 3]), float(body.box_pose[1, 3]), *half.tolist())
        self._touch_out = np.zeros(0, dtype=np.int64)
        # Static contacts: the 8 outline points of the body box in base_link, and how far the
        # outline was from every footprint at the last check (see _static_contacts).
        hl, hw = body.length / 2, body.width / 2
        self._outline = np.array(
            [[sx * hl, sy * hw] for sx, sy in ((1, 1), (1, 0), (1, -1), (0, -1),
                                                  (-1, -1), (-1, 0), (-1, 1), (0, 1))]
        ) + body.box_pose[:2, 3]  # fmt: skip
        self._outline_reach = float(np.max(np.hypot(*self._outline.T)))
        self._clearance = -math.inf  # [m] min outline distance at the last check
        self._clearance_pose = (math.nan, math.nan, math.nan)

    # ---- construction helpers ---------------------------------------------------------------
    @classmethod
    def from_scenario(
        cls, scenario: Scenario, *, config: SimulatorConfig | None = None
    ) -> Simulator:
        """World, site and robot of a scenario, seeded with the scenario's seed."""
        world_path = assets.world_file(scenario.world)
        world = load_world(world_path)
        site = load_site(assets.site_file(world_path))
        robot = load_robot(model_file())
        return cls(world, robot, site, scenario, config=config)

    @classmethod
    def from_scenario_file(cls, path: Path, *, config: SimulatorConfig | None = None) -> Simulator:
        return cls.from_scenario(load_scenario(path), config=config)

    @classmethod
    def from_world_name(
        cls,
        name: str,
        *,
        seed: int = 0,
        pedestrians: int = 0,
        cyclists: int = 0,
        config: SimulatorConfig | None = None,
    ) -> Simulator:
        """A shipped world (or an SDF path) with its sidecar when it has one, starting at the
        station, with ``pedestrians`` and ``cyclists`` about."""
        world_path = assets.world_file(name)
        world = load_world(world_path)
        try:
            site: Site | None = load_site(assets.site_file(world_path))
        except assets.AssetNotFoundError:
            site = None
        robot = load_robot(model_file())
        crowd = CrowdSpec(pedestrians=pedestrians, cyclists=cyclists)
        return cls(world, robot, site, None, seed=seed, config=config, crowd=crowd)

    # ---- lockstep API -----------------------------------------------------------------------
    def set_cmd_vel(self, linear: float, angular: float) -> None:
        """Target body speeds [m/s], [rad/s] (limited as Gazebo's DiffDrive limits them).

        Raises:
            ValueError: a non-finite value.
        """
        if not (math.isfinite(linear) and math.isfinite(angular)):
            raise ValueError(f"cmd_vel ({linear}, {angular}) is not finite")
        self.dynamics.set_command(linear, angular)

    @property
    def state(self) -> BodyState:
        return self.dynamics.state

    def step(self) -> list[SensorReading]:
        """Advance one physics tick; the readings due at the new time, in a fixed order."""
        tick = self.tick = self.tick + 1
        t = tick / self.physics_rate
        self.time = t
        if t >= self._next_transition:
            self._fault_events(t)
        events = self.dynamics.step(self._slip_of)
        if events:
            for ev in events:
                self._emit(Event(t, ev.kind, ev.detail))
        track = self._track
        if track is not None:
            st = self.dynamics.state
            track[tick % len(track)] = (st.x, st.y, st.z, st.roll, st.pitch, st.yaw)
        if tick % self._crowd_every == 0:
            self._step_world(t)
        table = self._timetable.table
        due = table[tick % self._timetable.cycle] if table else self._timetable.due(tick)
        if due is None:
            return []
        out: list[SensorReading] = []
        st = self.dynamics.state
        faults = self.faults
        dropouts = faults.has_dropouts
        if due.odom:
            # The odometry integrates the encoder samples of the ticks since its last reading.
            reading = self.odometry.read(t, self.dynamics.drain_encoders())
            if not (dropouts and faults.dropped("odom", t)):
                out.append(reading)
        if due.imu:
            bias = faults.imu_bias(t) if faults.has_bias_steps else None
            imu = self.imu.read(st, t) if bias is None else self.imu.read(st, t, *bias)
            if not (dropouts and faults.dropped("imu", t)):
                out.append(imu)
        pose: NDArray[np.float64] | None = None
        if due.gnss:
            assert self.gnss is not None
            pose = st.world_from_base()
            fix = self.gnss.read(
                pose,
                st.velocity_world(),
                t,
                self.scene,
                faults.gnss_offset(t),
                angular_velocity=st.angular_velocity_body(),
            )
            if not (dropouts and faults.dropped("gnss", t)):
                out.append(fix)
        weather: WeatherState | None = None
        if due.rangers and not (dropouts and faults.dropped("ultrasonic", t)):
            pose = pose if pose is not None else st.world_from_base()
            weather = weather or self._weather_at(t)
            rangers, stack = self._due_rangers(due.rangers)
            out += read_rangers(rangers, self.scene, list(np.matmul(pose, stack)), t, weather)
        if due.lidar:
            # The sweep that ends now began one period ago: its stamp is its first column's.
            sweep = max(0.0, t - self.lidar.period)
            if not (dropouts and faults.dropped("lidar", sweep)):
                weather = weather or self._weather_at(t)
                poses = self._sweep_poses(tick, sweep)
                out.append(self.lidar.scan(self.scene, poses, sweep, weather))
        return out

    def run(self, duration: float) -> Iterator[SensorReading]:
        """Step for ``duration`` [s] of sim time (rounded to ticks), yielding every reading."""
        ticks = round(duration * self.physics_rate)
        for _ in range(ticks):
            yield from self.step()

    def teleport(self, pose: Pose2D) -> None:
        """Carry the robot to ``pose`` (world) and set it down at rest: the kidnapped robot of
        a localisation benchmark. No sensor is told; the next lidar sweep is cast from the new
        pose only (the sweep track restarts there). Emits a ``teleported`` event."""
        x, y, yaw = pose.x, pose.y, pose.yaw
        if not all(math.isfinite(v) for v in (x, y, yaw)):
            raise ValueError(f"teleport to ({x}, {y}, {yaw}) is not finite")
        self.dynamics.teleport(x, y, yaw)
        if self._track is not None:
            st = self.dynamics.state
            self._track[:] = [(st.x, st.y, st.z, st.roll, st.pitch, st.yaw)] * len(self._track)
        self._clearance = -math.inf  # the static contacts are checked afresh
        self._emit(Event(self.time, "teleported", f"to ({x:.2f}, {y:.2f}, {yaw:.3f})"))

    @property
    def ground_truth(self) -> GroundTruth:
        st = self.dynamics.state
        return GroundTruth(
            time=self.time,
            pose=st.world_from_base(),
            twist=np.array([st.speed, st.yaw_rate]),
            velocity=st.velocity_world(),
            agents=self._agent_arrays(),
            tipped=st.tipped,
            events=tuple(self.events),
        )

    def pop_events(self) -> list[Event]:
        """Events raised since the last call (for a publisher)."""
        out, self._new_events = self._new_events, []
        return out

    def door_jammed(self, compartment: int) -> bool:
        """Locker hardware truth: is compartment ``compartment`` jammed now (DoorJam faults)?"""
        return self.faults.door_jammed(compartment, self.time)

    # ---- internals --------------------------------------------------------------------------
    def _emit(self, event: Event) -> None:
        self.events.append(event)
        self._new_events.append(event)

    def _slip(self, wheels: NDArray[np.float64]) -> NDArray[np.float64]:
        return self.faults.wheel_slip(wheels, self.time)

    def _fault_events(self, t: float) -> None:
        while self._transitions and self._transitions[0].time <= t:
            tr = self._transitions.pop(0)
            self._emit(Event(t, tr.kind, tr.detail))
        self._next_transition = self._transitions[0].time if self._transitions else math.inf

    def _record_track(self, tick: int) -> None:
        st = self.dynamics.state
        assert self._track is not None
        self._track[tick % len(self._track)] = (st.x, st.y, st.z, st.roll, st.pitch, st.yaw)

    def _sweep_poses(self, tick: int, stamp: float) -> NDArray[np.float64]:
        """(sectors, 4, 4) world <- lidar at each sector's time of the sweep from ``stamp`` [s]
        to now (``tick``): the body's track interpolated between ticks (angles the short way
        round), then the lidar's mount (`_interpolated_poses`)."""
        assert self._track is not None
        at = (stamp + self.lidar.sector_times) * self.physics_rate  # [ticks]
        out = np.empty((len(at), 4, 4))
        _interpolated_poses(np.array(self._track), tick, at, self._lidar_mount, out)
        return out

    def _weather_at(self, t: float) -> WeatherState:
        return weather_at(self._weather, t) if self._weather else CLEAR

    def _due_rangers(self, which: tuple[int, ...]) -> tuple[list[Ultrasonic], NDArray[np.float64]]:
        """The rangers ``which`` and their (k, 4, 4) base_link <- ranger poses."""
        found = self._ranger_poses.get(which)
        if found is None:
            rangers = [self.rangers[i] for i in which]
            found = rangers, np.stack([r.spec.pose for r in rangers]).astype(float)
            self._ranger_poses[which] = found
        return found

    def _sync_obstacles(self) -> None:
        t = self.time
        if t < self._next_obstacle_change:
            return
        changes = [
            c
            for spec in self._obstacle_specs
            for c in (spec.appear_at, spec.disappear_at)
            if c is not None and c > t
        ]
        self._next_obstacle_change = min(changes, default=math.inf)
        for i, spec in enumerate(self._obstacle_specs):
            present = spec.appear_at <= t and (spec.disappear_at is None or t < spec.disappear_at)
            key = f"obstacle[{i}]"
            if present and i not in self._present:
                self._present.add(i)
                self.scene.add_obstacle(key, spec.pose, spec.size)
                if self.footprints is not None:
                    self.footprints.add_obstacle(key, spec)
                self._clearance = -math.inf
                self._emit(Event(t, "obstacle_appeared", f"{key} {spec.kind}"))
            elif not present and i in self._present:
                self._present.discard(i)
                self.scene.remove_obstacle(key)
                if self.footprints is not None:
                    self.footprints.remove_obstacle(key)
                self._clearance = -math.inf
                self._emit(Event(t, "obstacle_removed", f"{key} {spec.kind}"))

    def _step_world(self, t: float) -> None:
        """Obstacles, crowd and contacts, at the crowd rate."""
        if self._obstacle_specs:
            self._sync_obstacles()
        st = self.dynamics.state
        if self.crowd is not None:
            ground = st.speed * math.cos(st.pitch)  # velocity_world()[:2]
            self.crowd.step(
                self._crowd_every / self.physics_rate,
                np.array((st.x, st.y)),
                np.array((ground * math.cos(st.yaw), ground * math.sin(st.yaw))),
                self.robot_radius,
            )
            self._agents = None
            c = self.crowd
            self.scene.set_agents(c.pos.copy(), c.radius.copy(), c.height.copy())
            self._agent_contacts(st, t)
        if self.footprints is not None:
            self._static_contacts(st, t)

    def _agent_arrays(self) -> AgentArrays:
        if self._agents is None:
            assert self.crowd is not None
            self._agents = self.crowd.state
        return self._agents

    def _agent_contacts(self, st: BodyState, t: float) -> None:
        """A collision event for each agent whose disc starts to overlap the body box."""
        crowd = self.crowd
        assert crowd is not None
        n_agents = len(crowd.ids)
        if not n_agents:
            return
        if len(self._touch_out) < n_agents:
            self._touch_out = np.zeros(n_agents, dtype=np.int64)
        bx, by, hl, hw = self._box_local
        pose = np.array((st.x, st.y, math.cos(st.yaw), math.sin(st.yaw), bx, by, hl, hw))
        n = _touching_agents(crowd.pos, crowd.radius, pose, self._touch_out)
        if not n and not self._contacts:
            return
        ids = crowd.ids
        touching = {int(i) for i in ids[self._touch_out[:n]]}
        for agent in sorted(touching - self._contacts):
            kind = "cyclist" if crowd.kind[ids == agent][0] == 1 else "pedestrian"
            self._emit(Event(t, "collision", f"{kind} {agent}"))
        self._contacts = touching

    def _static_contacts(self, st: BodyState, t: float) -> None:
        """A collision event when the body box's outline starts to touch a static footprint.

        The footprints' signed distance is bilinear between grid values of which neighbours
        differ by at most one cell (a Euclidean distance transform), so it changes by at most
        sqrt(2) times the distance a point moves. An outline point moves at most the base's
        travel plus the turn times its reach: while the outline's clearance at the last check
        exceeds sqrt(2) times that (and 1 mm), no point can touch a footprint and the field is
        not asked (test_static_contacts_skipped_only_while_provably_clear). Obstacles that
        appear or go reset the clearance."""
        assert self.footprints is not None
        x0, y0, yaw0 = self._clearance_pose
        moved = math.hypot(st.x - x0, st.y - y0) + abs(st.yaw - yaw0) * self._outline_reach
        if self._clearance - math.sqrt(2.0) * moved > 1e-3:  # nan (first check) is not >
            return
        c, s = math.cos(st.yaw), math.sin(st.yaw)
        world = self._outline @ np.array([[c, s], [-s, c]]) + np.array([st.x, st.y])
        d = self.footprints.distance(world)
        inside = bool(np.any(d <= 0.0))
        self._clearance = float(np.min(d))
        self._clearance_pose = (st.x, st.y, st.yaw)
        if inside and not self._static_contact:
            self._emit(Event(t, "collision", "static obstacle"))
        self._static_contact = inside
