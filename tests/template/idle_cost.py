"""Which resources bill while a stack sits idle (no pipeline running)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.support.templates import Resolver

# Resource types that cost money every hour/month they exist, whatever the traffic.
# (SageMaker endpoints and inference components depend on their configuration: see below.)
ALWAYS_BILLED = {
    "AWS::SageMaker::NotebookInstance": "a notebook instance bills while in service",
    "AWS::EC2::NatGateway": "a NAT gateway bills per hour",
    "AWS::EC2::EIP": "a public IPv4 address bills per hour",
    "AWS::EC2::Instance": "an instance bills while running",
    "AWS::KMS::Key": "a customer managed key bills per month",
    "AWS::SecretsManager::Secret": "a secret bills per month",
    "AWS::CloudWatch::Alarm": "alarms beyond the free tier bill per month",
    "AWS::CloudWatch::CompositeAlarm": "alarms beyond the free tier bill per month",
    "AWS::CloudWatch::Dashboard": "dashboards beyond the free tier bill per month",
    "AWS::RDS::DBInstance": "a database instance bills per hour",
    "AWS::ElastiCache::CacheCluster": "a cache node bills per hour",
    "AWS::OpenSearchService::Domain": "a domain bills per instance-hour",
    "AWS::Kinesis::Stream": "a provisioned stream bills per shard-hour",
}


def idle_cost_findings(template: Mapping[str, Any], params: Mapping[str, str]) -> list[str]:
    """Human-readable reasons, one per resource that would bill while idle with ``params``."""
    resolver = Resolver(template, params)
    findings = []
    for logical_id, resource in resolver.resources().items():
        rtype = resource.get("Type", "")
        props = resolver.resolve(resource.get("Properties", {}) or {})
        if rtype in ALWAYS_BILLED:
            findings.append(f"{logical_id} ({rtype}): {ALWAYS_BILLED[rtype]}")
        elif rtype == "AWS::SageMaker::Endpoint" and (reason := _endpoint_idle_cost(resolver, resource)):
            findings.append(f"{logical_id} ({rtype}): {reason}")
        elif rtype == "AWS::SageMaker::InferenceComponent" and not _copies_scale_to_zero(resolver, props):
            findings.append(f"{logical_id} ({rtype}): an inference component that cannot scale in to zero copies "
                            "keeps them on instances")  # fmt: skip
        elif rtype == "AWS::EC2::VPCEndpoint" and props.get("VpcEndpointType", "Gateway") != "Gateway":
            findings.append(f"{logical_id}: an interface VPC endpoint bills per AZ-hour")
        elif rtype in {"AWS::Lambda::Alias", "AWS::Lambda::Version"} and "ProvisionedConcurrencyConfig" in props:
            findings.append(f"{logical_id}: provisioned concurrency bills per hour")
        elif rtype == "AWS::Lambda::Version" and _python_snapstart(resolver, resource):
            findings.append(f"{logical_id}: a Python SnapStart version bills snapshot caching per GB-second")
        elif rtype == "AWS::DynamoDB::Table" and props.get("BillingMode", "PROVISIONED") == "PROVISIONED":
            findings.append(f"{logical_id}: a provisioned-capacity table bills per hour")
        elif rtype == "AWS::Scheduler::Schedule" and props.get("State", "ENABLED") == "ENABLED":
            findings.append(f"{logical_id}: an enabled schedule runs (and bills) the pipeline")
        elif rtype == "AWS::Events::Rule" and "ScheduleExpression" in props and props.get("State") != "DISABLED":
            findings.append(f"{logical_id}: an enabled scheduled rule runs (and bills) the pipeline")
    return findings



def _python_snapstart(resolver: Resolver, version: Mapping[str, Any]) -> bool:
    """True when the version's function uses SnapStart on a Python runtime (cached snapshots bill)."""
    name = (version.get("Properties", {}) or {}).get("FunctionName")
    if isinstance(name, Mapping) and "Ref" in name:
        logical_id = name["Ref"]
    elif isinstance(name, Mapping) and "Fn::GetAtt" in name:
        logical_id = name["Fn::GetAtt"][0]
    else:
        return False
    function = resolver.resolve(resolver.template["Resources"][logical_id].get("Properties", {}) or {})
    snapstart = function.get("SnapStart", {}) or {}
    return snapstart.get("ApplyOn") == "PublishedVersions" and str(function.get("Runtime", "")).startswith("python")


def _endpoint_idle_cost(resolver: Resolver, endpoint: Mapping[str, Any]) -> str | None:
    """Why an endpoint bills while idle, or None: a serverless endpoint bills per request only; an
    inference-component endpoint (variants without a model) whose managed instance scaling may
    reach 0 instances bills nothing once its components scaled in; any other bills per
    instance-hour while it exists."""
    name = (endpoint.get("Properties", {}) or {}).get("EndpointConfigName")
    if not (isinstance(name, Mapping) and "Fn::GetAtt" in name):
        return "a SageMaker endpoint bills per instance-hour"
    config = resolver.resolve(resolver.template["Resources"][name["Fn::GetAtt"][0]].get("Properties", {}) or {})
    variants = config.get("ProductionVariants") or []
    if variants and all("ServerlessConfig" in v for v in variants):
        return None
    for_components = variants and all("ModelName" not in v for v in variants)
    scaling = [v.get("ManagedInstanceScaling") or {} for v in variants]
    if for_components and all(m.get("Status") == "ENABLED" and int(m.get("MinInstanceCount", 1)) == 0 for m in scaling):
        return None
    if for_components:
        return "an inference-component endpoint whose MinInstanceCount is above 0 keeps its instances"
    return "a SageMaker endpoint bills per instance-hour"


def _copies_scale_to_zero(resolver: Resolver, component: Mapping[str, Any]) -> bool:
    """True when a scalable target on the component's DesiredCopyCount has MinCapacity 0 and a
    target-tracking policy on it takes the copies there when idle."""
    resource_id = f"inference-component/{component.get('InferenceComponentName')}"
    resources = resolver.resources()
    for lid, res in resources.items():
        if res["Type"] != "AWS::ApplicationAutoScaling::ScalableTarget":
            continue
        target = resolver.resolve(res.get("Properties", {}) or {})
        if (target.get("ResourceId"), target.get("ScalableDimension"), target.get("MinCapacity")) != (
            resource_id, "sagemaker:inference-component:DesiredCopyCount", 0
        ):  # fmt: skip
            continue
        target_ref = resolver.resolve({"Ref": lid})
        for policy in resources.values():
            if policy["Type"] != "AWS::ApplicationAutoScaling::ScalingPolicy":
                continue
            props = resolver.resolve(policy.get("Properties", {}) or {})
            if props.get("PolicyType") == "TargetTrackingScaling" and props.get("ScalingTargetId") == target_ref:
                return True
    return False
