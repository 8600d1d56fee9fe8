"""SnapStart runtime hooks and init-time priming.

Lambda SnapStart runs a function's init once, snapshots the process and starts every new
execution environment from a restore of that snapshot. Everything created at init is therefore
shared by all environments restored from it: the state of ``random``, ``tempfile``'s name
generator, open sockets, cached secrets. This module registers, once per process, the
after-restore hooks that make that state unique again, and gives handlers three tools:

* ``register_client(client)``: its connection pool is closed before the snapshot (an open
  keep-alive socket cannot be checkpointed and would be dead after a restore anyway) and dropped
  again after each restore, so the first call opens a fresh connection.
* ``TtlCache``: a cache of values with a lifetime (secrets, tokens); it expires entries by
  wall-clock time (a restored process keeps the monotonic clock value of the snapshot) and is
  emptied after each restore.
* ``prime(...)`` / ``warm_client(...)``: init-time warm-up, so that the first invocation after a
  restore costs about what a warm one does.

Hooks are registered with ``snapshot_restore_py`` (part of the Lambda python3.13 runtime). The
runtime runs before-snapshot hooks in reverse registration order and after-restore hooks in
registration order; ``run_before_snapshot_hooks``/``run_after_restore_hooks`` do the same for
local runs and tests.
"""

from __future__ import annotations

import functools
import io
import os
import random
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Protocol

import snapshot_restore_py
import urllib3
from botocore.awsrequest import AWSResponse

__all__ = [
    "HookRun",
    "TtlCache",
    "after_restore",
    "before_snapshot",
    "prime",
    "register_client",
    "run_after_restore_hooks",
    "run_before_snapshot_hooks",
    "take_restore_runs",
    "warm_client",
]


class _Closable(Protocol):
    def close(self) -> None: ...


class _Clearable(Protocol):
    def clear(self) -> None: ...


def before_snapshot[F: Callable[..., Any]](fn: F) -> F:
    """Decorator: run ``fn()`` once, just before Lambda takes the snapshot."""
    snapshot_restore_py.register_before_snapshot(fn)
    return fn


@dataclass(frozen=True)
class HookRun:
    """One after-restore hook's run: wall-clock start and end (epoch seconds), the exception type
    it raised (None when it returned). shared.observability turns these into the restore's
    X-Ray subsegment and metrics on the next invocation."""

    name: str
    start: float
    end: float
    error: str | None = None

    @property
    def duration_ms(self) -> float:
        return (self.end - self.start) * 1000


# The runs since the last take_restore_runs(): non-empty exactly when the process was restored
# (our own hooks are registered at import) and no invocation has reported the restore yet.
_restore_runs: list[HookRun] = []
_restore_lock = threading.Lock()


def _timed[F: Callable[..., Any]](fn: F) -> F:
    """``fn`` that records a HookRun each time it runs (and still raises what it raises)."""
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> Any:
        start = time.time()
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            with _restore_lock:
                _restore_runs.append(HookRun(name, start, time.time(), type(exc).__name__))
            raise
        with _restore_lock:
            _restore_runs.append(HookRun(name, start, time.time()))
        return result

    return run  # type: ignore[return-value]


def take_restore_runs() -> list[HookRun]:
    """The after-restore hook runs recorded since the last call (in run order), and forget them."""
    with _restore_lock:
        runs = list(_restore_runs)
        _restore_runs.clear()
    return runs


def after_restore[F: Callable[..., Any]](fn: F) -> F:
    """Decorator: run ``fn()`` in every execution environment restored from the snapshot.

    The registered hook is timed (take_restore_runs); ``fn`` itself is returned unchanged.
    """
    snapshot_restore_py.register_after_restore(_timed(fn))
    return fn


# Weak: a client that is garbage-collected needs no hook. Caches are kept by identity (a dict
# can be registered, and dicts are neither hashable nor weak-referenceable).
_clients: weakref.WeakSet[_Closable] = weakref.WeakSet()
_caches: dict[int, _Clearable] = {}


def register_client[C: _Closable](client: C) -> C:
    """Make a boto3/botocore client snapshot-safe; returns it, for ``s3 = register_client(...)``.

    botocore's ``client.close()`` clears its urllib3 pool managers; the client stays usable and
    opens new connections on its next call.
    """
    _clients.add(client)
    return client


def register_cache[T: _Clearable](cache: T) -> T:
    """Empty ``cache`` (anything with ``clear()``) after each restore; returns it."""
    _caches[id(cache)] = cache
    return cache


def _close_clients() -> None:
    for client in list(_clients):
        client.close()


