"""report_generation: bounded prompt, Converse through a Stubber, outputs in S3, SNS notification."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import DeadlineExceededError, InvalidInputError, ModelInvocationError, ThrottlingError
from shared.report import ModelSettings, Prompt, ReportSettings, converse
from tests.support.events import load_event
from tests.support.lambda_context import FakeLambdaContext
from tests.support.uc06 import EVENTS, load_function

pytestmark = pytest.mark.unit

MODEL = "amazon.nova-lite-v1:0"
R = load_function("report_generation", "report")


def aggregate(findings: int = 3, failed: int = 1, execution: str = "exec-9") -> dict:
    return {
        "execution_id": execution,
        "counts": {"expected": 10, "total": 10, "succeeded": 10 - failed, "failed": failed,
                   "failed_records": failed, "missing_records": 0},
        "tolerated_failure_percentage": 10.0,
        "formats": [{"format": "GDSII", "files": 9, "total_bytes": 9000, "cells": 40, "elements": 300,
                     "placements": 20, "max_depth": 4, "compressed_blocks": 0}],
        "units": [{"db_unit_meters": 1e-9, "user_unit": 0.001, "files": 9}],
        "mixed_units": False,
        "failures_by_type": [{"error_type": "TruncatedFileError", "files": failed}],
        "rules": {"max_hierarchy_depth": 32, "files_per_rule": {"multiple_or_no_top_cells": findings,
                                                                  "unresolved_references": 0, "empty_cells": 0,
                                                                  "hierarchy_too_deep": 0}},
        "files_with_findings": findings,
        "findings": [{"source_key": f"designs/f{i:05d}.gds", "format": "GDSII", "top_cell_count": 2,
                      "unresolved_reference_count": 0, "empty_cell_count": 0, "max_hierarchy_depth": 3,
                      "cell_count": 4} for i in range(findings)],
        "findings_truncated": False,
        "failed_files": [{"source_key": f"designs/cut{i}.oas", "error_type": "TruncatedFileError",
                          "error_message": "x" * 5000} for i in range(failed)],
        "failed_files_truncated": False,
        "query_execution_ids": {"status": "q1"},
    }


@settings(max_examples=50, deadline=None)
@given(findings=st.integers(0, 3000), failed=st.integers(0, 300), limit=st.integers(2_000, 60_000))
def test_prompt_is_bounded_and_deterministic(findings, failed, limit):
    data = aggregate(findings, failed)
    prompt = R.report.build_prompt(data, max_chars=limit)
    assert len(prompt.text) <= limit
    assert prompt == R.report.build_prompt(data, max_chars=limit)
    assert prompt.omitted["findings"] <= findings
    if not prompt.truncated:
        assert all(f["source_key"] in prompt.text for f in data["findings"])
    else:
        # Kept entries are the first ones in key order.
        kept = findings - prompt.omitted["findings"]
        assert all(f"designs/f{i:05d}.gds" in prompt.text for i in range(kept))


@pytest.fixture
def fn(monkeypatch, aws, output_bucket):
    topic = aws.client("sns").create_topic(Name="uc6-reports")["TopicArn"]
    monkeypatch.setenv("OUTPUT_BUCKET", output_bucket)
    monkeypatch.setenv("BEDROCK_MODEL_ID", MODEL)
    monkeypatch.setenv("TOPIC_ARN", topic)
    module = load_function("report_generation", "handler", "report")
    module.topic = topic
    return module


@pytest.fixture
def bedrock():
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber


def converse_reply(text: str = "## Summary\nAll good.", stop: str = "end_turn") -> dict:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}] if text else []}},
        "stopReason": stop,
        "usage": {"inputTokens": 1200, "outputTokens": 300, "totalTokens": 1500},
        "metrics": {"latencyMs": 900},
    }


def put_aggregate(aws: Any, bucket: str, data: dict[str, Any]) -> None:
    aws.client("s3").put_object(Bucket=bucket, Key=f"reports/{data['execution_id']}/aggregate.json",
                                Body=json.dumps(data).encode())


def test_report_summary_and_notification(fn, aws, output_bucket, bedrock, monkeypatch):
    client, stubber = bedrock
    stubber.add_response("converse", converse_reply(),
                         {"modelId": MODEL, "system": ANY, "messages": ANY, "inferenceConfig": ANY})
    monkeypatch.setattr(fn.handler, "BEDROCK", client)
    sqs = aws.client("sqs")
    queue = sqs.create_queue(QueueName="q")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    aws.client("sns").subscribe(TopicArn=fn.topic, Protocol="sqs", Endpoint=queue_arn,
                                Attributes={"RawMessageDelivery": "true"})
    put_aggregate(aws, output_bucket, aggregate(execution="uc6-sample-0001"))
    event = load_event(EVENTS, "report_generation", aggregate_bucket=output_bucket)
    reply = fn.handler.handler(event, FakeLambdaContext(remaining_ms=300_000))
    assert reply["report_key"] == "reports/uc6-sample-0001/report.md"
    assert reply["summary_key"] == "reports/uc6-sample-0001/summary.json"
    s3 = aws.client("s3")
    markdown = s3.get_object(Bucket=output_bucket, Key=reply["report_key"])["Body"].read().decode()
    assert "## Summary\nAll good." in markdown
    assert "designs/f00000.gds" in markdown
    summary = json.loads(s3.get_object(Bucket=output_bucket, Key=reply["summary_key"])["Body"].read())
    assert summary["counts"]["failed"] == 1
    assert summary["model"]["output_tokens"] == 300
    message = sqs.receive_message(QueueUrl=queue)["Messages"][0]["Body"]
    assert f"s3://{output_bucket}/reports/uc6-sample-0001/report.md" in message
    assert "1 failed" in message
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "status", "raised"),
    [
        ("ThrottlingException", 429, ThrottlingError),
        ("AccessDeniedException", 403, ModelInvocationError),
        ("ValidationException", 400, ModelInvocationError),
    ],
)
def test_bedrock_errors_are_typed(fn, aws, output_bucket, bedrock, code, status, raised):  # noqa: PLR0917
    client, stubber = bedrock
    stubber.add_client_error("converse", service_error_code=code, http_status_code=status)
    put_aggregate(aws, output_bucket, aggregate())
    with pytest.raises(raised):
        fn.handler.generate_report(
            aws.client("s3"), aws.client("sns"), client,
            ReportSettings(output_bucket, fn.topic, ModelSettings(MODEL, 10_000, 512), max_document_bytes=10**6),
            execution_id="exec-9", aggregate_key="reports/exec-9/aggregate.json", deadline=_Deadline(),
        )


def test_empty_model_reply_is_a_model_error(fn, aws, output_bucket, bedrock):
    client, stubber = bedrock
    stubber.add_response("converse", converse_reply(text="", stop="content_filtered"))
    with pytest.raises(ModelInvocationError, match="no text"):
        converse(client, model_id=MODEL, system_prompt=R.report.SYSTEM_PROMPT, prompt=Prompt("hi", {}),
                 max_tokens=256, temperature=0)


def test_no_time_for_a_model_call_raises_deadline(fn, aws, output_bucket):
    put_aggregate(aws, output_bucket, aggregate(execution="uc6-sample-0001"))
    event = load_event(EVENTS, "report_generation", aggregate_bucket=output_bucket)
    with pytest.raises(DeadlineExceededError):
        fn.handler.handler(event, FakeLambdaContext(remaining_ms=100_000))  # below the 150 s margin


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"execution_id": "e", "aggregate_bucket": "other-bucket", "aggregate_key": "reports/e/aggregate.json"},
        {"execution_id": "e", "aggregate_bucket": "pipeline-output-bucket",
         "aggregate_key": "reports/x/aggregate.json"},
    ],
)
def test_bad_input(fn, bad):
    with pytest.raises(InvalidInputError):
        fn.handler.handler(bad, FakeLambdaContext(remaining_ms=300_000))


class _Deadline:
    def check(self, what: str) -> None:
        pass

    def remaining_seconds(self) -> float:
        return 300.0
