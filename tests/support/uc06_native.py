"""UC6's compiled decoder loops for the tests: built on demand, switched on and off per test.

``kernel()`` runs ``scripts/build-native.sh`` (idempotent: a stamp, so a built library costs a
hash; parallel workers may race, the script renames atomically) and imports
``.build/native/uc06_layoutscan*.so``. A build failure fails the test that needs the extension:
it is never skipped. ``use(layout_module, implementation)`` points the decoders of one loaded
copy of ``layout.py`` at the extension ("native") or at their pure-Python loops ("python").
"""

from __future__ import annotations

import functools
import importlib.machinery
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from tests.support.templates import REPO_ROOT

NATIVE_DIR = REPO_ROOT / ".build" / "native"
IMPLEMENTATIONS = ("python", "native")


@functools.cache
def built() -> Path:
    """NATIVE_DIR with the extension and its stamp, built first if missing or stale."""
    result = subprocess.run(
        [str(REPO_ROOT / "scripts/build-native.sh"), "--quiet"],
        env={**os.environ, "BUILD_NATIVE_PYTHON": sys.executable},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"scripts/build-native.sh failed:\n{result.stderr}")
    return NATIVE_DIR


def seed_built(root: Path) -> None:
    """Gives a scratch copy of the tree at ``root`` the checkout's built extension and its stamp,
    as a checkout whose setup.sh has run has them: build-native.sh there finds it up to date
    instead of compiling it again (0.3 s of CPU, some 30 times a run). A changed source, script,
    compiler or interpreter still rebuilds it: the stamp covers them."""
    shutil.copytree(built(), root / ".build" / "native")


@functools.cache
def kernel() -> ModuleType:
    """The built extension module (built first if missing or stale)."""
    (library,) = built().glob("uc06_layoutscan.cpython-313-*.so")
    loader = importlib.machinery.ExtensionFileLoader("uc06_layoutscan", str(library))
    spec = importlib.util.spec_from_file_location("uc06_layoutscan", library, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


@contextmanager
def use(layout: Any, implementation: str) -> Iterator[None]:
    """Run the decoders of ``layout`` (a loaded ``layout.py``) with ``implementation``'s loops."""
    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
    saved = layout.native
    layout.native = kernel() if implementation == "native" else None
    try:
        yield
    finally:
        layout.native = saved
