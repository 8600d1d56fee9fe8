"""UC9 sample generator: deterministic for a seed, the runner's --objects contract, real media
(H.264 with the stated keyframe interval, PCD in three encodings, LAS, LAZ), 5 % broken files."""

from __future__ import annotations

import io
import random
from typing import Any

import av
import laspy
import pytest

from local.samples import autonomous_driving as samples
from tests.support.fakes import RecordingS3 as MemoryS3

pytestmark = pytest.mark.unit


def generate(objects: int, seed: int = 0) -> tuple[samples.SampleSet, dict[str, bytes]]:
    s3 = MemoryS3()
    sample = samples.generate(s3, "arn:aws:s3:us-east-1:123456789012:accesspoint/ap", objects=objects, seed=seed)
    return sample, s3.objects


def test_deterministic_for_a_seed_and_different_across_seeds():
    first, objects = generate(24, seed=5)
    second, again = generate(24, seed=5)
    assert first == second
    assert objects == again
    _, other = generate(24, seed=6)
    assert other != objects


@pytest.mark.parametrize("objects", [0, 1, 19, 20, 40, 41])
def test_object_count_and_broken_share(objects):
    sample, written = generate(objects)
    assert len(sample.valid) + len(sample.corrupt) == objects
    assert len(sample.corrupt) == objects // 20  # 5 %: inside the default 10 % tolerance
    assert set(sample.keys) == set(written)
    assert len(sample.ignored) == 2
    assert set(sample.expected) == set(sample.valid)


def test_every_kind_is_there_and_keys_need_the_full_path():
    sample, _ = generate(40)
    assert {sample.expected[k]["format"] for k in sample.valid} == {"MP4", "PCD", "LAS", "LAZ"}
    assert {sample.expected[k].get("encoding") for k in sample.valid if k.endswith(".pcd")} == {
        "ascii",
        "binary",
        "binary_compressed",
    }
    names = [k.rsplit("/", 1)[1] for k in sample.valid]
    assert len(names) > len(set(names))  # the same file name in two folders
    assert any("ä" in k for k in sample.valid)
    assert any(" " in k for k in sample.valid)
    assert all(k.startswith(samples.PREFIX) for k in sample.keys)


def test_videos_are_h264_with_the_stated_keyframe_interval():
    sample, objects = generate(12)
    for key in (k for k in sample.valid if k.endswith(".mp4")):
        with av.open(io.BytesIO(objects[key]), mode="r") as container:
            stream = container.streams.video[0]
            assert stream.codec_context.name == "h264"
            size, frames = (stream.width, stream.height), stream.frames
            keyframes = [packet.pts for packet in container.demux(stream) if packet.is_keyframe]
        assert size == (samples.WIDTH, samples.HEIGHT)
        assert frames == samples.FPS * samples.VIDEO_SECONDS
        assert len(keyframes) == sample.expected[key]["keyframes"] == 3


def test_las_and_laz_read_back_with_laspy():
    sample, objects = generate(12)
    for key in (k for k in sample.valid if k.endswith((".las", ".laz"))):
        las = laspy.read(io.BytesIO(objects[key]))
        assert len(las.points) == sample.expected[key]["point_count"]
        assert las.header.are_points_compressed == key.endswith(".laz")


def test_lzf_matches_the_format_pcl_reads():
    # liblzf's encoding: a literal run is (length-1) then the bytes; a back-reference is 3 bits of
    # length-2 (7 = an extra length byte follows), 13 bits of offset-1. "a"*12: literal "a", then
    # 11 bytes copied from 1 back: length-2 = 9 = 7 + 2.
    assert samples.lzf_compress(b"abc") == b"\x02abc"
    assert samples.lzf_compress(b"a" * 12) == b"\x00a" + bytes([0xE0, 0x02, 0x00])


def test_a_kept_video_is_byte_for_byte_a_fresh_encoding():
    # write_mp4 keeps each encoded variant, which is only right because libx264 (one thread)
    # encodes the same pictures to the same bytes every time.
    samples._encoded_mp4.cache_clear()
    encoded = samples.write_mp4(random.Random(4))
    samples._encoded_mp4.cache_clear()
    encoded_again = samples.write_mp4(random.Random(4))
    kept = samples.write_mp4(random.Random(4))
    assert samples._encoded_mp4.cache_info().hits == 1
    assert encoded == encoded_again == kept


@pytest.mark.parametrize(
    "changed",
    [{"seconds": 1}, {"fps": 6}, {"gop": 6}, {"width": 64}, {"height": 48}, {"moving": False}],
    ids=lambda changed: next(iter(changed)),
)
def test_every_argument_of_a_video_changes_its_bytes(changed):
    # so none of them can be missing from what the encoded variants are kept by
    base: dict[str, Any] = {"seconds": 2, "fps": 12, "gop": 12, "width": 96, "height": 72, "moving": True}
    assert samples.write_mp4(random.Random(2), **base) != samples.write_mp4(random.Random(2), **{**base, **changed})
