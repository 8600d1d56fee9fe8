"""A ``socketserver`` server in a background thread that stops without waiting.

``shutdown()`` returns once ``serve_forever`` next looks at its flag, which it does every
``poll_interval``: 0.5 s by default, so every stop of a server left at the default cost up to half
a second (every run of the sam engine, every test with a loopback stand-in). Here it polls every
20 ms; requests are served the same.
"""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager

POLL_SECONDS = 0.02


def start(server: socketserver.BaseServer, name: str) -> threading.Thread:
    """Serve ``server`` in a daemon thread named ``name``; returns the thread."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": POLL_SECONDS}, name=name, daemon=True
    )
    thread.start()
    return thread


def stop(server: socketserver.BaseServer, thread: threading.Thread | None, *, timeout: float = 10.0) -> None:
    """Stop serving (when ``thread`` runs it), close the listening socket, join the thread."""
    if thread is not None:
        server.shutdown()  # waits for serve_forever to notice: only when it runs
        thread.join(timeout=timeout)
    server.server_close()


@contextmanager
def serving[Server: socketserver.BaseServer](server: Server, name: str) -> Iterator[Server]:
    """``start`` for the duration of the block, then ``stop``."""
    thread = start(server, name)
    try:
        yield server
    finally:
        stop(server, thread)
