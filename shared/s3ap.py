"""S3 access points (FSx for ONTAP volumes exposed through S3): addressing, listing, manifests.

- ``AccessPoint``: a parsed, validated access point ARN. Handlers pass ``ap.arn`` as ``Bucket=``;
  IAM policies grant on ``ap.arn`` and ``ap.object_arn_pattern``. Aliases are recognised
  (``is_access_point_alias``) but refused where an ARN is needed: a policy on an alias resource
  authorizes nothing.
- ``list_objects``: the ``ListObjectsV2`` paginator as a generator, so the caller never holds more
  than one page.
- ``ManifestWriter`` / ``read_manifest``: JSONL streamed to and from S3 with memory bounded by the
  part size, never by the number of records. A Distributed Map reads the manifest through its
  ``ItemReader`` (``InputType: JSONL``), which keeps object lists out of the state payload.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Generator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

from shared.aws import mapped_errors
from shared.errors import InvalidFileError, InvalidInputError, PermanentError, PipelineError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

logger = logging.getLogger(__name__)

MiB = 1024 * 1024
MIN_PART_SIZE = 5 * MiB  # S3's minimum for every part but the last
MAX_PART_SIZE = 5 * 1024 * MiB
MAX_PARTS = 10_000
DEFAULT_PART_SIZE = 8 * MiB
MANIFEST_CONTENT_TYPE = "application/jsonl"
# Same default as s3transfer: an explicit algorithm on the upload lets CompleteMultipartUpload
# carry each part's checksum, so S3 verifies the assembled object.
_CHECKSUM_ALGORITHM: Final = "CRC32"

# Compact lines; strict JSON (NaN/Infinity are not JSON and Step Functions would reject the line).
# Built once: json.dumps with options constructs a new encoder for every record.
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)
# With ensure_ascii=False, JSON leaves these raw inside strings, and str.splitlines() (and other
# line splitters) break a line at each: written as \uXXXX escapes, every record stays one line
# for any reader. (The C0 ones JSON escapes anyway; listed for completeness.)
LINE_BREAKING_CHARACTERS = "\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_LINE_BREAK_ESCAPES = {ord(c): f"\\u{ord(c):04x}" for c in LINE_BREAKING_CHARACTERS}
# A manifest line is one record (a few hundred bytes); far longer is a corrupt or foreign file.
MAX_MANIFEST_LINE_BYTES = 1 * MiB

_PARTITION_REGION_PREFIXES: dict[str, tuple[str, ...]] = {
    "aws": (),  # any region that does not belong to another partition
    "aws-cn": ("cn-",),
    "aws-us-gov": ("us-gov-",),
}
_OTHER_PARTITION_PREFIXES = ("cn-", "us-gov-")
_REGION_RE = re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}")
_ACCOUNT_RE = re.compile(r"[0-9]{12}")
# Access point names: 3-50 characters, lowercase letters, digits and hyphens, beginning and
# ending with a letter or digit (S3 naming rules; the AWS::FSx::S3AccessPointAttachment pattern).
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,48}[a-z0-9]")
# Aliases look like bucket names (at most 63 characters): "<name>-<random>-s3alias" for
# access points on buckets, "<name>-<random>-ext-s3alias" for FSx for ONTAP volumes.
_ALIAS_RE = re.compile(r"(?=.{3,63}\Z)[a-z0-9][a-z0-9-]*-(?:ext-)?s3alias")
_FSX_ALIAS_SUFFIX = "-ext-s3alias"


def is_access_point_alias(value: object) -> bool:
    """True for an access point alias (``...-s3alias``, or ``...-ext-s3alias`` on FSx for ONTAP)."""
    return isinstance(value, str) and _ALIAS_RE.fullmatch(value) is not None


def is_fsx_access_point_alias(value: object) -> bool:
    """True for the alias of an access point attached to an FSx volume (``...-ext-s3alias``)."""
    return is_access_point_alias(value) and str(value).endswith(_FSX_ALIAS_SUFFIX)


@dataclass(frozen=True, slots=True)
class AccessPoint:
    """A validated S3 access point ARN: ``arn:<partition>:s3:<region>:<account>:accesspoint/<name>``."""

    partition: str
    region: str
    account: str
    name: str

    @classmethod
    def parse(cls, value: object) -> AccessPoint:
        """Parse and validate an access point ARN; raise ``InvalidInputError`` saying what is wrong."""
        if not isinstance(value, str):
            raise InvalidInputError(f"access point ARN must be a string, got {type(value).__name__}")
        if is_access_point_alias(value):
            raise InvalidInputError(
                f"{value!r} is an access point alias; give the access point ARN "
                "(IAM policies on an alias resource authorize nothing)",
                value=value,
            )
        parts = value.split(":", 5)
        if len(parts) != 6 or parts[0] != "arn" or parts[2] != "s3":
            raise InvalidInputError(
                f"{value!r} is not an S3 access point ARN (arn:<partition>:s3:<region>:<account>:accesspoint/<name>)",
                value=value,
            )
        _, partition, _, region, account, resource = parts
        if not region and not account:
            raise InvalidInputError(
                f"{value!r} is a bucket or object ARN, not an S3 access point ARN "
                "(arn:<partition>:s3:<region>:<account>:accesspoint/<name>)",
                value=value,
            )
        if partition not in _PARTITION_REGION_PREFIXES:
            raise InvalidInputError(
                f"{value!r}: unknown partition {partition!r} (aws, aws-cn, aws-us-gov)", value=value
            )
        if _REGION_RE.fullmatch(region) is None:
            raise InvalidInputError(f"{value!r}: invalid region {region!r}", value=value)
        prefixes = _PARTITION_REGION_PREFIXES[partition]
        in_partition = region.startswith(prefixes) if prefixes else not region.startswith(_OTHER_PARTITION_PREFIXES)
        if not in_partition:
            raise InvalidInputError(f"{value!r}: region {region!r} is not in partition {partition!r}", value=value)
        if _ACCOUNT_RE.fullmatch(account) is None:
            raise InvalidInputError(f"{value!r}: account must be 12 digits, got {account!r}", value=value)
        kind, _, name = resource.partition("/")
        if kind != "accesspoint":
            raise InvalidInputError(f"{value!r}: resource must be accesspoint/<name>", value=value)
        if _NAME_RE.fullmatch(name) is None or name.endswith("-s3alias"):
            raise InvalidInputError(
                f"{value!r}: invalid access point name {name!r} (3-50 lowercase letters, digits or "
                "hyphens, beginning and ending with a letter or digit, not ending in -s3alias)",
                value=value,
            )
        return cls(partition=partition, region=region, account=account, name=name)

    @property
    def arn(self) -> str:
        """The ARN; pass it as ``Bucket=`` to S3 calls and as the IAM resource of the access point."""
        return f"arn:{self.partition}:s3:{self.region}:{self.account}:accesspoint/{self.name}"

    @property
    def object_arn_pattern(self) -> str:
        """IAM resource for every object reached through the access point."""
        return f"{self.arn}/object/*"

    def __str__(self) -> str:
        return self.arn


def _iso_utc(value: dt.datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ``; a naive value is taken as UTC (botocore's are aware)."""
    if value.tzinfo is None:
        return value.isoformat(timespec="milliseconds") + "Z"
    return value.astimezone(dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"  # drop "+00:00"


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """One listed object: key, size in bytes, ETag without quotes, last modified (ISO-8601 UTC)."""

    key: str
    size: int
    etag: str
    last_modified: str

    @classmethod
    def from_listing(cls, item: Mapping[str, Any]) -> ObjectInfo:
        """From one ``Contents`` entry of a ``ListObjectsV2`` reply."""
        modified = item["LastModified"]
        return cls(
            key=item["Key"],
            size=int(item["Size"]),
            etag=str(item.get("ETag", "")).strip('"'),
            last_modified=_iso_utc(modified) if isinstance(modified, dt.datetime) else str(modified),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "size": self.size, "etag": self.etag, "last_modified": self.last_modified}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ObjectInfo:
        """Inverse of ``to_dict``; raise ``InvalidInputError`` on a malformed item (e.g. a Map item)."""
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"object item must be an object, got {type(data).__name__}")
        key, size, etag, modified = (data.get(k) for k in ("key", "size", "etag", "last_modified"))
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"object item: 'key' must be a non-empty string, got {key!r}")
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidInputError(f"object item {key!r}: 'size' must be an integer >= 0, got {size!r}")
        if not isinstance(etag, str):
            raise InvalidInputError(f"object item {key!r}: 'etag' must be a string, got {etag!r}")
        if not isinstance(modified, str):
            raise InvalidInputError(f"object item {key!r}: 'last_modified' must be a string, got {modified!r}")
        try:
            dt.datetime.fromisoformat(modified)
        except ValueError as e:
            raise InvalidInputError(f"object item {key!r}: 'last_modified' is not ISO-8601: {modified!r}") from e
        return cls(key=key, size=size, etag=etag, last_modified=modified)


