"""AttemptLimiter: backoff, the per-minute ceiling, attempts in flight, forgetting, eviction."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from xiaomanlv_locker.kiosk.limiter import AttemptLimiter


@dataclass
class Clock:
    now: float = 1000.0  # [s]

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, **overrides: float) -> AttemptLimiter:
    values: dict[str, float] = {
        "free_attempts": 3,
        "per_minute": 10,
        "backoff_base": 2.0,
        "backoff_max": 300.0,
        "forget_after": 900.0,
    }
    values.update(overrides)
    return AttemptLimiter(
        free_attempts=int(values["free_attempts"]),
        per_minute=int(values["per_minute"]),
        backoff_base=values["backoff_base"],
        backoff_max=values["backoff_max"],
        forget_after=values["forget_after"],
        clock=clock,
        max_keys=int(values.get("max_keys", 4096)),
    )


def fail(lim: AttemptLimiter, *keys: str) -> bool:
    """One attempt on ``keys`` that fails; False if it was not admitted."""
    admission = lim.begin(keys)
    if admission.admitted:
        lim.finish(admission, failed=True)
    return admission.admitted


def test_free_attempts_then_a_doubling_lockout() -> None:
    clock = Clock()
    lim = limiter(clock)
    assert [fail(lim, "client:a") for _ in range(3)] == [True, True, True]
    refused = lim.begin(["client:a"])
    assert not refused.admitted and refused.key == "client:a"
    assert refused.retry_after == pytest.approx(2.0)
    clock.now += 2.0
    assert fail(lim, "client:a")
    assert lim.retry_after("client:a") == pytest.approx(4.0)
    clock.now += 4.0
    assert fail(lim, "client:a")
    assert lim.retry_after("client:a") == pytest.approx(8.0)


def test_lockouts_stop_at_backoff_max() -> None:
    clock = Clock()
    lim = limiter(clock, backoff_max=10.0, per_minute=1000)
    for _ in range(12):
        clock.now += lim.retry_after("k")
        assert fail(lim, "k")
    assert lim.retry_after("k") == pytest.approx(10.0)


def test_a_success_clears_the_backoff_not_the_ceiling() -> None:
    clock = Clock()
    lim = limiter(clock, per_minute=4)
    for _ in range(2):
        assert fail(lim, "k")
    ok = lim.begin(["k"])
    lim.finish(ok, failed=False)
    assert fail(lim, "k") and fail(lim, "k")  # consecutive count started again
    assert lim.retry_after("k") == pytest.approx(60.0)  # but 4 failures in the minute
    clock.now += 60.0
    assert lim.begin(["k"]).admitted


def test_no_pattern_beats_ten_failures_a_minute() -> None:
    """A client that retries the moment it may, with a success whenever it can, for 10 min."""
    clock = Clock()
    lim = limiter(clock)
    failures: list[float] = []
    for step in range(100_000):
        if clock.now >= 1600.0:
            break
        admission = lim.begin(["client:x"])
        if not admission.admitted:
            clock.now += admission.retry_after
            continue
        succeed = step % 4 == 3  # every fourth admitted attempt is a right credential
        lim.finish(admission, failed=not succeed)
        if not succeed:
            failures.append(clock.now)
    for start in failures:
        assert sum(1 for t in failures if start <= t < start + 60.0) <= 10


def test_attempts_in_flight_count_as_failures() -> None:
    clock = Clock()
    lim = limiter(clock)
    held = [lim.begin(["k"]) for _ in range(3)]
    assert all(a.admitted for a in held)
    fourth = lim.begin(["k"])
    assert not fourth.admitted and fourth.retry_after == pytest.approx(1.0)
    for admission in held:
        lim.finish(admission, failed=None)  # no verdict: nothing counted
    assert lim.begin(["k"]).admitted


def test_the_first_refusing_key_is_named_and_nothing_is_held() -> None:
    clock = Clock()
    lim = limiter(clock)
    for _ in range(3):
        assert fail(lim, "operator:op-7", f"client:{_}")
    refused = lim.begin(["client:new", "operator:op-7"])
    assert not refused.admitted and refused.key == "operator:op-7"
    assert lim.begin(["client:new"]).admitted  # the refused attempt held no slot


def test_failures_are_forgotten_after_a_quiet_spell() -> None:
    clock = Clock()
    lim = limiter(clock, forget_after=600.0)
    for _ in range(3):
        assert fail(lim, "k")
    clock.now += 600.0
    assert fail(lim, "k") and fail(lim, "k")  # free attempts again
    assert lim.retry_after("k") == 0.0


def test_idle_keys_are_evicted_but_locked_ones_stay() -> None:
    clock = Clock()
    lim = limiter(clock, max_keys=4)
    for _ in range(3):
        assert fail(lim, "locked")
    for number in range(10):
        ok = lim.begin([f"op:{number}"])
        lim.finish(ok, failed=False)
    assert len(lim) == 4
    assert lim.retry_after("locked") > 0.0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"free_attempts": 0},
        {"per_minute": 0},
        {"backoff_base": 0.0},
        {"backoff_max": 1.0},
        {"forget_after": 100.0},
    ],
)
def test_bad_limits_are_named(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        limiter(Clock(), **kwargs)
