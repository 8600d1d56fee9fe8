"""Conventions every use-case stack (``<uc>/template-deploy.yaml``) keeps (DESIGN §2, §4).

Parameterized over the use-case templates found at the repository's top level, so a new use case
is checked by existing: cfn-lint clean, IAM scoped (no '*' resource except for actions without
resource-level permissions, access points granted on their ARN forms, never an alias), state
machines whose every Task has a timeout, retries and a catch, Lambda tasks that retry the Lambda
service's transient and SnapStart readiness errors, service integrations in the stack's partition,
task timeouts above the function timeouts, and a Rule that refuses SnapStart in a Region without
it. UC-specific assertions live in the use case's own test file.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from shared.errors import LAMBDA_SERVICE_TRANSIENT_ERRORS, TRANSIENT_ERROR_NAMES
from tests.support.lint import Linter
from tests.support.rules import rule_failures
from tests.support.templates import (
    ACCOUNT,
    REGION,
    REPO_ROOT,
    Resolver,
    all_templates,
    deployable,
    iter_states,
    load_template,
    opt_in_parameters,
    state_machines,
    use_case_templates,
)
from tests.template.policies import WILDCARD_ONLY_ACTIONS, as_list, statements

pytestmark = pytest.mark.template

TEMPLATES = use_case_templates()
IDS = [str(p.relative_to(REPO_ROOT)) for p in TEMPLATES]
AP_ARN = f"arn:aws:s3:{REGION}:{ACCOUNT}:accesspoint/test-ap"
AP_FORM = re.compile(r"^arn:aws[a-z-]*:s3:[a-z0-9-]+:[0-9]{12}:accesspoint/[a-z0-9-]+(/object/.*)?$")
LAMBDA_INVOKE = re.compile(r"^arn:aws[a-z-]*:states:::lambda:invoke(\.waitForTaskToken)?$")

# Lambda asks the caller to retry later: a version whose snapshot is not ready yet, a restore that
# timed out, an inactive function being reactivated. Step Functions names them Lambda.<error>.
SNAPSTART_READINESS_ERRORS = (
    "Lambda.SnapStartNotReadyException",
    "Lambda.SnapStartTimeoutException",
    "Lambda.ResourceNotReadyException",
)
# Regions that must be refused with EnableSnapStart=true: Asia Pacific (New Zealand), Asia Pacific
# (Taipei), AWS GovCloud (US), China.
NO_SNAPSTART_REGIONS = ("ap-southeast-6", "ap-east-2", "us-gov-west-1", "cn-north-1")
SNAPSTART_REGIONS = ("us-east-1", "eu-west-1", "ap-northeast-1", "sa-east-1")


def _with_access_point(template: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, str]:
    declared = template.get("Parameters") or {}
    return {**({"AccessPointArn": AP_ARN} if "AccessPointArn" in declared else {}), **params}


def _switches_on(template: Mapping[str, Any]) -> dict[str, str]:
    """Every 'true'/'false' parameter on, and what the template's Rules then demand."""
    return deployable(template, opt_in_parameters(template))


def parameter_sets(template: Mapping[str, Any]) -> Iterator[dict[str, str]]:
    yield _with_access_point(template, {})
    yield _with_access_point(template, _switches_on(template))


def _non_string_parameter_values(template: Mapping[str, Any]) -> list[str]:
    """Parameter values a YAML 1.1 parser does not read as strings: unquoted OFF/ON/yes/no become
    booleans, so AllowedValues [OFF, ...] would refuse the value 'OFF' the user passes."""
    found = []
    for name, spec in (template.get("Parameters") or {}).items():
        for value in [spec.get("Default", ""), *(spec.get("AllowedValues") or [])]:
            if isinstance(value, bool):
                found.append(f"{name}: {value!r}")
    return found


@pytest.mark.parametrize("path", TEMPLATES, ids=IDS)
def test_parameter_values_are_strings_not_yaml_booleans(path: Path) -> None:
    assert _non_string_parameter_values(load_template(path)) == []


