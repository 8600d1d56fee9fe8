"""UC9 endpoint_invoke (serverless, real-time, inference components): retries, budget, limits.

The components path retries only SageMaker's "no capacity yet" replies (ModelNotReadyException,
and the ValidationError it answers while an inference component has zero copies) with a 5, 10,
20, then 30 s capped backoff, each sleep cut to what the deadline leaves; an injected clock and
sleep make time explicit.
"""

from __future__ import annotations

import io
import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from shared.errors import (
    CapacityUnavailableError,
    ModelInvocationError,
    PayloadTooLargeError,
    PermanentError,
    TransientError,
)
from shared.retry import Deadline
from tests.support.functions import load_function_from
from tests.support.lambda_context import FakeLambdaContext, ManualClock
from tests.support.templates import REPO_ROOT

pytestmark = pytest.mark.unit

FOLDER = REPO_ROOT / "autonomous-driving" / "functions" / "endpoint_invoke"
invoke = load_function_from(FOLDER, "invoke", prefix="uc09").invoke

NO_CAPACITY = (
    "Inference Component has no capacity to process this request. ApplicationAutoScaling may be in-progress "
    "(if configured) or try to increase the capacity by invoking UpdateInferenceComponentRuntimeConfig API."
)


def client_error(code: str, message: str = "", status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "InvokeEndpoint",
    )


class FakeRuntime:
    """``invoke_endpoint`` that fails with the queued errors first, then echoes one prediction per line."""

    def __init__(self, *errors: ClientError) -> None:
        self.errors = list(errors)
        self.calls: list[dict[str, Any]] = []

    def invoke_endpoint(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        if self.errors:
            raise self.errors.pop(0)
        lines = [json.loads(line) for line in params["Body"].split(b"\n") if line.strip()]
        body = b"".join(json.dumps({"record_id": r["record_id"], "ok": True}).encode() + b"\n" for r in lines)
        return {"Body": io.BytesIO(body), "ContentType": "application/jsonlines"}


class Timeline:
    """A manual clock with a sleep that advances it; the deadline reads the same clock."""

    def __init__(self, budget_s: float) -> None:
        self.clock = ManualClock()
        self.sleeps: list[float] = []
        self.remaining_at_sleep: list[float] = []
        self.deadline = Deadline.after(budget_s, clock=self.clock)

    def sleep(self, seconds: float) -> None:
        self.remaining_at_sleep.append(self.deadline.remaining_seconds())
        self.sleeps.append(seconds)
        self.clock.advance(seconds)


def lines(n: int, size: int = 40) -> list[bytes]:
    return [json.dumps({"record_id": i, "pad": "x" * size}).encode() for i in range(n)]


TARGET_IC = invoke.Target(endpoint_name="ep", payload_limit=6_291_456, inference_component="ic-1")


def run_lines(runtime: FakeRuntime, timeline: Timeline, *, target: Any = TARGET_IC, enabled: bool = True, n: int = 3):
    out = io.BytesIO()
    wait = invoke.CapacityWait(timeline.deadline, sleep=timeline.sleep, enabled=enabled)
    result = invoke.invoke_lines(runtime, target, lines(n), out, wait)
    return result, out.getvalue()


def test_backoff_is_5_10_20_then_30_capped():
    assert [invoke.capacity_backoff(n) for n in range(1, 8)] == [5, 10, 20, 30, 30, 30, 30]
    with pytest.raises(ValueError, match="attempt"):
        invoke.capacity_backoff(0)


@pytest.mark.parametrize("retries", [1, 3, 6])
def test_model_not_ready_n_times_then_success(retries):
    runtime = FakeRuntime(*[client_error("ModelNotReadyException", "not ready", 429)] * retries)
    timeline = Timeline(budget_s=280)
    result, out = run_lines(runtime, timeline)
    assert timeline.sleeps == [invoke.capacity_backoff(n) for n in range(1, retries + 1)]
    assert result.capacity_retries == retries
    assert result.capacity_wait_s == sum(timeline.sleeps)
    assert result.records == 3
    assert [json.loads(x)["record_id"] for x in out.splitlines()] == [0, 1, 2]
    # Every call named the component.
    assert {c["InferenceComponentName"] for c in runtime.calls} == {"ic-1"}
    assert len(runtime.calls) == retries + 1


def test_the_zero_copies_validation_error_is_retried_like_model_not_ready():
    runtime = FakeRuntime(client_error("ValidationError", NO_CAPACITY), client_error("ModelNotReadyException", "", 429))
    timeline = Timeline(budget_s=280)
    result, _ = run_lines(runtime, timeline)
    assert timeline.sleeps == [5, 10]
    assert result.records == 3


def test_budget_exhausted_raises_capacity_unavailable_and_never_sleeps_past_the_deadline():
    runtime = FakeRuntime(*[client_error("ModelNotReadyException", "", 429)] * 50)
    timeline = Timeline(budget_s=42)
    with pytest.raises(CapacityUnavailableError) as caught:
        run_lines(runtime, timeline)
    # 5 + 10 + 20 = 35 s, then only the 7 s left instead of 30, then nothing is left.
    assert timeline.sleeps == [5, 10, 20, 7]
    assert all(s <= left for s, left in zip(timeline.sleeps, timeline.remaining_at_sleep, strict=True))
    assert sum(timeline.sleeps) <= 42
    assert caught.value.details["attempts"] == 5
    assert caught.value.details["lastErrorCode"] == "ModelNotReadyException"
    assert isinstance(caught.value.__cause__, ClientError)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (client_error("ValidationError", "Inference component ic-typo does not exist on endpoint ep."), PermanentError),
        (client_error("ValidationError", "Endpoint ep of account 123456789012 not found."), PermanentError),
        (client_error("ModelError", "Received client error (400) from primary", 424), PermanentError),
        (client_error("AccessDeniedException", "no", 403), PermanentError),
    ],
)
def test_permanent_errors_are_not_retried(error, expected):
    runtime = FakeRuntime(error)
    timeline = Timeline(budget_s=280)
    with pytest.raises(expected) as caught:
        run_lines(runtime, timeline)
    assert not isinstance(caught.value, CapacityUnavailableError)
    assert timeline.sleeps == []
    assert len(runtime.calls) == 1


