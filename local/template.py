"""The one reader of a use case's ``template-deploy.yaml``: decoding, parameters, Rules.

Every local consumer of a template — the embedded runner (``local.runner.stack``), the sam engine
(``local.sam``), the tests' template resolver (``tests/support/templates.py``) — reads it through
this module, so a parameter is bound and checked exactly once, the way CloudFormation does before
it creates anything:

- ``load_template``: ``local.template_yaml``, which reads a template as cfn-lint's decoder does
  (short tags such as ``!Ref`` become their long form).
- ``bind_parameters``: the given value, else the ``Default``; list types split on commas.
- ``validate_parameters``: ``Type`` (``String``, ``Number``, ``List<Number>``,
  ``CommaDelimitedList``, AWS-specific types taken as strings), ``AllowedValues``,
  ``AllowedPattern`` (the whole value must match), ``MinValue``/``MaxValue``,
  ``MinLength``/``MaxLength``, then the template's ``Rules`` (``RuleCondition`` and
  ``Assertions`` with the rule functions), each failure with CloudFormation's own message.
- ``resolve_parameters``: all of the above for one parameter set; raises ``ParameterError`` (a
  ``TemplateError``) listing every violation.
"""

from __future__ import annotations

import hashlib
import marshal
import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from local import template_yaml
from local.runner.intrinsics import IntrinsicError


class TemplateError(IntrinsicError):
    """The template cannot be run locally as written (or CloudFormation would refuse it)."""


class ParameterError(TemplateError):
    """Parameter values CloudFormation would refuse (``ValidationError``), before anything runs."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


# Decoded templates by (file, content digest): one process decodes the same template for every run
# and test that reads it (decoding takes tens of milliseconds per template).
_DECODED: dict[tuple[Path, bytes], bytes] = {}


def load_template(path: Path) -> dict[str, Any]:
    """The decoded template, a new copy on every call (callers may change it)."""
    resolved = Path(path).resolve()
    data = resolved.read_bytes()
    key = (resolved, hashlib.sha256(data).digest())
    if key not in _DECODED:
        try:
            template = template_yaml.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, template_yaml.DecodeError) as error:
            raise TemplateError(f"{path}: cannot decode: {error}") from error
        # marshal holds exactly the plain types _plain returns, and copies them far faster than deepcopy
        _DECODED[key] = marshal.dumps(_plain(template))
    plain: dict[str, Any] = marshal.loads(_DECODED[key])  # noqa: S302 - bytes this process wrote
    return plain


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def _is_list_type(spec: Mapping[str, Any]) -> bool:
    kind = str(spec.get("Type", "String"))
    return kind == "CommaDelimitedList" or kind.startswith("List<")


def bind_parameters(template: Mapping[str, Any], given: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """Parameter values as CloudFormation binds them: the given value, else the Default; list types
    split on commas. Returns the values and the names that have neither (the caller decides)."""
    values: dict[str, Any] = {}
    missing: list[str] = []
    for name, spec in (template.get("Parameters") or {}).items():
        if name in given:
            value = given[name]
        elif "Default" in spec:
            value = spec["Default"]
        else:
            missing.append(name)
            continue
        if _is_list_type(spec):
            value = [v.strip() for v in value.split(",")] if isinstance(value, str) else value
        values[name] = value
    return values, missing


def cfn_text(value: Any) -> str:
    """A template scalar as CloudFormation's string: YAML booleans ``true``/``false``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# YAML 1.1 spellings the decoder turns into booleans (``AllowedValues: [OFF, ...]``): the
# value a user types is the word, so a boolean allowed value accepts each of its spellings.
_YAML_BOOL_WORDS = {
    True: {"true", "yes", "on", "y"},
    False: {"false", "no", "off", "n"},
}


def _allowed(value: str, allowed: list[Any]) -> bool:
    for candidate in allowed:
        if isinstance(candidate, bool):
            if value.lower() in _YAML_BOOL_WORDS[candidate]:
                return True
        elif isinstance(candidate, int | float) and _number(value) is not None:
            if _number(value) == float(candidate):
                return True
        elif value == str(candidate):
            return True
    return False


def _number(text: str) -> float | None:
    try:
        number = float(text)
    except ValueError:
        return None
    return number if math.isfinite(number) else None


def _check_one(name: str, spec: Mapping[str, Any], value: str, *, numeric: bool) -> list[str]:
    errors: list[str] = []
    constraint = spec.get("ConstraintDescription")

    def failed(default: str) -> str:
        return f"Parameter '{name}' failed to satisfy constraint: {constraint}" if constraint else default

    if numeric:
        number = _number(value)
        if number is None:
            return [f"Parameter '{name}' must be a number"]
        if "MinValue" in spec and number < float(spec["MinValue"]):
            errors.append(failed(f"Parameter '{name}' must be a number not less than {cfn_text(spec['MinValue'])}"))
        if "MaxValue" in spec and number > float(spec["MaxValue"]):
            errors.append(failed(f"Parameter '{name}' must be a number not greater than {cfn_text(spec['MaxValue'])}"))
    else:
        if "MinLength" in spec and len(value) < int(spec["MinLength"]):
            errors.append(failed(f"Parameter '{name}' must contain at least {spec['MinLength']} characters"))
        if "MaxLength" in spec and len(value) > int(spec["MaxLength"]):
            errors.append(failed(f"Parameter '{name}' must contain at most {spec['MaxLength']} characters"))
        pattern = spec.get("AllowedPattern")
        if pattern is not None and re.fullmatch(str(pattern), value) is None:
            errors.append(failed(f"Parameter '{name}' must match pattern {pattern}"))
    if "AllowedValues" in spec and not _allowed(value, list(spec["AllowedValues"])):
        errors.append(failed(f"Parameter '{name}' must be one of AllowedValues"))
    return errors


