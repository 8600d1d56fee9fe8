"""shared.athena: queries started with bound parameters, polling and stopping paced by the deadline,
paginated typed rows, typed failures; against an in-memory Athena on a manual clock."""

from __future__ import annotations

from typing import Any

import pytest

from shared.athena import (
    Query,
    QueryRun,
    QuerySettings,
    convert,
    qualified_table,
    string_parameter,
)
from shared.errors import (
    InvalidInputError,
    QueryFailedError,
    QueryTimeoutError,
    ServiceUnavailableError,
    ThrottlingError,
)
from shared.retry import Deadline
from tests.support.athena import FakeAthena, SlowAthena
from tests.support.aws_errors import client_error
from tests.support.lambda_context import FakeLambdaContext, ManualClock

pytestmark = pytest.mark.unit

SETTINGS = QuerySettings(workgroup="wg", database="db", output_location="s3://out/athena/")
COLUMNS: dict[str, list[tuple[str, str]]] = {
    "counts": [("status", "varchar"), ("files", "bigint"), ("ratio", "double"), ("ok", "boolean")],
    "names": [("name", "varchar")],
    "third": [("n", "integer")],
}
ROWS: dict[str, list[list[Any]]] = {
    "counts": [["SUCCEEDED", 9, 0.9, True], ["FAILED", 1, None, False]],
    "names": [[f"n{i}"] for i in range(5)],
    "third": [[1]],
}
QUERIES = [
    Query("counts", 'SELECT status, files FROM "db"."t" WHERE execution_id = ?', [string_parameter("e-1")]),
    Query("names", 'SELECT name FROM "db"."t" WHERE execution_id = ? AND depth > ?', ["'e-1'", "3"]),
    Query("third", "SELECT 1 AS n"),
]


def athena(cls: type[FakeAthena] = FakeAthena, *args: Any, **kwargs: Any) -> Any:
    fake = cls({name: (COLUMNS[name], ROWS[name]) for name in COLUMNS}, *args, **kwargs)
    fake.bind({q.name: q.sql for q in QUERIES})
    return fake


def no_sleep(_seconds: float) -> None:
    pass


def test_run_starts_every_query_with_its_parameters_and_returns_typed_rows_across_pages():
    fake = athena()
    results = QueryRun(fake, deadline=Deadline.after(60), sleep=no_sleep).run(SETTINGS, QUERIES)
    assert results["counts"] == [
        {"status": "SUCCEEDED", "files": 9, "ratio": 0.9, "ok": True},
        {"status": "FAILED", "files": 1, "ratio": None, "ok": False},
    ]
    assert [r["name"] for r in results["names"]] == [f"n{i}" for i in range(5)]  # three pages of two
    requests = {q["name"]: q["request"] for q in fake.started.values()}
    assert requests["counts"]["ExecutionParameters"] == ["'e-1'"]
    assert requests["names"]["ExecutionParameters"] == ["'e-1'", "3"]
    assert "ExecutionParameters" not in requests["third"]  # Athena refuses an empty list
    assert requests["counts"]["WorkGroup"] == "wg"
    assert requests["counts"]["QueryExecutionContext"] == {"Database": "db", "Catalog": "AwsDataCatalog"}
    assert requests["counts"]["ResultConfiguration"] == {"OutputLocation": "s3://out/athena/"}


def test_without_an_output_location_none_is_sent():
    fake = athena()
    run = QueryRun(fake, deadline=Deadline.after(60), sleep=no_sleep)
    run.start(QuerySettings(workgroup="wg", database="db"), QUERIES[:1])
    assert "ResultConfiguration" not in next(iter(fake.started.values()))["request"]


def test_placeholders_and_parameters_must_agree():
    with pytest.raises(InvalidInputError, match="2 placeholders but 1"):
        Query("q", "SELECT ? , ?", ["1"])


def test_query_names_must_be_unique():
    run = QueryRun(athena(), deadline=Deadline.after(60), sleep=no_sleep)
    with pytest.raises(InvalidInputError, match="unique"):
        run.start(SETTINGS, [QUERIES[0], QUERIES[0]])


