"""Distributed Map batches: items, execution-scoped result records, the per-item failure boundary.

A Map over a manifest hands a function ``{"Items": [<ObjectInfo dict>, ...], "BatchInput":
{"execution_id": ...}}`` (ItemBatcher). Every item gets exactly one result object at
``results/execution_id=<execution id>/<url-quoted full source key>.json`` (``result_key``): one
JSON line, ``SUCCEEDED`` with the use case's fields, or ``FAILED`` naming a typed error.

``process_items`` is the failure boundary every batch function uses::

    result = process_items(batch.items, work, s3=S3, output_bucket=BUCKET,
                           execution_id=batch.execution_id, deadline=deadline)

- ``work(item, facts)`` returns the fields of a SUCCEEDED record. ``facts`` is a dict it may fill
  as it goes with what belongs in the record whatever the outcome (bytes read, the size seen).
- Transient errors (``shared.errors.TransientError``: throttling, 5xx, the time budget) cross the
  boundary, so the Map's Retry runs the batch again; items already recorded are then skipped
  (``existing_status``: a final status and the same ETag), so every retry makes progress. Which
  items have a record is asked once per batch (``recorded_keys``: one ListObjectsV2 over the
  batch's key range), so a first attempt reads no record at all; only a record that exists is read.
- Every other exception becomes that item's FAILED record: a ``PipelineError`` by its class name;
  anything else (a bug: ``IndexError``, ``KeyError``...) as ``InternalError`` with the exception
  type in the message and its traceback logged. A record that cannot be written as built (a
  non-finite number, a value JSON cannot hold) is ``InvalidRecordError``. Records are validated
  (``encode_record``) before they are written, so writing cannot fail on the content.
- The time budget: an item whose work runs out of time (``DeadlineExceededError``) although it was
  the first item this invocation worked on, so it had the whole budget, cannot finish in any
  invocation: it is recorded as ``BudgetExceededError`` instead of being retried until the Map's
  retries run out. Later items that run out of time are retried (the retry starts with them).

``Counts`` and ``enforce_tolerance`` decide, after the Map, whether the run failed: items with a
FAILED record plus items with no record at all (a batch the Map tolerated failing) count as failed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from shared.aws import mapped_errors
from shared.errors import (
    BudgetExceededError,
    DeadlineExceededError,
    InternalError,
    InvalidInputError,
    InvalidRecordError,
    NotFoundError,
    PipelineError,
    TooManyFailuresError,
    TransientError,
)
from shared.events import validate_execution_id
from shared.s3ap import ObjectInfo

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from shared.retry import Deadline

logger = logging.getLogger(__name__)

RESULTS_PREFIX = "results"
SUCCEEDED = "SUCCEEDED"
FAILED = "FAILED"
STATUSES = (SUCCEEDED, FAILED)
# S3 keys are at most 1024 bytes (UTF-8); a quoted key can be three times its source, so long
# ones are shortened and made unique again with a hash of the full source key.
MAX_KEY_BYTES = 1024
RECORD_SUFFIX = ".json"
MAX_ERROR_MESSAGE = 1000
MAX_RECORD_BYTES = 1024 * 1024  # one JSON line; far above any record the pipelines write
MAX_RECORD_DEPTH = 16
# recorded_keys reads at most this many listing pages (1,000 keys each) of a batch's key range: it
# holds the batch's own records and, where quoting does not keep the source keys' order, some of
# other batches'. A range deeper than that is looked up key by key instead.
MAX_LOOKUP_PAGES = 3
_INT64 = (-(2**63), 2**63 - 1)  # Athena bigint


type Work = Callable[[ObjectInfo, dict[str, Any]], Mapping[str, Any]]


# --------------------------------------------------------------------------- the event


@dataclass(frozen=True)
class Batch:
    """One ItemBatcher batch: the execution id from ``BatchInput`` and the validated items."""

    execution_id: str
    items: list[ObjectInfo]
    batch_input: Mapping[str, Any]


def parse_batch(event: Any, *, max_items: int) -> Batch:
    """Validate ``{"Items": [...], "BatchInput": {"execution_id": ...}}`` (``InvalidInputError``)."""
    if not isinstance(event, Mapping):
        raise InvalidInputError(f"event must be an object, got {type(event).__name__}")
    batch_input = event.get("BatchInput")
    if not isinstance(batch_input, Mapping):
        raise InvalidInputError("event.BatchInput must be an object with execution_id", field="BatchInput")
    execution_id = validate_execution_id(batch_input.get("execution_id"), field="BatchInput.execution_id")
    raw_items = event.get("Items")
    if not isinstance(raw_items, list) or not raw_items:
        raise InvalidInputError("event.Items must be a non-empty list of manifest records", field="Items")
    if len(raw_items) > max_items:
        raise InvalidInputError(
            f"event.Items holds {len(raw_items)} items, at most {max_items} are accepted", field="Items"
        )
    return Batch(execution_id, [ObjectInfo.from_dict(item) for item in raw_items], batch_input)


# --------------------------------------------------------------------------- records in S3


def result_key(execution_id: str, source_key: str, *, prefix: str = RESULTS_PREFIX) -> str:
    """The one result key of ``source_key`` in this execution (the full key, so no collisions)."""
    head = f"{prefix}/execution_id={execution_id}/"
    # The execution name takes up to 320 bytes (80 characters, non-ASCII allowed); the quoted
    # source key (ASCII) gets the rest.
    budget = MAX_KEY_BYTES - len(head.encode("utf-8")) - len(RECORD_SUFFIX)
    quoted = quote(source_key, safe="")
    if len(quoted) > budget:
        digest = hashlib.sha256(source_key.encode("utf-8")).hexdigest()
        quoted = f"{quoted[: budget - len(digest) - 1]}~{digest}"
    return f"{head}{quoted}{RECORD_SUFFIX}"


def _check_value(value: Any, path: str, depth: int) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise InvalidRecordError(f"record field {path} = {value} is outside the 64-bit range", field=path)
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidRecordError(f"record field {path} is not a finite number ({value!r})", field=path)
        return
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            raise InvalidRecordError(f"record field {path} is not valid Unicode text: {e.reason}", field=path) from e
        return
    if depth >= MAX_RECORD_DEPTH:
        raise InvalidRecordError(f"record field {path} is nested deeper than {MAX_RECORD_DEPTH}", field=path)
    if isinstance(value, list | tuple):
        for index, entry in enumerate(value):
            _check_value(entry, f"{path}[{index}]", depth + 1)
        return
    if isinstance(value, Mapping):
        for name, entry in value.items():
            if not isinstance(name, str):
                raise InvalidRecordError(f"record field {path} has a non-string key {name!r}", field=path)
            _check_value(entry, f"{path}.{name}", depth + 1)
        return
    raise InvalidRecordError(f"record field {path} is a {type(value).__name__}, not a JSON value", field=path)


def encode_record(record: Mapping[str, Any]) -> bytes:
    """The record as one UTF-8 JSON line, after checking every value (``InvalidRecordError``):
    finite floats, 64-bit integers, encodable text, string keys, bounded depth and size."""
    for name, value in record.items():
        if not isinstance(name, str):
            raise InvalidRecordError(f"record has a non-string key {name!r}")
        _check_value(value, name, 1)
    # Cannot fail after the checks above.
    body = json.dumps(record, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8") + b"\n"
    if len(body) > MAX_RECORD_BYTES:
        raise InvalidRecordError(f"record is {len(body)} bytes, more than {MAX_RECORD_BYTES}", bytes=len(body))
    return body


def write_record(s3: S3Client, bucket: str, key: str, record: Mapping[str, Any]) -> None:
    """Write one record (validated by ``encode_record``) as one line: the JSON SerDe reads one
    object per line."""
    body = encode_record(record)
    with mapped_errors("PutObject"):
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def existing_status(s3: S3Client, bucket: str, key: str, *, etag: str | None = None) -> str | None:
    """The status of a record an earlier attempt wrote for this item, or None to process it again.

    With ``etag``, a record counts only if it is of that version of the source object (a rerun
    under a reused execution id, after the file changed, must not keep the stale record). An
    unreadable record is logged and then overwritten.
    """
    try:
        with mapped_errors("GetObject"):
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except NotFoundError:
        return None
    try:
        record = json.loads(body)
        status = record.get("status")
    except (ValueError, AttributeError) as e:
        logger.warning(
            "earlier record unreadable; processing the item again and overwriting it",
            extra={"bucket": bucket, "key": key, "error": f"{type(e).__name__}: {e}"},
        )
        return None
    if status not in STATUSES:
        logger.warning(
            "earlier record has no valid status; processing the item again and overwriting it",
            extra={"bucket": bucket, "key": key, "status": repr(status)[:100]},
        )
        return None
    if etag is not None and record.get("etag") != etag:
        logger.info(
            "earlier record is of another version of the source; processing it again",
            extra={"bucket": bucket, "key": key, "recorded_etag": repr(record.get("etag"))[:100], "etag": etag},
        )
        return None
    return str(status)


def recorded_keys(
    s3: S3Client, bucket: str, keys: Sequence[str], *, max_pages: int = MAX_LOOKUP_PAGES
) -> set[str] | None:
    """Which of ``keys`` exist in ``bucket``, from one listing of the range between the least and
    the greatest of them (S3 lists in UTF-8 byte order, which is code point order); None when that
    range holds more than ``max_pages`` pages of keys."""
    wanted = set(keys)
    if not wanted:
        return set()
    low, high = min(wanted), max(wanted)
    found: set[str] = set()
    pages = s3.get_paginator("list_objects_v2").paginate(
        # a key prefix, not a path: character by character is what is meant
        Bucket=bucket, Prefix=os.path.commonprefix([low, high]), StartAfter=low[:-1],  # noqa: RUF071
    )
    with mapped_errors("ListObjectsV2"):
        for number, page in enumerate(pages, start=1):
            for entry in page.get("Contents", ()):
                key = entry["Key"]
                if key > high:
                    return found
                if key in wanted:
                    found.add(key)
            if number == max_pages and page.get("IsTruncated"):
                return None
    return found


# --------------------------------------------------------------------------- the failure boundary


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def base_record(item: ObjectInfo, defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The fields every record of ``item`` carries, before the outcome is known."""
    return {
        "source_key": item.key,
        "size_bytes": item.size,
        "etag": item.etag,
        "last_modified": item.last_modified,
        **(defaults or {}),
        "error_type": None,
        "error_message": None,
    }


