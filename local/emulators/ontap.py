"""A fake ONTAP REST API over HTTPS on loopback, for the tests and the local runner only.

``FakeOntap(dataset, username=..., password=...)`` is a context manager that, on entry, creates
its own certificate authority and a server certificate for ``127.0.0.1`` signed by it (the sam
engine's throw-away ``CertificateAuthority``), writes the CA's PEM to ``ca_file`` and serves on
``127.0.0.1:<port>`` (``host``; a free port unless ``port`` is given) in a thread, so a client's
certificate verification is really exercised: the right CA verifies, any other CA (``other_ca_file``) fails.

Endpoints, in the response shapes NetApp documents (see shared/ontap.py for the pages):

- ``GET /api/svm/svms`` (filter ``name``), ``GET /api/storage/volumes`` (filters ``svm.uuid``,
  ``name``; ``nas.path`` only when named in ``fields``), ``GET /api/protocols/cifs/shares``
  (filter ``svm.uuid``): ``{"records", "num_records", "_links": {"self", "next"}}``, ``max_records``
  pages of records and a ``_links.next.href`` to the following page (``start.index`` token);
- ``GET /api/protocols/file-security/permissions/{svm.uuid}/{path}`` (the path one URL-encoded
  segment): the security descriptor of the file, ``owner``, ``group``, ``control_flags``,
  ``effective_style``, ``acls[]`` — narrowed to ``fields`` when given.

Every request needs HTTP Basic authentication with the configured user (401 otherwise). Faults
(``faults`` list, each matching a path substring, for a number of requests): ``status`` replies
(429 with ``Retry-After``, 500, 503, 403, ...) and ``delay`` (the reply is held back that many
seconds, beyond a client's read timeout). ``delete(path)`` makes a file answer 404 as ONTAP does
for a path that no longer exists (the file was deleted after the listing). ``requests`` logs
every request (method, path, status).
"""

from __future__ import annotations

import base64
import json
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from local import serving
from local.sam.emulation import CertificateAuthority

PERMISSIONS_PREFIX = "/api/protocols/file-security/permissions/"
_COLLECTIONS = {
    "/api/svm/svms": "svms",
    "/api/storage/volumes": "volumes",
    "/api/protocols/cifs/shares": "shares",
}
# Fields a collection returns when no ``fields`` is given (nas.* are "expensive" in ONTAP).
_DEFAULT_FIELDS = {"svms": ("uuid", "name"), "volumes": ("uuid", "name"), "shares": ("svm", "name")}


@dataclass
class OntapDataset:
    """What the fake cluster holds: SVMs, volumes, CIFS shares and per-file security descriptors."""

    svms: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    shares: list[dict[str, Any]] = field(default_factory=list)
    # (svm uuid, SVM namespace path) -> security descriptor (owner, group, control_flags, acls, ...)
    files: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


@dataclass
class OntapFault:
    """Answer ``status`` (or hold the reply ``delay`` seconds) for the next ``times`` matching requests."""

    match: str = ""
    status: int | None = None
    delay: float = 0.0
    times: int = 1
    retry_after: float | None = None
    used: int = 0

    def applies(self, path: str) -> bool:
        return self.used < self.times and self.match in unquote(path)


