"""The Docker API relay in front of a fake engine: SAM's Lambda container create is moved to the
host network with the RIE on loopback, everything else passes byte for byte (keep-alive, chunked
bodies, hijacked attach streams), and a Lambda create of an unknown shape never reaches the engine."""

from __future__ import annotations

import json
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker  # type: ignore[import-untyped]
import pytest

from local.sam.host_network_relay import (
    MAX_CREATE_BODY_BYTES,
    MAX_HEAD_BYTES,
    RIE_ADDRESS_FLAG,
    RUNTIME_API_FLAG,
    HostNetworkRelay,
    RefusedCreateError,
    RelayError,
    rewrite_lambda_create,
)

pytestmark = pytest.mark.unit

RIE = "/var/rapid/aws-lambda-rie"
LAMBDA_LABELS = {"sam.cli.container.type": "lambda", "sam.cli.function.name": "ProbeFunction"}


def sam_like_spec(**changes: Any) -> dict[str, Any]:
    """The create body SAM CLI 1.170.0 sends for a Lambda container (docker-py's encoding)."""
    spec: dict[str, Any] = {
        "Image": "fsxn-s3ap/sam-invoke:rapid-x86_64",
        "Cmd": ["handler.handler"],
        "Entrypoint": [RIE, "--log-level", "error"],
        "WorkingDir": "/var/task",
        "Env": ["AWS_REGION=us-east-1"],
        "Labels": dict(LAMBDA_LABELS),
        "ExposedPorts": {"8080/tcp": {}},
        "HostConfig": {
            "Binds": ["/src:/var/task:ro,delegated"],
            "PortBindings": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "6123"}]},
            "NetworkMode": "default",
        },
    }
    spec.update(changes)
    return spec


