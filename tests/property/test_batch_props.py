"""shared.batch properties: result keys injective and within S3's limit, encode_record total
(a line or InvalidRecordError, nothing else), the boundary giving every item one record, and the
tolerance decision against a model."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.batch import FAILED, SUCCEEDED, Counts, encode_record, enforce_tolerance, item_record, result_key
from shared.errors import InvalidFileError, InvalidRecordError, TooManyFailuresError, TransientError
from shared.s3ap import ObjectInfo

pytestmark = pytest.mark.property

# Step Functions execution names: no white space or the characters it refuses (see shared.events).
execution_ids = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cc", "Cs", "Zs", "Zl", "Zp"],
                  exclude_characters='<>{}[]?*"#%\\^|~`$&,;:/\u0085\u00a0'),
    min_size=1, max_size=80,
).filter(lambda s: s not in {".", ".."} and not any(c.isspace() for c in s))
source_keys = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=1024).filter(
    lambda k: len(k.encode()) <= 1024
)


@settings(max_examples=200)
@given(execution_ids, source_keys, source_keys)
def test_result_keys_are_distinct_for_distinct_sources_and_fit_s3(execution_id, key_a, key_b):
    a, b = result_key(execution_id, key_a), result_key(execution_id, key_b)
    assert len(a.encode()) <= 1024
    assert a.startswith(f"results/execution_id={execution_id}/")
    assert a.endswith(".json")
    assert (a == b) == (key_a == key_b)


json_leaves = st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(max_size=4)
values = st.recursive(
    json_leaves,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5) | st.integers(), inner, max_size=4),
    max_leaves=30,
)


@given(st.dictionaries(st.text(max_size=8), values, max_size=6))
def test_encode_record_writes_a_line_or_raises_invalid_record(record):
    try:
        body = encode_record(record)
    except InvalidRecordError:
        return
    assert body.endswith(b"\n")
    assert body.count(b"\n") == 1
    decoded = json.loads(body)
    assert decoded.keys() == record.keys()


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True


@given(st.dictionaries(st.text(max_size=8), st.floats() | st.lists(st.floats(), max_size=3), max_size=4))
def test_non_finite_numbers_are_refused_and_finite_ones_kept(record):
    if _finite(record):
        assert json.loads(encode_record(record)) == record
    else:
        with pytest.raises(InvalidRecordError):
            encode_record(record)


EXCEPTIONS = [IndexError("x"), KeyError("k"), ValueError("v"), TypeError("t"), RecursionError("r"),
              ZeroDivisionError("z"), InvalidFileError("bad"), UnicodeDecodeError("utf-8", b"\xff", 0, 1, "bad")]


@given(
    outcome=st.one_of(st.sampled_from(EXCEPTIONS), st.dictionaries(st.text(max_size=6), values, max_size=4)),
    facts=st.dictionaries(st.text(max_size=6), values, max_size=3),
    size=st.integers(0, 2**40),
)
def test_every_item_gets_exactly_one_writable_record(outcome, facts, size):
    item = ObjectInfo(key="k/é.gds", size=size, etag="e", last_modified="2026-01-01T00:00:00.000Z")

    def work(_item: ObjectInfo, seen: dict[str, Any]) -> dict[str, Any]:
        seen.update(facts)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    record, body = item_record(item, work)
    assert record["status"] in (SUCCEEDED, FAILED)
    assert json.loads(body)["status"] == record["status"]
    assert record["source_key"] == "k/é.gds"
    if record["status"] == FAILED:
        assert record["error_type"] in {"InternalError", "InvalidFileError", "InvalidRecordError"}
        assert isinstance(record["error_message"], str)
    assert not isinstance(outcome, TransientError)


@given(expected=st.integers(0, 1000), succeeded=st.integers(0, 1000), failed=st.integers(0, 1000),
       tolerance=st.floats(0, 100))
def test_tolerance_matches_its_definition(expected, succeeded, failed, tolerance):
    counts = Counts(expected=expected, succeeded=succeeded, failed_records=failed)
    assert counts.total >= expected
    assert counts.succeeded + counts.failed == counts.total
    assert counts.missing_records >= 0
    should_fail = counts.total > 0 and (succeeded == 0 or counts.failed / counts.total * 100 > tolerance + 1e-9)
    borderline = counts.total > 0 and succeeded > 0 and abs(counts.failed * 100 - tolerance * counts.total) < 1e-6
    raised: TooManyFailuresError | None = None
    try:
        enforce_tolerance(counts, tolerance)
    except TooManyFailuresError as e:
        raised = e
    if raised is not None:
        assert should_fail or borderline
        assert raised.details["total"] == counts.total
    else:
        assert not should_fail or borderline
