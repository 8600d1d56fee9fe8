"""``moto.batch`` imported on first use instead of with moto's Step Functions interpreter.

The interpreter's task factory imports its Batch integration, which imports ``moto.batch`` and,
through it, all of ``moto.ec2`` (region tables, instance types: about 1.1 s per process). Nothing
in the pipelines calls Batch or EC2. A meta path finder gives ``moto.batch`` its real spec with a
loader that runs the package's ``__init__`` (``from .models import batch_backends``) as a module
``__getattr__`` instead: submodules such as ``moto.batch.utils`` import as before, and
``batch_backends`` (what mock_aws looks up when a Batch request arrives) loads the models on first
access. Installing the finder imports nothing, so ``local.cli --help`` stays instant.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

_PACKAGE = "moto.batch"


class _DeferredInit(importlib.abc.Loader):
    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # the default module object

    def exec_module(self, module: ModuleType) -> None:
        def __getattr__(name: str) -> Any:  # noqa: N807 - the module-level hook (PEP 562)
            if name == "batch_backends":
                return importlib.import_module(f"{_PACKAGE}.models").batch_backends
            raise AttributeError(f"module {_PACKAGE!r} has no attribute {name!r}")

        module.__getattr__ = __getattr__  # type: ignore[method-assign]


class _DeferredBatchFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != _PACKAGE:
            return None
        real = importlib.machinery.PathFinder.find_spec(fullname, path)
        if real is None or real.origin is None:  # pragma: no cover - moto is a pinned dependency
            return None
        return importlib.util.spec_from_file_location(
            fullname, real.origin, loader=_DeferredInit(),
            submodule_search_locations=real.submodule_search_locations,
        )


def defer_moto_batch() -> None:
    """Install the finder once; a ``moto.batch`` already imported stays as it is."""
    if not any(isinstance(finder, _DeferredBatchFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _DeferredBatchFinder())
