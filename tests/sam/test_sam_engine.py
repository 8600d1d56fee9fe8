"""The sam engine's own logic, without a container: verdicts, ordering, selection, the emulation.

The emulation proxy is exercised for real on loopback: a separate Python process (as a Lambda
container is) sends boto3 calls through it with its CA bundle and gets moto's answers.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from local.sam import containers
from local.sam.emulation import LOOPBACK, EmulationServer, Incoming
from local.sam.invoke import SamInvoker, expected_fields, judge
from local.sam.overrides import embedded_emulators, operation_name
from local.sam.provision import Resolver, UnresolvedError, known_values
from local.sam_engine import container_environment
from local.usecases import REPO_ROOT, FunctionSpec, UseCaseError, load_use_case, select
from tests.sam.helpers import env_json, use_cases

pytestmark = pytest.mark.unit

FN = FunctionSpec(
    logical_id="DemoFunction", name="demo", code_dir=Path("/x"), handler="handler.handler", environment={}
)


# --- verdicts ------------------------------------------------------------------------------------
def test_a_handler_error_document_fails_although_sam_exited_zero() -> None:
    out = json.dumps({"errorType": "InvalidInputError", "errorMessage": "bad", "stackTrace": []})
    verdict = judge("uc", FN, 0, out, 1.0, [])
    assert not verdict.passed
    assert verdict.error_type == "InvalidInputError"
    assert verdict.error_message == "bad"


def test_a_response_with_the_selected_fields_passes() -> None:
    verdict = judge("uc", FN, 0, json.dumps({"manifest_key": "k", "object_count": 3}), 1.0, ["manifest_key"])
    assert verdict.passed
    assert verdict.response == {"manifest_key": "k", "object_count": 3}


def test_a_response_missing_a_selected_field_fails() -> None:
    verdict = judge("uc", FN, 0, json.dumps({"object_count": 3}), 1.0, ["manifest_key", "object_count"])
    assert not verdict.passed
    assert verdict.missing_fields == ["manifest_key"]


@pytest.mark.parametrize(
    ("rc", "out", "kind"), [(1, "{}", "SamInvokeFailed"), (0, "", "NoResponse"), (0, "Traceback: boom", "NoResponse")]
)
def test_no_usable_response_fails(rc: int, out: str, kind: str) -> None:
    verdict = judge("uc", FN, rc, out, 1.0, [])
    assert not verdict.passed
    assert verdict.error_type == kind


def test_expected_fields_come_from_the_state_machine_result_selectors() -> None:
    for use_case in use_cases():
        for function in use_case.functions:
            fields = expected_fields(use_case, function)
            assert fields, f"{use_case.name}/{function.name}: no ResultSelector reads its response"
            assert all(f and "." not in f for f in fields)


# --- use cases --------------------------------------------------------------------------------------
def test_functions_are_in_state_machine_order() -> None:
    for use_case in use_cases():
        names = [fn.logical_id for fn in use_case.functions]
        text = json.dumps(use_case.template["Resources"])
        positions = [text.find("${" + lid + "Arn}") for lid in names]
        referenced = [p for p in positions if p >= 0]
        assert referenced == sorted(referenced), f"{use_case.name}: {names} not in definition order"


def test_select_by_folder_events_name_and_number() -> None:
    all_ucs = use_cases()
    first = all_ucs[0]
    number = first.events_name.split("-", 1)[0]  # uc06
    for name in (first.name, first.events_name, number, number.replace("uc0", "uc"), number.lstrip("uc0")):
        assert select(all_ucs, [name]) == [first]
    assert select(all_ucs, []) == all_ucs
    with pytest.raises(UseCaseError, match="unknown use case"):
        select(all_ucs, ["no-such-use-case"])


def _demo_use_case(directory: Path, properties: str) -> None:
    """A one-function use case in ``directory``: ``properties`` are added to the function's."""
    (directory / "template-deploy.yaml").write_text(
        textwrap.dedent("""
        AWSTemplateFormatVersion: '2010-09-09'
        Resources:
          DemoFunction:
            Type: AWS::Lambda::Function
            Properties:
              Runtime: python3.13
              Handler: handler.handler
              Role: arn:aws:iam::123456789012:role/x
        """)
        + "".join(f"      {line}\n" for line in properties.splitlines())
    )


def test_a_template_without_local_code_path_is_refused(tmp_path: Path) -> None:
    _demo_use_case(tmp_path, "Code: {S3Bucket: b, S3Key: k}")
    with pytest.raises(UseCaseError, match="local path"):
        load_use_case(tmp_path, tmp_path / "events")


@pytest.mark.parametrize(("timeout", "expected"), [("42", 42), (None, 3), ("{Ref: T}", None)])
def test_the_function_timeout_comes_from_the_template(tmp_path: Path, timeout: str | None, expected: int | None):
    (tmp_path / "functions" / "demo").mkdir(parents=True)
    _demo_use_case(tmp_path, "Code: functions/demo" + (f"\nTimeout: {timeout}" if timeout else ""))
    if expected is None:  # an intrinsic sam local invoke cannot turn into seconds
        with pytest.raises(UseCaseError, match="Timeout: expected a whole number"):
            load_use_case(tmp_path, tmp_path / "events")
    else:
        assert load_use_case(tmp_path, tmp_path / "events").functions[0].timeout_s == expected


