"""The project's real Lambda handlers, invoked in-process as the Lambda service would run them.

- Each function has its own execution environments: the handler module (and the modules beside it
  in the function's code folder) is imported afresh per environment, with the function's
  environment variables set, so module-scope state is never shared between functions or between
  concurrent invocations. The first invocation on an environment is a cold start (init counted).
- Invocations take turns (``InvocationGate``): environment variables and libraries' shared state
  are process-wide in Python, where Lambda gives each concurrent invocation its own process.
- The context's ``get_remaining_time_in_millis()`` counts down from the function's ``Timeout`` on
  the run's emulated clock. A handler still running past its timeout is reported as AWS reports
  it (``Sandbox.Timedout``) once it returns: a thread cannot be killed.
- An exception becomes an ``Unhandled`` function error whose ``errorType`` is the exception's class
  name, exactly the payload Step Functions matches ``ErrorEquals`` against.
"""

from __future__ import annotations

import json
import os
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from botocore.awsrequest import AWSResponse

from local import handlers
from local.handlers import HandlerInitError as FunctionInitError
from local.runner.clock import EmulatedClock
from local.runner.interceptor import Call, error_reply, reply

MAX_SYNC_PAYLOAD: Final = 6 * 1024 * 1024
_MISSING: Final = object()


@dataclass(frozen=True)
class FunctionSpec:
    """A deployed function as the runner invokes it: what the template declares
    (``local.usecases.FunctionSpec``, read by ``Stack.functions``) resolved for one stack."""

    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    timeout_s: int = 3
    memory_mb: int = 128
    environment: Mapping[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    runtime: str = "python3.13"
    layers: tuple[str, ...] = ()  # layer version ARNs


@dataclass
class FunctionStats:
    invocations: int = 0
    cold_starts: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def trace_header() -> str:
    """An X-Ray trace header as Lambda passes it in ``_X_AMZN_TRACE_ID``: a new root, a parent
    id, sampled (with tracing off the SDK is disabled and sends nothing)."""
    return f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Parent={uuid.uuid4().hex[:16]};Sampled=1"


class LambdaContext:
    """The attributes and method the Python runtime's context object has."""

    def __init__(self, spec: FunctionSpec, invoked_arn: str, request_id: str, clock: EmulatedClock) -> None:
        self.function_name = spec.name
        self.function_version = "$LATEST"
        self.invoked_function_arn = invoked_arn
        self.memory_limit_in_mb = str(spec.memory_mb)
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{spec.name}"
        self.log_stream_name = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        self.identity = None
        self.client_context = None
        self._clock = clock
        self._deadline = clock.now() + spec.timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._clock.now()) * 1000))

    @property
    def timed_out(self) -> bool:
        return self._clock.now() > self._deadline


