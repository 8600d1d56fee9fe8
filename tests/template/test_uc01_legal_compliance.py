"""UC1 template: what is specific to this stack (the conventions of every template are in the
other tests of this folder): VPC placement, the optional endpoints and their idle cost, the ONTAP
grants, the per-run settings in the payload and their JSON-safe substitution."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from cfnlint.decode import decode_str

from tests.support.templates import ACCOUNT, REGION, REPO_ROOT, Resolver, iter_states, load_template, state_machines
from tests.template.idle_cost import idle_cost_findings
from tests.template.policies import as_list, statements

pytestmark = pytest.mark.template

TEMPLATE = load_template(REPO_ROOT / "legal-compliance" / "template-deploy.yaml")
SECRET = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:fsxn/audit-ro-AbCdEf"
BASE = {
    "AccessPointArn": f"arn:aws:s3:{REGION}:{ACCOUNT}:accesspoint/legal-ap",
    "OntapManagementEndpoint": "management.fs-0123456789abcdef0.fsx.us-east-1.amazonaws.com",
    "OntapSecretArn": SECRET,
    "OntapSvmName": "svm_legal",
    "OntapVolumeName": "vol_legal",
    "VpcId": "vpc-0123456789abcdef0",
    "SubnetIds": "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
    "SecurityGroupIds": "sg-0123456789abcdef0",
}
ONTAP_FUNCTIONS = {"DiscoveryFunction", "AclCollectionFunction"}


def functions(params: dict[str, str]) -> dict[str, dict[str, Any]]:
    resolver = Resolver(TEMPLATE, params)
    return {
        lid: resolver.resolve(res["Properties"])
        for lid, res in resolver.resources().items()
        if res["Type"] == "AWS::Lambda::Function"
    }


def test_only_the_functions_that_call_ontap_run_in_the_vpc() -> None:
    resolved = functions(BASE)
    assert {lid for lid, props in resolved.items() if "VpcConfig" in props} == ONTAP_FUNCTIONS
    for lid in ONTAP_FUNCTIONS:
        vpc = resolved[lid]["VpcConfig"]
        assert vpc["SubnetIds"] == BASE["SubnetIds"].split(",")
        assert vpc["SecurityGroupIds"] == [BASE["SecurityGroupIds"]]


def test_network_parameters_are_required() -> None:
    for name in ("SubnetIds", "SecurityGroupIds", "VpcId", "OntapManagementEndpoint", "OntapSecretArn"):
        assert "Default" not in TEMPLATE["Parameters"][name], name


def test_endpoints_are_off_by_default_and_the_interface_endpoint_is_flagged_as_idle_cost() -> None:
    assert idle_cost_findings(TEMPLATE, BASE) == []
    opted_in = idle_cost_findings(
        TEMPLATE, {**BASE, "CreateVpcEndpoints": "true", "RouteTableIds": "rtb-0123456789abcdef0"}
    )
    assert any(f.startswith("SecretsManagerEndpoint") for f in opted_in), opted_in
    assert not any(f.startswith("S3GatewayEndpoint") for f in opted_in)  # gateway endpoints are free


def test_endpoints_are_created_only_when_asked_for() -> None:
    off = Resolver(TEMPLATE, BASE).resources()
    assert "SecretsManagerEndpoint" not in off
    assert "S3GatewayEndpoint" not in off
    on = Resolver(TEMPLATE, {**BASE, "CreateVpcEndpoints": "true", "RouteTableIds": "rtb-0123456789abcdef0"})
    resources = on.resources()
    endpoint = on.resolve(resources["SecretsManagerEndpoint"]["Properties"])
    assert endpoint["VpcEndpointType"] == "Interface"
    assert endpoint["ServiceName"] == f"com.amazonaws.{REGION}.secretsmanager"
    assert endpoint["PrivateDnsEnabled"] is True
    gateway = on.resolve(resources["S3GatewayEndpoint"]["Properties"])
    assert gateway["RouteTableIds"] == ["rtb-0123456789abcdef0"]


def test_the_ontap_secret_is_readable_by_the_vpc_functions_only() -> None:
    readers = {}
    for lid, statement in statements(Resolver(TEMPLATE, BASE)):
        if "secretsmanager:GetSecretValue" in as_list(statement["Action"]):
            readers[lid] = as_list(statement["Resource"])
    assert readers == {"DiscoveryRole": [SECRET], "AclCollectionRole": [SECRET]}


def test_no_function_environment_carries_ontap_or_audit_settings() -> None:
    # They reach the functions through the payload, so they are not part of any version identity.
    for lid, props in functions(BASE).items():
        variables = props["Environment"]["Variables"]
        assert not [v for v in variables if v.startswith(("ONTAP_", "ACCESS_POINT", "SOURCE_PREFIX"))], lid


def _definition(params: dict[str, str]) -> dict[str, Any]:
    (definition,) = state_machines(TEMPLATE, params).values()
    return definition


def test_settings_reach_the_functions_through_the_payload() -> None:
    definition = _definition(BASE)
    config = definition["States"]["LoadConfig"]["Parameters"]
    assert config["source"] == {"access_point_arn": BASE["AccessPointArn"], "prefix": ""}
    assert config["ontap"]["endpoint"] == BASE["OntapManagementEndpoint"]
    assert config["ontap"]["secret_arn"] == SECRET
    assert config["ontap"]["verify_tls.$"] == "States.StringToJson('true')"
    states = dict(iter_states(definition))
    assert states["Discovery"]["Parameters"]["Payload"]["ontap.$"] == "$.config.ontap"
    assert definition["States"]["CollectAcls"]["ItemBatcher"]["BatchInput"]["ontap.$"] == "$.config.ontap"
    assert states["AthenaAnalysis"]["Parameters"]["Payload"]["rules.$"] == "$.config.rules"
    assert "ontap.$" not in states["AthenaAnalysis"]["Parameters"]["Payload"]


def test_backslashes_and_regular_expressions_survive_the_substitution() -> None:
    owners = "BUILTIN\\Administrators,CORP\\Legal Admins"
    pattern = "^(hr|legal)/.*\\.docx$"
    rules = _definition({**BASE, "AllowedOwners": owners, "SensitivePathPattern": pattern})["States"]["LoadConfig"][
        "Parameters"
    ]["rules"]
    assert rules == {"sensitive_path_pattern": pattern, "allowed_owners": owners}


def test_the_substitution_check_fails_without_the_escaping() -> None:
    # Known-bad: the same parameter substituted as is produces a definition that is not JSON.
    text = json.dumps({"owners": "${AllowedOwners}"}).replace("${AllowedOwners}", "BUILTIN\\Administrators")
    with pytest.raises(json.JSONDecodeError):
        json.loads(text)


def test_double_quotes_are_refused_by_the_parameter_patterns() -> None:
    for name in ("AllowedOwners", "SensitivePathPattern", "OntapManagementEndpoint", "OntapVolumeName"):
        pattern = TEMPLATE["Parameters"][name]["AllowedPattern"]
        assert re.fullmatch(pattern, 'a"b') is None, name


def test_the_article_logical_id_is_kept() -> None:
    template, matches = decode_str((REPO_ROOT / "legal-compliance" / "template-deploy.yaml").read_text())
    assert not matches
    assert template["Resources"]["DiscoveryFunction"]["Properties"]["Code"] == "functions/discovery"
