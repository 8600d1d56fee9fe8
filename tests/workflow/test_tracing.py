"""Every use case with EnableTracing=true, run end to end by the local runner in its own process,
with a loopback X-Ray daemon stand-in: every function the run invokes sends its invocations as
``## handler`` subsegments annotated with how their environment started, the AWS calls it makes
are traced under them, and the run log carries each function's EMF metrics (the per-item
failures of the batch functions among them). With tracing off (the default) nothing reaches the
daemon, and the metrics and the ``start_type`` log key remain.

The runs are a separate process because Powertools' Tracer and the X-Ray SDK keep process-wide
state (the SDK's enabled flag, boto3 patched for tracing) that must not leak into other tests: one
process runs the three use cases traced, another runs them with tracing off.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from tests.support.templates import REPO_ROOT, load_template
from tests.support.xray import emf_lines, xray_daemon

pytestmark = pytest.mark.workflow

# argv: a JSON list of [use case folder, parameters], env.json, the --keep folder; prints one JSON
# list of {"status", "log_file"}, in the same order.
RUN = """
import json, sys
from pathlib import Path
from local.runner.run import RunOptions, run_use_case
results = []
for folder, parameters in json.loads(sys.argv[1]):
    result = run_use_case(Path(folder), RunOptions(objects=8, parameters=parameters,
                                                   env_json=Path(sys.argv[2]), keep=Path(sys.argv[3])))
    results.append({"status": result.status, "log_file": result.log_file})
print(json.dumps(results))
"""


@dataclass(frozen=True)
class Case:
    folder: str
    namespace: str
    # The EMF metrics each function emits on the run, by POWERTOOLS_SERVICE_NAME.
    metrics: dict[str, set[str]]
    # An AWS operation each function calls, traced under its ``## handler`` subsegment.
    operations: dict[str, str]
    parameters: dict[str, str] = field(default_factory=dict)
    # Functions the run does not invoke (the inference paths it is not routed to).
    not_invoked: frozenset[str] = frozenset()


BATCH = {"FilesSucceeded", "FilesFailed"}
CASES = [
    Case(
        "semiconductor-eda",
        "FsxnS3apPipelines/UC6",
        metrics={
            "uc6-discovery": {"FilesDiscovered"},
            "uc6-metadata-extraction": BATCH | {"BytesRead"},
            "uc6-drc-aggregation": {"FilesWithFindings"},
            "uc6-report-generation": {"ReportsWritten"},
        },
        operations={
            "uc6-discovery": "ListObjectsV2",
            "uc6-metadata-extraction": "GetObject",
            "uc6-drc-aggregation": "StartQueryExecution",
            "uc6-report-generation": "Publish",
        },
    ),
    Case(
        "legal-compliance",
        "FsxnS3apPipelines/UC1",
        metrics={
            "uc1-discovery": {"FilesDiscovered"},
            "uc1-acl-collection": BATCH,
            "uc1-athena-analysis": {"Findings"},
            "uc1-report-generation": {"ReportsWritten"},
        },
        operations={
            "uc1-discovery": "ListObjectsV2",
            "uc1-acl-collection": "PutObject",
            "uc1-athena-analysis": "StartQueryExecution",
            "uc1-report-generation": "Publish",
        },
    ),
    Case(
        "autonomous-driving",
        "FsxnS3apPipelines/UC9",
        # Routed to Serverless Inference: the one synchronous path that needs no opt-in resource.
        parameters={"InferenceType": "serverless"},
        not_invoked=frozenset({"uc9-realtime-invoke", "uc9-components-invoke"}),
        metrics={
            "uc9-discovery": {"VideosDiscovered", "PointCloudsDiscovered"},
            "uc9-frame-extraction": BATCH | {"FramesLabelled"},
            "uc9-pointcloud-qc": BATCH,
            "uc9-prepare-inference": {"InferenceRecords"},
            "uc9-serverless-invoke": {"InferenceRecords", "CapacityRetries"},
            "uc9-annotation-manager": {"Annotations"},
        },
        operations={
            "uc9-discovery": "ListObjectsV2",
            "uc9-frame-extraction": "DetectLabels",
            "uc9-pointcloud-qc": "GetObject",
            "uc9-prepare-inference": "ListObjectsV2",
            "uc9-serverless-invoke": "InvokeEndpoint",
            "uc9-annotation-manager": "PutObject",
        },
    ),
]


class Run(NamedTuple):
    result: dict[str, Any]
    # The X-Ray documents the whole process sent (all three use cases).
    documents: list[dict[str, Any]]
    log: str


def run_all(tmp_path: Path, parameters: dict[str, str]) -> dict[str, Run]:
    """Every case's workflow run, one after the other in one fresh process, by folder."""
    env_json = tmp_path / "env.json"
    # events/env.json switches tracing off for sam local invoke; these runs keep the template's values
    env_json.write_text(json.dumps({"Parameters": {}}))
    runs = [[str(REPO_ROOT / case.folder), {**case.parameters, **parameters}] for case in CASES]
    with xray_daemon() as daemon:
        env = {**os.environ, "AWS_XRAY_DAEMON_ADDRESS": daemon.address}
        done = subprocess.run([sys.executable, "-c", RUN, json.dumps(runs), str(env_json), str(tmp_path / "keep")],
                              env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=900, check=False)
        assert done.returncode == 0, done.stderr[-4000:]
        documents = daemon.documents()
    results = json.loads(done.stdout.strip().splitlines()[-1])
    return {case.folder: Run(result, documents, Path(result["log_file"]).read_text())
            for case, result in zip(CASES, results, strict=True)}


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    return run_all(tmp_path_factory.mktemp("traced"), {"EnableTracing": "true"})


