"""guard-rules/hook-template.yaml: cfn-lint clean and shaped as the Guard Hook must be (one pinned
archive object, RESOURCE and STACK targets, WARN by default, least-privilege role, locked bucket)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import cfnlint
import pytest

from tests.support.lint import Linter
from tests.support.templates import load_template

pytestmark = pytest.mark.guard

REPO = Path(__file__).resolve().parents[2]
# The bucket the hook reads: this stack's own, or the central one of the StackSet mode.
RULES_BUCKET = {"Fn::If": ["CreateRulesBucket", {"Ref": "RulesBucket"}, {"Ref": "RulesBucketName"}]}
TEMPLATE_PATH = REPO / "guard-rules" / "hook-template.yaml"
# Evaluated at the STACK level only: their routine suppressions (default log encryption, a
# function above the organisational bounds) live in Metadata, which the RESOURCE input does not
# carry (see the ResourceTargetTypes parameter description).
STACK_LEVEL_ONLY = {"AWS::Logs::LogGroup", "AWS::Lambda::Function"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="module")
def hook(template: dict[str, Any]) -> dict[str, Any]:
    (hook,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::CloudFormation::GuardHook"]
    return hook


def guard_hook_schema() -> dict[str, Any]:
    schemas = Path(cfnlint.__file__).parent / "data" / "schemas"
    digest = json.loads((schemas / "providers" / "us-east-1.json").read_text())["AWS::CloudFormation::GuardHook"]
    return json.loads((schemas / "resources" / f"{digest}.json").read_text())


def parameter(template: dict[str, Any], name: str) -> dict[str, Any]:
    return template["Parameters"][name]


def test_cfn_lint_reports_nothing(cfn_lint: Linter) -> None:
    assert cfn_lint.messages(TEMPLATE_PATH) == []


def test_guard_hook_uses_the_schema_property_names(hook: dict[str, Any]) -> None:
    schema = guard_hook_schema()
    assert set(hook["Properties"]) <= set(schema["properties"])
    assert set(schema["required"]) <= set(hook["Properties"])


ALIAS_SAMPLES = [
    "FsxnPipelines::Governance::GuardHook",
    "Ab::Cd::Ef",
    "My2Aws::X1::Y2",
    "AWS::Guard::Hook",
    "aws::ab::cd",
    "Awsome::Guard::Hook",
    "A::Bc::De",
    "Ab::Cd",
    "Ab::C-d::Ef",
    "Ab::Cd::Ef::Gh",
    "Ab:Cd:Ef",
    "X" * 65 + "::Ab::Cd",
    "X" * 64 + "::Ab::Cd",
]


@pytest.mark.parametrize("alias", ALIAS_SAMPLES)
def test_alias_pattern_agrees_with_the_resource_schema(template: dict[str, Any], alias: str) -> None:
    # The schema writes the case-insensitive lookahead as (?!(?i)aws), which Python spells (?!(?i:aws)).
    schema_pattern = guard_hook_schema()["properties"]["Alias"]["pattern"].replace("(?!(?i)aws)", "(?!(?i:aws))")
    allowed = parameter(template, "Alias")["AllowedPattern"]
    assert bool(re.fullmatch(allowed, alias)) == bool(re.fullmatch(schema_pattern, alias))


def test_alias_default_is_valid(template: dict[str, Any]) -> None:
    alias = parameter(template, "Alias")
    assert re.fullmatch(alias["AllowedPattern"], alias["Default"])


@pytest.mark.parametrize(
    ("key", "accepted"),
    [
        ("guard-rules/rules.tar.gz", True),
        ("rules.zip", True),
        ("guard-rules/", False),
        ("guard-rules", False),
        ("rules.tar", False),
        ("encryption-required.guard", False),
        ("rules.zip/", False),
    ],
)
def test_rule_location_is_one_archive_object(template: dict[str, Any], hook: dict[str, Any], key: str, accepted: bool):
    location = hook["Properties"]["RuleLocation"]
    assert location["Uri"] == {"Fn::Sub": ["s3://${Bucket}/${RulesObjectKey}", {"Bucket": RULES_BUCKET}]}
    assert location["VersionId"] == {"Ref": "RulesObjectVersionId"}
    assert bool(re.fullmatch(parameter(template, "RulesObjectKey")["AllowedPattern"], key)) is accepted


def test_hook_exists_only_once_a_version_is_pinned(template: dict[str, Any], hook: dict[str, Any]) -> None:
    assert hook["Condition"] == "HasRulesVersion"
    no_version = {"Fn::Equals": [{"Ref": "RulesObjectVersionId"}, ""]}
    assert template["Conditions"]["HasRulesVersion"] == {"Fn::Not": [no_version]}
    assert parameter(template, "RulesObjectVersionId")["Default"] == ""


def test_failure_mode_is_warn_unless_fail_is_chosen(template: dict[str, Any], hook: dict[str, Any]) -> None:
    assert hook["Properties"]["FailureMode"] == {"Ref": "FailureMode"}
    failure_mode = parameter(template, "FailureMode")
    assert failure_mode["Default"] == "WARN"
    assert sorted(failure_mode["AllowedValues"]) == ["FAIL", "WARN"]
    assert hook["Properties"]["HookStatus"] == {"Ref": "HookStatus"}
    assert parameter(template, "HookStatus")["Default"] == "DISABLED"


def test_targets_resource_and_stack_operations_on_create_and_update(hook: dict[str, Any]) -> None:
    properties = hook["Properties"]
    assert properties["TargetOperations"] == ["RESOURCE", "STACK"]
    filters = properties["TargetFilters"]
    assert filters["Actions"] == ["CREATE", "UPDATE"]
    assert filters["InvocationPoints"] == ["PRE_PROVISION"]
    assert filters["TargetNames"] == {"Ref": "ResourceTargetTypes"}


def test_target_types_are_the_types_the_rules_cover(template: dict[str, Any]) -> None:
    covered = set()
    for rule_file in (REPO / "guard-rules").glob("*.guard"):
        covered |= set(re.findall(r"'(AWS::[A-Za-z0-9]+::[A-Za-z0-9]+)'", rule_file.read_text()))
    default = parameter(template, "ResourceTargetTypes")["Default"].split(",")
    assert len(default) == len(set(default)) <= 50
    assert set(default) == covered - STACK_LEVEL_ONLY
    assert covered >= STACK_LEVEL_ONLY


def test_hook_stack_excludes_itself(hook: dict[str, Any]) -> None:
    filters = hook["Properties"]["StackFilters"]
    assert filters["FilteringCriteria"] == "ALL"
    assert filters["StackNames"]["Exclude"] == [{"Ref": "AWS::StackName"}]


def test_execution_role_is_trusted_by_hooks_in_this_account_only(template: dict[str, Any], hook: dict[str, Any]):
    assert hook["Properties"]["ExecutionRole"] == {"Fn::GetAtt": ["HookExecutionRole", "Arn"]}
    role = template["Resources"]["HookExecutionRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Effect"] == "Allow"
    assert trust["Principal"] == {"Service": "hooks.cloudformation.amazonaws.com"}
    assert trust["Action"] == "sts:AssumeRole"
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}


def test_execution_role_holds_the_guard_hook_guides_minimum_policy(template: dict[str, Any]) -> None:
    """List the rules bucket, read the archive (and its versions), write reports: nothing more."""
    role = template["Resources"]["HookExecutionRole"]["Properties"]
    statements = [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"] if "Effect" in s]
    s3 = {}
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if any(str(action).startswith("s3:") for action in actions):
            assert statement["Effect"] == "Allow"
            s3[tuple(sorted(actions))] = statement["Resource"]
    assert s3 == {
        ("s3:ListBucket",): {"Fn::Sub": ["arn:${AWS::Partition}:s3:::${Bucket}", {"Bucket": RULES_BUCKET}]},
        ("s3:GetObject", "s3:GetObjectVersion"): {
            "Fn::Sub": ["arn:${AWS::Partition}:s3:::${Bucket}/${RulesObjectKey}", {"Bucket": RULES_BUCKET}]
        },
        ("s3:PutObject",): {"Fn::Sub": "${LogBucket.Arn}/*"},
    }
    assert role.get("ManagedPolicyArns") is None


def test_hook_writes_its_reports_to_the_log_bucket(template: dict[str, Any], hook: dict[str, Any]) -> None:
    assert hook["Properties"]["LogBucket"] == {"Ref": "LogBucket"}
    bucket = template["Resources"]["LogBucket"]["Properties"]
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    (rule,) = bucket["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == {"Ref": "LogRetentionDays"}


def test_rules_bucket_is_versioned_encrypted_private_and_tls_only(template: dict[str, Any]) -> None:
    bucket = template["Resources"]["RulesBucket"]["Properties"]
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == {"Fn::If": ["HasKmsKey", "aws:kms", "AES256"]}
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    policy = template["Resources"]["RulesBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "RulesBucket"}
    deny, _organization_read = policy["PolicyDocument"]["Statement"]
    assert (deny["Effect"], deny["Principal"], deny["Action"]) == ("Deny", "*", "s3:*")
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Resource"] == [
        {"Fn::GetAtt": ["RulesBucket", "Arn"]},
        {"Fn::Join": ["", [{"Fn::GetAtt": ["RulesBucket", "Arn"]}, "/*"]]},
    ]


def test_only_the_central_stack_shares_its_rules_and_only_with_the_organization(template: dict[str, Any]) -> None:
    conditions = template["Conditions"]
    assert conditions["CreateRulesBucket"] == {"Fn::Equals": [{"Ref": "RulesBucketName"}, ""]}
    assert template["Resources"]["RulesBucket"]["Condition"] == "CreateRulesBucket"
    statements = template["Resources"]["RulesBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    condition, share, no_value = statements[1]["Fn::If"]
    assert (condition, no_value) == ("ShareWithOrganization", {"Ref": "AWS::NoValue"})
    assert share["Effect"] == "Allow"
    assert sorted(share["Action"]) == ["s3:GetObject", "s3:GetObjectVersion", "s3:ListBucket"]
    assert share["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}}
    assert re.fullmatch(parameter(template, "OrganizationId")["AllowedPattern"], "o-abcdef1234")
    assert not re.fullmatch(parameter(template, "OrganizationId")["AllowedPattern"], "123456789012")


def test_stack_set_deploys_the_hook_enabled_into_the_target_ous_and_regions() -> None:
    stack_set_template = load_template(REPO / "guard-rules" / "hook-stackset-template.yaml")
    (stack_set,) = stack_set_template["Resources"].values()
    assert stack_set["Type"] == "AWS::CloudFormation::StackSet"
    props = stack_set["Properties"]
    assert props["PermissionModel"] == "SERVICE_MANAGED"
    assert props["AutoDeployment"] == {"Enabled": True, "RetainStacksOnAccountRemoval": False}
    assert props["Capabilities"] == ["CAPABILITY_IAM"]
    passed = {p["ParameterKey"]: p["ParameterValue"] for p in props["Parameters"]}
    assert passed["HookStatus"] == "ENABLED"
    assert passed["RulesBucketName"] == {"Ref": "RulesBucketName"}
    assert passed["RulesObjectVersionId"] == {"Ref": "RulesObjectVersionId"}
    hook_parameters = load_template(TEMPLATE_PATH)["Parameters"]
    assert set(passed) <= set(hook_parameters)
    (group,) = props["StackInstancesGroup"]
    assert group == {
        "DeploymentTargets": {"OrganizationalUnitIds": {"Ref": "OrganizationalUnitIds"}},
        "Regions": {"Ref": "Regions"},
    }
    lint = subprocess.run(
        [str(REPO / ".venv" / "bin" / "cfn-lint"), str(REPO / "guard-rules" / "hook-stackset-template.yaml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (lint.returncode, lint.stdout) == (0, "")
