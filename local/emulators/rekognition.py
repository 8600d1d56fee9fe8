"""Amazon Rekognition ``DetectLabels``, emulated: deterministic labels derived from the image.

No model runs here. The image is really decoded (Pillow) and the labels come from what it shows,
so a different frame gets different labels and the same frame always the same ones:

- a bright, blue-ish upper half -> ``Sky`` (parent ``Outdoors``); a grey, low-saturation lower
  half -> ``Road`` (parents ``Tarmac``, ``Outdoors``); a saturated blob in the lower half ->
  ``Car`` (parents ``Vehicle``, ``Transportation``) with one instance whose ``BoundingBox`` is
  the blob's; a mean brightness under 60 -> ``Night``; many edges -> ``Urban``, else ``Nature``;
  ``Outdoors`` or ``Indoors`` always. Confidences follow the strength of each cue.

Requests are validated as the service does (API_DetectLabels): exactly one of ``Bytes`` and
``S3Object``; ``Bytes`` at most 5 MB, an S3 object at most 15 MB (``ImageTooLargeException``);
only JPEG and PNG, at least 80 pixels each way (``InvalidImageFormatException``); a missing
object (``InvalidS3ObjectException``); ``MaxLabels`` >= 0 and ``MinConfidence`` 0-100
(``InvalidParameterException``). Throttling is simulated on demand: ``throttle_next(n)`` answers
the next ``n`` calls with ``ThrottlingException`` (HTTP 400, as Rekognition sends it),
``throttle_every=k`` every k-th call, and ``code`` can be ``ProvisionedThroughputExceededException``.

Install with ``interceptor.add(emulator.hook, service="rekognition")``; ``read_object(bucket,
key)`` returns an object's bytes (or raises ``KeyError``) - e.g. ``s3_reader()``, moto's S3.
"""

from __future__ import annotations

import base64
import hashlib
import io
import threading
from collections.abc import Callable
from typing import Any, Final

import numpy as np
from botocore.awsrequest import AWSResponse
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.s3.exceptions import MissingBucket
from moto.s3.models import s3_backends
from PIL import Image, UnidentifiedImageError

from local.runner.interceptor import Call, error_reply, reply

BYTES_LIMIT: Final = 5 * 1024 * 1024
S3_OBJECT_LIMIT: Final = 15 * 1024 * 1024
MIN_DIMENSION: Final = 80
DEFAULT_MIN_CONFIDENCE: Final = 55.0
DEFAULT_MAX_LABELS: Final = 1000
LABEL_MODEL_VERSION: Final = "3.0"

ReadObject = Callable[[str, str], bytes]


class RekognitionError(Exception):
    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def s3_reader(account_id: str = DEFAULT_ACCOUNT_ID, partition: str = "aws") -> ReadObject:
    """A ``read_object`` over moto's S3 backend (inside ``mock_aws``): the latest version of an
    object, as Rekognition reads it on the service side. Not through a client: the caller's SDK
    is not involved on AWS either, so its faults and request costs are not the caller's."""

    def read(bucket: str, key: str) -> bytes:
        try:
            found = s3_backends[account_id][partition].get_object(bucket, key)
        except MissingBucket as e:
            raise KeyError(bucket) from e
        if found is None:  # no such key, or its latest version is a delete marker
            raise KeyError(key)
        return bytes(found.value)

    return read


class RekognitionEmulator:
    """``DetectLabels`` over images in emulated S3 or sent as ``Bytes``."""

    def __init__(
        self,
        read_object: ReadObject,
        *,
        throttle_every: int = 0,
        code: str = "ThrottlingException",
    ) -> None:
        if throttle_every < 0:
            raise ValueError("throttle_every must be >= 0")
        self._read = read_object
        self.throttle_every = throttle_every
        self.code = code
        self._throttle_next = 0
        self.calls: list[dict[str, Any]] = []
        self.throttled = 0
        self._count = 0
        self._lock = threading.Lock()

    def throttle_next(self, count: int) -> None:
        """Answer the next ``count`` DetectLabels calls with the throttling error."""
        with self._lock:
            self._throttle_next += count

    def hook(self, call: Call) -> AWSResponse | None:
        if call.service != "rekognition" or call.operation != "DetectLabels":
            return None
        with self._lock:
            self._count += 1
            throttle = self._throttle_next > 0 or (self.throttle_every and self._count % self.throttle_every == 0)
            if self._throttle_next > 0:
                self._throttle_next -= 1
            if throttle:
                self.throttled += 1
        if throttle:
            return error_reply(call, self.code, "Rate exceeded", 400)
        try:
            response = self.detect_labels(call.json())
        except RekognitionError as e:
            with self._lock:
                self.calls.append({"error": e.code})
            return error_reply(call, e.code, e.message, e.status)
        with self._lock:
            self.calls.append({"labels": [label["Name"] for label in response["Labels"]]})
        return reply(call, 200, response)

    # --- the operation ----------------------------------------------------------------------
    def detect_labels(self, request: dict[str, Any]) -> dict[str, Any]:
        data = self._image_bytes(request.get("Image"))
        max_labels = request.get("MaxLabels", DEFAULT_MAX_LABELS)
        min_confidence = request.get("MinConfidence", DEFAULT_MIN_CONFIDENCE)
        if not isinstance(max_labels, int) or max_labels < 0:
            raise RekognitionError("InvalidParameterException", "MaxLabels must be an integer >= 0")
        if not isinstance(min_confidence, int | float) or not 0 <= min_confidence <= 100:
            raise RekognitionError("InvalidParameterException", "MinConfidence must be between 0 and 100")
        labels = [label for label in derive_labels(data) if label["Confidence"] >= min_confidence]
        labels.sort(key=lambda label: (-label["Confidence"], label["Name"]))
        return {"Labels": labels[:max_labels], "LabelModelVersion": LABEL_MODEL_VERSION}

    def _image_bytes(self, image: Any) -> bytes:
        if not isinstance(image, dict) or (("Bytes" in image) == ("S3Object" in image)):
            raise RekognitionError("InvalidParameterException", "Image must have exactly one of Bytes or S3Object")
        if "Bytes" in image:
            data = base64.b64decode(image["Bytes"])
            if len(data) > BYTES_LIMIT:
                raise RekognitionError("ImageTooLargeException", "Image size is too large.")
            return data
        s3_object = image["S3Object"]
        bucket, name = s3_object.get("Bucket"), s3_object.get("Name")
        if not bucket or not name:
            raise RekognitionError("InvalidParameterException", "S3Object needs Bucket and Name")
        try:
            data = self._read(str(bucket), str(name))
        except KeyError as e:
            raise RekognitionError(
                "InvalidS3ObjectException",
                "Unable to get object metadata from S3. Check object key, region and/or access permissions.",
            ) from e
        if len(data) > S3_OBJECT_LIMIT:
            raise RekognitionError("ImageTooLargeException", "Image size is too large.")
        return data


