"""shared.s3ap properties: ARN parsing, alias detection, item round-trips, manifest round-trips."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any
from unittest import mock

import pytest
from botocore.response import StreamingBody
from hypothesis import given, settings
from hypothesis import strategies as st

from shared import s3ap
from shared.errors import InvalidInputError
from shared.s3ap import AccessPoint, ManifestWriter, ObjectInfo, read_manifest

pytestmark = pytest.mark.property

REGIONS = {
    "aws": ["us-east-1", "eu-central-2", "ap-southeast-5", "il-central-1", "mx-central-1", "ca-west-1"],
    "aws-cn": ["cn-north-1", "cn-northwest-1"],
    "aws-us-gov": ["us-gov-west-1", "us-gov-east-1"],
}
ap_names = st.from_regex(r"[a-z0-9][a-z0-9-]{1,48}[a-z0-9]", fullmatch=True).filter(
    lambda n: not n.endswith("-s3alias")
)
accounts = st.from_regex(r"[0-9]{12}", fullmatch=True)


@st.composite
def access_points(draw: st.DrawFn) -> tuple[str, str, str, str]:
    partition = draw(st.sampled_from(sorted(REGIONS)))
    return partition, draw(st.sampled_from(REGIONS[partition])), draw(accounts), draw(ap_names)


@given(access_points())
def test_valid_arns_round_trip(parts):
    partition, region, account, name = parts
    arn = f"arn:{partition}:s3:{region}:{account}:accesspoint/{name}"
    ap = AccessPoint.parse(arn)
    assert (ap.partition, ap.region, ap.account, ap.name) == parts
    assert ap.arn == arn
    assert ap.object_arn_pattern == f"{arn}/object/*"
    assert AccessPoint.parse(ap.arn) == ap
    assert not s3ap.is_access_point_alias(arn)


@given(access_points(), st.text(min_size=1, max_size=60))
def test_names_outside_the_rules_are_rejected(parts, name):
    partition, region, account, _ = parts
    valid = 3 <= len(name) <= 50 and name[0] != "-" and name[-1] != "-" and not name.endswith("-s3alias")
    valid = valid and all(c in "abcdefghijklmnopqrstuvwxyz0123456789-" for c in name)
    arn = f"arn:{partition}:s3:{region}:{account}:accesspoint/{name}"
    if valid:
        assert AccessPoint.parse(arn).name == name
    else:
        with pytest.raises(InvalidInputError):
            AccessPoint.parse(arn)


@given(access_points(), st.sampled_from(sorted(REGIONS)))
def test_region_must_belong_to_the_partition(parts, other_partition):
    _, region, account, name = parts
    arn = f"arn:{other_partition}:s3:{region}:{account}:accesspoint/{name}"
    if region in REGIONS[other_partition]:
        assert AccessPoint.parse(arn).partition == other_partition
    else:
        with pytest.raises(InvalidInputError, match="not in partition"):
            AccessPoint.parse(arn)


@given(
    st.from_regex(r"[a-z0-9][a-z0-9-]{1,18}[a-z0-9]", fullmatch=True),
    st.from_regex(r"[a-z0-9]{10,42}", fullmatch=True),
    st.booleans(),
)
def test_aliases_are_recognised_and_refused(name, random_part, fsx):
    alias = f"{name}-{random_part}-{'ext-' if fsx else ''}s3alias"
    if len(alias) > 63:
        assert not s3ap.is_access_point_alias(alias)  # longer than any bucket-style name
        return
    assert s3ap.is_access_point_alias(alias)
    assert s3ap.is_fsx_access_point_alias(alias) is fsx
    with pytest.raises(InvalidInputError, match="alias"):
        AccessPoint.parse(alias)


keys = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=200)
_LOW, _HIGH = dt.datetime(1970, 1, 1), dt.datetime(2200, 1, 1)
times = st.one_of(st.datetimes(_LOW, _HIGH), st.datetimes(_LOW, _HIGH, timezones=st.timezones()))


@given(keys, st.integers(0, 5 * 1024**4), st.text(max_size=40).map(lambda s: s.replace('"', "")), times)
def test_listing_items_round_trip_through_dicts(key, size, etag, modified):
    info = ObjectInfo.from_listing({"Key": key, "Size": size, "ETag": f'"{etag}"', "LastModified": modified})
    assert info.etag == etag
    assert info.last_modified.endswith("Z")
    parsed = dt.datetime.fromisoformat(info.last_modified)
    expected = modified if modified.tzinfo is not None else modified.replace(tzinfo=dt.UTC)
    assert abs(parsed - expected) < dt.timedelta(milliseconds=1)
    assert ObjectInfo.from_dict(info.to_dict()) == info


class MemoryS3:
    """Just enough of S3 for the manifest writer/reader; checks the multipart rules S3 enforces."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}
        self.uploads: dict[str, list[bytes]] = {}
        self.part_size = 0

    def put_object(self, **kw: Any) -> dict[str, Any]:
        self.objects[kw["Key"]] = kw["Body"]
        return {}

    def create_multipart_upload(self, **_: Any) -> dict[str, Any]:
        upload_id = f"u{len(self.uploads)}"
        self.uploads[upload_id] = []
        return {"UploadId": upload_id}

    def upload_part(self, **kw: Any) -> dict[str, Any]:
        parts = self.uploads[kw["UploadId"]]
        assert kw["PartNumber"] == len(parts) + 1
        assert kw["ChecksumAlgorithm"] == "CRC32"
        parts.append(kw["Body"])
        return {"ETag": f'"{kw["PartNumber"]}"', "ChecksumCRC32": "AAAAAA=="}

    def complete_multipart_upload(self, **kw: Any) -> dict[str, Any]:
        parts = self.uploads.pop(kw["UploadId"])
        listed = kw["MultipartUpload"]["Parts"]
        assert [p["PartNumber"] for p in listed] == list(range(1, len(parts) + 1))
        assert all("ChecksumCRC32" in p for p in listed)
        assert all(len(p) >= self.part_size for p in parts[:-1]), "only the last part may be small"
        self.objects[kw["Key"]] = b"".join(parts)
        return {}

    def abort_multipart_upload(self, **kw: Any) -> dict[str, Any]:
        del self.uploads[kw["UploadId"]]
        return {}

    def get_object(self, **kw: Any) -> dict[str, Any]:
        data = self.objects[kw["Key"]]
        return {"Body": StreamingBody(io.BytesIO(data), len(data))}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10,
)
records = st.lists(st.dictionaries(st.text(max_size=10), json_values, max_size=5), max_size=60)


