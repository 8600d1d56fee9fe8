"""Every UC6 function accepts exactly the Step Functions execution names as its execution id."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from shared.batch import parse_batch
from shared.errors import InvalidInputError
from tests.support.uc06 import load_function

pytestmark = pytest.mark.unit

# Valid Step Functions execution names this pipeline's old pattern refused, and invalid ones.
VALID = ["O'Brien", "run(1)", "Entwurf-ä-1", "_nightly", "x" * 80]
INVALID = ["run[1]", "a b", "x" * 81, "..", "a/b", "", "a:b"]

ITEM = {"key": "designs/a.gds", "size": 10, "etag": "e", "last_modified": "2026-11-20T08:15:30.000Z"}


@pytest.fixture
def parsers(monkeypatch, s3_access_point, output_bucket) -> dict[str, Callable[[str], Any]]:
    """Each function's event check, given an otherwise valid event carrying ``execution_id``."""
    monkeypatch.setenv("ACCESS_POINT_ARN", s3_access_point.arn)
    monkeypatch.setenv("OUTPUT_BUCKET", output_bucket)
    monkeypatch.setenv("ATHENA_WORKGROUP", "wg-uc6")
    monkeypatch.setenv("GLUE_DATABASE", "db_x")
    monkeypatch.setenv("BEDROCK_MODEL_ID", "amazon.nova-lite-v1:0")
    monkeypatch.setenv("TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:uc6-reports")
    discovery = load_function("discovery", "handler")
    drc = load_function("drc_aggregation", "handler")
    report = load_function("report_generation", "handler")
    return {
        "discovery": lambda eid: discovery.handler.parse_event({"execution_id": eid}),
        "metadata_extraction": lambda eid: parse_batch(
            {"Items": [ITEM], "BatchInput": {"execution_id": eid}}, max_items=10
        ).execution_id,
        "drc_aggregation": lambda eid: drc.handler.parse_event(
            {"execution_id": eid, "expected_count": 1, "tolerated_failure_percentage": 10}
        ),
        "report_generation": lambda eid: report.handler.parse_event(
            {"execution_id": eid, "aggregate_bucket": output_bucket, "aggregate_key": f"reports/{eid}/aggregate.json"},
            output_bucket,
        ),
    }


FUNCTIONS = ["discovery", "metadata_extraction", "drc_aggregation", "report_generation"]


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("execution_id", VALID)
def test_step_functions_names_are_accepted(parsers, function, execution_id):
    parsed = parsers[function](execution_id)
    assert (parsed if isinstance(parsed, str) else parsed[0]) == execution_id


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("execution_id", INVALID)
def test_names_step_functions_refuses_are_rejected(parsers, function, execution_id):
    with pytest.raises(InvalidInputError, match="execution_id"):
        parsers[function](execution_id)
