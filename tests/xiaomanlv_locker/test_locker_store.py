"""SQLite store: WAL+FULL, schema integrity rules, audited state changes, layout guard."""

from __future__ import annotations

from pathlib import Path

import pytest

from xiaomanlv_locker.machine import State
from xiaomanlv_locker.store import Parcel, Store, StoreError

KEY = b"k" * 32


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(tmp_path / "l.db", KEY)
    s.init_layout(["small", "small", "large"], 1.0)
    return s


def parcel(pid: str, compartment: int) -> Parcel:
    return Parcel(pid, "r", "A", "small", compartment, "loaded", b"t" * 32, 1, 99.0)


def test_wal_and_full_sync(store: Store) -> None:
    conn = store.connection
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_state_change_is_audited_in_the_same_transaction(store: Store) -> None:
    with store.transaction(5.0) as tx:
        tx.insert_parcel(parcel("p1", 1))
        tx.update_compartment(1, "loading", state=State.LOADED, parcel_id="p1")
        tx.update_compartment(1, intent="unlock")  # no state change: no state row
    states = [e for e in store.events_since(0) if e.kind == "state"]
    assert [(e.compartment, e.parcel_id, e.stop, e.detail) for e in states] == [
        (1, "p1", "A", "empty -> loaded (loading)")
    ]
    assert store.verify_audit() is None


def test_rollback_leaves_nothing(store: Store) -> None:
    with pytest.raises(RuntimeError, match="boom"), store.transaction(5.0) as tx:
        tx.update_compartment(2, state=State.LOADED)
        raise RuntimeError("boom")
    assert store.read().compartment(2).state is State.EMPTY
    assert [e.kind for e in store.events_since(0)] == ["layout"]


def test_a_parcel_exists_once_and_a_compartment_holds_one(store: Store) -> None:
    with store.transaction(1.0) as tx:
        tx.insert_parcel(parcel("p1", 1))
    with pytest.raises(StoreError, match="parcel 'p1' refused"), store.transaction(1.0) as tx:
        tx.insert_parcel(parcel("p1", 2))
    with pytest.raises(StoreError, match="parcel 'p2' refused"), store.transaction(1.0) as tx:
        tx.insert_parcel(parcel("p2", 1))
    with store.transaction(1.0) as tx:
        tx.update_parcel("p1", status="delivered")
        tx.insert_parcel(parcel("p2", 1))  # delivered parcels free the compartment
    assert [p.parcel_id for p in store.read().parcels(status="loaded")] == ["p2"]


def test_other_layout_is_refused(tmp_path: Path, store: Store) -> None:
    store.close()
    again = Store(tmp_path / "l.db", KEY)
    with pytest.raises(StoreError, match="stored layout has 3 compartments"):
        again.init_layout(["small"] * 50, 2.0)


def test_meta_and_attempts_round_trip(store: Store) -> None:
    from xiaomanlv_locker.codes import Attempts

    with store.transaction(1.0) as tx:
        tx.set_meta("armed_stop", "A")
        tx.set_attempts("stop:A", Attempts(3, 2, 50.0, True))
    reader = store.read()
    assert reader.meta("armed_stop") == "A"
    assert reader.attempts("stop:A") == Attempts(3, 2, 50.0, True)
    assert reader.attempts("stop:B") == Attempts()


def test_manual_checkpoints_leave_the_wal_to_the_owner(tmp_path: Path) -> None:
    store = Store(tmp_path / "c.db", KEY)
    store.manual_checkpoints()
    store.init_layout(["small"] * 10, 1.0)
    assert store.connection.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 0
    for k in range(50):
        with store.transaction(float(k)) as tx:
            tx.update_compartment(1 + k % 10, retries=k)
    pages, copied = store.checkpoint()
    assert pages >= 50 and copied == pages
    with store.transaction(400.0) as tx:
        tx.update_compartment(1, retries=1)
    pages, copied = store.checkpoint()  # the WAL restarted after the full checkpoint
    assert pages < 10 and copied == pages
    store.close()
    again = Store(tmp_path / "c.db", KEY)
    assert again.read().compartment(1).retries == 1
    again.close()
