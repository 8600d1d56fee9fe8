"""tests.support.templates: conditions and intrinsics resolve the way CloudFormation resolves them."""

from __future__ import annotations

from typing import Any

import pytest
from cfnlint.decode import decode_str

from local import template as local_template
from local import template_yaml
from local.template import ParameterError
from tests.support.templates import Resolver, state_machines

pytestmark = pytest.mark.unit

TEMPLATE = """
Parameters:
  EnableSnapStart: {Type: String, Default: 'false', AllowedValues: ['true', 'false']}
  Suffixes: {Type: CommaDelimitedList, Default: '.gds,.oas'}
Conditions:
  SnapStartEnabled: !Equals [!Ref EnableSnapStart, 'true']
  Disabled: !Not [!Condition SnapStartEnabled]
Resources:
  Function:
    Type: AWS::Lambda::Function
    Properties:
      Handler: handler.handler
      Runtime: python3.13
      Role: arn:aws:iam::123456789012:role/r
      Code: {ZipFile: x}
      Description: !Select [1, !Ref Suffixes]
  Version:
    Type: AWS::Lambda::Version
    Condition: SnapStartEnabled
    Properties: {FunctionName: !Ref Function}
  Alias:
    Type: AWS::Lambda::Alias
    Condition: SnapStartEnabled
    Properties: {FunctionName: !Ref Function, FunctionVersion: !GetAtt Version.Version, Name: live}
  Machine:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      RoleArn: arn:aws:iam::123456789012:role/r
      DefinitionSubstitutions:
        FunctionArn: !If [SnapStartEnabled, !Ref Alias, !GetAtt Function.Arn]
        Region: !Sub '${AWS::Region}'
      Definition:
        StartAt: Call
        States:
          Call:
            Type: Task
            Resource: arn:aws:states:::lambda:invoke
            Parameters: {FunctionName: '${FunctionArn}', Payload: {region: '${Region}'}}
            End: true
"""


@pytest.fixture
def template() -> dict:
    decoded, matches = decode_str(TEMPLATE)
    assert not matches
    return dict(decoded)


def test_conditions_follow_parameters(template: dict) -> None:
    assert Resolver(template, {}).all_conditions() == {"SnapStartEnabled": False, "Disabled": True}
    opted_in = Resolver(template, {"EnableSnapStart": "true"}).all_conditions()
    assert opted_in == {"SnapStartEnabled": True, "Disabled": False}


def test_conditional_resources_exist_only_when_their_condition_holds(template: dict) -> None:
    assert set(Resolver(template, {}).resources()) == {"Function", "Machine"}
    opted_in = Resolver(template, {"EnableSnapStart": "true"}).resources()
    assert set(opted_in) == {"Function", "Version", "Alias", "Machine"}


def test_substitutions_choose_alias_or_function(template: dict) -> None:
    off = state_machines(template, {})["Machine"]["States"]["Call"]["Parameters"]
    on = state_machines(template, {"EnableSnapStart": "true"})["Machine"]["States"]["Call"]["Parameters"]
    assert off["FunctionName"] == "arn:aws:lambda:us-east-1:123456789012:function:test-stack-Function"
    assert on["FunctionName"] == "arn:aws:lambda:us-east-1:123456789012:function:test-stack-Function:live"
    assert off["Payload"] == {"region": "us-east-1"}


def test_lists_and_select(template: dict) -> None:
    resolver = Resolver(template, {})
    assert resolver.resolve(template["Resources"]["Function"]["Properties"]["Description"]) == ".oas"


def test_undeclared_parameters_are_rejected(template: dict) -> None:
    with pytest.raises(ParameterError, match="Nope"):
        Resolver(template, {"Nope": "1"})


# --- local.template.load_template: decoded once per content, a new copy every time ----------------
def test_load_template_returns_an_independent_copy_and_decodes_a_changed_file_again(tmp_path, monkeypatch) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE)
    decodes: list[str] = []
    real_loads = template_yaml.loads

    def counted(text: str) -> Any:
        decodes.append(text)
        return real_loads(text)

    monkeypatch.setattr(template_yaml, "loads", counted)
    first = local_template.load_template(path)
    assert first["Conditions"]["SnapStartEnabled"] == {"Fn::Equals": [{"Ref": "EnableSnapStart"}, "true"]}
    first["Resources"]["Function"]["Properties"]["Handler"] = "changed"
    second = local_template.load_template(path)
    assert second["Resources"]["Function"]["Properties"]["Handler"] == "handler.handler"
    assert second == local_template.load_template(tmp_path / "." / "template.yaml")
    assert len(decodes) == 1
    path.write_text(TEMPLATE.replace("handler.handler", "app.main"))
    assert local_template.load_template(path)["Resources"]["Function"]["Properties"]["Handler"] == "app.main"
    assert len(decodes) == 2


def test_load_template_refuses_an_undecodable_file_every_time(tmp_path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("Resources: [unclosed\n")
    for _ in range(2):
        with pytest.raises(local_template.TemplateError, match="cannot decode"):
            local_template.load_template(path)
