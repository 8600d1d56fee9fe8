"""A small, read-only client for the ONTAP REST API (the FSx for ONTAP management endpoint).

What it reads, as NetApp documents it (ONTAP 9.9 and later; FSx for ONTAP runs 9.13+):

- ``GET /api/svm/svms`` — SVMs, fields ``uuid``, ``name``
  (https://docs.netapp.com/us-en/ontap-automation/workflows/wf_svm_list_svms.html)
- ``GET /api/storage/volumes`` — volumes, fields ``uuid``, ``name``, ``svm.uuid``, ``svm.name``,
  ``nas.path`` (the junction path in the SVM namespace), ``nas.security_style``; both are
  "expensive properties", returned only when named in ``fields``
  (https://docs.netapp.com/us-en/ontap-restapi-9101/get-storage-volumes.html)
- ``GET /api/protocols/cifs/shares`` — CIFS shares, fields ``svm.uuid``, ``svm.name``, ``name``,
  ``path``, ``volume.name``, filters ``svm.uuid``/``volume.name``, ``max_records``
  (https://docs.netapp.com/us-en/ontap-restapi-9141//ontap/get-protocols-cifs-shares.html)
- ``GET /api/protocols/file-security/permissions/{svm.uuid}/{path}`` — the NTFS security
  descriptor of one file or folder: ``owner``, ``group``, ``control_flags`` (hexadecimal, e.g.
  ``"0x8014"``), ``effective_style`` (unix/ntfs/mixed/unified) and ``acls[]`` with ``user`` (a
  name, or the SID when it cannot be translated; ``lookup_names`` since 9.17), ``access``
  (``access_allow``/``access_deny``/audit kinds), ``rights`` (``full_control``, ``modify``,
  ``read_and_execute``, ``read``, ``write``, ``no_access``), ``advanced_rights`` (``full_control``,
  ``write_data``, ``delete``, ...), ``inherited``, ``apply_to`` (``files``, ``sub_folders``,
  ``this_folder``). Introduced in 9.9.
  (https://docs.netapp.com/us-en/ontap-restapi/get-protocols-file-security-permissions-.html,
  the JSON example in https://docs.netapp.com/us-en/ontap-automation/workflows/wf_nas_fs_get_audit_info.html,
  the rights values in https://docs.netapp.com/us-en/ontap-cli-9151/vserver-security-file-directory-ntfs-dacl-modify.html)

Collections answer ``{"records": [...], "num_records": n, "_links": {"next": {"href": ...}}}``;
``max_records`` sets the page size and the next page is the ``_links.next.href`` of the reply
(https://docs.netapp.com/us-en/ontap-restapi-9111/getting_started_with_the_ontap_rest_api.html,
"application/hal+json", pagination, ``fields``). ``fields=a,b.c`` selects fields. Errors answer
``{"error": {"message", "code", "target"}}``.

The path parameter is URL-encoded as one segment (``/`` becomes ``%2F``), so names with spaces,
``#``, ``?``, ``%`` or non-ASCII letters reach ONTAP intact; NetApp's own examples pass it so
(``.../file-security/effective-permissions/{svm.uuid}/administrator/windows/%2F``), and the path
is "relative to the SVM root volume", so it starts with the volume's junction path
(https://docs.netapp.com/us-en/ontap-restapi-9111/protocols_file-security_effective-permissions_svm.uuid_path_endpoint_overview.html,
the ``path`` field of https://docs.netapp.com/us-en/ontap-restapi-9111//ontap/get-protocols-file-security-effective-permissions-.html).
``lookup_names`` (9.17+) is not sent: earlier releases refuse query parameters they do not know.

Behaviour:

- HTTPS, certificate verification on, against ``ca_bundle`` (a PEM file; ``None`` = certifi's
  public roots). ``verify=False`` is an explicit opt-out (parameter ``OntapVerifyTls=false``)
  that logs a warning at construction; nothing turns verification off silently.
- Credentials (``{"username", "password"}`` JSON) from Secrets Manager, fetched once per
  execution environment (``SecretCredentials``), fetched again after a 401 (one retry of that
  request with the new value) and dropped after a SnapStart restore (``shared.runtime``). A second
  401 raises ``AuthenticationError``.
- Connect and read timeouts, each capped by the time left before the deadline.
- Retries with capped exponential backoff and full jitter (``shared.retry.retry_call``) on 429,
  5xx and connection errors or timeouts only, never past the deadline; ``Retry-After`` on a 429
  is honoured when it fits. 403 → ``AccessDeniedError``, 404 → ``NotFoundError``, other 4xx →
  ``InvalidInputError``; a certificate that does not verify → ``CertificateVerificationError``.
"""