def _failure_fields(error: PipelineError) -> dict[str, Any]:
    message = str(error.message)[:MAX_ERROR_MESSAGE]
    return {"status": FAILED, "error_type": type(error).__name__, "error_message": message}


def item_record(
    item: ObjectInfo,
    work: Work,
    *,
    defaults: Mapping[str, Any] | None = None,
    whole_budget: bool = False,
    now: Callable[[], str] = utc_now,
) -> tuple[dict[str, Any], bytes]:
    """The one record of ``item`` and its encoded body; raises only transient errors.

    ``whole_budget``: the item started with the invocation's whole time budget, so running out
    of time is permanent for it (``BudgetExceededError``).
    """
    base = base_record(item, defaults)
    facts: dict[str, Any] = {}
    error: PipelineError
    try:
        fields = work(item, facts)
        record = {**base, **facts, **fields, "status": SUCCEEDED, "error_type": None, "error_message": None}
        record["processed_at"] = now()
        return record, encode_record(record)
    except DeadlineExceededError as e:
        if not whole_budget:
            raise
        progress = ", ".join(f"{k}={v}" for k, v in sorted(facts.items()) if isinstance(v, int | str)) or "none"
        error = BudgetExceededError(
            f"{item.key} cannot be finished within one invocation's time budget (progress: {progress}): {e.message}",
            **e.details,
        )
    except TransientError:
        raise
    except PipelineError as e:
        error = e
    except Exception as e:
        logger.exception(
            "unexpected error processing an item; recorded as InternalError",
            extra={"source_key": item.key, "exception_type": type(e).__name__},
        )
        error = InternalError(f"{type(e).__name__}: {e}", exception_type=type(e).__name__)
    for extra in (facts, {}):  # the facts gathered so far, unless they cannot be written
        record = {**base, **extra, **_failure_fields(error), "processed_at": now()}
        try:
            return record, encode_record(record)
        except InvalidRecordError as invalid:
            logger.warning(
                "failure record facts not writable; recording without them",
                extra={"source_key": item.key, "error": invalid.message},
            )
    # base_record holds only validated ObjectInfo fields and ``defaults``: only bad defaults get here.
    raise InvalidRecordError(f"the failure record of {item.key} cannot be written; check the defaults")


