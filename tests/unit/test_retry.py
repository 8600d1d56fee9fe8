"""shared.retry: deadlines from the Lambda context and deadline-aware backoff."""

from __future__ import annotations

import time

import pytest

from shared.errors import (
    DeadlineExceededError,
    InvalidInputError,
    ServiceUnavailableError,
    ThrottlingError,
    TransientError,
)
from shared.retry import Deadline, backoff_cap, backoff_delay, retry_call
from tests.support.lambda_context import FakeLambdaContext, ManualClock

pytestmark = pytest.mark.unit


class Flaky:
    """Fails with the given errors in turn, then returns ``result``; advances ``clock`` per call."""

    def __init__(self, *errors: BaseException, result: str = "ok", clock: ManualClock | None = None, cost: float = 0):
        self.errors = list(errors)
        self.result = result
        self.calls: list[tuple[tuple[object, ...], dict[str, object]]] = []
        self.clock = clock
        self.cost = cost

    def __call__(self, *args: object, **kwargs: object) -> str:
        self.calls.append((args, kwargs))
        if self.clock is not None:
            self.clock.advance(self.cost)
        if self.errors:
            raise self.errors.pop(0)
        return self.result


class Sleeper:
    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        self.clock.advance(seconds)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def context(clock: ManualClock) -> FakeLambdaContext:
    return FakeLambdaContext(remaining_ms=60_000, clock=clock)


class TestDeadline:
    def test_follows_the_context_clock(self, context, clock):
        deadline = Deadline.from_context(context, margin_ms=10_000)
        assert deadline.remaining_seconds() == pytest.approx(50)
        clock.advance(20)
        assert deadline.remaining_seconds() == pytest.approx(30)
        assert not deadline.expired()
        deadline.check("work")
        clock.advance(30)
        assert deadline.remaining_seconds() == 0
        assert deadline.expired()

    def test_check_raises_a_transient_typed_error(self, context, clock):
        deadline = Deadline.from_context(context, margin_ms=10_000)
        clock.advance(55)
        with pytest.raises(DeadlineExceededError) as info:
            deadline.check("metadata extraction")
        assert isinstance(info.value, TransientError)
        assert "metadata extraction" in info.value.message
        assert info.value.to_dict()["errorType"] == "DeadlineExceededError"
        assert info.value.details == {"what": "metadata extraction", "marginMs": 10_000}

    def test_context_can_be_reset(self, context):
        deadline = Deadline.from_context(context, margin_ms=1_000)
        context.set_remaining(500)
        assert deadline.expired()
        context.set_remaining(3_000)
        assert deadline.remaining_seconds() == pytest.approx(2)

    def test_default_margin(self, context):
        assert Deadline.from_context(context).remaining_seconds() == pytest.approx(55)

    def test_real_clock(self):
        deadline = Deadline.from_context(FakeLambdaContext(remaining_ms=60_000), margin_ms=0)
        assert 0 < deadline.remaining_seconds() <= 60

    def test_after(self, clock):
        deadline = Deadline.after(2, clock=clock)
        assert deadline.remaining_seconds() == pytest.approx(2)
        clock.advance(2)
        assert deadline.expired()

    def test_check_with_a_reserve_needs_more_than_the_reserve_left(self):
        clock = ManualClock()
        deadline = Deadline.after(10, clock=clock)
        deadline.check("next request", reserve=9.5)
        clock.advance(0.5)
        with pytest.raises(DeadlineExceededError, match=r"less than the 9\.5 s") as info:
            deadline.check("next request", reserve=9.5)
        assert info.value.details["reserveSeconds"] == 9.5
        assert not deadline.expired()  # time is left, just not enough for the request
        deadline.check("a quick step")

    @pytest.mark.parametrize("margin", [-1, True, "5", float("nan")])
    def test_invalid_margin(self, context, margin):
        with pytest.raises(ValueError, match="margin_ms"):
            Deadline.from_context(context, margin_ms=margin)

    def test_not_a_context(self):
        with pytest.raises(TypeError, match="Lambda context"):
            Deadline.from_context(object())  # type: ignore[arg-type]