@pytest.mark.parametrize(("database", "table"), [("DB", "t"), ("db", "t; drop"), ('d"b', "t"), ("", "t")])
def test_identifiers_are_checked_before_quoting(database, table):
    with pytest.raises(InvalidInputError):
        qualified_table(database, table)


def test_settings_check_the_database_name():
    with pytest.raises(InvalidInputError, match="database"):
        QuerySettings(workgroup="wg", database="x-y")
    assert qualified_table("db_1", "file_metadata") == '"db_1"."file_metadata"'


def test_string_parameter_doubles_quotes():
    assert string_parameter("it's") == "'it''s'"
    assert string_parameter("") == "''"


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [("12", "bigint", 12), ("1.5", "double", 1.5), ("2.50", "decimal(10,2)", 2.5), ("TRUE", "boolean", True),
     ("false", "boolean", False), ("x", "varchar", "x"), (None, "bigint", None), ("2026-01-01", "date", "2026-01-01")],
)
def test_cells_are_converted_by_their_athena_type(value, kind, expected):
    assert convert(value, kind) == expected


def test_a_failed_query_is_typed_and_stops_the_others():
    failing = ({"State": "FAILED", "StateChangeReason": "SYNTAX_ERROR", "AthenaError": {"Retryable": False}},)
    fake = athena(states=("RUNNING",), final={"counts": failing})
    run = QueryRun(fake, deadline=Deadline.after(60), sleep=no_sleep)
    run.start(SETTINGS, QUERIES)
    with pytest.raises(QueryFailedError, match="SYNTAX_ERROR") as raised:
        run.wait()
    assert len(fake.stopped) == len(QUERIES) - 1
    assert raised.value.details["not_stopped"] == []
    assert raised.value.details["state"] == "FAILED"


def test_a_failed_query_names_the_others_it_could_not_stop():
    failing = ({"State": "FAILED", "StateChangeReason": "boom", "AthenaError": {"Retryable": False}},)
    fake = athena(states=("RUNNING",), final={"counts": failing})
    fake.stop_errors["names"] = client_error("InvalidRequestException", 400, "StopQueryExecution")
    run = QueryRun(fake, deadline=Deadline.after(60), sleep=no_sleep)
    ids = run.start(SETTINGS, QUERIES)
    with pytest.raises(QueryFailedError) as raised:
        run.wait()
    assert raised.value.details["not_stopped"] == [ids["names"]]
    assert fake.stopped == [ids["third"]]


def test_a_retryable_athena_failure_is_transient():
    failing = ({"State": "FAILED", "StateChangeReason": "internal", "AthenaError": {"Retryable": True}},)
    run = QueryRun(athena(final={"names": failing}), deadline=Deadline.after(60), sleep=no_sleep)
    run.start(SETTINGS, QUERIES)
    with pytest.raises(ServiceUnavailableError):
        run.wait()


def test_throttled_start_is_typed():
    fake = athena()

    def throttled(**_kw: Any) -> Any:
        raise client_error("ThrottlingException", 400, "StartQueryExecution")

    fake.start_query_execution = throttled
    with pytest.raises(ThrottlingError):
        QueryRun(fake, deadline=Deadline.after(60), sleep=no_sleep).start(SETTINGS, QUERIES)


def test_queries_running_past_the_deadline_are_stopped_with_a_typed_error():
    clock = ManualClock()
    fake = athena(states=("RUNNING",))
    run = QueryRun(fake, deadline=Deadline.after(5, clock=clock), sleep=clock.advance)
    run.start(SETTINGS, QUERIES)
    with pytest.raises(QueryTimeoutError) as raised:
        run.wait()
    assert sorted(fake.stopped) == sorted(fake.started)
    assert set(raised.value.details["queries"]) == {q.name for q in QUERIES}
    assert raised.value.details["not_stopped"] == []
    assert clock.now - 1000.0 <= 5  # never slept past the deadline


