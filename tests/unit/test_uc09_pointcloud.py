"""UC9 point-cloud QC: PCD (three encodings) and LAS/LAZ parsers against the samples, the handler
with moto (one record per file, typed failures, changed sources), bounded memory when streaming."""

from __future__ import annotations

import io
import json
import math
import random
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from local.samples import autonomous_driving as samples
from shared.errors import DeadlineExceededError, InvalidFileError, InvalidInputError, ThrottlingError
from shared.retry import Deadline
from shared.s3ap import ObjectInfo
from tests.support.aws_errors import client_error
from tests.support.events import load_event
from tests.support.fakes import FailingClient
from tests.support.lambda_context import FakeLambdaContext
from tests.support.uc09 import EVENTS, FileS3, listed_items, load_function, sample_files, stored_record

pytestmark = pytest.mark.unit

QC = load_function("pointcloud_qc", "qc", "pcd", "las", "stats")
FIGURES = (
    "point_count",
    "nonfinite_points",
    "zero_points",
    "bounds",
    "density_per_m2",
    "intensity_min",
    "intensity_max",
)


@pytest.fixture(scope="module")
def sample_set() -> tuple[Any, dict[str, bytes]]:
    return sample_files(objects=40, seed=7)


def analyse(data: bytes) -> dict[str, Any]:
    stream = io.BytesIO(data)
    if data.startswith(b"LASF"):
        return QC.las.analyse(stream, len(data), label="test", chunk_points=1024)
    return QC.pcd.analyse(stream, len(data), chunk_points=1024, chunk_bytes=4096)


def test_every_valid_sample_point_cloud_gives_the_exact_expected_figures(sample_set):
    sample, objects = sample_set
    clouds = [k for k in sample.valid if not k.endswith(".mp4")]
    kinds = {(sample.expected[k]["format"], sample.expected[k].get("encoding")) for k in clouds}
    assert kinds == {("PCD", "ascii"), ("PCD", "binary"), ("PCD", "binary_compressed"), ("LAS", None), ("LAZ", None)}
    for key in clouds:
        got = analyse(objects[key])
        expected = sample.expected[key]
        assert {f: got[f] for f in FIGURES} == {f: expected[f] for f in FIGURES}, key
        assert got["format"] == expected["format"]
        assert got["nan_ratio"] == pytest.approx(expected["nonfinite_points"] / expected["point_count"])


def test_pcd_figures_by_hand():
    cloud = samples.Cloud(
        x=np.array([1, 2, 0, np.nan, 5], dtype=np.float32),
        y=np.array([10, 20, 0, 1, 30], dtype=np.float32),
        z=np.array([0, 1, 0, 2, np.inf], dtype=np.float32),
        intensity=np.array([7, 3, 0, 9, 100], dtype=np.float32),
    )
    for encoding in samples.ENCODINGS if hasattr(samples, "ENCODINGS") else ("ascii", "binary", "binary_compressed"):
        got = analyse(samples.write_pcd(cloud, encoding))
        assert got["encoding"] == encoding
        assert got["point_count"] == 5
        assert got["nonfinite_points"] == 2  # the NaN x and the infinite z
        assert got["zero_points"] == 1
        assert got["bounds"] == {
            "x": {"min": 0.0, "max": 5.0},
            "y": {"min": 0.0, "max": 30.0},
            "z": {"min": 0.0, "max": 2.0},
        }
        assert got["density_per_m2"] == pytest.approx(3 / (5 * 30))  # finite points / XY box area
        assert (got["intensity_min"], got["intensity_max"]) == (0.0, 100.0)


