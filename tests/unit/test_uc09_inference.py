"""UC9 model (SageMaker framework-container contract), prepare_inference and annotation_manager logic."""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from shared.errors import InvalidFileError, ModelInvocationError, TooManyFailuresError
from shared.retry import Deadline
from tests.support.functions import load_function_from
from tests.support.templates import REPO_ROOT
from tests.support.uc09 import coco_problems

pytestmark = pytest.mark.unit

UC9 = REPO_ROOT / "autonomous-driving"
preparation = load_function_from(UC9 / "functions" / "prepare_inference", "preparation", prefix="uc09").preparation
coco_join = load_function_from(UC9 / "functions" / "annotation_manager", "annotations", prefix="uc09").annotations
labels = load_function_from(UC9 / "functions" / "frame_extraction", "labels", prefix="uc09").labels


def _module(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train = _module(UC9 / "model" / "train.py", "uc09_model_train")
inference = _module(UC9 / "model" / "code" / "inference.py", "uc09_model_inference")


@pytest.fixture(scope="module")
def built() -> dict[str, Any]:
    """One build of the model for the module (a build is 300 + 600 epochs of pure-Python descent)."""
    model: dict[str, Any] = train.build()
    return model


@pytest.fixture(scope="module")
def model(tmp_path_factory, built) -> dict[str, Any]:
    directory = tmp_path_factory.mktemp("model")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(train, "build", lambda: built)  # write() as it is, around the module's build
        train.write(directory)
    loaded: dict[str, Any] = inference.model_fn(str(directory))
    return loaded


FRAME: dict[str, Any] = {
    "record_id": 0,
    "kind": "frame",
    "width": 640,
    "height": 360,
    "labels": [
        {"name": "Car", "confidence": 97.0,
         "instances": [{"confidence": 96.0, "bbox": {"left": 0.5, "top": 0.25, "width": 0.25, "height": 0.5}}]},
        {"name": "Traffic Light", "confidence": 80.0, "instances": []},
        {"name": "Building", "confidence": 90.0, "instances": []},
        {"name": "Road", "confidence": 95.0, "instances": []},
    ],
}  # fmt: skip
CLOUD: dict[str, Any] = {"record_id": 1, "kind": "pointcloud",
         "qc": {"point_count": 5000, "nan_ratio": 0.0, "zero_ratio": 0.01, "density": 12.0,
                "intensity_min": 0.0, "intensity_max": 255.0}}  # fmt: skip


def test_the_model_is_built_reproducibly_and_learns_its_rules(built, monkeypatch):
    assert train.build() == built  # a second build from scratch gives the same model
    assert built["scene"]["held_out_accuracy"] >= 0.9
    assert built["pointcloud"]["held_out_accuracy"] >= 0.9
    # The archive around a model is reproducible too (member order, mtimes, owner, gzip header);
    # that the model inside it is, the line above shows.
    monkeypatch.setattr(train, "build", lambda: copy.deepcopy(built))
    assert train.archive_bytes() == train.archive_bytes()


def test_jsonlines_in_predictions_out_one_per_record_in_order(model):
    body = (json.dumps(FRAME) + "\n" + json.dumps(CLOUD) + "\n").encode()
    records = inference.input_fn(body, "application/jsonlines")
    predictions = inference.predict_fn(records, model)
    text, content_type = inference.output_fn(predictions, "application/jsonlines")
    assert content_type == "application/jsonlines"
    lines = [json.loads(line) for line in text.splitlines()]
    assert [p["record_id"] for p in lines] == [0, 1]
    frame, cloud = lines
    (car,) = frame["detections"]
    assert car["category"] == "car"
    assert car["bbox"] == [320.0, 90.0, 160.0, 180.0]  # pixels: left/top/width/height x 640x360
    assert {t["category"] for t in frame["tags"]} == {"car", "traffic light"}
    assert frame["scene"] == "urban"
    assert cloud["annotation_ready"] is True


def test_a_sparse_noisy_cloud_is_not_ready(model):
    bad = {**CLOUD, "qc": {**CLOUD["qc"], "point_count": 80, "nan_ratio": 0.4}}
    (prediction,) = inference.predict_fn([bad], model)
    assert prediction["annotation_ready"] is False


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'{"kind": "frame"}', "text/csv"),
        (b'{"kind": "video"}\n', "application/jsonlines"),
        (b"[1]", "application/json"),
    ],
)
def test_unreadable_requests_are_refused(body, content_type):
    with pytest.raises(inference.InferenceInputError):
        inference.input_fn(body, content_type)