from __future__ import annotations

import base64
import json
import logging
import random
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote, urlencode, urlsplit

import certifi
import urllib3
from urllib3.exceptions import HTTPError, MaxRetryError, ProtocolError, SSLError, TimeoutError

from shared import aws, config, runtime
from shared.aws import mapped_errors
from shared.errors import (
    AccessDeniedError,
    AuthenticationError,
    CertificateVerificationError,
    ConfigurationError,
    DeadlineExceededError,
    InvalidInputError,
    NotFoundError,
    PermanentError,
    PipelineError,
    ServiceUnavailableError,
    ThrottlingError,
)
from shared.retry import Deadline, retry_call

logger = logging.getLogger(__name__)

SVMS = "/api/svm/svms"
VOLUMES = "/api/storage/volumes"
CIFS_SHARES = "/api/protocols/cifs/shares"
FILE_PERMISSIONS = "/api/protocols/file-security/permissions"
PERMISSION_FIELDS = ("owner", "group", "control_flags", "effective_style", "acls")
# A request is not started with less than this left: it could not finish anyway.
MIN_REQUEST_SECONDS = 0.5
_MAX_PAGES = 100_000  # a _links.next chain longer than this is a server bug, not data


class SecretsClient(Protocol):
    def get_secret_value(self, *, SecretId: str) -> Mapping[str, Any]: ...  # noqa: N803 (boto3's name)


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def basic_auth(self) -> str:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return f"Basic {token}"


class SecretCredentials:
    """ONTAP credentials from one Secrets Manager secret, cached for the execution environment.

    ``get()`` fetches on first use; ``refresh()`` fetches again (after a 401); ``clear()`` drops the
    value and is registered with ``shared.runtime`` so a SnapStart restore never reuses the
    snapshot's copy.
    """

    def __init__(self, secrets: SecretsClient, secret_id: str) -> None:
        self._secrets = secrets
        self.secret_id = secret_id
        self._lock = threading.Lock()
        self._value: Credentials | None = None
        self.fetches = 0
        runtime.register_cache(self)

    def get(self) -> Credentials:
        with self._lock:
            if self._value is None:
                self._value = self._fetch()
            return self._value

    def refresh(self, stale: Credentials | None = None) -> Credentials:
        """Fetch again unless another thread already replaced ``stale``."""
        with self._lock:
            if self._value is None or self._value is stale or stale is None:
                self._value = self._fetch()
            return self._value

    def clear(self) -> None:
        with self._lock:
            self._value = None

    @property
    def cached(self) -> bool:
        return self._value is not None

    def _fetch(self) -> Credentials:
        with mapped_errors("GetSecretValue"):
            reply = self._secrets.get_secret_value(SecretId=self.secret_id)
        self.fetches += 1
        try:
            data = json.loads(reply["SecretString"])
            username, password = data["username"], data["password"]
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigurationError(
                f"secret {self.secret_id} must be a JSON object with string fields username and password",
                secret=self.secret_id,
            ) from e
        if not (isinstance(username, str) and username and isinstance(password, str) and password):
            raise ConfigurationError(
                f"secret {self.secret_id}: username and password must be non-empty strings", secret=self.secret_id
            )
        return Credentials(username, password)