def test_a_cloud_without_intensity_and_a_flat_one():
    header = b"VERSION .7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 2\nHEIGHT 1\nDATA ascii\n"
    got = analyse(header + b"1 1 1\n1 1 2\n")
    assert got["intensity_min"] is None
    assert got["density_per_m2"] is None  # the XY box has no area
    assert got["point_count"] == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"VERSION .7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 3\nHEIGHT 1\nPOINTS 3\nDATA binary\n"
            + b"\0" * 35,
            "need 36 bytes, 35 remain",
        ),
        (b"VERSION .7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 3\nHEIGHT 1\nPOINTS 4\nDATA ascii\n", "POINTS 4"),
        (b"VERSION .7\nFIELDS x y\nSIZE 4 4\nTYPE F F\nWIDTH 1\nHEIGHT 1\nDATA ascii\n1 2\n", "no 'z' field"),
        (b"VERSION .7\nFIELDS x y z\nSIZE 4 4 3\nTYPE F F F\nWIDTH 1\nHEIGHT 1\nDATA ascii\n1 2 3\n", "SIZE 3"),
        (b"VERSION .7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 2\nHEIGHT 1\nDATA ascii\n1 2 3\n", "1 of 2"),
        (b"VERSION .7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 1\nHEIGHT 1\nDATA ascii\n1 2 x\n", "not a number"),
        (b"VERSION .7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 1\nHEIGHT 1\nDATA lzma\n", "unknown DATA"),
        (
            b"VERSION .7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 1\nHEIGHT 1\nDATA binary_compressed\n"
            + (100).to_bytes(4, "little")
            + (12).to_bytes(4, "little")
            + b"\0" * 10,
            "100 compressed bytes declared, 10",
        ),
        (
            b"VERSION .7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 1\nHEIGHT 1\nDATA binary_compressed\n"
            + (2).to_bytes(4, "little")
            + (13).to_bytes(4, "little")
            + b"\0\0",
            "uncompressed size 13",
        ),
        (
            b"VERSION .7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 1\nHEIGHT 1\nDATA binary_compressed\n"
            + (2).to_bytes(4, "little")
            + (12).to_bytes(4, "little")
            + b"\x20\x00",
            "back-reference",
        ),
    ],
)
def test_declared_lengths_are_checked_against_the_bytes_that_remain(data, message):
    with pytest.raises(InvalidFileError, match=message):
        analyse(data)


MAX_BACK_REFERENCE = b"\xe0\xff\x00"  # LZF: copy 7 + 255 + 2 = 264 bytes from 1 back


def _compressed_pcd(
    width: int, compressed: int, uncompressed: int, lzf: bytes = b"\x00\x00" + MAX_BACK_REFERENCE * 4
) -> bytes:
    """A binary_compressed x y z cloud of ``width`` points; the sizes header as given."""
    header = f"VERSION .7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH {width}\nHEIGHT 1\nPOINTS {width}\n"
    sizes = compressed.to_bytes(4, "little") + uncompressed.to_bytes(4, "little")
    return (header + "DATA binary_compressed\n").encode("ascii") + sizes + lzf


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # WIDTH and POINTS overwritten with 2**31 (found by overwriting the header's numbers): two
        # flags per declared point were allocated, 4 GiB, before the sizes were compared
        (_compressed_pcd(2**31, 14, 12), "uncompressed size 12 != 2147483648 points"),
        # consistent sizes, but 14 compressed bytes cannot expand to 1.2 GB (LZF: at most 88-fold)
        (_compressed_pcd(10**8, 14, 12 * 10**8), "LZF expands at most 88-fold"),
    ],
    ids=["sizes-differ", "beyond-lzf-expansion"],
)
def test_binary_compressed_sizes_are_checked_before_anything_is_allocated_per_point(data, message):
    tracemalloc.start()
    try:
        with pytest.raises(InvalidFileError, match=message):
            QC.pcd.analyse(io.BytesIO(data), len(data))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


def test_the_most_compressible_stream_lzf_can_write_is_still_read():
    """The expansion bound is LZF's own: a 12-byte literal and back-references of 264 bytes in 3
    (84-fold here) pass, and so does the project's compressor on an all-zero cloud."""
    lzf = b"\x0b" + b"\x00" * 12 + MAX_BACK_REFERENCE * 100
    points = (12 + 100 * 264) // 12
    assert analyse(_compressed_pcd(points, len(lzf), 12 * points, lzf))["zero_points"] == points
    zeros = samples.lzf_compress(b"\x00" * 12 * 50_000)
    assert analyse(_compressed_pcd(50_000, len(zeros), 12 * 50_000, zeros))["zero_points"] == 50_000


def test_las_point_count_beyond_the_data_is_refused():
    data = bytearray(samples.write_las(samples.las_points(random.Random(3), 50), compress=False))
    data[107:111] = (51).to_bytes(4, "little")
    with pytest.raises(InvalidFileError, match="51 points"):
        analyse(bytes(data))


@pytest.mark.parametrize("minor", [5, 6, 255])
def test_a_las_version_beyond_1_4_is_refused(minor):
    """laspy reads a 1.5 header's extra fields past a 1.2 header's end (struct.error): typed, not a crash."""
    data = bytearray(samples.write_las(samples.las_points(random.Random(3), 20), compress=False))
    data[25] = minor
    with pytest.raises(InvalidFileError, match=f"LAS version 1.{minor}"):
        analyse(bytes(data))


