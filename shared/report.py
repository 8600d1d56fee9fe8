"""Model-written reports: a bounded prompt, the Bedrock Converse call, the outputs and the notification.

Every pipeline ends the same way: facts from Athena go to a model with a prompt that can never
exceed its limit (``build_prompt``), the model's reply is checked (``converse``), and a Markdown
report plus a JSON summary are written beside the execution's other outputs
(``reports/<execution_id>/report.md`` and ``summary.json``, ``report_keys``) before one SNS message
points at them (``publish_report``).

The prompt is deterministic: above ``max_chars`` the long lists are cut to their first entries,
halving until the prompt fits, and the prompt states how many entries were left out; the other
facts always stay. Failures are typed: throttling and Bedrock's retryable model errors are
transient (the state machine retries), anything else is ``ModelInvocationError``.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shared.aws import AWS_ERRORS, mapped_errors
from shared.errors import ModelInvocationError, PipelineError, ServiceUnavailableError, from_client_error

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient

REPORTS_PREFIX = "reports"
# Bedrock model errors a retry can fix, beyond the throttling/5xx codes shared.errors knows.
TRANSIENT_MODEL_CODES = frozenset({"ModelTimeoutException", "ModelNotReadyException", "ServiceUnavailableException"})
SNS_SUBJECT_MAX = 100  # SNS: no line breaks or control characters, fewer than 100 characters
_TRUNCATION_MARKER = "\n[... truncated to fit the prompt limit]"


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
