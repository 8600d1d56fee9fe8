"""Payload benchmark: the largest state payload of a local run, at a small and a large object count.

    .venv/bin/python -m benchmarks.payload_bench [--quick] [--sizes N,N] [--uc NAME] [--out PATH]

For each use case, the whole pipeline runs through the local runner (``local.runner``, what
``python -m local`` runs: the real definition on moto's Step Functions engine, the real handlers,
the use case's sample data) once per object count, and ``benchmarks/pipeline_runs.py`` records the
size of every payload any state of the execution or of its Distributed Maps' child executions
produces or receives (state input and output, task parameters and results, in UTF-8 bytes). The
largest must not grow with the object count: the listing goes to a manifest in S3, never into the
state. Growth is the exponent k in largest ~ objects^k from the smallest count to the largest
(1 for a payload carrying the listing); more than 0.1 counts as growth, since the largest batch's
keys are a little longer in a larger sample.

Next to it: the object count at which an inline Map would hit Step Functions' 256 KiB payload
quota if Discovery returned the listing as ``{"objects": [...]}``, computed from this run's real
listed-object entries (the items the Map runs read from the manifest: key, size, ETag, last
modified), in order and repeated in order past the last.

Default sizes 100 and 100,000 objects (the issue's); ``--quick`` 100 and 1,000. On this project's
2-core machine the 100,000-object runs took 141 s (legal-compliance), 515 s (semiconductor-eda)
and 1,461 s (autonomous-driving), one ``--uc`` process per use case, two at a time: pass
``--sizes`` to choose. A measurement, not a test: it exits 1 if a run
fails or loses an object, or if the largest payload grew with the object count.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import write_result
from benchmarks.pipeline_runs import (
    STATE_PAYLOAD_LIMIT,
    MeasuredRun,
    RunFailedError,
    inline_map_limit,
    measured_run,
    run_command,
    text_table,
)

DEFAULT_SIZES = (100, 100_000)
QUICK_SIZES = (100, 1_000)
# A payload that carried the listing grows in proportion to the object count (largest ~ objects^1,
# until it hits the quota); one bounded by the batch size does not, though its largest value
# still varies with the keys a larger sample happens to hold (legal-compliance: 7,547 B at 100
# objects, 8,686 B at 100,000, a batch whose keys are longer). So growth is judged by the exponent
# k in largest ~ objects^k from the smallest count to the largest: more than this is growth.
MAX_GROWTH_EXPONENT = 0.1


def growth(largest: list[int], sizes: list[int]) -> dict[str, Any]:
    """How the largest payload changed from the smallest object count to the largest: the ratio
    minus one, the exponent k in largest ~ objects^k, and the verdict (k over MAX_GROWTH_EXPONENT)."""
    ratio = largest[-1] / largest[0]
    exponent = math.log(ratio) / math.log(sizes[-1] / sizes[0])
    return {"growth": round(ratio - 1, 4), "exponent": round(exponent, 4), "grows": exponent > MAX_GROWTH_EXPONENT}


def measure_use_case(use_case_dir: Path, sizes: tuple[int, ...]) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    entries: list[str] = []
    measured: list[MeasuredRun] = []
    for objects in sizes:
        print(f"running {use_case_dir.name} with {objects:,} objects ...", file=sys.stderr, flush=True)
        run = measured_run(use_case_dir, objects)
        measured.append(run)
        runs.append(
            {
                "objects": objects,
                "largest_payload": run.watch.largest.to_dict(),
                "largest_main_execution_payload": run.watch.largest_main.to_dict(),
                "payloads_seen": run.watch.payloads,
                "listed_entries_seen": len(run.watch.map_items),
                "wall_s": round(run.wall_s, 2),
            }
        )
        if len(run.watch.map_items) > len(entries):
            entries = run.watch.map_items  # the largest listing seen
    if not entries:
        raise RunFailedError(f"{use_case_dir.name}: no Map item was a listed object; cannot size an inline Map")
    sizes_seen = [run.watch.largest.bytes for run in measured]
    mean_entry = sum(len(e.encode("utf-8")) for e in entries) / len(entries)
    return {
        "use_case": use_case_dir.name,
        "runs": runs,
        **growth(sizes_seen, list(sizes)),
        "largest_payload_bytes": max(sizes_seen),
        "inline_map_limit_objects": inline_map_limit(entries),
        "mean_listed_entry_bytes": round(mean_entry, 1),
        "listed_entries_sized": len(entries),
    }


def table(rows: list[dict[str, Any]]) -> str:
    sizes = [r["objects"] for r in rows[0]["runs"]]
    head = ["use case", *(f"largest @ {n:,} B" for n in sizes), "where (largest count)", "inline Map hits 256 KiB at"]
    lines = [head]
    for row in rows:
        last = row["runs"][-1]["largest_payload"]
        where = f"{last['state']} {last['event']}" + (" (child)" if last["in_child_execution"] else "")
        sized = [f"{r['largest_payload']['bytes']:,}" for r in row["runs"]]
        lines.append([row["use_case"], *sized, where, f"{row['inline_map_limit_objects']:,} objects"])
    return text_table(lines)


def main(argv: list[str] | None = None) -> int:
    command, rows = run_command(
        argv,
        doc=__doc__ or "",
        name="payload",
        default_sizes=DEFAULT_SIZES,
        quick_sizes=QUICK_SIZES,
        measure=measure_use_case,
        table=table,
    )
    if rows is None:
        return 1
    grew = [row["use_case"] for row in rows if row["grows"]]
    if grew:
        print(f"the largest payload grew with the object count: {', '.join(grew)}", file=sys.stderr)
    payload = {
        "sizes": list(command.sizes),
        "default_sizes": list(DEFAULT_SIZES),
        "limit_bytes": STATE_PAYLOAD_LIMIT,
        "max_growth_exponent": MAX_GROWTH_EXPONENT,
        "rows": rows,
    }
    print(f"wrote {write_result('payload', payload, command.out)}")
    return 1 if grew else 0


if __name__ == "__main__":
    sys.exit(main())
