"""Fault injection for local runs: make a named AWS operation fail or be slow.

A fault names a botocore service id and operation (``s3:GetObject``, ``athena:GetQueryExecution``,
``lambda:Invoke``, ``bedrock-runtime:Converse``) and one behaviour:

- ``transient``: the first ``times`` matching calls (default 1) fail with a retryable error
  (S3 ``SlowDown`` 503, Lambda ``TooManyRequestsException`` 429, otherwise ``ThrottlingException``);
  later calls go through. The error is a real HTTP reply, so the caller's botocore retries it as it
  would against AWS before the handler sees it.
- ``permanent``: every matching call (or the first ``times``) fails with a non-retryable error
  (S3 ``AccessDenied`` 403, otherwise ``AccessDeniedException``; or ``code=ValidationException``...).
- ``slow``: each matching call takes ``seconds``: the run's emulated clock advances by that much
  (Lambda deadlines come closer, emulated Athena queries progress); ``sleep=true`` also sleeps for
  real. On ``athena:StartQueryExecution`` it is the query's own run time.

``match`` restricts a fault to calls whose decoded URL path or body contains the text (an object
key, a function name, a model id). Faults are checked before any emulator or moto answers.

CLI form (``--fault``, repeatable)::

    SERVICE:OPERATION=MODE[,times=N][,code=CODE][,status=N][,seconds=S][,match=TEXT][,sleep=true]
    s3:GetObject=transient,times=3
    s3:GetObject=permanent,code=AccessDenied,match=designs/corrupt/
    athena:GetQueryExecution=slow,seconds=120
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import botocore.session

from local.runner.interceptor import Call, error_reply, protocol_of

if TYPE_CHECKING:
    from botocore.awsrequest import AWSResponse

    from local.runner.clock import EmulatedClock

Mode = Literal["transient", "permanent", "slow"]
MODES: tuple[Mode, ...] = ("transient", "permanent", "slow")

# HTTP status AWS sends with each error code (anything else: 400).
_STATUS = {
    "SlowDown": 503,
    "ServiceUnavailable": 503,
    "ServiceUnavailableException": 503,
    "InternalError": 500,
    "InternalFailure": 500,
    "InternalServerError": 500,
    "InternalServerException": 500,
    "TooManyRequestsException": 429,
    "ModelNotReadyException": 429,
    "AccessDenied": 403,
    "AccessDeniedException": 403,
    "NoSuchKey": 404,
    "NoSuchBucket": 404,
    "ResourceNotFoundException": 404,
}


class FaultSpecError(ValueError):
    """A fault specification that cannot be understood."""


@dataclass
class Fault:
    service: str
    operation: str
    mode: Mode
    times: int | None = None
    code: str | None = None
    status: int | None = None
    seconds: float = 0.0
    match: str | None = None
    sleep: bool = False
    hits: int = field(default=0, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        check_operation(self.service, self.operation)
        if self.mode not in MODES:
            raise FaultSpecError(f"unknown fault mode {self.mode!r} (expected one of {', '.join(MODES)})")
        if self.mode == "transient" and self.times is None:
            self.times = 1
        if self.times is not None and (isinstance(self.times, bool) or self.times < 1):
            raise FaultSpecError(f"{self.name}: times must be an integer >= 1, got {self.times!r}")
        if not isinstance(self.seconds, int | float) or not math.isfinite(self.seconds) or self.seconds < 0:
            raise FaultSpecError(f"{self.name}: seconds must be a finite number >= 0, got {self.seconds!r}")
        if self.mode == "slow":
            if self.seconds <= 0:
                raise FaultSpecError(f"{self.name}: a slow fault needs seconds > 0")
            if self.code is not None or self.status is not None:
                raise FaultSpecError(f"{self.name}: code and status apply to transient and permanent faults")
        else:
            if self.seconds:
                raise FaultSpecError(f"{self.name}: seconds applies to slow faults only")
            if self.sleep:
                raise FaultSpecError(f"{self.name}: sleep applies to slow faults only")
        if self.status is not None and (isinstance(self.status, bool) or not 400 <= self.status <= 599):
            raise FaultSpecError(
                f"{self.name}: status must be an HTTP error status (400-599), got {self.status!r}: "
                "a 2xx/3xx reply would be served to the caller as a successful response"
            )
        if self.code is not None and not re.fullmatch(r"[A-Za-z][A-Za-z0-9.:_-]{0,127}", self.code):
            raise FaultSpecError(f"{self.name}: code must be an AWS error code such as ThrottlingException")
        if self.match == "":
            raise FaultSpecError(f"{self.name}: match needs a text")

    @property
    def name(self) -> str:
        return f"{self.service}:{self.operation}={self.mode}"

    @classmethod
    def transient(cls, target: str, *, times: int = 1, code: str | None = None, match: str | None = None) -> Fault:
        service, operation = _target(target)
        return cls(service, operation, "transient", times=times, code=code, match=match)

    @classmethod
    def permanent(
        cls, target: str, *, code: str | None = None, match: str | None = None, times: int | None = None
    ) -> Fault:
        service, operation = _target(target)
        return cls(service, operation, "permanent", times=times, code=code, match=match)

    @classmethod
    def slow(cls, target: str, *, seconds: float, match: str | None = None, sleep: bool = False) -> Fault:
        service, operation = _target(target)
        return cls(service, operation, "slow", seconds=seconds, match=match, sleep=sleep)

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """Parse the CLI form (see the module docstring)."""
        target, sep, rest = spec.partition("=")
        if not sep or not rest:
            raise FaultSpecError(f"fault {spec!r}: expected SERVICE:OPERATION=MODE[,key=value...]")
        service, operation = _target(target)
        mode, *options = rest.split(",")
        kwargs: dict[str, object] = {}
        for option in options:
            key, eq, value = option.partition("=")
            if not eq:
                raise FaultSpecError(f"fault {spec!r}: option {option!r} is not key=value")
            if key in kwargs:
                raise FaultSpecError(f"fault {spec!r}: option {key!r} given twice")
            if key in {"times", "status"}:
                try:
                    kwargs[key] = int(value)
                except ValueError as e:
                    raise FaultSpecError(f"fault {spec!r}: {key} must be an integer") from e
            elif key == "seconds":
                try:
                    seconds = float(value)
                except ValueError as e:
                    raise FaultSpecError(f"fault {spec!r}: seconds must be a number") from e
                if not math.isfinite(seconds):
                    raise FaultSpecError(f"fault {spec!r}: seconds must be a finite number, got {value!r}")
                kwargs[key] = seconds
            elif key in {"code", "match"}:
                kwargs[key] = value
            elif key == "sleep":
                if value.lower() not in {"true", "false"}:
                    raise FaultSpecError(f"fault {spec!r}: sleep must be true or false")
                kwargs[key] = value.lower() == "true"
            else:
                raise FaultSpecError(f"fault {spec!r}: unknown option {key!r}")
        if mode not in MODES:
            raise FaultSpecError(f"fault {spec!r}: unknown mode {mode!r} (expected one of {', '.join(MODES)})")
        try:
            return cls(service, operation, mode, **kwargs)  # type: ignore[arg-type]
        except FaultSpecError as e:
            raise FaultSpecError(f"fault {spec!r}: {e}") from e

    def applies(self, call: Call) -> bool:
        if call.service != self.service or call.operation != self.operation:
            return False
        if self.match is None:
            return True
        body = call.body[:65536].decode("utf-8", "replace")
        return self.match in call.path or self.match in body

    def consume(self) -> bool:
        """Count a matching call; False once a limited fault is used up."""
        with self._lock:
            if self.times is not None and self.hits >= self.times:
                return False
            self.hits += 1
            return True

    def error_code(self, call: Call) -> tuple[str, int]:
        if self.code:
            return self.code, self.status or _STATUS.get(self.code, 400)
        protocol = protocol_of(call.service)
        if self.mode == "transient":
            if call.service == "s3":
                code = "SlowDown"
            elif call.service == "lambda":
                code = "TooManyRequestsException"
            else:
                code = "Throttling" if protocol in {"query", "ec2"} else "ThrottlingException"
        else:
            code = "AccessDenied" if call.service == "s3" or protocol in {"query", "ec2"} else "AccessDeniedException"
        return code, self.status or _STATUS.get(code, 400)


def _target(target: str) -> tuple[str, str]:
    service, sep, operation = target.partition(":")
    if not sep or not service or not operation or not operation[0].isupper():
        raise FaultSpecError(f"fault target {target!r}: expected service:Operation, e.g. s3:GetObject")
    check_operation(service, operation)
    return service, operation


def _service_id(model: dict[str, Any], name: str) -> str:
    return str(model["metadata"].get("serviceId", name)).replace(" ", "-").lower()


@functools.cache
def _operations(service: str) -> frozenset[str] | None:
    """Operation names of the botocore service whose hyphenized service id is ``service``."""
    session = botocore.session.get_session()
    loader = session.get_component("data_loader")
    names = session.get_available_services()
    # The model's own name nearly always is the service id; the full scan is the fallback.
    for name in ([service] if service in names else []) + [n for n in names if n != service]:
        model = loader.load_service_model(name, "service-2")
        if _service_id(model, name) == service:
            return frozenset(model["operations"])
    return None


def check_operation(service: str, operation: str) -> None:
    """Refuse a service or operation botocore's service models do not know (a fault on it would
    never fire). ``service`` is the service id as in botocore's event names (``s3``,
    ``bedrock-runtime``, ``lambda``)."""
    operations = _operations(service)
    if operations is None:
        names = botocore.session.get_session().get_available_services()
        close = difflib.get_close_matches(service, names, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise FaultSpecError(f"fault target {service}:{operation}: unknown service {service!r}{hint}")
    if operation not in operations:
        close = difflib.get_close_matches(operation, operations, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        raise FaultSpecError(f"fault target {service}:{operation}: {service} has no operation {operation!r}{hint}")


class FaultPlan:
    """The faults of one run; ``hook`` is installed first on the interceptor."""

    def __init__(self, faults: list[Fault] | None = None, clock: EmulatedClock | None = None) -> None:
        self.faults = list(faults or [])
        self.clock = clock

    def add(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def slow_seconds(self, call: Call) -> float:
        """Run time a ``slow`` fault gives this call, without advancing the clock (used by emulators)."""
        total = 0.0
        for fault in self.faults:
            if fault.mode == "slow" and fault.applies(call) and fault.consume():
                total += fault.seconds
        return total

    def hook(self, call: Call) -> AWSResponse | None:
        for fault in self.faults:
            if not fault.applies(call):
                continue
            if fault.mode == "slow":
                if call.service == "athena" and call.operation == "StartQueryExecution":
                    continue  # the Athena emulator applies it as the query's run time
                if fault.consume():
                    if self.clock is not None:
                        self.clock.advance(fault.seconds)
                    if fault.sleep:
                        time.sleep(fault.seconds)
                continue
            if fault.consume():
                code, status = fault.error_code(call)
                return error_reply(
                    call, code, f"Injected {fault.mode} fault on {fault.service}:{fault.operation}", status
                )
        return None

    def summary(self) -> list[dict[str, object]]:
        return [{"fault": f.name, "match": f.match, "hits": f.hits, "fired": f.hits > 0} for f in self.faults]

    def unfired(self) -> list[Fault]:
        """Faults no call matched: the run did not test what was asked."""
        return [f for f in self.faults if f.hits == 0]
