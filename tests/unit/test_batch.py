"""shared.batch: ItemBatcher events, execution-scoped result keys, validated idempotent records, the
per-item failure boundary (one record per item whatever the work raises), counts and tolerance."""

from __future__ import annotations

import json
import logging
import math
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.batch import (
    FAILED,
    MAX_RECORD_BYTES,
    SUCCEEDED,
    Counts,
    encode_record,
    enforce_tolerance,
    existing_status,
    item_record,
    parse_batch,
    parse_tolerance,
    process_items,
    recorded_keys,
    result_key,
    write_record,
)
from shared.errors import (
    AccessDeniedError,
    DeadlineExceededError,
    InvalidFileError,
    InvalidInputError,
    InvalidRecordError,
    ThrottlingError,
    TooManyFailuresError,
)
from shared.retry import Deadline
from shared.s3ap import ObjectInfo

pytestmark = pytest.mark.unit

EXECUTION = "exec-0001"
STAMP = "2026-11-20T08:15:30.000Z"


def info(key: str, size: int = 10, etag: str = "e1") -> ObjectInfo:
    return ObjectInfo(key=key, size=size, etag=etag, last_modified=STAMP)


def event(items: list[dict[str, Any]], execution: str = EXECUTION, **batch_input: Any) -> dict[str, Any]:
    return {"Items": items, "BatchInput": {"execution_id": execution, **batch_input}}


# --------------------------------------------------------------------------- parse_batch


def test_parse_batch_validates_items_and_keeps_the_batch_input():
    batch = parse_batch(event([info("a/b.gds").to_dict()], path="x"), max_items=5)
    assert batch.execution_id == EXECUTION
    assert batch.items == [info("a/b.gds")]
    assert batch.batch_input["path"] == "x"


@pytest.mark.parametrize(
    ("bad", "field"),
    [
        ([], None),
        ({}, "BatchInput"),
        ({"Items": [{"key": "a"}]}, "BatchInput"),
        ({"Items": [], "BatchInput": {"execution_id": EXECUTION}}, "Items"),
        ({"Items": "a", "BatchInput": {"execution_id": EXECUTION}}, "Items"),
        ({"Items": [{"key": "a"}] * 3, "BatchInput": {"execution_id": EXECUTION}}, "Items"),
        ({"Items": [{"key": "a"}], "BatchInput": {"execution_id": "bad id/../x"}}, "BatchInput.execution_id"),
    ],
)
def test_parse_batch_rejects_bad_events(bad, field):
    with pytest.raises(InvalidInputError) as raised:
        parse_batch(bad, max_items=2)
    assert raised.value.details.get("field") == field


def test_parse_batch_rejects_a_bad_item():
    with pytest.raises(InvalidInputError):
        parse_batch(event([{"key": "a.gds", "size": -1, "etag": "", "last_modified": STAMP}]), max_items=2)


# --------------------------------------------------------------------------- result keys


def test_result_keys_use_the_full_source_key_and_stay_within_s3_limits():
    key_a = result_key(EXECUTION, "a/b/x.gds")
    key_b = result_key(EXECUTION, "a/c/x.gds")
    assert key_a != key_b
    assert key_a == f"results/execution_id={EXECUTION}/a%2Fb%2Fx.gds.json"
    long_1 = result_key(EXECUTION, "ä" * 500 + "1.gds")
    long_2 = result_key(EXECUTION, "ä" * 500 + "2.gds")
    assert long_1 != long_2
    assert len(long_1.encode()) <= 1024
    assert result_key(EXECUTION, "x", prefix="acl") == f"acl/execution_id={EXECUTION}/x.json"


@pytest.mark.parametrize(
    "execution_id", ["e", "x" * 80, "日" * 80, "\U0001f600" * 80], ids=["short", "ascii-80", "cjk-80", "emoji-80"]
)
def test_result_keys_fit_s3_whatever_the_execution_name(execution_id):
    # An execution name is up to 80 characters, non-ASCII allowed: up to 320 bytes of the key.
    for source in ("ä" * 500 + "1.gds", "a" * 1024, "designs/x.gds"):
        key = result_key(execution_id, source)
        assert len(key.encode()) <= 1024
        assert key.startswith(f"results/execution_id={execution_id}/")
    assert result_key(execution_id, "d/" + "ä" * 400 + "1.gds") != result_key(execution_id, "d/" + "ä" * 400 + "2.gds")


