"""Per-request overhead of moto's in-process dispatch, removed for the duration of a local run.

Profiling ``./scripts/local-test.sh --uc semiconductor-eda --objects 1000`` (py-spy, GIL samples)
put almost all of the run in botocore calls the handlers make to S3, and half of each call in
moto's dispatch rather than in S3's behaviour: for every request moto's ``BotocoreStubber`` asks
the backend for its URL map (``BaseBackend.urls``), and ``S3Backend`` rebuilds it by
``importlib.reload``-ing ``moto.s3.urls`` (twice: ``url_bases`` and ``url_paths``), which
re-executes the module and recompiles its patterns — a quarter of moto's time per S3 request.

The URL map only changes when moto's S3 endpoint settings (environment variables such as
``MOTO_S3_CUSTOM_ENDPOINTS``) change, which they do not during a run; ``memoized_backend_urls``
computes it once per backend instance while installed. Which handler answers which request, and
what it answers, is unchanged.

Likewise every error reply (an S3 ``NoSuchKey`` for each result lookup that finds nothing, say)
looks its error shape up through ``moto.core.errors.get_error_model``, which builds a new
``ErrorLookupFactory`` per call and so walks every error shape of the service model again (3 %
of a run); ``shared_error_lookups`` lets those calls share one factory (its own per-service
cache) while installed. The shapes found are the same.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from moto.core import errors as moto_errors
from moto.core.base_backend import BaseBackend

_lock = threading.Lock()


@contextmanager
def memoized_backend_urls() -> Iterator[None]:
    original = BaseBackend.__dict__["urls"]
    compute: Callable[[Any], dict[str, Any]] = original.fget
    cache: dict[int, tuple[Any, dict[str, Any]]] = {}

    def urls(backend: Any) -> dict[str, Any]:
        entry = cache.get(id(backend))
        if entry is None or entry[0] is not backend:
            value = compute(backend)
            with _lock:
                cache[id(backend)] = (backend, value)
            return value
        return entry[1]

    BaseBackend.urls = property(urls)  # type: ignore[assignment,method-assign]
    try:
        yield
    finally:
        BaseBackend.urls = original  # type: ignore[method-assign]


@contextmanager
def shared_error_lookups() -> Iterator[None]:
    original = moto_errors.ErrorLookupFactory
    shared = original()
    moto_errors.ErrorLookupFactory = lambda: shared  # type: ignore[assignment,misc]
    try:
        yield
    finally:
        moto_errors.ErrorLookupFactory = original  # type: ignore[misc]
