"""CloudFormation YAML (and JSON) into plain Python values, as cfn-lint's decoder reads them.

Short-form intrinsics become their long form (``!Ref x`` -> ``{"Ref": "x"}``, ``!Sub s`` ->
``{"Fn::Sub": "s"}``, ``!GetAtt A.B`` -> ``{"Fn::GetAtt": ["A", "B"]}``); scalars are YAML 1.1's
(PyYAML's safe loader, as cfn-lint's); a duplicate key (outside a ``<<`` merge), a null key and
an alias expansion beyond 250,000 nodes are refused, as cfn-lint refuses them.

Why not ``cfnlint.decode``: importing any of cfn-lint imports all of it, sympy and networkx
included (about 0.3 s), in every local run's process, for a decoder this size.
``tests/unit/test_template_yaml.py`` compares the two on every template of the repository and
on each construct above.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

try:
    _Base: type[yaml.SafeLoader] = yaml.CSafeLoader  # type: ignore[assignment]
except AttributeError:  # PyYAML built without libyaml
    _Base = yaml.SafeLoader

MAX_EXPANDED_NODES = 250_000  # cfn-lint's bound on alias amplification
_UNPREFIXED = ("Ref", "Condition")
# YAML scanner problems that make cfn-lint read the text as JSON instead
_JSON_ONLY = ("found character '\\t' that cannot start any token", "found unknown escape character")


class DecodeError(ValueError):
    """The text is not a template CloudFormation (or cfn-lint) would read."""


class _Loader(_Base):  # type: ignore[valid-type,misc]
    pass


def _line(node: yaml.Node) -> int:
    return int(node.start_mark.line) + 1


def _mapping(loader: _Loader, node: yaml.MappingNode) -> dict[Any, Any]:
    merged = any(key.tag == "tag:yaml.org,2002:merge" for key, _ in node.value)
    loader.flatten_mapping(node)
    result: dict[Any, Any] = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if key is None:
            raise DecodeError(f"Null key {key_node.value!r} not supported (line {_line(key_node)})")
        if key in result and not merged:
            raise DecodeError(f"Duplicate found {key!r} (line {_line(key_node)})")
        result[key] = loader.construct_object(value_node, deep=True)
    return result


def _intrinsic(loader: _Loader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in _UNPREFIXED else f"Fn::{suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        raw = loader.construct_scalar(node)
        value = raw.split(".", 1) if name == "Fn::GetAtt" else raw
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = _mapping(loader, node)
    else:  # pragma: no cover - PyYAML has no other node kind
        raise DecodeError(f"Bad tag: !{suffix}")
    return {name: value}


_Loader.add_constructor("tag:yaml.org,2002:map", _mapping)
_Loader.add_multi_constructor("!", _intrinsic)


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DecodeError(f"Duplicate found {key!r}")
        result[key] = value
    return result


def _check_expansion(template: Any) -> None:
    """Refuse a template whose aliases resolve to more than ``MAX_EXPANDED_NODES`` nodes (counted
    once per distinct object, so a shared subtree costs its size at every use, not its work)."""
    sizes: dict[int, int] = {}

    def size(node: Any) -> int:
        known = sizes.get(id(node))
        if known is not None:
            return known
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else ()
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_EXPANDED_NODES:
                raise DecodeError(
                    f"Template resolves to more than {MAX_EXPANDED_NODES} nodes once YAML aliases are expanded"
                )
        sizes[id(node)] = total
        return total

    size(template)


def loads(text: str) -> dict[str, Any]:
    """The template in ``text``; ``DecodeError`` when it is none. YAML first (JSON is YAML, mostly),
    and JSON when YAML's scanner stops at a tab or an escape JSON has and YAML lacks, as cfn-lint."""
    try:
        try:
            template = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
        except yaml.scanner.ScannerError as error:
            if not str(error.problem).startswith(_JSON_ONLY):
                raise
            template = json.loads(text, object_pairs_hook=_pairs)
    except (yaml.YAMLError, json.JSONDecodeError) as error:
        raise DecodeError(str(error)) from error
    if not isinstance(template, dict):
        raise DecodeError(f"a template is a mapping, not {type(template).__name__}")
    _check_expansion(template)
    return template
