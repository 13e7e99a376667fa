"""The locker facade end to end on the real store and the simulated driver (fake clock)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from locker_rig import OPERATOR, Rig

from xiaomanlv_locker.machine import State
from xiaomanlv_locker.notify import read_notifications


def state(rig: Rig, number: int) -> str:
    return rig.locker.statuses()[number - 1].state


def kinds(rig: Rig) -> list[str]:
    return [e.kind for e in rig.locker.store.events_since(0)]


def deliver(rig: Rig, pid: str, stop: str = "A") -> int:
    rig.locker.arm_stop(stop, True)
    result = rig.locker.submit_code("k1", rig.code(pid))
    assert result.success, result.message
    rig.driver.take_parcel(result.compartment)
    rig.driver.close_door(result.compartment)
    rig.locker.tick()
    return result.compartment


def test_full_delivery(rig: Rig) -> None:
    number = rig.load("p1")
    assert state(rig, number) == "loaded"
    armed = rig.locker.arm_stop("A", True)
    assert armed.success and armed.compartments == (number,)
    assert deliver(rig, "p1") == number
    view = rig.locker.statuses()[number - 1]
    assert (view.state, view.door_closed, view.locked, view.parcel_present) == (
        "delivered",
        True,
        True,
        False,
    )
    parcel = rig.locker.store.read().parcel("p1")
    assert parcel is not None and parcel.status == "delivered"
    assert {
        "loaded",
        "notified",
        "load_confirmed",
        "armed",
        "code_accepted",
        "opened",
        "delivered",
        "locked",
    } <= set(kinds(rig))
    assert rig.locker.store.verify_audit() is None


def test_code_never_appears_in_db_or_audit(rig: Rig) -> None:
    rig.load("p1")
    code = rig.code("p1")
    raw = rig.config.path("db").read_bytes()
    wal = rig.config.path("db").with_name("locker.db-wal")
    raw += wal.read_bytes() if wal.exists() else b""
    assert code.encode() not in raw
    assert all(code not in e.detail for e in rig.locker.store.events_since(0))


def test_smallest_fitting_compartment_is_assigned(rig: Rig) -> None:
    assert rig.load("s", size="small") == 1
    assert rig.load("m", size="medium") == 21
    assert rig.load("l", size="large") == 41
    for k in range(19):
        rig.load(f"s{k}", size="small")
    assert rig.load("s-overflow", size="small") == 22  # smalls full: a medium one


def test_wrong_code_then_right_code(rig: Rig) -> None:
    rig.load("p1")
    rig.locker.arm_stop("A", True)
    wrong = rig.locker.submit_code("k1", "00000000" if rig.code("p1") != "00000000" else "1" * 8)
    assert not wrong.success and wrong.message == "wrong code"
    assert deliver(rig, "p1") == 1


def test_code_works_once(rig: Rig) -> None:
    rig.load("p1")
    rig.locker.arm_stop("A", True)
    code = rig.code("p1")
    assert rig.locker.submit_code("k1", code).success
    again = rig.locker.submit_code("k2", code)
    assert not again.success and again.compartment == 0


def test_kiosk_backoff_and_stop_permanent_lockout(make_rig: Any) -> None:
    rig = make_rig(
        kiosk_free_attempts=2, stop_free_attempts=100, stop_max_failures=4, backoff_base=10.0
    )
    rig.load("p1")
    rig.locker.arm_stop("A", True)
    bad = "9" * 8 if rig.code("p1") != "9" * 8 else "8" * 8
    assert rig.locker.submit_code("k1", bad).retry_after == 0.0
    second = rig.locker.submit_code("k1", bad)
    assert second.retry_after == pytest.approx(10.0)
    refused = rig.locker.submit_code("k1", rig.code("p1"))  # even the right code waits
    assert not refused.success and refused.retry_after > 0.0
    rig.clock.advance(11.0)
    rig.parked()
    assert rig.locker.submit_code("k2", bad).retry_after == 0.0
    fourth = rig.locker.submit_code("k3", bad)
    assert math.isinf(fourth.retry_after)  # 4 failures at stop A: locked for good
    assert not rig.locker.submit_code("k4", rig.code("p1")).success
    assert "lockout" in kinds(rig)


def test_no_door_opens_while_moving_or_with_stale_odometry(rig: Rig) -> None:
    rig.load("p1")
    rig.locker.arm_stop("A", True)
    rig.locker.observe_odom(0.01, 0.5)  # turning on the spot counts as moving
    assert "moving" in rig.locker.submit_code("k1", rig.code("p1")).message
    rig.parked()
    rig.clock.advance(rig.config.odom_timeout + 0.1)
    assert "moving" in rig.locker.submit_code("k1", rig.code("p1")).message
    assert rig.driver.read(1).locked
    rig.parked()
    assert rig.locker.submit_code("k1", rig.code("p1")).success


def test_measured_motion_disarms_and_arming_fails_while_moving(rig: Rig) -> None:
    rig.load("p1")
    rig.locker.arm_stop("A", True)
    rig.drive()
    rig.locker.tick()
    assert state(rig, 1) == "loaded" and rig.locker.armed_stop() == ""
    assert not rig.locker.arm_stop("A", True).success


def test_code_only_opens_at_its_own_stop(rig: Rig) -> None:
    rig.load("p1", stop="A")
    rig.load("p2", stop="B")
    rig.locker.arm_stop("B", True)
    assert not rig.locker.submit_code("k1", rig.code("p1")).success
    assert state(rig, 1) == "loaded" and state(rig, 2) == "available"
    assert rig.locker.arm_stop("A", True).compartments == (1,)
    assert state(rig, 2) == "loaded"  # arming A disarmed B


def test_expired_code_is_refused(rig: Rig) -> None:
    rig.load("p1")
    rig.clock.advance(rig.config.code_ttl + 1.0)
    rig.parked()
    rig.locker.arm_stop("A", True)
    result = rig.locker.submit_code("k1", rig.code("p1"))
    assert not result.success and "expired" in result.message


def test_closed_with_parcel_inside_goes_back_to_available_with_a_new_code(rig: Rig) -> None:
    rig.load("p1")
    rig.locker.arm_stop("A", True)
    first = rig.code("p1")
    assert rig.locker.submit_code("k1", first).success
    rig.driver.close_door(1)  # changed their mind
    rig.locker.tick()
    assert state(rig, 1) == "available" and rig.driver.read(1).locked
    second = rig.code("p1")
    assert second != first
    assert [n.generation for n in read_notifications(rig.config.path("notify"))] == [1, 2]
    assert not rig.locker.submit_code("k1", first).success
    assert rig.locker.submit_code("k1", second).success


def test_jammed_door_rolls_back_and_keeps_the_code(rig: Rig) -> None:
    rig.load("p1")
    rig.locker.arm_stop("A", True)
    rig.driver.inject("jammed", 1, duration=5.0)
    result = rig.locker.submit_code("k1", rig.code("p1"))
    assert not result.success and "jammed" in result.message
    assert state(rig, 1) == "available" and rig.locker.statuses()[0].fault == "jammed"
    rig.clock.advance(6.0)
    rig.parked()
    assert rig.locker.submit_code("k1", rig.code("p1")).success
    assert rig.locker.statuses()[0].fault == ""


def test_lock_that_fails_raises_a_fault_and_is_retried(rig: Rig) -> None:
    rig.load("p1")
    rig.locker.arm_stop("A", True)
    rig.driver.inject("lock_fails", 1, duration=3.0)
    assert rig.locker.submit_code("k1", rig.code("p1")).success
    rig.driver.take_parcel(1)
    rig.driver.close_door(1)
    rig.locker.tick()
    assert rig.locker.statuses()[0].fault == "lock_failed" and state(rig, 1) == "delivered"
    rig.clock.advance(4.0)
    rig.locker.tick()
    view = rig.locker.statuses()[0]
    assert view.locked and view.fault == ""


def test_forced_door_while_driving_raises_alarm(rig: Rig) -> None:
    rig.load("p1")
    rig.drive()
    rig.driver.inject("forced_open", 1)
    rig.locker.tick()
    assert rig.locker.statuses()[0].fault == "forced_open"
    alarms = [e for e in rig.locker.store.events_since(0) if e.kind == "alarm"]
    assert {e.compartment for e in alarms} == {1} and len(alarms) == 2  # moving + forced


def test_sensor_disagreement_is_a_fault_that_clears(rig: Rig) -> None:
    rig.load("p1")
    rig.driver.inject("sensor_disagree", 1, duration=2.0)
    rig.locker.tick()
    assert rig.locker.statuses()[0].fault == "sensor_disagree"
    rig.clock.advance(3.0)
    rig.locker.tick()
    assert rig.locker.statuses()[0].fault == ""


def test_door_left_open_alert(rig: Rig) -> None:
    rig.load("p1")
    rig.locker.arm_stop("A", True)
    assert rig.locker.submit_code("k1", rig.code("p1")).success
    rig.clock.advance(rig.config.door_open_timeout + 1.0)
    rig.parked()
    rig.locker.tick()
    assert rig.locker.statuses()[0].fault == "door_left_open"
    rig.driver.take_parcel(1)
    rig.driver.close_door(1)
    rig.locker.tick()
    assert rig.locker.statuses()[0].fault == "" and state(rig, 1) == "delivered"


def test_operator_returns_a_no_show_and_needs_a_credential(rig: Rig) -> None:
    rig.load("p1")
    rig.parked()
    denied = rig.locker.operator_open(1, OPERATOR[0], "wrong", "return")
    assert not denied.success and "operator_credential" in denied.message
    assert rig.locker.operator_open(1, *OPERATOR, "no-show").success
    rig.driver.take_parcel(1)
    rig.driver.close_door(1)
    rig.locker.tick()
    assert state(rig, 1) == "returned"
    parcel = rig.locker.store.read().parcel("p1")
    assert parcel is not None and parcel.status == "returned"
    assert "operator_rejected" in kinds(rig)


def test_load_is_idempotent_and_refuses_conflicts(rig: Rig) -> None:
    number = rig.load("p1")
    again = rig.locker.load_parcel("p1", "p1@x", "A", "small", *OPERATOR)
    assert again.success and again.compartment == number and again.message == "already loaded"
    clash = rig.locker.load_parcel("p1", "other@x", "A", "small", *OPERATOR)
    assert not clash.success and "field 'parcel_id' = 'p1'" in clash.message


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda lk: lk.load_parcel("", "r", "A", "small", *OPERATOR), "field 'parcel_id' is empty"),
        (lambda lk: lk.load_parcel("p", "r", "A", "huge", *OPERATOR), "field 'size' = 'huge'"),
        (lambda lk: lk.submit_code("", "12345678"), "field 'kiosk_id' is empty"),
        (lambda lk: lk.operator_open(99, *OPERATOR, "x"), "field 'compartment' = 99"),
        (lambda lk: lk.arm_stop("A\x07", True), "control characters"),
    ],
)
def test_malformed_requests_are_counted(rig: Rig, call: Any, match: str) -> None:
    rig.parked()
    result = call(rig.locker)
    assert not result.success
    assert match in result.message
    assert rig.locker.counts()["malformed_requests"] == 1


def test_restart_confirms_an_unlock_that_happened(rig: Rig) -> None:
    rig.load("p1")
    rig.locker.arm_stop("A", True)
    with rig.locker.store.transaction(rig.clock.time()) as tx:  # crash after step 1 ...
        tx.update_compartment(
            1, state=State.OPEN, intent="unlock", prev_state="available", opened_by="recipient"
        )
        tx.update_parcel("p1", code_used=True)
    rig.driver.unlock(1)  # ... and after step 2
    locker = rig.restart()
    assert locker.statuses()[0].state == "open"
    assert locker.store.read().compartment(1).intent == ""
    rig.driver.take_parcel(1)
    rig.driver.close_door(1)
    locker.tick()
    assert locker.statuses()[0].state == "delivered"


def test_restart_rolls_back_an_unlock_that_did_not_happen(rig: Rig) -> None:
    rig.load("p1")
    rig.locker.arm_stop("A", True)
    code = rig.code("p1")
    with rig.locker.store.transaction(rig.clock.time()) as tx:
        tx.update_compartment(
            1, state=State.OPEN, intent="unlock", prev_state="available", opened_by="recipient"
        )
        tx.update_parcel("p1", code_used=True)
    locker = rig.restart()
    assert locker.statuses()[0].state == "available"
    rig.parked()
    assert locker.submit_code("k1", code).success  # the door never opened: the code is kept


def test_restart_reissues_a_code_that_may_not_have_been_sent(rig: Rig) -> None:
    rig.load("p1")
    with rig.locker.store.transaction(rig.clock.time()) as tx:
        tx.update_parcel("p1", notified=False)
    first = rig.code("p1")
    locker = rig.restart()
    assert rig.code("p1") != first
    parcel = locker.store.read().parcel("p1")
    assert parcel is not None and parcel.generation == 2 and parcel.notified


def test_the_tick_checkpoints_the_wal_every_hundred_commits(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xiaomanlv_locker import locker as core

    store = rig.locker.store
    assert store.connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    calls: list[tuple[int, int]] = []
    checkpoint = store.checkpoint

    def counted() -> tuple[int, int]:
        calls.append(checkpoint())
        return calls[-1]

    monkeypatch.setattr(store, "checkpoint", counted)
    before = rig.locker._commits
    for k in range(45):
        rig.load(f"p{k}", size="small" if k < 20 else "medium")
    commits = rig.locker._commits - before
    assert commits > 2 * core.CHECKPOINT_COMMITS
    expected = commits // core.CHECKPOINT_COMMITS
    assert len(calls) in (expected - 1, expected)  # the count at the start was not 0
    assert all(copied == pages for pages, copied in calls)
