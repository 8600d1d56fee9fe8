"""scripts/package.sh and scripts/build-layer.sh against fake aws/python executables.

Each test runs the scripts from a scratch copy of the files they read (scripts/, shared/, a use
case, the requirement pins), so nothing is built or packaged in the working tree.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.support.fake_cli import FakeCli
from tests.support.templates import REPO_ROOT

pytestmark = pytest.mark.scripts


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    for script in ("package.sh", "build-layer.sh"):
        shutil.copy2(REPO_ROOT / "scripts" / script, root / "scripts" / script)
    for name in ("requirements-runtime.txt", "requirements-lock.txt"):
        shutil.copy2(REPO_ROOT / name, root / name)
    shutil.copytree(REPO_ROOT / "shared", root / "shared", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO_ROOT / "semiconductor-eda", root / "semiconductor-eda",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return root


def layer_env(fake_cli: FakeCli) -> dict[str, str]:
    fake_cli.install("python")
    env = fake_cli.env()
    env["BUILD_LAYER_PYTHON"] = str(fake_cli.bin_dir / "python")
    return env


def code_hashes(output: str) -> dict[str, str]:
    """The ``<Name>CodeHash=<hash>`` lines package.sh prints, as {parameter: hash}."""
    hashes = dict(re.findall(r"^([A-Za-z0-9]+CodeHash)=([0-9a-f]{16})$", output, flags=re.M))
    assert hashes, output
    return hashes


# --- build-layer.sh -----------------------------------------------------------------------------
def test_build_layer_installs_pinned_deps_for_the_lambda_platform_and_copies_shared(fake_cli, repo):
    env = layer_env(fake_cli)
    result = fake_cli.run([str(repo / "scripts/build-layer.sh")], env=env)
    assert result.returncode == 0, result.stderr
    (pip,) = fake_cli.invocations("python")
    argv = pip.argv
    assert argv[:3] == ["-m", "pip", "install"]
    assert argv[argv.index("--platform") + 1] == "manylinux2014_x86_64"
    assert argv[argv.index("--python-version") + 1] == "3.13"
    assert "--only-binary=:all:" in argv
    assert argv[argv.index("-r") + 1] == str(repo / "requirements-runtime.txt")
    assert argv[argv.index("-c") + 1] == str(repo / "requirements-lock.txt")
    assert argv[argv.index("--target") + 1] == str(repo / ".build/layer.new/python")
    assert (repo / ".build/layer/python/shared/errors.py").read_bytes() == (repo / "shared/errors.py").read_bytes()
    assert not (repo / ".build/layer.new").exists()


def test_build_layer_is_idempotent_and_rebuilds_when_shared_changes(fake_cli, repo):
    env = layer_env(fake_cli)
    assert fake_cli.run([str(repo / "scripts/build-layer.sh")], env=env).returncode == 0
    again = fake_cli.run([str(repo / "scripts/build-layer.sh")], env=env)
    assert again.returncode == 0
    assert "up to date" in again.stderr
    assert len(fake_cli.invocations("python")) == 1
    with (repo / "shared/errors.py").open("a") as handle:
        handle.write("\n# changed\n")
    assert fake_cli.run([str(repo / "scripts/build-layer.sh")], env=env).returncode == 0
    assert len(fake_cli.invocations("python")) == 2
    assert (repo / ".build/layer/python/shared/errors.py").read_text().endswith("# changed\n")


def test_build_layer_failure_keeps_no_half_built_layer(fake_cli, repo):
    env = layer_env(fake_cli)
    fake_cli.reply("python", ["-m", "pip"], stderr="no matching distribution", exit_code=1)
    result = fake_cli.run([str(repo / "scripts/build-layer.sh")], env=env)
    assert result.returncode == 1
    assert "pip install failed" in result.stderr
    assert not (repo / ".build/layer").exists()
    assert not (repo / ".build/layer.new").exists()


def test_build_layer_dry_run_and_arguments(fake_cli, repo):
    env = layer_env(fake_cli)
    dry = fake_cli.run([str(repo / "scripts/build-layer.sh"), "--dry-run"], env=env)
    assert dry.returncode == 0
    assert "would run:" in dry.stdout
    assert fake_cli.invocations("python") == []
    assert not (repo / ".build").exists()
    assert fake_cli.run([str(repo / "scripts/build-layer.sh"), "--bogus"], env=env).returncode == 2
    assert fake_cli.run([str(repo / "scripts/build-layer.sh"), "--help"], env=env).returncode == 0


# --- package.sh ---------------------------------------------------------------------------------
def package(fake_cli: FakeCli, repo: Path, *args: str):
    return fake_cli.run([str(repo / "scripts/package.sh"), *args], env=layer_env(fake_cli))


def test_package_builds_the_layer_then_runs_cloudformation_package(fake_cli, repo):
    output = repo / ".build/semiconductor-eda/packaged.yaml"
    output.parent.mkdir(parents=True)
    output.write_text("Resources: {}\n")  # what aws cloudformation package would write
    result = package(fake_cli, repo, "--uc", "semiconductor-eda", "--s3-bucket", "artifacts-bucket",
                     "--region", "eu-west-1", "--kms-key-id", "alias/artifacts")
    assert result.returncode == 0, result.stderr
    assert len(fake_cli.invocations("python")) == 1  # the layer was built first
    assert fake_cli.calls("aws") == [[
        "cloudformation", "package",
        "--template-file", str(repo / "semiconductor-eda/template-deploy.yaml"),
        "--s3-bucket", "artifacts-bucket", "--s3-prefix", "semiconductor-eda",
        "--output-template-file", str(output), "--region", "eu-west-1", "--kms-key-id", "alias/artifacts",
    ]]
    code_hashes(result.stdout)


def test_package_fails_when_the_aws_cli_fails(fake_cli, repo):
    fake_cli.reply("aws", ["cloudformation", "package"], stderr="AccessDenied", exit_code=255)
    result = package(fake_cli, repo, "--uc", "semiconductor-eda", "--s3-bucket", "artifacts-bucket")
    assert result.returncode == 1
    assert "aws cloudformation package failed" in result.stderr


def test_dry_run_calls_nothing_and_code_hashes_follow_the_code(fake_cli, repo):
    args = ("--uc", "semiconductor-eda", "--s3-bucket", "artifacts-bucket", "--dry-run")
    first = package(fake_cli, repo, *args)
    assert first.returncode == 0, first.stderr
    assert "would run: aws cloudformation package" in first.stdout
    assert fake_cli.calls("aws") == []
    assert fake_cli.invocations("python") == []
    again = package(fake_cli, repo, *args)
    assert code_hashes(again.stdout) == code_hashes(first.stdout)
    with (repo / "semiconductor-eda/functions/discovery/handler.py").open("a") as handle:
        handle.write("\n# changed\n")
    changed = code_hashes(package(fake_cli, repo, *args).stdout)
    before = code_hashes(first.stdout)
    assert {name for name in before if changed[name] != before[name]} == {"DiscoveryCodeHash"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "--uc is required"),
        (("--uc", "semiconductor-eda"), "--s3-bucket is required"),
        (("--uc", "nothing-here", "--s3-bucket", "b-1"), "template-deploy.yaml not found"),
        (("--uc", "../etc", "--s3-bucket", "b-1"), "must be a use-case folder name"),
        (("--uc", "semiconductor-eda", "--s3-bucket", "Bad_Bucket"), "not a valid bucket name"),
        (("--uc", "semiconductor-eda", "--s3-bucket", "b-1", "--region", "mars"), "not a region name"),
        (("--uc", "semiconductor-eda", "--s3-bucket", "b-1", "--s3-prefix", "a b"), "--s3-prefix"),
        (("--uc", "semiconductor-eda", "--s3-bucket", "b-1", "--kms-key-id", "nope!"), "--kms-key-id"),
        (("--uc", "semiconductor-eda", "--s3-bucket"), "needs a value"),
        (("--frobnicate",), "unknown argument"),
    ],
)
def test_package_validates_arguments(fake_cli, repo, args, message):
    result = package(fake_cli, repo, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert fake_cli.calls("aws") == []


def test_package_help(fake_cli, repo):
    result = package(fake_cli, repo, "--help")
    assert result.returncode == 0
    assert "Usage: scripts/package.sh" in result.stdout
