"""Per-file metadata extraction over ranged GETs, run through the shared per-item failure boundary.

Every input object gets exactly one result record (``shared.batch``): ``SUCCEEDED`` with the
layout metadata, or ``FAILED`` naming the typed error (corrupt, truncated, missing, forbidden, or
an internal error with its traceback logged). Transient errors (throttling, 5xx, the time budget)
are raised instead, so the Distributed Map's Retry runs the batch again; files whose result
already exists are then skipped, so every retry makes progress and writes stay idempotent.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import gdsii
import oasis
from layout import Decoder, LayoutSummary

from shared.aws import mapped_errors
from shared.batch import BatchResult, Work, process_items
from shared.errors import InvalidFileError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from shared.retry import Deadline
    from shared.s3ap import ObjectInfo

_CONTENT_RANGE_RE = re.compile(r"bytes \d+-\d+/(\d+)")
# Fields every record carries, so the table's columns exist for FAILED records too.
RECORD_DEFAULTS: Mapping[str, Any] = {"format": None}


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


def layout_work(
    s3: S3Client, access_point_arn: str, *, deadline: Deadline, chunk_bytes: int, max_names: int
) -> Work:
    """The work of one file for ``shared.batch.process_items``: read it with ranged GETs, parse it,
    return the layout fields; the size seen and the bytes read are recorded whatever the outcome."""

    def work(item: ObjectInfo, facts: dict[str, Any]) -> Mapping[str, Any]:
        reader = RangeReader(
            s3, access_point_arn, item.key, item.size, chunk_bytes=chunk_bytes, deadline=deadline
        )
        try:
            if item.size == 0:
                raise InvalidFileError(f"{item.key} is empty")
            summary = extract(reader, label=item.key)
            return summary.to_record(max_names=max_names)
        finally:
            facts.update(size_bytes=reader.size if reader.requests else item.size, bytes_read=reader.position)

    return work


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
    on_record: Callable[[Mapping[str, Any]], None] | None = None,
) -> BatchResult:
    """One record per file of the batch; ``BatchResult.totals["bytes_read"]`` sums the bytes read."""
    return process_items(
        items,
        layout_work(s3, access_point_arn, deadline=deadline, chunk_bytes=chunk_bytes, max_names=max_names),
        s3=s3,
        output_bucket=output_bucket,
        execution_id=execution_id,
        deadline=deadline,
        defaults=RECORD_DEFAULTS,
        totals=("bytes_read",),
        on_record=on_record,
        what="extracting",
    )
