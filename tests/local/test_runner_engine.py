"""The engine extensions: ItemBatcher, JSONL ItemReader, ResultWriter, tolerance, concurrency."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws
from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser, ASLParserException

from local.runner.engine import ChildEventManager, DefinitionError, parse_definition, split_extensions
from local.runner.lambdas import FunctionSpec
from tests.local.conftest import distributed_map, put_jsonl, write_function

pytestmark = pytest.mark.unit

BUCKET = "engine-test-bucket"

# Records every batch it receives in S3 and fails a batch that holds an item with "fail": true.
RECORDER = """
import json, os, threading, time, uuid
import boto3
S3 = boto3.client("s3")
_active = 0
_lock = threading.Lock()
class ItemRejected(Exception):
    pass
def handler(event, context):
    global _active
    with _lock:
        _active += 1
        peak = _active
    try:
        time.sleep(0.05)
        S3.put_object(Bucket=os.environ["BUCKET"], Key=f"seen/{uuid.uuid4().hex}.json",
                      Body=json.dumps({"event": event, "peak": peak}).encode())
        items = event["Items"] if isinstance(event, dict) and "Items" in event else [event]
        if any(isinstance(i, dict) and i.get("fail") for i in items):
            raise ItemRejected(f"rejected {len(items)} item(s)")
        return {"count": len(items)}
    finally:
        with _lock:
            _active -= 1