def validate_parameters(template: Mapping[str, Any], values: Mapping[str, Any]) -> list[str]:
    """CloudFormation's messages for every bound value that violates its parameter's constraints."""
    errors: list[str] = []
    for name, spec in (template.get("Parameters") or {}).items():
        if name not in values:
            continue
        kind = str(spec.get("Type", "String"))
        value = values[name]
        if _is_list_type(spec):
            members = value if isinstance(value, list) else str(value).split(",")
            numeric = kind == "List<Number>"
            for member in members:
                errors += _check_one(name, spec, cfn_text(member), numeric=numeric)
        else:
            errors += _check_one(name, spec, cfn_text(value), numeric=kind == "Number")
    return errors


# The pseudo parameters a local stack has (the emulated account and Region of every local run).
PSEUDO_PARAMETERS: dict[str, Any] = {
    "AWS::AccountId": "123456789012",
    "AWS::Region": "us-east-1",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NotificationARNs": [],
}


def check_rules(
    template: Mapping[str, Any], values: Mapping[str, Any], *, pseudo: Mapping[str, Any] | None = None
) -> list[str]:
    """The ``AssertDescription`` (or CloudFormation's default text) of every failed rule assertion.
    ``Ref`` in a rule may name a parameter or a pseudo parameter (``AWS::Region``...)."""
    errors: list[str] = []
    evaluator = _RuleEvaluator(template, {**PSEUDO_PARAMETERS, **(pseudo or {}), **values})
    for rule_name, rule in (template.get("Rules") or {}).items():
        if "RuleCondition" in rule and not evaluator.truth(rule["RuleCondition"]):
            continue
        for assertion in rule.get("Assertions") or []:
            if not evaluator.truth(assertion["Assert"]):
                errors.append(str(assertion.get("AssertDescription") or f"Assertion failed for rule {rule_name}"))
    return errors


def resolve_parameters(
    template: Mapping[str, Any],
    given: Mapping[str, Any],
    *,
    source: str = "template",
    pseudo: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Bind and validate one parameter set as CloudFormation does before creating a stack.

    Raises ``ParameterError`` with CloudFormation's messages: undeclared parameters, required
    parameters without a value, constraint violations and failed ``Rules`` assertions.
    """
    declared = template.get("Parameters") or {}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ParameterError([f"Parameters: [{', '.join(unknown)}] do not exist in the template ({source})"])
    values, missing = bind_parameters(template, given)
    if missing:
        raise ParameterError([f"Parameters: [{', '.join(missing)}] must have values ({source})"])
    errors = validate_parameters(template, values)
    if not errors:
        errors = check_rules(template, values, pseudo=pseudo)
    if errors:
        raise ParameterError(errors)
    return values


class _RuleEvaluator:
    """The functions a ``Rules`` section may use, over parameter values only."""

    def __init__(self, template: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        self.template = template
        self.values = values

    def truth(self, expr: Any) -> bool:
        value = self.value(expr)
        if isinstance(value, bool):
            return value
        return cfn_text(value) == "true"

    def value(self, expr: Any) -> Any:
        if isinstance(expr, list):
            return [self.value(e) for e in expr]
        if not isinstance(expr, dict) or len(expr) != 1:
            return expr
        ((fn, arg),) = expr.items()
        if fn == "Ref":
            if arg not in self.values:
                raise TemplateError(f"Rules: Ref to {arg}, which is not a parameter")
            return self.values[arg]
        if fn == "Fn::Equals":
            left, right = (self.value(a) for a in arg)
            return _as_text(left) == _as_text(right)
        if fn == "Fn::Not":
            return not self.truth(arg[0])
        if fn == "Fn::And":
            return all(self.truth(a) for a in arg)
        if fn == "Fn::Or":
            return any(self.truth(a) for a in arg)
        if fn == "Fn::Contains":
            members, item = (self.value(a) for a in arg)
            return _as_text(item) in [_as_text(m) for m in members]
        if fn == "Fn::EachMemberEquals":
            members, item = (self.value(a) for a in arg)
            return all(_as_text(m) == _as_text(item) for m in members)
        if fn == "Fn::EachMemberIn":
            members, allowed = (self.value(a) for a in arg)
            return all(_as_text(m) in [_as_text(a) for a in allowed] for m in members)
        if fn == "Fn::RefAll":
            kind = str(arg)
            declared = self.template.get("Parameters") or {}
            return [v for n, v in self.values.items() if n in declared and declared[n].get("Type") == kind]
        raise TemplateError(f"Rules: function {fn} is not supported locally")


def _as_text(value: Any) -> Any:
    if isinstance(value, list):
        return [_as_text(v) for v in value]
    return cfn_text(value)
