"""Real checkpoint/restore (CRIU) of a function host: two environments from one snapshot.

Opt-in tier: ``scripts/test-snapstart.sh`` (or ``scripts/test.sh --with-snapstart``) builds CRIU
and runs ``pytest -m criu``. Needs root.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.snapstart.checks import (
    failed_invocations,
    left_open_at_snapshot,
    pools_kept_after_restore,
    repeated_across_restores,
)
from tests.snapstart.criu import CriuError, FunctionSpec, Snapshot
from tests.snapstart.loopback import Recorder

pytestmark = pytest.mark.criu


def test_two_restores_of_a_good_handler_are_unique_and_reconnect(
    fixture_spec: Callable[[str], FunctionSpec], loopback: tuple[str, Recorder], tmp_path: Path
) -> None:
    _, recorder = loopback
    snapshot = Snapshot(fixture_spec("good"), tmp_path)
    init = snapshot.take()
    init_connections = recorder.connections()

    assert [c["open_pools"] for c in init["clients"]] == [1, 1]  # init left keep-alive connections
    assert left_open_at_snapshot(init) == []  # ...and the before-snapshot hook closed them
    first, second = snapshot.restore(), snapshot.restore()

    for restore in (first, second):
        assert restore.result["restored"]
        assert failed_invocations(restore.result) == []
        assert pools_kept_after_restore(restore.result) == []
    assert repeated_across_restores(first.result, second.result) == []
    # The secret cached at init (secret-1) was refreshed in each environment.
    secrets = [r.invocations[0]["result"]["secret"] for r in (first, second)]
    assert secrets == ["secret-2", "secret-3"]
    # Each environment talked to the endpoints over connections of its own.
    connections = recorder.connections()
    assert len(init_connections) == 2
    assert len(connections) == 6
    assert recorder.secrets_served == 3


def test_a_connection_left_open_by_init_makes_the_checkpoint_fail(
    fixture_spec: Callable[[str], FunctionSpec], tmp_path: Path
) -> None:
    with pytest.raises(CriuError, match="Connected TCP socket"):
        Snapshot(fixture_spec("leaky"), tmp_path).take()


def test_without_hooks_two_restores_repeat_random_and_temp_names(
    fixture_spec: Callable[[str], FunctionSpec], tmp_path: Path
) -> None:
    # Known-bad input for the uniqueness check above: it must report the repeats.
    snapshot = Snapshot(fixture_spec("unhooked"), tmp_path)
    snapshot.take()
    first, second = snapshot.restore(), snapshot.restore()

    assert repeated_across_restores(first.result, second.result) == [
        "host probe random_bits",
        "host probe temp_name",
        "handler result random_bits (invocation 0)",
        "handler result temp_name (invocation 0)",
    ]