"""


def _setup(engine: Any, tmp_path: Path, items: list[Any]) -> tuple[Any, FunctionSpec]:
    s3 = engine.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    put_jsonl(s3, BUCKET, "manifest.jsonl", items)
    spec = write_function(tmp_path, "recorder", RECORDER, environment={"BUCKET": BUCKET}, timeout_s=30)
    engine.add_functions([spec])
    return s3, spec


def _seen(s3: Any) -> list[dict[str, Any]]:
    out = []
    for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix="seen/").get("Contents", []):
        out.append(json.loads(s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()))
    return out


def _pipeline(
    spec_arn: str,
    *,
    batcher: dict[str, Any] | None = None,
    tolerance: int | None = None,
    writer: bool = True,
    concurrency: int | None = None,
    catch: bool = False,
) -> dict[str, Any]:
    task: dict[str, Any] = {
        "Type": "Task",
        "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": spec_arn, "Payload.$": "$"},
        "ResultSelector": {"count.$": "$.Payload.count"},
        "End": True,
    }
    fields: dict[str, Any] = {
        "ItemReader": {
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSONL"},
            "Parameters": {"Bucket": BUCKET, "Key": "manifest.jsonl"},
        },
        "ResultPath": "$.map",
        "End": True,
    }
    if batcher is not None:
        fields["ItemBatcher"] = batcher
    if tolerance is not None:
        fields["ToleratedFailurePercentage"] = tolerance
    if concurrency is not None:
        fields["MaxConcurrency"] = concurrency
    if writer:
        fields["ResultWriter"] = {
            "Resource": "arn:aws:states:::s3:putObject",
            "Parameters": {"Bucket": BUCKET, "Prefix.$": "$.prefix"},
        }
    states = {"Map": distributed_map({"Work": task}, "Work", **fields)}
    if catch:
        states["Map"]["Catch"] = [
            {"ErrorEquals": ["States.ExceedToleratedFailureThreshold"], "ResultPath": "$.error", "Next": "Caught"}
        ]
        states["Map"].pop("End")
        states["Map"]["Next"] = "Done"
        states["Done"] = {"Type": "Succeed"}
        states["Caught"] = {"Type": "Pass", "End": True}
    return {"StartAt": "Map", "States": states}


def test_moto_alone_rejects_item_batcher():
    # The reason these extensions exist: moto's grammar does not parse ItemBatcher.
    definition = _pipeline("arn:aws:lambda:us-east-1:123456789012:function:x", batcher={"MaxItemsPerBatch": 2})
    with mock_aws(), pytest.raises(ASLParserException):
        AmazonStateLanguageParser.parse(json.dumps(definition))


def test_batches_arrive_in_the_shape_step_functions_delivers(engine, tmp_path):
    s3, spec = _setup(engine, tmp_path, [{"key": f"k{i}"} for i in range(7)])
    batcher = {"MaxItemsPerBatchPath": "$.batch", "BatchInput": {"execution_id.$": "$$.Execution.Name", "fixed": 1}}
    result = engine.execute(_pipeline(spec.arn, batcher=batcher), {"batch": 3, "prefix": "out"})
    assert result["status"] == "SUCCEEDED", result.get("cause")
    events = sorted((s["event"] for s in _seen(s3)), key=lambda e: e["Items"][0]["key"])
    assert [len(e["Items"]) for e in events] == [3, 3, 1]
    assert all(set(e) == {"Items", "BatchInput"} for e in events)
    assert {e["BatchInput"]["execution_id"] for e in events} == {result["name"]}
    assert sorted(i["key"] for e in events for i in e["Items"]) == sorted(f"k{i}" for i in range(7))


def test_max_input_bytes_per_batch_splits_batches(engine, tmp_path):
    s3, spec = _setup(engine, tmp_path, [{"key": "x" * 100, "n": i} for i in range(6)])
    result = engine.execute(_pipeline(spec.arn, batcher={"MaxInputBytesPerBatch": 300}), {"prefix": "out"})
    assert result["status"] == "SUCCEEDED", result.get("cause")
    sizes = [len(json.dumps(s["event"], separators=(",", ":"))) for s in _seen(s3)]
    assert all(size <= 300 for size in sizes)
    assert sum(len(s["event"]["Items"]) for s in _seen(s3)) == 6


def test_without_batcher_each_item_is_a_child_input(engine, tmp_path):
    s3, spec = _setup(engine, tmp_path, [{"key": "a"}, {"key": "b"}])
    result = engine.execute(_pipeline(spec.arn), {"prefix": "out"})
    assert result["status"] == "SUCCEEDED"
    assert sorted(s["event"]["key"] for s in _seen(s3)) == ["a", "b"]


def test_result_writer_exports_children_like_step_functions(engine, tmp_path):
    items = [{"key": f"k{i}", "fail": i == 4} for i in range(6)]
    s3, spec = _setup(engine, tmp_path, items)
    result = engine.execute(_pipeline(spec.arn, batcher={"MaxItemsPerBatch": 2}, tolerance=50), {"prefix": "runs/a"})
    assert result["status"] == "SUCCEEDED", result.get("cause")
    details = result["output_json"]["map"]
    assert set(details) == {"MapRunArn", "ResultWriterDetails"}
    assert ":mapRun:" in details["MapRunArn"]
    assert "/Map:" in details["MapRunArn"]
    manifest_key = details["ResultWriterDetails"]["Key"]
    run_id = details["MapRunArn"].rsplit(":", 1)[1]
    assert manifest_key == f"runs/a/{run_id}/manifest.json"
    manifest = json.loads(s3.get_object(Bucket=BUCKET, Key=manifest_key)["Body"].read())
    assert manifest["DestinationBucket"] == BUCKET
    assert manifest["MapRunArn"] == details["MapRunArn"]
    assert set(manifest["ResultFiles"]) == {"FAILED", "PENDING", "SUCCEEDED"}
    (ok_file,) = manifest["ResultFiles"]["SUCCEEDED"]
    (failed_file,) = manifest["ResultFiles"]["FAILED"]
    succeeded = json.loads(s3.get_object(Bucket=BUCKET, Key=ok_file["Key"])["Body"].read())
    failed = json.loads(s3.get_object(Bucket=BUCKET, Key=failed_file["Key"])["Body"].read())
    assert ok_file["Size"] == len(json.dumps(succeeded, separators=(",", ":")))
    assert len(succeeded) == 2
    assert len(failed) == 1
    assert {json.loads(e["Output"])["count"] for e in succeeded} == {2}
    assert failed[0]["Status"] == "FAILED"
    assert failed[0]["Error"] == "ItemRejected"
    assert json.loads(failed[0]["Input"])["Items"][0]["key"] == "k4"
    for entry in succeeded + failed:
        assert (
            entry["ExecutionArn"]
            .split(":execution:")[1]
            .startswith(details["MapRunArn"].split(":mapRun:")[1].rsplit(":", 1)[0])
        )


def test_failures_above_tolerance_fail_the_map_run_with_the_states_error(engine, tmp_path):
    items = [{"key": f"k{i}", "fail": i < 3} for i in range(10)]
    _, spec = _setup(engine, tmp_path, items)
    result = engine.execute(_pipeline(spec.arn, tolerance=20), {"prefix": "out"})
    assert result["status"] == "FAILED"
    assert result["error"] == "States.ExceedToleratedFailureThreshold"
    types = [e["type"] for e in result["history"]]
    assert "MapRunFailed" in types


def test_failures_within_tolerance_succeed(engine, tmp_path):
    items = [{"key": f"k{i}", "fail": i < 2} for i in range(10)]
    _, spec = _setup(engine, tmp_path, items)
    result = engine.execute(_pipeline(spec.arn, tolerance=20), {"prefix": "out"})
    assert result["status"] == "SUCCEEDED", result.get("cause")


def test_default_tolerance_is_zero(engine, tmp_path):
    _, spec = _setup(engine, tmp_path, [{"key": "a"}, {"key": "b", "fail": True}])
    result = engine.execute(_pipeline(spec.arn), {"prefix": "out"})
    assert result["error"] == "States.ExceedToleratedFailureThreshold"


def test_threshold_error_is_catchable_and_results_are_still_exported(engine, tmp_path):
    s3, spec = _setup(engine, tmp_path, [{"key": "a", "fail": True}, {"key": "b"}])
    result = engine.execute(_pipeline(spec.arn, catch=True), {"prefix": "caught"})
    assert result["status"] == "SUCCEEDED"
    assert result["output_json"]["error"]["Error"] == "States.ExceedToleratedFailureThreshold"
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="caught/")["Contents"]]
    assert any(k.endswith("manifest.json") for k in keys)


def test_max_concurrency_bounds_parallel_children(engine, tmp_path):
    s3, spec = _setup(engine, tmp_path, [{"key": f"k{i}"} for i in range(8)])
    result = engine.execute(_pipeline(spec.arn, concurrency=2, writer=False), {})
    assert result["status"] == "SUCCEEDED"
    assert max(s["peak"] for s in _seen(s3)) <= 2
    assert len(result["output_json"]["map"]) == 8


def test_child_executions_have_their_own_execution_context(engine, tmp_path):
    s3 = engine.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    put_jsonl(s3, BUCKET, "manifest.jsonl", [{"key": "a"}])
    task = {
        "Type": "Pass",
        "Parameters": {"child.$": "$$.Execution.Name", "parent.$": "$.BatchInput.parent"},
        "End": True,
    }
    state = distributed_map(
        {"P": task},
        "P",
        ItemReader={
            "Resource": "arn:aws:states:::s3:getObject",
            "ReaderConfig": {"InputType": "JSONL"},
            "Parameters": {"Bucket": BUCKET, "Key": "manifest.jsonl"},
        },
        ItemBatcher={"MaxItemsPerBatch": 5, "BatchInput": {"parent.$": "$$.Execution.Name"}},
        End=True,
    )
    result = engine.execute({"StartAt": "M", "States": {"M": state}})
    (child,) = result["output_json"]
    assert child["parent"] == result["name"]
    assert child["child"] != result["name"]
    children = {m.execution_name for m, _, _ in engine.events if isinstance(m, ChildEventManager)}
    assert children == {child["child"]}


def test_invalid_jsonl_line_fails_the_item_reader(engine, tmp_path):
    s3, spec = _setup(engine, tmp_path, [])
    s3.put_object(Bucket=BUCKET, Key="manifest.jsonl", Body=b'{"key": "a"}\n{not json}\n')
    result = engine.execute(_pipeline(spec.arn), {"prefix": "out"})
    assert result["status"] == "FAILED"
    assert result["error"] == "States.ItemReaderFailed"


def test_item_reader_max_items_limits_jsonl(engine, tmp_path):
    _s3, spec = _setup(engine, tmp_path, [{"key": f"k{i}"} for i in range(5)])
    definition = _pipeline(spec.arn, writer=False)
    definition["States"]["Map"]["ItemReader"]["ReaderConfig"]["MaxItems"] = 2
    result = engine.execute(definition, {})
    assert len(result["output_json"]["map"]) == 2


def test_fail_state_can_rethrow_a_states_error(engine):
    definition = {
        "StartAt": "Boom",
        "States": {
            "Boom": {
                "Type": "Pass",
                "Result": {"Error": "States.ExceedToleratedFailureThreshold", "Cause": "c"},
                "ResultPath": "$.error",
                "Next": "Fail",
            },
            "Fail": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
        },
    }
    result = engine.execute(definition)
    assert result["status"] == "FAILED"
    assert result["error"] == "States.ExceedToleratedFailureThreshold"


def test_split_extensions_validates_item_batcher():
    base = _pipeline("arn:aws:lambda:us-east-1:123456789012:function:x")
    good = json.loads(json.dumps(base))
    good["States"]["Map"]["ItemBatcher"] = {"MaxItemsPerBatch": 2}
    stripped, ext = split_extensions(good)
    assert "ItemBatcher" not in stripped["States"]["Map"]
    assert ext["Map"].item_batcher == {"MaxItemsPerBatch": 2}
    for bad in (
        {"MaxItemsPerBatch": 2, "MaxItemsPerBatchPath": "$.x"},
        {"MaxItemsPerBatch": 2, "Unknown": 1},
        {"BatchInput": {"a": 1}},
    ):
        broken = json.loads(json.dumps(base))
        broken["States"]["Map"]["ItemBatcher"] = bad
        with pytest.raises(DefinitionError):
            split_extensions(broken)


def test_item_batcher_on_an_inline_map_is_rejected():
    definition = {
        "StartAt": "M",
        "States": {
            "M": {
                "Type": "Map",
                "ItemBatcher": {"MaxItemsPerBatch": 2},
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
                "End": True,
            }
        },
    }
    with mock_aws(), pytest.raises(DefinitionError):
        parse_definition(json.dumps(definition))


FLAKY = """
import pathlib
class ThrottlingError(Exception):
    pass
