"""A minimal Lambda function host: the local stand-in for the python3.13 runtime under SnapStart.

Run as ``python -m tests.snapstart.host --code-dir DIR --handler handler.handler --event FILE
--control DIR [--snapshot] [--invocations N] [--rehooked-invocations N]``, with the function's
environment variables set.

Phases, reported through JSON files in the control directory (written atomically):

1. init: imports the handler module from ``--code-dir`` as Lambda does (``local.handlers``: the
   directory first on ``sys.path``, and left there), timing it, and records what init left behind
   (``init.json``): simple module globals, files created in ``TMPDIR``, the botocore clients at module scope.
2. with ``--snapshot``: runs the before-snapshot hooks the way the Lambda runtime does (from
   ``snapshot_restore_py``'s registry, last registered first), writes ``ready.json`` and polls
   for the file ``go``. The harness checkpoints the process with CRIU at that point and later
   restores it; the poll loop is where each restored copy resumes. Then runs the after-restore
   hooks in registration order.
3. invocations: calls the handler ``--invocations`` times with the event and a fresh context,
   then ``--rehooked-invocations`` times, each after running the after-restore hooks again, and
   writes ``result.json`` (timings, results, and the uniqueness probes: random bits, a
   ``tempfile`` name, a uuid4, each client's open pools).

The host imports nothing from ``shared`` itself, so a handler that never registers hooks is
really left without them (the tests need that to show the checks fail). Its stdin, stdout and
stderr must not be pipes to a process outside the dumped tree; the harness points them at
/dev/null and the host writes everything it reports to files it closes at once.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from local.handlers import load_handler
from tests.support.lambda_context import FakeLambdaContext

GO_POLL_SECONDS = 0.001
_SIMPLE = (str, bytes, int, float, bool, type(None))


def write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, default=repr, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


def _simple_value(value: Any, depth: int = 0) -> bool:
    if isinstance(value, _SIMPLE):
        return True
    if depth < 2 and isinstance(value, list | tuple | frozenset | set):
        return all(_simple_value(v, depth + 1) for v in value)
    if depth < 2 and isinstance(value, dict):
        return all(_simple_value(k, depth + 1) and _simple_value(v, depth + 1) for k, v in value.items())
    return False


def simple_globals(module: Any) -> dict[str, str]:
    """repr of the module's plain-data globals: what a second cold init must reproduce exactly."""
    out: dict[str, str] = {}
    for name, value in vars(module).items():
        if name.startswith("__") or not _simple_value(value):
            continue
        out[name] = repr(sorted(value, key=repr) if isinstance(value, set | frozenset) else value)[:300]
    return out


def _is_botocore_client(value: Any) -> bool:
    botocore_client = sys.modules.get("botocore.client")  # no botocore imported: no clients
    return botocore_client is not None and isinstance(value, botocore_client.BaseClient)


def client_report(module: Any) -> list[dict[str, Any]]:
    """Every botocore client at the handler's module scope: registered with shared.runtime? pools?"""
    runtime = sys.modules.get("shared.runtime")
    registered = list(getattr(runtime, "_clients", ())) if runtime else []
    report = []
    for name, value in sorted(vars(module).items()):
        if _is_botocore_client(value):
            manager = value._endpoint.http_session._manager
            report.append(
                {
                    "name": name,
                    "service": value.meta.service_model.service_name,
                    "registered": any(value is c for c in registered),
                    "open_pools": len(manager.pools),
                }
            )
    return report


def ontap_report(module: Any) -> list[dict[str, Any]]:
    """Every ONTAP client a module-scope ``shared.ontap.OntapClients`` holds: pooled connections
    and whether credentials are cached (both must be gone after the after-restore hooks)."""
    report = []
    for name, value in sorted(vars(module).items()):
        if type(value).__name__ != "OntapClients" or type(value).__module__ != "shared.ontap":
            continue
        for client in list(value._clients.values()):
            report.append(
                {
                    "name": name,
                    "host": client.host,
                    "open_pools": len(client._pool.pools),
                    "credentials_cached": client.credentials.cached,
                }
            )
    return report


def _hooks() -> tuple[list[Any], list[Any]]:
    import snapshot_restore_py

    return snapshot_restore_py.get_before_snapshot(), snapshot_restore_py.get_after_restore()


def run_before_snapshot() -> int:
    before, _ = _hooks()
    count = 0
    while before:  # the Lambda runtime pops: last registered runs first, each runs once
        fn, args, kwargs = before.pop()
        fn(*args, **kwargs)
        count += 1
    return count


