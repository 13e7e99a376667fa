"""The compartment state machine: an explicit transition table, nothing else.

A finite-state machine in the table-driven style (Harel statecharts reduced to flat states;
the diagram in docs/locker.md is generated from :data:`TRANSITIONS` and a test keeps them equal).
The locker facade (:mod:`xiaomanlv_locker.locker`) is the only caller; it decides *when* an
event happens (a valid code, a door that closed, ...), this module decides *what* it leads to.
Faults (door_left_open, jammed, lock_failed, sensor_disagree, forced_open) are orthogonal to the
state: a compartment keeps its logical state and carries a fault flag until it clears.
"""

from __future__ import annotations

from enum import StrEnum


class State(StrEnum):
    EMPTY = "empty"  # no parcel; free for loading
    LOADED = "loaded"  # a parcel inside, locked, not at its stop (or its stop not armed)
    AVAILABLE = "available"  # loaded, and the robot is parked at the parcel's armed stop
    OPEN = "open"  # unlocked after a valid code or an operator override
    DELIVERED = "delivered"  # the recipient took the parcel and closed the door; free again
    RETURNED = "returned"  # an operator took the parcel out (no-show back at the station)


class Event(StrEnum):
    LOAD = "load"  # operator loads a parcel (door unlocked for loading)
    ARM = "arm"  # robot parked at the parcel's stop, stop armed
    DISARM = "disarm"  # robot leaves the stop (or starts moving)
    CODE_ACCEPTED = "code_accepted"  # a valid, unexpired, unused code for this compartment
    OPERATOR_OPEN = "operator_open"  # override with a valid operator credential
    UNLOCK_FAILED = "unlock_failed"  # the lock did not release (jammed): back where it was
    CLOSED_TAKEN = "closed_taken"  # door closed, parcel gone, opened by the recipient
    CLOSED_REMOVED = "closed_removed"  # door closed, parcel gone, opened by an operator
    CLOSED_EMPTY = "closed_empty"  # door closed, no parcel before or after (operator check)
    CLOSED_KEPT = "closed_kept"  # door closed, parcel still inside, its stop armed
    CLOSED_KEPT_AWAY = "closed_kept_away"  # door closed, parcel still inside, stop not armed


FREE = frozenset({State.EMPTY, State.DELIVERED, State.RETURNED})  # may be loaded
HOLDS_PARCEL = frozenset({State.LOADED, State.AVAILABLE})

TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.EMPTY, Event.LOAD): State.LOADED,
    (State.DELIVERED, Event.LOAD): State.LOADED,
    (State.RETURNED, Event.LOAD): State.LOADED,
    (State.LOADED, Event.ARM): State.AVAILABLE,
    (State.AVAILABLE, Event.DISARM): State.LOADED,
    (State.AVAILABLE, Event.CODE_ACCEPTED): State.OPEN,
    (State.EMPTY, Event.OPERATOR_OPEN): State.OPEN,
    (State.DELIVERED, Event.OPERATOR_OPEN): State.OPEN,
    (State.RETURNED, Event.OPERATOR_OPEN): State.OPEN,
    (State.LOADED, Event.OPERATOR_OPEN): State.OPEN,
    (State.AVAILABLE, Event.OPERATOR_OPEN): State.OPEN,
    (State.OPEN, Event.CLOSED_TAKEN): State.DELIVERED,
    (State.OPEN, Event.CLOSED_REMOVED): State.RETURNED,
    (State.OPEN, Event.CLOSED_EMPTY): State.EMPTY,
    (State.OPEN, Event.CLOSED_KEPT): State.AVAILABLE,
    (State.OPEN, Event.CLOSED_KEPT_AWAY): State.LOADED,
}

# UNLOCK_FAILED returns to the state before OPEN; it is the one history transition.
ROLLBACK_TARGETS = frozenset(
    {State.EMPTY, State.DELIVERED, State.RETURNED, State.LOADED, State.AVAILABLE}
)


class TransitionError(ValueError):
    """An event that the current state does not accept; names both."""


def next_state(state: State, event: Event, previous: State | None = None) -> State:
    """The state after ``event`` in ``state``.

    ``previous`` is the state before OPEN, needed only for :attr:`Event.UNLOCK_FAILED`.

    Raises:
        TransitionError: the pair is not in :data:`TRANSITIONS`.
    """
    if event is Event.UNLOCK_FAILED:
        if state is State.OPEN and previous in ROLLBACK_TARGETS:
            return previous
        raise TransitionError(f"unlock_failed in state {state.value} (before: {previous})")
    target = TRANSITIONS.get((state, event))
    if target is None:
        raise TransitionError(f"event {event.value} is not allowed in state {state.value}")
    return target


def mermaid() -> str:
    """The transition table as a Mermaid ``stateDiagram-v2`` (what docs/locker.md shows)."""
    lines = ["stateDiagram-v2", "    [*] --> empty"]
    for (source, event), target in TRANSITIONS.items():
        lines.append(f"    {source.value} --> {target.value}: {event.value}")
    lines.append("    open --> available: unlock_failed (jammed, back to the state before)")
    return "\n".join(lines)
