"""UC9's InferenceRouting Choice implements exactly shared/routing.py's route().

The Choice is read from the template after DefinitionSubstitutions (tests.support.templates) and
its rules are evaluated (tests.support.asl_choice) on the fields PrepareInference emits, for
hypothesis-generated inputs: every inference type, file counts around the threshold, payload
sizes around each synchronous limit. Mutated Choices (an operator, a limit, a branch swapped, an
operator that does not exist) must disagree with route() somewhere on the boundary grid.
"""

from __future__ import annotations

import copy
import functools
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import find, given, settings
from hypothesis import strategies as st

from shared.routing import SYNC_PAYLOAD_LIMITS, InferencePath, InferenceType, route
from tests.support.asl_choice import UnknownOperatorError, choose
from tests.support.templates import REPO_ROOT, load_template, state_machines

pytestmark = pytest.mark.property

TEMPLATE = REPO_ROOT / "autonomous-driving" / "template-deploy.yaml"
REQUIRED = {
    "AccessPointArn": "arn:aws:s3:us-east-1:123456789012:accesspoint/fsxn-adas-ap",
    "ModelImageUri": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3",
    "ModelDataUrl": "s3://models-123456789012/autonomous-driving/model/0123456789abcdef/model.tar.gz",
}
# The state each routing path starts with.
PATH_STATE = {
    InferencePath.BATCH_TRANSFORM: "BatchTransform",
    InferencePath.SERVERLESS_INFERENCE: "ServerlessInference",
    InferencePath.INFERENCE_COMPONENTS: "InferenceComponents",
    InferencePath.REALTIME_ENDPOINT: "RealtimeEndpoint",
}
LIMITS = sorted(set(SYNC_PAYLOAD_LIMITS.values()))


@functools.cache
def _definition(items: frozenset[tuple[str, str]]) -> dict[str, Any]:
    (definition,) = state_machines(load_template(Path(TEMPLATE)), {**REQUIRED, **dict(items)}).values()
    return definition


def routing_choice(params: dict[str, str]) -> dict[str, Any]:
    state: dict[str, Any] = copy.deepcopy(_definition(frozenset(params.items()))["States"]["InferenceRouting"])
    return state


PARAMETER_SETS = {
    "defaults": {},
    "article": {"EnableInferenceComponents": "true", "InferenceType": "components",
                "EnableRealtimeEndpoint": "true", "ComponentsMinInstanceCount": "0"},
    "serverless": {"InferenceType": "serverless"},
    "provisioned": {"InferenceType": "provisioned", "EnableRealtimeEndpoint": "true", "EnableSnapStart": "true"},
}  # fmt: skip


def facts(kind: str, files: int, threshold: int, payload: int) -> dict[str, Any]:
    """The state input at InferenceRouting: PrepareInference's fields under $.inference."""
    return {
        "inference": {
            "inference_type": kind,
            "file_count": files,
            "batch_threshold": threshold,
            "max_record_bytes": payload,
        }
    }


def expected_state(kind: str, files: int, threshold: int, payload: int) -> str:
    return PATH_STATE[route(kind, files, threshold, payload)]


def boundary_grid() -> Iterator[tuple[str, int, int, int]]:
    payloads = {0, 1, *(limit + d for limit in LIMITS for d in (-1, 0, 1))}
    for kind, threshold in itertools.product(InferenceType, (1, 2, 100, 1_000_000)):
        files = {0, threshold - 1, threshold, threshold + 1}
        for count, payload in itertools.product(sorted(f for f in files if f >= 0), sorted(payloads)):
            yield kind.value, count, threshold, payload


def disagreements(choice: dict[str, Any]) -> list[tuple[tuple[str, int, int, int], str, str]]:
    out = []
    for case in boundary_grid():
        got = choose(choice, facts(*case))
        want = expected_state(*case)
        if got != want:
            out.append((case, got, want))
    return out


@st.composite
def routing_inputs(draw: st.DrawFn) -> tuple[str, int, int, int]:
    kind = draw(st.sampled_from([t.value for t in InferenceType]))
    threshold = draw(st.integers(min_value=1, max_value=10**6))
    files = draw(
        st.one_of(
            st.integers(min_value=max(0, threshold - 3), max_value=threshold + 3),
            st.integers(min_value=0, max_value=10**7),
        )
    )
    payload = draw(
        st.one_of(
            st.builds(lambda limit, d: max(0, limit + d), st.sampled_from(LIMITS), st.integers(-3, 3)),
            st.integers(min_value=0, max_value=64 * 1024 * 1024),
        )
    )
    return kind, files, threshold, payload