class TestBackoff:
    def test_caps_double_up_to_the_maximum(self):
        assert [backoff_cap(n, 0.2, 5.0) for n in range(1, 8)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
        assert backoff_cap(10_000, 0.2, 5.0) == 5.0

    def test_full_jitter(self):
        assert backoff_delay(3, 0.2, 5.0, lambda: 0.5) == pytest.approx(0.4)
        assert backoff_delay(3, 0.2, 5.0, lambda: 0.0) == 0
        with pytest.raises(ValueError, match="rng"):
            backoff_delay(1, 0.2, 5.0, lambda: 1.5)


class TestRetryCall:
    def test_success_first_time_passes_arguments(self, context, clock):
        fn = Flaky()
        sleep = Sleeper(clock)
        deadline = Deadline.from_context(context)
        assert retry_call(fn, 1, "two", deadline=deadline, key="v", sleep=sleep) == "ok"
        assert fn.calls == [((1, "two"), {"key": "v"})]
        assert sleep.delays == []

    def test_transient_errors_are_retried_with_jittered_backoff(self, context, clock):
        fn = Flaky(ThrottlingError("slow down"), ServiceUnavailableError("503"), result="done")
        sleep = Sleeper(clock)
        result = retry_call(
            fn, deadline=Deadline.from_context(context), sleep=sleep, rng=lambda: 0.5, base_delay=1, max_delay=10
        )
        assert result == "done"
        assert len(fn.calls) == 3
        assert sleep.delays == [0.5, 1.0]

    def test_attempts_exhausted_raises_the_last_error_unchanged(self, context, clock):
        last = ThrottlingError("third")
        fn = Flaky(ThrottlingError("1"), ThrottlingError("2"), last)
        with pytest.raises(ThrottlingError) as info:
            retry_call(fn, deadline=Deadline.from_context(context), max_attempts=3, sleep=Sleeper(clock))
        assert info.value is last
        assert len(fn.calls) == 3

    def test_permanent_errors_are_never_retried(self, context, clock):
        fn = Flaky(InvalidInputError("bad"), result="never")
        sleep = Sleeper(clock)
        with pytest.raises(InvalidInputError):
            retry_call(fn, deadline=Deadline.from_context(context), sleep=sleep)
        assert len(fn.calls) == 1
        assert sleep.delays == []

    def test_unlisted_exceptions_propagate(self, context, clock):
        fn = Flaky(KeyError("k"))
        with pytest.raises(KeyError):
            retry_call(fn, deadline=Deadline.from_context(context), sleep=Sleeper(clock))
        assert len(fn.calls) == 1

    def test_custom_retry_on(self, context, clock):
        fn = Flaky(ConnectionResetError(), result="ok")
        assert (
            retry_call(fn, deadline=Deadline.from_context(context), retry_on=(OSError,), sleep=Sleeper(clock)) == "ok"
        )
        fn = Flaky(ThrottlingError("not listed"))
        with pytest.raises(ThrottlingError):
            retry_call(fn, deadline=Deadline.from_context(context), retry_on=(OSError,), sleep=Sleeper(clock))
        assert len(fn.calls) == 1

    def test_no_sleep_that_would_cross_the_deadline(self, clock):
        context = FakeLambdaContext(remaining_ms=12_000, clock=clock)
        deadline = Deadline.from_context(context, margin_ms=10_000)  # 2 s of budget
        last = ThrottlingError("busy")
        fn = Flaky(ThrottlingError("a"), last, clock=clock, cost=0.5)
        sleep = Sleeper(clock)
        with pytest.raises(DeadlineExceededError) as info:
            retry_call(fn, deadline=deadline, sleep=sleep, rng=lambda: 1.0, base_delay=1.0, max_delay=8.0)
        # attempt 1 at t=0 costs 0.5 s, sleeps 1 s; attempt 2 costs 0.5 s; a 2 s sleep would cross.
        assert sleep.delays == [1.0]
        assert len(fn.calls) == 2
        assert info.value.__cause__ is last
        assert info.value.details["attempts"] == 2
        assert info.value.details["lastErrorType"] == "ThrottlingError"
        assert clock.now - 1000.0 <= 2.0  # no sleep ran past the deadline

    def test_expired_deadline_means_no_call(self, clock):
        context = FakeLambdaContext(remaining_ms=4_000, clock=clock)
        fn = Flaky()
        with pytest.raises(DeadlineExceededError):
            retry_call(fn, deadline=Deadline.from_context(context, margin_ms=5_000))
        assert fn.calls == []

    def test_real_sleep_and_rng_defaults(self):
        fn = Flaky(ThrottlingError("once"))
        started = time.monotonic()
        assert retry_call(fn, deadline=Deadline.after(5), base_delay=0.01, max_delay=0.01) == "ok"
        assert len(fn.calls) == 2
        assert time.monotonic() - started < 5

    def test_the_default_sleep_is_time_sleep_as_it_is_when_sleeping(self, monkeypatch):
        # Not bound at import: the local runner's emulated clock replaces time.sleep for a run.
        slept: list[float] = []
        monkeypatch.setattr("time.sleep", slept.append)
        fn = Flaky(ThrottlingError("once"))
        assert retry_call(fn, deadline=Deadline.after(5), base_delay=1.0, max_delay=1.0, rng=lambda: 0.5) == "ok"
        assert slept == [0.5]

    @pytest.mark.parametrize(
        ("kwargs", "match"),
        [
            ({"max_attempts": 0}, "max_attempts"),
            ({"max_attempts": True}, "max_attempts"),
            ({"base_delay": 0}, "base_delay"),
            ({"base_delay": 2, "max_delay": 1}, "base_delay"),
            ({"retry_on": ()}, "retry_on"),
            ({"retry_on": (str,)}, "retry_on"),
        ],
    )
    def test_invalid_settings(self, context, kwargs, match):
        with pytest.raises(ValueError, match=match):
            retry_call(Flaky(), deadline=Deadline.from_context(context), **kwargs)

    def test_default_retry_set_is_the_transient_hierarchy(self, context, clock):
        class CustomTransientError(TransientError):
            pass

        fn = Flaky(CustomTransientError("x"), DeadlineExceededError("y"))
        assert retry_call(fn, deadline=Deadline.from_context(context), sleep=Sleeper(clock)) == "ok"
        assert len(fn.calls) == 3
