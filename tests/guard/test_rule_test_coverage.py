"""The cfn-guard test files cover what the rules promise.

`cfn-guard test` silently ignores an expectation for a rule name that does not exist and never
asks whether a rule was tested in both input shapes. These checks read the test files themselves:
every rule FAILs a non-compliant resource and PASSes a compliant one in the template shape and in
the Guard Hook shape, SKIPs without resources and when suppressed with a reason, and every rule
file shows that a suppression without a reason does not suppress and that intrinsic functions
(short YAML tags included) are not findings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.guard

RULES_DIR = Path(__file__).resolve().parents[2] / "guard-rules"
RULE_FILES = sorted(RULES_DIR.glob("*.guard"))


class _TagLoader(yaml.SafeLoader):
    """Reads CloudFormation short tags (!Ref, !If, ...) into their long form and counts them."""

    tags_seen = 0


def _construct_tag(loader: _TagLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    type(loader).tags_seen += 1
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_TagLoader.add_multi_constructor("!", _construct_tag)  # type: ignore[no-untyped-call]


@dataclass
class RuleFile:
    path: Path
    rules: list[str]
    cases: list[dict[str, Any]]
    short_tags: int = 0
    shapes: dict[str, set[tuple[str, str]]] = field(default_factory=dict)


def load(rule_path: Path) -> RuleFile:
    rules = re.findall(r"^\s*rule\s+([A-Za-z0-9_]+)", rule_path.read_text(), re.M)
    tests_path = RULES_DIR / "tests" / f"{rule_path.stem}_tests.yaml"
    _TagLoader.tags_seen = 0
    cases = yaml.load(tests_path.read_text(), Loader=_TagLoader)  # noqa: S506 - SafeLoader subclass
    return RuleFile(rule_path, rules, cases, short_tags=_TagLoader.tags_seen)


def resources(case: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return (case.get("input") or {}).get("Resources") or {}


def shape(case: dict[str, Any]) -> str | None:
    kinds = {"hook" if "ResourceType" in r else "template" for r in resources(case).values()}
    return kinds.pop() if len(kinds) == 1 else None


def expectations(case: dict[str, Any]) -> dict[str, str]:
    return case["expectations"]["rules"]


def suppressions(case: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for resource in resources(case).values():
        metadata = resource.get("Metadata") or {}
        yield from (metadata.get("guard") or {}).get("SuppressedRules") or []


def has_intrinsic(value: Any) -> bool:
    if isinstance(value, dict):
        if any(key == "Ref" or str(key).startswith("Fn::") for key in value):
            return True
        return any(has_intrinsic(item) for item in value.values())
    if isinstance(value, list):
        return any(has_intrinsic(item) for item in value)
    return False


@pytest.fixture(params=RULE_FILES, ids=[path.name for path in RULE_FILES])
def rule_file(request: pytest.FixtureRequest) -> RuleFile:
    return load(request.param)


def test_the_five_rule_files_exist() -> None:
    assert [path.name for path in RULE_FILES] == [
        "encryption-required.guard",
        "iam-least-privilege.guard",
        "lambda-limits.guard",
        "no-public-access.guard",
        "sagemaker-security.guard",
    ]


def test_expectations_name_only_declared_rules(rule_file: RuleFile) -> None:
    assert rule_file.rules, f"{rule_file.path.name} declares no rule"
    for case in rule_file.cases:
        unknown = set(expectations(case)) - set(rule_file.rules)
        assert not unknown, f'{rule_file.path.name}: case "{case["name"]}" names unknown rules {unknown}'


def test_case_names_are_unique(rule_file: RuleFile) -> None:
    names = [case["name"] for case in rule_file.cases]
    assert len(names) == len(set(names))


def test_every_rule_fails_and_passes_in_both_input_shapes(rule_file: RuleFile) -> None:
    for rule in rule_file.rules:
        covered = {(shape(case), expectations(case)[rule]) for case in rule_file.cases if rule in expectations(case)}
        for needed in [("template", "FAIL"), ("hook", "FAIL"), ("template", "PASS"), ("hook", "PASS")]:
            assert needed in covered, f"{rule}: no {needed[0]}-shape case expecting {needed[1]}"


def test_every_rule_skips_without_resources_and_when_suppressed(rule_file: RuleFile) -> None:
    for rule in rule_file.rules:
        skips = [case for case in rule_file.cases if expectations(case).get(rule) == "SKIP"]
        assert any(not resources(case) for case in skips), f"{rule}: no SKIP case without resources"
        assert any(
            any(s.get("id") == rule and str(s.get("reason", "")).strip() for s in suppressions(case)) for case in skips
        ), f"{rule}: no SKIP case with a reasoned suppression of the rule"


def test_suppression_without_a_reason_is_shown_not_to_suppress(rule_file: RuleFile) -> None:
    unreasoned = [
        case
        for case in rule_file.cases
        for s in suppressions(case)
        if s.get("id") in expectations(case)
        and expectations(case)[s["id"]] == "FAIL"
        and not (isinstance(s.get("reason"), str) and s["reason"].strip())
    ]
    assert unreasoned, f"{rule_file.path.name}: no FAIL case with a suppression that lacks a reason"


def test_intrinsic_functions_are_shown_not_to_be_findings(rule_file: RuleFile) -> None:
    assert rule_file.short_tags > 0, f"{rule_file.path.name}: no case uses short-form tags (!Ref, !If...)"
    passing = [
        case
        for case in rule_file.cases
        if shape(case) == "template" and "PASS" in expectations(case).values() and has_intrinsic(case["input"])
    ]
    assert passing, f"{rule_file.path.name}: no PASS case with an intrinsic function"


def test_hook_shape_cases_carry_the_hook_context(rule_file: RuleFile) -> None:
    for case in rule_file.cases:
        if shape(case) == "hook":
            assert "HookContext" in case["input"], f'case "{case["name"]}" has hook resources but no HookContext'


def test_test_loader_reads_short_tags_in_long_form() -> None:
    loaded = yaml.load("a: !Ref X\nb: !If [C, 1, 2]\n", Loader=_TagLoader)  # noqa: S506 - SafeLoader subclass
    assert loaded == {"a": {"Ref": "X"}, "b": {"Fn::If": ["C", 1, 2]}}
