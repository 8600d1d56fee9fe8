"""UC9 autonomous-driving end to end on the local runner: the real template, definition, handlers,
the model's own inference code behind the SageMaker emulation, and real media samples.

Each of the four routed paths serves a run; Inference Components that cannot get a copy within
the budget fall back to Batch Transform; a run in which every file fails ends FAILED. Every run
checks that each input file has exactly one result record and that the output names the path
that served it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from local.faults import Fault
from local.runner.run import RunOptions, RunResult, run_use_case
from local.samples import autonomous_driving
from shared.routing import InferencePath
from tests.support.uc09 import coco_problems, iou

pytestmark = pytest.mark.workflow

UC9 = Path(__file__).resolve().parents[2] / "autonomous-driving"
OBJECTS = 24


def run(
    parameters: dict[str, str] | None = None,
    *,
    keep: Path | None = None,
    scale_from_zero_s: float | None = None,
    sample_generator: Any = None,
    faults: list[Fault] | None = None,
) -> RunResult:
    options = RunOptions(
        objects=OBJECTS,
        parameters=parameters or {},
        keep=keep,
        retry_time_scale=0.0,
        sample_generator=sample_generator,
        faults=faults or [],
    )
    if scale_from_zero_s is not None:
        options.sagemaker_scale_from_zero_s = scale_from_zero_s
    return run_use_case(UC9, options)


def assert_one_record_per_input(result: RunResult) -> None:
    assert result.items_total > 0
    assert not result.unaccounted, f"inputs without a record: {result.unaccounted}"
    assert not result.duplicated, f"inputs with several records: {result.duplicated}"
    assert result.records_succeeded + result.records_failed == result.items_total


def coco(keep: Path, result: RunResult) -> dict[str, Any]:
    (path,) = keep.rglob(f"annotations/{result.execution_name}/coco.json")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def assert_served(result: RunResult, served: InferencePath, requested: InferencePath | None = None) -> None:
    assert result.status == "SUCCEEDED", (result.error, result.cause)
    assert result.ok
    assert result.output["served_by"] == served.value
    assert result.output["requested_path"] == (requested or served).value
    assert result.output["images"] > 0
    assert result.output["pointclouds"] > 0
    (notification,) = result.notifications
    assert served.value in notification["subject"]


class Recorded:
    """The default sample generator, keeping the SampleSet it wrote (ground truth for the boxes)."""

    samples: autonomous_driving.SampleSet | None = None

    def __call__(self, s3: Any, access_point_arn: str, *, objects: int, seed: int = 0) -> autonomous_driving.SampleSet:
        self.samples = autonomous_driving.generate(s3, access_point_arn, objects=objects, seed=seed)
        return self.samples


def assert_coco_boxes_match_the_drawn_cars(document: dict[str, Any], samples: autonomous_driving.SampleSet) -> None:
    """A valid COCO document whose every key frame has exactly one ``car`` box where the sample
    video drew the car (Rekognition emulation -> model -> annotation manager, nothing stubbed)."""
    assert coco_problems(document) == []
    car = next(c["id"] for c in document["categories"] if c["name"] == "car")
    boxes: dict[int, list[list[float]]] = {}
    for annotation in document["annotations"]:
        assert annotation["category_id"] == car
        boxes.setdefault(annotation["image_id"], []).append(annotation["bbox"])
    videos = {k for k in samples.valid if k.endswith(".mp4")}
    assert {image["source_key"] for image in document["images"]} == videos
    for image in document["images"]:
        index = round(image["timestamp_s"] * autonomous_driving.FPS)
        truth = samples.expected[image["source_key"]]["car_boxes"][index]
        (box,) = boxes.pop(image["id"])
        assert iou(box, truth) >= 0.6, (image["file_name"], box, truth)
    assert boxes == {}, "annotations of no image"


def test_batch_transform_by_default(tmp_path):
    recorded = Recorded()
    result = run(keep=tmp_path, sample_generator=recorded)
    assert_served(result, InferencePath.BATCH_TRANSFORM)
    assert_one_record_per_input(result)
    assert result.output["fallback_reason"] == ""
    assert result.emulated["sagemaker transform jobs"] == 1
    assert result.emulated["sagemaker-runtime InvokeEndpoint"] == 0
    # The broken samples are recorded failures within the tolerance, nothing else fails.
    assert result.records_failed == len(result.samples["corrupt"]) > 0
    document = coco(tmp_path, result)
    assert {"info", "images", "annotations", "categories"} <= set(document)
    assert len(document["images"]) == result.output["images"]
    frames = f"frames/execution_id={result.execution_name}/"
    assert all(image["file_name"].startswith(frames) for image in document["images"])
    assert document["info"]["served_by"] == "BATCH_TRANSFORM"
    assert recorded.samples is not None
    assert_coco_boxes_match_the_drawn_cars(document, recorded.samples)
    assert result.output["annotations"] == len(document["annotations"]) == len(document["images"])
    # The transform job wrote the .out object SageMaker writes, one prediction per input line.
    (out,) = tmp_path.rglob(f"inference-output/{result.execution_name}/batch-transform/input.jsonl.out")
    (inp,) = tmp_path.rglob(f"inference-input/{result.execution_name}/input.jsonl")
    assert len(out.read_text().splitlines()) == len(inp.read_text().splitlines())


def test_serverless_inference():
    result = run({"InferenceType": "serverless"})
    assert_served(result, InferencePath.SERVERLESS_INFERENCE)
    assert_one_record_per_input(result)
    assert result.emulated["sagemaker-runtime InvokeEndpoint"] >= 1
    assert result.emulated["sagemaker transform jobs"] == 0


def test_provisioned_below_the_threshold_uses_the_realtime_endpoint():
    result = run({"InferenceType": "provisioned", "EnableRealtimeEndpoint": "true"})
    assert_served(result, InferencePath.REALTIME_ENDPOINT)
    assert result.emulated["sagemaker transform jobs"] == 0


def test_provisioned_at_the_threshold_uses_batch_transform():
    result = run({"InferenceType": "provisioned", "EnableRealtimeEndpoint": "true", "BatchThreshold": "1"})
    assert_served(result, InferencePath.BATCH_TRANSFORM)
    assert result.emulated["sagemaker-runtime InvokeEndpoint"] == 0


def test_inference_components_scale_from_zero_then_serve():
    # 240 s of emulated scale-out: the function waits (5, 10, 20, then 30 s steps) within its budget.
    result = run({"InferenceType": "components", "EnableInferenceComponents": "true"}, scale_from_zero_s=240)
    assert_served(result, InferencePath.INFERENCE_COMPONENTS)
    assert_one_record_per_input(result)
    assert result.emulated["sagemaker no-capacity replies"] > 0
    assert result.emulated["sagemaker transform jobs"] == 0


def test_inference_components_without_capacity_in_time_fall_back_to_batch_transform():
    result = run({"InferenceType": "components", "EnableInferenceComponents": "true"}, scale_from_zero_s=10_000)
    assert_served(result, InferencePath.BATCH_TRANSFORM, requested=InferencePath.INFERENCE_COMPONENTS)
    assert result.output["fallback_reason"] == "CapacityUnavailableError"
    assert result.emulated["sagemaker transform jobs"] == 1
    assert result.emulated["sagemaker-runtime InvokeEndpoint"] == 0
    assert result.functions["ComponentsInvokeFunction"]["errors"] == {"CapacityUnavailableError": 1}


def test_inference_components_whose_function_times_out_fall_back_to_batch_transform():
    # Capacity comes, but the first request then takes 400 s (emulated): the function outlives
    # its 290 s timeout, Lambda kills it (Sandbox.Timedout), and Batch Transform serves the run.
    result = run(
        {"InferenceType": "components", "EnableInferenceComponents": "true"},
        scale_from_zero_s=0,
        faults=[Fault.slow("sagemaker-runtime:InvokeEndpoint", seconds=400)],
    )
    assert_served(result, InferencePath.BATCH_TRANSFORM, requested=InferencePath.INFERENCE_COMPONENTS)
    assert result.output["fallback_reason"] == "Sandbox.Timedout"
    invoke = result.functions["ComponentsInvokeFunction"]
    assert invoke["invocations"] == 1  # not retried: a timeout is no transient error
    assert set(invoke["errors"]) == {"Sandbox.Timedout"}
    assert result.emulated["sagemaker transform jobs"] == 1
    assert_one_record_per_input(result)


def only_broken_files(s3: Any, access_point_arn: str, *, objects: int, seed: int = 0) -> autonomous_driving.SampleSet:
    """Every sensor file is unreadable: videos cut short, point clouds that are not point clouds."""
    keys = []
    for i in range(objects):
        key = f"sensors/broken/file_{i:03d}" + (".mp4" if i % 2 else ".pcd")
        s3.put_object(Bucket=access_point_arn, Key=key, Body=b"\x00\x00\x00\x18ftypmp42 truncated" * (i + 1))
        keys.append(key)
    return autonomous_driving.SampleSet(keys=tuple(keys), valid=(), corrupt=tuple(keys), ignored=(), expected={})


def test_a_run_where_every_file_fails_ends_failed_with_every_failure_recorded():
    result = run(sample_generator=only_broken_files)
    assert result.status == "FAILED"
    assert result.error == "TooManyFailuresError"
    assert_one_record_per_input(result)
    assert result.records_succeeded == 0
    assert result.records_failed == OBJECTS
    assert result.emulated.get("sagemaker transform jobs", 0) == 0
    assert result.notifications == []
