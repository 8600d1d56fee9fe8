"""shared.runtime: SnapStart hook order, uniqueness after restore, pools, caches, priming."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import snapshot_restore_py
from botocore.config import Config
from botocore.exceptions import ParamValidationError

from shared import runtime
from tests.snapstart.loopback import Recorder, loopback_aws

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def hook_registry() -> Iterator[None]:
    """The registries are process-wide; give each test the state it started with."""
    before = list(snapshot_restore_py.get_before_snapshot())
    after = list(snapshot_restore_py.get_after_restore())
    yield
    snapshot_restore_py.get_before_snapshot()[:] = before
    snapshot_restore_py.get_after_restore()[:] = after


@pytest.fixture
def server() -> Iterator[tuple[str, Recorder]]:
    with loopback_aws() as endpoint_and_recorder:
        yield endpoint_and_recorder


def _s3(endpoint: str) -> Any:
    return boto3.client(
        "s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1})
    )


def test_hooks_run_in_lambda_runtime_order_and_before_snapshot_runs_once() -> None:
    calls: list[str] = []

    @runtime.before_snapshot
    def first_before() -> None:
        calls.append("before-1")

    @runtime.before_snapshot
    def second_before() -> None:
        calls.append("before-2")

    @runtime.after_restore
    def first_after() -> None:
        calls.append("after-1")

    @runtime.after_restore
    def second_after() -> None:
        calls.append("after-2")

    runtime.run_before_snapshot_hooks()
    runtime.run_before_snapshot_hooks()
    runtime.run_after_restore_hooks()
    runtime.run_after_restore_hooks()

    assert calls == ["before-2", "before-1", "after-1", "after-2", "after-1", "after-2"]
    assert first_before.__name__ == "first_before"  # the decorators return the function itself


def test_two_restores_of_one_snapshot_draw_different_random_numbers() -> None:
    random.seed(1234)
    snapshot = random.getstate()

    runtime.run_after_restore_hooks()
    first = [random.random() for _ in range(4)]
    random.setstate(snapshot)
    runtime.run_after_restore_hooks()
    second = [random.random() for _ in range(4)]

    random.setstate(snapshot)
    without_hooks = [random.random() for _ in range(4)]
    random.setstate(snapshot)
    assert [random.random() for _ in range(4)] == without_hooks  # the restore really repeats state
    assert first != second


def test_two_restores_of_one_snapshot_generate_different_temp_names(tmp_path: Any) -> None:
    # A restore keeps the PID, so tempfile would replay the snapshot's name sequence; simulate two
    # restores by putting the snapshot's sequence back before each.
    with tempfile.NamedTemporaryFile(dir=tmp_path):
        pass  # creates tempfile's name sequence at "init"
    snapshot = tempfile._name_sequence  # type: ignore[attr-defined]
    snapshot_state = snapshot.rng.getstate()

    names: list[str] = []
    for _ in range(2):
        snapshot.rng.setstate(snapshot_state)
        tempfile._name_sequence = snapshot  # type: ignore[attr-defined]
        runtime.run_after_restore_hooks()
        with tempfile.NamedTemporaryFile(dir=tmp_path) as handle:
            names.append(handle.name)

    snapshot.rng.setstate(snapshot_state)
    tempfile._name_sequence = snapshot  # type: ignore[attr-defined]
    with tempfile.NamedTemporaryFile(dir=tmp_path) as replayed:
        pass
    snapshot.rng.setstate(snapshot_state)
    with tempfile.NamedTemporaryFile(dir=tmp_path) as replayed_again:
        pass
    assert replayed.name == replayed_again.name  # without the hook the name repeats
    assert names[0] != names[1]


def test_registered_client_closes_its_pool_before_snapshot_and_reconnects(
    server: tuple[str, Recorder],
) -> None:
    endpoint, recorder = server
    s3 = runtime.register_client(_s3(endpoint))

    s3.list_objects_v2(Bucket="fixture")
    s3.list_objects_v2(Bucket="fixture")
    assert len(recorder.connections()) == 1  # keep-alive: both calls on one connection
    pool_manager = s3._endpoint.http_session._manager
    assert len(pool_manager.pools) == 1

    runtime.run_before_snapshot_hooks()
    assert len(pool_manager.pools) == 0  # nothing left open for the checkpoint

    s3.list_objects_v2(Bucket="fixture")
    assert len(recorder.requests) == 3
    assert len(recorder.connections()) == 2  # the client still works, on a new connection


def test_registered_client_drops_its_pool_after_each_restore(server: tuple[str, Recorder]) -> None:
    endpoint, recorder = server
    s3 = runtime.register_client(_s3(endpoint))
    s3.list_objects_v2(Bucket="fixture")

    for expected_connections in (2, 3):
        runtime.run_after_restore_hooks()
        s3.list_objects_v2(Bucket="fixture")
        assert len(recorder.connections()) == expected_connections


def test_unregistered_client_keeps_its_pool(server: tuple[str, Recorder]) -> None:
    # Known-bad input for the two tests above: without register_client nothing is closed.
    endpoint, recorder = server
    s3 = _s3(endpoint)
    s3.list_objects_v2(Bucket="fixture")
    runtime.run_before_snapshot_hooks()
    runtime.run_after_restore_hooks()
    s3.list_objects_v2(Bucket="fixture")
    assert len(recorder.connections()) == 1


def test_ttl_cache_loads_once_until_expiry_by_wall_clock() -> None:
    now = [1000.0]
    loads: list[str] = []
    cache: runtime.TtlCache[str, str] = runtime.TtlCache(60, clock=lambda: now[0])

    def load() -> str:
        loads.append("x")
        return f"secret-{len(loads)}"

    assert cache.get("k", load) == "secret-1"
    now[0] += 59
    assert cache.get("k", load) == "secret-1"
    now[0] += 2
    assert cache.get("k", load) == "secret-2"
    assert len(loads) == 2


def test_ttl_cache_is_emptied_after_each_restore() -> None:
    cache: runtime.TtlCache[str, int] = runtime.TtlCache(3600)
    counter = iter(range(100))
    assert cache.get("token", lambda: next(counter)) == 0
    assert cache.get("token", lambda: next(counter)) == 0

    runtime.run_after_restore_hooks()
    assert len(cache) == 0
    assert cache.get("token", lambda: next(counter)) == 1


def test_register_cache_clears_any_clearable_after_restore() -> None:
    memo: dict[str, int] = runtime.register_cache({"a": 1})
    runtime.run_after_restore_hooks()
    assert memo == {}


def test_ttl_cache_rejects_a_non_positive_ttl() -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        runtime.TtlCache(0)


def test_prime_runs_warmups_in_order_and_propagates_failure() -> None:
    calls: list[int] = []
    runtime.prime(lambda: calls.append(1), lambda: calls.append(2))
    assert calls == [1, 2]

    def broken() -> None:
        raise RuntimeError("init is broken")

    with pytest.raises(RuntimeError, match="init is broken"):
        runtime.prime(broken)


@pytest.mark.parametrize(
    ("service", "operation", "params"),
    [
        ("s3", "list_objects_v2", {"Bucket": "arn:aws:s3:us-east-1:123456789012:accesspoint/ap", "MaxKeys": 1}),
        ("s3", "get_object", {"Bucket": "arn:aws:s3:us-east-1:123456789012:accesspoint/ap", "Key": "a/b.gds"}),
        ("athena", "start_query_execution", {"QueryString": "SELECT 1"}),
        ("sns", "publish", {"TopicArn": "arn:aws:sns:us-east-1:123456789012:t", "Message": "m"}),
        ("bedrock-runtime", "converse", {"modelId": "m", "messages": []}),
        ("cloudwatch", "put_metric_data", {"Namespace": "n", "MetricData": []}),
    ],
)
def test_warm_client_runs_the_call_without_opening_a_connection(
    server: tuple[str, Recorder], service: str, operation: str, params: dict[str, Any]
) -> None:
    endpoint, recorder = server
    client = boto3.client(service, endpoint_url=endpoint)
    signed: list[str] = []
    client.meta.events.register("request-created", lambda request, **_: signed.append(request.url))

    runtime.warm_client(client, operation, **params)()

    assert len(signed) == 1  # serialized, endpoint resolved and signed
    assert len(recorder.requests) == 0
    assert len(client._endpoint.http_session._manager.pools) == 0


def test_warm_client_leaves_the_client_sending_for_real(server: tuple[str, Recorder]) -> None:
    endpoint, recorder = server
    s3 = _s3(endpoint)
    runtime.warm_client(s3, "list_objects_v2", Bucket="fixture")()
    assert s3.list_objects_v2(Bucket="fixture")["Name"] == "fixture"
    assert len(recorder.requests) == 1


def _load_recorder(client: Any) -> list[str]:
    """Records the botocore data files ``client`` loads from now on (each session has its own loader)."""
    loads: list[str] = []
    original = client._loader.load_service_model

    def recording(service: str, type_name: str, *args: Any, **kwargs: Any) -> Any:
        loads.append(type_name)
        return original(service, type_name, *args, **kwargs)

    client._loader.load_service_model = recording
    return loads


def test_warm_client_loads_the_paginator_model_of_a_paginated_operation() -> None:
    warmed = boto3.Session().client("s3")
    runtime.warm_client(warmed, "list_objects_v2", Bucket="arn:aws:s3:us-east-1:123456789012:accesspoint/ap")()
    warmed_loads = _load_recorder(warmed)
    warmed.get_paginator("list_objects_v2")
    assert warmed_loads == []

    cold = boto3.Session().client("s3")
    cold_loads = _load_recorder(cold)
    cold.get_paginator("list_objects_v2")
    assert "paginators-1" in cold_loads  # what a first invocation would load without the warm-up


def test_warm_client_surfaces_programming_errors_at_init() -> None:
    s3 = boto3.client("s3")
    with pytest.raises(AttributeError):
        runtime.warm_client(s3, "list_object_v3")
    with pytest.raises(ParamValidationError):
        runtime.warm_client(s3, "get_object", Bucket="fixture")()
