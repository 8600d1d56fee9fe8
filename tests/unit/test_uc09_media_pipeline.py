"""The media half end to end on the sample set, without the state machine: discovery's two
manifests feed ItemBatcher-shaped batches to frame extraction and point-cloud QC; every sample
gets exactly one record, the broken ones FAILED with a typed error, the share inside tolerance."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local.emulators.rekognition import RekognitionEmulator, s3_reader
from local.runner.interceptor import Interceptor
from local.samples import autonomous_driving as samples
from shared.batch import Counts, enforce_tolerance, result_key
from shared.s3ap import read_manifest
from tests.support.events import load_event
from tests.support.lambda_context import FakeLambdaContext
from tests.support.uc09 import EVENTS, load_function

pytestmark = pytest.mark.unit

EXECUTION = "uc9-media-e2e"


@pytest.fixture
def world(monkeypatch, aws: boto3.Session, s3_access_point, output_bucket) -> Iterator[Any]:
    monkeypatch.setenv("ACCESS_POINT_ARN", s3_access_point.arn)
    monkeypatch.setenv("OUTPUT_BUCKET", output_bucket)
    monkeypatch.setenv("SOURCE_PREFIX", samples.PREFIX)
    emulator = RekognitionEmulator(s3_reader())
    interceptor = Interceptor()
    interceptor.add(emulator.hook, service="rekognition")
    with interceptor:
        yield emulator


def batches(s3: Any, bucket: str, key: str, size: int) -> Iterator[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for record in read_manifest(s3, bucket, key):
        items.append(record)
        if len(items) == size:
            yield {"Items": items, "BatchInput": {"execution_id": EXECUTION}}
            items = []
    if items:
        yield {"Items": items, "BatchInput": {"execution_id": EXECUTION}}


def test_every_sample_gets_one_record_and_only_the_broken_ones_fail(world, s3_access_point, output_bucket):
    s3 = s3_access_point.s3
    sample = samples.generate(s3, s3_access_point.arn, objects=40, seed=2)
    discovery = load_function("discovery", "handler")
    frames = load_function("frame_extraction", "handler")
    clouds = load_function("pointcloud_qc", "handler")
    found = discovery.handler.handler({"execution_id": EXECUTION}, FakeLambdaContext(remaining_ms=600_000))
    assert found["object_count"] == 40
    assert found["video_count"] == sum(k.endswith(".mp4") for k in sample.valid + sample.corrupt)
    totals: dict[str, int] = {"succeeded": 0, "failed": 0}
    for function, kind, size in ((frames, "video", 4), (clouds, "pointcloud", 10)):
        for event in batches(s3, output_bucket, found[f"{kind}_manifest_key"], size):
            reply = function.handler.handler(event, FakeLambdaContext(remaining_ms=600_000))
            totals["succeeded"] += reply["succeeded"]
            totals["failed"] += reply["failed"]
    assert totals == {"succeeded": len(sample.valid), "failed": len(sample.corrupt)}
    for key in sample.valid + sample.corrupt:
        record = json.loads(s3.get_object(Bucket=output_bucket, Key=result_key(EXECUTION, key))["Body"].read())
        assert record["source_key"] == key
        if key in sample.corrupt:
            assert record["status"] == "FAILED"
            assert record["error_type"] == "InvalidFileError"
        else:
            assert record["status"] == "SUCCEEDED", record
            assert record["format"] == sample.expected[key]["format"]
    for key in sample.ignored:
        with pytest.raises(s3.exceptions.NoSuchKey):
            s3.get_object(Bucket=output_bucket, Key=result_key(EXECUTION, key))
    enforce_tolerance(Counts(40, totals["succeeded"], totals["failed"]), 10)  # 5 % broken: inside 10 %
    assert world.calls  # frames were labelled by the emulated DetectLabels


@pytest.mark.parametrize(("function", "kind"), [("frame_extraction", "MP4"), ("pointcloud_qc", None)])
def test_the_canonical_events_name_real_sample_objects(world, s3_access_point, output_bucket, function, kind):
    # sam local invoke runs these events against the samples seeded with seed 0: sizes and ETags
    # must be the generated files', or every GET would fail its IfMatch.
    samples.generate(s3_access_point.s3, s3_access_point.arn, objects=40, seed=0)
    event = load_event(EVENTS, function)
    module = load_function(function, "handler")
    reply = module.handler.handler(event, FakeLambdaContext(remaining_ms=600_000))
    assert reply["succeeded"] == len(event["Items"])
    assert reply["failed"] == 0
    if kind is not None:
        assert reply["frames_labelled"] > 0
