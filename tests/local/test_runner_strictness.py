"""The local runner as strict as AWS (issue 13): every leniency a hostile user found, one test each.

- the engine's own S3 calls retry as the service does, and fail with Step Functions' error names
  (``States.ItemReaderFailed`` / ``States.ResultWriterFailed``) that a Retry can match;
- template parameters validated as CloudFormation validates them, before anything runs;
- template parameters win over ``events/env.json``;
- fault specifications checked against botocore's service models, unfired faults reported;
- ``--keep`` writes each run into its own folder, with every S3 key mapped to a path that fits;
- JSONL manifests split on ``\\n`` only.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from local.cli import main
from local.faults import Fault, FaultSpecError
from local.runner.lambdas import FunctionSpec
from local.runner.run import key_paths
from local.template import ParameterError, resolve_parameters
from tests.local.test_runner_engine import BUCKET, _pipeline, _setup

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
UC6 = REPO / "semiconductor-eda" / "template-deploy.yaml"


def _main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


# --- 1. the engine's S3 calls: retries and error names -------------------------------------------
MAP_INPUT = {"prefix": "map-results"}  # the ResultWriter Prefix of test_runner_engine's pipeline


def _reader_pipeline(spec_arn: str, *, reader_retry: bool = False, writer: bool = False) -> dict[str, Any]:
    definition = _pipeline(spec_arn, batcher={"MaxItemsPerBatch": 2}, writer=writer)
    if reader_retry:
        definition["States"]["Map"]["Retry"] = [
            {"ErrorEquals": ["States.ItemReaderFailed"], "MaxAttempts": 2, "IntervalSeconds": 1, "BackoffRate": 2}
        ]
    return definition


def _reader_setup(engine: Any, tmp_path: Path, items: int = 4) -> FunctionSpec:
    _s3, spec = _setup(engine, tmp_path, [{"key": f"k{i}"} for i in range(items)])
    return spec


def test_a_transient_s3_error_reading_the_manifest_is_retried_by_the_engine_client(engine, tmp_path):
    spec = _reader_setup(engine, tmp_path)
    fault = engine.plan.add(Fault.transient("s3:GetObject", times=1, match="manifest.jsonl"))
    result = engine.execute(_reader_pipeline(spec.arn), MAP_INPUT)
    assert fault.hits == 1
    assert result["status"] == "SUCCEEDED", result.get("cause")


def test_an_item_reader_failure_is_states_item_reader_failed_and_the_map_retry_applies(engine, tmp_path):
    spec = _reader_setup(engine, tmp_path)
    # Three failures exhaust the engine client's three attempts once; the Map's Retry tries again.
    fault = engine.plan.add(Fault.transient("s3:GetObject", times=3, match="manifest.jsonl"))
    result = engine.execute(_reader_pipeline(spec.arn, reader_retry=True), MAP_INPUT)
    assert fault.hits == 3
    assert result["status"] == "SUCCEEDED", result.get("cause")
    failed = [e for e in result["history"] if e["type"] == "MapRunFailed"]
    assert failed
    assert failed[0]["mapRunFailedEventDetails"]["error"] == "States.ItemReaderFailed"


def test_an_unretried_item_reader_failure_ends_with_its_states_name(engine, tmp_path):
    spec = _reader_setup(engine, tmp_path)
    engine.plan.add(Fault.permanent("s3:GetObject", match="manifest.jsonl"))
    result = engine.execute(_reader_pipeline(spec.arn), MAP_INPUT)
    assert result["status"] == "FAILED"
    assert result["error"] == "States.ItemReaderFailed"
    assert "AccessDenied" in result["cause"]


def test_a_transient_s3_error_writing_results_is_retried(engine, tmp_path):
    spec = _reader_setup(engine, tmp_path)
    fault = engine.plan.add(Fault.transient("s3:PutObject", times=1, match="map-results/"))
    result = engine.execute(_reader_pipeline(spec.arn, writer=True), MAP_INPUT)
    assert fault.hits == 1
    assert result["status"] == "SUCCEEDED", result.get("cause")
    key = result["output_json"]["map"]["ResultWriterDetails"]["Key"]
    manifest = json.loads(engine.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert manifest["ResultFiles"]["SUCCEEDED"]


def test_a_lasting_result_writer_failure_is_states_result_writer_failed(engine, tmp_path):
    spec = _reader_setup(engine, tmp_path)
    engine.plan.add(Fault.permanent("s3:PutObject", match="map-results/"))
    result = engine.execute(_reader_pipeline(spec.arn, writer=True), MAP_INPUT)
    assert result["status"] == "FAILED"
    assert result["error"] == "States.ResultWriterFailed"


# --- 6. JSONL is split on "\n" only ----------------------------------------------------------------
@pytest.mark.parametrize("separator", ["\u2028", "\u0085", "\u2029"])  # json.dumps writes them raw
def test_jsonl_records_are_split_on_newline_only(engine, tmp_path, separator):
    spec = _reader_setup(engine, tmp_path, items=0)
    keys = [f"a{separator}b.gds", "plain.gds", f"x{separator}"]
    body = "".join(json.dumps({"key": k}, ensure_ascii=False) + "\n" for k in keys).encode()
    engine.client("s3").put_object(Bucket=BUCKET, Key="manifest.jsonl", Body=body)
    definition = _pipeline(spec.arn, writer=False)
    result = engine.execute(definition, MAP_INPUT)
    assert result["status"] == "SUCCEEDED", result.get("cause")
    assert len(result["output_json"]["map"]) == len(keys)


# --- 2. template parameters validated as CloudFormation does --------------------------------------
AP = "arn:aws:s3:us-east-1:123456789012:accesspoint/fsxn-eda-ap"


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"MapBatchSize": "0"}, "Parameter 'MapBatchSize' must be a number not less than 1"),
        ({"MapMaxConcurrency": "0"}, "Parameter 'MapMaxConcurrency' must be a number not less than 1"),
        ({"ToleratedFailurePercentage": "101"}, "must be a number not greater than 100"),
        ({"MapBatchSize": "ten"}, "Parameter 'MapBatchSize' must be a number"),
        ({"MapBatchSize": "nan"}, "Parameter 'MapBatchSize' must be a number"),
        ({"EnableSnapStart": "yes"}, "Parameter 'EnableSnapStart' must be one of AllowedValues"),
        ({"FileSuffixes": "gds"}, "Parameter 'FileSuffixes' failed to satisfy constraint: "),
        ({"AccessPointArn": "fsxn-eda-ap-abc123-ext-s3alias"}, "failed to satisfy constraint: must be an S3 access"),
        ({"EnableAlarms": "true"}, "EnableAlarms=true needs KmsKeyArn"),
        ({"Nope": "1"}, "Parameters: [Nope] do not exist in the template"),
    ],
)
def test_parameters_cloudformation_refuses_are_refused(parameters, message):
    from local.template import load_template

    with pytest.raises(ParameterError) as info:
        resolve_parameters(load_template(UC6), {"AccessPointArn": AP, **parameters})
    assert any(message in m for m in info.value.messages), info.value.messages


def test_valid_parameters_and_rules_pass():
    from local.template import load_template

    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    values = resolve_parameters(
        load_template(UC6),
        {"AccessPointArn": AP, "EnableAlarms": "true", "KmsKeyArn": key, "StateMachineLogLevel": "OFF"},
    )
    assert values["MapBatchSize"] == 10
    assert values["KmsKeyArn"] == key


def test_length_and_list_constraints():
    template = {
        "Parameters": {
            "Name": {"Type": "String", "MinLength": 2, "MaxLength": 4},
            "Sizes": {"Type": "List<Number>", "MaxValue": 10},
            "Zones": {"Type": "CommaDelimitedList", "AllowedValues": ["a", "b"]},
        }
    }
    assert resolve_parameters(template, {"Name": "abc", "Sizes": "1, 2", "Zones": "a,b"})["Sizes"] == ["1", "2"]
    for given, message in [
        ({"Name": "a"}, "must contain at least 2 characters"),
        ({"Name": "abcde"}, "must contain at most 4 characters"),
        ({"Sizes": "1,11"}, "must be a number not greater than 10"),
        ({"Zones": "a,c"}, "must be one of AllowedValues"),
    ]:
        with pytest.raises(ParameterError, match=message):
            resolve_parameters(template, {"Name": "abc", "Sizes": "1", "Zones": "a", **given})


@pytest.mark.parametrize(
    "parameter",
    [
        "MapBatchSize=0",
        "MapMaxConcurrency=0",
        "EnableSnapStart=yes",
        "EnableAlarms=true",
        "ToleratedFailurePercentage=101",
    ],
)
def test_the_cli_refuses_bad_parameters_before_running(parameter):
    code, out, err = _main("--uc", "semiconductor-eda", "--parameter", parameter, "--quiet")
    assert code == 2, out + err
    assert "ValidationError" in err
    assert "seeding" not in out + err  # nothing ran


def test_the_sam_engine_validates_parameters_with_the_same_module(tmp_path):
    from local.sam.provision import stack_parameters
    from local.usecases import UseCaseError, discover

    (use_case,) = [u for u in discover() if u.name == "semiconductor-eda"]
    env = json.loads((REPO / "events" / "env.json").read_text())
    assert stack_parameters(use_case, env)["AccessPointArn"] == env["DiscoveryFunction"]["ACCESS_POINT_ARN"]
    env["DiscoveryFunction"]["FILE_SUFFIXES"] = "gds"
    with pytest.raises(UseCaseError, match="Parameter 'FileSuffixes' failed to satisfy constraint"):
        stack_parameters(use_case, env)


# --- 4. fault specifications --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("s3:GetObjekt=permanent", "s3 has no operation 'GetObjekt'"),
        ("s4:GetObject=permanent", "unknown service 's4'"),
        ("s3:GetObject=slow,seconds=nan", "finite"),
        ("s3:GetObject=slow,seconds=inf", "finite"),
        ("s3:GetObject=slow,seconds=-1", "seconds"),
        ("s3:GetObject=permanent,status=200", "HTTP error status"),
        ("s3:GetObject=permanent,status=302", "HTTP error status"),
        ("s3:GetObject=transient,times=0", "times must be an integer >= 1"),
        ("s3:GetObject=transient,seconds=5", "seconds applies to slow faults only"),
        ("s3:GetObject=slow,seconds=1,sleep=maybe", "sleep must be true or false"),
        ("s3:GetObject=transient,times=1,times=2", "given twice"),
    ],
)
def test_bad_fault_specs_are_refused(spec, message):
    with pytest.raises(FaultSpecError, match=message):
        Fault.parse(spec)
    code, _, err = _main("--fault", spec)
    assert code == 2
    assert message.split("'")[0] in err


def test_known_operations_of_other_services_are_accepted():
    for spec in (
        "bedrock-runtime:Converse=transient",
        "lambda:Invoke=permanent",
        "athena:GetQueryExecution=slow,seconds=2",
    ):
        assert Fault.parse(spec).name == spec.split(",")[0]


@pytest.mark.parametrize("scale", ["-1", "nan", "inf"])
def test_bad_retry_time_scale_is_a_usage_error(scale):
    code, _, err = _main("--retry-time-scale", scale)
    assert code == 2
    assert "--retry-time-scale" in err


# --- 5. --keep: execution-named folders, keys mapped to paths that fit ------------------------------
def test_key_paths_always_fit_and_never_collide():
    long_segment = "é" * 200  # 400 bytes in UTF-8
    keys = [
        f"designs/{long_segment}/chip.gds",
        f"designs/{long_segment}x/chip.gds",
        "a",
        "a/b",
        "a//b",
        "./x",
        "../x",
        "odd/%41 ~ \x00\u2028.gds",
        "odd/A ~ \x00\u2028.gds",
        "odd/%2541",
    ]
    paths = key_paths(keys)
    assert len(set(paths.values())) == len(keys)
    for parts in paths.values():
        assert all(0 < len(part.encode()) <= 255 for part in parts)
        assert all(part not in {".", ".."} and "/" not in part and "\x00" not in part for part in parts)
    files = set(paths.values())
    folders = {parts[:i] for parts in files for i in range(1, len(parts))}
    assert not files & folders  # no object is written where another key needs a folder


def test_key_paths_can_all_be_written(tmp_path):
    keys = ["x" * 300 + "/y", "x" * 300, "a", "a/b", "sp ace/ü/\u2028"]
    for key, parts in key_paths(keys).items():
        path = tmp_path.joinpath(*parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(key)
    assert sorted(p.read_text() for p in tmp_path.rglob("*") if p.is_file()) == sorted(keys)


def test_the_tests_template_resolver_refuses_what_cloudformation_refuses():
    from local.template import load_template
    from tests.support.templates import Resolver, deployable

    template = load_template(UC6)
    with pytest.raises(ParameterError, match="EnableAlarms=true needs KmsKeyArn"):
        Resolver(template, {"EnableAlarms": "true"})
    completed = deployable(template, {"EnableAlarms": "true"})
    assert completed["KmsKeyArn"].startswith("arn:aws:kms:")
    assert Resolver(template, completed).values["EnableAlarms"] == "true"
    with pytest.raises(ParameterError, match="MapBatchSize"):
        deployable(template, {"MapBatchSize": "0"})  # nothing can make this one deployable
