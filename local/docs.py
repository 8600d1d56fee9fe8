"""Generated documentation: for every use case, a Mermaid diagram of its state machine (from the
template's ``Definition``) and its parameter table (from the template's ``Parameters``), written
into the README files between marker comments::

    <!-- generated:<uc>:state-machine start -->  ...  <!-- generated:<uc>:state-machine end -->
    <!-- generated:<uc>:parameters start -->     ...  <!-- generated:<uc>:parameters end -->

``python -m local.docs`` rewrites the marked blocks; ``--check`` changes nothing and exits 1
naming every stale block (tests/local/test_docs.py runs it, so a checked-in copy cannot go stale).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from local.runner.stack import load_template

REPO_ROOT = Path(__file__).resolve().parents[1]
_MARKER = re.compile(
    r"(<!-- generated:(?P<name>[a-z0-9-]+:[a-z-]+) start -->\n)(?P<body>.*?)(<!-- generated:(?P=name) end -->)", re.S
)


def use_cases(root: Path = REPO_ROOT) -> list[Path]:
    return sorted(path.parent for path in root.glob("*/template-deploy.yaml"))


# --- state machine diagram ---------------------------------------------------------------------
def _node_id(prefix: str, name: str) -> str:
    return prefix + re.sub(r"[^A-Za-z0-9_]", "_", name)


_SUBSTITUTION = re.compile(r"^\$\{([A-Za-z0-9_]+)\}$")


def _substituted(value: Any, substitutions: Mapping[str, Any]) -> str:
    """A ``${Name}`` placeholder as the text it stands for (a !Sub string), else the name."""
    match = _SUBSTITUTION.match(str(value))
    if not match:
        return str(value)
    target = substitutions.get(match.group(1))
    if isinstance(target, Mapping) and isinstance(target.get("Fn::Sub"), str):
        return str(target["Fn::Sub"])
    return match.group(1)


def _label(state: Mapping[str, Any], name: str, substitutions: Mapping[str, Any]) -> str:
    kind = state.get("Type", "?")
    if kind == "Task":
        resource = _substituted(state.get("Resource", ""), substitutions)
        service = resource.split(":states:::", 1)[1] if ":states:::" in resource else resource
        arguments = state.get("Parameters") or state.get("Arguments") or {}
        function = arguments.get("FunctionName") if isinstance(arguments, Mapping) else None
        target = f" {_substituted(function, substitutions).removesuffix('Arn')}" if function else ""
        return f"{name}<br/><i>{service}{target}</i>"
    if kind == "Map":
        mode = (state.get("ItemProcessor", {}) or {}).get("ProcessorConfig", {}).get("Mode", "INLINE")
        return f"{name}<br/><i>{'Distributed Map' if mode == 'DISTRIBUTED' else 'Map'}</i>"
    return name


def _shape(kind: str, node: str, label: str) -> str:
    text = label.replace('"', "'")
    if kind == "Choice":
        return f'{node}{{"{text}"}}'
    if kind in ("Succeed", "Fail"):
        return f'{node}(["{text}"])'
    return f'{node}["{text}"]'


def _states(states: Mapping[str, Any], prefix: str, indent: str, subs: Mapping[str, Any]) -> Iterator[str]:
    for name, state in states.items():
        node = _node_id(prefix, name)
        kind = state.get("Type", "?")
        if kind in ("Map", "Parallel"):
            processors = [state["ItemProcessor"]] if kind == "Map" else list(state.get("Branches", []))
            yield f'{indent}subgraph {node}["{_label(state, name, subs)}"]'
            for index, processor in enumerate(processors):
                inner = f"{node}_{index}_"
                yield f"{indent}    {inner}_start((start)) --> {_node_id(inner, processor['StartAt'])}"
                yield from _states(processor["States"], inner, indent + "    ", subs)
            yield f"{indent}end"
        else:
            yield indent + _shape(kind, node, _label(state, name, subs))
        for target, label in _transitions(state):
            arrow = f"-.->|{label}|" if label.startswith("catch") else (f"-->|{label}|" if label else "-->")
            yield f"{indent}{node} {arrow} {_node_id(prefix, target)}"
        if state.get("End") is True:
            # ("end" itself is a Mermaid keyword)
            yield f"{indent}{node} --> {prefix}_end((end))"


def _transitions(state: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    if "Next" in state:
        yield state["Next"], ""
    for index, choice in enumerate(state.get("Choices", []) or []):
        yield choice["Next"], f"rule {index + 1}"
    if "Default" in state:
        yield state["Default"], "default"
    for catch in state.get("Catch", []) or []:
        yield catch["Next"], "catch " + " ".join(catch.get("ErrorEquals", []))


def state_machine_diagram(template: Mapping[str, Any]) -> str:
    """A Mermaid flowchart per AWS::StepFunctions::StateMachine of the template."""
    blocks = []
    for logical, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::StepFunctions::StateMachine":
            continue
        definition = resource["Properties"]["Definition"]
        subs = resource["Properties"].get("DefinitionSubstitutions") or {}
        lines = ["```mermaid", "flowchart TD", f"    _start((start)) --> {_node_id('', definition['StartAt'])}"]
        lines += list(_states(definition["States"], "", "    ", subs))
        lines.append("```")
        blocks.append(f"`{logical}`:\n\n" + "\n".join(lines))
    return "\n\n".join(blocks) + "\n"


# --- parameter table -------------------------------------------------------------------------------
def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _allowed(spec: Mapping[str, Any]) -> str:
    if "AllowedValues" in spec:
        return ", ".join(f"`{value}`" for value in spec["AllowedValues"])
    parts = []
    if "AllowedPattern" in spec:
        parts.append(f"pattern `{spec['AllowedPattern']}`")
    if "MinValue" in spec or "MaxValue" in spec:
        parts.append(f"{spec.get('MinValue', '')} to {spec.get('MaxValue', '')}")
    return _cell("; ".join(parts))


def parameter_table(template: Mapping[str, Any]) -> str:
    rows = ["| parameter | default | allowed | description |", "|---|---|---|---|"]
    for name, spec in (template.get("Parameters") or {}).items():
        default = "required" if "Default" not in spec else f"`{spec['Default']}`" if spec["Default"] != "" else "`''`"
        rows.append(f"| `{name}` | {default} | {_allowed(spec)} | {_cell(spec.get('Description', ''))} |")
    return "\n".join(rows) + "\n"


# --- the marked blocks -----------------------------------------------------------------------------
def generated(root: Path = REPO_ROOT) -> dict[str, str]:
    """{marker name: content} for every use case."""
    blocks = {}
    for uc in use_cases(root):
        template = load_template(uc / "template-deploy.yaml")
        blocks[f"{uc.name}:state-machine"] = state_machine_diagram(template)
        blocks[f"{uc.name}:parameters"] = parameter_table(template)
    return blocks


def render(text: str, blocks: Mapping[str, str]) -> str:
    """``text`` with every marked block's body replaced by its generated content.

    A marker naming no generated block is an error (a use case renamed or removed)."""

    def replace(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in blocks:
            raise KeyError(f"marker generated:{name} names no generated block (known: {sorted(blocks)})")
        return match.group(1) + blocks[name] + match.group(4)

    return _MARKER.sub(replace, text)


def documents(root: Path = REPO_ROOT) -> list[Path]:
    return [root / "README.md", *(uc / "README.md" for uc in use_cases(root))]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.docs", description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block is stale")
    parser.add_argument("--root", type=Path, default=REPO_ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    blocks = generated(args.root)
    stale = []
    for path in documents(args.root):
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        new = render(text, blocks)
        if new != text:
            stale.append(path)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    for path in stale:
        sys.stderr.write(f"{'stale' if args.check else 'updated'}: {path.relative_to(args.root)}\n")
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
