"""discovery handler: a streamed JSONL manifest, only counts returned, typed errors."""

from __future__ import annotations

import json

import pytest

from shared.errors import DeadlineExceededError, InvalidInputError, ThrottlingError
from tests.support.aws_errors import client_error
from tests.support.events import load_event
from tests.support.lambda_context import FakeLambdaContext
from tests.support.uc06 import EVENTS, load_function

pytestmark = pytest.mark.unit


@pytest.fixture
def fn(monkeypatch, s3_access_point, output_bucket):
    monkeypatch.setenv("ACCESS_POINT_ARN", s3_access_point.arn)
    monkeypatch.setenv("OUTPUT_BUCKET", output_bucket)
    monkeypatch.setenv("SOURCE_PREFIX", "designs/")
    monkeypatch.setenv("FILE_SUFFIXES", ".gds,.gds2,.oas,.oasis")
    return load_function("discovery", "handler")


def manifest_lines(s3, bucket, key) -> list[dict]:
    return [json.loads(line) for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()]


def test_manifest_holds_matching_objects_and_the_reply_only_counts(fn, s3_access_point, output_bucket):
    ap = s3_access_point
    for key in ["designs/a.gds", "designs/x/B.OAS", "designs/c.oasis", "designs/d.gds2", "designs/readme.txt",
                "designs/dir/", "other/e.gds"]:
        ap.put(key, b"12345")
    reply = fn.handler.handler(load_event(EVENTS, "discovery"), FakeLambdaContext(remaining_ms=600_000))
    assert reply == {
        "execution_id": "uc6-sample-0001",
        "manifest_bucket": output_bucket,
        "manifest_key": "manifests/uc6-sample-0001/manifest.jsonl",
        "object_count": 4,
        "total_bytes": 20,
        "manifest_bytes": reply["manifest_bytes"],
    }
    lines = manifest_lines(ap.s3, output_bucket, reply["manifest_key"])
    assert sorted(line["key"] for line in lines) == ["designs/a.gds", "designs/c.oasis", "designs/d.gds2",
                                                     "designs/x/B.OAS"]
    assert set(lines[0]) == {"key", "size", "etag", "last_modified"}


def test_payload_size_does_not_grow_with_the_object_count(fn, s3_access_point, output_bucket):
    s3_access_point.put_many(f"designs/f{i:05d}.gds" for i in range(2500))  # three listing pages
    reply = fn.handler.handler({"execution_id": "big"}, FakeLambdaContext(remaining_ms=600_000))
    assert reply["object_count"] == 2500
    assert len(json.dumps(reply)) < 400
    assert len(manifest_lines(s3_access_point.s3, output_bucket, reply["manifest_key"])) == 2500


def test_throttled_listing_raises_the_transient_error(fn, s3_access_point, output_bucket, fake_deadline):
    """SlowDown on the access point listing itself (the paginator's ListObjectsV2 calls) surfaces as
    the transient ThrottlingError the Map's Retry lists, and leaves no manifest behind."""
    s3 = s3_access_point.s3
    s3_access_point.put_many(f"designs/f{i:04d}.gds" for i in range(1500))  # two listing pages
    calls: list[str] = []

    def throttle_second_page(params, **_):
        calls.append(params.get("ContinuationToken", ""))
        if len(calls) == 2:
            raise client_error("SlowDown", 503, "ListObjectsV2")

    s3.meta.events.register("before-parameter-build.s3.ListObjectsV2", throttle_second_page)
    try:
        with pytest.raises(ThrottlingError):
            fn.handler.discover(s3, access_point_arn=s3_access_point.arn, output_bucket=output_bucket,
                                execution_id="e1", prefix="designs/", suffixes=[".gds"], deadline=fake_deadline())
    finally:
        s3.meta.events.unregister("before-parameter-build.s3.ListObjectsV2", throttle_second_page)
    assert len(calls) == 2
    assert calls[1], "the fault must hit the second listing page"
    assert s3.list_objects_v2(Bucket=output_bucket).get("KeyCount", 0) == 0
    assert s3.list_multipart_uploads(Bucket=output_bucket).get("Uploads", []) == []


def test_deadline_aborts_without_leaving_a_manifest(fn, s3_access_point, output_bucket, fake_deadline):
    s3_access_point.put_many(f"designs/f{i:04d}.gds" for i in range(1000))
    with pytest.raises(DeadlineExceededError):
        fn.handler.discover(s3_access_point.s3, access_point_arn=s3_access_point.arn, output_bucket=output_bucket,
                            execution_id="e2", prefix="designs/", suffixes=[".gds"], deadline=fake_deadline(0))
    assert s3_access_point.s3.list_objects_v2(Bucket=output_bucket).get("KeyCount", 0) == 0


@pytest.mark.parametrize("bad", [{}, {"execution_id": ""}, {"execution_id": "a b"}, {"execution_id": 5}, []])
def test_bad_input(fn, bad):
    with pytest.raises(InvalidInputError):
        fn.handler.handler(bad, FakeLambdaContext())
