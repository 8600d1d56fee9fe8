"""Emulated AWS for functions running in Lambda containers: an HTTPS proxy in front of moto.

A handler in a ``sam local invoke`` container keeps its ordinary boto3 clients and real AWS host
names. The container's environment carries ``HTTPS_PROXY`` (this server) and ``AWS_CA_BUNDLE`` (the
certificate authority this server signs with), so every AWS call arrives here as a ``CONNECT
<host>:443``; the server terminates TLS with a certificate for that host and answers from moto's
in-process backends. Because host names are kept, S3 access point ARNs work unchanged: botocore
sends them to ``<name>-<account>.s3-accesspoint.<region>.amazonaws.com``, which moto recognises (a
plain ``endpoint_url`` would lose that host name).

Services moto does not emulate well enough are answered by *overrides*, keyed by the endpoint
prefix of the host (``athena``, ``bedrock-runtime``, ...).

The certificate authority is created per server (in its state directory) rather than using
moto's bundled key, so nothing is written into site-packages and nothing needs ``openssl``.
"""

from __future__ import annotations

import datetime as dt
import http.client
import ipaddress
import logging
import re
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from botocore.config import Config
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from moto.moto_proxy.proxy3 import MotoRequestHandler
from werkzeug.exceptions import HTTPException

from local import serving

LOG = logging.getLogger(__name__)

Reply = tuple[int, dict[str, str], bytes]

# <prefix>.<region>.amazonaws.com, e.g. athena.us-east-1.amazonaws.com -> "athena"; a prefix may
# have several labels (runtime.sagemaker.us-east-1.amazonaws.com -> "runtime.sagemaker").
_REGIONAL_HOST = re.compile(
    r"^(?P<prefix>[a-z0-9-]+(\.[a-z0-9-]+)*)\.(?P<region>[a-z]{2}(-[a-z]+)+-\d{1,2})\.amazonaws\.com$"
)
_IDLE_TIMEOUT_S = 120.0
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Incoming:
    """One AWS request as the emulation sees it, after TLS termination."""

    method: str
    host: str  # without port
    path: str  # path and query string, as sent
    headers: Mapping[str, str]
    body: bytes
    client: str = ""  # the address the request came from

    @property
    def url(self) -> str:
        return f"https://{self.host}{self.path}"

    @property
    def endpoint_prefix(self) -> str | None:
        match = _REGIONAL_HOST.match(self.host)
        return match.group("prefix") if match else None


Override = Callable[[Incoming], Reply]


@dataclass
class RequestRecord:
    host: str
    method: str
    path: str
    status: int
    client: str = ""


class CertificateAuthority:
    """A throw-away CA and leaf certificates for the hosts the proxy impersonates."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fsxn-s3ap local AWS emulation CA")])
        self._name = name
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.bundle_path = directory / "emulation-ca.pem"
        self.bundle_path.write_bytes(self.certificate.public_bytes(serialization.Encoding.PEM))
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    def server_context(self, host: str) -> ssl.SSLContext:
        """A TLS server context whose certificate covers ``host`` (and its siblings, by wildcard)."""
        names = [host]
        labels = host.split(".")
        if len(labels) > 2:
            # One certificate per parent domain: every bucket or access point host shares it.
            names.append("*." + ".".join(labels[1:]))
        key = names[-1]
        with self._lock:
            context = self._contexts.get(key)
            if context is None:
                context = self._issue(key, names)
                self._contexts[key] = context
        return context

    def _issue(self, key: str, names: list[str]) -> ssl.SSLContext:
        leaf_key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        alt_names: list[x509.GeneralName] = []
        for name in names:
            try:
                alt_names.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alt_names.append(x509.DNSName(name))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0][:64])]))
            .issuer_name(self._name)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        safe = re.sub(r"[^A-Za-z0-9.-]", "_", key)
        cert_path = self.directory / f"leaf-{safe}.pem"
        key_path = self.directory / f"leaf-{safe}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(
            leaf_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        key_path.chmod(0o600)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile=cert_path, keyfile=key_path)
        return context


def moto_dispatch(incoming: Incoming) -> Reply:
    """Answer from moto's in-process backends (the same ones ``mock_aws`` uses)."""
    try:
        result: Any = MotoRequestHandler(0).parse_request(
            method=incoming.method,
            host=f"https://{incoming.host}",
            path=incoming.path,
            headers=dict(incoming.headers),
            body=incoming.body,
        )
    except HTTPException as exc:
        raw = exc.get_headers()
        headers = dict(raw)
        return exc.code or 500, {k: str(v) for k, v in headers.items()}, exc.get_body().encode()
    if isinstance(result, tuple):
        status, headers, body = result
    else:
        status, headers, body = 200, {}, result
    if isinstance(body, str):
        body = body.encode("utf-8")
    elif body is None:
        body = b""
    return int(status), {str(k): v.decode() if isinstance(v, bytes) else str(v) for k, v in headers.items()}, body


