"""UC9 template: each inference path behind its own condition, Inference Components as SageMaker
requires them for scale to zero, the Rules the article's deploy command must pass, lint-clean
for every parameter set.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import pytest

from shared.routing import SYNC_PAYLOAD_LIMITS, InferencePath
from tests.support.lint import Linter
from tests.support.templates import REPO_ROOT, Resolver, iter_states, load_template, state_machines
from tests.template.idle_cost import idle_cost_findings

pytestmark = pytest.mark.template

TEMPLATE = REPO_ROOT / "autonomous-driving" / "template-deploy.yaml"
REQUIRED = {
    "AccessPointArn": "arn:aws:s3:us-east-1:123456789012:accesspoint/fsxn-adas-ap",
    "ModelImageUri": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
    "ModelDataUrl": "s3://models-123456789012/autonomous-driving/model/0123456789abcdef/model.tar.gz",
}
# The deploy command, parameter names as the article spells them.
ARTICLE = {"EnableInferenceComponents": "true", "InferenceType": "components",
           "EnableRealtimeEndpoint": "true", "ComponentsMinInstanceCount": "0"}  # fmt: skip
SETS: dict[str, dict[str, str]] = {
    "defaults": {},
    "serverless": {"InferenceType": "serverless"},
    "components": {"InferenceType": "components", "EnableInferenceComponents": "true"},
    "provisioned": {"InferenceType": "provisioned", "EnableRealtimeEndpoint": "true"},
    "article": ARTICLE,
    "everything": {**ARTICLE, "EnableSnapStart": "true", "EnableTracing": "true", "EnableAlarms": "true",
                   "EnableSchedule": "true", "KmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab",
                   "SourcePrefix": "drives/", "NotificationEmail": "ops@example.com"},
}  # fmt: skip
SAGEMAKER_HOSTING = {
    "AWS::SageMaker::EndpointConfig",
    "AWS::SageMaker::Endpoint",
    "AWS::SageMaker::InferenceComponent",
    "AWS::ApplicationAutoScaling::ScalableTarget",
    "AWS::ApplicationAutoScaling::ScalingPolicy",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def resolver(template: Mapping[str, Any], params: Mapping[str, str]) -> Resolver:
    return Resolver(template, {**REQUIRED, **params})


def hosting(template: Mapping[str, Any], params: Mapping[str, str]) -> set[str]:
    return {
        lid
        for lid, res in resolver(template, params).resources().items()
        if res["Type"] in SAGEMAKER_HOSTING
        or (res["Type"] == "AWS::CloudWatch::Alarm" and lid.startswith("Components"))
    }


# --- lint ----------------------------------------------------------------------------------------
def with_defaults(template: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
    """The decoded template with ``params`` as the parameters' defaults: how cfn-lint sees a set."""
    copied = copy.deepcopy(dict(template))
    for name, value in params.items():
        copied["Parameters"][name]["Default"] = value
    return copied


@pytest.mark.parametrize("name", sorted(SETS))
def test_cfn_lint_is_clean_for_every_parameter_set(name, tmp_path, cfn_lint: Linter):
    target = tmp_path / "autonomous-driving" / "template-deploy.json"
    target.parent.mkdir()
    target.write_text(json.dumps(with_defaults(load_template(TEMPLATE), {**REQUIRED, **SETS[name]}), indent=1))
    # The functions' code folders are local paths relative to the template.
    (target.parent / "functions").symlink_to(TEMPLATE.parent / "functions")
    # cfn-lint in process with the command line's configuration (tests/support/lint.py): no match
    # at all is what `cfn-lint --format parseable` exiting 0 means, without a process per set.
    messages = cfn_lint.messages(target)
    assert messages == []
    assert not [m for m in messages if "W1001" in m]


# --- Rules -----------------------------------------------------------------------------------------
def _rule_value(expr: Any, params: Mapping[str, str]) -> Any:
    if isinstance(expr, Mapping):
        ((fn, arg),) = expr.items()
        if fn == "Ref":
            return {"AWS::Region": "us-east-1"}.get(arg, params.get(arg))
        if fn == "Fn::Equals":
            a, b = (_rule_value(x, params) for x in arg)
            return str(a) == str(b)
        if fn == "Fn::Not":
            return not _rule_value(arg[0], params)
        if fn == "Fn::And":
            return all(_rule_value(x, params) for x in arg)
        if fn == "Fn::Or":
            return any(_rule_value(x, params) for x in arg)
        if fn == "Fn::Contains":
            values, value = arg
            return _rule_value(value, params) in [_rule_value(v, params) for v in values]
        raise AssertionError(f"rule function {fn} not modelled")
    return expr


