"""metadata_extraction handler: per-item records, typed failures, transient errors, deadline, resume."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from shared.batch import parse_batch
from shared.errors import DeadlineExceededError, InvalidInputError, ServiceUnavailableError, ThrottlingError
from tests.support.aws_errors import client_error
from tests.support.events import load_event
from tests.support.lambda_context import FakeLambdaContext, ManualClock
from tests.support.uc06 import EVENTS, load_metadata_extraction

pytestmark = pytest.mark.unit

EXECUTION = "exec-0001"


@pytest.fixture
def fn(monkeypatch, s3_access_point, output_bucket):
    return load_metadata_extraction(monkeypatch, s3_access_point.arn, output_bucket)


def item(ap, key: str) -> dict:
    head = ap.s3.head_object(Bucket=ap.arn, Key=key)
    return {"key": key, "size": head["ContentLength"], "etag": head["ETag"].strip('"'),
            "last_modified": "2026-11-20T08:15:30.000Z"}


def event(items: list[dict], execution: str = EXECUTION) -> dict:
    return {"Items": items, "BatchInput": {"execution_id": execution}}


def record(s3, bucket: str, key: str, execution: str = EXECUTION) -> dict:
    body = s3.get_object(Bucket=bucket, Key=f"results/execution_id={execution}/{quote(key, safe='')}.json")
    text = body["Body"].read().decode()
    assert text.count("\n") == 1
    assert text.endswith("\n")
    return json.loads(text)


def test_canonical_event_shape_is_accepted(fn):
    canonical = load_event(EVENTS, "metadata_extraction")
    batch = parse_batch(canonical, max_items=10)
    assert batch.execution_id == canonical["BatchInput"]["execution_id"]
    assert [i.to_dict() for i in batch.items] == canonical["Items"]


def test_one_record_per_item_success_and_typed_failures(fn, s3_access_point, output_bucket, gdstk_files):
    files = gdstk_files()
    ap = s3_access_point
    keys = {
        "designs/a/top.gds": files["gds"],
        "designs/b/top.gds": files["gds"],  # same file name, other folder
        "designs/c/top level ä.oas": files["oas"],
        "designs/c/cut.oas": files["oas"][:-40],
        "designs/c/notes.gds": b"plain text\n",
    }
    for key, body in keys.items():
        ap.put(key, body)
    result = fn.handler.handler(event([item(ap, k) for k in keys]), FakeLambdaContext(remaining_ms=300_000))
    assert result == {"execution_id": EXECUTION, "processed": 5, "succeeded": 3, "failed": 2, "skipped": 0,
                      "bytes_read": sum(len(b) for b in keys.values())}
    ok = record(ap.s3, output_bucket, "designs/c/top level ä.oas")
    assert ok["status"] == "SUCCEEDED"
    assert ok["format"] == "OASIS"
    assert ok["cell_names"] == ["LEAF", "MID", "TOP", "UNUSED"]
    assert ok["top_cell_count"] == 2
    assert ok["size_bytes"] == len(files["oas"])
    assert ok["error_type"] is None
    assert record(ap.s3, output_bucket, "designs/a/top.gds")["library_name"] == "LIB"
    assert record(ap.s3, output_bucket, "designs/b/top.gds")["source_key"] == "designs/b/top.gds"
    cut = record(ap.s3, output_bucket, "designs/c/cut.oas")
    assert (cut["status"], cut["error_type"]) == ("FAILED", "TruncatedFileError")
    text = record(ap.s3, output_bucket, "designs/c/notes.gds")
    assert (text["status"], text["error_type"]) == ("FAILED", "InvalidFileError")
    listed = ap.s3.list_objects_v2(Bucket=output_bucket, Prefix=f"results/execution_id={EXECUTION}/")
    assert listed["KeyCount"] == 5


def test_missing_object_is_a_failed_record_not_an_exception(fn, s3_access_point, output_bucket):
    gone = {"key": "designs/gone.gds", "size": 100, "etag": "x", "last_modified": "2026-11-20T08:15:30Z"}
    result = fn.handler.handler(event([gone]), FakeLambdaContext(remaining_ms=300_000))
    assert (result["succeeded"], result["failed"]) == (0, 1)
    assert record(s3_access_point.s3, output_bucket, "designs/gone.gds")["error_type"] == "NotFoundError"


def test_reads_with_bounded_range_requests(fn, s3_access_point, gdstk_files, failing_client, fake_deadline):
    data = gdstk_files()["gds"] * 1  # a few kB: several 500-byte ranges
    s3_access_point.put("designs/big.gds", data)
    spy = failing_client(s3_access_point.s3)
    reader = fn.extraction.RangeReader(spy, s3_access_point.arn, "designs/big.gds", len(data), chunk_bytes=500,
                                       deadline=fake_deadline())
    summary = fn.extraction.extract(reader, label="designs/big.gds")
    assert summary.cell_names == ["LEAF", "MID", "TOP", "UNUSED"]
    ranges = [kw["Range"] for name, kw in spy.calls if name == "get_object"]
    assert len(ranges) == -(-len(data) // 500)
    assert ranges[0] == "bytes=0-499"
    assert all(int(r.split("-")[1]) - int(r.split("=")[1].split("-")[0]) < 500 for r in ranges)


@pytest.mark.parametrize(
    ("error", "raised"),
    [(client_error("SlowDown", 503), ThrottlingError), (client_error("InternalError", 500), ServiceUnavailableError)],
)
def test_throttling_and_5xx_raise_for_the_map_retry(  # noqa: PLR0917
    fn, s3_access_point, output_bucket, gdstk_files,
                                                    failing_client, error, raised, fake_deadline):
    s3_access_point.put("designs/a.gds", gdstk_files()["gds"])
    s3 = failing_client(s3_access_point.s3)
    s3.fail("get_object", error, when=lambda **kw: kw["Bucket"] == s3_access_point.arn)
    with pytest.raises(raised):
        fn.extraction.process_batch(
            s3, access_point_arn=s3_access_point.arn, output_bucket=output_bucket, execution_id=EXECUTION,
            items=parse_batch(event([item(s3_access_point, "designs/a.gds")]), max_items=10).items,
            deadline=fake_deadline(), chunk_bytes=65536, max_names=100,
        )
    # Nothing recorded for the file: the retried batch processes it.
    assert s3_access_point.s3.list_objects_v2(Bucket=output_bucket).get("KeyCount", 0) == 0


def test_retry_skips_files_already_recorded(  # noqa: PLR0917
    fn, s3_access_point, output_bucket, gdstk_files, failing_client,
                                            fake_deadline):
    ap = s3_access_point
    ap.put("designs/1.gds", gdstk_files()["gds"])
    ap.put("designs/2.oas", gdstk_files()["oas"])
    items = parse_batch(event([item(ap, "designs/1.gds"), item(ap, "designs/2.oas")]), max_items=10).items
    s3 = failing_client(ap.s3)
    s3.fail("get_object", client_error("SlowDown", 503), when=lambda **kw: kw["Key"] == "designs/2.oas")
    kwargs = {"access_point_arn": ap.arn, "output_bucket": output_bucket, "execution_id": EXECUTION,
              "items": items, "chunk_bytes": 65536, "max_names": 100}
    with pytest.raises(ThrottlingError):
        fn.extraction.process_batch(s3, deadline=fake_deadline(), **kwargs)
    second = fn.extraction.process_batch(s3, deadline=fake_deadline(), **kwargs)
    assert (second.processed, second.skipped, second.succeeded, second.failed) == (1, 1, 2, 0)
    reads = [kw["Key"] for name, kw in s3.calls if name == "get_object" and kw["Bucket"] == ap.arn]
    assert reads.count("designs/1.gds") == 1  # not parsed again


def test_deadline_raises_transient_error_before_starting_another_file(fn, s3_access_point, gdstk_files):
    ap = s3_access_point
    ap.put("designs/1.gds", gdstk_files()["gds"])
    clock = ManualClock()
    context = FakeLambdaContext(remaining_ms=10_000, clock=clock)  # below the 15 s margin
    with pytest.raises(DeadlineExceededError):
        fn.handler.handler(event([item(ap, "designs/1.gds")]), context)


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"Items": [], "BatchInput": {"execution_id": EXECUTION}},
        {"Items": [{"key": "a.gds", "size": 1, "etag": "", "last_modified": "2026-01-01T00:00:00Z"}]},
        {"Items": [{"key": "a.gds"}], "BatchInput": {"execution_id": EXECUTION}},
        {"Items": [{"key": "a.gds", "size": 1, "etag": "", "last_modified": "2026-01-01T00:00:00Z"}],
         "BatchInput": {"execution_id": "bad id/../x"}},
    ],
)
def test_bad_input_is_rejected(fn, bad):
    with pytest.raises(InvalidInputError):
        fn.handler.handler(bad, FakeLambdaContext())
