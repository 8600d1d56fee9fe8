"""scripts/build-layer.sh --media: the UC9 media layer (PyAV, numpy, laspy, lazrs) built on its own,
from requirements-media.txt, for the platforms PyAV's and lazrs's wheels carry, without shared/."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.scripts.conftest import layer_env
from tests.support import uc06_native
from tests.support.templates import REPO_ROOT

pytestmark = pytest.mark.scripts


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    for path in REPO_ROOT.glob("scripts/*.sh"):
        shutil.copy2(path, root / "scripts" / path.name)
    if (REPO_ROOT / "scripts/lib").is_dir():
        shutil.copytree(REPO_ROOT / "scripts/lib", root / "scripts/lib")
    for name in ("requirements-runtime.txt", "requirements-media.txt", "requirements-lock.txt"):
        shutil.copy2(REPO_ROOT / name, root / name)
    shutil.copytree(REPO_ROOT / "shared", root / "shared", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO_ROOT / "native", root / "native")  # the shared layer compiles UC6's extension
    uc06_native.seed_built(root)
    return root


def test_media_layer_installs_the_media_pins_for_both_wheel_platforms_and_no_shared(fake_cli, repo):
    env = layer_env(fake_cli)
    result = fake_cli.run([str(repo / "scripts/build-layer.sh"), "--media"], env=env)
    assert result.returncode == 0, result.stderr
    (pip,) = fake_cli.invocations("python")
    argv = pip.argv
    platforms = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--platform"]
    assert platforms == ["manylinux2014_x86_64", "manylinux_2_28_x86_64"]
    assert argv[argv.index("-r") + 1] == str(repo / "requirements-media.txt")
    assert argv[argv.index("-c") + 1] == str(repo / "requirements-lock.txt")
    assert argv[argv.index("--target") + 1] == str(repo / ".build/layer-media.new/python")
    assert (repo / ".build/layer-media/python").is_dir()
    assert not (repo / ".build/layer-media/python/shared").exists()
    assert not (repo / ".build/layer").exists()  # the shared layer is not touched


def test_media_layer_is_idempotent_and_separate_from_the_shared_layer(fake_cli, repo):
    env = layer_env(fake_cli)
    script = str(repo / "scripts/build-layer.sh")
    assert fake_cli.run([script, "--media"], env=env).returncode == 0
    again = fake_cli.run([script, "--media"], env=env)
    assert again.returncode == 0
    assert "up to date" in again.stderr
    assert len(fake_cli.invocations("python")) == 1
    assert fake_cli.run([script], env=env).returncode == 0  # the shared layer builds on its own
    (_, shared_pip) = fake_cli.invocations("python")
    assert shared_pip.argv[shared_pip.argv.index("-r") + 1] == str(repo / "requirements-runtime.txt")
    with (repo / "requirements-media.txt").open("a") as handle:
        handle.write("# changed\n")
    assert fake_cli.run([script, "--media"], env=env).returncode == 0
    assert len(fake_cli.invocations("python")) == 3


def test_media_pins_are_in_the_lock_file():
    pins = {
        line.split("==")[0].lower(): line.strip()
        for line in (REPO_ROOT / "requirements-media.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    lock = {line.strip().lower() for line in (REPO_ROOT / "requirements-lock.txt").read_text().splitlines()}
    assert set(pins) == {"av", "numpy", "laspy", "lazrs"}
    assert all(pin.lower() in lock for pin in pins.values())
