"""Configuration of the simulator's nodes: one frozen dataclass per node, defaults only here.

``sim`` (the headless simulator as a ROS node, :mod:`xiaomanlv_sim.nodes.sim`) and
``ultrasonic_range`` (Gazebo's ultrasonic scans as sensor_msgs/Range,
:mod:`xiaomanlv_sim.nodes.ultrasonic_range`). ``config/sim.yaml`` only overrides; the nodes
declare their parameters from these fields (conventions #3).
"""

from __future__ import annotations

from dataclasses import dataclass

from xiaomanlv_core.config import param, validate_fields


@dataclass(frozen=True)
class SimNodeConfig:
    """Parameters of the ``sim`` node (the ROS adapter of :class:`Simulator`)."""

    world: str = param("university", description="world name (worlds/<name>.sdf) or SDF path")
    scenario: str = param("", description="scenario YAML file; empty: the world alone")
    seed: int = param(
        -1, low=-1, high=2**31 - 1, description="random seed; -1: the scenario's (0 without)"
    )
    real_time_factor: float = param(
        1.0, low=0.0, high=1000.0, description="sim seconds per wall second; 0: flat out"
    )
    pedestrians: int = param(0, low=0, high=2000, description="crowd without a scenario")
    cyclists: int = param(0, low=0, high=500, description="cyclists without a scenario")
    publish_ground_truth: bool = param(True, description="publish /sim/ground_truth/*")
    cmd_timeout: float = param(
        0.5, low=0.01, high=60.0, unit="s", description="sim time after which cmd_vel is zero"
    )  # [s]
    clock_rate: float = param(
        100.0, low=1.0, high=1000.0, unit="Hz", description="/clock messages per sim second"
    )  # [Hz]
    ground_truth_rate: float = param(
        50.0, low=1.0, high=200.0, unit="Hz", description="ground-truth pose per sim second"
    )  # [Hz]
    agents_rate: float = param(
        10.0, low=0.5, high=50.0, unit="Hz", description="ground-truth agents per sim second"
    )  # [Hz]
    diagnostics_rate: float = param(
        1.0, low=0.1, high=10.0, unit="Hz", description="/diagnostics per wall second"
    )  # [Hz]
    physics_rate: float = param(200.0, low=20.0, high=2000.0, unit="Hz", description="physics")
    lidar: bool = param(True, description="run the 3D lidar")
    ultrasonic: bool = param(True, description="run the ultrasonic rangers")
    world_frame: str = param("world", description="frame of the ground truth")
    odom_frame: str = param("odom", description="frame_id of /wheel/odom")
    base_frame: str = param("base_link", description="child_frame_id of /wheel/odom")

    def __post_init__(self) -> None:
        validate_fields(self)


@dataclass(frozen=True)
class UltrasonicRangeConfig:
    """The scan-to-range converter (node ``ultrasonic_range``)."""

    sensors: tuple[str, ...] = param(
        (),
        description="rangers to convert, by <where> (front_left, ...); empty: every "
        "ultrasonic_<where> sensor of models/xiaomanlv/model.sdf",
    )
    diagnostics_rate: float = param(1.0, low=0.1, high=10.0, unit="Hz")
