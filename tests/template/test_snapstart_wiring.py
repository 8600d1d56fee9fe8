"""SnapStart takes effect (DESIGN §4): versions, aliases, what the state machines invoke, IAM.

SnapStart applies only to published versions. With ``EnableSnapStart=true`` every function must
have a Version (replaced when its own ``<Name>CodeHash`` changes; the full per-function identity
is checked by test_version_identity.py) and an Alias on it, every state machine
must invoke the aliases, and its role must allow exactly those. With ``false`` none of that
exists and the state machines invoke (and may invoke) the functions themselves. cfn-lint's W2530
(SnapStart without a version) must never appear: test_use_case_templates.py asserts that beside the
full lint, whose result it shares.
"""

from __future__ import annotations

import copy
import fnmatch
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint
from cfnlint.decode import decode_str

from tests.support.templates import REPO_ROOT, Resolver, all_templates, iter_states, load_template, state_machines

pytestmark = pytest.mark.template

SETTINGS = ("true", "false")
LAMBDA_INVOKE = re.compile(r"^arn:[a-z-]+:states:::lambda:invoke(\.waitForTaskToken)?$")
LAMBDA_ARN = re.compile(r"^arn:[a-z-]+:lambda:")


def _functions(template: Mapping[str, Any]) -> list[str]:
    return sorted(
        lid for lid, res in template.get("Resources", {}).items() if res.get("Type") == "AWS::Lambda::Function"
    )


def _templates_with_functions() -> list[Path]:
    return [path for path in all_templates() if _functions(load_template(path))]


def _references(value: Any, name: str) -> bool:
    """Whether ``value`` (a raw template fragment) refers to the logical id or parameter ``name``."""
    if isinstance(value, Mapping):
        for key, arg in value.items():
            if key == "Ref" and arg == name:
                return True
            if key == "Fn::GetAtt" and (arg[0] if isinstance(arg, list) else str(arg).split(".")[0]) == name:
                return True
            if key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                if re.search(r"\$\{" + re.escape(name) + r"(\.[A-Za-z]+)?\}", text):
                    return True
            if _references(arg, name):
                return True
        return False
    if isinstance(value, list):
        return any(_references(item, name) for item in value)
    return False


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def invoked_functions(template: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, set[str]]:
    """{state machine logical id: the Lambda ARNs its Task states invoke}, substitutions applied."""
    out: dict[str, set[str]] = {}
    for logical_id, definition in state_machines(template, params).items():
        arns: set[str] = set()
        for name, state in iter_states(definition):
            if state.get("Type") != "Task":
                continue
            resource = str(state.get("Resource", ""))
            if LAMBDA_INVOKE.match(resource):
                parameters = state.get("Parameters") or state.get("Arguments") or {}
                if "FunctionName" not in parameters:
                    raise AssertionError(f"{logical_id}.{name}: lambda:invoke without a static FunctionName")
                arns.add(str(parameters["FunctionName"]))
            elif LAMBDA_ARN.match(resource):
                arns.add(resource)
        out[logical_id] = arns
    return out


