"""The locker's fair lock: arrival order, re-entrancy, misuse."""

from __future__ import annotations

import threading
import time

import pytest

from xiaomanlv_locker.fair_lock import FairLock


def wait_for_waiters(lock: FairLock, count: int) -> None:
    for _ in range(10_000):  # a thread has to be scheduled; no timing is asserted
        if lock.waiting() == count:
            return
        time.sleep(0.001)
    raise AssertionError(f"{count} waiter(s) never queued")


def test_a_waiter_goes_before_the_owner_takes_it_again() -> None:
    lock = FairLock()
    order: list[str] = []

    def waiter(name: str) -> None:
        with lock:
            order.append(name)

    lock.acquire()
    first = threading.Thread(target=waiter, args=("first",))
    first.start()
    wait_for_waiters(lock, 1)
    second = threading.Thread(target=waiter, args=("second",))
    second.start()
    wait_for_waiters(lock, 2)
    lock.release()
    with lock:  # asks again at once, as a tick does between two compartments
        order.append("owner")
    first.join()
    second.join()
    assert order == ["first", "second", "owner"]


def test_reentrant_for_its_owner_only() -> None:
    lock = FairLock()
    with lock:
        with lock:
            assert lock.owned() and lock.waiting() == 0
        assert lock.owned()
        seen: list[bool] = []
        other = threading.Thread(target=lambda: seen.append(lock.owned()))
        other.start()
        other.join()
        assert seen == [False]
    assert not lock.owned()
    with pytest.raises(RuntimeError, match="does not hold it"):
        lock.release()


def test_handover_serves_the_queue_then_returns_the_lock() -> None:
    lock = FairLock()
    order: list[str] = []

    def waiter() -> None:
        with lock:
            order.append("waiter")

    with lock:
        assert not lock.handover()  # nobody waits
        other = threading.Thread(target=waiter)
        other.start()
        wait_for_waiters(lock, 1)
        with lock:
            assert not lock.handover()  # nested: the lock stays
        assert lock.handover()
        order.append("owner")
        assert lock.owned()
    other.join()
    assert order == ["waiter", "owner"]
    with pytest.raises(RuntimeError, match="does not hold it"):
        lock.handover()
