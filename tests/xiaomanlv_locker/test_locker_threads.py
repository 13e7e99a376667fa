"""The locker core called from two threads, as the node does (codes on their own thread)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from locker_rig import Rig

from xiaomanlv_locker.codes import CredentialHash
from xiaomanlv_locker.fair_lock import FairLock
from xiaomanlv_locker.machine import State


class InterleavingLock(FairLock):
    """Runs ``call`` on the tick's thread just before its ``nth`` outer acquisition.

    Deterministic stand-in for a service call served between two steps of a tick.
    """

    def __init__(self, nth: int, call: Callable[[], object]) -> None:
        super().__init__()
        self.countdown = nth
        self.call = call

    def acquire(self) -> None:
        if not self.owned():
            self.countdown -= 1
            if self.countdown == 0:
                self.call()
        super().acquire()


def test_a_code_served_between_two_steps_of_a_tick_is_no_forced_door(rig: Rig) -> None:
    first = rig.load("p1")
    second = rig.load("p2")
    rig.locker.arm_stop("A", True)
    code = rig.code("p2")
    results = []
    # outer acquisitions of a tick: 1 the poll and the read of every row, 2 compartment 1's step
    rig.locker.lock = InterleavingLock(2, lambda: results.append(rig.locker.submit_code("k", code)))
    rig.locker.tick()
    assert [r.compartment for r in results] == [second] and results[0].success
    views = rig.locker.statuses()
    assert views[second - 1].state == "open" and views[second - 1].fault == ""
    assert views[first - 1].state == "available"
    kinds = [e.kind for e in rig.locker.store.events_since(0)]
    assert "alarm" not in kinds  # a stale row would read the open door as forced
    rig.driver.take_parcel(second)
    rig.driver.close_door(second)
    rig.locker.tick()
    assert rig.locker.statuses()[second - 1].state == "delivered"


class HandoverLock(FairLock):
    """Runs ``call`` where a tick step hands the lock over, as if a caller had been queued."""

    def __init__(self, call: Callable[[], object]) -> None:
        super().__init__()
        self.call = call

    def handover(self) -> bool:
        self.call()
        return True


def test_a_code_served_while_a_tick_settles_a_door_is_seen_by_later_steps(rig: Rig) -> None:
    first = rig.load("p1")
    second = rig.load("p2")
    rig.locker.arm_stop("A", True)
    assert rig.locker.submit_code("k", rig.code("p1")).success
    rig.driver.take_parcel(first)
    rig.driver.close_door(first)
    code = rig.code("p2")
    results = []
    rig.locker.lock = HandoverLock(lambda: results.append(rig.locker.submit_code("k", code)))
    rig.locker.tick()  # compartment 1's step settles the delivery, hands over, then latches
    assert [r.compartment for r in results] == [second] and results[0].success
    views = rig.locker.statuses()
    assert (views[first - 1].state, views[first - 1].locked) == ("delivered", True)
    assert (views[second - 1].state, views[second - 1].fault) == ("open", "")
    assert "alarm" not in [e.kind for e in rig.locker.store.events_since(0)]


def test_ticks_and_codes_on_two_threads_keep_every_invariant(rig: Rig) -> None:
    pids = [f"p{k}" for k in range(8)]
    numbers = {pid: rig.load(pid) for pid in pids}
    rig.locker.arm_stop("A", True)
    codes = {pid: rig.code(pid) for pid in pids}
    done = threading.Event()
    errors: list[BaseException] = []

    def people() -> None:  # recipients take their parcels and close the doors
        for pid, number in numbers.items():
            if rig.driver.parcel_tag(number) == pid and not rig.driver.read(number).door_closed:
                rig.driver.take_parcel(number)
                rig.driver.close_door(number)

    def ticking() -> None:
        try:
            while not done.is_set():
                rig.parked()
                with rig.locker.lock:  # the people act on the tick's thread, as in the node
                    people()
                rig.locker.tick()
        except BaseException as err:  # pragma: no cover - reported below
            errors.append(err)

    ticker = threading.Thread(target=ticking)
    ticker.start()
    try:
        opened = []
        for pid in pids:
            wrong = rig.locker.submit_code("k", "1" * 8 if codes[pid] != "1" * 8 else "2" * 8)
            assert not wrong.success
            right = rig.locker.submit_code("k", codes[pid])
            assert right.success and right.compartment == numbers[pid], right.message
            opened.append(right.compartment)
    finally:
        done.set()
        ticker.join()
    assert not errors
    people()
    rig.locker.tick()
    reader = rig.locker.store.read()
    assert all(reader.compartment(n).state is State.DELIVERED for n in opened)
    assert all(not c.fault for c in reader.compartments())
    kinds = [e.kind for e in rig.locker.store.events_since(0)]
    assert kinds.count("delivered") == len(pids) and "alarm" not in kinds
    assert rig.locker.store.verify_audit() is None


def test_the_operator_scrypt_check_runs_without_the_lock(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xiaomanlv_locker import locker as core

    held: list[bool] = []
    real = core.verify_credential

    def watched(credential: str, stored: CredentialHash) -> bool:
        held.append(rig.locker.lock.owned())
        return real(credential, stored)

    monkeypatch.setattr(core, "verify_credential", watched)
    rig.load("p1")
    assert rig.locker.operator_open(1, "op1", "wrong", "test").message == (
        "field 'operator_credential' rejected"
    )
    assert held == [False, False]
