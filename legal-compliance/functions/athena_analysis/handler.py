"""UC1 Athena analysis handler: the excessive-permission findings of one execution.

Event::

    {"execution_id": "<execution name>", "expected_count": <files in the manifest>,
     "tolerated_failure_percentage": <0-100>,
     "rules": {"sensitive_path_pattern": "<regex>", "allowed_owners": "DOMAIN\\a,DOMAIN\\b"}}

Writes ``reports/<execution_id>/findings.json`` (``analysis.py``) and returns its location, the
counts and the findings per rule; then enforces the failure tolerance (``TooManyFailuresError``).
"""

from __future__ import annotations

from typing import Any

from analysis import AnalysisSettings, analyse
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import aws, config, observability, runtime
from shared.athena import IDENTIFIER_RE, QueryRun, QuerySettings
from shared.batch import parse_tolerance
from shared.errors import InvalidInputError
from shared.events import validate_execution_id
from shared.retry import Deadline

logger = Logger()
tracer = Tracer()
metrics = Metrics()

OUTPUT_BUCKET = config.env_bucket("OUTPUT_BUCKET")
QUERY_SETTINGS = QuerySettings.from_environment(OUTPUT_BUCKET)
TABLE = config.env_str("GLUE_TABLE", "file_acls", pattern=IDENTIFIER_RE.pattern)
MAX_FINDINGS = config.env_int("MAX_FINDINGS", 100_000, minimum=1, maximum=1_000_000)
# Time kept back to stop queries and write the findings before the Lambda timeout.
DEADLINE_MARGIN_MS = config.env_int("DEADLINE_MARGIN_MS", 15_000, minimum=5_000, maximum=120_000)
STOP_MARGIN_MS = 2_000

ATHENA = runtime.register_client(aws.client("athena"))
S3 = runtime.register_client(aws.client("s3"))
runtime.prime(runtime.warm_client(S3, "head_object", Bucket=OUTPUT_BUCKET, Key="reports/warm-up"))


def parse_event(event: Any) -> tuple[str, int, float, AnalysisSettings]:
    if not isinstance(event, dict):
        raise InvalidInputError(f"event must be an object, got {type(event).__name__}")
    execution_id = validate_execution_id(event.get("execution_id"))
    expected, tolerance = parse_tolerance(event)
    settings = AnalysisSettings.parse(event.get("rules"), query=QUERY_SETTINGS, table=TABLE, max_findings=MAX_FINDINGS)
    return execution_id, expected, tolerance, settings


@observability.handler(logger, tracer, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    execution_id, expected, tolerance, settings = parse_event(event)
    logger.append_keys(execution_id=execution_id)
    run = QueryRun(
        ATHENA,
        deadline=Deadline.from_context(context, margin_ms=DEADLINE_MARGIN_MS),
        stop_deadline=Deadline.from_context(context, margin_ms=STOP_MARGIN_MS),
    )
    result = analyse(
        S3,
        run,
        settings=settings,
        output_bucket=OUTPUT_BUCKET,
        execution_id=execution_id,
        expected_count=expected,
        tolerated_percentage=tolerance,
    )
    metrics.add_metric(name="Findings", unit=MetricUnit.Count, value=result["finding_count"])
    logger.info("analysis done", extra=result)
    return result
