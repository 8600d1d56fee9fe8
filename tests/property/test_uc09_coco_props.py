"""Properties of UC9's COCO boxes: for any Rekognition-shaped ratio box (including boxes reaching
past an edge, as Rekognition returns them) and any frame size, the model's pixel box is either
dropped or lies inside the image with a positive size, and the annotation manager accepts every
box the model produces, writing a valid COCO annotation whose area is the box's."""

from __future__ import annotations

import importlib.util
import io
import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.support.templates import REPO_ROOT
from tests.support.uc09 import coco_problems, load_function

pytestmark = pytest.mark.property

ANNOTATIONS = load_function("annotation_manager", "annotations").annotations
_spec = importlib.util.spec_from_file_location(
    "uc09_props_inference", REPO_ROOT / "autonomous-driving" / "model" / "code" / "inference.py"
)
assert _spec is not None
assert _spec.loader is not None
inference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(inference)

ratio = st.floats(min_value=-0.5, max_value=1.5, allow_nan=False)
size = st.floats(min_value=0.0, max_value=1.2, allow_nan=False)
dimension = st.integers(min_value=1, max_value=8192)


@given(ratios=st.tuples(ratio, ratio, size, size), width=dimension, height=dimension)
def test_a_pixel_box_is_inside_the_image_or_dropped(ratios, width, height):
    left, top, w, h = ratios
    box = inference.pixel_box({"left": left, "top": top, "width": w, "height": h}, width, height)
    if box is None:
        return
    x, y, bw, bh = box
    assert min(bw, bh) > 0
    assert min(x, y) >= 0
    assert x + bw <= width + 0.02
    assert y + bh <= height + 0.02


@given(
    boxes=st.lists(st.tuples(ratio, ratio, size, size), min_size=1, max_size=5),
    width=dimension,
    height=dimension,
)
def test_every_box_the_model_makes_becomes_a_valid_coco_annotation(boxes, width, height):
    detections = []
    for left, top, w, h in boxes:
        pixels = inference.pixel_box({"left": left, "top": top, "width": w, "height": h}, width, height)
        if pixels is not None:
            detections.append({"category_id": 3, "category": "car", "bbox": pixels, "score": 0.9})
    record = {"record_id": 0, "kind": "frame", "frame_key": "f.jpg", "width": width, "height": height}
    images, annotations, clouds = io.StringIO(), io.StringIO(), io.StringIO()
    ANNOTATIONS.join(iter([record]), iter([{"record_id": 0, "detections": detections}]), images, annotations, clouds)
    document: dict[str, Any] = {
        "images": json.loads("[" + images.getvalue() + "]"),
        "annotations": json.loads("[" + annotations.getvalue() + "]"),
        "categories": ANNOTATIONS.COCO_CATEGORIES,
    }
    assert len(document["annotations"]) == len(detections)
    assert coco_problems(document) == []
