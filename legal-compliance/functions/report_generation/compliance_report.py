"""The compliance report: findings.json -> a bounded prompt -> Bedrock -> Markdown + JSON -> SNS.

Built on ``shared.report``: the prompt never exceeds its limit (the findings and failed-file lists
are cut first, and the prompt says how many entries it left out), the model's reply is checked,
and the report, the summary and the notification go where every pipeline puts them
(``reports/<execution_id>/report.md``, ``summary.json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING, Any

from shared.errors import InvalidFileError
from shared.report import (
    MAX_MESSAGE_CHARS,
    Draft,
    ModelReply,
    Prompt,
    ReportSettings,
    build_prompt,
    failed_files_table,
    markdown_table,
    model_notes,
    read_document,
    write_report,
)

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient

    from shared.retry import Deadline

SYSTEM_PROMPT = (
    "You are an information-security auditor reviewing NTFS permissions on a corporate legal file "
    "share (Amazon FSx for NetApp ONTAP). You receive the findings of an automated audit: broad groups "
    "(Everyone, Authenticated Users, Domain Users) with full control or change, ACL inheritance disabled "
    "on sensitive paths, SIDs that no longer resolve to accounts, and owners outside the allowed list, "
    "plus files whose permissions could not be read. Write a concise compliance report in Markdown with "
    "the sections: Summary, Risk assessment, Findings, Remediation. Cite file paths and principals "
    "exactly as given. Do not invent files, accounts or numbers."
)
_LIST_FIELDS = ("findings", "failed_files")
_REQUIRED = {
    "execution_id": str,
    "counts": dict,
    "rules": dict,
    "findings_by_rule": dict,
    "findings": list,
    "failed_files": list,
    "finding_count": int,
}


def validate_findings(document: Any) -> Mapping[str, Any]:
    if not isinstance(document, Mapping):
        raise InvalidFileError("findings.json must hold a JSON object")
    for name, kind in _REQUIRED.items():
        if not isinstance(document.get(name), kind):
            raise InvalidFileError(f"findings.json: {name} must be a {kind.__name__}", field=name)
    for finding in document["findings"]:
        if not isinstance(finding, Mapping) or not all(
            isinstance(finding.get(k), str) for k in ("rule_id", "source_key", "principal", "evidence")
        ):
            raise InvalidFileError("findings.json: every finding needs rule_id, source_key, principal, evidence")
    return document


def read_findings(s3: S3Client, bucket: str, key: str, *, max_bytes: int) -> dict[str, Any]:
    return read_document(s3, bucket, key, max_bytes=max_bytes, validate=validate_findings)


def render_markdown(
    document: Mapping[str, Any], reply: ModelReply, *, model_id: str, prompt: Prompt, max_rows: int = 100
) -> str:
    counts = document["counts"]
    findings = document["findings"]
    parts = [
        f"# File share permission audit - execution {document['execution_id']}",
        "",
        markdown_table(
            ["files listed", "ACLs read", "failed", "findings", "files with findings"],
            [
                [
                    counts.get("total"),
                    counts.get("succeeded"),
                    counts.get("failed"),
                    document["finding_count"],
                    document.get("files_with_findings", 0),
                ]
            ],
        ),
        "",
        f"## Report ({model_id})",
        "",
        reply.text,
        "",
        "## Appendix: findings",
        "",
        markdown_table(
            ["rule", "description", "findings"],
            [[rule, text, document["findings_by_rule"].get(rule, 0)] for rule, text in document["rules"].items()],
        ),
        "",
        markdown_table(
            ["rule", "file", "principal", "evidence"],
            [[f["rule_id"], f["source_key"], f["principal"], f["evidence"]] for f in findings[:max_rows]],
        ),
        "",
        "### Files whose permissions could not be read",
        "",
        failed_files_table(document["failed_files"], max_rows=max_rows),
        "",
    ]
    if len(findings) > max_rows or document.get("findings_truncated"):
        parts.append("Lists are cut; the full list is in findings.json and the file_acls table.")
    parts += model_notes(prompt, reply, noun="report")
    return "\n".join(parts) + "\n"


def generate_report(
    s3: S3Client,
    sns: SNSClient,
    bedrock: BedrockRuntimeClient,
    settings: ReportSettings,
    *,
    execution_id: str,
    findings_key: str,
    deadline: Deadline,
) -> dict[str, Any]:
    document = read_findings(s3, settings.bucket, findings_key, max_bytes=settings.max_document_bytes)
    prompt = build_prompt(
        document,
        intro=f"Review the file share permission audit of pipeline execution {execution_id}.",
        max_chars=settings.model.max_prompt_chars,
        list_fields=_LIST_FIELDS,
        hidden=("generated_at",),
        field_limits={"error_message": MAX_MESSAGE_CHARS, "evidence": MAX_MESSAGE_CHARS},
    )
    counts = document["counts"]
    draft = Draft(
        SYSTEM_PROMPT,
        prompt,
        partial(render_markdown, document),
        summary={
            "counts": counts,
            "finding_count": document["finding_count"],
            "findings_by_rule": document["findings_by_rule"],
            "files_with_findings": document.get("files_with_findings", 0),
        },
        source=("findings", findings_key),
        subject=f"UC1 permission audit: {document['finding_count']} findings, {counts.get('failed', 0)} unreadable",
        message_lines=[
            f"UC1 file share permission audit for execution {execution_id}",
            f"Files: {counts.get('total')} listed, {counts.get('succeeded')} ACLs read, {counts.get('failed')} failed",
            "Findings: " + ", ".join(f"{rule} {n}" for rule, n in document["findings_by_rule"].items()),
        ],
    )
    published = write_report(s3, sns, bedrock, draft, settings, execution_id=execution_id, deadline=deadline)
    return {"execution_id": execution_id, **published, "finding_count": document["finding_count"]}
