"""The permission findings of one execution, found by Athena in the collected ACL records.

Rules (each finding: ``rule_id``, ``source_key``, ``principal``, ``evidence``):

- ``BROAD_GROUP_FULL_OR_CHANGE``: an allow ACE for Everyone (S-1-1-0), NT AUTHORITY\\Authenticated
  Users (S-1-5-11) or a domain's Domain Users (…\\Domain Users, S-1-5-21-…-513) granting full
  control or change (``rights`` full_control/modify, advanced ``full_control``, or advanced
  rights that both ``write_data`` and ``delete``). Deny entries and read-only or write-only grants
  are not findings.
- ``INHERITANCE_DISABLED``: SE_DACL_PROTECTED set on a file whose key matches the sensitive-path
  pattern (a parameter): its ACL no longer follows the folder's.
- ``UNRESOLVED_SID``: an ACE or the owner given as a SID: ONTAP translates every account it can
  resolve into a name, so a bare SID is a deleted or foreign account.
- ``OWNER_NOT_ALLOWED``: the owner is not in the allow-list (a parameter, case-insensitive).

Every query is restricted to this execution's partition (``execution_id = ?``) and every value
is bound through ExecutionParameters. Queries run together under ``shared.athena.QueryRun``
(bounded polling paced against the deadline, paginated results, a query out of time stopped and
raised as ``QueryTimeoutError``). The findings are written to ``reports/<execution_id>/findings.json``
before the failure tolerance is enforced (``shared.batch.enforce_tolerance``), for diagnosis.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.athena import Query, QueryRun, QuerySettings, qualified_table, string_parameter
from shared.aws import mapped_errors
from shared.batch import Counts, enforce_tolerance
from shared.errors import InvalidInputError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

RULES: dict[str, str] = {
    "BROAD_GROUP_FULL_OR_CHANGE": "Everyone, Authenticated Users or Domain Users have full control or change",
    "INHERITANCE_DISABLED": "ACL inheritance disabled on a sensitive path",
    "UNRESOLVED_SID": "an ACE or the owner is a SID that does not resolve to an account",
    "OWNER_NOT_ALLOWED": "the owner is not in the allowed owners",
}
SID_PATTERN = "^S-1-[0-9]+(-[0-9]+)+$"
# Broad groups by name (lower case, as ONTAP's lookup_names renders them) and by well-known SID.
BROAD_NAMES = ("everyone", "nt authority\\authenticated users", "s-1-1-0", "s-1-5-11")
DOMAIN_USERS_NAME_PATTERN = "\\\\domain users$"
DOMAIN_USERS_SID_PATTERN = "^S-1-5-21-[0-9]+-[0-9]+-[0-9]+-513$"
_REGEX_SPECIAL = set("\\.^$|?*+()[]{}")


def literal_regex(text: str) -> str:
    """``text`` as a regular expression matching itself (only the metacharacters escaped)."""
    return "".join(f"\\{c}" if c in _REGEX_SPECIAL else c for c in text)


def owners_pattern(owners: Sequence[str]) -> str:
    """A full-match, case-folded pattern of the allowed owners, for ``regexp_like(lower(owner), ?)``."""
    names = [o.strip().lower() for o in owners if o.strip()]
    if not names:
        raise InvalidInputError("the allowed owners list is empty", field="ALLOWED_OWNERS")
    return "^(" + "|".join(literal_regex(n) for n in names) + ")$"


# The SQL of each query. Only the qualified table name (checked Glue identifiers) and the row
# limit (an int) are formatted in; every value is a ``?`` bound through ExecutionParameters.
SQL: dict[str, str] = {
    "status": (
        "SELECT status, error_type, COUNT(*) AS n FROM {table} WHERE execution_id = ? GROUP BY status, error_type"
    ),
    "failed_files": (
        "SELECT source_key, error_type, error_message FROM {table} "
        "WHERE execution_id = ? AND status = 'FAILED' ORDER BY source_key LIMIT {limit}"
    ),
    "broad_groups": (
        "SELECT r.source_key AS source_key, a.user AS principal, a.access AS access, a.rights AS rights, "
        "a.full_control AS full_control, a.change AS change, a.inherited AS inherited "
        "FROM {table} r CROSS JOIN UNNEST(r.aces) AS x(a) "
        "WHERE r.execution_id = ? AND r.status = 'SUCCEEDED' AND a.access = 'access_allow' "
        "AND (lower(a.user) IN ({broad_names}) OR regexp_like(lower(a.user), '{domain_users_name}') "
        "OR regexp_like(a.user, '{domain_users_sid}')) "
        "AND (a.full_control OR a.change) "
        "ORDER BY 1, 2 LIMIT {limit}"
    ),
    "inheritance_disabled": (
        "SELECT source_key, control_flags FROM {table} "
        "WHERE execution_id = ? AND status = 'SUCCEEDED' AND inheritance_disabled AND regexp_like(source_key, ?) "
        "ORDER BY 1 LIMIT {limit}"
    ),
    "unresolved_ace_sids": (
        "SELECT r.source_key AS source_key, a.user AS principal, a.access AS access, a.rights AS rights "
        "FROM {table} r CROSS JOIN UNNEST(r.aces) AS x(a) "
        "WHERE r.execution_id = ? AND r.status = 'SUCCEEDED' AND regexp_like(a.user, ?) "
        "ORDER BY 1, 2 LIMIT {limit}"
    ),
    "unresolved_owner_sids": (
        "SELECT source_key, owner FROM {table} "
        "WHERE execution_id = ? AND status = 'SUCCEEDED' AND regexp_like(owner, ?) ORDER BY 1 LIMIT {limit}"
    ),
    "owners_not_allowed": (
        "SELECT source_key, owner FROM {table} "
        "WHERE execution_id = ? AND status = 'SUCCEEDED' AND owner IS NOT NULL "
        "AND NOT regexp_like(lower(owner), ?) ORDER BY 1 LIMIT {limit}"
    ),
}


def queries(
    table: str, execution_id: str, *, sensitive_pattern: str, allowed_owners: Sequence[str], limit: int
) -> list[Query]:
    """The named queries of the analysis (``table`` is the qualified "db"."table")."""
    execution = string_parameter(execution_id)
    constants = {
        "table": table,
        "limit": int(limit),
        "broad_names": ", ".join(f"'{n}'" for n in BROAD_NAMES),
        "domain_users_name": DOMAIN_USERS_NAME_PATTERN,
        "domain_users_sid": DOMAIN_USERS_SID_PATTERN,
    }
    parameters: dict[str, list[str]] = {
        "status": [execution],
        "failed_files": [execution],
        "broad_groups": [execution],
        "inheritance_disabled": [execution, string_parameter(sensitive_pattern)],
        "unresolved_ace_sids": [execution, string_parameter(SID_PATTERN)],
        "unresolved_owner_sids": [execution, string_parameter(SID_PATTERN)],
        "owners_not_allowed": [execution, string_parameter(owners_pattern(allowed_owners))],
    }
    return [Query(name, sql.format(**constants), parameters[name]) for name, sql in SQL.items()]


def _finding(rule: str, key: Any, principal: Any, evidence: str) -> dict[str, Any]:
    return {"rule_id": rule, "source_key": str(key), "principal": str(principal), "evidence": evidence}


def findings_from_rows(rows: Mapping[str, list[dict[str, Any]]], *, sensitive_pattern: str) -> list[dict[str, Any]]:
    """Every finding, sorted by rule, key and principal."""
    out: list[dict[str, Any]] = []
    for r in rows["broad_groups"]:
        rights = r["rights"] or (
            "full control (advanced rights)" if r["full_control"] else "change (advanced rights write_data, delete)"
        )
        evidence = f"{r['access']} rights={rights} inherited={str(bool(r['inherited'])).lower()}"
        out.append(_finding("BROAD_GROUP_FULL_OR_CHANGE", r["source_key"], r["principal"], evidence))
    for r in rows["inheritance_disabled"]:
        evidence = f"control_flags={r['control_flags']} (SE_DACL_PROTECTED) on a key matching {sensitive_pattern}"
        out.append(_finding("INHERITANCE_DISABLED", r["source_key"], "-", evidence))
    for r in rows["unresolved_ace_sids"]:
        evidence = f"ACE {r['access']} rights={r['rights'] or '-'} for an account ONTAP cannot resolve"
        out.append(_finding("UNRESOLVED_SID", r["source_key"], r["principal"], evidence))
    for r in rows["unresolved_owner_sids"]:
        out.append(_finding("UNRESOLVED_SID", r["source_key"], r["owner"], "owner is an account ONTAP cannot resolve"))
    for r in rows["owners_not_allowed"]:
        out.append(_finding("OWNER_NOT_ALLOWED", r["source_key"], r["owner"], "owner is not in the allowed owners"))
    return sorted(out, key=lambda f: (f["rule_id"], f["source_key"], f["principal"]))


def status_counts(rows: list[dict[str, Any]]) -> tuple[int, int, dict[str, int]]:
    succeeded = failed = 0
    by_error: Counter[str] = Counter()
    for r in rows:
        if r["status"] == "SUCCEEDED":
            succeeded += int(r["n"])
        elif r["status"] == "FAILED":
            failed += int(r["n"])
            by_error[str(r["error_type"])] += int(r["n"])
    return succeeded, failed, dict(sorted(by_error.items()))


@dataclass(frozen=True)
class AnalysisSettings:
    query: QuerySettings
    table: str
    sensitive_pattern: str
    allowed_owners: tuple[str, ...]
    max_findings: int

    @classmethod
    def parse(cls, rules: Any, *, query: QuerySettings, table: str, max_findings: int) -> AnalysisSettings:
        """The audit rules of the event (``rules``: the template's SensitivePathPattern and AllowedOwners)."""
        if not isinstance(rules, Mapping):
            raise InvalidInputError("event.rules must be an object", field="rules")
        pattern = rules.get("sensitive_path_pattern")
        if not isinstance(pattern, str) or not 1 <= len(pattern) <= 512:
            raise InvalidInputError(
                "rules.sensitive_path_pattern must be a regular expression", field="rules.sensitive_path_pattern"
            )
        try:
            re.compile(pattern)
        except re.error as e:
            raise InvalidInputError(
                f"rules.sensitive_path_pattern is not a regular expression: {e}", field="rules.sensitive_path_pattern"
            ) from e
        owners = rules.get("allowed_owners")
        if not isinstance(owners, str) or not owners.strip():
            raise InvalidInputError("rules.allowed_owners must be a comma-separated list", field="rules.allowed_owners")
        names = tuple(o.strip() for o in owners.split(",") if o.strip())
        owners_pattern(names)  # refuses an empty list
        return cls(query, table, pattern, names, max_findings)


def findings_key(execution_id: str) -> str:
    return f"reports/{execution_id}/findings.json"


def analyse(
    s3: S3Client,
    run: QueryRun,
    *,
    settings: AnalysisSettings,
    output_bucket: str,
    execution_id: str,
    expected_count: int,
    tolerated_percentage: float,
) -> dict[str, Any]:
    """Run the queries, write findings.json, then enforce the tolerance; return the summary."""
    table = qualified_table(settings.query.database, settings.table)
    limit = settings.max_findings + 1  # one more than kept: tells a cut list from a full one
    rows = run.run(
        settings.query,
        queries(
            table,
            execution_id,
            sensitive_pattern=settings.sensitive_pattern,
            allowed_owners=settings.allowed_owners,
            limit=limit,
        ),
    )
    findings = findings_from_rows(rows, sensitive_pattern=settings.sensitive_pattern)
    truncated = any(len(v) >= limit for k, v in rows.items() if k != "status")
    findings = findings[: settings.max_findings]
    succeeded, failed, by_error = status_counts(rows["status"])
    counts = Counts(expected=expected_count, succeeded=succeeded, failed_records=failed)
    by_rule = dict(sorted(Counter(f["rule_id"] for f in findings).items()))
    document = {
        "execution_id": execution_id,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "counts": counts.to_dict(),
        "failures_by_type": by_error,
        "rules": RULES,
        "parameters": {
            "sensitive_path_pattern": settings.sensitive_pattern,
            "allowed_owners": list(settings.allowed_owners),
        },
        "finding_count": len(findings),
        "findings_by_rule": by_rule,
        "files_with_findings": len({f["source_key"] for f in findings}),
        "findings_truncated": truncated,
        "findings": findings,
        "failed_files": rows["failed_files"][: settings.max_findings],
    }
    key = findings_key(execution_id)
    with mapped_errors("PutObject"):
        s3.put_object(
            Bucket=output_bucket,
            Key=key,
            Body=json.dumps(document, ensure_ascii=False, indent=1).encode("utf-8"),
            ContentType="application/json",
        )
    enforce_tolerance(counts, tolerated_percentage)
    return {
        "execution_id": execution_id,
        "findings_bucket": output_bucket,
        "findings_key": key,
        "total": counts.total,
        "succeeded": counts.succeeded,
        "failed": counts.failed,
        "finding_count": len(findings),
        "findings_by_rule": {rule: by_rule.get(rule, 0) for rule in RULES},
    }