def test_a_stop_that_fails_is_reported_not_dropped():
    clock = ManualClock()
    fake = athena(states=("RUNNING",))
    fake.stop_errors["counts"] = client_error("InternalServerException", 500, "StopQueryExecution")
    run = QueryRun(fake, deadline=Deadline.after(5, clock=clock), sleep=clock.advance)
    ids = run.start(SETTINGS, QUERIES)
    with pytest.raises(QueryTimeoutError, match="2 of 3 were stopped") as raised:
        run.wait()
    assert raised.value.details["not_stopped"] == [ids["counts"]]


def slow_run(
    seconds: dict[str, float], *, states: tuple[Any, ...] = ("RUNNING",)
) -> tuple[SlowAthena, FakeLambdaContext, pytest.ExceptionInfo[QueryTimeoutError]]:
    """A run with the budget of a 300 s Lambda (15 s margin for work, 2 s to stop) on slow calls."""
    clock = ManualClock()
    fake = athena(SlowAthena, clock, seconds, states=states)
    context = FakeLambdaContext(remaining_ms=300_000, clock=clock)
    fake.context = context
    run = QueryRun(
        fake,
        deadline=Deadline.from_context(context, margin_ms=15_000),
        stop_deadline=Deadline.from_context(context, margin_ms=2_000),
        sleep=clock.advance,
    )
    with pytest.raises(QueryTimeoutError) as raised:
        run.run(SETTINGS, QUERIES)
    # The typed error came while the function was still alive: no request ran into the timeout.
    assert context.get_remaining_time_in_millis() > 0
    assert all(after > 0 for _op, _before, after in fake.requests)
    return fake, context, raised


def test_slow_polls_stop_the_queries_before_the_lambda_timeout():
    fake, _context, raised = slow_run({"GetQueryExecution": 20.0})
    assert sorted(fake.stopped) == sorted(fake.started)
    polls = [before for op, before, _after in fake.requests if op == "GetQueryExecution"]
    assert len(polls) > len(QUERIES)
    assert all(before - 15_000 > 20_000 for before in polls[1:])  # a poll started only with time for it
    assert raised.value.details["not_stopped"] == []


def test_slow_starts_stop_the_queries_already_started():
    # Starting a query takes 120 s: not all three fit in the 285 s budget.
    fake, _context, raised = slow_run({"StartQueryExecution": 120.0})
    assert 0 < len(fake.started) < len(QUERIES)
    assert sorted(fake.stopped) == sorted(fake.started)
    assert set(raised.value.details["queries"].values()) == set(fake.started)
    assert raised.value.details["not_started"]


def test_slow_result_pages_end_with_the_typed_error():
    fake, _context, raised = slow_run({"GetQueryResults": 100.0}, states=("SUCCEEDED",))
    assert fake.stopped == []  # nothing left running to stop
    assert "results" in raised.value.message


def test_slow_stops_give_up_before_the_lambda_timeout():
    # Polls take 20 s and stops 10 s: the margin cannot stop all three; the rest are named.
    fake, _context, raised = slow_run({"GetQueryExecution": 20.0, "StopQueryExecution": 10.0})
    not_stopped = raised.value.details["not_stopped"]
    assert fake.stopped
    assert not_stopped
    assert sorted(fake.stopped + not_stopped) == sorted(fake.started)


def test_query_settings_from_the_environment(monkeypatch):
    from shared.athena import QuerySettings
    from shared.errors import ConfigurationError

    monkeypatch.setenv("ATHENA_WORKGROUP", "wg-1")
    monkeypatch.setenv("GLUE_DATABASE", "db_x")
    assert QuerySettings.from_environment("out") == QuerySettings("wg-1", "db_x", "s3://out/athena-results/")
    monkeypatch.setenv("GLUE_DATABASE", "Bad-Name")
    with pytest.raises(ConfigurationError, match="GLUE_DATABASE"):
        QuerySettings.from_environment("out")
