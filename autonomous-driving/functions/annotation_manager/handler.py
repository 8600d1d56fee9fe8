"""UC9 annotation manager: predictions of whichever path served the run -> COCO JSON.

Event (the state machine passes what PrepareInference and the inference path returned)::

    {"execution_id": "...", "requested_path": "INFERENCE_COMPONENTS",
     "served_by": "BATCH_TRANSFORM", "fallback_reason": "CapacityUnavailableError" | null,
     "input_bucket": "...", "input_key": "inference-input/<id>/input.jsonl",
     "output_bucket": "...", "output_key": "inference-output/<id>/<path>/input.jsonl.out"}

Environment: ``OUTPUT_BUCKET`` (where annotations/ is written).

Writes ``annotations/<id>/coco.json``, ``pointclouds.jsonl`` and ``summary.json`` and returns the
counts, the keys and ``requested_path``/``served_by``/``fallback_reason`` (so the run's output says
which path served it). Errors: ``ModelInvocationError`` (output lines missing, extra or out of
order; unknown category; a bbox that is not [x, y, w, h] inside its image; a score outside
0..1), ``InvalidFileError`` (a frame record without a positive width and height),
``InvalidInputError``, typed S3 errors.
"""

from __future__ import annotations

from typing import Any

from annotations import build
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import aws, config, observability, runtime
from shared.errors import InvalidInputError
from shared.events import validate_execution_id
from shared.routing import InferencePath

logger = Logger()
tracer = Tracer()
metrics = Metrics()

OUTPUT_BUCKET = config.env_str("OUTPUT_BUCKET", pattern=r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
S3 = runtime.register_client(aws.client("s3"))
_PATHS = {p.value for p in InferencePath}


def parse_event(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise InvalidInputError(f"event must be an object, got {type(event).__name__}")
    parsed: dict[str, Any] = {"execution_id": validate_execution_id(event.get("execution_id"))}
    for name in ("input_bucket", "input_key", "output_bucket", "output_key"):
        value = event.get(name)
        if not isinstance(value, str) or not value or len(value) > 1024:
            raise InvalidInputError(f"{name} must be a non-empty string of at most 1024 characters", field=name)
        parsed[name] = value
    for name in ("requested_path", "served_by"):
        if event.get(name) not in _PATHS:
            raise InvalidInputError(f"{name} must be one of {sorted(_PATHS)}, got {event.get(name)!r}", field=name)
        parsed[name] = event[name]
    reason = event.get("fallback_reason")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 256):
        raise InvalidInputError("fallback_reason must be a short string or null", field="fallback_reason")
    parsed["fallback_reason"] = reason
    return parsed


@observability.handler(logger, tracer, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_event(event)
    logger.append_keys(execution_id=request["execution_id"], served_by=request["served_by"])
    served = {k: request[k] for k in ("requested_path", "served_by", "fallback_reason")}
    summary = build(
        S3,
        execution_id=request["execution_id"],
        input_bucket=request["input_bucket"],
        input_key=request["input_key"],
        output_bucket=request["output_bucket"],
        output_key=request["output_key"],
        result_bucket=OUTPUT_BUCKET,
        served=served,
    )
    metrics.add_metric(name="Annotations", unit=MetricUnit.Count, value=summary["annotations"])
    logger.info("annotations written", extra={k: v for k, v in summary.items() if k != "keys"})
    return {
        "execution_id": request["execution_id"],
        **served,
        "records": summary["records"],
        "images": summary["images"],
        "annotations": summary["annotations"],
        "pointclouds": summary["pointclouds"],
        "pointclouds_ready": summary["pointclouds_ready"],
        "coco_key": summary["keys"]["coco"],
        "summary_key": summary["keys"]["summary"],
        "output_bucket": OUTPUT_BUCKET,
    }