def handler(event, context):
    counter = pathlib.Path(event["counter"])
    count = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(count + 1))
    if count < event["fail_times"]:
        raise ThrottlingError(f"attempt {count + 1}")
    return {"attempts": count + 1}
"""

BLOCKING = """
import threading
def handler(event, context):
    threading.Event().wait(event["seconds"])  # really blocks: time.sleep would be emulated
    return {"done": True}
"""


def _task(arn: str, payload: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arn, "Payload": payload},
                "ResultSelector": {"result.$": "$.Payload"},
                **fields,
            },
            "Recovered": {"Type": "Pass", "End": True},
        },
    }


@pytest.mark.parametrize(("fail_times", "status"), [(2, "SUCCEEDED"), (3, "FAILED")])
def test_retry_matches_the_exception_class_name(engine, tmp_path, fail_times, status):
    spec = write_function(tmp_path, "flaky", FLAKY)
    engine.add_functions([spec])
    retry = [{"ErrorEquals": ["ThrottlingError"], "IntervalSeconds": 1, "MaxAttempts": 2, "BackoffRate": 2}]
    definition = _task(spec.arn, {"counter": str(tmp_path / "count"), "fail_times": fail_times}, Retry=retry, End=True)
    result = engine.execute(definition)
    assert result["status"] == status
    if status == "FAILED":
        assert result["error"] == "ThrottlingError"
    else:
        assert result["output_json"]["result"] == {"attempts": 3}
    assert engine.extensions is not None
    assert engine.extensions.retry_wait_seconds == 1 + 2  # IntervalSeconds, then x BackoffRate


def test_catch_routes_a_typed_error_to_the_failure_path(engine, tmp_path):
    spec = write_function(tmp_path, "flaky", FLAKY)
    engine.add_functions([spec])
    catch = [{"ErrorEquals": ["ThrottlingError"], "ResultPath": "$.error", "Next": "Recovered"}]
    definition = _task(spec.arn, {"counter": str(tmp_path / "count"), "fail_times": 9}, Catch=catch, End=True)
    definition["States"]["Call"]["Next"] = definition["States"]["Call"].pop("End")
    definition["States"]["Call"]["Next"] = "Recovered"
    result = engine.execute(definition)
    assert result["status"] == "SUCCEEDED"
    assert result["output_json"]["error"]["Error"] == "ThrottlingError"
    assert json.loads(result["output_json"]["error"]["Cause"])["errorMessage"] == "attempt 1"


def test_task_timeout_seconds_ends_with_states_timeout(engine, tmp_path):
    spec = write_function(tmp_path, "blocking", BLOCKING, timeout_s=30)
    engine.add_functions([spec])
    result = engine.execute(_task(spec.arn, {"seconds": 3}, TimeoutSeconds=1, End=True))
    assert result["status"] == "FAILED"
    assert result["error"] == "States.Timeout"


def test_item_selector_shapes_each_item_before_batching(engine, tmp_path):
    s3, spec = _setup(engine, tmp_path, [{"key": f"k{i}"} for i in range(3)])
    definition = _pipeline(spec.arn, batcher={"MaxItemsPerBatch": 5}, writer=False)
    definition["States"]["Map"]["ItemSelector"] = {
        "k.$": "$$.Map.Item.Value.key",
        "i.$": "$$.Map.Item.Index",
        "cfg.$": "$.cfg",
    }
    result = engine.execute(definition, {"cfg": "x"})
    assert result["status"] == "SUCCEEDED", result.get("cause")
    (seen,) = _seen(s3)
    assert seen["event"]["Items"] == [{"k": f"k{i}", "i": i, "cfg": "x"} for i in range(3)]


_DEFERRED_BATCH_CHECK = """
import sys
import local.runner.engine, local.runner.run
assert "moto.ec2" not in sys.modules and "moto.batch.models" not in sys.modules, "loaded with the interpreter"
import boto3
from moto import mock_aws
import moto.batch
with mock_aws():
    batch = boto3.client("batch", region_name="us-east-1")
    assert batch.describe_compute_environments()["computeEnvironments"] == []