@dataclass
class _ServerState:
    ca: CertificateAuthority
    overrides: Mapping[str, Override]
    records: list[RequestRecord] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, incoming: Incoming) -> Reply:
        prefix = incoming.endpoint_prefix
        override = self.overrides.get(prefix) if prefix else None
        try:
            status, headers, body = override(incoming) if override else moto_dispatch(incoming)
        except Exception:
            # The caller gets a 500 (botocore retries it as AWS's InternalError); the trace is logged.
            LOG.exception("emulation failed on %s %s", incoming.method, incoming.url)
            status, headers, body = 500, {"Content-Type": "text/plain"}, b"emulation error"
        with self.lock:
            self.records.append(RequestRecord(incoming.host, incoming.method, incoming.path, status, incoming.client))
        return status, headers, body


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: ClassVar[_ServerState]
    tunnel_host: str | None = None

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("proxy: " + format, *args)

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(_IDLE_TIMEOUT_S)

    def do_CONNECT(self) -> None:
        host = self.path.rsplit(":", 1)[0].strip("[]")
        self.send_response(200, "Connection Established")
        self.end_headers()
        context = self.state.ca.server_context(host)
        tls = context.wrap_socket(self.connection, server_side=True)
        tls.settimeout(_IDLE_TIMEOUT_S)
        self.connection = tls
        self.rfile = tls.makefile("rb", self.rbufsize)  # type: ignore[assignment]
        self.wfile = tls.makefile("wb", self.wbufsize)  # type: ignore[assignment]
        self.tunnel_host = host
        self.close_connection = False

    def _serve(self) -> None:
        if self.tunnel_host is not None:
            host, path = self.tunnel_host, self.path
        else:
            # Plain-HTTP proxying: the request line carries an absolute URI.
            parts = urlsplit(self.path)
            if not parts.hostname:
                self.send_error(400, "absolute URI expected")
                return
            host = parts.hostname
            path = parts.path + (f"?{parts.query}" if parts.query else "")
        body = self._read_body()
        headers = dict(self.headers.items())
        status, reply_headers, reply_body = self.state.answer(
            Incoming(
                method=self.command,
                host=host,
                path=path or "/",
                headers=headers,
                body=body,
                client=str(self.client_address[0]),
            )
        )
        self.send_response_only(status, http.client.responses.get(status, ""))
        for name, value in reply_headers.items():
            if name.lower() not in {"content-length", "transfer-encoding", "connection"}:
                self.send_header(name, value)
        # HEAD replies keep the entity's Content-Length but carry no body.
        length = reply_headers.get("Content-Length") or reply_headers.get("content-length")
        if self.command == "HEAD":
            self.send_header("Content-Length", length if length is not None else str(len(reply_body)))
            self.end_headers()
            return
        self.send_header("Content-Length", str(len(reply_body)))
        self.end_headers()
        self.wfile.write(reply_body)
        self.wfile.flush()

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    # Trailers (checksums) end with an empty line.
                    while self.rfile.readline().strip():
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length", "0") or "0")
        return self.rfile.read(length) if length else b""

    do_GET = _serve  # noqa: N815
    do_PUT = _serve  # noqa: N815
    do_POST = _serve  # noqa: N815
    do_HEAD = _serve  # noqa: N815
    do_DELETE = _serve  # noqa: N815
    do_PATCH = _serve  # noqa: N815


class EmulationServer:
    """The emulated AWS endpoint for containers: start it, point ``HTTPS_PROXY`` at ``proxy_url``.

    It listens on loopback only: Lambda containers share this machine's network namespace (see
    local/sam/host_network_relay.py), so nothing needs a bridge or private address."""

    def __init__(
        self,
        bind_address: str,
        state_dir: Path,
        *,
        port: int = 0,
        overrides: Mapping[str, Override] | None = None,
    ) -> None:
        try:
            loopback = ipaddress.ip_address(bind_address).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"the emulation listens on loopback only, not {bind_address!r}")
        self._state = _ServerState(ca=CertificateAuthority(state_dir / "ca"), overrides=dict(overrides or {}))
        handler = type("ProxyHandler", (_ProxyHandler,), {"state": self._state})
        self._server = ThreadingHTTPServer((bind_address, port), handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def ca_bundle(self) -> Path:
        return self._state.ca.bundle_path

    def proxy_url(self, host: str | None = None) -> str:
        """The proxy URL as seen from ``host`` (default: the bind address)."""
        bind, port = self.address
        return f"http://{host or bind}:{port}"

    @property
    def records(self) -> list[RequestRecord]:
        with self._state.lock:
            return list(self._state.records)

    def start(self) -> EmulationServer:
        self._thread = serving.start(self._server, "aws-emulation")
        return self

    def stop(self) -> None:
        serving.stop(self._server, self._thread)
        self._thread = None

    def __enter__(self) -> EmulationServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def client_kwargs(server: EmulationServer) -> dict[str, Any]:
    """boto3 ``client(...)`` arguments that route a host-side client through the emulation."""
    return {
        "verify": str(server.ca_bundle),
        "config": Config(proxies={"https": server.proxy_url(), "http": server.proxy_url()}),
    }
