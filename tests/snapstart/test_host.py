"""The function host and the snapshot-safety checks, without CRIU (cold processes only)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import snapshot_restore_py

from tests.snapstart import host
from tests.snapstart.checks import failed_invocations, unregistered_clients, varying_init_globals
from tests.snapstart.criu import FunctionSpec, cold_run

pytestmark = pytest.mark.unit


@pytest.fixture
def hook_registry() -> Iterator[None]:
    before = list(snapshot_restore_py.get_before_snapshot())
    after = list(snapshot_restore_py.get_after_restore())
    snapshot_restore_py.get_before_snapshot().clear()
    snapshot_restore_py.get_after_restore().clear()
    yield
    snapshot_restore_py.get_before_snapshot()[:] = before
    snapshot_restore_py.get_after_restore()[:] = after


def test_host_runs_hooks_as_the_lambda_runtime_does(hook_registry: None) -> None:
    calls: list[str] = []
    snapshot_restore_py.register_before_snapshot(calls.append, "before-1")
    snapshot_restore_py.register_before_snapshot(calls.append, "before-2")
    snapshot_restore_py.register_after_restore(calls.append, "after-1")
    snapshot_restore_py.register_after_restore(calls.append, "after-2")

    assert host.run_before_snapshot() == 2
    assert host.run_before_snapshot() == 0  # consumed, as in the runtime
    assert host.run_after_restore() == 2
    assert calls == ["before-2", "before-1", "after-1", "after-2"]


def test_good_fixture_inits_identically_twice_and_registers_its_clients(
    fixture_spec: Callable[[str], FunctionSpec], tmp_path: Path
) -> None:
    spec = fixture_spec("good")
    first, second = (cold_run(spec, tmp_path / name, invocations=2) for name in ("a", "b"))

    assert varying_init_globals(first.init, second.init) == []
    assert first.init["files_created_at_init"] == []
    assert unregistered_clients(first.init) == []
    assert [c["open_pools"] for c in first.init["clients"]] == [1, 1]  # init really used the network
    assert failed_invocations(first.result) == []
    assert len(first.result["invocations"]) == 2


def test_ids_timestamps_and_temp_files_made_at_init_are_found(
    fixture_spec: Callable[[str], FunctionSpec], tmp_path: Path
) -> None:
    spec = fixture_spec("init_unique")
    first, second = (cold_run(spec, tmp_path / name) for name in ("a", "b"))

    assert varying_init_globals(first.init, second.init) == ["RUN_ID", "SCRATCH_PATH", "STARTED_AT"]
    assert [Path(name).name.startswith("scratch-") for name in first.init["files_created_at_init"]] == [True]


def test_an_unregistered_client_is_found(fixture_spec: Callable[[str], FunctionSpec], tmp_path: Path) -> None:
    run = cold_run(fixture_spec("leaky"), tmp_path / "a")
    assert unregistered_clients(run.init) == ["S3 (s3)"]


def test_the_ontap_check_sees_connections_and_credentials_until_the_hooks_drop_them() -> None:
    import json
    from types import SimpleNamespace

    import boto3
    from moto import mock_aws

    from local.emulators.ontap import FakeOntap, OntapDataset
    from shared import ontap, runtime
    from shared.retry import Deadline
    from tests.snapstart.checks import ontap_kept_after_restore

    dataset = OntapDataset(svms=[{"uuid": "u1", "name": "svm1"}])
    with mock_aws(), FakeOntap(dataset, username="u", password="p") as server:
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        arn = secrets.create_secret(Name="s", SecretString=json.dumps({"username": "u", "password": "p"}))["ARN"]
        clients = ontap.OntapClients(secrets)
        settings = ontap.OntapSettings(endpoint=server.host, secret_arn=arn, ca_bundle=server.ca_file)
        clients.get(settings).svm("svm1", Deadline.after(30))
        module = SimpleNamespace(ONTAP=clients)
        before = {"ontap_after_rehook": host.ontap_report(module)}
        assert ontap_kept_after_restore(before)  # known-bad: a used client holds both
        runtime.run_after_restore_hooks()
        assert ontap_kept_after_restore({"ontap_after_rehook": host.ontap_report(module)}) == []
