"""UC6 semiconductor-eda end to end on the local runner: the real template, definition and handlers.

Every scenario checks the invariant the pipeline promises: each input object ends with exactly one
result record (a success or a recorded, typed failure), whether the run succeeds or not.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.faults import Fault
from local.runner.run import RunOptions, RunResult, run_use_case
from local.samples import semiconductor_eda
from tests.support.fakes import RecordingS3
from tests.support.uc06 import template_default

pytestmark = pytest.mark.workflow

UC6 = Path(__file__).resolve().parents[2] / "semiconductor-eda"
OBJECTS = 40
TOLERANCE = int(template_default("ToleratedFailurePercentage"))  # the template's default (10)


def run(
    *faults: Fault, objects: int = OBJECTS, parameters: dict[str, str] | None = None, keep: Path | None = None
) -> RunResult:
    options = RunOptions(
        objects=objects, faults=list(faults), parameters=parameters or {}, keep=keep, retry_time_scale=0.0
    )
    return run_use_case(UC6, options)


def assert_one_record_per_input(result: RunResult) -> None:
    assert result.items_total > 0
    assert not result.unaccounted, f"inputs without a record: {result.unaccounted}"
    assert not result.duplicated, f"inputs with several records: {result.duplicated}"
    assert result.records_succeeded + result.records_failed == result.items_total


def samples(objects: int = OBJECTS) -> semiconductor_eda.SampleSet:
    """The sample set a run writes (same generator, same default seed), without running."""
    return semiconductor_eda.generate(RecordingS3(), "arn:aws:s3:us-east-1:123456789012:accesspoint/x", objects=objects)


def valid_keys(count: int) -> list[str]:
    """``count`` valid sample keys that a fault's ``match`` singles out (no key contains another)."""
    keys = [k for k in samples().valid if k.endswith((".gds", ".oas")) and k.isascii() and " " not in k]
    assert len(keys) >= count
    return keys[:count]


def deny(count: int) -> list[Fault]:
    """Permanent AccessDenied on ``count`` valid files: each becomes one more recorded failure."""
    return [Fault.permanent("s3:GetObject", match=key) for key in valid_keys(count)]


def test_happy_path(tmp_path):
    result = run(keep=tmp_path)
    assert result.status == "SUCCEEDED", result.cause
    assert result.ok
    assert_one_record_per_input(result)
    # The sample set's corrupt and truncated files are recorded failures, nothing else fails,
    # and they are clearly inside the default tolerance (not on its boundary).
    corrupt = set(result.samples["corrupt"])
    assert result.records_failed == len(corrupt) > 0
    assert set(result.records_by_error) == {"InvalidFileError", "TruncatedFileError"}
    assert (result.records_failed + 1) * 100 <= TOLERANCE * result.items_total
    (notification,) = result.notifications
    assert str(len(corrupt)) in notification["subject"]
    reports = list(tmp_path.rglob(f"reports/{result.execution_name}/*"))
    assert {p.suffix for p in reports} >= {".md", ".json"}
    assert result.emulated["athena (DuckDB)"] >= 1
    assert result.emulated["bedrock-runtime Converse"] == 1
    assert all(stats["errors"] == {} for stats in result.functions.values())


def test_one_item_failing_permanently_within_tolerance():
    # The sample's broken files plus one file the access point refuses: still within the
    # template's default tolerance.
    corrupt = len(samples().corrupt)
    faults = deny(1)
    result = run(*faults)
    assert result.status == "SUCCEEDED", result.cause
    assert all(fault.hits >= 1 for fault in faults)
    assert_one_record_per_input(result)
    assert result.records_failed == corrupt + 1
    assert result.records_by_error.get("AccessDeniedError") == 1
    assert result.records_failed * 100 <= TOLERANCE * result.items_total


def test_failures_exactly_at_the_tolerance_still_succeed():
    # The run fails only when failed / total * 100 is MORE than the tolerance.
    at_limit = OBJECTS * TOLERANCE // 100
    result = run(*deny(at_limit - len(samples().corrupt)))
    assert result.status == "SUCCEEDED", result.cause
    assert result.records_failed * 100 == TOLERANCE * result.items_total
    assert_one_record_per_input(result)


