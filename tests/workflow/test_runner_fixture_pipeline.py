"""The local runner end to end on its fixture use case (tests/local/fixtures/mini-pipeline).

The fixture exercises what every use case relies on, independently of any one use case's code:
JSONL manifest -> batched Distributed Map with ResultWriter and a failure tolerance -> Athena over
the execution's records -> Bedrock -> SNS.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from local.faults import Fault
from local.runner.run import RunOptions, RunResult, run_use_case
from tests.local.fixtures import mini_samples

pytestmark = pytest.mark.workflow

FIXTURE = Path(__file__).resolve().parents[1] / "local" / "fixtures" / "mini-pipeline"


def run(
    objects: int = 10,
    *,
    bad_every: int = 0,
    crash_keys: tuple[str, ...] = (),
    faults: tuple[Fault, ...] | list[Fault] = (),
    parameters: dict[str, str] | None = None,
    keep: Path | None = None,
) -> RunResult:
    options = RunOptions(
        objects=objects,
        faults=list(faults),
        parameters=parameters or {},
        keep=keep,
        retry_time_scale=0.0,
        sample_generator=functools.partial(mini_samples.generate, bad_every=bad_every, crash_keys=crash_keys),
    )
    return run_use_case(FIXTURE, options)


def assert_nothing_lost(result: RunResult) -> None:
    """Every input object has exactly one result record (a success or a recorded failure)."""
    assert result.items_total == len(result.samples["keys"])
    assert not result.unaccounted
    assert not result.duplicated
    assert result.records_succeeded + result.records_failed == result.items_total


def test_happy_path(tmp_path):
    result = run(keep=tmp_path)
    assert result.status == "SUCCEEDED", result.cause
    assert result.ok
    assert_nothing_lost(result)
    assert result.records_failed == 0
    (notification,) = result.notifications
    assert json.loads(notification["message"])["total"] == "10"
    assert result.emulated["athena (DuckDB)"] == 1
    assert result.emulated["bedrock-runtime Converse"] == 1
    assert result.functions["ProcessFunction"]["invocations"] == 4  # 10 items, batches of 3
    assert result.states_executed >= 4 + 4  # main states + one per child execution
    kept = tmp_path / "mini-pipeline" / result.execution_name
    assert (kept / "run.json").is_file()
    assert (kept / "lambda.log").is_file()
    assert any(p.name == "report.md" for p in kept.rglob("report.md"))


def test_recorded_failures_within_tolerance_succeed():
    result = run(bad_every=5)
    assert result.status == "SUCCEEDED", result.cause
    assert result.records_failed == 2
    assert result.records_by_error == {"InvalidFileError": 2}
    assert_nothing_lost(result)


def test_recorded_failures_above_tolerance_fail_with_the_typed_error():
    result = run(bad_every=2)
    assert result.status == "FAILED"
    assert result.error == "TooManyFailuresError"
    assert_nothing_lost(result)


def test_crashed_batches_above_the_map_tolerance_fail_the_map_run():
    result = run(crash_keys=("data/group-0/file 0000.dat",), parameters={"ToleratedFailurePercentage": "10"})
    assert result.status == "FAILED"
    assert result.error == "States.ExceedToleratedFailureThreshold"


def test_a_crashed_batch_within_tolerance_is_reported_as_lost_items():
    result = run(crash_keys=("data/group-0/file 0000.dat",), parameters={"ToleratedFailurePercentage": "50"})
    assert result.status == "SUCCEEDED"
    assert not result.ok  # the runner notices the three items of the crashed batch have no record
    assert len(result.unaccounted) == 3
    assert "data/group-0/file 0000.dat" in result.unaccounted


def test_transient_s3_errors_are_retried_to_success():
    fault = Fault.transient("s3:GetObject", times=3, match="file 0004")
    result = run(faults=[fault])
    assert result.status == "SUCCEEDED", result.cause
    assert fault.hits == 3
    assert_nothing_lost(result)
    assert result.records_failed == 0


def test_lambda_service_throttling_is_retried_by_the_state_machine():
    fault = Fault.transient("lambda:Invoke", times=2, match="ProcessFunction")
    result = run(faults=[fault])
    assert result.status == "SUCCEEDED", result.cause
    assert fault.hits == 2
    assert result.retry_wait_s > 0  # the Retry waited (scaled to zero here), as Step Functions would


def test_permanent_access_denied_on_one_object_is_a_recorded_failure():
    result = run(faults=[Fault.permanent("s3:GetObject", match="file 0007")])
    assert result.status == "SUCCEEDED", result.cause
    assert result.records_by_error == {"AccessDeniedError": 1}
    assert_nothing_lost(result)


def test_athena_query_outliving_the_lambda_ends_failed_with_the_typed_error():
    faults = [
        Fault.slow("athena:StartQueryExecution", seconds=3600),
        Fault.slow("athena:GetQueryExecution", seconds=30),
    ]
    result = run(faults=faults)
    assert result.status == "FAILED"
    assert result.error == "QueryTimeoutError"
