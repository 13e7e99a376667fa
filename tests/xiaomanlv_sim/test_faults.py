"""Fault windows by sim time."""

from __future__ import annotations

import numpy as np

from xiaomanlv_sim.faults import Faults
from xiaomanlv_sim.scenario import DoorJam, GnssJump, ImuBiasStep, SensorDropout, WheelSlipPatch

FAULTS = Faults(
    [
        SensorDropout("lidar", 10.0, 12.0),
        SensorDropout("ultrasonic", 5.0, 6.0),
        GnssJump(20.0, 30.0, (5.0, -2.0)),
        GnssJump(25.0, 26.0, (1.0, 1.0)),
        ImuBiasStep(40.0, gyro=(0.0, 0.0, 0.01)),
        ImuBiasStep(50.0, gyro=(0.0, 0.0, 0.01), accel=(0.1, 0.0, 0.0)),
        WheelSlipPatch((10.0, 0.0), 2.0, 0.4, start=0.0, end=100.0),
        WheelSlipPatch((11.0, 0.0), 2.0, 0.7, start=50.0),
        DoorJam(7, 60.0, 90.0),
    ]
)


def test_dropout_windows_are_half_open_and_per_sensor() -> None:
    assert not FAULTS.dropped("lidar", 9.99)
    assert FAULTS.dropped("lidar", 10.0) and FAULTS.dropped("lidar", 11.99)
    assert not FAULTS.dropped("lidar", 12.0)
    assert not FAULTS.dropped("imu", 11.0)
    assert FAULTS.dropped("ultrasonic", 5.5)


def test_gnss_jumps_add_while_active() -> None:
    assert FAULTS.gnss_offset(19.0) == (0.0, 0.0)
    assert FAULTS.gnss_offset(21.0) == (5.0, -2.0)
    assert FAULTS.gnss_offset(25.5) == (6.0, -1.0)
    assert FAULTS.gnss_offset(30.0) == (0.0, 0.0)


def test_imu_bias_steps_accumulate_and_stay() -> None:
    assert FAULTS.imu_bias(39.0) is None
    bias = FAULTS.imu_bias(45.0)
    assert bias is not None
    np.testing.assert_allclose(bias[0], [0.0, 0.0, 0.01])
    gyro, accel = FAULTS.imu_bias(1000.0)  # type: ignore[misc]
    np.testing.assert_allclose(gyro, [0.0, 0.0, 0.02])
    np.testing.assert_allclose(accel, [0.1, 0.0, 0.0])


def test_wheel_slip_inside_patches_by_position_and_time() -> None:
    points = np.array([[10.5, 1.5], [10.0, 2.1], [12.5, 0.0]])
    np.testing.assert_allclose(FAULTS.wheel_slip(points, 1.0), [0.4, 0.0, 0.0])
    np.testing.assert_allclose(FAULTS.wheel_slip(points, 60.0), [0.7, 0.0, 0.7])
    np.testing.assert_allclose(FAULTS.wheel_slip(points, 200.0), [0.7, 0.0, 0.7])
    assert not Faults().has_slip_patches()
    np.testing.assert_allclose(Faults().wheel_slip(points, 1.0), 0.0)


def test_door_jam_is_per_compartment() -> None:
    assert FAULTS.door_jammed(7, 60.0) and FAULTS.door_jammed(7, 89.0)
    assert not FAULTS.door_jammed(7, 90.0) and not FAULTS.door_jammed(8, 70.0)


def test_transitions_list_every_start_and_end_in_time_order() -> None:
    transitions = FAULTS.transitions()
    times = [t.time for t in transitions]
    assert times == sorted(times)
    lidar = [t for t in transitions if t.detail == "SensorDropout lidar"]
    assert [(t.kind, t.time) for t in lidar] == [("fault_start", 10.0), ("fault_end", 12.0)]
    jam = [t for t in transitions if t.detail.startswith("DoorJam")]
    assert [t.kind for t in jam] == ["fault_start", "fault_end"]
    forever = [t for t in transitions if "slip=0.7" in t.detail]
    assert [t.kind for t in forever] == ["fault_start"]
    assert len(transitions) == 9 + 6  # every fault starts; six have an end
