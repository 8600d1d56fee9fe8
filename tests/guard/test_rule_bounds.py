"""lambda-limits.guard's BOUNDS block: every string range accepts exactly the integers MIN..MAX.

The hook's RESOURCE input sends numbers as strings, which Guard can compare only by regular
expression, so each bound exists twice (an integer and a range pattern). The patterns are checked
here against the integers, and the rules themselves with cfn-guard at and just past each bound, so
a platform team that changes one without the other is stopped.
"""

from __future__ import annotations

import json
import re
import subprocess
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.guard

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "guard-rules" / "lambda-limits.guard"
CFN_GUARD = REPO / ".tools" / "bin" / "cfn-guard"
# (integer prefix, rule, property)
BOUNDS = [
    ("LAMBDA_MEMORY", "_MB", "LAMBDA_MEMORY_WITHIN_LIMITS", "MemorySize"),
    ("LAMBDA_TIMEOUT", "_S", "LAMBDA_TIMEOUT_WITHIN_LIMITS", "Timeout"),
    ("LAMBDA_CONCURRENCY", "", "LAMBDA_RESERVED_CONCURRENCY_WITHIN_LIMITS", "ReservedConcurrentExecutions"),
]


def lets() -> dict[str, str]:
    return dict(re.findall(r"^let (LAMBDA_[A-Z_]+) = (.+)$", RULES.read_text(encoding="utf-8"), re.MULTILINE))


def bound(prefix: str, unit: str) -> tuple[int, int, re.Pattern[str]]:
    values = lets()
    pattern = values[f"{prefix}_RANGE"]
    assert pattern.startswith("/")
    assert pattern.endswith("/")
    return int(values[f"{prefix}_MIN{unit}"]), int(values[f"{prefix}_MAX{unit}"]), re.compile(pattern[1:-1])


@pytest.mark.parametrize(("prefix", "unit", "rule", "prop"), BOUNDS)
def test_range_pattern_accepts_exactly_min_to_max(prefix, unit, rule, prop):
    low, high, pattern = bound(prefix, unit)
    accepted = {n for n in range(0, 20000) if pattern.fullmatch(str(n))}
    assert accepted == set(range(low, high + 1))
    for text in (f"0{high}", f"+{high}", f"{high}.0", f" {high}", ""):
        assert not pattern.fullmatch(text), text


def test_defaults_are_tighter_than_lambdas_own_limits():
    assert bound("LAMBDA_MEMORY", "_MB")[1] < 10240
    assert bound("LAMBDA_TIMEOUT", "_S")[1] < 900
    assert bound("LAMBDA_CONCURRENCY", "")[1] < 1000


def evaluate(properties: dict[str, object], hook: bool) -> dict[str, str]:
    resource: dict[str, object] = (
        {"ResourceType": "AWS::Lambda::Function", "ResourceProperties": properties}
        if hook
        else {"Type": "AWS::Lambda::Function", "Properties": properties}
    )
    document = {"Resources": {"Function": resource}}
    with tempfile.NamedTemporaryFile("w", suffix=".json", encoding="utf-8") as data:
        json.dump(document, data)
        data.flush()
        result = subprocess.run(
            [str(CFN_GUARD), "validate", "--rules", str(RULES), "--data", data.name, "-z", "--show-summary", "none",
             "--output-format", "json"],
            capture_output=True,
            text=True,
            check=False,
        )
    report = json.loads(result.stdout)
    failed = {entry["Rule"]["name"] for doc in report for entry in doc["not_compliant"]}
    return {name: ("FAIL" if name in failed else "PASS") for name, _p in ((b[2], b[3]) for b in BOUNDS)}


@pytest.mark.parametrize("hook", [False, True], ids=["template", "hook"])
@pytest.mark.parametrize(("prefix", "unit", "rule", "prop"), BOUNDS)
def test_rules_enforce_the_block_at_and_past_each_bound(prefix, unit, rule, prop, hook):
    low, high, _ = bound(prefix, unit)

    def value(n: int) -> object:
        return str(n) if hook else n

    base = {"Runtime": "python3.13"}
    assert evaluate(base | {prop: value(high)}, hook)[rule] == "PASS"
    assert evaluate(base | {prop: value(low)}, hook)[rule] == "PASS"
    assert evaluate(base | {prop: value(high + 1)}, hook)[rule] == "FAIL"
    assert evaluate(base | {prop: value(low - 1)}, hook)[rule] == "FAIL"
