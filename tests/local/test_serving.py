"""local.serving: a loopback server serves while the block runs, and is really gone after it."""

from __future__ import annotations

import socket
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from local import serving

pytestmark = pytest.mark.unit


class _Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, format: str, *args: object) -> None:
        """No request log on stderr."""


def test_serves_inside_the_block_and_is_stopped_and_closed_after_it():
    with serving.serving(ThreadingHTTPServer(("127.0.0.1", 0), _Hello), "hello") as server:
        port = server.server_address[1]
        (thread,) = [t for t in threading.enumerate() if t.name == "hello"]
        assert thread.daemon
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/") as reply:
            assert reply.read() == b"hello"
    assert not thread.is_alive()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass


def test_stopping_a_server_that_never_started_only_closes_it():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hello)
    port = server.server_address[1]
    serving.stop(server, None)  # shutdown() on a server that is not serving would block for ever
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=5):
        pass
