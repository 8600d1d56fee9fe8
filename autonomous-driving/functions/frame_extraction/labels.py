"""Rekognition DetectLabels on a stored frame (S3Object on the output bucket), throttling retried.

The client is made with botocore retries off (``max_attempts=1``): ``retry_call`` retries
throttling and 5xx replies itself with capped, jittered backoff that never sleeps past the
Lambda deadline. Errors Rekognition raises for one image (``InvalidImageFormatException``,
``ImageTooLargeException``, ``InvalidS3ObjectException``, ``InvalidParameterException``) become
``ModelInvocationError`` with the code in ``details``: a per-frame failure. Throttling that
outlasts the attempts, or the deadline, stays transient: the Map's Retry runs the batch again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.aws import mapped_errors
from shared.errors import ModelInvocationError, PermanentError, ServiceUnavailableError, ThrottlingError
from shared.retry import retry_call

if TYPE_CHECKING:
    from mypy_boto3_rekognition import RekognitionClient

    from shared.retry import Deadline

# https://docs.aws.amazon.com/rekognition/latest/APIReference/API_DetectLabels.html (Errors)
IMAGE_ERRORS = frozenset(
    {
        "InvalidImageFormatException",
        "ImageTooLargeException",
        "InvalidS3ObjectException",
        "InvalidParameterException",
    }
)
S3_OBJECT_MAX_BYTES = 15 * 1024 * 1024  # images in S3: 15 MB; as Bytes: 5 MB
MIN_DIMENSION = 80  # DetectLabels: at least 80 pixels in both dimensions (S3Object/Bytes)


@dataclass(frozen=True)
class LabelSettings:
    max_labels: int
    min_confidence: float
    max_attempts: int
    base_delay: float
    max_delay: float


def detect_labels(
    rekognition: RekognitionClient,
    bucket: str,
    key: str,
    *,
    settings: LabelSettings,
    deadline: Deadline,
    sleep: Callable[[float], object],
) -> list[dict[str, Any]]:
    """``[{"name", "confidence", "parents", "instances"}]`` for the image at ``s3://bucket/key``."""

    def call() -> Any:
        try:
            with mapped_errors("DetectLabels"):
                return rekognition.detect_labels(
                    Image={"S3Object": {"Bucket": bucket, "Name": key}},
                    MaxLabels=settings.max_labels,
                    MinConfidence=settings.min_confidence,
                )
        except PermanentError as e:
            code = e.details.get("code")
            if code in IMAGE_ERRORS:
                raise ModelInvocationError(f"DetectLabels refused {key}: {e.message}", **e.details) from e
            raise

    reply = retry_call(
        call,
        deadline=deadline,
        retry_on=(ThrottlingError, ServiceUnavailableError),
        max_attempts=settings.max_attempts,
        base_delay=settings.base_delay,
        max_delay=settings.max_delay,
        sleep=sleep,
    )
    return [label_record(label) for label in reply.get("Labels", [])]


def label_record(label: dict[str, Any]) -> dict[str, Any]:
    """One DetectLabels ``Labels[]`` entry as the result record keeps it.

    ``instances`` are the label's ``Instances[]`` that carry a ``BoundingBox``: its ``left``,
    ``top``, ``width`` and ``height`` as ratios of the image's width and height (what Rekognition
    returns), and the instance's ``confidence``. They become COCO boxes in pixels downstream.
    """
    instances = []
    for instance in label.get("Instances") or []:
        box = instance.get("BoundingBox")
        if not isinstance(box, dict):
            continue
        instances.append(
            {
                "confidence": round(float(instance.get("Confidence", label.get("Confidence", 0.0))), 3),
                "bbox": {name.lower(): float(box.get(name, 0.0)) for name in ("Left", "Top", "Width", "Height")},
            }
        )
    return {
        "name": str(label.get("Name", "")),
        "confidence": round(float(label.get("Confidence", 0.0)), 3),
        "parents": [str(p.get("Name", "")) for p in label.get("Parents", [])],
        "instances": instances,
    }
