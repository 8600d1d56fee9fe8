"""Fault injection: specifications, and what a boto3 client sees (including botocore's retries)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local.faults import Fault, FaultSpecError

pytestmark = pytest.mark.unit

BUCKET = "fault-test-bucket"


def _s3(engine: Any, attempts: int = 1) -> Any:
    s3 = engine.session.client("s3", config=Config(retries={"mode": "standard", "total_max_attempts": attempts}))
    engine.client("s3").create_bucket(Bucket=BUCKET)
    engine.client("s3").put_object(Bucket=BUCKET, Key="a/one.txt", Body=b"1")
    engine.client("s3").put_object(Bucket=BUCKET, Key="b/two.txt", Body=b"2")
    return s3


def test_parse_cli_form():
    fault = Fault.parse("s3:GetObject=permanent,code=AccessDenied,match=designs/,times=2")
    assert (fault.service, fault.operation, fault.mode) == ("s3", "GetObject", "permanent")
    assert (fault.code, fault.match, fault.times) == ("AccessDenied", "designs/", 2)
    assert Fault.parse("athena:GetQueryExecution=slow,seconds=1.5").seconds == 1.5
    assert Fault.parse("s3:GetObject=transient").times == 1


@pytest.mark.parametrize(
    "spec",
    [
        "s3GetObject=transient",
        "s3:GetObject",
        "s3:getObject=transient",
        "s3:GetObject=sometimes",
        "s3:GetObject=transient,times=x",
        "s3:GetObject=transient,times=0",
        "s3:GetObject=slow",
        "s3:GetObject=transient,color=red",
        "s3:GetObject=transient,times",
    ],
)
def test_parse_rejects_bad_specs(spec):
    with pytest.raises(FaultSpecError):
        Fault.parse(spec)


def test_transient_fault_fails_n_times_then_passes(engine):
    s3 = _s3(engine)
    engine.plan.add(Fault.transient("s3:GetObject", times=2))
    for _ in range(2):
        with pytest.raises(ClientError) as info:
            s3.get_object(Bucket=BUCKET, Key="a/one.txt")
        assert info.value.response["Error"]["Code"] == "SlowDown"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert s3.get_object(Bucket=BUCKET, Key="a/one.txt")["Body"].read() == b"1"


def test_botocore_retries_an_injected_transient_error_as_against_aws(engine):
    s3 = _s3(engine, attempts=3)
    fault = engine.plan.add(Fault.transient("s3:GetObject", times=2))
    # As a handler makes it: botocore's backoff between the attempts advances the emulated clock.
    with engine.clock.invocation():
        reply = s3.get_object(Bucket=BUCKET, Key="a/one.txt")
        backoff = engine.clock.skew
    assert reply["Body"].read() == b"1"
    assert reply["ResponseMetadata"]["RetryAttempts"] == 2
    assert fault.hits == 2
    assert backoff > 0


def test_permanent_fault_matches_only_its_keys(engine):
    s3 = _s3(engine, attempts=3)
    engine.plan.add(Fault.permanent("s3:GetObject", match="b/"))
    assert s3.get_object(Bucket=BUCKET, Key="a/one.txt")["Body"].read() == b"1"
    for _ in range(3):
        with pytest.raises(ClientError) as info:
            s3.get_object(Bucket=BUCKET, Key="b/two.txt")
        assert info.value.response["Error"]["Code"] == "AccessDenied"


def test_json_protocol_errors_have_the_service_shape(engine):
    athena = engine.session.client("athena", config=Config(retries={"total_max_attempts": 1}))
    engine.plan.add(Fault.transient("athena:ListWorkGroups", times=1))
    engine.plan.add(Fault.permanent("athena:GetWorkGroup", code="ValidationException"))
    with pytest.raises(ClientError) as info:
        athena.list_work_groups()
    assert info.value.response["Error"]["Code"] == "ThrottlingException"
    with pytest.raises(athena.exceptions.ClientError) as info:
        athena.get_work_group(WorkGroup="primary")
    assert info.value.response["Error"]["Code"] == "ValidationException"


def test_slow_fault_advances_the_emulated_clock(engine):
    s3 = _s3(engine)
    engine.plan.add(Fault.slow("s3:GetObject", seconds=120))
    before = engine.clock.skew
    s3.get_object(Bucket=BUCKET, Key="a/one.txt")
    assert engine.clock.skew - before == 120


def test_faults_are_checked_before_moto_changes_anything(engine):
    s3 = _s3(engine)
    engine.plan.add(Fault.permanent("s3:PutObject", match="c/"))
    with pytest.raises(ClientError):
        s3.put_object(Bucket=BUCKET, Key="c/three.txt", Body=b"3")
    assert "Contents" not in engine.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="c/")
