"""UC6's optional CloudWatch dashboard (EnableDashboard): absent by default (it bills monthly),
and when on, a valid dashboard body whose every metric is one the stack really emits: Step
Functions' and Lambda's own for this stack's resources, and the EMF metrics of shared/observability
and the handlers under the namespace and ``service`` dimension the functions are configured with."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.support.templates import REPO_ROOT, Resolver, load_template
from tests.template.idle_cost import idle_cost_findings

pytestmark = pytest.mark.template

TEMPLATE = load_template(REPO_ROOT / "semiconductor-eda" / "template-deploy.yaml")
# What the code emits: shared/observability.py (restores) and the handlers (per-item results).
EMITTED = {"Restores", "RestoreHooksDuration", "FilesSucceeded", "FilesFailed", "FilesDiscovered", "BytesRead"}
STATES = {"ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"}


def dashboard_metrics(body: dict[str, Any]) -> list[list[str]]:
    """Every metric row with CloudWatch's "." / "..." shorthand expanded."""
    rows = []
    for widget in body["widgets"]:
        previous: list[str] = []
        for row in widget["properties"]["metrics"]:
            if row[0] == "...":
                full = previous[: len(previous) - len(row) + 1] + row[1:]
            else:
                full = [previous[i] if value == "." else value for i, value in enumerate(row)]
            rows.append(full)
            previous = full
    return rows


def test_off_by_default_and_counted_as_idle_cost_when_on():
    assert not Resolver(TEMPLATE, {}).resource_exists("Dashboard")
    findings = idle_cost_findings(TEMPLATE, {"EnableDashboard": "true"})
    assert [f for f in findings if f.startswith("Dashboard ")] != []


def test_every_dashboard_metric_is_one_the_stack_emits():
    resolver = Resolver(TEMPLATE, {"EnableDashboard": "true"})
    assert resolver.resource_exists("Dashboard")
    body = json.loads(resolver.resolve(TEMPLATE["Resources"]["Dashboard"]["Properties"])["DashboardBody"])
    functions = {
        logical: resolver.resolve(res["Properties"])
        for logical, res in TEMPLATE["Resources"].items() if res["Type"] == "AWS::Lambda::Function"
    }
    variables = [f["Environment"]["Variables"] for f in functions.values()]
    namespaces = {v["POWERTOOLS_METRICS_NAMESPACE"] for v in variables}
    service_names = {v["POWERTOOLS_SERVICE_NAME"] for v in variables}
    function_names = {resolver.resolve({"Ref": logical}) for logical in functions}
    state_machine = resolver.resolve({"Ref": "StateMachine"})
    seen: dict[str, set[str]] = {"restores": set(), "errors": set()}
    for namespace, name, dimension, value in dashboard_metrics(body):
        if namespace == "AWS/States":
            assert (name, dimension, value) in {(n, "StateMachineArn", state_machine) for n in STATES}
        elif namespace == "AWS/Lambda":
            assert (name, dimension) == ("Errors", "FunctionName")
            assert value in function_names
            seen["errors"].add(value)
        else:
            assert namespace in namespaces
            assert name in EMITTED
            assert (dimension, value in service_names) == ("service", True), value
            if name == "Restores":
                seen["restores"].add(value)
    assert seen == {"restores": service_names, "errors": function_names}