# --- provisioning ---------------------------------------------------------------------------------
def test_env_json_values_name_the_templates_resources() -> None:
    env = env_json()
    for use_case in use_cases():
        known = known_values(use_case, env)
        resources = use_case.template.get("Resources") or {}
        # Every bucket a function writes to is known by its physical name.
        for fn in use_case.functions:
            value = env.get(fn.logical_id, {}).get("OUTPUT_BUCKET")
            if value is not None:
                assert value in known.values()
        assert any(resources.get(lid, {}).get("Type") == "AWS::S3::Bucket" for lid in known)


def test_resolver_evaluates_sub_if_and_refuses_unknowns() -> None:
    template = {
        "Parameters": {"Prefix": {"Type": "String", "Default": "p/"}, "Given": {"Type": "String", "Default": ""}},
        "Conditions": {"Create": {"Fn::Equals": [{"Ref": "Given"}, ""]}},
        "Resources": {},
    }
    resolver = Resolver(template, {"Bucket": "my-bucket", "Given": "given-bucket"})
    branch = {"Fn::If": ["Create", {"Ref": "Bucket"}, {"Ref": "Given"}]}
    value = {"Fn::Sub": ["s3://${B}/${Prefix}${!literal}", {"B": branch}]}
    assert resolver.resolve(value) == "s3://given-bucket/p/${literal}"
    with pytest.raises(UnresolvedError):
        resolver.resolve({"Ref": "Unknown"})


# --- the emulation, through a real proxy ----------------------------------------------------------
CLIENT_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import boto3
    s3 = boto3.client("s3", region_name="us-east-1")
    arn = sys.argv[1]
    s3.put_object(Bucket=arn, Key="dir/a file.gds", Body=b"abc")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=arn)["Contents"]]
    body = s3.get_object(Bucket=arn, Key="dir/a file.gds")["Body"].read().decode()
    athena = boto3.client("athena", region_name="us-east-1")
    qid = athena.start_query_execution(QueryString="SELECT 1 AS one", WorkGroup="wg")["QueryExecutionId"]
    state = "QUEUED"
    for _ in range(20):
        state = athena.get_query_execution(QueryExecutionId=qid)["QueryExecution"]["Status"]["State"]
        if state in ("SUCCEEDED", "FAILED"):
            break
    rows = athena.get_query_results(QueryExecutionId=qid)["ResultSet"]["Rows"]
    bedrock = boto3.client("bedrock-runtime", region_name="us-east-1")
    reply = bedrock.converse(modelId="amazon.nova-lite-v1:0",
                             messages=[{"role": "user", "content": [{"text": "files: 3, failed: 1"}]}])
    print(json.dumps({"keys": keys, "body": body, "state": state, "rows": len(rows),
                      "text": reply["output"]["message"]["content"][0]["text"][:40]}))
