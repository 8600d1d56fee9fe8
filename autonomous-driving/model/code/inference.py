"""UC9 annotation model in the SageMaker framework-container contract.

SageMaker's Python framework containers (scikit-learn, PyTorch, ...) load ``code/inference.py``
from the extracted ``model.tar.gz`` and call, per request:

- ``model_fn(model_dir)`` once per worker: loads ``model.json`` (built by ``train.py``).
- ``input_fn(body, content_type)``: ``application/jsonlines`` (one record per line, what Batch
  Transform sends with ``SplitType: Line``) or ``application/json`` (one record or a list).
- ``predict_fn(records, model)``: one prediction per record, in order.
- ``output_fn(predictions, accept)``: ``application/jsonlines`` (one line per record, what Batch
  Transform assembles with ``AssembleWith: Line``) or ``application/json``.

Records (written by the prepare_inference function)::

    {"record_id": "f-0", "kind": "frame", "width": 640, "height": 360,
     "labels": [{"name": "Car", "confidence": 97.5,
                 "instances": [{"confidence": 96.0,
                                "bbox": {"left": 0.1, "top": 0.2, "width": 0.3, "height": 0.2}}]}]}
    {"record_id": "p-3", "kind": "pointcloud",
     "qc": {"point_count": 120000, "nan_ratio": 0.0, "zero_ratio": 0.01, "density": 35.2,
            "intensity_min": 0.0, "intensity_max": 255.0}}

Predictions: a frame gets the driving categories seen in it (``tags``: ``category_id``,
``score``, for labels above the category's threshold), COCO detections (``category_id``, pixel
``bbox`` [x, y, w, h] clipped to the image, ``area``, ``score``) for the label instances that carry
a bounding box (Rekognition's ``Instances[].BoundingBox``, ratios of the image size), plus a
scene class (softmax regression over label confidences); a point cloud gets an
annotation-readiness probability (logistic regression over its QC figures). Pure Python: no
dependency beyond what every framework container has.
"""

from __future__ import annotations

import json
import math
import os
from typing import Any

JSONLINES = "application/jsonlines"
JSON = "application/json"
MODEL_FILE = "model.json"


class InferenceInputError(ValueError):
    """A request body the model cannot read (the container answers 4xx)."""


def model_fn(model_dir: str) -> dict[str, Any]:
    with open(os.path.join(model_dir, MODEL_FILE), encoding="utf-8") as f:
        model: dict[str, Any] = json.load(f)
    for key in ("version", "categories", "scene", "pointcloud"):
        if key not in model:
            raise InferenceInputError(f"{MODEL_FILE} has no {key!r}")
    return model


def input_fn(body: bytes | str, content_type: str) -> list[dict[str, Any]]:
    text = body.decode("utf-8") if isinstance(body, bytes | bytearray) else body
    kind = (content_type or JSONLINES).split(";")[0].strip().lower()
    if kind in {JSONLINES, "application/x-jsonlines", "application/jsonl"}:
        records = [json.loads(line) for line in text.split("\n") if line.strip()]
    elif kind == JSON:
        parsed = json.loads(text)
        records = parsed if isinstance(parsed, list) else [parsed]
    else:
        raise InferenceInputError(f"unsupported content type {content_type!r}")
    for record in records:
        if not isinstance(record, dict) or record.get("kind") not in {"frame", "pointcloud"}:
            raise InferenceInputError("every record must be an object with kind 'frame' or 'pointcloud'")
    return records


