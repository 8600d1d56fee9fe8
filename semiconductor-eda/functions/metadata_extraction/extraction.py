"""Per-file metadata extraction over ranged GETs, run through the shared per-item failure boundary.

Every input object gets exactly one result record (``shared.batch``): ``SUCCEEDED`` with the
layout metadata, or ``FAILED`` naming the typed error (corrupt, truncated, missing, forbidden, or
an internal error with its traceback logged). Transient errors (throttling, 5xx, the time budget)
are raised instead, so the Distributed Map's Retry runs the batch again; files whose result
already exists are then skipped, so every retry makes progress and writes stay idempotent.
"""

from __future__ import annotations

import logging
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import gdsii
import oasis
from layout import Budget, Decoder, LayoutSummary

from shared.aws import mapped_errors
from shared.batch import BatchResult, Work, process_items
from shared.errors import (
    AccessDeniedError,
    InvalidFileError,
    NotFoundError,
    PermanentError,
    PipelineError,
    SourceChangedError,
)

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from shared.retry import Deadline
    from shared.s3ap import ObjectInfo

logger = logging.getLogger(__name__)

_CONTENT_RANGE_RE = re.compile(r"bytes \d+-\d+/(\d+)")
# Fields every record carries, so the table's columns exist for FAILED records too.
RECORD_DEFAULTS: Mapping[str, Any] = {"format": None}


class RangeReader:
    """A ``ChunkSource`` that reads one version of an object through the access point with ranged GETs.

    Memory is one chunk. Every GET carries ``IfMatch`` with the listed ETag, so a file replaced
    after it was listed cannot yield chunks of two versions: S3 answers 412 and the read fails
    with ``SourceChangedError`` (naming the ETag seen now, when a HeadObject can tell). A reply
    whose ETag differs from the listed one (a server ignoring IfMatch) fails the same way.

    Time: before every request ``reserve_seconds`` must be left before the deadline (the time a
    GET may take with its timeouts and retries, plus writing the record after it), otherwise
    ``DeadlineExceededError``; ``check_budget`` is the same check for the decoder's budget hook
    (consulted while it inflates or scans without reading).

    A GET answered 403 for a listed object is told apart by a one-key listing: gone since the
    listing -> ``NotFoundError``; still there -> the ``AccessDeniedError`` stands.
    """

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        key: str,
        size: int,
        *,
        chunk_bytes: int,
        deadline: Deadline,
        etag: str | None = None,
        reserve_seconds: float = 0.0,
        whole_budget: bool = False,
    ) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._key = key
        self.size = size
        self._chunk = chunk_bytes
        self._deadline = deadline
        self.etag = etag or None
        self._reserve = reserve_seconds
        self._whole_budget = whole_budget
        self.position = 0
        self.requests = 0
        self.etag_seen: str | None = None

    def check_budget(self) -> bool:
        """The decoder's budget hook (before every fetch and inflation window).

        When less than the reserve is left: True for a file that had the invocation's whole
        budget (the decoder raises ``FileBudgetExceededError``, permanent: no invocation can do
        more), otherwise ``DeadlineExceededError`` (transient: the retried batch starts with it).
        """
        if self._deadline.remaining_seconds() > self._reserve:
            return False
        if self._whole_budget:
            return True
        self._deadline.check(f"parsing {self._key}", reserve=self._reserve)
        return False

    def __call__(self) -> bytes:
        if self.position >= self.size:
            return b""
        self._deadline.check(f"reading {self._key}", reserve=self._reserve)
        end = min(self.position + self._chunk, self.size) - 1
        request: dict[str, Any] = {"Bucket": self._bucket, "Key": self._key, "Range": f"bytes={self.position}-{end}"}
        if self.etag:
            request["IfMatch"] = self.etag
        try:
            with mapped_errors("GetObject"):
                reply = self._s3.get_object(**request)
                data: bytes = reply["Body"].read()
        except PermanentError as e:
            if e.details.get("httpStatus") == 412 or e.details.get("code") == "PreconditionFailed":
                raise self._changed(self._current_etag()) from e
            if isinstance(e, AccessDeniedError) and not self._still_listed():
                raise NotFoundError(
                    f"{self._key} no longer exists (removed after it was listed)", key=self._key
                ) from e
            raise
        self.requests += 1
        seen = str(reply.get("ETag", "")).strip('"')
        if self.etag and seen and seen != self.etag:
            raise self._changed(seen)
        match = _CONTENT_RANGE_RE.fullmatch(str(reply.get("ContentRange", "")))
        if match is not None:
            self.size = int(match.group(1))
        if not data:  # the object shrank since it was listed
            self.size = self.position
            return b""
        self.position += len(data)
        return data

    def _changed(self, seen: str | None) -> SourceChangedError:
        self.etag_seen = seen
        return SourceChangedError(
            f"{self._key} changed after it was listed (listed ETag {self.etag}, now {seen or 'unknown'}); "
            f"{self.position} bytes had been read",
            key=self._key,
            listed_etag=self.etag,
            etag_seen=seen,
        )

    def _current_etag(self) -> str | None:
        try:
            with mapped_errors("HeadObject"):
                head = self._s3.head_object(Bucket=self._bucket, Key=self._key)
        except PipelineError as e:  # best effort: the failure is the change itself
            logger.info("could not read the current ETag", extra={"key": self._key, "error": e.message})
            return None
        return str(head.get("ETag", "")).strip('"') or None

    def _still_listed(self) -> bool:
        try:
            with mapped_errors("ListObjectsV2"):
                page = self._s3.list_objects_v2(Bucket=self._bucket, Prefix=self._key, MaxKeys=1)
        except PipelineError:
            return True  # cannot tell: keep the original error
        return any(entry.get("Key") == self._key for entry in page.get("Contents", []))


