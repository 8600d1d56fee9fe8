"""Fixtures for the bash script tests: fake ``aws``/``sam`` executables first on PATH, a scratch
copy of the files the build scripts read (``repo``), and loopback stand-ins for a Debian mirror
(one that serves trixie's InRelease, one that refuses)."""

from __future__ import annotations

import functools
import http.server
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from local import serving
from tests.support import uc06_native
from tests.support.fake_cli import FakeCli, fake_cli
from tests.support.templates import REPO_ROOT, use_case_templates

USE_CASES = tuple(sorted(path.parent.name for path in use_case_templates()))

__all__ = ["closed_port", "fake_cli", "layer_env", "repo", "stand_in_mirror"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A scratch copy of what package.sh, deploy.sh and build-layer.sh read: scripts/ (with the
    libraries they source), shared/, native/ (the C source), the requirement pins and every use
    case."""
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "scripts", root / "scripts")
    for name in ("requirements-runtime.txt", "requirements-lock.txt"):
        shutil.copy2(REPO_ROOT / name, root / name)
    shutil.copytree(REPO_ROOT / "shared", root / "shared", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO_ROOT / "native", root / "native")
    uc06_native.seed_built(root)
    for use_case in USE_CASES:
        shutil.copytree(REPO_ROOT / use_case, root / use_case, ignore=shutil.ignore_patterns("__pycache__"))
    return root


def layer_env(fake_cli: FakeCli) -> dict[str, str]:
    """The environment for build-layer.sh with a fake ``python`` as the pip that installs the layer
    (the C extension is compiled for real, for this interpreter: CPython 3.13)."""
    fake_cli.install("python")
    env = fake_cli.env()
    env["BUILD_LAYER_PYTHON"] = str(fake_cli.bin_dir / "python")
    env["BUILD_NATIVE_PYTHON"] = sys.executable
    return env


def closed_port() -> int:
    """A loopback port nothing listens on: connections to it are refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class _MirrorHandler(http.server.SimpleHTTPRequestHandler):
    def translate_path(self, path: str) -> str:
        # the stand-in serves the archive under /debian, as mirrors usually do
        return super().translate_path(path.removeprefix("/debian"))

    def log_message(self, format: str, *args: object) -> None:
        """No request log on stderr."""


@pytest.fixture
def stand_in_mirror(tmp_path: Path) -> Iterator[str]:
    """URL of a loopback HTTP server with dists/trixie/InRelease, as a Debian mirror has it."""
    root = tmp_path / "mirror"
    (root / "dists" / "trixie").mkdir(parents=True)
    (root / "dists" / "trixie" / "InRelease").write_text("Origin: Debian\nSuite: stable\nCodename: trixie\n")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_MirrorHandler, directory=str(root)))
    with serving.serving(server, "stand-in-mirror"):
        yield f"http://127.0.0.1:{server.server_address[1]}/debian"
