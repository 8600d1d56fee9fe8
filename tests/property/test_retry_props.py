"""shared.retry properties: bounded delays, monotone caps, the deadline is never crossed,
permanent errors are never retried, attempts never exceed the maximum."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import DeadlineExceededError, InvalidInputError, ThrottlingError
from shared.retry import Deadline, backoff_cap, backoff_delay, retry_call
from tests.support.lambda_context import FakeLambdaContext, ManualClock

pytestmark = pytest.mark.property

bases = st.floats(0.001, 10, allow_nan=False)
caps = st.floats(0.001, 120, allow_nan=False)
attempts = st.integers(1, 2_000)
fractions = st.floats(0, 1, allow_nan=False)


@given(attempts, bases, caps, fractions)
def test_delays_are_within_the_cap(attempt, base, cap, fraction):
    cap = max(cap, base)
    delay = backoff_delay(attempt, base, cap, lambda: fraction)
    assert 0 <= delay <= backoff_cap(attempt, base, cap) <= cap


@given(attempts, bases, caps)
def test_caps_are_monotone_and_start_at_the_base(attempt, base, cap):
    cap = max(cap, base)
    assert backoff_cap(1, base, cap) == base
    assert backoff_cap(attempt, base, cap) <= backoff_cap(attempt + 1, base, cap)


OUTCOMES = st.lists(st.sampled_from(["ok", "transient", "permanent"]), min_size=1, max_size=12)


@given(
    outcomes=OUTCOMES,
    max_attempts=st.integers(1, 10),
    budget_ms=st.integers(0, 20_000),
    margin_ms=st.integers(0, 5_000),
    cost=st.floats(0, 3, allow_nan=False),
    base=st.floats(0.01, 2, allow_nan=False),
    fractions=st.lists(fractions, min_size=12, max_size=12),
)
def test_retry_invariants(*, outcomes, max_attempts, budget_ms, margin_ms, cost, base, fractions):
    clock = ManualClock()
    start = clock.now
    end = start + (budget_ms - margin_ms) / 1000  # where the deadline lies on the clock
    deadline = Deadline.from_context(FakeLambdaContext(remaining_ms=budget_ms, clock=clock), margin_ms=margin_ms)
    calls: list[float] = []
    sleeps: list[tuple[float, float]] = []
    errors = {"transient": ThrottlingError("busy"), "permanent": InvalidInputError("bad")}
    rng_values = iter(fractions)

    def work() -> str:
        calls.append(clock.now)
        outcome = outcomes[min(len(calls), len(outcomes)) - 1]
        clock.advance(cost)
        if outcome == "ok":
            return "done"
        raise errors[outcome]

    def sleep(seconds: float) -> None:
        sleeps.append((clock.now, seconds))
        clock.advance(seconds)

    try:
        result: object = retry_call(
            work,
            deadline=deadline,
            max_attempts=max_attempts,
            base_delay=base,
            max_delay=base * 8,
            sleep=sleep,
            rng=lambda: next(rng_values),
        )
    except (ThrottlingError, InvalidInputError, DeadlineExceededError) as error:
        result = error

    assert len(calls) <= max_attempts
    assert all(t < end for t in calls), "an attempt started after the deadline"
    assert all(t + d < end for t, d in sleeps), "a sleep crossed the deadline"
    assert len(sleeps) == max(0, len(calls) - 1)
    for number, (_, delay) in enumerate(sleeps, start=1):
        assert delay <= backoff_cap(number, base, base * 8)
    seen = [outcomes[min(i, len(outcomes)) - 1] for i in range(1, len(calls) + 1)]
    # Only transient failures are ever followed by another attempt.
    assert all(o == "transient" for o in seen[:-1])
    if not calls:
        assert isinstance(result, DeadlineExceededError)
        assert end <= start
    elif seen[-1] == "ok":
        assert result == "done"
    elif seen[-1] == "permanent":
        assert result is errors["permanent"]
    elif len(calls) == max_attempts:
        assert result is errors["transient"]
    else:
        # Stopped early with attempts left: only the deadline can do that.
        assert isinstance(result, DeadlineExceededError)
        assert result.__cause__ is errors["transient"] or clock.now >= end
