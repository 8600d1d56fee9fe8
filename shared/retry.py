"""Time budgets and deadline-aware retries.

A handler derives a ``Deadline`` from its Lambda context, keeping a margin for writing results
and returning before Lambda's own timeout::

    deadline = Deadline.from_context(context, margin_ms=10_000)
    for item in items:
        deadline.check("metadata extraction")      # DeadlineExceededError: the Map's Retry resumes
        retry_call(process, item, deadline=deadline)

``retry_call`` retries only the errors named transient (``shared.errors.TRANSIENT_ERRORS`` by
default) with capped exponential backoff and full jitter (delay = random(0, min(cap, base * 2^n))).
It never sleeps past the deadline: when the next delay would cross it, it raises
``DeadlineExceededError`` chained to the last error, so Step Functions' Retry takes over with a
fresh time budget. botocore already retries single API calls (``shared.aws``); this is for units
of work made of several calls, or for errors botocore does not know are transient.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Protocol

from shared.errors import TRANSIENT_ERRORS, DeadlineExceededError

logger = logging.getLogger(__name__)

DEFAULT_MARGIN_MS = 5_000


class LambdaContextLike(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


class Deadline:
    """The time left before ``margin_ms`` of the Lambda's budget remains.

    It asks the underlying clock (the Lambda context) every time, so it follows real time.
    """

    __slots__ = ("_remaining_ms", "margin_ms")

    def __init__(self, remaining_ms: Callable[[], float], margin_ms: float = DEFAULT_MARGIN_MS) -> None:
        if isinstance(margin_ms, bool) or not isinstance(margin_ms, int | float) or not margin_ms >= 0:
            raise ValueError(f"margin_ms must be a number >= 0, got {margin_ms!r}")
        self._remaining_ms = remaining_ms
        self.margin_ms = margin_ms

    @classmethod
    def from_context(cls, context: LambdaContextLike, margin_ms: float = DEFAULT_MARGIN_MS) -> Deadline:
        """The deadline of the current invocation, ``margin_ms`` before Lambda's timeout."""
        getter = getattr(context, "get_remaining_time_in_millis", None)
        if not callable(getter):
            raise TypeError(f"expected a Lambda context, got {type(context).__name__}")
        return cls(getter, margin_ms)

    @classmethod
    def after(cls, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> Deadline:
        """A deadline ``seconds`` from now on ``clock`` (scripts and tests; no margin)."""
        end = clock() + seconds
        return cls(lambda: (end - clock()) * 1000, 0)

    def remaining_seconds(self) -> float:
        """Seconds left before the margin is reached; never negative."""
        return max(0.0, (self._remaining_ms() - self.margin_ms) / 1000)

    def expired(self) -> bool:
        return self.remaining_seconds() <= 0

    def check(self, what: str, *, reserve: float = 0.0) -> None:
        """Raise ``DeadlineExceededError`` unless more than ``reserve`` seconds are left before the
        deadline; ``what`` names the work. ``reserve`` is the time the next step may take (a request
        with its timeouts and retries, ``aws.request_seconds``), so it is not started without it."""
        remaining = self.remaining_seconds()
        if remaining <= reserve:
            reason = "time budget exhausted" if reserve <= 0 else f"less than the {reserve:g} s it may take is left"
            details: dict[str, object] = {"what": what, "marginMs": self.margin_ms}
            if reserve > 0:
                details["reserveSeconds"] = reserve
            raise DeadlineExceededError(
                f"{what}: {reason} ({remaining:.3f} s left before the {self.margin_ms:g} ms margin)", **details
            )


def backoff_cap(attempt: int, base_delay: float, max_delay: float) -> float:
    """Upper bound of the delay after failed attempt ``attempt`` (1-based): min(max, base * 2^(n-1))."""
    if attempt > 64:  # 2**63 * any sane base is far above any cap; avoids float overflow
        return max_delay
    return float(min(max_delay, base_delay * 2.0 ** (attempt - 1)))


def backoff_delay(attempt: int, base_delay: float, max_delay: float, rng: Callable[[], float]) -> float:
    """Full jitter: uniform in [0, cap] given ``rng()`` uniform in [0, 1]."""
    fraction = rng()
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"rng must return a number in [0, 1], got {fraction!r}")
    return fraction * backoff_cap(attempt, base_delay, max_delay)


def retry_call[T](
    fn: Callable[..., T],
    *args: object,
    deadline: Deadline,
    retry_on: tuple[type[BaseException], ...] = TRANSIENT_ERRORS,
    max_attempts: int = 5,
    base_delay: float = 0.2,
    max_delay: float = 5.0,
    sleep: Callable[[float], object] | None = None,
    rng: Callable[[], float] = random.random,
    **kwargs: object,
) -> T:
    """Call ``fn(*args, **kwargs)``, retrying the ``retry_on`` errors within the deadline.

    - At most ``max_attempts`` calls; when they are used up the last error is raised unchanged.
    - Errors not in ``retry_on`` (permanent ones) propagate at once.
    - Before every attempt the deadline is checked; a retry whose delay would reach the deadline
      is not made: ``DeadlineExceededError`` is raised from the last error instead.
    - ``sleep`` defaults to ``time.sleep`` as it is when the delay is slept, not when this module
      was imported (the local runner's emulated clock replaces it for the duration of a run).
    """
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise ValueError(f"max_attempts must be an integer >= 1, got {max_attempts!r}")
    if not 0 < base_delay <= max_delay:
        raise ValueError(f"need 0 < base_delay <= max_delay, got {base_delay!r} and {max_delay!r}")
    if not retry_on or not all(isinstance(e, type) and issubclass(e, BaseException) for e in retry_on):
        raise ValueError(f"retry_on must be a non-empty tuple of exception classes, got {retry_on!r}")
    what = getattr(fn, "__qualname__", None) or repr(fn)
    attempt = 0
    while True:
        attempt += 1
        deadline.check(what)
        try:
            return fn(*args, **kwargs)
        except retry_on as error:
            if attempt >= max_attempts:
                raise
            delay = backoff_delay(attempt, base_delay, max_delay, rng)
            remaining = deadline.remaining_seconds()
            if delay >= remaining:
                raise DeadlineExceededError(
                    f"{what}: {type(error).__name__} on attempt {attempt}; retrying after {delay:.3f} s "
                    f"would pass the deadline ({remaining:.3f} s left)",
                    what=what,
                    attempts=attempt,
                    lastErrorType=type(error).__name__,
                ) from error
            logger.warning(
                "%s failed with %s on attempt %d of %d; retrying in %.3f s",
                what,
                type(error).__name__,
                attempt,
                max_attempts,
                delay,
            )
            (sleep or time.sleep)(delay)
