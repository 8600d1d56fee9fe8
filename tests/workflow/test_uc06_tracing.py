"""UC6 with EnableTracing=true, run end to end by the local runner in its own process, with a
loopback X-Ray daemon stand-in: every function's invocations arrive as ``## handler`` subsegments
annotated with how their environment started, and the run log carries the EMF metrics. With
tracing off (the default) nothing reaches the daemon.

The run is a separate process because Powertools' Tracer and the X-Ray SDK keep process-wide
state (the SDK's enabled flag, boto3 patched for tracing) that must not leak into other tests.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.templates import REPO_ROOT, load_template
from tests.support.xray import emf_lines, xray_daemon

pytestmark = pytest.mark.workflow

UC6 = REPO_ROOT / "semiconductor-eda"
RUN = """
import json, sys
from pathlib import Path
from local.runner.run import RunOptions, run_use_case
result = run_use_case(Path(sys.argv[1]), RunOptions(objects=8, parameters=json.loads(sys.argv[2]),
                                                    env_json=Path(sys.argv[3]), keep=Path(sys.argv[4])))
print(json.dumps({"status": result.status, "log_file": result.log_file}))
"""


def traced_run(tmp_path: Path, parameters: dict[str, str]) -> tuple[dict[str, Any], list[dict[str, Any]], str]:
    """(run result, X-Ray documents received, the run log) of one workflow run in a fresh process."""
    env_json = tmp_path / "env.json"
    # events/env.json switches tracing off for sam local invoke; this run keeps the template's values
    env_json.write_text(json.dumps({"Parameters": {}}))
    with xray_daemon() as daemon:
        env = {**os.environ, "AWS_XRAY_DAEMON_ADDRESS": daemon.address}
        done = subprocess.run([sys.executable, "-c", RUN, str(UC6), json.dumps(parameters), str(env_json),
                               str(tmp_path / "keep")], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                              timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-4000:]
        documents = daemon.documents()
    result = json.loads(done.stdout.strip().splitlines()[-1])
    log = Path(result["log_file"]).read_text()
    return result, documents, log


def services() -> dict[str, str]:
    """{POWERTOOLS_SERVICE_NAME: logical id} of the template's functions."""
    resources = load_template(UC6 / "template-deploy.yaml")["Resources"]
    return {
        res["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]: logical
        for logical, res in resources.items()
        if res["Type"] == "AWS::Lambda::Function"
    }


def test_a_traced_run_sends_every_invocation_annotated_with_its_start_type_and_logs_emf(tmp_path):
    result, documents, log = traced_run(tmp_path, {"EnableTracing": "true"})
    assert result["status"] == "SUCCEEDED"
    handlers = [doc for doc in documents if doc.get("name") == "## handler"]
    by_service: dict[str, list[str]] = {}
    for doc in handlers:
        annotations = doc["annotations"]
        by_service.setdefault(annotations["Service"], []).append(annotations["start_type"])
        # (Powertools' own ColdStart is per process; the runner hosts every function in one)
        assert doc["trace_id"].startswith("1-")
    assert set(by_service) == set(services())
    for service, starts in by_service.items():
        assert set(starts) <= {"cold", "warm"}, service  # no restore without SnapStart
        assert "cold" in starts, service
    # AWS calls inside a handler are traced under it (boto3 patched by the Tracer)
    assert any(doc.get("namespace") == "aws" and doc["aws"].get("operation") == "ListObjectsV2" for doc in documents)
    metrics = {name for doc in emf_lines(log) for d in doc["_aws"]["CloudWatchMetrics"] for name in
               (m["Name"] for m in d["Metrics"])}
    assert {"FilesDiscovered", "FilesSucceeded", "FilesFailed"} <= metrics
    assert all(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "FsxnS3apPipelines/UC6" for doc in emf_lines(log))


def test_with_tracing_off_nothing_reaches_the_daemon(tmp_path):
    result, documents, log = traced_run(tmp_path, {})
    assert result["status"] == "SUCCEEDED"
    assert documents == []
    assert emf_lines(log)  # metrics do not depend on tracing
    starts = [json.loads(line).get("start_type") for line in log.splitlines() if line.startswith('{"level"')]
    assert "cold" in starts
