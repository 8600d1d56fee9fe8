"""UC9 frame extraction: one Distributed Map batch of MP4 (H.264) videos -> key frames + labels.

Event (the Map's ItemBatcher batch over ``manifests/<execution_id>/video.jsonl``)::

    {"Items": [{"key": "...", "size": 123, "etag": "...", "last_modified": "..."}, ...],
     "BatchInput": {"execution_id": "<execution name>"}}

For each video: key frames are decoded with PyAV (only key frames: ``skip_frame="NONKEY"``; the
selection rule is in keyframes.py) from ranged GETs with ``IfMatch`` on the listed ETag
(``shared.ranged``), written as JPEG to ``frames/execution_id=<id>/<quoted source key>/
frame-<NNNN>.jpg`` in the output bucket, then labelled with Rekognition DetectLabels (S3Object on
the output bucket), throttling retried within the deadline (labels.py).

Every video gets exactly one record at ``results/execution_id=<id>/<quoted source key>.json``
(``shared.batch``): ``SUCCEEDED`` with ``format`` ("MP4"), ``codec``, ``width``, ``height``,
``duration_seconds``, ``frames_declared``, ``keyframes_decoded``, ``frames_extracted``,
``frames_labelled``, ``frames_failed``, ``bytes_read``, ``range_requests`` and ``frames`` (one
entry per stored frame: ``index``, ``pts_seconds``, ``key``, ``width``, ``height``,
``jpeg_bytes``, ``status``, ``labels`` [``name``, ``confidence``, ``parents``], ``error_type``,
``error_message``); or ``FAILED`` with ``error_type`` (``InvalidFileError``: corrupt, truncated,
not a video, no key frame; ``ModelInvocationError``: no frame could be labelled;
``SourceChangedError``; ``NotFoundError``; ``InternalError``; ``BudgetExceededError``).

Environment (validated at init; ``ConfigurationError`` names the variable):

================================  =========================================================
``ACCESS_POINT_ARN``              access point ARN the videos are read through
``OUTPUT_BUCKET``                 bucket for frames and records (Rekognition reads it)
``MAX_FRAMES_PER_VIDEO``          cap on frames taken per video, default 8 (1-100)
``MIN_FRAME_INTERVAL_SECONDS``    min. seconds between frames taken, default 1 (0-3600)
``SCENE_CHANGE_THRESHOLD``        0 = off (default); else min. mean abs. thumbnail difference
                                  (1-255) for a key frame to be taken
``FRAME_MAX_WIDTH``               frames wider are scaled down, default 1920 (80-7680)
``JPEG_QUALITY``                  FFmpeg q scale 2 (best) - 31, default 3
``REKOGNITION_MAX_LABELS``        MaxLabels, default 10 (1-1000)
``REKOGNITION_MIN_CONFIDENCE``    MinConfidence percent, default 60 (0-100)
``REKOGNITION_MAX_ATTEMPTS``      DetectLabels attempts per frame when throttled, default 6
``RANGE_BLOCK_BYTES``             bytes per ranged GET, default 1 MiB (64 KiB - 64 MiB)
``RANGE_MAX_BLOCKS``              blocks kept in memory, default 4 (1-64)
``MAX_BATCH_ITEMS``               most items accepted in one batch, default 100
``DEADLINE_MARGIN_MS``            time kept back to write the last record, default 20000
================================  =========================================================

Returns counts only: ``{"execution_id", "processed", "succeeded", "failed", "skipped",
"bytes_read", "frames_extracted", "frames_labelled", "frames_failed"}``. Transient errors
(``ThrottlingError`` after the attempts, ``ServiceUnavailableError``, ``DeadlineExceededError``)
are raised for the Map's Retry; already-recorded videos are skipped on the retry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from extraction import Clients, Settings, process_batch
from keyframes import Selection, warm_codecs
from labels import LabelSettings

from shared import aws, batch, config, observability, runtime
from shared.errors import ConfigurationError
from shared.retry import Deadline

logger = Logger()
tracer = Tracer()
metrics = Metrics()


def _env_float(name: str, default: float, minimum: float, maximum: float) -> float:
    raw = config.env_str(name, str(default))
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not minimum <= value <= maximum:  # also refuses NaN
        raise ConfigurationError(
            f"environment variable {name}={raw!r} is invalid: expected a number from {minimum:g} to {maximum:g}",
            variable=name,
        )
    return value


ACCESS_POINT = config.env_access_point("ACCESS_POINT_ARN")
OUTPUT_BUCKET = config.env_bucket("OUTPUT_BUCKET")
_scene = _env_float("SCENE_CHANGE_THRESHOLD", 0, 0, 255)
SETTINGS = Settings(
    access_point_arn=ACCESS_POINT.arn,
    output_bucket=OUTPUT_BUCKET,
    selection=Selection(
        max_frames=config.env_int("MAX_FRAMES_PER_VIDEO", 8, minimum=1, maximum=100),
        min_interval_s=_env_float("MIN_FRAME_INTERVAL_SECONDS", 1.0, 0, 3600),
        scene_threshold=_scene,
        max_width=config.env_int("FRAME_MAX_WIDTH", 1920, minimum=80, maximum=7680),
        jpeg_quality=config.env_int("JPEG_QUALITY", 3, minimum=2, maximum=31),
    ),
    labels=LabelSettings(
        max_labels=config.env_int("REKOGNITION_MAX_LABELS", 10, minimum=1, maximum=1000),
        min_confidence=_env_float("REKOGNITION_MIN_CONFIDENCE", 60, 0, 100),
        max_attempts=config.env_int("REKOGNITION_MAX_ATTEMPTS", 6, minimum=1, maximum=20),
        base_delay=0.5,
        max_delay=8.0,
    ),
    block_bytes=config.env_int("RANGE_BLOCK_BYTES", 1024 * 1024, minimum=64 * 1024, maximum=64 * 1024 * 1024),
    max_blocks=config.env_int("RANGE_MAX_BLOCKS", 4, minimum=1, maximum=64),
)
MAX_BATCH_ITEMS = config.env_int("MAX_BATCH_ITEMS", 100, minimum=1, maximum=10_000)
DEADLINE_MARGIN_MS = config.env_int("DEADLINE_MARGIN_MS", 20_000, minimum=1_000, maximum=120_000)

S3 = runtime.register_client(aws.client("s3"))
# No botocore retries: labels.py retries throttling itself, bounded by the deadline.
REKOGNITION = runtime.register_client(aws.client("rekognition", max_attempts=1))
CLIENTS = Clients(S3, REKOGNITION)
runtime.prime(
    runtime.warm_client(S3, "get_object", Bucket=OUTPUT_BUCKET, Key="results/warm-up"),
    warm_codecs,
)


def _log_failure(record: Mapping[str, Any]) -> None:
    if record["status"] == batch.FAILED:
        logger.warning("video failed", extra={"source_key": record["source_key"], "error_type": record["error_type"]})
    elif record.get("frames_failed"):
        logger.warning(
            "frames not labelled", extra={"source_key": record["source_key"], "frames_failed": record["frames_failed"]}
        )


@observability.handler(logger, tracer, metrics)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    items = batch.parse_batch(event, max_items=MAX_BATCH_ITEMS)
    logger.append_keys(execution_id=items.execution_id)
    result = process_batch(
        CLIENTS,
        SETTINGS,
        items,
        deadline=Deadline.from_context(context, margin_ms=DEADLINE_MARGIN_MS),
        on_record=_log_failure,
    )
    metrics.add_metric(name="FramesLabelled", unit=MetricUnit.Count, value=result.totals["frames_labelled"])
    return observability.batch_done(logger, metrics, result, items.execution_id)
