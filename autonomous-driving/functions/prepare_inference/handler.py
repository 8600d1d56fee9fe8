"""UC9 prepare inference: the JSONL inference input and every field the routing Choice reads.

Event::

    {"execution_id": "<execution name>", "execution_arn": "<execution ARN>",
     "expected_count": <videos + point clouds in the manifests>,
     "tolerated_failure_percentage": <0-100>}

Environment: ``OUTPUT_BUCKET``; ``INFERENCE_TYPE`` (none|serverless|components|provisioned, the
stack parameter); ``BATCH_THRESHOLD`` (files at or above which ``provisioned`` uses Batch
Transform); ``DEADLINE_MARGIN_MS``.

Writes ``inference-input/<execution_id>/input.jsonl`` and returns (no lists)::

    {"execution_id", "inference_type", "file_count", "batch_threshold", "max_record_bytes",
     "record_count", "frames", "pointclouds", "succeeded", "failed",
     "input_bucket", "input_key", "input_s3_uri",
     "transform_job_name", "fallback_job_name", "batch_output_s3_uri", "batch_output_key",
     "fallback_output_s3_uri", "fallback_output_key",
     "serverless_output_key", "realtime_output_key", "components_output_key"}

``inference_type``, ``file_count``, ``batch_threshold`` and ``max_record_bytes`` are exactly the
arguments of ``shared.routing.route``; the state machine's ``InferenceRouting`` Choice implements
it over them. Errors: ``TooManyFailuresError`` (more files failed than tolerated, every file failed,
or nothing to infer), ``InvalidInputError``, typed S3 errors.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from preparation import input_key, output_prefix, prepare, transform_job_name

from shared import aws, config, observability, runtime
from shared.batch import parse_tolerance
from shared.errors import InvalidInputError, TooManyFailuresError
from shared.events import validate_execution_id
from shared.retry import Deadline
from shared.routing import InferencePath, InferenceType, parse_inference_type

logger = Logger()
tracer = Tracer()
metrics = Metrics()

OUTPUT_BUCKET = config.env_str("OUTPUT_BUCKET", pattern=r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
INFERENCE_TYPE = parse_inference_type(config.env_str("INFERENCE_TYPE", choices=[t.value for t in InferenceType]))
BATCH_THRESHOLD = config.env_int("BATCH_THRESHOLD", 100, minimum=1, maximum=1_000_000)
DEADLINE_MARGIN_MS = config.env_int("DEADLINE_MARGIN_MS", 15_000, minimum=2_000, maximum=120_000)
OUT_FILE = "input.jsonl.out"

S3 = runtime.register_client(aws.client("s3"))


def parse_event(event: Any) -> tuple[str, str, int, float]:
    if not isinstance(event, dict):
        raise InvalidInputError(f"event must be an object, got {type(event).__name__}")
    execution_id = validate_execution_id(event.get("execution_id"))
    arn = event.get("execution_arn")
    if not isinstance(arn, str) or not arn.startswith("arn:") or len(arn) > 2048:
        raise InvalidInputError("execution_arn must be the execution's ARN", field="execution_arn")
    return execution_id, arn, *parse_tolerance(event)


def routing_facts(execution_id: str, execution_arn: str, counts: Any) -> dict[str, Any]:
    key = input_key(execution_id)
    batch = output_prefix(execution_id, InferencePath.BATCH_TRANSFORM.value)
    fallback = output_prefix(execution_id, "fallback-batch-transform")
    return {
        "execution_id": execution_id,
        "inference_type": INFERENCE_TYPE.value,
        "file_count": counts.succeeded,
        "batch_threshold": BATCH_THRESHOLD,
        "max_record_bytes": counts.max_record_bytes,
        "record_count": counts.records,
        "frames": counts.frames,
        "pointclouds": counts.pointclouds,
        "succeeded": counts.succeeded,
        "failed": counts.failed + counts.missing,
        "input_bucket": OUTPUT_BUCKET,
        "input_key": key,
        "input_s3_uri": f"s3://{OUTPUT_BUCKET}/{key}",
        "transform_job_name": transform_job_name(execution_arn),
        "fallback_job_name": transform_job_name(execution_arn, "-fallback"),
        "batch_output_s3_uri": f"s3://{OUTPUT_BUCKET}/{batch}",
        "batch_output_key": f"{batch}{OUT_FILE}",
        "fallback_output_s3_uri": f"s3://{OUTPUT_BUCKET}/{fallback}",
        "fallback_output_key": f"{fallback}{OUT_FILE}",
        **{
            f"{name}_output_key": f"{output_prefix(execution_id, path.value)}{OUT_FILE}"
            for name, path in (
                ("serverless", InferencePath.SERVERLESS_INFERENCE),
                ("realtime", InferencePath.REALTIME_ENDPOINT),
                ("components", InferencePath.INFERENCE_COMPONENTS),
            )
        },
    }


@observability.handler(logger, tracer, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    execution_id, execution_arn, expected, tolerance = parse_event(event)
    logger.append_keys(execution_id=execution_id)
    counts = prepare(
        S3,
        bucket=OUTPUT_BUCKET,
        execution_id=execution_id,
        expected_count=expected,
        tolerated_percentage=tolerance,
        deadline=Deadline.from_context(context, margin_ms=DEADLINE_MARGIN_MS),
    )
    if counts.records == 0:
        raise TooManyFailuresError(
            f"{counts.succeeded} files succeeded but yielded no frame or point cloud to infer",
            succeeded=counts.succeeded,
        )
    facts = routing_facts(execution_id, execution_arn, counts)
    metrics.add_metric(name="InferenceRecords", unit=MetricUnit.Count, value=counts.records)
    logger.info("inference input written", extra=facts)
    return facts
