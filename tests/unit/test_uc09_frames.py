"""UC9 frame extraction: key-frame selection on real H.264 samples, JPEGs stored under
execution-scoped keys, Rekognition DetectLabels (emulated) with throttling retried, per-frame and
per-video failures, one record per video."""

from __future__ import annotations

import io
import random
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from local.emulators.rekognition import RekognitionEmulator, s3_reader
from local.runner.interceptor import Interceptor
from local.samples import autonomous_driving as samples
from shared.errors import InvalidFileError, InvalidInputError, ThrottlingError
from shared.retry import Deadline
from shared.s3ap import ObjectInfo
from tests.support.aws_errors import client_error
from tests.support.events import load_event
from tests.support.fakes import FailingClient
from tests.support.lambda_context import FakeLambdaContext
from tests.support.uc09 import EVENTS, listed_items, load_function, sample_files, stored_record

pytestmark = pytest.mark.unit

FX = load_function("frame_extraction", "keyframes", "labels", "extraction")


def selection(**overrides: Any) -> Any:
    values = {"max_frames": 8, "min_interval_s": 0.0, "scene_threshold": 0.0, "max_width": 1920, "jpeg_quality": 3}
    return FX.keyframes.Selection(**(values | overrides))


def frames_of(data: bytes, **overrides: Any) -> tuple[list[Any], Any]:
    facts = FX.keyframes.VideoFacts()
    taken = list(FX.keyframes.key_frames(io.BytesIO(data), selection(**overrides), label="v.mp4", facts=facts))
    return taken, facts


@pytest.fixture(scope="module")
def video() -> bytes:
    return samples.write_mp4(random.Random(11))  # 36 frames at 12 fps, a keyframe every 12


def test_only_key_frames_are_decoded_and_all_are_taken_without_limits(video):
    taken, facts = frames_of(video)
    assert [f.pts_seconds for f in taken] == [0.0, 1.0, 2.0]
    assert facts.keyframes_decoded == 3
    assert (facts.codec, facts.width, facts.height, facts.frames_declared) == ("h264", 160, 120, 36)
    assert all(f.jpeg.startswith(b"\xff\xd8") and f.jpeg.endswith(b"\xff\xd9") for f in taken)


def test_the_minimum_interval_and_the_cap_select_frames(video):
    spaced, _ = frames_of(video, min_interval_s=1.5)
    assert [f.pts_seconds for f in spaced] == [0.0, 2.0]
    capped, facts = frames_of(video, max_frames=2)
    assert [f.index for f in capped] == [0, 1]
    assert facts.keyframes_decoded == 2  # decoding stopped at the cap


def test_scene_change_skips_key_frames_of_a_static_scene():
    still = samples.write_mp4(random.Random(1), gop=6, moving=False)  # 6 identical key frames
    every, _ = frames_of(still)
    assert len(every) == 6
    changed, facts = frames_of(still, scene_threshold=5)
    assert len(changed) == 1
    assert facts.keyframes_decoded == 6
    moving, _ = frames_of(samples.write_mp4(random.Random(1), gop=6), scene_threshold=1)
    assert len(moving) > 1


def test_wide_frames_are_scaled_down(video):
    taken, _ = frames_of(video, max_width=80)
    assert {(f.width, f.height) for f in taken} == {(80, 60)}


@pytest.mark.parametrize(
    "data",
    [b"", b"this is a text file with a video suffix\n", samples.write_mp4(random.Random(3), seconds=1)[:1500]],
    ids=["empty", "text", "truncated"],
)
def test_broken_videos_are_invalid_files(data):
    with pytest.raises(InvalidFileError):
        frames_of(data)


@pytest.mark.parametrize(
    ("box", "at", "bit"),
    [(b"avc1", 0, 0x01), (b"hdlr", -4, 0x01), (b"trak", -2, 0x02)],
    ids=["sample-entry-fourcc", "hdlr-size", "trak-size"],
)
def test_a_video_stream_without_a_decoder_is_an_invalid_file(video, box, at, bit):
    """Single flipped bits (found by exhaustive flips): the codec fourcc or a box size of the
    track; FFmpeg then knows no decoder, PyAV gives the stream no codec context, and reading
    ``codec.name`` was an AttributeError instead of a typed error."""
    damaged = bytearray(video)
    damaged[video.index(box, video.index(b"moov")) + at] ^= bit
    with pytest.raises(InvalidFileError, match="codec is unknown"):
        frames_of(bytes(damaged))


def test_frame_keys_are_execution_scoped_full_key_and_bounded():
    a = FX.extraction.frame_key("e1", "cam/a/x.mp4", 0)
    b = FX.extraction.frame_key("e1", "cam/b/x.mp4", 0)
    assert a == "frames/execution_id=e1/cam%2Fa%2Fx.mp4/frame-0000.jpg"
    assert a != b
    assert FX.extraction.frame_key("e2", "cam/a/x.mp4", 0) != a
    long = FX.extraction.frame_key("e" * 80, "ä/" * 600 + "x.mp4", 99)
    assert len(long.encode()) <= 1024
    assert long != FX.extraction.frame_key("e" * 80, "ä/" * 600 + "y.mp4", 99)


