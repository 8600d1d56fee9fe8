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


FUNCTIONS = ["discovery", "metadata_extraction", "drc_aggregation", "report_generation"]


@pytest.fixture(params=FUNCTIONS)
def parse(request, monkeypatch, s3_access_point, output_bucket) -> Callable[[str], Any]:
    """The function's event check, given an otherwise valid event carrying ``execution_id``.

    Only that function's handler is imported (freshly, per test): a test checks one function."""
    monkeypatch.setenv("ACCESS_POINT_ARN", s3_access_point.arn)
    monkeypatch.setenv("OUTPUT_BUCKET", output_bucket)
    monkeypatch.setenv("ATHENA_WORKGROUP", "wg-uc6")
    monkeypatch.setenv("GLUE_DATABASE", "db_x")
    monkeypatch.setenv("BEDROCK_MODEL_ID", "amazon.nova-lite-v1:0")
    monkeypatch.setenv("TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:uc6-reports")
    function: str = request.param
    if function == "metadata_extraction":
        return lambda eid: (
            parse_batch({"Items": [ITEM], "BatchInput": {"execution_id": eid}}, max_items=10).execution_id
        )
    handler = load_function(function, "handler").handler
    arguments: dict[str, Callable[[str], tuple[Any, ...]]] = {
        "discovery": lambda eid: ({"execution_id": eid},),
        "drc_aggregation": lambda eid: (
            {"execution_id": eid, "expected_count": 1, "tolerated_failure_percentage": 10},
        ),
        "report_generation": lambda eid: (
            {"execution_id": eid, "aggregate_bucket": output_bucket, "aggregate_key": f"reports/{eid}/aggregate.json"},
            output_bucket,
        ),
    }
    return lambda eid: handler.parse_event(*arguments[function](eid))


@pytest.mark.parametrize("execution_id", VALID)
def test_step_functions_names_are_accepted(parse, execution_id):
    parsed = parse(execution_id)
    assert (parsed if isinstance(parsed, str) else parsed[0]) == execution_id


@pytest.mark.parametrize("execution_id", INVALID)
def test_names_step_functions_refuses_are_rejected(parse, execution_id):
    with pytest.raises(InvalidInputError, match="execution_id"):
        parse(execution_id)
