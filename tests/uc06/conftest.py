"""UC6 test helpers: load a function's modules as Lambda does (its folder first on sys.path).

Every function folder has a ``handler.py`` and may have modules beside it; other use cases can
use the same module names. ``load_function_module`` imports a module of one function folder under
a unique name and removes the folder's bare module names from ``sys.modules`` afterwards, so
functions (and use cases) never see each other's modules.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.support.functions import load_function_from
from tests.support.templates import REPO_ROOT

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


class FakeDeadline:
    """A deadline the test controls: ``remaining`` seconds, decremented by ``tick`` per query."""

    def __init__(self, remaining: float = 60.0, *, tick: float = 0.0) -> None:
        self.remaining = remaining
        self.tick = tick
        self.checks: list[str] = []

    def remaining_seconds(self) -> float:
        value = self.remaining
        self.remaining -= self.tick
        return value

    def expired(self) -> bool:
        return self.remaining <= 0

    def check(self, what: str, *, reserve: float = 0.0) -> None:
        from shared.errors import DeadlineExceededError

        self.checks.append(what)
        if self.remaining <= reserve:
            raise DeadlineExceededError(f"time budget exhausted before {what}")


@pytest.fixture
def fake_deadline() -> Callable[..., FakeDeadline]:
    return FakeDeadline


class FailingClient:
    """Wraps a boto3 client; ``fail(operation, error, times, when)`` makes matching calls raise ``error``."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self._rules: dict[str, list[tuple[Exception, Callable[..., bool]]]] = {}
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def fail(
        self, operation: str, error: Exception, times: int = 1, when: Callable[..., bool] = lambda **_: True
    ) -> None:
        self._rules.setdefault(operation, []).extend([(error, when)] * times)

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name.startswith("_") or name in ("get_paginator", "meta"):
            return attr

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            rules = self._rules.get(name, [])
            for index, (error, when) in enumerate(rules):
                if when(**kwargs):
                    del rules[index]
                    raise error
            return attr(**kwargs)

        return call


@pytest.fixture
def failing_client() -> Callable[[Any], FailingClient]:
    return FailingClient


def client_error(code: str, status: int, operation: str = "Operation") -> Exception:
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": code, "Message": f"simulated {code}"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        operation,
    )


@pytest.fixture
def gdstk_files(tmp_path: Path) -> Callable[..., dict[str, bytes]]:
    """Write a small two-level library as GDSII and OASIS (both validations, with and without CBLOCK)."""
    import gdstk

    def make(name: str = "LIB") -> dict[str, bytes]:
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

    return make


class RecordingS3:
    """Stands in for the S3 client the sample generator writes through: keeps the objects in memory."""

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    def put_object(self, *, Bucket: str, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:  # noqa: N803
        self.objects[Key] = Body
        return {}


def template_default(parameter: str) -> str:
    """The default value of a UC6 template parameter."""
    from tests.support.templates import load_template

    return str(load_template(TEMPLATE)["Parameters"][parameter]["Default"])
