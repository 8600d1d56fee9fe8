"""scripts/package.sh and scripts/build-layer.sh against fake aws/python executables.

Each test runs the scripts from a scratch copy of the files they read (the ``repo`` fixture of
conftest.py), so nothing is built or packaged in the working tree.
"""

from __future__ import annotations

import importlib.util
import marshal
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scripts.conftest import USE_CASES, layer_env
from tests.support.fake_cli import FakeCli
from tests.support.templates import load_template
from tests.template.version_identity import changes, identity_problems

pytestmark = pytest.mark.scripts


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


def test_build_layer_ships_every_module_compiled_for_python313_under_opt(fake_cli, repo):
    assert fake_cli.run([str(repo / "scripts/build-layer.sh")], env=layer_env(fake_cli)).returncode == 0
    python = repo / ".build/layer/python"
    sources = sorted(python.rglob("*.py"))
    assert sources
    for source in sources:
        compiled = Path(importlib.util.cache_from_source(str(source)))
        data = compiled.read_bytes()  # the tag is this interpreter's: CPython 3.13 (conftest)
        assert data[:4] == importlib.util.MAGIC_NUMBER, compiled
        # PEP 552 flags: hash-based (bit 0), not checked against the source (bit 1 clear)
        assert int.from_bytes(data[4:8], "little") == 0b01, compiled
        code = marshal.loads(data[16:])  # noqa: S302 - bytecode this test just built
        assert code.co_filename == f"/opt/python/{source.relative_to(python).as_posix()}", compiled
    # Imported from the layer, nothing is compiled again (Lambda could not write it to /opt).
    before = sorted(python.rglob("*"))
    run = subprocess.run([sys.executable, "-I", "-S", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
                          "import shared.errors; print(shared.errors.__cached__)", str(python)],
                         capture_output=True, text=True, check=True)
    assert run.stdout.strip().endswith("errors.cpython-313.pyc")
    assert sorted(python.rglob("*")) == before


def test_build_layer_refuses_a_compiler_that_is_not_python313_before_building(fake_cli, repo):
    env = layer_env(fake_cli)
    fake_cli.reply("python", ["-c"], exit_code=1)  # the version check: not CPython 3.13
    env["BUILD_NATIVE_PYTHON"] = str(fake_cli.bin_dir / "python")
    result = fake_cli.run([str(repo / "scripts/build-layer.sh")], env=env)
    assert result.returncode == 1
    assert "is not CPython 3.13" in result.stderr
    assert not (repo / ".build/layer").exists()
    assert [call.argv[0] for call in fake_cli.invocations("python")] == ["-c"]  # no pip install ran


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
    before = sorted(repo.rglob("*"))
    dry = fake_cli.run([str(repo / "scripts/build-layer.sh"), "--dry-run"], env=env)
    assert dry.returncode == 0
    assert "would run:" in dry.stdout
    assert fake_cli.invocations("python") == []
    assert sorted(repo.rglob("*")) == before  # nothing built, nothing written
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
        (("--uc", "semiconductor-eda", "--s3-bucket", "Bad_Bucket"), "is not a valid S3 bucket name"),
        (("--uc", "semiconductor-eda", "--s3-bucket", "b-1", "--region", "mars"), "is not an AWS Region name"),
        (("--uc", "semiconductor-eda", "--s3-bucket", "b-1", "--s3-prefix", "a b"), "--s3-prefix"),
        (("--uc", "semiconductor-eda", "--s3-bucket", "b-1", "--kms-key-id", "nope!"), "--kms-key-id"),
        (("--uc", "semiconductor-eda", "--s3-bucket", "b-1", "--stack-name", "1-bad_name"), "--stack-name"),
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


# --- per-function hashes, followed through the resolved template ---------------------------------
DRY = ("--uc", "semiconductor-eda", "--s3-bucket", "artifacts-bucket", "--dry-run")
HASHES = {"DiscoveryCodeHash", "MetadataExtractionCodeHash", "DrcAggregationCodeHash", "ReportGenerationCodeHash"}


def dry_hashes(fake_cli: FakeCli, repo: Path, *extra: str) -> dict[str, str]:
    result = package(fake_cli, repo, *DRY, *extra)
    assert result.returncode == 0, result.stderr
    return code_hashes(result.stdout)


def deployed(repo: Path, hashes: dict[str, str]) -> tuple[dict, dict[str, str]]:
    """The repo copy's template and the parameters a SnapStart deploy with these hashes passes."""
    return load_template(repo / "semiconductor-eda/template-deploy.yaml"), {"EnableSnapStart": "true", **hashes}


def test_one_hash_per_function_and_the_same_tree_twice_replaces_nothing(fake_cli, repo):
    first, second = dry_hashes(fake_cli, repo), dry_hashes(fake_cli, repo)
    assert set(first) == HASHES
    assert len(set(first.values())) == len(first)
    assert first == second
    template, params = deployed(repo, first)
    result = changes(template, params, deployed(repo, second)[1])
    assert result.replaced_versions == set()
    assert result.modified_functions == set()


