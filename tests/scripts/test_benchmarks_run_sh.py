"""benchmarks/run.sh: usage errors stop it before any benchmark runs; --help lists every benchmark."""

from __future__ import annotations

import subprocess

import pytest

from tests.support.templates import REPO_ROOT

pytestmark = pytest.mark.scripts

RUN = REPO_ROOT / "benchmarks" / "run.sh"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--only", "bogus"],
            "--only: unknown benchmark 'bogus' (benchmarks: discovery parsers sensors handlers payload pipelines)",
        ),
        (["--only"], "--only needs a value"),
        (["--only", ","], "--only needs a value"),
        (["--fast"], "unknown option '--fast'"),
    ],
)
def test_usage_errors_run_no_benchmark(args: list[str], message: str) -> None:
    result = subprocess.run([str(RUN), *args], capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert result.stdout == ""


def test_help_names_every_benchmark() -> None:
    result = subprocess.run([str(RUN), "--help"], capture_output=True, text=True, check=True, timeout=60)
    for name in ("discovery", "parsers", "sensors", "handlers", "payload", "pipelines", "--quick"):
        assert name in result.stdout