# --- with emulated S3 and Rekognition -------------------------------------------------------------
@pytest.fixture
def rekognition(aws: boto3.Session) -> Iterator[RekognitionEmulator]:
    emulator = RekognitionEmulator(s3_reader())
    interceptor = Interceptor()
    interceptor.add(emulator.hook, service="rekognition")
    with interceptor:
        yield emulator


@pytest.fixture
def fn(monkeypatch, s3_access_point, output_bucket, rekognition):
    monkeypatch.setenv("ACCESS_POINT_ARN", s3_access_point.arn)
    monkeypatch.setenv("OUTPUT_BUCKET", output_bucket)
    monkeypatch.setenv("RANGE_BLOCK_BYTES", str(64 * 1024))
    return load_function("frame_extraction", "handler", "extraction", "labels", "keyframes")


def _settings(fn: Any, ap_arn: str, bucket: str, *, attempts: int = 4, **selection_overrides: Any) -> Any:
    return fn.extraction.Settings(
        access_point_arn=ap_arn,
        output_bucket=bucket,
        selection=FX.keyframes.Selection(
            **(
                {"max_frames": 8, "min_interval_s": 1.0, "scene_threshold": 0.0, "max_width": 1920, "jpeg_quality": 3}
                | selection_overrides
            )
        ),
        labels=fn.labels.LabelSettings(
            max_labels=10, min_confidence=60, max_attempts=attempts, base_delay=0.5, max_delay=8.0
        ),
        block_bytes=64 * 1024,
        max_blocks=2,
    )


def test_handler_one_record_per_video_frames_stored_and_labelled(fn, s3_access_point, output_bucket, rekognition):
    sample, objects = sample_files(objects=40, seed=3)
    keys = [k for k in sample.valid if k.endswith(".mp4")][:3] + [k for k in sample.corrupt if k.endswith(".mp4")]
    assert len(keys) == 4
    for key in keys:
        s3_access_point.put(key, objects[key])
    event = {"Items": listed_items(s3_access_point, keys), "BatchInput": {"execution_id": "uc9-fx-1"}}
    reply = fn.handler.handler(event, FakeLambdaContext(remaining_ms=600_000))
    assert reply == {
        "execution_id": "uc9-fx-1",
        "processed": 4,
        "succeeded": 3,
        "failed": 1,
        "skipped": 0,
        "bytes_read": reply["bytes_read"],
        "frames_extracted": 9,
        "frames_labelled": 9,
        "frames_failed": 0,
    }
    s3 = s3_access_point.s3
    for key in keys[:3]:
        record = stored_record(s3, output_bucket, "uc9-fx-1", key)
        assert record["status"] == "SUCCEEDED"
        assert (record["keyframes_decoded"], record["frames_extracted"]) == (3, sample.expected[key]["keyframes"])
        for frame in record["frames"]:
            stored = s3.get_object(Bucket=output_bucket, Key=frame["key"])
            assert stored["ContentType"] == "image/jpeg"
            assert stored["Body"].read().startswith(b"\xff\xd8")
            assert frame["key"].startswith("frames/execution_id=uc9-fx-1/")
            names = {label["name"] for label in frame["labels"]}
            assert {"Car", "Road", "Sky"} <= names
    broken = stored_record(s3, output_bucket, "uc9-fx-1", keys[3])
    assert broken["status"] == "FAILED"
    assert broken["error_type"] == "InvalidFileError"
    assert rekognition.calls
    assert len(rekognition.calls) == 9


def test_throttling_is_retried_within_the_deadline(fn, s3_access_point, output_bucket, rekognition, aws):
    key = "sensors/cam/a.mp4"
    s3_access_point.put(key, samples.write_mp4(random.Random(5)))
    (item,) = listed_items(s3_access_point, [key])
    rekognition.throttle_next(3)
    sleeps: list[float] = []
    clients = fn.extraction.Clients(s3_access_point.s3, aws.client("rekognition", config=_no_retries()))
    fields = fn.extraction.video_work(
        clients,
        _settings(fn, s3_access_point.arn, output_bucket),
        "e1",
        ObjectInfo.from_dict(item),
        {},
        deadline=Deadline.after(60),
        sleep=sleeps.append,
    )
    assert rekognition.throttled == 3
    assert len(sleeps) == 3
    assert fields["frames_labelled"] == 3
    assert fields["frames_failed"] == 0


def test_throttling_past_the_attempts_is_raised_for_the_maps_retry(
    fn, s3_access_point, output_bucket, rekognition, aws
):
    key = "sensors/cam/b.mp4"
    s3_access_point.put(key, samples.write_mp4(random.Random(6)))
    (item,) = listed_items(s3_access_point, [key])
    rekognition.throttle_next(10)
    clients = fn.extraction.Clients(s3_access_point.s3, aws.client("rekognition", config=_no_retries()))
    with pytest.raises(ThrottlingError):
        fn.extraction.video_work(
            clients,
            _settings(fn, s3_access_point.arn, output_bucket, attempts=3),
            "e1",
            ObjectInfo.from_dict(item),
            {},
            deadline=Deadline.after(60),
            sleep=lambda _s: None,
        )
    assert rekognition.throttled == 3


