"""Helpers for the sam tier's tests: the use cases as the sam engine sees them, handler loading."""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from local.sam.provision import Resolver, UnresolvedError, function_environment, known_values
from local.sam.usecases import REPO_ROOT, FunctionSpec, UseCase, discover

ENV_JSON = REPO_ROOT / "events" / "env.json"


def use_cases() -> list[UseCase]:
    return discover()


def all_functions() -> list[tuple[UseCase, FunctionSpec]]:
    return [(uc, fn) for uc in use_cases() for fn in uc.functions]


def function_id(pair: tuple[UseCase, FunctionSpec]) -> str:
    return f"{pair[0].name}/{pair[1].name}"


def env_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ENV_JSON.read_text(encoding="utf-8"))
    return data


def sam_environment(use_case: UseCase, function: FunctionSpec, env: Mapping[str, Any]) -> dict[str, str]:
    """The variables ``sam local invoke --env-vars`` gives the function: template values (parameter
    defaults resolved) overridden by env.json; variables nothing resolves are left out."""
    resolver = Resolver(use_case.template, known_values(use_case, env))
    out: dict[str, str] = {}
    for name, expression in function.environment.items():
        try:
            value = resolver.resolve(expression)
        except UnresolvedError:
            continue
        if isinstance(value, str | int | float | bool):
            out[name] = str(value).lower() if isinstance(value, bool) else str(value)
    out.update(function_environment(env, function.logical_id, list(function.environment)))
    return out


@contextmanager
def handler_module(function: FunctionSpec, environment: Mapping[str, str]) -> Iterator[ModuleType]:
    """Import the function's ``handler`` module fresh, with its code folder first on sys.path and
    ``environment`` applied; the function's own modules are dropped again afterwards (every
    function has a ``handler`` module)."""
    code_dir = str(function.code_dir)
    local_names = {p.stem for p in function.code_dir.glob("*.py")}
    saved_env = dict(os.environ)

    def drop() -> None:
        for name in list(sys.modules):
            if name.split(".", 1)[0] in local_names:
                del sys.modules[name]

    drop()
    os.environ.update(environment)
    sys.path.insert(0, code_dir)
    try:
        yield importlib.import_module(Path(function.handler.rsplit(".", 1)[0]).as_posix().replace("/", "."))
    finally:
        sys.path.remove(code_dir)
        drop()
        os.environ.clear()
        os.environ.update(saved_env)
