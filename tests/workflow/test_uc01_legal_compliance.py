"""UC1 legal-compliance end to end on the local runner: the real template, definition and handlers,
the ACLs served by the fake ONTAP HTTPS server over loopback.

Every scenario checks the invariant the pipeline promises: each listed file ends with exactly one
record (its ACL, or a typed failure), whether the run succeeds or not.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from local.emulators.ontap import OntapFault
from local.faults import Fault
from local.runner.run import RunOptions, RunResult, run_use_case
from local.samples import legal_compliance

pytestmark = pytest.mark.workflow

UC1 = Path(__file__).resolve().parents[2] / "legal-compliance"
OBJECTS = 30
PERMISSIONS = "/api/protocols/file-security/permissions/"


def run(
    *,
    objects: int = OBJECTS,
    parameters: dict[str, str] | None = None,
    keep: Path | None = None,
    faults: tuple[Fault, ...] = (),
    **service_options: object,
) -> RunResult:
    options = RunOptions(
        objects=objects,
        parameters=parameters or {},
        keep=keep,
        faults=list(faults),
        retry_time_scale=0.0,
        service_options=dict(service_options),
    )
    return run_use_case(UC1, options)


def assert_one_record_per_input(result: RunResult) -> None:
    assert result.items_total > 0
    assert not result.unaccounted, f"inputs without a record: {result.unaccounted}"
    assert not result.duplicated, f"inputs with several records: {result.duplicated}"
    assert result.records_succeeded + result.records_failed == result.items_total


def expected_findings() -> list[list[str]]:
    cases = legal_compliance.CASES[:OBJECTS]
    return sorted([rule, case.key, principal] for case in cases for rule, principal in case.findings)


def test_happy_path_reports_exactly_the_expected_findings(tmp_path: Path) -> None:
    result = run(keep=tmp_path)
    assert result.status == "SUCCEEDED", result.cause
    assert result.ok
    assert_one_record_per_input(result)
    assert result.items_total == OBJECTS
    assert result.records_failed == 0
    # Every rule's positive case is found, no negative case is: exactly the declared findings.
    assert sorted(result.findings) == expected_findings()
    assert {f[0] for f in result.findings} == {
        "BROAD_GROUP_FULL_OR_CHANGE",
        "INHERITANCE_DISABLED",
        "UNRESOLVED_SID",
        "OWNER_NOT_ALLOWED",
    }
    negatives = {case.key for case in legal_compliance.CASES if not case.findings}
    assert negatives
    assert not negatives & {f[1] for f in result.findings}
    (findings_file,) = tmp_path.rglob(f"reports/{result.execution_name}/findings.json")
    document = json.loads(findings_file.read_text())
    assert all(f["evidence"] for f in document["findings"])
    context = json.loads(next(tmp_path.rglob(f"context/{result.execution_name}/ontap.json")).read_text())
    assert context["volume"]["junction_path"] == legal_compliance.JUNCTION_PATH
    assert {s["name"] for s in context["cifs_shares"]} == {"legal$", "contracts", "hr"}  # not /home's
    (notification,) = result.notifications
    assert f"{len(expected_findings())} findings" in notification["subject"]
    assert {p.name for p in tmp_path.rglob(f"reports/{result.execution_name}/*")} >= {"report.md", "summary.json"}
    assert result.emulated["ontap REST (fake, HTTPS on loopback)"] >= OBJECTS
    assert all(stats["errors"] == {} for stats in result.functions.values())


def test_an_ontap_429_storm_is_retried_to_the_same_findings() -> None:
    # Twelve 429s in a row: the client's own retries (5 attempts) absorb some, the batch then
    # fails ThrottlingError twice and the Map's Retry runs it again until ONTAP answers.
    storm = OntapFault(match=PERMISSIONS, status=429, times=12, retry_after=0.01)
    result = run(ontap_faults=[storm])
    assert result.status == "SUCCEEDED", result.cause
    assert storm.used == 12
    assert result.functions["AclCollectionFunction"]["errors"] == {"ThrottlingError": 2}
    assert_one_record_per_input(result)
    assert result.records_failed == 0
    assert sorted(result.findings) == expected_findings()


def test_ontap_authentication_failure_fails_the_run_typed_and_writes_no_report(tmp_path: Path) -> None:
    result = run(keep=tmp_path, ontap_password="not-the-password")
    assert result.status == "FAILED"
    assert result.error == "AuthenticationError"
    assert "401" in (result.cause or "")
    assert not list(tmp_path.rglob("report.md"))
    assert not result.notifications
    assert result.functions["DiscoveryFunction"]["errors"]


def test_a_file_deleted_after_listing_is_one_recorded_failure() -> None:
    gone = "projects/alpha/notes.txt"  # a negative case: its absence changes no finding
    result = run(ontap_deleted=(gone,))
    assert result.status == "SUCCEEDED", result.cause
    assert_one_record_per_input(result)
    assert result.records_failed == 1
    assert result.records_by_error == {"NotFoundError": 1}
    assert sorted(result.findings) == expected_findings()


def test_a_wrong_ca_fails_certificate_verification() -> None:
    result = run(ontap_wrong_ca=True)
    assert result.status == "FAILED"
    assert result.error == "CertificateVerificationError"
    assert "CERTIFICATE_VERIFY_FAILED" in (result.cause or "")
    assert not result.notifications


def test_files_above_the_tolerance_fail_the_run_after_the_findings_are_written(tmp_path: Path) -> None:
    deleted = tuple(case.key for case in legal_compliance.CASES[:4])  # 4 of 30 files: 13 % > 10 %
    result = run(keep=tmp_path, ontap_deleted=deleted, parameters={"ToleratedFailurePercentage": "10"})
    assert result.status == "FAILED"
    assert result.error == "TooManyFailuresError"
    assert_one_record_per_input(result)
    assert result.records_by_error == {"NotFoundError": 4}
    assert list(tmp_path.rglob(f"reports/{result.execution_name}/findings.json"))
    assert not list(tmp_path.rglob("report.md"))


def test_an_analysis_query_out_of_time_is_stopped_and_fails_the_run_typed(tmp_path: Path) -> None:
    # Every query would run for an hour: the handler's bounded polling (its sleeps advance the
    # emulated clock) reaches its deadline, stops all seven queries and raises QueryTimeoutError.
    result = run(keep=tmp_path, faults=(Fault.slow("athena:StartQueryExecution", seconds=3600),))
    assert result.status == "FAILED"
    assert result.error == "QueryTimeoutError", result.cause
    message = json.loads(result.cause or "{}").get("errorMessage", "")
    assert "all 7 were stopped" in message
    assert "Sandbox.Timedout" not in result.functions["AthenaAnalysisFunction"]["errors"]
    assert_one_record_per_input(result)  # the ACLs were collected; only the analysis ran out of time
    assert not list(tmp_path.rglob("findings.json"))
    assert not list(tmp_path.rglob("report.md"))
    assert not result.notifications


def test_ontap_replies_slower_than_the_read_timeout_are_retried_to_the_same_findings() -> None:
    # Two permission reads held back 2.5 s against a 1 s read timeout (real time: the fake ONTAP
    # sleeps): the client times out, backs off and asks again; the run loses no file.
    slow = OntapFault(match=PERMISSIONS, delay=2.5, times=2)
    result = run(ontap_faults=[slow], parameters={"OntapReadTimeoutSeconds": "1"})
    assert result.status == "SUCCEEDED", result.cause
    assert slow.used == 2
    # SVM, volume, one page of shares, a read per file, and the two reads asked again.
    assert result.emulated["ontap REST (fake, HTTPS on loopback)"] == 3 + OBJECTS + 2
    assert_one_record_per_input(result)
    assert result.records_failed == 0
    assert sorted(result.findings) == expected_findings()