def test_one_handler_edited_changes_only_that_function_and_its_version(fake_cli, repo):
    before = dry_hashes(fake_cli, repo)
    with (repo / "semiconductor-eda/functions/drc_aggregation/handler.py").open("a") as handle:
        handle.write("\n# changed\n")
    after = dry_hashes(fake_cli, repo)
    assert {name for name in HASHES if before[name] != after[name]} == {"DrcAggregationCodeHash"}
    template, old = deployed(repo, before)
    new = deployed(repo, after)[1]
    result = changes(template, old, new)
    assert result.replaced_versions == {"DrcAggregationVersion"}
    assert result.modified_functions == {"DrcAggregationFunction"}
    assert identity_problems(template, old, new) == []


def test_a_new_module_beside_a_handler_counts_as_its_code(fake_cli, repo):
    before = dry_hashes(fake_cli, repo)
    (repo / "semiconductor-eda/functions/discovery/extra.py").write_text("VALUE = 1\n")
    after = dry_hashes(fake_cli, repo)
    assert {name for name in HASHES if before[name] != after[name]} == {"DiscoveryCodeHash"}


def test_a_template_edit_of_one_function_republishes_only_that_function(fake_cli, repo):
    # MemorySize is written in the template, not in any parameter: the function's own resource
    # block is part of its hash.
    before = dry_hashes(fake_cli, repo)
    path = repo / "semiconductor-eda/template-deploy.yaml"
    text = path.read_text()
    assert text.count("      MemorySize: 1769\n") == 1
    path.write_text(text.replace("      MemorySize: 1769\n", "      MemorySize: 3008\n"))
    after = dry_hashes(fake_cli, repo)
    assert {name for name in HASHES if before[name] != after[name]} == {"MetadataExtractionCodeHash"}
    template, new = deployed(repo, after)
    result = changes(template, {**new, **before}, new)
    assert result.replaced_versions == {"MetadataExtractionVersion"}
    assert identity_problems(template, {**new, **before}, new) == []


@pytest.mark.parametrize("use_case", USE_CASES)
def test_a_layer_change_changes_every_hash(fake_cli, repo, use_case):
    declared = load_template(repo / use_case / "template-deploy.yaml")["Parameters"]
    names = {name for name in declared if name.endswith("CodeHash")}
    args = ("--uc", use_case, "--s3-bucket", "artifacts-bucket", "--dry-run", "--skip-layer")
    layer = repo / ".build/layer/python/shared"
    layer.mkdir(parents=True)
    (repo / ".build/layer-media/python").mkdir(parents=True)  # UC9's media layer, unchanged here
    (layer / "errors.py").write_text("A = 1\n")
    before = code_hashes(package(fake_cli, repo, *args).stdout)
    assert set(before) == names
    (layer / "errors.py").write_text("A = 2\n")
    after = code_hashes(package(fake_cli, repo, *args).stdout)
    assert all(before[name] != after[name] for name in names)
    # A wheel's RECORD is not part of the layer's identity (it depends on the build interpreter).
    record = repo / ".build/layer/python/x-1.0.dist-info/RECORD"
    record.parent.mkdir()
    record.write_text("bin/x,sha256=abc\n")
    assert code_hashes(package(fake_cli, repo, *args).stdout) == after


def test_the_printed_deploy_command_passes_the_bucket_and_every_hash(fake_cli, repo):
    result = package(fake_cli, repo, *DRY, "--region", "eu-west-1", "--stack-name", "uc6-eda")
    hashes = code_hashes(result.stdout)
    (line,) = [line for line in result.stdout.splitlines() if "cloudformation deploy" in line]
    argv = shlex.split(line)
    assert argv[:3] == ["aws", "cloudformation", "deploy"]
    assert argv[argv.index("--s3-bucket") + 1] == "artifacts-bucket"
    assert argv[argv.index("--region") + 1] == "eu-west-1"
    assert argv[argv.index("--stack-name") + 1] == "uc6-eda"
    assert argv[argv.index("--capabilities") + 1] == "CAPABILITY_IAM"
    assert argv[argv.index("--template-file") + 1] == str(repo / ".build/semiconductor-eda/packaged.yaml")
    overrides = argv[argv.index("--parameter-overrides") + 1 :]
    assert dict(o.split("=", 1) for o in overrides) == hashes
    declared = load_template(repo / "semiconductor-eda/template-deploy.yaml")["Parameters"]
    assert {name for name in declared if name.endswith("CodeHash")} == set(hashes)
    assert "--s3-bucket" in package(fake_cli, repo, "--help").stdout.split("deploy", 1)[1]


def test_a_function_without_its_hash_parameter_is_refused(fake_cli, repo):
    path = repo / "semiconductor-eda/template-deploy.yaml"
    path.write_text(path.read_text().replace("  ReportGenerationCodeHash:\n", "  ReportGenerationHash:\n"))
    result = package(fake_cli, repo, *DRY)
    assert result.returncode == 1
    assert "declares no parameter ReportGenerationCodeHash" in result.stderr
