"""CloudFormation intrinsic functions and Conditions, evaluated for one parameter set.

``IntrinsicResolver`` evaluates Conditions and Fn::If, Fn::Sub, Fn::Join, Fn::Select, Fn::Split,
Fn::Equals/And/Or/Not, Fn::FindInMap, Fn::GetAZs, Fn::Base64 and Fn::ToJsonString over a template
decoded by cfn-lint (long-form intrinsics). What ``Ref`` and ``Fn::GetAtt`` return is the
subclass's business: the local runner answers with the emulated resources' names and ARNs.
"""

from __future__ import annotations

import abc
import json
import re
from collections.abc import Mapping
from typing import Any


class NoValue:
    """``Ref: AWS::NoValue``; removed from the dicts and lists that contain it."""


NO_VALUE = NoValue()


class IntrinsicError(ValueError):
    """An intrinsic function the resolver cannot evaluate."""


class IntrinsicResolver(abc.ABC):
    template: dict[str, Any]
    conditions: dict[str, bool]
    region: str = "us-east-1"

    @abc.abstractmethod
    def _ref(self, name: str) -> Any: ...

    @abc.abstractmethod
    def _getatt(self, logical: str, attr: str) -> Any: ...

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