def _get_dotted(record: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    current: Any = record
    for part in dotted.split("."):
        if not isinstance(current, dict) or part not in current:
            return False, None
        current = current[part]
    return True, current


def _set_dotted(target: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    for part in parts[:-1]:
        target = target.setdefault(part, {})
    target[parts[-1]] = value


def project(record: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    """The record narrowed to ``fields`` (dotted names; ``*`` = everything)."""
    if "*" in fields:
        copied: dict[str, Any] = json.loads(json.dumps(record))
        return copied
    out: dict[str, Any] = {}
    for name in fields:
        found, value = _get_dotted(record, name)
        if found:
            _set_dotted(out, name, json.loads(json.dumps(value)))
    return out


class FakeOntap:
    """The HTTPS server; see the module docstring."""

    def __init__(
        self,
        dataset: OntapDataset,
        *,
        username: str = "fsxn-audit-ro",
        password: str = "local-only-password",  # noqa: S107 (a loopback fake)
        faults: list[OntapFault] | None = None,
        port: int = 0,
    ) -> None:
        self.dataset = dataset
        self.username = username
        self.password = password
        self.faults = list(faults or [])
        self.deleted: set[tuple[str, str]] = set()
        self.requests: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.ca_file = ""
        self.other_ca_file = ""
        self.port = port

    # --- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> FakeOntap:
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-ontap-")
        tmp = Path(self._tmp.name)
        authority = CertificateAuthority(tmp / "ca")
        self.ca_file = str(authority.bundle_path)
        self.other_ca_file = str(CertificateAuthority(tmp / "other-ca").bundle_path)
        context = authority.server_context("127.0.0.1")
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler_class(self))
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self.port = server.server_address[1]
        self._thread = serving.start(server, "fake-ontap")
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._server is not None:
            serving.stop(self._server, self._thread, timeout=5)
        if self._tmp is not None:
            self._tmp.cleanup()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def delete(self, svm_uuid: str, path: str) -> None:
        """The file at ``path`` is gone: its permission read answers 404 from now on."""
        with self._lock:
            self.deleted.add((svm_uuid, path))

    def count(self, match: str = "", status: int | None = None) -> int:
        with self._lock:
            return sum(1 for _, p, s in self.requests if match in p and (status is None or s == status))

    # --- request handling ------------------------------------------------------------------------
    def _fault_for(self, path: str) -> OntapFault | None:
        with self._lock:
            for fault in self.faults:
                if fault.applies(path):
                    fault.used += 1
                    return fault
        return None

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == self.username and password == self.password

    def answer(self, raw_path: str, authorization: str | None) -> tuple[int, dict[str, Any], dict[str, str]]:
        """(status, JSON body, extra headers) for one GET."""
        parts = urlsplit(raw_path)
        fault = self._fault_for(parts.path)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if not self._authorized(authorization):
            return 401, _error("User is not authorized.", "6"), {"WWW-Authenticate": 'Basic realm="ONTAP"'}
        if fault is not None and fault.status is not None:
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            return fault.status, _error(f"injected HTTP {fault.status}", str(fault.status)), headers
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        fields = [f for f in query.get("fields", "").split(",") if f]
        if parts.path in _COLLECTIONS:
            return self._collection(parts.path, query, fields)
        if parts.path.startswith(PERMISSIONS_PREFIX):
            return self._permissions(parts.path[len(PERMISSIONS_PREFIX) :], fields)
        return 404, _error(f"API not found: {parts.path}", "3"), {}

    def _collection(
        self, path: str, query: dict[str, str], fields: list[str]
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        kind = _COLLECTIONS[path]
        records: list[dict[str, Any]] = getattr(self.dataset, kind)
        control = {"fields", "max_records", "start.index", "return_records"}
        filters = {k: v for k, v in query.items() if k not in control}
        selected = [r for r in records if all(str(_get_dotted(r, k)[1]) == v for k, v in filters.items())]
        try:
            size = int(query.get("max_records", "20"))
            start = int(query.get("start.index", "0"))
        except ValueError:
            return 400, _error("Invalid value for max_records or start.index", "262179"), {}
        if size < 1 or start < 0:
            return 400, _error("max_records must be positive", "262179"), {}
        page = selected[start : start + size]
        wanted = fields or list(_DEFAULT_FIELDS[kind])
        out = [project(r, wanted) for r in page]
        body: dict[str, Any] = {
            "records": out,
            "num_records": len(out),
            "_links": {"self": {"href": f"{path}?{urlencode(query)}" if query else path}},
        }
        if start + size < len(selected):
            following = dict(query)
            following["start.index"] = str(start + size)
            following["max_records"] = str(size)
            body["_links"]["next"] = {"href": f"{path}?{urlencode(following)}"}
        return 200, body, {}

    def _permissions(self, rest: str, fields: list[str]) -> tuple[int, dict[str, Any], dict[str, str]]:
        svm_part, sep, path_part = rest.partition("/")
        if not sep or not path_part or "/" in path_part:
            # The path must be one encoded segment: a raw "/" would be a different route in ONTAP.
            return 404, _error("API not found", "3"), {}
        svm_uuid, path = unquote(svm_part), unquote(path_part)
        if not any(s["uuid"] == svm_uuid for s in self.dataset.svms):
            return 404, _error(f"SVM {svm_uuid} not found", "2621462", "svm.uuid"), {}
        with self._lock:
            gone = (svm_uuid, path) in self.deleted
        descriptor = self.dataset.files.get((svm_uuid, path))
        if gone or descriptor is None:
            message = f'Failed to get security descriptor of "{path}". Reason: No such file or directory.'
            return 404, _error(message, "655865", "path"), {}
        svm_name = next(s["name"] for s in self.dataset.svms if s["uuid"] == svm_uuid)
        full = {"svm": {"uuid": svm_uuid, "name": svm_name}, "path": path, **descriptor}
        body = project(full, ["svm", "path", *fields]) if fields else full
        return 200, body, {}


def _error(message: str, code: str, target: str | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message, "code": code}
    if target:
        error["target"] = target
    return {"error": error}


def _handler_class(fake: FakeOntap) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "FakeONTAP/9.15"
        # The reply goes out in two writes (headers, then body). With Nagle's algorithm on, the
        # second waits for the client's delayed ACK of the first: 40 ms per request on loopback,
        # 80 s of a 2,000-file run doing nothing. TCP_NODELAY sends both at once; the bytes are
        # the same.
        disable_nagle_algorithm = True

        def do_GET(self) -> None:
            # Recorded on arrival, so a request still held back by a delay fault counts too (its
            # client may already have timed out and asked again); the status follows the answer.
            path = urlsplit(self.path).path
            with fake._lock:
                index = len(fake.requests)
                fake.requests.append(("GET", path, 0))
            status, body, headers = fake.answer(self.path, self.headers.get("Authorization"))
            payload = json.dumps(body).encode()
            with fake._lock:
                fake.requests[index] = ("GET", path, status)
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/hal+json")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass  # the client gave up (read timeout) before the reply

        def log_message(self, format: str, *args: Any) -> None:
            return  # requests are recorded in fake.requests, not printed

    return Handler
