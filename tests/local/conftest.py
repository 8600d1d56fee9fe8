"""Helpers for the local runner's unit tests: run a raw ASL definition on the extended engine."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.faults import FaultPlan
from local.runner.clock import EmulatedClock
from local.runner.engine import EngineExtensions
from local.runner.interceptor import Interceptor
from local.runner.lambdas import FunctionSpec, LambdaRuntime

REGION = "us-east-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/local-test"


@dataclass
class Engine:
    """A mock AWS world with the engine extensions, an interceptor and optional Lambda functions."""

    session: boto3.Session
    interceptor: Interceptor
    clock: EmulatedClock
    plan: FaultPlan
    runtime: LambdaRuntime | None = None
    events: list[tuple[Any, str, dict[str, Any]]] = field(default_factory=list)
    extensions: EngineExtensions | None = None

    def client(self, service: str) -> Any:
        return self.session.client(service)

    def execute(
        self, definition: dict[str, Any], execution_input: Any = None, *, timeout: float = 60
    ) -> dict[str, Any]:
        """Create the state machine, run one execution to its end, return DescribeExecution."""
        sfn = self.client("stepfunctions")
        arn = sfn.create_state_machine(
            name=f"sm-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=ROLE
        )["stateMachineArn"]
        execution = sfn.start_execution(
            stateMachineArn=arn, name=f"exec-{uuid.uuid4().hex[:8]}", input=json.dumps(execution_input or {})
        )["executionArn"]
        deadline = time.monotonic() + timeout
        while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
            if time.monotonic() > deadline:
                raise AssertionError("execution did not finish")
            time.sleep(0.02)
        described["history"] = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
        if described.get("output"):
            described["output_json"] = json.loads(described["output"])
        return described

    def add_functions(self, functions: list[FunctionSpec]) -> LambdaRuntime:
        self.runtime = LambdaRuntime(functions, self.clock)
        self.interceptor.add(self.runtime.hook, service="lambda")
        return self.runtime


@pytest.fixture
def engine() -> Iterator[Engine]:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        boto3.DEFAULT_SESSION = None
        session = boto3.Session(region_name=REGION)
        clock = EmulatedClock()
        plan = FaultPlan([], clock)
        interceptor = Interceptor()
        interceptor.add(plan.hook)
        env = Engine(session=session, interceptor=interceptor, clock=clock, plan=plan)

        def listen(manager: Any, event_type: str, details: dict[str, Any]) -> None:
            env.events.append((manager, event_type, details))

        with (
            EngineExtensions(retry_time_scale=0.0, listener=listen, max_workers=4) as ext,
            interceptor,
            clock.virtual_sleep(),
        ):
            env.extensions = ext
            yield env


def write_function(tmp_path: Path, name: str, source: str, **kwargs: Any) -> FunctionSpec:
    """A Lambda function whose handler.py is ``source``, in its own code folder."""
    code = tmp_path / name
    code.mkdir(parents=True, exist_ok=True)
    (code / "handler.py").write_text(source)
    return FunctionSpec(
        logical_id=name,
        name=name,
        arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        code_dir=code,
        handler="handler.handler",
        **kwargs,
    )


def put_jsonl(s3: Any, bucket: str, key: str, items: list[Any]) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body="\n".join(json.dumps(i) for i in items).encode())


def distributed_map(processor_states: dict[str, Any], start_at: str, **fields: Any) -> dict[str, Any]:
    """A Distributed Map state (the caller adds ItemReader/ItemBatcher/...)."""
    return {
        "Type": "Map",
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": start_at,
            "States": processor_states,
        },
        **fields,
    }


Events = Callable[[], list[str]]
