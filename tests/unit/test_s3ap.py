"""shared.s3ap against moto (S3 through an access point ARN) and small fakes where exact replies matter."""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pytest
from botocore.exceptions import ClientError, ResponseStreamingError
from botocore.response import StreamingBody

from shared import s3ap
from shared.errors import (
    AccessDeniedError,
    InvalidFileError,
    InvalidInputError,
    NotFoundError,
    ServiceUnavailableError,
    ThrottlingError,
)
from shared.s3ap import AccessPoint, ManifestWriter, ObjectInfo, list_objects, read_manifest
from tests.support.aws_errors import client_error

pytestmark = pytest.mark.unit

MiB = 1024 * 1024
ARN = "arn:aws:s3:us-east-1:123456789012:accesspoint/fsxn-eda-ap"
FSX_ALIAS = "my-ontap-ap-hrzrlukc5m36ft7okagglf3gmwluquse1b-ext-s3alias"


class _Recording:
    """Forwards to a real (moto) client, records the operations called, and can fail chosen ones."""

    def __init__(self, inner: Any, fail: dict[str, Exception] | None = None) -> None:
        self._inner = inner
        self.fail = dict(fail or {})
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._inner, name)
        if not callable(target) or name in {"get_paginator", "meta"}:
            return target

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            if name in self.fail:
                raise self.fail[name]
            return target(*args, **kwargs)

        return call


# The factories return Any so a fake can stand where an S3Client is annotated.
def recording(inner: Any, fail: dict[str, Exception] | None = None) -> Any:
    return _Recording(inner, fail)


# --------------------------------------------------------------------------- AccessPoint


class TestAccessPoint:
    @pytest.mark.parametrize(
        ("arn", "partition", "region"),
        [
            (ARN, "aws", "us-east-1"),
            ("arn:aws:s3:ap-southeast-5:123456789012:accesspoint/abc", "aws", "ap-southeast-5"),
            ("arn:aws-cn:s3:cn-north-1:123456789012:accesspoint/ap-1", "aws-cn", "cn-north-1"),
            (
                "arn:aws-us-gov:s3:us-gov-west-1:123456789012:accesspoint/a" + "b" * 48 + "c",
                "aws-us-gov",
                "us-gov-west-1",
            ),
        ],
    )
    def test_valid_arns(self, arn, partition, region):
        ap = AccessPoint.parse(arn)
        assert (ap.partition, ap.region, ap.account) == (partition, region, "123456789012")
        assert ap.arn == arn
        assert str(ap) == arn
        assert ap.object_arn_pattern == arn + "/object/*"

    def test_fields(self):
        ap = AccessPoint.parse(ARN)
        assert ap.name == "fsxn-eda-ap"
        assert ap == AccessPoint("aws", "us-east-1", "123456789012", "fsxn-eda-ap")

    @pytest.mark.parametrize(
        ("value", "reason"),
        [
            (FSX_ALIAS, "alias"),
            ("fsxn-ap-ca02d22381f67d029a9e725f2367b70529-s3alias", "alias"),
            ("arn:aws:s3:::my-bucket", "not an S3 access point ARN"),
            ("arn:aws:s3:us-east-1:123456789012:bucket/x", "accesspoint/<name>"),
            ("arn:aws:s3-object-lambda:us-east-1:123456789012:accesspoint/abc", "not an S3 access point ARN"),
            ("arn:aws-iso:s3:us-iso-east-1:123456789012:accesspoint/abc", "unknown partition"),
            ("arn:aws:s3:cn-north-1:123456789012:accesspoint/abc", "not in partition"),
            ("arn:aws:s3:us-gov-west-1:123456789012:accesspoint/abc", "not in partition"),
            ("arn:aws-cn:s3:us-east-1:123456789012:accesspoint/abc", "not in partition"),
            ("arn:aws:s3:US-EAST-1:123456789012:accesspoint/abc", "invalid region"),
            ("arn:aws:s3:useast1:123456789012:accesspoint/abc", "invalid region"),
            ("arn:aws:s3::123456789012:accesspoint/abc", "invalid region"),
            ("arn:aws:s3:us-east-1:12345678901:accesspoint/abc", "12 digits"),
            ("arn:aws:s3:us-east-1:12345678901a:accesspoint/abc", "12 digits"),
            ("arn:aws:s3:us-east-1:123456789012:accesspoint/ab", "invalid access point name"),
            ("arn:aws:s3:us-east-1:123456789012:accesspoint/" + "a" * 51, "invalid access point name"),
            ("arn:aws:s3:us-east-1:123456789012:accesspoint/Fsxn-ap", "invalid access point name"),
            ("arn:aws:s3:us-east-1:123456789012:accesspoint/fsxn_ap", "invalid access point name"),
            ("arn:aws:s3:us-east-1:123456789012:accesspoint/fsxn.ap", "invalid access point name"),
            ("arn:aws:s3:us-east-1:123456789012:accesspoint/-fsxn", "invalid access point name"),
            ("arn:aws:s3:us-east-1:123456789012:accesspoint/fsxn-", "invalid access point name"),
            ("arn:aws:s3:us-east-1:123456789012:accesspoint/x-s3alias", "invalid access point name"),
            (ARN + "/object/key.gds", "invalid access point name"),
            (ARN + " ", "invalid access point name"),
            ("", "not an S3 access point ARN"),
        ],
    )
    def test_invalid_values_say_why(self, value, reason):
        with pytest.raises(InvalidInputError) as info:
            AccessPoint.parse(value)
        assert reason in info.value.message

    @pytest.mark.parametrize("value", [None, 42, b"arn:aws:s3:us-east-1:123456789012:accesspoint/abc"])
    def test_non_strings(self, value):
        with pytest.raises(InvalidInputError, match="must be a string"):
            AccessPoint.parse(value)