@pytest.fixture(scope="module")
def untraced(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    return run_all(tmp_path_factory.mktemp("untraced"), {})


def services(case: Case) -> set[str]:
    """The POWERTOOLS_SERVICE_NAME of every function in the use case's template."""
    resources = load_template(REPO_ROOT / case.folder / "template-deploy.yaml")["Resources"]
    return {
        res["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for res in resources.values()
        if res["Type"] == "AWS::Lambda::Function"
    }


def emitted(log: str) -> dict[str, set[str]]:
    """{service: EMF metric names} of the run log."""
    found: dict[str, set[str]] = {}
    for doc in emf_lines(log):
        names = {m["Name"] for d in doc["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]}
        found.setdefault(doc["service"], set()).update(names)
    return found


def descendants(documents: list[dict[str, Any]], root: dict[str, Any]) -> list[dict[str, Any]]:
    """The subsegments under ``root``: streamed one by one (``parent_id``) or nested in it."""
    by_parent: dict[str, list[dict[str, Any]]] = {}
    for doc in documents:
        if "parent_id" in doc:
            by_parent.setdefault(doc["parent_id"], []).append(doc)
    found, todo = [], [root]
    while todo:
        doc = todo.pop()
        children = by_parent.get(doc["id"], []) + doc.get("subsegments", [])
        found += children
        todo += children
    return found


@pytest.mark.parametrize("case", CASES, ids=[c.folder for c in CASES])
def test_a_traced_run_sends_every_invocation_annotated_with_its_start_type_and_logs_emf(traced, case):
    # Known-bad check of the case table itself: it names every function of the template.
    assert set(case.metrics) | case.not_invoked == services(case)
    result, documents, log = traced[case.folder]
    assert result["status"] == "SUCCEEDED"
    handlers = [doc for doc in documents
                if doc.get("name") == "## handler" and doc["annotations"]["Service"] in services(case)]
    by_service: dict[str, list[dict[str, Any]]] = {}
    for doc in handlers:
        by_service.setdefault(doc["annotations"]["Service"], []).append(doc)
        # (Powertools' own ColdStart is per process; the runner hosts every function in one)
        assert doc["trace_id"].startswith("1-")
    assert set(by_service) == set(case.metrics)  # every function invoked, no other
    for service, docs in by_service.items():
        starts = [doc["annotations"]["start_type"] for doc in docs]
        assert set(starts) <= {"cold", "warm"}, service  # no restore without SnapStart
        assert "cold" in starts, service  # (the runner may start several environments for a Map)
        # AWS calls inside a handler are traced under it (boto3 patched by the Tracer)
        operations = {d["aws"].get("operation") for doc in docs for d in descendants(documents, doc)
                      if d.get("namespace") == "aws"}
        assert case.operations[service] in operations, (service, operations)
    metrics = emitted(log)
    for service, names in case.metrics.items():
        assert names <= metrics.get(service, set()), service
    assert set(metrics) <= set(case.metrics)
    assert {doc["_aws"]["CloudWatchMetrics"][0]["Namespace"] for doc in emf_lines(log)} == {case.namespace}


@pytest.mark.parametrize("case", CASES, ids=[c.folder for c in CASES])
def test_with_tracing_off_nothing_reaches_the_daemon(untraced, case):
    result, documents, log = untraced[case.folder]
    assert result["status"] == "SUCCEEDED"
    assert documents == []  # of all three runs
    assert set(emitted(log)) == set(case.metrics)  # metrics do not depend on tracing
    logs = [json.loads(line) for line in log.splitlines() if line.startswith('{"level"')]
    starts = {(line["service"], line.get("start_type")) for line in logs}
    assert {(service, "cold") for service in case.metrics} <= starts
