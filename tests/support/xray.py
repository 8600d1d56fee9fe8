"""A loopback stand-in for the X-Ray daemon: a UDP socket on 127.0.0.1 that keeps every segment
document the X-Ray SDK sends (``AWS_XRAY_DAEMON_ADDRESS=127.0.0.1:<port>``)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

# Every datagram is a header line, then one segment or subsegment document.
_HEADER = '{"format":"json","version":1}'


class XrayDaemon:
    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self.address = f"127.0.0.1:{self._sock.getsockname()[1]}"
        self._documents: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, daemon=True)
        self._thread.start()

    def _receive(self) -> None:
        while not self._stop.is_set():
            try:
                data, _ = self._sock.recvfrom(65535)
            except TimeoutError:
                continue
            header, _, body = data.decode().partition("\n")
            if header != _HEADER:
                raise AssertionError(f"not an X-Ray daemon datagram: {data[:200]!r}")
            self._documents.append(json.loads(body))

    def documents(self) -> list[dict[str, Any]]:
        """Every (sub)segment received, flattened (nested subsegments listed after their parent)."""
        time.sleep(0.5)  # the last datagrams of the process under test
        flat: list[dict[str, Any]] = []

        def walk(doc: dict[str, Any]) -> None:
            flat.append(doc)
            for child in doc.get("subsegments", []):
                walk(child)

        for doc in list(self._documents):
            walk(doc)
        return flat

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()


@contextmanager
def xray_daemon() -> Iterator[XrayDaemon]:
    daemon = XrayDaemon()
    try:
        yield daemon
    finally:
        daemon.close()


def emf_lines(text: str) -> list[dict[str, Any]]:
    """The CloudWatch embedded metric format documents among the JSON lines of ``text``."""
    found = []
    for line in text.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            doc = json.loads(line)
            if "CloudWatchMetrics" in doc.get("_aws", {}):
                found.append(doc)
    return found
