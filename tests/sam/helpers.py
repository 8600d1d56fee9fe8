"""Helpers for the sam tier's tests: the use cases as the sam engine sees them, handler loading."""

from __future__ import annotations

import copy
import functools
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from local.handlers import function_imports, import_file, split_handler
from local.usecases import REPO_ROOT, FunctionSpec, UseCase, discover

ENV_JSON = REPO_ROOT / "events" / "env.json"


@functools.cache
def _discovered() -> tuple[UseCase, ...]:
    return tuple(discover())


def use_cases() -> list[UseCase]:
    """Every use case (``local.usecases.discover()``). The templates are parsed once per test
    process (about 0.1 to 0.3 s each time, and the sam tests asked dozens of times); each call gets
    its own deep copy, so nothing a test does to one reaches another."""
    return list(copy.deepcopy(_discovered()))


def all_functions() -> list[tuple[UseCase, FunctionSpec]]:
    return [(uc, fn) for uc in use_cases() for fn in uc.functions]


def function_id(pair: tuple[UseCase, FunctionSpec]) -> str:
    return f"{pair[0].name}/{pair[1].name}"


def env_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ENV_JSON.read_text(encoding="utf-8"))
    return data


@contextmanager
def handler_module(function: FunctionSpec, environment: Mapping[str, str]) -> Iterator[ModuleType]:
    """Import the function's ``handler`` module fresh (``local.handlers``: its code folder first on
    sys.path, its own modules dropped again afterwards), with ``environment`` applied."""
    saved_env = dict(os.environ)
    module_path, _ = split_handler(function.handler)
    os.environ.update(environment)
    try:
        with function_imports(function.code_dir):
            yield import_file(function.code_dir, module_path)
    finally:
        os.environ.clear()
        os.environ.update(saved_env)


def tier_invoke_image(engine: Any, server: Any, files: Mapping[str, Path] | None = None) -> str:
    """The invoke image for the container tests: ``FSXN_SAM_INVOKE_IMAGE`` (the offline image
    scripts/test-sam.sh builds) or the official one (pulled), pointed at ``server``."""
    from local.sam import containers
    from local.sam_engine import container_environment

    base = os.environ.get("FSXN_SAM_INVOKE_IMAGE") or containers.OFFICIAL_IMAGE
    return containers.build_invoke_image(
        engine,
        base,
        server.ca_bundle,
        container_environment(server),
        pull="FSXN_SAM_INVOKE_IMAGE" not in os.environ,
        files=files,
    )