def test_failed_files_above_tolerance_fail_the_run_with_the_typed_error():
    # One failing file more than the default tolerance allows.
    at_limit = OBJECTS * TOLERANCE // 100
    result = run(*deny(at_limit + 1 - len(samples().corrupt)))
    assert result.status == "FAILED"
    assert result.error == "TooManyFailuresError"
    assert result.records_failed * 100 > TOLERANCE * result.items_total
    assert_one_record_per_input(result)


def test_a_tolerance_below_the_corrupt_share_fails_the_run():
    # The tolerance parameter reaches the aggregation: the sample's own broken files exceed 1 %.
    result = run(parameters={"ToleratedFailurePercentage": "1"})
    assert result.status == "FAILED"
    assert result.error == "TooManyFailuresError"
    assert result.records_failed == len(samples().corrupt)
    assert_one_record_per_input(result)


def test_crashing_batches_above_the_map_tolerance_fail_the_map_run():
    # Every MetadataExtraction invocation is refused by the Lambda service: all batches fail.
    result = run(Fault.permanent("lambda:Invoke", code="ResourceConflictException", match="MetadataExtraction"))
    assert result.status == "FAILED"
    assert result.error == "States.ExceedToleratedFailureThreshold"


def test_athena_timeout_fails_with_query_timeout_error():
    # Each query would run for an hour; the handler's polling (its sleeps advance the Lambda's
    # emulated clock) reaches its deadline, stops the queries and raises the typed error.
    result = run(Fault.slow("athena:StartQueryExecution", seconds=3600))
    assert result.status == "FAILED"
    assert result.error == "QueryTimeoutError"
    assert "did not finish" in json.loads(result.cause or "{}").get("errorMessage", "")
    assert_one_record_per_input(result)


def test_slow_athena_polls_still_end_with_query_timeout_error():
    # Queries that would run for an hour, and every GetQueryExecution takes 20 s of the Lambda's
    # (emulated) time: the handler must stop polling before its 300 s timeout, stop the queries
    # and raise the typed error, not be killed by Lambda (Sandbox.Timedout).
    polls = Fault.slow("athena:GetQueryExecution", seconds=20)
    result = run(Fault.slow("athena:StartQueryExecution", seconds=3600), polls)
    assert result.status == "FAILED"
    assert result.error == "QueryTimeoutError", result.cause
    assert "Sandbox.Timedout" not in result.functions["DrcAggregationFunction"]["errors"]
    assert polls.hits > 6  # more than one round over the six queries
    message = json.loads(result.cause or "{}").get("errorMessage", "")
    assert "all 6 were stopped" in message
    assert_one_record_per_input(result)


def test_transient_s3_errors_are_retried_to_success():
    (key,) = valid_keys(1)
    # More throttles than botocore's own attempts: the handler raises ThrottlingError and the Map's
    # Retry runs the batch again, which then succeeds.
    fault = Fault.transient("s3:GetObject", times=6, match=key)
    result = run(fault)
    assert result.status == "SUCCEEDED", result.cause
    assert fault.hits == 6
    assert_one_record_per_input(result)
    assert result.records_failed == len(samples().corrupt)
    assert result.functions["MetadataExtractionFunction"]["errors"].get("ThrottlingError", 0) >= 1
    assert result.retry_wait_s > 0


def test_lambda_throttling_is_retried_by_the_state_machine():
    fault = Fault.transient("lambda:Invoke", times=2, match="DrcAggregation")
    result = run(fault)
    assert result.status == "SUCCEEDED", result.cause
    assert fault.hits == 2
    assert result.retry_wait_s > 0
    assert_one_record_per_input(result)
    assert result.records_failed == len(samples().corrupt)


def test_existing_output_bucket_and_workgroup():
    # The template's other branch: CreateOutputBucket and CreateAthenaWorkgroup both false.
    result = run(parameters={"OutputBucketName": "existing-eda-output", "AthenaWorkgroupName": "existing-wg"})
    assert result.status == "SUCCEEDED", result.cause
    assert_one_record_per_input(result)
    assert all(key.startswith("s3://existing-eda-output/") for key in result.output_keys)
