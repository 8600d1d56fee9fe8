"""Import a Lambda function's handler as the Python runtime does: one loader for every local consumer.

The runtime puts the function's code folder (``/var/task``) first on ``sys.path`` and imports the
handler's module, so ``import parser_module`` beside ``handler.py`` works. Locally several
functions (of several use cases) share one interpreter and the same module names (every function
has a ``handler``), so ``function_imports`` opens an import window for one code folder: the
folder's module names already in ``sys.modules`` are set aside, and whatever the window imported
from the folder is dropped again when it closes (what was set aside comes back). Anything outside
the folder (``shared``, boto3, Powertools) is imported once, as a layer is.

Used by the local runner (``local.runner.lambdas``), the tests' ``load_function_from``, the sam
tier's ``handler_module`` and the CRIU tier's function host, which runs one function per process
and therefore keeps its folder on ``sys.path`` as Lambda does (``isolated=False``). Only the
standard library is imported here: the CRIU host must not import anything a handler would not.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

_IMPORT_LOCK = threading.RLock()


class HandlerInitError(Exception):
    """The function's init failed; ``error_type`` is what Lambda reports (``Runtime.ImportModuleError``,
    ``Runtime.HandlerNotFound``, ... or the exception's class name)."""

    def __init__(self, error_type: str, message: str, trace: list[str]) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.trace = trace


def local_names(code_dir: Path) -> set[str]:
    """Top-level module names the folder provides: its ``*.py`` files and its packages."""
    return {p.stem for p in code_dir.glob("*.py")} | {
        p.name for p in code_dir.iterdir() if p.is_dir() and (p / "__init__.py").is_file()
    }


@contextmanager
def function_imports(code_dir: Path) -> Iterator[None]:
    """An import window for one code folder: first on ``sys.path``, its module names fresh inside
    and gone afterwards (modules of the same names imported before the window are restored)."""
    folder = code_dir.resolve()
    names = local_names(folder)
    with _IMPORT_LOCK:
        shadowed = {name: mod for name, mod in list(sys.modules.items()) if name.split(".")[0] in names}
        for name in shadowed:
            del sys.modules[name]
        before = set(sys.modules)
        sys.path.insert(0, str(folder))
        try:
            yield
        finally:
            sys.path.remove(str(folder))
            for name in set(sys.modules) - before:
                file_attr = getattr(sys.modules[name], "__file__", None)
                if name.split(".")[0] in names or (file_attr and Path(file_attr).resolve().is_relative_to(folder)):
                    del sys.modules[name]
            sys.modules.update(shadowed)


def import_file(code_dir: Path, module_path: str, *, as_name: str | None = None) -> ModuleType:
    """Execute ``code_dir/<module_path>.py`` as a new module named ``as_name`` (default
    ``module_path``), registered in ``sys.modules`` under that name. Call it inside
    ``function_imports`` to keep the name from leaking."""
    file = code_dir.resolve() / (module_path.replace(".", "/") + ".py")
    if not file.is_file():
        raise ModuleNotFoundError(f"No module named '{module_path}'", name=module_path)
    name = as_name or module_path
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"Cannot load {file}", name=module_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def split_handler(handler: str) -> tuple[str, str]:
    """``module.path.function`` -> (``module.path``, ``function``); a malformed name is an init error."""
    module_path, _, attribute = handler.rpartition(".")
    if not module_path or not attribute:
        raise HandlerInitError("Runtime.MalformedHandlerName", f"Bad handler '{handler}'", [])
    return module_path, attribute


def load_handler(code_dir: Path, handler: str, *, isolated: bool = True) -> tuple[ModuleType, Callable[..., Any]]:
    """Import the handler's module afresh from ``code_dir`` and return (module, handler function).

    ``isolated`` (the default) imports inside ``function_imports``, so each call gets its own copy
    and nothing leaks to the next function; ``isolated=False`` leaves the folder on ``sys.path``
    and the modules imported, as in a Lambda execution environment (one function per process).
    Failures raise ``HandlerInitError`` with the error type Lambda reports.
    """
    module_path, attribute = split_handler(handler)
    try:
        if isolated:
            with function_imports(code_dir):
                module = import_file(code_dir, module_path)
        else:
            sys.path.insert(0, str(code_dir.resolve()))
            module = importlib.import_module(module_path)
    except ImportError as e:
        raise HandlerInitError(
            "Runtime.ImportModuleError",
            f"Unable to import module '{module_path}': {e}",
            traceback.format_exception(e) if not isinstance(e, ModuleNotFoundError) or e.name != module_path else [],
        ) from e
    except SyntaxError as e:
        raise HandlerInitError("Runtime.UserCodeSyntaxError", str(e), traceback.format_exception(e)) from e
    except Exception as e:
        raise HandlerInitError(type(e).__name__, str(e), traceback.format_exception(e)) from e
    function = getattr(module, attribute, None)
    if not callable(function):
        raise HandlerInitError(
            "Runtime.HandlerNotFound", f"Handler '{attribute}' missing on module '{module_path}'", []
        )
    return module, function
