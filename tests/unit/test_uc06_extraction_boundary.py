"""UC6 metadata extraction hardening (issue 12): one failure boundary per file, reads of exactly the
listed version (IfMatch), time reserved before every request, vanished files told from forbidden
ones. Against moto's S3 access point, with a manual clock where time matters."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from shared.batch import parse_batch
from shared.errors import DeadlineExceededError, SourceChangedError
from shared.retry import Deadline
from tests.support.aws_errors import client_error
from tests.support.fakes import FailingClient, FakeDeadline
from tests.support.lambda_context import FakeLambdaContext, ManualClock
from tests.support.uc06 import load_metadata_extraction

pytestmark = pytest.mark.unit

EXECUTION = "exec-0042"


@pytest.fixture
def fn(monkeypatch, s3_access_point, output_bucket):
    return load_metadata_extraction(monkeypatch, s3_access_point.arn, output_bucket)


@pytest.fixture(scope="module")
def layout_bytes(tmp_path_factory) -> dict[str, bytes]:
    import gdstk

    tmp: Path = tmp_path_factory.mktemp("layouts")
    lib = gdstk.Library("LIB", unit=1e-6, precision=1e-9)
    leaf = lib.new_cell("LEAF")
    leaf.add(gdstk.rectangle((0, 0), (2, 1), layer=1))
    top = lib.new_cell("TOP")
    top.add(gdstk.Reference(leaf, (0, 0), columns=3, rows=2, spacing=(3, 3)))
    lib.write_gds(tmp / "a.gds")
    lib.write_oas(tmp / "a.oas")
    return {"gds": (tmp / "a.gds").read_bytes(), "oas": (tmp / "a.oas").read_bytes()}


def item(ap: Any, key: str) -> dict[str, Any]:
    head = ap.s3.head_object(Bucket=ap.arn, Key=key)
    return {"key": key, "size": head["ContentLength"], "etag": head["ETag"].strip('"'),
            "last_modified": "2026-11-20T08:15:30.000Z"}


def event(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Items": items, "BatchInput": {"execution_id": EXECUTION}}


def record(s3: Any, bucket: str, key: str) -> dict[str, Any]:
    body = s3.get_object(Bucket=bucket, Key=f"results/execution_id={EXECUTION}/{quote(key, safe='')}.json")
    return json.loads(body["Body"].read())


def run(fn: Any, s3: Any, ap: Any, bucket: str, keys: list[str], **kwargs: Any) -> Any:
    options = {"deadline": FakeDeadline(600), "chunk_bytes": 65536, "max_names": 100} | kwargs
    return fn.extraction.process_batch(
        s3, access_point_arn=ap.arn, output_bucket=bucket, execution_id=EXECUTION,
        items=parse_batch(event([item(ap, k) for k in keys]), max_items=100).items, **options,
    )


# --------------------------------------------------------------------------- one failure boundary per file


def test_a_parser_raising_index_error_fails_only_its_file(  # noqa: PLR0917 - fixtures
    fn, s3_access_point, output_bucket, layout_bytes, monkeypatch, caplog
):
    ap = s3_access_point
    for key in ("a/ok.gds", "a/bug.gds", "a/ok.oas"):
        ap.put(key, layout_bytes["gds"] if key.endswith(".gds") else layout_bytes["oas"])
    real_parse = fn.extraction.gdsii.parse

    def parse(dec: Any) -> Any:
        if dec.label == "a/bug.gds":
            raise IndexError("index out of range")  # the LAYER-without-data defect of issue 12
        return real_parse(dec)

    monkeypatch.setattr(fn.extraction.gdsii, "parse", parse)
    result = run(fn, ap.s3, ap, output_bucket, ["a/ok.gds", "a/bug.gds", "a/ok.oas"])
    assert (result.processed, result.succeeded, result.failed) == (3, 2, 1)
    bug = record(ap.s3, output_bucket, "a/bug.gds")
    assert (bug["status"], bug["error_type"]) == ("FAILED", "InternalError")
    assert bug["error_message"].startswith("IndexError")
    assert any(r.exc_info and r.exc_info[0] is IndexError for r in caplog.records)
    assert record(ap.s3, output_bucket, "a/ok.oas")["status"] == "SUCCEEDED"


def test_a_summary_whose_to_record_raises_fails_only_its_file(fn, s3_access_point, output_bucket, layout_bytes,
                                                              monkeypatch):
    ap = s3_access_point
    ap.put("b/cycle.gds", layout_bytes["gds"])
    ap.put("b/fine.oas", layout_bytes["oas"])
    real = fn.layout.LayoutSummary.to_record

    def to_record(self: Any, **kwargs: Any) -> Any:
        if self.file_format == "GDSII":
            raise fn.layout.ReferenceCycleError("cell TOP references itself")
        return real(self, **kwargs)

    monkeypatch.setattr(fn.layout.LayoutSummary, "to_record", to_record)
    result = run(fn, ap.s3, ap, output_bucket, ["b/cycle.gds", "b/fine.oas"])
    assert (result.succeeded, result.failed) == (1, 1)
    assert record(ap.s3, output_bucket, "b/cycle.gds")["error_type"] == "ReferenceCycleError"


def test_a_record_with_inf_fails_only_its_file(fn, s3_access_point, output_bucket, layout_bytes, monkeypatch):
    ap = s3_access_point
    ap.put("c/inf.oas", layout_bytes["oas"])
    ap.put("c/fine.gds", layout_bytes["gds"])
    real = fn.layout.LayoutSummary.to_record

    def to_record(self: Any, **kwargs: Any) -> Any:
        fields = real(self, **kwargs)
        if self.file_format == "OASIS":
            fields["user_unit"] = math.inf  # the OASIS START unit of 1e-310
        return fields

    monkeypatch.setattr(fn.layout.LayoutSummary, "to_record", to_record)
    result = run(fn, ap.s3, ap, output_bucket, ["c/inf.oas", "c/fine.gds"])
    assert (result.succeeded, result.failed) == (1, 1)
    bad = record(ap.s3, output_bucket, "c/inf.oas")
    assert (bad["status"], bad["error_type"]) == ("FAILED", "InvalidRecordError")
    assert "user_unit" in bad["error_message"]
    assert record(ap.s3, output_bucket, "c/fine.gds")["status"] == "SUCCEEDED"


def test_the_layer_without_data_file_is_one_typed_failure(fn, s3_access_point, output_bucket, layout_bytes):
    # The raw defect: a LAYER record with no data (0004 0d02) inside the first element.
    gds = bytearray(layout_bytes["gds"])
    at = gds.find(b"\x00\x06\x0d\x02")
    assert at > 0
    broken = bytes(gds[:at]) + b"\x00\x04\x0d\x02" + bytes(gds[at + 6:])
    s3_access_point.put("d/layer.gds", broken)
    s3_access_point.put("d/fine.gds", layout_bytes["gds"])
    result = run(fn, s3_access_point.s3, s3_access_point, output_bucket, ["d/layer.gds", "d/fine.gds"])
    assert (result.processed, result.succeeded, result.failed) == (2, 1, 1)
    failed = record(s3_access_point.s3, output_bucket, "d/layer.gds")
    assert failed["error_type"] not in (None, "InternalError")


# --------------------------------------------------------------------------- the listed version only


def test_every_ranged_get_sends_the_listed_etag(fn, s3_access_point, output_bucket, layout_bytes):
    ap = s3_access_point
    ap.put("e/big.gds", layout_bytes["gds"] * 1)
    spy = FailingClient(ap.s3)
    listed = item(ap, "e/big.gds")
    run(fn, spy, ap, output_bucket, ["e/big.gds"], chunk_bytes=200)
    gets = [kw for name, kw in spy.calls if name == "get_object" and kw["Bucket"] == ap.arn]
    assert len(gets) == -(-listed["size"] // 200)
    assert all(kw["IfMatch"] == listed["etag"] for kw in gets)


def test_a_file_replaced_after_listing_is_a_typed_failure_naming_the_etag_seen(
    fn, s3_access_point, output_bucket, layout_bytes
):
    ap = s3_access_point
    ap.put("f/moving.gds", layout_bytes["gds"])
    items = [item(ap, "f/moving.gds")]
    ap.put("f/moving.gds", layout_bytes["gds"] + b"\x00" * 8)  # replaced before the read
    new_etag = ap.s3.head_object(Bucket=ap.arn, Key="f/moving.gds")["ETag"].strip('"')
    result = fn.extraction.process_batch(
        ap.s3, access_point_arn=ap.arn, output_bucket=output_bucket, execution_id=EXECUTION,
        items=parse_batch(event(items), max_items=10).items, deadline=FakeDeadline(600), chunk_bytes=65536,
        max_names=10,
    )
    assert result.failed == 1
    failed = record(ap.s3, output_bucket, "f/moving.gds")
    assert (failed["status"], failed["error_type"]) == ("FAILED", "SourceChangedError")
    assert failed["etag"] == items[0]["etag"]  # the record is about the listed version
    assert failed["etag_seen"] == new_etag
    assert new_etag in failed["error_message"]


def test_a_file_replaced_between_two_chunks_never_mixes_versions(fn, s3_access_point, layout_bytes):
    ap = s3_access_point
    ap.put("g/two.gds", layout_bytes["gds"])
    listed = item(ap, "g/two.gds")

    class ReplaceAfterFirstGet(FailingClient):
        def __getattr__(self, name: str) -> Any:
            call = super().__getattr__(name)
            if name != "get_object":
                return call

            def get(**kwargs: Any) -> Any:
                reply = call(**kwargs)
                ap.put("g/two.gds", layout_bytes["gds"][::-1])
                return reply

            return get

    reader = fn.extraction.RangeReader(ReplaceAfterFirstGet(ap.s3), ap.arn, "g/two.gds", listed["size"],
                                       chunk_bytes=100, deadline=FakeDeadline(600), etag=listed["etag"])
    with pytest.raises(SourceChangedError) as raised:
        fn.extraction.extract(reader, label="g/two.gds", size=listed["size"])
    assert raised.value.details["listed_etag"] == listed["etag"]
    assert raised.value.details["etag_seen"] != listed["etag"]
    assert reader.position == 100  # the first chunk only


def test_a_reply_of_another_version_is_refused_even_if_ifmatch_is_ignored(fn, s3_access_point, layout_bytes):
    ap = s3_access_point
    ap.put("h/x.gds", layout_bytes["gds"])

    class IgnoresIfMatch(FailingClient):
        def __getattr__(self, name: str) -> Any:
            call = super().__getattr__(name)
            if name != "get_object":
                return call
            return lambda **kw: call(**{k: v for k, v in kw.items() if k != "IfMatch"})

    reader = fn.extraction.RangeReader(IgnoresIfMatch(ap.s3), ap.arn, "h/x.gds", 10, chunk_bytes=100,
                                       deadline=FakeDeadline(600), etag="0" * 32)
    with pytest.raises(SourceChangedError):
        reader()


def test_a_rerun_redoes_a_file_whose_etag_changed(fn, s3_access_point, output_bucket, layout_bytes):
    ap = s3_access_point
    ap.put("i/a.gds", layout_bytes["gds"])
    run(fn, ap.s3, ap, output_bucket, ["i/a.gds"])
    ap.put("i/a.gds", layout_bytes["oas"])  # a new version; the same execution id is reused
    again = run(fn, ap.s3, ap, output_bucket, ["i/a.gds"])
    assert (again.skipped, again.processed) == (0, 1)
    assert record(ap.s3, output_bucket, "i/a.gds")["format"] == "OASIS"
    third = run(fn, ap.s3, ap, output_bucket, ["i/a.gds"])
    assert (third.skipped, third.processed) == (1, 0)


# --------------------------------------------------------------------------- vanished vs forbidden


@pytest.mark.parametrize(("delete", "expected"), [(True, "NotFoundError"), (False, "AccessDeniedError")])
def test_a_403_is_told_apart_by_listing_the_key(  # noqa: PLR0917 - fixtures
    fn, s3_access_point, output_bucket, layout_bytes, delete, expected
):
    ap = s3_access_point
    ap.put("j/a.gds", layout_bytes["gds"])
    items = parse_batch(event([item(ap, "j/a.gds")]), max_items=10).items
    if delete:
        ap.s3.delete_object(Bucket=ap.arn, Key="j/a.gds")
    s3 = FailingClient(ap.s3)  # S3 without s3:ListBucket answers a missing key with 403
    s3.fail("get_object", client_error("AccessDenied", 403, "GetObject"), when=lambda **kw: kw["Bucket"] == ap.arn)
    fn.extraction.process_batch(s3, access_point_arn=ap.arn, output_bucket=output_bucket, execution_id=EXECUTION,
                                items=items, deadline=FakeDeadline(600), chunk_bytes=65536, max_names=10)
    assert record(ap.s3, output_bucket, "j/a.gds")["error_type"] == expected


# --------------------------------------------------------------------------- time reserved before each request


class SlowS3(FailingClient):
    """Every GetObject of the source takes ``seconds`` on ``clock``; ``gets`` records the Lambda
    time left when each started and ended."""

    def __init__(self, client: Any, clock: ManualClock, seconds: float, context: FakeLambdaContext) -> None:
        super().__init__(client)
        self.clock = clock
        self.seconds = seconds
        self.context = context
        self.gets: list[tuple[int, int]] = []

    def __getattr__(self, name: str) -> Any:
        call = super().__getattr__(name)
        if name != "get_object":
            return call

        def get(**kwargs: Any) -> Any:
            before = self.context.get_remaining_time_in_millis()
            self.clock.advance(self.seconds)
            self.gets.append((before, self.context.get_remaining_time_in_millis()))
            return call(**kwargs)

        return get


def test_no_read_starts_without_the_time_it_may_take(fn, s3_access_point, output_bucket, layout_bytes):
    ap = s3_access_point
    ap.put("k/slow.gds", layout_bytes["gds"])
    ap.put("k/next.gds", layout_bytes["gds"])
    clock = ManualClock()
    context = FakeLambdaContext(remaining_ms=300_000, clock=clock)  # the template's Timeout
    reserve = fn.handler.S3_REQUEST_SECONDS
    s3 = SlowS3(ap.s3, clock, reserve - 1, context)  # every GET nearly as slow as the client allows
    chunk = 16
    assert len(layout_bytes["gds"]) / chunk * (reserve - 1) > 300  # so the first file cannot finish
    items = parse_batch(event([item(ap, "k/slow.gds"), item(ap, "k/next.gds")]), max_items=10).items
    with pytest.raises(DeadlineExceededError):  # the second file: retried, and then it comes first
        fn.extraction.process_batch(
            s3, access_point_arn=ap.arn, output_bucket=output_bucket, execution_id=EXECUTION, items=items,
            deadline=Deadline.from_context(context, margin_ms=15_000), chunk_bytes=chunk, max_names=10,
            request_seconds=reserve,
        )
    # Every GET started with the reserve (two requests) plus the margin still left, so nothing ran
    # into the Lambda timeout.
    assert all(before > 15_000 + 2 * reserve * 1000 for before, _after in s3.gets)
    assert context.get_remaining_time_in_millis() > 15_000
    # The first file had the whole budget and could not finish: recorded after this one attempt,
    # by the decoder's typed error naming the bytes reached and the size.
    slow = record(ap.s3, output_bucket, "k/slow.gds")
    assert (slow["status"], slow["error_type"]) == ("FAILED", "FileBudgetExceededError")
    assert f"of {len(layout_bytes['gds'])} bytes" in slow["error_message"]
    assert 0 < slow["bytes_read"] < len(layout_bytes["gds"])


def test_the_handler_reserves_the_s3_clients_worst_case(fn):
    from shared import aws

    assert aws.request_seconds(
        max_attempts=fn.handler.S3_ATTEMPTS, connect_timeout=fn.handler.S3_CONNECT_TIMEOUT,
        read_timeout=fn.handler.S3_READ_TIMEOUT,
    ) == fn.handler.S3_REQUEST_SECONDS
    config = fn.handler.S3.meta.config
    assert (config.connect_timeout, config.read_timeout) == (fn.handler.S3_CONNECT_TIMEOUT,
                                                             fn.handler.S3_READ_TIMEOUT)
    assert config.retries["total_max_attempts"] == fn.handler.S3_ATTEMPTS


@pytest.mark.parametrize(("whole_budget", "raised"), [(False, "DeadlineExceededError"),
                                                      (True, "FileBudgetExceededError")])
def test_a_decode_without_reads_checks_the_budget_too(fn, layout_bytes, whole_budget, raised):
    # Transient for a file that started late (the retry gives it the whole budget); permanent for
    # a file that had it. Both without a read: the decoder consults the hook itself.
    reader = fn.extraction.RangeReader(None, "arn", "l/x.oas", 10, chunk_bytes=10, deadline=FakeDeadline(100),
                                       reserve_seconds=100, whole_budget=whole_budget)
    source = fn.layout.bytes_source(layout_bytes["oas"], 16)
    with pytest.raises(Exception) as info:  # noqa: PT011 - the type is the parameter
        fn.extraction.extract(source, label="l/x.oas", size=len(layout_bytes["oas"]), budget=reader.check_budget)
    assert type(info.value).__name__ == raised
