"""UC6 report generation: Bedrock design review, Markdown report + JSON summary, SNS notification.

Event::

    {"execution_id": "<execution name>", "aggregate_bucket": "<output bucket>",
     "aggregate_key": "reports/<execution_id>/aggregate.json"}

Writes ``reports/<execution_id>/report.md`` and ``summary.json`` beside the aggregate, publishes
their locations and the counts to the SNS topic and returns the keys and the message id.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from report import generate_report

from shared import observability
from shared.report import ReportSettings, parse_report_event, report_clients
from shared.retry import Deadline

logger = Logger()
tracer = Tracer()
metrics = Metrics()

SETTINGS = ReportSettings.from_environment(
    max_bytes_variable="MAX_AGGREGATE_BYTES", max_bytes_default=16 * 1024 * 1024
)
S3, SNS, BEDROCK = report_clients(SETTINGS.bucket)


def parse_event(event: Any, output_bucket: str) -> tuple[str, str]:
    return parse_report_event(event, output_bucket, document="aggregate")


@observability.handler(logger, tracer, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    execution_id, key = parse_event(event, SETTINGS.bucket)
    logger.append_keys(execution_id=execution_id)
    deadline = Deadline.from_context(context, margin_ms=SETTINGS.deadline_margin_ms)
    result = generate_report(
        S3, SNS, BEDROCK, SETTINGS, execution_id=execution_id, aggregate_key=key, deadline=deadline
    )
    metrics.add_metric(name="ReportsWritten", unit=MetricUnit.Count, value=1)
    logger.info("report published", extra=result)
    return result