def _normalise_suffixes(suffixes: str | Iterable[str]) -> tuple[str, ...]:
    items = (suffixes,) if isinstance(suffixes, str) else tuple(suffixes)
    for suffix in items:
        if not isinstance(suffix, str) or not suffix:
            # An empty suffix would match every key and silently disable the filter.
            raise InvalidInputError(f"suffixes must be non-empty strings, got {suffix!r}")
    return tuple(s.lower() for s in items)


def list_objects(
    s3: S3Client,
    bucket: str,
    *,
    prefix: str = "",
    suffixes: str | Iterable[str] = (),
    limit: int | None = None,
    start_after: str = "",
    page_size: int = 1000,
) -> Generator[ObjectInfo]:
    """Yield the objects under ``prefix`` whose key ends with one of ``suffixes`` (any case).

    ``bucket`` is an access point ARN (or a bucket name). Keys ending in ``/`` (directory
    markers) are skipped. At most ``limit`` objects are yielded and no page is fetched after the
    limit is reached. Service errors are raised as typed ``shared.errors`` (``ListObjectsV2``).
    """
    wanted = _normalise_suffixes(suffixes)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidInputError(f"limit must be an integer >= 0 or None, got {limit!r}")
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= 1000:
        raise InvalidInputError(f"page_size must be an integer between 1 and 1000, got {page_size!r}")
    if limit == 0:
        return
    params: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "PaginationConfig": {"PageSize": page_size}}
    if start_after:
        params["StartAfter"] = start_after
    yielded = 0
    with mapped_errors("ListObjectsV2"):
        pages = iter(s3.get_paginator("list_objects_v2").paginate(**params))
    while True:
        with mapped_errors("ListObjectsV2"):
            page = next(pages, None)
        if page is None:
            return
        for item in page.get("Contents", ()):
            key = item["Key"]
            if key.endswith("/") or (wanted and not key.lower().endswith(wanted)):
                continue
            yield ObjectInfo.from_listing(item)
            yielded += 1
            if limit is not None and yielded >= limit:
                return