def test_a_header_shorter_than_its_version_needs_is_a_typed_error():
    """A 1.4 header (375 bytes) declared in a 1.2-sized header: laspy runs out of header bytes."""
    data = bytearray(samples.write_las(samples.las_points(random.Random(3), 20), compress=False))
    data[25] = 4
    with pytest.raises(InvalidFileError):
        analyse(bytes(data))


def _laz() -> bytearray:
    """A LAS 1.2 LAZ sample: 227-byte header, the LASzip VLR at byte 227, points from its offset."""
    data = bytearray(samples.write_las(samples.las_points(random.Random(0), 15), compress=True))
    assert (data[25], int.from_bytes(data[94:96], "little"), int.from_bytes(data[100:104], "little")) == (2, 227, 1)
    return data


def _u16(data: bytearray, at: int, value: int) -> bytearray:
    data[at : at + 2] = value.to_bytes(2, "little")
    return data


POINTS_AT = 96  # the header field holding the offset to the point data
LASZIP_ITEMS = 227 + 54 + 34  # first item of the LASzip VLR: type, size, version (u16 each)


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        # laspy would read 65,537 VLRs (and a larger count, gigabytes) before any check
        (lambda d: _u16(d, 102, 1), "65537 VLRs declared"),
        # lazrs allocates by the item sizes (a flipped size aborted the process at 17 GB)
        (lambda d: _u16(d, LASZIP_ITEMS + 2, 21), "LASzip item type 6 of 21 bytes"),
        (lambda d: _u16(d, LASZIP_ITEMS, 99), "LASzip item type 99"),
        # the chunk table's offset, the first 8 bytes of the point data, read one byte off
        (lambda d: d.__setitem__(int.from_bytes(d[POINTS_AT:100], "little"), d[327] ^ 1) or d, "chunk table"),
        # the LASzip VLR's length reaching past the point data offset
        (lambda d: _u16(d, 227 + 20, 200), "run past the point data"),
        # compressed points whose VLR is not LASzip's
        (lambda d: d.__setitem__(slice(229, 243), b"laszip encodeX") or d, "without a LASzip VLR"),
    ],
    ids=["vlr-count", "item-size", "item-type", "chunk-table", "vlr-length", "no-laszip-vlr"],
)
def test_a_laz_header_that_would_make_the_decoder_allocate_unbounded_memory_is_refused(corrupt, message):
    data = _laz()
    analyse(bytes(data))  # the sample itself reads
    with pytest.raises(InvalidFileError, match=message):
        analyse(bytes(corrupt(data)))


def test_every_broken_sample_is_a_typed_failure(sample_set):
    sample, objects = sample_set
    assert len(sample.corrupt) == 2
    for key in sample.corrupt:
        if key.endswith(".mp4"):
            continue
        with pytest.raises(InvalidFileError):
            analyse(objects[key])


def test_sniff_refuses_what_is_no_point_cloud():
    source = io.BytesIO(b"\x00\x01binary junk")
    with pytest.raises(InvalidFileError, match="neither PCD nor LAS"):
        QC.qc.analyse_file(_ranged_over(source.getvalue()), label="junk.pcd", chunk_points=1024)


def _ranged_over(data: bytes) -> Any:
    from shared.ranged import RangedObjectFile

    class OneObject:
        def get_object(self, *, Range: str, **_: Any) -> dict[str, Any]:  # noqa: N803
            start, end = (int(v) for v in Range.removeprefix("bytes=").split("-"))
            return {"Body": io.BytesIO(data[start : end + 1]), "ContentRange": f"bytes {start}-{end}/{len(data)}"}

    s3: Any = OneObject()
    return RangedObjectFile(s3, "b", "k", size=len(data), etag="", deadline=Deadline.after(60), block_size=4096)


# --- the handler ----------------------------------------------------------------------------------
@pytest.fixture
def fn(monkeypatch, s3_access_point, output_bucket):
    monkeypatch.setenv("ACCESS_POINT_ARN", s3_access_point.arn)
    monkeypatch.setenv("OUTPUT_BUCKET", output_bucket)
    monkeypatch.setenv("RANGE_BLOCK_BYTES", str(64 * 1024))
    return load_function("pointcloud_qc", "handler", "qc")


