"""The order tests/conftest.py hands modules to pytest-xdist's workers: the script and pipeline
layers first, each module's tests still together and in their own order."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pytest

from tests.conftest import pytest_collection_modifyitems

pytestmark = pytest.mark.unit


@dataclass
class Item:
    """What the hook reads of a pytest.Item: the markers that apply to it."""

    nodeid: str
    marker: str

    def get_closest_marker(self, name: str) -> Any:
        return object() if name == self.marker else None


def test_script_and_workflow_modules_come_first_and_the_rest_keep_their_order():
    collected = [
        Item("tests/guard/test_a.py::one", "guard"),
        Item("tests/guard/test_a.py::two", "guard"),
        Item("tests/local/test_readme.py::one", "scripts"),
        Item("tests/property/test_b.py::one", "property"),
        Item("tests/scripts/test_c.py::one", "scripts"),
        Item("tests/scripts/test_c.py::two", "scripts"),
        Item("tests/unit/test_d.py::one", "unit"),
        Item("tests/workflow/test_e.py::one", "workflow"),
    ]
    items = cast(list[pytest.Item], list(collected))
    pytest_collection_modifyitems(items)
    assert [item.nodeid for item in items] == [
        "tests/local/test_readme.py::one",
        "tests/scripts/test_c.py::one",
        "tests/scripts/test_c.py::two",
        "tests/workflow/test_e.py::one",
        "tests/guard/test_a.py::one",
        "tests/guard/test_a.py::two",
        "tests/property/test_b.py::one",
        "tests/unit/test_d.py::one",
    ]