def rule_failures(template: Mapping[str, Any], params: Mapping[str, str]) -> list[str]:
    """The AssertDescriptions CloudFormation would answer for ``params`` (defaults applied)."""
    values = {n: str(s.get("Default", "")) for n, s in template["Parameters"].items()}
    values.update({**REQUIRED, **params})
    failed = []
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not _rule_value(rule["RuleCondition"], values):
            continue
        for assertion in rule["Assertions"]:
            if not _rule_value(assertion["Assert"], values):
                failed.append(f"{name}: {assertion['AssertDescription']}")
    return failed


def test_the_articles_deploy_command_is_accepted(template):
    assert set(ARTICLE) <= set(template["Parameters"])
    assert rule_failures(template, ARTICLE) == []
    for name, value in ARTICLE.items():
        spec = template["Parameters"][name]
        if "AllowedValues" in spec:
            assert value in [str(v) for v in spec["AllowedValues"]]
        if "MinValue" in spec:
            assert spec["MinValue"] <= int(value) <= spec["MaxValue"]


@pytest.mark.parametrize(
    ("params", "rule"),
    [
        ({"InferenceType": "components"}, "ComponentsTypeNeedsComponents"),
        ({"InferenceType": "provisioned"}, "ProvisionedTypeNeedsEndpoint"),
        ({"InferenceType": "provisioned", "EnableInferenceComponents": "true"}, "ProvisionedTypeNeedsEndpoint"),
    ],
)
def test_a_type_without_its_endpoint_is_refused(template, params, rule):
    assert [f for f in rule_failures(template, params) if f.startswith(rule)]


# --- each path behind its own condition ---------------------------------------------------------
def test_defaults_create_no_endpoint_and_nothing_that_bills_idle(template):
    assert hosting(template, {}) == set()
    assert idle_cost_findings(template, REQUIRED) == []
    # Batch Transform needs only the Model (no charge while no job runs).
    assert "Model" in resolver(template, {}).resources()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("serverless", {"ServerlessEndpointConfig", "ServerlessEndpoint"}),
        ("provisioned", {"RealtimeEndpointConfig", "RealtimeEndpoint"}),
        ("components", {"ComponentsEndpointConfig", "ComponentsEndpoint", "InferenceComponent",
                        "ComponentsScalableTarget", "ComponentsScaleInPolicy", "ComponentsScaleOutFromZeroPolicy",
                        "ComponentsNoCapacityAlarm"}),
    ],
)  # fmt: skip
def test_each_path_creates_exactly_its_own_resources(template, name, expected):
    assert hosting(template, SETS[name]) == expected


def test_the_idle_cost_check_flags_the_endpoints_that_bill(template):
    realtime = idle_cost_findings(template, {**REQUIRED, **SETS["provisioned"]})
    assert [f for f in realtime if f.startswith("RealtimeEndpoint ")]
    # Serverless Inference bills per request only.
    assert idle_cost_findings(template, {**REQUIRED, **SETS["serverless"]}) == []
    # Inference Components with their floors at zero bill nothing once scaled in (their one
    # scale-out alarm counts as an alarm, within CloudWatch's free tier of ten) ...
    components = idle_cost_findings(template, {**REQUIRED, **SETS["components"]})
    assert [f.split()[0] for f in components] == ["ComponentsNoCapacityAlarm"]
    # ... but instances kept (MinInstanceCount > 0) or copies that cannot reach zero do bill.
    kept = idle_cost_findings(template, {**REQUIRED, **SETS["components"], "ComponentsMinInstanceCount": "1"})
    assert [f for f in kept if f.startswith("ComponentsEndpoint ")]
    for change in ("minimum capacity 1", "no scale-in policy"):
        stuck = idle_cost_findings(_broken(template, change), {**REQUIRED, **SETS["components"]})
        assert [f for f in stuck if f.startswith("InferenceComponent ")], change
    # The article's command turns the real-time endpoint on too: that one bills.
    article = idle_cost_findings(template, {**REQUIRED, **ARTICLE})
    assert sorted(f.split()[0] for f in article) == ["ComponentsNoCapacityAlarm", "RealtimeEndpoint"]