# --------------------------------------------------------------------------- encode_record


def test_encode_record_is_one_json_line():
    body = encode_record({"a": 1, "b": "x\ny\u2028", "c": [1.5, None, {"d": True}]})
    assert body.endswith(b"\n")
    assert body.count(b"\n") == 1
    assert json.loads(body) == {"a": 1, "b": "x\ny\u2028", "c": [1.5, None, {"d": True}]}


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"user_unit": math.inf}, "user_unit"),
        ({"x": {"y": [1.0, -math.inf]}}, "x.y[1]"),
        ({"n": math.nan}, "n"),
        ({"big": 2**63}, "big"),
        ({"name": "cell\udcff"}, "name"),  # a lone surrogate cannot be UTF-8
        ({"x": {1: "a"}}, "x"),
        ({"x": b"bytes"}, "x"),
        ({"x": {1, 2}}, "x"),
    ],
)
def test_encode_record_refuses_what_json_or_athena_cannot_hold(record, field):
    with pytest.raises(InvalidRecordError) as raised:
        encode_record(record)
    assert raised.value.details["field"] == field


def test_encode_record_bounds_depth_and_size():
    deep: Any = 1
    for _ in range(40):
        deep = [deep]
    with pytest.raises(InvalidRecordError, match="nested"):
        encode_record({"deep": deep})
    with pytest.raises(InvalidRecordError, match="bytes"):
        encode_record({"x": "a" * MAX_RECORD_BYTES})


# --------------------------------------------------------------------------- existing_status / write_record


def put(s3: Any, bucket: str, key: str, body: bytes) -> None:
    s3.put_object(Bucket=bucket, Key=key, Body=body)


def test_existing_status_needs_the_same_status_file_and_etag(aws, output_bucket, caplog):
    s3 = aws.client("s3")
    key = result_key(EXECUTION, "a.gds")
    assert existing_status(s3, output_bucket, key, etag="e1") is None  # nothing yet
    write_record(s3, output_bucket, key, {"source_key": "a.gds", "etag": "e1", "status": SUCCEEDED})
    assert existing_status(s3, output_bucket, key, etag="e1") == SUCCEEDED
    assert existing_status(s3, output_bucket, key) == SUCCEEDED
    with caplog.at_level(logging.INFO, logger="shared.batch"):
        assert existing_status(s3, output_bucket, key, etag="e2") is None  # the file changed since
    assert "another version" in caplog.text


@pytest.mark.parametrize("body", [b"{not json", b"\xff\xfe", b"[1, 2]", b'{"status": "MAYBE"}'])
def test_an_unreadable_earlier_record_is_logged_then_redone(aws, output_bucket, caplog, body):
    s3 = aws.client("s3")
    put(s3, output_bucket, "results/x.json", body)
    with caplog.at_level(logging.WARNING, logger="shared.batch"):
        assert existing_status(s3, output_bucket, "results/x.json") is None
    assert "results/x.json" in str([r.__dict__ for r in caplog.records])


def test_existing_status_raises_typed_errors_other_than_not_found(failing_s3, output_bucket):
    s3 = failing_s3({"get_object": ("AccessDenied", 403)})
    with pytest.raises(AccessDeniedError):
        existing_status(s3, output_bucket, "results/x.json")


@pytest.fixture
def failing_s3(aws):
    from tests.support.aws_errors import client_error

    class Failing:
        def __init__(self, fail: dict[str, tuple[str, int]]) -> None:
            self.inner = aws.client("s3")
            self.fail = dict(fail)
            self.calls: list[tuple[str, dict[str, Any]]] = []

        def __getattr__(self, name: str) -> Any:
            target = getattr(self.inner, name)

            def call(**kwargs: Any) -> Any:
                self.calls.append((name, kwargs))
                if name in self.fail:
                    code, status = self.fail[name]
                    raise client_error(code, status, name)
                return target(**kwargs)

            return call

    return Failing


def test_write_record_validates_before_writing(aws, output_bucket):
    s3 = aws.client("s3")
    with pytest.raises(InvalidRecordError):
        write_record(s3, output_bucket, "results/x.json", {"v": math.inf})
    assert s3.list_objects_v2(Bucket=output_bucket).get("KeyCount", 0) == 0


# --------------------------------------------------------------------------- item_record: the boundary