@settings(max_examples=150)
@given(records, st.integers(64, 2048), st.integers(1, 300))
def test_any_records_round_trip_for_any_part_size(items, part_size, chunk_size):
    s3: Any = MemoryS3()
    s3.part_size = part_size
    # S3's 5 MiB minimum is lowered so that small examples cross many part boundaries.
    with (
        mock.patch.object(s3ap, "MIN_PART_SIZE", 1),
        ManifestWriter(s3, "out", "m.jsonl", part_size=part_size) as manifest,
    ):
        for item in items:
            manifest.write(item)
    assert s3.uploads == {}
    assert manifest.result.count == len(items)
    assert manifest.result.bytes == len(s3.objects["m.jsonl"])
    assert list(read_manifest(s3, "out", "m.jsonl", chunk_size=chunk_size)) == items


@settings(max_examples=60)
@given(records.filter(bool), st.integers(64, 512), st.data())
def test_a_failure_at_any_point_leaves_nothing_visible(items, part_size, data):
    s3: Any = MemoryS3()
    fail_at = data.draw(st.integers(0, len(items) - 1))

    def write_until_failure() -> None:
        with ManifestWriter(s3, "out", "m.jsonl", part_size=part_size) as manifest:
            for number, item in enumerate(items):
                if number == fail_at:
                    raise RuntimeError("stop")
                manifest.write(item)

    with mock.patch.object(s3ap, "MIN_PART_SIZE", 1), pytest.raises(RuntimeError, match="stop"):
        write_until_failure()
    assert s3.objects == {}
    assert s3.uploads == {}


LINE_BREAKERS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
keys = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from(LINE_BREAKERS), min_size=1)


@settings(max_examples=200)
@given(st.lists(keys, min_size=1, max_size=20), st.integers(1, 300))
def test_any_key_round_trips_and_every_line_survives_any_line_splitter(key_list, chunk_size):
    s3: Any = MemoryS3()
    items = [ObjectInfo(key=k, size=i, etag="e", last_modified="2026-01-01T00:00:00.000Z").to_dict()
             for i, k in enumerate(key_list)]
    with ManifestWriter(s3, "out", "m.jsonl") as manifest:
        for item in items:
            manifest.write(item)
    text = s3.objects["m.jsonl"].decode("utf-8")
    lines = text.splitlines()  # the most eager splitter: every separator Unicode knows
    assert len(lines) == len(items)
    assert [json.loads(line) for line in lines] == items
    assert list(read_manifest(s3, "out", "m.jsonl", chunk_size=chunk_size)) == items


@settings(max_examples=100)
@given(st.lists(st.text(st.sampled_from("ab\u2028\u2029\x85\r"), max_size=6), min_size=1, max_size=10),
       st.integers(1, 50))
def test_lines_written_raw_by_another_writer_split_on_newline_only(values, chunk_size):
    s3: Any = MemoryS3()
    # json.dumps(ensure_ascii=False) leaves U+2028/U+2029/U+0085 raw: a reader must not split there.
    s3.objects["m.jsonl"] = "".join(json.dumps({"v": v}, ensure_ascii=False) + "\n" for v in values).encode()
    assert [r["v"] for r in read_manifest(s3, "out", "m.jsonl", chunk_size=chunk_size)] == values
