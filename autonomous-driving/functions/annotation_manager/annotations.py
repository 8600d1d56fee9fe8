"""Join the inference input with its predictions into COCO annotations (bounded memory).

Input line *n* and prediction line *n* belong together (every path writes predictions in input
order, one line per record, as Batch Transform does with ``AssembleWith: Line``); the
``record_id`` of both is checked so a shifted or truncated output is an error, never a silently
mislabelled dataset.

Outputs (execution-scoped keys):

- ``annotations/<execution_id>/coco.json``: a COCO object-detection document
  (https://cocodataset.org/#format-data): ``info``, ``images`` (one per key frame: ``id`` from 1,
  ``file_name`` the frame's S3 key, ``width`` and ``height`` in pixels, plus ``source_key``,
  ``timestamp_s``, ``scene`` and the image-level ``tags``: driving categories seen in the
  frame), ``annotations`` (one per detection: ``id`` from 1, ``image_id``, ``category_id``,
  ``bbox`` [x, y, w, h] in pixels inside the image, ``area`` w*h, ``segmentation`` the box's
  polygon, ``iscrowd`` 0, ``score``) and ``categories`` (the COCO ids and names the model
  uses). The boxes are the model's detections, which come from Rekognition's
  ``Instances[].BoundingBox``; a bbox that is malformed or outside its image is an error;
- ``annotations/<execution_id>/pointclouds.jsonl``: one line per point cloud with its
  annotation readiness;
- ``annotations/<execution_id>/summary.json``: the counts and which path served the run.

Images and annotations are spooled to two temporary files while reading and concatenated into
one JSON document, so memory does not grow with the number of frames.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import IO, TYPE_CHECKING, Any, TypeGuard

from shared.aws import mapped_errors
from shared.errors import InvalidFileError, ModelInvocationError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

COCO_CATEGORIES = [
    {"id": 1, "name": "person", "supercategory": "person"},
    {"id": 2, "name": "bicycle", "supercategory": "vehicle"},
    {"id": 3, "name": "car", "supercategory": "vehicle"},
    {"id": 4, "name": "motorcycle", "supercategory": "vehicle"},
    {"id": 6, "name": "bus", "supercategory": "vehicle"},
    {"id": 8, "name": "truck", "supercategory": "vehicle"},
    {"id": 10, "name": "traffic light", "supercategory": "outdoor"},
    {"id": 13, "name": "stop sign", "supercategory": "outdoor"},
]
_CATEGORY_IDS = {c["id"] for c in COCO_CATEGORIES}


def keys(execution_id: str) -> dict[str, str]:
    base = f"annotations/{execution_id}/"
    return {"coco": f"{base}coco.json", "pointclouds": f"{base}pointclouds.jsonl", "summary": f"{base}summary.json"}


@dataclass
class Totals:
    records: int = 0
    images: int = 0
    annotations: int = 0
    pointclouds: int = 0
    pointclouds_ready: int = 0
    by_category: dict[str, int] = field(default_factory=dict)
    tags_by_category: dict[str, int] = field(default_factory=dict)
    by_scene: dict[str, int] = field(default_factory=dict)


def _json_lines(s3: S3Client, bucket: str, key: str) -> Iterator[dict[str, Any]]:
    with mapped_errors("GetObject"):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    try:
        lines = body.iter_lines(chunk_size=64 * 1024)
        number = 0
        while True:
            with mapped_errors("GetObject"):
                line = next(lines, None)
            if line is None:
                return
            if not line.strip():
                continue
            number += 1
            try:
                value = json.loads(line)
            except ValueError as e:
                raise ModelInvocationError(f"s3://{bucket}/{key} line {number} is not JSON: {e}") from e
            if not isinstance(value, dict):
                raise ModelInvocationError(f"s3://{bucket}/{key} line {number} is not a JSON object")
            yield value
    finally:
        body.close()


def join(
    inputs: Iterator[dict[str, Any]],
    predictions: Iterator[dict[str, Any]],
    images: IO[str],
    annotations: IO[str],
    clouds: IO[str],
) -> Totals:
    totals = Totals()
    sentinel: dict[str, Any] = {}
    while True:
        record = next(inputs, sentinel)
        prediction = next(predictions, sentinel)
        if record is sentinel and prediction is sentinel:
            return totals
        if record is sentinel or prediction is sentinel:
            raise ModelInvocationError(
                f"inference output has {'more' if record is sentinel else 'fewer'} lines than its input "
                f"(mismatch after {totals.records} records)",
                records=totals.records,
            )
        if prediction.get("record_id") != record.get("record_id"):
            raise ModelInvocationError(
                f"prediction {totals.records} is for record {prediction.get('record_id')!r}, "
                f"expected {record.get('record_id')!r}",
                records=totals.records,
            )
        totals.records += 1
        if record.get("kind") == "frame":
            _frame(record, prediction, images, annotations, totals)
        else:
            ready = bool(prediction.get("annotation_ready"))
            totals.pointclouds += 1
            totals.pointclouds_ready += ready
            line = {
                "source_key": record.get("source_key"),
                "annotation_ready": ready,
                "readiness": prediction.get("readiness"),
                "qc": record.get("qc"),
            }
            clouds.write(json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n")


def _frame(
    record: dict[str, Any], prediction: dict[str, Any], images: IO[str], annotations: IO[str], totals: Totals
) -> None:
    image_id = totals.images + 1
    width, height = record.get("width"), record.get("height")
    if not (_is_int(width) and _is_int(height) and width > 0 and height > 0):
        raise InvalidFileError(
            f"inference input record {record.get('record_id')!r} is a frame without a positive width and height",
            record_id=record.get("record_id"),
        )
    scene = str(prediction.get("scene", "unknown"))
    image = {
        "id": image_id,
        "file_name": record.get("frame_key"),
        "width": width,
        "height": height,
        "source_key": record.get("source_key"),
        "timestamp_s": record.get("timestamp_s"),
        "scene": scene,
        "scene_score": prediction.get("scene_score"),
        "tags": prediction.get("tags") or [],
    }
    images.write(("," if totals.images else "") + json.dumps(image, separators=(",", ":"), ensure_ascii=False))
    totals.images += 1
    totals.by_scene[scene] = totals.by_scene.get(scene, 0) + 1
    for tag in prediction.get("tags") or []:
        if tag.get("category_id") not in _CATEGORY_IDS:
            raise ModelInvocationError(f"prediction tags unknown category id {tag.get('category_id')!r}")
        name = str(tag.get("category"))
        totals.tags_by_category[name] = totals.tags_by_category.get(name, 0) + 1
    for detection in prediction.get("detections") or []:
        category_id = detection.get("category_id")
        if category_id not in _CATEGORY_IDS:
            raise ModelInvocationError(f"prediction uses unknown category id {category_id!r}")
        x, y, w, h = _box(detection.get("bbox"), width, height, record.get("record_id"))
        score = detection.get("score")
        if score is not None and not (_is_number(score) and 0 <= score <= 1):
            raise ModelInvocationError(f"prediction for record {record.get('record_id')!r} has score {score!r}")
        annotation = {
            "id": totals.annotations + 1,
            "image_id": image_id,
            "category_id": category_id,
            "bbox": [x, y, w, h],
            # COCO's area of a box-only annotation is the box's; its segmentation the box's polygon.
            "area": round(w * h, 4),
            "segmentation": [[x, y, round(x + w, 2), y, round(x + w, 2), round(y + h, 2), x, round(y + h, 2)]],
            "iscrowd": 0,
            "score": score,
        }
        annotations.write(
            ("," if totals.annotations else "") + json.dumps(annotation, separators=(",", ":"), ensure_ascii=False)
        )
        totals.annotations += 1
        name = str(detection.get("category"))
        totals.by_category[name] = totals.by_category.get(name, 0) + 1


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _box(bbox: Any, width: int, height: int, record_id: Any) -> tuple[float, float, float, float]:
    """A COCO ``bbox`` [x, y, w, h] in pixels, checked: four finite numbers, a positive size, inside
    the image (half a pixel of rounding allowed). Anything else is a ``ModelInvocationError``."""
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_is_number(v) for v in bbox)):
        raise ModelInvocationError(f"prediction for record {record_id!r} has bbox {bbox!r}, not [x, y, w, h]")
    x, y, w, h = (float(v) for v in bbox)
    slack = 0.5
    if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > width + slack or y + h > height + slack:
        raise ModelInvocationError(
            f"prediction for record {record_id!r} has bbox {bbox!r} outside its {width}x{height} image"
        )
    return x, y, w, h


def build(
    s3: S3Client,
    *,
    execution_id: str,
    input_bucket: str,
    input_key: str,
    output_bucket: str,
    output_key: str,
    result_bucket: str,
    served: dict[str, Any],
) -> dict[str, Any]:
    out = keys(execution_id)
    with (
        tempfile.TemporaryFile("w+", encoding="utf-8") as images,
        tempfile.TemporaryFile("w+", encoding="utf-8") as annotations,
        tempfile.TemporaryFile("w+", encoding="utf-8") as clouds,
        tempfile.TemporaryFile("w+b") as coco,
    ):
        totals = join(
            _json_lines(s3, input_bucket, input_key),
            _json_lines(s3, output_bucket, output_key),
            images,
            annotations,
            clouds,
        )
        info = {"description": "UC9 autonomous-driving key frames", "execution_id": execution_id, **served}
        coco.write(b'{"info":' + json.dumps(info).encode() + b',"images":[')
        _copy(images, coco)
        coco.write(b'],"annotations":[')
        _copy(annotations, coco)
        coco.write(b'],"categories":' + json.dumps(COCO_CATEGORIES).encode() + b"}")
        coco.seek(0)
        with mapped_errors("PutObject"):
            s3.upload_fileobj(coco, result_bucket, out["coco"], ExtraArgs={"ContentType": "application/json"})
        clouds.seek(0)
        with tempfile.TemporaryFile("w+b") as raw:
            _copy(clouds, raw)
            raw.seek(0)
            with mapped_errors("PutObject"):
                s3.upload_fileobj(
                    raw, result_bucket, out["pointclouds"], ExtraArgs={"ContentType": "application/jsonlines"}
                )
    summary = {"execution_id": execution_id, **served, **asdict(totals), "keys": out}
    with mapped_errors("PutObject"):
        s3.put_object(
            Bucket=result_bucket,
            Key=out["summary"],
            Body=json.dumps(summary, indent=1).encode("utf-8"),
            ContentType="application/json",
        )
    return summary


def _copy(source: IO[str], target: IO[bytes]) -> None:
    source.seek(0)
    while chunk := source.read(64 * 1024):
        target.write(chunk.encode("utf-8"))
