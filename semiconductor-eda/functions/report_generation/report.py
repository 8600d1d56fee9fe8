"""The design review report: a bounded prompt, the Bedrock Converse call, Markdown and JSON outputs.

The prompt is built from the aggregate deterministically. Above ``max_chars`` the long lists
(findings, failed files) are cut to their first entries in key order, halving until the prompt
fits, and the prompt states how many entries were left out; the counts and tables always stay.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from shared.aws import AWS_ERRORS
from shared.errors import (
    InvalidFileError,
    ModelInvocationError,
    PipelineError,
    ServiceUnavailableError,
    from_client_error,
)

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

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
# Bedrock model errors a retry can fix, beyond the throttling/5xx codes shared.errors knows.
_TRANSIENT_MODEL_CODES = frozenset({"ModelTimeoutException", "ModelNotReadyException", "ServiceUnavailableException"})


@dataclass(frozen=True)
class Prompt:
    text: str
    omitted: dict[str, int]

    @property
    def truncated(self) -> bool:
        return any(self.omitted.values())


def validate_aggregate(aggregate: Any) -> Mapping[str, Any]:
    required = ("execution_id", "counts", "formats", "units", "failures_by_type", "rules", *_LIST_FIELDS)
    if not isinstance(aggregate, Mapping) or any(k not in aggregate for k in required):
        raise InvalidFileError(f"the aggregate must be an object with {', '.join(required)}")
    return aggregate


def _facts(aggregate: Mapping[str, Any], keep: int | None) -> tuple[dict[str, Any], dict[str, int]]:
    facts = {k: v for k, v in aggregate.items() if k not in ("query_execution_ids", *_LIST_FIELDS)}
    omitted: dict[str, int] = {}
    for name in _LIST_FIELDS:
        entries = [dict(e) for e in aggregate[name]]
        for entry in entries:
            if isinstance(entry.get("error_message"), str):
                entry["error_message"] = entry["error_message"][:_MAX_MESSAGE_CHARS]
        kept = entries if keep is None else entries[:keep]
        facts[name] = kept
        omitted[name] = len(entries) - len(kept)
    return facts, omitted


def build_prompt(aggregate: Mapping[str, Any], *, max_chars: int) -> Prompt:
    """The user message for the model, never longer than ``max_chars``."""
    keep: int | None = None
    longest = max(len(aggregate[name]) for name in _LIST_FIELDS)
    while True:
        facts, omitted = _facts(aggregate, keep)
        note = ""
        if any(omitted.values()):
            parts = [f"{count} {name.replace('_', ' ')}" for name, count in omitted.items() if count]
            note = f"\nFor length, these entries were left out of the lists below: {', '.join(parts)}.\n"
        text = (
            "Review the layout metadata of pipeline execution "
            f"{aggregate['execution_id']}.{note}\n```json\n"
            f"{json.dumps(facts, ensure_ascii=False, indent=1, sort_keys=True)}\n```"
        )
        if len(text) <= max_chars:
            return Prompt(text=text, omitted=omitted)
        if keep == 0:
            # Even without list entries it does not fit: cut the text itself (still deterministic).
            marker = "\n[... truncated to fit the prompt limit]"
            return Prompt(text=text[: max_chars - len(marker)] + marker, omitted=omitted)
        keep = longest // 2 if keep is None else keep // 2


@dataclass(frozen=True)
class ModelReply:
    text: str
    stop_reason: str
    input_tokens: int
    output_tokens: int


def converse(
    bedrock: BedrockRuntimeClient, *, model_id: str, prompt: Prompt, max_tokens: int, temperature: float
) -> ModelReply:
    """Call the Converse API; transient failures raise retryable errors, others ModelInvocationError."""
    try:
        reply = bedrock.converse(
            modelId=model_id,
            system=[{"text": SYSTEM_PROMPT}],
            messages=[{"role": "user", "content": [{"text": prompt.text}]}],
            inferenceConfig={"maxTokens": max_tokens, "temperature": temperature},
        )
    except AWS_ERRORS as e:
        error: PipelineError = from_client_error(e, "Converse")
        code = e.response.get("Error", {}).get("Code", "") if isinstance(e, ClientError) else ""
        if code in _TRANSIENT_MODEL_CODES:
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


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        return str(value if value is not None else "").replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def render_markdown(
    aggregate: Mapping[str, Any], reply: ModelReply, *, model_id: str, prompt: Prompt, max_rows: int = 50
) -> str:
    counts = aggregate["counts"]
    rules = aggregate["rules"]
    parts = [
        f"# Layout design review - execution {aggregate['execution_id']}",
        "",
        _table(
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
        _table(
            ["format", "files", "bytes", "cells", "elements", "placements", "max depth"],
            [[f.get("format"), f.get("files"), f.get("total_bytes"), f.get("cells"), f.get("elements"),
              f.get("placements"), f.get("max_depth")] for f in aggregate["formats"]],
        ),
        "",
        "### Database units",
        "",
        _table(
            ["database unit (m)", "user unit", "files"],
            [[u.get("db_unit_meters"), u.get("user_unit"), u.get("files")] for u in aggregate["units"]],
        ),
        "",
        f"### Design-rule findings (hierarchy depth limit {rules['max_hierarchy_depth']})",
        "",
        _table(["rule", "files"], [[name, count] for name, count in rules["files_per_rule"].items()]),
        "",
        _table(
            ["file", "format", "top cells", "unresolved references", "empty cells", "depth"],
            [[f.get("source_key"), f.get("format"), f.get("top_cell_count"), f.get("unresolved_reference_count"),
              f.get("empty_cell_count"), f.get("max_hierarchy_depth")] for f in aggregate["findings"][:max_rows]],
        ),
        "",
        "### Files that could not be read",
        "",
        _table(
            ["error type", "files"],
            [[f.get("error_type"), f.get("files")] for f in aggregate["failures_by_type"]],
        ),
        "",
        _table(
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
