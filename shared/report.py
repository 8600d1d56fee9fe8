"""Model-written reports: a bounded prompt, the Bedrock Converse call, the outputs and the notification.

Every pipeline ends the same way: facts from Athena go to a model with a prompt that can never
exceed its limit (``build_prompt``), the model's reply is checked (``converse``), and a Markdown
report plus a JSON summary are written beside the execution's other outputs
(``reports/<execution_id>/report.md`` and ``summary.json``, ``report_keys``) before one SNS message
points at them (``publish_report``). ``write_report`` is that whole step for a use case's ``Draft``
(its prompt, its Markdown around the model's text, its summary facts and its notification);
``read_document``, ``parse_report_event``, ``ModelSettings`` and ``report_clients`` are what every
report function reads, checks and configures the same way.

The prompt is deterministic: above ``max_chars`` the long lists are cut to their first entries,
halving until the prompt fits, and the prompt states how many entries were left out; the other
facts always stay. Failures are typed: throttling and Bedrock's retryable model errors are
transient (the state machine retries), anything else is ``ModelInvocationError``.
"""

from __future__ import annotations

import datetime as dt
import json
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shared import aws, config, runtime
from shared.aws import AWS_ERRORS, mapped_errors
from shared.errors import (
    InvalidFileError,
    InvalidInputError,
    ModelInvocationError,
    PipelineError,
    ServiceUnavailableError,
    from_client_error,
)
from shared.events import validate_execution_id

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient

    from shared.retry import Deadline

REPORTS_PREFIX = "reports"
# Bedrock model errors a retry can fix, beyond the throttling/5xx codes shared.errors knows.
TRANSIENT_MODEL_CODES = frozenset({"ModelTimeoutException", "ModelNotReadyException", "ServiceUnavailableException"})
SNS_SUBJECT_MAX = 100  # SNS: no line breaks or control characters, fewer than 100 characters
_TRUNCATION_MARKER = "\n[... truncated to fit the prompt limit]"
MAX_MESSAGE_CHARS = 200  # an error message or evidence string, in the prompt and the report tables
TEMPERATURE = 0.2
MODEL_ID_PATTERN = r"[a-z0-9-]{1,63}\.[a-zA-Z0-9.:-]{1,200}"
TOPIC_ARN_PATTERN = r"arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_.-]{1,256}"


# --------------------------------------------------------------------------- configuration + input


@dataclass(frozen=True)
class ModelSettings:
    model_id: str
    max_prompt_chars: int
    max_output_tokens: int

    @classmethod
    def from_environment(cls) -> ModelSettings:
        """``BEDROCK_MODEL_ID`` (required), ``MAX_PROMPT_CHARS``, ``MAX_OUTPUT_TOKENS``."""
        return cls(
            model_id=config.env_str("BEDROCK_MODEL_ID", pattern=MODEL_ID_PATTERN),
            max_prompt_chars=config.env_int("MAX_PROMPT_CHARS", 24_000, minimum=2_000, maximum=400_000),
            max_output_tokens=config.env_int("MAX_OUTPUT_TOKENS", 2_048, minimum=256, maximum=8_192),
        )


@dataclass(frozen=True)
class ReportSettings:
    """A report function's configuration: where it reads and writes, whom it notifies, its model."""

    bucket: str
    topic_arn: str
    model: ModelSettings
    max_document_bytes: int  # the largest source document read
    deadline_margin_ms: int = 150_000

    @classmethod
    def from_environment(cls, *, max_bytes_variable: str, max_bytes_default: int) -> ReportSettings:
        """``OUTPUT_BUCKET``, ``TOPIC_ARN``, the model's variables, ``max_bytes_variable`` and
        ``DEADLINE_MARGIN_MS`` (a Bedrock call needs that much time left: one full read timeout
        plus writing the outputs)."""
        return cls(
            bucket=config.env_bucket("OUTPUT_BUCKET"),
            topic_arn=config.env_str("TOPIC_ARN", pattern=TOPIC_ARN_PATTERN),
            model=ModelSettings.from_environment(),
            max_document_bytes=config.env_int(max_bytes_variable, max_bytes_default, minimum=1024),
            deadline_margin_ms=config.env_int("DEADLINE_MARGIN_MS", 150_000, minimum=1_000, maximum=280_000),
        )