# --- prepare_inference ---------------------------------------------------------------------------
def video_record(key: str, frames: int, status: str = "SUCCEEDED") -> dict[str, Any]:
    return {
        "source_key": key,
        "status": status,
        "error_type": None if status == "SUCCEEDED" else "InvalidFileError",
        "frames": [
            {"key": f"frames/x/{i}.jpg", "pts_seconds": i, "width": 160, "height": 120, "status": "SUCCEEDED",
             "labels": [{"name": "Car", "confidence": 90.0, "parents": []}]}
            for i in range(frames)
        ] + [{"key": "frames/x/bad.jpg", "status": "FAILED", "labels": []}],
    }  # fmt: skip


def cloud_record(key: str) -> dict[str, Any]:
    return {"source_key": key, "status": "SUCCEEDED", "point_count": 900, "nan_ratio": 0.0, "zero_ratio": 0.0,
            "density_per_m2": 3.5, "intensity_min": 1.0, "intensity_max": 9.0}  # fmt: skip


def test_input_lines_and_routing_facts_from_the_records():
    records = [video_record("a/v.mp4", 3), cloud_record("a/c.pcd"), video_record("b/v.mp4", 0, "FAILED")]
    counts = preparation.Counts(expected=3)
    out = io.BytesIO()
    preparation.write_input(iter(records), out, counts)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["record_id"] for line in lines] == [0, 1, 2, 3]
    assert [line["kind"] for line in lines] == ["frame", "frame", "frame", "pointcloud"]
    assert lines[3]["qc"]["density"] == 3.5
    assert (counts.succeeded, counts.failed, counts.frames, counts.records) == (2, 1, 3, 4)
    assert counts.max_record_bytes == max(len(line) + 1 for line in out.getvalue().splitlines())
    assert counts.errors == {"InvalidFileError": 1}


@pytest.mark.parametrize(
    ("succeeded", "failed", "expected", "ok"),
    [(9, 1, 10, True), (8, 2, 10, False), (9, 0, 10, True), (0, 3, 3, False), (8, 0, 10, False)],
)
def test_tolerance_counts_failed_and_missing_files(succeeded, failed, expected, ok):
    counts = preparation.Counts(expected=expected, succeeded=succeeded, failed=failed)
    if ok:
        preparation.enforce_tolerance(counts, 10)
    else:
        with pytest.raises(TooManyFailuresError):
            preparation.enforce_tolerance(counts, 10)


