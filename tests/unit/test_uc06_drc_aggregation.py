"""drc_aggregation: parameterised Athena queries, paginated results, tolerance, deadline, failures."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.errors import (
    InvalidInputError,
    QueryFailedError,
    QueryTimeoutError,
    ServiceUnavailableError,
    TooManyFailuresError,
)
from shared.retry import Deadline
from tests.support.athena import FakeAthena, SlowAthena
from tests.support.events import load_event
from tests.support.lambda_context import FakeLambdaContext, ManualClock
from tests.support.uc06 import EVENTS, load_function

pytestmark = pytest.mark.unit

COLUMNS = {
    "status": [("status", "varchar"), ("error_type", "varchar"), ("files", "bigint")],
    "formats": [("format", "varchar"), ("files", "bigint"), ("total_bytes", "bigint"), ("cells", "bigint"),
                ("elements", "bigint"), ("placements", "bigint"), ("max_depth", "bigint"),
                ("compressed_blocks", "bigint")],
    "units": [("db_unit_meters", "double"), ("user_unit", "double"), ("files", "bigint")],
    "rules": [("top_cell_rule", "boolean"), ("unresolved_rule", "boolean"), ("empty_cell_rule", "boolean"),
              ("depth", "bigint"), ("files", "bigint")],
    "findings": [("source_key", "varchar"), ("format", "varchar"), ("top_cell_count", "bigint"),
                 ("unresolved_reference_count", "bigint"), ("empty_cell_count", "bigint"),
                 ("max_hierarchy_depth", "bigint"), ("cell_count", "bigint")],
    "failed_files": [("source_key", "varchar"), ("error_type", "varchar"), ("error_message", "varchar")],
}


def default_rows(succeeded: int = 9, failed: int = 1) -> dict[str, Any]:
    findings = [[f"designs/f{i:03d}.gds", "GDSII", 2, 0, 0, 3, 4] for i in range(5)]
    return {
        "status": [["SUCCEEDED", None, succeeded]] + ([["FAILED", "TruncatedFileError", failed]] if failed else []),
        "formats": [["GDSII", succeeded, 1000, 40, 400, 20, 3, 0]],
        "units": [[1e-9, 0.001, succeeded]],
        "rules": [[True, False, False, 3, 5], [False, False, False, 3, succeeded - 5], [False, False, True, 40, 0]],
        "findings": findings,
        "failed_files": [["designs/cut.oas", "TruncatedFileError", "ends at byte 12"]] * failed,
    }


TABLE = '"db_x"."file_metadata"'


def results(rows: dict[str, Any]) -> dict[str, Any]:
    """UC6's result columns with ``rows``, for the fake Athena."""
    return {name: (COLUMNS[name], rows[name]) for name in COLUMNS}


def uc6_sql(fn: Any) -> dict[str, str]:
    """The SQL text of each UC6 query as the handler sends it."""
    return {name: sql.format(table=TABLE) for name, sql in fn.aggregation.QUERIES.items()}


@pytest.fixture
def fn(monkeypatch, output_bucket):
    monkeypatch.setenv("OUTPUT_BUCKET", output_bucket)
    monkeypatch.setenv("ATHENA_WORKGROUP", "wg-uc6")
    monkeypatch.setenv("GLUE_DATABASE", "db_x")
    monkeypatch.setenv("GLUE_TABLE", "file_metadata")
    return load_function("drc_aggregation", "handler", "aggregation")


def run(
    fn: Any,
    athena: FakeAthena,
    s3: Any,
    *,
    expected: int = 10,
    tolerance: float = 10.0,
    deadline: Any = None,
    output_bucket: str = "pipeline-output-bucket",
    execution_id: str = "exec-7",
) -> dict[str, Any]:
    from tests.support.fakes import FakeDeadline

    athena.bind(uc6_sql(fn))
    return fn.aggregation.aggregate_execution(
        athena, s3, settings=fn.handler.SETTINGS, table=fn.handler.GLUE_TABLE, output_bucket=output_bucket,
        execution_id=execution_id,
        expected_count=expected, tolerated_percentage=tolerance, max_depth=32,
        deadline=deadline or FakeDeadline(300),
    )