class TestAliases:
    def test_fsx_alias(self):
        assert s3ap.is_access_point_alias(FSX_ALIAS)
        assert s3ap.is_fsx_access_point_alias(FSX_ALIAS)

    def test_bucket_access_point_alias_is_not_fsx(self, s3_access_point):
        assert s3ap.is_access_point_alias(s3_access_point.alias)
        assert not s3ap.is_fsx_access_point_alias(s3_access_point.alias)

    @pytest.mark.parametrize(
        "value",
        [ARN, "my-bucket", "s3alias", "-ext-s3alias", "x" * 60 + "-ext-s3alias", FSX_ALIAS.upper(), None, 3],
    )
    def test_not_aliases(self, value):
        assert not s3ap.is_access_point_alias(value)
        assert not s3ap.is_fsx_access_point_alias(value)


# --------------------------------------------------------------------------- ObjectInfo


class TestObjectInfo:
    def test_from_listing(self):
        item = {
            "Key": "lib/top.gds",
            "Size": 1234,
            "ETag": '"88990077ab44cd55ef66aa77-1"',
            "LastModified": dt.datetime(2024, 10, 29, 14, 22, 5, 435900, tzinfo=dt.UTC),
            "StorageClass": "FSX_ONTAP",
        }
        info = ObjectInfo.from_listing(item)
        assert info == ObjectInfo("lib/top.gds", 1234, "88990077ab44cd55ef66aa77-1", "2024-10-29T14:22:05.435Z")

    def test_times_are_converted_to_utc(self):
        tokyo = dt.timezone(dt.timedelta(hours=9))
        aware = ObjectInfo.from_listing(
            {"Key": "k", "Size": 0, "LastModified": dt.datetime(2024, 1, 1, 9, 0, tzinfo=tokyo)}
        )
        assert aware.last_modified == "2024-01-01T00:00:00.000Z"
        assert aware.etag == ""
        naive = ObjectInfo.from_listing({"Key": "k", "Size": 0, "LastModified": dt.datetime(2024, 1, 1)})
        assert naive.last_modified == "2024-01-01T00:00:00.000Z"

    def test_dict_round_trip(self):
        info = ObjectInfo("a/b c/ü.oas", 7, "abc", "2024-01-01T00:00:00.000Z")
        assert info.to_dict() == {
            "key": "a/b c/ü.oas",
            "size": 7,
            "etag": "abc",
            "last_modified": "2024-01-01T00:00:00.000Z",
        }
        assert ObjectInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info

    @pytest.mark.parametrize(
        ("data", "field"),
        [
            ({"size": 1, "etag": "", "last_modified": "2024-01-01T00:00:00Z"}, "key"),
            ({"key": "", "size": 1, "etag": "", "last_modified": "2024-01-01T00:00:00Z"}, "key"),
            ({"key": "k", "size": -1, "etag": "", "last_modified": "2024-01-01T00:00:00Z"}, "size"),
            ({"key": "k", "size": True, "etag": "", "last_modified": "2024-01-01T00:00:00Z"}, "size"),
            ({"key": "k", "size": "1", "etag": "", "last_modified": "2024-01-01T00:00:00Z"}, "size"),
            ({"key": "k", "size": 1, "etag": None, "last_modified": "2024-01-01T00:00:00Z"}, "etag"),
            ({"key": "k", "size": 1, "etag": "", "last_modified": 0}, "last_modified"),
            ({"key": "k", "size": 1, "etag": "", "last_modified": "yesterday"}, "ISO-8601"),
        ],
    )
    def test_from_dict_rejects_malformed_items(self, data, field):
        with pytest.raises(InvalidInputError, match=field):
            ObjectInfo.from_dict(data)

    def test_from_dict_rejects_non_mapping(self):
        with pytest.raises(InvalidInputError, match="must be an object"):
            ObjectInfo.from_dict(["k"])  # type: ignore[arg-type]