# --- Inference Components as scale to zero needs them --------------------------------------------
def ic_problems(template: Mapping[str, Any], params: Mapping[str, str]) -> list[str]:
    r = resolver(template, params)
    res = r.resources()
    props = {lid: r.resolve(res[lid].get("Properties", {})) for lid in res}
    problems = []
    by_type: dict[str, list[str]] = {}
    for lid, resource in res.items():
        by_type.setdefault(resource["Type"], []).append(lid)
    components = by_type.get("AWS::SageMaker::InferenceComponent", [])
    if len(components) != 1:
        return [f"expected one inference component, found {components}"]
    (ic,) = components
    ic_name = props[ic].get("InferenceComponentName")
    endpoint_ids = [lid for lid in by_type.get("AWS::SageMaker::Endpoint", []) if lid.startswith("Components")]
    config_id = "ComponentsEndpointConfig"
    config = props.get(config_id, {})
    if not config.get("ExecutionRoleArn"):
        problems.append("endpoint config has no ExecutionRoleArn")
    (variant,) = config.get("ProductionVariants", [{}])
    for legacy in ("ModelName", "InitialVariantWeight"):
        if legacy in variant:
            problems.append(f"variant has {legacy} (a legacy endpoint, not one for inference components)")
    scaling = variant.get("ManagedInstanceScaling", {})
    if scaling.get("Status") != "ENABLED" or str(scaling.get("MinInstanceCount")) != params.get(
        "ComponentsMinInstanceCount", "0"
    ):
        problems.append(f"ManagedInstanceScaling is {scaling}")
    if variant.get("RoutingConfig") != {"RoutingStrategy": "LEAST_OUTSTANDING_REQUESTS"}:
        problems.append(f"RoutingConfig is {variant.get('RoutingConfig')}")
    if props[ic].get("EndpointName") != r.resolve({"Fn::GetAtt": [endpoint_ids[0], "EndpointName"]}):
        problems.append("the component is not on the components endpoint")
    if props[ic].get("VariantName") != variant.get("VariantName"):
        problems.append("the component names another variant")
    # Compute requirements fit the instance type.
    sizes = template["Mappings"]["ComponentSizes"][variant["InstanceType"]]
    needs = props[ic]["Specification"]["ComputeResourceRequirements"]
    if not 0 < float(needs["NumberOfCpuCoresRequired"]) <= sizes["Vcpus"]:
        problems.append(f"{needs['NumberOfCpuCoresRequired']} cores do not fit {variant['InstanceType']}")
    if not 128 <= int(needs["MinMemoryRequiredInMb"]) < sizes["MemoryMb"]:
        problems.append(f"{needs['MinMemoryRequiredInMb']} MiB do not fit {variant['InstanceType']}")
    targets = by_type.get("AWS::ApplicationAutoScaling::ScalableTarget", [])
    target = next((t for t in targets if props[t].get("ResourceId") == f"inference-component/{ic_name}"), None)
    if target is None:
        return [*problems, "no scalable target on the inference component"]
    t = props[target]
    if (t.get("ServiceNamespace"), t.get("ScalableDimension"), t.get("MinCapacity")) != (
        "sagemaker", "sagemaker:inference-component:DesiredCopyCount", 0
    ):
        problems.append(f"scalable target is {t}")
    policies = {p: props[p] for p in by_type.get("AWS::ApplicationAutoScaling::ScalingPolicy", [])}
    target_ref = r.resolve({"Ref": target})
    tracking = [p for p, v in policies.items() if v.get("PolicyType") == "TargetTrackingScaling"
                and v.get("ScalingTargetId") == target_ref]  # fmt: skip
    if not tracking or (
        policies[tracking[0]]["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"][
            "PredefinedMetricType"
        ]
        != "SageMakerInferenceComponentInvocationsPerCopy"
    ):
        problems.append("no target-tracking policy that scales the copies in to zero")
    steps = [p for p, v in policies.items() if v.get("PolicyType") == "StepScaling"
             and v.get("ScalingTargetId") == target_ref]  # fmt: skip
    if not steps:
        return [*problems, "no step-scaling policy to scale out from zero"]
    step_ref = r.resolve({"Ref": steps[0]})
    alarms = [
        props[a] for a in by_type.get("AWS::CloudWatch::Alarm", []) if step_ref in props[a].get("AlarmActions", [])
    ]
    if not alarms:
        problems.append("no alarm triggers the step-scaling policy")
    for alarm in alarms:
        if (alarm.get("Namespace"), alarm.get("MetricName")) != ("AWS/SageMaker", "NoCapacityInvocationFailures"):
            problems.append(f"the scale-out alarm watches {alarm.get('Namespace')}/{alarm.get('MetricName')}")
        if alarm.get("Dimensions") != [{"Name": "InferenceComponentName", "Value": ic_name}]:
            problems.append(f"the scale-out alarm's dimensions are {alarm.get('Dimensions')}")
    return problems


