"""A loopback HTTP server that answers like S3 (ListObjectsV2) and Secrets Manager (GetSecretValue).

It exists to observe connections: every request is recorded with the id of the TCP connection
it arrived on, so a test can tell whether a client reused a pooled connection or opened a new
one. Each GetSecretValue returns a new value (``secret-1``, ``secret-2``, ...), so a test can tell
a cached secret from a refreshed one.
"""

from __future__ import annotations

import http.server
import itertools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from local import serving

LISTING = b'<?xml version="1.0"?><ListBucketResult><Name>fixture</Name><KeyCount>0</KeyCount></ListBucketResult>'


@dataclass(frozen=True)
class Request:
    connection: int
    kind: str  # "list" or "secret"


@dataclass
class Recorder:
    requests: list[Request] = field(default_factory=list)
    secrets_served: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def connections(self, kind: str | None = None) -> set[int]:
        with self.lock:
            return {r.connection for r in self.requests if kind is None or r.kind == kind}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the real endpoints
    disable_nagle_algorithm = True  # headers and body go out at once; no delayed-ACK stalls
    recorder: Recorder
    connection_ids: Iterator[int]

    def setup(self) -> None:
        super().setup()
        self.connection_id = next(type(self).connection_ids)

    def _reply(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        with self.recorder.lock:
            self.recorder.requests.append(Request(self.connection_id, "list"))
        self._reply(LISTING, "application/xml")

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("X-Amz-Target") != "secretsmanager.GetSecretValue":
            self.send_error(400, "unsupported operation")
            return
        with self.recorder.lock:
            self.recorder.secrets_served += 1
            value = f"secret-{self.recorder.secrets_served}"
            self.recorder.requests.append(Request(self.connection_id, "secret"))
        body = json.dumps({"Name": "api", "SecretString": value}).encode()
        self._reply(body, "application/x-amz-json-1.1")

    def log_message(self, *_: Any) -> None:
        pass


@contextmanager
def loopback_aws() -> Iterator[tuple[str, Recorder]]:
    """(endpoint URL, recorder) of a server running for the duration of the block."""
    recorder = Recorder()
    handler = type("Handler", (_Handler,), {"recorder": recorder, "connection_ids": itertools.count(1)})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    with serving.serving(server, "loopback-aws"):
        yield f"http://127.0.0.1:{server.server_address[1]}", recorder
