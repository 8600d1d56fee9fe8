"""One point cloud's QC record: format detected from the content, parsed through ranged reads.

``process_batch`` runs one Map batch: ``qc_work`` is the per-item work that
``shared.batch.process_items`` wraps in its failure boundary: it returns the SUCCEEDED fields,
raises ``InvalidFileError`` (corrupt, truncated, not a point cloud), ``SourceChangedError`` (ETag
no longer matches the listing) or another typed error for a FAILED record, and lets transient
errors (throttling, 5xx, time budget) through.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import las
import pcd

from shared.batch import Batch, BatchResult, process_items
from shared.errors import InvalidFileError, PipelineError
from shared.ranged import RangedObjectFile

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from shared.retry import Deadline
    from shared.s3ap import ObjectInfo


_BUFFER_BYTES = 64 * 1024
# Summed over the records of a batch into its result (BatchResult.totals).
TOTALS = ("bytes_read", "point_count")


@dataclass(frozen=True)
class QcSettings:
    block_bytes: int
    max_blocks: int
    chunk_points: int


def sniff(first: bytes) -> str | None:
    """``PCD``, ``LAS`` (LAS or LAZ: the same header) or None, from the first bytes."""
    if first.startswith(las.LAS_MAGIC):
        return "LAS"
    text = first.lstrip()
    if text.startswith((b"#", b"VERSION", b"FIELDS")):
        return "PCD"
    return None


def analyse_file(source: RangedObjectFile, *, label: str, chunk_points: int) -> dict[str, Any]:
    """QC figures of the whole object behind ``source``."""
    if source.size == 0:
        raise InvalidFileError(f"{label} is empty")
    stream = io.BufferedReader(source, buffer_size=_BUFFER_BYTES)
    first = stream.read(min(64, source.size))
    stream.seek(0)
    kind = sniff(first)
    try:
        if kind == "PCD":
            return pcd.analyse(stream, source.size, chunk_points=chunk_points)
        if kind == "LAS":
            return las.analyse(stream, source.size, label=label, chunk_points=chunk_points)
    except PipelineError as e:
        # A decoder may turn a failed read into its own error: the read's typed error wins.
        if source.failure is not None and e is not source.failure:
            raise source.failure from e
        raise
    except (ValueError, OverflowError, MemoryError) as e:  # numpy on absurd but consistent headers
        if source.failure is not None:
            raise source.failure from e
        raise InvalidFileError(f"{label}: {type(e).__name__}: {e}") from e
    raise InvalidFileError(f"{label} is neither PCD nor LAS/LAZ (first bytes {first[:16]!r})")


def qc_work(
    s3: S3Client,
    access_point_arn: str,
    item: ObjectInfo,
    facts: dict[str, Any],
    *,
    deadline: Deadline,
    settings: QcSettings,
) -> dict[str, Any]:
    """The SUCCEEDED fields of ``item``; ``facts`` gets the bytes read whatever the outcome."""
    source = RangedObjectFile(
        s3,
        access_point_arn,
        item.key,
        size=item.size,
        etag=item.etag,
        deadline=deadline,
        block_size=settings.block_bytes,
        max_blocks=settings.max_blocks,
    )
    try:
        figures = analyse_file(source, label=item.key, chunk_points=settings.chunk_points)
    finally:
        facts["bytes_read"] = source.bytes_fetched
        facts["range_requests"] = source.requests
    return figures


def process_batch(
    s3: S3Client,
    access_point_arn: str,
    batch: Batch,
    *,
    output_bucket: str,
    settings: QcSettings,
    deadline: Deadline,
    on_record: Callable[[Mapping[str, Any]], None] | None = None,
) -> BatchResult:
    """One record per point cloud of ``batch``; ``BatchResult.totals`` sums ``TOTALS``."""
    work = partial(qc_work, s3, access_point_arn, deadline=deadline, settings=settings)
    return process_items(batch.items, work, s3=s3, output_bucket=output_bucket, execution_id=batch.execution_id,
                         deadline=deadline, defaults={"format": None}, totals=TOTALS, on_record=on_record,
                         what="point-cloud QC of")
