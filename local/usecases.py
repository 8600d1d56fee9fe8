"""The one reader of a use case's template: its functions (code folder, handler, declared
environment, layers, timeout, memory, runtime) and events, for every local consumer.

The sam engine, the CRIU tier, the benchmarks and the tests use ``discover()``/``load_use_case()``;
the local runner's ``Stack`` (local/runner/stack.py) reads its functions with ``read_functions``,
passing its intrinsic resolver, and adds only what a resolved stack knows (name, ARN, resolved
environment, aliases). Parameters and their validation are ``local.template``'s.

A use case is a folder with a ``template-deploy.yaml``; its events live in
``events/uc<NN>-<folder>/<function>-event.json`` where ``<function>`` is the name of the function's code
folder (``Code: functions/<function>``). Nothing is listed by hand, so a use case is picked up as
soon as its template lands.

Functions are ordered as the state machine runs them (the order in which the definition names
their ``${<Name>FunctionArn}`` substitutions), because later functions read what earlier ones wrote.
"""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local import template as template_model
from local.usecase_names import (
    REPO_ROOT,
    TEMPLATE_NAME,
    UseCaseError,
    UseCaseFolder,
    discover_use_cases,
    events_dir_of,
    folders,
    select,
)

__all__ = [  # the names by which use cases are picked (local.usecase_names) are this module's too
    "REPO_ROOT",
    "TEMPLATE_NAME",
    "FunctionSpec",
    "UseCase",
    "UseCaseError",
    "UseCaseFolder",
    "discover",
    "events_dir_of",
    "folders",
    "load_template",
    "load_use_case",
    "read_functions",
    "select",
]

_SUBSTITUTION = re.compile(r"\$\{([A-Za-z0-9_]+)\}")


@dataclass(frozen=True)
class FunctionSpec:
    logical_id: str  # DiscoveryFunction
    name: str  # discovery (its code folder and event file name)
    code_dir: Path
    handler: str
    environment: Mapping[str, Any]  # the template's Environment.Variables (intrinsics unresolved)
    timeout_s: int = 3  # the template's Timeout (Lambda's default when absent)
    memory_mb: int = 128  # the template's MemorySize
    runtime: str = "python3.13"  # the template's Runtime
    layers: tuple[Any, ...] = ()  # the template's Layers (intrinsics unresolved)
    condition: str | None = None  # the resource's Condition: it exists only when that holds


@dataclass(frozen=True)
class UseCase:
    name: str  # semiconductor-eda
    directory: Path
    template_path: Path
    events_dir: Path  # events/uc06-semiconductor-eda
    template: Mapping[str, Any]
    functions: tuple[FunctionSpec, ...]
    layer_dirs: tuple[Path, ...]

    @property
    def events_name(self) -> str:
        return self.events_dir.name

    @property
    def config_env(self) -> str:
        """Its samconfig.sample.toml environment: ``uc06`` for events/uc06-semiconductor-eda."""
        return self.events_dir.name.split("-", 1)[0]

    def local_invoke_overrides(self, samconfig: Path | None = None) -> dict[str, str]:
        """``parameter_overrides`` of its ``local_invoke`` section in samconfig.sample.toml: the
        stack parameters ``sam local invoke --config-env <env>`` passes (values no function's
        environment carries, such as a model archive URL)."""
        path = samconfig or self.directory.parent / "samconfig.sample.toml"
        if not path.is_file():
            return {}
        with path.open("rb") as handle:
            config = tomllib.load(handle)
        section = config.get(self.config_env, {}).get("local_invoke", {}).get("parameters", {})
        words = shlex.split(str(section.get("parameter_overrides", "")))
        return dict(word.split("=", 1) for word in words if "=" in word)

    @property
    def package(self) -> str:
        """Python module name of the use case's sample generator (local/samples/<package>.py)."""
        return self.name.replace("-", "_")

    def event_path(self, function: FunctionSpec) -> Path:
        return self.events_dir / f"{function.name}-event.json"

    def load_event(self, function: FunctionSpec) -> dict[str, Any]:
        path = self.event_path(function)
        try:
            event = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UseCaseError(f"{self.name}: no event for {function.logical_id} ({path})") from None
        except json.JSONDecodeError as exc:
            raise UseCaseError(f"{path}: not JSON: {exc}") from exc
        if not isinstance(event, dict):
            raise UseCaseError(f"{path}: an event must be a JSON object")
        return event


def load_template(path: Path) -> dict[str, Any]:
    """The template as ``local.template`` reads it for every local consumer (as cfn-lint's decoder:
    short-form tags become their long form, nothing is stripped)."""
    try:
        return template_model.load_template(path)
    except template_model.TemplateError as exc:
        raise UseCaseError(str(exc)) from exc


