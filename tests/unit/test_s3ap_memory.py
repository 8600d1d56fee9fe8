"""Discovery's memory does not depend on the number of objects (DESIGN principle 3).

A listing of tens of thousands of keys is generated page by page by a fake client (creating
them in moto would take minutes); uploaded parts go to a file on disk, which tracemalloc does not
count. The peak of traced Python memory while listing into a manifest, and while reading it back,
must stay within a part-size-scale bound and must not grow with the object count.
"""

from __future__ import annotations

import datetime as dt
import tracemalloc
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from botocore.response import StreamingBody

from shared.s3ap import ManifestWriter, ObjectInfo, list_objects, read_manifest

pytestmark = pytest.mark.unit

MiB = 1024 * 1024
PART_SIZE = 5 * MiB
SMALL, LARGE = 7_000, 21_000
# A part buffer, its bytes() copy during upload, one listing page and interpreter noise.
BOUND = 2 * PART_SIZE + 4 * MiB
SAMPLE_EVERY = 1_999
ARN = "arn:aws:s3:us-east-1:123456789012:accesspoint/fsxn-eda-ap"
_EPOCH = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


# Deep hierarchy keys (about 760 characters of S3's 1,024) make a manifest line about 850 bytes, so
# both counts need several parts while the traced allocations per byte stay few: tracemalloc's
# per-allocation overhead is what the measurement's run time is made of. %-formatting: one
# allocation per key.
_KEY = ("projects/soc-reference-design/release-2024.1/"
        + "".join(f"level-{n:02d}-hierarchical-block-group/" for n in range(20))
        + "block-%07d/layout-%07d.gds")


def _key(i: int) -> str:
    return _KEY % (i, i)


def _record(i: int) -> dict[str, Any]:
    """The manifest line expected for listed object ``i``."""
    return {"key": _key(i), "size": i, "etag": "%032x" % i, "last_modified": "2024-01-01T00:00:00.000Z"}  # noqa: UP031


class DiskBackedS3:
    """ListObjectsV2 pages generated on demand; uploads stored in a file; GetObject streams it back."""

    def __init__(self, count: int, path: Path) -> None:
        self.count = count
        self.path = path
        self.parts: list[int] = []

    def get_paginator(self, name: str) -> DiskBackedS3:
        return self

    def paginate(self, **kw: Any) -> Iterator[dict[str, Any]]:
        size = kw["PaginationConfig"]["PageSize"]
        for start in range(0, self.count, size):
            yield {
                "Contents": [
                    {"Key": _KEY % (i, i), "Size": i, "ETag": '"%032x"' % i, "LastModified": _EPOCH}  # noqa: UP031
                    for i in range(start, min(start + size, self.count))
                ]
            }

    def put_object(self, **kw: Any) -> dict[str, Any]:
        self.path.write_bytes(kw["Body"])
        return {}

    def create_multipart_upload(self, **_: Any) -> dict[str, Any]:
        self.path.write_bytes(b"")
        self.parts = []
        return {"UploadId": "u-1"}

    def upload_part(self, **kw: Any) -> dict[str, Any]:
        assert kw["PartNumber"] == len(self.parts) + 1
        with self.path.open("ab") as f:
            f.write(kw["Body"])
        self.parts.append(len(kw["Body"]))
        return {"ETag": f'"p{kw["PartNumber"]}"'}

    def complete_multipart_upload(self, **kw: Any) -> dict[str, Any]:
        assert [p["PartNumber"] for p in kw["MultipartUpload"]["Parts"]] == list(range(1, len(self.parts) + 1))
        return {}

    def abort_multipart_upload(self, **_: Any) -> dict[str, Any]:
        raise AssertionError("no abort expected")

    def get_object(self, **_: Any) -> dict[str, Any]:
        size = self.path.stat().st_size
        return {"Body": StreamingBody(self.path.open("rb"), size)}


