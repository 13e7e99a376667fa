"""Attempt limits of the kiosk's web clients: backoff, lockout and a per-minute ceiling.

Guessing is limited where it can be counted before the locker is asked: per client address
and per operator id as the kiosk sees them (the locker limits per kiosk, stop and operator
on its side). For each key (``"client:10.0.0.7"``, ``"operator:op-7"``) the limiter keeps:

- **Backoff** as the locker's :class:`xiaomanlv_locker.codes.Attempts` does: after
  ``free_attempts`` consecutive failures every further one locks the key for
  ``backoff_base * 2**k`` seconds (k = failures beyond the free ones), at most
  ``backoff_max``. A success clears the consecutive count, nothing else.
- **A ceiling**: at most ``per_minute`` failures in any 60 s, whatever succeeded in between,
  so no mix of right and wrong attempts raises the guessing rate above it.
- **Attempts in flight count as failures** until their answer is in, so a client cannot
  outrun the limits by sending many requests at once: a key admits a new attempt only if
  all the attempts already in flight failing would still leave it unlocked.

Failures are forgotten after ``forget_after`` seconds without one; at most ``max_keys``
keys are kept, the least recently used idle key (nothing in flight, not locked out) going
first, so a flood of made-up operator ids cannot grow the table or evict a lockout.

Token-bucket/backoff login throttling as in OWASP's Authentication Cheat Sheet ("Login
Throttling"): https://cheatsheetseries.owasp.org/cheatsheets/Authentication_Cheat_Sheet.html
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

WINDOW = 60.0  # [s] the ceiling's window
IN_FLIGHT_RETRY = 1.0  # [s] retry_after while earlier attempts of a key are unanswered


@dataclass
class _Key:
    consecutive: int = 0  # failures since the last success (or since forgotten)
    locked_until: float = 0.0  # [s] on the limiter's clock
    last_failure: float = -math.inf  # [s]
    failures: deque[float] = field(default_factory=deque)  # [s] failure times in the window
    in_flight: int = 0

    def idle(self, now: float) -> bool:
        return self.in_flight == 0 and self.locked_until <= now and not self.failures


@dataclass(frozen=True)
class Admission:
    """The limiter's answer to one attempt: admitted, or ``retry_after`` seconds to wait."""

    admitted: bool
    retry_after: float = 0.0  # [s] > 0 when refused
    key: str = ""  # the key that refused it ("" when admitted)
    keys: tuple[str, ...] = ()  # the keys an admitted attempt holds until :meth:`finish`


class AttemptLimiter:
    """Backoff, lockout and a per-minute ceiling per key. Thread-safe.

    Args:
        free_attempts: consecutive failures of a key before its first lockout.
        per_minute: most failures of a key in any 60 s.
        backoff_base: [s] first lockout; doubles per further failure.
        backoff_max: [s] longest lockout.
        forget_after: [s] a key's failures are forgotten after this long without one.
        clock: monotonic seconds (injectable for tests).
        max_keys: most keys kept.

    Raises:
        ValueError: a limit out of range, naming it.
    """

    def __init__(
        self,
        *,
        free_attempts: int,
        per_minute: int,
        backoff_base: float,
        backoff_max: float,
        forget_after: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 4096,
    ) -> None:
        if free_attempts < 1 or per_minute < 1 or max_keys < 1:
            raise ValueError(
                f"free_attempts = {free_attempts}, per_minute = {per_minute} and "
                f"max_keys = {max_keys} must each be at least 1"
            )
        if not 0.0 < backoff_base <= backoff_max <= forget_after:
            raise ValueError(
                f"need 0 < backoff_base ({backoff_base}) <= backoff_max ({backoff_max}) "
                f"<= forget_after ({forget_after})"
            )
        self.free_attempts = free_attempts
        self.per_minute = per_minute
        self.backoff_base = backoff_base  # [s]
        self.backoff_max = backoff_max  # [s]
        self.forget_after = forget_after  # [s]
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: OrderedDict[str, _Key] = OrderedDict()

    def begin(self, keys: Iterable[str]) -> Admission:
        """Admit one attempt for every key in ``keys``, or say how long to wait.

        An admitted attempt holds its keys until :meth:`finish`, which must follow (in a
        ``finally``) whatever the answer.
        """
        wanted = tuple(dict.fromkeys(keys))
        with self._lock:
            now = self._clock()
            for name in wanted:
                wait = self._wait(self._get(name, now), now)
                if wait > 0.0:
                    return Admission(False, wait, name)
            for name in wanted:
                self._get(name, now).in_flight += 1
            return Admission(True, keys=wanted)

    def finish(self, admission: Admission, *, failed: bool | None) -> None:
        """The answer to an admitted attempt: ``failed`` True (a wrong guess), False (a
        success: the consecutive count clears), None (no verdict, e.g. no answer)."""
        with self._lock:
            now = self._clock()
            for name in admission.keys:
                state = self._get(name, now)
                state.in_flight = max(0, state.in_flight - 1)
                if failed is True:
                    self._failed(state, now)
                elif failed is False:
                    state.consecutive = 0
                    state.locked_until = 0.0

    def retry_after(self, key: str) -> float:
        """[s] until ``key`` admits an attempt (0 if it does now)."""
        with self._lock:
            now = self._clock()
            return self._wait(self._get(key, now), now)

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys)

    # Internals (hold self._lock) ----------------------------------------------------------

    def _get(self, name: str, now: float) -> _Key:
        state = self._keys.get(name)
        if state is None:
            state = self._keys[name] = _Key()
            self._evict(now)
        self._keys.move_to_end(name)
        while state.failures and state.failures[0] <= now - WINDOW:
            state.failures.popleft()
        if state.in_flight == 0 and now - state.last_failure >= self.forget_after:
            state.consecutive = 0
        return state

    def _evict(self, now: float) -> None:
        if len(self._keys) <= self.max_keys:
            return
        for name, state in list(self._keys.items())[:-1]:  # never the key just added
            while state.failures and state.failures[0] <= now - WINDOW:
                state.failures.popleft()
            if state.idle(now):
                del self._keys[name]
                if len(self._keys) <= self.max_keys:
                    return

    def _wait(self, state: _Key, now: float) -> float:
        """[s] before ``state`` may take one more attempt, counting those in flight."""
        wait = max(0.0, state.locked_until - now)
        if len(state.failures) + state.in_flight >= self.per_minute:
            if state.in_flight:
                wait = max(wait, IN_FLIGHT_RETRY)
            else:  # the oldest failure in the window must leave it first
                wait = max(wait, state.failures[0] + WINDOW - now)
        if state.in_flight and state.consecutive + state.in_flight >= self.free_attempts:
            wait = max(wait, IN_FLIGHT_RETRY)
        return wait

    def _failed(self, state: _Key, now: float) -> None:
        state.consecutive += 1
        state.last_failure = now
        state.failures.append(now)
        beyond = state.consecutive - self.free_attempts
        if beyond >= 0:
            lockout = min(self.backoff_max, self.backoff_base * 2.0 ** min(beyond, 60))
            state.locked_until = max(state.locked_until, now + lockout)
        if len(state.failures) >= self.per_minute:
            state.locked_until = max(state.locked_until, state.failures[0] + WINDOW)