def _walk_strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, Mapping):
        for value in node.values():
            yield from _walk_strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk_strings(value)


def _function_order(resources: Mapping[str, Any], function_ids: list[str]) -> list[str]:
    """Function logical ids in the order the state machines' definitions reference them."""
    ordered: list[str] = []
    for resource in resources.values():
        if resource.get("Type") != "AWS::StepFunctions::StateMachine":
            continue
        props = resource.get("Properties") or {}
        substitutions = props.get("DefinitionSubstitutions") or {}
        for text in _walk_strings(props.get("Definition") or {}):
            for name in _SUBSTITUTION.findall(text):
                for target in _walk_strings(substitutions.get(name)):
                    # !GetAtt XFunction.Arn, !Ref XAlias / XFunction all name the function's stem.
                    stem = target.split(".", 1)[0]
                    for candidate in (stem, stem.removesuffix("Alias") + "Function"):
                        if candidate in function_ids and candidate not in ordered:
                            ordered.append(candidate)
    return ordered + [fid for fid in function_ids if fid not in ordered]


def _local_path(base: Path, value: Any, what: str) -> Path:
    if not isinstance(value, str):
        raise UseCaseError(f"{what}: expected a local path for a local run, got {value!r}")
    return (base / value).resolve()


def _int_property(props: Mapping[str, Any], name: str, default: int, what: str) -> int:
    value = props.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).isdigit():
        raise UseCaseError(f"{what}.{name}: expected a whole number for a local run, got {value!r}")
    return int(value)


def _identity(value: Any) -> Any:
    return value


def read_functions(
    template: Mapping[str, Any], template_path: Path, resolve: Callable[[Any], Any] | None = None
) -> tuple[FunctionSpec, ...]:
    """Every ``AWS::Lambda::Function`` of ``template``, in the order the state machines run them.

    ``resolve`` (an ``IntrinsicResolver.resolve``) evaluates Code, Handler, Timeout, MemorySize and
    Runtime first, so a stack whose Timeout is a ``Ref`` reads as deployed; without it they must be
    literals, as ``sam local invoke`` needs them. Environment and Layers stay as declared (their
    intrinsics unresolved): what they resolve to depends on the stack (or env.json) they run in.
    """
    evaluate = resolve or _identity
    resources: Mapping[str, Any] = template.get("Resources") or {}
    directory = template_path.parent
    function_ids = [lid for lid, res in resources.items() if res.get("Type") == "AWS::Lambda::Function"]
    functions = []
    for logical_id in _function_order(resources, function_ids):
        raw = resources[logical_id].get("Properties") or {}
        what = f"{template_path}: {logical_id}"
        props = {
            key: evaluate(raw[key]) for key in ("Code", "Handler", "Timeout", "MemorySize", "Runtime") if key in raw
        }
        code_dir = _local_path(directory, props.get("Code"), f"{what}.Code")
        env = ((raw.get("Environment") or {}).get("Variables")) or {}
        functions.append(
            FunctionSpec(
                logical_id=logical_id,
                name=code_dir.name,
                code_dir=code_dir,
                handler=str(props.get("Handler", "")),
                environment=dict(env),
                timeout_s=_int_property(props, "Timeout", 3, what),
                memory_mb=_int_property(props, "MemorySize", 128, what),
                runtime=str(props.get("Runtime", "python3.13")),
                layers=tuple(raw.get("Layers") or ()),
                condition=resources[logical_id].get("Condition"),
            )
        )
    return tuple(functions)


def load_use_case(directory: Path, events_root: Path | None = None) -> UseCase:
    template_path = directory / TEMPLATE_NAME
    template = load_template(template_path)
    resources: Mapping[str, Any] = template.get("Resources") or {}
    events_dir = events_dir_of(directory, events_root)
    layer_dirs = tuple(
        _local_path(directory, (res.get("Properties") or {}).get("Content"), f"{template_path}: {lid}.Content")
        for lid, res in resources.items()
        if res.get("Type") == "AWS::Lambda::LayerVersion"
    )
    return UseCase(
        name=directory.name,
        directory=directory,
        template_path=template_path,
        events_dir=events_dir,
        template=template,
        functions=read_functions(template, template_path),
        layer_dirs=layer_dirs,
    )


def discover(root: Path = REPO_ROOT) -> list[UseCase]:
    """Every use case present: each ``*/template-deploy.yaml`` under ``root``."""
    return [load_use_case(directory, root / "events") for directory in discover_use_cases(root)]