def fixed_now() -> str:
    return STAMP


def ok(_item: ObjectInfo, facts: dict[str, Any]) -> dict[str, Any]:
    facts["bytes_read"] = 10
    return {"format": "GDSII", "cells": 3}


def index_error(_item: ObjectInfo, facts: dict[str, Any]) -> dict[str, Any]:
    facts["bytes_read"] = 4
    records: list[dict[str, Any]] = []
    return records[1]  # a parser indexing past its data


class Summary:
    def to_record(self) -> dict[str, Any]:
        raise InvalidFileError("cell A references itself (a reference cycle)")


def record_builder_raises(_item: ObjectInfo, _facts: dict[str, Any]) -> dict[str, Any]:
    return Summary().to_record()


def infinite(_item: ObjectInfo, _facts: dict[str, Any]) -> dict[str, Any]:
    return {"user_unit": math.inf, "cells": 1}


def test_success_record_carries_item_facts_and_fields():
    record, body = item_record(info("a.gds"), ok, defaults={"format": None}, now=fixed_now)
    assert record == {"source_key": "a.gds", "size_bytes": 10, "etag": "e1", "last_modified": STAMP,
                      "format": "GDSII", "cells": 3, "bytes_read": 10, "status": SUCCEEDED,
                      "error_type": None, "error_message": None, "processed_at": STAMP}
    assert json.loads(body) == record


def test_an_unexpected_exception_is_an_internal_error_with_its_traceback_logged(caplog):
    with caplog.at_level(logging.ERROR, logger="shared.batch"):
        record, _body = item_record(info("a.gds"), index_error, defaults={"format": None}, now=fixed_now)
    assert (record["status"], record["error_type"]) == (FAILED, "InternalError")
    assert record["error_message"].startswith("IndexError: ")
    assert record["bytes_read"] == 4  # the facts gathered before the failure stay
    assert record["format"] is None
    [logged] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert logged.exc_info is not None
    assert logged.exc_info[0] is IndexError


def test_a_record_builder_that_raises_is_that_items_failure():
    record, _body = item_record(info("a.gds"), record_builder_raises, now=fixed_now)
    assert (record["status"], record["error_type"]) == (FAILED, "InvalidFileError")
    assert "reference cycle" in record["error_message"]


def test_a_record_with_inf_is_recorded_failed_not_written_as_is():
    record, body = item_record(info("a.gds"), infinite, now=fixed_now)
    assert (record["status"], record["error_type"]) == (FAILED, "InvalidRecordError")
    assert "user_unit" in record["error_message"]
    assert "user_unit" not in record
    assert json.loads(body)["status"] == FAILED


def test_unwritable_facts_are_dropped_from_the_failure_record():
    def bad_facts(_item: ObjectInfo, facts: dict[str, Any]) -> dict[str, Any]:
        facts["ratio"] = math.nan
        raise InvalidFileError("truncated")

    record, _body = item_record(info("a.gds"), bad_facts, now=fixed_now)
    assert (record["error_type"], "ratio" in record) == ("InvalidFileError", False)


def test_error_messages_are_cut():
    def long_error(_item: ObjectInfo, _facts: dict[str, Any]) -> dict[str, Any]:
        raise InvalidFileError("x" * 5000)

    record, _body = item_record(info("a.gds"), long_error, now=fixed_now)
    assert len(record["error_message"]) == 1000


def test_transient_errors_cross_the_boundary():
    def throttled(_item: ObjectInfo, _facts: dict[str, Any]) -> dict[str, Any]:
        raise ThrottlingError("SlowDown")

    with pytest.raises(ThrottlingError):
        item_record(info("a.gds"), throttled)


def out_of_time(_item: ObjectInfo, facts: dict[str, Any]) -> dict[str, Any]:
    facts["bytes_read"] = 123
    raise DeadlineExceededError("reading a.gds: time budget exhausted")


def test_running_out_of_time_is_retried_unless_the_item_had_the_whole_budget():
    with pytest.raises(DeadlineExceededError):
        item_record(info("a.gds"), out_of_time, whole_budget=False)
    record, _body = item_record(info("a.gds"), out_of_time, whole_budget=True, now=fixed_now)
    assert (record["status"], record["error_type"]) == (FAILED, "BudgetExceededError")
    assert "bytes_read=123" in record["error_message"]


# --------------------------------------------------------------------------- process_items