@pytest.fixture(autouse=True)
def no_sleep(fn, monkeypatch):
    monkeypatch.setattr("time.sleep", lambda _s: None)


def test_aggregate_counts_rules_and_pages(fn, aws, output_bucket):
    s3 = aws.client("s3")
    athena = FakeAthena(results(default_rows()))
    reply = run(fn, athena, s3)
    assert reply == {"execution_id": "exec-7", "aggregate_bucket": output_bucket,
                     "aggregate_key": "reports/exec-7/aggregate.json", "total": 10, "succeeded": 9, "failed": 1,
                     "findings": 5}
    aggregate = json.loads(s3.get_object(Bucket=output_bucket, Key=reply["aggregate_key"])["Body"].read())
    assert aggregate["counts"] == {"expected": 10, "total": 10, "succeeded": 9, "failed": 1, "failed_records": 1,
                                   "missing_records": 0}
    assert aggregate["rules"]["files_per_rule"] == {"multiple_or_no_top_cells": 5, "unresolved_references": 0,
                                                    "empty_cells": 0, "hierarchy_too_deep": 0}
    assert len(aggregate["findings"]) == 5  # read across three result pages of two rows
    assert aggregate["findings"][0]["top_cell_count"] == 2
    assert aggregate["failures_by_type"] == [{"error_type": "TruncatedFileError", "files": 1}]
    assert aggregate["units"] == [{"db_unit_meters": 1e-9, "user_unit": 0.001, "files": 9}]


def test_queries_bind_the_execution_id_and_never_contain_it(fn, aws):
    athena = FakeAthena(results(default_rows()))
    run(fn, athena, aws.client("s3"))
    assert len(athena.started) == len(fn.aggregation.QUERIES)
    for q in athena.started.values():
        request = q["request"]
        assert "exec-7" not in request["QueryString"]
        assert request["ExecutionParameters"][0] == "'exec-7'"
        assert request["QueryString"].count("?") == len(request["ExecutionParameters"])
        assert request["WorkGroup"] == "wg-uc6"
        assert request["QueryExecutionContext"]["Database"] == "db_x"


def test_a_quote_in_the_execution_id_stays_inside_the_bound_literal(fn, aws):
    # Step Functions allows ' in an execution name; Athena reads a parameter as SQL, so it is doubled.
    athena = FakeAthena(results(default_rows()))
    reply = run(fn, athena, aws.client("s3"), execution_id="it's-1")
    assert reply["aggregate_key"] == "reports/it's-1/aggregate.json"
    for q in athena.started.values():
        assert q["request"]["ExecutionParameters"][0] == "'it''s-1'"
        assert "it's" not in q["request"]["QueryString"]


def test_missing_records_count_as_failures(fn, aws, output_bucket):
    athena = FakeAthena(results(default_rows(succeeded=8, failed=1)))
    s3 = aws.client("s3")
    with pytest.raises(TooManyFailuresError) as raised:
        run(fn, athena, s3, expected=10)  # 1 FAILED record + 1 file whose batch crashed = 20 %
    assert raised.value.details["missing_records"] == 1
    # The aggregate is still written for diagnosis.
    assert s3.head_object(Bucket=output_bucket, Key="reports/exec-7/aggregate.json")["ContentLength"] > 0


def test_failures_within_tolerance_pass_and_all_failed_always_fails(fn, aws):
    run(fn, FakeAthena(results(default_rows(succeeded=9, failed=1))), aws.client("s3"), expected=10, tolerance=10)
    rows = default_rows(succeeded=0, failed=3)
    rows["rules"] = []
    with pytest.raises(TooManyFailuresError, match="all 3 files failed"):
        run(fn, FakeAthena(results(rows)), aws.client("s3"), expected=3, tolerance=100)


def test_failed_query_is_typed_and_stops_the_others(fn, aws):
    failing = ({"State": "FAILED", "StateChangeReason": "SYNTAX_ERROR", "AthenaError": {"Retryable": False}},)
    athena = FakeAthena(results(default_rows()), states=("RUNNING",), final={"status": failing})
    with pytest.raises(QueryFailedError, match="SYNTAX_ERROR"):
        run(fn, athena, aws.client("s3"))
    assert len(athena.stopped) == len(fn.aggregation.QUERIES) - 1


