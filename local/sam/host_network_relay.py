"""A Docker API relay that runs SAM CLI's Lambda containers in the host network, on loopback only.

Why: ``sam local invoke`` always creates its Lambda container on Docker's default bridge and
publishes the Runtime Interface Emulator (RIE, container port 8080) on ``127.0.0.1:<port>``; the
container then reaches this machine (the emulated AWS) only through the bridge gateway, a private
address. SAM CLI 1.170.0 ignores ``--docker-network host`` for this (samcli/local/docker/container.py
skips joining the network but keeps the port publication). So SAM's ``DOCKER_HOST`` points at this
relay instead of the engine, and the relay changes exactly one request:

``POST /containers/create`` whose body carries the label ``sam.cli.container.type=lambda`` and
SAM's known shape (only ``8080/tcp`` published, on a loopback ``HostIp``; entrypoint
``.../aws-lambda-rie``) is rewritten to ``HostConfig.NetworkMode=host`` without port bindings, and
the RIE is told to listen where SAM will connect: ``--runtime-interface-emulator-address
<HostIp>:<HostPort>``, with its runtime API on a free loopback port (``--runtime-api-address``;
its default 127.0.0.1:9001 would collide between containers sharing the host network). A Lambda
create of any other shape is refused with an HTTP 400 Docker-style error, never passed through.

Every other byte goes through unchanged, in both directions: requests are framed (head, then a
``Content-Length`` or chunked body) only to find the create requests on kept-alive connections;
after a request that hijacks the connection (``Upgrade`` header, ``/attach``, ``/exec/<id>/start``,
which SAM uses for the function's logs), both directions are plain byte pumps. Docker clients do
not pipeline requests, which is what makes answering a refusal on the client connection safe.

Bounded: request heads up to 64 KiB, create bodies up to 8 MiB, at most ``max_connections``
concurrent client connections; threads are daemons, all joined by ``stop()``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import json
import logging
import os
import re
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

LOG = logging.getLogger(__name__)

LAMBDA_LABEL = "sam.cli.container.type"
LAMBDA_LABEL_VALUE = "lambda"
RIE_CONTAINER_PORT = "8080/tcp"
RIE_ADDRESS_FLAG = "--runtime-interface-emulator-address"
RUNTIME_API_FLAG = "--runtime-api-address"

MAX_HEAD_BYTES = 64 * 1024
MAX_CREATE_BODY_BYTES = 8 * 1024 * 1024
_CHUNK = 64 * 1024
_ACCEPT_POLL_S = 0.2
_JOIN_TIMEOUT_S = 10.0

_CREATE_PATH = re.compile(r"^(/v[0-9.]+)?/containers/create$")
# Endpoints that hijack the connection even without an Upgrade header.
_HIJACK_PATH = re.compile(r"^(/v[0-9.]+)?/(containers/[^/]+/attach|exec/[^/]+/start)$")


class RefusedCreateError(ValueError):
    """A Lambda container create request whose shape the relay does not recognise."""


class RelayError(RuntimeError):
    """The relay cannot serve this engine (not a local unix or loopback TCP endpoint)."""


@dataclass(frozen=True)
class RewrittenCreate:
    """What the relay changed in one Lambda container create request."""

    name: str | None
    function: str | None
    network_mode: str
    rie_address: str
    runtime_api_address: str
    entrypoint: list[str]


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _rie_address(host_config: dict[str, Any], spec: dict[str, Any]) -> str:
    bindings = host_config.get("PortBindings")
    if not isinstance(bindings, dict) or set(bindings) != {RIE_CONTAINER_PORT}:
        raise RefusedCreateError(
            f"expected exactly one published port, {RIE_CONTAINER_PORT}, got {sorted(bindings or {})} "
            "(debug ports and extra published ports are not supported on the host network)"
        )
    binding = bindings[RIE_CONTAINER_PORT]
    if not (isinstance(binding, list) and len(binding) == 1 and isinstance(binding[0], dict)):
        raise RefusedCreateError(f"expected one host binding for {RIE_CONTAINER_PORT}, got {binding!r}")
    host_ip, host_port = binding[0].get("HostIp"), str(binding[0].get("HostPort", ""))
    try:
        loopback = ipaddress.ip_address(str(host_ip)).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise RefusedCreateError(
            f"the RIE port is published on {host_ip!r}, not a loopback address (--container-host-interface)"
        )
    if not host_port.isdigit() or not 0 < int(host_port) < 65536:
        raise RefusedCreateError(f"no usable host port for {RIE_CONTAINER_PORT}: {host_port!r}")
    exposed = spec.get("ExposedPorts")
    if exposed is not None and (not isinstance(exposed, dict) or set(exposed) - {RIE_CONTAINER_PORT}):
        raise RefusedCreateError(f"unexpected exposed ports {exposed!r}")
    return f"{host_ip}:{host_port}"


def rewrite_lambda_create(
    spec: Any, *, free_port: Callable[[], int] = free_loopback_port
) -> tuple[dict[str, Any], RewrittenCreate] | None:
    """The host-network version of a SAM Lambda container create body; None for any other
    container. Raises RefusedCreateError for a Lambda container of a shape this does not know."""
    if not isinstance(spec, dict):
        return None
    labels = spec.get("Labels")
    if not isinstance(labels, dict) or labels.get(LAMBDA_LABEL) != LAMBDA_LABEL_VALUE:
        return None
    host_config = spec.get("HostConfig")
    if not isinstance(host_config, dict):
        raise RefusedCreateError("no HostConfig")
    if host_config.get("NetworkMode") not in {None, "", "default"}:
        raise RefusedCreateError(f"NetworkMode is already {host_config['NetworkMode']!r} (sam --docker-network?)")
    networking = spec.get("NetworkingConfig")
    if networking and not (isinstance(networking, dict) and not networking.get("EndpointsConfig")):
        raise RefusedCreateError("NetworkingConfig endpoints cannot apply to the host network")
    if host_config.get("Dns") or host_config.get("PublishAllPorts"):
        raise RefusedCreateError("Dns / PublishAllPorts conflict with the host network (sam --container-dns?)")
    rie_address = _rie_address(host_config, spec)
    entrypoint = spec.get("Entrypoint")
    if not (
        isinstance(entrypoint, list)
        and entrypoint
        and all(isinstance(part, str) for part in entrypoint)
        and entrypoint[0].rsplit("/", 1)[-1] == "aws-lambda-rie"
    ):
        raise RefusedCreateError(f"entrypoint is not SAM's aws-lambda-rie command line: {entrypoint!r}")
    if any(part.split("=", 1)[0] in {RIE_ADDRESS_FLAG, RUNTIME_API_FLAG} for part in entrypoint[1:]):
        raise RefusedCreateError(f"the RIE command line already sets its addresses: {entrypoint!r}")

    runtime_api = f"127.0.0.1:{free_port()}"
    new_entrypoint = [entrypoint[0], RIE_ADDRESS_FLAG, rie_address, RUNTIME_API_FLAG, runtime_api, *entrypoint[1:]]
    new_host_config = {key: value for key, value in host_config.items() if key != "PortBindings"}
    new_host_config["NetworkMode"] = "host"
    rewritten = {key: value for key, value in spec.items() if key != "ExposedPorts"}
    rewritten["HostConfig"] = new_host_config
    rewritten["Entrypoint"] = new_entrypoint
    record = RewrittenCreate(
        name=None,
        function=labels.get("sam.cli.function.name"),
        network_mode="host",
        rie_address=rie_address,
        runtime_api_address=runtime_api,
        entrypoint=new_entrypoint,
    )
    return rewritten, record


class _Reader:
    """Buffered reads from a socket, with the framing an HTTP/1.1 request needs."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _fill(self) -> bool:
        chunk = self.sock.recv(_CHUNK)
        self.buffer += chunk
        return bool(chunk)

    def head(self) -> bytes | None:
        """The request head including its blank line; None at a clean end of stream."""
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise _BadRequestError(431, "request head too large")
            if not self._fill():
                if self.buffer:
                    raise _BadRequestError(400, "connection closed inside a request head")
                return None
        head, self.buffer = self.buffer[: end + 4], self.buffer[end + 4 :]
        return head

    def exact(self, size: int) -> bytes:
        while len(self.buffer) < size:
            if not self._fill():
                raise _BadRequestError(400, "connection closed inside a request body")
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def line(self) -> bytes:
        while (end := self.buffer.find(b"\r\n")) < 0:
            if len(self.buffer) > MAX_HEAD_BYTES:
                raise _BadRequestError(400, "chunk header too long")
            if not self._fill():
                raise _BadRequestError(400, "connection closed inside a chunked body")
        data, self.buffer = self.buffer[: end + 2], self.buffer[end + 2 :]
        return data


