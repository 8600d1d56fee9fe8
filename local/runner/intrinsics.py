"""CloudFormation intrinsic functions and Conditions, evaluated for one parameter set.

``IntrinsicResolver`` evaluates Conditions and Fn::If, Fn::Sub, Fn::Join, Fn::Select, Fn::Split,
Fn::Equals/And/Or/Not, Fn::FindInMap, Fn::GetAZs, Fn::Base64 and Fn::ToJsonString over a template
decoded by ``local.template`` (long-form intrinsics). ``Ref`` of ``AWS::NoValue``, of a pseudo parameter
(``pseudo_parameters()``: the stack name, account, Region and partition are configuration) and of
a parameter is answered here too; what ``Ref`` of a resource and ``Fn::GetAtt`` return is what
really differs between the three resolvers, so only that is a subclass's business:

- ``local.runner.stack.Stack``: the names and ARNs of the resources it emulates in moto;
- ``local.sam.provision.Resolver``: the physical names events/env.json gives (no stack exists);
  anything else is ``UnresolvedError``, which the sam engine treats as "SAM leaves it empty";
- ``tests.support.templates.Resolver``: deterministic fake ids and ARNs for any resource type.
"""

from __future__ import annotations

import abc
import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from typing import Any


class NoValue:
    """``Ref: AWS::NoValue``; removed from the dicts and lists that contain it."""


NO_VALUE = NoValue()


class IntrinsicError(ValueError):
    """An intrinsic function the resolver cannot evaluate."""


ACCOUNT = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"


def pseudo_parameters(
    stack_name: str,
    *,
    stack_id: str | None = None,
    account: str = ACCOUNT,
    region: str = REGION,
    partition: str = PARTITION,
) -> dict[str, Any]:
    """The pseudo parameters of a stack named ``stack_name`` (its id derived from the name unless given)."""
    if stack_id is None:
        uid = uuid.UUID(hashlib.sha256(stack_name.encode()).hexdigest()[:32])
        stack_id = f"arn:{partition}:cloudformation:{region}:{account}:stack/{stack_name}/{uid}"
    return {
        "AWS::AccountId": account,
        "AWS::Region": region,
        "AWS::Partition": partition,
        "AWS::StackName": stack_name,
        "AWS::StackId": stack_id,
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::NotificationARNs": [],
    }


class IntrinsicResolver(abc.ABC):
    """Conditions and intrinsics of one template for one stack: ``pseudo`` and the parameter
    values are configuration; ``_resource_ref``/``_getatt`` are what a subclass answers."""

    template: dict[str, Any]
    conditions: dict[str, bool]
    pseudo: Mapping[str, Any]

    @property
    def region(self) -> str:
        return str(self.pseudo["AWS::Region"])

    @abc.abstractmethod
    def parameter_values(self) -> Mapping[str, Any]:
        """The stack's parameter values (what ``Ref`` of a parameter returns)."""

    @abc.abstractmethod
    def _resource_ref(self, name: str) -> Any:
        """``Ref`` of anything that is not ``AWS::NoValue``, a pseudo parameter or a parameter."""

    @abc.abstractmethod
    def _getatt(self, logical: str, attr: str) -> Any: ...

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        values = self.parameter_values()
        if name in values:
            return values[name]
        return self._resource_ref(name)

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            expr = (self.template.get("Conditions") or {})[name]
            self.conditions[name] = bool(self._condition_value(expr))
        return self.conditions[name]

    def _condition_value(self, expr: Any) -> Any:
        if isinstance(expr, dict) and len(expr) == 1:
            ((fn, arg),) = expr.items()
            if fn == "Condition":
                return self.condition(arg)
            if fn == "Fn::Equals":
                left, right = (self.resolve(a) for a in arg)
                return str(left) == str(right)
            if fn == "Fn::And":
                return all(self._condition_value(a) for a in arg)
            if fn == "Fn::Or":
                return any(self._condition_value(a) for a in arg)
            if fn == "Fn::Not":
                return not self._condition_value(arg[0])
        return self.resolve(expr)

    def resolve(self, value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, arg),) = value.items()
                if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                    return self._intrinsic(key, arg)
            out = {}
            for k, v in value.items():
                r = self.resolve(v)
                if r is not NO_VALUE:
                    out[k] = r
            return out
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not NO_VALUE]
        return value

    def _intrinsic(self, fn: str, arg: Any) -> Any:
        if fn == "Ref":
            return self._ref(str(arg))
        if fn == "Condition":
            return self.condition(arg)
        if fn == "Fn::If":
            cond, when_true, when_false = arg
            return self.resolve(when_true if self.condition(cond) else when_false)
        if fn == "Fn::GetAtt":
            logical, attr = arg if isinstance(arg, list) else str(arg).split(".", 1)
            return self._getatt(logical, attr)
        if fn == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
            return self._sub(text, extra)
        if fn == "Fn::Join":
            sep, parts = arg
            return sep.join(str(p) for p in self.resolve(parts))
        if fn == "Fn::Select":
            index, items = self.resolve(arg)
            return items[int(index)]
        if fn == "Fn::Split":
            sep, text = self.resolve(arg)
            return str(text).split(sep)
        if fn in {"Fn::Equals", "Fn::And", "Fn::Or", "Fn::Not"}:
            return self._condition_value({fn: arg})
        if fn == "Fn::FindInMap":
            name, top, second = self.resolve(arg)
            return self.template["Mappings"][name][top][second]
        if fn == "Fn::GetAZs":
            return [f"{self.region}a", f"{self.region}b", f"{self.region}c"]
        if fn == "Fn::Base64":
            return self.resolve(arg)
        if fn == "Fn::ToJsonString":
            return json.dumps(self.resolve(arg), separators=(",", ":"))
        raise IntrinsicError(f"intrinsic {fn} is not supported")

    def _sub(self, text: str, extra: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            token = match.group(1)
            if token.startswith("!"):
                return "${" + token[1:] + "}"
            if token in extra:
                return str(extra[token])
            if "." in token and not token.startswith("AWS::"):
                logical, attr = token.split(".", 1)
                return str(self._getatt(logical, attr))
            return str(self._ref(token))

        return re.sub(r"\$\{([^}]+)\}", replace, text)