from moto.batch.models import batch_backends
assert moto.batch.batch_backends is batch_backends and moto.batch.models.batch_backends is batch_backends
print("ok")
"""


def test_moto_batch_loads_on_first_use_and_then_serves_as_before():
    """The runner defers moto.batch (and moto.ec2 with it) past its import; Batch still answers."""
    import subprocess
    import sys

    from local.runner.paths import REPO_ROOT

    run = subprocess.run([sys.executable, "-c", _DEFERRED_BATCH_CHECK], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=120, check=False)
    assert (run.returncode, run.stdout) == (0, "ok\n"), run.stderr


def test_a_jsonpath_is_parsed_once_and_still_evaluated_against_each_input(engine):
    from moto.stepfunctions.parser.asl.utils import json_path as moto_json_path

    from local.runner.engine import jsonpath

    path = "$.jsonpath_cache_probe[7]"  # a path no other test parses
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"picked.$": path}, "End": True}}}
    before = jsonpath.cache_info()
    outputs = [engine.execute(definition, {"jsonpath_cache_probe": list(range(n, n + 10))})["output_json"]
               for n in (0, 5)]
    assert [o["picked"] for o in outputs] == [7, 12]
    after = jsonpath.cache_info()
    assert after.misses - before.misses == 1  # parsed the first time only
    assert after.hits - before.hits >= 1
    assert getattr(moto_json_path, "parse") is jsonpath  # noqa: B009 - while the engine's extensions are installed
