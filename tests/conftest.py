"""Fixtures shared by every test layer (see README "Testing" for the layers and markers)."""

from __future__ import annotations

import atexit
import functools
import gc
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from hypothesis import HealthCheck, settings
from moto import mock_aws
from moto.s3.models import s3_backends

from local.hard_exit import hard_exit_at_exit
from local.runner.dispatch import memoized_backend_urls, shared_error_lookups, shared_model_files
from tests.support.fakes import FailingClient, FakeDeadline
from tests.support.lambda_context import FakeLambdaContext
from tests.support.lint import Linter
from tests.support.templates import REPO_ROOT
from tests.support.uc06 import gdstk_library

# Tests never assert wall-clock times: no per-example deadline and no too-slow health check (a
# shared 2-core machine makes both fail at random); the example counts stay each test's own.
settings.register_profile("project", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("project")


# The collector. After collection a worker holds some 300,000 long-lived objects (moto's backends,
# botocore's models, cfn-lint's schemas, hypothesis' strategies), and more once module fixtures
# have run, which CPython 3.13's generational collector scans again on every full collection.
# Frozen, they are never scanned; cyclic garbage the tests make is still collected, in larger
# batches (the thresholds mypy sets for the same reason). Measured on the UC6 and UC9 workflow
# tests with test_s3ap in one process: 39.4 s -> 33.4 s. Unfrozen at exit, after pytest's own last collections (which
# then skip them), so the interpreter frees them as usual.
GC_THRESHOLDS = (200_000, 30, 30)


# The order modules are handed to workers. pytest-xdist's loadscope gives each worker the next
# module of its queue as it finishes one, so a long module handed out late runs on alone at the
# end; scripts/test.sh passes --no-loadscope-reorder, so the queue is this collection order (by
# default xdist sorts it by each module's number of tests). The layers that run scripts and whole
# pipelines (markers scripts, workflow) hold the longest modules (the AWS CLI packaging, the
# README commands: a minute each on 2 cores) and go first; the rest keep their order. Simulated
# on the per-test times of one run over 3 workers: the last worker ends at 221 s sorted by test
# count (220 s measured in that run), 203.6 s in this order, 202.6 s longest-first.
_LAYER_ORDER = ("scripts", "workflow")


def _layer_rank(item: pytest.Item) -> int:
    return next((rank for rank, name in enumerate(_LAYER_ORDER) if item.get_closest_marker(name)), len(_LAYER_ORDER))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=_layer_rank)  # stable: a module's tests stay together and in their order


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    atexit.register(gc.unfreeze)


# A pytest-xdist worker leaves without freeing what it holds: by its exit every report has gone to
# the controller, which waits for all workers to exit before it ends the run and reads no exit
# status of theirs. Freeing a worker's heap one object at a time kept the controller waiting:
# from the last worker's session end to the controller's, 7.2 s -> 2.7 s over a whole run. trylast:
# registered after every other plugin's unconfigure, so its callback is the first atexit runs.
@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):
        hard_exit_at_exit(0)


REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
PARTITION = "aws"

_FAKE_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    # Powertools: no X-Ray daemon here; metrics flushed to stdout as EMF.
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_NAMESPACE": "FsxnS3apPipelinesTest",
    "POWERTOOLS_SERVICE_NAME": "tests",
    "POWERTOOLS_DEV": "false",
}


@pytest.fixture(scope="session", autouse=True)
def shared_botocore_data() -> Iterator[None]:
    """botocore's parsed data files (service models, endpoint rules, partitions) once per process,
    as the local runner shares them during a run: moto drops boto3's default session on every
    ``mock_aws()`` and fixtures make a session per test, and each new session parsed them again
    (about a third of the CPU of a test making a few clients). Sessions keep their own
    credentials, config and hooks. moto's URL maps and error lookups are shared as the runner
    shares them too (local/runner/dispatch.py): no test changes moto's S3 endpoint settings."""
    with shared_model_files(), memoized_backend_urls(), shared_error_lookups():
        yield


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials and a fixed region; nothing in a test can reach a real AWS endpoint."""
    for name in list(os.environ):
        if name.startswith(("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    for name, value in _FAKE_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def aws() -> Iterator[boto3.Session]:
    """Every AWS call inside the test goes to moto's in-memory emulation."""
    with mock_aws():
        yield boto3.Session(region_name=REGION)


@dataclass(frozen=True)
class AccessPointFixture:
    bucket: str
    name: str
    arn: str
    alias: str
    s3: Any  # botocore S3 client

    def put(self, key: str, body: bytes = b"x") -> None:
        self.s3.put_object(Bucket=self.arn, Key=key, Body=body)

    def put_many(self, keys: Iterable[str], body: bytes = b"") -> None:
        """Store many objects behind the access point straight into moto's S3 backend.

        The same objects ``put`` would create (the access point's bucket is where they live), but
        without an HTTP round trip through botocore and moto's responses for each one: a test that
        needs thousands of objects to list pays for the listing it tests, not for the uploads.
        """
        backend = s3_backends[ACCOUNT][PARTITION]
        for key in keys:
            backend.put_object(self.bucket, key, body)


@pytest.fixture
def s3_access_point(aws: boto3.Session) -> AccessPointFixture:
    """A bucket behind an S3 access point, addressed by its ARN as the handlers address FSx for ONTAP."""
    s3 = aws.client("s3")
    s3control = aws.client("s3control")
    bucket = "fsxn-volume-backing-bucket"
    name = "fsxn-eda-ap"
    s3.create_bucket(Bucket=bucket)
    reply = s3control.create_access_point(AccountId=ACCOUNT, Name=name, Bucket=bucket)
    arn = f"arn:aws:s3:{REGION}:{ACCOUNT}:accesspoint/{name}"
    return AccessPointFixture(bucket=bucket, name=name, arn=arn, alias=reply["Alias"], s3=s3)


@pytest.fixture
def output_bucket(aws: boto3.Session) -> str:
    name = "pipeline-output-bucket"
    aws.client("s3").create_bucket(Bucket=name)
    return name


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture(scope="session")
def cfn_lint() -> Linter:
    """cfn-lint's matches per template file, computed once per test process and a clean result
    kept across runs under .build/cache/cfn-lint/ (tests/support/lint.py)."""
    return Linter(REPO_ROOT / ".build" / "cache" / "cfn-lint")


@pytest.fixture
def fake_deadline() -> type[FakeDeadline]:
    return FakeDeadline


@pytest.fixture
def failing_client() -> type[FailingClient]:
    return FailingClient


@pytest.fixture
def gdstk_files(tmp_path: Path) -> Callable[..., dict[str, bytes]]:
    """``gdstk_files(name="LIB")``: UC6's small gdstk library as GDSII and OASIS bytes."""
    return functools.partial(gdstk_library, tmp_path)
