"""Evaluate an ASL ``Choice`` state's rules on an input, as Step Functions does, for tests.

Supports the JSONPath-style rules (``Variable`` with the comparison operators, their ``...Path``
forms, the type tests, ``And``/``Or``/``Not``) and ``Default``. An operator Step Functions does
not define raises ``UnknownOperatorError``: a Choice that names one is rejected by Step Functions
at creation (and a pitfall this project guards against). A numeric or string comparison against
a value of another type is false, as in Step Functions.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from typing import Any

_MISSING = object()

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "LessThan": lambda a, b: a < b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanEquals": lambda a, b: a >= b,
}
_KINDS: dict[str, Callable[[Any], bool]] = {
    "String": lambda v: isinstance(v, str),
    "Numeric": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "Boolean": lambda v: isinstance(v, bool),
    "Timestamp": lambda v: isinstance(v, str),
}
_TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "IsNull": lambda v: v is None,
    "IsPresent": lambda v: v is not _MISSING,
    "IsNumeric": _KINDS["Numeric"],
    "IsString": _KINDS["String"],
    "IsBoolean": _KINDS["Boolean"],
}


class UnknownOperatorError(ValueError):
    """The rule uses a comparison operator Step Functions does not define."""


def json_path(document: Any, path: str) -> Any:
    """``$``, ``$.a.b`` (dotted member access only); a missing member gives ``_MISSING``."""
    if path == "$":
        return document
    if not path.startswith("$."):
        raise ValueError(f"unsupported path {path!r}")
    value = document
    for part in path[2:].split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def evaluate_rule(rule: Mapping[str, Any], document: Any) -> bool:
    if "And" in rule:
        return all(evaluate_rule(r, document) for r in rule["And"])
    if "Or" in rule:
        return any(evaluate_rule(r, document) for r in rule["Or"])
    if "Not" in rule:
        return not evaluate_rule(rule["Not"], document)
    operators = [k for k in rule if k not in {"Variable", "Next", "Comment"}]
    if len(operators) != 1 or "Variable" not in rule:
        raise UnknownOperatorError(f"a rule needs Variable and exactly one operator, got {sorted(rule)}")
    (operator,) = operators
    value = json_path(document, rule["Variable"])
    if operator in _TYPE_TESTS:
        result = _TYPE_TESTS[operator](value)
        return bool(result) is bool(rule[operator])
    if operator == "StringMatches":
        return isinstance(value, str) and fnmatch.fnmatchcase(value, rule[operator])
    for kind, is_kind in _KINDS.items():
        if not operator.startswith(kind):
            continue
        rest = operator[len(kind) :]
        by_path = rest.endswith("Path")
        comparison = rest.removesuffix("Path")
        if comparison not in _COMPARISONS:
            break
        other = json_path(document, rule[operator]) if by_path else rule[operator]
        if value is _MISSING or not is_kind(value) or not is_kind(other):
            return False
        return bool(_COMPARISONS[comparison](value, other))
    raise UnknownOperatorError(f"{operator!r} is not a Step Functions Choice operator")


def choose(state: Mapping[str, Any], document: Any) -> str:
    """The name of the state the Choice goes to (its ``Default`` when no rule matches)."""
    if state.get("Type") != "Choice":
        raise ValueError("not a Choice state")
    for rule in state.get("Choices") or []:
        if evaluate_rule(rule, document):
            return str(rule["Next"])
    if "Default" not in state:
        raise LookupError("no rule matched and the Choice has no Default (States.NoChoiceMatched)")
    return str(state["Default"])