def report_clients(output_bucket: str) -> tuple[S3Client, SNSClient, BedrockRuntimeClient]:
    """The S3, SNS and Bedrock Runtime clients of a report function, registered with ``runtime``
    and primed; call at module scope (SnapStart snapshots them)."""
    s3 = runtime.register_client(aws.client("s3"))
    sns = runtime.register_client(aws.client("sns"))
    # Model replies can take a while: a longer read timeout, and few attempts so two fit in the
    # function's timeout (Step Functions retries transient failures after that).
    bedrock = runtime.register_client(aws.client("bedrock-runtime", read_timeout=120, max_attempts=2))
    runtime.prime(runtime.warm_client(s3, "get_object", Bucket=output_bucket, Key=f"{REPORTS_PREFIX}/warm-up"))
    return s3, sns, bedrock


def parse_report_event(event: Any, output_bucket: str, *, document: str) -> tuple[str, str]:
    """``(execution_id, key)`` of ``{"execution_id", "<document>_bucket", "<document>_key"}``: the
    bucket must be the output bucket and the key ``reports/<execution_id>/<document>.json``."""
    if not isinstance(event, dict):
        raise InvalidInputError(f"event must be an object, got {type(event).__name__}")
    execution_id = validate_execution_id(event.get("execution_id"))
    bucket, key = event.get(f"{document}_bucket"), event.get(f"{document}_key")
    if bucket != output_bucket:
        raise InvalidInputError(f"{document}_bucket must be the output bucket {output_bucket!r}, got {bucket!r}")
    expected = f"{REPORTS_PREFIX}/{execution_id}/{document}.json"
    if key != expected:
        raise InvalidInputError(f"{document}_key must be {expected}, got {key!r}")
    return execution_id, key


def read_document(
    s3: S3Client, bucket: str, key: str, *, max_bytes: int, validate: Callable[[Any], Mapping[str, Any]]
) -> dict[str, Any]:
    """The JSON object at ``key``, checked by ``validate``; larger than ``max_bytes`` or not JSON
    -> ``InvalidFileError`` (``validate`` raises its own typed errors)."""
    with mapped_errors("GetObject"):
        reply = s3.get_object(Bucket=bucket, Key=key)
        if reply["ContentLength"] > max_bytes:
            raise InvalidFileError(f"s3://{bucket}/{key} is {reply['ContentLength']} bytes, more than {max_bytes}")
        body = reply["Body"].read()
    try:
        return dict(validate(json.loads(body)))
    except ValueError as e:
        raise InvalidFileError(f"s3://{bucket}/{key} is not JSON: {e}") from e


# --------------------------------------------------------------------------- the prompt


@dataclass(frozen=True)
class Prompt:
    text: str
    omitted: dict[str, int]

    @property
    def truncated(self) -> bool:
        return any(self.omitted.values())


def _facts(
    facts: Mapping[str, Any],
    keep: int | None,
    list_fields: Sequence[str],
    hidden: Sequence[str],
    field_limits: Mapping[str, int],
) -> tuple[dict[str, Any], dict[str, int]]:
    shown = {k: v for k, v in facts.items() if k not in (*hidden, *list_fields)}
    omitted: dict[str, int] = {}
    for name in list_fields:
        entries = [dict(e) for e in facts[name]]
        for entry in entries:
            for key, limit in field_limits.items():
                if isinstance(entry.get(key), str):
                    entry[key] = entry[key][:limit]
        kept = entries if keep is None else entries[:keep]
        shown[name] = kept
        omitted[name] = len(entries) - len(kept)
    return shown, omitted


