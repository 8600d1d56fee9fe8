"""Athena aggregation over one execution's results, and the failure-tolerance decision.

Every query reads the ``file_metadata`` table restricted to ``execution_id = ?``: the execution id
is bound through ``ExecutionParameters`` (a string literal, its quotes doubled: Athena reads a
parameter as SQL, and a Step Functions execution name may contain ``'``), never pasted into the
SQL text, and no value from a result record ever reaches SQL.
The database and table names come from the stack's configuration and are checked against
``shared.athena.IDENTIFIER_RE`` before they are quoted into the statement.

The queries run concurrently. Every Athena request is paced against the Lambda deadline
(``shared.athena.QueryRun``): at the deadline, every query still running is stopped (StopQueryExecution) and
``QueryTimeoutError`` is raised, however slow the individual API calls are.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from shared.athena import Query, QueryRun, QuerySettings, qualified_table, string_parameter
from shared.aws import mapped_errors
from shared.batch import Counts, enforce_tolerance
from shared.events import validate_execution_id

if TYPE_CHECKING:
    from mypy_boto3_athena import AthenaClient
    from mypy_boto3_s3 import S3Client

    from shared.retry import Deadline

LIST_LIMIT = 1000  # the LIMIT of the list queries below

# {table} is the quoted "database"."table"; every ? is bound through ExecutionParameters.
QUERIES: dict[str, str] = {
    "status": (
        "SELECT status, error_type, COUNT(*) AS files FROM {table} "
        "WHERE execution_id = ? GROUP BY status, error_type ORDER BY status, error_type"
    ),
    "formats": (
        "SELECT format, COUNT(*) AS files, SUM(size_bytes) AS total_bytes, SUM(cell_count) AS cells, "
        "SUM(element_count) AS elements, SUM(reference_count) AS placements, "
        "MAX(max_hierarchy_depth) AS max_depth, SUM(compressed_blocks) AS compressed_blocks "
        "FROM {table} WHERE execution_id = ? AND status = 'SUCCEEDED' GROUP BY format ORDER BY format"
    ),
    "units": (
        "SELECT db_unit_meters, user_unit, COUNT(*) AS files FROM {table} "
        "WHERE execution_id = ? AND status = 'SUCCEEDED' "
        "GROUP BY db_unit_meters, user_unit ORDER BY files DESC, db_unit_meters, user_unit"
    ),
    # The rule outcomes per file, grouped: at most 8 x (distinct depths) rows; the per-rule and
    # any-rule counts are added up from them without a parameter outside the WHERE clause.
    "rules": (
        "SELECT top_cell_count <> 1 AS top_cell_rule, unresolved_reference_count > 0 AS unresolved_rule, "
        "empty_cell_count > 0 AS empty_cell_rule, max_hierarchy_depth AS depth, COUNT(*) AS files "
        "FROM {table} WHERE execution_id = ? AND status = 'SUCCEEDED' "
        "GROUP BY top_cell_count <> 1, unresolved_reference_count > 0, empty_cell_count > 0, max_hierarchy_depth"
    ),
    "findings": (
        "SELECT source_key, format, top_cell_count, unresolved_reference_count, empty_cell_count, "
        "max_hierarchy_depth, cell_count FROM {table} "
        "WHERE execution_id = ? AND status = 'SUCCEEDED' AND (top_cell_count <> 1 "
        "OR unresolved_reference_count > 0 OR empty_cell_count > 0 OR max_hierarchy_depth > ?) "
        "ORDER BY source_key LIMIT 1000"
    ),
    "failed_files": (
        "SELECT source_key, error_type, error_message FROM {table} "
        "WHERE execution_id = ? AND status = 'FAILED' ORDER BY source_key LIMIT 1000"
    ),
}


def queries(table: str, execution_id: str, max_depth: int) -> list[Query]:
    """The aggregation's queries over ``table`` (a quoted ``"database"."table"``), values bound."""
    validate_execution_id(execution_id)
    bound = string_parameter(execution_id)
    return [
        Query(name, sql.format(table=table), [bound, str(int(max_depth))] if name == "findings" else [bound])
        for name, sql in QUERIES.items()
    ]


