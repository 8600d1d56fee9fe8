"""Turn one execution's per-file results into the JSONL inference input, and the routing facts.

Reads every result record under ``results/execution_id=<id>/`` (one per source file, written by
frame_extraction for videos and pointcloud_qc for point clouds), ``READ_CONCURRENCY`` GETs at a
time in listing order, and writes
one model record per line (see ``autonomous-driving/model/code/inference.py``):

- each key frame of a SUCCEEDED video record -> ``{"kind": "frame", "width", "height", "labels"}``;
- each SUCCEEDED point-cloud record -> ``{"kind": "pointcloud", "qc": {...}}``.

Every line also carries ``record_id`` (its line number), ``source_key`` and, for frames,
``frame_key``, so the annotation step can join predictions back without another lookup.

The routing facts the Choice state reads are counted on the way (``file_count``: source files
with a usable record; ``max_record_bytes``: the largest line plus its newline, i.e. the smallest
request a synchronous path would have to accept).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

from shared import batch
from shared.aws import mapped_errors
from shared.errors import InvalidFileError
from shared.retry import Deadline

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

VIDEO_SUFFIXES = (".mp4",)
POINTCLOUD_SUFFIXES = (".pcd", ".las", ".laz")


def results_prefix(execution_id: str) -> str:
    return f"results/execution_id={execution_id}/"


def input_key(execution_id: str) -> str:
    return f"inference-input/{execution_id}/input.jsonl"


def output_prefix(execution_id: str, path: str) -> str:
    """Where a path's predictions go; Batch Transform appends ``input.jsonl.out`` itself."""
    return f"inference-output/{execution_id}/{path.lower().replace('_', '-')}/"


def transform_job_name(execution_arn: str, suffix: str = "") -> str:
    """A CreateTransformJob name unique per execution (and per stack: the ARN names the machine)."""
    digest = hashlib.sha256(execution_arn.encode("utf-8")).hexdigest()[:32]
    return f"uc9-{digest}{suffix}"[:63]


@dataclass
class Counts:
    expected: int
    succeeded: int = 0
    failed: int = 0
    videos: int = 0
    pointclouds: int = 0
    frames: int = 0
    records: int = 0
    max_record_bytes: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    @property
    def missing(self) -> int:
        return max(0, self.expected - self.succeeded - self.failed)


def enforce_tolerance(counts: Counts, tolerated_percentage: float) -> None:
    """shared.batch's tolerance check: FAILED records and files without a record count as failed,
    and a run in which nothing succeeded always fails (``TooManyFailuresError``)."""
    batch.enforce_tolerance(
        batch.Counts(expected=counts.expected, succeeded=counts.succeeded, failed_records=counts.failed),
        tolerated_percentage,
    )


def _kind(source_key: str, record: dict[str, Any]) -> str:
    kind = record.get("kind")
    if kind in {"video", "pointcloud"}:
        return str(kind)
    lowered = source_key.lower()
    if lowered.endswith(VIDEO_SUFFIXES):
        return "video"
    if lowered.endswith(POINTCLOUD_SUFFIXES):
        return "pointcloud"
    raise InvalidFileError(f"result record for {source_key!r} is neither a video nor a point cloud")


