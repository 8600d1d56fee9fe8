"""UC6 template: what is specific to this stack.

The conventions every use-case template keeps (cfn-lint clean, idle cost, IAM scoping, Task
timeouts/retries/catches, SnapStart wiring and version identity, the SnapStart Region rule) are
checked for all of them in tests/template/. Here: UC6's functions, its exact grants, its state
machine's shape and which parameters republish which of its functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from shared.errors import (
    LAMBDA_SERVICE_TRANSIENT_ERRORS,
    TRANSIENT_ERROR_NAMES,
    ConfigurationError,
    InvalidInputError,
)
from tests.support.lambda_context import FakeLambdaContext
from tests.support.templates import ACCOUNT, REGION, Resolver, iter_states, load_template, state_machines
from tests.support.uc06 import FUNCTIONS_DIR, TEMPLATE, UC_DIR, load_function
from tests.template.idle_cost import idle_cost_findings
from tests.template.policies import as_list, statements
from tests.template.version_identity import changes, identity_problems

pytestmark = pytest.mark.template

AP_NAME = "fsxn-eda-ap"
AP_ARN = f"arn:aws:s3:{REGION}:{ACCOUNT}:accesspoint/{AP_NAME}"
BASE = {"AccessPointArn": AP_ARN}
ALL_ON = {**BASE, "EnableSnapStart": "true", "EnableTracing": "true", "EnableAlarms": "true",
          "EnableSchedule": "true", "KmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab",
          "BedrockInferenceProfilePrefix": "us", "SourcePrefix": "designs/", "NotificationEmail": "a@b.co"}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def test_defaults_cost_nothing_while_idle_and_the_check_sees_opt_ins(template):
    assert idle_cost_findings(template, BASE) == []
    on = idle_cost_findings(template, ALL_ON)
    assert any("ExecutionsFailedAlarm" in f for f in on)
    assert any("Schedule" in f for f in on)


def test_every_function_is_python313_with_layer_log_group_and_existing_code(template):
    resolver = Resolver(template, BASE)
    functions = {k: v for k, v in resolver.resources().items() if v["Type"] == "AWS::Lambda::Function"}
    assert set(functions) == {"DiscoveryFunction", "MetadataExtractionFunction", "DrcAggregationFunction",
                              "ReportGenerationFunction"}
    for logical_id, resource in functions.items():
        props = resource["Properties"]
        assert props["Runtime"] == "python3.13"
        assert props["Layers"] == [{"Ref": "SharedLayer"}]
        assert (UC_DIR / props["Code"] / "handler.py").is_file(), logical_id
        assert props["LoggingConfig"]["LogGroup"] == {"Ref": logical_id.replace("Function", "LogGroup")}
    for logical_id, resource in resolver.resources().items():
        if resource["Type"] == "AWS::Logs::LogGroup":
            assert "RetentionInDays" in resource["Properties"], logical_id


@pytest.mark.parametrize("params", [BASE, ALL_ON], ids=["defaults", "all-options"])
def test_each_handler_initialises_with_the_environment_the_template_gives_it(
    template, params, s3_access_point, monkeypatch
):
    resolver = Resolver(template, params)
    # Ref of a Glue database or table is its name (the test resolver only knows generic ids).
    names = {
        "GLUE_DATABASE": resolver.resolve(template["Resources"]["GlueDatabase"]["Properties"])["DatabaseInput"]["Name"],
        "GLUE_TABLE": template["Resources"]["ResultsTable"]["Properties"]["TableInput"]["Name"],
    }
    outcomes: dict[tuple[str, str], str] = {}
    for logical_id, resource in resolver.resources().items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        env = resolver.resolve(resource["Properties"]["Environment"]["Variables"])
        env = {**env, **{k: v for k, v in names.items() if k in env}}
        folder = resource["Properties"]["Code"].split("/")[-1]
        with monkeypatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, str(value))
            module = load_function(folder, "handler").handler
            # Configured: an event it cannot use is refused as bad input, not as bad configuration.
            with pytest.raises(InvalidInputError):
                module.handler({"unexpected": True}, FakeLambdaContext(remaining_ms=60_000))
        # Without a variable the template sets, init either refuses to start with a ConfigurationError
        # naming it or falls back to the function's default; it never fails untyped.
        for key in env:
            with monkeypatch.context() as patch:
                for other, value in env.items():
                    if other != key:
                        patch.setenv(other, str(value))
                patch.delenv(key, raising=False)
                refused = ""
                try:
                    load_function(folder, "handler")
                except ConfigurationError as exc:
                    refused = str(exc)
            outcomes[(logical_id, key)] = refused
    assert all(key in message for (_, key), message in outcomes.items() if message), outcomes
    # The resource names every function needs are required, not defaulted.
    for (logical_id, key), message in outcomes.items():
        if key in ("OUTPUT_BUCKET", "ACCESS_POINT_ARN"):
            assert message, f"{logical_id} starts without {key}"


@pytest.mark.parametrize("params", [BASE, ALL_ON], ids=["defaults", "all-options"])
def test_access_point_grants_use_the_arn_forms_never_the_alias(template, params):
    s3_ap = [(lid, s) for lid, s in statements(Resolver(template, params))
             if any(":accesspoint/" in str(r) for r in as_list(s["Resource"]))]
    by_role: dict[str, dict[str, Mapping[str, Any]]] = {}
    for logical_id, statement in s3_ap:
        by_role.setdefault(logical_id, {})[statement["Action"]] = statement
    assert set(by_role) == {"DiscoveryRole", "MetadataExtractionRole"}
    prefix = params.get("SourcePrefix", "")
    prefix_only = {"StringLike": {"s3:prefix": [f"{prefix}*"]}} if prefix else None
    # Discovery lists the source prefix; extraction reads its objects and may list them (a vanished
    # file is then NotFoundError, not AccessDeniedError) - both lists scoped to the prefix.
    assert set(by_role["DiscoveryRole"]) == {"s3:ListBucket"}
    assert set(by_role["MetadataExtractionRole"]) == {"s3:GetObject", "s3:ListBucket"}
    for role in ("DiscoveryRole", "MetadataExtractionRole"):
        listing = by_role[role]["s3:ListBucket"]
        assert as_list(listing["Resource"]) == [AP_ARN]
        assert listing.get("Condition") == prefix_only
    assert as_list(by_role["MetadataExtractionRole"]["s3:GetObject"]["Resource"]) == [f"{AP_ARN}/object/{prefix}*"]
    for _, statement in statements(Resolver(template, params)):
        assert not any("s3alias" in str(r) for r in as_list(statement["Resource"]))


def test_bedrock_athena_glue_and_sns_grants_name_the_exact_resources(template):
    resolver = Resolver(template, BASE)
    granted: dict[str, list[str]] = {}
    for _, statement in statements(resolver):
        for action in as_list(statement["Action"]):
            granted.setdefault(action, []).extend(as_list(statement["Resource"]))
    model = template["Parameters"]["BedrockModelId"]["Default"]
    assert granted["bedrock:InvokeModel"] == [f"arn:aws:bedrock:{REGION}::foundation-model/{model}"]
    assert granted["athena:StartQueryExecution"] == [
        f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/test-stack-AthenaWorkGroup"]
    assert f"arn:aws:glue:{REGION}:{ACCOUNT}:table/test-stack-GlueDatabase/test-stack-ResultsTable" in (
        granted["glue:GetTable"])
    assert granted["sns:Publish"] == [f"arn:aws:sns:{REGION}:{ACCOUNT}:test-stack-NotificationTopic"]
    profile = Resolver(template, {**BASE, "BedrockInferenceProfilePrefix": "eu"})
    invoke = [r for _, s in statements(profile) if s["Action"] == "bedrock:InvokeModel" for r in s["Resource"]]
    assert invoke == [f"arn:aws:bedrock:{REGION}:{ACCOUNT}:inference-profile/eu.{model}",
                      f"arn:aws:bedrock:*::foundation-model/{model}"]


def test_results_table_projects_the_execution_partition(template):
    table = Resolver(template, BASE).resolve(template["Resources"]["ResultsTable"]["Properties"])["TableInput"]
    assert table["PartitionKeys"] == [{"Name": "execution_id", "Type": "string"}]
    assert table["Parameters"]["projection.execution_id.type"] == "injected"
    location = table["Parameters"]["storage.location.template"]
    assert location.endswith("/results/execution_id=${execution_id}/")


@pytest.mark.parametrize("params", [BASE, ALL_ON], ids=["defaults", "all-options"])
def test_state_machine_conventions(template, params):
    (definition,) = state_machines(template, params).values()
    tasks = [(n, s) for n, s in iter_states(definition) if s["Type"] == "Task"]
    assert len(tasks) == 4
    for name, state in tasks:
        assert state["Resource"] == "arn:aws:states:::lambda:invoke"
        assert state["Retry"][0]["ErrorEquals"] == [*TRANSIENT_ERROR_NAMES, *LAMBDA_SERVICE_TRANSIENT_ERRORS], name
        assert state["Catch"][0]["ResultPath"] == "$.error"
    extract = definition["States"]["ExtractMetadata"]
    assert extract["ItemReader"]["ReaderConfig"]["InputType"] == "JSONL"
    assert extract["ItemProcessor"]["ProcessorConfig"]["Mode"] == "DISTRIBUTED"
    assert extract["ItemBatcher"]["MaxItemsPerBatchPath"] == "$.config.MaxItemsPerBatch"
    assert extract["ToleratedFailurePercentagePath"] == "$.config.ToleratedFailurePercentage"
    assert extract["ResultWriter"]["Parameters"]["Prefix.$"] == "$.config.MapResultsPrefix"
    config = definition["States"]["LoadConfig"]["Parameters"]
    assert config["MaxItemsPerBatch.$"] == "States.StringToJson('10')"


def test_every_function_folder_is_in_the_template(template):
    codes = {r["Properties"]["Code"] for r in template["Resources"].values() if r["Type"] == "AWS::Lambda::Function"}
    assert {f"functions/{p.name}" for p in FUNCTIONS_DIR.iterdir() if (p / "handler.py").is_file()} == codes


# ----------------------------------------------------------- which parameters republish what
SNAP = {**BASE, "EnableSnapStart": "true"}
VERSIONS = {"DiscoveryVersion", "MetadataExtractionVersion", "DrcAggregationVersion", "ReportGenerationVersion"}


@pytest.mark.parametrize(
    ("change", "republished"),
    [
        ({"SourcePrefix": "designs/tapeout/"}, {"DiscoveryVersion"}),
        ({"FileSuffixes": ".gds"}, {"DiscoveryVersion"}),
        ({"AccessPointArn": f"arn:aws:s3:{REGION}:{ACCOUNT}:accesspoint/other-ap"},
         {"DiscoveryVersion", "MetadataExtractionVersion"}),
        ({"MaxHierarchyDepth": "64"}, {"DrcAggregationVersion"}),
        ({"AthenaWorkgroupName": "shared-wg"}, {"DrcAggregationVersion"}),
        ({"BedrockModelId": "amazon.nova-pro-v1:0"}, {"ReportGenerationVersion"}),
        ({"BedrockInferenceProfilePrefix": "us"}, {"ReportGenerationVersion"}),
        ({"OutputBucketName": "existing-bucket"}, VERSIONS),
        ({"EnableTracing": "true"}, VERSIONS),
        ({"MetadataExtractionCodeHash": "0123456789abcdef"}, {"MetadataExtractionVersion"}),
        # Nothing of these reaches a function: no version is published for them.
        ({"LogRetentionDays": "30"}, set()),
        ({"MapBatchSize": "50"}, set()),
        ({"ToleratedFailurePercentage": "0"}, set()),
        ({"StateMachineLogLevel": "ALL"}, set()),
        ({"KmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab"}, set()),
        ({}, set()),
    ],
    ids=lambda value: ",".join(value) if isinstance(value, dict) else None,
)
def test_a_parameter_republishes_exactly_the_functions_it_reaches(template, change, republished):
    result = changes(template, SNAP, {**SNAP, **change})
    assert result.replaced_versions == republished
    assert {result.version_of[v] for v in republished} == result.modified_functions
    assert identity_problems(template, SNAP, {**SNAP, **change}) == []
