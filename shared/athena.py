"""Athena query runs paced against the Lambda deadline: start, bounded polling, stop, typed rows.

A use case names its queries and binds every value through ``ExecutionParameters`` (never pasted
into the SQL text); this module runs them::

    run = QueryRun(athena, deadline=Deadline.from_context(context, margin_ms=15_000),
                   stop_deadline=Deadline.from_context(context, margin_ms=2_000))
    settings = QuerySettings(workgroup="wg", database="db")
    results = run.run(settings, [
        Query("status", 'SELECT status, COUNT(*) AS n FROM "db"."t" WHERE execution_id = ? GROUP BY 1',
              [string_parameter(execution_id)]),
    ])                                          # {"status": [{"status": "SUCCEEDED", "n": 9}, ...]}

Every Athena request (start, poll, result page, stop) is made only while more time is left than
the slowest request of the same operation took so far, measured on the deadline's own clock. So
slow API calls cannot carry the function past its deadline into the Lambda timeout, where it
would be killed (``Sandbox.Timedout``) with its queries still running: at the deadline the
queries still running are stopped and ``QueryTimeoutError`` is raised, naming in its details the
queries (``queries``), those never started (``not_started``) and those that could not be stopped
(``not_stopped``). A query ending FAILED or CANCELLED raises ``QueryFailedError`` (or
``ServiceUnavailableError`` when Athena says the failure is retryable) after the others are
stopped; its details name the ones that could not be.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NoReturn

from shared import config
from shared.aws import mapped_errors
from shared.errors import InvalidInputError, QueryFailedError, QueryTimeoutError, ServiceUnavailableError

if TYPE_CHECKING:
    from mypy_boto3_athena import AthenaClient

    from shared.retry import Deadline

logger = logging.getLogger(__name__)

# Glue database and table names as the project creates them (lower case, so no quoting surprises).
IDENTIFIER_RE = re.compile(r"[a-z_][a-z0-9_]{0,254}")
WORKGROUP_PATTERN = r"[a-zA-Z0-9._-]{1,128}"
PAGE_SIZE = 1000  # GetQueryResults' maximum MaxResults
TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})
_INT_TYPES = frozenset({"tinyint", "smallint", "integer", "int", "bigint"})
_FLOAT_TYPES = frozenset({"double", "float", "real", "decimal"})


def check_identifier(value: str, label: str) -> str:
    """``value`` if it is a Glue name matching ``IDENTIFIER_RE``; ``InvalidInputError`` otherwise."""
    if not isinstance(value, str) or IDENTIFIER_RE.fullmatch(value) is None:
        raise InvalidInputError(f"Glue {label} name {value!r} must match {IDENTIFIER_RE.pattern}", field=label)
    return value


def qualified_table(database: str, table: str) -> str:
    """``"database"."table"``, both names checked against ``IDENTIFIER_RE``."""
    return f'"{check_identifier(database, "database")}"."{check_identifier(table, "table")}"'


def string_parameter(value: str) -> str:
    """A string as an ExecutionParameters entry: Athena reads a parameter as SQL, so a quoted
    literal with every quote inside doubled (a Step Functions execution name may contain ``'``)."""
    return "'" + value.replace("'", "''") + "'"


@dataclass(frozen=True)
class QuerySettings:
    """Where the queries run. A workgroup that enforces its own result location ignores
    ``output_location``; an existing workgroup may have none, so the stack passes one."""

    workgroup: str
    database: str
    output_location: str | None = None
    catalog: str = "AwsDataCatalog"

    def __post_init__(self) -> None:
        check_identifier(self.database, "database")

    @classmethod
    def from_environment(cls, output_bucket: str) -> QuerySettings:
        """``ATHENA_WORKGROUP`` and ``GLUE_DATABASE``; results under ``s3://<output_bucket>/athena-results/``
        (a created workgroup enforces its own location; an existing one may not have any)."""
        return cls(
            workgroup=config.env_str("ATHENA_WORKGROUP", pattern=WORKGROUP_PATTERN),
            database=config.env_str("GLUE_DATABASE", pattern=IDENTIFIER_RE.pattern),
            output_location=f"s3://{output_bucket}/athena-results/",
        )


@dataclass(frozen=True)
class Query:
    """One named query; every ``?`` in ``sql`` is bound, in order, by ``parameters``."""

    name: str
    sql: str
    parameters: Sequence[str] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.sql.count("?") != len(self.parameters):
            raise InvalidInputError(
                f"query {self.name} has {self.sql.count('?')} placeholders but {len(self.parameters)} parameters",
                query=self.name,
            )


class QueryRun:
    """The queries of one invocation, every Athena request paced against the time budget.

    ``deadline`` bounds the work; ``stop_deadline`` (a smaller margin of the same invocation)
    bounds stopping, which uses the margin kept back below ``deadline``. Without it every query
    is stopped however long that takes. The first request of an operation is assumed to be fast
    (nothing is known about it yet).
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

    def start(self, settings: QuerySettings, queries: Iterable[Query]) -> dict[str, str]:
        """Start every query; return {name: QueryExecutionId}."""
        queries = list(queries)
        names = [q.name for q in queries]
        if len(set(names)) != len(names):
            raise InvalidInputError(f"query names must be unique, got {names}")
        for query in queries:
            if not self._has_time(self.deadline, "StartQueryExecution"):
                self._time_out(self.query_ids, [n for n in names if n not in self.query_ids], "starting")
            request: dict[str, Any] = {
                "QueryString": query.sql,
                "QueryExecutionContext": {"Database": settings.database, "Catalog": settings.catalog},
                "WorkGroup": settings.workgroup,
            }
            if query.parameters:
                request["ExecutionParameters"] = list(query.parameters)
            if settings.output_location:
                request["ResultConfiguration"] = {"OutputLocation": settings.output_location}
            reply = self._request("StartQueryExecution", self.athena.start_query_execution, **request)
            self.query_ids[query.name] = reply["QueryExecutionId"]
        return dict(self.query_ids)

    def stop(self, query_ids: Mapping[str, str]) -> list[str]:
        """Stop the given queries while time allows; return the ids not stopped (each logged)."""
        failed = []
        for name, query_id in query_ids.items():
            if self.stop_deadline is not None and not self._has_time(self.stop_deadline, "StopQueryExecution"):
                logger.warning("no time left to stop an Athena query", extra={"query": name, "query_id": query_id})
                failed.append(query_id)
                continue
            try:
                self._request("StopQueryExecution", self.athena.stop_query_execution, QueryExecutionId=query_id)
            except Exception as e:  # noqa: BLE001 - stopping is best effort; the id is reported, not dropped
                logger.warning(
                    "could not stop an Athena query",
                    extra={"query": name, "query_id": query_id, "error_type": type(e).__name__, "error": str(e)},
                )
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
                if state not in TERMINAL_STATES:
                    continue
                del pending[name]
                if state != "SUCCEEDED":
                    not_stopped = self.stop(pending)
                    reason = status.get("StateChangeReason", "")
                    athena_error = status.get("AthenaError", {})
                    message = f"Athena query {name} ({query_id}) ended {state}: {reason}"
                    details = {"query": name, "query_execution_id": query_id, "not_stopped": not_stopped}
                    if athena_error.get("Retryable"):
                        raise ServiceUnavailableError(message, **details)
                    raise QueryFailedError(message, state=state, **details)
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
            request: dict[str, Any] = {"QueryExecutionId": query_id, "MaxResults": PAGE_SIZE}
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
                rows.append(
                    {column: convert(cell, kind) for (column, kind), cell in zip(columns, cells, strict=True)}
                )
            token = page.get("NextToken")
            if not token:
                return rows

    def run(self, settings: QuerySettings, queries: Iterable[Query]) -> dict[str, list[dict[str, Any]]]:
        """Start the queries, wait for all of them, and return {name: rows}."""
        query_ids = self.start(settings, queries)
        logger.info("queries started", extra={"query_execution_ids": query_ids})
        self.wait()
        return {name: self.rows(name) for name in query_ids}


def convert(value: str | None, athena_type: str) -> Any:
    """A result cell as Python: integers, floats and booleans by their Athena type; NULL is None."""
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