# --------------------------------------------------------------------------- list_objects


@pytest.fixture
def populated(s3_access_point):
    keys = [
        "designs/a/top.gds",
        "designs/a/top.GDS2",
        "designs/b/chip.oas",
        "designs/b/chip.OASIS",
        "designs/b/readme.txt",
        "designs/b/",  # a directory marker
        "other/x.gds",
        "designs/c/notgds",
    ]
    for key in keys:
        s3_access_point.put(key, b"" if key.endswith("/") else key.encode())
    return s3_access_point


class TestListObjects:
    def test_everything_through_the_access_point_arn(self, populated):
        listed = list(list_objects(populated.s3, populated.arn))
        assert [o.key for o in listed] == sorted(
            [
                "designs/a/top.gds",
                "designs/a/top.GDS2",
                "designs/b/chip.oas",
                "designs/b/chip.OASIS",
                "designs/b/readme.txt",
                "other/x.gds",
                "designs/c/notgds",
            ]
        )
        first = listed[0]
        assert first.size == len(first.key)
        assert '"' not in first.etag
        assert len(first.etag) == 32
        assert first.last_modified.endswith("Z")
        dt.datetime.fromisoformat(first.last_modified)

    def test_prefix_and_case_insensitive_suffixes(self, populated):
        listed = list_objects(
            populated.s3, populated.arn, prefix="designs/", suffixes=(".GDS", ".gds2", ".oas", ".oasis")
        )
        assert [o.key for o in listed] == [
            "designs/a/top.GDS2",
            "designs/a/top.gds",
            "designs/b/chip.OASIS",
            "designs/b/chip.oas",
        ]

    def test_single_suffix_string(self, populated):
        assert [o.key for o in list_objects(populated.s3, populated.arn, suffixes=".txt")] == ["designs/b/readme.txt"]

    def test_pagination_and_limit(self, populated):
        every = [o.key for o in list_objects(populated.s3, populated.arn, page_size=2)]
        assert len(every) == 7
        assert every == sorted(every)
        assert [o.key for o in list_objects(populated.s3, populated.arn, page_size=2, limit=3)] == every[:3]
        assert list(list_objects(populated.s3, populated.arn, limit=0)) == []
        assert [o.key for o in list_objects(populated.s3, populated.arn, limit=100)] == every

    def test_start_after(self, populated):
        keys = [o.key for o in list_objects(populated.s3, populated.arn, start_after="designs/b/chip.oas")]
        assert keys[0] == "designs/b/readme.txt"

    def test_empty(self, s3_access_point):
        assert list(list_objects(s3_access_point.s3, s3_access_point.arn, prefix="nothing/")) == []

    def test_missing_bucket_is_not_found(self, aws):
        from shared import aws as shared_aws

        with pytest.raises(NotFoundError) as info:
            list(list_objects(shared_aws.client("s3"), "no-such-bucket-here"))
        assert isinstance(info.value.__cause__, ClientError)

    @pytest.mark.parametrize(
        "kwargs",
        [
            {"suffixes": ("",)},
            {"suffixes": (".gds", None)},
            {"limit": -1},
            {"limit": True},
            {"page_size": 0},
            {"page_size": 1001},
        ],
    )
    def test_invalid_arguments(self, kwargs):
        with pytest.raises(InvalidInputError):
            list(list_objects(fake_pages([]), ARN, **kwargs))