def test_transform_job_names_are_valid_unique_per_execution_and_the_fallback_differs():
    arn = "arn:aws:states:us-east-1:123456789012:execution:sm:" + "x" * 80
    names = {preparation.transform_job_name(arn), preparation.transform_job_name(arn + "2"),
             preparation.transform_job_name(arn, "-fallback")}  # fmt: skip
    assert len(names) == 3
    assert all(re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", n) for n in names)


# --- annotation_manager -------------------------------------------------------------------------
def _join(inputs: list[dict[str, Any]], predictions: list[dict[str, Any]]) -> Any:
    files = [io.StringIO() for _ in range(3)]
    return coco_join.join(iter(inputs), iter(predictions), *files), files


def test_predictions_join_their_records_into_coco_images_and_annotations():
    frame = {"record_id": 0, "kind": "frame", "frame_key": "frames/x/0.jpg", "width": 640, "height": 360,
             "source_key": "a/v.mp4"}  # fmt: skip
    cloud = {"record_id": 1, "kind": "pointcloud", "source_key": "a/c.pcd", "qc": {}}
    car = {"category_id": 3, "category": "car", "score": 0.9}
    inputs: list[dict[str, Any]] = [frame, cloud]
    predictions: list[dict[str, Any]] = [
        {"record_id": 0, "scene": "urban", "tags": [car], "detections": [{**car, "bbox": [1, 2, 3, 4], "area": 12}]},
        {"record_id": 1, "annotation_ready": True, "readiness": 0.8},
    ]
    totals, (images, anns, clouds) = _join(inputs, predictions)
    assert (totals.records, totals.images, totals.annotations, totals.pointclouds_ready) == (2, 1, 1, 1)
    (image,) = json.loads("[" + images.getvalue() + "]")
    (annotation,) = json.loads("[" + anns.getvalue() + "]")
    assert annotation["image_id"] == image["id"]
    assert image["file_name"] == "frames/x/0.jpg"
    assert json.loads(clouds.getvalue())["source_key"] == "a/c.pcd"


BAD_OUTPUTS: list[tuple[list[dict[str, Any]], list[dict[str, Any]], str]] = [
    ([{"record_id": 0, "kind": "pointcloud"}], [], "fewer lines"),
    ([], [{"record_id": 0}], "more lines"),
    ([{"record_id": 0, "kind": "pointcloud"}], [{"record_id": 1}], "expected 0"),
    (
        [{"record_id": 0, "kind": "frame", "width": 64, "height": 48}],
        [{"record_id": 0, "detections": [{"category_id": 99}]}],
        "unknown category",
    ),
]


@pytest.mark.parametrize(("inputs", "predictions", "message"), BAD_OUTPUTS)
def test_a_shifted_truncated_or_unknown_output_is_an_error(inputs, predictions, message):
    with pytest.raises(ModelInvocationError, match=message):
        _join(inputs, predictions)


@pytest.mark.parametrize(
    ("detection", "message"),
    [
        ({"bbox": [1, 2, 3]}, "not \\[x, y, w, h\\]"),
        ({"bbox": [1, 2, 3, "4"]}, "not \\[x, y, w, h\\]"),
        ({"bbox": [1, 2, float("nan"), 4]}, "not \\[x, y, w, h\\]"),
        ({"bbox": [-1, 2, 3, 4]}, "outside"),
        ({"bbox": [1, 2, 0, 4]}, "outside"),
        ({"bbox": [630, 2, 20, 4]}, "outside"),
        ({"bbox": [1, 2, 3, 4], "score": 1.5}, "score"),
    ],
)
def test_a_malformed_or_outside_box_is_an_error(detection, message):
    frame = {"record_id": 0, "kind": "frame", "frame_key": "f.jpg", "width": 640, "height": 360}
    prediction = {"record_id": 0, "detections": [{"category_id": 3, "category": "car", **detection}]}
    with pytest.raises(ModelInvocationError, match=message):
        _join([frame], [prediction])


def test_a_frame_record_without_dimensions_is_an_error():
    frame = {"record_id": 0, "kind": "frame", "frame_key": "f.jpg", "width": 0, "height": 360}
    with pytest.raises(InvalidFileError, match="width and height"):
        _join([frame], [{"record_id": 0}])


# --- COCO end to end: DetectLabels reply -> result record -> model input -> model -> COCO ----------
# The shape API_DetectLabels documents for a reply (Labels[].Instances[].BoundingBox as ratios of
# the image, Confidence 0-100, Parents), for one 1280x720 frame: two cars (one reaching past the
# right edge, as Rekognition can return), a person, and labels without instances.
DETECT_LABELS_REPLY: dict[str, Any] = {
    "Labels": [
        {"Name": "Car", "Confidence": 98.1, "Parents": [{"Name": "Vehicle"}, {"Name": "Transportation"}],
         "Instances": [
             {"BoundingBox": {"Width": 0.25, "Height": 0.2, "Left": 0.1, "Top": 0.5}, "Confidence": 97.3},
             {"BoundingBox": {"Width": 0.2, "Height": 0.1, "Left": 0.9, "Top": 0.6}, "Confidence": 88.0},
             {"BoundingBox": {"Width": 0.1, "Height": 0.1, "Left": 0.4, "Top": 0.4}, "Confidence": 30.0},
         ]},
        {"Name": "Person", "Confidence": 91.0, "Parents": [],
         "Instances": [{"BoundingBox": {"Width": 0.05, "Height": 0.3, "Left": 0.7, "Top": 0.45},
                        "Confidence": 90.5, "DominantColors": []}]},
        {"Name": "Road", "Confidence": 99.0, "Parents": [], "Instances": []},
        {"Name": "Vehicle", "Confidence": 98.1, "Parents": [{"Name": "Transportation"}], "Instances": []},
    ],
    "LabelModelVersion": "3.0",
}  # fmt: skip


def test_rekognition_boxes_become_a_valid_coco_document_in_pixels(aws, output_bucket, model):
    video = {
        "source_key": "sensors/front/drive.mp4",
        "status": "SUCCEEDED",
        "frames": [
            {"key": "frames/x/frame-0000.jpg", "pts_seconds": 0.0, "width": 1280, "height": 720, "status": "SUCCEEDED",
             "labels": [labels.label_record(label) for label in DETECT_LABELS_REPLY["Labels"]]},
            {"key": "frames/x/frame-0001.jpg", "pts_seconds": 1.0, "width": 1280, "height": 720, "status": "SUCCEEDED",
             "labels": [labels.label_record(DETECT_LABELS_REPLY["Labels"][0])]},
        ],
    }  # fmt: skip
    counts = preparation.Counts(expected=2)
    model_input = io.BytesIO()
    preparation.write_input(iter([video, cloud_record("sensors/lidar/a.pcd")]), model_input, counts)
    records = inference.input_fn(model_input.getvalue(), "application/jsonlines")
    body, _ = inference.output_fn(inference.predict_fn(records, model), "application/jsonlines")
    s3 = aws.client("s3")
    s3.put_object(Bucket=output_bucket, Key="in/input.jsonl", Body=model_input.getvalue())
    s3.put_object(Bucket=output_bucket, Key="out/input.jsonl.out", Body=body.encode())
    served = {"requested_path": "BATCH_TRANSFORM", "served_by": "BATCH_TRANSFORM", "fallback_reason": None}
    summary = coco_join.build(
        s3, execution_id="exec-1", input_bucket=output_bucket, input_key="in/input.jsonl",
        output_bucket=output_bucket, output_key="out/input.jsonl.out", result_bucket=output_bucket, served=served,
    )  # fmt: skip
    document = json.loads(s3.get_object(Bucket=output_bucket, Key=summary["keys"]["coco"])["Body"].read())
    assert coco_problems(document) == []
    assert [(i["id"], i["file_name"], i["width"], i["height"]) for i in document["images"]] == [
        (1, "frames/x/frame-0000.jpg", 1280, 720),
        (2, "frames/x/frame-0001.jpg", 1280, 720),
    ]
    names = {c["id"]: c["name"] for c in document["categories"]}
    got = [(a["id"], a["image_id"], names[a["category_id"]], a["bbox"]) for a in document["annotations"]]
    # Ratios x 1280x720; the second car clipped at the right edge; the 30 % car below the threshold.
    assert got == [
        (1, 1, "car", [128.0, 360.0, 320.0, 144.0]),
        (2, 1, "car", [1152.0, 432.0, 128.0, 72.0]),
        (3, 1, "person", [896.0, 324.0, 64.0, 216.0]),
        (4, 2, "car", [128.0, 360.0, 320.0, 144.0]),
        (5, 2, "car", [1152.0, 432.0, 128.0, 72.0]),
    ]
    assert [a["area"] for a in document["annotations"]][:3] == [46080.0, 9216.0, 13824.0]
    assert (summary["images"], summary["annotations"], summary["pointclouds"]) == (2, 5, 1)


def test_the_coco_check_refuses_what_is_not_coco():
    good: dict[str, Any] = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 100, "height": 50}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 10, 20, 10], "area": 200,
                         "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]], "iscrowd": 0}],
        "categories": [{"id": 3, "name": "car", "supercategory": "vehicle"}],
    }  # fmt: skip
    assert coco_problems(good) == []

    def bad(section: str, **change: Any) -> dict[str, Any]:
        document = json.loads(json.dumps(good))
        document[section][0].update(change)
        return document

    broken = [
        {k: v for k, v in good.items() if k != "categories"},
        bad("images", width=None),
        bad("annotations", bbox=[10, 10, 20]),
        bad("annotations", image_id=2),
        bad("annotations", category_id=4),
        bad("annotations", bbox=[90, 10, 20, 10], segmentation=[[90, 10, 110, 10, 110, 20, 90, 20]]),
        bad("annotations", area=999),
        bad("annotations", segmentation=[[0, 0, 99, 0, 99, 49]]),
        bad("annotations", iscrowd=2),
        {**good, "images": good["images"] * 2},
    ]
    for document in broken:
        assert coco_problems(document), document


