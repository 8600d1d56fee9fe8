"""Discovery: one streamed listing of the access point split into one or more JSONL manifests.

Every use case's Discovery function does the same thing: list the files behind the FSx for ONTAP
S3 access point page by page, keep the ones with the wanted suffixes, and stream each into a
JSONL manifest in the output bucket (one ``ObjectInfo`` per line) that a Distributed Map reads
through its ``ItemReader``. Memory and the returned payload are the same for ten objects or ten
million. A use case with several kinds of input (UC9: videos and point clouds) gives one
``ManifestRoute`` per kind; each object goes to the first route whose suffix it has, from the
same single listing.

If anything fails (a typed listing or upload error, or the time budget) every manifest's upload
is aborted, so no partial manifest is ever visible.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from shared.errors import ConfigurationError, InvalidInputError
from shared.events import validate_execution_id
from shared.s3ap import ManifestWriter, list_objects

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from shared.retry import Deadline

MANIFEST_PREFIX = "manifests"
# Check the time budget every this many listed objects (one ListObjectsV2 page).
DEADLINE_CHECK_EVERY = 1000
SUFFIX_RE = re.compile(r"\.[A-Za-z0-9]{1,16}")
# A listing prefix: S3's safe key characters, as the templates' SourcePrefix parameters allow.
SOURCE_PREFIX_PATTERN = r"[A-Za-z0-9!_.*()/-]{0,512}"


def parse_event(event: Any) -> str:
    """The execution id of a Discovery function's event ``{"execution_id": "<execution name>"}``."""
    if not isinstance(event, dict):
        raise InvalidInputError(f"event must be an object, got {type(event).__name__}")
    return validate_execution_id(event.get("execution_id"))


def validate_suffixes(variable: str, suffixes: Iterable[str]) -> tuple[str, ...]:
    """Suffixes from configuration: non-empty, each like ``.gds``; ``ConfigurationError`` naming the variable."""
    values = tuple(suffixes)
    if not values or any(SUFFIX_RE.fullmatch(s) is None for s in values):
        raise ConfigurationError(
            f"environment variable {variable}={','.join(values)!r} is invalid: expected "
            "comma-separated suffixes such as .gds,.oas",
            variable=variable,
        )
    return values


def manifest_key(execution_id: str, name: str = "manifest") -> str:
    """``manifests/<execution id>/<name>.jsonl``: execution-scoped, so reruns never overwrite."""
    return f"{MANIFEST_PREFIX}/{execution_id}/{name}.jsonl"


@dataclass(frozen=True, slots=True)
class ManifestRoute:
    """One manifest: its name (also the key's file name) and the suffixes that go into it."""

    name: str
    suffixes: tuple[str, ...]

    def __post_init__(self) -> None:
        if re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", self.name) is None:
            raise InvalidInputError(f"manifest name {self.name!r} must be 1-32 of [a-z0-9_-], starting with a letter")
        if not self.suffixes or any(not s for s in self.suffixes):
            raise InvalidInputError(f"manifest {self.name!r} needs non-empty suffixes")


@dataclass(frozen=True, slots=True)
class RouteResult:
    """What one manifest holds: its location and counts (no object lists)."""

    name: str
    bucket: str
    key: str
    count: int
    total_bytes: int
    manifest_bytes: int


def discover_manifests(
    s3: S3Client,
    *,
    access_point_arn: str,
    output_bucket: str,
    execution_id: str,
    prefix: str,
    routes: Sequence[ManifestRoute],
    deadline: Deadline,
    check_every: int = DEADLINE_CHECK_EVERY,
) -> dict[str, RouteResult]:
    """List ``prefix`` once and stream every matching object into its route's manifest.

    Returns one ``RouteResult`` per route name, in route order. An object whose key ends with
    suffixes of two routes goes to the first. Suffixes match case-insensitively.
    """
    if not routes:
        raise InvalidInputError("discover_manifests needs at least one route")
    if len({r.name for r in routes}) != len(routes):
        raise InvalidInputError("manifest route names must be unique")
    lowered = [(route, tuple(s.lower() for s in route.suffixes)) for route in routes]
    all_suffixes = tuple(s for _, suffixes in lowered for s in suffixes)
    totals = {route.name: 0 for route in routes}
    listed = 0
    with ExitStack() as stack:
        # Entered in order; on any exception ExitStack aborts every writer (no partial manifest).
        writers = {
            route.name: stack.enter_context(ManifestWriter(s3, output_bucket, manifest_key(execution_id, route.name)))
            for route in routes
        }
        for obj in list_objects(s3, access_point_arn, prefix=prefix, suffixes=all_suffixes):
            lower = obj.key.lower()
            route = next(r for r, suffixes in lowered if lower.endswith(suffixes))
            writers[route.name].write(obj.to_dict())
            totals[route.name] += obj.size
            listed += 1
            if listed % check_every == 0:
                deadline.check("listing the access point")
    out: dict[str, RouteResult] = {}
    for route in routes:
        info = writers[route.name].result
        out[route.name] = RouteResult(
            name=route.name,
            bucket=info.bucket,
            key=info.key,
            count=info.count,
            total_bytes=totals[route.name],
            manifest_bytes=info.bytes,
        )
    return out


def summary(execution_id: str, results: dict[str, RouteResult]) -> dict[str, Any]:
    """The flat payload for the state machine: ``<name>_manifest_key``, ``<name>_count``, ... per route."""
    payload: dict[str, Any] = {"execution_id": execution_id}
    for name, result in results.items():
        payload[f"{name}_manifest_bucket"] = result.bucket
        payload[f"{name}_manifest_key"] = result.key
        payload[f"{name}_count"] = result.count
        payload[f"{name}_total_bytes"] = result.total_bytes
        payload[f"{name}_manifest_bytes"] = result.manifest_bytes
    return payload