class _FakePages:
    """A client whose ListObjectsV2 paginator serves given pages and counts what it served."""

    def __init__(self, pages: list[list[str]], fail_on_page: int | None = None, error: Exception | None = None):
        self.pages = pages
        self.fail_on_page = fail_on_page
        self.error = error
        self.served = 0
        self.params: dict[str, Any] = {}

    def get_paginator(self, name: str) -> _FakePages:
        assert name == "list_objects_v2"
        return self

    def paginate(self, **params: Any):
        self.params = params
        for number, keys in enumerate(self.pages):
            if number == self.fail_on_page:
                assert self.error is not None
                raise self.error
            self.served += 1
            yield {
                "Contents": [
                    {"Key": k, "Size": 1, "ETag": '"e"', "LastModified": dt.datetime(2024, 1, 1, tzinfo=dt.UTC)}
                    for k in keys
                ]
            }


def fake_pages(pages: list[list[str]], fail_on_page: int | None = None, error: Exception | None = None) -> Any:
    return _FakePages(pages, fail_on_page, error)


class TestListObjectsWithFakes:
    def test_no_page_is_fetched_after_the_limit(self):
        fake = fake_pages([["a", "b", "c"], ["d"], ["e"]])
        assert [o.key for o in list_objects(fake, ARN, limit=2)] == ["a", "b"]
        assert fake.served == 1
        assert fake.params == {"Bucket": ARN, "Prefix": "", "PaginationConfig": {"PageSize": 1000}}

    def test_consumer_stopping_early_stops_fetching(self):
        fake = fake_pages([["a"], ["b"], ["c"]])
        listing = list_objects(fake, ARN)
        assert next(listing).key == "a"
        listing.close()
        assert fake.served == 1

    @pytest.mark.parametrize(
        ("error", "expected"),
        [
            (client_error("SlowDown", 503), ThrottlingError),
            (client_error("InternalError", 500), ServiceUnavailableError),
            (client_error("AccessDenied", 403), AccessDeniedError),
            (client_error("NoSuchAccessPoint", 404), NotFoundError),
        ],
    )
    def test_errors_mid_listing_are_typed_after_earlier_items(self, error, expected):
        fake = fake_pages([["a", "b"], ["c"]], fail_on_page=1, error=error)
        seen: list[str] = []
        with pytest.raises(expected) as info:
            seen.extend(obj.key for obj in list_objects(fake, ARN))
        assert seen == ["a", "b"]
        assert info.value.__cause__ is error
        assert info.value.details["operation"] == "ListObjectsV2"


# --------------------------------------------------------------------------- ManifestWriter


@pytest.fixture
def out(output_bucket, aws):
    from shared import aws as shared_aws

    return output_bucket, shared_aws.client("s3")


def _records(n: int, pad: int = 0) -> list[dict[str, Any]]:
    return [{"key": f"designs/{i:07d}/top.gds", "size": i, "note": "ü" + "x" * pad} for i in range(n)]


