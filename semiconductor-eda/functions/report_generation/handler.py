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

from shared import aws, config, runtime
from shared.errors import InvalidInputError
from shared.events import validate_execution_id
from shared.retry import Deadline

logger = Logger()
tracer = Tracer()
metrics = Metrics()

OUTPUT_BUCKET = config.env_bucket("OUTPUT_BUCKET")
MODEL_ID = config.env_str("BEDROCK_MODEL_ID", pattern=r"[a-z0-9-]{1,63}\.[a-zA-Z0-9.:-]{1,200}")
TOPIC_ARN = config.env_str("TOPIC_ARN", pattern=r"arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]{1,256}")
MAX_PROMPT_CHARS = config.env_int("MAX_PROMPT_CHARS", 24_000, minimum=2_000, maximum=400_000)
MAX_OUTPUT_TOKENS = config.env_int("MAX_OUTPUT_TOKENS", 2_048, minimum=256, maximum=8_192)
MAX_AGGREGATE_BYTES = config.env_int("MAX_AGGREGATE_BYTES", 16 * 1024 * 1024, minimum=1024)
# A Bedrock call needs this much time left: one full read timeout plus writing the outputs.
DEADLINE_MARGIN_MS = config.env_int("DEADLINE_MARGIN_MS", 150_000, minimum=1_000, maximum=280_000)

S3 = runtime.register_client(aws.client("s3"))
SNS = runtime.register_client(aws.client("sns"))
# Model replies can take a while: a longer read timeout, and few attempts so two fit in the
# function's timeout (Step Functions retries transient failures after that).
BEDROCK = runtime.register_client(aws.client("bedrock-runtime", read_timeout=120, max_attempts=2))
runtime.prime(runtime.warm_client(S3, "get_object", Bucket=OUTPUT_BUCKET, Key="reports/warm-up"))


def parse_event(event: Any, output_bucket: str) -> tuple[str, str]:
    if not isinstance(event, dict):
        raise InvalidInputError(f"event must be an object, got {type(event).__name__}")
    execution_id = validate_execution_id(event.get("execution_id"))
    bucket = event.get("aggregate_bucket")
    key = event.get("aggregate_key")
    if bucket != output_bucket:
        raise InvalidInputError(f"aggregate_bucket must be the output bucket {output_bucket!r}, got {bucket!r}")
    if key != f"reports/{execution_id}/aggregate.json":
        raise InvalidInputError(f"aggregate_key must be reports/{execution_id}/aggregate.json, got {key!r}")
    return execution_id, key


@logger.inject_lambda_context(log_event=False)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    execution_id, key = parse_event(event, OUTPUT_BUCKET)
    logger.append_keys(execution_id=execution_id)
    result = generate_report(
        S3,
        SNS,
        BEDROCK,
        bucket=OUTPUT_BUCKET,
        execution_id=execution_id,
        aggregate_key=key,
        model_id=MODEL_ID,
        topic_arn=TOPIC_ARN,
        max_prompt_chars=MAX_PROMPT_CHARS,
        max_output_tokens=MAX_OUTPUT_TOKENS,
        max_aggregate_bytes=MAX_AGGREGATE_BYTES,
        deadline=Deadline.from_context(context, margin_ms=DEADLINE_MARGIN_MS),
    )
    metrics.add_metric(name="ReportsWritten", unit=MetricUnit.Count, value=1)
    logger.info("report published", extra=result)
    return result
