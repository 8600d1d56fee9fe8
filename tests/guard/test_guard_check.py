"""scripts/guard-check.sh on controlled repository trees: it passes the real rules and fails on
every kind of broken input (bad template, weakened rule, parse errors, missing or empty tests)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.guard

REPO = Path(__file__).resolve().parents[2]
GUARD_CHECK = REPO / "scripts" / "guard-check.sh"
NON_COMPLIANT_TEMPLATE = """\
AWSTemplateFormatVersion: '2010-09-09'
Resources:
  DataBucket:
    Type: AWS::S3::Bucket
  WorkerFunction:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.9
      MemorySize: !Ref Memory
      Timeout: 901
"""


def make_repo(root: Path) -> Path:
    """A git work tree with a copy of the real guard-rules/ (rules, tests, hook template)."""
    root.mkdir()
    shutil.copytree(REPO / "guard-rules", root / "guard-rules")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def guard_check(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(GUARD_CHECK), *map(str, args)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=300,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def test_real_rules_pass_their_tests_and_the_hook_template_complies(repo: Path) -> None:
    result = guard_check("--root", repo)

    assert result.returncode == 0, result.stdout + result.stderr
    rule_files = sorted(path.name for path in (repo / "guard-rules").glob("*.guard"))
    assert len(rule_files) == 5
    for name in rule_files:
        assert f"PASS guard-rules/{name}" in result.stdout
    assert "PASS guard-rules/hook-template.yaml" in result.stdout
    assert result.stdout.rstrip().endswith("guard-check: OK")


def test_untracked_non_compliant_template_is_found_and_fails(repo: Path) -> None:
    (repo / "uc").mkdir()
    (repo / "uc" / "template-deploy.yaml").write_text(NON_COMPLIANT_TEMPLATE)

    result = guard_check("--root", repo)

    assert result.returncode == 1
    assert "FAIL uc/template-deploy.yaml" in result.stdout
    for rule in (
        "S3_BUCKET_ENCRYPTION_CONFIGURED",
        "S3_BUCKET_PUBLIC_ACCESS_BLOCKED",
        "LAMBDA_RUNTIME_PYTHON313",
        "LAMBDA_TIMEOUT_WITHIN_LIMITS",
    ):
        assert rule in result.stdout
    # The intrinsic MemorySize is not a finding; the two real Lambda findings name the resource.
    assert "LAMBDA_MEMORY_WITHIN_LIMITS" not in result.stdout
    assert "/Resources/WorkerFunction/Properties/Timeout" in result.stdout
    assert "Violation: Lambda Timeout outside the organisational bounds" in result.stdout
    assert "non-compliant templates: 1/3" in result.stdout


def test_suppression_with_reason_makes_the_template_pass(repo: Path) -> None:
    (repo / "extra-template.yaml").write_text(
        "Resources:\n"
        "  Logs:\n"
        "    Type: AWS::Logs::LogGroup\n"
        "    Metadata:\n"
        "      guard:\n"
        "        SuppressedRules:\n"
        "          - id: LOG_GROUP_KMS_CONFIGURED\n"
        "            reason: Encrypted at rest by CloudWatch Logs by default.\n"
        "    Properties:\n"
        "      RetentionInDays: 7\n"
    )
    assert guard_check("--root", repo).returncode == 0
    (repo / "extra-template.yaml").write_text(
        (repo / "extra-template.yaml").read_text().replace("Encrypted at rest by CloudWatch Logs by default.", "''")
    )
    result = guard_check("--root", repo)
    assert result.returncode == 1
    assert "LOG_GROUP_KMS_CONFIGURED  /Resources/Logs" in result.stdout


def test_weakened_rule_fails_its_own_tests(repo: Path) -> None:
    rule = repo / "guard-rules" / "lambda-limits.guard"
    rule.write_text(rule.read_text().replace("this > %LAMBDA_MEMORY_MAX_MB", "this > 20480"))

    result = guard_check("--root", repo)

    assert result.returncode == 1
    assert "FAIL guard-rules/lambda-limits.guard" in result.stdout
    assert (
        'case "template memory above the organisational bound fails": LAMBDA_MEMORY_WITHIN_LIMITS expected FAIL'
        in result.stdout
    )


def test_rule_that_does_not_parse_fails(repo: Path) -> None:
    rule = repo / "guard-rules" / "no-public-access.guard"
    rule.write_text(rule.read_text() + "\nrule BROKEN when %lambda_urls !empty {\n    %lambda_urls.X ==\n")

    result = guard_check("--root", repo)

    assert result.returncode == 1
    assert "FAIL guard-rules/no-public-access.guard (cfn-guard error)" in result.stdout
    assert "Parsing Error" in result.stdout
    assert "FAIL guard-rules/hook-template.yaml: cfn-guard validate exited 5" in result.stdout


def test_rule_without_a_fail_expectation_fails(repo: Path) -> None:
    rule = repo / "guard-rules" / "lambda-limits.guard"
    rule.write_text(
        rule.read_text()
        + "\nrule LAMBDA_UNTESTED when %lambda_memory !empty {\n    %lambda_memory_values !empty\n"
        + "    <<\n    Violation: x\n    >>\n}\n"
    )

    result = guard_check("--root", repo)

    assert result.returncode == 1
    assert "rule LAMBDA_UNTESTED has no test case expecting FAIL or PASS" in result.stdout


@pytest.mark.parametrize(
    ("tests_content", "message"),
    [
        ("[]\n", "the tests file has no test cases"),
        ("- name: x\n  input: [\n", "cfn-guard test exited 1"),
    ],
)
def test_empty_or_broken_tests_file_fails(repo: Path, tests_content: str, message: str) -> None:
    (repo / "guard-rules" / "tests" / "sagemaker-security_tests.yaml").write_text(tests_content)

    result = guard_check("--root", repo)

    assert result.returncode == 1
    assert message in result.stdout


def test_missing_tests_file_and_orphan_tests_fail(repo: Path) -> None:
    tests_dir = repo / "guard-rules" / "tests"
    (tests_dir / "iam-least-privilege_tests.yaml").rename(tests_dir / "iam_tests.yaml")

    result = guard_check("--root", repo)

    assert result.returncode == 1
    assert "FAIL guard-rules/iam-least-privilege.guard: no tests file" in result.stdout
    assert "FAIL guard-rules/tests/iam_tests.yaml: no rule file iam.guard" in result.stdout


def test_no_rule_files_is_an_error(repo: Path) -> None:
    for rule in (repo / "guard-rules").glob("*.guard"):
        rule.unlink()

    result = guard_check("--root", repo)

    assert result.returncode == 1
    assert "no rule files" in result.stderr


def test_no_templates_is_an_error(repo: Path) -> None:
    for template in (repo / "guard-rules").glob("*template*.yaml"):
        template.unlink()

    result = guard_check("--root", repo)

    assert result.returncode == 1
    assert "no CloudFormation templates" in result.stderr


def test_explicit_template_replaces_discovery(repo: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(NON_COMPLIANT_TEMPLATE)

    result = guard_check("--root", repo, "--template", bad)

    assert result.returncode == 1
    assert "1 template(s) x 5 rule file(s)" in result.stdout
    assert "hook-template.yaml" not in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--root"], "--root needs a directory"),
        (["--root", "/nonexistent/dir"], "no such directory"),
        (["--template", "/nonexistent.yaml"], "no such file"),
        (["--frobnicate"], "unknown option '--frobnicate'"),
    ],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = guard_check(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_wrong_cfn_guard_binary_is_an_error(repo: Path, tmp_path: Path) -> None:
    fake = tmp_path / "cfn-guard"
    fake.write_text("#!/usr/bin/env bash\necho 'cfn-guard 2.1.4'\n")
    fake.chmod(0o755)
    result = subprocess.run(
        [str(GUARD_CHECK), "--root", str(repo)],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
        env={"PATH": "/usr/bin:/bin", "CFN_GUARD": str(fake)},
    )
    assert result.returncode == 1
    assert "is not cfn-guard 3.x" in result.stderr