def _decode(data: bytes) -> np.ndarray[Any, np.dtype[np.float32]]:
    if not data.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")):
        raise RekognitionError("InvalidImageFormatException", "Request has invalid image format")
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            if min(image.size) < MIN_DIMENSION:
                raise RekognitionError(
                    "InvalidImageFormatException",
                    f"Image dimensions {image.size[0]}x{image.size[1]} are below the minimum of {MIN_DIMENSION} pixels",
                )
            small = image.convert("RGB").resize((64, 48), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise RekognitionError("InvalidImageFormatException", "Request has invalid image format") from e
    return np.asarray(small, dtype=np.float32) / 255.0


def _label(
    name: str, confidence: float, parents: tuple[str, ...] = (), instances: list[Any] | None = None
) -> dict[str, Any]:
    return {
        "Name": name,
        "Confidence": round(min(99.9, max(0.0, confidence)), 3),
        "Instances": instances or [],
        "Parents": [{"Name": p} for p in parents],
        "Aliases": [],
        "Categories": [],
    }


def derive_labels(data: bytes) -> list[dict[str, Any]]:
    """The labels of one image (see the module docstring)."""
    rgb = _decode(data)
    height = rgb.shape[0]
    top, _bottom = rgb[: height // 2], rgb[height // 2 :]
    brightness = float(rgb.mean()) * 255
    high, low = rgb.max(axis=2), rgb.min(axis=2)
    saturation = np.where(high > 0, (high - low) / np.maximum(high, 1e-6), 0.0)
    # a stable per-image jitter (0-2) so equal cue strengths still differ between images
    jitter = int(hashlib.sha256(data).hexdigest()[:4], 16) % 200 / 100
    labels: list[dict[str, Any]] = []
    top_blue = float((top[..., 2] - top[..., 0]).mean())
    if float(top.mean()) > 0.35 and top_blue > -0.05:
        labels.append(_label("Sky", 70 + 25 * min(1.0, top_blue + 0.5) + jitter, ("Outdoors",)))
    bottom_sat = saturation[height // 2 :]
    if float(bottom_sat.mean()) < 0.25:
        labels.append(_label("Road", 65 + 30 * (1 - float(bottom_sat.mean()) * 4) + jitter, ("Tarmac", "Outdoors")))
    blob = bottom_sat > 0.5
    share = float(blob.mean())
    if share > 0.01:
        rows, cols = np.nonzero(blob)
        box = {
            "Width": round(float(cols.max() - cols.min() + 1) / rgb.shape[1], 4),
            "Height": round(float(rows.max() - rows.min() + 1) / height, 4),
            "Left": round(float(cols.min()) / rgb.shape[1], 4),
            "Top": round(float(rows.min() + height // 2) / height, 4),
        }
        confidence = 60 + 39 * min(1.0, share * 10)
        labels.append(
            _label(
                "Car",
                confidence + jitter,
                ("Vehicle", "Transportation"),
                [{"BoundingBox": box, "Confidence": confidence}],
            )
        )
        labels.append(_label("Vehicle", confidence - 1 + jitter, ("Transportation",)))
        labels.append(_label("Transportation", confidence - 2 + jitter))
    if brightness < 60:
        labels.append(_label("Night", 60 + (60 - brightness) / 2 + jitter, ("Outdoors",)))
    edges = float(np.abs(np.diff(rgb.mean(axis=2), axis=1)).mean())
    labels.append(_label("Urban" if edges > 0.04 else "Nature", 55 + min(40.0, edges * 400) + jitter, ("Outdoors",)))
    outdoors = any(label["Name"] in {"Sky", "Road"} for label in labels)
    labels.append(_label("Outdoors" if outdoors else "Indoors", 80 + jitter if outdoors else 56 + jitter))
    return labels
