"""Load a Lambda function's modules as Lambda does (its folder first on ``sys.path``).

Every function folder has a ``handler.py`` and may have modules beside it; other functions and
use cases can use the same module names. ``load_function_from`` imports the modules of one
function folder together in one ``local.handlers.function_imports`` window (the loader the local
runner uses), the handler under a unique name, so functions (and use cases) never see each
other's modules.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

from local.handlers import function_imports, import_file, local_names


def load_function_from(folder: Path, *modules: str, prefix: str) -> SimpleNamespace:
    """Import ``folder/<module>.py`` for each module (default: ``handler``), freshly and together.

    ``handler`` is imported as ``<prefix>_<folder name>_handler``; the other modules under their
    bare names inside the import window, so a module and its siblings share module objects.
    """
    loaded: dict[str, ModuleType] = {}
    with function_imports(folder):
        for module in modules or ("handler",):
            if module == "handler":
                loaded[module] = import_file(folder, "handler", as_name=f"{prefix}_{folder.name}_handler")
            else:
                loaded[module] = importlib.import_module(module)
        for name in local_names(folder):
            if name in sys.modules and name not in loaded:
                loaded[name] = sys.modules[name]
    return SimpleNamespace(**loaded)