def _allow_statements_of_role(resolver: Resolver, role_id: str) -> Iterator[Mapping[str, Any]]:
    resources = resolver.resources()
    documents = [p.get("PolicyDocument", {}) for p in resources[role_id].get("Properties", {}).get("Policies", [])]
    for res in resources.values():
        props = res.get("Properties", {})
        attached = props.get("RoleName") == {"Ref": role_id} or {"Ref": role_id} in props.get("Roles", [])
        if res.get("Type") in ("AWS::IAM::RolePolicy", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy") and attached:
            documents.append(props.get("PolicyDocument", {}))
    for document in resolver.resolve(documents):
        for statement in _as_list(document.get("Statement", [])):
            if statement.get("Effect") == "Allow":
                yield statement


def allowed_invocations(template: Mapping[str, Any], params: Mapping[str, str], state_machine_id: str) -> set[str]:
    """The resources the state machine's role may call lambda:InvokeFunction on."""
    resolver = Resolver(template, params)
    role_arn = template["Resources"][state_machine_id]["Properties"]["RoleArn"]
    role_id = (
        role_arn["Fn::GetAtt"][0] if isinstance(role_arn["Fn::GetAtt"], list) else role_arn["Fn::GetAtt"].split(".")[0]
    )
    allowed: set[str] = set()
    for statement in _allow_statements_of_role(resolver, role_id):
        actions = [str(a).lower() for a in _as_list(statement.get("Action", []))]
        if any(fnmatch.fnmatchcase("lambda:invokefunction", action) for action in actions):
            allowed.update(str(r) for r in _as_list(statement.get("Resource", [])))
    return allowed


def wiring_problems(template: Mapping[str, Any], enabled: bool) -> list[str]:
    """Everything that stops SnapStart from taking effect (enabled) or is left over (disabled)."""
    problems: list[str] = []
    declared = template.get("Parameters", {})
    wanted = ["EnableSnapStart"] + [f"{fid.removesuffix('Function')}CodeHash" for fid in _functions(template)]
    for name in wanted:
        if name not in declared:
            problems.append(f"parameter {name} is missing")
    if problems:
        return problems
    if sorted(map(str, declared["EnableSnapStart"].get("AllowedValues", []))) != ["false", "true"]:
        problems.append("EnableSnapStart must allow exactly 'true' and 'false'")
    params = {"EnableSnapStart": "true" if enabled else "false"}
    resolver = Resolver(template, params)
    existing = resolver.resources()
    expected_targets: dict[str, str] = {}

    for function_id in _functions(template):
        if not function_id.endswith("Function"):
            problems.append(f"{function_id}: function logical ids end in 'Function'")
            continue
        name = function_id.removesuffix("Function")
        version_id, alias_id = f"{name}Version", f"{name}Alias"
        snap_start = resolver.resolve(template["Resources"][function_id].get("Properties", {})).get("SnapStart")
        if enabled:
            if snap_start != {"ApplyOn": "PublishedVersions"}:
                problems.append(f"{function_id}: SnapStart is {snap_start!r}, not ApplyOn PublishedVersions")
            problems += _version_and_alias_problems(template, existing, function_id, version_id, alias_id)
            expected_targets[name] = str(resolver.resolve({"Ref": alias_id})) if alias_id in existing else "?"
        else:
            if snap_start is not None:
                problems.append(f"{function_id}: SnapStart is set although EnableSnapStart is false")
            expected_targets[name] = str(resolver.resolve({"Fn::GetAtt": [function_id, "Arn"]}))
    for lid, res in existing.items():
        if res.get("Type") in ("AWS::Lambda::Version", "AWS::Lambda::Alias") and not enabled:
            problems.append(f"{lid} ({res['Type']}) exists although EnableSnapStart is false")

    targets = set(expected_targets.values())
    for sm_id, invoked in invoked_functions(template, params).items():
        substitutions = resolver.resolve(existing[sm_id]["Properties"].get("DefinitionSubstitutions", {}))
        for key, value in substitutions.items():
            if key.endswith("FunctionArn"):
                name = key.removesuffix("FunctionArn")
                if name not in expected_targets:
                    problems.append(f"{sm_id}: substitution {key} names no function {name}Function")
                elif value != expected_targets[name]:
                    problems.append(f"{sm_id}: substitution {key} is {value}, expected {expected_targets[name]}")
        for arn in sorted(invoked - targets):
            problems.append(
                f"{sm_id}: invokes {arn}, which is not a {'SnapStart alias' if enabled else 'function ARN'}"
            )
        allowed = allowed_invocations(template, params, sm_id)
        if allowed != invoked:
            problems.append(
                f"{sm_id}: role allows lambda:InvokeFunction on {sorted(allowed)}"
                f" but the definition invokes {sorted(invoked)}"
            )
    return problems


def _version_and_alias_problems(
    template: Mapping[str, Any], existing: Mapping[str, Any], function_id: str, version_id: str, alias_id: str
) -> list[str]:
    problems: list[str] = []
    version, alias = existing.get(version_id), existing.get(alias_id)
    if version is None or version.get("Type") != "AWS::Lambda::Version":
        return [f"{function_id}: no AWS::Lambda::Version {version_id} when EnableSnapStart is true"]
    if alias is None or alias.get("Type") != "AWS::Lambda::Alias":
        return [f"{function_id}: no AWS::Lambda::Alias {alias_id} when EnableSnapStart is true"]
    if not _references(version["Properties"].get("FunctionName"), function_id):
        problems.append(f"{version_id}: FunctionName does not refer to {function_id}")
    if not _references(alias["Properties"].get("FunctionName"), function_id):
        problems.append(f"{alias_id}: FunctionName does not refer to {function_id}")
    if alias["Properties"].get("FunctionVersion") != {"Fn::GetAtt": [version_id, "Version"]}:
        problems.append(f"{alias_id}: FunctionVersion is not !GetAtt {version_id}.Version")
    # CloudFormation publishes a new version only when the Version resource is replaced, i.e.
    # when one of its properties changes: a new code hash of its function must change them.
    hash_parameter = f"{function_id.removesuffix('Function')}CodeHash"
    old, new = (
        Resolver(template, {"EnableSnapStart": "true", hash_parameter: code}).resolve(version["Properties"])
        for code in ("0123456789abcdef", "fedcba9876543210")
    )
    if old == new:
        problems.append(
            f"{version_id}: its properties do not change with {hash_parameter}, so new code publishes no version"
        )
    return problems


# ---------------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("enabled", SETTINGS)
@pytest.mark.parametrize("path", _templates_with_functions(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_template_wires_snapstart_so_it_takes_effect(path: Path, enabled: str) -> None:
    assert wiring_problems(load_template(path), enabled == "true") == []


def test_use_case_templates_have_functions_to_check() -> None:
    assert _templates_with_functions(), "no template with an AWS::Lambda::Function found"


# --------------------------------------------------------------- the checks fail on bad wiring
GOOD = """
Parameters:
  EnableSnapStart: {Type: String, Default: 'false', AllowedValues: ['true', 'false']}
  WorkCodeHash: {Type: String, Default: unpackaged, AllowedPattern: '^([0-9a-f]{16}|unpackaged)$', MaxLength: 16}
Conditions:
  SnapStartEnabled: !Equals [!Ref EnableSnapStart, 'true']
Resources:
  WorkRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: '2012-10-17'
        Statement: [{Effect: Allow, Principal: {Service: lambda.amazonaws.com}, Action: sts:AssumeRole}]
  WorkFunction:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.13
      Handler: handler.handler
      Role: !GetAtt WorkRole.Arn
      Code: {ZipFile: "def handler(e, c): return {}"}
      SnapStart: !If [SnapStartEnabled, {ApplyOn: PublishedVersions}, !Ref AWS::NoValue]
      Description: !Sub '${WorkCodeHash}'
  WorkVersion:
    Type: AWS::Lambda::Version
    Condition: SnapStartEnabled
    Properties:
      FunctionName: !Ref WorkFunction
      Description: !Sub '${WorkCodeHash}'
  WorkAlias:
    Type: AWS::Lambda::Alias
    Condition: SnapStartEnabled
    Properties:
      FunctionName: !Ref WorkFunction
      FunctionVersion: !GetAtt WorkVersion.Version
      Name: live
  MachineRole:
    Type: AWS::IAM::Role
    Properties:
      AssumeRolePolicyDocument:
        Version: '2012-10-17'
        Statement: [{Effect: Allow, Principal: {Service: states.amazonaws.com}, Action: sts:AssumeRole}]
      Policies:
        - PolicyName: invoke
          PolicyDocument:
            Version: '2012-10-17'
            Statement:
              - Effect: Allow
                Action: lambda:InvokeFunction
                Resource: !If [SnapStartEnabled, !Ref WorkAlias, !GetAtt WorkFunction.Arn]
  Machine:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      RoleArn: !GetAtt MachineRole.Arn
      DefinitionSubstitutions:
        WorkFunctionArn: !If [SnapStartEnabled, !Ref WorkAlias, !GetAtt WorkFunction.Arn]
      Definition:
        StartAt: Work
        States:
          Work:
            Type: Task
            Resource: arn:aws:states:::lambda:invoke
            Parameters: {FunctionName: '${WorkFunctionArn}', Payload: {}}
            End: true
"""


def _good() -> dict[str, Any]:
    template, matches = decode_str(GOOD)
    assert not matches
    return dict(template)


def _with(edit: Any) -> dict[str, Any]:
    template = copy.deepcopy(_good())
    edit(template["Resources"])
    return template


def _sm_role_statement(resources: dict[str, Any]) -> dict[str, Any]:
    statement: dict[str, Any] = resources["MachineRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0]
    return statement


@pytest.mark.parametrize("enabled", SETTINGS)
def test_the_reference_wiring_passes(enabled: str) -> None:
    assert wiring_problems(_good(), enabled == "true") == []
    assert [m.rule.id for m in lint(GOOD) if m.rule.id.startswith(("E", "W"))] == []


def test_state_machine_calling_the_function_with_snapstart_on_is_caught() -> None:
    # The shipped pitfall: SnapStart on, but $LATEST invoked, so SnapStart never applies.
    def edit(resources: dict[str, Any]) -> None:
        resources["Machine"]["Properties"]["DefinitionSubstitutions"]["WorkFunctionArn"] = {
            "Fn::GetAtt": ["WorkFunction", "Arn"]
        }

    problems = wiring_problems(_with(edit), enabled=True)
    assert any("substitution WorkFunctionArn" in p for p in problems)
    assert any("invokes arn:aws:lambda:us-east-1:123456789012:function:test-stack-WorkFunction," in p for p in problems)


def test_missing_version_and_alias_is_caught_and_w2530_fires() -> None:
    def edit(resources: dict[str, Any]) -> None:
        del resources["WorkVersion"], resources["WorkAlias"]
        resources["Machine"]["Properties"]["DefinitionSubstitutions"]["WorkFunctionArn"] = {
            "Fn::GetAtt": ["WorkFunction", "Arn"]
        }
        _sm_role_statement(resources)["Resource"] = {"Fn::GetAtt": ["WorkFunction", "Arn"]}

    assert "WorkFunction: no AWS::Lambda::Version WorkVersion when EnableSnapStart is true" in wiring_problems(
        _with(edit), enabled=True
    )
    bad_text = GOOD[: GOOD.index("  WorkVersion:")] + GOOD[GOOD.index("  MachineRole:") :]
    bad_text = bad_text.replace(
        "!If [SnapStartEnabled, !Ref WorkAlias, !GetAtt WorkFunction.Arn]", "!GetAtt WorkFunction.Arn"
    )
    assert "W2530" in [m.rule.id for m in lint(bad_text)]


def test_version_not_replaced_by_new_code_is_caught() -> None:
    def edit(resources: dict[str, Any]) -> None:
        resources["WorkVersion"]["Properties"]["Description"] = "published by the stack"

    assert any("do not change with WorkCodeHash" in p for p in wiring_problems(_with(edit), enabled=True))


def test_iam_broader_or_narrower_than_what_is_invoked_is_caught() -> None:
    def both(resources: dict[str, Any]) -> None:
        _sm_role_statement(resources)["Resource"] = [{"Ref": "WorkAlias"}, {"Fn::GetAtt": ["WorkFunction", "Arn"]}]

    def wildcard(resources: dict[str, Any]) -> None:
        _sm_role_statement(resources)["Resource"] = {"Fn::Sub": "${WorkFunction.Arn}:*"}

    def function_only(resources: dict[str, Any]) -> None:
        _sm_role_statement(resources)["Resource"] = {"Fn::GetAtt": ["WorkFunction", "Arn"]}

    for edit in (both, wildcard, function_only):
        assert any("role allows lambda:InvokeFunction" in p for p in wiring_problems(_with(edit), enabled=True))


def test_alias_on_the_wrong_version_is_caught() -> None:
    def edit(resources: dict[str, Any]) -> None:
        resources["WorkAlias"]["Properties"]["FunctionVersion"] = "$LATEST"

    assert "WorkAlias: FunctionVersion is not !GetAtt WorkVersion.Version" in wiring_problems(_with(edit), enabled=True)


def test_leftovers_when_disabled_are_caught() -> None:
    def edit(resources: dict[str, Any]) -> None:
        del resources["WorkVersion"]["Condition"]
        resources["WorkFunction"]["Properties"]["SnapStart"] = {"ApplyOn": "PublishedVersions"}

    problems = wiring_problems(_with(edit), enabled=False)
    assert "WorkFunction: SnapStart is set although EnableSnapStart is false" in problems
    assert "WorkVersion (AWS::Lambda::Version) exists although EnableSnapStart is false" in problems