def model_records(record: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The model records of one SUCCEEDED result record (without record_id).

    Videos (frame_extraction): one record per stored frame whose labelling SUCCEEDED (a frame
    Rekognition refused is already a recorded per-frame failure). Labels keep ``name`` and
    ``confidence``, and ``instances`` with their bounding boxes when the record has them.
    Point clouds (pointcloud_qc): the QC figures the readiness model weighs.
    """
    source_key = str(record["source_key"])
    if _kind(source_key, record) == "video":
        for frame in record.get("frames") or []:
            if str(frame.get("status", "SUCCEEDED")).upper() != "SUCCEEDED":
                continue
            yield {
                "kind": "frame",
                "source_key": source_key,
                "frame_key": frame.get("key"),
                "timestamp_s": frame.get("pts_seconds"),
                "width": int(frame.get("width") or 0),
                "height": int(frame.get("height") or 0),
                "labels": [
                    {
                        "name": label.get("name"),
                        "confidence": float(label.get("confidence") or 0.0),
                        "instances": [
                            {
                                "confidence": float(inst.get("confidence") or 0.0),
                                "bbox": _bbox(inst.get("bbox") or inst.get("bounding_box") or {}),
                            }
                            for inst in label.get("instances") or []
                        ],
                    }
                    for label in frame.get("labels") or []
                ],
            }
    else:
        yield {
            "kind": "pointcloud",
            "source_key": source_key,
            "qc": {
                "point_count": record.get("point_count"),
                "nan_ratio": record.get("nan_ratio"),
                "zero_ratio": record.get("zero_ratio"),
                "density": record.get("density_per_m2"),
                "intensity_min": record.get("intensity_min"),
                "intensity_max": record.get("intensity_max"),
            },
        }


def _bbox(box: dict[str, Any]) -> dict[str, float]:
    """Rekognition's ratio box (Left/Top/Width/Height, either case) as the model reads it."""
    return {
        name: float(box.get(name, box.get(name.capitalize(), 0.0)) or 0.0)
        for name in ("left", "top", "width", "height")
    }


# Result records are read this many at a time, in listing order: one at a time, 100,000 records
# at S3's ~10-20 ms per GET would outlast the function's 300 s timeout (as they did locally).
# botocore keeps 10 connections per client by default (max_pool_connections).
READ_CONCURRENCY = 10


def _read_record(s3: S3Client, bucket: str, key: str) -> dict[str, Any]:
    with mapped_errors("GetObject"):
        raw = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    try:
        record = json.loads(raw)
    except ValueError as e:
        raise InvalidFileError(f"result record {key} is not JSON: {e}", key=key) from e
    if not isinstance(record, dict) or "source_key" not in record:
        raise InvalidFileError(f"result record {key} has no source_key", key=key)
    return record


def iter_result_records(
    s3: S3Client, bucket: str, execution_id: str, deadline: Deadline, *, concurrency: int = READ_CONCURRENCY
) -> Iterator[dict[str, Any]]:
    """Every result record of the execution, in listing order; up to ``concurrency`` GETs in
    flight, never more than one listing page (1,000 records) read ahead."""
    paginator = s3.get_paginator("list_objects_v2")
    with mapped_errors("ListObjectsV2"):
        pages = iter(paginator.paginate(Bucket=bucket, Prefix=results_prefix(execution_id)))
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="read-result") as pool:
        while True:
            with mapped_errors("ListObjectsV2"):
                page = next(pages, None)
            if page is None:
                return
            deadline.check("prepare inference")
            reads = deque(pool.submit(_read_record, s3, bucket, entry["Key"]) for entry in page.get("Contents") or [])
            try:
                while reads:
                    deadline.check("prepare inference")
                    yield reads.popleft().result()
            finally:
                for read in reads:  # an error or the deadline: the rest of the page is not waited for
                    read.cancel()


def write_input(records: Iterator[dict[str, Any]], out: IO[bytes], counts: Counts) -> None:
    for record in records:
        status = str(record.get("status", "")).upper()
        if status != "SUCCEEDED":
            counts.failed += 1
            error = str(record.get("error_type") or "unknown")
            counts.errors[error] = counts.errors.get(error, 0) + 1
            continue
        counts.succeeded += 1
        kind = _kind(str(record["source_key"]), record)
        if kind == "video":
            counts.videos += 1
        else:
            counts.pointclouds += 1
        for model_record in model_records(record):
            line = json.dumps(
                {"record_id": counts.records, **model_record}, separators=(",", ":"), ensure_ascii=False
            ).encode("utf-8")
            out.write(line + b"\n")
            counts.records += 1
            counts.frames += model_record["kind"] == "frame"
            counts.max_record_bytes = max(counts.max_record_bytes, len(line) + 1)


def prepare(
    s3: S3Client,
    *,
    bucket: str,
    execution_id: str,
    expected_count: int,
    tolerated_percentage: float,
    deadline: Deadline,
) -> Counts:
    counts = Counts(expected=expected_count)
    with tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024) as out:
        write_input(iter_result_records(s3, bucket, execution_id, deadline), out, counts)
        enforce_tolerance(counts, tolerated_percentage)
        out.seek(0)
        with mapped_errors("PutObject"):
            s3.upload_fileobj(out, bucket, input_key(execution_id), ExtraArgs={"ContentType": "application/jsonlines"})
    return counts