def encode_path(path: str) -> str:
    """One URL path segment for an ONTAP path parameter: every reserved character escaped."""
    if not isinstance(path, str) or not path:
        raise InvalidInputError("ONTAP path must be a non-empty string", field="path")
    if "\x00" in path:
        raise InvalidInputError("ONTAP path contains a NUL character", field="path")
    return quote(path, safe="")


def file_path(junction_path: str, key: str) -> str:
    """The SVM namespace path of an access point object key: the volume's junction path + key."""
    base = "/" + junction_path.strip("/") if junction_path.strip("/") else ""
    return f"{base}/{key.lstrip('/')}"


def _error_message(body: bytes) -> tuple[str, str]:
    try:
        error = json.loads(body.decode("utf-8")).get("error") or {}
        return str(error.get("message", ""))[:500], str(error.get("code", ""))
    except (ValueError, AttributeError, UnicodeDecodeError):
        return body[:200].decode("utf-8", "backslashreplace"), ""


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds <= 3600 else None


class OntapClient:
    """Read-only ONTAP REST calls with TLS verification, credential refresh, retries and paging."""

    def __init__(
        self,
        host: str,
        credentials: SecretCredentials,
        *,
        ca_bundle: str | None = None,
        verify: bool = True,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        max_attempts: int = 5,
        base_delay: float = 0.5,
        max_delay: float = 8.0,
        page_size: int = 500,
        sleep: Callable[[float], object] | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if not host or "/" in host or host.startswith(("http:", "https:")):
            raise ConfigurationError(f"ONTAP host must be a name or address[:port], got {host!r}", field="host")
        for label, value in (("connect_timeout", connect_timeout), ("read_timeout", read_timeout)):
            if not value > 0:
                raise ConfigurationError(f"{label} must be positive, got {value!r}", field=label)
        if not 1 <= page_size <= 10_000:
            raise ConfigurationError(f"page_size must be 1-10000, got {page_size}", field="page_size")
        self.host = host
        self.credentials = credentials
        self.verify = verify
        self.ca_bundle = ca_bundle
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_attempts = max_attempts
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.page_size = page_size
        self._sleep = sleep
        self._rng = rng
        if verify:
            try:
                context = ssl.create_default_context(cafile=ca_bundle or certifi.where())
            except (OSError, ssl.SSLError) as e:
                raise ConfigurationError(f"ONTAP CA bundle {ca_bundle!r} cannot be read: {e}", field="ca_bundle") from e
        else:
            logger.warning(
                "TLS certificate verification of the ONTAP endpoint %s is DISABLED (OntapVerifyTls=false): "
                "the connection is encrypted but the server is not authenticated",
                host,
            )
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        self._ssl_context = context
        self._pool = self._new_pool()
        runtime.register_client(self)

    def _new_pool(self) -> urllib3.PoolManager:
        # urllib3's own retries are off: retry_call decides, against the deadline.
        return urllib3.PoolManager(num_pools=2, maxsize=4, ssl_context=self._ssl_context, retries=False)

    def close(self) -> None:
        """Drop every pooled connection (before a snapshot, after a restore); reusable afterwards."""
        self._pool.clear()

    # --- one request ---------------------------------------------------------------------------
    def _send(self, path_and_query: str, credentials: Credentials, deadline: Deadline) -> urllib3.BaseHTTPResponse:
        remaining = deadline.remaining_seconds()
        if remaining < MIN_REQUEST_SECONDS:
            raise DeadlineExceededError(
                f"GET {path_and_query.split('?', maxsplit=1)[0]}: {remaining:.2f} s left, too little for a request",
                what="ontap request",
            )
        timeout = urllib3.Timeout(connect=min(self.connect_timeout, remaining), read=min(self.read_timeout, remaining))
        url = f"https://{self.host}{path_and_query}"
        try:
            return self._pool.request(
                "GET",
                url,
                headers={"Authorization": credentials.basic_auth(), "Accept": "application/hal+json"},
                timeout=timeout,
                redirect=False,
                preload_content=True,
            )
        except MaxRetryError as e:
            reason = e.reason
            if isinstance(reason, SSLError) and _is_verification_failure(reason):
                raise CertificateVerificationError(
                    f"TLS certificate of ONTAP endpoint {self.host} did not verify against "
                    f"{self.ca_bundle or 'the default trust store'}: {reason}",
                    host=self.host,
                ) from e
            raise ServiceUnavailableError(f"GET {url}: {type(reason).__name__}: {reason}", host=self.host) from e
        except SSLError as e:
            if _is_verification_failure(e):
                raise CertificateVerificationError(
                    f"TLS certificate of ONTAP endpoint {self.host} did not verify: {e}", host=self.host
                ) from e
            raise ServiceUnavailableError(f"GET {url}: SSLError: {e}", host=self.host) from e
        except (TimeoutError, ProtocolError, HTTPError, OSError) as e:
            raise ServiceUnavailableError(f"GET {url}: {type(e).__name__}: {e}", host=self.host) from e

    def _attempt(self, path_and_query: str, deadline: Deadline) -> dict[str, Any]:
        credentials = self.credentials.get()
        reply = self._send(path_and_query, credentials, deadline)
        if reply.status == 401:
            # The password may have been rotated since it was cached: fetch it once more.
            logger.info("ONTAP answered 401; fetching the credentials again")
            credentials = self.credentials.refresh(credentials)
            reply = self._send(path_and_query, credentials, deadline)
        return self._parse(path_and_query, reply)

    def _parse(self, path_and_query: str, reply: urllib3.BaseHTTPResponse) -> dict[str, Any]:
        where = f"GET {path_and_query.split('?', maxsplit=1)[0]}"
        status = reply.status
        body = reply.data
        if 200 <= status < 300:
            try:
                data = json.loads(body.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as e:
                raise ServiceUnavailableError(f"{where}: reply is not JSON", httpStatus=status) from e
            if not isinstance(data, dict):
                raise ServiceUnavailableError(f"{where}: reply is not a JSON object", httpStatus=status)
            return data
        message, code = _error_message(body)
        details: dict[str, Any] = {"httpStatus": status, "ontapCode": code, "operation": where}
        text = f"{where}: HTTP {status}: {message}".rstrip(": ")
        error: PipelineError
        if status == 401:
            error = AuthenticationError(
                f"{text} (credentials from {self.credentials.secret_id} refused, also after fetching them again)",
                **details,
            )
        elif status == 403:
            error = AccessDeniedError(text, **details)
        elif status == 404:
            error = NotFoundError(text, **details)
        elif status == 429:
            error = ThrottlingError(text, retryAfter=_retry_after(reply.headers.get("Retry-After")), **details)
        elif status >= 500:
            error = ServiceUnavailableError(text, **details)
        elif 400 <= status < 500:
            error = InvalidInputError(text, **details)
        else:
            error = PermanentError(text, **details)
        raise error

    def request(self, path: str, deadline: Deadline, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """GET ``path`` (already encoded) with ``params``; retried on transient errors within the deadline."""
        query = urlencode(dict(params or {}), safe=",.*")
        path_and_query = f"{path}?{query}" if query else path
        return self._get(path_and_query, deadline)

    def _get(self, path_and_query: str, deadline: Deadline) -> dict[str, Any]:
        state = {"retry_after": 0.0}

        def attempt() -> dict[str, Any]:
            try:
                return self._attempt(path_and_query, deadline)
            except ThrottlingError as e:
                state["retry_after"] = float(e.details.get("retryAfter") or 0.0)
                raise

        def sleep(delay: float) -> object:
            # A server's Retry-After is a floor for the jittered delay, when the deadline allows it.
            wait = max(delay, min(state["retry_after"], self.max_delay))
            if wait >= deadline.remaining_seconds():
                wait = delay
            state["retry_after"] = 0.0
            # time.sleep looked up now, not at import: the local runner's emulated clock replaces it.
            return (self._sleep or time.sleep)(wait)

        return retry_call(
            attempt,
            deadline=deadline,
            max_attempts=self.max_attempts,
            base_delay=self.base_delay,
            max_delay=self.max_delay,
            sleep=sleep,
            rng=self._rng,
        )

    # --- collections ---------------------------------------------------------------------------
    def records(
        self, path: str, deadline: Deadline, *, fields: Sequence[str] = (), query: Mapping[str, str] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Every record of a collection, page by page through ``_links.next`` (memory: one page)."""
        params = dict(query or {})
        if fields:
            params["fields"] = ",".join(fields)
        params["max_records"] = str(self.page_size)
        page = self.request(path, deadline, params)
        seen: set[str] = set()
        for _ in range(_MAX_PAGES):
            records = page.get("records")
            if not isinstance(records, list):
                raise ServiceUnavailableError(f"GET {path}: reply has no records list")
            for record in records:
                if isinstance(record, dict):
                    yield record
            href = ((page.get("_links") or {}).get("next") or {}).get("href")
            if not href:
                return
            next_path = _same_host_path(str(href), path)
            if next_path in seen:
                raise ServiceUnavailableError(f"GET {path}: _links.next repeats {next_path}")
            seen.add(next_path)
            page = self._get(next_path, deadline)
        raise ServiceUnavailableError(f"GET {path}: more than {_MAX_PAGES} pages")

    # --- the documented endpoints --------------------------------------------------------------
    def svm(self, name: str, deadline: Deadline) -> dict[str, Any]:
        found = list(self.records(SVMS, deadline, fields=("uuid", "name"), query={"name": name}))
        if len(found) != 1:
            raise NotFoundError(f"ONTAP SVM {name!r}: {len(found)} SVMs match", svm=name)
        return found[0]

    def volume(self, svm_uuid: str, name: str, deadline: Deadline) -> dict[str, Any]:
        found = list(
            self.records(
                VOLUMES,
                deadline,
                fields=("uuid", "name", "svm.uuid", "svm.name", "nas.path", "nas.security_style"),
                query={"svm.uuid": svm_uuid, "name": name},
            )
        )
        if len(found) != 1:
            raise NotFoundError(f"ONTAP volume {name!r} in SVM {svm_uuid}: {len(found)} volumes match", volume=name)
        return found[0]

    def cifs_shares(self, svm_uuid: str, deadline: Deadline) -> Iterator[dict[str, Any]]:
        return self.records(
            CIFS_SHARES,
            deadline,
            fields=("svm.uuid", "svm.name", "name", "path", "volume.name"),
            query={"svm.uuid": svm_uuid},
        )

    def file_permissions(self, svm_uuid: str, path: str, deadline: Deadline) -> dict[str, Any]:
        """The security descriptor of ``path`` (an SVM namespace path such as /vol1/dir/a.docx)."""
        return self.request(
            f"{FILE_PERMISSIONS}/{encode_path(svm_uuid)}/{encode_path(path)}",
            deadline,
            {"fields": ",".join(PERMISSION_FIELDS)},
        )


HOST_PATTERN = r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(:[0-9]{1,5})?"
SECRET_ARN_PATTERN = r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]{1,512}"  # noqa: S105
CA_BUNDLE_PATTERN = r"(/[A-Za-z0-9._/-]{1,254})?"
SVM_NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_.-]{0,46}"
VOLUME_NAME_PATTERN = r"[A-Za-z_][A-Za-z0-9_]{0,202}"


def _text(data: Mapping[str, Any], name: str, pattern: str, *, field: str, default: str | None = None) -> str:
    value = data.get(name, default)
    if not isinstance(value, str) or re.fullmatch(pattern, value) is None:
        raise InvalidInputError(f"{field}.{name} must match {pattern}, got {value!r}", field=f"{field}.{name}")
    return value


@dataclass(frozen=True)
class OntapSettings:
    """Where and how to reach ONTAP, as the state machine passes it (template parameters).

    ``{"endpoint", "secret_arn", "ca_bundle", "verify_tls", "read_timeout_seconds", "svm_name",
    "volume_name"}``; ``parse`` validates it (``InvalidInputError`` naming the field).
    """

    endpoint: str
    secret_arn: str
    ca_bundle: str | None = None
    verify_tls: bool = True
    read_timeout_seconds: float = 30.0
    svm_name: str = ""
    volume_name: str = ""

    @classmethod
    def parse(cls, data: Any, *, field: str = "ontap") -> OntapSettings:
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"{field} must be an object with the ONTAP settings", field=field)
        verify = data.get("verify_tls", True)
        if not isinstance(verify, bool):
            raise InvalidInputError(f"{field}.verify_tls must be true or false", field=f"{field}.verify_tls")
        timeout = data.get("read_timeout_seconds", 30)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 1 <= timeout <= 120:
            raise InvalidInputError(
                f"{field}.read_timeout_seconds must be a number from 1 to 120", field=f"{field}.read_timeout_seconds"
            )
        return cls(
            endpoint=_text(data, "endpoint", HOST_PATTERN, field=field),
            secret_arn=_text(data, "secret_arn", SECRET_ARN_PATTERN, field=field),
            ca_bundle=_text(data, "ca_bundle", CA_BUNDLE_PATTERN, field=field, default="") or None,
            verify_tls=verify,
            read_timeout_seconds=float(timeout),
            svm_name=_text(data, "svm_name", f"({SVM_NAME_PATTERN})?", field=field, default=""),
            volume_name=_text(data, "volume_name", f"({VOLUME_NAME_PATTERN})?", field=field, default=""),
        )


class OntapClients:
    """One ``OntapClient`` per connection setting, kept for the execution environment.

    A handler keeps one of these at module scope (with its Secrets Manager client) and asks it for
    the client of the settings in each event: the TLS context, the connection pool and the cached
    credentials are then reused by every invocation with the same settings. Each client registers
    itself with ``shared.runtime``, so a SnapStart restore drops its connections and credentials.
    """

    def __init__(self, secrets: SecretsClient, **client_options: Any) -> None:
        self._secrets = secrets
        self._options = client_options
        self._clients: dict[tuple[str, str, str | None, bool, float], OntapClient] = {}
        self._lock = threading.Lock()

    def get(self, settings: OntapSettings) -> OntapClient:
        key = (
            settings.endpoint,
            settings.secret_arn,
            settings.ca_bundle,
            settings.verify_tls,
            settings.read_timeout_seconds,
        )
        with self._lock:
            client = self._clients.get(key)
            if client is None:
                client = OntapClient(
                    settings.endpoint,
                    SecretCredentials(self._secrets, settings.secret_arn),
                    ca_bundle=settings.ca_bundle,
                    verify=settings.verify_tls,
                    read_timeout=settings.read_timeout_seconds,
                    **self._options,
                )
                self._clients[key] = client
            return client


def clients_from_environment(secrets: SecretsClient | None = None) -> OntapClients:
    """The handlers' module-scope ``OntapClients``; optional tuning from the environment:
    ``ONTAP_CONNECT_TIMEOUT_SECONDS`` (5), ``ONTAP_MAX_ATTEMPTS`` (5), ``ONTAP_PAGE_SIZE`` (500)."""
    if secrets is None:
        secrets = runtime.register_client(aws.client("secretsmanager"))
    return OntapClients(
        secrets,
        connect_timeout=config.env_int("ONTAP_CONNECT_TIMEOUT_SECONDS", 5, minimum=1, maximum=60),
        max_attempts=config.env_int("ONTAP_MAX_ATTEMPTS", 5, minimum=1, maximum=10),
        page_size=config.env_int("ONTAP_PAGE_SIZE", 500, minimum=1, maximum=10_000),
    )


def _same_host_path(href: str, path: str) -> str:
    """A ``_links.next`` href as a path on the same host; anything pointing elsewhere is refused."""
    parts = urlsplit(href)
    if parts.scheme or parts.netloc or not parts.path.startswith("/api/"):
        raise ServiceUnavailableError(f"GET {path}: _links.next {href!r} is not a path on this ONTAP endpoint")
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def _is_verification_failure(error: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return True
        for arg in getattr(current, "args", ()):
            if isinstance(arg, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(arg):
                return True
        current = current.__cause__ or current.__context__
    return False
