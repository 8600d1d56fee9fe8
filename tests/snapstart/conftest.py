"""Fixtures for the SnapStart tests: the loopback endpoints and function specs of the fixtures."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.snapstart.criu import REPO_ROOT, FunctionSpec
from tests.snapstart.loopback import Recorder, loopback_aws

FIXTURES = REPO_ROOT / "tests" / "snapstart" / "fixtures"


@pytest.fixture
def loopback() -> Iterator[tuple[str, Recorder]]:
    with loopback_aws() as endpoint_and_recorder:
        yield endpoint_and_recorder


@pytest.fixture
def fixture_spec(loopback: tuple[str, Recorder]) -> Callable[[str], FunctionSpec]:
    """``fixture_spec("good")``: the fixture handler in tests/snapstart/fixtures/good/."""
    endpoint, _ = loopback

    def make(name: str) -> FunctionSpec:
        return FunctionSpec(
            label=f"fixture {name}",
            code_dir=FIXTURES / name,
            handler="handler.handler",
            event=FIXTURES / "event.json",
            env={"FIXTURE_ENDPOINT": endpoint},
        )

    return make
