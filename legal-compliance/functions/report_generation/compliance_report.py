"""The compliance report: findings.json -> a bounded prompt -> Bedrock -> Markdown + JSON -> SNS.

Built on ``shared.report``: the prompt never exceeds its limit (the findings and failed-file lists
are cut first, and the prompt says how many entries it left out), the model's reply is checked,
and the report, the summary and the notification go where every pipeline puts them
(``reports/<execution_id>/report.md``, ``summary.json``).
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
    build_prompt,
    converse,
    markdown_table,
    model_summary,
    publish_report,
    report_keys,
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
_MAX_MESSAGE_CHARS = 200
TEMPERATURE = 0.2
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
    with mapped_errors("GetObject"):
        reply = s3.get_object(Bucket=bucket, Key=key)
        if reply["ContentLength"] > max_bytes:
            raise InvalidFileError(f"s3://{bucket}/{key} is {reply['ContentLength']} bytes, more than {max_bytes}")
        body = reply["Body"].read()
    try:
        return dict(validate_findings(json.loads(body)))
    except ValueError as e:
        raise InvalidFileError(f"s3://{bucket}/{key} is not JSON: {e}") from e


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
        markdown_table(
            ["file", "error type", "message"],
            [
                [f.get("source_key"), f.get("error_type"), (f.get("error_message") or "")[:_MAX_MESSAGE_CHARS]]
                for f in document["failed_files"][:max_rows]
            ],
        ),
        "",
    ]
    if len(findings) > max_rows or document.get("findings_truncated"):
        parts.append("Lists are cut; the full list is in findings.json and the file_acls table.")
    if prompt.truncated:
        parts.append(f"The model saw shortened lists ({prompt.omitted}).")
    if reply.stop_reason == "max_tokens":
        parts.append("The model's report was cut at the output token limit.")
    return "\n".join(parts) + "\n"


def generate_report(
    s3: S3Client,
    sns: SNSClient,
    bedrock: BedrockRuntimeClient,
    *,
    bucket: str,
    execution_id: str,
    findings_key: str,
    model_id: str,
    topic_arn: str,
    max_prompt_chars: int,
    max_output_tokens: int,
    max_findings_bytes: int,
    deadline: Deadline,
) -> dict[str, Any]:
    document = read_findings(s3, bucket, findings_key, max_bytes=max_findings_bytes)
    prompt = build_prompt(
        document,
        intro=f"Review the file share permission audit of pipeline execution {execution_id}.",
        max_chars=max_prompt_chars,
        list_fields=_LIST_FIELDS,
        hidden=("generated_at",),
        field_limits={"error_message": _MAX_MESSAGE_CHARS, "evidence": _MAX_MESSAGE_CHARS},
    )
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
    counts = document["counts"]
    summary = {
        "execution_id": execution_id,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "counts": counts,
        "finding_count": document["finding_count"],
        "findings_by_rule": document["findings_by_rule"],
        "files_with_findings": document.get("files_with_findings", 0),
        "report": f"s3://{bucket}/{keys.report}",
        "findings": f"s3://{bucket}/{findings_key}",
        "model": model_summary(model_id, reply, prompt),
    }
    published = publish_report(
        s3,
        sns,
        bucket=bucket,
        keys=keys,
        markdown=render_markdown(document, reply, model_id=model_id, prompt=prompt),
        summary=summary,
        topic_arn=topic_arn,
        subject=f"UC1 permission audit: {document['finding_count']} findings, {counts.get('failed', 0)} unreadable",
        message_lines=[
            f"UC1 file share permission audit for execution {execution_id}",
            f"Files: {counts.get('total')} listed, {counts.get('succeeded')} ACLs read, {counts.get('failed')} failed",
            "Findings: " + ", ".join(f"{rule} {n}" for rule, n in document["findings_by_rule"].items()),
        ],
        execution_id=execution_id,
    )
    return {"execution_id": execution_id, **published, "finding_count": document["finding_count"]}
