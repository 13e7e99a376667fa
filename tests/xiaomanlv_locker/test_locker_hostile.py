"""The locker core under hostile input: stops of the site, motion sources, operator guessing,
audit floods, file modes (issue 11)."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
from locker_rig import OPERATOR, Rig

from xiaomanlv_locker import locker as locker_module
from xiaomanlv_locker.codes import Attempts
from xiaomanlv_locker.store import Store

WRONG = "not the credential"


def audit_rows(rig: Rig) -> int:
    return len(rig.locker.store.events_since(0))


def kinds(rig: Rig) -> list[str]:
    return [e.kind for e in rig.locker.store.events_since(0)]


# ---------------------------------------------------------------------------- stops
def test_load_and_arm_only_for_the_sites_stops(rig: Rig) -> None:
    rig.parked()
    moon = rig.locker.load_parcel("p1", "r@x", "moon", "small", *OPERATOR)
    assert not moon.success
    assert "field 'stop' = 'moon' is not a stop of this site" in moon.message
    assert "/map/stops" in moon.message
    arm = rig.locker.arm_stop("moon", True)
    assert not arm.success and "field 'stop' = 'moon'" in arm.message
    assert rig.locker.rejections() == {"load_parcel": 1, "arm_stop": 1}
    assert rig.locker.arm_stop("moon", False).success  # disarming a name is harmless
    rig.load("p2", stop="B")


def test_until_the_stops_are_known_nothing_loads_or_arms(rig: Rig) -> None:
    rig.locker.set_stops(None)
    rig.parked()
    load = rig.locker.load_parcel("p1", "r@x", "A", "small", *OPERATOR)
    assert not load.success and "stops are not known yet" in load.message
    assert "not known yet" in rig.locker.arm_stop("A", True).message
    rig.locker.set_stops({"A": (0.0, 0.0)})
    rig.load("p1")


def test_a_stop_the_map_marks_unreachable_takes_no_parcel(rig: Rig) -> None:
    why = "no route edge within 5 m (nearest walkway 12.3 m away)"
    rig.locker.set_stops({"A": (0.0, 0.0), "B": (100.0, 0.0)}, {"B": why})
    rig.parked()
    load = rig.locker.load_parcel("p1", "r@x", "B", "small", *OPERATOR)
    assert not load.success and "'B': the map marks it unreachable" in load.message
    assert why in load.message
    assert "unreachable" in rig.locker.arm_stop("B", True).message
    assert rig.locker.rejections() == {"load_parcel": 1, "arm_stop": 1}
    rig.load("p2", stop="A")  # the others serve as before


def test_arming_needs_a_fresh_localised_pose_near_the_stop(rig: Rig) -> None:
    rig.load("p1", stop="B")  # B is at (100, 0)
    rig.locker.observe_pose(60.0, 0.0)
    far = rig.locker.arm_stop("B", True)
    assert not far.success and "40.0 m from stop 'B'" in far.message
    rig.locker.observe_pose(101.0, 1.0)
    assert rig.locker.arm_stop("B", True).success
    rig.locker.arm_stop("B", False)
    rig.locker.observe_pose(60.0, 0.0)
    rig.clock.advance(rig.config.pose_timeout + 0.1)  # localisation lost: odometry decides
    rig.parked()
    assert rig.locker.arm_stop("B", True).success


def test_a_pose_that_is_not_finite_is_counted_not_used(rig: Rig) -> None:
    assert not rig.locker.observe_pose(float("nan"), 0.0)
    assert rig.locker.rejections() == {"pose": 1}


# ---------------------------------------------------------------------------- motion sources
def test_two_odometry_sources_that_disagree_count_as_moving(rig: Rig) -> None:
    rig.load("p1")
    rig.locker.set_odom_sources(2)
    rig.locker.observe_odom(1.0, 0.0)  # the real wheels: driving
    rig.locker.observe_odom(0.0, 0.0)  # a second publisher: "standing still"
    arm = rig.locker.arm_stop("A", True)
    assert not arm.success and "publishers of /wheel/odom disagree" in arm.message
    rig.clock.advance(rig.config.odom_timeout + 0.1)
    rig.parked()
    assert rig.locker.arm_stop("A", True).success  # both agree again


def test_one_odometry_source_that_stops_is_parked_at_once(rig: Rig) -> None:
    rig.load("p1")
    rig.locker.observe_odom(1.0, 0.0)
    rig.locker.observe_odom(0.0, 0.0)
    assert rig.locker.arm_stop("A", True).success


def test_imu_rotation_while_odometry_stands_still_is_not_parked(rig: Rig) -> None:
    rig.load("p1")
    rig.locker.arm_stop("A", True)
    for _ in range(5):
        rig.locker.observe_imu(0.5)  # [rad/s]
    assert rig.locker.motion_problem() == "the IMU measures rotation while odometry stands still"
    rig.locker.tick()  # measured rotation disarms, as measured driving does
    assert rig.locker.armed_stop() == ""
    refused = rig.locker.arm_stop("A", True)
    assert not refused.success and "IMU" in refused.message
    rig.clock.advance(rig.config.odom_timeout + 0.1)
    rig.parked()
    for _ in range(5):
        rig.locker.observe_imu(0.002)  # gyro noise
    assert rig.locker.arm_stop("A", True).success


# ---------------------------------------------------------------------------- operators
@pytest.fixture
def scrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = locker_module.verify_credential

    def counting(credential: str, stored: Any) -> bool:
        calls.append(credential)
        return real(credential, stored)

    monkeypatch.setattr(locker_module, "verify_credential", counting)
    return calls


def test_rotating_operator_ids_meet_the_locker_wide_budget(
    rig: Rig, scrypt_calls: list[str]
) -> None:
    rig.parked()
    free = rig.config.operator_global_free_attempts
    for k in range(free):
        result = rig.locker.load_parcel(f"p{k}", "r@x", "A", "small", f"guess-{k}", WRONG)
        assert result.message == "field 'operator_credential' rejected"
    assert len(scrypt_calls) == free  # unknown ids cost a scrypt too (no timing oracle)
    locked = rig.locker.load_parcel("px", "r@x", "A", "small", "guess-new", WRONG)
    assert not locked.success and "locked out for another 10 s" in locked.message
    right = rig.locker.load_parcel("px", "r@x", "A", "small", *OPERATOR)
    assert not right.success and "locked out" in right.message  # a lockout is a lockout
    assert len(scrypt_calls) == free  # answered without scrypt
    rig.clock.advance(10.0)
    rig.parked()
    assert not rig.locker.load_parcel("px", "r@x", "A", "small", "guess-x", WRONG).success
    again = rig.locker.load_parcel("px", "r@x", "A", "small", *OPERATOR)
    assert "locked out for another 20 s" in again.message  # backoff doubles


def test_one_operator_id_is_locked_after_its_own_free_attempts(rig: Rig) -> None:
    rig.parked()
    for _ in range(rig.config.operator_free_attempts):
        assert not rig.locker.operator_open(1, OPERATOR[0], WRONG, "guess").success
    refused = rig.locker.operator_open(1, OPERATOR[0], OPERATOR[1], "mine")
    assert "locked out" in refused.message
    other = rig.locker.load_parcel("p1", "r@x", "A", "small", "op2", WRONG)
    assert other.message == "field 'operator_credential' rejected"  # another id still tries
    assert rig.locker.operator_retry_after(OPERATOR[0]) == pytest.approx(10.0)
    rig.clock.advance(10.0)
    rig.parked()
    assert rig.locker.operator_open(1, *OPERATOR, "back").success


def test_operator_lockouts_survive_a_restart(rig: Rig) -> None:
    rig.parked()
    for _ in range(rig.config.operator_free_attempts):
        rig.locker.operator_open(1, OPERATOR[0], WRONG, "guess")
    locker = rig.restart()
    locker.observe_odom(0.0, 0.0)
    assert "locked out" in locker.operator_open(1, *OPERATOR, "mine").message


def test_old_failures_are_forgotten_after_a_quiet_period() -> None:
    failed = Attempts().failed(100.0, 3, 10.0, 300.0).failed(101.0, 3, 10.0, 300.0)
    assert failed.consecutive == 2 and failed.last_failure == 101.0
    assert failed.forgotten(200.0, 3600.0) == failed
    assert failed.forgotten(101.0 + 3601.0, 3600.0).consecutive == 0


def test_operator_reason_with_control_characters_is_refused(rig: Rig) -> None:
    rig.parked()
    result = rig.locker.operator_open(1, *OPERATOR, "ok\n2026 forged audit line")
    assert not result.success and "field 'reason'" in result.message
    assert "x" * 201 not in rig.locker.operator_open(1, *OPERATOR, "x" * 201).message


# ---------------------------------------------------------------------------- audit floods
def test_refused_codes_during_a_lockout_are_one_row_per_window(make_rig: Any) -> None:
    rig = make_rig(kiosk_free_attempts=1, stop_free_attempts=1000)
    rig.load("p1")
    rig.locker.arm_stop("A", True)
    code = rig.code("p1")
    wrong = "0" * len(code) if code != "0" * len(code) else "1" * len(code)
    assert rig.locker.submit_code("k1", wrong).retry_after > 0.0  # kiosk k1 locked out
    before = audit_rows(rig)
    for _ in range(500):
        refused = rig.locker.submit_code("k1", wrong)
        assert not refused.success and refused.retry_after > 0.0
    assert audit_rows(rig) == before  # no synced row per refused code
    rig.clock.advance(rig.config.refusal_summary_window)
    rig.parked()
    rig.locker.tick()
    summary = rig.locker.store.events_since(before)
    assert [e.kind for e in summary] == ["code_refused"]
    assert summary[0].stop == "A" and "500 attempt(s) refused" in summary[0].detail
    assert "kiosk k1 x500" in summary[0].detail
    assert rig.locker.store.verify_audit() is None


def test_a_flood_from_rotating_kiosk_ids_stays_one_bounded_row(make_rig: Any) -> None:
    rig = make_rig(stop_free_attempts=1)
    rig.load("p1")
    rig.locker.arm_stop("A", True)
    rig.locker.submit_code("k0", "00000000" if rig.code("p1") != "00000000" else "11111111")
    before = audit_rows(rig)
    for k in range(300):
        assert not rig.locker.submit_code(f"kiosk-{k}", "12345678").success
    rig.locker.close()  # closing audits what is still tallied
    store = Store(rig.config.path("db"), rig.config.path("secret").read_bytes())
    try:
        rows = store.events_since(before)
    finally:
        store.close()
    assert len(rows) == 1 and "300 attempt(s)" in rows[0].detail
    assert ", 280 from others" in rows[0].detail and len(rows[0].detail) < 1000
    rig.locker = rig.open()  # the fixture closes it


def test_refused_operator_attempts_during_a_lockout_are_summarised(rig: Rig) -> None:
    rig.parked()
    for k in range(rig.config.operator_global_free_attempts):
        rig.locker.load_parcel("p", "r@x", "A", "small", f"first-{k}", WRONG)
    before = audit_rows(rig)
    for k in range(200):
        rig.locker.load_parcel("p", "r@x", "A", "small", f"intruder-{k}", WRONG)
    assert audit_rows(rig) == before
    assert rig.locker.flush_refusals(force=True) == 1
    (row,) = rig.locker.store.events_since(before)
    assert row.kind == "operator_refused" and "200 attempt(s) refused" in row.detail


def test_wrong_credentials_outside_a_lockout_stay_audited(rig: Rig) -> None:
    rig.parked()
    rig.locker.load_parcel("p", "r@x", "A", "small", "op1", WRONG)
    assert kinds(rig)[-1] == "operator_rejected"


# ---------------------------------------------------------------------------- file modes
def test_database_wal_shm_and_secret_are_private(tmp_path: Path) -> None:
    rig = Rig(tmp_path / "fresh" / "locker")
    try:
        rig.load("p1")
        db = rig.config.path("db")
        for path in (db, Path(f"{db}-wal"), Path(f"{db}-shm"), rig.config.path("secret")):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(db.parent.stat().st_mode) == 0o700
    finally:
        rig.locker.store.close()


def test_a_world_readable_database_is_tightened_at_start(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    sqlite3.connect(path).close()
    os.chmod(path, 0o644)
    store = Store(path, b"k" * 32)
    try:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert len(store.tightened) == 1 and "had mode 0644" in store.tightened[0]
    finally:
        store.close()


def test_a_database_from_before_operator_limits_opens(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE attempts (scope TEXT PRIMARY KEY, failures INTEGER NOT NULL, "
        "consecutive INTEGER NOT NULL, locked_until REAL NOT NULL, permanent INTEGER NOT NULL)"
    )
    conn.execute("INSERT INTO attempts VALUES ('stop:A', 3, 2, 50.0, 1)")
    conn.commit()
    conn.close()
    store = Store(path, b"k" * 32)
    try:
        assert store.read().attempts("stop:A") == Attempts(3, 2, 50.0, True, 0.0)
    finally:
        store.close()