def build_prompt(
    facts: Mapping[str, Any],
    *,
    intro: str,
    max_chars: int,
    list_fields: Sequence[str] = (),
    hidden: Sequence[str] = (),
    field_limits: Mapping[str, int] | None = None,
) -> Prompt:
    """``intro``, a note on what was left out, then the facts as JSON; never over ``max_chars``.

    ``list_fields`` name the lists of objects (in ``facts``) that may be cut, ``hidden`` the keys
    the model does not see; ``field_limits`` cut string fields of the list entries (messages).
    """
    limits = dict(field_limits or {})
    keep: int | None = None
    longest = max((len(facts[name]) for name in list_fields), default=0)
    while True:
        shown, omitted = _facts(facts, keep, list_fields, hidden, limits)
        note = ""
        if any(omitted.values()):
            parts = [f"{count} {name.replace('_', ' ')}" for name, count in omitted.items() if count]
            note = f"\nFor length, these entries were left out of the lists below: {', '.join(parts)}.\n"
        text = f"{intro}{note}\n```json\n{json.dumps(shown, ensure_ascii=False, indent=1, sort_keys=True)}\n```"
        if len(text) <= max_chars:
            return Prompt(text=text, omitted=omitted)
        if keep == 0 or not list_fields:
            # Even without list entries it does not fit: cut the text itself (still deterministic).
            return Prompt(text=text[: max_chars - len(_TRUNCATION_MARKER)] + _TRUNCATION_MARKER, omitted=omitted)
        keep = longest // 2 if keep is None else keep // 2


# --------------------------------------------------------------------------- the model


@dataclass(frozen=True)
class ModelReply:
    text: str
    stop_reason: str
    input_tokens: int
    output_tokens: int


def converse(
    bedrock: BedrockRuntimeClient,
    *,
    model_id: str,
    system_prompt: str,
    prompt: Prompt,
    max_tokens: int,
    temperature: float,
) -> ModelReply:
    """Call the Converse API; transient failures raise retryable errors, others ModelInvocationError."""
    try:
        reply = bedrock.converse(
            modelId=model_id,
            system=[{"text": system_prompt}],
            messages=[{"role": "user", "content": [{"text": prompt.text}]}],
            inferenceConfig={"maxTokens": max_tokens, "temperature": temperature},
        )
    except AWS_ERRORS as e:
        error: PipelineError = from_client_error(e, "Converse")
        code = e.response.get("Error", {}).get("Code", "") if isinstance(e, ClientError) else ""
        if code in TRANSIENT_MODEL_CODES:
            error = ServiceUnavailableError(error.message, **error.details)
        elif not error.transient:
            error = ModelInvocationError(f"Bedrock model {model_id}: {error.message}", **error.details)
        raise error from e
    content = reply.get("output", {}).get("message", {}).get("content", [])
    text = "\n".join(block["text"] for block in content if isinstance(block, Mapping) and block.get("text"))
    stop_reason = str(reply.get("stopReason", ""))
    if not text.strip():
        raise ModelInvocationError(
            f"Bedrock model {model_id} returned no text (stopReason {stop_reason or 'missing'})",
            stop_reason=stop_reason,
        )
    usage = reply.get("usage", {})
    return ModelReply(
        text=text.strip(),
        stop_reason=stop_reason,
        input_tokens=int(usage.get("inputTokens", 0)),
        output_tokens=int(usage.get("outputTokens", 0)),
    )


def model_summary(model_id: str, reply: ModelReply, prompt: Prompt) -> dict[str, Any]:
    """The ``model`` section of a report summary: what was asked of which model and what it used."""
    return {
        "id": model_id,
        "stop_reason": reply.stop_reason,
        "input_tokens": reply.input_tokens,
        "output_tokens": reply.output_tokens,
        "prompt_chars": len(prompt.text),
        "prompt_omitted": prompt.omitted,
    }


# --------------------------------------------------------------------------- Markdown


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table; ``|`` in a cell is escaped and line breaks become spaces (None is empty)."""

    def cell(value: Any) -> str:
        return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def failed_files_table(entries: Sequence[Mapping[str, Any]], *, max_rows: int) -> str:
    """The table of the first ``max_rows`` files that could not be read: file, error type, message."""
    return markdown_table(
        ["file", "error type", "message"],
        [
            [f.get("source_key"), f.get("error_type"), (f.get("error_message") or "")[:MAX_MESSAGE_CHARS]]
            for f in entries[:max_rows]
        ],
    )


def model_notes(prompt: Prompt, reply: ModelReply, *, noun: str) -> list[str]:
    """The report's closing notes on what the model saw and wrote (``noun``: "report", "review")."""
    notes = []
    if prompt.truncated:
        notes.append(f"The model saw shortened lists ({prompt.omitted}).")
    if reply.stop_reason == "max_tokens":
        notes.append(f"The model's {noun} was cut at the output token limit.")
    return notes


# --------------------------------------------------------------------------- outputs + notification


