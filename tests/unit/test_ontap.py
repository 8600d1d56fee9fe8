"""shared.ontap against the fake ONTAP HTTPS server (loopback) and moto's Secrets Manager."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from local.emulators.ontap import FakeOntap, OntapDataset, OntapFault
from shared import ontap, runtime
from shared.errors import (
    AccessDeniedError,
    AuthenticationError,
    CertificateVerificationError,
    ConfigurationError,
    DeadlineExceededError,
    InvalidInputError,
    NotFoundError,
    ServiceUnavailableError,
    ThrottlingError,
)
from shared.ontap import OntapClient, SecretCredentials, encode_path, file_path
from shared.retry import Deadline

pytestmark = pytest.mark.unit

SVM = {"uuid": "11111111-2222-3333-4444-555555555555", "name": "svm1"}
USER, PASSWORD = "audit-ro", "right-password"
ODD_PATH = "/legal/a b/ä#?%&+.docx"
DESCRIPTOR = {
    "owner": "BUILTIN\\Administrators",
    "group": "CORP\\Domain Admins",
    "control_flags": "0x8014",
    "effective_style": "ntfs",
    "acls": [{"user": "Everyone", "access": "access_allow", "rights": "read", "inherited": True}],
}


def dataset(shares: int = 7) -> OntapDataset:
    return OntapDataset(
        svms=[SVM, {"uuid": "other", "name": "svm2"}],
        volumes=[{"uuid": "v1", "name": "vol1", "svm": SVM, "nas": {"path": "/legal", "security_style": "ntfs"}}],
        shares=[
            {"svm": SVM, "name": f"share{i:02d}", "path": f"/legal/s{i}", "volume": {"name": "vol1"}}
            for i in range(shares)
        ],
        files={(SVM["uuid"], ODD_PATH): DESCRIPTOR},
    )


@dataclass
class World:
    server: FakeOntap
    secrets: Any
    secret_arn: str
    sleeps: list[float]

    def client(self, **kwargs: Any) -> OntapClient:
        kwargs.setdefault("ca_bundle", self.server.ca_file)
        kwargs.setdefault("sleep", self.sleeps.append)
        kwargs.setdefault("rng", lambda: 0.5)
        return OntapClient(self.server.host, SecretCredentials(self.secrets, self.secret_arn), **kwargs)


@pytest.fixture
def world() -> Iterator[World]:
    with mock_aws(), FakeOntap(dataset(), username=USER, password=PASSWORD) as server:
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        arn = secrets.create_secret(Name="ontap", SecretString=json.dumps({"username": USER, "password": PASSWORD}))[
            "ARN"
        ]
        yield World(server, secrets, arn, [])


def deadline(seconds: float = 60) -> Deadline:
    return Deadline.after(seconds)


def test_verified_tls_reads_svm_volume_shares_and_a_file_with_an_encoded_path(world: World) -> None:
    client = world.client(page_size=3)
    assert client.svm("svm1", deadline())["uuid"] == SVM["uuid"]
    volume = client.volume(SVM["uuid"], "vol1", deadline())
    assert volume["nas"]["path"] == "/legal"  # an "expensive" field: only there because it was asked for
    shares = list(client.cifs_shares(SVM["uuid"], deadline()))
    assert [s["name"] for s in shares] == [f"share{i:02d}" for i in range(7)]
    assert world.server.count("/api/protocols/cifs/shares") == 3  # 7 records, pages of 3
    descriptor = client.file_permissions(SVM["uuid"], ODD_PATH, deadline())
    assert descriptor["path"] == ODD_PATH
    assert descriptor["acls"] == DESCRIPTOR["acls"]
    assert world.sleeps == []


def test_fields_select_what_the_server_returns(world: World) -> None:
    records = list(world.client().records(ontap.VOLUMES, deadline(), fields=("name",)))
    assert records == [{"name": "vol1"}]


def test_a_wrong_ca_fails_verification_and_is_not_retried(world: World) -> None:
    client = world.client(ca_bundle=world.server.other_ca_file)
    with pytest.raises(CertificateVerificationError) as raised:
        client.svm("svm1", deadline())
    assert "CERTIFICATE_VERIFY_FAILED" in raised.value.message
    assert world.sleeps == []
    assert world.server.requests == []  # the handshake failed: no request reached the server


def test_the_default_trust_store_does_not_trust_a_private_ca(world: World) -> None:
    with pytest.raises(CertificateVerificationError):
        world.client(ca_bundle=None).svm("svm1", deadline())


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verification_off_is_explicit_and_logged(world: World, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="shared.ontap"):
        client = world.client(ca_bundle=None, verify=False)
    assert any("DISABLED" in r.getMessage() for r in caplog.records)
    assert client.svm("svm1", deadline())["name"] == "svm1"


def test_an_unreadable_ca_bundle_is_a_configuration_error(world: World, tmp_path: Any) -> None:
    with pytest.raises(ConfigurationError):
        world.client(ca_bundle=str(tmp_path / "missing.pem"))


def test_credentials_are_fetched_once_per_environment(world: World) -> None:
    client = world.client()
    for _ in range(3):
        client.svm("svm1", deadline())
    assert client.credentials.fetches == 1


def test_a_rotated_password_is_fetched_again_after_a_401(world: World) -> None:
    client = world.client()
    client.svm("svm1", deadline())
    world.server.password = "rotated"
    world.secrets.put_secret_value(
        SecretId=world.secret_arn, SecretString=json.dumps({"username": USER, "password": "rotated"})
    )
    assert client.svm("svm1", deadline())["name"] == "svm1"
    assert client.credentials.fetches == 2
    assert world.server.count(status=401) == 1


def test_credentials_refused_twice_raise_authentication_error(world: World) -> None:
    world.server.password = "something-else"
    client = world.client()
    with pytest.raises(AuthenticationError) as raised:
        client.svm("svm1", deadline())
    assert raised.value.details["httpStatus"] == 401
    assert world.server.count(status=401) == 2  # the request, and once more with fetched credentials
    assert world.sleeps == []  # permanent: not retried


def test_a_malformed_secret_is_a_configuration_error(world: World) -> None:
    world.secrets.put_secret_value(SecretId=world.secret_arn, SecretString=json.dumps({"user": USER}))
    with pytest.raises(ConfigurationError):
        world.client().svm("svm1", deadline())


@pytest.mark.parametrize(
    ("status", "error"), [(403, AccessDeniedError), (404, NotFoundError), (400, InvalidInputError)]
)
def test_permanent_statuses_are_typed_and_not_retried(world: World, status: int, error: type[Exception]) -> None:
    world.server.faults.append(OntapFault(match="svms", status=status, times=5))
    with pytest.raises(error):
        world.client().svm("svm1", deadline())
    assert world.sleeps == []


def test_a_deleted_file_is_not_found(world: World) -> None:
    world.server.delete(SVM["uuid"], ODD_PATH)
    with pytest.raises(NotFoundError) as raised:
        world.client().file_permissions(SVM["uuid"], ODD_PATH, deadline())
    assert raised.value.details["ontapCode"] == "655865"


def test_a_429_storm_is_retried_with_backoff_and_retry_after(world: World) -> None:
    world.server.faults.append(OntapFault(match="svms", status=429, times=3, retry_after=2.0))
    client = world.client(base_delay=0.5, max_delay=8.0)
    assert client.svm("svm1", deadline())["name"] == "svm1"
    # Full jitter (rng 0.5 of the cap 0.5, 1, 2), but never less than the server's Retry-After.
    assert world.sleeps == [2.0, 2.0, 2.0]


def test_without_a_sleep_the_backoff_sleeps_with_time_sleep_as_it_is_then(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Looked up when sleeping, not bound at import: the local runner's emulated clock replaces
    # time.sleep for a run, and shared.ontap is imported once for every run of the process.
    client = world.client(sleep=None)
    slept: list[float] = []
    monkeypatch.setattr("time.sleep", slept.append)
    world.server.faults.append(OntapFault(match="svms", status=429, times=1))
    assert client.svm("svm1", deadline())["name"] == "svm1"
    assert slept == [0.25]


def test_a_429_storm_longer_than_the_attempts_raises_throttling(world: World) -> None:
    world.server.faults.append(OntapFault(match="svms", status=429, times=50))
    with pytest.raises(ThrottlingError):
        world.client(max_attempts=3).svm("svm1", deadline())
    assert world.server.count(status=429) == 3
    assert len(world.sleeps) == 2


@pytest.mark.parametrize("status", [500, 502, 503])
def test_5xx_is_retried(world: World, status: int) -> None:
    world.server.faults.append(OntapFault(match="svms", status=status, times=2))
    assert world.client().svm("svm1", deadline())["name"] == "svm1"
    assert len(world.sleeps) == 2


def test_a_reply_slower_than_the_read_timeout_is_retried(world: World) -> None:
    world.server.faults.append(OntapFault(match="svms", delay=1.5, times=1))
    client = world.client(read_timeout=0.5)
    assert client.svm("svm1", deadline())["name"] == "svm1"
    assert len(world.sleeps) == 1


def test_slow_replies_past_the_attempts_are_service_unavailable(world: World) -> None:
    world.server.faults.append(OntapFault(match="svms", delay=1.0, times=2))
    with pytest.raises(ServiceUnavailableError):
        world.client(read_timeout=0.3, max_attempts=2).svm("svm1", deadline())
    # Both requests count although the fake still holds their replies back.
    assert world.server.count("svms") == 2


def test_retries_stop_at_the_deadline(world: World) -> None:
    world.server.faults.append(OntapFault(match="svms", status=503, times=50))
    client = world.client(base_delay=5.0, max_delay=5.0, rng=lambda: 1.0)
    with pytest.raises(DeadlineExceededError):
        client.svm("svm1", deadline(3))
    assert world.sleeps == []  # a 5 s wait cannot fit into 3 s: raised at once for the state machine's Retry


def test_no_request_is_started_without_time_for_it(world: World) -> None:
    with pytest.raises(DeadlineExceededError):
        world.client().svm("svm1", deadline(0.1))
    assert world.server.requests == []


def test_connection_refused_is_transient() -> None:
    with mock_aws():
        secrets = boto3.client("secretsmanager", region_name="us-east-1")
        arn = secrets.create_secret(Name="x", SecretString=json.dumps({"username": "u", "password": "p"}))["ARN"]
        sleeps: list[float] = []
        client = OntapClient("127.0.0.1:9", SecretCredentials(secrets, arn), max_attempts=2, sleep=sleeps.append)
        with pytest.raises(ServiceUnavailableError):
            client.svm("svm1", deadline())
        assert len(sleeps) == 1


def test_after_restore_the_session_and_credentials_are_dropped(world: World) -> None:
    client = world.client()
    client.svm("svm1", deadline())
    assert client.credentials.cached
    assert client._pool.pools
    runtime.run_after_restore_hooks()
    assert not client.credentials.cached
    assert not client._pool.pools
    client.svm("svm1", deadline())
    assert client.credentials.fetches == 2


def test_a_next_link_to_another_host_is_refused(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    client = world.client()
    pages = iter([{"records": [{"name": "a"}], "_links": {"next": {"href": "https://evil.example/api/svm/svms"}}}])
    monkeypatch.setattr(client, "request", lambda *a, **k: next(pages))
    with pytest.raises(ServiceUnavailableError, match="not a path on this ONTAP endpoint"):
        list(client.records(ontap.SVMS, deadline()))


def test_a_repeating_next_link_is_refused(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    client = world.client()
    page = {"records": [{"name": "a"}], "_links": {"next": {"href": "/api/svm/svms?start.index=1"}}}
    monkeypatch.setattr(client, "request", lambda *a, **k: page)
    monkeypatch.setattr(client, "_get", lambda *a, **k: page)
    with pytest.raises(ServiceUnavailableError, match="repeats"):
        list(client.records(ontap.SVMS, deadline()))


def test_unknown_svm_and_volume_are_not_found(world: World) -> None:
    client = world.client()
    with pytest.raises(NotFoundError):
        client.svm("nope", deadline())
    with pytest.raises(NotFoundError):
        client.volume(SVM["uuid"], "nope", deadline())


def test_encode_path_and_file_path() -> None:
    assert encode_path("/a b/c") == "%2Fa%20b%2Fc"
    assert file_path("/legal", "x/y.txt") == "/legal/x/y.txt"
    assert file_path("/", "x") == "/x"
    with pytest.raises(InvalidInputError):
        encode_path("")
    with pytest.raises(InvalidInputError):
        encode_path("a\x00b")


def test_settings_from_the_payload_and_one_client_per_setting(world: World) -> None:
    payload = {
        "endpoint": world.server.host,
        "secret_arn": world.secret_arn,
        "ca_bundle": world.server.ca_file,
        "verify_tls": True,
        "read_timeout_seconds": 7,
        "svm_name": "svm1",
        "volume_name": "vol1",
    }
    settings = ontap.OntapSettings.parse(payload)
    clients = ontap.OntapClients(world.secrets)
    client = clients.get(settings)
    assert client is clients.get(ontap.OntapSettings.parse(dict(payload)))  # reused per environment
    assert client.read_timeout == 7
    assert client.verify
    assert client.svm("svm1", deadline())["name"] == "svm1"
    assert clients.get(ontap.OntapSettings.parse({**payload, "read_timeout_seconds": 9})) is not client


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("endpoint", "https://host/path"),
        ("secret_arn", "not-an-arn"),
        ("ca_bundle", "relative.pem"),
        ("verify_tls", "false"),
        ("read_timeout_seconds", 0),
        ("svm_name", "bad name"),
    ],
)
def test_invalid_settings_name_the_field(field: str, value: object) -> None:
    payload = {
        "endpoint": "127.0.0.1:443",
        "secret_arn": "arn:aws:secretsmanager:us-east-1:123456789012:secret:x",
        field: value,
    }
    with pytest.raises(InvalidInputError) as raised:
        ontap.OntapSettings.parse(payload)
    assert raised.value.details["field"] == f"ontap.{field}"
