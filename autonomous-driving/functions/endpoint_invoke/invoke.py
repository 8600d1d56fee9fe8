"""Synchronous SageMaker inference over a JSONL input, written as Batch Transform writes it.

The input (``inference-input/<execution>/input.jsonl``, one record per line) is streamed and sent
to ``InvokeEndpoint`` in requests of whole lines, each at most ``payload_limit`` bytes
(``application/jsonlines`` in and out). The predictions are written to one ``.out`` object with
one line per input line, in input order: the layout Batch Transform produces with
``SplitType: Line`` and ``AssembleWith: Line``, so the annotation step reads every path alike.

Scale-to-zero (inference components): while the component has no copy (or its endpoint no
instance), SageMaker answers ``ModelNotReadyException`` or a ``ValidationError`` saying the
inference component has no capacity. ``CapacityWait`` retries exactly those, sleeping 5 s, 10 s,
20 s, then 30 s (capped), each sleep cut to what the deadline leaves; when the budget is gone it
raises ``CapacityUnavailableError``. Every other error is mapped by ``shared.errors`` (a wrong
component or endpoint name is a permanent ``InvalidInputError``/``NotFoundError``, never retried).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shared.aws import AWS_ERRORS, mapped_errors
from shared.errors import (
    CapacityUnavailableError,
    ModelInvocationError,
    PayloadTooLargeError,
    from_client_error,
)
from shared.retry import Deadline

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker_runtime import SageMakerRuntimeClient

logger = logging.getLogger(__name__)

CONTENT_TYPE = "application/jsonlines"
# Backoff while a scale-to-zero endpoint provisions capacity: 5, 10, 20, then 30 s capped.
CAPACITY_BACKOFF_S: tuple[float, ...] = (5.0, 10.0, 20.0)
CAPACITY_BACKOFF_CAP_S = 30.0
# SageMaker's reply while an inference component has zero copies (InvokeEndpoint answers 400
# ValidationError with this text; documented with scale-to-zero, "Scale an endpoint to zero instances").
NO_CAPACITY_MARKERS = ("no capacity", "insufficient capacity")


def capacity_backoff(attempt: int) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based): 5, 10, 20, 30, 30, ..."""
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    if attempt <= len(CAPACITY_BACKOFF_S):
        return CAPACITY_BACKOFF_S[attempt - 1]
    return CAPACITY_BACKOFF_CAP_S


def is_no_capacity(error: ClientError) -> bool:
    """True for the replies that mean "no instance or copy yet", and only those."""
    err = error.response.get("Error", {})
    code = str(err.get("Code", ""))
    if code == "ModelNotReadyException":
        return True
    message = str(err.get("Message", "")).lower()
    return code in {"ValidationError", "ValidationException"} and any(m in message for m in NO_CAPACITY_MARKERS)


@dataclass
class CapacityWait:
    """Retries the no-capacity replies within ``deadline``; counts what it did."""

    deadline: Deadline
    # None: time.sleep, looked up at each sleep (so a patched or emulated sleep is honoured).
    sleep: Callable[[float], object] | None = None
    enabled: bool = True
    retries: int = 0
    waited_s: float = 0.0

    def call(self, fn: Callable[[], Any], what: str) -> Any:
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except ClientError as error:
                if not (self.enabled and is_no_capacity(error)):
                    raise from_client_error(error, what) from error
                delay = min(capacity_backoff(attempt), self.deadline.remaining_seconds())
                if delay <= 0:
                    raise CapacityUnavailableError(
                        f"{what}: no capacity after {attempt} attempts and {self.waited_s:.0f} s of waiting; "
                        "the time budget is used up",
                        operation=what,
                        attempts=attempt,
                        waitedSeconds=round(self.waited_s, 3),
                        lastErrorCode=str(error.response.get("Error", {}).get("Code", "")),
                    ) from error
                logger.warning("%s: no capacity yet (attempt %d); retrying in %.1f s", what, attempt, delay)
                self.retries += 1
                self.waited_s += delay
                (self.sleep or time.sleep)(delay)
            except AWS_ERRORS as error:
                raise from_client_error(error, what) from error