@dataclass(frozen=True)
class ReportKeys:
    report: str  # Markdown
    summary: str  # JSON


def report_keys(execution_id: str, *, prefix: str = REPORTS_PREFIX) -> ReportKeys:
    """The execution-scoped keys of the report and its summary."""
    folder = f"{prefix}/{execution_id}"
    return ReportKeys(report=f"{folder}/report.md", summary=f"{folder}/summary.json")


def sns_subject(text: str) -> str:
    """``text`` as a valid SNS subject: no line breaks or control characters, fewer than 100
    characters (SNS refuses the Publish otherwise)."""
    cleaned = "".join(c for c in " ".join(text.split()) if not unicodedata.category(c).startswith("C"))
    return cleaned[: SNS_SUBJECT_MAX - 1].rstrip() or "report"


def publish_report(
    s3: S3Client,
    sns: SNSClient,
    *,
    bucket: str,
    keys: ReportKeys,
    markdown: str,
    summary: Mapping[str, Any],
    topic_arn: str,
    subject: str,
    message_lines: Sequence[str],
    execution_id: str,
) -> dict[str, Any]:
    """Write the report and the summary, then publish one notification naming both.

    The message is ``message_lines`` followed by the two S3 locations; the execution id is also a
    message attribute (for subscription filter policies). Returns the keys and the message id.
    """
    with mapped_errors("PutObject"):
        s3.put_object(Bucket=bucket, Key=keys.report, Body=markdown.encode("utf-8"), ContentType="text/markdown")
        s3.put_object(
            Bucket=bucket,
            Key=keys.summary,
            Body=json.dumps(summary, indent=1).encode("utf-8"),
            ContentType="application/json",
        )
    message = "\n".join(
        [*message_lines, f"Report: s3://{bucket}/{keys.report}", f"Summary: s3://{bucket}/{keys.summary}"]
    )
    with mapped_errors("Publish"):
        published = sns.publish(
            TopicArn=topic_arn,
            Subject=sns_subject(subject),
            Message=message,
            MessageAttributes={"execution_id": {"DataType": "String", "StringValue": execution_id}},
        )
    return {"report_key": keys.report, "summary_key": keys.summary, "message_id": published["MessageId"]}


# --------------------------------------------------------------------------- the whole step


@dataclass(frozen=True)
class Draft:
    """A use case's report before the model has written its part."""

    system_prompt: str
    prompt: Prompt
    # the Markdown around the model's text: render(reply, model_id=..., prompt=...)
    render: Callable[..., str]
    summary: Mapping[str, Any]  # the use case's facts in summary.json
    source: tuple[str, str]  # (name, key) of the document the report was built from
    subject: str
    message_lines: Sequence[str]


def utc_now() -> str:
    """The current time as ``2026-01-31T12:00:00Z``."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def write_report(
    s3: S3Client,
    sns: SNSClient,
    bedrock: BedrockRuntimeClient,
    draft: Draft,
    settings: ReportSettings,
    *,
    execution_id: str,
    deadline: Deadline,
    temperature: float = TEMPERATURE,
) -> dict[str, Any]:
    """Ask the model (if there is time for it), write report.md + summary.json, publish the
    notification. The summary: ``execution_id``, ``generated_at``, the draft's facts, ``report``,
    the source document and ``model``. Returns the keys and the message id."""
    bucket, model_id = settings.bucket, settings.model.model_id
    deadline.check("calling Bedrock")
    reply = converse(
        bedrock,
        model_id=model_id,
        system_prompt=draft.system_prompt,
        prompt=draft.prompt,
        max_tokens=settings.model.max_output_tokens,
        temperature=temperature,
    )
    keys = report_keys(execution_id)
    source_name, source_key = draft.source
    summary = {
        "execution_id": execution_id,
        "generated_at": utc_now(),
        **draft.summary,
        "report": f"s3://{bucket}/{keys.report}",
        source_name: f"s3://{bucket}/{source_key}",
        "model": model_summary(model_id, reply, draft.prompt),
    }
    return publish_report(
        s3,
        sns,
        bucket=bucket,
        keys=keys,
        markdown=draft.render(reply, model_id=model_id, prompt=draft.prompt),
        summary=summary,
        topic_arn=settings.topic_arn,
        subject=draft.subject,
        message_lines=draft.message_lines,
        execution_id=execution_id,
    )
