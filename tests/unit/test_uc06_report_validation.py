"""UC6 report_generation: an aggregate with wrong contents is an InvalidInputError naming the field
(issue 12 item 8), never a KeyError or TypeError."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from shared.errors import InvalidFileError, InvalidInputError
from tests.support.uc06 import load_function
from tests.unit.test_uc06_report_generation import aggregate

pytestmark = pytest.mark.unit

R = load_function("report_generation", "report")


def changed(path: str, value: Any) -> dict[str, Any]:
    data = aggregate()
    target: Any = data
    *parents, last = path.split(".")
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target[int(last)] = value
    elif value is KeyError:
        del target[last]
    else:
        target[last] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        ("counts", KeyError, "counts"),
        ("findings", KeyError, "findings"),
        ("execution_id", 7, "execution_id"),
        ("counts", [1, 2], "counts"),
        ("counts.total", "10", "counts.total"),
        ("counts.failed", -1, "counts.failed"),
        ("counts.succeeded", True, "counts.succeeded"),
        ("counts.missing_records", KeyError, "counts.missing_records"),
        ("rules", None, "rules"),
        ("rules.max_hierarchy_depth", 3.5, "rules.max_hierarchy_depth"),
        ("rules.files_per_rule", [], "rules.files_per_rule"),
        ("rules.files_per_rule.empty_cells", None, "rules.files_per_rule.empty_cells"),
        ("formats", {"format": "GDSII"}, "formats"),
        ("units.0", "1e-9", "units[0]"),
        ("failures_by_type.0.files", "1", "failures_by_type[0].files"),
        ("failures_by_type.0.error_type", 3, "failures_by_type[0].error_type"),
        ("findings.0.source_key", None, "findings[0].source_key"),
        ("failed_files.0.error_message", {"x": 1}, "failed_files[0].error_message"),
        ("failed_files", "none", "failed_files"),
        ("files_with_findings", "3", "files_with_findings"),
        ("mixed_units", "no", "mixed_units"),
    ],
)
def test_wrong_contents_name_the_field(path, value, field):
    with pytest.raises(InvalidInputError) as raised:
        R.report.validate_aggregate(changed(path, value))
    assert raised.value.details["field"] == field
    assert field in raised.value.message


def test_a_valid_aggregate_passes_unchanged():
    data = aggregate()
    assert R.report.validate_aggregate(data) is data
    assert R.report.validate_aggregate(copy.deepcopy(data)) == data


@pytest.mark.parametrize("document", [[], "text", 3, None])
def test_a_document_that_is_not_an_object_is_refused(document):
    with pytest.raises(InvalidInputError):
        R.report.validate_aggregate(document)


def test_read_aggregate_types_bad_contents_and_bad_json(aws, output_bucket):
    s3 = aws.client("s3")
    s3.put_object(Bucket=output_bucket, Key="reports/e/aggregate.json", Body=json.dumps(changed("counts.total", "x")))
    with pytest.raises(InvalidInputError, match=r"counts\.total"):
        R.report.read_aggregate(s3, output_bucket, "reports/e/aggregate.json", max_bytes=10**6)
    s3.put_object(Bucket=output_bucket, Key="reports/e/aggregate.json", Body=b"{not json")
    with pytest.raises(InvalidFileError, match="not JSON"):
        R.report.read_aggregate(s3, output_bucket, "reports/e/aggregate.json", max_bytes=10**6)