def stored(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    text = s3.get_object(Bucket=bucket, Key=result_key(EXECUTION, key))["Body"].read().decode()
    assert text.count("\n") == 1
    return json.loads(text)


def dispatch(item: ObjectInfo, facts: dict[str, Any]) -> dict[str, Any]:
    work = {"bug.gds": index_error, "cycle.gds": record_builder_raises, "inf.oas": infinite}.get(item.key, ok)
    return work(item, facts)


def test_every_item_gets_exactly_one_record_whatever_its_work_raises(aws, output_bucket):
    s3 = aws.client("s3")
    items = [info(k) for k in ("a.gds", "bug.gds", "cycle.gds", "inf.oas", "z/a.gds")]
    result = process_items(items, dispatch, s3=s3, output_bucket=output_bucket, execution_id=EXECUTION,
                           deadline=Deadline.after(60), totals=("bytes_read",))
    assert result.to_dict(EXECUTION) == {"execution_id": EXECUTION, "processed": 5, "succeeded": 2, "failed": 3,
                                         "skipped": 0, "bytes_read": 24}
    assert {k: stored(s3, output_bucket, k)["error_type"] for k in ("bug.gds", "cycle.gds", "inf.oas")} == {
        "bug.gds": "InternalError", "cycle.gds": "InvalidFileError", "inf.oas": "InvalidRecordError"}
    assert stored(s3, output_bucket, "z/a.gds")["status"] == SUCCEEDED
    listed = s3.list_objects_v2(Bucket=output_bucket, Prefix=f"results/execution_id={EXECUTION}/")
    assert listed["KeyCount"] == 5


def test_a_rerun_skips_recorded_items_and_redoes_changed_ones(aws, output_bucket):
    s3 = aws.client("s3")
    calls: list[str] = []

    def counting(item: ObjectInfo, facts: dict[str, Any]) -> dict[str, Any]:
        calls.append(item.key)
        return ok(item, facts)

    kwargs = {"s3": s3, "output_bucket": output_bucket, "execution_id": EXECUTION}
    process_items([info("a"), info("b")], counting, deadline=Deadline.after(60), **kwargs)
    again = process_items([info("a"), info("b", etag="e2")], counting, deadline=Deadline.after(60), **kwargs)
    assert (again.processed, again.skipped, again.succeeded) == (1, 1, 2)
    assert calls == ["a", "b", "b"]
    assert stored(s3, output_bucket, "b")["etag"] == "e2"


def test_a_transient_error_leaves_the_item_unrecorded_for_the_retry(aws, output_bucket):
    s3 = aws.client("s3")

    def second_throttled(item: ObjectInfo, facts: dict[str, Any]) -> dict[str, Any]:
        if item.key == "b":
            raise ThrottlingError("SlowDown")
        return ok(item, facts)

    with pytest.raises(ThrottlingError):
        process_items([info("a"), info("b"), info("c")], second_throttled, s3=s3, output_bucket=output_bucket,
                      execution_id=EXECUTION, deadline=Deadline.after(60))
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=output_bucket)["Contents"]]
    assert keys == [result_key(EXECUTION, "a")]


def test_no_item_is_started_past_the_deadline(aws, output_bucket):
    s3 = aws.client("s3")
    with pytest.raises(DeadlineExceededError):
        process_items([info("a")], ok, s3=s3, output_bucket=output_bucket, execution_id=EXECUTION,
                      deadline=Deadline.after(0))
    assert s3.list_objects_v2(Bucket=output_bucket).get("KeyCount", 0) == 0


def test_only_the_first_item_of_an_invocation_is_recorded_as_too_large(aws, output_bucket):
    s3 = aws.client("s3")
    kwargs = {"s3": s3, "output_bucket": output_bucket, "execution_id": EXECUTION}

    def slow_b(item: ObjectInfo, facts: dict[str, Any]) -> dict[str, Any]:
        return out_of_time(item, facts) if item.key == "b" else ok(item, facts)

    with pytest.raises(DeadlineExceededError):  # b started after a: the retry gives it a fresh budget
        process_items([info("a"), info("b")], slow_b, deadline=Deadline.after(60), **kwargs)
    retried = process_items([info("a"), info("b")], slow_b, deadline=Deadline.after(60), **kwargs)
    assert (retried.skipped, retried.processed, retried.failed) == (1, 1, 1)
    assert stored(s3, output_bucket, "b")["error_type"] == "BudgetExceededError"


