"""One emulated clock for a local run: real monotonic time plus the time injected faults "spent".

A ``slow`` fault (``local.faults``) does not sleep for minutes: it advances this clock, so every
Lambda sees its remaining time shrink and an emulated Athena query "runs" for that long, while the
run itself stays fast.
"""

from __future__ import annotations

import threading
import time


class EmulatedClock:
    def __init__(self) -> None:
        self._skew = 0.0
        self._lock = threading.Lock()

    def now(self) -> float:
        """Seconds, monotonic; comparable only with other values of the same clock."""
        return time.monotonic() + self._skew

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the emulated clock only moves forward")
        with self._lock:
            self._skew += seconds

    @property
    def skew(self) -> float:
        """Total seconds added by ``advance``."""
        return self._skew
