"""Every real handler of every use case, checkpointed after init and restored twice (CRIU).

The handlers run in the emulated account of ``tests/snapstart/world.py`` (moto behind an HTTPS
proxy): they keep their ordinary clients and open real TLS connections, so a pool left open at
the checkpoint makes the dump fail, and each restored environment must connect again.

Per function: two cold inits must leave identical module globals and no temp files (nothing
unique is made at init); every module-scope client is registered; after the before-snapshot
hooks no pool is open; both restores run the after-restore hooks and an invocation with the
function's canonical event that succeeds, enter it with no pool carried over, and draw
different random numbers, temp names and uuids.

One test per use case walks its functions in pipeline order (a function's event relies on what
the ones before it wrote) and reports every function's problems together. Templates are decoded
inside the test, not at collection, so the default (non-CRIU) test run never depends on them.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.snapstart.checks import (
    failed_invocations,
    left_open_at_snapshot,
    ontap_kept_after_restore,
    pools_kept_after_restore,
    repeated_across_restores,
    unregistered_clients,
    varying_init_globals,
)
from tests.snapstart.criu import REPO_ROOT, CriuError, Snapshot, cold_run
from tests.snapstart.tracing import start_types, traced
from tests.support.xray import XrayDaemon, xray_daemon

pytestmark = pytest.mark.criu

# Every use case: each folder with a template.
USE_CASE_DIRS = sorted(path.parent.name for path in REPO_ROOT.glob("*/template-deploy.yaml"))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.snapstart.world import emulated_world

    with emulated_world(tmp_path_factory.mktemp("emulation")) as emulated:
        yield emulated


def snapshot_problems(  # noqa: PLR0917 - one call site
    world: Any, use_case: Any, function: Any, workdir: Path, daemon: XrayDaemon, traces: dict[str, str]
) -> list[str]:
    """What is wrong with the function's checkpoint and restores. Once both restores ran, the
    trace id their invocations carry goes into ``traces`` (checked by
    ``restore_annotation_problems`` when the use case has run: the daemon is read once)."""
    from tests.snapstart.world import function_label

    spec = world.spec(use_case, function)
    problems: list[str] = []
    # The two cold inits are independent processes: one per core.
    with ThreadPoolExecutor(max_workers=2) as pool:
        first_cold, second_cold = pool.map(
            lambda name: cold_run(spec, workdir / name, invocations=0), ("cold-a", "cold-b")
        )
    problems += [
        f"init sets {name} differently in every process"
        for name in varying_init_globals(first_cold.init, second_cold.init)
    ]
    problems += [f"init creates temp file {name}" for name in first_cold.init["files_created_at_init"]]
    problems += [f"client {name} is not registered" for name in unregistered_clients(first_cold.init)]

    # One invocation more after the hooks run again: by then the handler holds ONTAP clients with
    # connections and credentials, which the hooks must drop (ontap_kept_after_restore).
    # Traced into the loopback X-Ray daemon (restore_annotation_problems).
    traced_spec, trace_id = traced(spec, daemon)
    snapshot = Snapshot(traced_spec, workdir / "snapshot", rehooked=1)
    try:
        init = snapshot.take()
    except CriuError as error:
        return [*problems, str(error)]
    problems += [f"client {name} has open connections at the snapshot" for name in left_open_at_snapshot(init)]
    first, second = snapshot.restore(), snapshot.restore()
    traces[function.logical_id] = trace_id
    for number, restore in enumerate((first, second), start=1):
        problems += [f"restore {number}: {failure}" for failure in failed_invocations(restore.result)]
        problems += [f"restore {number}: {name} kept its pool" for name in pools_kept_after_restore(restore.result)]
        problems += [f"restore {number}: ONTAP client {what}" for what in ontap_kept_after_restore(restore.result)]
        if restore.result["after_restore_hooks"] == 0:
            problems.append(f"restore {number}: no after-restore hook registered")
    problems += [
        f"both restores produced the same {what}" for what in repeated_across_restores(first.result, second.result)
    ]
    world.restored[function_label(use_case, function)] = first.result
    return problems


def restore_annotation_problems(documents: list[dict[str, Any]], trace_id: str) -> list[str]:
    """Each invocation after a restore's hooks (per restore: its invocation, then one after the
    hooks ran again) must be annotated start_type "restore" (shared.observability), as the
    restored process sent it to the X-Ray daemon."""
    annotated = start_types(documents, trace_id)
    if annotated == ["restore"] * 4:
        return []
    return [f"the restored invocations were annotated start_type {annotated}, not restore x 4"]


def test_there_are_use_cases() -> None:
    assert USE_CASE_DIRS, "no */template-deploy.yaml found"


@pytest.mark.parametrize("use_case_dir", USE_CASE_DIRS)
def test_every_handler_is_snapshot_safe(world: Any, use_case_dir: str, tmp_path: Path) -> None:
    from local.usecases import load_use_case
    from tests.snapstart.world import function_label

    use_case = load_use_case(REPO_ROOT / use_case_dir)
    assert use_case.functions, f"{use_case_dir}: no AWS::Lambda::Function in the template"
    report: dict[str, list[str]] = {}
    traces: dict[str, str] = {}
    with xray_daemon() as daemon:
        for function in use_case.functions:
            workdir = tmp_path / function.logical_id
            try:
                world.prepare(use_case, function, workdir)
            except RuntimeError as error:  # an earlier function fails with its canonical event
                report[function.logical_id] = [f"cannot prepare its inputs: {error}"]
                continue
            report[function.logical_id] = snapshot_problems(world, use_case, function, workdir, daemon, traces)
            if not report[function.logical_id]:  # else the next function's preparation runs it again
                world.ran.add(function_label(use_case, function))
        documents = daemon.documents()
    for logical_id, trace_id in traces.items():  # the functions whose restores ran
        report[logical_id] += restore_annotation_problems(documents, trace_id)
    assert {name: problems for name, problems in report.items() if problems} == {}
    assert list(report) == [f.logical_id for f in use_case.functions]


# UC1's functions that call the ONTAP REST API (their events carry the ONTAP settings).
ONTAP_FUNCTIONS = ("discovery", "acl_collection")


@pytest.mark.parametrize("name", ONTAP_FUNCTIONS)
def test_uc1_restore_drops_the_ontap_session_and_cached_credentials(world: Any, name: str, tmp_path: Path) -> None:
    """A restored UC1 function held an ONTAP session and the user's credentials before the
    after-restore hooks ran again (so the check below is not vacuous), and none after them: a
    restored environment connects and fetches the secret anew, and still succeeds."""
    from local.usecases import load_use_case
    from tests.snapstart.world import function_label

    use_case = load_use_case(REPO_ROOT / "legal-compliance")
    [function] = [fn for fn in use_case.functions if fn.name == name]
    # The restore test_every_handler_is_snapshot_safe took of this function (one checkpoint per
    # function), or one of its own when this test runs alone.
    result = world.restored.get(function_label(use_case, function))
    if result is None:
        world.prepare(use_case, function, tmp_path)
        snapshot = Snapshot(world.spec(use_case, function), tmp_path / "snapshot", rehooked=1)
        snapshot.take()
        result = snapshot.restore().result
    assert failed_invocations(result) == []
    before = result["ontap_before_rehook"]
    assert before, "the handler holds no ONTAP client after an invocation"
    assert all(c["open_pools"] and c["credentials_cached"] for c in before), before
    assert result["ontap_after_rehook"], "the ONTAP client is gone, not reset"
    assert ontap_kept_after_restore(result) == []
