"""SnapStart benchmark: cold start vs restore from a checkpoint, for every handler of every use case.

    .venv/bin/python -m benchmarks.snapstart_bench [--runs N] [--warm W] [--no-restore] [--json]
        [--function USE-CASE/NAME]...

For each function of every use case (discovered from the templates, in pipeline order; the CRIU
tier covers them all), in the emulated account of
``tests/snapstart/world.py`` (moto behind an HTTPS proxy; the handlers open real TLS connections):

* N fresh python3.13 processes, each: init (the handler module's import), the first invocation
  after init, then W warm invocations, then W warm invocations each preceded by the after-restore
  hooks (so each opens new connections, as a restored environment must). Reported: medians over
  the N processes of the init time, the first invocation, the warm invocation and the warm
  invocation with new connections (each process's median), and the cold start to first response
  (process start to the end of the first invocation, interpreter start-up included).
* One checkpoint (CRIU) after init and the before-snapshot hooks, restored N times, each restore
  in its own PID namespace: the medians of restore to first response (from starting ``unshare
  ... criu restore`` to the end of the first invocation: namespace and CRIU start-up, the
  restore, the after-restore hooks, the invocation) and of the first invocation after the
  restore alone. Compare it with "warm, new connections": the difference is lazy work that init
  did not prime. "cold / restore" is the cold start to first response over the restore to first
  response, both medians of this run.

Needs ``scripts/setup.sh``; the restore columns need root and ``scripts/build-criu.sh`` (without
them they show n/a and the reason is printed). This is a measurement, not a test: it prints a
table, and exits 1 if a handler fails (that function gets no row; the error is printed).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.snapstart.checks import failed_invocations
from tests.snapstart.criu import CRIU, CriuError, Snapshot, cold_run, require_criu
from tests.snapstart.world import emulated_world, function_label, real_functions

COLUMNS = (
    ("function", "{}"),
    ("init ms", "{:.0f}"),
    ("first invoke ms", "{:.1f}"),
    ("warm invoke ms", "{:.1f}"),
    ("warm, new connections ms", "{:.1f}"),
    ("cold start to 1st response ms", "{:.0f}"),
    ("restore to 1st response ms", "{:.0f}"),
    ("1st invoke after restore ms", "{:.1f}"),
    ("cold / restore", "{:.1f}x"),
)


def machine() -> dict[str, Any]:
    cpu = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    criu_version = "not installed"
    if os.access(CRIU, os.X_OK):
        out = subprocess.run([str(CRIU), "--version"], capture_output=True, text=True, check=False).stdout
        criu_version = next(
            (line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Version")), "?"
        )
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": round(memory_gib, 1),
        "kernel": platform.release(),
        "os": _os_name(),
        "python": platform.python_version(),
        "criu": criu_version,
    }


def _os_name() -> str:
    release = Path("/etc/os-release")
    if release.exists():
        for line in release.read_text(encoding="utf-8").splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    return platform.system()


class HandlerFailedError(Exception):
    """An invocation failed: the function gets no numbers."""


def _fail_on(result: dict[str, Any], label: str) -> None:
    problems = failed_invocations(result)
    if problems:
        raise HandlerFailedError(f"{label}: " + "\n".join(problems))


def _measure_function(
    world: Any, use_case: Any, function: Any, *, runs: int, warm: int, restores: bool, workdir: Path
) -> dict[str, Any]:
    label = function_label(use_case, function)
    world.prepare(use_case, function, workdir)
    spec = world.spec(use_case, function)
    inits, firsts, warms, rehooked, colds = [], [], [], [], []
    for index in range(runs):
        run = cold_run(spec, workdir / f"cold-{index}", invocations=1 + warm, rehooked=warm)
        _fail_on(run.result, label)
        invocations = run.result["invocations"]
        inits.append(run.init["init_ms"])
        firsts.append(invocations[0]["ms"])
        warms.append(statistics.median(i["ms"] for i in invocations[1:]))
        rehooked.append(statistics.median(i["ms"] for i in run.result["rehooked_invocations"]))
        colds.append(run.first_response_ms)
    world.ran.add(label)
    row: dict[str, Any] = {
        "function": label,
        "init ms": statistics.median(inits),
        "first invoke ms": statistics.median(firsts),
        "warm invoke ms": statistics.median(warms),
        "warm, new connections ms": statistics.median(rehooked),
        "cold start to 1st response ms": statistics.median(colds),
        "restore to 1st response ms": None,
        "1st invoke after restore ms": None,
        "cold / restore": None,
    }
    if restores:
        snapshot = Snapshot(spec, workdir / "snapshot")
        snapshot.take()
        restored = [snapshot.restore() for _ in range(runs)]
        for restore in restored:
            _fail_on(restore.result, label)
        row["restore to 1st response ms"] = statistics.median(r.first_response_ms for r in restored)
        row["1st invoke after restore ms"] = statistics.median(r.invocations[0]["ms"] for r in restored)
        # Both medians from this run, on the same machine under the same load.
        row["cold / restore"] = row["cold start to 1st response ms"] / row["restore to 1st response ms"]
    return row


def measure(
    runs: int, warm: int, restores: bool, workdir: Path, only: tuple[str, ...] = ()
) -> tuple[list[dict[str, Any]], list[str], str | None]:
    """Rows of numbers, the failures (a failing function gets no row), why restores were skipped.
    ``only``: measure just these ``<use case>/<function>`` labels (the earlier functions of their
    use case still run once, cold, to write their inputs)."""
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    restore_skipped: str | None = None
    if restores:
        try:
            require_criu()
        except CriuError as error:
            restore_skipped = str(error)
    with emulated_world(workdir / "emulation") as world:
        for use_case, function in real_functions():
            label = function_label(use_case, function)
            if only and label not in only:
                continue
            print(f"measuring {label} ...", file=sys.stderr, flush=True)
            try:
                rows.append(
                    _measure_function(
                        world,
                        use_case,
                        function,
                        runs=runs,
                        warm=warm,
                        restores=restores and restore_skipped is None,
                        workdir=workdir / label,
                    )
                )
            except (HandlerFailedError, RuntimeError, CriuError) as error:
                failures.append(str(error))
    return rows, failures, restore_skipped


def table(rows: list[dict[str, Any]]) -> str:
    cells = [[name for name, _ in COLUMNS]]
    for row in rows:
        cells.append([fmt.format(row[name]) if row[name] is not None else "n/a" for name, fmt in COLUMNS])
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    lines = ["| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)) + " |" for line in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes and restores per function (median)")
    parser.add_argument("--warm", type=int, default=5, help="warm invocations per process")
    parser.add_argument("--no-restore", action="store_true", help="skip the CRIU columns")
    parser.add_argument("--json", action="store_true", help="print JSON instead of the table")
    parser.add_argument("--out", type=Path, help="also write the JSON, with the date, to this file")
    parser.add_argument(
        "--function",
        action="append",
        default=[],
        metavar="USE-CASE/NAME",
        help="measure only this function, e.g. autonomous-driving/frame_extraction (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warm < 1:
        parser.error("--runs and --warm must be at least 1")
    known = {function_label(uc, fn) for uc, fn in real_functions()}
    unknown = sorted(set(args.function) - known)
    if unknown:
        parser.error(f"unknown --function {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    with tempfile.TemporaryDirectory(prefix="snapstart-bench-") as tmp:
        rows, failures, restore_skipped = measure(
            args.runs, args.warm, not args.no_restore, Path(tmp), tuple(args.function)
        )
    info = machine()
    report: dict[str, Any] = {
        "runs": args.runs,
        "warm": args.warm,
        "restores": not args.no_restore and restore_skipped is None,
        "restore_skipped": "--no-restore" if args.no_restore else restore_skipped,
        "rows": rows,
    }
    if args.out and not failures:
        from benchmarks.common import write_result  # common imports this module: not at the top

        write_result("handlers", report, args.out)
    if args.json:
        print(json.dumps({"machine": info, **report, "failures": failures}, indent=2))
        return 1 if failures else 0
    print(table(rows))
    print()
    print(
        f"Machine: {info['cpu']}, {info['cpus']} CPUs, {info['memory_gib']} GiB, {info['os']}, kernel "
        f"{info['kernel']}, Python {info['python']}, CRIU {info['criu']}. Medians of {args.runs} processes "
        f"(restores) per function, {args.warm} warm invocations each."
    )
    if restore_skipped:
        print(f"Restore columns not measured: {restore_skipped}")
    for failure in failures:
        print(f"\nNOT MEASURED (the handler failed): {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
