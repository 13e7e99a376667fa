"""The lockstep localisation stack (bench/localization.py's) wires the nodes' cores as the graph
does: from an operator's pose at the station the localiser matches, its poses reach the fusion,
and the fused estimate comes at the IMU's rate and on the truth; nothing before a pose."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xiaomanlv_bringup.localization_evaluation import pose_errors
from xiaomanlv_bringup.ros.localization_lockstep import Stack
from xiaomanlv_core.frames import world_from_map
from xiaomanlv_core.geometry import yaw_of
from xiaomanlv_core.robot import load_robot, model_file
from xiaomanlv_core.site import load_site
from xiaomanlv_core.stops import stops_from_dict
from xiaomanlv_core.yamlfile import read_yaml
from xiaomanlv_sim import assets
from xiaomanlv_sim.sdf import load_world
from xiaomanlv_sim.simulator import Simulator, SimulatorConfig

REPO = Path(__file__).resolve().parents[3]


@pytest.mark.timeout(300)
def test_an_operator_pose_at_the_station_localises_and_fuses_on_the_truth() -> None:
    robot = load_robot(model_file())
    world_path = assets.world_file("university")
    site = load_site(assets.site_file(world_path))
    map_dir = REPO / "maps" / "university"
    stops = stops_from_dict(read_yaml(map_dir / "stops.yaml"), str(map_dir / "stops.yaml"))
    map_from_world = np.linalg.inv(world_from_map(site.station.loading, stops.loading.pose))
    sim = Simulator(
        load_world(world_path), robot, site, None, seed=4, config=SimulatorConfig(ultrasonic=False)
    )
    stack = Stack(map_dir, robot)
    fused, states, truth = [], [], {}
    standing = map_from_world @ sim.ground_truth.pose
    for _ in range(round(1.0 * sim.physics_rate)):  # a second standing: it starts alone
        for reading in sim.step():
            out = stack.feed(reading)
            fused += out.fused
            states += out.states
    assert states and states[0].state == "LOST"  # not initialised: nothing before a search
    alone = [f for f in fused if f.stamp > fused[0].stamp + 0.2] if fused else []
    pos, _ = pose_errors([f.pose for f in alone], [(*standing[:3, 3], 0.0)] * len(alone))
    assert np.all(pos < 0.3)  # from GNSS and the scan alone: on the truth, or nothing
    fused = []
    loading = stops.loading
    stack.initial_pose(sim.time, loading.x, loading.y, loading.yaw)  # where it is parked
    sim.set_cmd_vel(0.8, 0.1)
    for _ in range(round(4.0 * sim.physics_rate)):
        for reading in sim.step():
            out = stack.feed(reading)
            fused += out.fused
            states += out.states
        pose = map_from_world @ sim.ground_truth.pose
        truth[round(sim.time, 4)] = (*pose[:3, 3], yaw_of(pose[:3, :3]))
    assert stack.localizer.accepted >= 20
    assert stack.ekf.counts["filter initialised"] >= 1  # alone, then the operator again
    assert states[-1].state in ("OK", "DEGRADED")
    stamps = np.array([f.stamp for f in fused])
    assert len(fused) >= 350 and np.median(np.diff(stamps)) == pytest.approx(0.01, abs=1e-6)
    late = [f for f in fused if f.stamp > stamps[0] + 2.0 and round(f.stamp, 4) in truth]
    assert len(late) > 100
    pos, yaw = pose_errors([f.pose for f in late], [truth[round(f.stamp, 4)] for f in late])
    assert np.median(pos) < 0.1 and np.max(pos) < 0.3
    assert np.degrees(np.max(np.abs(yaw))) < 1.0
    timings = stack.timings()
    assert timings["fusion_hz"] == pytest.approx(100.0, rel=0.01)
    assert len(timings["reg_ms"]) >= 20 and timings["ekf_update_ms"]


def test_a_gnss_jump_counts_only_the_fixes_the_fault_moved() -> None:
    # GnssJump moves the fixes stamped in [start, end) (xiaomanlv_sim.faults); the clean fix
    # at `end`, rightly taken by the fusion, made the quick bench's rejection rate 0.
    stack = Stack.__new__(Stack)  # only the GNSS record is used: no map to load
    start, end = 0.12 * 60.0, 0.12 * 60.0 + 4.0  # the quick plan's first jump: 7.2 .. 11.2 s
    stack._gnss = [(k / 5.0, not start <= k / 5.0 < end) for k in range(30, 60)]  # 5 Hz
    assert stack.gnss_accepted_between(start, end) == 0
    assert stack.gnss_accepted_between(20.0, 24.0) is None  # no fix then
