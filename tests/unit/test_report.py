"""shared.report: the bounded prompt, Converse through a Stubber (typed errors), Markdown tables,
the report + summary written to execution-scoped keys and the SNS notification (moto)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from shared.errors import (
    AccessDeniedError,
    ConfigurationError,
    DeadlineExceededError,
    InvalidFileError,
    InvalidInputError,
    ModelInvocationError,
    ServiceUnavailableError,
    ThrottlingError,
)
from shared.report import (
    SNS_SUBJECT_MAX,
    Draft,
    ModelReply,
    ModelSettings,
    Prompt,
    ReportSettings,
    build_prompt,
    converse,
    failed_files_table,
    markdown_table,
    model_notes,
    model_summary,
    parse_report_event,
    publish_report,
    read_document,
    report_keys,
    sns_subject,
    write_report,
)
from shared.retry import Deadline

pytestmark = pytest.mark.unit

MODEL = "amazon.nova-lite-v1:0"


def facts(entries: int = 3) -> dict[str, Any]:
    return {
        "execution_id": "exec-1",
        "counts": {"total": entries},
        "findings": [{"key": f"k{i:04d}", "message": "m" * 500} for i in range(entries)],
        "failed": [{"key": f"f{i:04d}"} for i in range(entries)],
        "secret_ids": {"q": "q-1"},
    }


def test_prompt_shows_everything_that_fits_and_hides_what_is_hidden():
    prompt = build_prompt(facts(), intro="Review it.", max_chars=10_000, list_fields=("findings", "failed"),
                          hidden=("secret_ids",), field_limits={"message": 20})
    assert prompt.text.startswith("Review it.\n```json\n")
    assert not prompt.truncated
    assert prompt.omitted == {"findings": 0, "failed": 0}
    shown = json.loads(prompt.text.split("```json\n", 1)[1].rsplit("\n```", 1)[0])
    assert "secret_ids" not in shown
    assert shown["findings"][0]["message"] == "m" * 20
    assert [f["key"] for f in shown["failed"]] == ["f0000", "f0001", "f0002"]


def test_long_lists_are_cut_to_their_first_entries_and_the_prompt_says_so():
    prompt = build_prompt(facts(400), intro="Review it.", max_chars=5_000, list_fields=("findings", "failed"),
                          field_limits={"message": 20})
    assert len(prompt.text) <= 5_000
    assert prompt.truncated
    kept = 400 - prompt.omitted["findings"]
    assert kept > 0
    assert all(f"k{i:04d}" in prompt.text for i in range(kept))
    assert f"k{kept:04d}" not in prompt.text
    assert f"{prompt.omitted['findings']} findings" in prompt.text
    assert "counts" in prompt.text


def test_a_prompt_that_cannot_fit_even_without_lists_is_cut_with_a_marker():
    big = {"execution_id": "e", "blob": "x" * 10_000}
    prompt = build_prompt(big, intro="Review.", max_chars=2_000)
    assert len(prompt.text) == 2_000
    assert prompt.text.endswith("[... truncated to fit the prompt limit]")


@pytest.fixture
def bedrock():
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber


def reply(text: str = "## Summary\nFine.", stop: str = "end_turn") -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}] if text else []}},
        "stopReason": stop,
        "usage": {"inputTokens": 12, "outputTokens": 3, "totalTokens": 15},
        "metrics": {"latencyMs": 9},
    }


def test_converse_sends_the_system_prompt_and_limits_and_returns_the_text(bedrock):
    client, stubber = bedrock
    expected = {"modelId": MODEL, "system": [{"text": "You review."}],
                "messages": [{"role": "user", "content": [{"text": "hi"}]}],
                "inferenceConfig": {"maxTokens": 256, "temperature": 0.2}}
    stubber.add_response("converse", reply("  ## Summary\nFine.  "), expected)
    answer = converse(client, model_id=MODEL, system_prompt="You review.", prompt=Prompt("hi", {}),
                      max_tokens=256, temperature=0.2)
    assert answer == ModelReply(text="## Summary\nFine.", stop_reason="end_turn", input_tokens=12, output_tokens=3)
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("code", "status", "raised"),
    [
        ("ThrottlingException", 429, ThrottlingError),
        ("ModelTimeoutException", 408, ServiceUnavailableError),
        ("ModelNotReadyException", 429, ServiceUnavailableError),
        ("ServiceUnavailableException", 503, ServiceUnavailableError),
        ("AccessDeniedException", 403, ModelInvocationError),
        ("ValidationException", 400, ModelInvocationError),
        ("ResourceNotFoundException", 404, ModelInvocationError),
    ],
)
def test_converse_errors_are_typed(bedrock, code, status, raised):
    client, stubber = bedrock
    stubber.add_client_error("converse", service_error_code=code, http_status_code=status)
    with pytest.raises(raised) as info:
        converse(client, model_id=MODEL, system_prompt="s", prompt=Prompt("hi", {}), max_tokens=256, temperature=0)
    assert not isinstance(info.value, AccessDeniedError)  # a model refusal is the model's error


def test_an_empty_model_reply_is_a_model_error(bedrock):
    client, stubber = bedrock
    stubber.add_response("converse", reply(text="", stop="content_filtered"))
    with pytest.raises(ModelInvocationError, match="no text") as raised:
        converse(client, model_id=MODEL, system_prompt="s", prompt=Prompt("hi", {}), max_tokens=256, temperature=0)
    assert raised.value.details["stop_reason"] == "content_filtered"


def test_model_summary_names_what_was_used():
    summary = model_summary(MODEL, ModelReply("t", "max_tokens", 5, 6), Prompt("abc", {"findings": 2}))
    assert summary == {"id": MODEL, "stop_reason": "max_tokens", "input_tokens": 5, "output_tokens": 6,
                       "prompt_chars": 3, "prompt_omitted": {"findings": 2}}


def test_markdown_table_escapes_cells():
    table = markdown_table(["a", "b"], [["x|y", None], ["line\nbreak", 3]])
    assert table.splitlines() == ["| a | b |", "|---|---|", "| x\\|y |  |", "| line break | 3 |"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("plain", "plain"), ("two\nlines\r\n", "two lines"), ("tab\there\x07", "tab here"), ("ä ünïcode", "ä ünïcode"),
     ("", "report"), ("x" * 300, "x" * (SNS_SUBJECT_MAX - 1))],
)
def test_sns_subjects_are_what_sns_accepts(text, expected):
    assert sns_subject(text) == expected


def test_report_keys_are_execution_scoped():
    keys = report_keys("exec-1")
    assert (keys.report, keys.summary) == ("reports/exec-1/report.md", "reports/exec-1/summary.json")
    assert report_keys("e", prefix="acl-reports").report == "acl-reports/e/report.md"


def test_publish_writes_both_outputs_then_notifies(aws, output_bucket):
    sns = aws.client("sns")
    sqs = aws.client("sqs")
    topic = sns.create_topic(Name="reports")["TopicArn"]
    queue = sqs.create_queue(QueueName="q")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    s3 = aws.client("s3")
    keys = report_keys("exec-1")
    published = publish_report(
        s3, sns, bucket=output_bucket, keys=keys, markdown="# Report ä\n", summary={"counts": {"failed": 1}},
        topic_arn=topic, subject="Review:\n1 failed", message_lines=["Review for exec-1", "1 failed"],
        execution_id="exec-1",
    )
    assert published["report_key"] == keys.report
    assert published["summary_key"] == keys.summary
    assert published["message_id"]
    assert s3.get_object(Bucket=output_bucket, Key=keys.report)["Body"].read().decode() == "# Report ä\n"
    assert json.loads(s3.get_object(Bucket=output_bucket, Key=keys.summary)["Body"].read()) == {
        "counts": {"failed": 1}}
    message = sqs.receive_message(QueueUrl=queue)["Messages"][0]["Body"]
    assert message.splitlines() == ["Review for exec-1", "1 failed", f"Report: s3://{output_bucket}/{keys.report}",
                                    f"Summary: s3://{output_bucket}/{keys.summary}"]


def test_publish_fails_typed_when_the_topic_is_missing(aws, output_bucket):
    from shared.errors import NotFoundError

    with pytest.raises(NotFoundError):
        publish_report(
            aws.client("s3"), aws.client("sns"), bucket=output_bucket, keys=report_keys("e"), markdown="x",
            summary={}, topic_arn="arn:aws:sns:us-east-1:123456789012:missing", subject="s", message_lines=[],
            execution_id="e",
        )


# --------------------------------------------------------------------------- the whole step


def test_report_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("OUTPUT_BUCKET", "out-bucket")
    monkeypatch.setenv("TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:reports")
    monkeypatch.setenv("BEDROCK_MODEL_ID", MODEL)
    monkeypatch.setenv("MAX_OUTPUT_TOKENS", "512")
    monkeypatch.setenv("MAX_DOC_BYTES", "4096")
    settings = ReportSettings.from_environment(max_bytes_variable="MAX_DOC_BYTES", max_bytes_default=10**6)
    assert settings == ReportSettings("out-bucket", "arn:aws:sns:us-east-1:123456789012:reports",
                                      ModelSettings(MODEL, 24_000, 512), max_document_bytes=4096,
                                      deadline_margin_ms=150_000)
    monkeypatch.setenv("TOPIC_ARN", "reports")
    with pytest.raises(ConfigurationError, match="TOPIC_ARN"):
        ReportSettings.from_environment(max_bytes_variable="MAX_DOC_BYTES", max_bytes_default=10**6)


@pytest.mark.parametrize(
    "event",
    [
        [],
        {"execution_id": "e", "aggregate_bucket": "other", "aggregate_key": "reports/e/aggregate.json"},
        {"execution_id": "e", "aggregate_bucket": "out", "aggregate_key": "reports/x/aggregate.json"},
        {"execution_id": "e", "aggregate_bucket": "out", "aggregate_key": "reports/e/findings.json"},
        {"execution_id": "a b", "aggregate_bucket": "out", "aggregate_key": "reports/a b/aggregate.json"},
    ],
)
def test_report_events_name_the_output_bucket_and_the_execution_scoped_document(event):
    with pytest.raises(InvalidInputError):
        parse_report_event(event, "out", document="aggregate")


def test_a_report_event_gives_the_execution_and_the_document_key():
    event = {"execution_id": "e", "findings_bucket": "out", "findings_key": "reports/e/findings.json"}
    assert parse_report_event(event, "out", document="findings") == ("e", "reports/e/findings.json")


def test_read_document_bounds_the_size_and_types_bad_json(aws, output_bucket):
    s3 = aws.client("s3")
    s3.put_object(Bucket=output_bucket, Key="d.json", Body=b'{"a": 1}')
    assert read_document(s3, output_bucket, "d.json", max_bytes=100, validate=lambda d: d) == {"a": 1}
    with pytest.raises(InvalidFileError, match="more than 4"):
        read_document(s3, output_bucket, "d.json", max_bytes=4, validate=lambda d: d)
    s3.put_object(Bucket=output_bucket, Key="bad.json", Body=b"{not json")
    with pytest.raises(InvalidFileError, match="not JSON"):
        read_document(s3, output_bucket, "bad.json", max_bytes=100, validate=lambda d: d)


def test_failed_files_and_model_notes():
    table = failed_files_table([{"source_key": "a", "error_type": "E", "error_message": "m" * 300}] * 3, max_rows=2)
    assert table.splitlines()[2:] == [f"| a | E | {'m' * 200} |"] * 2
    assert model_notes(Prompt("p", {"findings": 0}), ModelReply("t", "end_turn", 1, 1), noun="review") == []
    assert model_notes(Prompt("p", {"findings": 3}), ModelReply("t", "max_tokens", 1, 1), noun="review") == [
        "The model saw shortened lists ({'findings': 3}).", "The model's review was cut at the output token limit."]


def draft(**changes: Any) -> Draft:
    values: dict[str, Any] = {
        "system_prompt": "You review.",
        "prompt": Prompt("facts", {}),
        "render": lambda reply, *, model_id, prompt: f"# Review\n{reply.text}\n({model_id}, {len(prompt.text)})\n",
        "summary": {"counts": {"failed": 1}},
        "source": ("aggregate", "reports/exec-1/aggregate.json"),
        "subject": "Review: 1 failed",
        "message_lines": ["Review for exec-1"],
    }
    return Draft(**{**values, **changes})


def test_write_report_asks_the_model_then_writes_and_notifies(aws, output_bucket, bedrock):
    client, stubber = bedrock
    stubber.add_response("converse", reply(), {"modelId": MODEL, "system": [{"text": "You review."}],
                                               "messages": [{"role": "user", "content": [{"text": "facts"}]}],
                                               "inferenceConfig": {"maxTokens": 512, "temperature": 0.2}})
    topic = aws.client("sns").create_topic(Name="reports")["TopicArn"]
    settings = ReportSettings(output_bucket, topic, ModelSettings(MODEL, 10_000, 512), max_document_bytes=10**6)
    s3 = aws.client("s3")
    published = write_report(s3, aws.client("sns"), client, draft(), settings, execution_id="exec-1",
                             deadline=Deadline.after(60))
    assert (published["report_key"], published["summary_key"]) == ("reports/exec-1/report.md",
                                                                   "reports/exec-1/summary.json")
    markdown = s3.get_object(Bucket=output_bucket, Key=published["report_key"])["Body"].read().decode()
    assert markdown == f"# Review\n## Summary\nFine.\n({MODEL}, 5)\n"
    summary = json.loads(s3.get_object(Bucket=output_bucket, Key=published["summary_key"])["Body"].read())
    assert list(summary) == ["execution_id", "generated_at", "counts", "report", "aggregate", "model"]
    assert summary["aggregate"] == f"s3://{output_bucket}/reports/exec-1/aggregate.json"
    assert summary["model"]["output_tokens"] == 3
    stubber.assert_no_pending_responses()


def test_write_report_without_time_for_the_model_writes_nothing(aws, output_bucket, bedrock):
    client, _ = bedrock  # no stubbed reply: a call would fail the test
    settings = ReportSettings(output_bucket, "arn:aws:sns:us-east-1:123456789012:t", ModelSettings(MODEL, 10_000, 512),
                              max_document_bytes=10**6)
    with pytest.raises(DeadlineExceededError):
        write_report(aws.client("s3"), aws.client("sns"), client, draft(), settings, execution_id="exec-1",
                     deadline=Deadline.after(0))
    assert aws.client("s3").list_objects_v2(Bucket=output_bucket).get("KeyCount", 0) == 0
