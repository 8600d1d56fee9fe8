"""Pipelines benchmark: local wall time of each use case's whole pipeline, at two object counts.

    .venv/bin/python -m benchmarks.pipelines_bench [--quick] [--sizes N,N] [--uc NAME] [--out PATH]

Each use case runs through the local runner (``local.runner``, what ``python -m local`` runs),
once per object count, in this process one after another: the wall time from start to the
result, and the runner's own phases (sample data, emulated stack, execution, outputs), with the
objects per second of the execution phase. Default sizes: the runner's default (40 objects) and
10,000; ``--quick``: 40 and 400. Retry waits pass in emulated time (``retry_time_scale=0``).
A measurement, not a test: it exits 1 if a run fails or loses an object.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from benchmarks.common import write_result
from benchmarks.pipeline_runs import measured_run, run_command, text_table
from local.runner.run import DEFAULT_OBJECTS

DEFAULT_SIZES = (DEFAULT_OBJECTS, 10_000)
QUICK_SIZES = (DEFAULT_OBJECTS, 400)


def measure_use_case(use_case_dir: Path, sizes: tuple[int, ...]) -> dict[str, Any]:
    runs = []
    for objects in sizes:
        print(f"running {use_case_dir.name} with {objects:,} objects ...", file=sys.stderr, flush=True)
        run = measured_run(use_case_dir, objects)
        execution_s = run.timings.get("execution_s")
        runs.append(
            {
                "objects": objects,
                "wall_s": round(run.wall_s, 2),
                "phases_s": run.timings,
                "states_executed": run.states_executed,
                "objects_per_execution_s": round(objects / execution_s, 1) if execution_s else None,
            }
        )
    return {"use_case": use_case_dir.name, "runs": runs}


def table(rows: list[dict[str, Any]]) -> str:
    lines = [["use case", "objects", "wall s", "samples s", "stack s", "execution s", "objects/s (execution)"]]
    for row in rows:
        for run in row["runs"]:
            phases = run["phases_s"]
            lines.append(
                [
                    row["use_case"],
                    f"{run['objects']:,}",
                    f"{run['wall_s']:.1f}",
                    *(f"{phases.get(phase, 0):.1f}" for phase in ("samples_s", "stack_s", "execution_s")),
                    f"{run['objects_per_execution_s']}",
                ]
            )
    return text_table(lines)


def main(argv: list[str] | None = None) -> int:
    command, rows = run_command(
        argv,
        doc=__doc__ or "",
        name="pipelines",
        default_sizes=DEFAULT_SIZES,
        quick_sizes=QUICK_SIZES,
        measure=measure_use_case,
        table=table,
    )
    if rows is None:
        return 1
    report = {"sizes": list(command.sizes), "default_sizes": list(DEFAULT_SIZES), "rows": rows}
    print(f"wrote {write_result('pipelines', report, command.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
