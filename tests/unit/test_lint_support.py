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


# --- a clean result kept across runs ----------------------------------------------------------------
@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home and a working folder of the test's own: no user's .cfnlintrc or updated schemas."""
    folder = tmp_path / "home"
    (folder / "work").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(folder))
    monkeypatch.chdir(folder / "work")
    return folder


def test_a_clean_result_is_kept_for_the_next_run_of_the_same_bytes(tmp_path: Path, home: Path) -> None:
    cache = tmp_path / "cache"
    first, second = tmp_path / "a" / "template.yaml", tmp_path / "b" / "template.yaml"
    for path in (first, second):
        path.parent.mkdir()
        path.write_text(CLEAN, encoding="utf-8")
    assert Linter(cache).messages(first) == []
    later = Linter(cache)  # a later run: a new process, the same cache
    assert later.messages(second) == []  # the same bytes elsewhere (a test's tmp_path)
    assert later.runs == 0
    assert len(list(cache.iterdir())) == 1


def test_a_finding_is_never_kept_and_an_edit_is_linted_afresh(tmp_path: Path, home: Path) -> None:
    cache = tmp_path / "cache"
    path = tmp_path / "template.yaml"
    path.write_text(UNUSED_PARAMETER, encoding="utf-8")
    for _ in range(2):
        linter = Linter(cache)
        assert [m.rule.id for m in linter.matches(path)] == ["W2001"]
        assert linter.runs == 1
    path.write_text(CLEAN, encoding="utf-8")
    assert Linter(cache).messages(path) == []
    path.write_text(UNUSED_PARAMETER, encoding="utf-8")  # back to the finding after a clean run
    assert [m.rule.id for m in Linter(cache).matches(path)] == ["W2001"]


def test_another_cfn_lint_or_configuration_lints_again(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # W2001 is a warning a configuration can ignore: cleaned by a .cfnlintrc, it must come back as
    # soon as that file goes, and a clean result must not outlive the cfn-lint that gave it.
    cache = tmp_path / "cache"
    path = tmp_path / "template.yaml"
    path.write_text(UNUSED_PARAMETER, encoding="utf-8")
    for config in (home / ".cfnlintrc", home / "work" / ".cfnlintrc"):
        config.write_text("ignore_checks:\n  - W2001\n", encoding="utf-8")
        assert Linter(cache).messages(path) == []
        config.unlink()
        assert [m.rule.id for m in Linter(cache).matches(path)] == ["W2001"]
    path.write_text(CLEAN, encoding="utf-8")
    assert Linter(cache).messages(path) == []
    monkeypatch.setattr("tests.support.lint.version", lambda name: "0.0.1")
    assert Linter(cache).runs == 0
    other = Linter(cache)
    assert other.messages(path) == []
    assert other.runs == 1


def test_nothing_is_kept_when_cfn_lint_would_read_schemas_a_user_updated(tmp_path: Path, home: Path) -> None:
    (home / ".cache" / "aws" / "cfn-lint").mkdir(parents=True)
    cache = tmp_path / "cache"
    path = tmp_path / "template.yaml"
    path.write_text(CLEAN, encoding="utf-8")
    for _ in range(2):
        linter = Linter(cache)
        assert linter.messages(path) == []
        assert linter.runs == 1
    assert not cache.exists()