@pytest.mark.parametrize("name", sorted(PARAMETER_SETS))
@settings(max_examples=300, deadline=None)
@given(case=routing_inputs())
def test_the_resolved_choice_picks_the_state_route_picks(name, case):
    choice = routing_choice(PARAMETER_SETS[name])
    assert choose(choice, facts(*case)) == expected_state(*case)


def test_the_resolved_choice_agrees_on_every_boundary():
    assert disagreements(routing_choice({})) == []


def test_every_path_is_reachable_and_each_branch_leads_to_its_own_state():
    choice = routing_choice({})
    reached = {choose(choice, facts(*case)) for case in boundary_grid()}
    assert reached == set(PATH_STATE.values())


# --- the check fails on a wrong Choice ----------------------------------------------------------
def _mutate(choice: dict[str, Any], change: str) -> dict[str, Any]:
    mutant = copy.deepcopy(choice)
    rules = mutant["Choices"]

    def walk(rule: dict[str, Any]) -> Iterator[dict[str, Any]]:
        yield rule
        for inner in rule.get("And", []) + rule.get("Or", []):
            yield from walk(inner)

    leaves = [leaf for rule in rules for leaf in walk(rule)]
    if change == "threshold operator <= instead of <":
        (leaf,) = [r for r in leaves if "NumericLessThanPath" in r]
        leaf["NumericLessThanEqualsPath"] = leaf.pop("NumericLessThanPath")
    elif change == "serverless limit off by one":
        (leaf,) = [r for r in leaves if r.get("NumericLessThanEquals") == 4_000_000]
        leaf["NumericLessThanEquals"] = 4_000_001
    elif change == "components limit < instead of <=":
        leaf = next(r for r in leaves if r.get("NumericLessThanEquals") == 6_291_456)
        leaf["NumericLessThan"] = leaf.pop("NumericLessThanEquals")
    elif change == "serverless and components branches swapped":
        a, b = (r for r in rules if r.get("Next") in {"ServerlessInference", "InferenceComponents"})
        a["Next"], b["Next"] = b["Next"], a["Next"]
    elif change == "default goes to the real-time endpoint":
        mutant["Default"] = "RealtimeEndpoint"
    elif change == "payload guard dropped from provisioned":
        rule = next(r for r in rules if r.get("Next") == "RealtimeEndpoint")
        rule["And"] = [r for r in rule["And"] if r.get("Variable") != "$.inference.max_record_bytes"]
    elif change == "type string misspelt":
        (leaf,) = [r for r in leaves if r.get("StringEquals") == "provisioned"]
        leaf["StringEquals"] = "Provisioned"
    else:  # pragma: no cover - the parametrization lists every change
        raise AssertionError(change)
    return mutant


MUTATIONS = [
    "threshold operator <= instead of <",
    "serverless limit off by one",
    "components limit < instead of <=",
    "serverless and components branches swapped",
    "default goes to the real-time endpoint",
    "payload guard dropped from provisioned",
    "type string misspelt",
]


@pytest.mark.parametrize("change", MUTATIONS)
def test_a_mutated_choice_disagrees_with_route(change):
    found = disagreements(_mutate(routing_choice({}), change))
    assert found, f"the routing check did not notice: {change}"


def test_hypothesis_finds_a_counterexample_for_a_mutated_threshold():
    mutant = _mutate(routing_choice({}), "threshold operator <= instead of <")
    case = find(
        routing_inputs(),
        lambda c: choose(mutant, facts(*c)) != expected_state(*c),
        settings=settings(max_examples=5000, database=None),
    )
    kind, files, threshold, _payload = case
    assert kind == "provisioned"
    assert files == threshold


def test_an_operator_that_does_not_exist_is_refused():
    mutant = _mutate(routing_choice({}), "components limit < instead of <=")
    leaf = next(r for r in mutant["Choices"] if r.get("Next") == "InferenceComponents")["And"][1]
    leaf["NumericLessThanEqual"] = leaf.pop("NumericLessThan")  # no such operator
    with pytest.raises(UnknownOperatorError):
        choose(mutant, facts("components", 1, 100, 0))