def _peak(fn: Callable[[], Any]) -> tuple[int, Any]:
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        result = fn()
        return tracemalloc.get_traced_memory()[1] - base, result
    finally:
        tracemalloc.stop()


def _discover(s3: Any) -> int:
    """What a Discovery handler does: stream the listing into the manifest."""
    with ManifestWriter(s3, "out", "manifests/e/manifest.jsonl", part_size=PART_SIZE) as manifest:
        for obj in list_objects(s3, ARN, suffixes=(".gds",)):
            manifest.write(obj.to_dict())
    return manifest.result.bytes


def _read_back(s3: Any) -> dict[str, Any]:
    """Stream the manifest back, checking every record's key and size; keep a sparse sample."""
    count, sample = 0, []
    for record in read_manifest(s3, "out", "k"):
        if record["key"] != _KEY % (count, count) or record["size"] != count:
            raise AssertionError(f"record {count} differs: {record}")
        if count % SAMPLE_EVERY == 0 or count == s3.count - 1:
            sample.append(record)
        count += 1
    return {"count": count, "sample": sample}


@pytest.fixture(scope="module")
def measured(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, Any]]:
    results: dict[int, dict[str, Any]] = {}
    for count in (SMALL, LARGE):
        s3 = DiskBackedS3(count, tmp_path_factory.mktemp("manifest") / "manifest.jsonl")
        write_peak, size = _peak(partial(_discover, s3))
        read_peak, read = _peak(partial(_read_back, s3))
        assert size == s3.path.stat().st_size
        assert read["count"] == count
        results[count] = {
            "write": write_peak,
            "read": read_peak,
            "bytes": size,
            "parts": len(s3.parts),
            "sample": read["sample"],
        }
    return results


def test_large_listing_round_trips_through_a_multipart_manifest(measured):
    # Every record's key and size were checked while streaming back (in the fixture, so the
    # reading is measured too); the sample is compared field by field.
    large = measured[LARGE]
    assert large["parts"] >= 3  # about 17 MB in 5 MiB parts
    assert measured[SMALL]["parts"] >= 1
    assert len(large["sample"]) == len(range(0, LARGE, SAMPLE_EVERY)) + 1  # and the last record
    for record in large["sample"]:
        assert record == _record(ObjectInfo.from_dict(record).size)
    assert large["sample"][-1]["key"] == _key(LARGE - 1)


def test_peak_memory_is_bounded_by_the_part_size(measured):
    for count in (SMALL, LARGE):
        assert measured[count]["write"] < BOUND, (count, measured[count])
        assert measured[count]["read"] < 2 * MiB, (count, measured[count])


def test_peak_memory_does_not_grow_with_the_object_count(measured):
    extra_data = measured[LARGE]["bytes"] - measured[SMALL]["bytes"]
    growth = measured[LARGE]["write"] - measured[SMALL]["write"]
    # Holding the listing would grow the peak by at least the extra data; allow 5 % of it for noise.
    assert growth < 0.05 * extra_data, measured
    assert measured[LARGE]["read"] - measured[SMALL]["read"] < 0.05 * extra_data, measured


def _hold_listing(s3: Any) -> list[dict[str, Any]]:
    return [o.to_dict() for o in list_objects(s3, ARN)]


def test_the_measurement_catches_a_consumer_that_holds_the_listing(tmp_path):
    """Known-bad input: a consumer that keeps the listing fails both criteria, so they mean something."""
    peaks = {}
    for count in (SMALL // 10, SMALL):
        s3 = DiskBackedS3(count, tmp_path / "unused.jsonl")
        peaks[count], held = _peak(partial(_hold_listing, s3))
        assert len(held) == count
    extra_data = (SMALL - SMALL // 10) * 850  # bytes of the manifest lines of the extra objects
    assert peaks[SMALL] - peaks[SMALL // 10] > 0.05 * extra_data
    assert peaks[SMALL] * (LARGE // SMALL) > BOUND
