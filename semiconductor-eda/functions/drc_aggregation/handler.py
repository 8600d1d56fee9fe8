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

from typing import Any

from aggregation import aggregate_execution
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import aws, config, observability, runtime
from shared.athena import IDENTIFIER_RE, QuerySettings
from shared.batch import parse_tolerance
from shared.errors import InvalidInputError
from shared.events import validate_execution_id
from shared.retry import Deadline

logger = Logger()
tracer = Tracer()
metrics = Metrics()

OUTPUT_BUCKET = config.env_bucket("OUTPUT_BUCKET")
SETTINGS = QuerySettings.from_environment(OUTPUT_BUCKET)
GLUE_TABLE = config.env_str("GLUE_TABLE", "file_metadata", pattern=IDENTIFIER_RE.pattern)
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
    return execution_id, *parse_tolerance(event)


@observability.handler(logger, tracer, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    execution_id, expected, tolerance = parse_event(event)
    logger.append_keys(execution_id=execution_id)
    result = aggregate_execution(
        ATHENA,
        S3,
        settings=SETTINGS,
        table=GLUE_TABLE,
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