def test_the_string_check_catches_an_unquoted_off() -> None:
    bad = {"Parameters": {"Level": {"Type": "String", "Default": "ERROR", "AllowedValues": [False, "ERROR"]}}}
    assert _non_string_parameter_values(bad) == ["Level: False"]


# --------------------------------------------------------------------------------------- lint
@pytest.mark.parametrize("path", TEMPLATES, ids=IDS)
def test_cfn_lint_reports_nothing(path: Path, cfn_lint: Linter) -> None:
    # No match of any level: the command line would exit non-zero for an informational one too.
    assert cfn_lint.messages(path) == []


@pytest.mark.parametrize("path", all_templates(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_cfn_lint_never_reports_w2530(path: Path, cfn_lint: Linter) -> None:
    # SnapStart on a function without a published version (test_snapstart_wiring.py checks the
    # wiring itself). In this module, so the lint above (one per template and worker) serves it.
    assert [str(m) for m in cfn_lint.matches(path) if m.rule.id == "W2530"] == []


# ---------------------------------------------------------------------------------------- IAM
def wildcard_problems(resolver: Resolver) -> list[str]:
    problems = []
    for logical_id, statement in statements(resolver):
        actions = [str(a) for a in as_list(statement.get("Action", []))]
        if any("*" in a for a in actions):
            problems.append(f"{logical_id}: wildcard action in {actions}")
        if "*" in as_list(statement.get("Resource", [])):
            extra = sorted(set(actions) - WILDCARD_ONLY_ACTIONS)
            if extra:
                problems.append(f"{logical_id}: Resource '*' for {extra}, which support resource-level permissions")
    return problems


def access_point_problems(resolver: Resolver) -> list[str]:
    problems = []
    for logical_id, statement in statements(resolver):
        for resource in map(str, as_list(statement.get("Resource", []))):
            if "s3alias" in resource:
                problems.append(f"{logical_id}: grant on an access point alias {resource} authorizes nothing")
            elif ":accesspoint/" in resource and not AP_FORM.match(resource):
                problems.append(f"{logical_id}: {resource} is not an access point ARN or its /object/ form")
    return problems


@pytest.mark.parametrize("path", TEMPLATES, ids=IDS)
def test_no_wildcard_resources_except_where_aws_requires_them(path: Path) -> None:
    template = load_template(path)
    for params in parameter_sets(template):
        assert wildcard_problems(Resolver(template, params)) == [], params


@pytest.mark.parametrize("path", TEMPLATES, ids=IDS)
def test_access_points_are_granted_on_their_arn_forms_never_the_alias(path: Path) -> None:
    template = load_template(path)
    for params in parameter_sets(template):
        resolver = Resolver(template, params)
        assert access_point_problems(resolver) == [], params
        if "AccessPointArn" in (template.get("Parameters") or {}):
            granted = {str(r) for _, s in statements(resolver) for r in as_list(s.get("Resource", []))}
            assert any(r == AP_ARN or r.startswith(f"{AP_ARN}/object/") for r in granted), params


_BAD_POLICY = {
    "Resources": {
        "Role": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "Policies": [
                    {
                        "PolicyDocument": {
                            "Statement": [
                                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
                                {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/*"},
                                {"Effect": "Allow", "Action": "xray:PutTraceSegments", "Resource": "*"},
                                {
                                    "Effect": "Allow",
                                    "Action": "s3:GetObject",
                                    "Resource": "arn:aws:s3:::my-ap-abc-ext-s3alias/*",
                                },
                                {
                                    "Effect": "Allow",
                                    "Action": "s3:ListBucket",
                                    "Resource": "arn:aws:s3:us-east-1:123456789012:accesspoint/*",
                                },
                            ]
                        }
                    }
                ]
            },
        }
    }
}


def test_the_iam_checks_catch_wildcards_and_aliases() -> None:
    resolver = Resolver(_BAD_POLICY, {})
    wildcards = wildcard_problems(resolver)
    assert wildcards == [
        "Role: Resource '*' for ['s3:GetObject'], which support resource-level permissions",
        "Role: wildcard action in ['s3:*']",
    ]
    aliases = access_point_problems(resolver)
    assert len(aliases) == 2
    assert "alias" in aliases[0]
    assert "accesspoint/*" in aliases[1]


# ----------------------------------------------------------------------------- state machines
def _lambda_errors_in_botocore() -> set[str]:
    model = botocore.session.get_session().get_service_model("lambda")
    return {f"Lambda.{shape.name}" for shape in model.operation_model("Invoke").error_shapes}


def task_problems(definition: Mapping[str, Any]) -> list[str]:
    """Every Task without a timeout, retries or a catch into a state of its own state list; every
    Lambda task that does not retry the Lambda service's transient and SnapStart readiness errors."""
    problems = []

    def walk(states: Mapping[str, Any]) -> None:
        for name, state in states.items():
            processor = state.get("ItemProcessor") or state.get("Iterator")
            if processor:
                walk(processor.get("States", {}))
            for branch in state.get("Branches", []) or []:
                walk(branch.get("States", {}))
            if state.get("Type") != "Task":
                continue
            if not (isinstance(state.get("TimeoutSeconds"), int) and state["TimeoutSeconds"] > 0):
                problems.append(f"{name}: no TimeoutSeconds")
            retried = {error for retrier in state.get("Retry", []) for error in retrier.get("ErrorEquals", [])}
            if not retried:
                problems.append(f"{name}: no Retry")
            catches = [c for c in state.get("Catch", []) if "States.ALL" in c.get("ErrorEquals", [])]
            if not catches or any(c.get("Next") not in states for c in catches):
                problems.append(f"{name}: no Catch of States.ALL into a state of its own state list")
            if LAMBDA_INVOKE.match(str(state.get("Resource", ""))):
                wanted = (*TRANSIENT_ERROR_NAMES, *LAMBDA_SERVICE_TRANSIENT_ERRORS, *SNAPSTART_READINESS_ERRORS)
                missing = [error for error in wanted if error not in retried]
                if missing:
                    problems.append(f"{name}: Lambda task does not retry {missing}")

    walk(definition.get("States", {}))
    return problems


def test_the_snapstart_readiness_errors_are_errors_lambda_invoke_raises() -> None:
    # botocore's Lambda service model lists what Invoke raises; the names must be real ones.
    assert set(SNAPSTART_READINESS_ERRORS) <= _lambda_errors_in_botocore()


@pytest.mark.parametrize("path", TEMPLATES, ids=IDS)
def test_every_task_has_a_timeout_retries_and_a_catch(path: Path) -> None:
    template = load_template(path)
    checked = 0
    for params in parameter_sets(template):
        for logical_id, definition in state_machines(template, params).items():
            assert task_problems(definition) == [], logical_id
            checked += sum(1 for _, state in iter_states(definition) if state.get("Type") == "Task")
    assert checked


def test_the_task_check_catches_what_is_missing() -> None:
    definition = {
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Retry": [{"ErrorEquals": [*TRANSIENT_ERROR_NAMES, *LAMBDA_SERVICE_TRANSIENT_ERRORS]}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Nowhere"}],
                "End": True,
            },
            "Bare": {"Type": "Task", "Resource": "arn:aws:states:::s3:getObject", "End": True},
        },
    }
    assert task_problems(definition) == [
        "Work: no TimeoutSeconds",
        "Work: no Catch of States.ALL into a state of its own state list",
        f"Work: Lambda task does not retry {list(SNAPSTART_READINESS_ERRORS)}",
        "Bare: no TimeoutSeconds",
        "Bare: no Retry",
        "Bare: no Catch of States.ALL into a state of its own state list",
    ]


def _resources(value: Any) -> Iterator[str]:
    """Every "Resource" string anywhere in a definition (Task, ItemReader, ResultWriter)."""
    if isinstance(value, Mapping):
        for key, item in value.items():
            if key == "Resource" and isinstance(item, str):
                yield item
            else:
                yield from _resources(item)
    elif isinstance(value, list):
        for item in value:
            yield from _resources(item)


@pytest.mark.parametrize("path", TEMPLATES, ids=IDS)
def test_service_integrations_follow_the_stack_partition(path: Path) -> None:
    template = load_template(path)
    machines = {lid: r for lid, r in template["Resources"].items() if r["Type"] == "AWS::StepFunctions::StateMachine"}
    for logical_id, machine in machines.items():
        written = [r for r in _resources(machine["Properties"]["Definition"]) if r.startswith("arn:aws:")]
        assert written == [], f"{logical_id}: partition written into the definition"
    for partition in ("aws-cn", "aws-us-gov"):
        resolver = Resolver(template, _with_access_point(template, {}), region="cn-north-1", partition=partition)
        for logical_id, definition in state_machines(template, resolver=resolver).items():
            arns = [r for r in _resources(definition) if r.startswith("arn:")]
            assert arns, logical_id
            assert all(r.startswith(f"arn:{partition}:") for r in arns), (logical_id, arns)


@pytest.mark.parametrize("path", TEMPLATES, ids=IDS)
def test_task_timeouts_exceed_the_function_timeouts(path: Path) -> None:
    template = load_template(path)
    params = _with_access_point(template, {"EnableSnapStart": "false"})
    resolver = Resolver(template, params)
    timeouts = {
        resolver.resolve({"Fn::GetAtt": [lid, "Arn"]}): res["Properties"].get("Timeout", 3)
        for lid, res in resolver.resources().items()
        if res["Type"] == "AWS::Lambda::Function"
    }
    for logical_id, definition in state_machines(template, params).items():
        for name, state in iter_states(definition):
            function = (state.get("Parameters") or {}).get("FunctionName")
            if state.get("Type") == "Task" and function in timeouts:
                assert state["TimeoutSeconds"] > timeouts[function], (logical_id, name)


# ------------------------------------------------------------------------ SnapStart by Region
def snapstart_region_problems(template: Mapping[str, Any]) -> list[str]:
    """EnableSnapStart=true must fail early (a Rule) where SnapStart for Python does not exist,
    and nothing may fail for it where it does, or when it is off."""
    problems = []
    on = _with_access_point(template, {"EnableSnapStart": "true"})
    off = _with_access_point(template, {"EnableSnapStart": "false"})
    for region in NO_SNAPSTART_REGIONS:
        failed = rule_failures(template, on, region)
        if not any("SnapStart" in text for texts in failed.values() for text in texts):
            problems.append(f"EnableSnapStart=true in {region} is not refused by a Rule naming SnapStart")
        if rule_failures(template, off, region):
            problems.append(f"EnableSnapStart=false in {region} fails a Rule")
    for region in SNAPSTART_REGIONS:
        if rule_failures(template, on, region):
            problems.append(f"EnableSnapStart=true in {region} fails a Rule: {rule_failures(template, on, region)}")
    return problems


@pytest.mark.parametrize("path", TEMPLATES, ids=IDS)
def test_snapstart_is_refused_early_where_python_has_no_snapstart(path: Path) -> None:
    template = load_template(path)
    if "EnableSnapStart" not in (template.get("Parameters") or {}):
        pytest.fail("every use-case template has the EnableSnapStart opt-in")
    assert snapstart_region_problems(template) == []


def test_the_region_check_catches_a_missing_or_wrong_rule() -> None:
    template = load_template(TEMPLATES[0])
    without = copy.deepcopy(template)
    without["Rules"] = {k: v for k, v in template["Rules"].items() if "SnapStart" not in json.dumps(v)}
    problems = snapstart_region_problems(without)
    assert f"EnableSnapStart=true in {NO_SNAPSTART_REGIONS[0]} is not refused by a Rule naming SnapStart" in problems
    unconditional = copy.deepcopy(template)
    for rule in unconditional["Rules"].values():
        if "SnapStart" in json.dumps(rule):
            del rule["RuleCondition"]
    assert any("EnableSnapStart=false" in p for p in snapstart_region_problems(unconditional))
