"""scripts/test.sh itself: a stage that finds a problem makes the whole command fail."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.templates import REPO_ROOT

pytestmark = pytest.mark.scripts

WARNING_ONLY_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Description: valid, but with an unused parameter (cfn-lint W2001, a warning)
Parameters:
  Unused:
    Type: String
    Description: never referenced
Resources:
  Topic:
    Type: AWS::SNS::Topic
"""

CLEAN_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Description: nothing to report
Resources:
  Topic:
    Type: AWS::SNS::Topic
"""


def _sandbox(tmp_path: Path, template: str) -> Path:
    """A minimal git checkout that shares the installed .venv/.tools and holds one template."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    for name in ("setup.sh", "test.sh"):
        shutil.copy2(REPO_ROOT / "scripts" / name, root / "scripts" / name)
    shutil.copytree(REPO_ROOT / "scripts" / "lib", root / "scripts" / "lib")  # the library they source
    for path in REPO_ROOT.glob("requirements-*.txt"):  # setup.sh stamps every pinned set
        shutil.copy2(path, root / path.name)
    shutil.copytree(REPO_ROOT / "tools", root / "tools")
    # Share the installed venv and npm tools, but give the sandbox its own .tools/bin: setup.sh
    # (re)writes the links there and must not touch the real checkout's.
    (root / ".venv").symlink_to(REPO_ROOT / ".venv")
    (root / ".tools").mkdir()
    (root / ".tools" / "npm").symlink_to(REPO_ROOT / ".tools" / "npm")
    for venv in ("checkov-venv", "awscli-venv"):
        (root / ".tools" / venv).symlink_to(REPO_ROOT / ".tools" / venv)
    (root / "stack-template.yaml").write_text(template, encoding="utf-8")
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root