def test_handler_writes_one_record_per_file_and_returns_only_counts(fn, s3_access_point, output_bucket, sample_set):
    sample, objects = sample_set
    keys = [k for k in sample.valid if not k.endswith(".mp4")][:10] + [
        k for k in sample.corrupt if not k.endswith(".mp4")
    ]
    for key in keys:
        s3_access_point.put(key, objects[key])
    event = {"Items": listed_items(s3_access_point, keys), "BatchInput": {"execution_id": "uc9-qc-1"}}
    reply = fn.handler.handler(event, FakeLambdaContext(remaining_ms=600_000))
    assert reply["processed"] == len(keys)
    assert reply["failed"] == 1
    assert reply["succeeded"] == len(keys) - 1
    assert reply["point_count"] == sum(sample.expected[k]["point_count"] for k in keys if k in sample.expected)
    assert len(json.dumps(reply)) < 400
    assert not any(isinstance(v, list | dict) for v in reply.values())
    for key in keys:
        record = stored_record(s3_access_point.s3, output_bucket, "uc9-qc-1", key)
        if key in sample.expected:
            assert record["status"] == "SUCCEEDED"
            assert {f: record[f] for f in FIGURES} == {f: sample.expected[key][f] for f in FIGURES}
        else:
            assert record["status"] == "FAILED"
            assert record["error_type"] == "InvalidFileError"
            assert record["bytes_read"] > 0
    # A rerun of the same batch skips what is recorded (same ETag).
    again = fn.handler.handler(event, FakeLambdaContext(remaining_ms=600_000))
    assert again["skipped"] == len(keys)
    assert again["processed"] == 0


def test_a_file_replaced_after_listing_is_a_source_changed_failure(fn, s3_access_point, output_bucket, sample_set):
    sample, objects = sample_set
    key = next(k for k in sample.valid if k.endswith(".las"))
    s3_access_point.put(key, objects[key])
    items = listed_items(s3_access_point, [key])
    s3_access_point.put(key, objects[key] + b"\0")  # rewritten: another ETag
    fn.handler.handler({"Items": items, "BatchInput": {"execution_id": "uc9-qc-2"}}, FakeLambdaContext())
    record = stored_record(s3_access_point.s3, output_bucket, "uc9-qc-2", key)
    assert record["status"] == "FAILED"
    assert record["error_type"] == "SourceChangedError"


def test_every_ranged_get_carries_if_match(fn, s3_access_point, sample_set):
    sample, objects = sample_set
    key = next(k for k in sample.valid if k.endswith(".laz"))
    s3_access_point.put(key, objects[key])
    (item,) = listed_items(s3_access_point, [key])
    s3 = FailingClient(s3_access_point.s3)
    facts: dict[str, Any] = {}
    fields = fn.qc.qc_work(
        s3,
        s3_access_point.arn,
        ObjectInfo.from_dict(item),
        facts,
        deadline=Deadline.after(60),
        settings=fn.qc.QcSettings(64 * 1024, 2, 1024),
    )
    assert fields["format"] == "LAZ"
    gets = [kwargs for name, kwargs in s3.calls if name == "get_object"]
    assert gets
    assert all(kwargs["IfMatch"] == f'"{item["etag"]}"' and "Range" in kwargs for kwargs in gets)


def test_throttled_reads_are_raised_for_the_maps_retry(fn, s3_access_point):
    key = "sensors/big.laz"  # lazrs reads the points through native code
    s3_access_point.put(key, samples.write_las(samples.las_points(random.Random(4), 20_000), compress=True))
    (item,) = listed_items(s3_access_point, [key])
    s3 = FailingClient(s3_access_point.s3)
    s3.fail("get_object", client_error("SlowDown", 503), when=lambda **kw: kw["Range"].startswith("bytes=8192-"))
    assert item["size"] > 3 * 4096  # several blocks: the failing one is read by lazrs
    with pytest.raises(ThrottlingError):
        fn.qc.qc_work(
            s3,
            s3_access_point.arn,
            ObjectInfo.from_dict(item),
            {},
            deadline=Deadline.after(60),
            settings=fn.qc.QcSettings(4096, 1, 1024),
        )


