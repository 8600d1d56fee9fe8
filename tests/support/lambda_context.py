"""A Lambda context whose remaining time follows a clock, as the real one does."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class FakeLambdaContext:
    """Mimics the attributes handlers and Powertools read from ``LambdaContext``.

    ``get_remaining_time_in_millis()`` counts down from ``remaining_ms`` along ``clock`` (a real
    monotonic clock unless a test injects one), so deadline logic sees time pass.
    """

    remaining_ms: int = 60_000
    function_name: str = "test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "11111111-2222-3333-4444-555555555555"
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "2026/11/26/[$LATEST]0123456789abcdef"
    clock: Callable[[], float] = time.monotonic
    _start: float = field(init=False)

    def __post_init__(self) -> None:
        self._start = self.clock()

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed_ms = (self.clock() - self._start) * 1000
        return max(0, int(self.remaining_ms - elapsed_ms))

    def set_remaining(self, remaining_ms: int) -> None:
        """Restart the countdown from ``remaining_ms``."""
        self.remaining_ms = remaining_ms
        self._start = self.clock()


class ManualClock:
    """A clock tests advance by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