def test_retryable_athena_failure_is_transient(fn, aws):
    failing = ({"State": "FAILED", "StateChangeReason": "internal", "AthenaError": {"Retryable": True}},)
    with pytest.raises(ServiceUnavailableError):
        run(fn, FakeAthena(results(default_rows()), final={"formats": failing}), aws.client("s3"))


def test_query_running_past_the_deadline_is_stopped_with_a_typed_error(fn, aws, monkeypatch):
    clock = ManualClock()
    monkeypatch.setattr("time.sleep", clock.advance)
    athena = FakeAthena(results(default_rows()), states=("RUNNING",))
    with pytest.raises(QueryTimeoutError) as raised:
        run(fn, athena, aws.client("s3"), deadline=Deadline.after(5, clock=clock))
    assert sorted(athena.stopped) == sorted(athena.started)
    assert set(raised.value.details["queries"]) == set(fn.aggregation.QUERIES)


def test_handler_deadline_comes_from_the_context(fn, aws, monkeypatch):
    athena = FakeAthena(results(default_rows()), states=("RUNNING",))
    athena.bind(uc6_sql(fn))
    monkeypatch.setattr(fn.handler, "ATHENA", athena)
    clock = ManualClock()
    monkeypatch.setattr("time.sleep", clock.advance)
    context = FakeLambdaContext(remaining_ms=45_000, clock=clock)  # 30 s after the 15 s margin
    with pytest.raises(QueryTimeoutError):
        fn.handler.handler(load_event(EVENTS, "drc_aggregation"), context)
    assert 29 <= clock.now - 1000.0 <= 31  # polled on the context's clock until the margin
    assert sorted(athena.stopped) == sorted(athena.started)


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"execution_id": "x", "expected_count": -1, "tolerated_failure_percentage": 5},
        {"execution_id": "x", "expected_count": 1, "tolerated_failure_percentage": 101},
        {"execution_id": "x'; DROP TABLE t; --", "expected_count": 1, "tolerated_failure_percentage": 5},
        {"execution_id": "x", "expected_count": True, "tolerated_failure_percentage": 5},
    ],
)
def test_bad_input(fn, bad):
    with pytest.raises(InvalidInputError):
        fn.handler.handler(bad, FakeLambdaContext())


def run_handler_with_slow_athena(
    fn: Any, monkeypatch: Any, seconds: dict[str, float], *, states: tuple[Any, ...] = ("RUNNING",), page_size: int = 2
) -> tuple[SlowAthena, FakeLambdaContext, pytest.ExceptionInfo[QueryTimeoutError]]:
    clock = ManualClock()
    athena = SlowAthena(results(default_rows()), clock, seconds, states=states, page_size=page_size)
    athena.bind(uc6_sql(fn))
    monkeypatch.setattr(fn.handler, "ATHENA", athena)
    monkeypatch.setattr("time.sleep", clock.advance)
    context = FakeLambdaContext(remaining_ms=300_000, clock=clock)  # the template's 300 s timeout
    athena.context = context
    with pytest.raises(QueryTimeoutError) as raised:
        fn.handler.handler(load_event(EVENTS, "drc_aggregation"), context)
    # The handler raised its typed error while the function was still alive: Lambda did not have
    # to kill it (Sandbox.Timedout), and no Athena request was still running at the timeout.
    assert context.get_remaining_time_in_millis() > 0
    assert all(after > 0 for _op, _before, after in athena.requests)
    return athena, context, raised


def test_slow_polls_stop_the_queries_before_the_lambda_timeout(fn, aws, monkeypatch):
    # Each GetQueryExecution takes 20 s: one round over the six queries takes two minutes.
    athena, _context, raised = run_handler_with_slow_athena(fn, monkeypatch, {"GetQueryExecution": 20.0})
    assert sorted(athena.stopped) == sorted(athena.started)
    assert raised.value.details["not_stopped"] == []
    assert set(raised.value.details["queries"]) == set(fn.aggregation.QUERIES)
    # Polled until the deadline: no poll started once less time was left than a poll takes.
    polls = [before for op, before, _after in athena.requests if op == "GetQueryExecution"]
    assert len(polls) > len(fn.aggregation.QUERIES)
    assert all(before - 15_000 > 20_000 for before in polls[1:])