def test_the_annotation_categories_are_the_models():
    assert {(c["id"], c["name"]) for c in train.CATEGORIES} == {(c["id"], c["name"]) for c in coco_join.COCO_CATEGORIES}


# --- prepare_inference reads result records concurrently, in listing order --------------------
class _ResultsBucket:
    """list_objects_v2 pages and get_object over in-memory result records; counts GETs in flight
    (each GET takes real time, so reads one at a time could never overlap)."""

    def __init__(self, bodies: dict[str, bytes], page_size: int) -> None:
        self.bodies, self.page_size = bodies, page_size
        self.in_flight = self.most_in_flight = 0
        self.lock = threading.Lock()
        self.uploads: list[str] = []

    def get_paginator(self, name: str) -> _ResultsBucket:
        assert name == "list_objects_v2"
        return self

    def paginate(self, Bucket: str, Prefix: str) -> Any:  # noqa: N803 - boto3's names
        keys = sorted(k for k in self.bodies if k.startswith(Prefix))
        for start in range(0, len(keys), self.page_size):
            yield {"Contents": [{"Key": key} for key in keys[start : start + self.page_size]]}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803
        with self.lock:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        threading.Event().wait(0.01)
        with self.lock:
            self.in_flight -= 1
        return {"Body": io.BytesIO(self.bodies[Key])}

    def upload_fileobj(self, out: Any, bucket: str, key: str, ExtraArgs: Any = None) -> None:  # noqa: N803
        self.uploads.append(key)


