"""UC6 DRC aggregation: Athena statistics and design-rule findings for one execution.

Event::

    {"execution_id": "<execution name>", "expected_count": <files in the manifest>,
     "tolerated_failure_percentage": <0-100>}

Writes ``reports/<execution_id>/aggregate.json`` and returns its location with the counts. Then
enforces the item tolerance: files with a FAILED record plus files with no record at all (their
batch crashed and the Map tolerated it) count as failed; more than the tolerance, or no success
at all, raises ``TooManyFailuresError`` (after the aggregate is written, for diagnosis).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aggregation import (
    QUERIES,
    QueryRun,
    QuerySettings,
    build_aggregate,
    enforce_tolerance,
)
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import aws, config, runtime
from shared.aws import mapped_errors
from shared.errors import InvalidInputError
from shared.events import validate_execution_id
from shared.retry import Deadline

if TYPE_CHECKING:
    from mypy_boto3_athena import AthenaClient
    from mypy_boto3_s3 import S3Client

logger = Logger()
tracer = Tracer()
metrics = Metrics()

OUTPUT_BUCKET = config.env_str("OUTPUT_BUCKET", pattern=r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
SETTINGS = QuerySettings(
    workgroup=config.env_str("ATHENA_WORKGROUP", pattern=r"[a-zA-Z0-9._-]{1,128}"),
    database=config.env_str("GLUE_DATABASE", pattern=r"[a-z_][a-z0-9_]{0,254}"),
    table=config.env_str("GLUE_TABLE", "file_metadata", pattern=r"[a-z_][a-z0-9_]{0,254}"),
    # A created workgroup enforces its own location; an existing one may not have any.
    output_location=f"s3://{OUTPUT_BUCKET}/athena-results/",
)
MAX_HIERARCHY_DEPTH = config.env_int("MAX_HIERARCHY_DEPTH", 32, minimum=1, maximum=1000)
# Time kept back to stop queries and write the aggregate before the Lambda timeout.
DEADLINE_MARGIN_MS = config.env_int("DEADLINE_MARGIN_MS", 15_000, minimum=5_000, maximum=120_000)
# Stopping queries may use the margin above down to this: time to raise the error and return.
STOP_MARGIN_MS = 2_000

ATHENA = runtime.register_client(aws.client("athena"))
S3 = runtime.register_client(aws.client("s3"))
runtime.prime(runtime.warm_client(S3, "head_object", Bucket=OUTPUT_BUCKET, Key="reports/warm-up"))


def parse_event(event: Any) -> tuple[str, int, float]:
    if not isinstance(event, dict):
        raise InvalidInputError(f"event must be an object, got {type(event).__name__}")
    execution_id = validate_execution_id(event.get("execution_id"))
    expected = event.get("expected_count")
    if isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
        raise InvalidInputError(f"expected_count must be an integer >= 0, got {expected!r}")
    tolerance = event.get("tolerated_failure_percentage")
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not 0 <= tolerance <= 100:
        raise InvalidInputError(f"tolerated_failure_percentage must be a number from 0 to 100, got {tolerance!r}")
    return execution_id, expected, float(tolerance)


def aggregate_key(execution_id: str) -> str:
    return f"reports/{execution_id}/aggregate.json"


def aggregate_execution(
    athena: AthenaClient,
    s3: S3Client,
    *,
    settings: QuerySettings,
    output_bucket: str,
    execution_id: str,
    expected_count: int,
    tolerated_percentage: float,
    max_depth: int,
    deadline: Deadline,
    stop_deadline: Deadline | None = None,
) -> dict[str, Any]:
    queries = QueryRun(athena, deadline=deadline, stop_deadline=stop_deadline)
    query_ids = queries.start(settings, execution_id, max_depth)
    logger.info("queries started", extra={"query_execution_ids": query_ids})
    queries.wait()
    results = {name: queries.rows(name) for name in QUERIES}
    aggregate, counts = build_aggregate(
        execution_id,
        results,
        expected_count=expected_count,
        tolerated_percentage=tolerated_percentage,
        max_depth=max_depth,
        query_ids=query_ids,
    )
    key = aggregate_key(execution_id)
    body = json.dumps(aggregate, ensure_ascii=False, indent=1, allow_nan=False).encode("utf-8")
    with mapped_errors("PutObject"):
        s3.put_object(Bucket=output_bucket, Key=key, Body=body, ContentType="application/json")
    enforce_tolerance(counts, tolerated_percentage)
    return {
        "execution_id": execution_id,
        "aggregate_bucket": output_bucket,
        "aggregate_key": key,
        "total": counts.total,
        "succeeded": counts.succeeded,
        "failed": counts.failed,
        "findings": aggregate["files_with_findings"],
    }


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    execution_id, expected, tolerance = parse_event(event)
    logger.append_keys(execution_id=execution_id)
    result = aggregate_execution(
        ATHENA,
        S3,
        settings=SETTINGS,
        output_bucket=OUTPUT_BUCKET,
        execution_id=execution_id,
        expected_count=expected,
        tolerated_percentage=tolerance,
        max_depth=MAX_HIERARCHY_DEPTH,
        deadline=Deadline.from_context(context, margin_ms=DEADLINE_MARGIN_MS),
        stop_deadline=Deadline.from_context(context, margin_ms=STOP_MARGIN_MS),
    )
    metrics.add_metric(name="FilesWithFindings", unit=MetricUnit.Count, value=result["findings"])
    logger.info("aggregate written", extra=result)
    return result
