"""UC6 (semiconductor-eda) test helpers: its paths, and its functions loaded as Lambda loads them.

``load_function`` imports a module of one function folder under a unique name and removes the
folder's bare module names from ``sys.modules`` afterwards, so functions (and use cases) never see
each other's modules.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.functions import load_function_from
from tests.support.templates import REPO_ROOT, load_template

UC_DIR = REPO_ROOT / "semiconductor-eda"
FUNCTIONS_DIR = UC_DIR / "functions"
TEMPLATE = UC_DIR / "template-deploy.yaml"
EVENTS = "uc06-semiconductor-eda"
ACCESS_POINT_ENV = "ACCESS_POINT_ARN"


def load_function(function: str, *modules: str) -> SimpleNamespace:
    """Import ``functions/<function>/<module>.py`` for each module, freshly and together."""
    return load_function_from(FUNCTIONS_DIR / function, *modules, prefix="uc06")


def load_metadata_extraction(monkeypatch: pytest.MonkeyPatch, access_point_arn: str, output_bucket: str) -> Any:
    """The metadata_extraction function (handler, extraction, layout) configured for a test."""
    monkeypatch.setenv("ACCESS_POINT_ARN", access_point_arn)
    monkeypatch.setenv("OUTPUT_BUCKET", output_bucket)
    monkeypatch.setenv("RANGE_CHUNK_BYTES", str(64 * 1024))
    return load_function("metadata_extraction", "handler", "extraction", "layout")


def template_default(parameter: str) -> str:
    """The default value of a UC6 template parameter."""
    return str(load_template(TEMPLATE)["Parameters"][parameter]["Default"])


def gdstk_library(tmp_path: Path, name: str = "LIB") -> dict[str, bytes]:
    """A small two-level library written by gdstk as GDSII and OASIS (both validations, with and without CBLOCK)."""
    import gdstk

    lib = gdstk.Library(name, unit=1e-6, precision=1e-9)
    leaf = lib.new_cell("LEAF")
    leaf.add(gdstk.rectangle((0, 0), (2, 1), layer=1, datatype=0))
    leaf.add(gdstk.Label("pin", (0, 0), layer=10, texttype=2))
    mid = lib.new_cell("MID")
    mid.add(gdstk.Reference(leaf, (0, 0), columns=4, rows=2, spacing=(3, 3)))
    mid.add(gdstk.FlexPath([(0, 0), (5, 5)], 0.1, layer=2, datatype=1, simple_path=True))
    top = lib.new_cell("TOP")
    top.add(gdstk.Reference(mid, (10, 0), rotation=1.5708, magnification=0.5, x_reflection=True))
    top.add(gdstk.ellipse((0, 0), 4, layer=3))
    lib.new_cell("UNUSED")
    out: dict[str, bytes] = {}
    lib.write_gds(tmp_path / "lib.gds")
    out["gds"] = (tmp_path / "lib.gds").read_bytes()
    variants: dict[str, dict[str, Any]] = {
        "oas": {"compression_level": 6, "validation": "crc32"},
        "oas_plain": {"compression_level": 0, "validation": "checksum32"},
        "oas_novalidation": {"compression_level": 9, "validation": None},
    }
    for label, kwargs in variants.items():
        path = tmp_path / f"{label}.oas"
        lib.write_oas(path, **kwargs)
        out[label] = path.read_bytes()
    return out
