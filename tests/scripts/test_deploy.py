"""scripts/deploy.sh against fake aws/python executables, on a scratch copy of the tree (``repo``).

Every AWS call is checked argv by argv; the dry run must print exactly the calls a real run makes
and call nothing; a failed deploy prints the failed events of its own operation (Guard Hook
results included) and exits 1; --delete empties nothing.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from tests.scripts.conftest import layer_env
from tests.support.fake_cli import FakeCli, Reply

pytestmark = pytest.mark.scripts

UC = "semiconductor-eda"
STACK = "uc6-eda"
BUCKET = "my-artifacts"
AP = "arn:aws:s3:eu-west-1:123456789012:accesspoint/eda-volume"
HASH_NAMES = {"DiscoveryCodeHash", "MetadataExtractionCodeHash", "DrcAggregationCodeHash", "ReportGenerationCodeHash"}
BASE = (UC, "--stack-name", STACK, "--artifact-bucket", BUCKET, "--region", "eu-west-1")
MISSING = Reply(stderr=f"An error occurred (ValidationError) when calling the DescribeStacks operation: "
                       f"Stack with id {STACK} does not exist", exit_code=254)


def stack(status: str, outputs: dict[str, str] | None = None) -> Reply:
    body: dict[str, Any] = {"Stacks": [{"StackName": STACK, "StackStatus": status,
                                        "Outputs": [{"OutputKey": k, "OutputValue": v}
                                                    for k, v in (outputs or {}).items()]}]}
    return Reply(stdout=json.dumps(body))


def deploy(fake_cli: FakeCli, repo: Path, *args: str):
    packaged = repo / ".build" / UC / f"{STACK}.packaged.yaml"
    packaged.parent.mkdir(parents=True, exist_ok=True)
    packaged.write_text("Resources: {}\n")  # what aws cloudformation package would write
    return fake_cli.run([str(repo / "scripts/deploy.sh"), *args], env=layer_env(fake_cli))


def overrides_of(argv: list[str]) -> dict[str, str]:
    words = argv[argv.index("--parameter-overrides") + 1 :]
    return dict(word.split("=", 1) for word in words)


def expected_calls(repo: Path, overrides: list[str]) -> list[list[str]]:
    region = ["--region", "eu-west-1"]
    packaged = str(repo / ".build" / UC / f"{STACK}.packaged.yaml")
    return [
        ["s3api", "head-bucket", "--bucket", BUCKET, *region, "--output", "json"],
        ["cloudformation", "describe-stacks", "--stack-name", STACK, *region, "--output", "json"],
        ["cloudformation", "package", "--template-file", str(repo / UC / "template-deploy.yaml"),
         "--s3-bucket", BUCKET, "--s3-prefix", STACK, "--output-template-file", packaged, *region],
        ["cloudformation", "deploy", "--template-file", packaged, "--stack-name", STACK, "--s3-bucket", BUCKET,
         "--s3-prefix", STACK, "--capabilities", "CAPABILITY_IAM", "--no-fail-on-empty-changeset", *region,
         "--parameter-overrides", *overrides],
        ["cloudformation", "describe-stacks", "--stack-name", STACK, *region, "--output", "json"],
    ]


def test_a_first_deploy_builds_packages_deploys_with_the_hashes_and_prints_the_outputs(fake_cli, repo):
    fake_cli.reply("aws", ["cloudformation", "describe-stacks"],
                   sequence=[MISSING, stack("CREATE_COMPLETE", {"StateMachineArn": "arn:sm",
                                                                "OutputBucketName": "out"})])
    result = deploy(fake_cli, repo, *BASE, "--parameter-overrides", f"AccessPointArn={AP}", "EnableTracing=true",
                    "--enable-snapstart")
    assert result.returncode == 0, result.stderr
    assert len(fake_cli.invocations("python")) == 1  # the layer was built
    calls = fake_cli.calls("aws")
    overrides = overrides_of(calls[3])
    assert set(overrides) == {"AccessPointArn", "EnableTracing", "EnableSnapStart", *HASH_NAMES}
    assert overrides["EnableSnapStart"] == "true"
    assert all(re.fullmatch(r"[0-9a-f]{16}", overrides[name]) for name in HASH_NAMES)
    words = calls[3][calls[3].index("--parameter-overrides") + 1 :]
    assert calls == expected_calls(repo, words)
    assert result.stdout == "OutputBucketName\tout\nStateMachineArn\tarn:sm\n"


def test_the_hashes_are_the_ones_package_sh_computes(fake_cli, repo):
    fake_cli.reply("aws", ["cloudformation", "describe-stacks"], sequence=[MISSING, stack("CREATE_COMPLETE")])
    assert deploy(fake_cli, repo, *BASE).returncode == 0
    deployed = {k: v for k, v in overrides_of(fake_cli.calls("aws")[3]).items() if k in HASH_NAMES}
    packaged = fake_cli.run([str(repo / "scripts/package.sh"), "--uc", UC, "--s3-bucket", BUCKET, "--skip-layer",
                             "--dry-run"], env=layer_env(fake_cli))
    assert dict(re.findall(r"^(\w+CodeHash)=([0-9a-f]{16})$", packaged.stdout, flags=re.M)) == deployed


def test_dry_run_prints_exactly_the_calls_of_a_real_run_and_calls_nothing(fake_cli, repo):
    args = (*BASE, "--parameter-overrides", f"AccessPointArn={AP}")
    fake_cli.reply("aws", ["cloudformation", "describe-stacks"], sequence=[MISSING, stack("CREATE_COMPLETE")])
    assert deploy(fake_cli, repo, *args).returncode == 0
    real = fake_cli.calls("aws")
    fake_cli.clear()
    dry = deploy(fake_cli, repo, *args, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert fake_cli.calls("aws") == []
    assert fake_cli.invocations("python") == []
    printed = [shlex.split(line.split("would run: ", 1)[1]) for line in dry.stdout.splitlines()
               if "would run: aws " in line]
    assert printed == [["aws", *call] for call in real]
    assert set(overrides_of(printed[3])) == {"AccessPointArn", *HASH_NAMES}


def test_dry_run_needs_no_account_and_prints_the_hashes_it_would_pass(fake_cli, repo):
    result = deploy(fake_cli, repo, UC, "--stack-name", STACK, "--artifact-bucket", BUCKET, "--dry-run")
    assert result.returncode == 0, result.stderr
    (line,) = [line for line in result.stdout.splitlines() if "would run: aws cloudformation deploy" in line]
    assert set(overrides_of(shlex.split(line))) == HASH_NAMES
    assert fake_cli.calls("aws") == []


def test_an_unchanged_rerun_passes_the_same_hashes_and_succeeds(fake_cli, repo):
    fake_cli.reply("aws", ["cloudformation", "describe-stacks"], stdout=stack("UPDATE_COMPLETE").stdout)
    fake_cli.reply("aws", ["cloudformation", "deploy"],
                   stdout=f"\nNo changes to deploy. Stack {STACK} is up to date\n")
    first = deploy(fake_cli, repo, *BASE)
    second = deploy(fake_cli, repo, *BASE)
    assert (first.returncode, second.returncode) == (0, 0), second.stderr
    deploys = [call for call in fake_cli.calls("aws") if call[:2] == ["cloudformation", "deploy"]]
    assert len(deploys) == 2
    assert deploys[0] == deploys[1]
    assert len(fake_cli.invocations("python")) == 1  # the layer is not rebuilt
    # nothing changed after an earlier rolled-back update: still a success
    fake_cli.reply("aws", ["cloudformation", "describe-stacks"], stdout=stack("UPDATE_ROLLBACK_COMPLETE").stdout)
    assert deploy(fake_cli, repo, *BASE).returncode == 0


EVENTS = {"StackEvents": [
    {"LogicalResourceId": STACK, "ResourceType": "AWS::CloudFormation::Stack", "ResourceStatus": "ROLLBACK_COMPLETE",
     "Timestamp": "2026-12-01T10:05:00Z"},
    {"LogicalResourceId": "DiscoveryRole", "ResourceType": "AWS::IAM::Role", "ResourceStatus": "CREATE_FAILED",
     "ResourceStatusReason": "Resource creation cancelled", "Timestamp": "2026-12-01T10:04:00Z"},
    {"LogicalResourceId": "OutputBucket", "ResourceType": "AWS::S3::Bucket", "ResourceStatus": "CREATE_IN_PROGRESS",
     "HookType": "Private::Guard::Hook", "HookStatus": "HOOK_COMPLETE_FAILED", "HookFailureMode": "FAIL",
     "HookInvocationPoint": "PRE_PROVISION", "HookStatusReason": "Violation: bucket without encryption",
     "Timestamp": "2026-12-01T10:03:00Z"},
    {"LogicalResourceId": STACK, "ResourceType": "AWS::CloudFormation::Stack", "ResourceStatus": "CREATE_IN_PROGRESS",
     "ResourceStatusReason": "User Initiated", "Timestamp": "2026-12-01T10:02:00Z"},
    {"LogicalResourceId": "OldFunction", "ResourceType": "AWS::Lambda::Function", "ResourceStatus": "UPDATE_FAILED",
     "ResourceStatusReason": "an earlier operation", "Timestamp": "2026-11-01T10:00:00Z"},
]}


def test_a_failed_deploy_prints_its_failed_events_and_hook_results_and_exits_1(fake_cli, repo):
    fake_cli.reply("aws", ["cloudformation", "describe-stacks"], sequence=[MISSING])
    fake_cli.reply("aws", ["cloudformation", "deploy"], stderr="Failed to create/update the stack.", exit_code=255)
    fake_cli.reply("aws", ["cloudformation", "describe-stack-events"], stdout=EVENTS)
    result = deploy(fake_cli, repo, *BASE)
    assert result.returncode == 1
    hook = "hook Private::Guard::Hook (PRE_PROVISION, FAIL) HOOK_COMPLETE_FAILED: Violation: bucket without encryption"
    assert hook in result.stderr
    assert "DiscoveryRole AWS::IAM::Role CREATE_FAILED: Resource creation cancelled" in result.stderr
    assert "an earlier operation" not in result.stderr
    assert "deploy of stack uc6-eda failed" in result.stderr
    assert fake_cli.calls("aws")[-1][:2] == ["cloudformation", "describe-stack-events"]


def test_a_deploy_that_leaves_the_stack_rolled_back_fails(fake_cli, repo):
    fake_cli.reply("aws", ["cloudformation", "describe-stacks"],
                   sequence=[stack("UPDATE_COMPLETE"), stack("UPDATE_ROLLBACK_COMPLETE")])
    fake_cli.reply("aws", ["cloudformation", "describe-stack-events"], stdout=EVENTS)
    result = deploy(fake_cli, repo, *BASE)
    assert result.returncode == 1
    assert "is UPDATE_ROLLBACK_COMPLETE after the deploy" in result.stderr


@pytest.mark.parametrize("status", ["ROLLBACK_COMPLETE", "UPDATE_IN_PROGRESS"])
def test_a_stack_that_cannot_be_updated_is_refused_before_any_upload(fake_cli, repo, status):
    fake_cli.reply("aws", ["cloudformation", "describe-stacks"], stdout=stack(status).stdout)
    result = deploy(fake_cli, repo, *BASE)
    assert result.returncode == 1
    assert status in result.stderr
    assert [call[:2] for call in fake_cli.calls("aws")] == [["s3api", "head-bucket"],
                                                           ["cloudformation", "describe-stacks"]]


def test_a_missing_artifact_bucket_stops_before_anything(fake_cli, repo):
    fake_cli.reply("aws", ["s3api", "head-bucket"], stderr="An error occurred (404) Not Found", exit_code=254)
    result = deploy(fake_cli, repo, *BASE)
    assert result.returncode == 1
    assert "artifact bucket my-artifacts is not reachable" in result.stderr
    assert len(fake_cli.calls("aws")) == 1


def test_other_describe_errors_are_not_taken_for_a_missing_stack(fake_cli, repo):
    fake_cli.reply("aws", ["cloudformation", "describe-stacks"], stderr="AccessDenied", exit_code=254)
    result = deploy(fake_cli, repo, *BASE)
    assert result.returncode == 1
    assert "cannot describe stack uc6-eda: AccessDenied" in result.stderr


# --- --delete ------------------------------------------------------------------------------------
def test_delete_deletes_the_stack_and_reports_what_the_retained_buckets_hold_emptying_nothing(fake_cli, repo):
    fake_cli.reply("aws", ["cloudformation", "describe-stacks"], stdout=stack("CREATE_COMPLETE").stdout)
    fake_cli.reply("aws", ["cloudformation", "list-stack-resources"], stdout={"StackResourceSummaries": [
        {"LogicalResourceId": "OutputBucket", "ResourceType": "AWS::S3::Bucket", "PhysicalResourceId": "uc6-out-1"},
        {"LogicalResourceId": "DiscoveryFunction", "ResourceType": "AWS::Lambda::Function", "PhysicalResourceId": "f"},
    ]})
    fake_cli.reply("aws", ["s3api", "list-objects-v2", "--bucket", "uc6-out-1"],
                   stdout={"Contents": [{"Key": "a", "Size": 10}, {"Key": "b", "Size": 5}]})
    fake_cli.reply("aws", ["s3api", "list-objects-v2", "--bucket", BUCKET],
                   stdout={"Contents": [{"Key": "k", "Size": 7}]})
    result = deploy(fake_cli, repo, *BASE, "--delete")
    assert result.returncode == 0, result.stderr
    region = ["--region", "eu-west-1"]
    assert fake_cli.calls("aws") == [
        ["cloudformation", "describe-stacks", "--stack-name", STACK, *region, "--output", "json"],
        ["cloudformation", "list-stack-resources", "--stack-name", STACK, *region, "--output", "json"],
        ["cloudformation", "delete-stack", "--stack-name", STACK, *region],
        ["cloudformation", "wait", "stack-delete-complete", "--stack-name", STACK, *region],
        ["s3api", "head-bucket", "--bucket", "uc6-out-1", *region, "--output", "json"],
        ["s3api", "list-objects-v2", "--bucket", "uc6-out-1", *region, "--output", "json"],
        ["s3api", "list-objects-v2", "--bucket", BUCKET, "--prefix", f"{STACK}/", *region, "--output", "json"],
    ]
    assert "retained bucket s3://uc6-out-1 still holds 2 objects, 15 bytes" in result.stdout
    assert f"s3://{BUCKET}/{STACK}/ still holds 1 objects, 7 bytes" in result.stdout
    assert fake_cli.invocations("python") == []  # nothing built


def test_delete_of_a_missing_stack_is_a_no_op_that_still_reports_the_artifacts(fake_cli, repo):
    fake_cli.reply("aws", ["cloudformation", "describe-stacks"], sequence=[MISSING])
    result = deploy(fake_cli, repo, *BASE, "--delete")
    assert result.returncode == 0, result.stderr
    assert "does not exist: nothing to delete" in result.stderr
    assert [c[:2] for c in fake_cli.calls("aws")] == [["cloudformation", "describe-stacks"],
                                                     ["s3api", "list-objects-v2"]]
    assert "still holds 0 objects, 0 bytes" in result.stdout


def test_a_failed_delete_prints_the_events_and_exits_1(fake_cli, repo):
    fake_cli.reply("aws", ["cloudformation", "describe-stacks"], stdout=stack("CREATE_COMPLETE").stdout)
    fake_cli.reply("aws", ["cloudformation", "list-stack-resources"], stdout={"StackResourceSummaries": []})
    fake_cli.reply("aws", ["cloudformation", "wait"], stderr="Waiter StackDeleteComplete failed", exit_code=255)
    fake_cli.reply("aws", ["cloudformation", "describe-stack-events"], stdout=EVENTS)
    result = deploy(fake_cli, repo, *BASE, "--delete")
    assert result.returncode == 1
    assert "DiscoveryRole AWS::IAM::Role CREATE_FAILED" in result.stderr
    assert "was not deleted" in result.stderr


def test_delete_dry_run_calls_nothing(fake_cli, repo):
    result = deploy(fake_cli, repo, *BASE, "--delete", "--dry-run")
    assert result.returncode == 0, result.stderr
    assert "would run: aws cloudformation delete-stack --stack-name uc6-eda --region eu-west-1" in result.stdout
    assert fake_cli.calls("aws") == []


# --- arguments -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "USE_CASE is required"),
        (("nothing-here", "--stack-name", STACK, "--artifact-bucket", BUCKET), "template-deploy.yaml not found"),
        (("../etc", "--stack-name", STACK, "--artifact-bucket", BUCKET), "must be a use-case folder name"),
        ((UC, UC, "--stack-name", STACK, "--artifact-bucket", BUCKET), "only one USE_CASE"),
        ((UC, "--artifact-bucket", BUCKET), "--stack-name is required"),
        ((UC, "--stack-name", STACK), "--artifact-bucket is required"),
        ((UC, "--stack-name", "1bad_name", "--artifact-bucket", BUCKET),
         "--stack-name '1bad_name' is not a valid stack name"),
        ((UC, "--stack-name", STACK, "--artifact-bucket", "Bad_Bucket"), "is not a valid S3 bucket name"),
        ((*BASE[:5], "--region", "mars"), "--region 'mars' is not an AWS Region name"),
        ((UC, "--stack-name"), "--stack-name needs a value"),
        ((*BASE, "--parameter-overrides"), "--parameter-overrides needs at least one KEY=VALUE"),
        ((*BASE, "--parameter-overrides", "--dry-run"), "--parameter-overrides needs at least one KEY=VALUE"),
        ((*BASE, "--parameter-overrides", "AccessPointArn"), "is not KEY=VALUE"),
        ((*BASE, "--parameter-overrides", "Nope=1"), "declares no parameter Nope"),
        ((*BASE, "--parameter-overrides", "bad-key=1"), "is not a parameter name"),
        ((*BASE, "--parameter-overrides", "DiscoveryCodeHash=0123456789abcdef"), "computed by deploy.sh"),
        ((*BASE, "--parameter-overrides", "EnableTracing=true", "EnableTracing=false"), "EnableTracing given twice"),
        ((*BASE, "--parameter-overrides", "EnableSnapStart=false", "--enable-snapstart"), "not both"),
        ((*BASE, "--delete", "--enable-snapstart"), "--delete takes no"),
        ((*BASE, "--frobnicate"), "unknown option '--frobnicate'"),
    ],
)
def test_every_argument_is_validated_before_any_call(fake_cli, repo, args, message):
    result = deploy(fake_cli, repo, *args)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr
    assert fake_cli.calls("aws") == []
    assert fake_cli.invocations("python") == []


def test_help(fake_cli, repo):
    result = deploy(fake_cli, repo, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: scripts/deploy.sh USE_CASE --stack-name NAME --artifact-bucket BUCKET")
