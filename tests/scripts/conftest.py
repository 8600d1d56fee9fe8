"""Fixtures for the bash script tests: fake ``aws``/``sam`` executables first on PATH, and
loopback stand-ins for a Debian mirror (one that serves trixie's InRelease, one that refuses)."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.fake_cli import fake_cli

__all__ = ["closed_port", "fake_cli", "stand_in_mirror"]


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
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/debian"
    finally:
        server.shutdown()
        server.server_close()
