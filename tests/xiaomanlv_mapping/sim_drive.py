"""A mapping drive from the lockstep simulator, held in memory: a `model.DriveSource` for tests.

`simulate_drive` runs `Simulator.from_world_name` (ultrasonic rangers off: the mapping drive
does not record them), steers it with the operator stand-in `RouteDriver` at 20 Hz and
collects every reading into the mapping data model the bag reader produces: lidar sweeps as
`Scan`, wheel odometry, IMU and GNSS series (fixes without a position dropped, as the reader
drops them) and the ground truth at 50 Hz.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from xiaomanlv_core.robot import load_robot, model_file
from xiaomanlv_core.site import load_site
from xiaomanlv_core.types import Pose2D
from xiaomanlv_mapping.model import GnssSeries, ImuSeries, OdometrySeries, PoseSeries, Scan
from xiaomanlv_sim import assets
from xiaomanlv_sim.operator import RouteDriver
from xiaomanlv_sim.scenario import CrowdSpec
from xiaomanlv_sim.sdf import load_world
from xiaomanlv_sim.sensors.gnss import STATUS_FIX, GnssReading
from xiaomanlv_sim.sensors.imu import ImuReading
from xiaomanlv_sim.sensors.lidar import LidarScan
from xiaomanlv_sim.sensors.odometry import OdomReading
from xiaomanlv_sim.simulator import Simulator, SimulatorConfig

COMMAND_RATE = 20.0  # [Hz] the operator's steering updates
TRUTH_RATE = 50.0  # [Hz] ground-truth samples


@dataclass(frozen=True)
class SimDrive:
    """A recorded drive held in memory (implements `xiaomanlv_mapping.model.DriveSource`)."""

    path: Path
    duration: float  # [s]
    odometry: OdometrySeries
    imu: ImuSeries
    gnss: GnssSeries
    truth: PoseSeries | None
    scan_list: tuple[Scan, ...]
    simulator: Simulator  # after the drive: its world, robot, site and scene

    @property
    def scan_count(self) -> int:
        return len(self.scan_list)

    def scans(self) -> Iterator[Scan]:
        return iter(self.scan_list)


def simulate_drive(
    world: str = "university",
    *,
    waypoints: Sequence[tuple[float, float]] | None = None,
    length: float | None = None,
    speed: float = 1.5,
    seed: int = 0,
    pedestrians: int = 0,
    max_time: float = 4000.0,
    start: tuple[float, float, float] | None = None,
    on_scan: Callable[[Scan], None] | None = None,
) -> SimDrive:
    """Drive ``waypoints`` (default: the site's mapping route) from the station's loading pose
    (or from ``start``).

    Args:
        world: shipped world name or SDF path.
        waypoints: [m] route in the world frame; its first point should be near the start.
        length: drive only the first ``length`` metres of the route.
        speed: [m/s] cruise speed.
        seed: simulator seed.
        pedestrians: crowd size.
        max_time: [s] sim time after which the drive stops even if the route is not done.
        start: x [m], y [m], yaw [rad] to start from instead of the station's loading pose.
        on_scan: when given, every sweep goes to it instead of being kept (long drives).
    """
    world_path = assets.world_file(world)
    sim = Simulator(
        load_world(world_path),
        load_robot(model_file()),
        load_site(assets.site_file(world_path)),
        None,
        seed=seed,
        start=None if start is None else Pose2D(*start),
        config=SimulatorConfig(ultrasonic=False),
        crowd=CrowdSpec(pedestrians=pedestrians),
    )
    if waypoints is None:
        if sim.site is None:
            raise ValueError(f"world {world} has no site sidecar: give waypoints")
        waypoints = sim.site.mapping_route.waypoints
    driver = RouteDriver(waypoints, speed=speed, length=length)
    every = max(1, round(sim.physics_rate / COMMAND_RATE))
    truth_every = max(1, round(sim.physics_rate / TRUTH_RATE))
    odo: list[OdomReading] = []
    imu: list[ImuReading] = []
    fixes: list[GnssReading] = []
    scans: list[Scan] = []
    truth_t: list[float] = [0.0]
    truth_p: list[np.ndarray] = [sim.state.world_from_base()]
    first_stamp = math.inf
    last_stamp = 0.0
    while not driver.done and sim.time < max_time:
        if sim.tick % every == 0:
            st = sim.state
            sim.set_cmd_vel(*driver.command(st.x, st.y, st.yaw))
        for reading in sim.step():
            first_stamp = min(first_stamp, reading.stamp)
            last_stamp = reading.stamp
            if isinstance(reading, LidarScan):
                scan = Scan(reading.stamp, reading.points, reading.intensities, reading.times)
                if on_scan is None:
                    scans.append(scan)
                else:
                    on_scan(scan)
            elif isinstance(reading, OdomReading):
                odo.append(reading)
            elif isinstance(reading, ImuReading):
                imu.append(reading)
            elif (
                isinstance(reading, GnssReading)
                and reading.status >= STATUS_FIX
                and math.isfinite(reading.latitude)
            ):
                fixes.append(reading)
        if sim.tick % truth_every == 0:
            truth_t.append(sim.time)
            truth_p.append(sim.state.world_from_base())
    cov = np.array([f.position_covariance for f in fixes]).reshape(-1, 9)
    return SimDrive(
        path=Path(f"sim://{world}/seed{seed}"),
        duration=last_stamp - min(first_stamp, last_stamp),
        odometry=OdometrySeries(
            stamps=np.array([o.stamp for o in odo]),
            poses=np.array([o.pose for o in odo]).reshape(-1, 3),
            twists=np.array([o.twist for o in odo]).reshape(-1, 2),
        ),
        imu=ImuSeries(
            stamps=np.array([r.stamp for r in imu]),
            angular_velocity=np.array([r.angular_velocity for r in imu]).reshape(-1, 3),
            linear_acceleration=np.array([r.linear_acceleration for r in imu]).reshape(-1, 3),
            orientation=np.array([r.orientation for r in imu]).reshape(-1, 4),
        ),
        gnss=GnssSeries(
            stamps=np.array([f.stamp for f in fixes]),
            lla=np.array([[f.latitude, f.longitude, f.altitude] for f in fixes]).reshape(-1, 3),
            variances=cov[:, [0, 4, 8]],
        ),
        truth=PoseSeries(stamps=np.array(truth_t), poses=np.array(truth_p)),
        scan_list=tuple(scans),
        simulator=sim,
    )