@dataclass(frozen=True)
class Target:
    endpoint_name: str
    payload_limit: int
    inference_component: str | None = None


@dataclass
class InvokeResult:
    records: int = 0
    requests: int = 0
    largest_request: int = 0
    capacity_retries: int = 0
    capacity_wait_s: float = 0.0
    output_bytes: int = 0
    stats: dict[str, Any] = field(default_factory=dict)


def requests_of(lines: Iterable[bytes], limit: int) -> Iterator[list[bytes]]:
    """Group lines (each without its newline) into requests of at most ``limit`` bytes.

    A request body is the lines joined with ``\\n`` plus a final ``\\n``. A single line larger
    than the limit raises ``PayloadTooLargeError``: routing sends such runs to Batch Transform.
    """
    batch: list[bytes] = []
    size = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        needed = len(line) + 1
        if needed > limit:
            raise PayloadTooLargeError(
                f"input line {number} is {needed} bytes; the endpoint accepts at most {limit}",
                line=number,
                bytes=needed,
                limit=limit,
            )
        if batch and size + needed > limit:
            yield batch
            batch, size = [], 0
        batch.append(line)
        size += needed
    if batch:
        yield batch


def invoke_lines(
    runtime: SageMakerRuntimeClient,
    target: Target,
    lines: Iterable[bytes],
    out: IO[bytes],
    wait: CapacityWait,
) -> InvokeResult:
    result = InvokeResult()
    for request in requests_of(lines, target.payload_limit):
        wait.deadline.check("InvokeEndpoint")
        body = b"".join(line + b"\n" for line in request)
        params: dict[str, Any] = {
            "EndpointName": target.endpoint_name,
            "Body": body,
            "ContentType": CONTENT_TYPE,
            "Accept": CONTENT_TYPE,
        }
        if target.inference_component:
            params["InferenceComponentName"] = target.inference_component

        def call(p: dict[str, Any] = params) -> Any:
            return runtime.invoke_endpoint(**p)

        reply = wait.call(call, "InvokeEndpoint")
        with mapped_errors("InvokeEndpoint"):
            payload = reply["Body"].read()
        predictions = [p for p in payload.split(b"\n") if p.strip()]
        if len(predictions) != len(request):
            raise ModelInvocationError(
                f"InvokeEndpoint answered {len(predictions)} predictions for {len(request)} records",
                sent=len(request),
                received=len(predictions),
            )
        for prediction in predictions:
            out.write(prediction + b"\n")
            result.output_bytes += len(prediction) + 1
        result.records += len(request)
        result.requests += 1
        result.largest_request = max(result.largest_request, len(body))
    result.capacity_retries = wait.retries
    result.capacity_wait_s = round(wait.waited_s, 3)
    return result


def run(
    s3: S3Client,
    runtime: SageMakerRuntimeClient,
    target: Target,
    *,
    input_bucket: str,
    input_key: str,
    output_bucket: str,
    output_key: str,
    wait: CapacityWait,
) -> InvokeResult:
    """Stream the input from S3, invoke, and upload the ``.out`` object (spooled to /tmp when large)."""
    with mapped_errors("GetObject"):
        body = s3.get_object(Bucket=input_bucket, Key=input_key)["Body"]
    try:
        with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as out:
            result = invoke_lines(runtime, target, _lines(body), out, wait)
            out.seek(0)
            with mapped_errors("PutObject"):
                s3.upload_fileobj(out, output_bucket, output_key, ExtraArgs={"ContentType": CONTENT_TYPE})
    finally:
        body.close()
    return result


def _lines(body: Any) -> Iterator[bytes]:
    lines = body.iter_lines(chunk_size=64 * 1024)
    while True:
        with mapped_errors("GetObject"):
            line = next(lines, None)
        if line is None:
            return
        yield line
