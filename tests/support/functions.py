"""Load a Lambda function's modules as Lambda does (its folder first on ``sys.path``).

Every function folder has a ``handler.py`` and may have modules beside it; other functions and
use cases can use the same module names. ``load_function_from`` imports the modules of one
function folder together, the handler under a unique name, and removes the folder's bare module
names from ``sys.modules`` afterwards, so functions (and use cases) never see each other's modules.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace


def load_function_from(folder: Path, *modules: str, prefix: str) -> SimpleNamespace:
    """Import ``folder/<module>.py`` for each module (default: ``handler``), freshly and together.

    ``handler`` is imported as ``<prefix>_<folder name>_handler``; the other modules under their
    bare names inside the import window, so a module and its siblings share module objects.
    """
    siblings = {p.stem for p in folder.glob("*.py")}
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if name in siblings}
    sys.path.insert(0, str(folder))
    loaded: dict[str, ModuleType] = {}
    try:
        for module in modules or ("handler",):
            if module == "handler":
                spec = importlib.util.spec_from_file_location(f"{prefix}_{folder.name}_handler", folder / "handler.py")
                assert spec is not None
                assert spec.loader is not None
                handler = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(handler)
                loaded[module] = handler
            else:
                loaded[module] = importlib.import_module(module)
        for name in siblings:
            if name in sys.modules and name not in loaded:
                loaded[name] = sys.modules[name]
        return SimpleNamespace(**loaded)
    finally:
        sys.path.remove(str(folder))
        for name in siblings:
            sys.modules.pop(name, None)
        sys.modules.update(saved)
