"""IAM statements of a resolved template, for the scoping checks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tests.support.templates import Resolver

# Actions AWS authorizes only on Resource '*' (no resource-level permissions), the only ones a
# statement with a '*' resource may carry.
WILDCARD_ONLY_ACTIONS = frozenset(
    {
        "xray:PutTraceSegments",
        "xray:PutTelemetryRecords",
        "xray:GetSamplingRules",
        "xray:GetSamplingTargets",
        # CloudWatch Logs vended log delivery (Step Functions logging).
        "logs:CreateLogDelivery",
        "logs:GetLogDelivery",
        "logs:UpdateLogDelivery",
        "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries",
        "logs:PutResourcePolicy",
        "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups",
        # EC2 Describe calls a function in a VPC needs (no resource types in the Service
        # Authorization Reference; guard-rules/iam-least-privilege.guard lists them too).
        "ec2:DescribeNetworkInterfaces",
        "ec2:DescribeSubnets",
        # Rekognition image/video analysis APIs.
        "rekognition:DetectLabels",
        "rekognition:DetectText",
        "rekognition:DetectFaces",
        "rekognition:DetectModerationLabels",
        # ECR registry sign-in (a SageMaker execution role pulling the model image) and
        # CloudWatch metric publishing: no resource-level permissions.
        "ecr:GetAuthorizationToken",
        "cloudwatch:PutMetricData",
    }
)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(resolver: Resolver) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(logical id, statement) for every statement of every role policy and policy resource."""
    for logical_id, resource in resolver.resources().items():
        props = resolver.resolve(resource.get("Properties", {}))
        documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        if resource["Type"] in ("AWS::IAM::RolePolicy", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            documents.append(props["PolicyDocument"])
        for document in documents:
            for statement in as_list(document["Statement"]):
                yield logical_id, statement
