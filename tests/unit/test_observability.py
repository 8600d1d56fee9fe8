"""shared.observability: the start type of every invocation (cold, warm, restore), the restore's
X-Ray subsegment with one child per after-restore hook, and the restore EMF metrics.

The traced part runs a small handler in its own process (tests/support/observed_handler.py) with
Powertools' Tracer on and the X-Ray SDK sending to a loopback daemon stand-in; a restore is
``shared.runtime.run_after_restore_hooks()`` in that process, as the Lambda runtime runs them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from shared import observability, runtime
from tests.support.templates import REPO_ROOT
from tests.support.xray import emf_lines, xray_daemon

pytestmark = pytest.mark.unit

DRIVER = REPO_ROOT / "tests" / "support" / "observed_handler.py"


@pytest.mark.parametrize(
    ("first", "restored", "expected"),
    [(True, False, "cold"), (False, False, "warm"), (True, True, "restore"), (False, True, "restore")],
)
def test_start_type(first, restored, expected):
    assert observability.start_type(first=first, restored=restored) == expected


def test_after_restore_hooks_are_timed_including_one_that_raises():
    runtime.take_restore_runs()

    def broken() -> None:
        raise OSError("no entropy")

    timed = runtime._timed(broken)
    with pytest.raises(OSError, match="no entropy"):
        timed()
    (run,) = runtime.take_restore_runs()
    assert run.error == "OSError"
    assert run.name.endswith("broken")
    assert run.end >= run.start
    assert runtime.take_restore_runs() == []


def run_driver(*, tracing: bool) -> tuple[list[dict], str]:
    with xray_daemon() as daemon:
        env = {**os.environ, "AWS_XRAY_DAEMON_ADDRESS": daemon.address,
               "POWERTOOLS_TRACE_DISABLED": "false" if tracing else "true"}
        done = subprocess.run([sys.executable, str(DRIVER)], env=env, cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr[-4000:]
        return daemon.documents(), done.stdout


def test_cold_warm_restore_warm_are_annotated_and_the_restore_has_its_subsegment_and_metrics():
    documents, stdout = run_driver(tracing=True)
    handlers = sorted((d for d in documents if d.get("name") == "## handler"), key=lambda d: d["start_time"])
    assert [d["annotations"]["start_type"] for d in handlers] == ["cold", "warm", "restore", "warm"]
    restored = handlers[2]
    assert restored["annotations"]["restore_hooks_ms"] >= 20  # the driver's hook sleeps 20 ms
    (span,) = [d for d in documents if d.get("name") == "## after_restore"]
    assert span["trace_id"] == restored["trace_id"]
    assert span["end_time"] <= restored["start_time"]  # the hooks ran before the invocation
    # streamed one by one (Lambda's facade segment is never sent), or nested when sent together
    hooks = sorted([d for d in documents if d.get("parent_id") == span["id"]] + span.get("subsegments", []),
                   key=lambda d: d["start_time"])
    children = [child["name"] for child in hooks]
    assert children[:3] == ["shared.runtime._reseed_random", "shared.runtime._close_clients",
                            "shared.runtime._clear_caches"]
    assert children[-1] == "__main__.refresh_connection"
    assert all(child["end_time"] >= child["start_time"] for child in hooks)
    metrics = emf_lines(stdout)
    restores = [doc for doc in metrics if "Restores" in doc]
    assert len(restores) == 1
    assert restores[0]["Restores"] == [1.0]
    assert restores[0]["RestoreHooksDuration"][0] >= 20
    logs = [json.loads(line) for line in stdout.splitlines() if line.startswith('{"level"')]
    assert [log["start_type"] for log in logs if log["message"] == "invoked"] == ["cold", "warm", "restore", "warm"]


def test_with_tracing_disabled_nothing_is_sent_but_the_restore_metric_is_still_emitted():
    documents, stdout = run_driver(tracing=False)
    assert documents == []
    assert [doc["Restores"] for doc in emf_lines(stdout) if "Restores" in doc] == [[1.0]]


def test_a_batch_ends_with_the_per_item_metrics_one_log_line_and_its_counts(caplog):
    from aws_lambda_powertools import Logger, Metrics

    from shared.batch import BatchResult

    logger, metrics = Logger(service="batch-test"), Metrics(namespace="Test/Batch", service="batch-test")
    result = BatchResult(processed=3, succeeded=2, failed=1, skipped=4, totals={"bytes_read": 10})
    try:
        payload = observability.batch_done(logger, metrics, result, "exec-1")
        emf: dict[str, Any] = dict(metrics.serialize_metric_set())
    finally:
        # Powertools keeps one metric set per process; unflushed, these would ride along with the
        # next flush of any later test in this worker.
        metrics.clear_metrics()
    assert payload == {"execution_id": "exec-1", "processed": 3, "succeeded": 2, "failed": 1, "skipped": 4,
                       "bytes_read": 10}
    assert (emf["FilesSucceeded"], emf["FilesFailed"]) == ([2.0], [1.0])
    assert {m["Name"]: m["Unit"] for m in emf["_aws"]["CloudWatchMetrics"][0]["Metrics"]} == {
        "FilesSucceeded": "Count", "FilesFailed": "Count"}
    (line,) = caplog.records
    assert (line.getMessage(), line.failed, line.execution_id) == ("batch done", 1, "exec-1")


def test_failure_warning_logs_failed_records_only(caplog):
    from aws_lambda_powertools import Logger

    warn = observability.failure_warning(Logger(service="batch-test"), "file failed")
    warn({"status": "SUCCEEDED", "source_key": "a", "error_type": None})
    warn({"status": "FAILED", "source_key": "b", "error_type": "InvalidFileError"})
    (line,) = caplog.records
    assert (line.levelname, line.getMessage(), line.source_key, line.error_type) == (
        "WARNING", "file failed", "b", "InvalidFileError")