def _result_bodies(count: int, *, broken: int | None = None) -> dict[str, bytes]:
    prefix = preparation.results_prefix("exec-1")
    bodies = {
        f"{prefix}{i:04d}.json": json.dumps({"source_key": f"sensors/{i:04d}.pcd", "status": "FAILED"}).encode()
        for i in range(count)
    }
    if broken is not None:
        bodies[f"{prefix}{broken:04d}.json"] = b"{not json"
    return bodies


def test_result_records_are_read_concurrently_in_listing_order() -> None:
    bucket = _ResultsBucket(_result_bodies(45), page_size=20)
    records = list(preparation.iter_result_records(bucket, "out", "exec-1", Deadline.after(60)))
    assert [r["source_key"] for r in records] == [f"sensors/{i:04d}.pcd" for i in range(45)]
    assert 1 < bucket.most_in_flight <= preparation.READ_CONCURRENCY


def test_a_broken_result_record_fails_the_preparation_and_no_input_is_written() -> None:
    bucket = _ResultsBucket(_result_bodies(30, broken=17), page_size=20)
    with pytest.raises(InvalidFileError, match=r"0017\.json is not JSON"):
        preparation.prepare(
            bucket, bucket="out", execution_id="exec-1", expected_count=30, tolerated_percentage=100,
            deadline=Deadline.after(60),
        )  # fmt: skip
    assert bucket.uploads == []
