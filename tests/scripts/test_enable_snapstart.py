"""scripts/enable-snapstart.sh against a fake ``aws`` that plays a deployed use-case stack."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_cli import FakeCli, Reply

pytestmark = pytest.mark.scripts

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "enable-snapstart.sh"
STACK = "uc6-eda"
STACK_ID = f"arn:aws:cloudformation:us-east-1:123456789012:stack/{STACK}/0a1b2c3d"
MACHINE = f"arn:aws:states:us-east-1:123456789012:stateMachine:{STACK}-StateMachine"
FUNCTIONS = ("uc6-eda-DiscoveryFunction-A1", "uc6-eda-MetadataExtractionFunction-B2")
OTHER_PARAMETERS = {
    "AccessPointArn": "arn:aws:s3:us-east-1:123456789012:accesspoint/eda",
    "DiscoveryCodeHash": "0123456789abcdef",
}


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:123456789012:function:{name}"


@dataclass
class Stack:
    """What the fake AWS account holds, before and after the update."""

    enabled_before: bool = False
    enabled_after: bool = True
    version: dict[str, str] = field(default_factory=lambda: dict.fromkeys(FUNCTIONS, "3"))
    optimization: dict[str, str] = field(default_factory=lambda: dict.fromkeys(FUNCTIONS, "On"))
    # How the state machine names each function: "alias", "function" or "$LATEST".
    invoke: dict[str, str] = field(default_factory=dict)
    capabilities: list[str] = field(default_factory=lambda: ["CAPABILITY_IAM"])

    def describe(self, status: str, enabled: bool) -> dict[str, Any]:
        parameters = [{"ParameterKey": k, "ParameterValue": v} for k, v in OTHER_PARAMETERS.items()]
        parameters.insert(1, {"ParameterKey": "EnableSnapStart", "ParameterValue": "true" if enabled else "false"})
        stack = {"StackId": STACK_ID, "StackName": STACK, "StackStatus": status, "Parameters": parameters}
        if self.capabilities:
            stack["Capabilities"] = self.capabilities
        return {"Stacks": [stack]}

    def invoked_as(self, name: str) -> str:
        default = "alias" if self.enabled_after else "function"
        how = self.invoke.get(name, default)
        return {
            "alias": f"{function_arn(name)}:live",
            "function": function_arn(name),
            "$LATEST": f"{function_arn(name)}:$LATEST",
        }[how]

    def install(self, cli: FakeCli, *, statuses: tuple[str, ...] = ("UPDATE_IN_PROGRESS", "UPDATE_COMPLETE")) -> None:
        before = Reply(json.dumps(self.describe("CREATE_COMPLETE", self.enabled_before)))
        during = [Reply(json.dumps(self.describe(s, self.enabled_after))) for s in statuses]
        cli.reply("aws", pattern=r"cloudformation describe-stacks", sequence=[before, *during])
        cli.reply("aws", pattern=r"cloudformation update-stack", stdout={"StackId": STACK_ID})
        summaries = [
            {
                "LogicalResourceId": "StateMachine",
                "PhysicalResourceId": MACHINE,
                "ResourceType": "AWS::StepFunctions::StateMachine",
            },
            {"LogicalResourceId": "StateMachineRole", "PhysicalResourceId": "role", "ResourceType": "AWS::IAM::Role"},
        ]
        for name in FUNCTIONS:
            logical = name.split("-")[2]
            summaries.append(
                {"LogicalResourceId": logical, "PhysicalResourceId": name, "ResourceType": "AWS::Lambda::Function"}
            )
            if self.enabled_after:
                summaries.append(
                    {
                        "LogicalResourceId": logical.replace("Function", "Alias"),
                        "PhysicalResourceId": f"{function_arn(name)}:live",
                        "ResourceType": "AWS::Lambda::Alias",
                    }
                )
            qualified = f"{function_arn(name)}:{self.version[name]}"
            cli.reply(
                "aws",
                pattern=rf"lambda get-function-configuration --function-name {name}$",
                stdout={
                    "FunctionName": name,
                    "FunctionArn": function_arn(name),
                    "Version": "$LATEST",
                    "SnapStart": {
                        "ApplyOn": "PublishedVersions" if self.enabled_after else "None",
                        "OptimizationStatus": "Off",
                    },
                },
            )
            cli.reply(
                "aws",
                pattern=rf"lambda get-function-configuration --function-name {name} --qualifier {self.version[name]}$",
                stdout={
                    "FunctionName": name,
                    "FunctionArn": qualified,
                    "Version": self.version[name],
                    "SnapStart": {"ApplyOn": "PublishedVersions", "OptimizationStatus": self.optimization[name]},
                },
            )
            cli.reply(
                "aws",
                pattern=rf"lambda get-alias --function-name {name} --name live$",
                stdout={
                    "AliasArn": f"{function_arn(name)}:live",
                    "Name": "live",
                    "FunctionVersion": self.version[name],
                },
            )
        cli.reply("aws", pattern=r"cloudformation list-stack-resources", stdout={"StackResourceSummaries": summaries})
        definition = {
            "StartAt": "Discovery",
            "States": {
                "Discovery": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": self.invoked_as(FUNCTIONS[0]), "Payload": {}},
                    "Next": "Map",
                },
                "Map": {
                    "Type": "Map",
                    "ItemProcessor": {
                        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                        "StartAt": "Extract",
                        "States": {
                            "Extract": {
                                "Type": "Task",
                                "Resource": "arn:aws:states:::lambda:invoke",
                                "Parameters": {"FunctionName": self.invoked_as(FUNCTIONS[1]), "Payload.$": "$"},
                                "End": True,
                            }
                        },
                    },
                    "End": True,
                },
            },
        }
        cli.reply(
            "aws",
            pattern=r"stepfunctions describe-state-machine",
            stdout={"stateMachineArn": MACHINE, "definition": json.dumps(definition)},
        )


def run(cli: FakeCli, *args: str) -> Any:
    return cli.run([str(SCRIPT), *args], env={**cli.env(), "ENABLE_SNAPSTART_POLL_SECONDS": "0"})


def calls_of(cli: FakeCli, operation: str) -> list[list[str]]:
    return [argv for argv in cli.calls("aws") if operation in argv]


def test_enables_keeps_other_parameters_waits_and_verifies(fake_cli: FakeCli) -> None:
    Stack().install(fake_cli)
    result = run(fake_cli, STACK)

    assert result.returncode == 0, result.stderr
    [update] = calls_of(fake_cli, "update-stack")
    parameters = update[update.index("--parameters") + 1 : update.index("--capabilities")]
    assert parameters == [
        "ParameterKey=AccessPointArn,UsePreviousValue=true",
        "ParameterKey=EnableSnapStart,ParameterValue=true",
        "ParameterKey=DiscoveryCodeHash,UsePreviousValue=true",
    ]
    assert "--use-previous-template" in update
    assert update[update.index("--capabilities") + 1 :] == ["CAPABILITY_IAM"]
    assert len(calls_of(fake_cli, "describe-stacks")) == 3  # before, in progress, complete
    # The update is waited for before anything is verified.
    operations = [
        next(a for a in argv if a in ("describe-stacks", "update-stack", "list-stack-resources"))
        for argv in fake_cli.calls("aws")
        if {"describe-stacks", "update-stack", "list-stack-resources"} & set(argv)
    ]
    assert operations == [
        "describe-stacks",
        "update-stack",
        "describe-stacks",
        "describe-stacks",
        "list-stack-resources",
    ]
    rows = [line for line in result.stdout.splitlines() if line.startswith(FUNCTIONS)]
    assert len(rows) == 2
    for row in rows:
        assert "live -> 3" in row
        assert "PublishedVersions/On" in row
        assert row.rstrip().endswith("OK")
    assert "all 2 functions match EnableSnapStart=true" in result.stdout


def test_a_version_not_optimized_yet_is_a_mismatch(fake_cli: FakeCli) -> None:
    stack = Stack()
    stack.optimization[FUNCTIONS[1]] = "Off"
    stack.install(fake_cli)
    result = run(fake_cli, STACK)

    assert result.returncode == 1
    row = next(line for line in result.stdout.splitlines() if line.startswith(FUNCTIONS[1]))
    assert "MISMATCH: version 3 SnapStart is PublishedVersions/Off, not PublishedVersions/On" in row
    assert next(line for line in result.stdout.splitlines() if line.startswith(FUNCTIONS[0])).rstrip().endswith("OK")
    assert "1 of 2 functions do not match" in result.stderr


@pytest.mark.parametrize(("how", "shown"), [("$LATEST", "$LATEST"), ("function", "function")])
def test_a_state_machine_not_invoking_the_alias_is_a_mismatch(fake_cli: FakeCli, how: str, shown: str) -> None:
    stack = Stack(invoke={FUNCTIONS[0]: how})
    stack.install(fake_cli)
    result = run(fake_cli, STACK)

    assert result.returncode == 1
    row = next(line for line in result.stdout.splitlines() if line.startswith(FUNCTIONS[0]))
    assert f"state machine invokes it as '{shown}', not through alias live" in row


def test_an_alias_on_latest_is_a_mismatch(fake_cli: FakeCli) -> None:
    stack = Stack()
    stack.version[FUNCTIONS[0]] = "$LATEST"
    stack.install(fake_cli)
    result = run(fake_cli, STACK)

    assert result.returncode == 1
    assert "alias points at $LATEST, not a published version" in result.stdout


def test_disable_sets_false_and_expects_direct_invocation(fake_cli: FakeCli) -> None:
    Stack(enabled_before=True, enabled_after=False).install(fake_cli)
    result = run(fake_cli, STACK, "--disable", "--region", "eu-west-1")

    assert result.returncode == 0, result.stdout + result.stderr
    [update] = calls_of(fake_cli, "update-stack")
    assert "ParameterKey=EnableSnapStart,ParameterValue=false" in update
    assert all(argv[argv.index("--region") + 1] == "eu-west-1" for argv in fake_cli.calls("aws"))
    assert not calls_of(fake_cli, "get-alias")
    assert "all 2 functions match EnableSnapStart=false" in result.stdout


def test_disable_with_the_state_machine_still_on_the_alias_is_a_mismatch(fake_cli: FakeCli) -> None:
    Stack(enabled_before=True, enabled_after=False, invoke={FUNCTIONS[1]: "alias"}).install(fake_cli)
    result = run(fake_cli, STACK, "--disable")

    assert result.returncode == 1
    assert "state machine invokes it as 'qualifier:live', not as the function" in result.stdout


def test_already_enabled_verifies_without_updating(fake_cli: FakeCli) -> None:
    Stack(enabled_before=True).install(fake_cli)
    result = run(fake_cli, STACK)

    assert result.returncode == 0, result.stderr
    assert not calls_of(fake_cli, "update-stack")
    assert "already true" in result.stderr


def test_no_updates_reply_is_not_a_failure(fake_cli: FakeCli) -> None:
    Stack().install(fake_cli)
    fake_cli.reply(
        "aws",
        pattern=r"cloudformation update-stack",
        stderr="An error occurred (ValidationError) when calling the UpdateStack operation: "
        "No updates are to be performed.",
        exit_code=254,
    )
    result = run(fake_cli, STACK)
    assert result.returncode == 0, result.stderr
    assert "no changes" in result.stderr


def test_a_rolled_back_update_fails_with_the_reasons(fake_cli: FakeCli) -> None:
    Stack().install(fake_cli, statuses=("UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE"))
    fake_cli.reply(
        "aws",
        pattern=r"cloudformation describe-stack-events",
        stdout={
            "StackEvents": [
                {
                    "LogicalResourceId": "DiscoveryVersion",
                    "ResourceStatus": "CREATE_FAILED",
                    "ResourceStatusReason": "SnapStart is not supported for this runtime",
                },
                {"LogicalResourceId": "uc6-eda", "ResourceStatus": "UPDATE_IN_PROGRESS"},
            ]
        },
    )
    result = run(fake_cli, STACK)

    assert result.returncode == 1
    assert "stack update failed (UPDATE_ROLLBACK_COMPLETE)" in result.stderr
    assert "DiscoveryVersion: SnapStart is not supported for this runtime" in result.stderr
    assert not calls_of(fake_cli, "list-stack-resources")


def test_wait_timeout_is_a_failure(fake_cli: FakeCli) -> None:
    Stack().install(fake_cli, statuses=("UPDATE_IN_PROGRESS",))
    result = fake_cli.run(
        [str(SCRIPT), STACK, "--wait-timeout", "1"], env={**fake_cli.env(), "ENABLE_SNAPSTART_POLL_SECONDS": "1"}
    )

    assert result.returncode == 1
    assert "still UPDATE_IN_PROGRESS after 1s" in result.stderr


def test_dry_run_changes_nothing(fake_cli: FakeCli) -> None:
    Stack().install(fake_cli)
    result = run(fake_cli, STACK, "--dry-run")

    assert result.returncode == 0, result.stderr
    assert [argv[2:4] for argv in fake_cli.calls("aws")] == [["cloudformation", "describe-stacks"]]
    # the command it would run is the dry run's product: on stdout, shell-quoted
    assert "[dry-run] would run: aws --output json cloudformation update-stack --stack-name uc6-eda" in result.stdout
    assert "ParameterKey=EnableSnapStart,ParameterValue=true" in result.stdout


def test_a_stack_without_the_parameter_is_refused(fake_cli: FakeCli) -> None:
    fake_cli.reply(
        "aws",
        pattern=r"describe-stacks",
        stdout={"Stacks": [{"StackName": STACK, "StackStatus": "CREATE_COMPLETE", "Parameters": []}]},
    )
    result = run(fake_cli, STACK)
    assert result.returncode == 1
    assert "has no EnableSnapStart parameter" in result.stderr
    assert not calls_of(fake_cli, "update-stack")


def test_a_stack_in_progress_is_refused(fake_cli: FakeCli) -> None:
    stack = Stack()
    fake_cli.reply("aws", pattern=r"describe-stacks", stdout=stack.describe("UPDATE_IN_PROGRESS", False))
    result = run(fake_cli, STACK)
    assert result.returncode == 1
    assert "is UPDATE_IN_PROGRESS" in result.stderr


def test_a_failing_describe_is_an_error(fake_cli: FakeCli) -> None:
    fake_cli.reply("aws", pattern=r"describe-stacks", stderr="Stack with id uc6-eda does not exist", exit_code=254)
    result = run(fake_cli, STACK)
    assert result.returncode == 1
    assert "cannot describe stack 'uc6-eda'" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "STACK is required"),
        ((STACK, "--bogus"), "unknown option '--bogus'"),
        ((STACK, "other"), "only one STACK may be given"),
        (("bad_name!",), "is not a stack name"),
        ((STACK, "--region", "mars"), "is not an AWS Region name"),
        ((STACK, "--wait-timeout", "0"), "must be a positive number of seconds"),
        ((STACK, "--wait-timeout"), "--wait-timeout needs a value"),
    ],
)
def test_bad_arguments_exit_2_without_calling_aws(fake_cli: FakeCli, args: tuple[str, ...], message: str) -> None:
    result = run(fake_cli, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert fake_cli.calls("aws") == []


def test_help(fake_cli: FakeCli) -> None:
    result = run(fake_cli, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: scripts/enable-snapstart.sh STACK")