def _sniff(first: bytes) -> str | None:
    if first.startswith(oasis.MAGIC):
        return "OASIS"
    if first.startswith(gdsii.MAGIC):
        return "GDSII"
    return None


def extract(
    reader: Callable[[], bytes], *, label: str, size: int | None = None, budget: Budget | None = None
) -> LayoutSummary:
    """Detect the format from the content (not the file name) and parse the whole stream.

    ``size`` (the object's size) bounds every declared length; ``budget`` is the decoders' time
    budget hook (see ``layout.Decoder``)."""
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
            return oasis.parse(oasis.decoder(source, size=size, budget=budget, label=label))
        if kind == "GDSII":
            return gdsii.parse(Decoder(source, size=size, budget=budget, label=label))
    except zlib.error as e:  # a corrupt CBLOCK
        raise InvalidFileError(f"{label}: corrupt compressed block: {e}") from e
    except OverflowError as e:  # a real number beyond float range
        raise InvalidFileError(f"{label}: number out of range: {e}") from e
    raise InvalidFileError(f"{label} is neither GDSII nor OASIS (first bytes {first[:16]!r})")


def layout_work(
    s3: S3Client,
    access_point_arn: str,
    *,
    deadline: Deadline,
    chunk_bytes: int,
    max_names: int,
    reserve_seconds: float = 0.0,
) -> Work:
    """The work of one file for ``shared.batch.process_items``: read the listed version with
    ranged GETs, parse it, return the layout fields. The size seen, the bytes read and (when the
    file changed) the ETag seen are recorded whatever the outcome."""

    started = 0  # files this invocation has worked on: the first had the whole budget

    def work(item: ObjectInfo, facts: dict[str, Any]) -> Mapping[str, Any]:
        nonlocal started
        started += 1
        reader = RangeReader(
            s3,
            access_point_arn,
            item.key,
            item.size,
            chunk_bytes=chunk_bytes,
            deadline=deadline,
            etag=item.etag,
            reserve_seconds=reserve_seconds,
            whole_budget=started == 1,
        )
        try:
            if item.size == 0:
                raise InvalidFileError(f"{item.key} is empty")
            summary = extract(reader, label=item.key, size=item.size, budget=reader.check_budget)
            return summary.to_record(max_names=max_names)
        finally:
            facts.update(size_bytes=reader.size if reader.requests else item.size, bytes_read=reader.position)
            if reader.etag_seen is not None:
                facts["etag_seen"] = reader.etag_seen

    return work


def process_batch(
    s3: S3Client,
    *,
    access_point_arn: str,
    output_bucket: str,
    execution_id: str,
    items: Sequence[ObjectInfo],
    deadline: Deadline,
    chunk_bytes: int,
    max_names: int,
    on_record: Callable[[Mapping[str, Any]], None] | None = None,
    request_seconds: float = 0.0,
) -> BatchResult:
    """One record per file of the batch; ``BatchResult.totals["bytes_read"]`` sums the bytes read.

    ``request_seconds``: the longest one S3 request of ``s3`` may take (``aws.request_seconds``).
    No request is started with less than twice that left (the request and the record written
    after it), so no request runs into the Lambda timeout."""
    reserve = 2 * request_seconds
    return process_items(
        items,
        layout_work(
            s3,
            access_point_arn,
            deadline=deadline,
            chunk_bytes=chunk_bytes,
            max_names=max_names,
            reserve_seconds=reserve,
        ),
        s3=s3,
        output_bucket=output_bucket,
        execution_id=execution_id,
        deadline=deadline,
        defaults=RECORD_DEFAULTS,
        totals=("bytes_read",),
        on_record=on_record,
        what="extracting",
        reserve_seconds=reserve,
    )