@pytest.mark.parametrize(
    "params", [SETS["components"], ARTICLE, {**SETS["components"], "ComponentsInstanceType": "ml.c5.large"}]
)
def test_inference_components_are_configured_for_scale_to_zero(template, params):
    assert ic_problems(template, params) == []


def test_inference_components_do_not_depend_on_the_realtime_endpoint(template):
    only_components = {**SETS["components"], "EnableRealtimeEndpoint": "false"}
    assert ic_problems(template, only_components) == []
    assert not any(lid.startswith("Realtime") for lid in hosting(template, only_components))


def isolation_problems(template: Mapping[str, Any], params: Mapping[str, str]) -> list[str]:
    """Network isolation where SageMaker takes it: on the inference-component endpoint config
    (variants without a model; CreateEndpointConfig refuses EnableNetworkIsolation beside a
    variant's ModelName), and on the Model for every other path but Serverless Inference."""
    r = resolver(template, params)
    problems = []
    for lid, resource in r.resources().items():
        props = r.resolve(resource.get("Properties", {}))
        if resource["Type"] == "AWS::SageMaker::EndpointConfig":
            names_a_model = any("ModelName" in v for v in props.get("ProductionVariants", []))
            if names_a_model and "EnableNetworkIsolation" in props:
                problems.append(f"{lid} sets EnableNetworkIsolation beside a variant's ModelName")
            if not names_a_model and props.get("EnableNetworkIsolation") is not True:
                problems.append(f"{lid} (inference components) is not network-isolated")
        if resource["Type"] == "AWS::SageMaker::Model":
            isolated = params.get("InferenceType") != "serverless"
            if props.get("EnableNetworkIsolation") is not isolated:
                problems.append(f"{lid}: EnableNetworkIsolation {props.get('EnableNetworkIsolation')}, want {isolated}")
    return problems


@pytest.mark.parametrize("name", sorted(SETS))
def test_network_isolation_is_set_where_sagemaker_takes_it(template, name):
    assert isolation_problems(template, SETS[name]) == []


def test_the_isolation_check_catches_it_on_the_wrong_resource(template):
    on_realtime = copy.deepcopy(dict(template))
    on_realtime["Resources"]["RealtimeEndpointConfig"]["Properties"]["EnableNetworkIsolation"] = True
    assert isolation_problems(on_realtime, SETS["provisioned"]) != []
    off_components = copy.deepcopy(dict(template))
    del off_components["Resources"]["ComponentsEndpointConfig"]["Properties"]["EnableNetworkIsolation"]
    assert isolation_problems(off_components, SETS["components"]) != []


def _broken(template: Mapping[str, Any], change: str) -> dict[str, Any]:
    bad = copy.deepcopy(dict(template))
    res = bad["Resources"]
    variant = res["ComponentsEndpointConfig"]["Properties"]["ProductionVariants"][0]
    if change == "legacy variant":
        variant["ModelName"] = {"Fn::GetAtt": ["Model", "ModelName"]}
        variant["InitialVariantWeight"] = 1
    elif change == "no scale-in policy":
        del res["ComponentsScaleInPolicy"]
    elif change == "alarm on the wrong metric":
        res["ComponentsNoCapacityAlarm"]["Properties"]["MetricName"] = "Invocations"
    elif change == "alarm on the endpoint dimension":
        res["ComponentsNoCapacityAlarm"]["Properties"]["Dimensions"] = [
            {"Name": "EndpointName", "Value": {"Fn::GetAtt": ["ComponentsEndpoint", "EndpointName"]}}
        ]
    elif change == "minimum capacity 1":
        res["ComponentsScalableTarget"]["Properties"]["MinCapacity"] = 1
    elif change == "no managed instance scaling":
        del variant["ManagedInstanceScaling"]
    elif change == "copy larger than the instance":
        bad["Mappings"]["ComponentSizes"]["ml.m5.large"]["CopyMemoryMb"] = 16384
    return bad


@pytest.mark.parametrize(
    "change",
    ["legacy variant", "no scale-in policy", "alarm on the wrong metric", "alarm on the endpoint dimension",
     "minimum capacity 1", "no managed instance scaling", "copy larger than the instance"],
)  # fmt: skip
def test_the_ic_check_catches_what_kept_a_public_implementation_from_zero(template, change):
    assert ic_problems(_broken(template, change), SETS["components"]) != []