def test_on_record_sees_every_written_record(aws, output_bucket):
    seen: list[str] = []
    process_items([info("a"), info("bug.gds")], dispatch, s3=aws.client("s3"), output_bucket=output_bucket,
                  execution_id=EXECUTION, deadline=Deadline.after(60), on_record=lambda r: seen.append(r["status"]))
    assert seen == [SUCCEEDED, FAILED]


# --------------------------------------------------------------------------- looking up earlier records
def operations(s3: Any) -> list[str]:
    """The S3 operations ``s3`` makes from now on, in order."""
    made: list[str] = []
    s3.meta.events.register("before-call.s3.*", lambda model, **_: made.append(model.name))
    return made


def test_a_first_attempt_lists_once_and_reads_no_record(aws, output_bucket):
    s3 = aws.client("s3")
    made = operations(s3)
    items = [info(k) for k in ("a.gds", "b/c.gds", "b-c.gds", "z.oas")]
    process_items(items, ok, s3=s3, output_bucket=output_bucket, execution_id=EXECUTION, deadline=Deadline.after(60))
    assert made == ["ListObjectsV2"] + ["PutObject"] * 4


def test_a_rerun_reads_exactly_the_records_that_exist(aws, output_bucket):
    s3 = aws.client("s3")
    kwargs = {"s3": s3, "output_bucket": output_bucket, "execution_id": EXECUTION, "deadline": Deadline.after(60)}
    process_items([info("b/c.gds"), info("z.oas")], ok, **kwargs)
    made = operations(s3)
    again = process_items([info(k) for k in ("a.gds", "b/c.gds", "b-c.gds", "z.oas")], ok, **kwargs)
    assert (again.skipped, again.processed) == (2, 2)
    assert made == ["ListObjectsV2", "PutObject", "GetObject", "PutObject", "GetObject"]


def test_a_range_too_deep_to_list_is_looked_up_key_by_key(aws, output_bucket, monkeypatch):
    s3 = aws.client("s3")
    kwargs = {"s3": s3, "output_bucket": output_bucket, "execution_id": EXECUTION, "deadline": Deadline.after(60)}
    process_items([info("b")], ok, **kwargs)
    monkeypatch.setattr("shared.batch.recorded_keys", lambda *args, **kw: None)
    made = operations(s3)
    again = process_items([info("a"), info("b")], ok, **kwargs)
    assert (again.skipped, again.processed) == (1, 1)
    assert made == ["GetObject", "PutObject", "GetObject"]


class _Pages:
    """ListObjectsV2 pages of sorted keys, ``size`` per page, as the paginator yields them."""

    def __init__(self, keys: list[str], size: int) -> None:
        self.keys, self.size = sorted(keys), size
        self.asked: list[dict[str, Any]] = []

    def get_paginator(self, name: str) -> _Pages:
        assert name == "list_objects_v2"
        return self

    def paginate(self, **kw: Any) -> Any:
        self.asked.append(kw)
        keys = [k for k in self.keys if k.startswith(kw["Prefix"]) and k > kw["StartAfter"]]
        for start in range(0, len(keys), self.size):
            yield {"Contents": [{"Key": k} for k in keys[start:start + self.size]],
                   "IsTruncated": start + self.size < len(keys)}


