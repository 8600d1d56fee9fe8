"""Athena aggregation over one execution's results, and the failure-tolerance decision.

Every query reads the ``file_metadata`` table restricted to ``execution_id = ?``: the execution id
is bound through ``ExecutionParameters`` (a string literal, its quotes doubled: Athena reads a
parameter as SQL, and a Step Functions execution name may contain ``'``), never pasted into the
SQL text, and no value from a result record ever reaches SQL.
The database and table names come from the stack's configuration and are checked against
``IDENTIFIER_RE`` before they are quoted into the statement.

The queries run concurrently. Every Athena request is paced against the Lambda deadline
(``QueryRun``): at the deadline, every query still running is stopped (StopQueryExecution) and
``QueryTimeoutError`` is raised, however slow the individual API calls are.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from shared.aws import mapped_errors
from shared.errors import (
    InvalidInputError,
    QueryFailedError,
    QueryTimeoutError,
    ServiceUnavailableError,
    TooManyFailuresError,
)
from shared.events import validate_execution_id

if TYPE_CHECKING:
    from mypy_boto3_athena import AthenaClient

    from shared.retry import Deadline

IDENTIFIER_RE = re.compile(r"[a-z_][a-z0-9_]{0,254}")
LIST_LIMIT = 1000  # the LIMIT of the list queries below
_TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
_INT_TYPES = frozenset({"tinyint", "smallint", "integer", "int", "bigint"})
_FLOAT_TYPES = frozenset({"double", "float", "real", "decimal"})

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


@dataclass(frozen=True)
class QuerySettings:
    workgroup: str
    database: str
    table: str
    output_location: str | None = None

    def __post_init__(self) -> None:
        for label, value in (("database", self.database), ("table", self.table)):
            if IDENTIFIER_RE.fullmatch(value) is None:
                raise InvalidInputError(f"Glue {label} name {value!r} must match {IDENTIFIER_RE.pattern}")

    @property
    def qualified_table(self) -> str:
        return f'"{self.database}"."{self.table}"'


def execution_parameters(name: str, execution_id: str, max_depth: int) -> list[str]:
    """The ExecutionParameters of query ``name``, in placeholder order."""
    validate_execution_id(execution_id)
    # A string parameter is given as a SQL string literal: quoted, any quote inside doubled.
    params = ["'" + execution_id.replace("'", "''") + "'"]
    if name == "findings":
        params.append(str(int(max_depth)))
    return params


class QueryRun:
    """The queries of one aggregation, every Athena request paced against the time budget.

    A request (start, poll, result page, stop) is made only while more time is left than the
    slowest request of the same operation took so far, measured on the deadline's own clock (the
    Lambda context). So slow API calls (a GetQueryExecution taking 20 s) cannot carry the function
    past its deadline into the Lambda timeout, where it would be killed (``Sandbox.Timedout``)
    with its queries still running: the queries are stopped and ``QueryTimeoutError`` is raised.
    The first request of an operation is assumed to be fast (nothing is known about it yet).

    ``deadline`` bounds the work; ``stop_deadline`` (a smaller margin of the same invocation)
    bounds stopping, which uses the margin kept back below ``deadline``. Without it every query
    is stopped however long that takes.
    """

    def __init__(
        self,
        athena: AthenaClient,
        *,
        deadline: Deadline,
        stop_deadline: Deadline | None = None,
        sleep: Callable[[float], None] | None = None,
        first_delay: float = 0.25,
        max_delay: float = 2.0,
    ) -> None:
        self.athena = athena
        self.deadline = deadline
        self.stop_deadline = stop_deadline
        self.sleep = sleep or time.sleep  # looked up per run: a test (or an emulated clock) replaces it
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.query_ids: dict[str, str] = {}
        self.slowest: dict[str, float] = {}  # per operation, seconds its slowest request took so far

    def _has_time(self, deadline: Deadline, operation: str) -> bool:
        return deadline.remaining_seconds() > self.slowest.get(operation, 0.0)

    def _request[T](self, operation: str, call: Callable[..., T], **params: Any) -> T:
        # Measured on the deadline with the smaller margin: it keeps counting inside the other's.
        clock = self.stop_deadline or self.deadline
        before = clock.remaining_seconds()
        try:
            with mapped_errors(operation):
                return call(**params)
        finally:
            self.slowest[operation] = max(self.slowest.get(operation, 0.0), before - clock.remaining_seconds())

    def start(self, settings: QuerySettings, execution_id: str, max_depth: int) -> dict[str, str]:
        """Start every query; return {name: QueryExecutionId}."""
        for name, template in QUERIES.items():
            if not self._has_time(self.deadline, "StartQueryExecution"):
                self._time_out(self.query_ids, [n for n in QUERIES if n not in self.query_ids], "starting")
            request: dict[str, Any] = {
                "QueryString": template.format(table=settings.qualified_table),
                "QueryExecutionContext": {"Database": settings.database, "Catalog": "AwsDataCatalog"},
                "WorkGroup": settings.workgroup,
                "ExecutionParameters": execution_parameters(name, execution_id, max_depth),
            }
            if settings.output_location:
                request["ResultConfiguration"] = {"OutputLocation": settings.output_location}
            reply = self._request("StartQueryExecution", self.athena.start_query_execution, **request)
            self.query_ids[name] = reply["QueryExecutionId"]
        return dict(self.query_ids)

    def stop(self, query_ids: Mapping[str, str]) -> list[str]:
        """Stop the given queries while time allows; return the ids not stopped."""
        failed = []
        for query_id in query_ids.values():
            if self.stop_deadline is not None and not self._has_time(self.stop_deadline, "StopQueryExecution"):
                failed.append(query_id)
                continue
            try:
                self._request("StopQueryExecution", self.athena.stop_query_execution, QueryExecutionId=query_id)
            except Exception:  # noqa: BLE001 - stopping is best effort; the caller raises its error anyway
                failed.append(query_id)
        return failed

    def _time_out(self, running: Mapping[str, str], not_started: list[str], phase: str) -> NoReturn:
        running = {name: running[name] for name in sorted(running)}
        unstoppable = self.stop(running)
        stopped = len(running) - len(unstoppable)
        outcome = f"all {stopped} were stopped" if not unstoppable else f"{stopped} of {len(running)} were stopped"
        raise QueryTimeoutError(
            f"Athena queries {sorted(running) + not_started} did not finish within the function's time budget "
            f"({phase}); {outcome}",
            queries=running,
            not_started=not_started,
            not_stopped=unstoppable,
        )

    def wait(self) -> None:
        """Poll until every query SUCCEEDED; stop them all and raise at the deadline or on failure."""
        pending = dict(self.query_ids)
        delay = self.first_delay
        while pending:
            for name, query_id in list(pending.items()):
                if not self._has_time(self.deadline, "GetQueryExecution"):
                    self._time_out(pending, [], "polling")
                execution = self._request(
                    "GetQueryExecution", self.athena.get_query_execution, QueryExecutionId=query_id
                )
                status = execution["QueryExecution"]["Status"]
                state = status["State"]
                if state not in _TERMINAL:
                    continue
                del pending[name]
                if state != "SUCCEEDED":
                    self.stop(pending)
                    reason = status.get("StateChangeReason", "")
                    athena_error = status.get("AthenaError", {})
                    message = f"Athena query {name} ({query_id}) ended {state}: {reason}"
                    if athena_error.get("Retryable"):
                        raise ServiceUnavailableError(message, query=name, query_execution_id=query_id)
                    raise QueryFailedError(message, query=name, query_execution_id=query_id, state=state)
            if not pending:
                return
            # Wake no later than the last moment a poll can still be made.
            spare = self.deadline.remaining_seconds() - self.slowest.get("GetQueryExecution", 0.0)
            if spare <= 0:
                self._time_out(pending, [], "polling")
            self.sleep(min(delay, spare))
            delay = min(delay * 2, self.max_delay)

    def rows(self, name: str) -> list[dict[str, Any]]:
        """Every row of a finished query, typed by the result metadata, across all pages."""
        query_id = self.query_ids[name]
        rows: list[dict[str, Any]] = []
        columns: list[tuple[str, str]] | None = None
        token: str | None = None
        while True:
            if not self._has_time(self.deadline, "GetQueryResults"):
                raise QueryTimeoutError(
                    f"the results of Athena query {name} ({query_id}) could not be read within the "
                    "function's time budget",
                    queries={name: query_id},
                    not_started=[],
                    not_stopped=[],
                )
            request: dict[str, Any] = {"QueryExecutionId": query_id, "MaxResults": 1000}
            if token:
                request["NextToken"] = token
            page = self._request("GetQueryResults", self.athena.get_query_results, **request)
            page_rows = page["ResultSet"]["Rows"]
            if columns is None:
                info = page["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]
                columns = [(c["Name"], c["Type"]) for c in info]
                page_rows = page_rows[1:]  # the first row of a SELECT result is the header
            for row in page_rows:
                cells = [d.get("VarCharValue") for d in row["Data"]]
                rows.append({column: _convert(cell, kind) for (column, kind), cell in zip(columns, cells, strict=True)})
            token = page.get("NextToken")
            if not token:
                return rows


def _convert(value: str | None, athena_type: str) -> Any:
    if value is None:
        return None
    kind = athena_type.split("(", maxsplit=1)[0].lower()
    if kind in _INT_TYPES:
        return int(value)
    if kind in _FLOAT_TYPES:
        return float(value)
    if kind == "boolean":
        return value.lower() == "true"
    return value


@dataclass(frozen=True)
class Counts:
    expected: int
    succeeded: int
    failed_records: int

    @property
    def total(self) -> int:
        # More records than listed objects cannot happen with one record per key; be safe anyway.
        return max(self.expected, self.succeeded + self.failed_records)

    @property
    def missing_records(self) -> int:
        """Files without any record: their whole batch failed (tolerated by the Map)."""
        return self.total - self.succeeded - self.failed_records

    @property
    def failed(self) -> int:
        return self.total - self.succeeded

    def to_dict(self) -> dict[str, int]:
        return {
            "expected": self.expected,
            "total": self.total,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "failed_records": self.failed_records,
            "missing_records": self.missing_records,
        }


def enforce_tolerance(counts: Counts, tolerated_percentage: float) -> None:
    """Raise ``TooManyFailuresError`` when failed/total*100 exceeds the tolerance, or nothing succeeded."""
    if counts.total == 0:
        return
    if counts.succeeded == 0:
        raise TooManyFailuresError(
            f"all {counts.total} files failed", **counts.to_dict(), tolerated_percentage=tolerated_percentage
        )
    if counts.failed * 100 > tolerated_percentage * counts.total:
        raise TooManyFailuresError(
            f"{counts.failed} of {counts.total} files failed ({counts.failed * 100 / counts.total:.1f}%), "
            f"more than the tolerated {tolerated_percentage:g}%",
            **counts.to_dict(),
            tolerated_percentage=tolerated_percentage,
        )


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
