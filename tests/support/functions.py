"""Load one Lambda function's modules the way Lambda does (its folder first on ``sys.path``).

Use-case folders reuse module names (``handler``, ``extraction`` ...), so each load imports the
folder's modules freshly under a unique name for ``handler`` and removes the folder's bare names
from ``sys.modules`` afterwards: functions never see each other's modules.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace


def load_function_modules(folder: Path, *modules: str, prefix: str = "fn") -> SimpleNamespace:
    """Import ``folder/<module>.py`` for each module (``handler`` by default), together."""
    siblings = {p.stem for p in folder.glob("*.py")}
    saved = {name: sys.modules.pop(name) for name in list(sys.modules) if name in siblings}
    sys.path.insert(0, str(folder))
    loaded: dict[str, ModuleType] = {}
    try:
        for module in modules or ("handler",):
            if module == "handler":
                spec = importlib.util.spec_from_file_location(f"{prefix}_{folder.name}_handler", folder / "handler.py")
                if spec is None or spec.loader is None:
                    raise ImportError(f"cannot load {folder / 'handler.py'}")
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