def test_recorded_keys_stops_at_the_greatest_key_and_gives_up_past_the_page_limit():
    wanted = ["r/b1", "r/b3"]
    ours_and_others = ["r/a", "r/b1", "r/b2", "r/b3", "r/c", "r/d"]
    listed: Any = _Pages(ours_and_others, size=2)  # the page after r/b3 is never asked for
    assert recorded_keys(listed, "bucket", wanted, max_pages=2) == {"r/b1", "r/b3"}
    deep: Any = _Pages(["r/b1", *[f"r/b2-{i}" for i in range(5)], "r/b3"], size=2)
    assert recorded_keys(deep, "bucket", wanted, max_pages=2) is None
    assert deep.asked == [{"Bucket": "bucket", "Prefix": "r/b", "StartAfter": "r/b"}]
    empty: Any = _Pages([], size=2)
    assert recorded_keys(empty, "bucket", []) == set()
    assert empty.asked == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ours=st.lists(st.text(st.sampled_from("ab/-_.~ %é\u2028😀"), min_size=1, max_size=6), min_size=1, max_size=8,
                  unique=True),
    others=st.lists(st.text(st.sampled_from("ab/-_.~ %é\u2028😀"), min_size=1, max_size=6), max_size=8),
    data=st.data(),
)
def test_recorded_keys_finds_exactly_the_batchs_records_among_others(aws, output_bucket, ours, others, data):
    # quote() does not keep the source keys' order ("b-a" < "b/a", but "b%2Fa" < "b-a"), so other
    # batches' records fall inside a batch's range: they are skipped, and none of ours is missed.
    s3 = aws.client("s3")
    execution = f"exec-{uuid.uuid4().hex}"  # the bucket outlives one example
    recorded = data.draw(st.sets(st.sampled_from(ours)))
    for key in {*recorded, *(k for k in others if k not in ours)}:
        s3.put_object(Bucket=output_bucket, Key=result_key(execution, key), Body=b"{}")
    keys = [result_key(execution, key) for key in ours]
    assert recorded_keys(s3, output_bucket, keys) == {result_key(execution, key) for key in recorded}


def test_a_listing_that_is_refused_fails_the_batch_with_the_typed_error(aws, output_bucket):
    from botocore.awsrequest import AWSResponse

    s3 = aws.client("s3")
    denied = {"Error": {"Code": "AccessDenied", "Message": "no ListBucket"},
              "ResponseMetadata": {"HTTPStatusCode": 403}}
    s3.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: (AWSResponse("u", 403, {}, None), denied))
    with pytest.raises(AccessDeniedError):
        process_items([info("a")], ok, s3=s3, output_bucket=output_bucket, execution_id=EXECUTION,
                      deadline=Deadline.after(60))
    assert aws.client("s3").list_objects_v2(Bucket=output_bucket).get("KeyCount", 0) == 0


# --------------------------------------------------------------------------- counts and tolerance


def test_missing_records_count_as_failures():
    counts = Counts(expected=10, succeeded=8, failed_records=1)
    assert counts.to_dict() == {"expected": 10, "total": 10, "succeeded": 8, "failed": 2, "failed_records": 1,
                                "missing_records": 1}
    with pytest.raises(TooManyFailuresError) as raised:
        enforce_tolerance(counts, 10)
    assert raised.value.details["missing_records"] == 1


def test_failures_within_tolerance_pass_and_all_failed_always_fails():
    enforce_tolerance(Counts(expected=10, succeeded=9, failed_records=1), 10)
    enforce_tolerance(Counts(expected=0, succeeded=0, failed_records=0), 0)
    with pytest.raises(TooManyFailuresError, match="all 3 files failed"):
        enforce_tolerance(Counts(expected=3, succeeded=0, failed_records=3), 100)
    with pytest.raises(TooManyFailuresError, match="all 2 shares failed"):
        enforce_tolerance(Counts(expected=2, succeeded=0, failed_records=0), 100, noun="shares")


@pytest.mark.parametrize(("event", "expected"), [
    ({"expected_count": 0, "tolerated_failure_percentage": 0}, (0, 0.0)),
    ({"expected_count": 12, "tolerated_failure_percentage": 12.5}, (12, 12.5)),
    ({"expected_count": 3, "tolerated_failure_percentage": 100}, (3, 100.0)),
])
def test_parse_tolerance(event, expected):
    assert parse_tolerance(event) == expected


@pytest.mark.parametrize(("event", "field"), [
    ({"tolerated_failure_percentage": 0}, "expected_count"),
    ({"expected_count": -1, "tolerated_failure_percentage": 0}, "expected_count"),
    ({"expected_count": True, "tolerated_failure_percentage": 0}, "expected_count"),
    ({"expected_count": 1.0, "tolerated_failure_percentage": 0}, "expected_count"),
    ({"expected_count": 1}, "tolerated_failure_percentage"),
    ({"expected_count": 1, "tolerated_failure_percentage": 100.5}, "tolerated_failure_percentage"),
    ({"expected_count": 1, "tolerated_failure_percentage": False}, "tolerated_failure_percentage"),
    ({"expected_count": 1, "tolerated_failure_percentage": "5"}, "tolerated_failure_percentage"),
])
def test_parse_tolerance_names_the_bad_field(event, field):
    with pytest.raises(InvalidInputError) as raised:
        parse_tolerance(event)
    assert raised.value.details["field"] == field
