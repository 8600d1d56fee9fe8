"""Emulated time for a local run: real monotonic time plus time that emulated work "spent".

- A ``slow`` fault (``local.faults``) does not block for minutes: it advances the clock.
- With ``virtual_sleep()`` installed, ``time.sleep`` called by a Lambda handler (its own polling
  and backoff, botocore's retry backoff) advances the clock instead of blocking.

Inside a Lambda invocation the advance belongs to that invocation alone (a thread-local offset),
as time spent by one Lambda does not age the others; outside one it is global. A Lambda's
remaining time and an emulated Athena query's progress are measured on this clock, so a handler
sees its deadline approach exactly as it would, only faster.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

_real_sleep: Final = time.sleep


class EmulatedClock:
    def __init__(self) -> None:
        self._skew = 0.0
        self._lock = threading.Lock()
        self._local = threading.local()
        self.virtual_seconds = 0.0

    def now(self) -> float:
        """Seconds, monotonic; comparable only with other values of the same clock."""
        return time.monotonic() + self._skew + getattr(self._local, "skew", 0.0)

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the emulated clock only moves forward")
        with self._lock:
            self.virtual_seconds += seconds
            if self.in_invocation():
                self._local.skew += seconds
            else:
                self._skew += seconds

    @property
    def skew(self) -> float:
        """Seconds added by ``advance`` as seen from the calling thread."""
        return self._skew + getattr(self._local, "skew", 0.0)

    def in_invocation(self) -> bool:
        return getattr(self._local, "active", False)

    @contextmanager
    def invocation(self) -> Iterator[None]:
        """Scope of one Lambda invocation on this thread (its own time offset)."""
        self._local.active = True
        self._local.skew = 0.0
        try:
            yield
        finally:
            self._local.active = False
            self._local.skew = 0.0

    def sleep(self, seconds: float) -> None:
        """``time.sleep`` replacement: advances an invocation's clock, really sleeps elsewhere."""
        if self.in_invocation():
            if seconds > 0:
                self.advance(seconds)
            return
        _real_sleep(seconds)

    @contextmanager
    def virtual_sleep(self) -> Iterator[None]:
        """Route ``time.sleep`` through ``sleep`` for the duration of the block."""
        saved = time.sleep
        time.sleep = self.sleep  # type: ignore[assignment]
        try:
            yield
        finally:
            time.sleep = saved