@dataclass(frozen=True, slots=True)
class ManifestInfo:
    """Where a finished manifest is and what it holds; ``to_dict`` is what a handler returns."""

    bucket: str
    key: str
    count: int
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "key": self.key, "count": self.count, "bytes": self.bytes}


@dataclass(slots=True)
class _Upload:
    upload_id: str
    parts: list[dict[str, Any]] = field(default_factory=list)


class ManifestWriter:
    """Stream JSON records to ``s3://bucket/key`` as JSONL, holding at most about one part in memory.

    Small manifests are written with one ``PutObject`` on close. Once the buffer reaches
    ``part_size`` a multipart upload starts and each full buffer becomes a part. If the block
    raises, or any upload call fails, the multipart upload is aborted, so a partial manifest is
    never visible. Use it as a context manager; ``result`` is set when it closes cleanly::

        with ManifestWriter(s3, bucket, key) as manifest:
            for obj in list_objects(s3, ap.arn, suffixes=(".gds",)):
                manifest.write(obj.to_dict())
        return manifest.result.to_dict()

    ``extra_args`` go to ``PutObject``/``CreateMultipartUpload`` (e.g. ``ServerSideEncryption``).
    """

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        key: str,
        *,
        part_size: int = DEFAULT_PART_SIZE,
        extra_args: Mapping[str, Any] | None = None,
    ) -> None:
        if isinstance(part_size, bool) or not isinstance(part_size, int):
            raise ValueError(f"part_size must be an integer, got {part_size!r}")
        if not MIN_PART_SIZE <= part_size <= MAX_PART_SIZE:
            raise ValueError(f"part_size must be between {MIN_PART_SIZE} and {MAX_PART_SIZE} bytes")
        if not bucket or not key:
            raise InvalidInputError("manifest bucket and key must be non-empty", bucket=bucket, key=key)
        self._s3 = s3
        self.bucket = bucket
        self.key = key
        self.part_size = part_size
        self._extra_args = dict(extra_args or {})
        self._buffer = bytearray()
        self._upload: _Upload | None = None
        self._count = 0
        self._bytes = 0
        self._closed = False
        self._result: ManifestInfo | None = None

    @property
    def result(self) -> ManifestInfo:
        if self._result is None:
            raise RuntimeError("the manifest has not been completed")
        return self._result

    @property
    def count(self) -> int:
        """Records written so far."""
        return self._count

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.close()
        else:
            self.abort(exc)

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one record (a JSON object) as one line."""
        if self._closed:
            raise RuntimeError("write to a closed manifest")
        if not isinstance(record, Mapping):
            raise InvalidInputError(f"manifest record must be a mapping, got {type(record).__name__}")
        try:
            line = _ENCODER.encode(record)
            # JSON escapes every C0 control character, so only a non-ASCII line can hold a raw
            # line break; skipping translate() for ASCII lines is most of the writer's CPU time.
            if not line.isascii():
                line = line.translate(_LINE_BREAK_ESCAPES)
        except (TypeError, ValueError) as e:
            raise InvalidInputError(f"manifest record {self._count} is not JSON-serializable: {e}") from e
        size = len(self._buffer)
        self._buffer += line.encode("utf-8")
        self._buffer += b"\n"
        self._count += 1
        self._bytes += len(self._buffer) - size
        if len(self._buffer) >= self.part_size:
            self._upload_part()

    def close(self) -> ManifestInfo:
        """Finish the object (PutObject, or the last part and CompleteMultipartUpload)."""
        if self._closed:
            return self.result
        self._closed = True
        try:
            if self._upload is None:
                body = bytes(self._buffer)
                self._buffer.clear()
                with mapped_errors("PutObject"):
                    self._s3.put_object(
                        Bucket=self.bucket,
                        Key=self.key,
                        Body=body,
                        ContentType=MANIFEST_CONTENT_TYPE,
                        **self._extra_args,
                    )
            else:
                if self._buffer:
                    self._upload_part()
                with mapped_errors("CompleteMultipartUpload"):
                    self._s3.complete_multipart_upload(
                        Bucket=self.bucket,
                        Key=self.key,
                        UploadId=self._upload.upload_id,
                        MultipartUpload={"Parts": self._upload.parts},  # type: ignore[typeddict-item]
                    )
        except BaseException as e:
            self.abort(e)
            raise
        self._upload = None
        self._result = ManifestInfo(self.bucket, self.key, self._count, self._bytes)
        return self._result

    def abort(self, cause: BaseException | None = None) -> None:
        """Drop buffered data and abort the multipart upload, if one was started.

        A failing abort does not replace ``cause``: it is logged with the upload id and noted on
        ``cause`` (a ``PipelineError`` also gets ``details["orphaned_upload_id"]``); without a
        cause the abort's error is raised. The orphaned parts stay (and bill) until a lifecycle
        rule with ``AbortIncompleteMultipartUpload`` removes them: the stack's own output bucket
        has one; add one to an existing bucket (see the use case README).
        """
        self._closed = True
        self._buffer.clear()
        upload, self._upload = self._upload, None
        if upload is None:
            return
        try:
            with mapped_errors("AbortMultipartUpload"):
                self._s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload.upload_id)
        except Exception as abort_error:
            logger.exception(
                "could not abort multipart upload %s of s3://%s/%s", upload.upload_id, self.bucket, self.key
            )
            if cause is None:
                raise
            cause.add_note(f"aborting multipart upload {upload.upload_id} also failed: {abort_error!r}")
            if isinstance(cause, PipelineError):
                cause.details["orphaned_upload_id"] = upload.upload_id

    def _upload_part(self) -> None:
        if self._upload is None:
            with mapped_errors("CreateMultipartUpload"):
                created = self._s3.create_multipart_upload(
                    Bucket=self.bucket,
                    Key=self.key,
                    ContentType=MANIFEST_CONTENT_TYPE,
                    ChecksumAlgorithm=_CHECKSUM_ALGORITHM,
                    **self._extra_args,
                )
            self._upload = _Upload(created["UploadId"])
        number = len(self._upload.parts) + 1
        if number > MAX_PARTS:
            raise PermanentError(
                f"manifest s3://{self.bucket}/{self.key} needs more than {MAX_PARTS} parts; raise part_size",
                bucket=self.bucket,
                key=self.key,
            )
        body = bytes(self._buffer)
        self._buffer.clear()
        with mapped_errors("UploadPart"):
            reply = self._s3.upload_part(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self._upload.upload_id,
                PartNumber=number,
                Body=body,
                ChecksumAlgorithm=_CHECKSUM_ALGORITHM,
            )
        part: dict[str, Any] = {"ETag": reply["ETag"], "PartNumber": number}
        if "ChecksumCRC32" in reply:
            part["ChecksumCRC32"] = reply["ChecksumCRC32"]
        self._upload.parts.append(part)


def _lines(chunks: Iterator[bytes], *, max_line_bytes: int, bucket: str, key: str) -> Generator[bytes]:
    """Split a byte stream on ``\\n`` only (never on other line separators), bounded per line."""
    pending = bytearray()
    number = 0
    while True:
        with mapped_errors("GetObject"):
            chunk = next(chunks, None)
        if chunk is None:
            break
        pending += chunk
        start = 0
        while (end := pending.find(b"\n", start)) >= 0:
            number += 1
            yield bytes(pending[start:end])
            start = end + 1
        del pending[:start]
        if len(pending) > max_line_bytes:
            raise InvalidFileError(
                f"s3://{bucket}/{key} line {number + 1} is longer than {max_line_bytes} bytes",
                bucket=bucket,
                key=key,
                line=number + 1,
            )
    if pending:
        yield bytes(pending)


def read_manifest(
    s3: S3Client,
    bucket: str,
    key: str,
    *,
    chunk_size: int = 64 * 1024,
    max_line_bytes: int = MAX_MANIFEST_LINE_BYTES,
) -> Generator[dict[str, Any]]:
    """Yield the records of a JSONL manifest, streaming the body (blank lines are skipped).

    Lines end at ``\\n`` only: a record holding U+2028 or U+0085 (escaped by ``ManifestWriter``,
    raw from another writer) is never split. A line that is not a JSON object, or longer than
    ``max_line_bytes``, raises ``InvalidFileError`` naming the line number.
    """
    with mapped_errors("GetObject"):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        lines = _lines(body.iter_chunks(chunk_size=chunk_size), max_line_bytes=max_line_bytes, bucket=bucket, key=key)
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as e:
                raise InvalidFileError(
                    f"s3://{bucket}/{key} line {number} is not valid JSON: {e}", bucket=bucket, key=key, line=number
                ) from e
            if not isinstance(record, dict):
                raise InvalidFileError(
                    f"s3://{bucket}/{key} line {number} is not a JSON object", bucket=bucket, key=key, line=number
                )
            yield record
    finally:
        body.close()
