"""The Athena (DuckDB) and Bedrock Converse emulators, through ordinary boto3 clients."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local.emulators.athena import AthenaEmulator
from local.emulators.bedrock import BedrockEmulator
from local.faults import Fault

pytestmark = pytest.mark.unit

BUCKET = "athena-emulator-data"
DB = "eda"


@pytest.fixture
def athena(engine: Any) -> AthenaEmulator:
    emulator = AthenaEmulator(engine.session, engine.clock, query_run_seconds=engine.plan.slow_seconds)
    engine.interceptor.add(emulator.hook, service="athena")
    s3 = engine.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    glue = engine.client("glue")
    glue.create_database(DatabaseInput={"Name": DB})
    glue.create_table(
        DatabaseName=DB,
        TableInput={
            "Name": "records",
            "Parameters": {
                "projection.enabled": "true",
                "projection.execution_id.type": "injected",
                "storage.location.template": f"s3://{BUCKET}/results/execution_id=${{execution_id}}/",
            },
            "PartitionKeys": [{"Name": "execution_id", "Type": "string"}],
            "StorageDescriptor": {
                "Location": f"s3://{BUCKET}/results/",
                "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe"},
                "Columns": [
                    {"Name": "source_key", "Type": "string"},
                    {"Name": "status", "Type": "string"},
                    {"Name": "cells", "Type": "bigint"},
                    {"Name": "names", "Type": "array<string>"},
                ],
            },
        },
    )
    for execution, rows in (("run-1", 1200), ("run-2", 3)):
        for i in range(rows if execution == "run-2" else 5):
            record = {
                "Source_Key": f"{execution}/f{i}",
                "status": "FAILED" if i == 0 else "SUCCEEDED",
                "cells": i,
                "names": ["a", "b"][: i % 3],
            }
            s3.put_object(
                Bucket=BUCKET, Key=f"results/execution_id={execution}/f{i}.json", Body=json.dumps(record).encode()
            )
    big = "\n".join(json.dumps({"source_key": f"big{i}", "status": "SUCCEEDED", "cells": i}) for i in range(1200))
    s3.put_object(Bucket=BUCKET, Key="results/execution_id=run-3/all.json", Body=big.encode())
    engine.client("athena").create_work_group(
        Name="wg",
        Configuration={
            "ResultConfiguration": {"OutputLocation": f"s3://{BUCKET}/athena/"},
            "EnforceWorkGroupConfiguration": True,
        },
    )
    return emulator


def _run(engine: Any, sql: str, params: list[str] | None = None, *, polls: int = 20) -> tuple[str, list[str], Any]:
    client = engine.client("athena")
    request: dict[str, Any] = {"QueryString": sql, "QueryExecutionContext": {"Database": DB}, "WorkGroup": "wg"}
    if params is not None:
        request["ExecutionParameters"] = params
    qid = client.start_query_execution(**request)["QueryExecutionId"]
    states = []
    for _ in range(polls):
        status = client.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]
        states.append(status["State"])
        if status["State"] in {"SUCCEEDED", "FAILED", "CANCELLED"}:
            break
    return qid, states, status


def _rows(engine: Any, qid: str, **kwargs: Any) -> tuple[list[list[str | None]], Any]:
    result = engine.client("athena").get_query_results(QueryExecutionId=qid, **kwargs)
    return [[c.get("VarCharValue") for c in row["Data"]] for row in result["ResultSet"]["Rows"]], result


def test_query_runs_over_this_execution_partition_only(engine, athena):
    sql = (
        'SELECT status, count(*) AS n, sum(cells) AS cells, max(cardinality(names)) AS m FROM "eda"."records" '
        "WHERE execution_id = ? GROUP BY status ORDER BY status"
    )
    qid, states, status = _run(engine, sql, ["'run-1'"])
    assert states[:2] == ["RUNNING", "SUCCEEDED"]
    assert status["State"] == "SUCCEEDED"
    rows, result = _rows(engine, qid)
    assert rows == [["status", "n", "cells", "m"], ["FAILED", "1", "0", "0"], ["SUCCEEDED", "4", "10", "2"]]
    types = [c["Type"] for c in result["ResultSet"]["ResultSetMetadata"]["ColumnInfo"]]
    assert types == ["varchar", "bigint", "bigint", "bigint"]
    csv_key = f"athena/{qid}.csv"
    assert engine.client("s3").get_object(Bucket=BUCKET, Key=csv_key)["Body"].read().startswith(b'"status","n"')


def test_results_are_paged_with_next_token(engine, athena):
    qid, _, status = _run(engine, "SELECT source_key FROM records WHERE execution_id = ? ORDER BY cells", ["'run-3'"])
    assert status["State"] == "SUCCEEDED"
    first, page = _rows(engine, qid)
    assert len(first) == 1000
    assert first[0] == ["source_key"]
    second, page2 = _rows(engine, qid, NextToken=page["NextToken"])
    assert len(second) == 201
    assert "NextToken" not in page2


def test_parameter_is_bound_never_interpolated(engine, athena):
    qid, _, status = _run(engine, "SELECT count(*) FROM records WHERE execution_id = ?", ["'run-1'' OR ''1''=''1'"])
    assert status["State"] == "SUCCEEDED"
    assert _rows(engine, qid)[0][1] == ["0"]


@pytest.mark.parametrize(
    ("sql", "params", "error"),
    [
        ("SELECT count(*) FROM records WHERE execution_id = ?", None, "INVALID_PARAMETER_USAGE"),
        ("SELECT count(*) FROM records WHERE execution_id = ?", ["'a'", "1"], "INVALID_PARAMETER_USAGE"),
        ("SELECT ? FROM records WHERE execution_id = 'run-1'", ["'x'"], "INVALID_PARAMETER_USAGE"),
        ("SELECT count(*) FROM records WHERE execution_id = ?", ['"run-1"'], "INVALID_PARAMETER_USAGE"),
        ("SELECT count(*) FROM records WHERE execution_id = ?", ["run1"], "COLUMN_NOT_FOUND"),
        ("SELECT count(*) FROM records", None, "CONSTRAINT_VIOLATION"),
        ("SELECT count(*) FROM missing WHERE execution_id = 'x'", None, "TABLE_NOT_FOUND"),
        ("SELECT nope FROM records WHERE execution_id = 'run-1'", None, "COLUMN_NOT_FOUND"),
        ("SELEC 1", None, "SYNTAX_ERROR"),
    ],
)
def test_queries_athena_would_reject_fail(engine, athena, sql, params, error):
    qid, _, status = _run(engine, sql, params)
    assert status["State"] == "FAILED"
    assert status["StateChangeReason"].startswith(error)
    with pytest.raises(ClientError):
        engine.client("athena").get_query_results(QueryExecutionId=qid)


def test_slow_query_runs_on_the_emulated_clock_and_can_be_stopped(engine, athena):
    engine.plan.add(Fault.slow("athena:StartQueryExecution", seconds=600))
    qid, states, _status = _run(engine, "SELECT 1 AS x FROM records WHERE execution_id = 'run-2'", polls=5)
    assert set(states) == {"RUNNING"}
    engine.clock.advance(601)
    assert (
        engine.client("athena").get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"]
        == "SUCCEEDED"
    )
    qid2, _states2, _ = _run(engine, "SELECT 1 AS x FROM records WHERE execution_id = 'run-2'", polls=2)
    engine.client("athena").stop_query_execution(QueryExecutionId=qid2)
    final = engine.client("athena").get_query_execution(QueryExecutionId=qid2)["QueryExecution"]["Status"]["State"]
    assert final in {"CANCELLED", "SUCCEEDED"}


def test_missing_output_location_is_rejected(engine, athena):
    client = engine.session.client("athena", config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(ClientError) as info:
        client.start_query_execution(QueryString="SELECT 1", QueryExecutionContext={"Database": DB})
    assert info.value.response["Error"]["Code"] == "InvalidRequestException"


@pytest.fixture
def bedrock(engine: Any) -> BedrockEmulator:
    emulator = BedrockEmulator()
    engine.interceptor.add(emulator.hook, service="bedrock-runtime")
    return emulator


def _converse(engine: Any, text: str, **kwargs: Any) -> Any:
    client = engine.session.client("bedrock-runtime", config=Config(retries={"total_max_attempts": 1}))
    return client.converse(
        modelId="amazon.nova-lite-v1:0", messages=[{"role": "user", "content": [{"text": text}]}], **kwargs
    )


def test_converse_reply_is_derived_from_the_prompt(engine, bedrock):
    prompt = 'Review this run: {"files": 40, "failed": 3} and note: file x.gds is truncated'
    reply = _converse(engine, prompt)
    text = reply["output"]["message"]["content"][0]["text"]
    assert text != prompt
    assert text.startswith("# Design review")
    assert "files 40" in text
    assert "truncated" in text
    assert "3 item(s) could not be processed" in text
    assert reply["stopReason"] == "end_turn"
    usage = reply["usage"]
    assert usage["totalTokens"] == usage["inputTokens"] + usage["outputTokens"] > 0
    assert _converse(engine, prompt)["output"] == reply["output"]
    assert bedrock.calls[0]["modelId"] == "amazon.nova-lite-v1:0"


def test_converse_honours_max_tokens(engine, bedrock):
    reply = _converse(engine, "Summarize " + "data " * 50, inferenceConfig={"maxTokens": 10})
    assert reply["stopReason"] == "max_tokens"
    assert reply["usage"]["outputTokens"] == 10


def test_converse_validates_the_conversation(engine, bedrock):
    client = engine.session.client("bedrock-runtime", config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(client.exceptions.ValidationException):
        client.converse(modelId="amazon.nova-lite-v1:0", messages=[{"role": "assistant", "content": [{"text": "hi"}]}])
    with pytest.raises(client.exceptions.ValidationException):
        client.converse(modelId="not a model", messages=[{"role": "user", "content": [{"text": "hi"}]}])


def test_parameters_bind_in_the_order_they_appear_in_the_text(engine, athena):
    # The second placeholder sits inside a function call, shallower in the syntax tree than the
    # first: binding in tree order (breadth first) would swap them and match nothing.
    sql = "SELECT count(*) FROM records WHERE execution_id = ? AND status = 'SUCCEEDED' AND regexp_like(source_key, ?)"
    qid, _, status = _run(engine, sql, ["'run-1'", "'f[12]$'"])
    assert status["State"] == "SUCCEEDED", status
    assert _rows(engine, qid)[0][1] == ["2"]
