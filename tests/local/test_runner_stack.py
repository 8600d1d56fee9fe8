"""Reading a use-case template for a local run: parameters, conditions, intrinsics, functions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.runner.stack import Stack, TemplateError

pytestmark = pytest.mark.unit

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "mini-pipeline" / "template-deploy.yaml"
AP = "arn:aws:s3:us-east-1:123456789012:accesspoint/ap"

CONDITIONAL = """\
Parameters:
  Existing: {Type: String, Default: ''}
Conditions:
  Create: !Equals [!Ref Existing, '']
Resources:
  Bucket:
    Type: AWS::S3::Bucket
    Condition: Create
  Machine:
    Type: AWS::StepFunctions::StateMachine
    Properties:
      RoleArn: arn:aws:iam::123456789012:role/r
      DefinitionSubstitutions:
        Target: !If [Create, !Ref Bucket, !Ref Existing]
      Definition:
        StartAt: P
        States:
          P: {Type: Pass, Result: {bucket: '${Target}', missing: '${Nope}'}, End: true}
"""


def test_fixture_template_resolves_against_emulated_names():
    stack = Stack.load(FIXTURE, parameters={"AccessPointArn": AP})
    bucket = stack.physical["OutputBucket"].ref
    functions = {f.logical_id: f for f in stack.functions()}
    assert functions["ProcessFunction"].environment == {"ACCESS_POINT_ARN": AP, "OUTPUT_BUCKET": bucket}
    assert functions["AggregateFunction"].environment["DATABASE"].startswith("mini_")
    assert functions["DiscoveryFunction"].code_dir.name == "discovery"
    ((definition, _role),) = stack.state_machine_definitions().values()
    parsed = json.loads(definition)
    assert parsed["States"]["Process"]["ResultWriter"]["Parameters"]["Bucket"] == bucket
    assert parsed["States"]["Discovery"]["Parameters"]["FunctionName"] == functions["DiscoveryFunction"].arn
    assert "${" not in definition
    assert "StateMachineRole (AWS::IAM::Role)" not in stack.not_emulated  # filled by provisioning


def test_required_and_unknown_parameters_are_errors():
    with pytest.raises(TemplateError, match="AccessPointArn"):
        Stack.load(FIXTURE)
    with pytest.raises(TemplateError, match=r"Parameters: \[Typo\] do not exist in the template"):
        Stack.load(FIXTURE, parameters={"AccessPointArn": AP, "Typo": "1"})


def test_conditions_choose_resources_and_values(tmp_path):
    path = tmp_path / "template-deploy.yaml"
    path.write_text(CONDITIONAL)
    created = Stack.load(path)
    assert "Bucket" in created.resources()
    existing = Stack.load(path, parameters={"Existing": "my-bucket"})
    assert "Bucket" not in existing.resources()
    with pytest.raises(TemplateError, match="Nope"):
        existing.state_machine_definitions()
