"""UC9 (autonomous-driving) test helpers: its function folders, events, and sample files."""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # pinned in requirements-lock.txt (cfn-lint needs it)

from tests.support.fakes import RecordingS3 as MemoryS3
from tests.support.functions import load_function_from
from tests.support.templates import REPO_ROOT

UC_DIR = REPO_ROOT / "autonomous-driving"
FUNCTIONS_DIR = UC_DIR / "functions"
EVENTS = "uc09-autonomous-driving"


def load_function(function: str, *modules: str) -> SimpleNamespace:
    """Import ``autonomous-driving/functions/<function>/<module>.py`` for each module, together."""
    return load_function_from(FUNCTIONS_DIR / function, *modules, prefix="uc09")


def listed_items(ap: Any, keys: list[str]) -> list[dict[str, Any]]:
    """Manifest records (``ObjectInfo`` dicts) of objects behind the access point fixture."""
    out = []
    for key in keys:
        head = ap.s3.head_object(Bucket=ap.arn, Key=key)
        out.append(
            {
                "key": key,
                "size": head["ContentLength"],
                "etag": head["ETag"].strip('"'),
                "last_modified": "2026-11-20T08:15:30.000Z",
            }
        )
    return out


def stored_record(s3: Any, bucket: str, execution_id: str, key: str) -> dict[str, Any]:
    """The result record a batch function wrote for ``key``."""
    from shared.batch import result_key

    record: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=result_key(execution_id, key))["Body"].read())
    return record


class FileS3:
    """A read-only S3 stand-in serving ranged GETs of local files without loading them whole.

    moto keeps each object in memory and copies it on every ranged GET, which would swamp a
    tracemalloc measurement of the reader itself; this serves exactly the requested bytes.
    """

    def __init__(self, files: dict[str, Path], etags: dict[str, str]) -> None:
        self.files = files
        self.etags = etags
        self.requests = 0

    def get_object(self, *, Bucket: str, Key: str, Range: str, IfMatch: str = "", **_: Any) -> dict[str, Any]:  # noqa: N803
        self.requests += 1
        path = self.files[Key]
        size = path.stat().st_size
        start, end = (int(v) for v in Range.removeprefix("bytes=").split("-"))
        end = min(end, size - 1)
        with path.open("rb") as handle:
            handle.seek(start)
            data = handle.read(end - start + 1)
        return {"Body": io.BytesIO(data), "ContentRange": f"bytes {start}-{end}/{size}", "ETag": f'"{self.etags[Key]}"'}


def sample_files(objects: int = 40, seed: int = 1) -> tuple[Any, dict[str, bytes]]:
    """The UC9 sample set and its objects, generated in memory."""
    from local.samples import autonomous_driving

    s3 = MemoryS3()
    samples = autonomous_driving.generate(s3, "unused-bucket", objects=objects, seed=seed)
    return samples, s3.objects


def rng(seed: int = 0) -> random.Random:
    return random.Random(seed)


# --- COCO ------------------------------------------------------------------------------------------
# The object-detection layout of https://cocodataset.org/#format-data: the fields every image,
# annotation and category must have, with their types (extra fields are allowed, as COCO tools
# ignore them). ``coco_problems`` adds what a schema cannot say: unique ids, references that
# resolve, boxes and polygons inside their image, area equal to the box's for box-only annotations.
_NUMBER = {"type": "number"}
_ID = {"type": "integer", "minimum": 1}
COCO_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["images", "annotations", "categories"],
    "properties": {
        "info": {"type": "object"},
        "images": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "width", "height", "file_name"],
                "properties": {
                    "id": _ID,
                    "width": {"type": "integer", "minimum": 1},
                    "height": {"type": "integer", "minimum": 1},
                    "file_name": {"type": "string", "minLength": 1},
                },
            },
        },
        "annotations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "image_id", "category_id", "segmentation", "area", "bbox", "iscrowd"],
                "properties": {
                    "id": _ID,
                    "image_id": _ID,
                    "category_id": _ID,
                    "bbox": {"type": "array", "items": _NUMBER, "minItems": 4, "maxItems": 4},
                    "area": {"type": "number", "exclusiveMinimum": 0},
                    "iscrowd": {"enum": [0, 1]},
                    "segmentation": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "array", "items": _NUMBER, "minItems": 6},
                    },
                    "score": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
                },
            },
        },
        "categories": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["id", "name", "supercategory"],
                "properties": {
                    "id": _ID,
                    "name": {"type": "string", "minLength": 1},
                    "supercategory": {"type": "string"},
                },
            },
        },
    },
}


def coco_problems(document: Any) -> list[str]:
    """Every way ``document`` is not a valid COCO detection document (empty: valid)."""
    validator = jsonschema.Draft202012Validator(COCO_SCHEMA)
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]
    if problems:
        return problems
    for section in ("images", "annotations", "categories"):
        ids = [entry["id"] for entry in document[section]]
        if len(ids) != len(set(ids)):
            problems.append(f"{section}: duplicate ids")
    images = {image["id"]: image for image in document["images"]}
    categories = {category["id"] for category in document["categories"]}
    for annotation in document["annotations"]:
        where = f"annotation {annotation['id']}"
        image = images.get(annotation["image_id"])
        if image is None:
            problems.append(f"{where}: image_id {annotation['image_id']} names no image")
            continue
        if annotation["category_id"] not in categories:
            problems.append(f"{where}: category_id {annotation['category_id']} names no category")
        x, y, w, h = annotation["bbox"]
        size = f"{image['width']}x{image['height']}"
        if x < 0 or y < 0 or w <= 0 or h <= 0 or x + w > image["width"] + 0.5 or y + h > image["height"] + 0.5:
            problems.append(f"{where}: bbox {annotation['bbox']} is not inside its {size} image")
        for polygon in annotation["segmentation"]:
            xs, ys = polygon[0::2], polygon[1::2]
            inside = min(xs) >= x - 0.5 and max(xs) <= x + w + 0.5 and min(ys) >= y - 0.5 and max(ys) <= y + h + 0.5
            if len(polygon) % 2 or not inside:
                problems.append(f"{where}: segmentation {polygon} is not within its bbox")
        if abs(annotation["area"] - w * h) > 0.01 * w * h + 0.01:
            problems.append(f"{where}: area {annotation['area']} is not the box's {w * h}")
    return problems


def iou(a: list[float], b: list[float]) -> float:
    """Intersection over union of two [x, y, w, h] boxes."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0
