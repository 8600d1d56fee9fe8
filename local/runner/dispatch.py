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

And every botocore session (the runner's, boto3's default session the handlers' clients come
from, each ``botocore.session.get_session()``) has a data loader of its own that reads and parses
the service models, endpoint rules and partitions again: about 80 JSON files per run, a fifth of
the CPU of a small run, again in every run of a process. ``shared_model_files`` gives loaders
created while it is installed one cache per search path for the whole process, as one long-lived
session's loader is shared by all its clients. Every client is still created, per cold start,
from the same files' contents.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import botocore.session
from botocore.loaders import Loader
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


# (search paths, extras types) -> one loader cache (``botocore.loaders.instance_cache``) for the process.
_model_caches: dict[tuple[tuple[str, ...], tuple[str, ...]], dict[Any, Any]] = {}


class _SharedCacheLoader(Loader):  # type: ignore[misc]  # botocore has no type hints
    """A botocore ``Loader`` whose cache is shared by every such loader with the same search paths."""

    @property
    def _cache(self) -> dict[Any, Any]:
        key = (tuple(self.search_paths), tuple(self.extras_types))
        with _lock:
            return _model_caches.setdefault(key, {})

    @_cache.setter
    def _cache(self, _value: dict[Any, Any]) -> None:
        """``Loader.__init__`` sets an empty cache of its own: the shared one stands instead."""


def _create_shared_cache_loader(search_path_string: str | None = None) -> Loader:
    """``botocore.loaders.create_loader`` (AWS_DATA_PATH split on ``os.pathsep``) with the shared cache."""
    if search_path_string is None:
        return _SharedCacheLoader()
    paths = [os.path.expanduser(os.path.expandvars(p)) for p in search_path_string.split(os.pathsep)]
    return _SharedCacheLoader(extra_search_paths=paths)


@contextmanager
def shared_model_files() -> Iterator[None]:
    original = botocore.session.create_loader
    botocore.session.create_loader = _create_shared_cache_loader
    try:
        yield
    finally:
        botocore.session.create_loader = original
