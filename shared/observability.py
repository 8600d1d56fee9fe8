"""One decorator that gives a handler Powertools logging, tracing and metrics, and reports how
its execution environment started.

Usage (the whole adoption, for any handler module)::

    logger, tracer, metrics = Logger(), Tracer(), Metrics()

    @observability.handler(logger, tracer, metrics)
    def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]: ...

It stacks ``logger.inject_lambda_context``, ``tracer.capture_lambda_handler`` and
``metrics.log_metrics`` and, inside the handler's ``## handler`` subsegment, on every invocation:

* annotates the subsegment ``start_type`` = ``cold`` (the first invocation of a process that ran
  its own init), ``restore`` (the first invocation after a SnapStart restore) or ``warm``, and adds
  the same as a log key (``start_type``);
* after a restore: an ``## after_restore`` subsegment spanning the after-restore hooks as they ran
  (one child subsegment per hook, an error flag on one that raised, recorded by
  ``shared.runtime``'s timed hooks), annotation ``restore_hooks_ms``, and the EMF metrics
  ``Restores`` (Count) and ``RestoreHooksDuration`` (Milliseconds).

With ``EnableTracing=false`` (``POWERTOOLS_TRACE_DISABLED=true``) Powertools' Tracer is disabled
and the tracing parts do nothing; the metrics and the log key remain.

A batch function (one Distributed Map batch per invocation) ends with ``batch_done``: the EMF
metrics ``FilesSucceeded`` and ``FilesFailed`` (Count; the per-item failures, the same names in
every use case, told apart by the ``service`` dimension), one ``batch done`` log line and the
returned counts. ``failure_warning`` is the ``on_record`` callback that logs each FAILED item
(its own error is in its result record).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Literal, Protocol

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import runtime

__all__ = ["BatchCounts", "StartType", "batch_done", "failure_warning", "handler", "start_type"]

StartType = Literal["cold", "restore", "warm"]
Handler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


class _Starts:
    """The start state of one decorated handler: one per execution environment (Lambda runs one
    handler per process; the local runner imports each environment's handler module afresh)."""

    def __init__(self) -> None:
        self.invoked = False

    def next(self, restore_runs: list[runtime.HookRun]) -> StartType:
        """How the environment of the invocation starting now started (and note it was invoked)."""
        first, self.invoked = not self.invoked, True
        return start_type(first=first, restored=bool(restore_runs))


def start_type(*, first: bool, restored: bool) -> StartType:
    """``restore`` when after-restore hooks ran since the last invocation, else ``cold`` for the
    first invocation of the environment, else ``warm``."""
    if restored:
        return "restore"
    return "cold" if first else "warm"


def _trace_restore(tracer: Tracer, runs: list[runtime.HookRun]) -> None:
    recorder: Any = tracer.provider  # aws_xray_sdk's recorder: subsegments with explicit times
    parent = recorder.begin_subsegment("## after_restore")
    if parent is None:  # tracing disabled or not sampled
        return
    parent.start_time = runs[0].start
    for run in runs:
        child = recorder.begin_subsegment(run.name)
        if child is not None:
            child.start_time = run.start
            if run.error is not None:
                child.add_error_flag()
                child.put_annotation("error_type", run.error)
            recorder.end_subsegment(end_time=run.end)
    if any(run.error is not None for run in runs):
        parent.add_error_flag()
    recorder.end_subsegment(end_time=runs[-1].end)


def _report_start(starts: _Starts, logger: Logger, tracer: Tracer, metrics: Metrics) -> None:
    runs = runtime.take_restore_runs()
    kind = starts.next(runs)
    logger.append_keys(start_type=kind)
    tracer.put_annotation(key="start_type", value=kind)
    if kind != "restore":
        return
    hooks_ms = (runs[-1].end - runs[0].start) * 1000
    rounded: Any = round(hooks_ms, 3)  # a float is an X-Ray number; Powertools types it numbers.Number
    tracer.put_annotation(key="restore_hooks_ms", value=rounded)
    _trace_restore(tracer, runs)
    metrics.add_metric(name="Restores", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="RestoreHooksDuration", unit=MetricUnit.Milliseconds, value=hooks_ms)
    logger.info("restored from a snapshot", extra={"restore_hooks_ms": hooks_ms, "restore_hooks": len(runs)})


def handler(
    logger: Logger, tracer: Tracer, metrics: Metrics, *, log_event: bool = False
) -> Callable[[Handler], Handler]:
    """Decorator for a Lambda handler: logging context, tracing, metrics and the start report."""

    def decorate(fn: Handler) -> Handler:
        starts = _Starts()

        @functools.wraps(fn)
        def reported(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
            _report_start(starts, logger, tracer, metrics)
            return fn(event, context)

        traced: Handler = tracer.capture_lambda_handler(reported)
        measured: Handler = metrics.log_metrics(traced)
        logged: Handler = logger.inject_lambda_context(log_event=log_event)(measured)
        return logged

    return decorate


# --------------------------------------------------------------------------- batch functions


class BatchCounts(Protocol):
    """What a batch function's result gives (``shared.batch.BatchResult`` and the like)."""

    @property
    def succeeded(self) -> int: ...

    @property
    def failed(self) -> int: ...

    def to_dict(self, execution_id: str) -> dict[str, Any]: ...


def failure_warning(logger: Logger, message: str) -> Callable[[Mapping[str, Any]], None]:
    """An ``on_record`` callback: one warning ``message`` per FAILED record, with its source key
    and error type."""

    def warn(record: Mapping[str, Any]) -> None:
        if record["status"] == "FAILED":
            logger.warning(message, extra={"source_key": record["source_key"], "error_type": record["error_type"]})

    return warn


def batch_done(logger: Logger, metrics: Metrics, result: BatchCounts, execution_id: str) -> dict[str, Any]:
    """The end of a batch function: ``FilesSucceeded``/``FilesFailed`` metrics, the ``batch done``
    log line, and the counts it returns."""
    metrics.add_metric(name="FilesSucceeded", unit=MetricUnit.Count, value=result.succeeded)
    metrics.add_metric(name="FilesFailed", unit=MetricUnit.Count, value=result.failed)
    payload = result.to_dict(execution_id)
    logger.info("batch done", extra=payload)
    return payload
