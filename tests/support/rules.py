"""Evaluate a template's ``Rules`` the way CloudFormation does before it touches any resource.

A rule applies when its ``RuleCondition`` (if any) is true; the stack operation then fails with
the ``AssertDescription`` of every ``Assert`` that is false. Rule-specific functions supported:
Fn::Contains, Fn::EachMemberEquals, Fn::EachMemberIn, Fn::Equals, Fn::Not, Fn::And, Fn::Or and
Ref (parameters and pseudo parameters, with the Region and partition chosen by the caller).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.support.templates import Resolver


def _value(resolver: Resolver, expr: Any) -> Any:
    if isinstance(expr, Mapping) and len(expr) == 1:
        ((fn, arg),) = expr.items()
        if fn == "Ref":
            return resolver.resolve(expr)
        if fn == "Fn::Contains":
            items, value = (_value(resolver, a) for a in arg)
            return value in items
        if fn == "Fn::EachMemberEquals":
            items, value = (_value(resolver, a) for a in arg)
            return all(item == value for item in items)
        if fn == "Fn::EachMemberIn":
            items, allowed = (_value(resolver, a) for a in arg)
            return all(item in allowed for item in items)
        if fn == "Fn::Equals":
            left, right = (_value(resolver, a) for a in arg)
            return str(left) == str(right)
        if fn == "Fn::Not":
            return not _value(resolver, arg[0])
        if fn == "Fn::And":
            return all(_value(resolver, a) for a in arg)
        if fn == "Fn::Or":
            return any(_value(resolver, a) for a in arg)
        raise ValueError(f"{fn} is not a function CloudFormation allows in Rules")
    if isinstance(expr, list):
        return [_value(resolver, item) for item in expr]
    return expr


def rule_failures(
    template: Mapping[str, Any], parameters: Mapping[str, str], region: str, partition: str = "aws"
) -> dict[str, list[str]]:
    """{rule name: AssertDescription of each failed assertion} for the rules that fail."""
    resolver = Resolver(template, parameters, region=region, partition=partition)
    failures: dict[str, list[str]] = {}
    for name, rule in (template.get("Rules") or {}).items():
        if "RuleCondition" in rule and not _value(resolver, rule["RuleCondition"]):
            continue
        failed = [
            str(assertion.get("AssertDescription", "(no AssertDescription)"))
            for assertion in rule.get("Assertions", [])
            if not _value(resolver, assertion["Assert"])
        ]
        if failed:
            failures[name] = failed
    return failures