class InvocationGate:
    """One invocation at a time, with its function's environment variables in ``os.environ``.

    Lambda runs concurrent invocations in separate execution environments, separate processes;
    here they share one, and process-wide state would leak between overlapping invocations:
    ``os.environ``, and libraries' shared state such as Powertools' metric set (one dict for every
    ``Metrics`` instance: an invocation's flush would carry, or clear, another's metrics) and its
    logger keys. Taking turns gives every invocation what a separate process gives it; on one
    GIL it costs almost no speed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    @contextmanager
    def applied(self, variables: Mapping[str, str]) -> Iterator[None]:
        with self._lock:
            saved = {key: os.environ.get(key, _MISSING) for key in variables}
            os.environ.update(variables)
            try:
                yield
            finally:
                for key, value in saved.items():
                    if value is _MISSING:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = str(value)


class _ExecutionEnvironment:
    def __init__(self) -> None:
        self.handler: Callable[[Any, Any], Any] | None = None  # set by its init


class LambdaRuntime:
    """Answers ``lambda:Invoke`` for the template's functions by running their handlers."""

    def __init__(
        self,
        functions: list[FunctionSpec],
        clock: EmulatedClock,
        *,
        base_environment: Mapping[str, str] | None = None,
        on_invoke: Callable[[FunctionSpec, str | None, float], None] | None = None,
    ) -> None:
        self.functions = {f.logical_id: f for f in functions}
        self.clock = clock
        self.base_environment = dict(base_environment or {})
        self.stats: dict[str, FunctionStats] = {f.logical_id: FunctionStats() for f in functions}
        self._idle: dict[str, list[_ExecutionEnvironment]] = {f.logical_id: [] for f in functions}
        self._lock = threading.Lock()
        self._gate = InvocationGate()
        self._on_invoke = on_invoke
        self._by_name: dict[str, FunctionSpec] = {}
        for f in functions:
            self._by_name[f.name] = f
            self._by_name[f.arn] = f
            for alias in f.aliases:
                self._by_name[f"{f.arn}:{alias}"] = f
                self._by_name[f"{f.name}:{alias}"] = f

    # --- addressing ---------------------------------------------------------------------------
    def resolve(self, function_name: str, qualifier: str | None = None) -> FunctionSpec | None:
        """Accepts a name, ``name:qualifier``, a function/alias/version ARN or a partial ARN."""
        candidates = [function_name]
        if function_name.startswith("arn:") and function_name.count(":") == 7:
            base, _, version = function_name.rpartition(":")
            candidates.append(base if version.isdigit() or version == "$LATEST" else function_name)
        elif ":" in function_name and not function_name.startswith("arn:"):
            candidates.append(
                function_name.split(":")[-2]
                if function_name.count(":") >= 2
                else function_name.split(":", maxsplit=1)[0]
            )
        for candidate in candidates:
            spec = self._by_name.get(candidate)
            if spec is not None:
                if qualifier and qualifier not in (*spec.aliases, "$LATEST") and not qualifier.isdigit():
                    return None
                return spec
        return None

    def environment_of(self, spec: FunctionSpec) -> dict[str, str]:
        """The variables Lambda sets for one invocation of ``spec``, then the function's own."""
        env = dict(self.base_environment)
        env.update(
            {
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{spec.name}",
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
                "LAMBDA_TASK_ROOT": str(spec.code_dir),
                "_HANDLER": spec.handler,
                # A new trace per invocation, as Lambda sets it (the X-Ray SDK's facade segment).
                "_X_AMZN_TRACE_ID": trace_header(),
            }
        )
        env.update(spec.environment)
        return env

    # --- botocore hook ------------------------------------------------------------------------
    def hook(self, call: Call) -> AWSResponse | None:
        if call.service != "lambda" or call.operation != "Invoke":
            return None
        # /2015-03-31/functions/<FunctionName>/invocations
        parts = call.path.split("/functions/", 1)
        if len(parts) != 2 or not parts[1].endswith("/invocations"):
            return None
        function_name = parts[1][: -len("/invocations")]
        qualifiers = call.query.get("Qualifier") or []
        qualifier = qualifiers[0] if qualifiers else None
        spec = self.resolve(function_name, qualifier)
        if spec is None:
            return error_reply(call, "ResourceNotFoundException", f"Function not found: {function_name}", 404)
        payload = call.body or b"{}"
        if len(payload) > MAX_SYNC_PAYLOAD:
            return error_reply(
                call,
                "RequestTooLargeException",
                f"Request must be smaller than {MAX_SYNC_PAYLOAD} bytes for the InvokeFunction operation",
                413,
            )
        invocation_type = call.header("X-Amz-Invocation-Type") or "RequestResponse"
        if invocation_type == "DryRun":
            return reply(call, 204, b"")
        if invocation_type == "Event":
            threading.Thread(target=self.invoke, args=(spec, payload, function_name), daemon=True).start()
            return reply(call, 202, b"")
        body, function_error = self.invoke(spec, payload, function_name)
        headers = {"X-Amz-Executed-Version": "$LATEST", "Content-Type": "application/json"}
        if function_error:
            headers["X-Amz-Function-Error"] = function_error
        return reply(call, 200, body, headers)

    # --- invocation ---------------------------------------------------------------------------
    def invoke(self, spec: FunctionSpec, payload: bytes, invoked_as: str | None = None) -> tuple[bytes, str | None]:
        """Run one invocation; returns (response payload, function error or None)."""
        request_id = str(uuid.uuid4())
        invoked_arn = invoked_as if invoked_as and invoked_as.startswith("arn:") else spec.arn
        stats = self.stats[spec.logical_id]
        started = time.monotonic()
        error_type: str | None = None
        try:
            event = json.loads(payload)
        except json.JSONDecodeError as e:
            error_type = "Runtime.UnmarshalError"
            return self._error(error_type, f"Unable to unmarshal input: {e}", request_id, []), "Unhandled"
        env_vars = self.environment_of(spec)
        try:
            # Claimed before taking a turn: overlapping invocations need environments of their own,
            # as in Lambda, so cold starts count as they would there.
            environment = self._claim(spec)
            with self._gate.applied(env_vars), self.clock.invocation():
                if environment.handler is None:
                    environment.handler = load_handler(spec)  # cold start: the function's init runs now
                    with self._lock:
                        stats.cold_starts += 1
                try:
                    context = LambdaContext(spec, invoked_arn, request_id, self.clock)
                    try:
                        result = environment.handler(event, context)
                    except Exception as e:  # noqa: BLE001 - becomes the Lambda function error, as in AWS
                        error_type = type(e).__name__
                        trace = traceback.format_exception(e)
                        if context.timed_out:
                            return self._timeout(spec, request_id), "Unhandled"
                        return self._error(error_type, str(e), request_id, trace), "Unhandled"
                    if context.timed_out:
                        error_type = "Sandbox.Timedout"
                        return self._timeout(spec, request_id), "Unhandled"
                finally:
                    self._release(spec, environment)
            try:
                body = json.dumps(result).encode()
            except (TypeError, ValueError) as e:
                error_type = "Runtime.MarshalError"
                return self._error(error_type, f"Unable to marshal response: {e}", request_id, []), "Unhandled"
            if len(body) > MAX_SYNC_PAYLOAD:
                error_type = "Function.ResponseSizeTooLarge"
                message = f"Response payload size exceeded maximum allowed payload size ({MAX_SYNC_PAYLOAD} bytes)."
                return self._error(error_type, message, request_id, []), "Unhandled"
            return body, None
        except FunctionInitError as e:
            error_type = e.error_type
            return self._error(e.error_type, str(e), request_id, e.trace), "Unhandled"
        finally:
            elapsed = time.monotonic() - started
            with self._lock:
                stats.invocations += 1
                stats.seconds += elapsed
                if error_type:
                    stats.errors[error_type] += 1
            if self._on_invoke is not None:
                self._on_invoke(spec, error_type, elapsed)

    @staticmethod
    def _error(error_type: str, message: str, request_id: str, trace: list[str]) -> bytes:
        return json.dumps(
            {
                "errorMessage": message,
                "errorType": error_type,
                "requestId": request_id,
                "stackTrace": [line.rstrip("\n") for line in trace],
            }
        ).encode()

    def _timeout(self, spec: FunctionSpec, request_id: str) -> bytes:
        message = f"RequestId: {request_id} Error: Task timed out after {spec.timeout_s:.2f} seconds"
        with self._lock:
            self.stats[spec.logical_id].errors["Sandbox.Timedout"] += 1
        return json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": message}).encode()

    def _claim(self, spec: FunctionSpec) -> _ExecutionEnvironment:
        """An idle environment, or a new one whose init runs on its first turn."""
        with self._lock:
            idle = self._idle[spec.logical_id]
            return idle.pop() if idle else _ExecutionEnvironment()

    def _release(self, spec: FunctionSpec, environment: _ExecutionEnvironment) -> None:
        with self._lock:
            self._idle[spec.logical_id].append(environment)


def load_handler(spec: FunctionSpec) -> Callable[[Any, Any], Any]:
    """Import the function's handler module afresh from its code folder and return the handler
    (``local.handlers.load_handler``: the folder first on ``sys.path``, its modules taken out of
    ``sys.modules`` again, so the next environment or function imports its own copies)."""
    return handlers.load_handler(spec.code_dir, spec.handler)[1]