def test_the_time_budget_is_checked_before_every_read(fn, s3_access_point, sample_set):
    sample, objects = sample_set
    key = next(k for k in sample.valid if k.endswith(".pcd"))
    s3_access_point.put(key, objects[key])
    (item,) = listed_items(s3_access_point, [key])
    with pytest.raises(DeadlineExceededError):
        fn.qc.qc_work(
            s3_access_point.s3,
            s3_access_point.arn,
            ObjectInfo.from_dict(item),
            {},
            deadline=Deadline.after(0),
            settings=fn.qc.QcSettings(64 * 1024, 1, 1024),
        )


@pytest.mark.parametrize(
    "bad",
    [
        {},
        {"Items": [], "BatchInput": {"execution_id": "e"}},
        {"Items": [{"key": "a"}], "BatchInput": {"execution_id": "e"}},
        {"Items": [{"key": "a", "size": 1, "etag": "", "last_modified": "2026-01-01"}]},
    ],
)
def test_bad_events_are_invalid_input(fn, bad):
    with pytest.raises(InvalidInputError):
        fn.handler.handler(bad, FakeLambdaContext())


def test_the_canonical_event_has_the_batch_shape(fn):
    event = load_event(EVENTS, "pointcloud_qc")
    assert set(event) == {"Items", "BatchInput"}
    assert all(set(item) == {"key", "size", "etag", "last_modified"} for item in event["Items"])


# --- memory ---------------------------------------------------------------------------------------
def _big_pcd(path: Path, points: int, encoding: str) -> None:
    chunk = 200_000
    gen = np.random.default_rng(5)
    header = (
        f"VERSION 0.7\nFIELDS x y z intensity\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\n"
        f"WIDTH {points}\nHEIGHT 1\nPOINTS {points}\nDATA {encoding}\n"
    ).encode()
    with path.open("wb") as handle:
        handle.write(header)
        left = points
        while left:
            n = min(chunk, left)
            rows = gen.uniform(-100, 100, (n, 4)).astype("<f4")
            handle.write(rows.tobytes())
            left -= n


@pytest.mark.parametrize("encoding", ["binary"])
def test_a_large_point_cloud_is_streamed_in_bounded_memory(tmp_path, encoding):
    points = 3_000_000  # 48 MB of point data
    path = tmp_path / f"big.{encoding}.pcd"
    _big_pcd(path, points, encoding)
    size = path.stat().st_size
    s3 = FileS3({"big.pcd": path}, {"big.pcd": "etag"})
    item = ObjectInfo("big.pcd", size, "etag", "2026-11-20T08:15:30.000Z")
    settings = QC.qc.QcSettings(block_bytes=1024 * 1024, max_blocks=2, chunk_points=65536)
    tracemalloc.start()
    try:
        facts: dict[str, Any] = {}
        fields = QC.qc.qc_work(s3, "ap", item, facts, deadline=Deadline.after(600), settings=settings)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fields["point_count"] == points
    assert facts["bytes_read"] == size  # everything read once, in ranged GETs
    assert s3.requests == math.ceil(size / (1024 * 1024))
    # Two 1 MiB blocks, the 64 KiB buffer, one 65536-point chunk (1 MiB raw, float64 copies): far
    # below the 48 MB file.
    assert peak < 12 * 1024 * 1024, f"peak {peak / 1e6:.1f} MB"


def test_a_read_error_a_decoder_rewraps_is_raised_as_the_original_typed_error(monkeypatch):
    # lazrs and FFmpeg pass Python exceptions through today; a decoder that turned a failed read
    # into its own "bad data" error must still not make a throttled read a corrupt file.
    data = b"VERSION .7\n" + b"#" * 200_000
    source = _ranged_over(data)

    def wrapping_decoder(stream: Any, size: int, **_: Any) -> dict[str, Any]:
        try:
            while stream.read(4096):
                pass
        except ThrottlingError as e:
            raise InvalidFileError("decoder: unexpected end of data") from e
        return {}

    fetches = []

    def fetch(index: int) -> bytes:
        fetches.append(index)
        if index >= 16:  # the format sniff's buffered 64 KiB read succeeds; the decoder's reads fail
            raise ThrottlingError("GetObject: SlowDown")
        return data[index * 4096 : (index + 1) * 4096]

    monkeypatch.setattr(QC.pcd, "analyse", wrapping_decoder)
    monkeypatch.setattr(source, "_fetch", fetch)
    with pytest.raises(ThrottlingError):
        QC.qc.analyse_file(source, label="t.pcd", chunk_points=1024)
