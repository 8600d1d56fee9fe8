"""The SageMaker emulation and the createTransformJob.sync integration, through ordinary clients.

A tiny model archive of the test's own (code/inference.py in the framework-container contract)
shows that the emulator runs whatever inference code the archive holds, not a built-in model.
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import time
from typing import Any

import pytest
from botocore.exceptions import ClientError

from local.emulators.sagemaker import NO_CAPACITY_MESSAGE, SageMakerEmulator

pytestmark = pytest.mark.unit

BUCKET = "sm-emulator"
INFERENCE = b'''
import json

def model_fn(model_dir):
    with open(model_dir + "/factor.txt") as f:
        return int(f.read())

def input_fn(body, content_type):
    if content_type != "application/jsonlines":
        raise ValueError("jsonlines only")
    return [json.loads(line) for line in body.decode().split("\\n") if line.strip()]

def predict_fn(records, factor):
    return [{"id": r["id"], "y": r["x"] * factor} for r in records]

def output_fn(predictions, accept):
    return "".join(json.dumps(p) + "\\n" for p in predictions), accept
'''


def archive(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


@pytest.fixture
def sagemaker(engine: Any) -> SageMakerEmulator:
    s3 = engine.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    model = archive({"factor.txt": b"3", "code/inference.py": INFERENCE})
    s3.put_object(Bucket=BUCKET, Key="m/model.tar.gz", Body=model)
    emulator = SageMakerEmulator(s3, engine.clock, account_id="123456789012", region="us-east-1",
                                 scale_from_zero_seconds=60)  # fmt: skip
    emulator.add_model("m", {"PrimaryContainer": {"Image": "img", "ModelDataUrl": f"s3://{BUCKET}/m/model.tar.gz",
                                                  "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}}})  # fmt: skip
    emulator.add_endpoint_config("rt", {"ProductionVariants": [{"VariantName": "v", "ModelName": "m"}]})
    serverless = {"VariantName": "v", "ModelName": "m", "ServerlessConfig": {"MemorySizeInMB": 1024}}
    emulator.add_endpoint_config("sl", {"ProductionVariants": [serverless]})
    emulator.add_endpoint_config("ic", {"ProductionVariants": [{"VariantName": "v", "InstanceType": "ml.m5.large"}]})
    emulator.add_endpoint("rt-ep", "rt")
    emulator.add_endpoint("sl-ep", "sl")
    emulator.add_endpoint("ic-ep", "ic")
    emulator.add_inference_component("ic-1", {"EndpointName": "ic-ep", "Specification": {"ModelName": "m"}})
    engine.interceptor.add(emulator.hook, service="sagemaker")
    engine.interceptor.add(emulator.hook, service="sagemaker-runtime")
    return emulator


def body(*xs: int) -> bytes:
    return b"".join(json.dumps({"id": i, "x": x}).encode() + b"\n" for i, x in enumerate(xs))


def invoke(engine: Any, endpoint: str, payload: bytes, **extra: Any) -> list[dict[str, Any]]:
    runtime = engine.client("sagemaker-runtime")
    reply = runtime.invoke_endpoint(EndpointName=endpoint, Body=payload, ContentType="application/jsonlines",
                                    Accept="application/jsonlines", **extra)  # fmt: skip
    return [json.loads(line) for line in reply["Body"].read().splitlines()]


def test_realtime_and_serverless_endpoints_run_the_archives_code(engine, sagemaker):
    assert invoke(engine, "rt-ep", body(1, 2)) == [{"id": 0, "y": 3}, {"id": 1, "y": 6}]
    assert invoke(engine, "sl-ep", body(5)) == [{"id": 0, "y": 15}]


def test_payload_limits_and_component_headers_are_enforced(engine, sagemaker):
    big = b'{"id": 0, "x": 1, "pad": "' + b"x" * (4 * 1024 * 1024) + b'"}\n'
    with pytest.raises(ClientError, match="exceeds"):
        invoke(engine, "sl-ep", big)
    assert invoke(engine, "rt-ep", big) == [{"id": 0, "y": 3}]
    with pytest.raises(ClientError, match="Inference Component Name header is required"):
        invoke(engine, "ic-ep", body(1))
    with pytest.raises(ClientError, match="does not host inference components"):
        invoke(engine, "rt-ep", body(1), InferenceComponentName="ic-1")
    with pytest.raises(ClientError, match="ic-typo does not exist"):
        invoke(engine, "ic-ep", body(1), InferenceComponentName="ic-typo")


def test_a_component_scales_from_zero_on_the_emulated_clock(engine, sagemaker):
    codes = []
    for _ in range(10):
        try:
            assert invoke(engine, "ic-ep", body(2), InferenceComponentName="ic-1") == [{"id": 0, "y": 6}]
            break
        except ClientError as e:
            codes.append((e.response["Error"]["Code"], e.response["Error"]["Message"]))
            engine.clock.advance(10)
    assert codes[0] == ("ValidationError", NO_CAPACITY_MESSAGE)
    assert codes[-1][0] == "ModelNotReadyException"
    assert len(codes) == 6  # 60 s of scale-out, polled every 10 s
    assert invoke(engine, "ic-ep", body(1), InferenceComponentName="ic-1") == [{"id": 0, "y": 3}]


def test_model_errors_are_424_model_error(engine, sagemaker):
    runtime = engine.client("sagemaker-runtime")
    with pytest.raises(ClientError) as caught:
        runtime.invoke_endpoint(EndpointName="rt-ep", Body=b"1,2", ContentType="text/csv")
    assert caught.value.response["Error"]["Code"] == "ModelError"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 424


def transform(name: str, uri: str, out: str, max_payload_mb: int = 6) -> dict[str, Any]:
    return {
        "TransformJobName": name,
        "ModelName": "m",
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": max_payload_mb,
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
                           "ContentType": "application/jsonlines", "SplitType": "Line"},
        "TransformOutput": {"S3OutputPath": out, "Accept": "application/jsonlines", "AssembleWith": "Line"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }  # fmt: skip


def test_a_transform_job_writes_the_out_object_and_reports_completed(engine, sagemaker):
    s3, sm = engine.client("s3"), engine.client("sagemaker")
    s3.put_object(Bucket=BUCKET, Key="in/run-1/input.jsonl", Body=body(*range(1000)))
    sm.create_transform_job(**transform("job-1", f"s3://{BUCKET}/in/run-1/input.jsonl", f"s3://{BUCKET}/out/run-1/"))
    assert sm.describe_transform_job(TransformJobName="job-1")["TransformJobStatus"] == "InProgress"
    assert sm.describe_transform_job(TransformJobName="job-1")["TransformJobStatus"] == "Completed"
    lines = s3.get_object(Bucket=BUCKET, Key="out/run-1/input.jsonl.out")["Body"].read().splitlines()
    assert [json.loads(line)["y"] for line in lines] == [3 * x for x in range(1000)]
    with pytest.raises(ClientError, match="must be unique"):
        sm.create_transform_job(**transform("job-1", f"s3://{BUCKET}/in/run-1/input.jsonl", f"s3://{BUCKET}/o/"))


def test_a_record_above_max_payload_fails_the_job(engine, sagemaker):
    s3, sm = engine.client("s3"), engine.client("sagemaker")
    record = b'{"id": 0, "x": 1, "p": "' + b"x" * 1_100_000 + b'"}\n'
    s3.put_object(Bucket=BUCKET, Key="in/big/input.jsonl", Body=record)
    sm.create_transform_job(**transform("job-big", f"s3://{BUCKET}/in/big/input.jsonl", f"s3://{BUCKET}/o/", 1))
    sm.describe_transform_job(TransformJobName="job-big")
    described = sm.describe_transform_job(TransformJobName="job-big")
    assert described["TransformJobStatus"] == "Failed"
    assert "MaxPayloadInMB" in described["FailureReason"]


SYNC_MACHINE: dict[str, Any] = {
    "StartAt": "Transform",
    "States": {
        "Transform": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sagemaker:createTransformJob.sync",
            "Parameters": transform("job-sfn", f"s3://{BUCKET}/in/sfn/input.jsonl", f"s3://{BUCKET}/out/sfn/")
            | {"TransformJobName.$": "$.name"},
            "TimeoutSeconds": 600,
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed", "ResultPath": "$.error"}],
            "End": True,
        },
        "Failed": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
    },
}
del SYNC_MACHINE["States"]["Transform"]["Parameters"]["TransformJobName"]


def run_machine(engine: Any, execution_input: dict[str, Any]) -> dict[str, Any]:
    sfn = engine.client("stepfunctions")
    arn = sfn.create_state_machine(name=f"sm-{time.monotonic_ns()}", definition=json.dumps(SYNC_MACHINE),
                                   roleArn="arn:aws:iam::123456789012:role/r")["stateMachineArn"]  # fmt: skip
    execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(execution_input))["executionArn"]
    deadline = time.monotonic() + 60
    while (described := sfn.describe_execution(executionArn=execution))["status"] == "RUNNING":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    result: dict[str, Any] = described
    return result


def test_the_sync_integration_waits_for_the_job_and_outputs_its_description(engine, sagemaker):
    engine.client("s3").put_object(Bucket=BUCKET, Key="in/sfn/input.jsonl", Body=body(1, 2, 3))
    described = run_machine(engine, {"name": "job-sfn"})
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"])["TransformJobStatus"] == "Completed"
    assert engine.client("s3").get_object(Bucket=BUCKET, Key="out/sfn/input.jsonl.out")["Body"].read().count(b"\n") == 3


def test_the_sync_integration_fails_the_task_on_a_failed_job_and_on_api_errors(engine, sagemaker):
    engine.client("s3").put_object(Bucket=BUCKET, Key="in/sfn/input.jsonl", Body=b"not json\n")
    failed = run_machine(engine, {"name": "job-bad"})
    assert failed["status"] == "FAILED"
    assert failed["error"] == "States.TaskFailed"
    assert json.loads(failed["cause"])["TransformJobStatus"] == "Failed"
    refused = run_machine(engine, {"name": "bad_name!"})
    assert refused["error"] == "SageMaker.ValidationException"