@dataclass(frozen=True)
class BatchResult:
    processed: int = 0
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    totals: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self, execution_id: str) -> dict[str, Any]:
        return {
            "execution_id": execution_id,
            "processed": self.processed,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "skipped": self.skipped,
            **self.totals,
        }


def process_items(
    items: Sequence[ObjectInfo],
    work: Work,
    *,
    s3: S3Client,
    output_bucket: str,
    execution_id: str,
    deadline: Deadline,
    defaults: Mapping[str, Any] | None = None,
    totals: Sequence[str] = (),
    on_record: Callable[[Mapping[str, Any]], None] | None = None,
    what: str = "processing",
    reserve_seconds: float = 0.0,
) -> BatchResult:
    """One record per item (see the module docstring); returns the counts and the ``totals``
    (integer record fields summed over the records written by this invocation).

    ``reserve_seconds``: the time one request to the output bucket may take with its retries
    (``aws.request_seconds``); no item is looked up or started with less time than that left.
    """
    processed = succeeded = failed = skipped = 0
    sums = dict.fromkeys(totals, 0)
    keys = [result_key(execution_id, item.key) for item in items]
    deadline.check(f"{what}: looking up earlier records", reserve=reserve_seconds)
    recorded = recorded_keys(s3, output_bucket, keys)
    for item, key in zip(items, keys, strict=True):
        deadline.check(f"{what} {item.key}", reserve=reserve_seconds)
        looked_up = recorded is None or key in recorded
        previous = existing_status(s3, output_bucket, key, etag=item.etag) if looked_up else None
        if previous is not None:
            skipped += 1
            succeeded += previous == SUCCEEDED
            failed += previous == FAILED
            continue
        deadline.check(f"{what} {item.key}", reserve=reserve_seconds)
        record, body = item_record(item, work, defaults=defaults, whole_budget=processed == 0)
        with mapped_errors("PutObject"):
            s3.put_object(Bucket=output_bucket, Key=key, Body=body, ContentType="application/json")
        if on_record is not None:
            on_record(record)
        processed += 1
        for name in sums:
            value = record.get(name)
            sums[name] += value if isinstance(value, int) and not isinstance(value, bool) else 0
        if record["status"] == SUCCEEDED:
            succeeded += 1
        else:
            failed += 1
    return BatchResult(processed, succeeded, failed, skipped, sums)


