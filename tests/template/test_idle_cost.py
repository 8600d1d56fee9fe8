"""Principle 1: with default parameters no template creates anything that bills while idle."""

from __future__ import annotations

from pathlib import Path

import pytest
from cfnlint.decode import decode_str

from tests.support.templates import REPO_ROOT, all_templates, load_template
from tests.template.idle_cost import idle_cost_findings

pytestmark = pytest.mark.template


def test_repository_has_templates() -> None:
    assert all_templates(), "no CloudFormation template found"


@pytest.mark.parametrize("path", all_templates(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_default_parameters_create_nothing_that_bills_while_idle(path: Path) -> None:
    assert idle_cost_findings(load_template(path), {}) == []


def _decode(text: str) -> dict:
    template, matches = decode_str(text)
    assert not matches
    return dict(template)


KNOWN_BAD = """
Parameters:
  EnableEndpoint: {Type: String, Default: 'true', AllowedValues: ['true', 'false']}
  EnableSchedule: {Type: String, Default: 'false', AllowedValues: ['true', 'false']}
Conditions:
  HasEndpoint: !Equals [!Ref EnableEndpoint, 'true']
  HasSchedule: !Equals [!Ref EnableSchedule, 'true']
Resources:
  Endpoint:
    Type: AWS::SageMaker::Endpoint
    Condition: HasEndpoint
    Properties: {EndpointConfigName: cfg}
  Schedule:
    Type: AWS::Scheduler::Schedule
    Properties:
      State: !If [HasSchedule, ENABLED, DISABLED]
      ScheduleExpression: rate(1 hour)
      FlexibleTimeWindow: {Mode: 'OFF'}
      Target: {Arn: arn:aws:states:us-east-1:123456789012:stateMachine:x, RoleArn: arn:aws:iam::123456789012:role/r}
  Interface:
    Type: AWS::EC2::VPCEndpoint
    Properties: {VpcEndpointType: Interface, ServiceName: com.amazonaws.us-east-1.s3, VpcId: vpc-1}
  Gateway:
    Type: AWS::EC2::VPCEndpoint
    Properties: {ServiceName: com.amazonaws.us-east-1.s3, VpcId: vpc-1}
"""


def test_the_check_flags_billed_resources_and_follows_conditions() -> None:
    template = _decode(KNOWN_BAD)
    findings = idle_cost_findings(template, {})
    assert any(f.startswith("Endpoint ") for f in findings)
    assert any(f.startswith("Interface:") for f in findings)
    assert not any(f.startswith("Gateway") for f in findings)
    assert not any(f.startswith("Schedule") for f in findings)  # DISABLED by default

    switched = idle_cost_findings(template, {"EnableEndpoint": "false", "EnableSchedule": "true"})
    assert not any(f.startswith("Endpoint ") for f in switched)
    assert any(f.startswith("Schedule") for f in switched)


def test_python_snapstart_versions_count_as_idle_cost_only_when_opted_in() -> None:
    template = load_template(REPO_ROOT / "semiconductor-eda" / "template-deploy.yaml")
    assert idle_cost_findings(template, {}) == []
    opted_in = idle_cost_findings(template, {"EnableSnapStart": "true"})
    assert opted_in
    assert all("SnapStart" in finding for finding in opted_in)
