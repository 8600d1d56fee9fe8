"""scripts/build-native.sh: UC6's C extension compiled for CPython 3.13 x86_64, refused when it
needs a GLIBC newer than Lambda's 2.34, idempotent; and scripts/build-layer.sh ships it."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.scripts.conftest import layer_env
from tests.support.fake_cli import FakeCli

pytestmark = pytest.mark.scripts


@pytest.fixture
def repo(repo: Path) -> Path:
    """The scratch tree without the checkout's built extension: the compile is what is tested."""
    shutil.rmtree(repo / ".build")  # holds nothing else in the scratch tree
    return repo


def build(fake_cli: FakeCli, repo: Path, *args: str, env: dict[str, str] | None = None):
    env = env or fake_cli.env()
    env["BUILD_NATIVE_PYTHON"] = sys.executable
    return fake_cli.run([str(repo / "scripts/build-native.sh"), *args], env=env)


def test_builds_an_importable_extension_needing_no_glibc_beyond_2_34_and_is_idempotent(fake_cli, repo):
    result = build(fake_cli, repo)
    assert result.returncode == 0, result.stderr
    (library,) = (repo / ".build/native").glob("uc06_layoutscan.cpython-313-x86_64-linux-gnu.so")
    loader = importlib.machinery.ExtensionFileLoader("uc06_layoutscan", str(library))
    spec = importlib.util.spec_from_file_location("uc06_layoutscan", library, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    assert module.byte_sum(b"\xff" * 3, 2**32 - 1) == (3 * 255 - 1)
    again = build(fake_cli, repo)
    assert again.returncode == 0
    assert "up to date" in again.stderr
    (repo / "native/uc06_layoutscan.c").write_text((repo / "native/uc06_layoutscan.c").read_text() + "\n")
    rebuilt = build(fake_cli, repo)
    assert "compiling" in rebuilt.stderr
    assert not list((repo / ".build/native").glob("*.new*"))


def test_a_library_needing_a_newer_glibc_fails_the_build(fake_cli, repo):
    # objdump reports a symbol versioned GLIBC_2.38 (newer than Amazon Linux 2023's 2.34)
    fake_cli.install("objdump")
    fake_cli.default("objdump", stdout="0000 DF *UND* 0000 (GLIBC_2.38) __isoc23_strtol\n0000 (GLIBC_2.2.5) memcpy\n")
    result = build(fake_cli, repo)
    assert result.returncode == 1
    assert "requires GLIBC_2.38, newer than Lambda's 2.34" in result.stderr
    assert not list((repo / ".build/native").glob("uc06_layoutscan*"))
    fake_cli.default("objdump", stderr="objdump: not an ELF file", exit_code=1)  # an unreadable library
    broken = build(fake_cli, repo)
    assert broken.returncode == 1
    assert "objdump -T could not read the built library" in broken.stderr
    assert not list((repo / ".build/native").glob("uc06_layoutscan*"))


def test_a_compile_error_or_a_wrong_interpreter_fails(fake_cli, repo):
    (repo / "native/uc06_layoutscan.c").write_text("this is not C\n")
    assert build(fake_cli, repo).returncode == 1
    env = fake_cli.env()
    fake_cli.install("python")
    fake_cli.default("python", stdout="/usr/include/python3.12 .cpython-312-x86_64-linux-gnu.so cpython 3.12 x86_64\n")
    env["BUILD_NATIVE_PYTHON"] = str(fake_cli.bin_dir / "python")
    wrong = fake_cli.run([str(repo / "scripts/build-native.sh")], env=env)
    assert wrong.returncode == 1
    assert "built for CPython 3.13" in wrong.stderr


def test_arguments_and_dry_run(fake_cli, repo):
    dry = build(fake_cli, repo, "--dry-run")
    assert dry.returncode == 0
    assert "would run: gcc" in dry.stdout
    assert not (repo / ".build").exists()
    assert build(fake_cli, repo, "--bogus").returncode == 2
    assert build(fake_cli, repo, "--out").returncode == 2
    assert build(fake_cli, repo, "--help").returncode == 0


def test_the_layer_ships_the_extension(fake_cli, repo):
    result = fake_cli.run([str(repo / "scripts/build-layer.sh")], env=layer_env(fake_cli))
    assert result.returncode == 0, result.stderr
    shipped = list((repo / ".build/layer/python").glob("uc06_layoutscan.*.so"))
    assert [p.read_bytes() for p in shipped] == [
        p.read_bytes() for p in (repo / ".build/native").glob("uc06_layoutscan.*.so")
    ]
    assert not list((repo / ".build/layer/python").glob("*.stamp"))


def test_the_layer_extension_loads_where_lambda_puts_it(fake_cli, repo):
    # An isolated python3.13 (no site, no venv) with the function folder and the layer's python/
    # on sys.path, as Lambda lays out /var/task and /opt/python: the decoders get the extension.
    assert fake_cli.run([str(repo / "scripts/build-layer.sh")], env=layer_env(fake_cli)).returncode == 0
    function = repo / "semiconductor-eda/functions/metadata_extraction"
    code = (
        "import sys; sys.path[:0] = sys.argv[1:3]; import layout; "
        "assert layout.native is not None, 'no extension'; "
        "assert layout.native.__file__.startswith(sys.argv[2]), layout.native.__file__; print('ok')"
    )
    base = getattr(sys, "_base_executable", sys.executable)
    run = subprocess.run([base, "-I", "-S", "-c", code, str(function), str(repo / ".build/layer/python")],
                         capture_output=True, text=True, timeout=120, check=False)
    assert (run.returncode, run.stdout) == (0, "ok\n"), run.stderr
