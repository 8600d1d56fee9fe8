"""An in-memory Athena for QueryRun tests: query states advance one step per GetQueryExecution.

``FakeAthena(results)`` answers StartQueryExecution / GetQueryExecution / StopQueryExecution /
GetQueryResults. ``results`` maps a query name to its columns and rows; ``bind({name: sql})``
tells it which SQL text is which query (Athena itself only ever sees the text). ``SlowAthena``
makes every call take a chosen time on an injected clock, and records the Lambda time left
before and after each call.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from tests.support.lambda_context import FakeLambdaContext, ManualClock

Columns = Sequence[tuple[str, str]]


class FakeAthena:
    def __init__(
        self,
        results: Mapping[str, tuple[Columns, list[list[Any]]]],
        *,
        states: tuple[Any, ...] = ("QUEUED", "RUNNING", "SUCCEEDED"),
        page_size: int = 2,
        final: dict[str, Any] | None = None,
    ) -> None:
        self.results = results
        self.states = states
        self.page_size = page_size
        self.final = final or {}
        self.started: dict[str, dict] = {}
        self.stopped: list[str] = []
        self.stop_errors: dict[str, Exception] = {}  # query name -> error StopQueryExecution raises
        self._ids = itertools.count()
        self._names: dict[str, str] = {}

    def bind(self, sql_by_name: Mapping[str, str]) -> None:
        self._names = {sql: name for name, sql in sql_by_name.items()}

    def start_query_execution(self, **kw):
        name = self._names[kw["QueryString"]]
        qid = f"q-{next(self._ids)}-{name}"
        self.started[qid] = {"name": name, "request": kw, "polls": 0}
        return {"QueryExecutionId": qid}

    def get_query_execution(self, QueryExecutionId):  # noqa: N803 - boto3 parameter names
        q = self.started[QueryExecutionId]
        if QueryExecutionId in self.stopped:
            return {"QueryExecution": {"Status": {"State": "CANCELLED"}}}
        states = self.final.get(q["name"], self.states)
        state = states[min(q["polls"], len(states) - 1)]
        q["polls"] += 1
        status = {"State": state if isinstance(state, str) else state["State"]}
        if not isinstance(state, str):
            status.update(state)
        return {"QueryExecution": {"Status": status}}

    def stop_query_execution(self, QueryExecutionId):  # noqa: N803
        error = self.stop_errors.get(self.started[QueryExecutionId]["name"])
        if error is not None:
            raise error
        self.stopped.append(QueryExecutionId)
        return {}

    def get_query_results(self, QueryExecutionId, MaxResults, NextToken=None):  # noqa: N803
        name = self.started[QueryExecutionId]["name"]
        columns, body = self.results[name]
        rows = [[c for c, _ in columns], *body]
        start = int(NextToken or 0)
        page = rows[start : start + min(MaxResults, self.page_size)]
        reply: dict[str, Any] = {
            "ResultSet": {
                "Rows": [{"Data": [{} if v is None else {"VarCharValue": str(v).lower() if isinstance(v, bool)
                                                         else str(v)} for v in row]} for row in page],
                "ResultSetMetadata": {"ColumnInfo": [{"Name": c, "Type": t} for c, t in columns]},
            }
        }
        if start + len(page) < len(rows):
            reply["NextToken"] = str(start + len(page))
        return reply


class SlowAthena(FakeAthena):
    """Calls take ``seconds[operation]`` on ``clock`` (no real sleeping); ``requests`` records,
    per call, the operation and the Lambda time left when it started and when it ended."""

    def __init__(self, results: Any, clock: ManualClock, seconds: dict[str, float], **kwargs: Any) -> None:
        super().__init__(results, **kwargs)
        self.clock = clock
        self.seconds = seconds
        self.context: FakeLambdaContext | None = None
        self.requests: list[tuple[str, int, int]] = []

    def _timed(self, operation: str, call: Any, **kw: Any) -> Any:
        assert self.context is not None
        before = self.context.get_remaining_time_in_millis()
        self.clock.advance(self.seconds.get(operation, 0.0))
        self.requests.append((operation, before, self.context.get_remaining_time_in_millis()))
        return call(**kw)

    def start_query_execution(self, **kw):
        return self._timed("StartQueryExecution", super().start_query_execution, **kw)

    def get_query_execution(self, QueryExecutionId):  # noqa: N803 - boto3 parameter names
        return self._timed("GetQueryExecution", super().get_query_execution, QueryExecutionId=QueryExecutionId)

    def stop_query_execution(self, QueryExecutionId):  # noqa: N803
        return self._timed("StopQueryExecution", super().stop_query_execution, QueryExecutionId=QueryExecutionId)

    def get_query_results(self, QueryExecutionId, MaxResults, NextToken=None):  # noqa: N803
        return self._timed(
            "GetQueryResults",
            super().get_query_results,
            QueryExecutionId=QueryExecutionId,
            MaxResults=MaxResults,
            NextToken=NextToken,
        )
