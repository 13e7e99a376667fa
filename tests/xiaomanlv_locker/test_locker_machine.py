"""The compartment state machine: table, rollback, and the docs diagram generated from it."""

from __future__ import annotations

from pathlib import Path

import pytest

from xiaomanlv_locker.machine import TRANSITIONS, Event, State, TransitionError, mermaid, next_state


def test_happy_path_empty_to_delivered() -> None:
    state = State.EMPTY
    for event in (Event.LOAD, Event.ARM, Event.CODE_ACCEPTED, Event.CLOSED_TAKEN):
        state = next_state(state, event)
    assert state is State.DELIVERED
    assert next_state(state, Event.LOAD) is State.LOADED


def test_closed_with_parcel_goes_back_to_available_or_loaded() -> None:
    assert next_state(State.OPEN, Event.CLOSED_KEPT) is State.AVAILABLE
    assert next_state(State.OPEN, Event.CLOSED_KEPT_AWAY) is State.LOADED
    assert next_state(State.OPEN, Event.CLOSED_REMOVED) is State.RETURNED


def test_code_never_opens_a_compartment_that_is_not_available() -> None:
    for state in State:
        if state is State.AVAILABLE:
            continue
        with pytest.raises(TransitionError, match="code_accepted is not allowed"):
            next_state(state, Event.CODE_ACCEPTED)


def test_unlock_failed_returns_to_the_state_before_open() -> None:
    assert next_state(State.OPEN, Event.UNLOCK_FAILED, State.AVAILABLE) is State.AVAILABLE
    with pytest.raises(TransitionError, match="unlock_failed in state loaded"):
        next_state(State.LOADED, Event.UNLOCK_FAILED, State.AVAILABLE)


def test_docs_diagram_holds_every_transition(repo: Path) -> None:
    docs = (repo / "docs" / "locker.md").read_text()
    assert "stateDiagram-v2" in docs
    for (source, event), target in TRANSITIONS.items():
        line = f"{source.value} --> {target.value}: {event.value}"
        assert line in mermaid()
        assert line in docs, f"docs/locker.md misses '{line}'"