def test_a_refused_frame_is_recorded_and_the_video_still_succeeds(fn, s3_access_point, output_bucket, aws):
    key = "sensors/cam/c.mp4"
    s3_access_point.put(key, samples.write_mp4(random.Random(7)))
    (item,) = listed_items(s3_access_point, [key])
    rekognition = FailingClient(aws.client("rekognition", config=_no_retries()))
    rekognition.fail(
        "detect_labels",
        client_error("InvalidImageFormatException", 400),
        when=lambda **kw: kw["Image"]["S3Object"]["Name"].endswith("frame-0001.jpg"),
    )
    fields = fn.extraction.video_work(
        fn.extraction.Clients(s3_access_point.s3, rekognition),
        _settings(fn, s3_access_point.arn, output_bucket),
        "e1",
        ObjectInfo.from_dict(item),
        {},
        deadline=Deadline.after(60),
        sleep=lambda _s: None,
    )
    assert (fields["frames_labelled"], fields["frames_failed"]) == (2, 1)
    failed = fields["frames"][1]
    assert failed["status"] == "FAILED"
    assert failed["error_type"] == "ModelInvocationError"
    assert "InvalidImageFormatException" in failed["error_message"]


def test_a_video_no_frame_of_which_can_be_labelled_fails_with_the_frames_recorded(fn, s3_access_point, output_bucket):
    key = "sensors/cam/tiny.mp4"  # 64x48: below DetectLabels' 80-pixel minimum
    s3_access_point.put(key, samples.write_mp4(random.Random(8), width=64, height=48))
    event = {"Items": listed_items(s3_access_point, [key]), "BatchInput": {"execution_id": "uc9-fx-2"}}
    reply = fn.handler.handler(event, FakeLambdaContext(remaining_ms=600_000))
    assert (reply["succeeded"], reply["failed"]) == (0, 1)
    record = stored_record(s3_access_point.s3, output_bucket, "uc9-fx-2", key)
    assert record["status"] == "FAILED"
    assert record["error_type"] == "ModelInvocationError"
    assert record["frames_extracted"] == 3
    assert {f["error_type"] for f in record["frames"]} == {"ModelInvocationError"}


def test_a_video_replaced_after_listing_is_a_source_changed_failure(fn, s3_access_point, output_bucket):
    key = "sensors/cam/d.mp4"
    s3_access_point.put(key, samples.write_mp4(random.Random(9)))
    items = listed_items(s3_access_point, [key])
    s3_access_point.put(key, samples.write_mp4(random.Random(10)))
    fn.handler.handler({"Items": items, "BatchInput": {"execution_id": "uc9-fx-3"}}, FakeLambdaContext())
    record = stored_record(s3_access_point.s3, output_bucket, "uc9-fx-3", key)
    assert record["error_type"] == "SourceChangedError"


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"Items": [], "BatchInput": {"execution_id": "e"}},
        {"Items": [{"key": "a"}], "BatchInput": {"execution_id": "e"}},
    ],
)
def test_bad_events_are_invalid_input(fn, bad):
    with pytest.raises(InvalidInputError):
        fn.handler.handler(bad, FakeLambdaContext())


def test_the_canonical_event_has_the_batch_shape():
    event = load_event(EVENTS, "frame_extraction")
    assert set(event) == {"Items", "BatchInput"}
    assert all(ObjectInfo.from_dict(item) for item in event["Items"])


def _no_retries() -> Any:
    from botocore.config import Config

    return Config(retries={"mode": "standard", "total_max_attempts": 1})


def test_a_throttled_read_inside_ffmpeg_is_raised_as_the_typed_error(fn, s3_access_point, output_bucket, aws):
    key = "sensors/cam/long.mp4"
    s3_access_point.put(key, samples.write_mp4(random.Random(12), seconds=8, width=320, height=240))
    (item,) = listed_items(s3_access_point, [key])
    assert item["size"] > 2 * 4096
    s3 = FailingClient(s3_access_point.s3)
    s3.fail("get_object", client_error("SlowDown", 503), when=lambda **kw: kw["Range"].startswith("bytes=8192-"))
    settings = fn.extraction.Settings(
        **{**_settings(fn, s3_access_point.arn, output_bucket).__dict__, "block_bytes": 4096, "max_blocks": 1}
    )
    clients = fn.extraction.Clients(s3, aws.client("rekognition", config=_no_retries()))
    with pytest.raises(ThrottlingError):
        fn.extraction.video_work(
            clients, settings, "e1", ObjectInfo.from_dict(item), {}, deadline=Deadline.after(60), sleep=lambda _s: None
        )