def _softmax(scores: list[float]) -> list[float]:
    top = max(scores)
    exps = [math.exp(s - top) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def scene_features(record: dict[str, Any], vocabulary: list[str]) -> list[float]:
    """Label confidences (0..1) over the model's vocabulary, max per label name."""
    best: dict[str, float] = {}
    for label in record.get("labels") or []:
        name = str(label.get("name", ""))
        best[name] = max(best.get(name, 0.0), float(label.get("confidence", 0.0)) / 100.0)
    return [best.get(word, 0.0) for word in vocabulary]


def pointcloud_features(qc: dict[str, Any]) -> list[float]:
    """The QC figures the readiness model weighs, scaled to comparable ranges."""
    points = max(0.0, float(qc.get("point_count") or 0))
    density = max(0.0, float(qc.get("density") or 0.0))
    span = float(qc.get("intensity_max") or 0.0) - float(qc.get("intensity_min") or 0.0)
    return [
        float(qc.get("nan_ratio") or 0.0),
        float(qc.get("zero_ratio") or 0.0),
        math.log10(points + 1.0) / 7.0,
        1.0 if points >= 1000 else 0.0,
        math.log10(density + 1.0) / 4.0,
        1.0 if span > 0 else 0.0,
    ]


def _tags(record: dict[str, Any], model: dict[str, Any]) -> list[dict[str, Any]]:
    """Driving categories seen in the frame (label confidence above the category's threshold)."""
    categories = {c["label"]: c for c in model["categories"]}
    best: dict[int, dict[str, Any]] = {}
    for label in record.get("labels") or []:
        category = categories.get(str(label.get("name", "")))
        score = float(label.get("confidence", 0.0)) / 100.0
        if category is None or score < category["min_score"]:
            continue
        if category["id"] not in best or best[category["id"]]["score"] < score:
            best[category["id"]] = {
                "category_id": category["id"],
                "category": category["name"],
                "score": round(score, 4),
            }
    return [best[k] for k in sorted(best)]


def pixel_box(box: dict[str, Any], width: float, height: float) -> list[float] | None:
    """Rekognition's ratio box (left/top/width/height of the image) as a COCO ``bbox`` [x, y, w, h]
    in pixels (two decimals), clipped to the image (Rekognition may return a box reaching past an
    edge); None when nothing of it is inside the image or it rounds to no width or height."""
    x0 = min(max(float(box.get("left", 0.0)) * width, 0.0), width)
    y0 = min(max(float(box.get("top", 0.0)) * height, 0.0), height)
    x1 = min(max((float(box.get("left", 0.0)) + float(box.get("width", 0.0))) * width, 0.0), width)
    y1 = min(max((float(box.get("top", 0.0)) + float(box.get("height", 0.0))) * height, 0.0), height)
    box_px = [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)]
    if box_px[2] <= 0 or box_px[3] <= 0:  # nothing left inside, or less than the rounding
        return None
    return box_px


def _detections(record: dict[str, Any], model: dict[str, Any]) -> list[dict[str, Any]]:
    """COCO detections for the label instances with a box; none for a frame without dimensions
    (a ratio box cannot become pixels)."""
    width = float(record.get("width") or 0)
    height = float(record.get("height") or 0)
    if width <= 0 or height <= 0:
        return []
    categories = {c["label"]: c for c in model["categories"]}
    out = []
    for label in record.get("labels") or []:
        category = categories.get(str(label.get("name", "")))
        if category is None:
            continue
        for instance in label.get("instances") or []:
            score = float(instance.get("confidence", label.get("confidence", 0.0))) / 100.0
            bbox = pixel_box(instance.get("bbox") or {}, width, height)
            if score < category["min_score"] or bbox is None:
                continue
            out.append(
                {
                    "category_id": category["id"],
                    "category": category["name"],
                    "bbox": bbox,
                    "area": round(bbox[2] * bbox[3], 4),
                    "score": round(score, 4),
                }
            )
    return out


def predict_fn(records: list[dict[str, Any]], model: dict[str, Any]) -> list[dict[str, Any]]:
    scene = model["scene"]
    readiness = model["pointcloud"]
    predictions = []
    for record in records:
        rid = record.get("record_id")
        if record["kind"] == "frame":
            x = scene_features(record, scene["vocabulary"])
            logits = [
                sum(w * v for w, v in zip(row, x, strict=True)) + b
                for row, b in zip(scene["weights"], scene["bias"], strict=True)
            ]
            probs = _softmax(logits)
            best = max(range(len(probs)), key=probs.__getitem__)
            predictions.append(
                {
                    "record_id": rid,
                    "kind": "frame",
                    "scene": scene["classes"][best],
                    "scene_score": round(probs[best], 4),
                    "tags": _tags(record, model),
                    "detections": _detections(record, model),
                }
            )
        else:
            x = pointcloud_features(record.get("qc") or {})
            z = sum(w * v for w, v in zip(readiness["weights"], x, strict=True)) + readiness["bias"]
            p = _sigmoid(z)
            predictions.append(
                {
                    "record_id": rid,
                    "kind": "pointcloud",
                    "annotation_ready": p >= readiness["threshold"],
                    "readiness": round(p, 4),
                }
            )
    return predictions


def output_fn(predictions: list[dict[str, Any]], accept: str) -> tuple[str, str]:
    """(body, content type): the toolkits take a tuple as the response and its content type."""
    kind = (accept or JSONLINES).split(";")[0].strip().lower()
    if kind in {JSONLINES, "application/x-jsonlines", "application/jsonl", "*/*"}:
        return "".join(json.dumps(p, separators=(",", ":")) + "\n" for p in predictions), JSONLINES
    if kind == JSON:
        return json.dumps(predictions, separators=(",", ":")), JSON
    raise InferenceInputError(f"unsupported accept type {accept!r}")