def build_aggregate(
    execution_id: str,
    results: Mapping[str, list[dict[str, Any]]],
    *,
    expected_count: int,
    tolerated_percentage: float,
    max_depth: int,
    query_ids: Mapping[str, str],
) -> tuple[dict[str, Any], Counts]:
    """The aggregate document the report is written from, and the counts."""
    status_rows = results["status"]
    succeeded = sum(r["files"] for r in status_rows if r["status"] == "SUCCEEDED")
    failed_records = sum(r["files"] for r in status_rows if r["status"] == "FAILED")
    counts = Counts(expected=expected_count, succeeded=succeeded, failed_records=failed_records)
    failures_by_type = [
        {"error_type": r["error_type"] or "Unknown", "files": r["files"]}
        for r in sorted(status_rows, key=lambda r: (-r["files"], r["error_type"] or ""))
        if r["status"] == "FAILED"
    ]
    rules = {"multiple_or_no_top_cells": 0, "unresolved_references": 0, "empty_cells": 0, "hierarchy_too_deep": 0}
    files_with_findings = 0
    for row in results["rules"]:
        deep = row["depth"] is not None and row["depth"] > max_depth
        flags = (bool(row["top_cell_rule"]), bool(row["unresolved_rule"]), bool(row["empty_cell_rule"]), deep)
        for rule, hit in zip(rules, flags, strict=True):
            rules[rule] += row["files"] if hit else 0
        files_with_findings += row["files"] if any(flags) else 0
    findings = results["findings"]
    failed_files = results["failed_files"]
    units = results["units"]
    aggregate = {
        "execution_id": execution_id,
        "counts": counts.to_dict(),
        "tolerated_failure_percentage": tolerated_percentage,
        "formats": results["formats"],
        "units": units,
        "mixed_units": len(units) > 1,
        "failures_by_type": failures_by_type,
        "rules": {"max_hierarchy_depth": max_depth, "files_per_rule": rules},
        "files_with_findings": files_with_findings,
        "findings": findings,
        "findings_truncated": files_with_findings > len(findings),
        "failed_files": failed_files,
        "failed_files_truncated": failed_records > len(failed_files),
        "query_execution_ids": dict(query_ids),
    }
    return aggregate, counts


def aggregate_key(execution_id: str) -> str:
    return f"reports/{execution_id}/aggregate.json"


def aggregate_execution(
    athena: AthenaClient,
    s3: S3Client,
    *,
    settings: QuerySettings,
    table: str,
    output_bucket: str,
    execution_id: str,
    expected_count: int,
    tolerated_percentage: float,
    max_depth: int,
    deadline: Deadline,
    stop_deadline: Deadline | None = None,
) -> dict[str, Any]:
    """Run the queries, write the aggregate, then enforce the tolerance (after the write, for diagnosis)."""
    run = QueryRun(athena, deadline=deadline, stop_deadline=stop_deadline)
    results = run.run(settings, queries(qualified_table(settings.database, table), execution_id, max_depth))
    aggregate, counts = build_aggregate(
        execution_id,
        results,
        expected_count=expected_count,
        tolerated_percentage=tolerated_percentage,
        max_depth=max_depth,
        query_ids=run.query_ids,
    )
    key = aggregate_key(execution_id)
    body = json.dumps(aggregate, ensure_ascii=False, indent=1, allow_nan=False).encode("utf-8")
    with mapped_errors("PutObject"):
        s3.put_object(Bucket=output_bucket, Key=key, Body=body, ContentType="application/json")
    enforce_tolerance(counts, tolerated_percentage)
    return {
        "execution_id": execution_id,
        "aggregate_bucket": output_bucket,
        "aggregate_key": key,
        "total": counts.total,
        "succeeded": counts.succeeded,
        "failed": counts.failed,
        "findings": aggregate["files_with_findings"],
    }
