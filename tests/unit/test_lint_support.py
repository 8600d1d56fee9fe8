"""tests.support.lint: the shared cfn-lint results report what the command line reports, once per file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.lint import Linter
from tests.support.templates import REPO_ROOT

pytestmark = pytest.mark.unit

CLEAN = """AWSTemplateFormatVersion: '2010-09-09'
Resources:
  Topic:
    Type: AWS::SNS::Topic
"""
# W2001: a parameter no resource uses (a warning, which the project's lint treats as a failure).
UNUSED_PARAMETER = """AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  Unused: {Type: String, Default: x}
Resources:
  Topic:
    Type: AWS::SNS::Topic
"""


def test_a_warning_is_reported_and_agrees_with_the_command_line(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(UNUSED_PARAMETER, encoding="utf-8")
    linter = Linter()
    assert [m.rule.id for m in linter.matches(path)] == ["W2001"]
    cli = subprocess.run(
        [str(REPO_ROOT / ".venv/bin/cfn-lint"), str(path)], capture_output=True, text=True, check=False
    )
    assert cli.returncode == 4  # warnings
    assert "W2001" in cli.stdout


def test_each_file_is_linted_once_until_its_content_changes(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(CLEAN, encoding="utf-8")
    linter = Linter()
    assert linter.messages(path) == []
    assert linter.messages(tmp_path / "." / "template.yaml") == []
    assert linter.runs == 1
    path.write_text(UNUSED_PARAMETER, encoding="utf-8")
    assert [m.rule.id for m in linter.matches(path)] == ["W2001"]
    assert linter.runs == 2
