"""UC9 discovery (and shared.discovery): one listing into the video and point-cloud manifests,
counts only in the payload, nothing left behind on failure, configuration checked at init."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared import discovery
from shared.errors import ConfigurationError, DeadlineExceededError, InvalidInputError, ThrottlingError
from shared.retry import Deadline
from tests.support.aws_errors import client_error
from tests.support.events import load_event
from tests.support.fakes import FailingClient
from tests.support.lambda_context import FakeLambdaContext
from tests.support.uc09 import EVENTS, load_function

pytestmark = pytest.mark.unit


@pytest.fixture
def env(monkeypatch, s3_access_point, output_bucket):
    monkeypatch.setenv("ACCESS_POINT_ARN", s3_access_point.arn)
    monkeypatch.setenv("OUTPUT_BUCKET", output_bucket)
    monkeypatch.setenv("SOURCE_PREFIX", "sensors/")
    return monkeypatch


@pytest.fixture
def fn(env):
    return load_function("discovery", "handler")


def lines(s3: Any, bucket: str, key: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in s3.get_object(Bucket=bucket, Key=key)["Body"].read().splitlines()]


def test_two_manifests_from_one_listing_and_only_counts_returned(fn, s3_access_point, output_bucket):
    ap = s3_access_point
    for key in [
        "sensors/a/front.mp4",
        "sensors/b/front.MP4",
        "sensors/a/scan.pcd",
        "sensors/b/scan.las",
        "sensors/c/scan.LAZ",
        "sensors/readme.txt",
        "sensors/dir/",
        "elsewhere/x.mp4",
    ]:
        ap.put(key, b"123")
    reply = fn.handler.handler(load_event(EVENTS, "discovery"), FakeLambdaContext(remaining_ms=600_000))
    assert reply == {
        "execution_id": "uc9-sample-0001",
        "object_count": 5,
        "total_bytes": 15,
        "video_manifest_bucket": output_bucket,
        "video_manifest_key": "manifests/uc9-sample-0001/video.jsonl",
        "video_count": 2,
        "video_total_bytes": 6,
        "video_manifest_bytes": reply["video_manifest_bytes"],
        "pointcloud_manifest_bucket": output_bucket,
        "pointcloud_manifest_key": "manifests/uc9-sample-0001/pointcloud.jsonl",
        "pointcloud_count": 3,
        "pointcloud_total_bytes": 9,
        "pointcloud_manifest_bytes": reply["pointcloud_manifest_bytes"],
    }
    videos = lines(ap.s3, output_bucket, reply["video_manifest_key"])
    clouds = lines(ap.s3, output_bucket, reply["pointcloud_manifest_key"])
    assert sorted(v["key"] for v in videos) == ["sensors/a/front.mp4", "sensors/b/front.MP4"]
    assert sorted(c["key"] for c in clouds) == ["sensors/a/scan.pcd", "sensors/b/scan.las", "sensors/c/scan.LAZ"]
    assert set(videos[0]) == {"key", "size", "etag", "last_modified"}


def test_an_empty_listing_still_writes_both_manifests(fn, s3_access_point, output_bucket):
    reply = fn.handler.handler({"execution_id": "empty"}, FakeLambdaContext())
    assert (reply["video_count"], reply["pointcloud_count"]) == (0, 0)
    for name in ("video", "pointcloud"):
        assert lines(s3_access_point.s3, output_bucket, reply[f"{name}_manifest_key"]) == []


def test_the_payload_does_not_grow_with_the_object_count(fn, s3_access_point, output_bucket):
    s3_access_point.put_many(f"sensors/f{i:05d}.{('mp4', 'pcd')[i % 2]}" for i in range(2100))
    reply = fn.handler.handler({"execution_id": "big"}, FakeLambdaContext(remaining_ms=600_000))
    assert (reply["video_count"], reply["pointcloud_count"]) == (1050, 1050)
    assert len(json.dumps(reply)) < 800


def test_a_failed_upload_leaves_no_manifest_at_all(fn, s3_access_point, output_bucket):
    s3_access_point.put("sensors/a.mp4")
    s3_access_point.put("sensors/a.pcd")
    s3 = FailingClient(s3_access_point.s3)
    s3.fail("put_object", client_error("SlowDown", 503), when=lambda **kw: kw["Key"].endswith("pointcloud.jsonl"))
    with pytest.raises(ThrottlingError):
        fn.handler.discover(
            s3,
            access_point_arn=s3_access_point.arn,
            output_bucket=output_bucket,
            execution_id="e1",
            prefix="sensors/",
            deadline=Deadline.after(60),
        )
    # The writers close last-opened first: the point-cloud manifest's put fails, so the video
    # manifest is aborted before it is written.
    assert s3_access_point.s3.list_objects_v2(Bucket=output_bucket).get("KeyCount", 0) == 0


def test_the_deadline_aborts_every_manifest(fn, s3_access_point, output_bucket):
    s3_access_point.put_many(f"sensors/f{i:04d}.mp4" for i in range(1000))
    with pytest.raises(DeadlineExceededError):
        fn.handler.discover(
            s3_access_point.s3,
            access_point_arn=s3_access_point.arn,
            output_bucket=output_bucket,
            execution_id="e2",
            prefix="sensors/",
            deadline=Deadline.after(0),
        )
    assert s3_access_point.s3.list_objects_v2(Bucket=output_bucket).get("KeyCount", 0) == 0


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VIDEO_SUFFIXES", "mp4"),
        ("POINTCLOUD_SUFFIXES", ".pcd,.mp4"),
        ("POINTCLOUD_SUFFIXES", ".x.mp4"),
        ("VIDEO_SUFFIXES", ".mp 4"),
        ("OUTPUT_BUCKET", "Not_A_Bucket"),
    ],
)
def test_bad_configuration_fails_at_init_naming_the_variable(env, name, value):
    env.setenv(name, value)
    with pytest.raises(ConfigurationError) as error:
        load_function("discovery", "handler")
    assert error.value.details["variable"] in {name, "POINTCLOUD_SUFFIXES"}


@pytest.mark.parametrize("bad", [{}, {"execution_id": ""}, {"execution_id": "a b"}, {"execution_id": 5}, []])
def test_bad_input(fn, bad):
    with pytest.raises(InvalidInputError):
        fn.handler.handler(bad, FakeLambdaContext())


def test_the_first_matching_route_wins_and_names_are_checked(s3_access_point, output_bucket):
    s3_access_point.put("d/x.tar.gz")
    s3_access_point.put("d/y.gz")
    routes = [discovery.ManifestRoute("tarballs", (".tar.gz",)), discovery.ManifestRoute("gzip", (".gz",))]
    results = discovery.discover_manifests(
        s3_access_point.s3,
        access_point_arn=s3_access_point.arn,
        output_bucket=output_bucket,
        execution_id="r",
        prefix="d/",
        routes=routes,
        deadline=Deadline.after(60),
    )
    assert (results["tarballs"].count, results["gzip"].count) == (1, 1)
    with pytest.raises(InvalidInputError):
        discovery.ManifestRoute("Bad Name", (".x",))
    with pytest.raises(InvalidInputError):
        discovery.discover_manifests(
            s3_access_point.s3,
            access_point_arn=s3_access_point.arn,
            output_bucket=output_bucket,
            execution_id="r",
            prefix="d/",
            routes=[routes[0], routes[0]],
            deadline=Deadline.after(60),
        )
