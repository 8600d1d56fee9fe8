"""Per-file metadata extraction over ranged GETs, and the batch loop with per-item failure records.

Every input object gets exactly one result object at
``results/execution_id=<execution id>/<url-quoted full source key>.json``: a ``SUCCEEDED`` record
with the layout metadata, or a ``FAILED`` record naming the typed error (corrupt, truncated,
missing, forbidden). Transient errors (throttling, 5xx, the time budget) are raised instead, so
the Distributed Map's Retry runs the batch again; files whose result already exists are then
skipped, so every retry makes progress and writes stay idempotent.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import gdsii
import oasis
from layout import Decoder, LayoutSummary

from shared.aws import mapped_errors
from shared.errors import (
    InvalidFileError,
    InvalidInputError,
    NotFoundError,
    PermanentError,
    TransientError,
)
from shared.events import validate_execution_id
from shared.s3ap import ObjectInfo

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from shared.retry import Deadline

RESULTS_PREFIX = "results"
# S3 keys are at most 1024 bytes (UTF-8); a quoted key can be three times its source, so long
# ones are shortened and made unique again with a hash of the full source key.
_MAX_KEY_BYTES = 1024
_SUFFIX = ".json"
_MAX_ERROR_MESSAGE = 1000
_CONTENT_RANGE_RE = re.compile(r"bytes \d+-\d+/(\d+)")


def result_key(execution_id: str, source_key: str) -> str:
    """The one result key of ``source_key`` in this execution (full key, so no collisions)."""
    prefix = f"{RESULTS_PREFIX}/execution_id={execution_id}/"
    # The execution name takes up to 320 bytes (80 characters, non-ASCII allowed); the quoted
    # source key (ASCII) gets the rest.
    budget = _MAX_KEY_BYTES - len(prefix.encode("utf-8")) - len(_SUFFIX)
    quoted = quote(source_key, safe="")
    if len(quoted) > budget:
        digest = hashlib.sha256(source_key.encode("utf-8")).hexdigest()
        quoted = f"{quoted[: budget - len(digest) - 1]}~{digest}"
    return f"{prefix}{quoted}{_SUFFIX}"


class RangeReader:
    """A ``ChunkSource`` that reads an object through the access point with ranged GETs.

    Memory is one chunk. The object's current size comes from the first reply's Content-Range
    (the listing may be stale); the deadline is checked before every request.
    """

    def __init__(
        self, s3: S3Client, bucket: str, key: str, size: int, *, chunk_bytes: int, deadline: Deadline
    ) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._key = key
        self.size = size
        self._chunk = chunk_bytes
        self._deadline = deadline
        self.position = 0
        self.requests = 0

    def __call__(self) -> bytes:
        if self.position >= self.size:
            return b""
        self._deadline.check(f"reading {self._key}")
        end = min(self.position + self._chunk, self.size) - 1
        with mapped_errors("GetObject"):
            reply = self._s3.get_object(Bucket=self._bucket, Key=self._key, Range=f"bytes={self.position}-{end}")
            data: bytes = reply["Body"].read()
        self.requests += 1
        match = _CONTENT_RANGE_RE.fullmatch(str(reply.get("ContentRange", "")))
        if match is not None:
            self.size = int(match.group(1))
        if not data:  # the object shrank since it was listed
            self.size = self.position
            return b""
        self.position += len(data)
        return data


def _sniff(first: bytes) -> str | None:
    if first.startswith(oasis.MAGIC):
        return "OASIS"
    if first.startswith(gdsii.MAGIC):
        return "GDSII"
    return None


def extract(reader: Callable[[], bytes], *, label: str) -> LayoutSummary:
    """Detect the format from the content (not the file name) and parse the whole stream."""
    first = b""
    while len(first) < len(oasis.MAGIC):  # enough bytes to recognise either format
        chunk = reader()
        if not chunk:
            break
        first += chunk
    if not first:
        raise InvalidFileError(f"{label} is empty")
    pending = [first]

    def source() -> bytes:
        return pending.pop() if pending else reader()

    kind = _sniff(first)
    try:
        if kind == "OASIS":
            return oasis.parse(oasis.decoder(source, label=label))
        if kind == "GDSII":
            return gdsii.parse(Decoder(source, label=label))
    except zlib.error as e:  # a corrupt CBLOCK
        raise InvalidFileError(f"{label}: corrupt compressed block: {e}") from e
    except OverflowError as e:  # a real number beyond float range
        raise InvalidFileError(f"{label}: number out of range: {e}") from e
    raise InvalidFileError(f"{label} is neither GDSII nor OASIS (first bytes {first[:16]!r})")


@dataclass(frozen=True)
class BatchResult:
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    bytes_read: int = 0

    def to_dict(self, execution_id: str) -> dict[str, Any]:
        return {
            "execution_id": execution_id,
            "processed": self.processed,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "skipped": self.skipped,
            "bytes_read": self.bytes_read,
        }


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def file_record(
    s3: S3Client,
    access_point_arn: str,
    item: ObjectInfo,
    *,
    deadline: Deadline,
    chunk_bytes: int,
    max_names: int,
) -> dict[str, Any]:
    """The result record of one file; raises only transient errors."""
    record: dict[str, Any] = {
        "source_key": item.key,
        "size_bytes": item.size,
        "etag": item.etag,
        "last_modified": item.last_modified,
        "format": None,
        "error_type": None,
        "error_message": None,
    }
    reader = RangeReader(s3, access_point_arn, item.key, item.size, chunk_bytes=chunk_bytes, deadline=deadline)
    try:
        if item.size == 0:
            raise InvalidFileError(f"{item.key} is empty")
        summary = extract(reader, label=item.key)
    except TransientError:
        raise
    except PermanentError as e:
        record.update(
            status="FAILED",
            error_type=type(e).__name__,
            error_message=e.message[:_MAX_ERROR_MESSAGE],
        )
    else:
        record.update(status="SUCCEEDED", **summary.to_record(max_names=max_names))
    record.update(size_bytes=reader.size if reader.requests else item.size, bytes_read=reader.position)
    record["processed_at"] = _now()
    return record


def existing_status(s3: S3Client, bucket: str, key: str) -> str | None:
    """The status of a result written by an earlier attempt of this batch, or None."""
    try:
        with mapped_errors("GetObject"):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except NotFoundError:
        return None
    try:
        status = json.loads(body).get("status")
    except (ValueError, AttributeError):
        return None  # unreadable: process the file again and overwrite it
    return status if status in ("SUCCEEDED", "FAILED") else None


def write_record(s3: S3Client, bucket: str, key: str, record: Mapping[str, Any]) -> None:
    # One line: the table's JSON SerDe reads one object per line.
    body = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    with mapped_errors("PutObject"):
        s3.put_object(Bucket=bucket, Key=key, Body=body + b"\n", ContentType="application/json")


def process_batch(
    s3: S3Client,
    *,
    access_point_arn: str,
    output_bucket: str,
    execution_id: str,
    items: Iterable[ObjectInfo],
    deadline: Deadline,
    chunk_bytes: int,
    max_names: int,
    on_record: Callable[[Mapping[str, Any]], None] = lambda _record: None,
) -> BatchResult:
    processed = succeeded = failed = skipped = bytes_read = 0
    for item in items:
        key = result_key(execution_id, item.key)
        previous = existing_status(s3, output_bucket, key)
        if previous is not None:
            skipped += 1
            succeeded += previous == "SUCCEEDED"
            failed += previous == "FAILED"
            continue
        deadline.check(f"extracting {item.key}")
        record = file_record(
            s3, access_point_arn, item, deadline=deadline, chunk_bytes=chunk_bytes, max_names=max_names
        )
        write_record(s3, output_bucket, key, record)
        on_record(record)
        processed += 1
        bytes_read += int(record["bytes_read"])
        if record["status"] == "SUCCEEDED":
            succeeded += 1
        else:
            failed += 1
    return BatchResult(processed, succeeded, failed, skipped, bytes_read)


def parse_items(event: Mapping[str, Any], *, max_items: int) -> tuple[str, list[ObjectInfo]]:
    """Validate a Distributed Map batch: ``{"Items": [...], "BatchInput": {"execution_id": ...}}``."""
    if not isinstance(event, Mapping):
        raise InvalidInputError(f"event must be an object, got {type(event).__name__}")
    batch_input = event.get("BatchInput")
    if not isinstance(batch_input, Mapping):
        raise InvalidInputError("event.BatchInput must be an object with execution_id")
    execution_id = validate_execution_id(batch_input.get("execution_id"), field="BatchInput.execution_id")
    raw_items = event.get("Items")
    if not isinstance(raw_items, list) or not raw_items:
        raise InvalidInputError("event.Items must be a non-empty list of manifest records")
    if len(raw_items) > max_items:
        raise InvalidInputError(f"event.Items holds {len(raw_items)} items, at most {max_items} are accepted")
    return execution_id, [ObjectInfo.from_dict(item) for item in raw_items]
