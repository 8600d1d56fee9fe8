"""scripts/package-model.sh against a fake aws: builds model.tar.gz reproducibly, uploads it under a
content-addressed key, prints the ModelDataUrl, and calls nothing in --dry-run."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from tests.support.fake_cli import FakeCli
from tests.support.templates import REPO_ROOT

pytestmark = pytest.mark.scripts


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    shutil.copy2(REPO_ROOT / "scripts" / "package-model.sh", root / "scripts" / "package-model.sh")
    shutil.copytree(REPO_ROOT / "scripts" / "lib", root / "scripts" / "lib")
    shutil.copytree(REPO_ROOT / "autonomous-driving" / "model", root / "autonomous-driving" / "model",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    return root


def package(fake_cli: FakeCli, repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = fake_cli.env()
    env["PACKAGE_MODEL_PYTHON"] = sys.executable
    return fake_cli.run([str(repo / "scripts" / "package-model.sh"), *args], env=env)


def model_data_url(output: str) -> str:
    match = re.search(r"^ModelDataUrl=(s3://\S+)$", output, flags=re.M)
    assert match, output
    return match.group(1)


def test_builds_the_archive_uploads_it_and_prints_the_url(fake_cli, repo, tmp_path):
    archive = tmp_path / "model.tar.gz"
    result = package(fake_cli, repo, "--s3-bucket", "models-bucket", "--output", str(archive), "--region", "eu-west-1")
    assert result.returncode == 0, result.stderr
    url = model_data_url(result.stdout)
    assert re.fullmatch(r"s3://models-bucket/autonomous-driving/model/[0-9a-f]{16}/model\.tar\.gz", url)
    ((cp),) = fake_cli.invocations("aws")
    assert cp.argv[:4] == ["s3", "cp", str(archive), url]
    assert cp.option("--region") == "eu-west-1"
    with tarfile.open(cp.captured(str(archive))) as tar:
        assert sorted(tar.getnames()) == ["code/inference.py", "model.json"]


def test_the_same_source_gives_the_same_bytes_and_url(fake_cli, repo, tmp_path):
    first = package(fake_cli, repo, "--s3-bucket", "b-1", "--output", str(tmp_path / "a.tar.gz"), "--dry-run")
    second = package(fake_cli, repo, "--s3-bucket", "b-1", "--output", str(tmp_path / "b.tar.gz"), "--dry-run")
    assert (tmp_path / "a.tar.gz").read_bytes() == (tmp_path / "b.tar.gz").read_bytes()
    assert model_data_url(first.stdout) == model_data_url(second.stdout)
    # A change to the inference code is a new model: a new key.
    code = repo / "autonomous-driving" / "model" / "code" / "inference.py"
    code.write_text(code.read_text() + "\n# changed\n")
    third = package(fake_cli, repo, "--s3-bucket", "b-1", "--output", str(tmp_path / "c.tar.gz"), "--dry-run")
    assert model_data_url(third.stdout) != model_data_url(first.stdout)


def test_dry_run_calls_no_aws_api(fake_cli, repo, tmp_path):
    target = str(tmp_path / "m.tar.gz")
    result = package(fake_cli, repo, "--s3-bucket", "models-bucket", "--output", target, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert fake_cli.calls("aws") == []
    assert "[dry-run] would run: aws s3 cp" in result.stdout


def test_an_upload_failure_fails_the_script(fake_cli, repo, tmp_path):
    fake_cli.reply("aws", ["s3", "cp"], stderr="AccessDenied", exit_code=1)
    result = package(fake_cli, repo, "--s3-bucket", "models-bucket", "--output", str(tmp_path / "m.tar.gz"))
    assert result.returncode == 1
    assert "upload" in result.stderr
    assert "ModelDataUrl=" not in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--s3-bucket is required"),
        (["--s3-bucket", "Bad_Bucket"], "is not a valid S3 bucket name"),
        (["--s3-bucket", "b-1", "--region", "nowhere"], "is not an AWS Region name"),
        (["--s3-bucket", "b-1", "--s3-prefix", "a b"], "characters outside"),
        (["--s3-bucket"], "needs a value"),
        (["--bogus"], "unknown argument"),
    ],
)
def test_arguments_are_validated(fake_cli, repo, args, message):
    result = package(fake_cli, repo, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert fake_cli.calls("aws") == []


def test_help(fake_cli, repo):
    result = package(fake_cli, repo, "--help")
    assert result.returncode == 0
    assert "Usage: scripts/package-model.sh" in result.stdout
