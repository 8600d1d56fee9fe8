"""Stand-ins the unit tests of every use case share: a controllable deadline, a client that fails on
request, and an in-memory S3 for the sample generators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class FakeDeadline:
    """A deadline the test controls: ``remaining`` seconds, decremented by ``tick`` per query."""

    def __init__(self, remaining: float = 60.0, *, tick: float = 0.0) -> None:
        self.remaining = remaining
        self.tick = tick
        self.checks: list[str] = []

    def remaining_seconds(self) -> float:
        value = self.remaining
        self.remaining -= self.tick
        return value

    def expired(self) -> bool:
        return self.remaining <= 0

    def check(self, what: str, *, reserve: float = 0.0) -> None:
        from shared.errors import DeadlineExceededError

        self.checks.append(what)
        if self.remaining <= reserve:
            raise DeadlineExceededError(f"time budget exhausted before {what}")


class FailingClient:
    """Wraps a boto3 client; ``fail(operation, error, times, when)`` makes matching calls raise ``error``."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._rules: dict[str, list[tuple[Exception, Callable[..., bool]]]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def fail(
        self, operation: str, error: Exception, times: int = 1, when: Callable[..., bool] = lambda **_: True
    ) -> None:
        self._rules.setdefault(operation, []).extend([(error, when)] * times)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name.startswith("_") or name in ("get_paginator", "meta"):
            return attr

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            rules = self._rules.get(name, [])
            for index, (error, when) in enumerate(rules):
                if when(**kwargs):
                    del rules[index]
                    raise error
            return attr(**kwargs)

        return call


class RecordingS3:
    """Stands in for the S3 client the sample generator writes through: keeps the objects in memory."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:  # noqa: N803
        self.objects[Key] = Body
        return {}
