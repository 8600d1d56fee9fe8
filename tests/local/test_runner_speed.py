"""What the local runner does to be fast without answering differently (docs/local-runner.md, issue 13):
the run waits for the engine's end-of-execution notice instead of polling DescribeExecution, the
engine's Lambda tasks share one client, and the fake ONTAP does not stall each reply on Nagle."""

from __future__ import annotations

import base64
import json
import socket
import socketserver
import ssl
import uuid
from typing import Any

import pytest
import urllib3

from local.emulators.ontap import FakeOntap, OntapDataset
from tests.local.conftest import ROLE, Engine, write_function

pytestmark = pytest.mark.unit


def _start(engine: Engine, definition: dict[str, Any]) -> str:
    sfn = engine.client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"sm-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=ROLE
    )["stateMachineArn"]
    return str(sfn.start_execution(stateMachineArn=machine, name=f"exec-{uuid.uuid4().hex[:8]}")["executionArn"])


@pytest.mark.parametrize(
    ("end", "status"),
    [({"Type": "Succeed"}, "SUCCEEDED"), ({"Type": "Fail", "Error": "Boom", "Cause": "c"}, "FAILED")],
)
def test_waiting_for_the_end_returns_once_describe_execution_has_the_outcome(engine, end, status):
    assert engine.extensions is not None
    arn = _start(engine, {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "Next": "E"}, "E": end}})
    assert engine.extensions.wait_for_end(arn, timeout=20)
    assert engine.client("stepfunctions").describe_execution(executionArn=arn)["status"] == status


def test_waiting_for_a_running_execution_times_out_and_a_stop_ends_it(engine):
    assert engine.extensions is not None
    arn = _start(engine, {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 600, "End": True}}})
    assert not engine.extensions.wait_for_end(arn, timeout=0.3)
    sfn = engine.client("stepfunctions")
    assert sfn.describe_execution(executionArn=arn)["status"] == "RUNNING"
    sfn.stop_execution(executionArn=arn, error="Local.Timeout", cause="test")
    assert engine.extensions.wait_for_end(arn, timeout=20)
    assert sfn.describe_execution(executionArn=arn)["status"] == "ABORTED"


def test_the_engines_lambda_tasks_share_one_client_and_still_see_each_reply(engine, tmp_path):
    assert engine.extensions is not None
    spec = write_function(tmp_path, "echo", "def handler(event, context):\n    return {'n': event['n'] + 1}\n")
    engine.add_functions([spec])
    task = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "OutputPath": "$.Payload"}
    states: dict[str, dict[str, Any]] = {
        f"T{i}": {**task, "Parameters": {"FunctionName": spec.arn, "Payload.$": "$"}, "Next": f"T{i + 1}"}
        for i in range(4)
    }
    states["T4"] = {"Type": "Pass", "End": True}
    described = engine.execute({"StartAt": "T0", "States": states}, {"n": 0})
    assert described["status"] == "SUCCEEDED"
    assert described["output_json"] == {"n": 4}
    assert engine.runtime is not None
    assert engine.runtime.stats["echo"].invocations == 4
    assert engine.extensions.lambda_clients.created == 1


def test_the_fake_ontap_sends_each_reply_without_waiting_for_the_clients_ack(monkeypatch):
    # Headers and body are two writes; with Nagle's algorithm on, the body waited for the
    # client's delayed ACK (40 ms a request on loopback). The connection that answers must
    # have TCP_NODELAY set.
    nodelay: list[int] = []
    original_setup = socketserver.StreamRequestHandler.setup

    def setup(handler: socketserver.StreamRequestHandler) -> None:
        original_setup(handler)
        nodelay.append(handler.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))

    monkeypatch.setattr(socketserver.StreamRequestHandler, "setup", setup)
    with FakeOntap(OntapDataset()) as fake:
        pool = urllib3.PoolManager(ssl_context=ssl.create_default_context(cafile=fake.ca_file), retries=False)
        auth = "Basic " + base64.b64encode(f"{fake.username}:{fake.password}".encode()).decode()
        reply = pool.request("GET", f"https://127.0.0.1:{fake.port}/api/svm/svms", headers={"Authorization": auth})
    assert reply.status == 200
    assert json.loads(reply.data)["records"] == []
    assert nodelay
    assert all(nodelay)