""")


def _client_env(server: EmulationServer, ca: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "HTTP", "http"))}
    env.update(
        {
            "HTTPS_PROXY": server.proxy_url(),
            "NO_PROXY": "",
            "AWS_CA_BUNDLE": ca,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_MAX_ATTEMPTS": "1",
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    return env


@pytest.fixture
def emulation(tmp_path: Path):
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        s3 = session.client("s3")
        s3.create_bucket(Bucket="backing-bucket")
        s3.create_bucket(Bucket="athena-out")
        session.client("s3control").create_access_point(
            AccountId="123456789012", Name="demo-ap", Bucket="backing-bucket"
        )
        session.client("athena").create_work_group(
            Name="wg", Configuration={"ResultConfiguration": {"OutputLocation": "s3://athena-out/r/"}}
        )
        with EmulationServer("127.0.0.1", tmp_path, overrides=embedded_emulators(session)) as server:
            yield server, session


def test_a_separate_process_reaches_access_points_athena_and_bedrock_through_the_proxy(emulation) -> None:
    server, session = emulation
    arn = "arn:aws:s3:us-east-1:123456789012:accesspoint/demo-ap"
    proc = subprocess.run(
        [sys.executable, "-c", CLIENT_SCRIPT, arn],
        env=_client_env(server, str(server.ca_bundle)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout)
    assert result["keys"] == ["dir/a file.gds"]
    assert result["body"] == "abc"
    assert result["state"] == "SUCCEEDED"  # DuckDB ran it: moto alone never executes queries
    assert result["rows"] == 2  # header + one row
    assert result["text"]
    # The object landed in the bucket behind the access point, in the same moto the engine seeds.
    assert session.client("s3").get_object(Bucket="backing-bucket", Key="dir/a file.gds")["Body"].read() == b"abc"
    hosts = {r.host for r in server.records}
    assert "demo-ap-123456789012.s3-accesspoint.us-east-1.amazonaws.com" in hosts
    assert "bedrock-runtime.us-east-1.amazonaws.com" in hosts


def test_a_client_that_does_not_trust_the_emulation_ca_is_refused(emulation, tmp_path: Path) -> None:
    # Known-bad: TLS is verified for real, so a wrong CA bundle cannot silently work.
    server, _ = emulation
    other = EmulationServer("127.0.0.1", tmp_path / "other")
    try:
        wrong_ca = str(other.ca_bundle)
    finally:
        other.stop()
    arn = "arn:aws:s3:us-east-1:123456789012:accesspoint/demo-ap"
    proc = subprocess.run(
        [sys.executable, "-c", CLIENT_SCRIPT, arn],
        env=_client_env(server, wrong_ca),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode != 0
    assert "SSL" in proc.stderr or "certificate" in proc.stderr


def test_operation_names_are_recovered_from_the_wire() -> None:
    converse = Incoming(
        "POST", "bedrock-runtime.us-east-1.amazonaws.com", "/model/amazon.nova-lite-v1%3A0/converse", {}, b"{}"
    )
    assert operation_name("bedrock-runtime", converse) == "Converse"
    start = Incoming(
        "POST", "athena.us-east-1.amazonaws.com", "/", {"X-Amz-Target": "AmazonAthena.StartQueryExecution"}, b"{}"
    )
    assert operation_name("athena", start) == "StartQueryExecution"


def test_no_engine_is_reported_when_docker_host_points_nowhere(tmp_path: Path) -> None:
    env = {"DOCKER_HOST": f"unix://{tmp_path}/absent.sock"}
    assert containers.find_engine(env) is None


def test_probe_exit_status_follows_the_engine(tmp_path: Path) -> None:
    env = {**os.environ, "DOCKER_HOST": f"unix://{tmp_path}/absent.sock"}
    proc = subprocess.run(
        [sys.executable, "-m", "local.sam_engine", "--probe"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1


def test_the_emulation_listens_on_loopback_and_containers_are_pointed_there(tmp_path: Path) -> None:
    with EmulationServer(LOOPBACK, tmp_path) as server:
        host, port = server.address
        assert host == "127.0.0.1"
        environment = container_environment(server)
    assert environment["HTTPS_PROXY"] == environment["https_proxy"] == f"http://127.0.0.1:{port}"
    assert environment["AWS_CA_BUNDLE"] == containers.CA_PATH_IN_IMAGE


@pytest.mark.parametrize("address", ["0.0.0.0", "172.17.0.1", "10.0.0.1", "::", "docker0"])  # noqa: S104 - bad input
def test_the_emulation_refuses_to_listen_off_loopback(tmp_path: Path, address: str) -> None:
    with pytest.raises(ValueError, match="loopback only"):
        EmulationServer(address, tmp_path)


# --- the invoke image's name and SAM's rapid image ------------------------------------------------
def _sam_rapid_name(invoke_image: str) -> str:
    """How SAM CLI (samcli/local/docker/lambda_image.py, LambdaImage.build) names the image it
    builds over ``--invoke-image`` for a function without layers: the repository, ``:rapid-<arch>``."""
    return f"{invoke_image.split(':', maxsplit=1)[0].replace('@', '')}:rapid-x86_64"


def test_a_changed_invoke_image_gets_a_rapid_image_of_its_own() -> None:
    # Same base, different proxy address: SAM must not reuse the rapid image built for the other.
    first = containers.derived_image_tag("base:1", {"HTTPS_PROXY": "http://127.0.0.1:1"}, b"ca", "sha256:a")
    second = containers.derived_image_tag("base:1", {"HTTPS_PROXY": "http://127.0.0.1:2"}, b"ca", "sha256:a")
    other_ca = containers.derived_image_tag("base:1", {"HTTPS_PROXY": "http://127.0.0.1:1"}, b"ca2", "sha256:a")
    other_base = containers.derived_image_tag("base:1", {"HTTPS_PROXY": "http://127.0.0.1:1"}, b"ca", "sha256:b")
    names = {_sam_rapid_name(tag) for tag in (first, second, other_ca, other_base)}
    assert len(names) == 4
    assert first == containers.derived_image_tag("base:1", {"HTTPS_PROXY": "http://127.0.0.1:1"}, b"ca", "sha256:a")


def test_only_a_stable_image_name_forces_sams_image_build() -> None:
    use_case = use_cases()[0]
    function = use_case.functions[0]
    engine = SamInvoker(Path("sam"), "unix:///relay", "img", Path("env.json"), Path("logs"), force_image_build=False)
    serve = SamInvoker(Path("sam"), "unix:///relay", containers.SERVE_TAG, Path("env.json"), Path("logs"))
    assert "--force-image-build" not in engine.command(use_case, function)
    assert "--force-image-build" in serve.command(use_case, function)