class FakeEngine:
    """A Docker engine on a unix socket: records every request's raw bytes per connection and
    answers create with an id, attach with a 101 upgrade and a multiplexed log stream that then
    echoes stdin, anything else with its path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.connections: list[bytearray] = []
        self.creates: list[dict[str, Any]] = []
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(str(path))
        self._server.listen(16)
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            log = bytearray()
            self.connections.append(log)
            threading.Thread(target=self._serve, args=(conn, log), daemon=True).start()

    @staticmethod
    def _recv_until(conn: socket.socket, buf: bytearray, marker: bytes) -> int:
        while (end := buf.find(marker)) < 0:
            chunk = conn.recv(65536)
            if not chunk:
                return -1
            buf += chunk
        return end

    def _serve(self, conn: socket.socket, log: bytearray) -> None:
        buf = bytearray()
        with conn:
            while (end := self._recv_until(conn, buf, b"\r\n\r\n")) >= 0:
                head = bytes(buf[: end + 4])
                del buf[: end + 4]
                headers = {
                    k.strip().lower(): v.strip()
                    for k, _, v in (line.partition(b":") for line in head.split(b"\r\n")[1:-2])
                }
                body = bytearray()
                raw_body = bytearray()
                if b"chunked" in headers.get(b"transfer-encoding", b""):
                    while True:
                        line_end = self._recv_until(conn, buf, b"\r\n")
                        size = int(bytes(buf[:line_end]).split(b";")[0], 16)
                        if size == 0:  # last chunk, then optional trailers and a blank line
                            trailer_end = self._recv_until(conn, buf, b"\r\n\r\n")
                            if buf[line_end + 2 : line_end + 4] == b"\r\n":
                                trailer_end = line_end
                            raw_body += buf[: trailer_end + 4]
                            del buf[: trailer_end + 4]
                            break
                        while len(buf) < line_end + 2 + size + 2:
                            buf += conn.recv(65536)
                        raw_body += buf[: line_end + 2 + size + 2]
                        body += buf[line_end + 2 : line_end + 2 + size]
                        del buf[: line_end + 2 + size + 2]
                else:
                    size = int(headers.get(b"content-length", b"0"))
                    while len(buf) < size:
                        buf += conn.recv(65536)
                    body += buf[:size]
                    raw_body += buf[:size]
                    del buf[:size]
                log += head + raw_body
                method, target, _ = head.split(b"\r\n", 1)[0].split(b" ")
                if target.split(b"?")[0].endswith(b"/containers/create"):
                    self.creates.append(json.loads(body))
                    self._reply(conn, 201, {"Id": "c0ffee", "Warnings": []})
                elif target.split(b"?")[0].endswith(b"/attach"):
                    self._attached(conn, bytes(buf), log)
                    return
                elif target.split(b"?")[0].endswith(b"/json"):
                    self._reply(conn, 200, {"Id": "c0ffee", "Config": {"Tty": False}})
                else:
                    self._reply(conn, 200, {"method": method.decode(), "path": target.decode(), "size": len(body)})

    @staticmethod
    def _reply(conn: socket.socket, status: int, document: dict[str, Any]) -> None:
        data = json.dumps(document).encode()
        conn.sendall(
            b"HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (status, len(data))
            + data
        )

    @staticmethod
    def _attached(conn: socket.socket, pending: bytes, log: bytearray) -> None:
        conn.sendall(
            b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\n"
            b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
        )
        # As with a container that writes after the attach: docker-py reads frames from the raw
        # socket once it has the 101 head, so frames sent in the same segment would be lost to it.
        time.sleep(0.2)
        for stream, text in ((1, b"START RequestId: 1\n"), (2, b"POST /looks/like/http HTTP/1.1\r\n\r\n")):
            conn.sendall(struct.pack(">BxxxL", stream, len(text)) + text)
        conn.settimeout(0.5)
        data = pending
        try:
            while chunk := conn.recv(65536):
                data += chunk
        except TimeoutError:
            pass
        log += data
        if data:
            conn.sendall(struct.pack(">BxxxL", 1, len(data) + 5) + b"echo:" + data)
        conn.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._server.close()


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[FakeEngine]:
    fake = FakeEngine(tmp_path / "engine.sock")
    yield fake
    fake.close()


@pytest.fixture
def relay(engine: FakeEngine) -> Iterator[HostNetworkRelay]:
    with HostNetworkRelay(f"unix://{engine.path}") as running:
        yield running


def exchange(relay: HostNetworkRelay, *requests: bytes) -> list[bytes]:
    """Send requests one after another on one connection; the raw responses."""
    replies = []
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(relay.socket_path))
        sock.settimeout(10)
        for request in requests:
            sock.sendall(request)
            reply = b""
            while b"\r\n\r\n" not in reply:
                reply += sock.recv(65536)
            head, _, body = reply.partition(b"\r\n\r\n")
            length = int(
                next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
            )
            while len(body) < length:
                body += sock.recv(65536)
            replies.append(reply)
    return replies


def post(path: str, document: Any, *, extra: bytes = b"") -> bytes:
    body = json.dumps(document).encode()
    return (
        f"POST {path} HTTP/1.1\r\nHost: docker\r\nContent-Type: application/json\r\n".encode()
        + extra
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )


def test_a_sam_lambda_create_is_moved_to_the_host_network_with_the_rie_on_loopback(engine, relay) -> None:
    replies = exchange(relay, post("/v1.41/containers/create?name=probe", sam_like_spec()))
    assert replies[0].startswith(b"HTTP/1.1 201")
    [created] = engine.creates
    assert created["HostConfig"]["NetworkMode"] == "host"
    assert "PortBindings" not in created["HostConfig"]
    assert "ExposedPorts" not in created
    assert created["HostConfig"]["Binds"] == ["/src:/var/task:ro,delegated"]  # the rest is kept
    entry = created["Entrypoint"]
    assert entry[0] == RIE
    assert entry[entry.index(RIE_ADDRESS_FLAG) + 1] == "127.0.0.1:6123"  # where SAM will connect
    api_host, api_port = entry[entry.index(RUNTIME_API_FLAG) + 1].split(":")
    assert api_host == "127.0.0.1"
    assert int(api_port) > 0
    assert entry[-2:] == ["--log-level", "error"]
    [record] = relay.rewrites
    assert (record.name, record.function, record.network_mode) == ("probe", "ProbeFunction", "host")


def test_docker_py_as_sam_calls_it_gets_a_host_network_container(engine, relay) -> None:
    # The request shape SAM produces comes from docker-py: build it with docker-py, as SAM does.
    client = docker.APIClient(base_url=relay.base_url, version="1.41")
    try:
        client.create_container(
            "img",
            command=["handler.handler"],
            entrypoint=[RIE, "--log-level", "error"],
            ports=[8080],
            labels=LAMBDA_LABELS,
            host_config=client.create_host_config(port_bindings={8080: ("127.0.0.1", 7001)}),
        )
    finally:
        client.close()
    [created] = engine.creates
    assert created["HostConfig"]["NetworkMode"] == "host"
    assert created["Entrypoint"][1:3] == [RIE_ADDRESS_FLAG, "127.0.0.1:7001"]


def test_other_requests_pass_byte_for_byte_on_a_kept_alive_connection(engine, relay) -> None:
    plain = post("/v1.41/containers/create?name=builder", sam_like_spec(Labels={"sam.cli.container.type": "build"}))
    chunked_body = json.dumps({"Image": "x", "Labels": {}}).encode()
    chunked = (
        b"POST /containers/create HTTP/1.1\r\nHost: docker\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n" % 5
        + chunked_body[:5]
        + b"\r\n"
        + b"%x;ext=1\r\n" % (len(chunked_body) - 5)
        + chunked_body[5:]
        + b"\r\n0\r\nX-Trailer: y\r\n\r\n"
    )
    get = b"GET /v1.41/version HTTP/1.1\r\nHost: docker\r\nX-Odd:  spaced \r\n\r\n"
    other_post = post("/v1.41/containers/c0ffee/start", {"odd": "json"})
    replies = exchange(relay, plain, chunked, get, other_post)
    assert [r.split(b" ", 2)[1] for r in replies] == [b"201", b"201", b"200", b"200"]
    assert len(engine.connections) == 1  # one kept-alive connection, as the client used
    assert bytes(engine.connections[0]) == plain + chunked + get + other_post
    assert relay.rewrites == []


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"Entrypoint": ["/lambda-entrypoint.sh", "handler.handler"]}, "aws-lambda-rie"),
        ({"Entrypoint": [RIE, "--runtime-api-address", "127.0.0.1:9001"]}, "already sets"),
        (
            {
                "HostConfig": {
                    "PortBindings": {
                        "8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "6123"}],
                        "5858/tcp": [{"HostIp": "127.0.0.1", "HostPort": "5858"}],
                    }
                }
            },
            "exactly one published port",
        ),
        ({"HostConfig": {"PortBindings": {"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "6123"}]}}}, "loopback"),  # noqa: S104 - the bad input
        (
            {
                "HostConfig": {
                    "NetworkMode": "sam-net",
                    "PortBindings": {"8080/tcp": [{"HostIp": "127.0.0.1", "HostPort": "6123"}]},
                }
            },
            "NetworkMode",
        ),
        ({"HostConfig": None}, "HostConfig"),
    ],
)
def test_a_lambda_create_of_unknown_shape_is_refused_and_never_reaches_the_engine(
    engine, relay, change, reason
) -> None:
    [reply] = exchange(relay, post("/v1.41/containers/create", sam_like_spec(**change)))
    assert reply.startswith(b"HTTP/1.1 400")
    message = json.loads(reply.partition(b"\r\n\r\n")[2])["message"]
    assert "refused to create a SAM Lambda container" in message
    assert reason in message
    assert engine.creates == []
    assert relay.refusals == [message]


def test_the_refusal_reaches_a_docker_py_caller_as_an_api_error(engine, relay) -> None:
    client = docker.APIClient(base_url=relay.base_url, version="1.41")
    try:
        with pytest.raises(docker.errors.APIError, match="refused to create a SAM Lambda container"):
            client.create_container("img", entrypoint=["/other"], labels=LAMBDA_LABELS)
    finally:
        client.close()
    assert engine.creates == []


def test_an_attach_stream_is_relayed_raw_after_the_upgrade(engine, relay) -> None:
    # docker-py's attach, as SAM reads function logs: 101 then a multiplexed stream (whose payload
    # may look like HTTP: it must not be parsed) and stdin bytes going the other way.
    request = (
        b"POST /v1.41/containers/c0ffee/attach?logs=1&stdout=1&stderr=1&stream=1 HTTP/1.1\r\n"
        b"Host: docker\r\nContent-Length: 0\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
    )
    stdin = b"GET /not/a/request HTTP/1.1\r\n\r\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(relay.socket_path))
        sock.settimeout(10)
        sock.sendall(request + stdin)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, stream = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101")
    frames = []
    while stream:
        kind, size = struct.unpack(">BxxxL", stream[:8])
        frames.append((kind, stream[8 : 8 + size]))
        stream = stream[8 + size :]
    assert frames == [
        (1, b"START RequestId: 1\n"),
        (2, b"POST /looks/like/http HTTP/1.1\r\n\r\n"),
        (1, b"echo:" + stdin),
    ]
    assert bytes(engine.connections[0]) == request + stdin


def test_docker_py_attach_demuxes_logs_through_the_relay(engine, relay) -> None:
    client = docker.APIClient(base_url=relay.base_url, version="1.41")
    try:
        frames = list(client.attach("c0ffee", stream=True, logs=True, demux=True))
    finally:
        client.close()
    assert (b"START RequestId: 1\n", None) in frames
    assert (None, b"POST /looks/like/http HTTP/1.1\r\n\r\n") in frames


def test_an_oversized_request_head_is_refused(engine, relay) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(relay.socket_path))
        sock.settimeout(10)
        sock.sendall(b"GET /version HTTP/1.1\r\nX-Big: " + b"a" * (MAX_HEAD_BYTES + 10))
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 431")
    assert engine.connections in ([], [bytearray()])


def test_connections_over_the_limit_are_turned_away(engine) -> None:
    with (
        HostNetworkRelay(f"unix://{engine.path}", max_connections=1) as relay,
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as first,
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as second,
    ):
        first.connect(str(relay.socket_path))
        first.sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
        first.settimeout(10)
        assert first.recv(65536).startswith(b"HTTP/1.1 200")
        second.connect(str(relay.socket_path))
        second.settimeout(10)
        assert second.recv(65536).startswith(b"HTTP/1.1 503")


def test_stop_ends_open_connections_and_removes_the_socket(engine) -> None:
    relay = HostNetworkRelay(f"unix://{engine.path}").start()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(relay.socket_path))
    sock.settimeout(10)
    relay.stop()
    assert sock.recv(1) == b""
    sock.close()
    assert not relay.socket_path.exists()
    assert not [t for t in threading.enumerate() if t.name.startswith("docker-relay")]


def test_an_unreachable_engine_is_a_502(tmp_path: Path) -> None:
    with HostNetworkRelay(f"unix://{tmp_path}/absent.sock") as relay:
        [reply] = exchange(relay, b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 502")


def test_a_client_still_writing_its_request_gets_the_502_not_a_broken_pipe(tmp_path: Path) -> None:
    # The relay answers as soon as the engine cannot be reached; a client that sends its request
    # only afterwards must still be able to write it and read the reply.
    with HostNetworkRelay(f"unix://{tmp_path}/absent.sock") as relay, socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(relay.socket_path))
        sock.settimeout(10)
        time.sleep(0.3)
        sock.sendall(b"POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: 2\r\n\r\n{}")
        assert sock.recv(65536).startswith(b"HTTP/1.1 502")


@pytest.mark.parametrize("url", ["tcp://192.0.2.10:2375", "ssh://user@host", "npipe:////./pipe/docker"])
def test_engines_not_on_this_machine_are_refused(url: str) -> None:
    with pytest.raises(RelayError):
        HostNetworkRelay(url)


def test_non_lambda_and_non_object_bodies_are_not_rewritten() -> None:
    assert rewrite_lambda_create(sam_like_spec(Labels={})) is None
    assert rewrite_lambda_create([1, 2]) is None
    with pytest.raises(RefusedCreateError):
        rewrite_lambda_create(sam_like_spec(ExposedPorts={"8080/tcp": {}, "9229/tcp": {}}))


def test_an_oversized_create_body_is_refused_before_it_is_read(engine, relay) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(relay.socket_path))
        sock.settimeout(10)
        sock.sendall(
            b"POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: %d\r\n\r\n{" % (MAX_CREATE_BODY_BYTES + 1)
        )
        reply = sock.recv(65536)
    assert reply.startswith(b"HTTP/1.1 413")
    assert engine.creates == []