# --------------------------------------------------------------------------- after the Map


@dataclass(frozen=True)
class Counts:
    expected: int
    succeeded: int
    failed_records: int

    @property
    def total(self) -> int:
        # More records than listed objects cannot happen with one record per key; be safe anyway.
        return max(self.expected, self.succeeded + self.failed_records)

    @property
    def missing_records(self) -> int:
        """Items without any record: their whole batch failed (tolerated by the Map)."""
        return self.total - self.succeeded - self.failed_records

    @property
    def failed(self) -> int:
        return self.total - self.succeeded

    def to_dict(self) -> dict[str, int]:
        return {
            "expected": self.expected,
            "total": self.total,
            "succeeded": self.succeeded,
            "failed": self.failed,
            "failed_records": self.failed_records,
            "missing_records": self.missing_records,
        }


def parse_tolerance(event: Mapping[str, Any]) -> tuple[int, float]:
    """``(expected_count, tolerated_failure_percentage)`` of an event after the Map: the items
    listed (an integer >= 0) and the tolerance (a number from 0 to 100); ``InvalidInputError``
    naming the field otherwise."""
    expected = event.get("expected_count")
    if isinstance(expected, bool) or not isinstance(expected, int) or expected < 0:
        raise InvalidInputError(f"expected_count must be an integer >= 0, got {expected!r}", field="expected_count")
    tolerance = event.get("tolerated_failure_percentage")
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or not 0 <= tolerance <= 100:
        raise InvalidInputError(
            f"tolerated_failure_percentage must be a number from 0 to 100, got {tolerance!r}",
            field="tolerated_failure_percentage",
        )
    return expected, float(tolerance)


def enforce_tolerance(counts: Counts, tolerated_percentage: float, *, noun: str = "files") -> None:
    """Raise ``TooManyFailuresError`` when failed/total*100 exceeds the tolerance, or nothing succeeded."""
    if counts.total == 0:
        return
    if counts.succeeded == 0:
        raise TooManyFailuresError(
            f"all {counts.total} {noun} failed", **counts.to_dict(), tolerated_percentage=tolerated_percentage
        )
    if counts.failed * 100 > tolerated_percentage * counts.total:
        raise TooManyFailuresError(
            f"{counts.failed} of {counts.total} {noun} failed ({counts.failed * 100 / counts.total:.1f}%), "
            f"more than the tolerated {tolerated_percentage:g}%",
            **counts.to_dict(),
            tolerated_percentage=tolerated_percentage,
        )
