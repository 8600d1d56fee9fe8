"""Answer selected AWS calls in-process, before moto sees them, at botocore's ``before-send`` hook.

moto registers one ``BotocoreStubber`` instance on botocore's ``before-send`` event for every
session; every request made inside ``mock_aws`` goes through its ``__call__``. While an
``Interceptor`` is installed that ``__call__`` first offers the request to our hooks (fault
injection, the in-process Lambda runtime, the Athena and Bedrock emulators, ...) and falls back to
moto when none answers. Hooks get the service id and operation name from botocore's event name and
return a complete HTTP reply, so the caller's botocore parses it and applies its own retry policy
exactly as against AWS: handlers keep their ordinary boto3 clients.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qs, unquote, urlsplit

import botocore.session
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse


@dataclass(frozen=True)
class Call:
    """One outgoing AWS request, as a hook sees it."""

    service: str  # botocore service id, hyphenized: "s3", "athena", "bedrock-runtime", "lambda"
    operation: str  # "GetObject", "StartQueryExecution", "Converse", "Invoke"
    request: AWSPreparedRequest

    @property
    def url(self) -> str:
        return str(self.request.url)

    @property
    def path(self) -> str:
        return unquote(urlsplit(self.url).path)

    @property
    def query(self) -> dict[str, list[str]]:
        return parse_qs(urlsplit(self.url).query)

    @property
    def body(self) -> bytes:
        body = self.request.body
        if body is None:
            return b""
        if isinstance(body, str):
            return body.encode()
        if isinstance(body, bytes | bytearray):
            return bytes(body)
        data: bytes = body.read()
        body.seek(0)
        return data

    def json(self) -> dict[str, Any]:
        raw = self.body
        return dict(json.loads(raw)) if raw else {}

    def header(self, name: str) -> str | None:
        value = self.request.headers.get(name)
        if isinstance(value, bytes):
            return value.decode()
        return None if value is None else str(value)


Hook = Callable[[Call], AWSResponse | None]


def reply(
    call: Call, status: int, body: bytes | str | dict[str, Any] | list[Any], headers: dict[str, str] | None = None
) -> AWSResponse:
    """A raw HTTP reply; dict/list bodies are sent as JSON."""
    all_headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    if isinstance(body, dict | list):
        body = json.dumps(body)
        all_headers["Content-Type"] = "application/x-amz-json-1.1"
    all_headers.update(headers or {})
    data = body.encode() if isinstance(body, str) else body
    return AWSResponse(call.url, status, all_headers, MockRawResponse(data))


_protocols: dict[str, str] = {}
_protocol_lock = threading.Lock()


def protocol_of(service_id: str) -> str:
    """botocore wire protocol of a service ("rest-xml", "json", "rest-json", "query", ...)."""
    with _protocol_lock:
        if service_id not in _protocols:
            session = botocore.session.get_session()
            names = [service_id] + [n for n in session.get_available_services() if n != service_id]
            for name in names:
                try:
                    model = session.get_service_model(name)
                except Exception:  # noqa: BLE001, S112 - not a service of that name; try the next
                    continue
                if model.service_id.hyphenize() == service_id:
                    _protocols[service_id] = str(model.protocol)
                    break
            else:
                _protocols[service_id] = "json"
        return _protocols[service_id]


def error_reply(call: Call, code: str, message: str, status: int) -> AWSResponse:
    """An error reply in the service's own wire format, so botocore raises the usual ClientError."""
    request_id = str(uuid.uuid4())
    protocol = protocol_of(call.service)
    if protocol == "rest-xml":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{_xml(message)}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        )
        return reply(call, status, body, {"Content-Type": "application/xml", "x-amz-request-id": request_id})
    if protocol in {"query", "ec2"}:
        kind = "Receiver" if status >= 500 else "Sender"
        body = (
            f"<ErrorResponse><Error><Type>{kind}</Type><Code>{code}</Code>"
            f"<Message>{_xml(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
        )
        return reply(call, status, body, {"Content-Type": "text/xml"})
    return reply(
        call,
        status,
        {"__type": code, "message": message},
        {"x-amzn-ErrorType": code, "x-amzn-RequestId": request_id},
    )


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class Interceptor:
    """Routes requests to hooks while installed; at most one is installed at a time."""

    _active: Final[list[Interceptor]] = []
    _install_lock = threading.Lock()

    def __init__(self) -> None:
        self._hooks: list[tuple[str | None, Hook]] = []
        self._original: Any = None

    def add(self, hook: Hook, *, service: str | None = None) -> None:
        """Offer calls (of ``service`` only, when given) to ``hook``; earlier hooks go first."""
        self._hooks.append((service, hook))

    def dispatch(self, event_name: str, request: AWSPreparedRequest) -> AWSResponse | None:
        parts = event_name.split(".")
        if len(parts) < 3:
            return None
        call = Call(service=parts[1], operation=parts[2], request=request)
        for service, hook in self._hooks:
            if service is None or service == call.service:
                response = hook(call)
                if response is not None:
                    return response
        return None

    def __enter__(self) -> Interceptor:
        with self._install_lock:
            if self._active:
                raise RuntimeError("an Interceptor is already installed")
            self._original = BotocoreStubber.__call__
            original = self._original
            interceptor = self

            def __call__(stubber: BotocoreStubber, event_name: str, request: AWSPreparedRequest, **kwargs: Any) -> Any:  # noqa: N807
                if stubber.enabled:
                    response = interceptor.dispatch(event_name, request)
                    if response is not None:
                        return response
                return original(stubber, event_name, request, **kwargs)

            setattr(BotocoreStubber, "__call__", __call__)  # noqa: B010 - patched for the install only
            self._active.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with self._install_lock:
            setattr(BotocoreStubber, "__call__", self._original)  # noqa: B010
            self._active.remove(self)
