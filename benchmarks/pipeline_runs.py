"""One use case's whole pipeline through the local runner, watched: wall time and every state payload.

Shared by ``benchmarks/payload_bench.py`` and ``benchmarks/pipelines_bench.py``. ``measured_run``
calls ``local.runner.run.run_use_case`` (the same pipeline as ``python -m local``: moto's Step
Functions engine, the real handlers, the use case's sample data) while a wrapper around moto's
``EventManager.add_event`` sees every history event of the execution and of every child
execution of its Distributed Maps. From each event's details it records the size of every
``input`` and ``output`` (state input and output, task parameters and results, execution input
and output) and keeps the largest, and the items the Map runs handed to their child executions
(the listed-object entries, as the ItemReader read them from the manifest).

The wrapper sits under the runner's own (``local.runner.engine.EngineExtensions`` wraps
``add_event`` again when the run starts), so it sees exactly the events the runner records.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from moto.stepfunctions.parser.asl.eval.event.event_manager import EventManager

from benchmarks.common import use_cases
from local.runner.engine import ChildEventManager
from local.runner.run import RunOptions, run_use_case

PAYLOAD_FIELDS = ("input", "output")
# A listed object as Discovery writes it into the manifest (shared.s3ap.ObjectInfo).
LISTED_FIELDS = frozenset({"key", "size", "etag"})
# Step Functions' quota on a state's input or output, a task result or an execution's input/output.
STATE_PAYLOAD_LIMIT = 256 * 1024


class RunFailedError(RuntimeError):
    """The pipeline did not succeed, or some objects have no result record: no numbers."""


@dataclass
class Largest:
    """The largest payload seen: its size in UTF-8 bytes and where it was."""

    bytes: int = 0
    state: str | None = None
    event: str | None = None
    child: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"bytes": self.bytes, "state": self.state, "event": self.event, "in_child_execution": self.child}


@dataclass
class PayloadWatch:
    """What the wrapped ``add_event`` saw during one run."""

    largest: Largest = field(default_factory=Largest)
    largest_main: Largest = field(default_factory=Largest)
    events: int = 0
    payloads: int = 0
    map_items: list[str] = field(default_factory=list)  # each listed-object item as compact JSON
    _children_seen: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def see(self, manager: EventManager, event_type: str, details: dict[str, Any]) -> None:
        child = isinstance(manager, ChildEventManager)
        kind = event_type.rsplit(".", 1)[-1]
        with self._lock:
            self.events += 1
            for detail in details.values():
                if not isinstance(detail, dict):
                    continue
                for name in PAYLOAD_FIELDS:
                    value = detail.get(name)
                    if not isinstance(value, str):
                        continue
                    size = len(value.encode("utf-8"))
                    self.payloads += 1
                    where = Largest(size, detail.get("name"), kind, child)
                    if size > self.largest.bytes:
                        self.largest = where
                    if not child and size > self.largest_main.bytes:
                        self.largest_main = where
            # A child execution's first state receives the child's input: the batch of items.
            if (
                isinstance(manager, ChildEventManager)
                and kind.endswith("StateEntered")
                and manager.execution_name not in self._children_seen
            ):
                self._children_seen.add(manager.execution_name)
                self._items_of(details)

    def _items_of(self, details: dict[str, Any]) -> None:
        entered = details.get("stateEnteredEventDetails") or {}
        payload = json.loads(entered.get("input") or "null")
        items = payload.get("Items") if isinstance(payload, dict) else None
        for item in items if isinstance(items, list) else []:
            if isinstance(item, dict) and item.keys() >= LISTED_FIELDS:
                self.map_items.append(json.dumps(item, separators=(",", ":"), ensure_ascii=False))


@contextlib.contextmanager
def watching() -> Iterator[PayloadWatch]:
    """Record the payload of every history event recorded while inside."""
    watch = PayloadWatch()
    original = EventManager.add_event

    def add_event(manager: EventManager, *args: Any, **kwargs: Any) -> int:
        event_id: int = original(manager, *args, **kwargs)
        event_type = kwargs.get("event_type", args[1] if len(args) > 1 else None)
        details = kwargs.get("event_details", args[2] if len(args) > 2 else None)
        watch.see(manager, str(event_type), dict(details or {}))
        return event_id

    EventManager.add_event = add_event  # type: ignore[method-assign,assignment]
    try:
        yield watch
    finally:
        EventManager.add_event = original  # type: ignore[method-assign]


@dataclass(frozen=True)
class MeasuredRun:
    use_case: str
    objects: int
    wall_s: float
    timings: dict[str, float]
    states_executed: int
    items_total: int
    records_succeeded: int
    records_failed: int
    watch: PayloadWatch


def measured_run(use_case_dir: Path, objects: int, *, seed: int = 0) -> MeasuredRun:
    """Run the pipeline once over ``objects`` sample objects; raise ``RunFailedError`` unless it
    succeeded with one result record per object."""
    # Retry waits count in emulated time only (the pipeline's own virtual clock), as in the tests.
    options = RunOptions(objects=objects, seed=seed, retry_time_scale=0.0)
    with watching() as watch:
        started = time.perf_counter()
        result = run_use_case(use_case_dir, options)
        wall = time.perf_counter() - started
    if not result.ok:
        raise RunFailedError(
            f"{use_case_dir.name} at {objects} objects: {result.status} {result.error or ''} "
            f"{(result.cause or '')[:400]} unaccounted={result.unaccounted[:5]} duplicated={result.duplicated[:5]}"
        )
    if watch.payloads == 0:
        raise RunFailedError(f"{use_case_dir.name}: no history event carried a payload: the watch saw nothing")
    return MeasuredRun(
        use_case=use_case_dir.name,
        objects=objects,
        wall_s=wall,
        timings=dict(result.timings),
        states_executed=result.states_executed,
        items_total=result.items_total,
        records_succeeded=result.records_succeeded,
        records_failed=result.records_failed,
        watch=watch,
    )


def inline_map_limit(entries: list[str], *, limit: int = STATE_PAYLOAD_LIMIT) -> int:
    """The object count at which ``{"objects": [entry, ...]}`` (a Discovery that returns the
    listing for an inline Map) first exceeds ``limit`` bytes: ``entries`` are compact JSON
    entries, taken in order and repeated in order past the last one."""
    if not entries:
        raise ValueError("no listed-object entries to size")
    size = len('{"objects":[]}')
    count = 0
    while True:
        entry = entries[count % len(entries)]
        size += len(entry.encode("utf-8")) + (1 if count else 0)
        count += 1
        if size > limit:
            return count


# --- what the pipeline benchmarks' command lines share ------------------------------------------
def sizes_arg(text: str) -> tuple[int, ...]:
    """``--sizes 100,1000``: at least two increasing object counts."""
    try:
        sizes = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of integers: {text!r}") from e
    if len(sizes) < 2 or any(n < 1 for n in sizes) or list(sizes) != sorted(set(sizes)):
        raise argparse.ArgumentTypeError("at least two increasing object counts, each >= 1")
    return sizes


@dataclass(frozen=True)
class Command:
    sizes: tuple[int, ...]
    use_cases: list[Path]
    out: Path | None


def parse_command(
    argv: list[str] | None, *, doc: str, name: str, default_sizes: tuple[int, ...], quick_sizes: tuple[int, ...]
) -> Command:
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=f"object counts {quick_sizes} instead of {default_sizes}")
    parser.add_argument("--sizes", type=sizes_arg, help="comma-separated increasing object counts (overrides)")
    parser.add_argument("--uc", action="append", help="use case folder name (repeatable; default: all)")
    parser.add_argument("--out", type=Path, help=f"JSON output (default benchmarks/results/{name}.json)")
    args = parser.parse_args(argv)
    selected = [uc for uc in use_cases() if not args.uc or uc.name in args.uc]
    unknown = set(args.uc or ()) - {uc.name for uc in selected}
    if unknown:
        parser.error(f"unknown use case(s): {', '.join(sorted(unknown))}")
    return Command(args.sizes or (quick_sizes if args.quick else default_sizes), selected, args.out)


def run_command(
    argv: list[str] | None,
    *,
    doc: str,
    name: str,
    default_sizes: tuple[int, ...],
    quick_sizes: tuple[int, ...],
    measure: Callable[[Path, tuple[int, ...]], dict[str, Any]],
    table: Callable[[list[dict[str, Any]]], str],
) -> tuple[Command, list[dict[str, Any]] | None]:
    """Parse the command line, measure every selected use case and print the table; the rows, or
    None when a use case failed (its error printed; the others' rows are still printed)."""
    command = parse_command(argv, doc=doc, name=name, default_sizes=default_sizes, quick_sizes=quick_sizes)
    rows, failed = [], False
    for uc in command.use_cases:
        try:
            rows.append(measure(uc, command.sizes))
        except RunFailedError as error:
            failed = True
            print(f"NOT MEASURED: {error}", file=sys.stderr)
    if rows:
        print(table(rows))
    return command, None if failed else rows


def text_table(lines: list[list[str]]) -> str:
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines)
