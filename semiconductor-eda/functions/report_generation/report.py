"""The design review report: a bounded prompt, the Bedrock Converse call, Markdown and JSON outputs.

The prompt is built from the aggregate deterministically. Above ``max_chars`` the long lists
(findings, failed files) are cut to their first entries in key order, halving until the prompt
fits, and the prompt states how many entries were left out; the counts and tables always stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from shared.errors import InvalidInputError
from shared.report import (
    MAX_MESSAGE_CHARS,
    Draft,
    ModelReply,
    Prompt,
    ReportSettings,
    failed_files_table,
    markdown_table,
    model_notes,
    read_document,
    write_report,
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

_COUNT_FIELDS = ("expected", "total", "succeeded", "failed", "failed_records", "missing_records")
_RULE_FIELDS = ("multiple_or_no_top_cells", "unresolved_references", "empty_cells", "hierarchy_too_deep")


def _bad(field: str, expected: str, value: Any) -> InvalidInputError:
    shown = repr(value)
    return InvalidInputError(
        f"aggregate field {field} must be {expected}, got {shown[:80]}{'...' if len(shown) > 80 else ''}",
        field=field,
    )


def _count(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _bad(field, "an integer >= 0", value)
    return value


def _optional_text(value: Any, field: str) -> None:
    if value is not None and not isinstance(value, str):
        raise _bad(field, "a string or null", value)


def _objects(aggregate: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    entries = aggregate[name]
    if not isinstance(entries, list):
        raise _bad(name, "a list", entries)
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise _bad(f"{name}[{index}]", "an object", entry)
    return entries


def validate_aggregate(aggregate: Any) -> Mapping[str, Any]:
    """Check the aggregate's shape and the types of every field the report reads.

    ``InvalidInputError`` with ``details.field`` (e.g. ``counts.total``, ``findings[3].source_key``)
    names the first wrong field, so a bad aggregate never surfaces as a KeyError or TypeError."""
    required = ("execution_id", "counts", "formats", "units", "failures_by_type", "rules", *_LIST_FIELDS)
    if not isinstance(aggregate, Mapping):
        raise _bad("(document)", "an object", aggregate)
    for name in required:
        if name not in aggregate:
            raise InvalidInputError(f"the aggregate must have {', '.join(required)}; {name} is missing", field=name)
    if not isinstance(aggregate["execution_id"], str) or not aggregate["execution_id"]:
        raise _bad("execution_id", "a non-empty string", aggregate["execution_id"])
    counts = aggregate["counts"]
    if not isinstance(counts, Mapping):
        raise _bad("counts", "an object", counts)
    for name in _COUNT_FIELDS:
        _count(counts.get(name), f"counts.{name}")
    rules = aggregate["rules"]
    if not isinstance(rules, Mapping):
        raise _bad("rules", "an object", rules)
    _count(rules.get("max_hierarchy_depth"), "rules.max_hierarchy_depth")
    per_rule = rules.get("files_per_rule")
    if not isinstance(per_rule, Mapping):
        raise _bad("rules.files_per_rule", "an object", per_rule)
    for name in _RULE_FIELDS:
        _count(per_rule.get(name), f"rules.files_per_rule.{name}")
    for name in ("formats", "units"):
        _objects(aggregate, name)
    for index, entry in enumerate(_objects(aggregate, "failures_by_type")):
        _optional_text(entry.get("error_type"), f"failures_by_type[{index}].error_type")
        _count(entry.get("files"), f"failures_by_type[{index}].files")
    for name in _LIST_FIELDS:
        for index, entry in enumerate(_objects(aggregate, name)):
            if not isinstance(entry.get("source_key"), str):
                raise _bad(f"{name}[{index}].source_key", "a string", entry.get("source_key"))
            for text in ("format", "error_type", "error_message"):
                _optional_text(entry.get(text), f"{name}[{index}].{text}")
    if "files_with_findings" in aggregate:
        _count(aggregate["files_with_findings"], "files_with_findings")
    if not isinstance(aggregate.get("mixed_units", False), bool):
        raise _bad("mixed_units", "true or false", aggregate["mixed_units"])
    return aggregate


def build_prompt(aggregate: Mapping[str, Any], *, max_chars: int) -> Prompt:
    """The user message for the model, never longer than ``max_chars``."""
    return build_bounded_prompt(
        aggregate,
        intro=f"Review the layout metadata of pipeline execution {aggregate['execution_id']}.",
        max_chars=max_chars,
        list_fields=_LIST_FIELDS,
        hidden=("query_execution_ids",),
        field_limits={"error_message": MAX_MESSAGE_CHARS},
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
        failed_files_table(aggregate["failed_files"], max_rows=max_rows),
        "",
    ]
    shown_findings = min(len(aggregate["findings"]), max_rows)
    if aggregate.get("files_with_findings", 0) > shown_findings or len(aggregate["failed_files"]) > max_rows:
        parts.append("Lists are cut; the full lists are in the aggregate and the results table.")
    parts += model_notes(prompt, reply, noun="review")
    return "\n".join(parts) + "\n"


def read_aggregate(s3: S3Client, bucket: str, key: str, *, max_bytes: int) -> dict[str, Any]:
    return read_document(s3, bucket, key, max_bytes=max_bytes, validate=validate_aggregate)


def generate_report(
    s3: S3Client,
    sns: SNSClient,
    bedrock: BedrockRuntimeClient,
    settings: ReportSettings,
    *,
    execution_id: str,
    aggregate_key: str,
    deadline: Deadline,
) -> dict[str, Any]:
    """Read the aggregate, ask the model, write report.md + summary.json, publish the notification."""
    aggregate = read_aggregate(s3, settings.bucket, aggregate_key, max_bytes=settings.max_document_bytes)
    prompt = build_prompt(aggregate, max_chars=settings.model.max_prompt_chars)
    counts = aggregate["counts"]
    findings = aggregate.get("files_with_findings", 0)
    draft = Draft(
        SYSTEM_PROMPT,
        prompt,
        partial(render_markdown, aggregate),
        summary={
            "counts": counts,
            "files_with_findings": findings,
            "files_per_rule": aggregate["rules"]["files_per_rule"],
            "mixed_units": aggregate.get("mixed_units", False),
        },
        source=("aggregate", aggregate_key),
        subject=f"UC6 design review: {counts['failed']} failed, {findings} with findings",
        message_lines=[
            f"UC6 layout design review for execution {execution_id}",
            f"Files: {counts['total']} listed, {counts['succeeded']} read, {counts['failed']} failed",
            f"Files with design-rule findings: {findings}",
        ],
    )
    published = write_report(s3, sns, bedrock, draft, settings, execution_id=execution_id, deadline=deadline)
    return {"execution_id": execution_id, **published, "counts": counts}
