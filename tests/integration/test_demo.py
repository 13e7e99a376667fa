"""The README's main command, minus set-up: the same code path `make demo` runs.

The test reads the demo's ``summary.json``, not its printed lines (those are for people and
may be reworded); sensor rates in it come from header stamps, in simulated time.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import cv2
import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(400)]


def test_demo_drives_the_robot_shows_its_sensors_and_delivers_a_parcel(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["xiaomanlv", "demo", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=360,
    )
    summary_file = tmp_path / "summary.json"
    assert summary_file.is_file(), proc.stdout + proc.stderr
    summary = json.loads(summary_file.read_text())
    assert proc.returncode == 0, json.dumps(summary, indent=1) + proc.stdout + proc.stderr
    assert "error" not in summary
    assert summary["nodes"] == [
        "sim", "map_server", "localizer", "ekf", "health_monitor", "locker", "kiosk",
    ]  # fmt: skip
    prior = summary["map"]
    assert prior["grid"]["width"] > 1000 and prior["stops"] == 14
    assert prior["cloud_points"] > 0 and prior["route_edges"] > 0

    rates = {topic: sensor["rate"] for topic, sensor in summary["sensors"].items()}
    assert rates["/lidar/points"] == pytest.approx(10.0, rel=0.05)
    assert rates["/imu/data"] == pytest.approx(100.0, rel=0.05)
    assert rates["/wheel/odom"] == pytest.approx(50.0, rel=0.05)
    assert rates["/gnss/fix"] == pytest.approx(5.0, rel=0.05)
    ultrasonic = [rate for topic, rate in rates.items() if topic.startswith("/ultrasonic/")]
    assert len(ultrasonic) == 8 and all(r == pytest.approx(20.0, rel=0.05) for r in ultrasonic)

    assert summary["driven"]["distance"] > 3.0, "the timed commands must move the robot"
    # Localised from the operator's /initialpose at the station, and on the truth while driving.
    loc = summary["localization"]
    assert loc["status_messages"] > 0 and loc["last_state"] in ("OK", "DEGRADED"), loc
    poses = loc["localization_pose"]
    # One per sweep the localiser keeps up with: 10 Hz alone, 1-2 Hz on two loaded shared cores
    # with the whole graph running (docs/localization.md, speed); against truth stamps.
    assert poses["compared"] >= 10, loc
    # "On the truth", not the accuracy target (bench/localization.py holds that): the error is
    # against the truth carried into the map frame (docs/frames.md), so it includes the map's
    # own local error, and at the station the scan barely constrains the east-west direction
    # (point-to-plane information 10 against 8,400 along the other axes), where the match sits
    # 0.12 m off. Which sweeps a loaded machine lets the localiser take varies from run to run
    # (a CI run measured a 0.128 m median). A localiser that is lost is metres off.
    assert poses["error_m_median"] < 0.25 and poses["error_m_max"] < 0.5, loc
    # The fused estimate at the IMU rate: it follows the localiser once matched (it starts from
    # the operator's guess, so no bound on its maximum). Not yet as close as the localiser: its
    # yaw trails by 1-2 deg in the demo (0.12 m median on an idle machine, 0.47 m in a loaded
    # CI run; docs/fusion.md, "Known gaps"), so this asks only that it is not lost.
    fused = loc["odometry_filtered"]
    assert fused["compared"] >= 100 and fused["error_m_median"] < 1.0, loc
    assert poses["yaw_error_deg_median"] < 1.0, loc
    health = summary["health"]
    assert health["get"] == "OK", health["components"]
    assert health["wait_until_healthy"]["healthy"]
    kiosk = summary["kiosk"]
    assert kiosk["wrong_code"]["message"].startswith("That code did not open a door")
    assert kiosk["right_code"]["message"].startswith("Door ")
    assert kiosk["right_code"]["message"].split()[1].isdigit()
    events = summary["locker"]["events"]
    assert summary["locker"]["delivered"] and "delivered" in events and "alarm" not in events
    assert summary["shutdown"]["clean"], summary["shutdown"]
    assert not any(any(codes) for codes in summary["shutdown"]["exit_codes"].values())

    picture = cv2.imread(summary["picture"])
    assert picture is not None and picture.shape[0] > 500
    assert "shutdown: clean" in proc.stdout  # the people's view says so too
