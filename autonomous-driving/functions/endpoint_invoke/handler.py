"""UC9 synchronous inference: Serverless Inference, a real-time endpoint, or an inference component.

One code folder serves three functions of the stack (ServerlessInvokeFunction,
RealtimeInvokeFunction, ComponentsInvokeFunction); the environment says which:

- ``ENDPOINT_NAME``: the SageMaker endpoint.
- ``INFERENCE_COMPONENT_NAME``: set only for the inference-components path; sent as
  ``InferenceComponentName`` and turns on the no-capacity wait (``WAIT_FOR_CAPACITY``).
- ``PAYLOAD_LIMIT_BYTES``: the largest request body the endpoint accepts (shared.routing's
  SYNC_PAYLOAD_LIMITS: 4,000,000 serverless, 6,291,456 real-time and components).
- ``SERVED_BY``: the routing path this function is (``SERVERLESS_INFERENCE`` ...), echoed in the result.
- ``OUTPUT_BUCKET``; ``DEADLINE_MARGIN_MS`` (time kept to upload and return; the function's
  Timeout is below the Task's TimeoutSeconds, so the margin is below that too).

Event (from the state machine)::

    {"execution_id": "...", "input_bucket": "...", "input_key": "inference-input/<id>/input.jsonl",
     "output_key": "inference-output/<id>/<path>/input.jsonl.out"}

Returns ``{"served_by", "output_bucket", "output_key", "records", "requests", "capacity_retries",
"capacity_wait_s"}``. Errors: ``CapacityUnavailableError`` (components: still no copy when the
budget ran out; the state machine falls back to Batch Transform), ``PayloadTooLargeError``,
``ModelInvocationError``, and the mapped SageMaker/S3 errors.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from invoke import CapacityWait, Target, run

from shared import aws, config, observability, runtime
from shared.errors import InvalidInputError
from shared.events import validate_execution_id
from shared.retry import Deadline
from shared.routing import InferencePath

logger = Logger()
tracer = Tracer()
metrics = Metrics()

_BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
_NAME = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
OUTPUT_BUCKET = config.env_str("OUTPUT_BUCKET", pattern=_BUCKET)
SERVED_BY = InferencePath(
    config.env_str(
        "SERVED_BY",
        choices=[p.value for p in InferencePath if p is not InferencePath.BATCH_TRANSFORM],
    )
)
TARGET = Target(
    endpoint_name=config.env_str("ENDPOINT_NAME", pattern=_NAME),
    payload_limit=config.env_int("PAYLOAD_LIMIT_BYTES", minimum=1024, maximum=6_291_456),
    inference_component=config.env_str("INFERENCE_COMPONENT_NAME", "", pattern=_NAME) or None,
)
WAIT_FOR_CAPACITY = config.env_bool("WAIT_FOR_CAPACITY", TARGET.inference_component is not None)
DEADLINE_MARGIN_MS = config.env_int("DEADLINE_MARGIN_MS", 10_000, minimum=2_000, maximum=120_000)

S3 = runtime.register_client(aws.client("s3"))
# A model answers within seconds; 70 s covers a slow first request after a copy came up.
SAGEMAKER = runtime.register_client(aws.client("sagemaker-runtime", read_timeout=70, max_attempts=3))


def parse_event(event: Any) -> dict[str, str]:
    if not isinstance(event, dict):
        raise InvalidInputError(f"event must be an object, got {type(event).__name__}")
    execution_id = validate_execution_id(event.get("execution_id"))
    out = {"execution_id": execution_id}
    for name in ("input_bucket", "input_key", "output_key"):
        value = event.get(name)
        if not isinstance(value, str) or not value or len(value) > 1024:
            raise InvalidInputError(f"{name} must be a non-empty string of at most 1024 characters", field=name)
        out[name] = value
    if execution_id not in out["input_key"] or execution_id not in out["output_key"]:
        raise InvalidInputError("input_key and output_key must be scoped to the execution id")
    return out


@observability.handler(logger, tracer, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_event(event)
    logger.append_keys(execution_id=request["execution_id"], served_by=SERVED_BY.value)
    wait = CapacityWait(Deadline.from_context(context, margin_ms=DEADLINE_MARGIN_MS), enabled=WAIT_FOR_CAPACITY)
    result = run(
        S3,
        SAGEMAKER,
        TARGET,
        input_bucket=request["input_bucket"],
        input_key=request["input_key"],
        output_bucket=OUTPUT_BUCKET,
        output_key=request["output_key"],
        wait=wait,
    )
    metrics.add_metric(name="InferenceRecords", unit=MetricUnit.Count, value=result.records)
    metrics.add_metric(name="CapacityRetries", unit=MetricUnit.Count, value=result.capacity_retries)
    summary = {
        "served_by": SERVED_BY.value,
        "output_bucket": OUTPUT_BUCKET,
        "output_key": request["output_key"],
        "records": result.records,
        "requests": result.requests,
        "capacity_retries": result.capacity_retries,
        "capacity_wait_s": result.capacity_wait_s,
    }
    logger.info("inference done", extra=summary)
    return summary