# --- the state machine's inference paths ------------------------------------------------------------
def definition(template: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
    (machine,) = state_machines(template, {**REQUIRED, **params}).values()
    return machine


@pytest.mark.parametrize("partition", ["aws", "aws-cn"])
def test_batch_transform_runs_through_the_sync_integration_with_a_timeout(template, partition):
    (machine,) = state_machines(template, resolver=Resolver(template, REQUIRED, partition=partition)).values()
    states = dict(iter_states(machine))
    for name in ("BatchTransform", "FallbackBatchTransform"):
        state = states[name]
        assert state["Resource"] == f"arn:{partition}:states:::sagemaker:createTransformJob.sync"
        assert 0 < state["TimeoutSeconds"] <= 86_400
        params = state["Parameters"]
        assert params["TransformInput"]["SplitType"] == "Line"
        assert params["TransformInput"]["ContentType"] == "application/jsonlines"
        assert params["TransformOutput"]["AssembleWith"] == "Line"
        assert params["TransformOutput"]["KmsKeyId"]


def test_components_fall_back_to_batch_transform_on_no_capacity_and_on_the_state_timeout(template):
    r = resolver(template, SETS["components"])
    states = dict(iter_states(definition(template, SETS["components"])))
    state = states["InferenceComponents"]
    (fallback, *_rest) = state["Catch"]
    # The function's typed error, the state's timeout, and the function's own timeout as Lambda
    # reports it (Sandbox.Timedout; Lambda.Unknown in Step Functions' docs for unhandled timeouts).
    assert set(fallback["ErrorEquals"]) == {
        "CapacityUnavailableError",
        "States.Timeout",
        "Sandbox.Timedout",
        "Lambda.Unknown",
    }
    assert fallback["Next"] == "FallbackBatchTransform"
    assert states["FallbackServed"]["Parameters"]["served_by"] == InferencePath.BATCH_TRANSFORM.value
    assert states["FallbackServed"]["Parameters"]["requested_path"] == InferencePath.INFERENCE_COMPONENTS.value
    # The function's budget ends before the state's timeout, with its deadline margin on top.
    function = r.resolve(template["Resources"]["ComponentsInvokeFunction"]["Properties"])
    assert state["TimeoutSeconds"] == 300
    assert function["Timeout"] < state["TimeoutSeconds"]
    assert function["Environment"]["Variables"]["WAIT_FOR_CAPACITY"] == "true"


def test_each_synchronous_function_enforces_its_paths_payload_limit(template):
    r = resolver(template, SETS["everything"] | {"InferenceType": "serverless"})
    for lid, path in [
        ("ServerlessInvokeFunction", InferencePath.SERVERLESS_INFERENCE),
        ("RealtimeInvokeFunction", InferencePath.REALTIME_ENDPOINT),
        ("ComponentsInvokeFunction", InferencePath.INFERENCE_COMPONENTS),
    ]:
        env = r.resolve(template["Resources"][lid]["Properties"])["Environment"]["Variables"]
        assert env["SERVED_BY"] == path.value
        assert int(env["PAYLOAD_LIMIT_BYTES"]) == SYNC_PAYLOAD_LIMITS[path]


def test_the_run_output_names_the_path_that_served_it(template):
    states = dict(iter_states(definition(template, {})))
    summary = states["Summary"]["Parameters"]
    assert {"served_by.$", "requested_path.$", "fallback_reason.$"} <= set(summary)
    assert states["Summary"].get("End") is True


def test_prepare_inference_emits_every_field_the_choice_reads(template):
    states = dict(iter_states(definition(template, {})))
    emitted = {f"$.inference.{k.removesuffix('.$')}" for k in states["PrepareInference"]["ResultSelector"]}
    read = set()

    def walk(rule: Mapping[str, Any]) -> None:
        for inner in rule.get("And", []) + rule.get("Or", []):
            walk(inner)
        if "Variable" in rule:
            read.add(rule["Variable"])
        for key, value in rule.items():
            if key.endswith("Path") and isinstance(value, str):
                read.add(value)

    for rule in states["InferenceRouting"]["Choices"]:
        walk(rule)
    assert read
    assert read <= emitted


def test_the_scheduler_is_off_by_default(template):
    assert "Schedule" not in resolver(template, {}).resources()
    assert "Schedule" in resolver(template, {"EnableSchedule": "true"}).resources()


def test_every_function_folder_is_in_the_template(template):
    folders = {p.name for p in (TEMPLATE.parent / "functions").iterdir() if (p / "handler.py").is_file()}
    used = {
        str(res["Properties"]["Code"]).removeprefix("functions/")
        for res in template["Resources"].values()
        if res["Type"] == "AWS::Lambda::Function"
    }
    assert folders == used
