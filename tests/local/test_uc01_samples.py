"""UC1's local tooling: the parameters its fake ONTAP provides pass the runner's up-front check,
and the sample cases cover every finding rule both ways."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from local.cli import main as cli_main
from local.runner.run import check_parameters
from local.samples import legal_compliance
from local.template import ParameterError

UC1 = Path(__file__).resolve().parents[2] / "legal-compliance"
RULES = ("BROAD_GROUP_FULL_OR_CHANGE", "INHERITANCE_DISABLED", "UNRESOLVED_SID", "OWNER_NOT_ALLOWED")


def test_the_up_front_check_accepts_a_run_without_parameters() -> None:
    # `local-test.sh --uc legal-compliance` gives no --parameter: the ONTAP and VPC parameters
    # come from local_services, after this check.
    resolved = check_parameters(UC1, {})
    assert resolved["OntapSvmName"] == legal_compliance.SVM_NAME


def test_the_up_front_check_still_refuses_a_bad_value() -> None:
    with pytest.raises(ParameterError) as raised:
        check_parameters(UC1, {"OntapManagementEndpoint": "https://not-a-host/"})
    assert any("OntapManagementEndpoint" in m for m in raised.value.messages)


def test_the_cli_refuses_a_bad_value_before_anything_runs(capsys: pytest.CaptureFixture[str]) -> None:
    rc = cli_main(["--uc", "legal-compliance", "--parameter", "OntapVerifyTls=maybe"])
    assert rc == 2
    assert "OntapVerifyTls" in capsys.readouterr().err


def test_the_examples_name_exactly_what_local_services_yields() -> None:
    with mock_aws():
        session = boto3.Session(region_name="us-east-1")
        samples = legal_compliance.generate(session.client("s3"), _bucket_ap(session), objects=1)
        with legal_compliance.local_services(session, samples) as services:
            assert set(services.parameters) == set(legal_compliance.SERVICE_PARAMETER_EXAMPLES)
            check_parameters(UC1, services.parameters)  # the real values pass as the examples do


def _bucket_ap(session: boto3.Session) -> str:
    session.client("s3").create_bucket(Bucket="uc1-samples")
    session.client("s3control").create_access_point(AccountId="123456789012", Name="uc1-ap", Bucket="uc1-samples")
    return "arn:aws:s3:us-east-1:123456789012:accesspoint/uc1-ap"


@pytest.mark.parametrize("rule", RULES)
def test_every_rule_has_a_positive_and_a_declared_negative_case(rule: str) -> None:
    positives = [c for c in legal_compliance.CASES if any(r == rule for r, _ in c.findings)]
    negatives = [c for c in legal_compliance.CASES if not c.findings and rule in c.negative_for]
    assert positives, f"no sample case produces {rule}"
    assert negatives, f"no sample case is declared a negative case of {rule}"
