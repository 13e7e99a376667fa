"""The README's main command, minus set-up: the same code path `make demo` runs."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import cv2
import pytest

pytestmark = pytest.mark.integration


def test_demo_drives_the_robot_shows_its_sensors_and_delivers_a_parcel(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["xiaomanlv", "demo", "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=180,
    )
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "nodes: sim, map_server, health_monitor, locker, kiosk" in out
    prior = re.search(
        r"prior map \(map_server, latched\): grid (\d+) x (\d+) cells .*, (\d+) stops", out
    )
    assert prior is not None and int(prior.group(1)) > 1000 and int(prior.group(3)) == 14
    rates = {m[0]: float(m[1]) for m in re.findall(r"^\s+(/\S+)\s+([\d.]+) Hz", out, re.M)}
    assert rates["/lidar/points"] == pytest.approx(10.0, rel=0.2)
    assert rates["/imu/data"] == pytest.approx(100.0, rel=0.2)
    assert rates["/wheel/odom"] == pytest.approx(50.0, rel=0.2)
    assert rates["/gnss/fix"] == pytest.approx(5.0, rel=0.3)
    assert rates["/ultrasonic/*"] == pytest.approx(20.0, rel=0.2)
    driven = float(re.search(r"drove ([\d.]+) m", out).group(1))  # type: ignore[union-attr]
    assert driven > 3.0, "the timed commands must move the robot"
    assert "health monitor (/health/get): OK" in out
    assert "wait_until_healthy: healthy=True" in out
    assert re.search(r"kiosk, wrong code: That code did not open a door", out)
    assert re.search(r"kiosk, right code: Door \d+ is open", out)
    events = re.search(r"locker events: (.*)", out).group(1).split(", ")  # type: ignore[union-attr]
    assert "delivered" in events and "alarm" not in events
    assert "shutdown: clean" in out
    picture = cv2.imread(str(tmp_path / "sim.png"))
    assert picture is not None and picture.shape[0] > 500
