"""Which Lambda versions a stack update replaces, modelled on the resolved template.

CloudFormation replaces an ``AWS::Lambda::Version`` (that is, publishes a new version) when any of
its properties changes, and updates an ``AWS::Lambda::Function`` when any of its properties
changes. PublishVersion refuses to publish a function that has not changed since its last
version, so a replaced Version whose function is unchanged fails the update; and a function whose
configuration changed without its Version being replaced leaves the alias on the old
configuration. ``identity_problems`` reports both, for two parameter sets of one template:
``before`` and ``after`` stand for the stack's current and its next deployment.

``max_length`` bounds the length of a template string expression from the parameters'
constraints, for the 256-character limit of a Lambda (version) Description.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tests.support.templates import Resolver

DESCRIPTION_LIMIT = 256  # characters, Lambda's limit for function and version descriptions

# Longest values of the pseudo parameters a Description might use.
_PSEUDO_MAX = {
    "AWS::AccountId": 12,
    "AWS::Partition": len("aws-us-gov"),
    "AWS::Region": len("us-isof-south-1"),
    "AWS::StackName": 128,
}


@dataclass(frozen=True)
class Changes:
    modified_functions: frozenset[str]
    replaced_versions: frozenset[str]
    version_of: Mapping[str, str]  # version logical id -> function logical id


def function_of_version(version: Mapping[str, Any]) -> str | None:
    """The logical id of the function a Version publishes (its FunctionName Ref or GetAtt)."""
    name = (version.get("Properties") or {}).get("FunctionName")
    if isinstance(name, Mapping) and "Ref" in name:
        return str(name["Ref"])
    if isinstance(name, Mapping) and "Fn::GetAtt" in name:
        target = name["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else str(target).split(".")[0])
    return None


def versions(template: Mapping[str, Any]) -> dict[str, str]:
    """{version logical id: function logical id} for every AWS::Lambda::Version of the template."""
    out = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") == "AWS::Lambda::Version":
            function = function_of_version(resource)
            if function is None:
                raise AssertionError(f"{logical_id}: FunctionName is not a Ref/GetAtt of a function in the template")
            out[logical_id] = function
    return out


def _resolved(template: Mapping[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
    resolver = Resolver(template, params)
    return {
        logical_id: resolver.resolve(resource.get("Properties") or {})
        for logical_id, resource in resolver.resources().items()
        if resource.get("Type") in ("AWS::Lambda::Function", "AWS::Lambda::Version")
    }


def changes(template: Mapping[str, Any], before: Mapping[str, str], after: Mapping[str, str]) -> Changes:
    """What an update from ``before`` to ``after`` modifies (functions) and replaces (versions).

    A resource counts when any of its resolved properties differs. Versions that exist in only one
    of the two parameter sets are not counted (creating or deleting them is not a replacement).
    """
    return _changes(template, _resolved(template, before), _resolved(template, after))


def _changes(template: Mapping[str, Any], old: Mapping[str, Any], new: Mapping[str, Any]) -> Changes:
    version_of = versions(template)
    functions = {lid for lid, res in template["Resources"].items() if res.get("Type") == "AWS::Lambda::Function"}
    modified = frozenset(lid for lid in functions if lid in old and lid in new and old[lid] != new[lid])
    replaced = frozenset(lid for lid in version_of if lid in old and lid in new and old[lid] != new[lid])
    return Changes(modified, replaced, version_of)


def identity_problems(template: Mapping[str, Any], before: Mapping[str, str], after: Mapping[str, str]) -> list[str]:
    """Every way the update ``before`` -> ``after`` breaks a published version's identity."""
    new = _resolved(template, after)  # resolved once: the comparison and the checks below share it
    result = _changes(template, _resolved(template, before), new)
    by_function = {function: version for version, function in result.version_of.items()}
    problems = []
    for version in sorted(result.replaced_versions):
        function = result.version_of[version]
        if function not in result.modified_functions:
            problems.append(
                f"{version} is replaced but {function} is unchanged: PublishVersion would refuse to publish it"
            )
    for function in sorted(result.modified_functions):
        published = by_function.get(function)
        if published is not None and published in new and published not in result.replaced_versions:
            problems.append(f"{function} changes but {published} is not replaced: its alias keeps the old function")
    return problems


# ------------------------------------------------------------------------- description length
class UnboundedError(ValueError):
    """An expression whose length the parameters' constraints do not bound."""


def parameter_max_length(name: str, spec: Mapping[str, Any]) -> int:
    """The longest value a parameter can take, from AllowedValues, MaxLength or Min/MaxValue.

    A Number is counted by the digits of its bounds (CloudFormation passes a Number parameter on as
    the given text, so a value written with leading zeros would be longer: don't)."""
    if "AllowedValues" in spec:
        return max(len(str(value)) for value in spec["AllowedValues"])
    if spec.get("Type") == "Number":
        if "MinValue" in spec and "MaxValue" in spec:
            return max(len(str(spec["MinValue"])), len(str(spec["MaxValue"])))
        raise UnboundedError(f"Number parameter {name} has no MinValue/MaxValue")
    if "MaxLength" in spec:
        return int(spec["MaxLength"])
    raise UnboundedError(f"parameter {name} has neither AllowedValues nor MaxLength")


def max_length(template: Mapping[str, Any], expr: Any, variables: Mapping[str, Any] | None = None) -> int:
    """Upper bound of the length of a string expression (literal, Ref, Fn::Sub, Fn::If, Fn::Join)."""
    parameters = template.get("Parameters") or {}

    def name_length(name: str) -> int:
        if variables and name in variables:
            return max_length(template, variables[name])
        if name in parameters:
            return parameter_max_length(name, parameters[name])
        if name in _PSEUDO_MAX:
            return _PSEUDO_MAX[name]
        raise UnboundedError(f"{name} is a resource attribute or unknown name: its length is not bounded here")

    if isinstance(expr, str):
        return len(expr)
    if isinstance(expr, Mapping) and len(expr) == 1:
        ((fn, arg),) = expr.items()
        if fn == "Ref":
            return name_length(str(arg))
        if fn == "Fn::If":
            return max(max_length(template, arg[1], variables), max_length(template, arg[2], variables))
        if fn == "Fn::Join":
            separator, parts = arg
            if not isinstance(parts, list):
                raise UnboundedError("Fn::Join over a computed list")
            return sum(max_length(template, p, variables) for p in parts) + len(separator) * max(len(parts) - 1, 0)
        if fn == "Fn::Sub":
            text, sub_vars = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])
            total = 0
            position = 0
            for match in re.finditer(r"\$\{([^}]+)\}", text):
                total += match.start() - position
                position = match.end()
                token = match.group(1)
                if token.startswith("!"):
                    total += len(token) + 2  # ${!Name} is written as ${Name}
                elif token in sub_vars:
                    total += max_length(template, sub_vars[token], variables)
                else:
                    total += name_length(token)
            return total + len(text) - position
    raise UnboundedError(f"cannot bound the length of {expr!r}")
