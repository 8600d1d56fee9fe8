"""UC6 report generation: Bedrock design review, Markdown report + JSON summary, SNS notification.

Event::

    {"execution_id": "<execution name>", "aggregate_bucket": "<output bucket>",
     "aggregate_key": "reports/<execution_id>/aggregate.json"}

Writes ``reports/<execution_id>/report.md`` and ``summary.json`` beside the aggregate, publishes
their locations and the counts to the SNS topic and returns the keys and the message id.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from report import build_prompt, converse, render_markdown, validate_aggregate

from shared import aws, config, runtime
from shared.aws import mapped_errors
from shared.errors import InvalidFileError, InvalidInputError
from shared.events import validate_execution_id
from shared.retry import Deadline

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient

logger = Logger()
tracer = Tracer()
metrics = Metrics()

OUTPUT_BUCKET = config.env_str("OUTPUT_BUCKET", pattern=r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
MODEL_ID = config.env_str("BEDROCK_MODEL_ID", pattern=r"[a-z0-9-]{1,63}\.[a-zA-Z0-9.:-]{1,200}")
TOPIC_ARN = config.env_str("TOPIC_ARN", pattern=r"arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]{1,256}")
MAX_PROMPT_CHARS = config.env_int("MAX_PROMPT_CHARS", 24_000, minimum=2_000, maximum=400_000)
MAX_OUTPUT_TOKENS = config.env_int("MAX_OUTPUT_TOKENS", 2_048, minimum=256, maximum=8_192)
MAX_AGGREGATE_BYTES = config.env_int("MAX_AGGREGATE_BYTES", 16 * 1024 * 1024, minimum=1024)
# A Bedrock call needs this much time left: one full read timeout plus writing the outputs.
DEADLINE_MARGIN_MS = config.env_int("DEADLINE_MARGIN_MS", 150_000, minimum=1_000, maximum=280_000)
TEMPERATURE = 0.2

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


def read_aggregate(s3: S3Client, bucket: str, key: str, *, max_bytes: int) -> dict[str, Any]:
    with mapped_errors("GetObject"):
        reply = s3.get_object(Bucket=bucket, Key=key)
        if reply["ContentLength"] > max_bytes:
            raise InvalidFileError(f"s3://{bucket}/{key} is {reply['ContentLength']} bytes, more than {max_bytes}")
        body = reply["Body"].read()
    try:
        return dict(validate_aggregate(json.loads(body)))
    except ValueError as e:
        raise InvalidFileError(f"s3://{bucket}/{key} is not JSON: {e}") from e


def generate_report(
    s3: S3Client,
    sns: SNSClient,
    bedrock: BedrockRuntimeClient,
    *,
    bucket: str,
    execution_id: str,
    aggregate_key: str,
    model_id: str,
    topic_arn: str,
    max_prompt_chars: int,
    max_output_tokens: int,
    max_aggregate_bytes: int,
    deadline: Deadline,
) -> dict[str, Any]:
    aggregate = read_aggregate(s3, bucket, aggregate_key, max_bytes=max_aggregate_bytes)
    prompt = build_prompt(aggregate, max_chars=max_prompt_chars)
    deadline.check("calling Bedrock")
    reply = converse(bedrock, model_id=model_id, prompt=prompt, max_tokens=max_output_tokens, temperature=TEMPERATURE)
    prefix = aggregate_key.rsplit("/", 1)[0]
    report_key, summary_key = f"{prefix}/report.md", f"{prefix}/summary.json"
    markdown = render_markdown(aggregate, reply, model_id=model_id, prompt=prompt)
    counts = aggregate["counts"]
    summary = {
        "execution_id": execution_id,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "counts": counts,
        "files_with_findings": aggregate.get("files_with_findings", 0),
        "files_per_rule": aggregate["rules"]["files_per_rule"],
        "mixed_units": aggregate.get("mixed_units", False),
        "report": f"s3://{bucket}/{report_key}",
        "aggregate": f"s3://{bucket}/{aggregate_key}",
        "model": {
            "id": model_id,
            "stop_reason": reply.stop_reason,
            "input_tokens": reply.input_tokens,
            "output_tokens": reply.output_tokens,
            "prompt_chars": len(prompt.text),
            "prompt_omitted": prompt.omitted,
        },
    }
    with mapped_errors("PutObject"):
        s3.put_object(Bucket=bucket, Key=report_key, Body=markdown.encode("utf-8"), ContentType="text/markdown")
        s3.put_object(
            Bucket=bucket,
            Key=summary_key,
            Body=json.dumps(summary, indent=1).encode("utf-8"),
            ContentType="application/json",
        )
    message = "\n".join(
        [
            f"UC6 layout design review for execution {execution_id}",
            f"Files: {counts['total']} listed, {counts['succeeded']} read, {counts['failed']} failed",
            f"Files with design-rule findings: {summary['files_with_findings']}",
            f"Report: s3://{bucket}/{report_key}",
            f"Summary: s3://{bucket}/{summary_key}",
        ]
    )
    subject = f"UC6 design review: {counts['failed']} failed, {summary['files_with_findings']} with findings"
    with mapped_errors("Publish"):
        published = sns.publish(
            TopicArn=topic_arn,
            Subject=subject[:100],
            Message=message,
            MessageAttributes={"execution_id": {"DataType": "String", "StringValue": execution_id}},
        )
    return {
        "execution_id": execution_id,
        "report_key": report_key,
        "summary_key": summary_key,
        "message_id": published["MessageId"],
        "counts": counts,
    }


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
