"""The design review report: a bounded prompt, the Bedrock Converse call, Markdown and JSON outputs.

The prompt is built from the aggregate deterministically. Above ``max_chars`` the long lists
(findings, failed files) are cut to their first entries in key order, halving until the prompt
fits, and the prompt states how many entries were left out; the counts and tables always stay.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared.aws import mapped_errors
from shared.errors import InvalidFileError
from shared.report import (
    ModelReply,
    Prompt,
    converse,
    markdown_table,
    model_summary,
    publish_report,
    report_keys,
)
from shared.report import build_prompt as build_bounded_prompt

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient

    from shared.retry import Deadline

SYSTEM_PROMPT = (
    "You are a senior physical-design engineer reviewing the layout database of a chip project. "
    "You receive statistics extracted from GDSII and OASIS files: per-format totals, database units, "
    "files that could not be read, and library-level design-rule findings (files with several or no "
    "top cells, references to undefined cells, empty cells, hierarchies deeper than the limit). "
    "Write a concise design review in Markdown with the sections: Summary, Risks, Findings, "
    "Recommended actions. Cite file keys exactly as given. Do not invent files or numbers."
)
_LIST_FIELDS = ("findings", "failed_files")
_MAX_MESSAGE_CHARS = 200
TEMPERATURE = 0.2


def validate_aggregate(aggregate: Any) -> Mapping[str, Any]:
    required = ("execution_id", "counts", "formats", "units", "failures_by_type", "rules", *_LIST_FIELDS)
    if not isinstance(aggregate, Mapping) or any(k not in aggregate for k in required):
        raise InvalidFileError(f"the aggregate must be an object with {', '.join(required)}")
    return aggregate


def build_prompt(aggregate: Mapping[str, Any], *, max_chars: int) -> Prompt:
    """The user message for the model, never longer than ``max_chars``."""
    return build_bounded_prompt(
        aggregate,
        intro=f"Review the layout metadata of pipeline execution {aggregate['execution_id']}.",
        max_chars=max_chars,
        list_fields=_LIST_FIELDS,
        hidden=("query_execution_ids",),
        field_limits={"error_message": _MAX_MESSAGE_CHARS},
    )


def render_markdown(
    aggregate: Mapping[str, Any], reply: ModelReply, *, model_id: str, prompt: Prompt, max_rows: int = 50
) -> str:
    counts = aggregate["counts"]
    rules = aggregate["rules"]
    parts = [
        f"# Layout design review - execution {aggregate['execution_id']}",
        "",
        markdown_table(
            ["files listed", "succeeded", "failed", "files with findings", "mixed units"],
            [[counts["total"], counts["succeeded"], counts["failed"], aggregate.get("files_with_findings", 0),
              "yes" if aggregate.get("mixed_units") else "no"]],
        ),
        "",
        f"## Review ({model_id})",
        "",
        reply.text,
        "",
        "## Appendix: extracted statistics",
        "",
        "### Formats",
        "",
        markdown_table(
            ["format", "files", "bytes", "cells", "elements", "placements", "max depth"],
            [[f.get("format"), f.get("files"), f.get("total_bytes"), f.get("cells"), f.get("elements"),
              f.get("placements"), f.get("max_depth")] for f in aggregate["formats"]],
        ),
        "",
        "### Database units",
        "",
        markdown_table(
            ["database unit (m)", "user unit", "files"],
            [[u.get("db_unit_meters"), u.get("user_unit"), u.get("files")] for u in aggregate["units"]],
        ),
        "",
        f"### Design-rule findings (hierarchy depth limit {rules['max_hierarchy_depth']})",
        "",
        markdown_table(["rule", "files"], [[name, count] for name, count in rules["files_per_rule"].items()]),
        "",
        markdown_table(
            ["file", "format", "top cells", "unresolved references", "empty cells", "depth"],
            [[f.get("source_key"), f.get("format"), f.get("top_cell_count"), f.get("unresolved_reference_count"),
              f.get("empty_cell_count"), f.get("max_hierarchy_depth")] for f in aggregate["findings"][:max_rows]],
        ),
        "",
        "### Files that could not be read",
        "",
        markdown_table(
            ["error type", "files"],
            [[f.get("error_type"), f.get("files")] for f in aggregate["failures_by_type"]],
        ),
        "",
        markdown_table(
            ["file", "error type", "message"],
            [[f.get("source_key"), f.get("error_type"), (f.get("error_message") or "")[:_MAX_MESSAGE_CHARS]]
             for f in aggregate["failed_files"][:max_rows]],
        ),
        "",
    ]
    shown_findings = min(len(aggregate["findings"]), max_rows)
    if aggregate.get("files_with_findings", 0) > shown_findings or len(aggregate["failed_files"]) > max_rows:
        parts.append("Lists are cut; the full lists are in the aggregate and the results table.")
    if prompt.truncated:
        parts.append(f"The model saw shortened lists ({prompt.omitted}).")
    if reply.stop_reason == "max_tokens":
        parts.append("The model's review was cut at the output token limit.")
    return "\n".join(parts) + "\n"


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
    """Read the aggregate, ask the model, write report.md + summary.json, publish the notification."""
    aggregate = read_aggregate(s3, bucket, aggregate_key, max_bytes=max_aggregate_bytes)
    prompt = build_prompt(aggregate, max_chars=max_prompt_chars)
    deadline.check("calling Bedrock")
    reply = converse(
        bedrock,
        model_id=model_id,
        system_prompt=SYSTEM_PROMPT,
        prompt=prompt,
        max_tokens=max_output_tokens,
        temperature=TEMPERATURE,
    )
    keys = report_keys(execution_id)
    markdown = render_markdown(aggregate, reply, model_id=model_id, prompt=prompt)
    counts = aggregate["counts"]
    findings = aggregate.get("files_with_findings", 0)
    summary = {
        "execution_id": execution_id,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "counts": counts,
        "files_with_findings": findings,
        "files_per_rule": aggregate["rules"]["files_per_rule"],
        "mixed_units": aggregate.get("mixed_units", False),
        "report": f"s3://{bucket}/{keys.report}",
        "aggregate": f"s3://{bucket}/{aggregate_key}",
        "model": model_summary(model_id, reply, prompt),
    }
    published = publish_report(
        s3,
        sns,
        bucket=bucket,
        keys=keys,
        markdown=markdown,
        summary=summary,
        topic_arn=topic_arn,
        subject=f"UC6 design review: {counts['failed']} failed, {findings} with findings",
        message_lines=[
            f"UC6 layout design review for execution {execution_id}",
            f"Files: {counts['total']} listed, {counts['succeeded']} read, {counts['failed']} failed",
            f"Files with design-rule findings: {findings}",
        ],
        execution_id=execution_id,
    )
    return {"execution_id": execution_id, **published, "counts": counts}