def run_after_restore() -> int:
    _, after = _hooks()
    for fn, args, kwargs in list(after):
        fn(*args, **kwargs)
    return len(after)


def _detach_output() -> None:
    """Point stdout/stderr at /dev/null: a log file that grows after the dump fails the restore."""
    sys.stdout.flush()
    sys.stderr.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)


def _tmp_files() -> set[str]:
    tmpdir = Path(tempfile.gettempdir())
    return {str(p.relative_to(tmpdir)) for p in tmpdir.rglob("*")}


def _invoke(fn: Callable[..., Any], event: Any, index: int) -> dict[str, Any]:
    context = FakeLambdaContext(remaining_ms=300_000, aws_request_id=str(uuid.uuid4()))
    started = time.perf_counter()
    try:
        result = fn(event, context)
        outcome: dict[str, Any] = {"ok": True, "result": result}
    except Exception as error:  # reported to the harness, which fails the test
        outcome = {"ok": False, "error_type": type(error).__name__, "error": str(error)}
        outcome["traceback"] = traceback.format_exc(limit=8)
    outcome["ms"] = (time.perf_counter() - started) * 1000
    outcome["index"] = index
    outcome["finished_at"] = time.time()
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code-dir", type=Path, required=True)
    parser.add_argument("--handler", required=True, help="module.function, as in the template's Handler")
    parser.add_argument("--event", type=Path, required=True)
    parser.add_argument("--control", type=Path, required=True)
    parser.add_argument("--snapshot", action="store_true", help="stop for a checkpoint after init")
    parser.add_argument("--invocations", type=int, default=1)
    parser.add_argument(
        "--rehooked-invocations",
        type=int,
        default=0,
        help="then this many invocations, each after the after-restore hooks (a warm process that "
        "pays what a restore pays: new connections, refreshed caches)",
    )
    args = parser.parse_args(argv)
    control: Path = args.control
    event = json.loads(args.event.read_text(encoding="utf-8"))

    files_before = _tmp_files()
    init_started = time.perf_counter()
    module, handler = load_handler(args.code_dir, args.handler, isolated=False)
    init_ms = (time.perf_counter() - init_started) * 1000
    init_report = {
        "pid": os.getpid(),
        "init_ms": init_ms,
        "globals": simple_globals(module),
        "files_created_at_init": sorted(_tmp_files() - files_before),
        "clients": client_report(module),
    }
    restored = False
    after_restore_ms = 0.0
    if args.snapshot:
        hooks_started = time.perf_counter()
        init_report["before_snapshot_hooks"] = run_before_snapshot()
        init_report["before_snapshot_ms"] = (time.perf_counter() - hooks_started) * 1000
        init_report["clients_at_snapshot"] = client_report(module)
        write_json(control / "init.json", init_report)
        _detach_output()
        write_json(control / "ready.json", {"pid": os.getpid()})
        go = control / "go"
        while not go.exists():
            time.sleep(GO_POLL_SECONDS)
        resumed_at = time.time()
        restored = True
        hooks_started = time.perf_counter()
        after_restore_count = run_after_restore()
        after_restore_ms = (time.perf_counter() - hooks_started) * 1000
    else:
        write_json(control / "init.json", init_report)
        resumed_at = time.time()
        after_restore_count = 0

    with tempfile.NamedTemporaryFile(prefix="probe-") as probe:
        temp_name = os.path.basename(probe.name)
    result: dict[str, Any] = {
        "restored": restored,
        "resumed_at": resumed_at,
        "monotonic_at_resume": time.monotonic(),
        "after_restore_hooks": after_restore_count,
        "after_restore_ms": after_restore_ms,
        "random_bits": random.getrandbits(128),
        "temp_name": temp_name,
        "uuid4": str(uuid.uuid4()),
        "clients_after_restore": client_report(module),
        "invocations": [],
    }
    for index in range(args.invocations):
        result["invocations"].append(_invoke(handler, event, index))
    result["rehooked_invocations"] = []
    result["ontap_before_rehook"] = ontap_report(module)
    result["ontap_after_rehook"] = []
    for index in range(args.rehooked_invocations):
        run_after_restore()
        if index == 0:
            result["ontap_after_rehook"] = ontap_report(module)
        result["rehooked_invocations"].append(_invoke(handler, event, args.invocations + index))
    result["clients_after_invocations"] = client_report(module)
    write_json(control / "result.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