def _reseed_random() -> None:
    # Every restore would otherwise draw the same "random" sequence as every other restore.
    random.seed(os.urandom(32))
    # tempfile keeps its own Random instance and only renews it when the PID changes, which a
    # restore does not do; without this, restored environments generate identical temp names.
    tempfile._name_sequence = None  # type: ignore[attr-defined]


def _clear_caches() -> None:
    for cache in list(_caches.values()):
        cache.clear()


class TtlCache[K: Hashable, V]:
    """Values with a lifetime (secrets, tokens), loaded on demand.

    Expiry uses ``time.time()``: after a restore the monotonic clock continues from its value at
    snapshot time, so a monotonic TTL would keep a stale value alive for as long as the snapshot
    is in use. Every instance is also emptied after each restore.
    """

    def __init__(self, ttl_seconds: float, *, clock: Callable[[], float] = time.time) -> None:
        if ttl_seconds <= 0:
            raise ValueError(f"ttl_seconds must be positive, got {ttl_seconds}")
        self._ttl = ttl_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[K, tuple[float, V]] = {}
        register_cache(self)

    def get(self, key: K, load: Callable[[], V]) -> V:
        """The cached value for ``key``, or ``load()``'s result (cached) when absent or expired."""
        now = self._clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry[0] > now:
                return entry[1]
        value = load()
        with self._lock:
            self._entries[key] = (now + self._ttl, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)


def prime(*warmups: Callable[[], object]) -> None:
    """Run init-time warm-up callables in order (imports, service models, Powertools, clients).

    A failing warm-up raises: it means the handler's init is broken, which must show at init.
    """
    for warmup in warmups:
        warmup()


# Minimal bodies each botocore protocol parses as an empty, successful reply.
_EMPTY_BODIES: dict[str, bytes] = {
    "json": b"{}",
    "rest-json": b"{}",
    "rest-xml": b"",
    "smithy-rpc-v2-cbor": b"\xa0",
}


def _empty_body(client: Any, operation: str) -> bytes:
    service_model = client.meta.service_model
    if service_model.protocol in _EMPTY_BODIES:
        return _EMPTY_BODIES[service_model.protocol]
    if service_model.protocol in ("query", "ec2"):
        # The query parser looks for the operation's result element inside the root element.
        output = service_model.operation_model(client.meta.method_to_api_mapping[operation]).output_shape
        wrapper = output.serialization.get("resultWrapper") if output is not None else None
        return f"<Response><{wrapper}/></Response>".encode() if wrapper else b"<Response/>"
    raise ValueError(f"warm_client: no empty reply known for protocol {service_model.protocol!r}")


def warm_client(client: Any, operation: str, /, **params: Any) -> Callable[[], None]:
    """A warm-up that runs ``client.<operation>(**params)`` through botocore without the network.

    Everything botocore does lazily on a first call happens (parameter validation, serializer,
    endpoint rules, credential resolution and signing, response parsing, the paginator model for
    operations that paginate); the HTTP send is replaced by an empty 200 reply, so no connection
    is opened during init.
    """
    method = getattr(client, operation)  # AttributeError at init for a misspelt operation
    body = _empty_body(client, operation)
    unique_id = f"shared.runtime.warm_client.{id(client)}"

    def _reply(request: Any, **_: Any) -> AWSResponse:
        raw = urllib3.HTTPResponse(body=io.BytesIO(body), status=200, preload_content=False)
        return AWSResponse(request.url, 200, {}, raw)

    def warm() -> None:
        client.meta.events.register_first("before-send", _reply, unique_id=unique_id)
        try:
            # Through the paginator when there is one: its model is loaded lazily too (a scan of
            # botocore's data directories, tens of milliseconds) and handlers page through listings.
            if client.can_paginate(operation):
                for _ in client.get_paginator(operation).paginate(**params):
                    pass
            else:
                method(**params)
        finally:
            client.meta.events.unregister("before-send", unique_id=unique_id)

    return warm


def run_before_snapshot_hooks() -> None:
    """Run (and consume) the before-snapshot hooks as the Lambda runtime does: last registered first."""
    hooks = snapshot_restore_py.get_before_snapshot()
    while hooks:
        fn, args, kwargs = hooks.pop()
        fn(*args, **kwargs)


def run_after_restore_hooks() -> None:
    """Run the after-restore hooks as the Lambda runtime does: in registration order."""
    for fn, args, kwargs in list(snapshot_restore_py.get_after_restore()):
        fn(*args, **kwargs)


# Registered once, at the first import of this module (which happens during init).
snapshot_restore_py.register_before_snapshot(_close_clients)
after_restore(_reseed_random)
after_restore(_close_clients)
after_restore(_clear_caches)