def _run_test_sh(root: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The sandbox's own scripts/test.sh with ``args``, run from the sandbox."""
    return subprocess.run([str(root / "scripts" / "test.sh"), *args], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def test_a_cfn_lint_warning_fails_the_test_command(tmp_path: Path) -> None:
    result = _run_test_sh(_sandbox(tmp_path, WARNING_ONLY_TEMPLATE), "--only", "cfn-lint")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "W2001" in result.stdout
    assert "cfn-lint     FAIL" in result.stdout


def test_a_clean_template_passes_the_cfn_lint_stage(tmp_path: Path) -> None:
    result = _run_test_sh(_sandbox(tmp_path, CLEAN_TEMPLATE), "--only", "cfn-lint")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cfn-lint     PASS" in result.stdout


def test_static_stages_side_by_side_each_print_their_own_output_and_every_failure_counts(tmp_path: Path) -> None:
    # ruff fails on an unused import and cfn-lint on the warning, while shellcheck, which ran
    # beside them, passes; every stage's output is printed whole, under its own heading, in order.
    root = _sandbox(tmp_path, WARNING_ONLY_TEMPLATE)
    (root / "unused.py").write_text("import os\n", encoding="utf-8")
    result = _run_test_sh(root, "--only", "ruff,cfn-lint,shellcheck")
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    summary = out[out.index("=== summary ===") :]
    assert [line[:17] for line in summary.splitlines()[1:4]] == [
        "shellcheck   PASS", "cfn-lint     FAIL", "ruff         FAIL"]
    names = ("shellcheck", "cfn-lint", "ruff", "summary")
    starts = [out.index(f"=== {name} ===") for name in names]
    assert starts == sorted(starts), out
    sections = {name: out[a:b] for name, a, b in zip(names, starts, starts[1:], strict=False)}
    assert "scripts clean" in sections["shellcheck"]
    assert ["W2001" in sections["cfn-lint"], "F401" in sections["cfn-lint"]] == [True, False]
    assert ["F401" in sections["ruff"], "W2001" in sections["ruff"]] == [True, False]
    assert out.rstrip().endswith("RESULT: FAILED")


def test_the_static_stages_run_beside_pytest(tmp_path: Path) -> None:
    # A rendezvous: the ruff stage (a stand-in first on PATH) waits for the pytest test to begin,
    # and the test waits for the stage to have seen it; one after the other, each would wait in
    # vain and fail. pytest's output comes first, the static stage's once both have ended.
    root = _sandbox(tmp_path, CLEAN_TEMPLATE)
    began, seen = tmp_path / "pytest-began", tmp_path / "ruff-saw-it"
    ruff = root / ".tools" / "bin" / "ruff"
    ruff.parent.mkdir(exist_ok=True)
    ruff.write_text(f"#!/usr/bin/env bash\nfor _ in $(seq 600); do [[ -e {began} ]] && break; sleep 0.1; done\n"
                    f"[[ -e {began} ]] || exit 1\ntouch {seen}\necho ruff-stand-in-ran\n", encoding="utf-8")
    ruff.chmod(0o755)
    (root / "tests").mkdir()
    (root / "tests" / "test_meets.py").write_text(
        "import pathlib, time\n\ndef test_meets():\n"
        f"    pathlib.Path({str(began)!r}).touch()\n"
        f"    for _ in range(600):\n        if pathlib.Path({str(seen)!r}).exists():\n            return\n"
        "        time.sleep(0.1)\n    raise AssertionError('the ruff stage never ran beside this test')\n",
        encoding="utf-8")
    result = _run_test_sh(root, "--only", "ruff,pytest", "--workers", "0")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert out.index("1 passed") < out.index("=== ruff ===") < out.index("ruff-stand-in-ran") < out.index("=== summary")
    summary = out[out.index("=== summary ===") :].splitlines()
    assert [line[:17] for line in summary[1:3]] == ["ruff         PASS", "pytest       PASS"]


SEES_ITS_BYTECODE = """\
import importlib.util
import subprocess
import sys
from pathlib import Path

SOURCE = Path(__file__).parents[1] / "pkg" / "mod.py"


def test_a_process_the_tests_start_imports_the_module_from_bytecode():
    assert Path(importlib.util.cache_from_source(str(SOURCE))).is_file()
    # -X importtime would not tell; the loader's own verbose line does: "# code object from ..."
    run = subprocess.run([sys.executable, "-v", "-c", "import pkg.mod"], cwd=SOURCE.parents[1],
                         capture_output=True, text=True, check=True)
    assert f"code object from '{importlib.util.cache_from_source(str(SOURCE))}'" in run.stderr
"""


def test_the_pytest_stage_compiles_the_project_once_for_every_process_it_starts(tmp_path: Path) -> None:
    # PYTHONDONTWRITEBYTECODE (set on this machine) stops Python from writing bytecode, so without
    # the stage's compileall each process the tests start compiles each module it imports again.
    root = _sandbox(tmp_path, CLEAN_TEMPLATE)
    (root / "pkg").mkdir()
    (root / "pkg" / "__init__.py").write_text("", encoding="utf-8")
    (root / "pkg" / "mod.py").write_text("VALUE = 1\n", encoding="utf-8")
    (root / "tests").mkdir()
    (root / "tests" / "test_bytecode.py").write_text(SEES_ITS_BYTECODE, encoding="utf-8")
    result = _run_test_sh(root, "--only", "pytest", "--workers", "0",
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    # pytest itself runs without it: the next run's workers load the assertion-rewritten test
    # module from bytecode instead of parsing and rewriting it again.
    assert list((root / "tests" / "__pycache__").glob("test_bytecode.cpython-313-pytest-*.pyc"))


def test_the_workers_take_the_modules_in_collection_order(tmp_path: Path) -> None:
    # xdist's default would hand out the module with more tests first (test_b), whatever order
    # the collection (tests/conftest.py's in the project) put them in.
    root = _sandbox(tmp_path, CLEAN_TEMPLATE)
    (root / "tests").mkdir()
    log = tmp_path / "order.log"
    record = f"def test_{{n}}():\n    open({str(log)!r}, 'a').write(__name__ + '\\n')\n"
    (root / "tests" / "test_a.py").write_text(record.format(n=0), encoding="utf-8")
    (root / "tests" / "test_b.py").write_text("".join(record.format(n=n) for n in range(3)), encoding="utf-8")
    result = _run_test_sh(root, "--only", "pytest", "--workers", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert log.read_text().split() == ["test_a", "test_b", "test_b", "test_b"]


RECORDS_ITS_SCRATCH = """
import subprocess, tempfile

def test_scratch(tmp_path):
    made = subprocess.run(["mktemp"], capture_output=True, text=True, check=True).stdout.strip()
    open({log!r}, "w").write("\\n".join([tempfile.gettempdir(), str(tmp_path), made]))
"""


def _run_recording_scratch(tmp_path: Path, env: dict[str, str]) -> list[Path]:
    """test.sh's pytest stage over one test that records where its scratch files went."""
    root = _sandbox(tmp_path, CLEAN_TEMPLATE)
    (root / "tests").mkdir()
    log = tmp_path / "scratch.log"
    (root / "tests" / "test_scratch.py").write_text(RECORDS_ITS_SCRATCH.format(log=str(log)), encoding="utf-8")
    result = _run_test_sh(root, "--only", "pytest", "--workers", "1", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return [Path(line) for line in log.read_text().splitlines()]


def test_every_scratch_file_of_the_pytest_stage_is_in_the_run_s_own_folder_and_removed_after(tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    tempdir, test_tmp, made = _run_recording_scratch(tmp_path, {**os.environ, "TEST_TMPDIR": str(scratch)})
    (run,) = {path.relative_to(scratch).parts[0] for path in (tempdir, test_tmp, made)}
    assert run.startswith("test-sh.")
    assert made.parent == tempdir  # mktemp in a process the test starts: the same TMPDIR
    assert list(scratch.iterdir()) == []  # removed when the command ended


def test_a_failed_test_s_tmp_path_is_kept_and_named(tmp_path: Path) -> None:
    root = _sandbox(tmp_path, CLEAN_TEMPLATE)
    (root / "tests").mkdir()
    (root / "tests" / "test_fails.py").write_text(
        "def test_fails(tmp_path):\n    (tmp_path / 'evidence').write_text('x')\n    assert False\n", encoding="utf-8")
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = _run_test_sh(root, "--only", "pytest", "--workers", "1", env={**os.environ, "TEST_TMPDIR": str(scratch)})
    assert result.returncode == 1, result.stdout + result.stderr
    (kept,) = scratch.glob("test-sh.*/pytest")
    assert f"the failed tests' tmp_path folders are kept in {kept}" in result.stderr
    assert [path.name for path in kept.rglob("evidence")] == ["evidence"]
    assert not (kept.parent / "tmp").exists()


def test_the_scratch_folder_is_on_a_memory_file_system_when_there_is_one_with_room(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "TEST_TMPDIR"}
    tempdir, _, _ = _run_recording_scratch(tmp_path, env)
    shm = os.statvfs("/dev/shm") if Path("/dev/shm").is_dir() else None
    roomy = shm is not None and shm.f_bavail * shm.f_frsize >= 2 << 30
    kind = subprocess.run(["stat", "-f", "-c", "%T", "/dev/shm"], capture_output=True, text=True, check=False)
    tmpfs = kind.stdout.strip() == "tmpfs"
    assert tempdir.is_relative_to("/dev/shm") == (roomy and tmpfs and os.access("/dev/shm", os.W_OK)), tempdir


def test_a_test_tmpdir_that_is_not_a_writable_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [str(REPO_ROOT / "scripts" / "test.sh"), "--only", "ruff"], capture_output=True, text=True, check=False,
        timeout=60, env={**os.environ, "TEST_TMPDIR": str(tmp_path / "missing")},
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"TEST_TMPDIR '{tmp_path / 'missing'}' is not a writable folder" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--only", "bogus"], "--only: unknown stage 'bogus' (stages: mypy peer"),
        (["--skip", "ruff,nope"], "--skip: unknown stage 'nope'"),
        (["--only"], "--only needs a value"),
        (["--only", ","], "--only needs a value"),
        (["--pytest-args"], "--pytest-args needs a value"),
        (["--workers"], "--workers needs a value"),
        (["--workers", "two"], "--workers must be a whole number of workers (0 = no workers), got 'two'"),
        (["--workers", "-1"], "--workers must be a whole number of workers (0 = no workers), got '-1'"),
        (["--workers", "007"], "--workers must be a whole number of workers"),
    ],
)
def test_bad_stage_lists_stop_the_command_before_any_stage(args: list[str], message: str) -> None:
    """An unknown stage is a usage error, not a silent "run everything"."""
    result = subprocess.run(
        [str(REPO_ROOT / "scripts" / "test.sh"), *args], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert result.stdout == ""  # no stage ran (not even setup.sh)


def test_unknown_option_is_rejected() -> None:
    result = subprocess.run(
        [str(REPO_ROOT / "scripts" / "test.sh"), "--bogus"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert "unknown option '--bogus'" in result.stderr


def test_a_bad_worker_count_in_the_environment_is_a_usage_error() -> None:
    result = subprocess.run(
        [str(REPO_ROOT / "scripts" / "test.sh"), "--only", "ruff"],
        capture_output=True, text=True, check=False, timeout=60, env={**os.environ, "TEST_WORKERS": "many"},
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "TEST_WORKERS must be a whole number of workers (0 = no workers), got 'many'" in result.stderr
    assert result.stdout == ""
