"""UC1 functions' own modules: descriptor parsing, the batch's records, the analysis rules, the
ONTAP context, the report's input checks, and the handlers' event validation."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.emulators.ontap import FakeOntap, OntapFault
from local.samples import legal_compliance as samples
from shared.batch import Batch
from shared.errors import (
    AuthenticationError,
    ConfigurationError,
    DeadlineExceededError,
    InvalidFileError,
    InvalidInputError,
    ThrottlingError,
)
from shared.ontap import OntapClient, SecretCredentials
from shared.retry import Deadline
from shared.s3ap import ObjectInfo
from tests.support.lambda_context import FakeLambdaContext
from tests.support.templates import REPO_ROOT

pytestmark = pytest.mark.unit

FUNCTIONS = REPO_ROOT / "legal-compliance" / "functions"
EVENTS = REPO_ROOT / "events" / "uc01-legal-compliance"
BUCKET = "uc1-output-bucket"


def load(function: str, *modules: str) -> SimpleNamespace:
    """Import modules of ``functions/<function>`` with the folder first on sys.path, as Lambda does."""
    folder = FUNCTIONS / function
    siblings = {p.stem for p in folder.glob("*.py")}
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if name in siblings}
    sys.path.insert(0, str(folder))
    loaded: dict[str, ModuleType] = {}
    try:
        for module in modules:
            if module == "handler":
                spec = importlib.util.spec_from_file_location(f"uc01_{function}_handler", folder / "handler.py")
                assert spec is not None
                assert spec.loader is not None
                handler = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = handler  # dataclasses look their module up there
                spec.loader.exec_module(handler)
                loaded[module] = handler
            else:
                loaded[module] = importlib.import_module(module)
        return SimpleNamespace(**loaded)
    finally:
        sys.path.remove(str(folder))
        for name in siblings:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


collection = load("acl_collection", "collection").collection
analysis = load("athena_analysis", "analysis").analysis
inventory = load("discovery", "inventory").inventory
compliance_report = load("report_generation", "compliance_report").compliance_report


# ------------------------------------------------------------------- security descriptors
def test_descriptor_fields_parse_hex_and_decimal_flags() -> None:
    protected = samples.descriptor(samples._baseline(), protected=True)
    fields = collection.descriptor_fields(protected, "/legal/x")
    assert fields["control_flags"] == "0x9014"
    assert fields["inheritance_disabled"] is True
    assert fields["ace_count"] == 2
    assert fields["aces"][0] == {
        "user": samples.ADMINS,
        "access": "access_allow",
        "rights": "full_control",
        "full_control": True,
        "write_data": True,
        "change": True,
        "inherited": True,
    }
    decimal = {**protected, "control_flags": str(0x8014)}  # the form NetApp's Python examples show
    assert collection.descriptor_fields(decimal, "/legal/x")["inheritance_disabled"] is False


def test_advanced_full_control_counts_without_rights() -> None:
    ace = {"user": "Everyone", "access": "access_allow", "advanced_rights": {"full_control": True}}
    assert collection.parse_ace(ace)["full_control"] is True
    assert collection.parse_ace({**ace, "advanced_rights": {}})["full_control"] is False


@pytest.mark.parametrize(
    ("rights", "advanced", "change"),
    [
        ("modify", {}, True),
        ("full_control", {}, True),
        ("read_and_execute", {"read_data": True}, False),
        ("write", {"write_data": True}, False),  # write without delete is not change
        (None, {"write_data": True, "delete": True}, True),  # advanced rights only
        (None, {"write_data": True, "append_data": True}, False),
        (None, {"delete": True}, False),
    ],
)
def test_change_is_modify_full_control_or_advanced_write_and_delete(
    rights: str | None, advanced: dict[str, bool], change: bool
) -> None:
    ace: dict[str, Any] = {"user": "Everyone", "access": "access_allow", "advanced_rights": advanced}
    if rights is not None:
        ace["rights"] = rights
    assert collection.parse_ace(ace)["change"] is change


@pytest.mark.parametrize(
    "descriptor",
    [
        {"control_flags": "0xZZ", "acls": []},
        {"control_flags": None, "acls": []},
        {"control_flags": "0x8014", "acls": "everyone"},
        {"control_flags": "0x8014", "acls": [{"user": "Everyone"}]},
        {"control_flags": "0x8014", "acls": [{"user": "Everyone", "access": "access_allow", "inherited": "yes"}]},
        {"control_flags": "0x8014", "owner": 7, "acls": []},
    ],
)
def test_unusable_descriptors_are_invalid_files(descriptor: dict[str, Any]) -> None:
    with pytest.raises(InvalidFileError):
        collection.descriptor_fields(descriptor, "/legal/x")


def test_batch_key_depends_on_the_batch_only() -> None:
    one = collection.batch_key("exec-1", ["a", "b"])
    assert one == collection.batch_key("exec-1", ["a", "b"])
    assert one != collection.batch_key("exec-1", ["a", "c"])
    assert one != collection.batch_key("exec-2", ["a", "b"])
    assert one.startswith("results/execution_id=exec-1/batch-")


# ------------------------------------------------------------------- one batch against the fake ONTAP
@pytest.fixture
def fake() -> Iterator[tuple[Any, FakeOntap, Any, str]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket=BUCKET)
        sample = samples.generate(s3, BUCKET, objects=len(samples.CASES))
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        arn = secrets.create_secret(
            Name="ro", SecretString=json.dumps({"username": samples.USERNAME, "password": samples.PASSWORD})
        )["ARN"]
        with FakeOntap(sample.ontap, username=samples.USERNAME, password=samples.PASSWORD) as server:
            client = OntapClient(
                server.host, SecretCredentials(secrets, arn), ca_bundle=server.ca_file, sleep=lambda _s: None
            )
            yield s3, server, client, arn


def _batch(keys: list[str]) -> tuple[Batch, Any]:
    items = [ObjectInfo(key=k, size=1, etag="e" * 32, last_modified="2026-01-01T00:00:00.000Z") for k in keys]
    ontap = {"endpoint": "127.0.0.1:1", "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"}
    batch = Batch(
        "exec-1",
        items,
        {"execution_id": "exec-1", "svm_uuid": samples.SVM_UUID, "volume_path": samples.JUNCTION_PATH, "ontap": ontap},
    )
    return batch, collection.parse_scope(batch)


def _records(s3: Any, key: str) -> list[dict[str, Any]]:
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
    return [json.loads(line) for line in body.split("\n") if line]


def test_a_batch_writes_one_jsonl_object_with_one_record_per_file(fake: Any) -> None:
    s3, server, client, _ = fake
    keys = [c.key for c in samples.CASES[:5]]
    server.delete(samples.SVM_UUID, samples.ontap_path(keys[1]))
    batch, scope = _batch(keys)
    result = collection.collect(s3, client, output_bucket=BUCKET, batch=batch, scope=scope, deadline=Deadline.after(60))
    assert (result.processed, result.succeeded, result.failed) == (5, 4, 1)
    records = _records(s3, result.results_key)
    assert [r["source_key"] for r in records] == keys
    failed = [r for r in records if r["status"] == "FAILED"]
    assert [(r["source_key"], r["error_type"]) for r in failed] == [(keys[1], "NotFoundError")]
    assert records[0]["aces"][-1]["user"] == "Everyone"
    assert records[0]["ontap_path"] == samples.ontap_path(keys[0])


def test_refused_credentials_fail_the_batch_and_write_nothing(fake: Any) -> None:
    s3, server, client, _ = fake
    server.password = "changed"
    batch, scope = _batch([c.key for c in samples.CASES[:3]])
    with pytest.raises(AuthenticationError):
        collection.collect(s3, client, output_bucket=BUCKET, batch=batch, scope=scope, deadline=Deadline.after(60))
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="results/").get("KeyCount", 0) == 0


def test_a_429_storm_beyond_the_client_retries_is_raised_for_the_map_retry(fake: Any) -> None:
    s3, server, client, _ = fake
    server.faults.append(OntapFault(match="permissions", status=429, times=100))
    batch, scope = _batch([c.key for c in samples.CASES[:2]])
    with pytest.raises(ThrottlingError):
        collection.collect(s3, client, output_bucket=BUCKET, batch=batch, scope=scope, deadline=Deadline.after(60))
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="results/").get("KeyCount", 0) == 0


def test_throttling_until_the_deadline_is_raised_for_the_map_retry_even_for_a_lone_file(fake: Any) -> None:
    # One file, ONTAP throttling it until the invocation's budget is gone: a later invocation can
    # read it, so the batch is retried (DeadlineExceededError), not the file recorded as failed.
    s3, server, _, arn = fake
    now = [0.0]
    client = OntapClient(
        server.host,
        SecretCredentials(boto3.client("secretsmanager", region_name="us-east-1"), arn),
        ca_bundle=server.ca_file,
        sleep=lambda s: now.__setitem__(0, now[0] + s),
        rng=lambda: 1.0,
    )
    server.faults.append(OntapFault(match="permissions", status=429, times=100))
    batch, scope = _batch([samples.CASES[0].key])
    deadline = Deadline.after(3, clock=lambda: now[0])
    with pytest.raises(DeadlineExceededError) as raised:
        collection.collect(s3, client, output_bucket=BUCKET, batch=batch, scope=scope, deadline=deadline)
    assert isinstance(raised.value.__cause__, ThrottlingError)
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="results/").get("KeyCount", 0) == 0


def test_the_scope_needs_svm_and_volume_path() -> None:
    for broken in ({"svm_uuid": ""}, {"volume_path": "relative"}, {"ontap": None}):
        batch, _ = _batch(["a"])
        bad = Batch(batch.execution_id, batch.items, {**batch.batch_input, **broken})
        with pytest.raises(InvalidInputError):
            collection.parse_scope(bad)


# ------------------------------------------------------------------- the ONTAP context
def test_the_context_keeps_the_volume_shares_only(fake: Any) -> None:
    _, _, client, _ = fake
    context = inventory.ontap_context(
        client, svm_name=samples.SVM_NAME, volume_name=samples.VOLUME_NAME, deadline=Deadline.after(60)
    )
    assert context["volume"]["junction_path"] == samples.JUNCTION_PATH
    assert sorted(s["name"] for s in context["cifs_shares"]) == ["contracts", "hr", "legal$"]


def test_a_volume_without_junction_path_is_a_configuration_error(fake: Any) -> None:
    _, server, client, _ = fake
    server.dataset.volumes[0]["nas"].pop("path")
    with pytest.raises(ConfigurationError, match="junction path"):
        inventory.ontap_context(
            client, svm_name=samples.SVM_NAME, volume_name=samples.VOLUME_NAME, deadline=Deadline.after(60)
        )


# ------------------------------------------------------------------- analysis rules
def test_owners_pattern_matches_whole_names_case_insensitively() -> None:
    pattern = analysis.owners_pattern(["BUILTIN\\Administrators", "NT AUTHORITY\\SYSTEM", "a.b+c"])
    for owner in ("builtin\\administrators", "nt authority\\system", "a.b+c"):
        assert re.fullmatch(pattern, owner)
    for owner in ("builtin\\administrators2", "xbuiltin\\administrators", "axb+c", "nt authority"):
        assert not re.fullmatch(pattern, owner), owner
    with pytest.raises(InvalidInputError):
        analysis.owners_pattern([" ", ""])


def test_analysis_settings_are_validated() -> None:
    query = analysis.QuerySettings(workgroup="wg", database="db")
    good = {"sensitive_path_pattern": "^hr/", "allowed_owners": "A\\b, C\\d"}
    settings = analysis.AnalysisSettings.parse(good, query=query, table="file_acls", max_findings=10)
    assert settings.allowed_owners == ("A\\b", "C\\d")
    for bad in ({**good, "sensitive_path_pattern": "("}, {**good, "allowed_owners": " , "}, None):
        with pytest.raises(InvalidInputError):
            analysis.AnalysisSettings.parse(bad, query=query, table="file_acls", max_findings=10)


def test_every_query_is_scoped_to_the_execution_and_binds_its_values() -> None:
    queries = analysis.queries(
        '"db"."file_acls"', "run'7f3e", sensitive_pattern="^hr/", allowed_owners=["A\\b"], limit=11
    )
    assert {q.name for q in queries} == set(analysis.SQL)
    for query in queries:
        assert "execution_id = ?" in query.sql
        assert query.parameters[0] == "'run''7f3e'"  # quotes doubled: a literal, never SQL
        assert "7f3e" not in query.sql


def test_findings_carry_rule_path_principal_and_evidence() -> None:
    rows = {
        "broad_groups": [
            {
                "source_key": "k",
                "principal": "Everyone",
                "access": "access_allow",
                "rights": None,
                "full_control": True,
                "inherited": False,
            }
        ],
        "inheritance_disabled": [{"source_key": "h", "control_flags": "0x9014"}],
        "unresolved_ace_sids": [
            {"source_key": "s", "principal": "S-1-5-21-1-2-3-4", "access": "access_allow", "rights": "read"}
        ],
        "unresolved_owner_sids": [],
        "owners_not_allowed": [{"source_key": "o", "owner": "CORP\\x"}],
    }
    findings = analysis.findings_from_rows(rows, sensitive_pattern="^h")
    assert [(f["rule_id"], f["source_key"], f["principal"]) for f in findings] == [
        ("BROAD_GROUP_FULL_OR_CHANGE", "k", "Everyone"),
        ("INHERITANCE_DISABLED", "h", "-"),
        ("OWNER_NOT_ALLOWED", "o", "CORP\\x"),
        ("UNRESOLVED_SID", "s", "S-1-5-21-1-2-3-4"),
    ]
    assert "full control (advanced rights)" in findings[0]["evidence"]
    assert all(f["evidence"] for f in findings)


# ------------------------------------------------------------------- report input
def test_the_report_refuses_a_malformed_findings_document() -> None:
    good = {
        "execution_id": "e",
        "counts": {},
        "rules": {},
        "findings_by_rule": {},
        "findings": [{"rule_id": "R", "source_key": "k", "principal": "p", "evidence": "x"}],
        "failed_files": [],
        "finding_count": 1,
    }
    assert compliance_report.validate_findings(good) is good
    bad_documents: list[object] = [
        {**good, "findings": "x"},
        {**good, "finding_count": "1"},
        {**good, "findings": [{"rule_id": "R"}]},
        [],
    ]
    for bad in bad_documents:
        with pytest.raises(InvalidFileError):
            compliance_report.validate_findings(bad)


# ------------------------------------------------------------------- handlers validate their events
@pytest.fixture
def handlers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OUTPUT_BUCKET", BUCKET)
    monkeypatch.setenv("ATHENA_WORKGROUP", "wg")
    monkeypatch.setenv("GLUE_DATABASE", "uc1_legal")
    monkeypatch.setenv("BEDROCK_MODEL_ID", "amazon.nova-lite-v1:0")
    monkeypatch.setenv("TOPIC_ARN", "arn:aws:sns:us-east-1:123456789012:uc1")
    with mock_aws():
        yield


def _parse(module: Any, function: str, event: dict[str, Any]) -> Any:
    if function == "acl_collection":
        return module.parse_scope(module.parse_batch(event, max_items=10))
    if function == "report_generation":
        return module.parse_event(event, BUCKET)
    return module.parse_event(event)


@pytest.mark.parametrize("function", ["discovery", "acl_collection", "athena_analysis", "report_generation"])
def test_the_sample_event_passes_validation_and_a_broken_one_does_not(handlers: None, function: str) -> None:
    module = load(function, "handler").handler
    event = json.loads((EVENTS / f"{function}-event.json").read_text())
    if function == "report_generation":
        event["findings_bucket"] = BUCKET  # the sample names the sam tier's bucket
    assert _parse(module, function, event)
    with pytest.raises(InvalidInputError):
        _parse(module, function, {})


def test_discovery_refuses_settings_without_svm_or_volume(handlers: None) -> None:
    module = load("discovery", "handler").handler
    event = json.loads((EVENTS / "discovery-event.json").read_text())
    event["ontap"]["volume_name"] = ""
    with pytest.raises(InvalidInputError, match="volume_name"):
        module.parse_event(event)
    event = json.loads((EVENTS / "discovery-event.json").read_text())
    event["source"]["access_point_arn"] = "fsxn-vol-abc-ext-s3alias"
    with pytest.raises(InvalidInputError):
        module.parse_event(event)


def test_handlers_run_on_the_emulated_context(handlers: None) -> None:
    # The analysis handler on a wrong tolerance: refused before any AWS call.
    module = load("athena_analysis", "handler").handler
    event = json.loads((EVENTS / "athena_analysis-event.json").read_text())
    event["tolerated_failure_percentage"] = 101
    with pytest.raises(InvalidInputError, match="tolerated_failure_percentage"):
        module.handler(event, FakeLambdaContext(remaining_ms=60_000))


def test_events_folder_is_complete() -> None:
    assert sorted(p.name for p in EVENTS.glob("*.json")) == [
        "acl_collection-event.json",
        "athena_analysis-event.json",
        "discovery-event.json",
        "report_generation-event.json",
    ]
    assert Path(REPO_ROOT / "events" / "uc06-semiconductor-eda" / "discovery-event.json").is_file()
