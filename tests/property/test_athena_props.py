"""shared.athena properties: bound string literals, cell conversion, and a run that never outlives
its deadline whatever the query states and request times."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.athena import Query, QueryRun, QuerySettings, convert, string_parameter
from shared.errors import QueryFailedError, QueryTimeoutError, ServiceUnavailableError
from shared.retry import Deadline
from tests.support.athena import SlowAthena
from tests.support.lambda_context import FakeLambdaContext, ManualClock

pytestmark = pytest.mark.property


def sql_literal_value(literal: str) -> str:
    """What a SQL engine reads from a single-quoted literal (quotes inside doubled)."""
    assert literal[0] == literal[-1] == "'"
    body = literal[1:-1]
    out, i = [], 0
    while i < len(body):
        if body[i] == "'":
            assert body[i + 1] == "'", "a lone quote would end the literal"
            i += 1
        out.append(body[i])
        i += 1
    return "".join(out)


@given(st.text())
def test_a_string_parameter_is_one_literal_holding_exactly_the_value(value):
    assert sql_literal_value(string_parameter(value)) == value


@given(st.integers(-(2**63), 2**63 - 1), st.sampled_from(["tinyint", "smallint", "integer", "int", "bigint"]))
def test_integers_round_trip(value, kind):
    assert convert(str(value), kind) == value


@given(st.floats(allow_nan=False), st.sampled_from(["double", "float", "real"]))
def test_floats_round_trip(value, kind):
    assert convert(repr(value), kind) == value


@given(st.text(), st.sampled_from(["varchar", "char(3)", "date", "timestamp", "json"]))
def test_other_types_stay_text(value, kind):
    assert convert(value, kind) == value


STATE = st.sampled_from(["QUEUED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"])
OPERATIONS = ["StartQueryExecution", "GetQueryExecution", "StopQueryExecution", "GetQueryResults"]


@settings(max_examples=60, deadline=None)
@given(
    queries=st.integers(1, 5),
    states=st.lists(STATE, min_size=1, max_size=6),
    seconds=st.fixed_dictionaries({op: st.floats(0, 90) for op in OPERATIONS}),
    budget_s=st.integers(20, 900),
)
def test_a_run_ends_typed_and_before_the_lambda_timeout(queries, states, seconds, budget_s):
    names = [f"q{i}" for i in range(queries)]
    clock = ManualClock()
    fake: Any = SlowAthena({n: ([("n", "bigint")], [[1]]) for n in names}, clock, seconds, states=tuple(states))
    fake.bind({n: f"SELECT {i}" for i, n in enumerate(names)})
    context = FakeLambdaContext(remaining_ms=budget_s * 1000, clock=clock)
    fake.context = context
    run = QueryRun(fake, deadline=Deadline.from_context(context, margin_ms=15_000),
                   stop_deadline=Deadline.from_context(context, margin_ms=2_000), sleep=clock.advance)
    try:
        results = run.run(QuerySettings(workgroup="wg", database="db"), [Query(n, f"SELECT {i}")
                                                                          for i, n in enumerate(names)])
    except QueryTimeoutError as e:
        stopped_or_not = sorted(fake.stopped + e.details["not_stopped"])
        assert set(stopped_or_not) <= set(fake.started)
    except (QueryFailedError, ServiceUnavailableError):
        pass
    else:
        assert results == {n: [{"n": 1}] for n in names}
    # Once a request of an operation has been timed, no later one of it runs into the timeout
    # (the first of each is assumed fast: nothing is known about it yet).
    seen: set[str] = set()
    for operation, _before, after in fake.requests:
        if operation in seen:
            assert after > 0, (operation, fake.requests)
        seen.add(operation)
