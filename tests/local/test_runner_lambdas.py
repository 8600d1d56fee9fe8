"""The in-process Lambda runtime: addressing, errors as Lambda reports them, clock, isolation."""

from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from local.faults import Fault
from tests.local.conftest import write_function

pytestmark = pytest.mark.unit

ECHO = """
import os
from typing import Any
CONFIG = os.environ.get("GREETING", "unset")
def handler(event, context):
    return {"event": event, "config": CONFIG, "now": os.environ.get("GREETING"),
            "remaining": context.get_remaining_time_in_millis(), "name": context.function_name}
"""

FAILING = """
class ItemRejected(Exception):
    pass
def handler(event, context):
    raise ItemRejected("no")
"""


def _invoke(engine: Any, name: str, payload: Any = None, **kwargs: Any) -> tuple[Any, Any]:
    reply = engine.client("lambda").invoke(FunctionName=name, Payload=json.dumps(payload or {}).encode(), **kwargs)
    return reply, json.loads(reply["Payload"].read() or b"null")


def test_invoke_by_name_arn_and_alias(engine, tmp_path):
    spec = write_function(tmp_path, "echo", ECHO, environment={"GREETING": "hi"}, aliases=("live",), timeout_s=60)
    engine.add_functions([spec])
    for name in ("echo", spec.arn, f"{spec.arn}:live", f"{spec.arn}:1"):
        reply, body = _invoke(engine, name, {"a": 1})
        assert "FunctionError" not in reply
        assert body["event"] == {"a": 1}
        assert body["config"] == "hi"
        assert body["now"] == "hi"
        assert 0 < body["remaining"] <= 60_000
    assert os.environ.get("GREETING") is None  # the function's variables do not leak
    with pytest.raises(engine.client("lambda").exceptions.ResourceNotFoundException):
        _invoke(engine, "missing")


def test_exception_becomes_a_function_error_named_after_its_class(engine, tmp_path):
    engine.add_functions([write_function(tmp_path, "failing", FAILING)])
    reply, body = _invoke(engine, "failing")
    assert reply["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ItemRejected"
    assert body["errorMessage"] == "no"
    assert engine.runtime.stats["failing"].errors["ItemRejected"] == 1


def test_time_past_the_timeout_is_reported_as_sandbox_timedout(engine, tmp_path):
    engine.plan.add(Fault.slow("s3:ListBuckets", seconds=11))
    slow = """
import boto3
S3 = boto3.client("s3")
def handler(event, context):
    S3.list_buckets()
    return {"remaining": context.get_remaining_time_in_millis()}
"""
    engine.add_functions([write_function(tmp_path, "slow", slow, timeout_s=10)])
    reply, body = _invoke(engine, "slow")
    assert reply["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"


def test_each_function_imports_its_own_sibling_modules(engine, tmp_path):
    for name, value in (("one", 1), ("two", 2)):
        spec = write_function(tmp_path, name, "from helper import VALUE\ndef handler(e, c):\n    return VALUE\n")
        (spec.code_dir / "helper.py").write_text(f"VALUE = {value}\n")
    engine.add_functions(
        [write_function(tmp_path, n, (tmp_path / n / "handler.py").read_text()) for n in ("one", "two")]
    )
    assert _invoke(engine, "one")[1] == 1
    assert _invoke(engine, "two")[1] == 2
    assert "helper" not in __import__("sys").modules


def test_init_errors_are_reported_and_retried(engine, tmp_path):
    marker = tmp_path / "ready"
    source = f"""
import pathlib
if not pathlib.Path({str(marker)!r}).exists():
    raise KeyError("CONFIG")
def handler(e, c):
    return "ok"
"""
    engine.add_functions([write_function(tmp_path, "init", source)])
    _reply, body = _invoke(engine, "init")
    assert body["errorType"] == "KeyError"
    marker.write_text("")
    assert _invoke(engine, "init")[1] == "ok"


def test_unserializable_result_is_a_marshal_error(engine, tmp_path):
    engine.add_functions([write_function(tmp_path, "bad", "def handler(e, c):\n    return object()\n")])
    _reply, body = _invoke(engine, "bad")
    assert body["errorType"] == "Runtime.MarshalError"


def test_lambda_service_fault_reaches_the_caller_as_a_client_error(engine, tmp_path):
    engine.add_functions([write_function(tmp_path, "echo", ECHO)])
    engine.plan.add(Fault.transient("lambda:Invoke", times=1, match="echo"))
    client = engine.session.client(
        "lambda", config=__import__("botocore.config").config.Config(retries={"total_max_attempts": 1})
    )
    with pytest.raises(client.exceptions.TooManyRequestsException):
        client.invoke(FunctionName="echo", Payload=b"{}")


POWERTOOLS_METRICS = """
import threading
from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
metrics = Metrics(namespace="Test", service="overlap")
@metrics.log_metrics
def handler(event, context):
    metrics.add_metric(name=f"Item{event['n']}", unit=MetricUnit.Count, value=1)
    threading.Event().wait(0.05)  # real time, not the emulated clock: the Map's other workers go on
    return event["n"]
"""


def test_overlapping_invocations_each_flush_only_their_own_powertools_metrics(engine, tmp_path, capsys):
    # Lambda runs overlapping invocations in separate processes; Powertools keeps one metric set
    # per process for every Metrics instance, so sharing a process must not mean overlapping.
    spec = write_function(tmp_path, "metered", POWERTOOLS_METRICS, timeout_s=60)
    engine.add_functions([spec])
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda n: engine.runtime.invoke(spec, json.dumps({"n": n}).encode()), range(8)))
    assert [(json.loads(body), error) for body, error in results] == [(n, None) for n in range(8)]
    flushed = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    names = sorted(
        tuple(sorted(m["Name"] for m in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"])) for blob in flushed
    )
    assert names == sorted((f"Item{n}",) for n in range(8))
    assert engine.runtime.stats["metered"].cold_starts >= 2  # overlapping calls got environments of their own