def _body(s3: Any, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def _pending_uploads(s3: Any, bucket: str) -> list[Any]:
    return s3.list_multipart_uploads(Bucket=bucket).get("Uploads", [])


def _write(
    s3: Any,
    bucket: str,
    records: list[Any],
    *,
    part_size: int = s3ap.DEFAULT_PART_SIZE,
    then_raise: Exception | None = None,
) -> ManifestWriter:
    """Write ``records`` inside the context manager, then optionally raise from the block."""
    with ManifestWriter(s3, bucket, "m.jsonl", part_size=part_size) as manifest:
        for record in records:
            manifest.write(record)
        if then_raise is not None:
            raise then_raise
    return manifest


class TestManifestWriter:
    def test_small_manifest_is_one_put(self, out):
        bucket, real = out
        s3 = recording(real)
        records = _records(3)
        with ManifestWriter(s3, bucket, "manifests/e1/manifest.jsonl") as manifest:
            for r in records:
                manifest.write(r)
            assert manifest.count == 3
        assert s3.calls == ["put_object"]
        body = _body(real, bucket, "manifests/e1/manifest.jsonl")
        assert body.decode().splitlines() == [json.dumps(r, ensure_ascii=False, separators=(",", ":")) for r in records]
        assert body.endswith(b"\n")
        assert manifest.result == s3ap.ManifestInfo(bucket, "manifests/e1/manifest.jsonl", 3, len(body))
        assert manifest.result.to_dict() == {
            "bucket": bucket,
            "key": "manifests/e1/manifest.jsonl",
            "count": 3,
            "bytes": len(body),
        }
        head = real.head_object(Bucket=bucket, Key="manifests/e1/manifest.jsonl")
        assert head["ContentType"] == "application/jsonl"

    def test_empty_manifest_is_an_empty_object(self, out):
        bucket, s3 = out
        with ManifestWriter(s3, bucket, "m.jsonl") as manifest:
            pass
        assert manifest.result.count == 0
        assert _body(s3, bucket, "m.jsonl") == b""

    def test_large_manifest_is_multipart_and_round_trips(self, out):
        bucket, real = out
        s3 = recording(real)
        records = _records(60_000, pad=150)  # about 12 MiB: two full 5 MiB parts and a tail
        with ManifestWriter(s3, bucket, "big.jsonl", part_size=5 * MiB) as manifest:
            for r in records:
                manifest.write(r)
        assert s3.calls[0] == "create_multipart_upload"
        assert s3.calls.count("upload_part") == 3
        assert s3.calls[-1] == "complete_multipart_upload"
        assert "put_object" not in s3.calls
        assert real.head_object(Bucket=bucket, Key="big.jsonl")["ETag"].endswith('-3"')
        assert manifest.result.count == 60_000
        assert manifest.result.bytes == real.head_object(Bucket=bucket, Key="big.jsonl")["ContentLength"]
        assert list(read_manifest(real, bucket, "big.jsonl")) == records
        assert _pending_uploads(real, bucket) == []

    def test_extra_args_reach_s3(self, out):
        bucket, s3 = out
        with ManifestWriter(s3, bucket, "enc.jsonl", extra_args={"ServerSideEncryption": "AES256"}) as manifest:
            manifest.write({"a": 1})
        assert s3.head_object(Bucket=bucket, Key="enc.jsonl")["ServerSideEncryption"] == "AES256"

    def test_exception_in_the_block_before_any_part_writes_nothing(self, out):
        bucket, real = out
        s3 = recording(real)
        with pytest.raises(KeyError):
            _write(s3, bucket, [{"a": 1}], then_raise=KeyError("boom"))
        assert s3.calls == []
        assert real.list_objects_v2(Bucket=bucket).get("KeyCount") == 0

    def test_result_before_completion(self, out):
        bucket, s3 = out
        manifest = ManifestWriter(s3, bucket, "m.jsonl")
        with pytest.raises(RuntimeError, match="not been completed"):
            _ = manifest.result

    def test_exception_after_parts_aborts_the_upload(self, out):
        bucket, real = out
        s3 = recording(real)
        with pytest.raises(ValueError, match="boom"):
            _write(s3, bucket, _records(30_000, pad=150), part_size=5 * MiB, then_raise=ValueError("boom"))
        assert s3.calls.count("upload_part") >= 1
        assert s3.calls[-1] == "abort_multipart_upload"
        assert _pending_uploads(real, bucket) == []
        assert real.list_objects_v2(Bucket=bucket).get("KeyCount") == 0

    @pytest.mark.parametrize("failing", ["upload_part", "complete_multipart_upload", "create_multipart_upload"])
    def test_failing_upload_call_is_typed_and_aborted(self, out, failing):
        bucket, real = out
        s3 = recording(real, fail={failing: client_error("InternalError", 500)})
        with pytest.raises(ServiceUnavailableError) as info:
            _write(s3, bucket, _records(30_000, pad=150), part_size=5 * MiB)
        assert isinstance(info.value.__cause__, ClientError)
        if failing != "create_multipart_upload":
            assert s3.calls[-1] == "abort_multipart_upload"
        assert _pending_uploads(real, bucket) == []
        assert real.list_objects_v2(Bucket=bucket).get("KeyCount") == 0

    def test_failing_put_is_typed(self, out):
        bucket, real = out
        s3 = recording(real, fail={"put_object": client_error("AccessDenied", 403)})
        with pytest.raises(AccessDeniedError):
            _write(s3, bucket, [{"a": 1}])
        assert s3.calls == ["put_object"]

    def test_failing_abort_keeps_the_original_error(self, out, caplog):
        bucket, real = out
        s3 = recording(real, fail={"abort_multipart_upload": client_error("InternalError", 500)})
        with pytest.raises(ValueError, match="boom") as info:
            _write(s3, bucket, _records(30_000, pad=150), part_size=5 * MiB, then_raise=ValueError("boom"))
        assert any("aborting multipart upload" in note for note in info.value.__notes__)
        assert "could not abort multipart upload" in caplog.text

    def test_failing_abort_names_the_orphaned_upload_on_a_typed_error(self, out, caplog):
        bucket, real = out
        s3 = recording(real, fail={"abort_multipart_upload": client_error("InternalError", 500)})
        with pytest.raises(ServiceUnavailableError) as info:
            _write(s3, bucket, _records(30_000, pad=150), part_size=5 * MiB,
                   then_raise=ServiceUnavailableError("listing failed"))
        upload_id = info.value.details["orphaned_upload_id"]
        assert upload_id
        assert upload_id in caplog.text
        uploads = real.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
        assert [u["UploadId"] for u in uploads] == [upload_id]  # what the lifecycle rule must clean up

    def test_failing_abort_without_a_cause_raises_typed(self, out):
        bucket, real = out
        s3 = recording(real, fail={"abort_multipart_upload": client_error("InternalError", 500)})
        writer = ManifestWriter(s3, bucket, "m.jsonl", part_size=5 * MiB)
        for record in _records(30_000, pad=150):
            writer.write(record)
        with pytest.raises(ServiceUnavailableError):
            writer.abort()

    @pytest.mark.parametrize(
        ("record", "match"),
        [
            ({"x": {1, 2}}, "not JSON-serializable"),
            ({"x": float("nan")}, "not JSON-serializable"),
            ({"x": float("inf")}, "not JSON-serializable"),
            (["not", "a", "mapping"], "must be a mapping"),
        ],
    )
    def test_bad_records(self, out, record, match):
        bucket, s3 = out
        with pytest.raises(InvalidInputError, match=match):
            _write(s3, bucket, [{"ok": 1}, record])
        assert s3.list_objects_v2(Bucket=bucket).get("KeyCount") == 0

    def test_write_after_close(self, out):
        bucket, s3 = out
        manifest = ManifestWriter(s3, bucket, "m.jsonl")
        first = manifest.close()
        assert manifest.close() is first
        with pytest.raises(RuntimeError, match="closed"):
            manifest.write({"a": 1})

    @pytest.mark.parametrize("part_size", [5 * MiB - 1, 0, 6 * 1024 * MiB, True, 5.5 * MiB])
    def test_part_size_bounds(self, part_size):
        with pytest.raises(ValueError, match="part_size"):
            ManifestWriter(fake_pages([]), "b", "k", part_size=part_size)

    def test_bucket_and_key_required(self):
        with pytest.raises(InvalidInputError):
            ManifestWriter(fake_pages([]), "", "k")


# --------------------------------------------------------------------------- read_manifest


class FakeBody:
    def __init__(self, data: bytes, fail_after: int | None = None) -> None:
        self._inner = StreamingBody(io.BytesIO(data), len(data))
        self.fail_after = fail_after
        self.closed = False

    def iter_chunks(self, chunk_size: int = 1024):
        """One chunk per line (its ``\\n`` kept), so ``fail_after`` counts lines."""
        for number, line in enumerate(self._inner.read().splitlines(keepends=True)):
            if self.fail_after is not None and number >= self.fail_after:
                raise ResponseStreamingError(error="connection reset")
            yield line

    def close(self) -> None:
        self.closed = True


class _FakeGet:
    def __init__(self, body: FakeBody | None = None, error: Exception | None = None) -> None:
        self.body = body
        self.error = error

    def get_object(self, **_: Any) -> dict[str, Any]:
        if self.error is not None:
            raise self.error
        return {"Body": self.body}


def fake_get(body: FakeBody | None = None, error: Exception | None = None) -> Any:
    return _FakeGet(body, error)


class TestReadManifest:
    def test_blank_and_crlf_lines(self):
        body = FakeBody(b'{"a":1}\r\n\n   \n{"b":"\xc3\xbc"}')
        assert list(read_manifest(fake_get(body), "b", "k")) == [{"a": 1}, {"b": "ü"}]
        assert body.closed

    def test_invalid_json_names_the_line(self):
        body = FakeBody(b'{"a":1}\n{"a":\n')
        with pytest.raises(InvalidFileError, match="line 2 is not valid JSON") as info:
            list(read_manifest(fake_get(body), "b", "k"))
        assert info.value.details == {"bucket": "b", "key": "k", "line": 2}
        assert body.closed

    def test_non_object_line(self):
        with pytest.raises(InvalidFileError, match="line 1 is not a JSON object"):
            list(read_manifest(fake_get(FakeBody(b"[1,2]\n")), "b", "k"))

    def test_stream_error_is_transient(self):
        body = FakeBody(b'{"a":1}\n{"a":2}\n{"a":3}\n', fail_after=1)
        got: list[dict[str, Any]] = []
        with pytest.raises(ServiceUnavailableError):
            got.extend(read_manifest(fake_get(body), "b", "k"))
        assert body.closed

    def test_consumer_stopping_early_closes_the_body(self):
        body = FakeBody(b'{"a":1}\n{"a":2}\n')
        records = read_manifest(fake_get(body), "b", "k")
        assert next(records) == {"a": 1}
        records.close()
        assert body.closed

    def test_missing_manifest(self, out):
        bucket, s3 = out
        with pytest.raises(NotFoundError) as info:
            list(read_manifest(s3, bucket, "missing.jsonl"))
        assert info.value.details["operation"] == "GetObject"

    def test_get_error_is_typed(self):
        with pytest.raises(ThrottlingError):
            list(read_manifest(fake_get(error=client_error("SlowDown", 503)), "b", "k"))


class TestManifestLineBreaks:
    KEYS = ("a\u2028b.gds", "c\u2029d.oas", "e\x85f.gds", "g\rh\ni.gds", "j\x0bk\x0cl\x1cm\x1dn\x1eo.gds")

    def test_keys_with_line_separators_stay_on_their_line(self, out):
        bucket, s3 = out
        items = [ObjectInfo(key=k, size=1, etag="e", last_modified="2026-01-01T00:00:00.000Z").to_dict()
                 for k in self.KEYS]
        with ManifestWriter(s3, bucket, "m.jsonl") as manifest:
            for item in items:
                manifest.write(item)
        body = s3.get_object(Bucket=bucket, Key="m.jsonl")["Body"].read()
        assert len(body.decode().splitlines()) == len(items)
        assert "\\u2028" in body.decode()  # escaped, not raw
        assert "\u2028" not in body.decode()
        assert list(read_manifest(s3, bucket, "m.jsonl")) == items

    def test_a_raw_separator_from_another_writer_does_not_split_the_record(self):
        data = ('{"key":"a\u2028b"}\n{"key":"c\u0085d"}\n').encode()
        assert list(read_manifest(fake_get(FakeBody(data)), "b", "k")) == [{"key": "a\u2028b"}, {"key": "c\u0085d"}]

    def test_an_overlong_line_is_refused_naming_it(self):
        data = b'{"a":1}\n' + b'{"a":"' + b"x" * 5000
        with pytest.raises(InvalidFileError, match="line 2 is longer than 1000 bytes") as info:
            list(read_manifest(fake_get(FakeBody(data)), "b", "k", max_line_bytes=1000))
        assert info.value.details["line"] == 2

    def test_a_last_line_without_newline_is_read(self):
        assert list(read_manifest(fake_get(FakeBody(b'{"a":1}\n{"a":2}')), "b", "k")) == [{"a": 1}, {"a": 2}]