def test_without_components_model_not_ready_is_transient_for_the_state_machine_not_waited_out():
    runtime = FakeRuntime(client_error("ModelNotReadyException", "", 429))
    timeline = Timeline(budget_s=280)
    target = invoke.Target(endpoint_name="ep", payload_limit=4_000_000)
    with pytest.raises(TransientError):
        run_lines(runtime, timeline, target=target, enabled=False)
    assert timeline.sleeps == []
    assert "InferenceComponentName" not in runtime.calls[0]


def test_requests_stay_within_the_payload_limit_and_keep_whole_lines():
    records = lines(50, size=100)
    limit = 1024
    requests = list(invoke.requests_of(records, limit))
    assert [line for req in requests for line in req] == records
    assert all(sum(len(line) + 1 for line in req) <= limit for req in requests)
    assert len(requests) > 1


def test_a_line_above_the_limit_is_refused_before_any_call():
    runtime = FakeRuntime()
    out = io.BytesIO()
    wait = invoke.CapacityWait(Timeline(60).deadline, sleep=lambda s: None)
    target = invoke.Target(endpoint_name="ep", payload_limit=1024)
    with pytest.raises(PayloadTooLargeError):
        invoke.invoke_lines(runtime, target, [b"x" * 2000], out, wait)
    assert runtime.calls == []


def test_a_reply_with_the_wrong_number_of_predictions_is_an_error():
    class Short(FakeRuntime):
        def invoke_endpoint(self, **params: Any) -> dict[str, Any]:
            return {"Body": io.BytesIO(b'{"record_id": 0}\n')}

    with pytest.raises(ModelInvocationError, match="1 predictions for 3 records"):
        run_lines(Short(), Timeline(60))


# --- the handler, wired to S3 ------------------------------------------------------------------
@pytest.fixture
def components_handler(monkeypatch):
    env = {
        "OUTPUT_BUCKET": "uc9-out",
        "SERVED_BY": "INFERENCE_COMPONENTS",
        "ENDPOINT_NAME": "uc9-ic-endpoint",
        "PAYLOAD_LIMIT_BYTES": "6291456",
        "INFERENCE_COMPONENT_NAME": "uc9-ic-1",
        "WAIT_FOR_CAPACITY": "true",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="uc9-out")
        mod = load_function_from(FOLDER, "handler", prefix="uc09").handler
        yield mod, s3


def test_handler_waits_for_a_copy_then_writes_the_out_object(components_handler, monkeypatch):
    mod, s3 = components_handler
    execution = "exec-1"
    s3.put_object(Bucket="uc9-out", Key=f"inference-input/{execution}/input.jsonl", Body=b"\n".join(lines(4)) + b"\n")
    clock = ManualClock()
    runtime = FakeRuntime(*[client_error("ModelNotReadyException", "", 429)] * 2)
    monkeypatch.setattr(mod, "SAGEMAKER", runtime)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)

    monkeypatch.setattr("time.sleep", sleep)
    event = {
        "execution_id": execution,
        "input_bucket": "uc9-out",
        "input_key": f"inference-input/{execution}/input.jsonl",
        "output_key": f"inference-output/{execution}/inference-components/input.jsonl.out",
    }
    result = mod.handler(event, FakeLambdaContext(remaining_ms=290_000, clock=clock))
    assert result["served_by"] == "INFERENCE_COMPONENTS"
    assert result["records"] == 4
    assert result["capacity_retries"] == 2
    assert sleeps == [5, 10]
    body = s3.get_object(Bucket="uc9-out", Key=event["output_key"])["Body"].read()
    assert [json.loads(x)["record_id"] for x in body.splitlines()] == [0, 1, 2, 3]


def test_handler_refuses_keys_outside_the_execution(components_handler):
    mod, _ = components_handler
    from shared.errors import InvalidInputError

    with pytest.raises(InvalidInputError):
        mod.handler(
            {"execution_id": "e1", "input_bucket": "b", "input_key": "other/x", "output_key": "inference-output/e1/x"},
            FakeLambdaContext(),
        )
