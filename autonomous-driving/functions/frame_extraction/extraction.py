"""One video's record: key frames stored as JPEG, then labelled by Rekognition, frame by frame.

``process_batch`` runs one Map batch: ``video_work`` is the per-item work that
``shared.batch.process_items`` wraps in its failure boundary. Frames go to
``frames/execution_id=<execution id>/<url-quoted full source key>/frame-<NNNN>.jpg`` in the output
bucket (execution-scoped and derived from the full key, so reruns and same-named files never
collide). A frame Rekognition refuses is recorded as a failed frame; the video is ``FAILED`` only
when no frame could be extracted (``InvalidFileError``) or none could be labelled
(``ModelInvocationError``). ``facts`` (kept in FAILED records too) holds the frames handled so far
and the container facts.
"""

from __future__ import annotations

import hashlib
import io
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from keyframes import Selection, VideoFacts, key_frames
from labels import S3_OBJECT_MAX_BYTES, LabelSettings, detect_labels

from shared.aws import mapped_errors
from shared.batch import MAX_ERROR_MESSAGE, MAX_KEY_BYTES, Batch, BatchResult, process_items
from shared.errors import InvalidFileError, ModelInvocationError, PipelineError, TransientError
from shared.ranged import RangedObjectFile

if TYPE_CHECKING:
    from mypy_boto3_rekognition import RekognitionClient
    from mypy_boto3_s3 import S3Client

    from shared.retry import Deadline
    from shared.s3ap import ObjectInfo

FRAMES_PREFIX = "frames"
_FRAME_NAME = "/frame-{:04d}.jpg"
_BUFFER_BYTES = 64 * 1024
# Summed over the records of a batch into its result (BatchResult.totals).
TOTALS = ("bytes_read", "frames_extracted", "frames_labelled", "frames_failed")


def frame_key(execution_id: str, source_key: str, index: int) -> str:
    """The key of frame ``index`` of ``source_key`` in this execution (at most 1024 bytes)."""
    head = f"{FRAMES_PREFIX}/execution_id={execution_id}/"
    name = _FRAME_NAME.format(index)
    budget = MAX_KEY_BYTES - len(head.encode("utf-8")) - len(name)
    quoted = quote(source_key, safe="")
    if len(quoted) > budget:
        digest = hashlib.sha256(source_key.encode("utf-8")).hexdigest()
        quoted = f"{quoted[: budget - len(digest) - 1]}~{digest}"
    return f"{head}{quoted}{name}"


@dataclass(frozen=True)
class Clients:
    s3: S3Client
    rekognition: RekognitionClient


@dataclass(frozen=True)
class Settings:
    access_point_arn: str
    output_bucket: str
    selection: Selection
    labels: LabelSettings
    block_bytes: int
    max_blocks: int


def video_work(
    clients: Clients,
    settings: Settings,
    execution_id: str,
    item: ObjectInfo,
    facts: dict[str, Any],
    *,
    deadline: Deadline,
    sleep: Callable[[float], object] = time.sleep,
) -> dict[str, Any]:
    """The SUCCEEDED fields of one video (see the module docstring)."""
    source = RangedObjectFile(
        clients.s3,
        settings.access_point_arn,
        item.key,
        size=item.size,
        etag=item.etag,
        deadline=deadline,
        block_size=settings.block_bytes,
        max_blocks=settings.max_blocks,
    )
    video = VideoFacts()
    frames: list[dict[str, Any]] = []
    facts.update(format="MP4", frames=frames)
    try:
        if item.size == 0:
            raise InvalidFileError(f"{item.key} is empty")
        stream = io.BufferedReader(source, buffer_size=_BUFFER_BYTES)
        selected = key_frames(
            stream,
            settings.selection,
            label=item.key,
            facts=video,
            before_frame=lambda: deadline.check(f"decoding {item.key}"),
        )
        for frame in selected:
            key = frame_key(execution_id, item.key, frame.index)
            entry: dict[str, Any] = {
                "index": frame.index,
                "keyframe_number": frame.keyframe_number,
                "pts_seconds": frame.pts_seconds,
                "width": frame.width,
                "height": frame.height,
                "jpeg_bytes": len(frame.jpeg),
                "key": key,
                "status": "SUCCEEDED",
                "labels": [],
                "error_type": None,
                "error_message": None,
            }
            frames.append(entry)
            with mapped_errors("PutObject"):
                clients.s3.put_object(Bucket=settings.output_bucket, Key=key, Body=frame.jpeg, ContentType="image/jpeg")
            try:
                if len(frame.jpeg) > S3_OBJECT_MAX_BYTES:
                    raise ModelInvocationError(
                        f"frame {frame.index}: {len(frame.jpeg)} bytes > DetectLabels limit {S3_OBJECT_MAX_BYTES}"
                    )
                entry["labels"] = detect_labels(
                    clients.rekognition,
                    settings.output_bucket,
                    key,
                    settings=settings.labels,
                    deadline=deadline,
                    sleep=sleep,
                )
            except TransientError:
                raise
            except PipelineError as e:
                entry.update(status="FAILED", error_type=type(e).__name__, error_message=e.message[:MAX_ERROR_MESSAGE])
    except PipelineError as e:
        if source.failure is not None and e is not source.failure:
            raise source.failure from e  # a failed read surfaced by FFmpeg as bad data
        raise
    finally:
        facts.update(video.to_dict())
        facts.update(
            frames_extracted=len(frames),
            frames_labelled=sum(f["status"] == "SUCCEEDED" for f in frames),
            frames_failed=sum(f["status"] == "FAILED" for f in frames),
            bytes_read=source.bytes_fetched,
            range_requests=source.requests,
        )
    if frames and not facts["frames_labelled"]:
        raise ModelInvocationError(f"{item.key}: DetectLabels failed for all {len(frames)} frames")
    return dict(facts)


def process_batch(
    clients: Clients,
    settings: Settings,
    batch: Batch,
    *,
    deadline: Deadline,
    on_record: Callable[[Mapping[str, Any]], None] | None = None,
) -> BatchResult:
    """One record per video of ``batch``; ``BatchResult.totals`` sums ``TOTALS``."""

    def work(item: ObjectInfo, facts: dict[str, Any]) -> dict[str, Any]:
        return video_work(clients, settings, batch.execution_id, item, facts, deadline=deadline)

    return process_items(batch.items, work, s3=clients.s3, output_bucket=settings.output_bucket,
                         execution_id=batch.execution_id, deadline=deadline, defaults={"format": None},
                         totals=TOTALS, on_record=on_record, what="key frames of")