class _BadRequestError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


_REASONS = {
    400: "Bad Request",
    413: "Payload Too Large",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def _error_reply(status: int, message: str) -> bytes:
    body = json.dumps({"message": message}).encode()
    return (
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode() + body


@dataclass(frozen=True)
class _Request:
    head: bytes
    method: str
    target: str
    headers: list[tuple[str, str]]

    @classmethod
    def parse(cls, head: bytes) -> _Request:
        lines = head[:-4].split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or not parts[2].startswith(b"HTTP/1."):
            raise _BadRequestError(400, f"not an HTTP/1.x request line: {lines[0][:200]!r}")
        headers = []
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if not sep:
                raise _BadRequestError(400, f"malformed header line {line[:200]!r}")
            headers.append((name.strip().decode("latin-1").lower(), value.strip().decode("latin-1")))
        return cls(head, parts[0].decode("latin-1"), parts[1].decode("latin-1"), headers)

    def header(self, name: str) -> str | None:
        return next((value for key, value in self.headers if key == name), None)

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def chunked(self) -> bool:
        return "chunked" in (self.header("transfer-encoding") or "").lower()

    @property
    def content_length(self) -> int:
        value = self.header("content-length") or "0"
        if not value.isdigit():
            raise _BadRequestError(400, f"bad Content-Length {value!r}")
        return int(value)

    @property
    def hijacks(self) -> bool:
        upgrade = self.header("upgrade") is not None or "upgrade" in (self.header("connection") or "").lower()
        return upgrade or bool(_HIJACK_PATH.match(self.path))

    @property
    def is_create(self) -> bool:
        return self.method == "POST" and bool(_CREATE_PATH.match(self.path))


def _pump(src: socket.socket, dst: socket.socket, initial: bytes = b"") -> None:
    """Copy bytes until ``src`` ends, then half-close ``dst`` so the peer sees the end too."""
    try:
        if initial:
            dst.sendall(initial)
        while chunk := src.recv(_CHUNK):
            dst.sendall(chunk)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def _linger(sock: socket.socket, seconds: float = 2.0) -> None:
    """Half-close, then read what the peer still sends until it closes (bounded).

    Closing a socket with unread input sends a reset, which can destroy the reply still in
    flight, and a client still writing its request would see a broken pipe instead of the reply.
    """
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(seconds)
        while sock.recv(_CHUNK):
            pass


def _connect_factory(base_url: str) -> Callable[[], socket.socket]:
    parts = urlsplit(base_url)
    if parts.scheme in {"unix", "http+unix"}:
        path = parts.path or parts.netloc

        def connect_unix() -> socket.socket:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(path)
            return sock

        return connect_unix
    if parts.scheme in {"tcp", "http"} and parts.hostname:
        host, port = parts.hostname, parts.port or 2375
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise RelayError(f"the engine at {base_url} is not on this machine; host networking needs a local engine")
        return lambda: socket.create_connection((host, port))
    raise RelayError(f"cannot relay to {base_url}: only unix:// sockets and plain tcp:// on loopback are supported")


class HostNetworkRelay:
    """Serve the Docker API on a private unix socket (``base_url``, for SAM's ``DOCKER_HOST``),
    forwarding to ``upstream`` with SAM's Lambda containers moved to the host network."""

    def __init__(
        self,
        upstream: str,
        *,
        max_connections: int = 64,
        free_port: Callable[[], int] = free_loopback_port,
    ) -> None:
        self._connect = _connect_factory(upstream)
        self.upstream = upstream
        self._free_port = free_port
        self._slots = threading.BoundedSemaphore(max_connections)
        self._dir = Path(tempfile.mkdtemp(prefix="sam-relay-"))  # 0700: only this user reaches the engine
        self.socket_path = self._dir / "docker.sock"
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.socket_path))
        os.chmod(self.socket_path, 0o600)
        self._listener.listen(64)
        self._listener.settimeout(_ACCEPT_POLL_S)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._accept_thread: threading.Thread | None = None
        self.rewrites: list[RewrittenCreate] = []
        self.refusals: list[str] = []

    @property
    def base_url(self) -> str:
        return f"unix://{self.socket_path}"

    def start(self) -> HostNetworkRelay:
        self._accept_thread = threading.Thread(target=self._accept_loop, name="docker-relay", daemon=True)
        self._accept_thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._accept_thread is not None:
            self._accept_thread.join(_JOIN_TIMEOUT_S)
        with self._lock:
            sockets, threads = list(self._open), list(self._threads)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in threads:
            thread.join(_JOIN_TIMEOUT_S)
        self._listener.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> HostNetworkRelay:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, target: Callable[..., None], *args: Any) -> threading.Thread:
        def run() -> None:
            try:
                target(*args)
            finally:
                with self._lock:
                    self._threads.discard(threading.current_thread())

        thread = threading.Thread(target=run, name="docker-relay-conn", daemon=True)
        with self._lock:  # stop() only ever sees started threads
            self._threads.add(thread)
            thread.start()
        return thread

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._open.add(sock)
        return sock

    def _close(self, *socks: socket.socket) -> None:
        for sock in socks:
            with self._lock:
                self._open.discard(sock)
            sock.close()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            if not self._slots.acquire(blocking=False):
                with contextlib.suppress(OSError):
                    client.sendall(_error_reply(503, "docker relay: too many concurrent connections"))
                client.close()
                continue
            self._track(client)
            self._spawn(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        upstream: socket.socket | None = None
        responses: threading.Thread | None = None
        try:
            upstream = self._track(self._connect())
            responses = self._spawn(_pump, upstream, client)
            self._relay_requests(_Reader(client), upstream)
        except _BadRequestError as exc:
            self._answer_error(client, upstream, responses, exc.status, exc.message)
        except OSError as exc:
            if upstream is None:
                self._answer_error(client, None, None, 502, f"docker relay: cannot reach {self.upstream}: {exc}")
        finally:
            if upstream is not None:
                with contextlib.suppress(OSError):
                    upstream.shutdown(socket.SHUT_WR)
            if responses is not None:
                responses.join()
            self._close(client, *([upstream] if upstream is not None else []))
            self._slots.release()

    def _answer_error(
        self,
        client: socket.socket,
        upstream: socket.socket | None,
        responses: threading.Thread | None,
        status: int,
        message: str,
    ) -> None:
        LOG.error("docker relay: refused a request: %s", message)
        # Clients do not pipeline: no response is in flight, so the reply cannot interleave with
        # one from the engine. Then end the engine side, which also ends the response pump.
        with contextlib.suppress(OSError):
            client.sendall(_error_reply(status, message))
        if upstream is not None and responses is not None:
            with contextlib.suppress(OSError):
                upstream.shutdown(socket.SHUT_RDWR)
            responses.join()
        _linger(client)

    def _relay_requests(self, reader: _Reader, upstream: socket.socket) -> None:
        while (head := reader.head()) is not None:
            request = _Request.parse(head)
            if request.is_create:
                upstream.sendall(self._create(request, reader))
            else:
                upstream.sendall(head)
                self._forward_body(request, reader, upstream)
            if request.hijacks:
                # From here on the connection is a raw stream both ways (attach, exec, upgrades).
                _pump(reader.sock, upstream, reader.buffer)
                return

    @staticmethod
    def _forward_body(request: _Request, reader: _Reader, upstream: socket.socket) -> None:
        for raw, _ in _body_pieces(request, reader):
            upstream.sendall(raw)

    def _create(self, request: _Request, reader: _Reader) -> bytes:
        """The bytes to send upstream for a container create: the original ones unless it is a
        SAM Lambda container."""
        if request.header("expect") is not None:
            raise _BadRequestError(400, "docker relay: container create with an Expect header is not supported")
        raw, body = _read_whole_body(request, reader)
        try:
            spec = json.loads(body)
        except ValueError:
            return raw  # the engine reports malformed JSON itself
        try:
            result = rewrite_lambda_create(spec, free_port=self._free_port)
        except RefusedCreateError as exc:
            message = (
                f"docker relay: refused to create a SAM Lambda container: {exc}. local/sam/host_network_relay.py "
                "knows the create request of SAM CLI as pinned in requirements-sam.txt; see docs/sam-local.md"
            )
            with self._lock:
                self.refusals.append(message)
            raise _BadRequestError(400, message) from exc
        if result is None:
            return raw
        new_spec, record = result
        record = dataclasses.replace(record, name=parse_qs(urlsplit(request.target).query).get("name", [None])[0])
        with self._lock:
            self.rewrites.append(record)
        LOG.info("docker relay: %s on the host network, RIE at %s", record.function or "lambda", record.rie_address)
        new_body = json.dumps(new_spec).encode()
        kept = [
            line
            for line in request.head[:-4].split(b"\r\n")[1:]
            if line.split(b":", 1)[0].strip().lower() not in {b"content-length", b"transfer-encoding"}
        ]
        first = request.head.split(b"\r\n", 1)[0]
        return b"\r\n".join([first, *kept, b"Content-Length: %d" % len(new_body)]) + b"\r\n\r\n" + new_body


def _chunk_size(line: bytes) -> int:
    try:
        return int(line.split(b";", 1)[0].strip(), 16)
    except ValueError:
        raise _BadRequestError(400, f"bad chunk size line {line[:40]!r}") from None


def _body_pieces(request: _Request, reader: _Reader) -> Iterator[tuple[bytes, bytes]]:
    """A request body as (bytes as received, payload bytes) pieces, in order, up to its end:
    ``Content-Length`` bytes, or chunks with their framing and trailers."""
    if not request.chunked:
        remaining = request.content_length
        while remaining:
            part = reader.exact(min(remaining, _CHUNK))
            remaining -= len(part)
            yield part, part
        return
    while True:
        size_line = reader.line()
        size = _chunk_size(size_line)
        if size == 0:
            yield size_line, b""
            while (trailer := reader.line()) != b"\r\n":
                yield trailer, b""
            yield trailer, b""
            return
        yield size_line, b""
        remaining = size
        while remaining:
            part = reader.exact(min(remaining, _CHUNK))
            remaining -= len(part)
            yield part, part
        if reader.exact(2) != b"\r\n":
            raise _BadRequestError(400, "chunk not followed by CRLF")
        yield b"\r\n", b""


def _read_whole_body(request: _Request, reader: _Reader) -> tuple[bytes, bytes]:
    """(the bytes as received, the decoded body) of a create request body, bounded."""
    if request.content_length > MAX_CREATE_BODY_BYTES:
        raise _BadRequestError(413, f"docker relay: create body is over {MAX_CREATE_BODY_BYTES} bytes")
    raw, payload, size = [request.head], list[bytes](), 0
    for received, data in _body_pieces(request, reader):
        size += len(data)
        if size > MAX_CREATE_BODY_BYTES:
            raise _BadRequestError(413, f"docker relay: create body is over {MAX_CREATE_BODY_BYTES} bytes")
        raw.append(received)
        payload.append(data)
    return b"".join(raw), b"".join(payload)
